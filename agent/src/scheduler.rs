//! The device scheduler: one task per device that owns the probe interval, the probe
//! timeout and shutdown, feeds each result through the device's hysteresis, and sends
//! the resulting transitions to the session, which spools and publishes them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::config::DeviceConfig;
use crate::hysteresis::{Hysteresis, Thresholds, Transition};
use crate::inventory::Inventory;
use crate::probe::{probe_once, Probe};
use campuswatch_protocol::DeviceState;

/// A transition of the device at `index` in the configuration's device list.
#[derive(Debug, Clone)]
pub struct DeviceTransition {
    pub index: usize,
    pub transition: Transition,
}

/// Where in its interval the device at `index` is probed, as a fraction: successive
/// multiples of the golden ratio spread any number of devices evenly over the interval.
fn phase(index: usize) -> f64 {
    (index as f64 * 0.618_033_988_749_895).fract()
}

/// Probes one device every `interval` until `shutdown`; sends its transitions on `tx`.
pub async fn run_device(
    index: usize,
    device: DeviceConfig,
    probe: Box<dyn Probe>,
    inventory: Arc<Inventory>,
    tx: mpsc::Sender<DeviceTransition>,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("device", device = %device.id);
    async move {
        let mut hysteresis = Hysteresis::new(Thresholds {
            down_after: device.down_after(),
            up_after: device.up_after(),
        });
        let timeout = device.timeout();
        let target = device.probe.target();
        let interval = device.interval().max(Duration::from_millis(1));
        // The first probe at once (the birth wants every state soon); the following ones
        // at a phase of the interval that differs from device to device, so that 64
        // cameras with the same interval are not all probed in the same instant.
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + interval.mul_f64(phase(index)),
            interval,
        );
        // A slow probe delays the next one instead of causing a burst to catch up.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
            }
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = probe_once(&*probe, timeout) => r,
            };
            debug!(status = result.status.as_str(), latency = ?result.latency, cause = ?result.cause, "Probed.");
            let Some(transition) = hysteresis.observe(&result, chrono::Utc::now()) else {
                inventory.set_latest(index, result.measurements, result.info);
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
            if tx.send(DeviceTransition { index, transition }).await.is_err() {
                return;
            }
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::phase;

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
