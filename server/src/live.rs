//! Live updates for open consoles: what changed, as soon as it is stored.
//!
//! The engine publishes each committed change of interest (a link's transition, an
//! alert, an incident, a registry import) on a broadcast channel; every console holds a
//! server-sent-events stream (`GET /api/v1/live`) fed from it, filtered by the user's
//! region scope. A console that falls too far behind is not waited for: it gets a
//! `resync` event and reloads what it shows, so one slow browser never slows the
//! engine or the other consoles.

use campuswatch_protocol::{CampusId, RegionCode};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::monitor::Change;

/// How many events a console may fall behind before it must resync.
pub const BACKLOG: usize = 1024;

/// One thing that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveEvent {
    /// `transition` (a gateway or device changed state), `alert`, `incident` or
    /// `registry`.
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

/// Publishes the events of `changes`; nobody listening is fine.
pub fn publish(tx: &broadcast::Sender<LiveEvent>, changes: &[Change]) {
    if tx.receiver_count() == 0 {
        return;
    }
    for e in changes.iter().filter_map(LiveEvent::of) {
        let _ = tx.send(e);
    }
}
