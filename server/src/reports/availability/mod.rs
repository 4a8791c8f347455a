//! Time-weighted availability of a campus's links over `[from, to)`.
//!
//! The period is cut at every transition, every maintenance boundary and every start and
//! end of a server run; between two cuts nothing changes, so each stretch is judged once:
//! - not counted when the server was not running (its view is unknown, neither up nor
//!   down) or a region or campus maintenance window covered the campus;
//! - otherwise counted, and up when the link was up: the gateway online; the campus alarm
//!   networked, video networked, fully networked by the coverage rule
//!   ([`crate::monitor::coverage::networked`]), where a device inside a device-scope
//!   window counts as reachable (the window excuses that device, not the campus).
//!
//! Availability = up time / counted time, `None` when nothing was counted.

use std::collections::BTreeMap;

use campuswatch_protocol::{
    CampusId, DeviceId, DeviceKind, DeviceState, GatewayState, RegionCode, SchoolType, Timestamp,
};
use serde::Serialize;

use crate::monitor::coverage::networked;
use crate::monitor::maintenance::{Maintenance, Scope};
use crate::monitor::{AlertKind, DeviceRecord, Transition};
use crate::registry::RegistryEntry;

/// A maintenance window as it was: valid from its planning (`created_at`) until it was
/// withdrawn, if it was.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRecord {
    pub window: Maintenance,
    pub removed_at: Option<Timestamp>,
}

impl WindowRecord {
    /// The stretches of `[from, to)` the window applied to while it existed.
    fn stretches(&self, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let from = from.max(self.window.created_at);
        let to = self.removed_at.map_or(to, |r| r.min(to));
        if from >= to {
            return Vec::new();
        }
        self.window.occurrences(from, to)
    }
}

/// One run of the server: from its start to the last time it said it was alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerRun {
    pub started_at: Timestamp,
    pub alive_at: Timestamp,
}

/// The coverage rule's fractions (from the server's `[coverage]` settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AvailabilityRules {
    pub alarm_fraction: f64,
    pub video_fraction: f64,
}

/// What the store knows of one registered campus around a period.
#[derive(Debug, Clone, PartialEq)]
pub struct CampusHistory {
    pub entry: RegistryEntry,
    /// The gateway's state at `from`.
    pub gateway: GatewayState,
    /// Each known device's kind and state at `from`.
    pub devices: BTreeMap<DeviceId, (DeviceKind, DeviceState)>,
    /// Transitions at or after `from` and before `to`, in time order.
    pub transitions: Vec<Transition>,
}

impl CampusHistory {
    /// Builds a campus's history from stored rows: `rows` holds, per link, its last
    /// transition before `from` and every transition in `[from, to)`; `inventory` is
    /// the campus's current device list. A link's state at `from` is the `to` of its last
    /// transition before `from`; failing that, the `from` of its first one in the
    /// period; failing that (a device that never changed since its gateway's birth), its
    /// current state. A gateway with no transition at all was never seen.
    pub fn from_rows(
        entry: RegistryEntry,
        from: Timestamp,
        mut rows: Vec<Transition>,
        inventory: &[DeviceRecord],
    ) -> CampusHistory {
        rows.sort_by_key(|t| t.at);
        let mut gateway = None;
        let mut devices: BTreeMap<DeviceId, (DeviceKind, DeviceState)> = BTreeMap::new();
        let mut in_period = Vec::new();
        for t in rows {
            let before = t.at < from;
            let state = if before { &t.to } else { &t.from };
            match (&t.device, t.kind) {
                (None, AlertKind::Gateway) if before || gateway.is_none() => {
                    if let Some(s) = GatewayState::parse(state) {
                        gateway = Some(s);
                    }
                }
                (Some(d), AlertKind::Alarm | AlertKind::Camera) => {
                    let kind = if t.kind == AlertKind::Alarm {
                        DeviceKind::Alarm
                    } else {
                        DeviceKind::Camera
                    };
                    if let Some(s) = DeviceState::parse(state) {
                        if before || !devices.contains_key(d) {
                            devices.insert(d.clone(), (kind, s));
                        }
                    }
                }
                // Campus video rows and malformed ones are not links of their own.
                _ => {}
            }
            if !before {
                in_period.push(t);
            }
        }
        for d in inventory {
            devices.entry(d.id.clone()).or_insert((d.kind, d.state));
        }
        CampusHistory {
            entry,
            gateway: gateway.unwrap_or(GatewayState::NeverSeen),
            devices,
            transitions: in_period,
        }
    }
}

/// Counted and up time of one link, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub counted_ms: i64,
    pub up_ms: i64,
}

impl Tally {
    fn add(&mut self, ms: i64, up: bool) {
        self.counted_ms += ms;
        if up {
            self.up_ms += ms;
        }
    }

    /// Up time over counted time; `None` when nothing was counted.
    pub fn availability(&self) -> Option<f64> {
        (self.counted_ms > 0).then(|| self.up_ms as f64 / self.counted_ms as f64)
    }
}

/// One campus's availability over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct CampusAvailability {
    pub campus: CampusId,
    pub name: String,
    pub region: RegionCode,
    pub school_type: SchoolType,
    pub gateway: Tally,
    pub alarm: Tally,
    pub video: Tally,
    pub fully: Tally,
    /// The campus's state at the end of the period (maintenance and server runs aside).
    pub end: EndState,
}

/// A campus's state at the end of a period, with since when it has not been fully
/// networked (at most since the period's start: "at least since").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndState {
    pub online: bool,
    pub alarm: bool,
    pub video: bool,
    pub not_fully_since: Option<Timestamp>,
}

fn inside(spans: &[(Timestamp, Timestamp)], t: Timestamp) -> bool {
    spans.iter().any(|(s, e)| *s <= t && t < *e)
}

/// Computes one campus's availability over `[from, to)`. See the module docs.
pub fn campus_availability(
    h: &CampusHistory,
    from: Timestamp,
    to: Timestamp,
    windows: &[WindowRecord],
    runs: &[ServerRun],
    rules: AvailabilityRules,
) -> CampusAvailability {
    let e = &h.entry;
    let mut out = CampusAvailability {
        campus: e.campus.clone(),
        name: e.name.clone(),
        region: e.region,
        school_type: e.school_type,
        gateway: Tally::default(),
        alarm: Tally::default(),
        video: Tally::default(),
        fully: Tally::default(),
        end: EndState::default(),
    };
    if from >= to {
        return out;
    }
    let observed: Vec<(Timestamp, Timestamp)> = runs
        .iter()
        .map(|r| (r.started_at.max(from), r.alive_at.min(to)))
        .filter(|(s, e)| s < e)
        .collect();
    let mut campus_off = Vec::new();
    let mut device_off: BTreeMap<&DeviceId, Vec<(Timestamp, Timestamp)>> = BTreeMap::new();
    for w in windows {
        match &w.window.scope {
            Scope::Device { campus, device } if *campus == e.campus => {
                device_off
                    .entry(device)
                    .or_default()
                    .extend(w.stretches(from, to));
            }
            Scope::Device { .. } => {}
            _ if w.window.covers(e.region, &e.campus, None) => {
                campus_off.extend(w.stretches(from, to));
            }
            _ => {}
        }
    }
    let mut cuts: Vec<Timestamp> = vec![from, to];
    cuts.extend(h.transitions.iter().map(|t| t.at));
    for (start, end) in observed
        .iter()
        .chain(&campus_off)
        .chain(device_off.values().flatten())
    {
        cuts.push(*start);
        cuts.push(*end);
    }
    cuts.retain(|t| *t >= from && *t <= to);
    cuts.sort();
    cuts.dedup();

    let mut gateway = h.gateway;
    let mut devices = h.devices.clone();
    let mut next = 0;
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        while let Some(t) = h.transitions.get(next).filter(|t| t.at <= a) {
            next += 1;
            match &t.device {
                None if t.kind == AlertKind::Gateway => {
                    if let Some(s) = GatewayState::parse(&t.to) {
                        gateway = s;
                    }
                }
                Some(d) => {
                    let kind = match t.kind {
                        AlertKind::Alarm => DeviceKind::Alarm,
                        AlertKind::Camera => DeviceKind::Camera,
                        _ => continue,
                    };
                    if let Some(s) = DeviceState::parse(&t.to) {
                        devices.insert(d.clone(), (kind, s));
                    }
                }
                None => {}
            }
        }
        let ms = (b - a).num_milliseconds();
        let online = gateway == GatewayState::Online;
        let reachable = |kind: DeviceKind| {
            devices
                .iter()
                .filter(|(id, (k, s))| {
                    *k == kind
                        && (s.is_reachable()
                            || device_off.get(id).is_some_and(|spans| inside(spans, a)))
                })
                .count() as u64
        };
        let (alarm, video) = networked(
            online,
            (e.expected_alarms, e.expected_cameras),
            (reachable(DeviceKind::Alarm), reachable(DeviceKind::Camera)),
            (rules.alarm_fraction, rules.video_fraction),
        );
        out.end = EndState {
            online,
            alarm,
            video,
            not_fully_since: match (alarm && video, out.end.not_fully_since) {
                (true, _) => None,
                (false, Some(since)) => Some(since),
                (false, None) => Some(a),
            },
        };
        if !inside(&observed, a) || inside(&campus_off, a) {
            continue;
        }
        out.gateway.add(ms, online);
        out.alarm.add(ms, alarm);
        out.video.add(ms, video);
        out.fully.add(ms, alarm && video);
    }
    out
}

/// Figures for a set of campuses (a region node, a school type).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Registered campuses in the set.
    pub registered: u64,
    /// Campus-hours counted (the gateway link's counted time, summed).
    pub observed_campus_hours: f64,
    /// Mean over campuses of each campus's availability (each campus weighs the same);
    /// `null` when no campus had counted time.
    pub gateway: Option<f64>,
    pub alarm: Option<f64>,
    pub video: Option<f64>,
    pub fully: Option<f64>,
}

/// Aggregates campuses: the mean of their availabilities, link by link, over the
/// campuses that had counted time for that link.
pub fn aggregate<'a>(campuses: impl IntoIterator<Item = &'a CampusAvailability>) -> Figures {
    #[derive(Default)]
    struct Mean(f64, u64);
    impl Mean {
        fn add(&mut self, t: &Tally) {
            if let Some(a) = t.availability() {
                self.0 += a;
                self.1 += 1;
            }
        }
        fn get(&self) -> Option<f64> {
            (self.1 > 0).then(|| self.0 / self.1 as f64)
        }
    }
    let (mut g, mut a, mut v, mut f) = Default::default();
    let (mut n, mut ms) = (0u64, 0i64);
    for c in campuses {
        n += 1;
        ms += c.gateway.counted_ms;
        Mean::add(&mut g, &c.gateway);
        Mean::add(&mut a, &c.alarm);
        Mean::add(&mut v, &c.video);
        Mean::add(&mut f, &c.fully);
    }
    Figures {
        registered: n,
        observed_campus_hours: ms as f64 / 3_600_000.0,
        gateway: g.get(),
        alarm: a.get(),
        video: v.get(),
        fully: f.get(),
    }
}

#[cfg(test)]
mod tests;
