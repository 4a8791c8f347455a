//! The DC-09 supervision listener against a simulated panel speaking real frames over
//! TCP and UDP: the panel's captured supervision frame is acknowledged correctly, and
//! the panel is judged down once it stops polling for longer than its window.
//!
//! Listeners are shared per address for the life of the process, but each test has its
//! own runtime, so every test uses its own loopback address.

use std::time::{Duration, Instant};

use campuswatch_agent::dc09::{crc16_arc, Frame};
use campuswatch_agent::probe::dc09_listen::{listener_for, Dc09ListenProbe};
use campuswatch_agent::probe::{probe_once, Probe, ProbeStatus};
use campuswatch_agent::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

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
