use super::*;
use crate::gb28181::sip::parse_datagram;
use crate::gb28181::ChannelStatus;
use md5::{Digest as _, Md5};

const PLATFORM: &str = "34020000002000000001";
const CAMERA: &str = "34020000001320000001";
const NVR: &str = "34020000001180000001";
const PASSWORD: &str = "12345678";

fn code(s: &str) -> GbCode {
    GbCode::parse(s).unwrap()
}

fn settings() -> ListenerSettings {
    let mut s = ListenerSettings::new(
        "127.0.0.1:5060".parse().unwrap(),
        code(PLATFORM),
        chrono_tz::Asia::Shanghai,
    );
    s.password = Some(PASSWORD.into());
    s.device_passwords.insert(code(NVR), "nvr-secret".into());
    s.catalog_interval = Duration::from_secs(600);
    s.catalog_wait = Duration::from_secs(10);
    s
}

fn core_with(
    settings: ListenerSettings,
    restored: Vec<Registration>,
    now: Instant,
) -> (Core, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let core = Core::new(
        Arc::new(settings),
        counters.clone(),
        "127.0.0.1:5060".parse().unwrap(),
        restored,
        now,
    );
    (core, counters)
}

fn udp(addr: &str) -> Peer {
    Peer {
        addr: addr.parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
    }
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A REGISTER as GB/T 28181-2016 §9.1 shows one; with credentials when `auth` gives the
/// nonce and password.
fn register(device: &str, cseq: u32, expires: u32, auth: Option<(&str, &str)>) -> Message {
    let uri = format!("sip:{PLATFORM}@3402000000");
    let mut text = format!(
        "REGISTER {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK{cseq}\r\n\
         From: <sip:{device}@3402000000>;tag=1\r\n\
         To: <sip:{device}@3402000000>\r\n\
         Call-ID: reg-{device}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{device}@192.168.1.64:5060>\r\n\
         Max-Forwards: 70\r\n\
         Expires: {expires}\r\n"
    );
    if let Some((nonce, password)) = auth {
        let ha1 = md5_hex(&format!("{device}:3402000000:{password}"));
        let ha2 = md5_hex(&format!("REGISTER:{uri}"));
        let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        text.push_str(&format!(
            "Authorization: Digest username=\"{device}\", realm=\"3402000000\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5\r\n"
        ));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    parse_datagram(text.as_bytes()).unwrap()
}

fn message(device: &str, cseq: u32, body: &str) -> Message {
    let text = format!(
        "MESSAGE sip:{PLATFORM}@3402000000 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bKm{cseq}\r\n\
         From: <sip:{device}@3402000000>;tag=2\r\n\
         To: <sip:{PLATFORM}@3402000000>\r\n\
         Call-ID: msg-{device}-{cseq}\r\n\
         CSeq: {cseq} MESSAGE\r\n\
         Content-Type: Application/MANSCDP+xml\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    parse_datagram(text.as_bytes()).unwrap()
}

fn keepalive(device: &str, sn: u32) -> String {
    format!(
        "<?xml version=\"1.0\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{device}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
    )
}

/// The one answer of `out`, read back.
fn answer_of(out: &Out) -> Message {
    assert_eq!(out.sends.len(), 1, "{:?}", out.sends);
    parse_datagram(&out.sends[0].1).unwrap()
}

fn code_of(m: &Message) -> u16 {
    match m.start {
        StartLine::Response { code, .. } => code,
        _ => panic!("not a response: {m:?}"),
    }
}

/// The nonce of a 401's challenge.
fn nonce_of(m: &Message) -> String {
    let h = m.header("WWW-Authenticate").unwrap();
    let at = h.find("nonce=\"").unwrap() + 7;
    h[at..at + h[at..].find('"').unwrap()].to_owned()
}

/// Registers `device` from `peer` with `password`; the 200 OK.
fn registered(
    core: &mut Core,
    device: &str,
    password: &str,
    peer: Peer,
    now: Instant,
) -> (Message, Out) {
    let out = core.handle(register(device, 1, 3600, None), peer, now);
    let challenge = answer_of(&out);
    assert_eq!(code_of(&challenge), 401);
    let nonce = nonce_of(&challenge);
    let out = core.handle(
        register(device, 2, 3600, Some((&nonce, password))),
        peer,
        now,
    );
    (answer_of(&out), out)
}

#[test]
fn a_device_registers_with_its_digest_and_gets_the_time_and_its_expiry() {
    let now = Instant::now();
    let (mut core, counters) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    let out = core.handle(register(CAMERA, 1, 3600, None), peer, now);
    let challenge = answer_of(&out);
    assert_eq!(code_of(&challenge), 401);
    let www = challenge.header("WWW-Authenticate").unwrap();
    assert!(
        www.starts_with("Digest realm=\"3402000000\", nonce=\""),
        "{www}"
    );
    assert!(out.inputs.is_empty());
    let nonce = nonce_of(&challenge);
    let out = core.handle(
        register(CAMERA, 2, 3600, Some((&nonce, PASSWORD))),
        peer,
        now,
    );
    let ok = answer_of(&out);
    assert_eq!(code_of(&ok), 200);
    assert_eq!(ok.header("Expires"), Some("3600"));
    let date = ok.header("Date").unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S%.3f").is_ok()
            && date.len() == 23,
        "{date}"
    );
    assert_eq!(ok.header("CSeq"), Some("2 REGISTER"));
    assert!(ok.header("To").unwrap().contains(";tag="));
    assert_eq!(
        out.inputs,
        [GbInput::Registered {
            device: code(CAMERA),
            address: peer.addr,
            transport: Transport::Udp,
            expires_secs: 3600,
            keepalive_secs: 60,
        }]
    );
    assert_eq!(counters.message_count("register"), 1);
    assert_eq!(core.registered(), 1);
}

#[test]
fn a_wrong_password_is_forbidden_and_counted_and_registers_nothing() {
    let now = Instant::now();
    let (mut core, counters) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    let (answer, out) = registered(&mut core, CAMERA, "wrong", peer, now);
    assert_eq!(code_of(&answer), 403);
    assert!(out.inputs.is_empty());
    assert_eq!(counters.refused_count("auth"), 1);
    // A device's own password wins over the shared one.
    let (answer, _) = registered(&mut core, NVR, PASSWORD, peer, now);
    assert_eq!(code_of(&answer), 403);
    // (From another port: the same requests again would be answered as retransmissions.)
    let (answer, _) = registered(&mut core, NVR, "nvr-secret", udp("192.168.1.64:5061"), now);
    assert_eq!(code_of(&answer), 200);
    assert_eq!(counters.refused_count("auth"), 2);
}

#[test]
fn a_device_without_a_password_is_forbidden_before_any_challenge() {
    let now = Instant::now();
    let mut s = settings();
    s.password = None;
    let (mut core, counters) = core_with(s, vec![], now);
    let out = core.handle(register(CAMERA, 1, 3600, None), udp("10.0.0.9:5060"), now);
    assert_eq!(code_of(&answer_of(&out)), 403);
    assert_eq!(counters.refused_count("unknown_device"), 1);
    // A From without a 20-digit code is a bad request.
    let out = core.handle(
        register("camera-1", 1, 3600, None),
        udp("10.0.0.9:5060"),
        now,
    );
    assert_eq!(code_of(&answer_of(&out)), 400);
    assert_eq!(counters.refused_count("malformed"), 1);
}

#[test]
fn a_used_or_expired_nonce_is_challenged_again_as_stale() {
    let now = Instant::now();
    let (mut core, _) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    let out = core.handle(register(CAMERA, 1, 3600, None), peer, now);
    let nonce = nonce_of(&answer_of(&out));
    let ok = core.handle(
        register(CAMERA, 2, 3600, Some((&nonce, PASSWORD))),
        peer,
        now,
    );
    assert_eq!(code_of(&answer_of(&ok)), 200);
    // The same credentials again (a replay, from anywhere): a new challenge.
    let replay = core.handle(
        register(CAMERA, 3, 3600, Some((&nonce, PASSWORD))),
        udp("10.6.6.6:5060"),
        now,
    );
    let again = answer_of(&replay);
    assert_eq!(code_of(&again), 401);
    assert!(again
        .header("WWW-Authenticate")
        .unwrap()
        .ends_with("stale=true"));
    assert!(replay.inputs.is_empty());
    let out = core.handle(register(CAMERA, 4, 3600, None), peer, now);
    let nonce = nonce_of(&answer_of(&out));
    let late = now + super::super::nonces::NONCE_LIFETIME + Duration::from_secs(1);
    let out = core.handle(
        register(CAMERA, 5, 3600, Some((&nonce, PASSWORD))),
        peer,
        late,
    );
    assert_eq!(code_of(&answer_of(&out)), 401);
}

#[test]
fn expires_zero_unregisters_and_expires_is_kept_within_bounds() {
    let now = Instant::now();
    let (mut core, counters) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    let out = core.handle(register(CAMERA, 1, 30, None), peer, now);
    let nonce = nonce_of(&answer_of(&out));
    let out = core.handle(register(CAMERA, 2, 30, Some((&nonce, PASSWORD))), peer, now);
    let brief = answer_of(&out);
    assert_eq!(code_of(&brief), 423);
    assert_eq!(brief.header("Min-Expires"), Some("60"));
    assert_eq!(counters.refused_count("interval_too_brief"), 1);
    let out = core.handle(register(CAMERA, 3, 999_999, None), peer, now);
    let nonce = nonce_of(&answer_of(&out));
    let out = core.handle(
        register(CAMERA, 4, 999_999, Some((&nonce, PASSWORD))),
        peer,
        now,
    );
    assert_eq!(answer_of(&out).header("Expires"), Some("86400"));
    assert!(matches!(
        out.inputs[..],
        [GbInput::Registered {
            expires_secs: 86_400,
            ..
        }]
    ));
    let out = core.handle(register(CAMERA, 5, 0, None), peer, now);
    let nonce = nonce_of(&answer_of(&out));
    let out = core.handle(register(CAMERA, 6, 0, Some((&nonce, PASSWORD))), peer, now);
    assert_eq!(code_of(&answer_of(&out)), 200);
    assert_eq!(
        out.inputs,
        [GbInput::Unregistered {
            device: code(CAMERA)
        }]
    );
    assert_eq!(core.registered(), 0);
    assert_eq!(counters.message_count("unregister"), 1);
}

#[test]
fn messages_count_only_from_where_the_device_registered() {
    let now = Instant::now();
    let (mut core, counters) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    let out = core.handle(message(CAMERA, 1, &keepalive(CAMERA, 1)), peer, now);
    assert_eq!(code_of(&answer_of(&out)), 404);
    assert!(out.inputs.is_empty());
    assert_eq!(counters.refused_count("not_registered"), 1);
    registered(&mut core, CAMERA, PASSWORD, peer, now);
    let out = core.handle(
        message(CAMERA, 2, &keepalive(CAMERA, 2)),
        udp("192.168.1.99:5060"),
        now,
    );
    assert_eq!(code_of(&answer_of(&out)), 403);
    assert!(out.inputs.is_empty());
    assert_eq!(counters.refused_count("wrong_address"), 1);
    let mut plain = message(CAMERA, 3, "hello");
    plain.headers.retain(|(n, _)| n != "Content-Type");
    let out = core.handle(plain.with("Content-Type", "text/plain"), peer, now);
    assert_eq!(code_of(&answer_of(&out)), 415);
    assert_eq!(counters.refused_count("media_type"), 1);
    let out = core.handle(message(CAMERA, 4, "<Notify>"), peer, now);
    assert_eq!(code_of(&answer_of(&out)), 400);
    assert_eq!(counters.refused_count("malformed"), 1);
    // After its registration ran out, the device is not registered.
    let out = core.tick(now + Duration::from_secs(3601));
    assert!(out.inputs.is_empty());
    let out = core.handle(
        message(CAMERA, 5, &keepalive(CAMERA, 5)),
        peer,
        now + Duration::from_secs(3601),
    );
    assert_eq!(code_of(&answer_of(&out)), 404);
}

#[test]
fn a_keepalive_of_a_registered_device_is_answered_and_handed_on_once() {
    let now = Instant::now();
    let (mut core, counters) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    registered(&mut core, CAMERA, PASSWORD, peer, now);
    let out = core.handle(message(CAMERA, 7, &keepalive(CAMERA, 7)), peer, now);
    assert_eq!(code_of(&answer_of(&out)), 200);
    assert_eq!(
        out.inputs,
        [GbInput::Keepalive {
            device: code(CAMERA),
            ok: true
        }]
    );
    // A retransmission (same transaction) gets the same answer, and is not a second
    // keepalive.
    let again = core.handle(message(CAMERA, 7, &keepalive(CAMERA, 7)), peer, now);
    assert_eq!(again.sends, out.sends);
    assert!(again.inputs.is_empty());
    assert_eq!(counters.message_count("keepalive"), 1);
}

#[test]
fn a_restored_registration_is_registered_from_the_start() {
    let now = Instant::now();
    let restored = Registration {
        device: code(CAMERA),
        address: "192.168.1.64:5060".parse().unwrap(),
        transport: Transport::Udp,
        // Its end passed while the server was down: a keepalive window is granted.
        expires_at: chrono::Utc::now() - chrono::Duration::seconds(10),
    };
    let (mut core, _) = core_with(settings(), vec![restored], now);
    let out = core.handle(
        message(CAMERA, 1, &keepalive(CAMERA, 1)),
        udp("192.168.1.64:5060"),
        now,
    );
    assert_eq!(code_of(&answer_of(&out)), 200);
    assert_eq!(out.inputs.len(), 1);
    // Its catalog is queried soon after the start.
    let out = core.tick(now + Duration::from_secs(1));
    assert_eq!(out.sends.len(), 1);
    assert_eq!(out.sends[0].0.addr, "192.168.1.64:5060".parse().unwrap());
    let out = core.tick(now + Duration::from_secs(181));
    assert!(out.sends.is_empty());
    let out = core.handle(
        message(CAMERA, 2, &keepalive(CAMERA, 2)),
        udp("192.168.1.64:5060"),
        now + Duration::from_secs(181),
    );
    assert_eq!(
        code_of(&answer_of(&out)),
        404,
        "three keepalive intervals have passed"
    );
}

#[test]
fn the_catalog_is_queried_after_registration_and_then_every_interval() {
    let now = Instant::now();
    let (mut core, _) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    registered(&mut core, CAMERA, PASSWORD, peer, now);
    assert!(
        core.tick(now).sends.is_empty(),
        "not before the device read its 200 OK"
    );
    let out = core.tick(now + Duration::from_secs(1));
    assert_eq!(out.sends.len(), 1);
    let (to, bytes) = &out.sends[0];
    assert_eq!(*to, peer);
    let query = parse_datagram(bytes).unwrap();
    assert_eq!(query.method(), Some("MESSAGE"));
    assert!(
        matches!(&query.start, StartLine::Request { uri, .. } if uri == &format!("sip:{CAMERA}@192.168.1.64:5060"))
    );
    assert!(query
        .header("Via")
        .unwrap()
        .starts_with("SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK"));
    assert!(query
        .header("From")
        .unwrap()
        .starts_with(&format!("<sip:{PLATFORM}@3402000000>;tag=")));
    assert_eq!(
        query.header("To"),
        Some(format!("<sip:{CAMERA}@3402000000>").as_str())
    );
    assert_eq!(query.header("CSeq"), Some("1 MESSAGE"));
    assert_eq!(query.header("Max-Forwards"), Some("70"));
    assert_eq!(
        query.header("Content-Type"),
        Some("Application/MANSCDP+xml")
    );
    let body = String::from_utf8(query.body.clone()).unwrap();
    assert!(
        body.contains("<CmdType>Catalog</CmdType>")
            && body.contains("<SN>1</SN>")
            && body.contains(CAMERA),
        "{body}"
    );
    assert!(core.tick(now + Duration::from_secs(599)).sends.is_empty());
    let out = core.tick(now + Duration::from_secs(602));
    let query = parse_datagram(&out.sends[0].1).unwrap();
    assert!(String::from_utf8_lossy(&query.body).contains("<SN>2</SN>"));
    assert_eq!(query.header("CSeq"), Some("2 MESSAGE"));
    // The device's 200 OK to the query is taken without an answer.
    let ok = query.response(200, "OK", "dev");
    assert!(core
        .handle(parse_datagram(&ok.to_bytes()).unwrap(), peer, now)
        .sends
        .is_empty());
}

fn catalog_part(device: &str, sn: u32, sum: usize, items: &[(String, &str, &str)]) -> String {
    let list: String = items
        .iter()
        .map(|(id, name, status)| {
            format!("<Item>\r\n<DeviceID>{id}</DeviceID>\r\n<Name>{name}</Name>\r\n<Manufacturer>Hikvision</Manufacturer>\r\n<ParentID>{device}</ParentID>\r\n<Status>{status}</Status>\r\n</Item>\r\n")
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{device}</DeviceID>\r\n<SumNum>{sum}</SumNum>\r\n<DeviceList Num=\"{}\">\r\n{list}</DeviceList>\r\n</Response>\r\n",
        items.len()
    )
}

#[test]
fn a_catalog_in_parts_is_handed_on_complete_or_after_the_wait() {
    let now = Instant::now();
    let (mut core, counters) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    registered(&mut core, NVR, "nvr-secret", peer, now);
    let ch = |n: u32| format!("3402000000132000{n:04}");
    let first = catalog_part(NVR, 1, 3, &[(ch(1), "Gate", "ON"), (ch(2), "Yard", "OFF")]);
    let out = core.handle(message(NVR, 10, &first), peer, now);
    assert_eq!(code_of(&answer_of(&out)), 200);
    assert!(out.inputs.is_empty());
    let second = catalog_part(NVR, 1, 3, &[(ch(3), "Hall", "ON")]);
    let out = core.handle(message(NVR, 11, &second), peer, now);
    let [GbInput::Catalog {
        device,
        channels,
        complete: true,
    }] = &out.inputs[..]
    else {
        panic!("{:?}", out.inputs)
    };
    assert_eq!(*device, code(NVR));
    let seen: Vec<_> = channels
        .iter()
        .map(|c| (c.id.to_string(), c.name.clone().unwrap(), c.status))
        .collect();
    assert_eq!(
        seen,
        [
            (ch(1), "Gate".to_string(), ChannelStatus::On),
            (ch(2), "Yard".to_string(), ChannelStatus::Off),
            (ch(3), "Hall".to_string(), ChannelStatus::On)
        ]
    );
    // A part of another answer whose rest never comes.
    let lone = catalog_part(NVR, 2, 5, &[(ch(1), "Gate", "OFF")]);
    core.handle(message(NVR, 12, &lone), peer, now);
    assert!(core.tick(now + Duration::from_secs(9)).inputs.is_empty());
    let out = core.tick(now + Duration::from_secs(10));
    assert!(
        matches!(&out.inputs[..], [GbInput::Catalog { complete: false, channels, .. }] if channels.len() == 1)
    );
    assert_eq!(counters.message_count("catalog"), 3);
}

#[test]
fn an_alarm_of_a_registered_device_is_handed_on() {
    let now = Instant::now();
    let (mut core, counters) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    registered(&mut core, NVR, "nvr-secret", peer, now);
    let alarm = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>5</SN>\r\n<DeviceID>34020000001340000001</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>2</AlarmMethod>\r\n<AlarmTime>2026-12-06T08:00:00</AlarmTime>\r\n</Notify>\r\n";
    let out = core.handle(message(NVR, 20, alarm), peer, now);
    assert_eq!(code_of(&answer_of(&out)), 200);
    let [GbInput::Alarm { device, alarm }] = &out.inputs[..] else {
        panic!("{:?}", out.inputs)
    };
    assert_eq!(
        (*device, alarm.source),
        (code(NVR), code("34020000001340000001"))
    );
    assert_eq!(alarm.priority, Some(1));
    assert_eq!(counters.message_count("alarm"), 1);
}

#[test]
fn a_register_flood_from_one_address_is_dropped_and_others_still_register() {
    let now = Instant::now();
    let mut s = settings();
    s.register_rate = (5, 10);
    let (mut core, counters) = core_with(s, vec![], now);
    let flooder = udp("10.6.6.6:5060");
    let answered = (0..100)
        .filter(|i| {
            !core
                .handle(register(CAMERA, *i, 3600, None), flooder, now)
                .sends
                .is_empty()
        })
        .count();
    assert_eq!(answered, 10);
    assert_eq!(counters.refused_count("flood"), 90);
    let (ok, _) = registered(&mut core, NVR, "nvr-secret", udp("192.168.1.64:5060"), now);
    assert_eq!(code_of(&ok), 200);
}

#[test]
fn other_methods_are_answered_as_sip_asks() {
    let now = Instant::now();
    let (mut core, counters) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    let req = |method: &str| {
        parse_datagram(
            format!("{method} sip:{PLATFORM}@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.64:5060;branch=z9hG4bK{method}\r\nFrom: <sip:{CAMERA}@3402000000>;tag=1\r\nTo: <sip:{PLATFORM}@3402000000>\r\nCall-ID: {method}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        )
        .unwrap()
    };
    let options = answer_of(&core.handle(req("OPTIONS"), peer, now));
    assert_eq!(
        (code_of(&options), options.header("Allow")),
        (200, Some(ALLOW))
    );
    assert_eq!(
        code_of(&answer_of(&core.handle(req("INVITE"), peer, now))),
        405
    );
    assert_eq!(
        code_of(&answer_of(&core.handle(req("BYE"), peer, now))),
        405
    );
    assert_eq!(
        code_of(&answer_of(&core.handle(req("FROB"), peer, now))),
        501
    );
    assert!(core.handle(req("ACK"), peer, now).sends.is_empty());
    assert_eq!(counters.refused_count("method"), 3);
}

#[test]
fn device_codes_are_read_from_from_or_to_uris() {
    assert_eq!(
        uri_user("<sip:34020000001320000001@3402000000>;tag=1"),
        Some("34020000001320000001")
    );
    assert_eq!(
        uri_user("\"Cam\" <sip:34020000001320000001@1.2.3.4:5060>"),
        Some("34020000001320000001")
    );
    assert_eq!(
        uri_user("sip:34020000001320000001;tag=1"),
        Some("34020000001320000001")
    );
    assert_eq!(uri_user("<tel:123>"), None);
    assert_eq!(uri_user("sip:"), None);
    assert_eq!(uri_user("<sip:"), None);
}

#[test]
fn a_catalog_of_ten_thousand_channels_in_five_hundred_messages_is_handed_on_whole() {
    let now = Instant::now();
    let (mut core, counters) = core_with(settings(), vec![], now);
    let peer = udp("192.168.1.64:5060");
    registered(&mut core, NVR, "nvr-secret", peer, now);
    let mut inputs = Vec::new();
    for part in 0..500u32 {
        let items: Vec<_> = (0..20)
            .map(|i| {
                let n = part * 20 + i;
                let status = if n % 3 == 0 { "OFF" } else { "ON" };
                (format!("340200000013200{n:05}"), "Camera", status)
            })
            .collect();
        let body = catalog_part(NVR, 9, 10_000, &items);
        let out = core.handle(message(NVR, 100 + part, &body), peer, now);
        assert_eq!(code_of(&answer_of(&out)), 200);
        inputs.extend(out.inputs);
    }
    let [GbInput::Catalog {
        channels,
        complete: true,
        ..
    }] = &inputs[..]
    else {
        panic!("{} inputs", inputs.len())
    };
    assert_eq!(channels.len(), 10_000);
    let off = channels
        .iter()
        .filter(|c| c.status == ChannelStatus::Off)
        .count();
    assert_eq!(off, 3_334);
    assert_eq!(counters.message_count("catalog"), 500);
}
