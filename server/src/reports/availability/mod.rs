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

use crate::gb28181::GbCode;
use crate::monitor::coverage::{needed, networked};
use crate::monitor::maintenance::{Maintenance, Scope};
use crate::monitor::{AlertKind, DeviceRecord, Transition, VideoView};
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
    /// Which view says a campus's video is networked (`gb28181.video_view`).
    pub video_view: VideoView,
}

/// The GB/T 28181 side of a campus's history: its camera units (as the monitor
/// attributes them, `monitor::campus_units`) and the state of their devices and
/// channels at `from`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformHistory {
    /// Each camera unit with the device it is on; a device that is its own camera is
    /// listed with itself.
    pub cameras: Vec<(GbCode, GbCode)>,
    /// Whether each device was online at `from`.
    pub devices: BTreeMap<GbCode, bool>,
    /// Whether each channel was ON at `from`.
    pub channels: BTreeMap<GbCode, bool>,
}

impl PlatformHistory {
    /// Camera units ON: their device online and their channel ON.
    fn cameras_on(&self) -> u64 {
        self.cameras
            .iter()
            .filter(|(unit, device)| {
                self.devices.get(device).copied().unwrap_or(false)
                    && (unit == device || self.channels.get(unit).copied().unwrap_or(false))
            })
            .count() as u64
    }

    /// Takes in a GB/T 28181 row: a device's `online`/`offline`, a channel's `on`/`off`.
    fn apply(&mut self, kind: AlertKind, code: &DeviceId, state: &str) {
        let Ok(code) = GbCode::parse(code.as_str()) else {
            return;
        };
        match kind {
            AlertKind::GbDevice => {
                self.devices.insert(code, state == "online");
            }
            AlertKind::GbChannel => {
                self.channels.insert(code, state == "on");
            }
            _ => {}
        }
    }
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
    /// The GB/T 28181 side, for a campus whose registry entry lists codes.
    pub platform: Option<PlatformHistory>,
}

impl CampusHistory {
    /// Builds a campus's history from stored rows: `rows` holds, per link, its last
    /// transition before `from` and every transition in `[from, to)`; `inventory` is
    /// the campus's current device list. A link's state at `from` is the `to` of its last
    /// transition before `from`; failing that, the `from` of its first one in the
    /// period; failing that (a device that never changed since its gateway's birth), its
    /// current state. A gateway with no transition at all was never seen. `platform`
    /// holds the GB/T 28181 units with their current states; its devices and channels
    /// are judged at `from` the same way.
    pub fn from_rows(
        entry: RegistryEntry,
        from: Timestamp,
        mut rows: Vec<Transition>,
        inventory: &[DeviceRecord],
        mut platform: Option<PlatformHistory>,
    ) -> CampusHistory {
        let mut platform_set: std::collections::HashSet<(AlertKind, DeviceId)> = Default::default();
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
                (Some(d), AlertKind::GbDevice | AlertKind::GbChannel) => {
                    let first = platform_set.insert((t.kind, d.clone()));
                    if let Some(p) = platform.as_mut().filter(|_| before || first) {
                        // "unknown": before it was first seen, neither online nor ON.
                        p.apply(t.kind, d, state);
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
            platform,
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
    /// Video networked by the view in force (`AvailabilityRules::video_view`).
    pub video: Tally,
    pub fully: Tally,
    /// Video networked by the agent's view alone.
    pub video_agent: Tally,
    /// Video networked by the GB/T 28181 view, for a campus whose entry lists codes.
    pub video_platform: Option<Tally>,
    /// The campus's state at the end of the period (maintenance and server runs aside).
    pub end: EndState,
}

/// A campus's state at the end of a period, with since when it has not been fully
/// networked (at most since the period's start: "at least since").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndState {
    pub online: bool,
    pub alarm: bool,
    /// By the view in force.
    pub video: bool,
    /// By the agent's view alone.
    pub video_agent: bool,
    /// By the GB/T 28181 view; `None` for a campus without codes (and for the end of a
    /// rolled-up day, which keeps the view in force only).
    pub video_platform: Option<bool>,
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
        video_agent: Tally::default(),
        video_platform: h.platform.as_ref().map(|_| Tally::default()),
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
    let mut platform = h.platform.clone();
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
                Some(d) if matches!(t.kind, AlertKind::GbDevice | AlertKind::GbChannel) => {
                    if let Some(p) = platform.as_mut() {
                        p.apply(t.kind, d, &t.to);
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
        let (alarm, video_agent) = networked(
            online,
            (e.expected_alarms, e.expected_cameras),
            (reachable(DeviceKind::Alarm), reachable(DeviceKind::Camera)),
            (rules.alarm_fraction, rules.video_fraction),
        );
        let video_platform = platform
            .as_ref()
            .map(|p| p.cameras_on() >= needed(e.expected_cameras, rules.video_fraction));
        let video = rules.video_view.video(video_agent, video_platform);
        out.end = EndState {
            online,
            alarm,
            video,
            video_agent,
            video_platform,
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
        out.video_agent.add(ms, video_agent);
        if let (Some(t), Some(up)) = (out.video_platform.as_mut(), video_platform) {
            t.add(ms, up);
        }
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
    /// Video by the agent's view alone.
    pub video_agent: Option<f64>,
    /// Video by the GB/T 28181 view, over the campuses whose entries list codes.
    pub video_platform: Option<f64>,
    /// Campuses whose entries list GB/T 28181 codes.
    pub platform_campuses: u64,
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
    let (mut va, mut vp) = (Mean::default(), Mean::default());
    let (mut n, mut ms, mut listed) = (0u64, 0i64, 0u64);
    for c in campuses {
        n += 1;
        Mean::add(&mut va, &c.video_agent);
        if let Some(t) = &c.video_platform {
            listed += 1;
            Mean::add(&mut vp, t);
        }
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
        video_agent: va.get(),
        video_platform: vp.get(),
        platform_campuses: listed,
    }
}

#[cfg(test)]
mod tests;
