//! The installer's field check: probe every device once, concurrently, connect to the
//! broker once with the gateway's own login, and show a table of what is reachable and
//! why not. `campuswatch-agent check` exits with status 1 when a required device is down
//! or the broker refuses the gateway, so it can gate an installation script.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use campuswatch_protocol::{DeviceId, DeviceInfo, DeviceKind, Measurements};

use crate::config::AgentConfig;
use crate::probe::{self, ProbeResult, ProbeStatus};

/// One device's line in the check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub device: DeviceId,
    pub kind: DeviceKind,
    pub target: String,
    pub required: bool,
    pub result: ProbeStatus,
    pub latency: Duration,
    /// Why it failed or is degraded; empty when fine.
    pub reason: String,
    /// What the probe measured (latency, HTTP or SIP status, frame size, …).
    pub measurements: Measurements,
    /// What the device said it is (ONVIF model and firmware).
    pub info: Option<DeviceInfo>,
}

/// The broker's line in the check: can this gateway connect and log in?
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerCheck {
    /// `mqtt.url`, any password masked.
    pub url: String,
    /// How the gateway logs in (`TLS, user 150102-K-0001`, `TLS, client certificate`).
    pub login: String,
    pub result: ProbeStatus,
    /// Until the broker's CONNACK, or the failure.
    pub latency: Duration,
    /// Why the broker refused the gateway or could not be reached; empty when it accepted.
    pub reason: String,
}

/// The outcome of a check, devices in configuration order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckReport {
    pub rows: Vec<CheckRow>,
    /// The broker connection, unless the check was told to leave it out.
    pub broker: Option<BrokerCheck>,
}

impl CheckReport {
    /// Whether a required device failed its probe.
    pub fn required_down(&self) -> bool {
        self.rows
            .iter()
            .any(|r| r.required && r.result == ProbeStatus::Fail)
    }

    /// Whether the broker refused the gateway or could not be reached.
    pub fn broker_failed(&self) -> bool {
        self.broker
            .as_ref()
            .is_some_and(|b| b.result == ProbeStatus::Fail)
    }

    /// Whether the installation is not ready: a required device is down or the gateway
    /// cannot report (the check's exit status 1).
    pub fn failed(&self) -> bool {
        self.required_down() || self.broker_failed()
    }

    /// The same as JSON, for scripts and installation tools (`check --json`).
    pub fn render_json(&self) -> String {
        let devices: Vec<_> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "device": r.device,
                    "kind": r.kind,
                    "target": r.target,
                    "required": r.required,
                    "result": r.result.as_str(),
                    "latency_ms": probe::millis(r.latency),
                    "reason": (!r.reason.is_empty()).then_some(&r.reason),
                    "measurements": r.measurements,
                    "info": r.info,
                })
            })
            .collect();
        let broker = self.broker.as_ref().map(|b| {
            serde_json::json!({
                "url": b.url,
                "login": b.login,
                "result": b.result.as_str(),
                "latency_ms": probe::millis(b.latency),
                "reason": (!b.reason.is_empty()).then_some(&b.reason),
            })
        });
        let report = serde_json::json!({
            "required_down": self.required_down(),
            "broker_failed": self.broker_failed(),
            "broker": broker,
            "devices": devices,
        });
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    }

    /// A plain-text table with a summary line.
    pub fn render_table(&self) -> String {
        let header = [
            "DEVICE", "KIND", "TARGET", "RESULT", "LATENCY", "MEASURED", "REASON",
        ];
        let broker = self.broker.iter().map(|b| {
            [
                "broker".to_string(),
                "mqtt".to_string(),
                b.url.clone(),
                b.result.as_str().to_uppercase(),
                format!("{:.1} ms", b.latency.as_secs_f64() * 1000.0),
                b.login.clone(),
                b.reason.clone(),
            ]
        });
        let cells: Vec<[String; 7]> = broker
            .chain(self.rows.iter().map(|r| {
                let kind = if r.required {
                    format!("{} (required)", r.kind)
                } else {
                    r.kind.to_string()
                };
                [
                    r.device.to_string(),
                    kind,
                    r.target.clone(),
                    r.result.as_str().to_uppercase(),
                    format!("{:.1} ms", r.latency.as_secs_f64() * 1000.0),
                    describe(&r.measurements, r.info.as_ref()),
                    r.reason.clone(),
                ]
            }))
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |row: &[&str]| {
            let mut l = String::new();
            for (i, (c, w)) in row.iter().zip(widths).enumerate() {
                if i + 1 == row.len() {
                    l.push_str(c);
                } else {
                    let _ = write!(l, "{c:<w$}  ");
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&header);
        for row in &cells {
            line(&row.each_ref().map(String::as_str));
        }
        let failed = self
            .rows
            .iter()
            .filter(|r| r.result == ProbeStatus::Fail)
            .count();
        let required_failed = self
            .rows
            .iter()
            .filter(|r| r.required && r.result == ProbeStatus::Fail)
            .count();
        let _ = writeln!(
            out,
            "\n{} devices: {} reachable, {} failed ({} of them required).",
            self.rows.len(),
            self.rows.len() - failed,
            failed,
            required_failed
        );
        match &self.broker {
            Some(b) if b.result == ProbeStatus::Fail => {
                let _ = writeln!(out, "The gateway cannot report: {}", b.reason);
            }
            Some(b) => {
                let _ = writeln!(out, "The broker accepted the gateway ({}).", b.login);
            }
            None => {}
        }
        out
    }
}

/// A probe's figures in a few words for the table (`15.0 fps, 812 kbit/s, 640x360`),
/// then the device's model and firmware if it told them; the latency has its own column,
/// and `--json` has every figure.
pub fn describe(m: &Measurements, info: Option<&DeviceInfo>) -> String {
    let mut parts = Vec::new();
    let mut rest = Vec::new();
    if let (Some(w), Some(h)) = (m.get("width"), m.get("height")) {
        parts.push(format!("{w}x{h}"));
    }
    for (key, value) in m {
        match key.as_str() {
            "latency_ms" | "width" | "height" | "frames" | "keyframes" => {}
            "frame_rate" => parts.insert(0, format!("{value:.1} fps")),
            "bitrate_kbps" => parts.push(format!("{value:.0} kbit/s")),
            "first_keyframe_ms" => parts.push(format!("first keyframe after {value:.0} ms")),
            "http_status" => parts.push(format!("HTTP {value}")),
            "sip_status" => parts.push(format!("SIP {value}")),
            "clock_drift_s" => parts.push(format!("clock off by {value} s")),
            "since_last_poll_s" => parts.push(format!("last poll {value} s ago")),
            "bytes" => parts.push(format!("{value} bytes")),
            _ => rest.push(format!("{key} {value}")),
        }
    }
    parts.extend(rest);
    if let Some(i) = info {
        let name: Vec<&str> = [&i.manufacturer, &i.model]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !name.is_empty() {
            parts.push(name.join(" "));
        }
        if let Some(f) = &i.firmware {
            parts.push(format!("firmware {f}"));
        }
    }
    parts.join(", ")
}

/// How long the broker check waits for the CONNACK at most.
const BROKER_CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects to the broker once as this gateway would (same URL, credentials, CA and
/// client certificate) and disconnects. It uses the client id `cw-{campus}-check`, a
/// clean session and no Last Will, so a running agent's session is left alone, and it
/// publishes nothing.
pub async fn check_broker(config: &AgentConfig) -> BrokerCheck {
    let login = config.mqtt.login();
    let started = Instant::now();
    let outcome = connect_once(config, &login).await;
    BrokerCheck {
        url: login.redacted_url(),
        login: login.describe(),
        result: if outcome.is_ok() {
            ProbeStatus::Ok
        } else {
            ProbeStatus::Fail
        },
        latency: started.elapsed(),
        reason: outcome.err().unwrap_or_default(),
    }
}

async fn connect_once(
    config: &AgentConfig,
    login: &campuswatch_mqtt::BrokerLogin,
) -> Result<(), String> {
    use rumqttc::{Event, Outgoing, Packet};
    let mut options = login
        .options(format!("cw-{}-check", config.campus))
        .map_err(|e| e.to_string())?;
    options
        .set_keep_alive(config.mqtt.keepalive.max(Duration::from_secs(1)))
        .set_clean_session(true);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 4);
    let connected = tokio::time::timeout(BROKER_CHECK_TIMEOUT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(login.diagnose(&e).reason),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "no answer from the broker within {}s: check mqtt.url, the network and firewalls",
            BROKER_CHECK_TIMEOUT.as_secs()
        ))
    });
    if connected.is_ok() && client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(event) = eventloop.poll().await {
                if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
    connected
}

/// Probes every device of `config` once, concurrently.
pub async fn check(config: &AgentConfig) -> CheckReport {
    let mut tasks = tokio::task::JoinSet::new();
    // The gateway's limit on stream checks holds here too, but every camera gets its turn.
    let slots = probe::rtsp::StreamSlots::waiting(config.max_stream_checks);
    for (i, d) in config.devices.iter().enumerate() {
        let timeout = d.timeout();
        let built = probe::build(&d.probe, timeout, &slots);
        tasks.spawn(async move {
            let result = match built {
                Ok(p) => probe::probe_once(&*p, timeout).await,
                Err(e) => ProbeResult::fail(Duration::ZERO, e.to_string()),
            };
            (i, result)
        });
    }
    let mut results: Vec<Option<ProbeResult>> = vec![None; config.devices.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, r)) = joined {
            results[i] = Some(r);
        }
    }
    let rows = config
        .devices
        .iter()
        .zip(results)
        .map(|(d, r)| {
            let r = r.unwrap_or_else(|| ProbeResult::fail(Duration::ZERO, "the probe crashed"));
            CheckRow {
                device: d.id.clone(),
                kind: d.kind,
                target: d.probe.target(),
                required: d.required(),
                result: r.status,
                latency: r.latency,
                reason: r.cause.unwrap_or_default(),
                measurements: r.measurements,
                info: r.info,
            }
        })
        .collect();
    CheckReport { rows, broker: None }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn the_json_report_carries_every_row_and_the_verdict() {
        let row = |id: &str, required, result| CheckRow {
            device: DeviceId::parse(id).unwrap(),
            kind: DeviceKind::Alarm,
            target: "10.0.0.2:5000".into(),
            required,
            result,
            latency: Duration::from_micros(1500),
            reason: if result == ProbeStatus::Ok {
                String::new()
            } else {
                "DC-09 NAK: x".into()
            },
            measurements: [("latency_ms".to_string(), 1.5)].into(),
            info: None,
        };
        let mut report = CheckReport {
            rows: vec![
                row("a1", true, ProbeStatus::Ok),
                row("a2", true, ProbeStatus::Fail),
            ],
            broker: None,
        };
        let v: serde_json::Value = serde_json::from_str(&report.render_json()).unwrap();
        assert!(v["broker"].is_null());
        report.broker = Some(BrokerCheck {
            url: "mqtts://gw:***@broker.example:8883".into(),
            login: "TLS, user gw".into(),
            result: ProbeStatus::Fail,
            latency: Duration::from_millis(12),
            reason: "the broker refused the user name or password: check mqtt.username".into(),
        });
        let v: serde_json::Value = serde_json::from_str(&report.render_json()).unwrap();
        assert_eq!(v["broker_failed"], true);
        assert_eq!(v["broker"]["result"], "fail");
        assert_eq!(
            v["broker"]["reason"],
            "the broker refused the user name or password: check mqtt.username"
        );
        let table = report.render_table();
        let first = table.lines().nth(1).unwrap();
        assert!(
            first.starts_with("broker") && first.contains("FAIL") && first.contains("TLS, user gw"),
            "{table}"
        );
        assert!(
            table.contains("The gateway cannot report: the broker refused the user name"),
            "{table}"
        );
        report.rows.pop();
        assert!(!report.required_down() && report.failed());
        report.broker.as_mut().unwrap().result = ProbeStatus::Ok;
        assert!(!report.failed());
        report.rows.push(row("a2", true, ProbeStatus::Fail));
        let v: serde_json::Value = serde_json::from_str(&report.render_json()).unwrap();
        assert_eq!(v["required_down"], true);
        assert_eq!(v["devices"][0]["result"], "ok");
        assert!(v["devices"][0]["reason"].is_null());
        assert_eq!(v["devices"][1]["reason"], "DC-09 NAK: x");
        assert_eq!(v["devices"][1]["latency_ms"], 1.5);
        assert_eq!(v["devices"][1]["measurements"]["latency_ms"], 1.5);
    }

    #[test]
    fn the_table_shows_what_was_measured_in_words() {
        let m: Measurements = [
            ("latency_ms", 3.2),
            ("frame_rate", 14.96),
            ("bitrate_kbps", 812.0),
            ("first_keyframe_ms", 140.5),
            ("width", 640.0),
            ("height", 360.0),
            ("frames", 60.0),
            ("keyframes", 4.0),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        assert_eq!(
            describe(&m, None),
            "15.0 fps, 640x360, 812 kbit/s, first keyframe after 140 ms"
        );
        let m: Measurements = [("sip_status".to_string(), 200.0), ("odd".to_string(), 1.0)].into();
        assert_eq!(describe(&m, None), "SIP 200, odd 1");
        let m: Measurements = [("clock_drift_s".to_string(), -2.5)].into();
        let info = DeviceInfo {
            manufacturer: Some("HIKVISION".into()),
            model: Some("DS-2CD2143G2-I".into()),
            firmware: Some("V5.7.3".into()),
            ..DeviceInfo::default()
        };
        assert_eq!(
            describe(&m, Some(&info)),
            "clock off by -2.5 s, HIKVISION DS-2CD2143G2-I, firmware V5.7.3"
        );
    }
}
