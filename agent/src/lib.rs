//! The campuswatch gateway agent: probes a campus's alarm devices and IP cameras and
//! reports their state over MQTT to the central server.
//!
//! [`run`] is the whole agent; the `campuswatch-agent` binary and the server's demo and
//! end-to-end tests all call it. Pieces, from the edge inwards:
//! [`probe`] (one module per probe kind) → [`scheduler`] (interval, timeout, shutdown per
//! device) → [`hysteresis`] (probe results to state transitions) → [`session`] (spools
//! each transition in [`spool`], publishes births, heartbeats and events under an
//! [`epoch`]). [`check`] is the installer's one-shot field check; [`discover`] finds the
//! ONVIF cameras on the campus network.

pub mod check;
pub mod config;
pub mod dc09;
pub mod discover;
mod durable;
pub mod epoch;
pub mod health;
pub mod hysteresis;
pub mod inventory;
pub mod memory;
#[cfg(test)]
mod mutants;
pub mod probe;
pub mod scheduler;
pub mod session;
pub mod spool;
pub mod supervision;
pub mod xml;

use std::path::PathBuf;
use std::sync::Arc;

pub use config::{
    AgentConfig, ConfigError, DeviceConfig, MqttConfig, ProbeConfig, SpoolConfig, Transport,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, Instrument};

/// Why the agent could not start. Once running, the agent does not fail: it retries.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot create the state directory {path} (state_dir): {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error(transparent)]
    Probe(#[from] probe::ProbeSetupError),
}

/// Capacity of the channel from the device tasks to the session.
const TRANSITION_QUEUE: usize = 256;

/// Runs the agent until `shutdown` is cancelled; then publishes its own death (reason
/// `shutdown`), disconnects cleanly and returns `Ok`.
///
/// Aborting the task that runs this future drops the connection without a death: the
/// broker then publishes the Last Will, as after a network failure.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    run_with(config, shutdown, Arc::new(health::HealthSampler::new())).await
}

/// [`run`], sharing one host-health sampler among many in-process agents.
pub async fn run_with(
    config: AgentConfig,
    shutdown: CancellationToken,
    health: Arc<health::HealthSampler>,
) -> Result<(), AgentError> {
    config.validate()?;
    let span = tracing::info_span!("agent", campus = %config.campus);
    async move {
        std::fs::create_dir_all(&config.state_dir).map_err(|source| AgentError::StateDir {
            path: config.state_dir.clone(),
            source,
        })?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        let (spool, recovery) = spool::Spool::open(&config.state_dir, now_ms, config.spool)?;
        let epoch = epoch::EpochStore::open(&config.state_dir);
        let inventory = Arc::new(inventory::Inventory::new(&config, spool.last_id()));
        let mut probes = Vec::with_capacity(config.devices.len());
        let slots = probe::rtsp::StreamSlots::new(config.max_stream_checks);
        for d in &config.devices {
            probes.push(probe::build(&d.probe, d.timeout(), &slots)?);
        }
        let config = Arc::new(config);
        info!(
            devices = config.devices.len(),
            replay_events = recovery.replay,
            dropped_events_total = spool.dropped_total(),
            last_epoch = epoch.current(),
            version = env!("CARGO_PKG_VERSION"),
            "Agent starting."
        );

        let (tx, rx) = mpsc::channel(TRANSITION_QUEUE);
        // A JoinSet aborts its tasks when dropped, so aborting `run` stops the probes too.
        let mut devices = tokio::task::JoinSet::new();
        for (i, (d, p)) in config.devices.iter().zip(probes).enumerate() {
            devices.spawn(scheduler::run_device(
                i,
                d.clone(),
                p,
                inventory.clone(),
                tx.clone(),
                shutdown.clone(),
            ));
        }
        drop(tx);

        let mut session =
            session::Session::new(config.clone(), epoch, spool, inventory, health, rx);
        session.run(&shutdown).await;

        // Device tasks watch the same token; spool what they still report while they stop.
        loop {
            tokio::select! {
                joined = devices.join_next() => match joined {
                    Some(Err(e)) if e.is_panic() => error!(error = %e, "A device task panicked."),
                    Some(_) => {}
                    None => break,
                },
                Some(t) = session.transitions().recv() => session.record(t),
            }
        }
        session.drain_transitions();
        info!("Agent stopped.");
        Ok(())
    }
    .instrument(span)
    .await
}
