//! The SIP OPTIONS probe against a small SIP responder (UDP and TCP) that answers as a
//! user agent does: it echoes Via, From, To, Call-ID and CSeq, first a provisional
//! `100 Trying`, then the final response.

use std::time::Duration;

use campuswatch_agent::probe::sip::SipProbe;
use campuswatch_agent::probe::{probe_once, ProbeStatus};
use campuswatch_agent::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

fn answers(request: &str, final_status: &str) -> Vec<String> {
    let echoed: String = request
        .split("\r\n")
        .filter(|l| {
            let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
            matches!(name.as_str(), "via" | "from" | "to" | "call-id" | "cseq")
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    ["100 Trying", final_status]
        .iter()
        .map(|s| format!("SIP/2.0 {s}\r\n{echoed}Content-Length: 0\r\n\r\n"))
        .collect()
}

async fn udp_responder(final_status: &'static str) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(req.starts_with("OPTIONS sip:"), "{req}");
            for a in answers(&req, final_status) {
                let _ = socket.send_to(a.as_bytes(), from).await;
            }
        }
    });
    port
}

async fn tcp_responder(final_status: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf[n..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(k) => n += k,
                }
            }
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            // Both answers in one write: the probe must split them.
            let all: String = answers(&req, final_status).concat();
            let _ = c.write_all(all.as_bytes()).await;
        }
    });
    port
}

#[tokio::test]
async fn an_intercom_answering_options_is_up_with_its_status_over_udp_and_tcp() {
    for (transport, port) in [
        (Transport::Udp, udp_responder("200 OK").await),
        (Transport::Tcp, tcp_responder("200 OK").await),
    ] {
        let p = SipProbe::new(format!("127.0.0.1:{port}"), transport);
        let r = probe_once(&p, Duration::from_secs(2)).await;
        assert_eq!(r.status, ProbeStatus::Ok, "{transport:?}: {r:?}");
        assert_eq!(r.measurements["sip_status"], 200.0);
        assert!(r.measurements.contains_key("latency_ms"));
    }
}

#[tokio::test]
async fn any_final_response_proves_the_link_even_an_error() {
    let port = udp_responder("401 Unauthorized").await;
    let r = probe_once(
        &SipProbe::new(format!("127.0.0.1:{port}"), Transport::Udp),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
    assert_eq!(r.measurements["sip_status"], 401.0);
}

#[tokio::test]
async fn silence_and_refusal_are_down_with_the_reason() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let r = probe_once(
        &SipProbe::new(format!("127.0.0.1:{port}"), Transport::Udp),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert!(r.cause.unwrap().contains("timed out"));

    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let r = probe_once(
        &SipProbe::new(format!("127.0.0.1:{port}"), Transport::Tcp),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert!(r.cause.unwrap().contains("refused"));
    drop(silent);
}
