//! Live updates for open consoles: what changed, as soon as it is stored.
//!
//! The engine publishes each committed change of interest (a link's transition, an
//! alert, an incident, a GB/T 28181 device's registration, state or catalog, a registry
//! import) on a broadcast channel; every console holds a
//! server-sent-events stream (`GET /api/v1/live`) fed from it, filtered by the user's
//! region scope. A console that falls too far behind is not waited for: it gets a
//! `resync` event and reloads what it shows, so one slow browser never slows the
//! engine or the other consoles.

use campuswatch_protocol::{CampusId, RegionCode};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::monitor::Change;

/// How many events a console may fall behind before it must resync: room for a whole
/// county's gateways dropping at once (1,612 at a time in load-bench's province, which
/// made consoles resync with 1,024), when operators most need to see each one.
pub const BACKLOG: usize = 8192;

/// One thing that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveEvent {
    /// `transition` (a gateway or device changed state), `alert`, `incident`,
    /// `gb_device` (a GB/T 28181 device registered, changed state or answered a catalog)
    /// or `registry`.
    pub kind: &'static str,
    /// The region it concerns (a county); `None` for changes that concern everyone.
    pub region: Option<RegionCode>,
    pub campus: Option<CampusId>,
    /// The transition, alert or incident as the API shows it elsewhere.
    pub data: serde_json::Value,
}

impl LiveEvent {
    /// The event a stored change gives consoles, if any.
    pub fn of(change: &Change) -> Option<LiveEvent> {
        match change {
            Change::Transition(t) => Some(LiveEvent {
                kind: "transition",
                region: Some(t.region),
                campus: Some(t.campus.clone()),
                data: serde_json::to_value(t).unwrap_or_default(),
            }),
            Change::Alert(a) => Some(LiveEvent {
                kind: "alert",
                region: Some(a.region),
                campus: Some(a.campus.clone()),
                data: serde_json::to_value(a).unwrap_or_default(),
            }),
            Change::Incident(i) => Some(LiveEvent {
                kind: "incident",
                region: Some(i.region),
                campus: None,
                data: serde_json::to_value(i).unwrap_or_default(),
            }),
            Change::GbDevice(d) => gb_device(d),
            _ => None,
        }
    }

    /// A registry import: coverage figures everywhere may have changed.
    pub fn registry() -> LiveEvent {
        LiveEvent {
            kind: "registry",
            region: None,
            campus: None,
            data: serde_json::Value::Null,
        }
    }
}

/// A GB/T 28181 device's record as consoles get it: what the device lists show of it,
/// not its channels (a catalog may hold thousands; a page that shows them asks).
///
/// A record whose newest news is a keepalive is not sent: keepalives change nothing a
/// console draws but the last keepalive's time, and every registered device sends one a
/// minute, so sending them would redraw every open console all the time. A keepalive
/// that brings a device back online sets its `since` too, and is sent.
///
/// The region is the code's division, by which the API also scopes a device no campus
/// lists; a code naming no division is sent to nobody, since the stream cannot limit it
/// to the callers who see the whole area.
fn gb_device(d: &crate::monitor::GbDeviceRecord) -> Option<LiveEvent> {
    let news = d
        .since
        .max(d.registered_at)
        .max(d.catalog_at.unwrap_or(d.since));
    if d.last_keepalive.is_some_and(|k| k > news) {
        return None;
    }
    let on = d
        .channels
        .iter()
        .filter(|c| c.status == crate::gb28181::ChannelStatus::On)
        .count();
    Some(LiveEvent {
        kind: "gb_device",
        region: Some(d.id.division()?),
        campus: None,
        data: serde_json::json!({
            "id": d.id,
            "state": d.state,
            "since": d.since,
            "cause": d.cause,
            "cause_code": d.cause_code,
            "catalog_at": d.catalog_at,
            "channels": { "total": d.channels.len(), "on": on },
        }),
    })
}

/// Publishes the events of `changes`; nobody listening is fine.
pub fn publish(tx: &broadcast::Sender<LiveEvent>, changes: &[Change]) {
    if tx.receiver_count() == 0 {
        return;
    }
    for e in changes.iter().filter_map(LiveEvent::of) {
        let _ = tx.send(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gb28181::{ChannelStatus, GbCode, Transport};
    use crate::monitor::{GbChannel, GbDeviceRecord, GbState};
    use chrono::{TimeZone, Utc};

    fn at(s: i64) -> campuswatch_protocol::Timestamp {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    fn device(code: &str) -> GbDeviceRecord {
        GbDeviceRecord {
            id: GbCode::parse(code).unwrap(),
            state: GbState::Online,
            since: at(0),
            cause: None,
            cause_code: None,
            address: "10.0.0.9:5060".into(),
            transport: Transport::Udp,
            registered_at: at(0),
            expires_at: at(3600),
            last_keepalive: None,
            keepalive_secs: 60,
            first_seen: at(0),
            catalog_at: Some(at(5)),
            channels: vec![
                GbChannel {
                    id: GbCode::parse("15010200001320000001").unwrap(),
                    name: Some("校门口".into()),
                    manufacturer: None,
                    model: None,
                    status: ChannelStatus::On,
                    since: at(5),
                    parent: None,
                },
                GbChannel {
                    id: GbCode::parse("15010200001320000002").unwrap(),
                    name: None,
                    manufacturer: None,
                    model: None,
                    status: ChannelStatus::Off,
                    since: at(5),
                    parent: None,
                },
            ],
        }
    }

    #[test]
    fn a_gb_device_registering_or_answering_a_catalog_is_sent_in_its_division() {
        let d = device("15010200001180000001");
        let e = LiveEvent::of(&Change::GbDevice(d)).expect("sent");
        assert_eq!(e.kind, "gb_device");
        assert_eq!(e.region, Some(RegionCode::parse("150102").unwrap()));
        assert_eq!(e.campus, None);
        assert_eq!(e.data["id"], "15010200001180000001");
        assert_eq!(e.data["state"], "online");
        assert_eq!(e.data["channels"], serde_json::json!({"total": 2, "on": 1}));
        // Not its address nor its channels' names: the device lists ask for those.
        assert!(e.data.get("address").is_none() && e.data.get("channel_list").is_none());
    }

    #[test]
    fn a_keepalive_alone_is_not_sent_but_one_that_brings_a_device_back_is() {
        let mut d = device("15010200001180000001");
        d.last_keepalive = Some(at(60));
        assert_eq!(LiveEvent::of(&Change::GbDevice(d.clone())), None);
        d.since = at(60);
        assert!(LiveEvent::of(&Change::GbDevice(d.clone())).is_some());
        // Offline for missed keepalives, its last keepalive older than that.
        d.state = GbState::Offline;
        d.since = at(240);
        assert!(LiveEvent::of(&Change::GbDevice(d)).is_some());
    }

    #[test]
    fn a_gb_device_whose_code_names_no_division_is_sent_to_nobody() {
        let d = device("00000000001180000001");
        assert_eq!(LiveEvent::of(&Change::GbDevice(d)), None);
    }

    #[test]
    fn the_existing_kinds_are_unchanged() {
        let e = LiveEvent::registry();
        assert_eq!((e.kind, e.region, e.campus), ("registry", None, None));
        assert_eq!(
            LiveEvent::of(&Change::MaintenanceRemoved { id: 1 }),
            None,
            "a maintenance change is not sent"
        );
    }
}
