//! The device inventory: every device's current state, shared between the device tasks
//! (latest measurements), the session (state changes, births, heartbeats) and anyone who
//! wants a snapshot.
//!
//! A std `Mutex` is the right lock here: every critical section is a few field writes or
//! one clone, and no one ever holds it across an `.await`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use campuswatch_protocol::{
    DeviceId, DeviceInfo, DeviceKind, DeviceReport, DeviceState, Measurements,
};

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

/// The probe task that reports a device. Tasks are numbered from 1 as they are started;
/// a device no task was started for yet has task 0. When a reload replaces a device's
/// probe, whatever its old task still reports is recognised by its number and dropped.
pub type TaskId = u64;

#[derive(Debug)]
struct Inner {
    snapshot: Snapshot,
    /// `tasks[i]` reports `snapshot.devices[i]`.
    tasks: Vec<TaskId>,
}

/// The shared inventory.
#[derive(Debug)]
pub struct Inventory {
    inner: Mutex<Inner>,
}

fn unknown(d: &crate::config::DeviceConfig) -> DeviceReport {
    DeviceReport {
        id: d.id.clone(),
        kind: d.kind,
        probe: d.probe.kind().to_string(),
        target: d.probe.target(),
        required: d.required(),
        state: DeviceState::Unknown,
        since: None,
        cause: None,
        cause_code: None,
        measurements: Measurements::new(),
        info: None,
    }
}

impl Inventory {
    /// Every configured device, `unknown`, with no task yet.
    pub fn new(config: &AgentConfig, last_event_id: u64) -> Self {
        let devices: Vec<_> = config.devices.iter().map(unknown).collect();
        Self {
            inner: Mutex::new(Inner {
                tasks: vec![0; devices.len()],
                snapshot: Snapshot {
                    devices,
                    last_event_id,
                },
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> Snapshot {
        self.lock().snapshot.clone()
    }

    /// The heartbeat's view: state letters and the newest event id, without cloning the
    /// whole inventory.
    pub fn states(&self) -> (String, u64) {
        let s = self.lock();
        (s.snapshot.state_codes(), s.snapshot.last_event_id)
    }

    /// Where `device` is, if `task` is the task that reports it now.
    fn position(inner: &Inner, device: &DeviceId, task: TaskId) -> Option<usize> {
        inner
            .snapshot
            .devices
            .iter()
            .position(|d| &d.id == device)
            .filter(|&i| inner.tasks[i] == task)
    }

    /// The kind of `device` if `task` is the task that reports it now; `None` for a
    /// device that was removed or whose probe was replaced.
    pub fn current_kind(&self, device: &DeviceId, task: TaskId) -> Option<DeviceKind> {
        let inner = self.lock();
        Self::position(&inner, device, task).map(|i| inner.snapshot.devices[i].kind)
    }

    /// The current state of `device` (`unknown` for a device not listed).
    pub fn state_of(&self, device: &DeviceId) -> DeviceState {
        self.lock()
            .snapshot
            .devices
            .iter()
            .find(|d| &d.id == device)
            .map_or(DeviceState::Unknown, |d| d.state)
    }

    /// Latest numbers (and identity, if the probe learned it) of a probe that changed
    /// no state; ignored unless `task` still reports `device`.
    pub fn set_latest(
        &self,
        device: &DeviceId,
        task: TaskId,
        measurements: Measurements,
        info: Option<DeviceInfo>,
    ) {
        let mut inner = self.lock();
        if let Some(i) = Self::position(&inner, device, task) {
            let d = &mut inner.snapshot.devices[i];
            d.measurements = measurements;
            if info.is_some() {
                d.info = info;
            }
        }
    }

    /// Applies a transition of `device` reported by `task` that was given event id
    /// `event_id` (already spooled), so that the state and `last_event_id` always move
    /// together.
    pub fn apply(&self, device: &DeviceId, task: TaskId, t: &Transition, event_id: u64) {
        let mut inner = self.lock();
        let s = &mut inner.snapshot;
        s.last_event_id = s.last_event_id.max(event_id);
        if let Some(i) = Self::position(&inner, device, task) {
            let d = &mut inner.snapshot.devices[i];
            d.state = t.to;
            d.since = Some(t.at);
            d.cause = t.cause.clone();
            d.cause_code = t.cause_code.clone();
            d.measurements = t.measurements.clone();
            if t.info.is_some() {
                d.info = t.info.clone();
            }
        }
    }

    /// Takes on the devices of `config`, in its order, each reported by the task
    /// `tasks` names (0 when it names none). A device that keeps its id and kind keeps
    /// what is known of it (state, since, cause, measurements, identity): its link did
    /// not change because its probe settings did, and the next probe says otherwise if it
    /// did. Any other device starts `unknown`.
    pub fn reconfigure(&self, config: &AgentConfig, tasks: &HashMap<DeviceId, TaskId>) {
        let mut inner = self.lock();
        let mut old: HashMap<DeviceId, DeviceReport> = inner
            .snapshot
            .devices
            .drain(..)
            .map(|d| (d.id.clone(), d))
            .collect();
        let devices: Vec<DeviceReport> = config
            .devices
            .iter()
            .map(|d| {
                let mut report = unknown(d);
                if let Some(prev) = old.remove(&d.id).filter(|p| p.kind == d.kind) {
                    report.state = prev.state;
                    report.since = prev.since;
                    report.cause = prev.cause;
                    report.cause_code = prev.cause_code;
                    report.measurements = prev.measurements;
                    report.info = prev.info;
                }
                report
            })
            .collect();
        inner.tasks = config
            .devices
            .iter()
            .map(|d| tasks.get(&d.id).copied().unwrap_or(0))
            .collect();
        inner.snapshot.devices = devices;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceConfig, ProbeConfig};
    use campuswatch_protocol::{CampusId, RegionCode};

    fn config(devices: &[(&str, DeviceKind, &str)]) -> AgentConfig {
        let mut c = AgentConfig::new(
            CampusId::parse("150102-K-0001").unwrap(),
            RegionCode::parse("150102").unwrap(),
        );
        for (id, kind, target) in devices {
            c.devices.push(DeviceConfig::new(
                DeviceId::parse(id).unwrap(),
                *kind,
                ProbeConfig::Tcp {
                    target: target.to_string(),
                },
            ));
        }
        c
    }

    fn id(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap()
    }

    fn went(to: DeviceState) -> Transition {
        Transition {
            from: DeviceState::Unknown,
            to,
            at: chrono::Utc::now(),
            cause: None,
            cause_code: None,
            measurements: Measurements::new(),
            info: None,
        }
    }

    #[test]
    fn a_reload_keeps_what_is_known_of_kept_devices_in_the_new_order() {
        use DeviceKind::*;
        let c = config(&[
            ("a", Alarm, "h:1"),
            ("b", Camera, "h:2"),
            ("c", Alarm, "h:3"),
        ]);
        let inv = Inventory::new(&c, 0);
        let tasks: HashMap<_, _> = [(id("a"), 1), (id("b"), 2), (id("c"), 3)].into();
        inv.reconfigure(&c, &tasks);
        inv.apply(&id("a"), 1, &went(DeviceState::Up), 10);
        inv.apply(&id("b"), 2, &went(DeviceState::Down), 11);
        inv.apply(&id("c"), 3, &went(DeviceState::Up), 12);

        // `b` removed, `a` moved behind a new `d` with a new target, `c` now a camera.
        let next = config(&[
            ("d", Alarm, "h:4"),
            ("a", Alarm, "h:9"),
            ("c", Camera, "h:3"),
        ]);
        let tasks: HashMap<_, _> = [(id("d"), 4), (id("a"), 5), (id("c"), 6)].into();
        inv.reconfigure(&next, &tasks);
        let s = inv.snapshot();
        let ids: Vec<_> = s.devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["d", "a", "c"]);
        assert_eq!(s.state_codes(), "NUN");
        assert_eq!(s.devices[1].target, "h:9");
        assert_eq!(s.last_event_id, 12);
        assert_eq!(inv.state_of(&id("a")), DeviceState::Up);
        assert_eq!(inv.state_of(&id("b")), DeviceState::Unknown);
    }

    #[test]
    fn a_replaced_task_no_longer_changes_its_device() {
        let c = config(&[("a", DeviceKind::Alarm, "h:1")]);
        let inv = Inventory::new(&c, 0);
        inv.reconfigure(&c, &[(id("a"), 1)].into());
        assert_eq!(inv.current_kind(&id("a"), 1), Some(DeviceKind::Alarm));
        inv.reconfigure(&c, &[(id("a"), 2)].into());
        assert_eq!(inv.current_kind(&id("a"), 1), None);
        inv.apply(&id("a"), 1, &went(DeviceState::Down), 5);
        inv.set_latest(&id("a"), 1, [("latency_ms".to_string(), 1.0)].into(), None);
        let s = inv.snapshot();
        assert_eq!(s.devices[0].state, DeviceState::Unknown);
        assert!(s.devices[0].measurements.is_empty());
        // The event id was still spent: the spool has it.
        assert_eq!(s.last_event_id, 5);
        inv.apply(&id("a"), 2, &went(DeviceState::Up), 6);
        assert_eq!(inv.state_of(&id("a")), DeviceState::Up);
    }
}
