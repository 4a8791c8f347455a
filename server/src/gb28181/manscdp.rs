//! MANSCDP bodies, the XML that GB/T 28181 devices and the platform exchange in SIP
//! `MESSAGE`s (GB/T 28181-2016 annex A; the 2022 edition's are the same for these):
//! keepalives, catalog answers and alarms read into a [`Body`], and the catalog query the
//! platform sends. No I/O.
//!
//! Devices write GB2312/GBK and say so in the XML declaration, or UTF-8; [`parse`] decodes
//! by the declaration, and without one reads UTF-8, falling back to GB18030 (a superset
//! of GBK) for bytes that are not UTF-8. The XML is read leniently
//! ([`campuswatch_wire::xml`]): devices add elements, put them in their own order and
//! cut corners that a conforming parser would refuse. What a body's fields mean is
//! checked here: codes are 20 digits, numbers are numbers, texts are bounded.

use std::borrow::Cow;

use campuswatch_protocol::Timestamp;
use campuswatch_wire::xml::{self, Element};
use chrono::{NaiveDateTime, TimeZone, Utc};
use encoding_rs::{Encoding, GB18030, UTF_8};

use super::types::{AlarmInfo, ChannelInfo, ChannelStatus, CodeError, GbCode};

/// The most `Item`s one body may hold. A catalog comes in parts of a few items each; a
/// body with more than this is refused rather than read.
pub const MAX_ITEMS: usize = 100_000;

/// The most characters kept of a name, a manufacturer, a model or a description.
pub const MAX_TEXT_CHARS: usize = 256;

/// The most characters of a device's value repeated in an error or kept as a command
/// type, so that a hostile body does not make long log lines.
const MAX_SHOWN_CHARS: usize = 40;

/// What a MANSCDP body says.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `<Notify>` with `CmdType` `Keepalive`: the device is alive; `ok` is its `Status`
    /// (`OK`; anything else says the device has a fault).
    Keepalive {
        sn: Option<u32>,
        device: GbCode,
        ok: bool,
    },
    /// `<Response>` with `CmdType` `Catalog`: one part of a device's answer to a catalog
    /// query.
    Catalog(CatalogPart),
    /// `<Notify>` with `CmdType` `Alarm`.
    Alarm { sn: Option<u32>, alarm: AlarmInfo },
    /// Any other command (DeviceInfo, DeviceStatus, MediaStatus, a Query, a catalog
    /// change `Notify`…): named, so that it can be answered and counted. `root` is
    /// `Query`, `Control`, `Notify` or `Response`; `cmd_type` is at most 40 characters.
    Other {
        root: String,
        cmd_type: String,
        device: Option<GbCode>,
    },
}

/// One body of a catalog answer. A device splits its catalog into parts of a few items,
/// each with the same `sn` and `sum_num`; the catalog is complete when `sum_num` items
/// have come (`items` and `skipped` together).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogPart {
    pub sn: u32,
    /// The answering device (a platform, in cascade).
    pub device: GbCode,
    /// `SumNum`: how many items the whole catalog has.
    pub sum_num: u32,
    pub items: Vec<ChannelInfo>,
    /// Items left out because their `DeviceID` is not a 20-digit code or their `Status`
    /// is missing or unreadable.
    pub skipped: u32,
}

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManscdpError {
    #[error("the body is not XML: it has no closed root element")]
    NotXml,
    #[error("the root element <{0}> is not MANSCDP's (Query, Control, Notify or Response)")]
    UnknownRoot(String),
    #[error("<{0}> has no CmdType")]
    MissingCmdType(&'static str),
    #[error("the {cmd_type} body has no {field}")]
    Missing {
        cmd_type: &'static str,
        field: &'static str,
    },
    #[error("the {cmd_type} body's DeviceID: {source}")]
    BadDeviceId {
        cmd_type: &'static str,
        source: CodeError,
    },
    #[error("SN {0:?} is not a number from 0 to 4294967295")]
    BadSn(String),
    #[error("SumNum {0:?} is not a number from 0 to 4294967295")]
    BadSumNum(String),
    #[error("the catalog body has more than {MAX_ITEMS} items")]
    TooManyItems,
}

/// Reads a MANSCDP body. `zone` is the zone `AlarmTime` is read in: devices write it
/// without an offset, in their local time.
pub fn parse(body: &[u8], zone: chrono_tz::Tz) -> Result<Body, ManscdpError> {
    let text = decode(body);
    let root = xml::children(&text).next().ok_or(ManscdpError::NotXml)?;
    let root_name = ROOTS
        .into_iter()
        .find(|r| r.eq_ignore_ascii_case(root.name))
        .ok_or_else(|| ManscdpError::UnknownRoot(shown(root.name)))?;
    let [cmd_type] = pick(root.text, ["CmdType"]);
    let cmd_type = cmd_type
        .map(|c| xml::unescape(c.text))
        .filter(|c| !c.trim().is_empty())
        .ok_or(ManscdpError::MissingCmdType(root_name))?;
    let cmd_type = cmd_type.trim();
    let is = |root: &str, cmd: &str| root_name == root && cmd_type.eq_ignore_ascii_case(cmd);
    if is("Notify", "Keepalive") {
        keepalive(root.text)
    } else if is("Response", "Catalog") {
        catalog(root.text).map(Body::Catalog)
    } else if is("Notify", "Alarm") {
        alarm(root.text, zone)
    } else {
        let [device] = pick(root.text, ["DeviceID"]);
        Ok(Body::Other {
            root: root_name.to_string(),
            cmd_type: shown(cmd_type),
            device: device.and_then(|d| GbCode::parse(d.text).ok()),
        })
    }
}

/// The platform's catalog query to `device`, numbered `sn` (its answer's parts carry the
/// same `SN`).
///
/// Declared GB2312, the charset devices expect from a platform. The text is all ASCII
/// (tags, digits), which GB2312 writes byte for byte as UTF-8 does: the string's
/// `as_bytes()` are the body to send.
pub fn catalog_query(sn: u32, device: &GbCode) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n\
         <Query>\r\n\
         <CmdType>Catalog</CmdType>\r\n\
         <SN>{sn}</SN>\r\n\
         <DeviceID>{device}</DeviceID>\r\n\
         </Query>\r\n"
    )
}

/// MANSCDP's root elements.
const ROOTS: [&str; 4] = ["Query", "Control", "Notify", "Response"];

/// The body as text, in the charset its declaration names; without a usable one (or
/// with UTF-8 declared), UTF-8 when the bytes are UTF-8 and GB18030 when they are not,
/// since the devices that get the declaration wrong write GBK.
fn decode(body: &[u8]) -> Cow<'_, str> {
    let declared = xml::encoding(body)
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        // The declaration was read as ASCII, so the body is not UTF-16 whatever it says.
        .filter(|e| e.is_ascii_compatible() && *e != UTF_8);
    if let Some(encoding) = declared {
        return encoding.decode(body).0;
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match std::str::from_utf8(body) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => GB18030.decode_without_bom_handling(body).0,
    }
}

fn keepalive(root: &str) -> Result<Body, ManscdpError> {
    const CMD: &str = "Keepalive";
    let [sn, device, status] = pick(root, ["SN", "DeviceID", "Status"]);
    Ok(Body::Keepalive {
        // Optional here: a device that numbers its notifications oddly still keeps
        // alive and still alarms.
        sn: sn.and_then(|s| s.text.parse().ok()),
        device: code(CMD, device)?,
        ok: status.is_some_and(|s| s.text.eq_ignore_ascii_case("OK")),
    })
}

fn catalog(root: &str) -> Result<CatalogPart, ManscdpError> {
    const CMD: &str = "Catalog";
    let [sn, device, sum_num, list] = pick(root, ["SN", "DeviceID", "SumNum", "DeviceList"]);
    let missing = |field| ManscdpError::Missing {
        cmd_type: CMD,
        field,
    };
    let sn = number(sn.ok_or(missing("SN"))?.text, ManscdpError::BadSn)?;
    let device = code(CMD, device)?;
    let sum_num = number(
        sum_num.ok_or(missing("SumNum"))?.text,
        ManscdpError::BadSumNum,
    )?;
    let mut items = Vec::new();
    let mut skipped = 0;
    let elements = list.map_or("", |l| l.text);
    for (n, element) in xml::children(elements)
        .filter(|e| e.name == "Item")
        .enumerate()
    {
        if n == MAX_ITEMS {
            return Err(ManscdpError::TooManyItems);
        }
        match item(element.text) {
            Some(channel) => items.push(channel),
            None => skipped += 1,
        }
    }
    Ok(CatalogPart {
        sn,
        device,
        sum_num,
        items,
        skipped,
    })
}

/// One catalog `Item`; `None` when its code or status cannot be read.
fn item(text: &str) -> Option<ChannelInfo> {
    let [id, name, manufacturer, model, status, parent] = pick(
        text,
        [
            "DeviceID",
            "Name",
            "Manufacturer",
            "Model",
            "Status",
            "ParentID",
        ],
    );
    Some(ChannelInfo {
        id: GbCode::parse(id?.text).ok()?,
        status: channel_status(status?.text)?,
        name: name.and_then(|e| bounded_text(e.text)),
        manufacturer: manufacturer.and_then(|e| bounded_text(e.text)),
        model: model.and_then(|e| bounded_text(e.text)),
        parent: parent.and_then(|p| GbCode::parse(p.text).ok()),
    })
}

/// A channel's `Status`: `ON`/`OFF` in the standard, `OK`/`ONLINE`/`OFFLINE` from some
/// devices, in any case.
fn channel_status(text: &str) -> Option<ChannelStatus> {
    let is = |words: &[&str]| words.iter().any(|w| text.eq_ignore_ascii_case(w));
    if is(&["ON", "OK", "ONLINE"]) {
        Some(ChannelStatus::On)
    } else if is(&["OFF", "OFFLINE"]) {
        Some(ChannelStatus::Off)
    } else {
        None
    }
}

fn alarm(root: &str, zone: chrono_tz::Tz) -> Result<Body, ManscdpError> {
    const CMD: &str = "Alarm";
    let [sn, device, priority, method, time, description, info, alarm_type] = pick(
        root,
        [
            "SN",
            "DeviceID",
            "AlarmPriority",
            "AlarmMethod",
            "AlarmTime",
            "AlarmDescription",
            "Info",
            "AlarmType",
        ],
    );
    // `Info/AlarmType` in the standard; some devices put it beside the other fields.
    let alarm_type = info
        .and_then(|i| pick(i.text, ["AlarmType"])[0])
        .or(alarm_type);
    Ok(Body::Alarm {
        // Optional here: a device that numbers its notifications oddly still keeps
        // alive and still alarms.
        sn: sn.and_then(|s| s.text.parse().ok()),
        alarm: AlarmInfo {
            source: code(CMD, device)?,
            priority: priority.and_then(|e| e.text.parse().ok()),
            method: method.and_then(|e| e.text.parse().ok()),
            alarm_type: alarm_type.and_then(|e| e.text.parse().ok()),
            time: time.and_then(|e| local_time(e.text, zone)),
            description: description.and_then(|e| bounded_text(e.text)),
        },
    })
}

/// `AlarmTime` as devices write it, without an offset (`2026-12-06T08:00:00`, with a
/// fraction of a second or a space for the `T`), read in `zone`. In the hour a
/// daylight-saving change repeats, the earlier.
fn local_time(text: &str, zone: chrono_tz::Tz) -> Option<Timestamp> {
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .into_iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())?;
    let time = zone.from_local_datetime(&local).earliest()?;
    Some(time.with_timezone(&Utc))
}

/// The first child element of each of `names` in `text`, in one pass over its children
/// (each child is skipped whole, so a long `DeviceList` is crossed once).
fn pick<'a, const N: usize>(text: &'a str, names: [&str; N]) -> [Option<Element<'a>>; N] {
    let mut found = [None; N];
    for child in xml::children(text) {
        if let Some(i) = names.iter().position(|n| *n == child.name) {
            found[i].get_or_insert(child);
            if found.iter().all(Option::is_some) {
                break;
            }
        }
    }
    found
}

/// The body's `DeviceID`, which the command needs.
fn code(cmd_type: &'static str, device: Option<Element<'_>>) -> Result<GbCode, ManscdpError> {
    let device = device.ok_or(ManscdpError::Missing {
        cmd_type,
        field: "DeviceID",
    })?;
    GbCode::parse(device.text).map_err(|source| ManscdpError::BadDeviceId { cmd_type, source })
}

fn number(text: &str, error: fn(String) -> ManscdpError) -> Result<u32, ManscdpError> {
    text.parse().map_err(|_| error(shown(text)))
}

/// A device's text for people (a name, a description): entities resolved, control
/// characters dropped (they would garble logs, and PostgreSQL refuses NUL), trimmed, at
/// most [`MAX_TEXT_CHARS`] characters; `None` when nothing is left.
fn bounded_text(raw: &str) -> Option<String> {
    // An entity is at most 10 characters, so this much of the raw text is enough for
    // MAX_TEXT_CHARS characters, and a huge element costs no more than a short one.
    let raw = prefix(raw, MAX_TEXT_CHARS * 10);
    let text: String = xml::unescape(raw)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let text = prefix(text.trim(), MAX_TEXT_CHARS).trim_end();
    (!text.is_empty()).then(|| text.to_string())
}

/// A device's value as an error repeats it: at most [`MAX_SHOWN_CHARS`] characters.
fn shown(text: &str) -> String {
    prefix(text, MAX_SHOWN_CHARS).to_string()
}

/// At most `chars` characters of `text`.
fn prefix(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use chrono_tz::Asia::Shanghai;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// `text` in GB2312 (GBK) bytes, as a device writes it.
    fn gb2312(text: &str) -> Vec<u8> {
        let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
        assert!(!unmappable, "{text}");
        bytes.into_owned()
    }

    fn code(s: &str) -> GbCode {
        GbCode::parse(s).unwrap()
    }

    fn at(rfc3339: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    fn catalog_part(body: &[u8]) -> CatalogPart {
        match parse(body, Shanghai) {
            Ok(Body::Catalog(part)) => part,
            other => panic!("{other:?}"),
        }
    }

    // Sample bodies in the message formats of GB/T 28181-2016 annex A, kept as text with
    // the GB2312 declaration devices write; `gb2312` makes the bytes a device sends. The
    // fuzz target's corpus is seeded from them too.
    const KEEPALIVE: &str = include_str!("../../tests/fixtures/manscdp/keepalive.xml");

    /// An NVR's catalog, the first part of two.
    const NVR_CATALOG: &str = include_str!("../../tests/fixtures/manscdp/catalog_nvr.xml");

    /// A lower-level platform in cascade: its business group and virtual organisation
    /// (which have no `Status`) and the cameras under them, by `ParentID`.
    const PLATFORM_CATALOG: &str =
        include_str!("../../tests/fixtures/manscdp/catalog_platform.xml");

    const ALARM: &str = include_str!("../../tests/fixtures/manscdp/alarm.xml");

    fn samples() -> Vec<Vec<u8>> {
        [KEEPALIVE, NVR_CATALOG, PLATFORM_CATALOG, ALARM]
            .into_iter()
            .map(gb2312)
            .chain([catalog_query(1, &code("34020000001180000001")).into_bytes()])
            .collect()
    }

    #[test]
    fn a_keepalive_names_its_device_and_says_whether_it_is_ok() {
        let body = parse(&gb2312(KEEPALIVE), Shanghai).unwrap();
        assert_eq!(
            body,
            Body::Keepalive {
                sn: Some(43),
                device: code("34020000001180000001"),
                ok: true
            }
        );
        let faulty = KEEPALIVE
            .replace("<Status>OK", "<Status>Error")
            .replace("<SN>43</SN>", "");
        assert_eq!(
            parse(faulty.as_bytes(), Shanghai).unwrap(),
            Body::Keepalive {
                sn: None,
                device: code("34020000001180000001"),
                ok: false
            }
        );
        let lower = KEEPALIVE.replace("<Status>OK", "<Status> ok ");
        assert!(matches!(
            parse(lower.as_bytes(), Shanghai),
            Ok(Body::Keepalive { ok: true, .. })
        ));
    }

    #[test]
    fn a_catalog_in_gb2312_gives_its_channels_with_their_chinese_names() {
        let bytes = gb2312(NVR_CATALOG);
        assert!(std::str::from_utf8(&bytes).is_err(), "the sample is GB2312");
        let part = catalog_part(&bytes);
        assert_eq!(
            part,
            CatalogPart {
                sn: 17430,
                device: code("34020000001180000001"),
                sum_num: 3,
                items: vec![
                    ChannelInfo {
                        id: code("34020000001320000001"),
                        name: Some("校门口".into()),
                        manufacturer: Some("海康威视".into()),
                        model: Some("DS-2CD2T47G2".into()),
                        status: ChannelStatus::On,
                        parent: Some(code("34020000001180000001")),
                    },
                    ChannelInfo {
                        id: code("34020000001340000001"),
                        name: Some("一键报警 & 求助".into()),
                        manufacturer: None,
                        model: None,
                        status: ChannelStatus::Off,
                        parent: None,
                    },
                ],
                skipped: 0,
            }
        );
    }

    #[test]
    fn a_cascade_platforms_catalog_keeps_parents_and_counts_items_without_status() {
        let part = catalog_part(&gb2312(PLATFORM_CATALOG));
        assert_eq!(part.device, code("34020000002000000001"));
        assert_eq!((part.sum_num, part.skipped), (4, 2));
        let got: Vec<_> = part
            .items
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_deref(), c.status, c.parent))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "34020000001320000011",
                    Some("校门口"),
                    ChannelStatus::On,
                    Some(code("34020000002160000001"))
                ),
                // A path of codes is not a code.
                (
                    "34020000001320000012",
                    Some("操场"),
                    ChannelStatus::Off,
                    None
                ),
            ]
        );
        assert_eq!(part.items[0].manufacturer.as_deref(), Some("大华"));
    }

    #[test]
    fn channel_status_words_of_any_case_are_read_and_others_skip_the_item() {
        let cases = [
            ("ON", Some(ChannelStatus::On)),
            ("on", Some(ChannelStatus::On)),
            ("Ok", Some(ChannelStatus::On)),
            ("ONLINE", Some(ChannelStatus::On)),
            ("OFF", Some(ChannelStatus::Off)),
            ("offline", Some(ChannelStatus::Off)),
            ("", None),
            ("1", None),
            ("ONN", None),
        ];
        for (word, status) in cases {
            let body = NVR_CATALOG.replacen("<Status>ON<", &format!("<Status> {word} <"), 1);
            let part = catalog_part(body.as_bytes());
            assert_eq!(part.items.len() + part.skipped as usize, 2, "{word}");
            assert_eq!(
                part.items
                    .iter()
                    .find(|c| c.id == code("34020000001320000001"))
                    .map(|c| c.status),
                status,
                "{word}"
            );
        }
        for id in ["3402000000132000000", "3402000000132000000x", ""] {
            let body = NVR_CATALOG.replacen("34020000001320000001", id, 1);
            let part = catalog_part(body.as_bytes());
            assert_eq!((part.items.len(), part.skipped), (1, 1), "{id}");
        }
        let no_status = NVR_CATALOG.replacen("<Status>ON</Status>", "", 1);
        assert_eq!(catalog_part(no_status.as_bytes()).skipped, 1);
    }

    #[test]
    fn names_are_trimmed_unescaped_cleaned_and_bounded_on_a_character() {
        let long = "校".repeat(300);
        let body = NVR_CATALOG
            .replace("<Name>校门口</Name>", &format!("<Name>  {long}</Name>"))
            .replace("海康威视", "&#x48;IK&#0;\u{7}VISION")
            .replace("DS-2CD2T47G2", " \t ");
        let part = catalog_part(&gb2312(&body));
        let channel = &part.items[0];
        assert_eq!(channel.name.as_deref(), Some("校".repeat(256).as_str()));
        assert_eq!(channel.manufacturer.as_deref(), Some("HIKVISION"));
        assert_eq!(channel.model, None);
        // A huge name costs no more than a long one.
        let huge = NVR_CATALOG.replace("校门口", &"&amp;".repeat(200_000));
        let part = catalog_part(huge.as_bytes());
        assert_eq!(
            part.items[0].name.as_deref(),
            Some("&".repeat(256).as_str())
        );
    }

    #[test]
    fn an_alarm_is_read_with_its_local_time_in_the_servers_zone() {
        let Body::Alarm { sn, alarm } = parse(&gb2312(ALARM), Shanghai).unwrap() else {
            panic!("not an alarm");
        };
        assert_eq!(sn, Some(7));
        assert_eq!(
            alarm,
            AlarmInfo {
                source: code("34020000001340000001"),
                priority: Some(1),
                method: Some(2),
                alarm_type: Some(1),
                time: Some(at("2026-12-06T00:00:00Z")),
                description: Some("校门口一键报警".into()),
            }
        );
        let time = |written: &str| {
            let body = ALARM.replace("2026-12-06T08:00:00", written);
            match parse(body.as_bytes(), Shanghai) {
                Ok(Body::Alarm { alarm, .. }) => alarm.time,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            time("2026-12-06 08:00:00"),
            Some(at("2026-12-06T00:00:00Z"))
        );
        assert_eq!(
            time("2026-12-06T08:00:00.250"),
            Some(at("2026-12-06T00:00:00.250Z"))
        );
        for unreadable in [
            "2026-12-06T08:00:00Z",
            "2026-12-06",
            "08:00:00",
            "2026-13-06T08:00:00",
            "",
        ] {
            assert_eq!(time(unreadable), None, "{unreadable}");
        }
        // What is left out or unreadable is None; AlarmType beside the other fields is read.
        let sparse = "<Notify><CmdType>Alarm</CmdType><DeviceID>34020000001340000001</DeviceID>\
            <AlarmPriority>high</AlarmPriority><AlarmType>5</AlarmType></Notify>";
        assert_eq!(
            parse(sparse.as_bytes(), Shanghai).unwrap(),
            Body::Alarm {
                sn: None,
                alarm: AlarmInfo {
                    source: code("34020000001340000001"),
                    priority: None,
                    method: None,
                    alarm_type: Some(5),
                    time: None,
                    description: None,
                }
            }
        );
    }

    #[test]
    fn the_charset_is_the_declared_one_else_utf8_else_gb18030() {
        let utf8_undeclared =
            NVR_CATALOG.replace("<?xml version=\"1.0\" encoding=\"GB2312\"?>", "");
        let gbk_undeclared = gb2312(&utf8_undeclared);
        let utf8_declared = NVR_CATALOG.replace("GB2312", "UTF-8");
        // Declared UTF-8, written in GBK: read as what it is.
        let gbk_declared_utf8 = gb2312(&utf8_declared);
        let gbk_declared = gb2312(&NVR_CATALOG.replace("GB2312", "GBK"));
        let bom = [b"\xEF\xBB\xBF".as_slice(), utf8_undeclared.as_bytes()].concat();
        for body in [
            utf8_undeclared.as_bytes(),
            &gbk_undeclared,
            utf8_declared.as_bytes(),
            &gbk_declared_utf8,
            &gbk_declared,
            &bom,
        ] {
            let part = catalog_part(body);
            assert_eq!(part.items[0].name.as_deref(), Some("校门口"));
            assert_eq!(part.items[0].manufacturer.as_deref(), Some("海康威视"));
        }
        // GB18030 writes characters beyond GBK in four bytes.
        let rare = NVR_CATALOG
            .replace("GB2312", "GB18030")
            .replace("校门口", "校门口𠀀");
        let (bytes, _, unmappable) = encoding_rs::GB18030.encode(&rare);
        assert!(!unmappable);
        assert_eq!(
            catalog_part(&bytes).items[0].name.as_deref(),
            Some("校门口𠀀")
        );
    }

    #[test]
    fn other_commands_are_named_with_their_device() {
        let other = |body: &str| parse(body.as_bytes(), Shanghai).unwrap();
        assert_eq!(
            other(
                "<?xml version=\"1.0\"?><Response><CmdType>DeviceInfo</CmdType><SN>3</SN>\
                 <DeviceID>34020000001180000001</DeviceID><Result>OK</Result></Response>"
            ),
            Body::Other {
                root: "Response".into(),
                cmd_type: "DeviceInfo".into(),
                device: Some(code("34020000001180000001")),
            }
        );
        assert_eq!(
            other("<Notify><CmdType>MediaStatus</CmdType><DeviceID>bad</DeviceID></Notify>"),
            Body::Other {
                root: "Notify".into(),
                cmd_type: "MediaStatus".into(),
                device: None,
            }
        );
        // A catalog change notification is not a catalog answer.
        let change = NVR_CATALOG.replace("Response>", "Notify>");
        assert!(matches!(
            other(&change),
            Body::Other { root, cmd_type, .. } if root == "Notify" && cmd_type == "Catalog"
        ));
        // Another command's keepalive or alarm root is not one either.
        let answer = ALARM.replace("Notify>", "Response>");
        assert!(matches!(other(&answer), Body::Other { root, .. } if root == "Response"));
        let long = format!("<Control><CmdType>{}</CmdType></Control>", "X".repeat(500));
        assert!(matches!(other(&long), Body::Other { cmd_type, .. } if cmd_type.len() == 40));
    }

    #[test]
    fn a_catalog_query_is_ascii_and_reads_back_as_the_query_it_is() {
        let device = code("34020000001320000001");
        let query = catalog_query(4_294_967_295, &device);
        assert!(query.is_ascii());
        assert!(query.starts_with("<?xml version=\"1.0\" encoding=\"GB2312\"?>"));
        // Its GB2312 bytes are its bytes.
        assert_eq!(encoding_rs::GBK.encode(&query).0, query.as_bytes());
        assert_eq!(xml::element(&query, "SN"), Some("4294967295"));
        assert_eq!(
            parse(query.as_bytes(), Shanghai).unwrap(),
            Body::Other {
                root: "Query".into(),
                cmd_type: "Catalog".into(),
                device: Some(device),
            }
        );
    }

    #[test]
    fn a_body_that_cannot_be_read_says_what_is_wrong_in_a_bounded_line() {
        let error = |body: &str| parse(body.as_bytes(), Shanghai).unwrap_err();
        assert_eq!(error(""), ManscdpError::NotXml);
        assert_eq!(error("OK"), ManscdpError::NotXml);
        assert_eq!(error("<Notify><CmdType>Keepalive"), ManscdpError::NotXml);
        let huge_root = format!("<{0}>x</{0}>", "E".repeat(5000));
        let e = error(&huge_root);
        assert!(matches!(e, ManscdpError::UnknownRoot(_)), "{e}");
        assert!(e.to_string().len() < 200, "{e}");
        assert_eq!(
            error("<Notify><SN>1</SN></Notify>"),
            ManscdpError::MissingCmdType("Notify")
        );
        assert_eq!(
            error("<Notify><CmdType> </CmdType></Notify>"),
            ManscdpError::MissingCmdType("Notify")
        );
        assert_eq!(
            error("<Notify><CmdType>Keepalive</CmdType><Status>OK</Status></Notify>"),
            ManscdpError::Missing {
                cmd_type: "Keepalive",
                field: "DeviceID"
            }
        );
        let long_id = KEEPALIVE.replace("34020000001180000001", &"3".repeat(100_000));
        let e = error(&long_id);
        assert!(
            matches!(
                e,
                ManscdpError::BadDeviceId {
                    cmd_type: "Keepalive",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().len() < 200, "{e}");
        for sn in ["abc", "-1", "4294967296", ""] {
            // A catalog answer's SN ties its parts together: it must be read. A
            // notification's is optional: an odd one is left out, the alarm kept.
            let bad = NVR_CATALOG.replace("<SN>17430</SN>", &format!("<SN>{sn}</SN>"));
            assert_eq!(error(&bad), ManscdpError::BadSn(sn.into()), "{sn}");
            let odd = ALARM.replace("<SN>7</SN>", &format!("<SN>{sn}</SN>"));
            assert!(
                matches!(
                    parse(odd.as_bytes(), chrono_tz::Asia::Shanghai),
                    Ok(Body::Alarm { sn: None, .. })
                ),
                "{sn}"
            );
        }
        assert_eq!(
            error(&NVR_CATALOG.replace("<SN>17430</SN>", "")),
            ManscdpError::Missing {
                cmd_type: "Catalog",
                field: "SN"
            }
        );
        assert_eq!(
            error(&NVR_CATALOG.replace("<SumNum>3</SumNum>", "<SumNum>three</SumNum>")),
            ManscdpError::BadSumNum("three".into())
        );
    }

    #[test]
    fn a_catalog_of_ten_thousand_items_is_read_in_one_pass_and_more_than_the_bound_is_refused() {
        let item = |n: usize| {
            format!(
                "<Item><DeviceID>340200000013200{n:05}</DeviceID><Name>校门口 {n}</Name>\
                 <Manufacturer>Hikvision</Manufacturer><Model>DS-2CD</Model>\
                 <ParentID>34020000001180000001</ParentID><Status>ON</Status></Item>"
            )
        };
        let list = |items: String, n: usize| {
            format!(
                "<?xml version=\"1.0\" encoding=\"GB2312\"?><Response><CmdType>Catalog</CmdType>\
                 <SN>1</SN><DeviceID>34020000001180000001</DeviceID><SumNum>{n}</SumNum>\
                 <DeviceList Num=\"{n}\">{items}</DeviceList></Response>"
            )
        };
        let body = gb2312(&list((0..10_000).map(item).collect(), 10_000));
        let started = std::time::Instant::now();
        let part = catalog_part(&body);
        // Linear in the body: milliseconds, even unoptimised on a busy machine. Rescanning
        // the body for each item would take minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!((part.items.len(), part.skipped), (10_000, 0));
        assert_eq!(part.items[9_999].name.as_deref(), Some("校门口 9999"));

        let too_many = list("<Item/>".repeat(MAX_ITEMS + 1), MAX_ITEMS + 1);
        assert_eq!(
            parse(too_many.as_bytes(), Shanghai),
            Err(ManscdpError::TooManyItems)
        );
        let at_the_bound = list("<Item/>".repeat(MAX_ITEMS), MAX_ITEMS);
        assert_eq!(
            catalog_part(at_the_bound.as_bytes()).skipped as usize,
            MAX_ITEMS
        );
    }

    #[test]
    fn every_truncation_of_a_body_is_refused_or_read_whole() {
        for body in samples() {
            let whole = parse(&body, Shanghai).unwrap();
            let root_end = body.windows(2).rposition(|w| w == b"</").unwrap();
            for end in 0..body.len() {
                let cut = &body[..end];
                match parse(cut, Shanghai) {
                    // Only the line break after the root's end tag may go.
                    Ok(read) => {
                        assert!(end > root_end, "{end}: {read:?}");
                        assert_eq!(read, whole);
                    }
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
            }
        }
    }

    #[test]
    fn mutated_bodies_never_panic_and_keep_the_bounds() {
        let samples = samples();
        let mut rng = rand::rngs::StdRng::seed_from_u64(28181);
        let alphabet =
            b"<>/=\"&;#x0123456789 ItemStatusONFDeviceIDCmdTypeResponseNotify\xd0\xa3\xff";
        for _ in 0..5_000 {
            let mut body = samples[rng.random_range(0..samples.len())].clone();
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..=body.len());
                match rng.random_range(0..4) {
                    0 if at < body.len() => {
                        body[at] = alphabet[rng.random_range(0..alphabet.len())]
                    }
                    1 => body.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                    2 if at < body.len() => {
                        body.remove(at);
                    }
                    _ => {
                        // A piece of the body again somewhere else.
                        let from = rng.random_range(0..body.len());
                        let to = (from + rng.random_range(0..64)).min(body.len());
                        let piece = body[from..to].to_vec();
                        body.splice(at..at, piece);
                    }
                }
            }
            match parse(&body, Shanghai) {
                Ok(Body::Catalog(part)) => {
                    for c in &part.items {
                        for text in [&c.name, &c.manufacturer, &c.model].into_iter().flatten() {
                            assert!(text.chars().count() <= MAX_TEXT_CHARS);
                            assert!(!text.is_empty() && !text.chars().any(char::is_control));
                        }
                    }
                }
                Ok(Body::Other { root, cmd_type, .. }) => {
                    assert!(ROOTS.contains(&root.as_str()));
                    assert!(!cmd_type.is_empty() && cmd_type.chars().count() <= 40);
                }
                Ok(_) => {}
                // At most 40 characters of the device's value, each at most 10 bytes escaped.
                Err(e) => assert!(e.to_string().len() < 600, "{e}"),
            }
        }
    }
}
