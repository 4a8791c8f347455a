//! The alert lifecycle: when a dropped link becomes an alert, when the operators are told,
//! and when it is over. Everything is derived from the campuses' state and `now`, so a
//! restart that restores the state restores the alerts' course too.
//!
//! - A link (a gateway, an alarm device, a camera, or a campus's alarm or video
//!   networking as a whole) that is down becomes an alert once it has stayed down past its
//!   kind's **hold-down** time.
//! - **Alert meaning equals coverage meaning.** A campus whose devices in an outage take
//!   it out of alarm (or video) coverage, by the rule the coverage figures use
//!   ([`coverage::networked`]: `coverage.alarm_fraction` / `video_fraction` of the
//!   registry's expected devices reachable), has one campus-level `alarm_networking` (or
//!   `video`) alert, open since the outage that took it out. A campus that would not be
//!   networked even with every monitored device up (too few installed) has none: that is
//!   an installation gap the coverage figures show, not a dropped link.
//! - **Severity**: the gateway and a campus's alarm or video networking are critical; one
//!   alarm device or one camera is a warning.
//! - A gateway that is not online **suppresses** its devices' alerts: they are kept but
//!   not told (their devices are `unknown`); a gateway alert covers them.
//! - A link that changes state `flap_changes` times within `flap_window` is **flapping**:
//!   it gets an alert at once (hold-down or not), told once, which stays open until the
//!   link has been up and stable for `flap_window`.
//! - Gateway alerts are told after `group_wait`, grouped by county: `incident_min_gateways`
//!   or more at once become one **regional incident** (one notice that lists the campuses,
//!   one when the last of them is back); fewer are told one by one. Gateways of the county
//!   that drop while its incident is open join it silently.
//! - A resolution is told only for an alert that was told.
//! - An alert ends only when its link is **seen up** (a gateway online again, a device
//!   reported up or degraded), or when it stops being monitored: its device leaves the
//!   gateway's inventory or its campus the registry, which the notice says in those words
//!   instead of "Restored". A device reported `unknown` after having been down (its agent
//!   restarted, its gateway went away and came back) is still down as far as anyone
//!   knows: its alert goes on untold, and a hold-down under way goes on counting from
//!   when it first went down (`DeviceRecord::down_since`, kept in the store, so a server
//!   restart or a takeover does not start it over either).

use std::collections::{BTreeSet, VecDeque};

use super::*;
use crate::model::{NoticeKind, Severity};

/// Rules of the alert lifecycle; see `docs/configuration.md` (`[alerts]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    pub hold_down_gateway: TimeDelta,
    pub hold_down_alarm: TimeDelta,
    pub hold_down_camera: TimeDelta,
    /// State changes within `flap_window` that make a link flapping.
    pub flap_changes: u32,
    /// The flapping window; also how long a flapping link must stay up to resolve.
    pub flap_window: TimeDelta,
    /// Gateway alerts of one county told together from this many on.
    pub incident_min_gateways: usize,
    /// How long gateway alerts of a county are gathered before they are told.
    pub group_wait: TimeDelta,
    /// How long the server may be without the broker before the operators are told it
    /// cannot see the campuses.
    pub monitoring_grace: TimeDelta,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            hold_down_gateway: TimeDelta::seconds(30),
            hold_down_alarm: TimeDelta::zero(),
            hold_down_camera: TimeDelta::seconds(60),
            flap_changes: 6,
            flap_window: TimeDelta::minutes(10),
            incident_min_gateways: 5,
            group_wait: TimeDelta::seconds(30),
            monitoring_grace: TimeDelta::seconds(60),
        }
    }
}

impl AlertRules {
    fn hold_down(&self, kind: AlertKind) -> TimeDelta {
        match kind {
            AlertKind::Gateway => self.hold_down_gateway,
            AlertKind::Alarm | AlertKind::AlarmNetworking => self.hold_down_alarm,
            AlertKind::Camera
            | AlertKind::Video
            | AlertKind::GbDevice
            | AlertKind::GbChannel
            | AlertKind::GbAlarm => self.hold_down_camera,
        }
    }
}

/// What a link's alert is about, within its campus. Ordered so that alerts opening
/// together are numbered gateway, devices, then the campus's alarm and video networking.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Link {
    Gateway,
    Device(DeviceId),
    /// A GB/T 28181 device the campus's registry entry lists.
    GbDevice(crate::gb28181::GbCode),
    AlarmNetworking,
    Video,
}

impl Link {
    pub(super) fn of(a: &Alert) -> Link {
        match (a.kind, &a.device) {
            (AlertKind::Gateway, _) => Link::Gateway,
            (AlertKind::Video, _) => Link::Video,
            (AlertKind::AlarmNetworking, _) => Link::AlarmNetworking,
            (AlertKind::GbDevice, Some(d)) => match crate::gb28181::GbCode::parse(d.as_str()) {
                Ok(code) => Link::GbDevice(code),
                Err(_) => Link::Device(d.clone()),
            },
            (_, Some(d)) => Link::Device(d.clone()),
            // A device alert always names its device; treat a malformed one as video so
            // it still resolves.
            (_, None) => Link::Video,
        }
    }

    fn device(&self) -> Option<DeviceId> {
        match self {
            Link::Device(d) => Some(d.clone()),
            Link::GbDevice(code) => DeviceId::parse(code.as_str()).ok(),
            _ => None,
        }
    }
}

/// The recent course of one link, for flapping.
#[derive(Debug, Clone, Default)]
pub(super) struct LinkTrack {
    down: bool,
    changes: VecDeque<Timestamp>,
}

impl LinkTrack {
    /// A link known to be down, with no recent changes.
    pub(super) fn down() -> Self {
        Self {
            down: true,
            changes: VecDeque::new(),
        }
    }

    fn observe(&mut self, down: bool, now: Timestamp, window: TimeDelta) {
        if down != self.down {
            self.down = down;
            self.changes.push_back(now);
        }
        while self.changes.front().is_some_and(|t| now - *t > window) {
            self.changes.pop_front();
        }
    }

    fn flapping(&self, rules: &AlertRules) -> bool {
        self.changes.len() >= rules.flap_changes.max(2) as usize
    }

    fn last_change(&self) -> Option<Timestamp> {
        self.changes.back().copied()
    }
}

/// Who acknowledged an alert, when, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at: Timestamp,
    pub comment: Option<String>,
}

/// Many gateways of one county that dropped together, told as one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    /// The county.
    pub region: RegionCode,
    pub state: IncidentState,
    /// When the first of its gateways dropped.
    pub since: Timestamp,
    pub opened_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// Every campus that was part of it.
    pub campuses: Vec<CampusId>,
    /// Its gateway alerts not yet resolved.
    pub open_alerts: BTreeSet<u64>,
}

crate::named::named_enum! {
    pub enum IncidentState {
        Open => "open",
        Resolved => "resolved",
    }
}

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("alert {0} is not open (unknown, or already resolved)")]
    NotActive(u64),
    #[error("say who acknowledges (1 to 64 characters)")]
    NoName,
    #[error("the comment is longer than 1000 characters")]
    CommentTooLong,
}

pub fn severity_of(kind: AlertKind) -> Severity {
    match kind {
        AlertKind::Gateway | AlertKind::AlarmNetworking | AlertKind::Video => Severity::Critical,
        AlertKind::Alarm
        | AlertKind::Camera
        | AlertKind::GbDevice
        | AlertKind::GbChannel
        | AlertKind::GbAlarm => Severity::Warning,
    }
}

/// A link that is down now, as far as the server knows.
struct Down {
    kind: AlertKind,
    since: Timestamp,
    cause: Option<String>,
    cause_code: Option<CauseCode>,
    /// Known only from before the gateway stopped reporting: kept, not told.
    suppressed: bool,
    /// Reported down, then `unknown` (its agent restarted, or its gateway came back, and
    /// has not probed it yet), never up: its alert goes on, but no new one opens and its
    /// course is not followed until it is reported again.
    unseen: bool,
}

/// Why an alert ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Its link was reported up (or online, for a gateway).
    Restored,
    /// Its device left the gateway's inventory without having been reported up.
    DeviceRemoved,
    /// A device of the kind that was down left the inventory: with those still monitored,
    /// the campus could not be alarm (video) networked even if all were up, so its
    /// networking alert is an installation gap now, not a dropped link.
    DownDeviceRemoved(DeviceKind),
    /// The registry changed how many devices the campus is expected to have.
    ExpectedChanged,
    /// Its campus left the registry.
    CampusRemoved,
}

/// Whether the campus's devices of `kind` in an outage take it out of alarm (video)
/// networking by the coverage rule, and since when: `None` while it is networked, and
/// while it would not be even with all of them up (too few monitored, or none: an
/// installation gap, not a dropped link). Devices not yet probed since their agent
/// started (`unknown`, never down) are given the benefit of the doubt here, though the
/// coverage figures count them out until they are probed: nothing has dropped.
fn networking_down(
    c: &Campus,
    kind: DeviceKind,
    expected: u32,
    fraction: f64,
    now: Timestamp,
) -> Option<Down> {
    let devices: Vec<&DeviceRecord> = c.devices.iter().filter(|d| d.kind == kind).collect();
    let outages: Vec<Timestamp> = devices
        .iter()
        .filter(|d| d.still_down())
        .map(|d| d.outage_start().unwrap_or(now))
        .collect();
    let reported_down = devices
        .iter()
        .filter(|d| d.state == DeviceState::Down)
        .count();
    let (alert, what, code) = if kind == DeviceKind::Alarm {
        (
            AlertKind::AlarmNetworking,
            "alarm devices",
            "campus.alarm_down",
        )
    } else {
        (AlertKind::Video, "cameras", "campus.video_down")
    };
    let units = Units {
        monitored: devices.len(),
        outages,
        reported_down,
    };
    units.gap(expected, fraction, now, alert, what, code)
}

/// The monitored units of one kind on a campus (devices, or GB/T 28181 channels) and
/// their outages, for [`Units::gap`].
struct Units {
    monitored: usize,
    /// When each unit in an outage went down.
    outages: Vec<Timestamp>,
    /// Of those, the ones reported down (not merely unseen since).
    reported_down: usize,
}

impl Units {
    /// The rule of [`networking_down`] over any units.
    fn gap(
        mut self,
        expected: u32,
        fraction: f64,
        now: Timestamp,
        kind: AlertKind,
        what: &str,
        code: &str,
    ) -> Option<Down> {
        self.outages.sort();
        let not_down = (self.monitored - self.outages.len()) as u64;
        let need = coverage::needed(expected, fraction);
        let networked = |reachable: u64| reachable >= need;
        if networked(not_down) || !networked(self.monitored as u64) {
            return None;
        }
        // The outage that took it out: the campus was networked with it and the later
        // ones up.
        let since = self
            .outages
            .iter()
            .rev()
            .enumerate()
            .find(|(up_again, _)| networked(not_down + *up_again as u64 + 1))
            .map_or(now, |(_, t)| *t);
        Some(Down {
            kind,
            since,
            cause: Some(format!(
                "{} of {} {what} down; {need} of {expected} expected must be up",
                self.outages.len(),
                self.monitored,
            )),
            cause_code: Some(
                CauseCode::new(code)
                    .with("down", self.outages.len())
                    .with("monitored", self.monitored)
                    .with("needed", need)
                    .with("expected", expected),
            ),
            suppressed: false,
            // Out only because of units not reported since they were down.
            unseen: networked(self.monitored as u64 - self.reported_down as u64),
        })
    }
}

/// The GB/T 28181 view's video gap of a campus: its camera channels OFF or on an offline
/// device, by the same rule. Channels never seen in a catalog are an installation gap.
fn platform_video_down(
    view: &platform::PlatformView,
    expected: u32,
    fraction: f64,
    now: Timestamp,
) -> Option<Down> {
    let known: Vec<&platform::UnitState> = view
        .cameras
        .iter()
        .filter(|u| **u != platform::UnitState::Unseen)
        .collect();
    let outages: Vec<Timestamp> = known
        .iter()
        .filter_map(|u| match u {
            platform::UnitState::Down(t) => Some(*t),
            _ => None,
        })
        .collect();
    let units = Units {
        monitored: known.len(),
        reported_down: outages.len(),
        outages,
    };
    units.gap(
        expected,
        fraction,
        now,
        AlertKind::Video,
        "camera channels on the video platform",
        "campus.platform_video_down",
    )
}

impl Monitor {
    /// The links of the campus that are down now, as far as the server can tell.
    fn down_links(&self, c: &Campus, now: Timestamp) -> BTreeMap<Link, Down> {
        let mut down = BTreeMap::new();
        if c.registry.is_none() {
            return down;
        }
        if matches!(c.gateway.state, GatewayState::Stale | GatewayState::Offline) {
            down.insert(
                Link::Gateway,
                Down {
                    kind: AlertKind::Gateway,
                    since: c.gateway.since.unwrap_or(now),
                    cause: c.gateway.cause.clone(),
                    cause_code: c.gateway.cause_code.clone(),
                    suppressed: false,
                    unseen: false,
                },
            );
        }
        let online = c.online();
        let outage_since = |d: &DeviceRecord| d.outage_start().unwrap_or(now);
        for d in &c.devices {
            let link = Link::Device(d.id.clone());
            let alerted = c.alerts.contains_key(&link);
            // An alert stored before outages were kept through `unknown` goes on too.
            let still_down = d.still_down() || (alerted && d.state == DeviceState::Unknown);
            if !still_down || (!online && !alerted) {
                continue;
            }
            let unseen = d.state != DeviceState::Down;
            down.insert(
                link,
                Down {
                    kind: d.kind.into(),
                    since: outage_since(d),
                    // `unknown` says nothing of why it went down.
                    cause: if unseen {
                        None
                    } else {
                        d.cause.as_deref().map(String::from)
                    },
                    cause_code: if unseen {
                        None
                    } else {
                        d.cause_code.as_deref().cloned()
                    },
                    suppressed: !online,
                    unseen,
                },
            );
        }
        for code in c.registry.iter().flat_map(|r| &r.gb_device_ids) {
            let Some(d) = self.gb_device(code).map(|v| v.record) else {
                continue;
            };
            if d.state == platform::GbState::Offline {
                down.insert(
                    Link::GbDevice(*code),
                    Down {
                        kind: AlertKind::GbDevice,
                        since: d.since,
                        cause: d.cause.clone(),
                        cause_code: d.cause_code.clone(),
                        suppressed: false,
                        unseen: false,
                    },
                );
            }
        }
        let platform_video = self.platform_video_in_force(c);
        if let (true, Some(r)) = (platform_video, &c.registry) {
            let view = self.platform_view(c);
            if let Some(d) =
                platform_video_down(&view, r.expected_cameras, self.settings.video_fraction, now)
            {
                down.insert(Link::Video, d);
            }
        }
        if let Some(r) = &c.registry {
            for (link, kind, expected, fraction) in [
                (
                    Link::AlarmNetworking,
                    DeviceKind::Alarm,
                    r.expected_alarms,
                    self.settings.alarm_fraction,
                ),
                (
                    Link::Video,
                    DeviceKind::Camera,
                    r.expected_cameras,
                    self.settings.video_fraction,
                ),
            ] {
                if (!online && !c.alerts.contains_key(&link))
                    || (link == Link::Video && platform_video)
                {
                    continue;
                }
                if let Some(d) = networking_down(c, kind, expected, fraction, now) {
                    down.insert(
                        link,
                        Down {
                            suppressed: !online,
                            ..d
                        },
                    );
                }
            }
        }
        down
    }

    /// Brings the campus's alerts in line with its state at `now` (see the module docs).
    pub(super) fn reconcile_alerts(
        &mut self,
        id: &CampusId,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) {
        let Some(c) = self.campuses.get(id) else {
            return;
        };
        let rules = self.settings.alerts.clone();
        let down = self.down_links(c, now);
        let online = c.online();
        // Links the platform hears, whatever the agent's gateway says.
        let platform_video = self.platform_video_in_force(c);
        let heard_directly = |link: &Link| match link {
            Link::Gateway | Link::GbDevice(_) => true,
            Link::Video => platform_video,
            _ => false,
        };

        // Follow each link's course. Device links are only observed while the gateway
        // reports: behind a silent gateway their state is not news.
        let mut links: BTreeSet<Link> = down.keys().cloned().collect();
        links.extend(c.alerts.keys().cloned());
        links.extend(c.links.keys().cloned());
        let Some(c) = self.campuses.get_mut(id) else {
            return;
        };
        for link in &links {
            let observable =
                (heard_directly(link) || online) && !down.get(link).is_some_and(|d| d.unseen);
            if !observable {
                continue;
            }
            let is_down = down.get(link).is_some_and(|d| !d.suppressed);
            match c.links.get_mut(link) {
                Some(t) => t.observe(is_down, now, rules.flap_window),
                // First sight: the current state, no change.
                None if is_down => {
                    c.links.insert(
                        link.clone(),
                        LinkTrack {
                            down: true,
                            changes: VecDeque::new(),
                        },
                    );
                }
                None => {}
            }
        }
        c.links.retain(|_, t| t.down || !t.changes.is_empty());

        let mut wake: Option<Timestamp> = None;
        for link in links {
            let Some(c) = self.campuses.get(id) else {
                return;
            };
            let track = c.links.get(&link).cloned().unwrap_or_default();
            let flapping = track.flapping(&rules);
            let settled_at = track.last_change().map(|t| t + rules.flap_window);
            let existing = c.alerts.get(&link).copied();
            let mut opened = None;
            match (existing, down.get(&link)) {
                // Opens once it is reported down again, with its hold-down counted from
                // when it first went down.
                (None, Some(d)) if d.suppressed || d.unseen => {}
                (None, Some(d)) => {
                    let due = d.since + rules.hold_down(d.kind);
                    if flapping || due <= now {
                        opened = Some(self.open_alert(id, &link, d, flapping, now, changes));
                    } else {
                        wake = Some(wake.map_or(due, |w| w.min(due)));
                    }
                }
                (None, None) if flapping => {
                    // Flapping, and up at this moment: alert anyway.
                    let d = Down {
                        kind: self.link_kind(id, &link),
                        since: track.changes.front().copied().unwrap_or(now),
                        cause: Some("flapping".into()),
                        cause_code: Some(CauseCode::new("link.flapping")),
                        suppressed: false,
                        unseen: false,
                    };
                    opened = Some(self.open_alert(id, &link, &d, true, now, changes));
                    if let Some(t) = settled_at {
                        wake = Some(wake.map_or(t, |w| w.min(t)));
                    }
                }
                (None, None) => {}
                (Some(alert_id), Some(d)) => {
                    let state = if d.suppressed {
                        AlertState::Suppressed
                    } else {
                        AlertState::Open
                    };
                    let cause = d.cause.clone().map(|t| (t, d.cause_code.clone()));
                    self.update_alert(alert_id, state, cause, flapping, now, changes);
                }
                (Some(alert_id), None) => {
                    let is_flapping = self.alerts.get(&alert_id).is_some_and(|a| a.flapping);
                    match settled_at.filter(|t| is_flapping && *t > now) {
                        // A flapping link resolves once it has been stable for a window.
                        Some(t) => wake = Some(wake.map_or(t, |w| w.min(t))),
                        None => {
                            let ending = self.ending(id, &link);
                            self.resolve_alert(alert_id, ending, now, changes);
                            if let Some(c) = self.campuses.get_mut(id) {
                                c.alerts.remove(&link);
                            }
                        }
                    }
                }
            }
            if let (Some(alert_id), Some(c)) = (opened, self.campuses.get_mut(id)) {
                c.alerts.insert(link, alert_id);
            }
        }
        if let Some(t) = wake {
            self.alert_timers.insert((t, id.clone()));
        }
        if let Some(c) = self.campuses.get_mut(id) {
            c.down_alarm_removed = false;
            c.down_camera_removed = false;
            c.expected_changed = false;
        }
    }

    /// Why the alert of a link that is no longer down ends.
    fn ending(&self, id: &CampusId, link: &Link) -> Ending {
        let Some(c) = self.campuses.get(id).filter(|c| c.registry.is_some()) else {
            return Ending::CampusRemoved;
        };
        match link {
            Link::Device(d) if !c.devices.iter().any(|x| &x.id == d) => Ending::DeviceRemoved,
            Link::GbDevice(code)
                if !c
                    .registry
                    .as_ref()
                    .is_some_and(|r| r.gb_device_ids.contains(code)) =>
            {
                Ending::DeviceRemoved
            }
            Link::AlarmNetworking if c.down_alarm_removed => {
                Ending::DownDeviceRemoved(DeviceKind::Alarm)
            }
            Link::Video if c.down_camera_removed => Ending::DownDeviceRemoved(DeviceKind::Camera),
            Link::AlarmNetworking | Link::Video if c.expected_changed => Ending::ExpectedChanged,
            _ => Ending::Restored,
        }
    }

    /// The kind of alert a link gets.
    fn link_kind(&self, id: &CampusId, link: &Link) -> AlertKind {
        match link {
            Link::Gateway => AlertKind::Gateway,
            Link::Video => AlertKind::Video,
            Link::AlarmNetworking => AlertKind::AlarmNetworking,
            Link::GbDevice(_) => AlertKind::GbDevice,
            Link::Device(d) => self
                .campuses
                .get(id)
                .and_then(|c| c.devices.iter().find(|x| &x.id == d))
                .map_or(AlertKind::Camera, |x| x.kind.into()),
        }
    }

    fn open_alert(
        &mut self,
        id: &CampusId,
        link: &Link,
        d: &Down,
        flapping: bool,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) -> u64 {
        let Some(region) = self.campuses.get(id).map(|c| c.region) else {
            return 0;
        };
        let mut alert = Alert {
            id: self.next_alert_id,
            campus: id.clone(),
            region,
            device: link.device(),
            kind: d.kind,
            state: AlertState::Open,
            severity: severity_of(d.kind),
            since: d.since,
            opened_at: now,
            cause: d.cause.clone(),
            cause_code: d.cause_code.clone(),
            resolved_at: None,
            acknowledged: None,
            flapping,
            notified: false,
            incident: None,
        };
        self.next_alert_id += 1;
        if let Some(end) = self.quiet_until(&alert, now) {
            // In maintenance: kept, told when the window ends if still down.
            self.alert_timers.insert((end, id.clone()));
        } else if flapping {
            changes.push(Change::Notice(self.alert_notice(
                &alert,
                NoticeKind::AlertFlapping,
                now,
            )));
            alert.notified = true;
        } else if alert.kind == AlertKind::Gateway {
            // Told with the county's other gateways after `group_wait`.
            self.gateway_groups.entry(region).or_insert(now);
        } else {
            changes.push(Change::Notice(self.alert_notice(
                &alert,
                NoticeKind::AlertOpened,
                now,
            )));
            alert.notified = true;
        }
        changes.push(Change::Alert(alert.clone()));
        let alert_id = alert.id;
        self.alerts.insert(alert_id, alert);
        alert_id
    }

    fn update_alert(
        &mut self,
        alert_id: u64,
        state: AlertState,
        cause: Option<(String, Option<CauseCode>)>,
        flapping: bool,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) {
        let (cause, cause_code) = match cause {
            Some((text, code)) => (Some(text), code),
            None => (None, None),
        };
        let Some(a) = self.alerts.get(&alert_id) else {
            return;
        };
        let quiet = self.quiet_until(a, now);
        let starts_flapping = flapping && !a.flapping;
        // Not told yet and no longer kept quiet (its maintenance window ended): tell now.
        let tell_late =
            !a.notified && a.incident.is_none() && quiet.is_none() && state == AlertState::Open;
        if let Some(end) = quiet {
            self.alert_timers.insert((end, a.campus.clone()));
        }
        if a.state == state
            && !starts_flapping
            && !tell_late
            && (a.cause == cause || cause.is_none())
        {
            return;
        }
        let mut a = a.clone();
        a.state = state;
        if cause.is_some() {
            a.cause = cause;
            a.cause_code = cause_code;
        }
        if starts_flapping {
            a.flapping = true;
        }
        if quiet.is_some() {
            // Told when its maintenance window ends.
        } else if starts_flapping && (a.kind != AlertKind::Gateway || !a.notified) {
            changes.push(Change::Notice(self.alert_notice(
                &a,
                NoticeKind::AlertFlapping,
                now,
            )));
            a.notified = true;
        } else if tell_late {
            if a.kind == AlertKind::Gateway && !a.flapping {
                // Told with its county's group.
                self.gateway_groups.entry(a.region).or_insert(now);
            } else {
                let kind = if a.flapping {
                    NoticeKind::AlertFlapping
                } else {
                    NoticeKind::AlertOpened
                };
                changes.push(Change::Notice(self.alert_notice(&a, kind, now)));
                a.notified = true;
            }
        }
        changes.push(Change::Alert(a.clone()));
        self.alerts.insert(alert_id, a);
    }

    fn resolve_alert(
        &mut self,
        alert_id: u64,
        ending: Ending,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) {
        let Some(mut a) = self.alerts.remove(&alert_id) else {
            return;
        };
        a.state = AlertState::Resolved;
        a.resolved_at = Some(now);
        match a.incident {
            Some(inc) => self.leave_incident(inc, alert_id, now, changes),
            None if a.notified => {
                changes.push(Change::Notice(self.alert_notice_ending(
                    &a,
                    NoticeKind::AlertResolved,
                    ending,
                    now,
                )));
            }
            None => {}
        }
        changes.push(Change::Alert(a));
    }

    fn leave_incident(
        &mut self,
        incident_id: u64,
        alert_id: u64,
        now: Timestamp,
        changes: &mut Vec<Change>,
    ) {
        let Some(inc) = self.incidents.get_mut(&incident_id) else {
            return;
        };
        inc.open_alerts.remove(&alert_id);
        if !inc.open_alerts.is_empty() {
            changes.push(Change::Incident(inc.clone()));
            return;
        }
        let mut inc = inc.clone();
        self.incidents.remove(&incident_id);
        inc.state = IncidentState::Resolved;
        inc.resolved_at = Some(now);
        changes.push(Change::Notice(self.incident_notice(
            &inc,
            NoticeKind::IncidentResolved,
            now,
        )));
        changes.push(Change::Incident(inc));
    }

    /// Tells the gateway alerts whose county group has waited `group_wait`: as one
    /// incident, by joining the county's open incident, or one by one.
    pub(super) fn flush_gateway_groups(&mut self, now: Timestamp, changes: &mut Vec<Change>) {
        let wait = self.settings.alerts.group_wait;
        let due: Vec<RegionCode> = self
            .gateway_groups
            .iter()
            .filter(|(_, started)| **started + wait <= now)
            .map(|(r, _)| *r)
            .collect();
        for county in due {
            self.gateway_groups.remove(&county);
            let pending: Vec<u64> = self
                .alerts
                .values()
                .filter(|a| {
                    a.kind == AlertKind::Gateway
                        && a.region == county
                        && !a.notified
                        && a.incident.is_none()
                        && a.state == AlertState::Open
                        && self.quiet_until(a, now).is_none()
                })
                .map(|a| a.id)
                .collect();
            if pending.is_empty() {
                continue;
            }
            let open_incident = self
                .incidents
                .values()
                .find(|i| i.region == county && i.state == IncidentState::Open)
                .map(|i| i.id);
            let incident_id = match open_incident {
                Some(i) => Some(i),
                None if pending.len() >= self.settings.alerts.incident_min_gateways.max(2) => {
                    let since = pending
                        .iter()
                        .filter_map(|a| self.alerts.get(a).map(|a| a.since))
                        .min()
                        .unwrap_or(now);
                    let id = self.next_incident_id;
                    self.next_incident_id += 1;
                    self.incidents.insert(
                        id,
                        Incident {
                            id,
                            region: county,
                            state: IncidentState::Open,
                            since,
                            opened_at: now,
                            resolved_at: None,
                            campuses: Vec::new(),
                            open_alerts: BTreeSet::new(),
                        },
                    );
                    Some(id)
                }
                None => None,
            };
            let new_incident = incident_id.is_some() && open_incident.is_none();
            for alert_id in pending {
                let Some(mut a) = self.alerts.get(&alert_id).cloned() else {
                    continue;
                };
                a.notified = true;
                match incident_id.and_then(|i| self.incidents.get_mut(&i)) {
                    Some(inc) => {
                        a.incident = Some(inc.id);
                        inc.open_alerts.insert(a.id);
                        if !inc.campuses.contains(&a.campus) {
                            inc.campuses.push(a.campus.clone());
                        }
                    }
                    None => {
                        changes.push(Change::Notice(self.alert_notice(
                            &a,
                            NoticeKind::AlertOpened,
                            now,
                        )));
                    }
                }
                changes.push(Change::Alert(a.clone()));
                self.alerts.insert(alert_id, a);
            }
            if let Some(inc) = incident_id.and_then(|i| self.incidents.get(&i)).cloned() {
                if new_incident {
                    changes.push(Change::Notice(self.incident_notice(
                        &inc,
                        NoticeKind::IncidentOpened,
                        now,
                    )));
                }
                changes.push(Change::Incident(inc));
            }
        }
    }

    /// Acknowledges an open or suppressed alert: who, when, and a comment. It stays
    /// acknowledged until it resolves. The caller stores the returned alert.
    pub fn acknowledge(
        &mut self,
        alert_id: u64,
        by: &str,
        comment: Option<String>,
        now: Timestamp,
    ) -> Result<Alert, AckError> {
        let by = by.trim();
        if by.is_empty() || by.chars().count() > 64 {
            return Err(AckError::NoName);
        }
        let comment = comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        if comment.as_ref().is_some_and(|c| c.chars().count() > 1000) {
            return Err(AckError::CommentTooLong);
        }
        let a = self
            .alerts
            .get_mut(&alert_id)
            .ok_or(AckError::NotActive(alert_id))?;
        a.acknowledged = Some(Acknowledgement {
            by: by.to_string(),
            at: now,
            comment,
        });
        Ok(a.clone())
    }

    /// If a maintenance window covers the alert's link at `now`, when the last such
    /// window ends.
    pub(super) fn quiet_until(&self, a: &Alert, now: Timestamp) -> Option<Timestamp> {
        let device = match a.kind {
            AlertKind::Alarm
            | AlertKind::Camera
            | AlertKind::GbDevice
            | AlertKind::GbChannel
            | AlertKind::GbAlarm => a.device.as_ref(),
            AlertKind::Gateway | AlertKind::AlarmNetworking | AlertKind::Video => None,
        };
        self.maintenance
            .values()
            .filter(|w| w.covers(a.region, &a.campus, device))
            .filter_map(|w| w.active_until(now))
            .max()
    }

    /// Incidents not yet resolved.
    pub fn open_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values()
    }
}
