//! The data the monitor speaks: its settings, the gateway and device records, alerts,
//! transitions, the changes it hands back for storing, the outcome of a message, its
//! counters, the snapshot it is restored from and the read-only view of a campus.

use std::collections::BTreeMap;

use campuswatch_protocol::{
    CampusId, CauseCode, DeviceId, DeviceInfo, DeviceKind, DeviceState, GatewayState, HostHealth,
    Measurements, RegionCode, Timestamp,
};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::alerts::{Acknowledgement, AlertRules, Incident};
use super::coverage::Contribution;
use super::maintenance::Maintenance;
use crate::model::Severity;
pub use crate::model::{AlertKind, AlertState};
use crate::registry::RegistryEntry;

/// Rules the monitor applies; see `docs/configuration.md` for their defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A gateway is stale after this many heartbeat intervals without one.
    pub missed_heartbeats: u32,
    /// Used until a gateway's birth says its own interval.
    pub default_heartbeat_interval: TimeDelta,
    /// Share of a campus's expected alarm devices that must be up for "alarm networked".
    pub alarm_fraction: f64,
    /// Share of a campus's expected cameras that must be up for "video networked".
    pub video_fraction: f64,
    /// When dropped links become alerts and how they are told.
    pub alerts: AlertRules,
    /// The shortest wait between two rebirth requests to one gateway.
    pub rebirth_min_interval: TimeDelta,
    /// The longest; the wait doubles from the shortest while the gateway disagrees.
    pub rebirth_max_interval: TimeDelta,
    /// Most rebirth requests per second across all gateways (and the largest burst).
    pub rebirth_rate: u32,
    /// The regions this server watches (`mqtt.regions`; empty: all). Campuses outside
    /// belong to other servers: their registry entries and stored state are left out, so
    /// that partitions' figures add up to the whole area's.
    pub partition: Vec<RegionCode>,
    /// The zone of the times notices give (`time_zone`).
    pub time_zone: chrono_tz::Tz,
    /// The GB/T 28181 view's rules (`[gb28181]`).
    pub platform: super::PlatformRules,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            missed_heartbeats: 3,
            default_heartbeat_interval: TimeDelta::seconds(5),
            alarm_fraction: 1.0,
            video_fraction: 0.8,
            alerts: AlertRules::default(),
            rebirth_min_interval: TimeDelta::minutes(1),
            rebirth_max_interval: TimeDelta::hours(1),
            rebirth_rate: 100,
            partition: Vec::new(),
            time_zone: chrono_tz::Asia::Shanghai,
            platform: super::PlatformRules::default(),
        }
    }
}

impl Settings {
    /// Whether `region` is watched by this server.
    pub fn watches(&self, region: &RegionCode) -> bool {
        self.partition.is_empty() || self.partition.iter().any(|p| region.is_within(p))
    }
}

impl Settings {
    /// Settings under which a dropped link is an alert at once (no hold-down) and gateway
    /// alerts are told at the next `expire`: for tests about what becomes an alert rather
    /// than when.
    #[cfg(test)]
    pub(crate) fn immediate() -> Settings {
        Settings {
            alerts: AlertRules {
                hold_down_gateway: TimeDelta::zero(),
                hold_down_alarm: TimeDelta::zero(),
                hold_down_camera: TimeDelta::zero(),
                group_wait: TimeDelta::zero(),
                ..AlertRules::default()
            },
            ..Settings::default()
        }
    }
}

/// A flag for one dropped link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: u64,
    pub campus: CampusId,
    pub region: RegionCode,
    /// None for the gateway itself and for a campus's video as a whole.
    pub device: Option<DeviceId>,
    pub kind: AlertKind,
    pub state: AlertState,
    pub severity: Severity,
    /// When the link dropped.
    pub since: Timestamp,
    /// When it became an alert (after its hold-down time).
    pub opened_at: Timestamp,
    pub cause: Option<String>,
    /// The cause as a code with parameters, for consoles in any language.
    #[serde(default)]
    pub cause_code: Option<CauseCode>,
    pub resolved_at: Option<Timestamp>,
    pub acknowledged: Option<Acknowledgement>,
    /// The link changes state again and again (see `AlertRules::flap_changes`).
    pub flapping: bool,
    /// Whether the operators were told it opened (alone or in an incident).
    pub notified: bool,
    /// The regional incident it is part of.
    pub incident: Option<u64>,
}

/// What the server knows of a campus's gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub state: GatewayState,
    /// When it entered `state`.
    pub since: Option<Timestamp>,
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_code: Option<CauseCode>,
    pub epoch: u64,
    pub last_heartbeat: Option<Timestamp>,
    pub health: Option<HostHealth>,
    pub agent_version: Option<String>,
    pub config_digest: Option<String>,
    pub heartbeat_interval_ms: u64,
    /// Newest agent event id reflected in the device states.
    pub last_event_id: u64,
    pub first_seen: Option<Timestamp>,
    /// Events the gateway's spool dropped because a broker outage outlasted it, as its
    /// last birth said (schema version 3; 0 from older agents). Their ids never arrive.
    #[serde(default)]
    pub dropped_events: u64,
}

impl GatewayRecord {
    pub(super) fn never_seen() -> Self {
        Self {
            state: GatewayState::NeverSeen,
            since: None,
            cause: None,
            cause_code: None,
            epoch: 0,
            last_heartbeat: None,
            health: None,
            agent_version: None,
            config_digest: None,
            heartbeat_interval_ms: 0,
            last_event_id: 0,
            first_seen: None,
            dropped_events: 0,
        }
    }
}

/// A device as its agent last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub id: DeviceId,
    pub kind: DeviceKind,
    /// The probe's name without an allocation (see `compact`); the target an exact-size
    /// string (no spare capacity): a province holds millions of records.
    pub probe: super::ProbeName,
    pub target: Box<str>,
    pub required: bool,
    /// As reported by the agent; see [`CampusView::device_state`] for what users see.
    pub state: DeviceState,
    pub since: Option<Timestamp>,
    /// Exact size, as `probe` and `target`.
    pub cause: Option<Box<str>>,
    /// The cause's code (schema version 4 agents). Boxed, as `info` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_code: Option<Box<CauseCode>>,
    /// Compact, as the strings above; the same JSON as the protocol's map.
    #[serde(default)]
    pub measurements: super::Readings,
    /// What the device says it is (manufacturer, model, firmware, …), once known. Boxed:
    /// most devices never say, and a province holds millions of these records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Box<DeviceInfo>>,
    /// When the device was last reported going down, while it has not been reported up
    /// since. Kept through `unknown` (an agent restart, a gateway that went away and came
    /// back): such a link is still down as far as anyone knows, so its alert stays open
    /// and its hold-down goes on counting from here. See [`DeviceRecord::outage_start`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since: Option<Second>,
}

impl DeviceRecord {
    /// Whether the device was reported down and has not been reported up since.
    pub fn still_down(&self) -> bool {
        match self.state {
            DeviceState::Down => true,
            DeviceState::Unknown => self.down_since.is_some(),
            DeviceState::Up | DeviceState::Degraded => false,
        }
    }

    /// When the outage the device is in began, if it is in one, to the second.
    pub fn outage_start(&self) -> Option<Timestamp> {
        if !self.still_down() {
            return None;
        }
        // A record stored before `down_since` existed: down since `since`.
        self.down_since.map(Timestamp::from).or(self.since)
    }

    /// The outage that goes on after the device reports `state` at `at`: when it began,
    /// if the device is down or unknown after having been down.
    pub(super) fn outage_after(&self, state: DeviceState, at: Option<Timestamp>) -> Option<Second> {
        // Records stored before `down_since` existed: a down device's outage began when
        // it went down.
        let ongoing = self.down_since.or(self
            .since
            .filter(|_| self.state == DeviceState::Down)
            .map(Second::floor));
        match state {
            DeviceState::Down => ongoing.or(at.map(Second::floor)),
            DeviceState::Unknown => ongoing,
            DeviceState::Up | DeviceState::Degraded => None,
        }
    }
}

/// A time to the second in four bytes (seconds since 1970, until 2106), for what every
/// device record keeps: a province holds millions of them, and this one fits in the
/// record's padding. Written as an RFC 3339 time, like every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "Timestamp", from = "Timestamp")]
pub struct Second(std::num::NonZeroU32);

impl Second {
    /// `t` to the second below (clamped to the range the type holds).
    pub fn floor(t: Timestamp) -> Second {
        let s = t.timestamp().clamp(1, i64::from(u32::MAX)) as u32;
        Second(std::num::NonZeroU32::MIN.saturating_add(s - 1))
    }
}

impl From<Timestamp> for Second {
    fn from(t: Timestamp) -> Second {
        Second::floor(t)
    }
}

impl From<Second> for Timestamp {
    fn from(s: Second) -> Timestamp {
        chrono::DateTime::from_timestamp(i64::from(s.0.get()), 0).unwrap_or_default()
    }
}

/// One row of transition history: a device event from an agent, or a gateway transition
/// judged by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub campus: CampusId,
    pub region: RegionCode,
    pub device: Option<DeviceId>,
    pub kind: AlertKind,
    pub from: String,
    pub to: String,
    pub at: Timestamp,
    pub cause: Option<String>,
    pub cause_code: Option<CauseCode>,
    /// The agent's event id (None for gateway transitions).
    pub event_id: Option<u64>,
    pub measurements: Measurements,
}

/// Something the caller must persist.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The campus's gateway record changed.
    Gateway {
        campus: CampusId,
        region: RegionCode,
        record: GatewayRecord,
    },
    /// The campus's whole device inventory was replaced (a birth).
    Inventory {
        campus: CampusId,
        devices: Vec<DeviceRecord>,
    },
    /// One device changed.
    Device {
        campus: CampusId,
        device: DeviceRecord,
    },
    /// History row; `event_id` rows are de-duplicated by the store.
    Transition(Transition),
    /// An alert was opened or changed state.
    Alert(Alert),
    /// An alert was acknowledged (again): kept in its history of acknowledgements.
    Acknowledged { alert: u64, ack: Acknowledgement },
    /// A regional incident was opened or changed.
    Incident(Incident),
    /// A maintenance window was planned.
    MaintenanceAdded(Maintenance),
    /// A maintenance window was withdrawn (kept in history).
    MaintenanceRemoved { id: u64 },
    /// Something to tell the operators; stored with the state that caused it.
    Notice(crate::model::Notice),
    /// A GB/T 28181 device's record changed (registration, keepalive, catalog).
    GbDevice(super::GbDeviceRecord),
}

/// Why a valid message did not change the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// A birth, death or heartbeat of an older epoch (a late Last Will, say).
    StaleEpoch,
    /// The payload names a region other than the campus's registered one.
    RegionMismatch,
    /// An event already reflected by a newer birth or event: stored as history only.
    AlreadyApplied,
    /// A heartbeat or death after the session ended.
    SessionEnded,
}

impl Ignored {
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::StaleEpoch => "stale_epoch",
            Ignored::RegionMismatch => "region_mismatch",
            Ignored::AlreadyApplied => "already_applied",
            Ignored::SessionEnded => "session_ended",
        }
    }
}

/// Why the monitor asks a gateway for its birth again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebirthReason {
    /// A heartbeat's state letters differ from the view, at the same newest event.
    DigestMismatch,
    /// Heartbeats of a session whose birth never arrived.
    BirthMissing,
    /// A heartbeat announces newer events that did not arrive within a staleness window.
    EventsMissing,
}

impl RebirthReason {
    pub const ALL: [RebirthReason; 3] = [
        RebirthReason::DigestMismatch,
        RebirthReason::BirthMissing,
        RebirthReason::EventsMissing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RebirthReason::DigestMismatch => "digest_mismatch",
            RebirthReason::BirthMissing => "birth_missing",
            RebirthReason::EventsMissing => "events_missing",
        }
    }
}

/// Ask this gateway for its birth (see the module documentation of `rebirth.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebirthRequest {
    pub campus: CampusId,
    pub region: RegionCode,
    /// The session the heartbeat came from; the gateway answers only for its current one.
    pub epoch: u64,
    pub reason: RebirthReason,
}

/// The result of applying one message.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub changes: Vec<Change>,
    pub ignored: Option<Ignored>,
    /// Send the gateway a rebirth request.
    pub rebirth: Option<RebirthRequest>,
    /// Events a birth newly reported as dropped by the gateway's spool.
    pub newly_dropped: u64,
}

/// Read-only view of one campus for the API.
pub struct CampusView<'a> {
    pub id: &'a CampusId,
    pub region: RegionCode,
    pub registry: Option<&'a RegistryEntry>,
    /// When it entered the registry; `None` when it is not registered.
    pub registered_at: Option<Timestamp>,
    pub gateway: &'a GatewayRecord,
    pub devices: &'a [DeviceRecord],
    pub alarm_networked: bool,
    pub video_networked: bool,
    /// What it adds to coverage (all zero when unregistered).
    pub contribution: Contribution,
}

impl CampusView<'_> {
    /// What users see: a device behind a gateway that is not online is `unknown`.
    pub fn device_state(&self, d: &DeviceRecord) -> DeviceState {
        if self.gateway.state == GatewayState::Online {
            d.state
        } else {
            DeviceState::Unknown
        }
    }
}

/// Counts of messages the monitor declined to apply, and of what gateways reported
/// about themselves, for /metrics.
#[derive(Debug, Default, Clone)]
pub struct MonitorCounters {
    pub ignored: BTreeMap<&'static str, u64>,
    pub unregistered_messages: u64,
    /// Rebirth requests decided, by reason.
    pub rebirth_requests: BTreeMap<RebirthReason, u64>,
    /// Rebirth requests held back by the fleet-wide rate (asked again later).
    pub rebirth_deferred: u64,
    /// Events gateways reported as dropped by their spools (increases seen by this run).
    pub gateway_dropped_events: u64,
}

/// Everything loaded from the store at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub registry: Vec<RegistryEntry>,
    /// When each registered campus entered the registry.
    pub registered_at: std::collections::HashMap<CampusId, Timestamp>,
    pub gateways: Vec<(CampusId, RegionCode, GatewayRecord)>,
    /// Each campus's devices, in its birth's order; one campus id per campus, not per
    /// device (a province has millions of devices).
    pub devices: Vec<(CampusId, Vec<DeviceRecord>)>,
    /// Alerts not yet resolved.
    pub alerts: Vec<Alert>,
    pub max_alert_id: u64,
    /// Incidents not yet resolved.
    pub incidents: Vec<Incident>,
    pub max_incident_id: u64,
    /// Maintenance windows not withdrawn.
    pub maintenance: Vec<Maintenance>,
    pub max_maintenance_id: u64,
    /// GB/T 28181 devices as last stored.
    pub gb_devices: Vec<super::GbDeviceRecord>,
}
