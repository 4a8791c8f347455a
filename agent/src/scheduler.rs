//! The device scheduler: one task per device that owns the probe interval, the probe
//! timeout and shutdown, feeds each result through the device's hysteresis, and sends
//! the resulting transitions to the session, which spools and publishes them.
//!
//! [`DeviceTasks`] keeps one such task per configured device and, on a reload, replaces
//! only the tasks of devices whose configuration changed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use campuswatch_protocol::{DeviceId, DeviceState};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinError, JoinSet};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn, Instrument};

use crate::config::{AgentConfig, DeviceConfig, ProbeConfig};
use crate::hysteresis::{Hysteresis, Thresholds, Transition};
use crate::inventory::{Inventory, TaskId};
use crate::probe::{self, probe_once, Probe, ProbeSetupError};

/// A transition of `device`, reported by its probe task `task`.
#[derive(Debug, Clone)]
pub struct DeviceTransition {
    pub device: DeviceId,
    pub task: TaskId,
    pub transition: Transition,
}

/// Where in its interval the device of probe task `index` is probed, as a fraction: successive
/// multiples of the golden ratio spread any number of devices evenly over the interval.
fn phase(index: usize) -> f64 {
    (index as f64 * 0.618_033_988_749_895).fract()
}

/// Probes one device every `interval` until `shutdown`; sends its transitions on `tx`.
/// The device is known to be in `initial` (`unknown` at start; what it was, when a reload
/// replaced its probe).
#[allow(clippy::too_many_arguments)]
pub async fn run_device(
    device: DeviceConfig,
    task: TaskId,
    initial: DeviceState,
    probe: Box<dyn Probe>,
    inventory: Arc<Inventory>,
    tx: mpsc::Sender<DeviceTransition>,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("device", device = %device.id);
    async move {
        let mut hysteresis = Hysteresis::starting_at(
            Thresholds {
                down_after: device.down_after(),
                up_after: device.up_after(),
            },
            initial,
        );
        let timeout = device.timeout();
        let target = device.probe.target();
        let interval = device.interval().max(Duration::from_millis(1));
        let retry = device.retry_interval().max(Duration::from_millis(1));
        // The first probe at once (the birth wants every state soon); the following ones
        // at a phase of the interval that differs from device to device, so that 64
        // cameras with the same interval are not all probed in the same instant.
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + interval.mul_f64(phase(task as usize)),
            interval,
        );
        // A slow probe delays the next one instead of causing a burst to catch up.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut first = true;
        let mut began = tokio::time::Instant::now();
        loop {
            if hysteresis.confirming() {
                // A failure to confirm: probe again soon, then one interval on. Counted
                // from the start of the failed probe, as the interval is: a probe that
                // timed out has already waited, so a hung device is confirmed as soon as
                // one that refuses, and `retry_interval` = `interval` is exactly the
                // cadence without retries.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(began + retry) => {}
                }
                ticker.reset();
            } else if !std::mem::take(&mut first) {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
            }
            first = false;
            began = tokio::time::Instant::now();
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = probe_once(&*probe, timeout) => r,
            };
            debug!(status = result.status.as_str(), latency = ?result.latency, cause = ?result.cause, "Probed.");
            let Some(transition) = hysteresis.observe(&result, chrono::Utc::now()) else {
                inventory.set_latest(&device.id, task, result.measurements, result.info);
                continue;
            };
            match transition.to {
                DeviceState::Down | DeviceState::Degraded => warn!(
                    from = %transition.from, to = %transition.to,
                    cause = transition.cause.as_deref().unwrap_or(""),
                    target = %target, "Device link changed state."
                ),
                _ => info!(from = %transition.from, to = %transition.to, target = %target, "Device link changed state."),
            }
            // The session drains this channel even while shutting down, so a send only
            // fails when the agent is gone, and then there is nobody left to tell.
            let sent = tx.send(DeviceTransition {
                device: device.id.clone(),
                task,
                transition,
            });
            if sent.await.is_err() {
                return;
            }
        }
    }
    .instrument(span)
    .await
}

/// What a reload did to the device list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceChanges {
    pub added: Vec<DeviceId>,
    pub removed: Vec<DeviceId>,
    /// Devices whose settings changed: their probe task was replaced.
    pub changed: Vec<DeviceId>,
    /// The same devices in another order.
    pub reordered: bool,
}

impl DeviceChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.reordered
    }
}

/// The probe tasks of the configured devices, one per device.
pub struct DeviceTasks {
    set: JoinSet<()>,
    running: HashMap<DeviceId, (TaskId, AbortHandle)>,
    last_task: TaskId,
    tx: mpsc::Sender<DeviceTransition>,
    shutdown: CancellationToken,
    slots: probe::rtsp::StreamSlots,
    max_stream_checks: usize,
}

impl DeviceTasks {
    /// No tasks yet; [`reconfigure`](Self::reconfigure) from an empty list starts them.
    pub fn new(
        tx: mpsc::Sender<DeviceTransition>,
        shutdown: CancellationToken,
        max_stream_checks: usize,
    ) -> Self {
        Self {
            set: JoinSet::new(),
            running: HashMap::new(),
            last_task: 0,
            tx,
            shutdown,
            slots: probe::rtsp::StreamSlots::new(max_stream_checks),
            max_stream_checks,
        }
    }

    /// Moves from the devices `old` to those of `new`: devices with the same settings keep
    /// their task (and their hysteresis), the others get a new task, removed devices lose
    /// theirs, and `inventory` takes on the new list. Every new probe is built first: if
    /// one cannot be, nothing changes.
    pub fn reconfigure(
        &mut self,
        old: &[DeviceConfig],
        new: &AgentConfig,
        inventory: &Arc<Inventory>,
    ) -> Result<DeviceChanges, ProbeSetupError> {
        // A new limit on stream checks needs new shared slots, so new RTSP probes.
        let slots_changed = new.max_stream_checks != self.max_stream_checks;
        let slots = if slots_changed {
            probe::rtsp::StreamSlots::new(new.max_stream_checks)
        } else {
            self.slots.clone()
        };
        let old_by_id: HashMap<&DeviceId, &DeviceConfig> = old.iter().map(|d| (&d.id, d)).collect();
        let mut changes = DeviceChanges::default();
        let mut to_start = Vec::new();
        for d in &new.devices {
            let keep = old_by_id.get(&d.id).is_some_and(|o| *o == d)
                && self.running.contains_key(&d.id)
                && !(slots_changed && matches!(d.probe, ProbeConfig::Rtsp { .. }));
            if keep {
                continue;
            }
            to_start.push((d, probe::build(&d.probe, d.timeout(), &slots)?));
            if old_by_id.contains_key(&d.id) {
                changes.changed.push(d.id.clone());
            } else {
                changes.added.push(d.id.clone());
            }
        }
        let new_ids: HashSet<&DeviceId> = new.devices.iter().map(|d| &d.id).collect();
        changes.removed = old
            .iter()
            .filter(|d| !new_ids.contains(&d.id))
            .map(|d| d.id.clone())
            .collect();
        let kept_order: Vec<&DeviceId> = new
            .devices
            .iter()
            .map(|d| &d.id)
            .filter(|id| old_by_id.contains_key(id))
            .collect();
        let old_order: Vec<&DeviceId> = old
            .iter()
            .map(|d| &d.id)
            .filter(|id| new_ids.contains(id))
            .collect();
        changes.reordered = kept_order != old_order;

        // Nothing below fails.
        for id in changes.removed.iter().chain(&changes.changed) {
            if let Some((_, task)) = self.running.remove(id) {
                task.abort();
            }
        }
        let mut tasks: HashMap<DeviceId, TaskId> = self
            .running
            .iter()
            .map(|(id, (task, _))| (id.clone(), *task))
            .collect();
        let mut started = Vec::with_capacity(to_start.len());
        for (d, probe) in to_start {
            self.last_task += 1;
            tasks.insert(d.id.clone(), self.last_task);
            started.push((d, self.last_task, probe));
        }
        inventory.reconfigure(new, &tasks);
        for (d, task, probe) in started {
            let abort = self.set.spawn(run_device(
                d.clone(),
                task,
                inventory.state_of(&d.id),
                probe,
                inventory.clone(),
                self.tx.clone(),
                self.shutdown.clone(),
            ));
            self.running.insert(d.id.clone(), (task, abort));
        }
        self.slots = slots;
        self.max_stream_checks = new.max_stream_checks;
        // Reap the tasks aborted by this and earlier reloads.
        while let Some(ended) = self.set.try_join_next() {
            match ended {
                Err(e) if e.is_panic() => error!(error = %e, "A device task panicked."),
                _ => {}
            }
        }
        Ok(changes)
    }

    /// The next task to end (they end at shutdown); `None` when all have.
    pub async fn join_next(&mut self) -> Option<Result<(), JoinError>> {
        self.set.join_next().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use campuswatch_protocol::{CampusId, DeviceKind, RegionCode};

    use super::*;
    use crate::probe::{ProbeFuture, ProbeResult};

    /// A device that answers until `dead` is set, then refuses or, if it `hangs`, never
    /// answers; counts its probes.
    struct Switch {
        dead: Arc<AtomicBool>,
        hangs: bool,
        probes: Arc<AtomicUsize>,
    }

    impl Probe for Switch {
        fn kind(&self) -> &'static str {
            "tcp"
        }
        fn target(&self) -> &str {
            "10.0.0.9:80"
        }
        fn probe(&self) -> ProbeFuture<'_> {
            self.probes.fetch_add(1, Ordering::SeqCst);
            let (dead, hangs) = (self.dead.load(Ordering::SeqCst), self.hangs);
            Box::pin(async move {
                if dead && hangs {
                    std::future::pending().await
                } else if dead {
                    ProbeResult::fail(Duration::from_millis(1), "connection refused")
                } else {
                    ProbeResult::ok(Duration::from_millis(1))
                }
            })
        }
    }

    /// A camera (30 s interval, 3.3 s timeout, 3 failures, 3 s retries) that dies, or hangs:
    /// how long until it is down, and how many probes were made meanwhile.
    async fn time_to_down(retry: Option<Duration>, hangs: bool) -> (Duration, usize) {
        let mut device = DeviceConfig::new(
            DeviceId::parse("cam-1").unwrap(),
            DeviceKind::Camera,
            ProbeConfig::Tcp {
                target: "10.0.0.9:80".into(),
            },
        );
        device.retry_interval = retry;
        let mut config = AgentConfig::new(
            CampusId::parse("c1").unwrap(),
            RegionCode::parse("150102").unwrap(),
        );
        config.devices.push(device.clone());
        let inventory = Arc::new(Inventory::new(&config, 0));
        let (dead, probes) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let probe = Switch {
            dead: dead.clone(),
            hangs,
            probes: probes.clone(),
        };
        let (tx, mut rx) = mpsc::channel(8);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_device(
            device,
            0,
            DeviceState::Unknown,
            Box::new(probe),
            inventory,
            tx,
            shutdown.clone(),
        ));
        assert_eq!(rx.recv().await.unwrap().transition.to, DeviceState::Up);
        // Dies just after a probe: the worst case, a whole interval before it is noticed.
        tokio::time::sleep(Duration::from_secs(1)).await;
        dead.store(true, Ordering::SeqCst);
        let died = tokio::time::Instant::now();
        let before = probes.load(Ordering::SeqCst);
        assert_eq!(rx.recv().await.unwrap().transition.to, DeviceState::Down);
        let taken = (died.elapsed(), probes.load(Ordering::SeqCst) - before);
        shutdown.cancel();
        task.await.unwrap();
        taken
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_camera_is_down_within_its_interval_and_two_quick_retries() {
        // Noticed at the next probe (29 s later), confirmed 3 s and 6 s after that.
        let (taken, probes) = time_to_down(None, false).await;
        assert_eq!(probes, 3);
        assert!(taken <= Duration::from_secs(36), "{taken:?}");
        assert!(taken >= Duration::from_secs(35), "{taken:?}");
        // With retries as slow as the interval, three whole intervals.
        let (slow, _) = time_to_down(Some(Duration::from_secs(30)), false).await;
        assert!(slow >= Duration::from_secs(89), "{slow:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_camera_is_down_within_its_interval_and_three_timeouts() {
        // Its next probe (29 s later) times out after 3.3 s; each retry is due 3 s after
        // the failed probe began, so at once: down 29 + 3 × 3.3 = 38.9 s after it hung,
        // within the interval + 10 s.
        let (taken, probes) = time_to_down(None, true).await;
        assert_eq!(probes, 3);
        assert!(taken >= Duration::from_secs(38), "{taken:?}");
        assert!(taken <= Duration::from_secs(39), "{taken:?}");
        // Retries as slow as the interval keep the cadence without retries, one probe
        // every 30 s however long each took: 29 + 30 + 30 + 3.3 = 92.3 s.
        let (slow, _) = time_to_down(Some(Duration::from_secs(30)), true).await;
        assert!(slow >= Duration::from_secs(92), "{slow:?}");
        assert!(slow <= Duration::from_secs(93), "{slow:?}");
    }

    #[test]
    fn devices_with_one_interval_are_spread_over_it() {
        // 64 devices: every sixteenth of the interval holds at most six of them.
        let mut slots = [0; 16];
        for i in 0..64 {
            let p = phase(i);
            assert!((0.0..1.0).contains(&p));
            slots[(p * 16.0) as usize] += 1;
        }
        assert!(slots.iter().all(|&n| (2..=6).contains(&n)), "{slots:?}");
    }
}
