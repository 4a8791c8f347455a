//! The campuswatch server library: ingest, liveness, coverage, alerts, store and API.
//!
//! [`start`] brings up a complete server on a listener the caller bound (tests bind port
//! 0): the embedded broker unless an external one is configured, the store, the monitor
//! restored from it, the MQTT connection, the engine, the notice dispatcher and the HTTP
//! API. The binary is a thin wrapper around it.

pub mod api;
pub mod auth;
pub mod broker;
pub mod clock;
pub mod config;
pub mod console;
pub mod csv_cell;
pub mod gb28181;
pub mod ha;
pub mod http;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod model;
pub mod monitor;
mod named;
pub mod notify;
pub mod peers;
pub mod regions;
pub mod registry;
pub mod reports;
pub mod store;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::broker::{EmbeddedBroker, EmbeddedBrokerConfig};
use crate::clock::{Clock, SystemClock};
use crate::config::ServerConfig;
use crate::ingest::{Engine, Inbound, MqttSettings};
use crate::metrics::Metrics;
use crate::monitor::{Monitor, Settings};
use crate::registry::RegistryEntry;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("embedded broker: {0}")]
    Broker(#[from] broker::BrokerError),
    #[error(transparent)]
    Mqtt(#[from] ingest::MqttSetupError),
    #[error("HTTP listener: {0}")]
    Http(std::io::Error),
    #[error("{0}")]
    Api(String),
    #[error("sign-in: {0}")]
    Auth(String),
    #[error("notifications: {0}")]
    Notify(#[from] notify::NotifyError),
}

/// A running server.
pub struct ServerHandle {
    http_addr: std::net::SocketAddr,
    broker_url: String,
    gb_addr: Option<std::net::SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    inbound: mpsc::Sender<Inbound>,
    /// Kept alive for the life of the server.
    _broker: Option<EmbeddedBroker>,
    pub monitor: Arc<RwLock<Monitor>>,
    pub metrics: Arc<Metrics>,
    pub store: Store,
    liveness: campuswatch_service::Liveness,
}

impl ServerHandle {
    /// Beaten by the engine loop as it runs, for the systemd watchdog.
    pub fn liveness(&self) -> campuswatch_service::Liveness {
        self.liveness.clone()
    }

    /// Where the HTTP API listens.
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.http_addr
    }

    /// The broker agents should connect to.
    pub fn broker_url(&self) -> &str {
        &self.broker_url
    }

    /// Where GB/T 28181 devices register (UDP and TCP), when `gb28181.enabled`.
    pub fn gb28181_addr(&self) -> Option<std::net::SocketAddr> {
        self.gb_addr
    }

    /// Loads registry entries, as the API's import does.
    pub async fn import_registry(
        &self,
        entries: Vec<RegistryEntry>,
        replace: bool,
    ) -> Result<(), ServerError> {
        ingest::import_registry(&self.inbound, entries, replace)
            .await
            .map_err(|e| ServerError::Api(e.to_string()))??;
        Ok(())
    }

    /// Hands the engine what a GB/T 28181 device said, as the SIP listener does: for
    /// tests of what follows from it (the listener has its own, with real devices).
    #[cfg(any(test, feature = "test-util"))]
    pub async fn gb_input(&self, input: gb28181::GbInput) {
        let _ = self.inbound.send(Inbound::Gb(input)).await;
    }

    /// Stops every task: the server's offline state is published, its connection closed,
    /// pending heartbeat times saved.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .is_err()
            {
                warn!("A server task did not stop within 10 s.");
            }
        }
    }
}

/// The name of the first administrator, made when a server with sign-in on starts with
/// no users at all.
pub const FIRST_ADMIN: &str = "admin";
/// Where that administrator's password is written, in the data directory.
pub const FIRST_ADMIN_PASSWORD_FILE: &str = "initial-admin-password";

/// Sign-in is on and nobody could sign in: make the administrator `admin` with a random
/// password, written to a file only the server's user may read, so that a newcomer can
/// sign in without a default password that every installation would share.
async fn bootstrap_admin(
    store: &Store,
    data_dir: &std::path::Path,
    now: campuswatch_protocol::Timestamp,
) -> Result<(), ServerError> {
    let password = auth::new_password();
    let hash = auth::hash_password(&password).map_err(ServerError::Auth)?;
    let file = data_dir.join(FIRST_ADMIN_PASSWORD_FILE);
    std::fs::create_dir_all(data_dir)
        .and_then(|()| write_private(&file, &format!("{password}\n")))
        .map_err(|e| ServerError::Auth(format!("cannot write {}: {e}", file.display())))?;
    store
        .put_user(FIRST_ADMIN, &hash, auth::Role::Admin, None, now)
        .await?;
    store
        .record_audit(&store::NewAudit {
            at: now,
            actor: "local".into(),
            token: None,
            action: store::AuditAction::UserCreate,
            target: FIRST_ADMIN.into(),
            region: None,
            details: serde_json::json!({"role": "admin", "scope": null, "first": true}),
            source: None,
        })
        .await?;
    warn!(
        user = FIRST_ADMIN,
        password_file = %file.display(),
        "There were no users: made the administrator `{FIRST_ADMIN}`, whose password is in the file. Sign in with it, add your own users (`campuswatch-server user add NAME --role admin`), then delete the file."
    );
    Ok(())
}

/// Writes `text` to a file readable by its owner only. A file already there (left by
/// an earlier start, or put there by someone else) is made private before the secret
/// goes in: `mode` applies only to a file the open creates.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())
}

/// Starts a server with the wall clock.
pub async fn start(
    config: ServerConfig,
    listener: TcpListener,
) -> Result<ServerHandle, ServerError> {
    start_with_clock(config, listener, Arc::new(SystemClock)).await
}

/// Starts a server; `clock` is where every "now" comes from.
pub async fn start_with_clock(
    config: ServerConfig,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
) -> Result<ServerHandle, ServerError> {
    let shutdown = CancellationToken::new();
    let store = Store::open(&config.database_url()).await?;
    let snapshot = store.snapshot().await?;
    if !config.auth.enabled {
        warn!(listen = %config.http.listen, "Sign-in is off (auth.enabled = false): the API is open to whoever reaches it.");
    } else if !store.has_users().await? {
        bootstrap_admin(&store, &config.data_dir, clock.now()).await?;
    }
    if let Some(f) = config.alerts.video_down_fraction {
        warn!(
            alerts.video_down_fraction = f,
            "alerts.video_down_fraction is no longer used: a campus's video alert follows the coverage rule (coverage.video_fraction). Remove it from the configuration."
        );
    }
    let settings = Settings {
        missed_heartbeats: config.liveness.missed_heartbeats,
        default_heartbeat_interval: chrono::TimeDelta::from_std(
            config.liveness.default_heartbeat_interval,
        )
        .unwrap_or(chrono::TimeDelta::seconds(5)),
        alarm_fraction: config.coverage.alarm_fraction,
        video_fraction: config.coverage.video_fraction,
        alerts: config.alerts.rules(),
        rebirth_min_interval: chrono::TimeDelta::from_std(config.liveness.rebirth_min_interval)
            .unwrap_or(chrono::TimeDelta::minutes(1)),
        rebirth_max_interval: chrono::TimeDelta::from_std(config.liveness.rebirth_max_interval)
            .unwrap_or(chrono::TimeDelta::hours(1)),
        rebirth_rate: config.liveness.rebirth_rate,
        partition: config.regions(),
        time_zone: config.zone(),
        platform: config.gb28181.rules(),
    };
    let restored = (snapshot.registry.len(), snapshot.gateways.len());
    // Devices registered when the server stopped: the SIP listener takes them back.
    let registrations: Vec<gb28181::Registration> = snapshot
        .gb_devices
        .iter()
        .filter(|d| d.online())
        .filter_map(|d| {
            Some(gb28181::Registration {
                device: d.id,
                address: d.address.parse().ok()?,
                transport: d.transport,
                expires_at: d.expires_at,
            })
        })
        .collect();
    let monitor = Arc::new(RwLock::new(Monitor::restore(
        settings,
        snapshot,
        clock.now(),
    )));
    // Reading the store took about as much memory again as the state it built, all freed
    // now: handed back, so that a restarted server holds what one that never stopped does.
    campuswatch_service::memory::release_free_memory();
    info!(
        registered = restored.0,
        gateways = restored.1,
        database = %campuswatch_service::redact::url_and_query(&config.database_url()),
        "State restored from the store."
    );

    let metrics = Arc::new(Metrics::default());
    // Where agents connect (`broker_url`), and how this server does.
    let (broker, broker_url, login) = if config.mqtt.url.is_empty() {
        let b = EmbeddedBroker::start_with_metrics(
            EmbeddedBrokerConfig {
                listen: config.mqtt.embedded.listen,
                fallback_to_free_port: config.mqtt.embedded.fallback_to_free_port,
                max_connections: 50_000,
                max_payload_size: 4 * campuswatch_protocol::MAX_PAYLOAD_BYTES,
                security: config.mqtt.embedded.security(),
            },
            metrics.clone(),
        )
        .await?;
        let url = b.url();
        info!(url = %url, "Embedded MQTT broker listening.");
        let login = b.in_process_login();
        (Some(b), url, login)
    } else {
        (None, config.mqtt.url.clone(), config.mqtt.login())
    };

    // Before the engine runs, so that a bad channel stops the start and notices
    // committed from the first batch on wake the dispatcher.
    let dispatcher = notify::Dispatcher::new(
        store.clone(),
        &config.notify,
        config.zone(),
        clock.clone(),
        metrics.clone(),
    )
    .await?;
    let notify_task = tokio::spawn(dispatcher.run(shutdown.child_token()));
    let (tx, rx) = mpsc::channel(16_384);
    let (client, conn_task) = ingest::spawn_connection(
        MqttSettings {
            login,
            keepalive: config.mqtt.keepalive,
            inflight: config.mqtt.inflight,
            server_id: config.id.clone(),
            regions: config.regions(),
        },
        metrics.clone(),
        tx.clone(),
        shutdown.clone(),
    )?;
    let (live, _) = tokio::sync::broadcast::channel(live::BACKLOG);
    let liveness = campuswatch_service::Liveness::new("server engine");
    let engine = Engine {
        monitor: monitor.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        clock: clock.clone(),
        client: Some(client),
        check_interval: config.liveness.check_interval,
        flush_interval: Duration::from_secs(10),
        live: live.clone(),
        liveness: liveness.clone(),
    };
    let engine_task = tokio::spawn(engine.run(rx, shutdown.child_token()));

    // When the server was running, for reports: time between runs is unknown.
    let run = store.start_server_run(clock.now()).await?;
    let runs_task = tokio::spawn(store::keep_server_run(
        store.clone(),
        clock.clone(),
        run,
        shutdown.child_token(),
    ));
    let daily_task = tokio::spawn(store::keep_coverage_daily(
        store.clone(),
        clock.clone(),
        reports::AvailabilityRules {
            alarm_fraction: config.coverage.alarm_fraction,
            video_fraction: config.coverage.video_fraction,
            video_view: config.gb28181.video_view,
        },
        reports::zone_offset(config.zone(), clock.now()),
        store::Retention {
            raw_days: config.history.raw_days,
            audit_days: config.history.audit_days,
        },
        shutdown.child_token(),
    ));

    let (gb_addr, gb_task) = if config.gb28181.enabled {
        let (addr, task) = start_gb28181(
            &config,
            registrations,
            metrics.clone(),
            tx.clone(),
            &shutdown,
        )
        .await?;
        (Some(addr), Some(task))
    } else {
        (None, None)
    };

    let http_addr = listener.local_addr().map_err(ServerError::Http)?;
    let app = api::router(api::AppState {
        monitor: monitor.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        clock,
        inbound: tx.clone(),
        auth: config.auth.clone(),
        live,
        shutdown: shutdown.child_token(),
        peers: peers::Peers::new(&config.cluster),
        time_zone: config.zone(),
        server_run: run,
        sign_in_throttle: Default::default(),
        county_listings: Default::default(),
    });
    let http_shutdown = shutdown.clone();
    let http_task = tokio::spawn(http::serve(
        listener,
        app,
        config.http.limits(),
        metrics.clone(),
        http_shutdown,
    ));
    info!(http = %http_addr, broker = %campuswatch_service::redact::url(&broker_url), "campuswatch server started.");
    let memory_task = tokio::spawn(release_memory_regularly(shutdown.child_token()));
    let mut tasks = vec![
        conn_task,
        engine_task,
        http_task,
        notify_task,
        runs_task,
        daily_task,
        memory_task,
    ];
    tasks.extend(gb_task);
    Ok(ServerHandle {
        http_addr,
        broker_url,
        gb_addr,
        shutdown,
        tasks,
        inbound: tx,
        _broker: broker,
        monitor,
        metrics,
        store,
        liveness,
    })
}

/// Binds the GB/T 28181 listener of `[gb28181]` and runs it, handing what devices say to
/// the engine. Returns where it listens.
async fn start_gb28181(
    config: &ServerConfig,
    registrations: Vec<gb28181::Registration>,
    metrics: Arc<Metrics>,
    inbound: mpsc::Sender<Inbound>,
    shutdown: &CancellationToken,
) -> Result<(std::net::SocketAddr, JoinHandle<()>), ServerError> {
    let c = &config.gb28181;
    // Checked by `validate`; read again here, as at every start.
    let platform_id = gb28181::GbCode::parse(&c.platform_id)
        .map_err(|e| ServerError::Api(format!("gb28181.platform_id: {e}")))?;
    let devices = if c.devices_file.is_empty() {
        gb28181::DeviceFile::default()
    } else {
        gb28181::DeviceFile::load(std::path::Path::new(&c.devices_file))
            .map_err(|e| ServerError::Api(format!("gb28181.devices_file: {e}")))?
    };
    let mut settings = gb28181::ListenerSettings::new(c.listen, platform_id, config.zone());
    settings.realm = c.realm();
    settings.password = (!c.password.is_empty()).then(|| c.password.clone());
    settings.keepalive_secs = c.keepalive_interval.as_secs().clamp(1, u64::from(u32::MAX)) as u32;
    settings.register_expires_max = c.register_expires_max.as_secs().clamp(60, 7 * 86_400) as u32;
    settings.register_expires_min = settings
        .register_expires_min
        .min(settings.register_expires_max);
    settings.catalog_interval = c.catalog_interval;
    for (code, d) in devices.devices {
        settings.device_passwords.insert(code, d.password);
        if let Some(k) = d.keepalive_secs {
            settings.device_keepalive_secs.insert(code, k);
        }
    }
    let listener = gb28181::Listener::bind(settings, metrics.gb.clone())
        .await
        .map_err(|e| ServerError::Api(format!("gb28181.listen {}: {e}", c.listen)))?;
    let addr = listener.local_addr();
    info!(sip = %addr, platform = %platform_id, realm = %c.realm(), restored = registrations.len(), "GB/T 28181 platform listening (UDP and TCP).");
    let (tx, mut rx) = mpsc::channel::<gb28181::GbInput>(4096);
    let run = listener.run(registrations, tx, shutdown.child_token());
    let task = tokio::spawn(async move {
        let forward = async move {
            while let Some(input) = rx.recv().await {
                if inbound.send(Inbound::Gb(input)).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(run, forward);
    });
    Ok((addr, task))
}

/// Hands the allocator's free pages back once a minute: large API answers (every
/// campus of a province listed, a year's report) and bursts of births leave pages freed
/// in several threads' arenas, which the allocator would otherwise keep. Taking them back
/// takes a few milliseconds for a province's heap.
async fn release_memory_regularly(shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let _ = tokio::task::spawn_blocking(campuswatch_service::memory::release_free_memory).await;
            }
        }
    }
}

/// Runs a server until `shutdown` is cancelled.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let handle = start(config, listener).await?;
    shutdown.cancelled().await;
    handle.stop().await;
    Ok(())
}
