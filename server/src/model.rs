//! What the parts of the server say to each other about alerts: their kinds, states and
//! severity, and the notices the monitor emits, the store keeps and the dispatcher sends. A leaf: it
//! depends on nothing else in the server, so the monitor, the store and the notifiers
//! can all use it without depending on each other.

use campuswatch_protocol::{CampusId, DeviceId, DeviceKind, RegionCode, Timestamp};
use serde::{Deserialize, Serialize};

use crate::named::named_enum;

named_enum! {
    /// The kind of link an alert is about.
    #[derive(utoipa::ToSchema)]
    pub enum AlertKind {
        Gateway => "gateway",
        Alarm => "alarm",
        Camera => "camera",
        /// A campus's video networking as a whole: its cameras in an outage took it out of
        /// video coverage (by the coverage rule).
        Video => "video",
        /// A campus's alarm networking as a whole: its alarm devices in an outage took it
        /// out of alarm coverage (by the coverage rule).
        AlarmNetworking => "alarm_networking",
        /// A GB/T 28181 device registered to the server as a platform (an NVR, a camera,
        /// a lower platform) went offline.
        GbDevice => "gb_device",
        /// A GB/T 28181 channel's catalog `Status` changed (history only, never an alert).
        GbChannel => "gb_channel",
        /// A GB/T 28181 `Alarm` notification (history only: an event of the campus).
        GbAlarm => "gb_alarm",
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
    #[derive(utoipa::ToSchema)]
    pub enum AlertState {
        Open => "open",
        Suppressed => "suppressed",
        Resolved => "resolved",
    }
}

named_enum! {
    /// How urgent a notice is. Ordered: `Info < Warning < Critical`.
    #[derive(PartialOrd, Ord, utoipa::ToSchema)]
    pub enum Severity {
        Info => "info",
        Warning => "warning",
        Critical => "critical",
    }
}

named_enum! {
    /// What happened.
    pub enum NoticeKind {
        /// A link (gateway, alarm, camera, or a campus's video as a whole) dropped and
        /// stayed down past its hold-down time.
        AlertOpened => "alert_opened",
        /// An alerted link recovered, or stopped being watched (its device left the
        /// inventory, its campus the registry): the notice says which.
        AlertResolved => "alert_resolved",
        /// A link changes state too often; said once while it keeps flapping.
        AlertFlapping => "alert_flapping",
        /// Many gateways of one region dropped within a short window: one notice for all.
        IncidentOpened => "incident_opened",
        /// The gateways of a regional incident are back (or the incident was closed).
        IncidentResolved => "incident_resolved",
        /// The server cannot see the campuses (broker lost): nobody is flagged meanwhile.
        MonitoringDegraded => "monitoring_degraded",
        /// The server sees the campuses again.
        MonitoringRestored => "monitoring_restored",
        /// Made by the dispatcher, not the monitor: stands in for the notices a channel's
        /// rate limit held back ("37 more notices: …").
        Summary => "summary",
    }
}

impl NoticeKind {
    /// Whether the notice ends a problem (Alertmanager: `endsAt` set).
    pub fn is_resolution(self) -> bool {
        matches!(
            self,
            NoticeKind::AlertResolved
                | NoticeKind::IncidentResolved
                | NoticeKind::MonitoringRestored
        )
    }
}

/// A campus named in a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampusRef {
    pub id: CampusId,
    /// The registry name; empty for a campus that is not registered.
    pub name: String,
    pub region: RegionCode,
}

/// One thing to tell the operators. Rendered by each channel in its own format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Unique and deterministic (`alert-42-opened`, `incident-7-resolved`): a notice
    /// derived twice from the same event has the same id, and channels that can pass an
    /// idempotency key (webhook) pass this one.
    pub id: String,
    pub kind: NoticeKind,
    pub severity: Severity,
    /// The region it concerns, for routing: the campus's county, or the region of an
    /// incident (any level). `None` for monitoring notices, which go to every channel.
    pub region: Option<RegionCode>,
    /// The campus, for alert notices.
    pub campus: Option<CampusRef>,
    /// The device, for an alarm or camera alert.
    pub device: Option<DeviceId>,
    /// `gateway`, `alarm`, `camera` or `video` (a campus's cameras as a whole).
    pub link: Option<String>,
    /// The alert or incident this notice is about.
    pub alert_id: Option<u64>,
    pub incident_id: Option<u64>,
    /// One line: what dropped, where. ("Alarm link down: No. 3 Kindergarten
    /// (150102-K-0003), alarm-1")
    pub title: String,
    /// A few lines: cause, since when, what else is affected.
    pub detail: String,
    /// When the problem began (the link dropped, the incident started).
    pub since: Timestamp,
    /// When this notice was made.
    pub at: Timestamp,
    /// The campuses of an incident (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campuses: Vec<CampusRef>,
    /// The console page about it, relative to the console's base URL
    /// (`/console/campuses/150102-K-0003`).
    pub path: String,
}
