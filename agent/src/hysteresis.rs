//! Hysteresis: turns a stream of probe results into device state transitions, so that
//! one lost probe does not raise an alert and one lucky probe does not clear it.
//!
//! A pure state machine: the time is passed in and nothing here does I/O.
//!
//! * A device starts `unknown`. Its first good result decides `up` or `degraded` at once
//!   (there is nothing to smooth yet); `down_after` consecutive failures make it `down`.
//! * `up`/`degraded` → `down` after `down_after` consecutive failures.
//! * `down` → `up`/`degraded` after `up_after` consecutive good results (the latest one
//!   decides which).
//! * `up` ↔ `degraded` after `up_after` consecutive results of the new kind.
//! * A device that changes state more than [`FLAP_TRANSITIONS`] − 1 times within
//!   [`FLAP_WINDOW`] is flapping: its transitions still happen (the state must stay
//!   true), but their cause says `flapping`, so an operator sees one unstable link rather
//!   than a storm of unrelated outages.

use std::collections::VecDeque;

use campuswatch_protocol::{CauseCode, DeviceInfo, DeviceState, Measurements, Timestamp};

use crate::probe::{ProbeResult, ProbeStatus};

/// Transitions within [`FLAP_WINDOW`] (counting the new one) that mark a device as flapping.
pub const FLAP_TRANSITIONS: usize = 6;
/// The window in which transitions are counted for flapping.
pub const FLAP_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// When a device changes state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures before a device is down (at least 1).
    pub down_after: u32,
    /// Consecutive good results before it is up again (at least 1).
    pub up_after: u32,
}

/// A state change of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: DeviceState,
    pub to: DeviceState,
    pub at: Timestamp,
    pub cause: Option<String>,
    pub cause_code: Option<CauseCode>,
    pub measurements: Measurements,
    /// The device's identity, when the probe that caused the transition learned it.
    pub info: Option<DeviceInfo>,
}

/// The hysteresis state of one device.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    thresholds: Thresholds,
    state: DeviceState,
    failures: u32,
    successes: u32,
    /// The latest good status and how many times in a row it was seen.
    streak: (ProbeStatus, u32),
    recent: VecDeque<Timestamp>,
}

fn state_of(status: ProbeStatus) -> DeviceState {
    match status {
        ProbeStatus::Ok => DeviceState::Up,
        ProbeStatus::Degraded => DeviceState::Degraded,
        ProbeStatus::Fail => DeviceState::Down,
    }
}

impl Hysteresis {
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds: Thresholds {
                down_after: thresholds.down_after.max(1),
                up_after: thresholds.up_after.max(1),
            },
            state: DeviceState::Unknown,
            failures: 0,
            successes: 0,
            streak: (ProbeStatus::Ok, 0),
            recent: VecDeque::new(),
        }
    }

    /// A device already known to be in `state` (its probe was replaced by a reload):
    /// the next transition is judged from there, so a probe that agrees causes none.
    pub fn starting_at(thresholds: Thresholds, state: DeviceState) -> Self {
        let mut h = Self::new(thresholds);
        h.state = state;
        if let DeviceState::Up | DeviceState::Degraded = state {
            let status = if state == DeviceState::Up {
                ProbeStatus::Ok
            } else {
                ProbeStatus::Degraded
            };
            h.streak = (status, h.thresholds.up_after);
        }
        h
    }

    pub fn state(&self) -> DeviceState {
        self.state
    }

    /// A device not down has failed its last probe(s), short of `down_after`: whether it
    /// is down is being confirmed, and the next probe should come soon.
    pub fn confirming(&self) -> bool {
        self.failures > 0 && self.state != DeviceState::Down
    }

    /// Feeds one probe result observed at `at`; returns the transition it causes, if any.
    pub fn observe(&mut self, result: &ProbeResult, at: Timestamp) -> Option<Transition> {
        let to = match result.status {
            ProbeStatus::Fail => {
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                self.streak.1 = 0;
                (self.state != DeviceState::Down && self.failures >= self.thresholds.down_after)
                    .then_some(DeviceState::Down)
            }
            status => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.streak.0 == status {
                    self.streak.1 = self.streak.1.saturating_add(1);
                } else {
                    self.streak = (status, 1);
                }
                let target = state_of(status);
                match self.state {
                    _ if self.state == target => None,
                    DeviceState::Unknown => Some(target),
                    DeviceState::Down => {
                        (self.successes >= self.thresholds.up_after).then_some(target)
                    }
                    _ => (self.streak.1 >= self.thresholds.up_after).then_some(target),
                }
            }
        }?;
        Some(self.transition(to, result, at))
    }

    fn transition(&mut self, to: DeviceState, result: &ProbeResult, at: Timestamp) -> Transition {
        let from = std::mem::replace(&mut self.state, to);
        self.recent.push_back(at);
        while self.recent.front().is_some_and(|t| at - *t > FLAP_WINDOW) {
            self.recent.pop_front();
        }
        let (cause, code) = if to == DeviceState::Up {
            (None, None)
        } else {
            (result.cause.clone(), result.cause_code.clone())
        };
        // A flapping device keeps its cause's code, with the count of changes added
        // (`device.flapping` when there is none).
        let code = if self.recent.len() >= FLAP_TRANSITIONS {
            let changes = self.recent.len() as u64;
            Some(
                code.unwrap_or_else(|| CauseCode::new("device.flapping"))
                    .with("flapping", changes),
            )
        } else {
            code
        };
        let cause = if self.recent.len() >= FLAP_TRANSITIONS {
            let flapping = format!(
                "flapping: {} state changes within {}",
                self.recent.len(),
                humantime::format_duration(FLAP_WINDOW.to_std().unwrap_or_default())
            );
            Some(match cause {
                Some(c) => format!("{flapping}; {c}"),
                None => flapping,
            })
        } else {
            cause
        };
        Transition {
            from,
            to,
            at,
            cause,
            cause_code: code,
            measurements: result.measurements.clone(),
            info: result.info.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use campuswatch_testkit::t;
    use DeviceState::*;

    fn ok() -> ProbeResult {
        ProbeResult::ok(Duration::from_millis(3))
    }

    fn degraded() -> ProbeResult {
        ProbeResult {
            status: ProbeStatus::Degraded,
            cause: Some("latency 900 ms".into()),
            ..ok()
        }
    }

    fn fail() -> ProbeResult {
        ProbeResult::fail(Duration::from_millis(1), "connection refused")
    }

    fn machine(down_after: u32, up_after: u32) -> Hysteresis {
        Hysteresis::new(Thresholds {
            down_after,
            up_after,
        })
    }

    #[test]
    fn a_device_seeded_with_its_state_changes_only_when_the_probe_disagrees() {
        let th = Thresholds {
            down_after: 2,
            up_after: 2,
        };
        let mut up = Hysteresis::starting_at(th, Up);
        assert_eq!(feed(&mut up, &[ok(), ok(), fail()]), []);
        assert_eq!(feed(&mut up, &[fail()]), [(Up, Down)]);
        let mut down = Hysteresis::starting_at(th, Down);
        assert_eq!(feed(&mut down, &[fail(), ok()]), []);
        assert_eq!(feed(&mut down, &[ok()]), [(Down, Up)]);
        let mut impaired = Hysteresis::starting_at(th, Degraded);
        assert_eq!(feed(&mut impaired, &[degraded(), ok()]), []);
        assert_eq!(feed(&mut impaired, &[ok()]), [(Degraded, Up)]);
        let mut unknown = Hysteresis::starting_at(th, Unknown);
        assert_eq!(feed(&mut unknown, &[ok()]), [(Unknown, Up)]);
    }

    /// Feeds results one second apart; returns the (from, to) of every transition.
    fn feed(h: &mut Hysteresis, results: &[ProbeResult]) -> Vec<(DeviceState, DeviceState)> {
        results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| h.observe(r, t(i as i64)))
            .map(|tr| (tr.from, tr.to))
            .collect()
    }

    #[test]
    fn a_device_starts_unknown_and_its_first_good_probe_makes_it_up() {
        let mut h = machine(2, 3);
        assert_eq!(h.state(), Unknown);
        let tr = h.observe(&ok(), t(0)).unwrap();
        assert_eq!((tr.from, tr.to, tr.at), (Unknown, Up, t(0)));
        assert_eq!(tr.cause, None);
        assert!(tr.measurements.contains_key("latency_ms"));
    }

    #[test]
    fn a_first_degraded_probe_makes_an_unknown_device_degraded() {
        let mut h = machine(2, 2);
        assert_eq!(feed(&mut h, &[degraded()]), [(Unknown, Degraded)]);
    }

    #[test]
    fn an_unknown_device_goes_down_only_after_down_after_failures() {
        let mut h = machine(3, 2);
        assert_eq!(feed(&mut h, &[fail(), fail()]), []);
        let tr = h.observe(&fail(), t(9)).unwrap();
        assert_eq!((tr.from, tr.to), (Unknown, Down));
        assert_eq!(tr.cause.as_deref(), Some("connection refused"));
    }

    #[test]
    fn one_lost_probe_does_not_take_an_up_device_down() {
        let mut h = machine(2, 2);
        assert_eq!(
            feed(&mut h, &[ok(), fail(), ok(), fail(), ok()]),
            [(Unknown, Up)]
        );
    }

    #[test]
    fn consecutive_failures_take_an_up_device_down_once() {
        let mut h = machine(2, 2);
        assert_eq!(
            feed(&mut h, &[ok(), fail(), fail(), fail(), fail()]),
            [(Unknown, Up), (Up, Down)]
        );
    }

    #[test]
    fn a_down_device_needs_up_after_consecutive_successes() {
        let mut h = machine(1, 3);
        assert_eq!(
            feed(&mut h, &[fail(), ok(), ok(), fail(), ok(), ok(), ok()]),
            [(Unknown, Down), (Down, Up)]
        );
    }

    #[test]
    fn a_down_device_recovers_into_the_state_of_its_latest_good_probe() {
        let mut h = machine(1, 2);
        assert_eq!(
            feed(&mut h, &[fail(), ok(), degraded()]),
            [(Unknown, Down), (Down, Degraded)]
        );
    }

    #[test]
    fn up_and_degraded_switch_after_up_after_results_of_the_new_kind() {
        let mut h = machine(2, 2);
        assert_eq!(
            feed(
                &mut h,
                &[ok(), degraded(), ok(), degraded(), degraded(), ok(), ok()]
            ),
            [(Unknown, Up), (Up, Degraded), (Degraded, Up)]
        );
    }

    #[test]
    fn a_degraded_device_goes_down_after_down_after_failures() {
        let mut h = machine(2, 2);
        assert_eq!(
            feed(&mut h, &[degraded(), fail(), fail()]),
            [(Unknown, Degraded), (Degraded, Down)]
        );
    }

    #[test]
    fn rapid_changes_are_reported_as_flapping() {
        let mut h = machine(1, 1);
        let mut causes = Vec::new();
        for i in 0..8 {
            let r = if i % 2 == 0 { ok() } else { fail() };
            let tr = h.observe(&r, t(i * 10)).unwrap();
            causes.push(tr.cause);
        }
        assert!(causes[..FLAP_TRANSITIONS - 1]
            .iter()
            .all(|c| !c.as_deref().unwrap_or("").contains("flapping")));
        let sixth = causes[FLAP_TRANSITIONS - 1].as_deref().unwrap();
        assert!(sixth.starts_with("flapping: 6 state changes"), "{sixth}");
        assert!(sixth.contains("connection refused"), "{sixth}");
    }

    #[test]
    fn changes_spread_over_more_than_the_window_are_not_flapping() {
        let mut h = machine(1, 1);
        for i in 0..10 {
            let r = if i % 2 == 0 { ok() } else { fail() };
            let tr = h.observe(&r, t(i * 100)).unwrap();
            assert!(!tr.cause.unwrap_or_default().contains("flapping"));
        }
    }
}
