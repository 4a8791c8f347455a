//! The monitor: the server's pure state machine.
//!
//! It turns births, deaths, heartbeats and events into gateway and device states, keeps
//! the alerts that flag dropped links, and maintains coverage incrementally. It does no
//! I/O and reads no clock: every method takes `now`, and every change that must be stored
//! comes back as a [`Change`] for the caller to persist. One task owns it; readers get
//! short read-locked views.
//!
//! How heartbeats are checked against the view, and when and how often a gateway is asked
//! for its birth again, is told in `rebirth.rs`.

mod alerts;
mod compact;
pub mod coverage;
pub mod maintenance;
mod notices;
mod platform;
mod rebirth;
mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use campuswatch_protocol::{
    Birth, CampusId, CauseCode, Death, DeviceId, DeviceKind, DeviceState, Event, GatewayState,
    Heartbeat, Measurements, Message, RegionCode, SchoolType, Timestamp,
};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::registry::RegistryEntry;
use coverage::{Contribution, CoverageIndex};

pub use alerts::{severity_of, AckError, Acknowledgement, AlertRules, Incident, IncidentState};
use alerts::{Link, LinkTrack};
pub use compact::{ProbeName, Readings};
use maintenance::{Maintenance, MaintenanceError};
pub use platform::{
    campus_units, CampusVideoViews, Disagreement, GbChannel, GbDeviceRecord, GbDeviceView, GbState,
    PlatformCounters, PlatformRules, UnitRef, VideoView, MAX_CHANNELS,
};
use platform::{GbDevice, PlatformView};
use rebirth::{RebirthPace, RebirthTrack};
pub use types::{
    Alert, AlertKind, AlertState, CampusView, Change, DeviceRecord, GatewayRecord, Ignored,
    MonitorCounters, Outcome, RebirthReason, RebirthRequest, Second, Settings, Snapshot,
    Transition,
};

#[derive(Debug, Clone)]
struct Campus {
    id: CampusId,
    /// None for a campus that reports but is not registered: listed, never counted.
    registry: Option<RegistryEntry>,
    /// When it entered the registry (while it is in it).
    registered_at: Option<Timestamp>,
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
    /// A birth just left out an alarm device (a camera) that was still down, or the
    /// registry changed the campus's expected devices: an alarm (video) networking alert
    /// that ends now ends because of that, not because the devices came back. Cleared by
    /// the next reconciliation.
    down_alarm_removed: bool,
    down_camera_removed: bool,
    expected_changed: bool,
}

impl Campus {
    fn new(id: CampusId, region: RegionCode) -> Self {
        Self {
            id,
            registry: None,
            registered_at: None,
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
            down_alarm_removed: false,
            down_camera_removed: false,
            expected_changed: false,
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

/// What a campus's state says of its networking (see [`Monitor::networked`]).
#[derive(Debug, Default, Clone, Copy)]
struct Networked {
    /// In force: what coverage and alerts count.
    alarm: bool,
    video: bool,
    alarms_up: u64,
    cameras_up: u64,
    /// The agent's view of video.
    agent_video: bool,
    /// The GB/T 28181 view of video, for campuses whose devices the registry lists.
    platform_video: Option<bool>,
    /// The agent's view is known: its gateway online, and its cameras probed enough to
    /// say (a campus short of cameras only because some are not probed yet is not).
    agent_known: bool,
    /// The platform's view is known: no listed device still owes its first catalog.
    platform_known: bool,
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
    /// GB/T 28181 devices registered (or once registered) to the server, by code.
    gb: HashMap<crate::gb28181::GbCode, GbDevice>,
    /// The campus each GB/T 28181 code of the registry belongs to.
    gb_owner: HashMap<crate::gb28181::GbCode, CampusId>,
    /// The device whose catalog lists each channel.
    gb_channel_device: HashMap<crate::gb28181::GbCode, crate::gb28181::GbCode>,
    platform_counters: PlatformCounters,
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
            gb: HashMap::new(),
            gb_owner: HashMap::new(),
            gb_channel_device: HashMap::new(),
            platform_counters: PlatformCounters::default(),
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
            // Stores from before the registration time was kept know the last import's.
            c.registered_at = snap.registered_at.get(&entry.campus).copied();
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
        for (id, devices) in snap.devices {
            if let Some(c) = m.campuses.get_mut(&id) {
                c.devices = devices;
            }
        }
        m.index_gb_codes();
        m.restore_gb(snap.gb_devices, now);
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
                    c.registered_at = None;
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
                c.expected_changed = (old.expected_alarms, old.expected_cameras)
                    != (e.expected_alarms, e.expected_cameras);
            }
            if c.registry.is_none() {
                c.registered_at = Some(now);
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
        // GB/T 28181 codes may have changed hands: every campus that lists codes, or
        // listed some, looks again with the new owners.
        let mut gb_campuses: BTreeSet<CampusId> = self.gb_owner.values().cloned().collect();
        self.index_gb_codes();
        gb_campuses.extend(self.gb_owner.values().cloned());
        for id in gb_campuses {
            self.refresh(&id);
            self.reconcile_alerts(&id, now, &mut changes);
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
                cause: d.cause.as_deref().map(Box::from),
                cause_code: d.cause_code.clone().map(Box::new),
                measurements: Readings::from(&d.measurements),
                info: d.info.clone().map(Box::new),
                down_since: match previous.remove(&d.id).filter(|p| p.kind == d.kind) {
                    Some(p) => p.outage_after(d.state, d.since.or(Some(now))),
                    None => (d.state == DeviceState::Down)
                        .then(|| Second::floor(d.since.unwrap_or(now))),
                },
            })
            .collect();
        let down_removed = |kind| previous.values().any(|d| d.kind == kind && d.still_down());
        c.down_alarm_removed = down_removed(DeviceKind::Alarm);
        c.down_camera_removed = down_removed(DeviceKind::Camera);
        c.devices = devices;
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
        let (code, text) = match d.reason {
            campuswatch_protocol::DeathReason::Shutdown => ("gateway.shutdown", "agent shut down"),
            campuswatch_protocol::DeathReason::ConnectionLost => {
                ("gateway.connection_lost", "connection lost")
            }
        };
        self.set_gateway_state(
            &d.campus,
            GatewayState::Offline,
            Some((text.to_string(), CauseCode::new(code))),
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
            cause_code: e.cause_code.clone(),
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
                d.cause = e.cause.as_deref().map(Box::from);
                d.cause_code = e.cause_code.clone().map(Box::new);
                d.measurements = Readings::from(&e.measurements);
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
                    cause: e.cause.as_deref().map(Box::from),
                    cause_code: e.cause_code.clone().map(Box::new),
                    measurements: Readings::from(&e.measurements),
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
        cause: Option<(String, CauseCode)>,
        now: Timestamp,
        out: &mut Outcome,
    ) {
        let (cause, cause_code) = cause.unzip();
        let Some(c) = self.campuses.get_mut(id) else {
            return;
        };
        let from = c.gateway.state;
        if from != to {
            c.gateway.state = to;
            c.gateway.since = Some(now);
            c.gateway.cause = cause.clone();
            c.gateway.cause_code = cause_code.clone();
            out.changes.push(Change::Transition(Transition {
                campus: id.clone(),
                region: c.region,
                device: None,
                kind: AlertKind::Gateway,
                from: from.as_str().to_string(),
                to: to.as_str().to_string(),
                at: now,
                cause,
                cause_code,
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
            let seconds = window.num_milliseconds() as f64 / 1000.0;
            let cause = (
                format!("no heartbeat for {seconds}s"),
                CauseCode::new("gateway.no_heartbeat").with("seconds", seconds),
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
                changes.push(Change::Notice(notices::monitoring_notice(
                    lost,
                    now,
                    false,
                    self.settings.time_zone,
                )));
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
                vec![Change::Notice(notices::monitoring_notice(
                    lost,
                    now,
                    true,
                    self.settings.time_zone,
                ))]
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

    /// What the campus's state says of its networking, by the agent's view and the
    /// GB/T 28181 view, and which of them is in force (see `platform.rs`).
    fn networked(&self, c: &Campus) -> Networked {
        let Some(r) = &c.registry else {
            return Networked::default();
        };
        let online = c.online();
        let up = |kind| {
            c.devices
                .iter()
                .filter(|d| d.kind == kind && d.state.is_reachable())
                .count() as u64
        };
        let (alarms, cameras) = if online {
            (up(DeviceKind::Alarm), up(DeviceKind::Camera))
        } else {
            (0, 0)
        };
        // Cameras not probed yet since their agent started.
        let unprobed = c
            .devices
            .iter()
            .filter(|d| d.kind == DeviceKind::Camera && d.state == DeviceState::Unknown)
            .count() as u64;
        let need_cameras = coverage::needed(r.expected_cameras, self.settings.video_fraction);
        let (agent_alarm, agent_video) = coverage::networked(
            online,
            (r.expected_alarms, r.expected_cameras),
            (alarms, cameras),
            (self.settings.alarm_fraction, self.settings.video_fraction),
        );
        let view = self.platform_view(c);
        let platform_video = view
            .listed
            .then(|| PlatformView::on(&view.cameras) >= need_cameras);
        let video = self
            .settings
            .platform
            .video_view
            .video(agent_video, platform_video);
        let alarm_channels_on = !self.settings.platform.alarm_channels
            || view.alarms.iter().all(|u| *u == platform::UnitState::On);
        Networked {
            alarm: agent_alarm && alarm_channels_on,
            video,
            alarms_up: alarms,
            cameras_up: cameras,
            agent_video,
            platform_video,
            // Not networked only for want of a first look: neither view has spoken yet.
            agent_known: online && (agent_video || cameras + unprobed < need_cameras),
            platform_known: platform_video == Some(true) || !view.catalog_pending,
        }
    }

    fn contribution(&self, c: &Campus) -> Contribution {
        let Some(r) = &c.registry else {
            return Contribution::default();
        };
        let n = self.networked(c);
        // The views disagree only where both can be heard: the agent's gateway online
        // and the campus's devices listed.
        let disagree = |agent: bool| {
            (n.agent_known
                && n.platform_known
                && n.platform_video
                    .is_some_and(|p| p != n.agent_video && n.agent_video == agent))
                as u64
        };
        Contribution {
            registered: 1,
            reporting: c.online() as u64,
            alarm_networked: n.alarm as u64,
            video_networked: n.video as u64,
            fully_networked: (n.alarm && n.video) as u64,
            alarm_expected: r.expected_alarms.into(),
            alarm_up: n.alarms_up.min(r.expected_alarms.into()),
            camera_expected: r.expected_cameras.into(),
            camera_up: n.cameras_up.min(r.expected_cameras.into()),
            video_agent: n.agent_video as u64,
            platform_listed: n.platform_video.is_some() as u64,
            video_platform: n.platform_video.unwrap_or(false) as u64,
            uplink_broken: disagree(true),
            agent_blind: disagree(false),
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
            registered_at: c.registered_at,
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
