//! The GB/T 28181 view: devices (campus NVRs and cameras, or a lower platform in cascade)
//! registered to the server as to an upper platform, their channels' `Status`, and what
//! that says of each campus's video and alarm networking beside the agent's view.
//!
//! - A device is **online** from an accepted REGISTER until it unregisters (`Expires: 0`),
//!   its registration expires, or `missed_keepalives` keepalive intervals pass without a
//!   keepalive (GB/T 28181's rule: 3). After a restart every online device gets a full
//!   keepalive window from the restart (and its registration at least as long) before it
//!   can be declared offline: the server could not hear it while it was stopped.
//! - **Mapping**: a registry entry's `gb_device_ids` lists device codes (all their
//!   channels belong to the campus) and channel codes (that channel only: a cascade
//!   platform lists channels of many campuses). A channel listed by another campus
//!   belongs to that campus, not to its device's. Devices no campus lists are kept and
//!   listed for review, never counted.
//! - **The platform view of a campus**: its camera channels (type 131/132) that are ON on
//!   an online device; video networked by the same rule as the agent's cameras
//!   (`coverage.video_fraction` of the expected cameras). Alarm-input channels (134) count
//!   against alarm networking when `gb28181.alarm_channels` is set.
//! - Which view says "video networked" is [`VideoView`].

use std::collections::{HashMap, HashSet};

use campuswatch_protocol::{CampusId, CauseCode, DeviceId, Measurements, Timestamp};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::*;
use crate::gb28181::{
    AlarmInfo, ChannelInfo, ChannelKind, ChannelStatus, GbCode, GbInput, Transport,
};

crate::named::named_enum! {
    /// Which view says whether a campus's video is networked (`gb28181.video_view`).
    #[derive(utoipa::ToSchema)]
    pub enum VideoView {
        /// The GB/T 28181 view for campuses whose registry entry lists devices, the
        /// agent's for the others.
        PlatformWherePresent => "platform_where_present",
        /// The agent's cameras only.
        Agent => "agent",
        /// The GB/T 28181 channels only (campuses without devices are not networked).
        Platform => "platform",
    }
}

impl VideoView {
    /// Whether the GB/T 28181 view decides for a campus whose registry entry does
    /// (`listed`) or does not list codes.
    pub fn platform_decides(self, listed: bool) -> bool {
        match self {
            VideoView::Agent => false,
            VideoView::Platform => true,
            VideoView::PlatformWherePresent => listed,
        }
    }

    /// Video networked by the view in force, from the agent's view and the platform's
    /// (`None` for a campus that lists no codes). The monitor and the reports both
    /// judge a campus with it.
    pub fn video(self, agent: bool, platform: Option<bool>) -> bool {
        if self.platform_decides(platform.is_some()) {
            platform.unwrap_or(false)
        } else {
            agent
        }
    }
}

crate::named::named_enum! {
    /// A GB/T 28181 device's state as the platform sees it.
    #[derive(utoipa::ToSchema)]
    pub enum GbState {
        Online => "online",
        Offline => "offline",
    }
}

/// Most channels kept per device; a catalog listing more is cut there (and counted).
pub const MAX_CHANNELS: usize = 50_000;

/// The GB/T 28181 rules the monitor applies.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformRules {
    pub video_view: VideoView,
    pub alarm_channels: bool,
    /// A device is offline after this many keepalive intervals without one.
    pub missed_keepalives: u32,
}

impl Default for PlatformRules {
    fn default() -> Self {
        Self {
            video_view: VideoView::PlatformWherePresent,
            alarm_channels: false,
            missed_keepalives: 3,
        }
    }
}

/// One channel of a device's catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbChannel {
    pub id: GbCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub status: ChannelStatus,
    /// When it took this status (as far as the server saw).
    pub since: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<GbCode>,
}

/// What the server knows of one GB/T 28181 device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbDeviceRecord {
    pub id: GbCode,
    pub state: GbState,
    /// When it entered `state`.
    pub since: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_code: Option<CauseCode>,
    /// Where it registered from (`ip:port`) and how.
    pub address: String,
    pub transport: Transport,
    pub registered_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_keepalive: Option<Timestamp>,
    pub keepalive_secs: u32,
    pub first_seen: Timestamp,
    /// When its catalog was last answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_at: Option<Timestamp>,
    #[serde(default)]
    pub channels: Vec<GbChannel>,
}

impl GbDeviceRecord {
    pub fn online(&self) -> bool {
        self.state == GbState::Online
    }
}

/// A device with when it goes offline unless heard from.
#[derive(Debug, Clone)]
pub(super) struct GbDevice {
    pub(super) record: GbDeviceRecord,
    deadline: Option<Timestamp>,
    /// Keepalive fields changed since last stored.
    dirty: bool,
}

/// How one monitored unit (a camera or alarm-input channel) stands in the platform view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum UnitState {
    On,
    /// Off, or its device offline, since then.
    Down(Timestamp),
    /// Listed in the registry but never seen in a catalog.
    Unseen,
}

/// The platform view of one campus.
#[derive(Debug, Clone, Default)]
pub(super) struct PlatformView {
    /// The campus's registry entry lists GB/T 28181 codes.
    pub(super) listed: bool,
    pub(super) cameras: Vec<UnitState>,
    pub(super) alarms: Vec<UnitState>,
    /// A listed device is online but has not answered its catalog yet: what the
    /// platform sees of its channels is not known.
    pub(super) catalog_pending: bool,
}

impl PlatformView {
    pub(super) fn on(units: &[UnitState]) -> u64 {
        units.iter().filter(|u| **u == UnitState::On).count() as u64
    }
}

/// GB/T 28181 counters for /metrics.
#[derive(Debug, Default, Clone)]
pub struct PlatformCounters {
    /// Alarms from devices and channels no campus lists (kept nowhere).
    pub unmapped_alarms: u64,
    /// Channels beyond [`MAX_CHANNELS`] left out of a device's catalog.
    pub channels_dropped: u64,
    /// Inputs from a device the monitor does not know as registered (a keepalive after
    /// it went offline, say): ignored.
    pub not_registered: u64,
}

/// Where a campus's two views of its video disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disagreement {
    /// The agent sees the cameras up, the platform does not: the uplink or the platform
    /// registration is broken.
    UplinkBroken,
    /// The platform sees the channels ON, the agent does not: the agent is blind.
    AgentBlind,
}

/// A campus's video by both views.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampusVideoViews {
    /// Which view `video_networked` follows for this campus.
    pub in_force: VideoView,
    /// The agent's view (its gateway online and enough cameras up).
    pub agent: bool,
    /// The platform's view; null when the registry lists no GB/T 28181 codes for it.
    pub platform: Option<bool>,
    /// Camera channels ON on an online device, of those seen in catalogs.
    pub platform_cameras_on: u64,
    pub platform_cameras_known: u64,
    /// Codes the registry lists that no catalog has shown yet.
    pub platform_unseen: u64,
    /// Null where the views agree or one of them cannot be heard.
    pub disagreement: Option<Disagreement>,
}

/// A device as the API shows it: its record and the campus it belongs to.
pub struct GbDeviceView<'a> {
    pub record: &'a GbDeviceRecord,
    pub campus: Option<&'a CampusId>,
}

impl Monitor {
    /// The window after which a device is offline without a keepalive.
    fn gb_window(&self, keepalive_secs: u32) -> TimeDelta {
        TimeDelta::seconds(i64::from(keepalive_secs.max(1)))
            * self.settings.platform.missed_keepalives as i32
    }

    /// Rebuilds the device index of the GB/T 28181 codes the registry lists.
    pub(super) fn index_gb_codes(&mut self) {
        self.gb_owner.clear();
        for c in self.campuses.values() {
            if let Some(r) = &c.registry {
                for code in &r.gb_device_ids {
                    self.gb_owner.insert(*code, c.id.clone());
                }
            }
        }
    }

    /// Takes back the stored devices after a restart (see the module docs).
    pub(super) fn restore_gb(&mut self, devices: Vec<GbDeviceRecord>, now: Timestamp) {
        for record in devices {
            let window = self.gb_window(record.keepalive_secs);
            let deadline = record.online().then(|| {
                let due = record
                    .last_keepalive
                    .unwrap_or(record.registered_at)
                    .checked_add_signed(window)
                    .unwrap_or(record.expires_at)
                    .min(record.expires_at);
                due.max(now + window)
            });
            for ch in &record.channels {
                self.gb_channel_device.insert(ch.id, record.id);
            }
            self.gb.insert(
                record.id,
                GbDevice {
                    record,
                    deadline,
                    dirty: false,
                },
            );
        }
    }

    /// The campuses a device's state reaches: its own and those of its listed channels.
    fn gb_campuses(&self, device: &GbCode) -> HashSet<CampusId> {
        let mut out = HashSet::new();
        if let Some(c) = self.gb_owner.get(device) {
            out.insert(c.clone());
        }
        if let Some(d) = self.gb.get(device) {
            for ch in &d.record.channels {
                if let Some(c) = self.gb_owner.get(&ch.id) {
                    out.insert(c.clone());
                }
            }
        }
        out
    }

    /// Applies what the GB/T 28181 listener heard, at `now`.
    pub fn apply_gb(&mut self, input: &GbInput, now: Timestamp) -> Vec<Change> {
        let device = *input.device();
        // A keepalive only moves the deadline of a device online: its campuses, which
        // count nothing new, are not looked at.
        let heard = match input {
            GbInput::Keepalive { .. } => match self.heard(&device, now) {
                Some(true) => return Vec::new(),
                other => other,
            },
            _ => None,
        };
        let mut touched = self.gb_campuses(&device);
        let mut out = Outcome::default();
        match input {
            GbInput::Registered {
                address,
                transport,
                expires_secs,
                keepalive_secs,
                ..
            } => {
                let expires_at = now + TimeDelta::seconds(i64::from(*expires_secs));
                let window = self.gb_window(*keepalive_secs);
                let first = !self.gb.contains_key(&device);
                let d = self.gb.entry(device).or_insert_with(|| GbDevice {
                    record: GbDeviceRecord {
                        id: device,
                        state: GbState::Offline,
                        since: now,
                        cause: None,
                        cause_code: None,
                        address: String::new(),
                        transport: *transport,
                        registered_at: now,
                        expires_at,
                        last_keepalive: None,
                        keepalive_secs: *keepalive_secs,
                        first_seen: now,
                        catalog_at: None,
                        channels: Vec::new(),
                    },
                    deadline: None,
                    dirty: false,
                });
                let r = &mut d.record;
                r.address = address.to_string();
                r.transport = *transport;
                r.registered_at = now;
                r.expires_at = expires_at;
                r.keepalive_secs = *keepalive_secs;
                d.deadline = Some((now + window).min(expires_at));
                self.set_gb_state(&device, GbState::Online, None, first, now, &mut out);
            }
            GbInput::Unregistered { .. } => {
                if self.gb.contains_key(&device) {
                    let cause = (
                        "unregistered".to_string(),
                        CauseCode::new("gb.unregistered"),
                    );
                    self.set_gb_state(&device, GbState::Offline, Some(cause), false, now, &mut out);
                    if let Some(d) = self.gb.get_mut(&device) {
                        d.deadline = None;
                    }
                }
            }
            GbInput::Keepalive { .. } => match heard {
                // Offline for missed keepalives, and heard again within its registration.
                Some(_) => self.set_gb_state(&device, GbState::Online, None, false, now, &mut out),
                None => self.platform_counters.not_registered += 1,
            },
            GbInput::Catalog {
                channels, complete, ..
            } => self.apply_catalog(&device, channels, *complete, now, &mut out),
            GbInput::Alarm { alarm, .. } => self.apply_gb_alarm(&device, alarm, now, &mut out),
        }
        touched.extend(self.gb_campuses(&device));
        for id in touched {
            self.finish(&id, now, &mut out);
        }
        out.changes
    }

    /// Records a keepalive of `device` if its registration lasts: whether it was online
    /// then; `None` for a device not (or no longer) registered.
    fn heard(&mut self, device: &GbCode, now: Timestamp) -> Option<bool> {
        let keepalive_secs = self
            .gb
            .get(device)
            .filter(|d| d.record.expires_at > now)?
            .record
            .keepalive_secs;
        let window = self.gb_window(keepalive_secs);
        let d = self.gb.get_mut(device)?;
        d.record.last_keepalive = Some(now);
        d.deadline = Some((now + window).min(d.record.expires_at));
        d.dirty = true;
        Some(d.record.online())
    }

    fn set_gb_state(
        &mut self,
        device: &GbCode,
        to: GbState,
        cause: Option<(String, CauseCode)>,
        first: bool,
        now: Timestamp,
        out: &mut Outcome,
    ) {
        // Every campus whose channels it carries keeps the row: a cascade platform is
        // no one campus's device, yet its going offline is in each one's history.
        let mut campuses: Vec<(CampusId, campuswatch_protocol::RegionCode)> = self
            .gb_campuses(device)
            .into_iter()
            .filter_map(|c| self.campuses.get(&c).map(|x| (c, x.region)))
            .collect();
        campuses.sort();
        let Some(d) = self.gb.get_mut(device) else {
            return;
        };
        let r = &mut d.record;
        let from = r.state;
        if from != to || first {
            let (cause, cause_code) = cause.unzip();
            r.state = to;
            r.since = now;
            r.cause = cause.clone();
            r.cause_code = cause_code.clone();
            for (campus, region) in campuses {
                out.changes.push(Change::Transition(Transition {
                    campus,
                    region,
                    device: DeviceId::parse(device.as_str()).ok(),
                    kind: AlertKind::GbDevice,
                    from: if first { "unknown" } else { from.as_str() }.to_string(),
                    to: to.as_str().to_string(),
                    at: now,
                    cause: cause.clone(),
                    cause_code: cause_code.clone(),
                    event_id: None,
                    measurements: Measurements::new(),
                }));
            }
        }
        d.dirty = false;
        out.changes.push(Change::GbDevice(d.record.clone()));
    }

    fn apply_catalog(
        &mut self,
        device: &GbCode,
        listed: &[ChannelInfo],
        complete: bool,
        now: Timestamp,
        out: &mut Outcome,
    ) {
        let Some(d) = self.gb.get_mut(device) else {
            self.platform_counters.not_registered += 1;
            return;
        };
        let mut old: HashMap<GbCode, GbChannel> = if complete {
            std::mem::take(&mut d.record.channels)
                .into_iter()
                .map(|c| (c.id, c))
                .collect()
        } else {
            HashMap::new()
        };
        // Where each channel kept sits, so a catalog of thousands is applied in one pass.
        let mut at: HashMap<GbCode, usize> = d
            .record
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i))
            .collect();
        let mut changed: Vec<(GbCode, Option<ChannelStatus>, ChannelStatus)> = Vec::new();
        let mut gone: Vec<GbCode> = Vec::new();
        for info in listed {
            let existing = match at.get(&info.id) {
                Some(i) => d.record.channels.get(*i).cloned(),
                None => old.remove(&info.id),
            };
            let before = existing.as_ref().map(|c| c.status);
            let since = match &existing {
                Some(c) if c.status == info.status => c.since,
                _ => now,
            };
            if before != Some(info.status)
                && (before.is_some() || info.status == ChannelStatus::Off)
            {
                changed.push((info.id, before, info.status));
            }
            let ch = GbChannel {
                id: info.id,
                name: info.name.clone(),
                manufacturer: info.manufacturer.clone(),
                model: info.model.clone(),
                status: info.status,
                since,
                parent: info.parent,
            };
            match at.get(&info.id) {
                Some(i) => d.record.channels[*i] = ch,
                None if d.record.channels.len() < MAX_CHANNELS => {
                    at.insert(info.id, d.record.channels.len());
                    d.record.channels.push(ch);
                }
                None => self.platform_counters.channels_dropped += 1,
            }
        }
        // Left out of a complete catalog: no longer the device's.
        gone.extend(old.into_keys());
        d.record.catalog_at = Some(now);
        for code in gone {
            if self.gb_channel_device.get(&code) == Some(device) {
                self.gb_channel_device.remove(&code);
            }
        }
        for ch in &d.record.channels {
            self.gb_channel_device.insert(ch.id, *device);
        }
        out.changes.push(Change::GbDevice(d.record.clone()));
        for (channel, from, to) in changed {
            let campus = self
                .gb_owner
                .get(&channel)
                .or_else(|| self.gb_owner.get(device))
                .cloned();
            let Some((campus, region)) =
                campus.and_then(|c| self.campuses.get(&c).map(|x| (c, x.region)))
            else {
                continue;
            };
            out.changes.push(Change::Transition(Transition {
                campus,
                region,
                device: DeviceId::parse(channel.as_str()).ok(),
                kind: AlertKind::GbChannel,
                from: from.map_or("unknown", status_name).to_string(),
                to: status_name(to).to_string(),
                at: now,
                cause: None,
                cause_code: None,
                event_id: None,
                measurements: Measurements::new(),
            }));
        }
    }

    fn apply_gb_alarm(
        &mut self,
        device: &GbCode,
        alarm: &AlarmInfo,
        now: Timestamp,
        out: &mut Outcome,
    ) {
        let campus = self
            .gb_owner
            .get(&alarm.source)
            .or_else(|| {
                self.gb_channel_device
                    .get(&alarm.source)
                    .and_then(|d| self.gb_owner.get(d))
            })
            .or_else(|| self.gb_owner.get(device))
            .cloned();
        let Some((campus, region)) =
            campus.and_then(|c| self.campuses.get(&c).map(|x| (c, x.region)))
        else {
            self.platform_counters.unmapped_alarms += 1;
            return;
        };
        let mut code = CauseCode::new("gb.alarm");
        for (name, value) in [
            ("priority", alarm.priority.map(u16::from)),
            ("method", alarm.method.map(u16::from)),
            ("type", alarm.alarm_type),
        ] {
            if let Some(v) = value {
                code = code.with(name, v);
            }
        }
        out.changes.push(Change::Transition(Transition {
            campus,
            region,
            device: DeviceId::parse(alarm.source.as_str()).ok(),
            kind: AlertKind::GbAlarm,
            from: String::new(),
            to: "alarm".into(),
            at: alarm.time.unwrap_or(now),
            cause: alarm.description.clone(),
            cause_code: Some(code),
            event_id: None,
            measurements: Measurements::new(),
        }));
    }

    /// Declares offline every device whose keepalive window or registration ran out by
    /// `now`. Independent of the broker: devices reach the server directly.
    pub fn expire_gb(&mut self, now: Timestamp) -> Vec<Change> {
        let due: Vec<GbCode> = self
            .gb
            .values()
            .filter(|d| d.record.online() && d.deadline.is_some_and(|t| t <= now))
            .map(|d| d.record.id)
            .collect();
        let mut out = Outcome::default();
        for device in due {
            let Some(d) = self.gb.get(&device) else {
                continue;
            };
            let cause = if d.record.expires_at <= now {
                (
                    "registration expired".to_string(),
                    CauseCode::new("gb.registration_expired"),
                )
            } else {
                let seconds = self.gb_window(d.record.keepalive_secs).num_seconds();
                (
                    format!("no keepalive for {seconds}s"),
                    CauseCode::new("gb.keepalive_missed").with("seconds", seconds),
                )
            };
            self.set_gb_state(&device, GbState::Offline, Some(cause), false, now, &mut out);
            if let Some(d) = self.gb.get_mut(&device) {
                d.deadline = None;
            }
            for id in self.gb_campuses(&device) {
                self.finish(&id, now, &mut out);
            }
        }
        out.changes
    }

    /// Device records whose keepalive time changed since last taken, at most `max`.
    pub fn take_gb_keepalive_updates(&mut self, max: usize) -> Vec<Change> {
        self.gb
            .values_mut()
            .filter(|d| d.dirty)
            .take(max)
            .map(|d| {
                d.dirty = false;
                Change::GbDevice(d.record.clone())
            })
            .collect()
    }

    /// The platform view of a campus (see the module docs).
    pub(super) fn platform_view(&self, c: &Campus) -> PlatformView {
        let Some(r) = &c.registry else {
            return PlatformView::default();
        };
        let mut view = PlatformView {
            listed: !r.gb_device_ids.is_empty(),
            ..PlatformView::default()
        };
        let units = campus_units(
            &c.id,
            &r.gb_device_ids,
            |code| self.gb.get(code).map(|d| &d.record),
            |code| self.gb_channel_device.get(code).copied(),
            |code| self.gb_owner.get(code),
        );
        for u in units {
            if let (Some(d), None) = (u.device, u.channel) {
                view.catalog_pending |= d.online() && d.catalog_at.is_none();
            }
            let state = match (u.device, u.channel) {
                (None, _) => UnitState::Unseen,
                (Some(d), _) if !d.online() => {
                    UnitState::Down(u.channel.map_or(d.since, |ch| d.since.max(ch.since)))
                }
                (Some(_), Some(ch)) if ch.status == ChannelStatus::Off => UnitState::Down(ch.since),
                (Some(_), _) => UnitState::On,
            };
            match u.id.channel_kind() {
                ChannelKind::Camera => view.cameras.push(state),
                ChannelKind::AlarmInput => view.alarms.push(state),
                ChannelKind::Other => {}
            }
        }
        view
    }

    /// Every GB/T 28181 device, in code order, with the campus it belongs to.
    pub fn gb_devices(&self) -> Vec<GbDeviceView<'_>> {
        let mut v: Vec<_> = self
            .gb
            .values()
            .map(|d| GbDeviceView {
                record: &d.record,
                campus: self.gb_owner.get(&d.record.id),
            })
            .collect();
        v.sort_by_key(|d| d.record.id);
        v
    }

    pub fn gb_device(&self, code: &GbCode) -> Option<GbDeviceView<'_>> {
        self.gb.get(code).map(|d| GbDeviceView {
            record: &d.record,
            campus: self.gb_owner.get(code),
        })
    }

    /// The campus a channel of `device` counts for: its own listing, else its device's.
    pub fn gb_channel_campus(&self, channel: &GbCode, device: &GbCode) -> Option<&CampusId> {
        self.gb_owner
            .get(channel)
            .or_else(|| self.gb_owner.get(device))
    }

    /// The devices and channels a campus's registry entry lists, as they stand.
    pub fn campus_gb_devices(&self, id: &CampusId) -> Vec<&GbDeviceRecord> {
        let Some(r) = self.campuses.get(id).and_then(|c| c.registry.as_ref()) else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        r.gb_device_ids
            .iter()
            .filter_map(|code| {
                self.gb.get(code).or_else(|| {
                    self.gb_channel_device
                        .get(code)
                        .and_then(|d| self.gb.get(d))
                })
            })
            .filter(|d| seen.insert(d.record.id))
            .map(|d| &d.record)
            .collect()
    }

    /// Whether the GB/T 28181 view says if this campus's video is networked.
    pub(super) fn platform_video_in_force(&self, c: &Campus) -> bool {
        let listed = c
            .registry
            .as_ref()
            .is_some_and(|r| !r.gb_device_ids.is_empty());
        self.settings.platform.video_view.platform_decides(listed)
    }

    /// A campus's video by both views; `None` for an unknown campus.
    pub fn campus_video_views(&self, id: &str) -> Option<CampusVideoViews> {
        let c = self.campuses.get(id)?;
        let view = self.platform_view(c);
        let n = c.contribution;
        let known = view
            .cameras
            .iter()
            .filter(|u| **u != UnitState::Unseen)
            .count() as u64;
        let unseen = view.cameras.len() as u64 - known
            + view
                .alarms
                .iter()
                .filter(|u| **u == UnitState::Unseen)
                .count() as u64;
        Some(CampusVideoViews {
            in_force: if self.platform_video_in_force(c) {
                VideoView::Platform
            } else {
                VideoView::Agent
            },
            agent: n.video_agent > 0,
            platform: (n.platform_listed > 0).then_some(n.video_platform > 0),
            platform_cameras_on: PlatformView::on(&view.cameras),
            platform_cameras_known: known,
            platform_unseen: unseen,
            disagreement: if n.uplink_broken > 0 {
                Some(Disagreement::UplinkBroken)
            } else if n.agent_blind > 0 {
                Some(Disagreement::AgentBlind)
            } else {
                None
            },
        })
    }

    /// Registered campuses whose views disagree, in id order, with how.
    pub fn disagreements(&self) -> Vec<(CampusView<'_>, Disagreement)> {
        let mut v: Vec<_> = self
            .campuses
            .values()
            .filter_map(|c| {
                let how = if c.contribution.uplink_broken > 0 {
                    Disagreement::UplinkBroken
                } else if c.contribution.agent_blind > 0 {
                    Disagreement::AgentBlind
                } else {
                    return None;
                };
                Some((self.view(c), how))
            })
            .collect();
        v.sort_by(|a, b| a.0.id.cmp(b.0.id));
        v
    }

    pub fn platform_counters(&self) -> &PlatformCounters {
        &self.platform_counters
    }
}

/// One unit a campus's listed codes bring: a channel of a device's catalog, or a device
/// without a catalog that is its own camera, with what is known of it.
pub struct UnitRef<'a> {
    pub id: GbCode,
    /// The device it is on; `None` while no device has listed it (never seen).
    pub device: Option<&'a GbDeviceRecord>,
    /// The channel in that device's catalog; `None` for a device that is its own unit.
    pub channel: Option<&'a GbChannel>,
}

/// The units of `campus`, whose registry entry lists `listed`: every channel of a listed
/// device (but those another campus lists itself), and every listed channel; each once.
/// `device` finds a device's record, `channel_device` the device whose catalog lists a
/// channel, `owner` the campus that lists a code. The monitor judges the live view with
/// it and the reports the history, so both attribute channels alike.
pub fn campus_units<'a>(
    campus: &CampusId,
    listed: &[GbCode],
    device: impl Fn(&GbCode) -> Option<&'a GbDeviceRecord>,
    channel_device: impl Fn(&GbCode) -> Option<GbCode>,
    owner: impl Fn(&GbCode) -> Option<&'a CampusId>,
) -> Vec<UnitRef<'a>> {
    let mut seen: HashSet<GbCode> = HashSet::new();
    let mut out = Vec::new();
    for code in listed {
        if let Some(d) = device(code) {
            if d.channels.is_empty() && seen.insert(*code) {
                out.push(UnitRef {
                    id: *code,
                    device: Some(d),
                    channel: None,
                });
            }
            for ch in &d.channels {
                if owner(&ch.id).is_none_or(|o| o == campus) && seen.insert(ch.id) {
                    out.push(UnitRef {
                        id: ch.id,
                        device: Some(d),
                        channel: Some(ch),
                    });
                }
            }
        } else if seen.insert(*code) {
            let on = channel_device(code)
                .and_then(|dc| device(&dc))
                .and_then(|d| {
                    d.channels
                        .iter()
                        .find(|ch| ch.id == *code)
                        .map(|ch| (d, ch))
                });
            out.push(UnitRef {
                id: *code,
                device: on.map(|(d, _)| d),
                channel: on.map(|(_, ch)| ch),
            });
        }
    }
    out
}

fn status_name(s: ChannelStatus) -> &'static str {
    match s {
        ChannelStatus::On => "on",
        ChannelStatus::Off => "off",
    }
}
