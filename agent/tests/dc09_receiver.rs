//! The DC-09 link test against a reference alarm receiver (pysiaalarm, started from
//! `tests/peers/dc09_receiver.py`; see `common/sia.rs` for how it is found), in clear and
//! AES-encrypted.

use std::time::Duration;

use campuswatch_agent::dc09::{AesKey, Frame};
use campuswatch_agent::probe::dc09::Dc09Probe;
use campuswatch_agent::probe::{probe_once, Probe, ProbeStatus};
use campuswatch_agent::Transport;

mod peer;
use peer::sia::{self, python};
use peer::Peer as Receiver;

fn start(python: &str, transport: &str, account: &str) -> Receiver {
    start_keyed(python, transport, account, None)
}

/// A receiver for `account`; with `text_key`, the account is encrypted.
fn start_keyed(python: &str, transport: &str, account: &str, text_key: Option<&str>) -> Receiver {
    let mut args = vec![
        sia::script("dc09_receiver.py"),
        transport.into(),
        account.into(),
    ];
    if let Some(k) = text_key {
        args.extend(["--key".into(), k.into()]);
    }
    Receiver::start(python, &args)
}

fn probe(port: u16, transport: Transport, account: &str) -> Dc09Probe {
    Dc09Probe::new(
        format!("127.0.0.1:{port}"),
        transport,
        Frame::null(0, Some("0"), "0", account),
    )
}

#[tokio::test]
async fn the_reference_receiver_acknowledges_our_supervision_frames() {
    let Some(py) = python() else { return };
    let rx = start(&py, "tcp", "1234");
    let p = probe(rx.port, Transport::Tcp, "1234");
    for _ in 0..3 {
        let r = probe_once(&p, Duration::from_secs(5)).await;
        assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
        assert!(r.measurements.contains_key("latency_ms"));
    }
    assert_eq!(p.kind(), "dc09");
}

/// Keys as pysiaalarm takes them, one per AES key size.
const TEXT_KEYS: [&str; 3] = [
    "0123456789ABCDEF",
    "0123456789ABCDEF01234567",
    "0123456789ABCDEF0123456789ABCDEF",
];

#[tokio::test]
async fn the_reference_receiver_acknowledges_our_encrypted_frames_with_every_key_size() {
    let Some(py) = python() else { return };
    for text_key in TEXT_KEYS {
        let rx = start_keyed(&py, "tcp", "1234", Some(text_key));
        let key = AesKey::from_hex(&sia::key_hex(text_key)).unwrap();
        let p = probe(rx.port, Transport::Tcp, "1234").with_key(key);
        for _ in 0..2 {
            let r = probe_once(&p, Duration::from_secs(5)).await;
            assert_eq!(
                r.status,
                ProbeStatus::Ok,
                "{} bits: {r:?}",
                text_key.len() * 8
            );
        }
    }
}

#[tokio::test]
async fn a_key_the_receiver_does_not_share_is_down_with_the_key_named() {
    let Some(py) = python() else { return };
    let rx = start_keyed(&py, "tcp", "1234", Some(TEXT_KEYS[0]));
    let wrong = AesKey::from_hex(&sia::key_hex("FEDCBA9876543210")).unwrap();
    let r = probe_once(
        &probe(rx.port, Transport::Tcp, "1234").with_key(wrong.clone()),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Fail, "{r:?}");
    assert_eq!(
        r.cause.as_deref(),
        Some("DC-09 NAK: the receiver rejected the encrypted frame — check the AES key and the gateway's clock")
    );

    // A receiver with no key for the account refuses encrypted frames the same way.
    let plain = start(&py, "tcp", "1234");
    let r = probe_once(
        &probe(plain.port, Transport::Tcp, "1234").with_key(wrong),
        Duration::from_secs(5),
    )
    .await;
    assert!(r.cause.unwrap().contains("check the AES key"));
}

#[tokio::test]
async fn an_account_the_receiver_does_not_know_is_down() {
    let Some(py) = python() else { return };
    let rx = start(&py, "tcp", "1234");
    let p = probe(rx.port, Transport::Tcp, "9876");
    let r = probe_once(&p, Duration::from_secs(2)).await;
    // pysiaalarm answers an unknown account with a NAK or not at all: down either way.
    assert_eq!(r.status, ProbeStatus::Fail, "{r:?}");
}

#[tokio::test]
async fn a_stopped_receiver_is_down_and_refused() {
    let Some(py) = python() else { return };
    let rx = start(&py, "tcp", "1234");
    let port = rx.port;
    drop(rx);
    let r = probe_once(&probe(port, Transport::Tcp, "1234"), Duration::from_secs(2)).await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert!(r.cause.unwrap().contains("refused"));
}

/// pysiaalarm 3.2.2's UDP server fails on this Python (an assertion on the transport
/// type), so UDP is checked against a minimal receiver that answers with a real ACK
/// frame built by our codec, and one that stays silent.
#[tokio::test]
async fn over_udp_an_ack_is_up_and_silence_is_down() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Ok(f) = Frame::decode(&buf[..n]) {
                let ack = f.ack(chrono::Utc::now().naive_utc());
                let _ = socket.send_to(&ack.encode(), from).await;
            }
        }
    });
    let r = probe_once(
        &probe(port, Transport::Udp, "XTRM189"),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");

    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let r = probe_once(
        &probe(port, Transport::Udp, "XTRM189"),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert!(r.cause.unwrap().contains("timed out"));
    drop(silent);
}
