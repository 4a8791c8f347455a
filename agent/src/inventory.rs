//! The device inventory: every device's current state, shared between the device tasks
//! (latest measurements), the session (state changes, births, heartbeats) and anyone who
//! wants a snapshot.
//!
//! A std `Mutex` is the right lock here: every critical section is a few field writes or
//! one clone, and no one ever holds it across an `.await`.

use std::sync::{Mutex, MutexGuard};

use campuswatch_protocol::{DeviceInfo, DeviceReport, DeviceState, Measurements};

use crate::config::AgentConfig;
use crate::hysteresis::Transition;

/// What a birth needs: the devices and the newest event id they already reflect.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub devices: Vec<DeviceReport>,
    pub last_event_id: u64,
}

impl Snapshot {
    /// One letter per device, in inventory order (the heartbeat's `states`).
    pub fn state_codes(&self) -> String {
        self.devices.iter().map(|d| d.state.code()).collect()
    }
}

/// The shared inventory.
#[derive(Debug)]
pub struct Inventory {
    inner: Mutex<Snapshot>,
}

impl Inventory {
    /// Every configured device, `unknown`.
    pub fn new(config: &AgentConfig, last_event_id: u64) -> Self {
        let devices = config
            .devices
            .iter()
            .map(|d| DeviceReport {
                id: d.id.clone(),
                kind: d.kind,
                probe: d.probe.kind().to_string(),
                target: d.probe.target(),
                required: d.required(),
                state: DeviceState::Unknown,
                since: None,
                cause: None,
                measurements: Measurements::new(),
                info: None,
            })
            .collect();
        Self {
            inner: Mutex::new(Snapshot {
                devices,
                last_event_id,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// The heartbeat's view: state letters and the newest event id, without cloning the
    /// whole inventory.
    pub fn states(&self) -> (String, u64) {
        let s = self.lock();
        (s.state_codes(), s.last_event_id)
    }

    /// Latest numbers (and identity, if the probe learned it) of a probe that changed
    /// no state.
    pub fn set_latest(&self, index: usize, measurements: Measurements, info: Option<DeviceInfo>) {
        if let Some(d) = self.lock().devices.get_mut(index) {
            d.measurements = measurements;
            if info.is_some() {
                d.info = info;
            }
        }
    }

    /// Applies a transition that was given event id `event_id` (already spooled), so
    /// that the state and `last_event_id` always move together.
    pub fn apply(&self, index: usize, t: &Transition, event_id: u64) {
        let mut s = self.lock();
        s.last_event_id = s.last_event_id.max(event_id);
        if let Some(d) = s.devices.get_mut(index) {
            d.state = t.to;
            d.since = Some(t.at);
            d.cause = t.cause.clone();
            d.measurements = t.measurements.clone();
            if t.info.is_some() {
                d.info = t.info.clone();
            }
        }
    }
}
