//! The monitor: the server's pure state machine.
//!
//! It turns births, deaths, heartbeats and events into gateway and device states, keeps
//! the alerts that flag dropped links, and maintains coverage incrementally. It does no
//! I/O and reads no clock: every method takes `now`, and every change that must be stored
//! comes back as a [`Change`] for the caller to persist. One task owns it; readers get
//! short read-locked views.
//!
//! # Heartbeat digests and rebirths
//!
//! Heartbeats carry the gateway's device states as one letter per device and the newest
//! event id they reflect, never the inventory. When that id equals the newest event the
//! monitor applied, the letters must equal its own view; when they do not, or a session
//! is heard whose birth never came, or the events a heartbeat announces do not arrive
//! within one staleness window, the outcome asks the caller to send the gateway a
//! rebirth request (`cmd/rebirth`). Requests to one gateway are spaced by
//! `rebirth_min_interval`, doubling up to `rebirth_max_interval` while it keeps
//! disagreeing, and the spacing starts over once a heartbeat agrees. Across all
//! gateways at most `rebirth_rate` requests go out per second (a server that lost its
//! broker's queue would otherwise ask a whole fleet for 30 KB births at once); a request
//! held back waits for the gateway's next heartbeat that still disagrees.

mod alerts;
pub mod coverage;
pub mod maintenance;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use campuswatch_protocol::{
    Birth, CampusId, Death, DeviceId, DeviceInfo, DeviceKind, DeviceState, Event, GatewayState,
    Heartbeat, HostHealth, Measurements, Message, RegionCode, SchoolType, Timestamp,
};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::registry::RegistryEntry;
use coverage::{Contribution, CoverageIndex};

use crate::named::named_enum;
use crate::notify::Severity;
pub use alerts::{severity_of, AckError, Acknowledgement, AlertRules, Incident, IncidentState};
use alerts::{Link, LinkTrack};
use maintenance::{Maintenance, MaintenanceError};

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

named_enum! {
    /// The kind of link an alert is about.
    pub enum AlertKind {
        Gateway => "gateway",
        Alarm => "alarm",
        Camera => "camera",
        /// A campus's video monitoring as a whole (a share of its cameras down).
        Video => "video",
    }
}

impl From<DeviceKind> for AlertKind {
    fn from(k: DeviceKind) -> Self {
        match k {
            DeviceKind::Alarm => AlertKind::Alarm,
            DeviceKind::Camera => AlertKind::Camera,
        }
    }
}

named_enum! {
    /// `open`: a dropped link. `suppressed`: a device alert whose gateway is not online (its
    /// gateway's alert speaks for it). `resolved`: the link is back (or no longer monitored).
    pub enum AlertState {
        Open => "open",
        Suppressed => "suppressed",
        Resolved => "resolved",
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
    fn never_seen() -> Self {
        Self {
            state: GatewayState::NeverSeen,
            since: None,
            cause: None,
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
    /// Exact-size strings (no spare capacity): a province holds millions of records.
    pub probe: Box<str>,
    pub target: Box<str>,
    pub required: bool,
    /// As reported by the agent; see [`CampusView::device_state`] for what users see.
    pub state: DeviceState,
    pub since: Option<Timestamp>,
    pub cause: Option<String>,
    pub measurements: Measurements,
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
    fn outage_after(&self, state: DeviceState, at: Option<Timestamp>) -> Option<Second> {
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
    /// A regional incident was opened or changed.
    Incident(Incident),
    /// A maintenance window was planned.
    MaintenanceAdded(Maintenance),
    /// A maintenance window was withdrawn (kept in history).
    MaintenanceRemoved { id: u64 },
    /// Something to tell the operators; stored with the state that caused it.
    Notice(crate::notify::Notice),
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

/// Ask this gateway for its birth (see the module documentation).
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

/// When a gateway was last asked for a rebirth, and how often since its heartbeats last
/// agreed with the view.
#[derive(Debug, Clone, Default)]
struct RebirthTrack {
    last_request: Option<Timestamp>,
    /// Requests since the last agreeing heartbeat.
    unanswered: u32,
    /// Newer events a heartbeat announced (its id, ours then, since when).
    awaited: Option<(u64, u64, Timestamp)>,
}

impl RebirthTrack {
    /// Whether a request may go out at `now`: the first at once, then after `min`, and
    /// after twice as long each time while the gateway keeps disagreeing, up to `max`.
    fn due(&self, now: Timestamp, min: TimeDelta, max: TimeDelta) -> bool {
        let doublings = self.unanswered.saturating_sub(1).min(16);
        let gap = (min * 2i32.pow(doublings)).min(max);
        self.last_request.is_none_or(|last| now - last >= gap)
    }

    fn sent(&mut self, now: Timestamp) {
        self.last_request = Some(now);
        self.unanswered += 1;
    }

    /// A heartbeat agreed with the view: the next disagreement waits only `min`.
    fn agreed(&mut self) {
        self.unanswered = 0;
        self.awaited = None;
    }
}

#[derive(Debug, Clone)]
struct Campus {
    id: CampusId,
    /// None for a campus that reports but is not registered: listed, never counted.
    registry: Option<RegistryEntry>,
    region: RegionCode,
    gateway: GatewayRecord,
    devices: Vec<DeviceRecord>,
    /// When staleness is declared if no heartbeat comes.
    deadline: Option<Timestamp>,
    /// Heartbeat fields changed since the last flush to the store.
    heartbeat_dirty: bool,
    contribution: Contribution,
    /// Alert ids of the campus's links that have one.
    alerts: HashMap<Link, u64>,
    /// The recent course of its links, for flapping.
    links: HashMap<Link, LinkTrack>,
    /// The epoch of the last birth applied (after a restart: the stored epoch).
    birth_epoch: u64,
    rebirth: RebirthTrack,
    /// A birth just left out a camera that was still down: a video alert that ends now
    /// ends because of that, not because video came back. Cleared by the next
    /// reconciliation.
    down_camera_removed: bool,
}

impl Campus {
    fn new(id: CampusId, region: RegionCode) -> Self {
        Self {
            id,
            registry: None,
            region,
            gateway: GatewayRecord::never_seen(),
            devices: Vec::new(),
            deadline: None,
            heartbeat_dirty: false,
            contribution: Contribution::default(),
            alerts: HashMap::new(),
            links: HashMap::new(),
            birth_epoch: 0,
            rebirth: RebirthTrack::default(),
            down_camera_removed: false,
        }
    }

    fn online(&self) -> bool {
        self.gateway.state == GatewayState::Online
    }

    fn school_type(&self) -> SchoolType {
        self.registry
            .as_ref()
            .map_or(SchoolType::Other, |r| r.school_type)
    }
}

/// Read-only view of one campus for the API.
pub struct CampusView<'a> {
    pub id: &'a CampusId,
    pub region: RegionCode,
    pub registry: Option<&'a RegistryEntry>,
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

/// The fleet-wide pacing of rebirth requests: a token bucket of `rebirth_rate` tokens
/// refilled at `rebirth_rate` a second.
#[derive(Debug, Clone, Default)]
struct RebirthPace {
    tokens: f64,
    refilled: Option<Timestamp>,
}

impl RebirthPace {
    fn take(&mut self, now: Timestamp, rate: u32) -> bool {
        let rate = f64::from(rate.max(1));
        let elapsed = self.refilled.map_or(f64::INFINITY, |t| {
            (now - t).num_milliseconds().max(0) as f64 / 1000.0
        });
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.refilled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
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
    pub gateways: Vec<(CampusId, RegionCode, GatewayRecord)>,
    pub devices: Vec<(CampusId, DeviceRecord)>,
    /// Alerts not yet resolved.
    pub alerts: Vec<Alert>,
    pub max_alert_id: u64,
    /// Incidents not yet resolved.
    pub incidents: Vec<Incident>,
    pub max_incident_id: u64,
    /// Maintenance windows not withdrawn.
    pub maintenance: Vec<Maintenance>,
    pub max_maintenance_id: u64,
}

/// The state machine. See the module docs.
#[derive(Debug)]
pub struct Monitor {
    settings: Settings,
    campuses: HashMap<CampusId, Campus>,
    coverage: CoverageIndex,
    /// Registered campuses per county, for listing a county's campuses.
    by_county: HashMap<RegionCode, BTreeSet<CampusId>>,
    /// Alerts not yet resolved, by id.
    alerts: BTreeMap<u64, Alert>,
    next_alert_id: u64,
    /// Incidents not yet resolved, by id.
    incidents: BTreeMap<u64, Incident>,
    next_incident_id: u64,
    /// When a campus's alerts must be looked at again (hold-down ends, a flapping link
    /// settles).
    alert_timers: BTreeSet<(Timestamp, CampusId)>,
    /// Counties with gateway alerts waiting to be told, and since when.
    gateway_groups: BTreeMap<RegionCode, Timestamp>,
    /// Maintenance windows not withdrawn, by id.
    maintenance: BTreeMap<u64, Maintenance>,
    next_maintenance_id: u64,
    /// Since when the server cannot see the campuses (no broker), if it cannot.
    broker_lost: Option<Timestamp>,
    /// Whether the operators were told so.
    monitoring_told: bool,
    rebirth_pace: RebirthPace,
    counters: MonitorCounters,
}

impl Monitor {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            campuses: HashMap::new(),
            coverage: CoverageIndex::default(),
            by_county: HashMap::new(),
            alerts: BTreeMap::new(),
            next_alert_id: 1,
            incidents: BTreeMap::new(),
            next_incident_id: 1,
            alert_timers: BTreeSet::new(),
            gateway_groups: BTreeMap::new(),
            maintenance: BTreeMap::new(),
            next_maintenance_id: 1,
            broker_lost: None,
            monitoring_told: false,
            rebirth_pace: RebirthPace::default(),
            counters: MonitorCounters::default(),
        }
    }

    /// Rebuilds the monitor from stored state after a restart. Online gateways get a
    /// full heartbeat window from `now` before they can go stale: the server was not
    /// listening, so their silence says nothing yet.
    pub fn restore(settings: Settings, snap: Snapshot, now: Timestamp) -> Self {
        let mut m = Monitor::new(settings);
        // Until the broker answers, the server sees nobody.
        m.broker_lost = Some(now);
        m.next_alert_id = snap.max_alert_id + 1;
        let watched = |r: &RegionCode| m.settings.watches(r);
        let registry: Vec<_> = snap
            .registry
            .into_iter()
            .filter(|e| watched(&e.region))
            .collect();
        let gateways: Vec<_> = snap
            .gateways
            .into_iter()
            .filter(|g| watched(&g.1))
            .collect();
        let alerts: Vec<_> = snap
            .alerts
            .into_iter()
            .filter(|a| watched(&a.region))
            .collect();
        let incidents: Vec<_> = snap
            .incidents
            .into_iter()
            .filter(|i| watched(&i.region))
            .collect();
        for entry in registry {
            let c = m
                .campuses
                .entry(entry.campus.clone())
                .or_insert_with(|| Campus::new(entry.campus.clone(), entry.region));
            c.region = entry.region;
            c.registry = Some(entry);
        }
        for (id, region, gw) in gateways {
            let c = m
                .campuses
                .entry(id.clone())
                .or_insert_with(|| Campus::new(id, region));
            // The stored inventory came with the stored epoch (or was kept for it); a
            // wrong guess shows in the next heartbeat's digest.
            c.birth_epoch = gw.epoch;
            c.gateway = gw;
        }
        for (id, dev) in snap.devices {
            if let Some(c) = m.campuses.get_mut(&id) {
                c.devices.push(dev);
            }
        }
        m.next_incident_id = snap.max_incident_id + 1;
        m.next_maintenance_id = snap.max_maintenance_id + 1;
        for w in snap.maintenance {
            m.maintenance.insert(w.id, w);
        }
        for inc in incidents {
            m.incidents.insert(inc.id, inc);
        }
        for alert in alerts {
            if let Some(c) = m.campuses.get_mut(&alert.campus) {
                c.alerts.insert(Link::of(&alert), alert.id);
                // Its link was down when the server stopped.
                c.links.insert(Link::of(&alert), LinkTrack::down());
            }
            // Gateway alerts the server had not told yet are told after a fresh wait.
            if alert.kind == AlertKind::Gateway && !alert.notified && alert.incident.is_none() {
                m.gateway_groups.entry(alert.region).or_insert(now);
            }
            m.alerts.insert(alert.id, alert);
        }
        let ids: Vec<CampusId> = m.campuses.keys().cloned().collect();
        for id in ids {
            let window = m.window(&m.campuses[&id].gateway);
            if let Some(c) = m.campuses.get_mut(&id) {
                if c.online() {
                    c.deadline = Some(now + window);
                }
                // Look at every campus's alerts once the server runs: hold-down times
                // that ended while it was stopped.
                m.alert_timers.insert((now, id.clone()));
                if let Some(r) = &c.registry {
                    m.by_county.entry(r.region).or_default().insert(id.clone());
                }
            }
            m.refresh(&id);
        }
        m
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn window(&self, gw: &GatewayRecord) -> TimeDelta {
        let interval = if gw.heartbeat_interval_ms > 0 {
            TimeDelta::milliseconds(gw.heartbeat_interval_ms as i64)
        } else {
            self.settings.default_heartbeat_interval
        };
        interval * self.settings.missed_heartbeats as i32
    }

    // ---- registry -------------------------------------------------------------------

    /// Loads registry entries (upsert). With `replace`, campuses missing from `entries`
    /// leave the registry: they stop counting and their alerts resolve.
    pub fn set_registry(
        &mut self,
        entries: &[RegistryEntry],
        replace: bool,
        now: Timestamp,
    ) -> Vec<Change> {
        let watched: Vec<RegistryEntry>;
        let entries = if self.settings.partition.is_empty() {
            entries
        } else {
            watched = self.in_partition(entries);
            &watched
        };
        let mut changes = Vec::new();
        if replace {
            let keep: BTreeSet<&CampusId> = entries.iter().map(|e| &e.campus).collect();
            let gone: Vec<CampusId> = self
                .campuses
                .values()
                .filter(|c| c.registry.is_some() && !keep.contains(&c.id))
                .map(|c| c.id.clone())
                .collect();
            for id in gone {
                self.withdraw(&id);
                if let Some(c) = self.campuses.get_mut(&id) {
                    if let Some(r) = c.registry.take() {
                        if let Some(set) = self.by_county.get_mut(&r.region) {
                            set.remove(&id);
                        }
                    }
                }
                self.refresh(&id);
                self.reconcile_alerts(&id, now, &mut changes);
            }
        }
        for e in entries {
            self.withdraw(&e.campus);
            let c = self
                .campuses
                .entry(e.campus.clone())
                .or_insert_with(|| Campus::new(e.campus.clone(), e.region));
            if let Some(old) = c.registry.as_ref() {
                if let Some(set) = self.by_county.get_mut(&old.region) {
                    set.remove(&e.campus);
                }
            }
            c.registry = Some(e.clone());
            c.region = e.region;
            self.by_county
                .entry(e.region)
                .or_default()
                .insert(e.campus.clone());
            self.refresh(&e.campus);
            self.reconcile_alerts(&e.campus, now, &mut changes);
        }
        changes
    }

    /// The entries of campuses this server watches.
    pub fn in_partition(&self, entries: &[RegistryEntry]) -> Vec<RegistryEntry> {
        entries
            .iter()
            .filter(|e| self.settings.watches(&e.region))
            .cloned()
            .collect()
    }

    // ---- messages -------------------------------------------------------------------

    /// Applies one decoded, validated message received at `now`.
    pub fn apply(&mut self, msg: &Message, now: Timestamp) -> Outcome {
        let campus = msg.campus();
        let registered_region = self
            .campuses
            .get(campus)
            .and_then(|c| c.registry.as_ref())
            .map(|r| r.region);
        match registered_region {
            Some(region) if region != msg.region() => {
                return self.ignore(Ignored::RegionMismatch);
            }
            None => self.counters.unregistered_messages += 1,
            Some(_) => {}
        }
        if !self.campuses.contains_key(campus) {
            self.campuses
                .insert(campus.clone(), Campus::new(campus.clone(), msg.region()));
        }
        let mut out = Outcome::default();
        match msg {
            Message::Birth(b) => self.on_birth(b, now, &mut out),
            Message::Death(d) => self.on_death(d, now, &mut out),
            Message::Heartbeat(h) => self.on_heartbeat(h, now, &mut out),
            Message::Event(e) => self.on_event(e, now, &mut out),
        }
        if let Some(why) = out.ignored {
            *self.counters.ignored.entry(why.as_str()).or_default() += 1;
        }
        out
    }

    fn ignore(&mut self, why: Ignored) -> Outcome {
        *self.counters.ignored.entry(why.as_str()).or_default() += 1;
        Outcome {
            ignored: Some(why),
            ..Outcome::default()
        }
    }

    fn on_birth(&mut self, b: &Birth, now: Timestamp, out: &mut Outcome) {
        let Some(c) = self.campuses.get_mut(&b.campus) else {
            return;
        };
        if b.epoch < c.gateway.epoch {
            out.ignored = Some(Ignored::StaleEpoch);
            return;
        }
        c.birth_epoch = b.epoch;
        c.rebirth.awaited = None;
        let gw = &mut c.gateway;
        out.newly_dropped = b.dropped_events.saturating_sub(gw.dropped_events);
        // A gateway whose state directory was wiped starts counting again.
        gw.dropped_events = b.dropped_events;
        gw.epoch = b.epoch;
        gw.agent_version = Some(b.agent_version.clone());
        gw.config_digest = Some(b.config_digest.clone());
        gw.heartbeat_interval_ms = b.heartbeat_interval_ms;
        gw.last_event_id = b.last_event_id;
        gw.last_heartbeat = Some(now);
        gw.first_seen.get_or_insert(now);
        // A device reported `unknown` (an agent that restarted and has not probed it yet)
        // or `down` again continues the outage the last inventory knew of.
        let mut previous: HashMap<&DeviceId, &DeviceRecord> =
            c.devices.iter().map(|d| (&d.id, d)).collect();
        let devices: Vec<DeviceRecord> = b
            .devices
            .iter()
            .map(|d| DeviceRecord {
                id: d.id.clone(),
                kind: d.kind,
                probe: d.probe.as_str().into(),
                target: d.target.as_str().into(),
                required: d.required,
                state: d.state,
                since: d.since,
                cause: d.cause.clone(),
                measurements: d.measurements.clone(),
                info: d.info.clone().map(Box::new),
                down_since: match previous.remove(&d.id).filter(|p| p.kind == d.kind) {
                    Some(p) => p.outage_after(d.state, d.since.or(Some(now))),
                    None => (d.state == DeviceState::Down)
                        .then(|| Second::floor(d.since.unwrap_or(now))),
                },
            })
            .collect();
        let down_camera_removed = previous
            .values()
            .any(|d| d.kind == DeviceKind::Camera && d.still_down());
        c.devices = devices;
        c.down_camera_removed = down_camera_removed;
        out.changes.push(Change::Inventory {
            campus: b.campus.clone(),
            devices: c.devices.clone(),
        });
        self.counters.gateway_dropped_events += out.newly_dropped;
        self.set_gateway_state(&b.campus, GatewayState::Online, None, now, out);
        self.touch_deadline(&b.campus, now);
        self.finish(&b.campus, now, out);
    }

    fn on_death(&mut self, d: &Death, now: Timestamp, out: &mut Outcome) {
        let Some(c) = self.campuses.get(&d.campus) else {
            return;
        };
        if d.epoch != c.gateway.epoch {
            // The Last Will of an older session arriving after the new birth: the race
            // DESIGN.md warns about. It must not mark a live gateway offline.
            out.ignored = Some(Ignored::StaleEpoch);
            return;
        }
        if !matches!(c.gateway.state, GatewayState::Online | GatewayState::Stale) {
            out.ignored = Some(Ignored::SessionEnded);
            return;
        }
        let cause = match d.reason {
            campuswatch_protocol::DeathReason::Shutdown => "agent shut down",
            campuswatch_protocol::DeathReason::ConnectionLost => "connection lost",
        };
        self.set_gateway_state(
            &d.campus,
            GatewayState::Offline,
            Some(cause.to_string()),
            now,
            out,
        );
        if let Some(c) = self.campuses.get_mut(&d.campus) {
            c.deadline = None;
        }
        self.finish(&d.campus, now, out);
    }

    fn on_heartbeat(&mut self, h: &Heartbeat, now: Timestamp, out: &mut Outcome) {
        let Some(c) = self.campuses.get_mut(&h.campus) else {
            return;
        };
        if h.epoch < c.gateway.epoch {
            out.ignored = Some(Ignored::StaleEpoch);
            return;
        }
        if h.epoch == c.gateway.epoch && c.gateway.state == GatewayState::Offline {
            // A QoS 0 heartbeat overtaken by its own session's death.
            out.ignored = Some(Ignored::SessionEnded);
            return;
        }
        let gw = &mut c.gateway;
        // A newer epoch without its birth (the birth was lost or preceded our
        // subscription): the gateway is alive; keep the last inventory until a birth.
        gw.epoch = h.epoch;
        gw.last_heartbeat = Some(now);
        gw.health = Some(h.health);
        gw.first_seen.get_or_insert(now);
        c.heartbeat_dirty = true;
        let was_online = c.online();
        self.touch_deadline(&h.campus, now);
        if !was_online {
            self.set_gateway_state(&h.campus, GatewayState::Online, None, now, out);
            self.finish(&h.campus, now, out);
        }
        out.rebirth = self.check_digest(h, now);
    }

    /// Compares a heartbeat with the view; `Some` when the gateway should be asked for
    /// its birth (see the module documentation).
    fn check_digest(&mut self, h: &Heartbeat, now: Timestamp) -> Option<RebirthRequest> {
        let window = self.window(&self.campuses.get(&h.campus)?.gateway);
        let (min, max, rate) = (
            self.settings.rebirth_min_interval,
            self.settings.rebirth_max_interval,
            self.settings.rebirth_rate,
        );
        let c = self.campuses.get_mut(&h.campus)?;
        let ours = c.gateway.last_event_id;
        let reason = if h.epoch > c.birth_epoch {
            RebirthReason::BirthMissing
        } else if h.last_event_id == ours {
            c.rebirth.awaited = None;
            let agrees = h
                .states
                .chars()
                .eq(c.devices.iter().map(|d| d.state.code()));
            if agrees {
                c.rebirth.agreed();
                return None;
            }
            RebirthReason::DigestMismatch
        } else if h.last_event_id > ours {
            // Newer events on their way (a spool being replayed), or lost on the way.
            match c.rebirth.awaited {
                Some((theirs, then, since)) if theirs == h.last_event_id && then == ours => {
                    if now - since < window {
                        return None;
                    }
                    RebirthReason::EventsMissing
                }
                _ => {
                    c.rebirth.awaited = Some((h.last_event_id, ours, now));
                    return None;
                }
            }
        } else {
            // Older than what was applied: a heartbeat overtaken by an event.
            return None;
        };
        if !c.rebirth.due(now, min, max) {
            return None;
        }
        if !self.rebirth_pace.take(now, rate) {
            self.counters.rebirth_deferred += 1;
            return None;
        }
        c.rebirth.sent(now);
        *self.counters.rebirth_requests.entry(reason).or_default() += 1;
        Some(RebirthRequest {
            campus: c.id.clone(),
            region: c.region,
            epoch: h.epoch,
            reason,
        })
    }

    fn on_event(&mut self, e: &Event, now: Timestamp, out: &mut Outcome) {
        let Some(c) = self.campuses.get_mut(&e.campus) else {
            return;
        };
        out.changes.push(Change::Transition(Transition {
            campus: e.campus.clone(),
            region: c.region,
            device: Some(e.device.clone()),
            kind: e.kind.into(),
            from: e.from.as_str().to_string(),
            to: e.to.as_str().to_string(),
            at: e.at,
            cause: e.cause.clone(),
            event_id: Some(e.id),
            measurements: e.measurements.clone(),
        }));
        if e.id <= c.gateway.last_event_id {
            out.ignored = Some(Ignored::AlreadyApplied);
            return;
        }
        c.gateway.last_event_id = e.id;
        let record = match c.devices.iter_mut().find(|d| d.id == e.device) {
            Some(d) => {
                d.down_since = d.outage_after(e.to, Some(e.at));
                d.state = e.to;
                d.since = Some(e.at);
                d.cause = e.cause.clone();
                d.measurements = e.measurements.clone();
                if e.info.is_some() {
                    d.info = e.info.clone().map(Box::new);
                }
                d.clone()
            }
            None => {
                // A device the last birth did not list (config changed since): learn it.
                let d = DeviceRecord {
                    id: e.device.clone(),
                    kind: e.kind,
                    probe: "".into(),
                    target: "".into(),
                    required: e.kind == DeviceKind::Alarm,
                    state: e.to,
                    since: Some(e.at),
                    cause: e.cause.clone(),
                    measurements: e.measurements.clone(),
                    info: e.info.clone().map(Box::new),
                    down_since: (e.to == DeviceState::Down).then(|| Second::floor(e.at)),
                };
                c.devices.push(d.clone());
                d
            }
        };
        out.changes.push(Change::Device {
            campus: e.campus.clone(),
            device: record,
        });
        // The gateway record carries last_event_id, which restore relies on.
        out.changes.push(Change::Gateway {
            campus: e.campus.clone(),
            region: c.region,
            record: c.gateway.clone(),
        });
        self.finish(&e.campus, now, out);
    }

    fn touch_deadline(&mut self, id: &CampusId, now: Timestamp) {
        let window = self.window(&self.campuses[id].gateway);
        if let Some(c) = self.campuses.get_mut(id) {
            c.deadline = Some(now + window);
        }
    }

    fn set_gateway_state(
        &mut self,
        id: &CampusId,
        to: GatewayState,
        cause: Option<String>,
        now: Timestamp,
        out: &mut Outcome,
    ) {
        let Some(c) = self.campuses.get_mut(id) else {
            return;
        };
        let from = c.gateway.state;
        if from != to {
            c.gateway.state = to;
            c.gateway.since = Some(now);
            c.gateway.cause = cause.clone();
            out.changes.push(Change::Transition(Transition {
                campus: id.clone(),
                region: c.region,
                device: None,
                kind: AlertKind::Gateway,
                from: from.as_str().to_string(),
                to: to.as_str().to_string(),
                at: now,
                cause,
                event_id: None,
                measurements: Measurements::new(),
            }));
        }
        c.heartbeat_dirty = false;
        out.changes.push(Change::Gateway {
            campus: id.clone(),
            region: c.region,
            record: c.gateway.clone(),
        });
    }

    /// Recomputes coverage and alerts for a campus after its state changed.
    fn finish(&mut self, id: &CampusId, now: Timestamp, out: &mut Outcome) {
        self.refresh(id);
        self.reconcile_alerts(id, now, &mut out.changes);
    }

    // ---- time -----------------------------------------------------------------------

    /// Declares stale every online gateway whose heartbeat window ran out by `now`.
    /// Call it only while the server is connected to the broker: silence the server
    /// could not hear is not the gateways' fault.
    pub fn expire(&mut self, now: Timestamp) -> Vec<Change> {
        let due: Vec<CampusId> = self
            .campuses
            .values()
            .filter(|c| c.online() && c.deadline.is_some_and(|d| d <= now))
            .map(|c| c.id.clone())
            .collect();
        let mut out = Outcome::default();
        for id in due {
            let window = self.window(&self.campuses[&id].gateway);
            let cause = format!(
                "no heartbeat for {}s",
                (window.num_milliseconds() as f64 / 1000.0)
            );
            self.set_gateway_state(&id, GatewayState::Stale, Some(cause), now, &mut out);
            if let Some(c) = self.campuses.get_mut(&id) {
                c.deadline = None;
            }
            self.finish(&id, now, &mut out);
        }
        while let Some((at, id)) = self.alert_timers.first().cloned() {
            if at > now {
                break;
            }
            self.alert_timers.pop_first();
            self.reconcile_alerts(&id, now, &mut out.changes);
        }
        self.flush_gateway_groups(now, &mut out.changes);
        out.changes
    }

    /// The server (re)gained the broker at `now`: every online gateway gets a full
    /// window again, so a monitoring outage never turns into a wave of stale gateways.
    /// If the operators were told the server could not see, they are told it can again.
    pub fn on_broker_reconnected(&mut self, now: Timestamp) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(lost) = self.broker_lost.take() {
            if self.monitoring_told {
                changes.push(Change::Notice(alerts::monitoring_notice(lost, now, false)));
            }
        }
        self.monitoring_told = false;
        let ids: Vec<CampusId> = self
            .campuses
            .values()
            .filter(|c| c.online())
            .map(|c| c.id.clone())
            .collect();
        for id in ids {
            let window = self.window(&self.campuses[&id].gateway);
            if let Some(c) = self.campuses.get_mut(&id) {
                let fresh = now + window;
                c.deadline = Some(c.deadline.map_or(fresh, |d| d.max(fresh)));
            }
        }
        changes
    }

    /// The server lost the broker at `now`: it cannot see the campuses until it is back.
    pub fn on_broker_lost(&mut self, now: Timestamp) {
        self.broker_lost.get_or_insert(now);
    }

    /// While the broker is lost: once it has been lost for `monitoring_grace`, the
    /// operators are told (once) that nobody is being watched.
    pub fn check_monitoring(&mut self, now: Timestamp) -> Vec<Change> {
        match self.broker_lost {
            Some(lost)
                if !self.monitoring_told && now - lost >= self.settings.alerts.monitoring_grace =>
            {
                self.monitoring_told = true;
                vec![Change::Notice(alerts::monitoring_notice(lost, now, true))]
            }
            _ => Vec::new(),
        }
    }

    // ---- maintenance ------------------------------------------------------------------

    /// Plans a maintenance window (its `id` is assigned here).
    pub fn add_maintenance(
        &mut self,
        mut window: Maintenance,
        now: Timestamp,
    ) -> Result<(Maintenance, Vec<Change>), MaintenanceError> {
        window.validate()?;
        window.id = self.next_maintenance_id;
        self.next_maintenance_id += 1;
        self.maintenance.insert(window.id, window.clone());
        // Alerts it covers are told when it ends: look at them again then.
        self.recheck_quiet_alerts(now);
        Ok((window.clone(), vec![Change::MaintenanceAdded(window)]))
    }

    /// Withdraws a maintenance window; alerts it kept quiet are told now.
    pub fn remove_maintenance(
        &mut self,
        id: u64,
        now: Timestamp,
    ) -> Result<Vec<Change>, MaintenanceError> {
        self.maintenance
            .remove(&id)
            .ok_or(MaintenanceError::NotFound(id))?;
        self.recheck_quiet_alerts(now);
        Ok(vec![Change::MaintenanceRemoved { id }])
    }

    /// Maintenance windows not withdrawn, by id.
    pub fn maintenance_windows(&self) -> impl Iterator<Item = &Maintenance> {
        self.maintenance.values()
    }

    /// Looks again, at the next `expire`, at every campus with an alert not yet told.
    fn recheck_quiet_alerts(&mut self, now: Timestamp) {
        let campuses: BTreeSet<CampusId> = self
            .alerts
            .values()
            .filter(|a| !a.notified)
            .map(|a| a.campus.clone())
            .collect();
        for c in campuses {
            self.alert_timers.insert((now, c));
        }
    }

    /// Gateway records whose heartbeat fields changed since they were last taken, at
    /// most `max` of them; the others are left for the next call.
    pub fn take_heartbeat_updates(&mut self, max: usize) -> Vec<Change> {
        self.campuses
            .values_mut()
            .filter(|c| c.heartbeat_dirty)
            .take(max)
            .map(|c| {
                c.heartbeat_dirty = false;
                Change::Gateway {
                    campus: c.id.clone(),
                    region: c.region,
                    record: c.gateway.clone(),
                }
            })
            .collect()
    }

    // ---- derived state ----------------------------------------------------------------

    fn networked(&self, c: &Campus) -> (bool, bool, u64, u64) {
        let Some(r) = &c.registry else {
            return (false, false, 0, 0);
        };
        if !c.online() {
            return (false, false, 0, 0);
        }
        let up = |kind| {
            c.devices
                .iter()
                .filter(|d| d.kind == kind && d.state.is_reachable())
                .count() as u64
        };
        let (alarms, cameras) = (up(DeviceKind::Alarm), up(DeviceKind::Camera));
        let (alarm, video) = coverage::networked(
            true,
            (r.expected_alarms, r.expected_cameras),
            (alarms, cameras),
            (self.settings.alarm_fraction, self.settings.video_fraction),
        );
        (alarm, video, alarms, cameras)
    }

    fn contribution(&self, c: &Campus) -> Contribution {
        let Some(r) = &c.registry else {
            return Contribution::default();
        };
        let (alarm, video, alarms_up, cameras_up) = self.networked(c);
        Contribution {
            registered: 1,
            reporting: c.online() as u64,
            alarm_networked: alarm as u64,
            video_networked: video as u64,
            fully_networked: (alarm && video) as u64,
            alarm_expected: r.expected_alarms.into(),
            alarm_up: alarms_up.min(r.expected_alarms.into()),
            camera_expected: r.expected_cameras.into(),
            camera_up: cameras_up.min(r.expected_cameras.into()),
        }
    }

    /// Moves the campus's coverage contribution to match its current state.
    fn refresh(&mut self, id: &CampusId) {
        let Some(c) = self.campuses.get(id) else {
            return;
        };
        let new = self.contribution(c);
        let (old, region, school_type) = (c.contribution, c.region, c.school_type());
        if let Some(c) = self.campuses.get_mut(id) {
            c.contribution = new;
        }
        // The old contribution was added under the region and school type the campus has
        // now: a registry edit withdraws it first (see `withdraw`).
        if old != new {
            self.coverage.sub(region, school_type, &old);
            self.coverage.add(region, school_type, &new);
        }
    }

    /// Takes the campus's contribution out of coverage, before its registry entry (region,
    /// school type) changes underneath it.
    fn withdraw(&mut self, id: &CampusId) {
        let Some(c) = self.campuses.get_mut(id) else {
            return;
        };
        let old = std::mem::take(&mut c.contribution);
        let (region, school_type) = (c.region, c.school_type());
        self.coverage.sub(region, school_type, &old);
    }

    // ---- queries ----------------------------------------------------------------------

    pub fn coverage(&self) -> &CoverageIndex {
        &self.coverage
    }

    pub fn counters(&self) -> &MonitorCounters {
        &self.counters
    }

    pub fn campus(&self, id: &str) -> Option<CampusView<'_>> {
        self.campuses.get(id).map(|c| self.view(c))
    }

    fn view<'a>(&self, c: &'a Campus) -> CampusView<'a> {
        CampusView {
            id: &c.id,
            region: c.region,
            registry: c.registry.as_ref(),
            gateway: &c.gateway,
            devices: &c.devices,
            alarm_networked: c.contribution.alarm_networked > 0,
            video_networked: c.contribution.video_networked > 0,
            contribution: c.contribution,
        }
    }

    /// Every campus, registered or not, in id order.
    pub fn campuses(&self) -> Vec<CampusView<'_>> {
        let mut v: Vec<_> = self.campuses.values().map(|c| self.view(c)).collect();
        v.sort_by(|a, b| a.id.cmp(b.id));
        v
    }

    /// Registered campuses of one county, in id order.
    pub fn county_campuses(&self, county: &RegionCode) -> Vec<CampusView<'_>> {
        self.by_county
            .get(county)
            .into_iter()
            .flatten()
            .filter_map(|id| self.campus(id.as_str()))
            .collect()
    }

    /// Alerts that are not resolved (open and suppressed), oldest first.
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    /// Number of campuses per gateway state (registered campuses only).
    pub fn gateway_counts(&self) -> BTreeMap<GatewayState, u64> {
        let mut counts: BTreeMap<GatewayState, u64> =
            GatewayState::ALL.iter().map(|s| (*s, 0)).collect();
        for c in self.campuses.values().filter(|c| c.registry.is_some()) {
            *counts.entry(c.gateway.state).or_default() += 1;
        }
        counts
    }

    pub fn unregistered_count(&self) -> usize {
        self.campuses
            .values()
            .filter(|c| c.registry.is_none())
            .count()
    }
}

#[cfg(test)]
mod tests;
