//! The ONVIF probe against a camera's device service played by an HTTP server with
//! recorded-style SOAP answers (no ONVIF camera simulator is available). The server
//! checks the WS-Security password digest itself, so a wrong password is refused the
//! way a camera refuses it.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use campuswatch_agent::probe::onvif::element;
use campuswatch_agent::probe::{self, ProbeStatus};
use campuswatch_agent::ProbeConfig;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PASSWORD: &str = "s3cret";

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SOAP-ENV:Envelope \
         xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\" \
         xmlns:tt=\"http://www.onvif.org/ver10/schema\" \
         xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\" \
         xmlns:ter=\"http://www.onvif.org/ver10/error\">\n<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

fn date_and_time(drift: chrono::TimeDelta) -> String {
    let t = chrono::Utc::now() + drift;
    use chrono::{Datelike, Timelike};
    envelope(&format!(
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>\
         <tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>\
         <tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>\
         <tt:UTCDateTime><tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time>\
         <tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date></tt:UTCDateTime>\
         </tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>",
        t.hour(), t.minute(), t.second(), t.year(), t.month(), t.day()
    ))
}

const NOT_AUTHORIZED: &str = "<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value>\
    <SOAP-ENV:Subcode><SOAP-ENV:Value>ter:NotAuthorized</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code>\
    <SOAP-ENV:Reason><SOAP-ENV:Text xml:lang=\"en\">Sender not Authorized</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>";

/// Whether the request's UsernameToken digest was made with PASSWORD.
fn authorized(request: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Some(digest), Some(nonce), Some(created)) = (
        element(request, "Password"),
        element(request, "Nonce"),
        element(request, "Created"),
    ) else {
        return false;
    };
    let Ok(nonce) = b64.decode(nonce) else {
        return false;
    };
    let mut h = Sha1::new();
    h.update(&nonce);
    h.update(created.as_bytes());
    h.update(PASSWORD.as_bytes());
    b64.encode(h.finalize()) == digest
}

async fn camera(drift: chrono::TimeDelta) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                let body = loop {
                    let n = c.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if data.len() >= end + 4 + len {
                            break text[end + 4..].to_string();
                        }
                    }
                };
                let (status, answer) = if body.contains("GetSystemDateAndTime") {
                    (200, date_and_time(drift))
                } else if !authorized(&body) {
                    (400, envelope(NOT_AUTHORIZED))
                } else {
                    (200, envelope("<tds:GetDeviceInformationResponse><tds:Manufacturer>HIKVISION</tds:Manufacturer>\
                        <tds:Model>DS-2CD2143G2-I</tds:Model><tds:FirmwareVersion>V5.7.3 build 220112</tds:FirmwareVersion>\
                        <tds:SerialNumber>DS-2CD2143G2-I20220101AAWRJ12345678</tds:SerialNumber>\
                        <tds:HardwareId>88</tds:HardwareId></tds:GetDeviceInformationResponse>"))
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/soap+xml; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    answer.len()
                );
                let _ = c.write_all(head.as_bytes()).await;
                let _ = c.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

async fn onvif(addr: SocketAddr, password: &str) -> probe::ProbeResult {
    let cfg = ProbeConfig::Onvif {
        url: format!("http://{addr}/onvif/device_service"),
        username: "admin".into(),
        password: password.into(),
        max_clock_drift: Duration::from_secs(60),
    };
    let timeout = Duration::from_secs(3);
    let p = probe::build(&cfg, timeout, &probe::rtsp::StreamSlots::new(1)).unwrap();
    probe::probe_once(p.as_ref(), timeout).await
}

#[tokio::test]
async fn a_camera_with_the_right_password_and_clock_is_up() {
    let r = onvif(camera(chrono::TimeDelta::zero()).await, PASSWORD).await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
    assert!(r.measurements["clock_drift_s"].abs() <= 2.0);
    // The identity goes into the birth inventory.
    let info = r.info.expect("device information");
    assert_eq!(info.manufacturer.as_deref(), Some("HIKVISION"));
    assert_eq!(info.model.as_deref(), Some("DS-2CD2143G2-I"));
    assert_eq!(info.firmware.as_deref(), Some("V5.7.3 build 220112"));
    assert_eq!(
        info.serial.as_deref(),
        Some("DS-2CD2143G2-I20220101AAWRJ12345678")
    );
    assert_eq!(info.hardware.as_deref(), Some("88"));
}

#[tokio::test]
async fn a_wrong_password_is_down_and_says_so() {
    let r = onvif(camera(chrono::TimeDelta::zero()).await, "guess").await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert!(r
        .cause
        .unwrap()
        .contains("check the camera's ONVIF user and password"));
}

#[tokio::test]
async fn a_camera_whose_clock_drifts_is_degraded_with_the_drift() {
    // The token is stamped with the camera's time, so the log-in still works.
    let r = onvif(camera(chrono::TimeDelta::minutes(-7)).await, PASSWORD).await;
    assert_eq!(r.status, ProbeStatus::Degraded, "{r:?}");
    let drift = r.measurements["clock_drift_s"];
    assert!((-422.0..=-418.0).contains(&drift), "{drift}");
    assert!(r.cause.unwrap().contains("clock"));
}
