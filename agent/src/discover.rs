//! `campuswatch-agent discover`: finds the ONVIF cameras on the campus network with
//! WS-Discovery, so an installer does not have to type their addresses.
//!
//! A `Probe` for `dn:NetworkVideoTransmitter` goes out as SOAP over UDP to the
//! WS-Discovery group 239.255.255.250:3702 (and/or to given addresses); cameras answer
//! each with a `ProbeMatches` that relates to the probe's `MessageID` and names their
//! endpoint reference, device service addresses (XAddrs) and scopes. The probe is sent
//! twice, as SOAP-over-UDP repeats multicast messages (UDP may drop one), and answers
//! are de-duplicated by endpoint reference. Parsing is lenient about prefixes and
//! namespaces, as cameras differ, and never panics on garbage.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use campuswatch_wire::xml::{element, elements, unescape};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The WS-Discovery multicast group and port.
pub const MULTICAST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 3702);
/// The port cameras listen on for probes sent to them directly.
pub const PORT: u16 = 3702;
/// How long answers are collected unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// When the probe is sent the second time.
const REPEAT_AFTER: Duration = Duration::from_millis(250);
/// Longest datagram read; ProbeMatches are a few kilobytes.
const MAX_DATAGRAM: usize = 65_535;

/// What to probe and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// How long answers are collected.
    pub timeout: Duration,
    /// Local IPv4 addresses to send from (one per network); empty = the system's choice.
    pub interfaces: Vec<Ipv4Addr>,
    /// Send the probe to the multicast group.
    pub multicast: bool,
    /// Also send it to these addresses directly (cameras on other subnets).
    pub unicast: Vec<SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            interfaces: Vec::new(),
            multicast: true,
            unicast: Vec::new(),
        }
    }
}

/// A camera that answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Camera {
    /// Its WS-Addressing endpoint reference (`urn:uuid:…`): stable across address changes.
    pub endpoint: String,
    /// Where its answer came from.
    pub from: SocketAddr,
    /// Its device service URLs.
    pub xaddrs: Vec<String>,
    /// What it says it is (`dn:NetworkVideoTransmitter`, `tds:Device`, …).
    pub types: Vec<String>,
    /// Its scopes, as sent.
    pub scopes: Vec<String>,
    /// From its `onvif://www.onvif.org/name/…` scope, percent-decoded.
    pub name: Option<String>,
    /// From its `onvif://www.onvif.org/hardware/…` scope, percent-decoded.
    pub hardware: Option<String>,
}

/// One `ProbeMatch` of an answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProbeMatch {
    pub endpoint: Option<String>,
    pub types: Vec<String>,
    pub scopes: Vec<String>,
    pub xaddrs: Vec<String>,
}

/// Why discovery could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot open a UDP socket on {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the probe could not be sent anywhere: {0}")]
    NothingSent(String),
    #[error("nothing to probe: give --unicast addresses or allow multicast")]
    NoTarget,
}

/// A fresh `uuid:…` message id (random, version 4).
pub fn new_message_id(rng: &mut impl rand::Rng) -> String {
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The WS-Discovery `Probe` for ONVIF video transmitters (SOAP 1.2, WS-Discovery 2005/04
/// as ONVIF specifies).
pub fn probe_message(message_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" \
         xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" \
         xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\" \
         xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\">\
         <s:Header>\
         <a:Action s:mustUnderstand=\"1\">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>\
         <a:MessageID>{}</a:MessageID>\
         <a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>\
         <a:To s:mustUnderstand=\"1\">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>\
         </s:Header>\
         <s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>\
         </s:Envelope>",
        campuswatch_wire::xml::escape(message_id)
    )
}

/// The `RelatesTo` of an answer and its `ProbeMatch`es; anything else (our own probe
/// looped back, a `Hello`, garbage) has none.
pub fn parse_probe_matches(xml: &str) -> (Option<String>, Vec<ProbeMatch>) {
    let relates_to = element(xml, "RelatesTo").map(|s| unescape(s).trim().to_string());
    let list = |m: &str, name: &str| -> Vec<String> {
        element(m, name)
            .map(|s| unescape(s).split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let matches = elements(xml, "ProbeMatch")
        .map(|m| ProbeMatch {
            endpoint: element(m, "EndpointReference")
                .and_then(|e| element(e, "Address"))
                .map(|a| unescape(a).trim().to_string())
                .filter(|a| !a.is_empty()),
            types: list(m, "Types"),
            scopes: list(m, "Scopes"),
            xaddrs: list(m, "XAddrs"),
        })
        .collect();
    (relates_to, matches)
}

/// The percent-decoded value of the first `onvif://www.onvif.org/{kind}/…` scope.
pub fn scope_value(scopes: &[String], kind: &str) -> Option<String> {
    let prefix = format!("onvif://www.onvif.org/{kind}/");
    scopes.iter().find_map(|s| {
        let head = s.get(..prefix.len())?;
        head.eq_ignore_ascii_case(&prefix)
            .then(|| percent_decode(&s[prefix.len()..]))
            .filter(|v| !v.is_empty())
    })
}

/// `%XX` sequences to bytes (read as UTF-8, lossily); a `%` not followed by two hex
/// digits stays as it is.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Answers to one probe: keeps the `ProbeMatch`es that relate to it, once per endpoint.
/// Pure, so it is tested without a network.
#[derive(Debug)]
pub struct Collector {
    message_id: String,
    seen: HashSet<String>,
    cameras: Vec<Camera>,
}

impl Collector {
    pub fn new(message_id: &str) -> Self {
        Self {
            message_id: message_id.to_string(),
            seen: HashSet::new(),
            cameras: Vec::new(),
        }
    }

    /// Takes one datagram; returns how many new cameras it brought.
    pub fn receive(&mut self, datagram: &[u8], from: SocketAddr) -> usize {
        let text = String::from_utf8_lossy(datagram);
        let (relates_to, matches) = parse_probe_matches(&text);
        // An answer to another probe (someone else's discovery on the same network) is
        // not ours; cameras that leave RelatesTo out are taken at their word.
        if relates_to.is_some_and(|r| r != self.message_id) {
            return 0;
        }
        let before = self.cameras.len();
        for m in matches {
            let Some(key) = m.endpoint.clone().or_else(|| m.xaddrs.first().cloned()) else {
                continue;
            };
            if !self.seen.insert(key.clone()) {
                continue;
            }
            self.cameras.push(Camera {
                endpoint: key,
                from,
                name: scope_value(&m.scopes, "name"),
                hardware: scope_value(&m.scopes, "hardware"),
                xaddrs: m.xaddrs,
                types: m.types,
                scopes: m.scopes,
            });
        }
        self.cameras.len() - before
    }

    pub fn cameras(self) -> Vec<Camera> {
        self.cameras
    }
}

/// Sends the probe and collects answers until `options.timeout` has passed.
pub async fn discover(options: &Options) -> Result<Vec<Camera>, DiscoverError> {
    if !options.multicast && options.unicast.is_empty() {
        return Err(DiscoverError::NoTarget);
    }
    let message_id = new_message_id(&mut rand::rng());
    let probe = probe_message(&message_id).into_bytes();
    let deadline = Instant::now() + options.timeout;

    // One socket per local address (the multicast goes out of that network), plus one
    // for IPv6 unicast targets. Unicast targets are probed from the first IPv4 socket.
    let locals: Vec<Option<Ipv4Addr>> = if options.interfaces.is_empty() {
        vec![None]
    } else {
        options.interfaces.iter().copied().map(Some).collect()
    };
    let (v6, v4): (Vec<SocketAddr>, Vec<SocketAddr>) =
        options.unicast.iter().partition(|a| a.is_ipv6());
    let mut plans = Vec::new();
    for (i, local) in locals.into_iter().enumerate() {
        let mut targets = Vec::new();
        if options.multicast {
            targets.push(SocketAddr::V4(MULTICAST));
        }
        if i == 0 {
            targets.extend(&v4);
        }
        if !targets.is_empty() {
            plans.push((udp_socket_v4(local)?, targets));
        }
    }
    if !v6.is_empty() {
        let any: SocketAddr = (IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED), 0).into();
        let socket = UdpSocket::bind(any)
            .await
            .map_err(|source| DiscoverError::Socket { addr: any, source })?;
        plans.push((socket, v6));
    }

    let (tx, mut rx) = mpsc::channel(64);
    let mut tasks = tokio::task::JoinSet::new();
    for (socket, targets) in plans {
        let probe = probe.clone();
        let tx = tx.clone();
        tasks.spawn(async move {
            let mut failures = Vec::new();
            let sent = send_all(&socket, &targets, &probe, &mut failures).await;
            if sent == 0 {
                return failures;
            }
            let repeat = tokio::time::sleep_until((Instant::now() + REPEAT_AFTER).min(deadline));
            tokio::pin!(repeat);
            let mut repeated = false;
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                tokio::select! {
                    got = socket.recv_from(&mut buf) => match got {
                        Ok((n, from)) => {
                            if tx.send((buf[..n].to_vec(), from)).await.is_err() {
                                break;
                            }
                        }
                        // ICMP errors from unicast targets that are not listening.
                        Err(e) => tracing::debug!(error = %e, "WS-Discovery receive error."),
                    },
                    () = &mut repeat, if !repeated => {
                        repeated = true;
                        send_all(&socket, &targets, &probe, &mut Vec::new()).await;
                    }
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            Vec::new()
        });
    }
    drop(tx);

    let mut collector = Collector::new(&message_id);
    while let Some((datagram, from)) = rx.recv().await {
        collector.receive(&datagram, from);
    }
    let mut failures = Vec::new();
    let mut any_sent = false;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(f) if f.is_empty() => any_sent = true,
            Ok(f) => failures.extend(f),
            Err(e) => failures.push(format!("a discovery task failed: {e}")),
        }
    }
    if !any_sent {
        return Err(DiscoverError::NothingSent(failures.join("; ")));
    }
    for f in failures {
        tracing::warn!("{f}");
    }
    Ok(collector.cameras())
}

/// Sends `probe` to every target; returns how many sends succeeded, noting failures.
async fn send_all(
    socket: &UdpSocket,
    targets: &[SocketAddr],
    probe: &[u8],
    failures: &mut Vec<String>,
) -> usize {
    let mut sent = 0;
    for t in targets {
        match socket.send_to(probe, t).await {
            Ok(_) => sent += 1,
            Err(e) => failures.push(format!("cannot send the probe to {t}: {e}")),
        }
    }
    sent
}

/// An IPv4 UDP socket bound to `local` (or any address), sending multicast out of that
/// address's network, to this network segment only.
fn udp_socket_v4(local: Option<Ipv4Addr>) -> Result<UdpSocket, DiscoverError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = SocketAddr::from((local.unwrap_or(Ipv4Addr::UNSPECIFIED), 0));
    let err = |source| DiscoverError::Socket { addr, source };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    if let Some(ip) = local {
        socket.set_multicast_if_v4(&ip).map_err(err)?;
    }
    // WS-Discovery multicast stays on the link (TTL 1), as the specification asks.
    socket.set_multicast_ttl_v4(1).map_err(err)?;
    UdpSocket::from_std(socket.into()).map_err(err)
}

/// A device service URL the agent's ONVIF probe can use: http(s) with a host, IPv4 first
/// (link-local IPv6 addresses need an interface the URL cannot carry).
fn device_url(xaddrs: &[String]) -> Option<String> {
    let usable: Vec<url::Url> = xaddrs
        .iter()
        .filter_map(|x| url::Url::parse(x).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .collect();
    usable
        .iter()
        .find(|u| matches!(u.host(), Some(url::Host::Ipv4(_))))
        .or(usable.first())
        .map(|u| u.to_string())
}

/// A device id from free text: lower-case letters, digits and `-`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(40).collect::<String>()
}

/// A TOML string holding `s`, quoted and escaped as TOML requires.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Text fit for a TOML comment (one line).
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// One `[[devices]]` entry per camera, ready to paste into the agent's configuration;
/// ids are unique among them. A camera with no usable XAddr gets a comment instead.
pub fn toml_entries(cameras: &[Camera]) -> Vec<Option<String>> {
    let mut ids = HashSet::new();
    cameras
        .iter()
        .map(|c| {
            let url = device_url(&c.xaddrs)?;
            let host = url::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            let base = c
                .name
                .as_deref()
                .map(slug)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| slug(&host));
            let base = format!("cam-{base}");
            let mut id = base.clone();
            let mut n = 2;
            while !ids.insert(id.clone()) {
                id = format!("{base}-{n}");
                n += 1;
            }
            let what = match (&c.name, &c.hardware) {
                (Some(n), Some(h)) => format!("{n} ({h})"),
                (Some(n), None) => n.clone(),
                (None, Some(h)) => h.clone(),
                (None, None) => "ONVIF camera".into(),
            };
            Some(format!(
                "[[devices]]\n\
                 # {}, {}\n\
                 id = {}\n\
                 kind = \"camera\"\n\
                 # Fill in the camera's ONVIF user and password.\n\
                 probe = {{ type = \"onvif\", url = {}, username = \"\", password = \"\" }}\n",
                comment_text(&what),
                comment_text(&c.endpoint),
                toml_string(&id),
                toml_string(&url)
            ))
        })
        .collect()
}

/// The installer's view: each camera, then the configuration to paste.
pub fn render_text(cameras: &[Camera], timeout: Duration) -> String {
    let mut out = String::new();
    let waited = humantime::format_duration(timeout);
    if cameras.is_empty() {
        let _ = writeln!(
            out,
            "No ONVIF camera answered within {waited}. Cameras answer on their own network \
             segment: use --interface with the gateway's address on the camera network, or \
             --unicast with a camera's address."
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{} ONVIF camera(s) answered within {waited}:\n",
        cameras.len()
    );
    for c in cameras {
        let _ = writeln!(out, "{}  (answered from {})", c.endpoint, c.from);
        let none = || "-".to_string();
        let _ = writeln!(out, "  name:     {}", c.name.clone().unwrap_or_else(none));
        let _ = writeln!(
            out,
            "  hardware: {}",
            c.hardware.clone().unwrap_or_else(none)
        );
        let _ = writeln!(out, "  XAddrs:   {}", c.xaddrs.join(" "));
        let _ = writeln!(out, "  scopes:   {}", c.scopes.join(" "));
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "# Paste into the agent configuration:\n");
    for (c, entry) in cameras.iter().zip(toml_entries(cameras)) {
        match entry {
            Some(e) => {
                let _ = writeln!(out, "{e}");
            }
            None => {
                let _ = writeln!(
                    out,
                    "# {}: no http(s) XAddr to probe; add its device service URL by hand.\n",
                    comment_text(&c.endpoint)
                );
            }
        }
    }
    out
}

/// The same for scripts: every camera with its fields and its configuration entry.
pub fn render_json(cameras: &[Camera]) -> String {
    let list: Vec<serde_json::Value> = cameras
        .iter()
        .zip(toml_entries(cameras))
        .map(|(c, entry)| {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            v["device_toml"] = entry.into();
            v
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "cameras": list })).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "uuid:1f0e6a64-90b1-4b53-8a58-1e3f5fd1c0a2";

    /// A ProbeMatches the way a common camera writes it: SOAP-ENV/wsa/d prefixes, two
    /// XAddrs, name and hardware scopes percent-encoded.
    fn answer(relates_to: &str, endpoint: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SOAP-ENV:Envelope \
             xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\" \
             xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" \
             xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\" \
             xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\">\
             <SOAP-ENV:Header><wsa:MessageID>uuid:77</wsa:MessageID>\
             <wsa:RelatesTo>{relates_to}</wsa:RelatesTo>\
             <wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>\
             </SOAP-ENV:Header><SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>\
             <wsa:EndpointReference><wsa:Address>{endpoint}</wsa:Address></wsa:EndpointReference>\
             <d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>\
             <d:Scopes>onvif://www.onvif.org/type/video_encoder \
             onvif://www.onvif.org/name/Gate%20North%20%E5%A4%A7%E9%97%A8 \
             onvif://www.onvif.org/hardware/IPC-HFW2431 onvif://www.onvif.org/location/country/china</d:Scopes>\
             <d:XAddrs>http://[fe80::1]/onvif/device_service http://10.0.0.4/onvif/device_service</d:XAddrs>\
             <d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body>\
             </SOAP-ENV:Envelope>"
        )
    }

    fn from() -> SocketAddr {
        "10.0.0.4:3702".parse().unwrap()
    }

    #[test]
    fn the_probe_asks_for_video_transmitters_under_its_message_id() {
        let p = probe_message(ID);
        assert_eq!(element(&p, "MessageID"), Some(ID));
        assert_eq!(element(&p, "Types"), Some("dn:NetworkVideoTransmitter"));
        assert!(p.contains("xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\""));
        assert!(element(&p, "Action").is_some_and(|a| a.ends_with("/discovery/Probe")));
    }

    #[test]
    fn message_ids_are_random_version_4_uuids() {
        let mut rng = rand::rng();
        let (a, b) = (new_message_id(&mut rng), new_message_id(&mut rng));
        assert_ne!(a, b);
        assert_eq!(a.len(), "uuid:".len() + 36);
        assert_eq!(&a[19..20], "4");
    }

    #[test]
    fn a_probe_match_gives_endpoint_addresses_and_decoded_name() {
        let mut c = Collector::new(ID);
        assert_eq!(
            c.receive(answer(ID, "urn:uuid:cam-1").as_bytes(), from()),
            1
        );
        let cams = c.cameras();
        let cam = &cams[0];
        assert_eq!(cam.endpoint, "urn:uuid:cam-1");
        assert_eq!(cam.name.as_deref(), Some("Gate North 大门"));
        assert_eq!(cam.hardware.as_deref(), Some("IPC-HFW2431"));
        assert_eq!(cam.xaddrs.len(), 2);
        assert_eq!(cam.types, ["dn:NetworkVideoTransmitter", "tds:Device"]);
        assert_eq!(cam.scopes.len(), 4);
    }

    #[test]
    fn answers_are_kept_once_per_endpoint_and_only_for_our_probe() {
        let mut c = Collector::new(ID);
        assert_eq!(
            c.receive(answer(ID, "urn:uuid:cam-1").as_bytes(), from()),
            1
        );
        assert_eq!(
            c.receive(answer(ID, "urn:uuid:cam-1").as_bytes(), from()),
            0
        );
        assert_eq!(
            c.receive(
                answer("uuid:someone-else", "urn:uuid:cam-2").as_bytes(),
                from()
            ),
            0
        );
        // Our own probe looped back, and garbage, are nothing.
        assert_eq!(c.receive(probe_message(ID).as_bytes(), from()), 0);
        assert_eq!(c.receive(b"\xff\xfe<<<", from()), 0);
        // A camera that leaves RelatesTo out is taken at its word.
        let no_relates = answer(ID, "urn:uuid:cam-3")
            .replace(&format!("<wsa:RelatesTo>{ID}</wsa:RelatesTo>"), "");
        assert_eq!(c.receive(no_relates.as_bytes(), from()), 1);
        assert_eq!(c.cameras().len(), 2);
    }

    #[test]
    fn default_namespaces_and_entities_are_read() {
        let xml = format!(
            "<Envelope xmlns=\"http://www.w3.org/2003/05/soap-envelope\"><Header>\
             <RelatesTo xmlns=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"> {ID} </RelatesTo></Header>\
             <Body><ProbeMatches xmlns=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\"><ProbeMatch>\
             <EndpointReference><Address>urn:uuid:x</Address></EndpointReference>\
             <XAddrs>http://10.0.0.9/onvif/device_service?a=1&amp;b=2</XAddrs>\
             </ProbeMatch></ProbeMatches></Body></Envelope>"
        );
        let (relates, matches) = parse_probe_matches(&xml);
        assert_eq!(relates.as_deref(), Some(ID));
        assert_eq!(
            matches[0].xaddrs,
            ["http://10.0.0.9/onvif/device_service?a=1&b=2"]
        );
        assert_eq!(matches[0].scopes, Vec::<String>::new());
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E5%A4%A7"), "大");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn garbage_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3702);
        let base = answer(ID, "urn:uuid:cam-1").into_bytes();
        let mut c = Collector::new(ID);
        for i in 0..5_000 {
            let mut bytes = base.clone();
            match i % 3 {
                0 => {
                    for _ in 0..rng.random_range(1..20) {
                        let j = rng.random_range(0..bytes.len());
                        bytes[j] = rng.random();
                    }
                }
                1 => bytes.truncate(rng.random_range(0..bytes.len())),
                _ => {
                    bytes = (0..rng.random_range(0..300))
                        .map(|_| rng.random())
                        .collect();
                }
            }
            c.receive(&bytes, from());
        }
        // Whatever was found renders, and every entry it renders is valid configuration.
        let cams = c.cameras();
        let _ = render_text(&cams, DEFAULT_TIMEOUT);
        let _ = render_json(&cams);
        assert_entries_load(&cams);
    }

    fn assert_entries_load(cams: &[Camera]) {
        let entries: String = toml_entries(cams)
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(
            &mut f,
            format!("campus = \"150102-K-0001\"\nregion = \"150102\"\n{entries}").as_bytes(),
        )
        .unwrap();
        let cfg = crate::AgentConfig::load_from(f.path(), Some(Default::default()))
            .unwrap_or_else(|e| panic!("{e}\n{entries}"));
        assert_eq!(
            cfg.devices.len(),
            toml_entries(cams).iter().flatten().count()
        );
    }

    #[test]
    fn the_toml_entries_load_with_the_agents_config_loader() {
        let mut c = Collector::new(ID);
        c.receive(answer(ID, "urn:uuid:cam-1").as_bytes(), from());
        c.receive(answer(ID, "urn:uuid:cam-2").as_bytes(), from());
        let odd = answer(ID, "urn:uuid:cam-3")
            .replace(
                "Gate%20North%20%E5%A4%A7%E9%97%A8",
                "%22Quoted%5C%0Aline%22",
            )
            .replace("http://10.0.0.4/", "http://10.0.0.5:8080/");
        c.receive(odd.as_bytes(), from());
        let no_name = answer(ID, "urn:uuid:cam-4").replace(
            "onvif://www.onvif.org/name/Gate%20North%20%E5%A4%A7%E9%97%A8",
            "",
        );
        c.receive(no_name.as_bytes(), from());
        let no_http = answer(ID, "urn:uuid:cam-5").replace("http://", "soap.udp://");
        c.receive(no_http.as_bytes(), from());
        let cams = c.cameras();
        assert_eq!(cams.len(), 5);
        let entries = toml_entries(&cams);
        assert!(entries[4].is_none(), "no http(s) XAddr, no entry");
        assert_entries_load(&cams);

        let cfg_ids: Vec<String> = entries
            .iter()
            .flatten()
            .map(|e| {
                e.lines()
                    .find(|l| l.starts_with("id = "))
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            cfg_ids,
            [
                "id = \"cam-gate-north\"",
                "id = \"cam-gate-north-2\"",
                "id = \"cam-quoted-line\"",
                "id = \"cam-10-0-0-4\""
            ]
        );
        // IPv4 XAddr preferred over the link-local IPv6 one.
        assert!(entries[0]
            .as_ref()
            .unwrap()
            .contains("url = \"http://10.0.0.4/onvif/device_service\""));
        let text = render_text(&cams, DEFAULT_TIMEOUT);
        assert!(text.contains("name:     Gate North 大门"));
        assert!(text.contains("no http(s) XAddr"));
        let json: serde_json::Value = serde_json::from_str(&render_json(&cams)).unwrap();
        assert_eq!(json["cameras"][0]["name"], "Gate North 大门");
        assert!(json["cameras"][4]["device_toml"].is_null());
    }
}
