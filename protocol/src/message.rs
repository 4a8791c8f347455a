//! Payloads of the campus topics and their validation.
//!
//! Every payload is a JSON object with `"v"` (the schema version, 1 to 4) and the campus
//! and region it speaks for;
//! [`decode`] checks the size bound, the schema version, unknown fields, the match between
//! topic and payload, and the bounds of every field, so a server can count and drop bad
//! input without ever acting on it.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cause::{CauseCode, CAUSE_CODE_SCHEMA_VERSION};
use crate::ids::{CampusId, DeviceId, RegionCode};
use crate::model::{DeviceKind, DeviceState};
use crate::topic::{CampusTopic, MessageKind};

/// The newest payload schema version this crate knows; it reads every version from
/// [`OLDEST_SCHEMA_VERSION`] to this one. Version 2 added device identity
/// ([`DeviceInfo`]); version 3 added the birth's `dropped_events` and the server's
/// commands ([`crate::command`]); version 4 added `cause_code` ([`CauseCode`]).
pub const SCHEMA_VERSION: u32 = 4;
/// The oldest payload schema version this crate still reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;
/// The version a gateway writes unless a message carries a field of a newer one (see
/// [`Birth::needed_version`]): every server since schema 2 reads it, so an agent that is
/// upgraded before its server keeps being understood.
pub const BASE_SCHEMA_VERSION: u32 = 2;
/// Largest payload accepted, in bytes; a birth with 1,024 devices fits comfortably.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Most devices one gateway may report.
pub const MAX_DEVICES: usize = 1024;
/// Longest free-text field (causes, versions, targets), in bytes.
pub const MAX_TEXT_BYTES: usize = 512;
/// Most measurement entries in one report.
pub const MAX_MEASUREMENTS: usize = 32;

/// Numeric measurements from a probe, by name: `latency_ms`, `http_status`, `frame_rate`, …
pub type Measurements = BTreeMap<String, f64>;

/// Published once right after every CONNECT: who the gateway is and the full state of
/// its devices. QoS 1, not retained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Birth {
    pub v: u32,
    pub campus: CampusId,
    pub region: RegionCode,
    /// The session's epoch; incremented and persisted by the agent before every CONNECT.
    pub epoch: u64,
    pub at: DateTime<Utc>,
    pub agent_version: String,
    /// Digest of the agent's configuration, to spot gateways running a stale config.
    pub config_digest: String,
    /// How often heartbeats will come; the server's staleness window is a multiple of it.
    pub heartbeat_interval_ms: u64,
    /// The id of the newest event this inventory already reflects (0 if none).
    pub last_event_id: u64,
    pub devices: Vec<DeviceReport>,
    /// Events the gateway's spool dropped, oldest first, because it was full (a broker
    /// outage longer than the spool holds), counted since its state directory was made.
    /// Their ids never reach the server; this says why. Schema version 3; absent = 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_events: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Birth {
    /// The lowest schema version that can carry this birth: a gateway writes it, so a
    /// server that does not know version 3 yet still reads every birth without drops.
    pub fn needed_version(&self) -> u32 {
        if self.devices.iter().any(|d| d.cause_code.is_some()) {
            CAUSE_CODE_SCHEMA_VERSION
        } else if self.dropped_events > 0 {
            3
        } else {
            BASE_SCHEMA_VERSION
        }
    }

    /// The birth without cause codes, for a server that reads only up to version 3.
    pub fn without_cause_codes(mut self) -> Self {
        for d in &mut self.devices {
            d.cause_code = None;
        }
        self.v = self.needed_version();
        self
    }
}

/// One device in a birth's inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceReport {
    pub id: DeviceId,
    pub kind: DeviceKind,
    /// The probe that judges it (`tcp`, `http`, …).
    pub probe: String,
    /// What the probe reaches (`10.1.2.3:5000`, `http://10.1.2.4/status`).
    pub target: String,
    /// A required device that is down makes the gateway's own check fail.
    pub required: bool,
    pub state: DeviceState,
    /// When the device entered `state`; absent while unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The cause as a code with parameters, for consoles in any language. Schema version 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_code: Option<CauseCode>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measurements: Measurements,
    /// What the device says it is, once a probe has asked it (ONVIF). Schema version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<DeviceInfo>,
}

/// A device's identity as the device itself reports it (ONVIF GetDeviceInformation), so
/// operators can find outdated firmware or a swapped camera. Every field is optional;
/// at least one is set. Schema version 2.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
}

impl DeviceInfo {
    fn fields(&self) -> [(&'static str, &Option<String>); 5] {
        [
            ("info.manufacturer", &self.manufacturer),
            ("info.model", &self.model),
            ("info.firmware", &self.firmware),
            ("info.serial", &self.serial),
            ("info.hardware", &self.hardware),
        ]
    }

    fn validate(&self) -> Result<(), DecodeError> {
        let fields = self.fields();
        if fields.iter().all(|(_, v)| v.is_none()) {
            return Err(invalid("info must carry at least one field"));
        }
        for (name, value) in fields {
            if let Some(v) = value {
                if v.len() > MAX_INFO_BYTES || v.chars().any(char::is_control) {
                    return Err(invalid(format!(
                        "{name} must be at most {MAX_INFO_BYTES} bytes without control characters"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Longest device identity field (model, firmware, …), in bytes.
pub const MAX_INFO_BYTES: usize = 128;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeathReason {
    /// The agent stopped cleanly and said so.
    Shutdown,
    /// The broker published the Last Will: the connection was lost.
    ConnectionLost,
}

/// The end of a session: the Last Will set at CONNECT, or published by a clean shutdown.
/// QoS 1, not retained. Applied only when its epoch equals the stored one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Death {
    pub v: u32,
    pub campus: CampusId,
    pub region: RegionCode,
    pub epoch: u64,
    pub reason: DeathReason,
}

/// Host health measured on the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostHealth {
    pub cpu_pct: f32,
    pub mem_used_pct: f32,
    pub disk_used_pct: f32,
    pub uptime_s: u64,
}

/// Periodic proof of life. QoS 0, not retained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub v: u32,
    pub campus: CampusId,
    pub region: RegionCode,
    pub epoch: u64,
    /// Counts up from 1 within an epoch.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub health: HostHealth,
    /// One letter per device in birth-inventory order: `U` up, `G` degraded, `D` down,
    /// `N` unknown. Compact so heartbeats stay small on metered links.
    pub states: String,
    /// The newest event id produced so far.
    pub last_event_id: u64,
}

/// A device state transition. QoS 1; spooled by the agent until acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub v: u32,
    pub campus: CampusId,
    pub region: RegionCode,
    /// Per-agent, strictly increasing; the server de-duplicates on (campus, id).
    pub id: u64,
    /// The epoch during which the transition happened.
    pub epoch: u64,
    /// When the transition happened (not when it was sent: replays keep their times).
    pub at: DateTime<Utc>,
    pub device: DeviceId,
    pub kind: DeviceKind,
    pub from: DeviceState,
    pub to: DeviceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The cause as a code with parameters. Schema version 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_code: Option<CauseCode>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measurements: Measurements,
    /// The device's identity when the probe that caused the transition learned it.
    /// Schema version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<DeviceInfo>,
}

impl Event {
    /// The lowest schema version that can carry this event (see [`Birth::needed_version`]).
    pub fn needed_version(&self) -> u32 {
        if self.cause_code.is_some() {
            CAUSE_CODE_SCHEMA_VERSION
        } else {
            BASE_SCHEMA_VERSION
        }
    }
}

/// `online` / `offline`, retained on the server's state topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    Online,
    Offline,
}

/// The server's own presence, retained, with an `offline` Last Will.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerState {
    pub v: u32,
    pub server: String,
    pub state: ServerStatus,
}

/// Any campus message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Birth(Birth),
    Death(Death),
    Heartbeat(Heartbeat),
    Event(Event),
}

impl Message {
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Birth(_) => MessageKind::Birth,
            Message::Death(_) => MessageKind::Death,
            Message::Heartbeat(_) => MessageKind::Heartbeat,
            Message::Event(_) => MessageKind::Event,
        }
    }

    pub fn campus(&self) -> &CampusId {
        match self {
            Message::Birth(m) => &m.campus,
            Message::Death(m) => &m.campus,
            Message::Heartbeat(m) => &m.campus,
            Message::Event(m) => &m.campus,
        }
    }

    pub fn region(&self) -> RegionCode {
        match self {
            Message::Birth(m) => m.region,
            Message::Death(m) => m.region,
            Message::Heartbeat(m) => m.region,
            Message::Event(m) => m.region,
        }
    }

    /// The topic this message belongs on.
    pub fn topic(&self) -> CampusTopic {
        CampusTopic::new(self.region(), self.campus().clone(), self.kind())
    }

    /// The JSON payload.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain structs cannot fail: every map key is a string.
        let r = match self {
            Message::Birth(m) => serde_json::to_vec(m),
            Message::Death(m) => serde_json::to_vec(m),
            Message::Heartbeat(m) => serde_json::to_vec(m),
            Message::Event(m) => serde_json::to_vec(m),
        };
        r.unwrap_or_default()
    }

    /// Field bounds that serde cannot express.
    pub fn validate(&self) -> Result<(), DecodeError> {
        match self {
            Message::Birth(b) => {
                check_epoch(b.epoch)?;
                check_text("agent_version", &b.agent_version)?;
                check_text("config_digest", &b.config_digest)?;
                if b.dropped_events > 0 && b.v < 3 {
                    return Err(invalid("dropped_events needs schema version 3"));
                }
                if b.heartbeat_interval_ms == 0 || b.heartbeat_interval_ms > 3_600_000 {
                    return Err(invalid("heartbeat_interval_ms must be 1 to 3600000"));
                }
                if b.devices.len() > MAX_DEVICES {
                    return Err(invalid(format!("more than {MAX_DEVICES} devices")));
                }
                let mut seen = HashSet::with_capacity(b.devices.len());
                for d in &b.devices {
                    if !seen.insert(&d.id) {
                        return Err(invalid(format!("device {} listed twice", d.id)));
                    }
                    check_text("probe", &d.probe)?;
                    check_text("target", &d.target)?;
                    check_opt_text("cause", &d.cause)?;
                    check_cause_code(b.v, &d.cause_code)?;
                    check_measurements(&d.measurements)?;
                    check_info(b.v, &d.info)?;
                }
                Ok(())
            }
            Message::Death(d) => check_epoch(d.epoch),
            Message::Heartbeat(h) => {
                check_epoch(h.epoch)?;
                let hh = &h.health;
                for (name, pct) in [
                    ("cpu_pct", hh.cpu_pct),
                    ("mem_used_pct", hh.mem_used_pct),
                    ("disk_used_pct", hh.disk_used_pct),
                ] {
                    if !(0.0..=100.0).contains(&pct) {
                        return Err(invalid(format!("health.{name} must be 0 to 100")));
                    }
                }
                if h.states.len() > MAX_DEVICES
                    || !h
                        .states
                        .chars()
                        .all(|c| DeviceState::from_code(c).is_some())
                {
                    return Err(invalid("states must be letters U, G, D, N, one per device"));
                }
                Ok(())
            }
            Message::Event(e) => {
                check_epoch(e.epoch)?;
                if e.id == 0 {
                    return Err(invalid("event id must be at least 1"));
                }
                if e.from == e.to {
                    return Err(invalid("event from and to are the same state"));
                }
                check_opt_text("cause", &e.cause)?;
                check_cause_code(e.v, &e.cause_code)?;
                check_measurements(&e.measurements)?;
                check_info(e.v, &e.info)
            }
        }
    }
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("unsupported schema version {0} (this build reads {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION})")]
    Version(u64),
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error("payload {field} {payload:?} does not match the topic's {topic:?}")]
    Mismatch {
        field: &'static str,
        topic: String,
        payload: String,
    },
    #[error("invalid payload: {0}")]
    Invalid(String),
}

impl DecodeError {
    /// A short, stable label for metrics (`reason="malformed"`).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Version(_) => "version",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::Mismatch { .. } => "topic_mismatch",
            DecodeError::Invalid(_) => "invalid",
        }
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(msg.into())
}

pub(crate) fn check_epoch(epoch: u64) -> Result<(), DecodeError> {
    if epoch == 0 {
        return Err(invalid("epoch must be at least 1"));
    }
    Ok(())
}

pub(crate) fn check_text(field: &str, s: &str) -> Result<(), DecodeError> {
    if s.len() > MAX_TEXT_BYTES {
        return Err(invalid(format!(
            "{field} is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_opt_text(field: &str, s: &Option<String>) -> Result<(), DecodeError> {
    s.as_deref().map_or(Ok(()), |s| check_text(field, s))
}

fn check_info(v: u32, info: &Option<DeviceInfo>) -> Result<(), DecodeError> {
    match info {
        None => Ok(()),
        Some(_) if v < 2 => Err(invalid("info needs schema version 2")),
        Some(i) => i.validate(),
    }
}

/// Checks an optional cause code and that the message's version can carry it.
fn check_cause_code(v: u32, code: &Option<CauseCode>) -> Result<(), DecodeError> {
    match code {
        None => Ok(()),
        Some(_) if v < CAUSE_CODE_SCHEMA_VERSION => Err(invalid(format!(
            "cause_code needs schema version {CAUSE_CODE_SCHEMA_VERSION}"
        ))),
        Some(c) => c.validate().map_err(invalid),
    }
}

fn check_measurements(m: &Measurements) -> Result<(), DecodeError> {
    if m.len() > MAX_MEASUREMENTS || m.keys().any(|k| k.is_empty() || k.len() > 64) {
        return Err(invalid(format!(
            "measurements must be at most {MAX_MEASUREMENTS} entries with names of 1 to 64 bytes"
        )));
    }
    Ok(())
}

pub(crate) fn parse<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(payload).map_err(|e| {
        // Name the version problem rather than the first unknown field it causes.
        #[derive(Deserialize)]
        struct Version {
            v: Option<u64>,
        }
        match serde_json::from_slice::<Version>(payload) {
            Ok(Version { v: Some(v) }) if !supported(v) => DecodeError::Version(v),
            _ => DecodeError::Malformed(e.to_string()),
        }
    })
}

pub(crate) fn supported(v: u64) -> bool {
    (u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&v)
}

/// Decodes and validates the payload that arrived on `topic`.
pub fn decode(topic: &CampusTopic, payload: &[u8]) -> Result<Message, DecodeError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge {
            size: payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let msg = match topic.kind {
        MessageKind::Birth => Message::Birth(parse(payload)?),
        MessageKind::Death => Message::Death(parse(payload)?),
        MessageKind::Heartbeat => Message::Heartbeat(parse(payload)?),
        MessageKind::Event => Message::Event(parse(payload)?),
    };
    let v = match &msg {
        Message::Birth(m) => m.v,
        Message::Death(m) => m.v,
        Message::Heartbeat(m) => m.v,
        Message::Event(m) => m.v,
    };
    if !supported(v.into()) {
        return Err(DecodeError::Version(v.into()));
    }
    if msg.campus() != &topic.campus {
        return Err(DecodeError::Mismatch {
            field: "campus",
            topic: topic.campus.to_string(),
            payload: msg.campus().to_string(),
        });
    }
    if msg.region() != topic.region {
        return Err(DecodeError::Mismatch {
            field: "region",
            topic: topic.region.to_string(),
            payload: msg.region().to_string(),
        });
    }
    msg.validate()?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(kind: &str) -> CampusTopic {
        CampusTopic::parse(&format!("cw/v1/150102/c-1/{kind}")).unwrap()
    }

    const HEARTBEAT: &str = r#"{"v":1,"campus":"c-1","region":"150102","epoch":3,"seq":9,
        "at":"2026-11-29T08:00:00Z","health":{"cpu_pct":3.5,"mem_used_pct":40,"disk_used_pct":12,"uptime_s":100},
        "states":"UUD","last_event_id":17}"#;

    #[test]
    fn a_heartbeat_written_by_hand_decodes() {
        let Message::Heartbeat(hb) = decode(&topic("heartbeat"), HEARTBEAT.as_bytes()).unwrap()
        else {
            panic!("not a heartbeat")
        };
        assert_eq!((hb.epoch, hb.seq, hb.last_event_id), (3, 9, 17));
        assert_eq!(hb.states, "UUD");
    }

    #[test]
    fn encode_then_decode_gives_the_same_message() {
        let ev = Message::Event(Event {
            v: 1,
            campus: CampusId::parse("c-1").unwrap(),
            region: RegionCode::parse("150102").unwrap(),
            id: 42,
            epoch: 3,
            at: "2026-11-29T08:00:00.250Z".parse().unwrap(),
            device: DeviceId::parse("cam-1").unwrap(),
            kind: DeviceKind::Camera,
            from: DeviceState::Up,
            to: DeviceState::Down,
            cause: Some("connection refused".into()),
            cause_code: None,
            measurements: [("latency_ms".to_string(), 1.5)].into(),
            info: None,
        });
        let back = decode(&ev.topic(), &ev.encode()).unwrap();
        assert_eq!(back, ev);
        let mut with_info = ev.clone();
        if let Message::Event(e) = &mut with_info {
            e.v = SCHEMA_VERSION;
            e.info = Some(DeviceInfo {
                manufacturer: Some("Hikvision".into()),
                model: Some("DS-2CD2043G2-I".into()),
                firmware: Some("V5.7.3 build 220112".into()),
                ..DeviceInfo::default()
            });
        }
        assert_eq!(decode(&ev.topic(), &with_info.encode()).unwrap(), with_info);
    }

    #[test]
    fn cause_codes_need_version_4_and_travel_next_to_the_text() {
        let json = r#"{"v":4,"campus":"c-1","region":"150102","id":7,"epoch":3,
            "at":"2026-11-29T08:00:00Z","device":"cam-1","kind":"camera","from":"up","to":"down",
            "cause":"HTTP 404, expected 200",
            "cause_code":{"code":"http.status","params":{"got":404,"expected":"200"}}}"#;
        let Message::Event(e) = decode(&topic("event"), json.as_bytes()).unwrap() else {
            panic!("not an event")
        };
        let code = e.cause_code.clone().unwrap();
        assert_eq!(code.to_string(), "http.status{expected=200,got=404}");
        assert_eq!(e.needed_version(), 4);
        // An older version cannot carry one; a bad code is refused, not acted on.
        let old = json.replace("\"v\":4", "\"v\":3");
        assert_eq!(
            decode(&topic("event"), old.as_bytes())
                .unwrap_err()
                .reason(),
            "invalid"
        );
        let bad = json.replace("http.status", "HTTP STATUS");
        assert_eq!(
            decode(&topic("event"), bad.as_bytes())
                .unwrap_err()
                .reason(),
            "invalid"
        );
        let unknown = json.replace("\"params\"", "\"args\"");
        assert_eq!(
            decode(&topic("event"), unknown.as_bytes())
                .unwrap_err()
                .reason(),
            "malformed"
        );
        // Without a code the event stays version 2, and so does a birth.
        let plain = Event {
            cause_code: None,
            ..e.clone()
        };
        assert_eq!(plain.needed_version(), BASE_SCHEMA_VERSION);
    }

    #[test]
    fn payload_for_another_campus_is_a_mismatch() {
        let other = HEARTBEAT.replace("\"c-1\"", "\"c-2\"");
        let err = decode(&topic("heartbeat"), other.as_bytes()).unwrap_err();
        assert_eq!(err.reason(), "topic_mismatch");
        let other = HEARTBEAT.replace("\"150102\"", "\"150103\"");
        let err = decode(&topic("heartbeat"), other.as_bytes()).unwrap_err();
        assert_eq!(err.reason(), "topic_mismatch");
    }

    #[test]
    fn unknown_fields_and_wrong_versions_are_refused() {
        let extra = HEARTBEAT.replace("\"seq\":9", "\"seq\":9,\"extra\":1");
        assert_eq!(
            decode(&topic("heartbeat"), extra.as_bytes())
                .unwrap_err()
                .reason(),
            "malformed"
        );
        for v in 2..=SCHEMA_VERSION {
            let known = HEARTBEAT.replace("\"v\":1", &format!("\"v\":{v}"));
            assert!(
                decode(&topic("heartbeat"), known.as_bytes()).is_ok(),
                "v{v}"
            );
        }
        let v5 = HEARTBEAT.replace("\"v\":1", "\"v\":5");
        assert_eq!(
            decode(&topic("heartbeat"), v5.as_bytes()).unwrap_err(),
            DecodeError::Version(5)
        );
        let v0 = HEARTBEAT.replace("\"v\":1", "\"v\":0");
        assert_eq!(
            decode(&topic("heartbeat"), v0.as_bytes()).unwrap_err(),
            DecodeError::Version(0)
        );
    }

    #[test]
    fn device_identity_needs_version_2_and_sane_text() {
        let birth = |v: u32, info: &str| {
            format!(
                r#"{{"v":{v},"campus":"c-1","region":"150102","epoch":1,"at":"2026-11-29T08:00:00Z",
                "agent_version":"0.2.0","config_digest":"ab","heartbeat_interval_ms":5000,"last_event_id":0,
                "devices":[{{"id":"cam-1","kind":"camera","probe":"onvif","target":"http://10.0.0.4/onvif/device_service",
                "required":false,"state":"up","info":{info}}}]}}"#
            )
        };
        let good = r#"{"manufacturer":"Dahua","model":"IPC-HDW2431T","firmware":"2.820.0"}"#;
        let Message::Birth(b) = decode(&topic("birth"), birth(2, good).as_bytes()).unwrap() else {
            panic!("not a birth")
        };
        let info = b.devices[0].info.as_ref().unwrap();
        assert_eq!(info.model.as_deref(), Some("IPC-HDW2431T"));
        assert_eq!(info.serial, None);
        for (v, info) in [
            (1, good),
            (2, "{}"),
            (2, r#"{"model":"a\u0007b"}"#),
            (
                2,
                &format!(r#"{{"model":"{}"}}"#, "x".repeat(MAX_INFO_BYTES + 1)),
            ),
        ] {
            let err = decode(&topic("birth"), birth(v, info).as_bytes()).unwrap_err();
            assert_eq!(err.reason(), "invalid", "v{v} {info}: {err}");
        }
        let unknown = birth(2, r#"{"model":"m","colour":"white"}"#);
        assert_eq!(
            decode(&topic("birth"), unknown.as_bytes())
                .unwrap_err()
                .reason(),
            "malformed"
        );
    }

    #[test]
    fn garbage_oversize_and_out_of_range_payloads_are_refused() {
        for bad in [&b"not json"[..], b"", b"{}", b"[1,2]", &[0xff, 0xfe, 0x00]] {
            assert!(decode(&topic("heartbeat"), bad).is_err());
        }
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(
            decode(&topic("event"), &huge).unwrap_err().reason(),
            "too_large"
        );
        let cpu = HEARTBEAT.replace("3.5", "300");
        assert_eq!(
            decode(&topic("heartbeat"), cpu.as_bytes())
                .unwrap_err()
                .reason(),
            "invalid"
        );
        let states = HEARTBEAT.replace("UUD", "UUX");
        assert!(decode(&topic("heartbeat"), states.as_bytes()).is_err());
        let epoch0 = HEARTBEAT.replace("\"epoch\":3", "\"epoch\":0");
        assert!(decode(&topic("heartbeat"), epoch0.as_bytes()).is_err());
    }

    #[test]
    fn a_death_needs_a_known_reason() {
        let ok = r#"{"v":1,"campus":"c-1","region":"150102","epoch":4,"reason":"connection_lost"}"#;
        assert!(decode(&topic("death"), ok.as_bytes()).is_ok());
        let bad = ok.replace("connection_lost", "tired");
        assert!(decode(&topic("death"), bad.as_bytes()).is_err());
    }

    #[test]
    fn dropped_events_need_version_3_and_a_birth_without_drops_stays_version_2() {
        let birth = |v: u32, dropped: &str| {
            format!(
                r#"{{"v":{v},"campus":"c-1","region":"150102","epoch":1,"at":"2026-11-29T08:00:00Z",
                "agent_version":"0.3.0","config_digest":"ab","heartbeat_interval_ms":5000,
                "last_event_id":9{dropped},"devices":[]}}"#
            )
        };
        let Message::Birth(b) = decode(
            &topic("birth"),
            birth(3, r#","dropped_events":42"#).as_bytes(),
        )
        .unwrap() else {
            panic!("not a birth")
        };
        assert_eq!((b.dropped_events, b.needed_version()), (42, 3));
        for v in [1, 2] {
            let err = decode(
                &topic("birth"),
                birth(v, r#","dropped_events":42"#).as_bytes(),
            )
            .unwrap_err();
            assert_eq!(err.reason(), "invalid", "v{v}: {err}");
        }
        // Absent means none; zero is never written, so such a birth is what a version 2
        // server already reads.
        let Message::Birth(mut b) = decode(&topic("birth"), birth(2, "").as_bytes()).unwrap()
        else {
            panic!("not a birth")
        };
        assert_eq!(
            (b.dropped_events, b.needed_version()),
            (0, BASE_SCHEMA_VERSION)
        );
        assert!(!String::from_utf8(Message::Birth(b.clone()).encode())
            .unwrap()
            .contains("dropped_events"));
        b.dropped_events = 1;
        assert_eq!(b.needed_version(), 3);
    }

    #[test]
    fn a_birth_with_a_device_listed_twice_is_refused() {
        let birth = r#"{"v":1,"campus":"c-1","region":"150102","epoch":1,"at":"2026-11-29T08:00:00Z",
          "agent_version":"0.1.0","config_digest":"ab","heartbeat_interval_ms":5000,"last_event_id":0,
          "devices":[{"id":"a1","kind":"alarm","probe":"tcp","target":"10.0.0.2:5000","required":true,"state":"up"},
                     {"id":"a1","kind":"alarm","probe":"tcp","target":"10.0.0.3:5000","required":true,"state":"up"}]}"#;
        assert_eq!(
            decode(&topic("birth"), birth.as_bytes())
                .unwrap_err()
                .reason(),
            "invalid"
        );
    }
}
