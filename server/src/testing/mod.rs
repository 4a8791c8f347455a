//! Fixtures shared by the server's unit tests and its integration tests: registry
//! entries, stored transitions, a clock the test sets, and a PostgreSQL schema of a
//! test's own. Built for the
//! server's own unit tests and, with the `test-util` feature, for the integration tests
//! and the end-to-end tests crate; never part of the program otherwise.
//!
//! Protocol messages, fixed times, devices and links are `campuswatch_testkit`'s.

mod schema;

use std::sync::{Arc, Mutex};

use campuswatch_protocol::{CampusId, DeviceId, RegionCode, SchoolType, Timestamp};
use chrono::TimeDelta;

use crate::clock::Clock;
use crate::model::AlertKind;
use crate::monitor::Transition;
use crate::registry::RegistryEntry;

pub use schema::{connect, TestSchema, DATABASE_URL_VAR};

/// Campus `id` of the registry, named "Campus {id}" (see [`RegistryEntry::named`]),
/// expected to have `alarms` alarm links and `cameras` cameras.
pub fn entry(
    id: &str,
    region: &str,
    school_type: SchoolType,
    alarms: u32,
    cameras: u32,
) -> RegistryEntry {
    RegistryEntry {
        campus: CampusId::parse(id).expect("campus id"),
        name: format!("Campus {id}"),
        region: RegionCode::parse(region).expect("region code"),
        school_type,
        expected_alarms: alarms,
        expected_cameras: cameras,
        gb_device_ids: Vec::new(),
    }
}

impl RegistryEntry {
    /// The same entry under the name `name`.
    pub fn named(self, name: impl Into<String>) -> RegistryEntry {
        RegistryEntry {
            name: name.into(),
            ..self
        }
    }

    /// The same entry listing these GB/T 28181 device or channel codes.
    pub fn with_gb(self, codes: &[&str]) -> RegistryEntry {
        RegistryEntry {
            gb_device_ids: codes
                .iter()
                .map(|c| crate::gb28181::GbCode::parse(c).expect("GB/T 28181 code"))
                .collect(),
            ..self
        }
    }
}

/// A GB/T 28181 code (panics if it is not one).
pub fn gb_code(s: &str) -> crate::gb28181::GbCode {
    crate::gb28181::GbCode::parse(s).expect("GB/T 28181 code")
}

/// What the SIP listener hands the engine when `device` registers: over UDP from
/// 10.20.3.4:5060, for an hour, keepalives every minute.
pub fn gb_registered(device: &str) -> crate::gb28181::GbInput {
    crate::gb28181::GbInput::Registered {
        device: gb_code(device),
        address: std::net::SocketAddr::from(([10, 20, 3, 4], 5060)),
        transport: crate::gb28181::Transport::Udp,
        expires_secs: 3600,
        keepalive_secs: 60,
    }
}

/// A catalog answer of `device` listing `channels` (code, ON), each named after its code.
pub fn gb_catalog(device: &str, channels: &[(&str, bool)]) -> crate::gb28181::GbInput {
    use crate::gb28181::{ChannelInfo, ChannelStatus};
    crate::gb28181::GbInput::Catalog {
        device: gb_code(device),
        channels: channels
            .iter()
            .map(|(id, on)| ChannelInfo {
                id: gb_code(id),
                name: Some(format!("channel {id}")),
                manufacturer: None,
                model: None,
                status: if *on {
                    ChannelStatus::On
                } else {
                    ChannelStatus::Off
                },
                parent: None,
            })
            .collect(),
        complete: true,
    }
}

/// A transition as the monitor records it, from `from` to `to` at `at`: the gateway's of
/// `campus` when `device` is `None`, else that device's (an alarm link when its id starts
/// with `alarm`, else a camera) with the agent's event id `event_id`. No cause, no
/// measurements.
pub fn transition(
    campus: &str,
    region: &str,
    device: Option<&str>,
    (from, to): (&str, &str),
    at: Timestamp,
    event_id: u64,
) -> Transition {
    Transition {
        campus: CampusId::parse(campus).expect("campus id"),
        region: RegionCode::parse(region).expect("region code"),
        device: device.map(|d| DeviceId::parse(d).expect("device id")),
        kind: match device {
            None => AlertKind::Gateway,
            Some(d) if d.starts_with("alarm") => AlertKind::Alarm,
            Some(_) => AlertKind::Camera,
        },
        from: from.into(),
        to: to.into(),
        at,
        cause: None,
        cause_code: None,
        event_id: device.map(|_| event_id),
        measurements: Default::default(),
    }
}

/// A clock that stands still until the test sets or advances it.
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// Standing at `now`, shared as the server's clock and the test's.
    pub fn new(now: Timestamp) -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(now)))
    }

    pub fn set(&self, now: Timestamp) {
        *self.0.lock().unwrap() = now;
    }

    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}
