//! The DC-09 supervision listener against a simulated panel speaking real frames over
//! TCP and UDP: the panel's captured supervision frame is acknowledged correctly, and
//! the panel is judged down once it stops polling for longer than its window.
//!
//! Encrypted panels are simulated twice: with frames built by pysiaalarm's own
//! encryption (`tests/peers/dc09_panel.py`, which also checks our answers), and with our
//! codec for the cases that peer cannot produce.
//!
//! Listeners are shared per address for the life of the process, but each test has its
//! own runtime, so every test uses its own loopback address (127.0.0.11 to .18).

use std::time::{Duration, Instant};

use campuswatch_agent::dc09::{crc16_arc, AesKey, Frame};
use campuswatch_agent::probe::dc09_listen::{listener_for, Dc09ListenProbe};
use campuswatch_agent::probe::{probe_once, Probe, ProbeStatus};
use campuswatch_agent::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

mod peer;
use peer::sia;

/// A supervision frame captured from a real panel (account XTRM189, not hex).
const CAPTURED: &[u8] = b"\n31FD0018\"NULL\"0000R0L0#XTRM189[]\r";

async fn tcp_exchange(addr: std::net::SocketAddr, frame: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(frame).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while !answer.ends_with(b"\r") {
        let n = c.read(&mut buf).await.unwrap();
        assert!(n > 0, "the listener closed without answering");
        answer.extend_from_slice(&buf[..n]);
    }
    answer
}

fn assert_ack_of_captured(answer: &[u8]) {
    // Header: CRC-16/ARC and length of the body, as the panel will check them.
    assert_eq!(answer[0], b'\n');
    assert_eq!(*answer.last().unwrap(), b'\r');
    let header = std::str::from_utf8(&answer[1..9]).unwrap();
    let body = &answer[9..answer.len() - 1];
    assert_eq!(
        header,
        format!("{:04X}0{:03X}", crc16_arc(body), body.len())
    );
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.starts_with("\"ACK\"0000R0L0#XTRM189[]_"), "{text}");
    let ack = Frame::decode(answer).unwrap();
    assert_eq!(
        (ack.id.as_str(), ack.seq, ack.account.as_str()),
        ("ACK", 0, "XTRM189")
    );
    let at = ack.timestamp.expect("the ACK carries the receiver's time");
    let skew = (chrono::Utc::now().naive_utc() - at).num_seconds().abs();
    assert!(skew <= 2, "{at}");
}

#[tokio::test]
async fn a_panels_captured_supervision_frame_is_acknowledged_over_tcp_and_udp() {
    let tcp = listener_for("127.0.0.11:0", Transport::Tcp).await.unwrap();
    assert_ack_of_captured(&tcp_exchange(tcp.local_addr(), CAPTURED).await);

    let udp = listener_for("127.0.0.11:0", Transport::Udp).await.unwrap();
    let panel = UdpSocket::bind("127.0.0.11:0").await.unwrap();
    panel.send_to(CAPTURED, udp.local_addr()).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), panel.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert_ack_of_captured(&buf[..n]);
}

#[tokio::test]
async fn a_frame_the_listener_cannot_read_gets_duh() {
    let tcp = listener_for("127.0.0.12:0", Transport::Tcp).await.unwrap();
    let mut bad = CAPTURED.to_vec();
    bad[3] = b'0'; // wrong CRC
    let answer = Frame::decode(&tcp_exchange(tcp.local_addr(), &bad).await).unwrap();
    assert_eq!(answer.id, "DUH");
}

#[tokio::test]
async fn a_panel_is_up_while_it_polls_and_down_once_it_stops() {
    // Probes share the listener on the same address: bind it once, probe that address.
    let l = listener_for("127.0.0.13:0", Transport::Tcp).await.unwrap();
    let listen = l.local_addr().to_string();
    let l2 = listener_for(&listen, Transport::Tcp).await;
    // The port is already held by `l` under the key "127.0.0.13:0"; the probe names the
    // real address, so it gets a listener of its own only if it can bind, which it can't.
    assert!(l2.is_err());

    let probe = Dc09ListenProbe::new(
        "127.0.0.13:0".into(),
        Transport::Tcp,
        "PANEL7".into(),
        Duration::from_millis(400),
    );
    let r = probe_once(&probe, Duration::from_secs(1)).await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert!(r.cause.unwrap().contains("yet"));
    assert_eq!(probe.kind(), "dc09_listen");

    let poll = Frame::null(1, None, "0", "PANEL7").encode();
    tcp_exchange(l.local_addr(), &poll).await;
    let r = probe_once(&probe, Duration::from_secs(1)).await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");

    // The panel falls silent: down once its window has passed, with the reason.
    let started = Instant::now();
    let cause = loop {
        let r = probe_once(&probe, Duration::from_secs(1)).await;
        if r.status == ProbeStatus::Fail {
            break r.cause.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still up after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        cause.contains("no supervision frame from panel PANEL7"),
        "{cause}"
    );
}

#[tokio::test]
async fn alarm_events_in_sia_dcs_and_contact_id_are_acknowledged_and_count_as_polls() {
    let l = listener_for("127.0.0.18:0", Transport::Tcp).await.unwrap();
    let probe = Dc09ListenProbe::new(
        "127.0.0.18:0".into(),
        Transport::Tcp,
        "EVT1".into(),
        Duration::from_secs(60),
    );
    assert_eq!(
        probe_once(&probe, Duration::from_secs(1)).await.status,
        ProbeStatus::Fail
    );
    // A burglary alarm in SIA DC-03 and a panic alarm in Ademco Contact ID, each with
    // the panel's time, as panels send events between their supervision polls.
    let at = chrono::Utc::now().naive_utc();
    for (seq, id, data) in [
        (21, "SIA-DCS", "#EVT1|NBA001"),
        (22, "ADM-CID", "#EVT1|1120 01 015"),
    ] {
        let event = Frame {
            seq,
            id: id.into(),
            data: data.into(),
            timestamp: Some(at),
            ..Frame::null(0, Some("1"), "0", "EVT1")
        };
        let answer = Frame::decode(&tcp_exchange(l.local_addr(), &event.encode()).await).unwrap();
        assert_eq!(
            (answer.id.as_str(), answer.seq, answer.account.as_str()),
            ("ACK", seq, "EVT1"),
            "{id}"
        );
        assert_eq!(answer.receiver.as_deref(), Some("1"));
    }
    let r = probe_once(&probe, Duration::from_secs(1)).await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
}

/// The probe of a panel on `listen` with a one-minute window.
fn panel_probe(
    listen: &str,
    transport: Transport,
    account: &str,
    key: Option<AesKey>,
) -> Dc09ListenProbe {
    let probe = Dc09ListenProbe::new(
        listen.into(),
        transport,
        account.into(),
        Duration::from_secs(60),
    );
    match key {
        Some(k) => probe.with_key(k),
        None => probe,
    }
}

/// The pysiaalarm panel against `addr`, off the async runtime's threads.
async fn run_panel(
    py: &str,
    addr: std::net::SocketAddr,
    account: &str,
    text_key: &str,
    skew_s: i64,
) -> String {
    let (py, account, text_key) = (py.to_string(), account.to_string(), text_key.to_string());
    tokio::task::spawn_blocking(move || sia::panel(&py, addr, &account, &text_key, skew_s))
        .await
        .expect("the panel thread finishes")
}

fn key(text_key: &str) -> AesKey {
    AesKey::from_hex(&sia::key_hex(text_key)).unwrap()
}

/// An encrypted supervision frame of `account`, stamped `skew_s` off the gateway's clock.
fn sealed_poll(account: &str, key: &AesKey, skew_s: i64) -> Vec<u8> {
    let at = chrono::Utc::now().naive_utc() + chrono::TimeDelta::seconds(skew_s);
    Frame {
        timestamp: Some(at),
        ..Frame::null(3, Some("0"), "0", account)
    }
    .encrypt(key, &mut rand::rng())
    .unwrap()
    .encode()
}

#[tokio::test]
async fn pysiaalarms_encrypted_frames_are_acknowledged_encrypted_and_count_as_polls() {
    let Some(py) = sia::python() else { return };
    let l = listener_for("127.0.0.14:0", Transport::Tcp).await.unwrap();
    let addr = l.local_addr();
    for (account, text_key) in [
        ("4321", "0123456789ABCDEF"),
        ("4322", "0123456789ABCDEF0123456789ABCDEF"),
    ] {
        let probe = panel_probe("127.0.0.14:0", Transport::Tcp, account, Some(key(text_key)));
        let r = probe_once(&probe, Duration::from_secs(1)).await;
        assert_eq!(r.status, ProbeStatus::Fail, "not polled yet");

        let answer = run_panel(&py, addr, account, text_key, 0).await;
        assert!(
            answer.starts_with("ANSWER *ACK opened "),
            "pysiaalarm read our answer as: {answer}"
        );
        let r = probe_once(&probe, Duration::from_secs(1)).await;
        assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
    }
}

#[tokio::test]
async fn pysiaalarms_frames_under_another_key_or_clock_get_nak_and_are_not_polls() {
    let Some(py) = sia::python() else { return };
    let l = listener_for("127.0.0.15:0", Transport::Tcp).await.unwrap();
    let addr = l.local_addr();
    let probe = panel_probe(
        "127.0.0.15:0",
        Transport::Tcp,
        "4321",
        Some(key("0123456789ABCDEF")),
    );
    probe_once(&probe, Duration::from_secs(1)).await;

    let answer = run_panel(&py, addr, "4321", "FEDCBA9876543210", 0).await;
    assert_eq!(answer, "ANSWER NAK");
    let r = probe_once(&probe, Duration::from_secs(1)).await;
    assert_eq!(r.status, ProbeStatus::Fail);
    let cause = r.cause.unwrap();
    assert!(
        cause.contains("does not decrypt with the configured AES key"),
        "{cause}"
    );

    // The right key but a panel clock two minutes fast.
    let answer = run_panel(&py, addr, "4321", "0123456789ABCDEF", 120).await;
    assert_eq!(answer, "ANSWER NAK");
    let r = probe_once(&probe, Duration::from_secs(1)).await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert!(r.cause.unwrap().contains("check the panel's clock"));
}

#[tokio::test]
async fn an_encrypted_panel_over_udp_gets_an_ack_that_opens_with_its_key() {
    let l = listener_for("127.0.0.16:0", Transport::Udp).await.unwrap();
    let k = key("0123456789ABCDEF01234567");
    let probe = panel_probe("127.0.0.16:0", Transport::Udp, "PANEL9", Some(k.clone()));
    probe_once(&probe, Duration::from_secs(1)).await;

    let panel = UdpSocket::bind("127.0.0.16:0").await.unwrap();
    panel
        .send_to(&sealed_poll("PANEL9", &k, -30), l.local_addr())
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), panel.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let ack = Frame::decode(&buf[..n]).unwrap();
    assert!(ack.encrypted, "{:?}", String::from_utf8_lossy(&buf[..n]));
    let ack = ack.decrypt(&k).unwrap();
    assert_eq!(
        (ack.id.as_str(), ack.seq, ack.account.as_str()),
        ("ACK", 3, "PANEL9")
    );
    let skew = (chrono::Utc::now().naive_utc() - ack.timestamp.unwrap())
        .num_seconds()
        .abs();
    assert!(skew <= 2);
    assert_eq!(
        probe_once(&probe, Duration::from_secs(1)).await.status,
        ProbeStatus::Ok
    );
}

#[tokio::test]
async fn frames_that_do_not_match_the_panels_key_setting_get_duh_or_nak_and_are_not_polls() {
    let l = listener_for("127.0.0.17:0", Transport::Tcp).await.unwrap();
    let k = key("0123456789ABCDEF");
    let keyed = panel_probe("127.0.0.17:0", Transport::Tcp, "KEYED", Some(k.clone()));
    let clear = panel_probe("127.0.0.17:0", Transport::Tcp, "CLEAR", None);
    probe_once(&keyed, Duration::from_secs(1)).await;
    probe_once(&clear, Duration::from_secs(1)).await;
    let addr = l.local_addr();
    let answer_to =
        |frame: Vec<u8>| async move { Frame::decode(&tcp_exchange(addr, &frame).await).unwrap() };

    // A clear frame from a panel that must encrypt, an encrypted one from a panel with
    // no key: not understood.
    let a = answer_to(Frame::null(1, None, "0", "KEYED").encode()).await;
    assert_eq!((a.id.as_str(), a.account.as_str()), ("DUH", "KEYED"));
    let a = answer_to(sealed_poll("CLEAR", &k, 0)).await;
    assert_eq!((a.id.as_str(), a.account.as_str()), ("DUH", "CLEAR"));
    // The right key but stamped 50 s behind the gateway's clock: refused with our time.
    let a = answer_to(sealed_poll("KEYED", &k, -50)).await;
    assert_eq!(a.id, "NAK");
    assert!(
        a.timestamp.is_some(),
        "a NAK tells the panel the receiver's time"
    );

    for p in [&keyed, &clear] {
        let r = probe_once(p, Duration::from_secs(1)).await;
        assert_eq!(r.status, ProbeStatus::Fail, "{r:?}");
    }
    assert!(probe_once(&clear, Duration::from_secs(1))
        .await
        .cause
        .unwrap()
        .contains("no AES key is configured"));

    // Within the window it counts, and the refusal is no longer the news.
    let a = answer_to(sealed_poll("KEYED", &k, 15)).await;
    assert!(a.encrypted);
    let r = probe_once(&keyed, Duration::from_secs(1)).await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
}
