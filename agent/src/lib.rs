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
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod hysteresis;
pub mod inventory;
pub mod memory;
#[cfg(test)]
mod mutants;
pub mod probe;
pub mod reload;
pub mod scheduler;
pub mod session;
pub mod spool;
pub mod supervision;

use std::path::PathBuf;
use std::sync::Arc;

pub use campuswatch_service::Liveness;
pub use config::{
    AgentConfig, ConfigError, DeviceConfig, MqttConfig, ProbeConfig, SpoolConfig, Transport,
};
pub use reload::{Reload, ReloadError, ReloadOutcome};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, Instrument};

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

/// How a service manager steers a running agent (all optional).
#[derive(Debug)]
pub struct Control {
    /// New configurations to apply while running (SIGHUP); see [`reload`].
    pub reloads: Option<mpsc::Receiver<Reload>>,
    /// Beaten by the session loop as it runs, for a watchdog to check.
    pub liveness: Liveness,
    /// Told once the state directory is open, the device tasks run and the session
    /// starts: the agent is ready.
    pub started: Option<oneshot::Sender<()>>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            reloads: None,
            liveness: Liveness::new("agent session"),
            started: None,
        }
    }
}

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
    run_controlled(config, shutdown, health, Control::default()).await
}

/// [`run_with`], steered by `control`: reloads, liveness, readiness.
pub async fn run_controlled(
    config: AgentConfig,
    shutdown: CancellationToken,
    health: Arc<health::HealthSampler>,
    control: Control,
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
        let devices = config.devices.len();
        let last_epoch = epoch.current();
        let dropped_events_total = spool.dropped_total();
        let mut session = session::Session::new(
            Arc::new(config),
            epoch,
            spool,
            inventory,
            health,
            shutdown.clone(),
        )
        .with_control(control.reloads, control.liveness);
        session.start_devices()?;
        info!(
            devices,
            replay_events = recovery.replay,
            dropped_events_total,
            last_epoch,
            version = env!("CARGO_PKG_VERSION"),
            "Agent starting."
        );
        if let Some(started) = control.started {
            let _ = started.send(());
        }
        session.run(&shutdown).await;
        session.stop_devices().await;
        info!("Agent stopped.");
        Ok(())
    }
    .instrument(span)
    .await
}
