//! What the operators are told about alerts, incidents and the monitoring itself: the
//! notices' titles and details, in the words docs/notifications.md shows.

use super::alerts::{Ending, Incident};
use super::*;
use crate::clock::local_time;
use crate::model::{CampusRef, Notice, NoticeKind, Severity};

impl Monitor {
    fn campus_ref(&self, id: &CampusId, region: RegionCode) -> CampusRef {
        let c = self.campuses.get(id);
        CampusRef {
            id: id.clone(),
            name: c
                .and_then(|c| c.registry.as_ref())
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            region: c.map_or(region, |c| c.region),
        }
    }

    pub(super) fn alert_notice(&self, a: &Alert, kind: NoticeKind, now: Timestamp) -> Notice {
        self.alert_notice_ending(a, kind, Ending::Restored, now)
    }

    /// A notice about an alert; a resolution says how the alert ended, and never reads
    /// "Restored" for a link that was not seen up.
    pub(super) fn alert_notice_ending(
        &self,
        a: &Alert,
        kind: NoticeKind,
        ending: Ending,
        now: Timestamp,
    ) -> Notice {
        let campus = self.campus_ref(&a.campus, a.region);
        let place = if campus.name.is_empty() {
            a.campus.to_string()
        } else {
            format!("{} ({})", campus.name, a.campus)
        };
        let what = match a.kind {
            AlertKind::Gateway => "Gateway offline".to_string(),
            AlertKind::Alarm => "Alarm link down".to_string(),
            AlertKind::Camera => "Camera down".to_string(),
            AlertKind::AlarmNetworking => "Alarm networking lost".to_string(),
            AlertKind::Video => "Video networking lost".to_string(),
            AlertKind::GbDevice => "Video platform device offline".to_string(),
            AlertKind::GbChannel => "Video platform channel off".to_string(),
            AlertKind::GbAlarm => "Video platform alarm".to_string(),
        };
        let device = a
            .device
            .as_ref()
            .map(|d| format!(", {d}"))
            .unwrap_or_default();
        let title = match kind {
            NoticeKind::AlertResolved if ending != Ending::Restored => {
                format!("No longer monitored: {what}: {place}{device}")
            }
            NoticeKind::AlertResolved => format!("Restored: {what}: {place}{device}"),
            NoticeKind::AlertFlapping => format!("Flapping: {what}: {place}{device}"),
            _ => format!("{what}: {place}{device}"),
        };
        let tz = self.settings.time_zone;
        let mut detail = format!(
            "Region {}. Down since {}.",
            a.region,
            local_time(a.since, tz)
        );
        if let Some(cause) = &a.cause {
            detail.push_str(&format!(" Cause: {cause}."));
        }
        let at = local_time(now, tz);
        match (kind, ending) {
            (NoticeKind::AlertResolved, Ending::Restored) => {
                detail.push_str(&format!(" Back since {at}."))
            }
            (NoticeKind::AlertResolved, Ending::DeviceRemoved) => detail.push_str(&format!(
                " The device was removed from the gateway's inventory at {at} without having \
                 been seen up; its link is no longer monitored."
            )),
            (NoticeKind::AlertResolved, Ending::DownDeviceRemoved(kind)) => {
                let what = match kind {
                    DeviceKind::Alarm => "An alarm device",
                    DeviceKind::Camera => "A camera",
                };
                detail.push_str(&format!(
                    " {what} that was down was removed from the gateway's inventory at {at}; \
                     with those still monitored the campus could not be networked even if all \
                     were up (an installation gap, shown by the coverage figures). None was \
                     seen up."
                ))
            }
            (NoticeKind::AlertResolved, Ending::ExpectedChanged) => detail.push_str(&format!(
                " The registry changed the devices the campus is expected to have at {at}; \
                 by the new figures its outage no longer takes it out of coverage. None was \
                 seen up."
            )),
            (NoticeKind::AlertResolved, Ending::CampusRemoved) => detail.push_str(&format!(
                " The campus was removed from the registry at {at} without having been seen \
                 up; it is no longer monitored."
            )),
            (NoticeKind::AlertFlapping, _) => detail.push_str(&format!(
                " The link changes state again and again; this alert stays open until it has \
                 been stable for {} min.",
                self.settings.alerts.flap_window.num_minutes()
            )),
            _ => {}
        }
        Notice {
            id: format!(
                "alert-{}-{}",
                a.id,
                match kind {
                    NoticeKind::AlertResolved => "resolved",
                    NoticeKind::AlertFlapping => "flapping",
                    _ => "opened",
                }
            ),
            kind,
            severity: if kind == NoticeKind::AlertResolved {
                Severity::Info.max(a.severity)
            } else {
                a.severity
            },
            region: Some(a.region),
            campus: Some(campus),
            device: a.device.clone(),
            link: Some(a.kind.as_str().to_string()),
            alert_id: Some(a.id),
            incident_id: a.incident,
            title,
            detail,
            since: a.since,
            at: now,
            campuses: Vec::new(),
            path: format!("/console/campuses/{}", a.campus),
        }
    }

    pub(super) fn incident_notice(
        &self,
        inc: &Incident,
        kind: NoticeKind,
        now: Timestamp,
    ) -> Notice {
        let campuses: Vec<CampusRef> = inc
            .campuses
            .iter()
            .map(|c| self.campus_ref(c, inc.region))
            .collect();
        let n = campuses.len();
        let title = match kind {
            NoticeKind::IncidentResolved => {
                format!("Restored: {n} campus gateways of region {}", inc.region)
            }
            _ => format!("{n} campus gateways offline in region {}", inc.region),
        };
        let listed: Vec<String> = campuses
            .iter()
            .take(20)
            .map(|c| {
                if c.name.is_empty() {
                    c.id.to_string()
                } else {
                    format!("{} ({})", c.name, c.id)
                }
            })
            .collect();
        let more = if n > listed.len() {
            format!(" and {} more", n - listed.len())
        } else {
            String::new()
        };
        let tz = self.settings.time_zone;
        let mut detail = format!(
            "Since {}: {}{more}.",
            local_time(inc.since, tz),
            listed.join(", ")
        );
        if kind == NoticeKind::IncidentResolved {
            detail.push_str(&format!(" All back since {}.", local_time(now, tz)));
        }
        Notice {
            id: format!(
                "incident-{}-{}",
                inc.id,
                if kind == NoticeKind::IncidentResolved {
                    "resolved"
                } else {
                    "opened"
                }
            ),
            kind,
            severity: Severity::Critical,
            region: Some(inc.region),
            campus: None,
            device: None,
            link: Some(AlertKind::Gateway.as_str().to_string()),
            alert_id: None,
            incident_id: Some(inc.id),
            title,
            detail,
            since: inc.since,
            at: now,
            campuses,
            path: format!("/console/incidents/{}", inc.id),
        }
    }
}

/// The server cannot see the campuses since `lost` (`degraded`), or can again.
pub(super) fn monitoring_notice(
    lost: Timestamp,
    now: Timestamp,
    degraded: bool,
    tz: chrono_tz::Tz,
) -> Notice {
    let since = local_time(lost, tz);
    let (kind, severity, title, detail, suffix) = if degraded {
        (
            NoticeKind::MonitoringDegraded,
            Severity::Critical,
            "Monitoring interrupted: the server cannot reach the MQTT broker".to_string(),
            format!(
                "Since {since} campuswatch receives nothing from the campus gateways. No \
                 campus is flagged for this time; dropped links are not seen until the \
                 broker is back."
            ),
            "degraded",
        )
    } else {
        (
            NoticeKind::MonitoringRestored,
            Severity::Info,
            "Monitoring restored: the server reaches the MQTT broker again".to_string(),
            format!(
                "Interrupted from {since} to {}. Gateways get a full heartbeat window before \
                 any is judged silent.",
                local_time(now, tz)
            ),
            "restored",
        )
    };
    Notice {
        id: format!("monitoring-{}-{suffix}", lost.timestamp_millis()),
        kind,
        severity,
        region: None,
        campus: None,
        device: None,
        link: None,
        alert_id: None,
        incident_id: None,
        title,
        detail,
        since: lost,
        at: now,
        campuses: Vec::new(),
        path: "/console".into(),
    }
}
