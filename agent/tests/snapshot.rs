//! The snapshot probe against a real HTTP server serving a real JPEG, an HTML error
//! page, a truncated image and a 401.

use std::net::SocketAddr;
use std::time::Duration;

use campuswatch_agent::probe::{self, ProbeStatus};
use campuswatch_agent::ProbeConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const JPEG: &[u8] = include_bytes!("snapshot-320x240.jpg");

async fn camera(status: u16, body: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = c.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes()).await;
                let _ = c.write_all(body).await;
            });
        }
    });
    addr
}

async fn snapshot(addr: SocketAddr) -> probe::ProbeResult {
    let cfg = ProbeConfig::Snapshot {
        url: format!("http://{addr}/snap.jpg"),
        insecure_tls: false,
    };
    let timeout = Duration::from_secs(3);
    let p = probe::build(&cfg, timeout, &probe::rtsp::StreamSlots::new(1)).unwrap();
    probe::probe_once(p.as_ref(), timeout).await
}

#[tokio::test]
async fn a_camera_serving_a_jpeg_is_up_with_the_frame_size() {
    let r = snapshot(camera(200, JPEG).await).await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
    assert_eq!(r.measurements["width"], 320.0);
    assert_eq!(r.measurements["height"], 240.0);
    assert_eq!(r.measurements["bytes"], JPEG.len() as f64);
}

#[tokio::test]
async fn a_camera_answering_without_a_usable_image_is_down_with_the_reason() {
    let html = snapshot(camera(200, b"<html>no video signal</html>").await).await;
    assert_eq!(html.status, ProbeStatus::Fail);
    assert!(html.cause.unwrap().contains("not a usable JPEG"));

    static HALF: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let half: &'static [u8] = HALF.get_or_init(|| JPEG[..JPEG.len() / 2].to_vec());
    let truncated = snapshot(camera(200, half).await).await;
    assert!(truncated.cause.unwrap().contains("truncated"));

    let auth = snapshot(camera(401, b"").await).await;
    assert_eq!(auth.status, ProbeStatus::Fail);
    assert!(auth.cause.unwrap().contains("password"));
}
