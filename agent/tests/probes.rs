//! Probes and the field check against real peers on port 0: TCP listeners and a small
//! HTTP server written here (a fake is needed for "accepts and never answers").

use std::net::SocketAddr;
use std::time::Duration;

use campuswatch_agent::check::check;
use campuswatch_agent::probe::{self, ProbeStatus};
use campuswatch_agent::{AgentConfig, DeviceConfig, ProbeConfig};
use campuswatch_protocol::{CampusId, DeviceId, DeviceKind, RegionCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An HTTP server answering every request with `status` and `body`, or never answering.
async fn http_server(status: Option<u16>, body: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let Some(status) = status else {
                    // Hold the connection open and say nothing.
                    std::future::pending::<()>().await;
                    return;
                };
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

fn http(url: String, expect_status: Vec<u16>, body_contains: Option<&str>) -> ProbeConfig {
    ProbeConfig::Http {
        url,
        expect_status,
        body_contains: body_contains.map(str::to_string),
        insecure_tls: false,
    }
}

async fn run_http(cfg: ProbeConfig, timeout: Duration) -> probe::ProbeResult {
    let p = probe::build(&cfg, timeout, &probe::rtsp::StreamSlots::new(1)).unwrap();
    probe::probe_once(&*p, timeout).await
}

#[tokio::test]
async fn an_http_device_answering_200_is_up_with_status_and_latency() {
    let addr = http_server(Some(200), "status: OK").await;
    let r = run_http(
        http(format!("http://{addr}/status"), vec![], Some("OK")),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
    assert_eq!(r.measurements.get("http_status"), Some(&200.0));
    assert!(r.measurements.contains_key("latency_ms"));
}

#[tokio::test]
async fn a_redirect_counts_as_up_by_default_but_not_when_200_is_expected() {
    let addr = http_server(Some(302), "").await;
    let url = format!("http://{addr}/");
    let r = run_http(http(url.clone(), vec![], None), Duration::from_secs(2)).await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
    let r = run_http(http(url, vec![200], None), Duration::from_secs(2)).await;
    assert_eq!(r.status, ProbeStatus::Fail, "{r:?}");
    assert_eq!(r.cause.as_deref(), Some("HTTP status 302 (expected 200)"));
}

#[tokio::test]
async fn a_wrong_status_fails_and_names_the_status() {
    let addr = http_server(Some(503), "busy").await;
    let r = run_http(
        http(format!("http://{addr}/"), vec![], None),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert_eq!(
        r.cause.as_deref(),
        Some("HTTP status 503 (expected 200-399)")
    );
    assert_eq!(r.measurements.get("http_status"), Some(&503.0));
}

#[tokio::test]
async fn a_body_without_the_expected_text_fails() {
    let addr = http_server(Some(200), "camera offline").await;
    let r = run_http(
        http(format!("http://{addr}/"), vec![200], Some("streaming")),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert_eq!(
        r.cause.as_deref(),
        Some("response body does not contain \"streaming\"")
    );
}

#[tokio::test]
async fn a_device_that_accepts_and_never_answers_times_out() {
    let addr = http_server(None, "").await;
    let r = run_http(
        http(format!("http://{addr}/"), vec![], None),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert_eq!(r.cause.as_deref(), Some("timed out after 300ms"));
}

#[tokio::test]
async fn a_refused_http_connection_says_connection_refused() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let r = run_http(
        http(format!("http://{addr}/"), vec![], None),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(r.status, ProbeStatus::Fail);
    let cause = r.cause.unwrap();
    assert!(cause.starts_with("connection refused"), "{cause}");
}

#[tokio::test]
async fn the_check_lists_every_device_and_fails_only_for_required_ones() {
    let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_addr = gone.local_addr().unwrap();
    drop(gone);
    let cam = http_server(Some(500), "").await;

    let mut config = AgentConfig::new(
        CampusId::parse("150102-K-0001").unwrap(),
        RegionCode::parse("150102").unwrap(),
    );
    let tcp = |id: &str, kind, addr: SocketAddr| {
        DeviceConfig::new(
            DeviceId::parse(id).unwrap(),
            kind,
            ProbeConfig::Tcp {
                target: addr.to_string(),
            },
        )
    };
    config
        .devices
        .push(tcp("alarm-1", DeviceKind::Alarm, up.local_addr().unwrap()));
    config.devices.push(DeviceConfig::new(
        DeviceId::parse("cam-1").unwrap(),
        DeviceKind::Camera,
        http(format!("http://{cam}/"), vec![], None),
    ));
    let report = check(&config).await;
    assert_eq!(report.rows.len(), 2);
    assert_eq!(report.rows[0].result, ProbeStatus::Ok);
    assert_eq!(report.rows[1].result, ProbeStatus::Fail);
    // Only a camera is down, and cameras are not required by default.
    assert!(!report.required_down());
    let table = report.render_table();
    assert!(
        table.contains("cam-1") && table.contains("HTTP status 500"),
        "{table}"
    );

    config
        .devices
        .push(tcp("alarm-2", DeviceKind::Alarm, gone_addr));
    let report = check(&config).await;
    assert!(report.required_down());
    let table = report.render_table();
    let line = table.lines().find(|l| l.starts_with("alarm-2")).unwrap();
    assert!(
        line.contains("FAIL") && line.contains("connection refused"),
        "{table}"
    );
    assert!(table.starts_with("DEVICE"), "{table}");
}
