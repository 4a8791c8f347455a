//! The embedded MQTT broker: rumqttd running inside the server process.
//!
//! With no external broker configured the server (and the `demo` command) starts an
//! [`EmbeddedBroker`] so that one command gives a complete system. Production deployments
//! use an external broker (Mosquitto, EMQX, VerneMQ); nothing in the server may depend on
//! rumqttd quirks, which is why this module only hands out an address to connect to.
//!
//! # What rumqttd is configured for
//!
//! * One MQTT 3.1.1 listener, plain TCP (TLS, when configured, is the guarded front's; see
//!   [Security](#security)). rumqttd serves MQTT 5 only on a *separate*
//!   listener (its own port); the server and the agents speak 3.1.1, so a second port
//!   (and a second fallback dance) is not worth it.
//! * Memory bounded: rumqttd keeps every message in an in-memory commit log per
//!   subscription filter, and only drops the oldest segment when a log holds
//!   `max_segment_count` segments. Its sample config (100 MiB x 10 segments) lets one
//!   busy filter grow to about 1 GB. We use [`MAX_SEGMENT_SIZE`] = 1 MiB x
//!   [`MAX_SEGMENT_COUNT`] = 10 segments, so each subscription filter holds at most about
//!   10 MiB (plus one oversize message per segment). The same log is what a persistent
//!   (clean_session=false) subscriber catches up from after a reconnect, so the offline
//!   queue of such a subscriber is bounded by it too: roughly 30,000 heartbeats of
//!   ~320 bytes per filter. Publishes to topics nobody subscribes to are not logged at all
//!   (`dynamic_filters` is off), only their retained copy (one per topic) is kept.
//! * `max_connections` (default 20,000) caps the router's connection table; rumqttd
//!   pre-allocates that table, so it is also validated against a sane upper bound.
//! * `max_payload_size` (default the protocol's `MAX_PAYLOAD_BYTES`, 256 KiB) is a payload
//!   limit. rumqttd enforces its limit on the whole packet body (topic + packet id +
//!   payload), so we add [`PACKET_HEADROOM`] for the largest possible topic.
//! * Incoming batching (`max_inflight_count`, [`MAX_INFLIGHT_COUNT`] = 500): how many
//!   packets rumqttd reads from one connection before handing them to its router. The
//!   broker-to-subscriber QoS 1 window is fixed at 100 in rumqttd 0.20 and not
//!   configurable.
//! * Outgoing batching (`max_outgoing_packet_count`): how many messages a QoS 0
//!   subscriber is handed per router round. rumqttd also uses it to cut the retained
//!   messages a new QoS 0 subscription receives, so it is set to `max_connections` (at
//!   least [`MIN_OUTGOING_PACKET_COUNT`]): one retained state per possible gateway. The
//!   batch holds reference-counted copies of messages already in the commit log, so a
//!   large value costs latency for other clients during a catch-up, not memory.
//! * Persistent sessions are always allowed in rumqttd: a client connecting with
//!   clean_session=false gets its subscriptions and log cursors back on reconnect.
//! * Last Will, retained messages, `+`/`#` wildcards and QoS 1 are rumqttd defaults.
//! * Duplicate client ids: rumqttd's `allow-duplicate-clientid` feature is left **off**,
//!   which gives the MQTT-standard behaviour: a second connection with the same client id
//!   makes the broker drop the first one.
//!
//! # rumqttd 0.20 limitations the server must design around
//!
//! * **Retained messages on a QoS 1 subscription are cut to 100**: a new subscription
//!   receives at most as many retained messages as it has free QoS 1 in-flight slots
//!   (100, hard-coded); the rest are silently skipped. A QoS 0 subscription receives up
//!   to `max_outgoing_packet_count` (see above). Subscribe to retained state at QoS 0.
//! * **Client id takeover with clean_session=true loses the Last Will**: when a second
//!   connection with the same client id and clean_session=true displaces the first,
//!   rumqttd publishes the *new* connection's will at once (a false "offline" for a live
//!   client) and then nothing when that connection really dies. With clean_session=false
//!   the takeover publishes no will and the new connection's will fires when it dies, as
//!   it should. Will-bearing clients should connect with clean_session=false.
//!
//! # Lifecycle
//!
//! rumqttd 0.20 has no shutdown API: `Broker::start` blocks forever on its listener
//! threads and the router thread runs until the process exits. The broker therefore runs
//! on a dedicated, detached std thread and stops at process exit; dropping
//! [`EmbeddedBroker`] does not stop it.
//!
//! # Security
//!
//! With the defaults the broker listens on loopback with no authentication, as before:
//! the demo and a newcomer need nothing. With a password file or a TLS certificate
//! ([`BrokerSecurity`]) rumqttd moves to a loopback port of its own, reachable only with
//! a password made at start, and the public listener belongs to the guarded front
//! ([`guard`]): TLS, Mosquitto's password file ([`passwd`]) and the Mosquitto recipe's
//! topic ACL ([`acl`]). Listening beyond loopback without both refuses to start unless
//! `insecure` says so ([`BrokerError::Exposed`]).
//!
//! # Logging
//!
//! rumqttd logs through `tracing` (info per connection, error on every disconnect); the
//! server's subscriber filters it. With no console configured it never prints to stdout.

pub mod acl;
pub mod guard;
pub mod passwd;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::{timeout, Instant};
use tracing::{debug, error, info, warn};

use crate::metrics::Metrics;
use guard::{Guard, InternalSecret};

/// Size at which rumqttd starts a new in-memory commit-log segment (1 MiB).
pub const MAX_SEGMENT_SIZE: usize = 1024 * 1024;
/// Segments kept per subscription filter (10); with [`MAX_SEGMENT_SIZE`] that bounds each
/// filter's log to about 10 MiB.
pub const MAX_SEGMENT_COUNT: usize = 10;
/// Packets read from one connection per router hand-off.
pub const MAX_INFLIGHT_COUNT: usize = 500;
/// Lower bound of the messages a QoS 0 subscriber is handed per router round (rumqttd's
/// sample value); the actual value is `max_connections` if larger (see the module docs).
pub const MIN_OUTGOING_PACKET_COUNT: usize = 200;
/// Allowance on top of the payload limit for the rest of a PUBLISH body: a topic of at most
/// 65,535 bytes with its 2-byte length, and the 2-byte packet id.
pub const PACKET_HEADROOM: usize = 65_535 + 2 + 2;
/// Default connection cap.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
/// Upper bound accepted for `max_connections`: rumqttd pre-allocates its tables for it.
const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;
/// MQTT's largest encodable packet body (the variable-length "remaining length").
const MQTT_MAX_REMAINING_LENGTH: usize = 268_435_455;
/// How long a TCP connection may stay open without sending CONNECT.
const CONNECT_TIMEOUT_MS: u16 = 30_000;
/// How long `start` waits for the listener to answer an MQTT CONNECT.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between readiness probes; rumqttd binds within milliseconds.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// Client id of the readiness probe (no `+$#/`, which rumqttd rejects).
const PROBE_CLIENT_ID: &str = "campuswatch-embedded-broker-probe";

/// Settings of the embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBrokerConfig {
    /// Address to listen on. Port 0 takes a free port.
    pub listen: SocketAddr,
    /// If `listen` is taken (another broker already holds 1883, say), listen on a free port
    /// of the same IP instead, and log which.
    pub fallback_to_free_port: bool,
    /// Maximum simultaneous client connections.
    pub max_connections: usize,
    /// Maximum PUBLISH payload in bytes.
    pub max_payload_size: usize,
    /// Who may connect and what they may do; the default is nobody checked (loopback).
    pub security: BrokerSecurity,
}

/// The embedded broker's protection (`[mqtt.embedded]`'s `password_file`,
/// `server_users`, `tls_cert_file`, `tls_key_file`, `insecure`).
#[derive(Debug, Clone, Default)]
pub struct BrokerSecurity {
    /// A password file in `mosquitto_passwd`'s format; user name = campus id. With it,
    /// every client must log in and is held to the topic ACL.
    pub password_file: Option<PathBuf>,
    /// Users of the password file with the server's ACL (read `cw/v1/#`, write the
    /// servers' state and rebirth requests); every other user is a campus.
    pub server_users: Vec<String>,
    /// The broker's certificate chain and key (PEM): clients connect with TLS.
    pub tls: Option<TlsFiles>,
    /// Listen beyond loopback without a password file and TLS anyway.
    pub insecure: bool,
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl BrokerSecurity {
    /// Whether the guarded front is needed (a password file or TLS).
    pub fn guarded(&self) -> bool {
        self.password_file.is_some() || self.tls.is_some()
    }

    /// Refuses a listener beyond loopback that lacks a password file or TLS, unless
    /// `insecure`; the error names the keys to set.
    pub fn check_exposure(&self, listen: SocketAddr) -> Result<(), BrokerError> {
        if listen.ip().is_loopback()
            || self.insecure
            || (self.password_file.is_some() && self.tls.is_some())
        {
            return Ok(());
        }
        let mut missing = Vec::new();
        if self.password_file.is_none() {
            missing.push("mqtt.embedded.password_file");
        }
        if self.tls.is_none() {
            missing.push("mqtt.embedded.tls_cert_file and mqtt.embedded.tls_key_file");
        }
        Err(BrokerError::Exposed {
            addr: listen,
            missing: missing.join(", "),
        })
    }
}

impl Default for EmbeddedBrokerConfig {
    /// Loopback 1883 with fallback: the demo must start on a machine that already runs a
    /// broker. Serving other hosts needs an explicit `listen` address.
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1883),
            fallback_to_free_port: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_payload_size: campuswatch_protocol::MAX_PAYLOAD_BYTES,
            security: BrokerSecurity::default(),
        }
    }
}

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// `listen` is taken and fallback is off.
    #[error(
        "MQTT listen address {addr} is already in use (is another broker running?); \
         choose another address or allow falling back to a free port"
    )]
    AddressInUse { addr: SocketAddr },
    /// `listen` cannot be bound for another reason (address not on this host, no permission).
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// A setting is out of range, or a file of the security settings is unusable.
    #[error("invalid embedded broker setting: {0}")]
    InvalidConfig(String),
    /// Beyond loopback without a password file and TLS, and not `insecure`.
    #[error(
        "the embedded broker would listen on {addr}, beyond loopback, without authentication and TLS: \
         anyone who reaches that port could read every campus and speak for any campus. \
         Set {missing} (docs/broker-security.md), or listen on 127.0.0.1, \
         or set mqtt.embedded.insecure = true to accept the risk"
    )]
    Exposed { addr: SocketAddr, missing: String },
    /// The OS refused to start the broker thread.
    #[error("cannot start the embedded broker thread: {0}")]
    Spawn(#[source] io::Error),
    /// rumqttd stopped before it accepted connections (its own error is in the log).
    #[error("embedded broker on {addr} stopped during startup: {reason}")]
    Stopped { addr: SocketAddr, reason: String },
    /// The listener did not answer an MQTT CONNECT in time.
    #[error(
        "embedded broker on {addr} did not accept MQTT connections within {waited:?}: {last_error}"
    )]
    StartTimeout {
        addr: SocketAddr,
        waited: Duration,
        last_error: String,
    },
}

/// A running rumqttd broker. See the module documentation for its limits and lifecycle.
#[derive(Debug)]
pub struct EmbeddedBroker {
    /// The public listener: rumqttd's own, or the guarded front's.
    local_addr: SocketAddr,
    thread: JoinHandle<()>,
    /// With the guarded front: rumqttd's loopback listener and the password it wants.
    internal: Option<(SocketAddr, InternalSecret)>,
    tls: bool,
    front: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for EmbeddedBroker {
    /// Closes the public listener of the guarded front (rumqttd itself cannot stop).
    fn drop(&mut self) {
        if let Some(front) = &self.front {
            front.abort();
        }
    }
}

impl EmbeddedBroker {
    /// Starts rumqttd with an MQTT 3.1.1 listener on `cfg.listen`.
    ///
    /// If that address is taken (or its port is privileged) and `fallback_to_free_port` is
    /// set, listens on a free port of the same IP instead and logs which. Returns once the
    /// listener has answered an MQTT CONNECT with a CONNACK.
    ///
    /// rumqttd binds its listener itself from its config, so the port is chosen by binding
    /// and releasing a probe socket first; another process could take it in between, in
    /// which case rumqttd's bind fails and this returns [`BrokerError::Stopped`].
    pub async fn start(cfg: EmbeddedBrokerConfig) -> Result<EmbeddedBroker, BrokerError> {
        Self::start_with_metrics(cfg, Arc::default()).await
    }

    /// [`start`](Self::start), counting the guarded front's refusals in `metrics`.
    pub async fn start_with_metrics(
        cfg: EmbeddedBrokerConfig,
        metrics: Arc<Metrics>,
    ) -> Result<EmbeddedBroker, BrokerError> {
        validate(&cfg)?;
        let security = &cfg.security;
        security.check_exposure(cfg.listen)?;
        if !cfg.listen.ip().is_loopback() && security.insecure {
            let missing = match (&security.password_file, &security.tls) {
                (None, None) => "authentication, topic ACLs or TLS",
                (None, Some(_)) => "authentication or topic ACLs",
                (Some(_), None) => "TLS (passwords travel in clear)",
                (Some(_), Some(_)) => "",
            };
            if !missing.is_empty() {
                error!(
                    listen = %cfg.listen,
                    "INSECURE: mqtt.embedded.insecure = true: the embedded broker listens beyond loopback without {missing}. Anyone who reaches this port may read every campus's reports and speak for any campus. Set mqtt.embedded.password_file, tls_cert_file and tls_key_file (docs/broker-security.md)."
                );
            }
        }
        if !security.guarded() {
            let addr = choose_addr(cfg.listen, cfg.fallback_to_free_port)?
                .local_addr()
                .map_err(|source| BrokerError::Bind {
                    addr: cfg.listen,
                    source,
                })?;
            let thread = run_rumqttd(&cfg, addr, None).await?;
            info!(%addr, "embedded MQTT broker listening");
            return Ok(EmbeddedBroker {
                local_addr: addr,
                thread,
                internal: None,
                tls: false,
                front: None,
            });
        }

        // Every file first, so that a bad one stops the start before anything listens.
        let passwords = security
            .password_file
            .as_deref()
            .map(passwd::PasswordFile::load)
            .transpose()
            .map_err(|e| BrokerError::InvalidConfig(format!("mqtt.embedded.password_file: {e}")))?;
        let tls = security.tls.as_ref().map(tls_acceptor).transpose()?;
        let public = choose_addr(cfg.listen, cfg.fallback_to_free_port)?;
        public
            .set_nonblocking(true)
            .map_err(|source| BrokerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let public =
            tokio::net::TcpListener::from_std(public).map_err(|source| BrokerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let local_addr = public.local_addr().map_err(|source| BrokerError::Bind {
            addr: cfg.listen,
            source,
        })?;

        let internal = choose_addr(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), false)?
            .local_addr()
            .map_err(|source| BrokerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let secret = InternalSecret::generate();
        let thread = run_rumqttd(&cfg, internal, Some(secret.clone())).await?;
        let guard = Guard {
            upstream: internal,
            secret: secret.clone(),
            tls: tls.clone(),
            passwords,
            server_users: security
                .server_users
                .iter()
                .cloned()
                .collect::<HashSet<_>>(),
            max_packet: cfg.max_payload_size + PACKET_HEADROOM,
            connect_timeout: Duration::from_millis(u64::from(CONNECT_TIMEOUT_MS)),
            connections: Arc::new(tokio::sync::Semaphore::new(cfg.max_connections)),
            metrics,
        };
        let front = tokio::spawn(guard::serve(public, Arc::new(guard)));
        info!(
            %local_addr,
            tls = tls.is_some(),
            authentication = security.password_file.is_some(),
            "embedded MQTT broker listening behind its guarded front"
        );
        Ok(EmbeddedBroker {
            local_addr,
            thread,
            internal: Some((internal, secret)),
            tls: tls.is_some(),
            front: Some(front),
        })
    }

    /// The address actually bound (may differ from the configured one after fallback).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// An address clients on this host can connect to: the bound address, with an
    /// unspecified IP (0.0.0.0 / ::) replaced by loopback.
    pub fn connect_addr(&self) -> SocketAddr {
        connect_addr(self.local_addr)
    }

    /// `mqtt://HOST:PORT` for [`connect_addr`](Self::connect_addr), e.g.
    /// `mqtt://127.0.0.1:1883`. Carries no client id.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://{}", self.connect_addr())
    }

    /// How the server in this process reaches rumqttd: its loopback listener with the
    /// password made at start when the guarded front is on (no TLS, no ACL: the server
    /// is trusted), else the public listener with no login.
    pub fn in_process_login(&self) -> campuswatch_mqtt::BrokerLogin {
        match &self.internal {
            Some((addr, secret)) => campuswatch_mqtt::BrokerLogin {
                url: format!("mqtt://{addr}"),
                username: "campuswatch-server".into(),
                password: secret.expose().to_string(),
                ..Default::default()
            },
            None => campuswatch_mqtt::BrokerLogin {
                url: format!("mqtt://{}", self.connect_addr()),
                ..Default::default()
            },
        }
    }

    /// False once rumqttd's threads have ended (it never stops on its own otherwise).
    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }
}

fn validate(cfg: &EmbeddedBrokerConfig) -> Result<(), BrokerError> {
    if cfg.max_connections == 0 || cfg.max_connections > MAX_CONNECTIONS_LIMIT {
        return Err(BrokerError::InvalidConfig(format!(
            "max_connections must be between 1 and {MAX_CONNECTIONS_LIMIT}, got {}",
            cfg.max_connections
        )));
    }
    let max_payload = MQTT_MAX_REMAINING_LENGTH - PACKET_HEADROOM;
    if cfg.max_payload_size == 0 || cfg.max_payload_size > max_payload {
        return Err(BrokerError::InvalidConfig(format!(
            "max_payload_size must be between 1 and {max_payload} bytes, got {}",
            cfg.max_payload_size
        )));
    }
    Ok(())
}

/// Binds `listen` if it is free, else (with fallback) a free port on the same IP.
/// Binding is the only reliable "is it taken" check. For rumqttd, which binds its
/// listener itself, the caller takes the address and releases the listener; the guarded
/// front keeps it.
fn choose_addr(listen: SocketAddr, fallback: bool) -> Result<TcpListener, BrokerError> {
    match TcpListener::bind(listen) {
        Ok(bound) => Ok(bound),
        Err(e) if fallback && can_fall_back(&e) => {
            let free = TcpListener::bind(SocketAddr::new(listen.ip(), 0)).map_err(|source| {
                BrokerError::Bind {
                    addr: listen,
                    source,
                }
            })?;
            info!(
                requested = %listen,
                chosen = ?free.local_addr().ok(),
                reason = %e,
                "MQTT address unavailable; embedded broker takes a free port instead"
            );
            Ok(free)
        }
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            Err(BrokerError::AddressInUse { addr: listen })
        }
        Err(source) => Err(BrokerError::Bind {
            addr: listen,
            source,
        }),
    }
}

/// Errors another port fixes: the port is taken, or privileged. A wrong IP is not one.
fn can_fall_back(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
    )
}

/// The guarded front's TLS: the configured chain and key, TLS 1.2 and 1.3, ring.
fn tls_acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, BrokerError> {
    let invalid = |e: campuswatch_mqtt::SetupError| {
        BrokerError::InvalidConfig(format!("{}: {}", e.key, e.message))
    };
    let chain = campuswatch_mqtt::certificates(
        "mqtt.embedded.tls_cert_file",
        &files.cert.display().to_string(),
    )
    .map_err(invalid)?;
    let key = campuswatch_mqtt::private_key(
        "mqtt.embedded.tls_key_file",
        &files.key.display().to_string(),
    )
    .map_err(invalid)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BrokerError::InvalidConfig(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            BrokerError::InvalidConfig(format!(
                "mqtt.embedded.tls_key_file: {:?} cannot be used with the certificate in {:?} (mqtt.embedded.tls_cert_file): {e}",
                files.key.display().to_string(),
                files.cert.display().to_string()
            ))
        })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Starts rumqttd on `addr` on its own thread and waits until it answers CONNECT. With
/// `secret`, it accepts only connections whose password is that secret.
async fn run_rumqttd(
    cfg: &EmbeddedBrokerConfig,
    addr: SocketAddr,
    secret: Option<InternalSecret>,
) -> Result<JoinHandle<()>, BrokerError> {
    let config = rumqttd_config(cfg, addr, secret.clone());
    let (stopped_tx, mut stopped_rx) = oneshot::channel::<String>();
    let thread = std::thread::Builder::new()
        .name("mqtt-broker".to_owned())
        .spawn(move || {
            // Broker::new spawns the router thread; start() spawns the listener thread
            // and blocks until it ends, which only happens when it fails (e.g. bind).
            let mut broker = Broker::new(config);
            let reason = match broker.start() {
                Ok(()) => "its listener stopped (see rumqttd's error log)".to_owned(),
                Err(e) => e.to_string(),
            };
            warn!(%addr, %reason, "embedded MQTT broker stopped");
            // The receiver is gone once startup finished; nothing left to tell then.
            let _ = stopped_tx.send(reason);
        })
        .map_err(BrokerError::Spawn)?;
    wait_until_ready(addr, secret.as_ref(), &mut stopped_rx).await?;
    Ok(thread)
}

fn rumqttd_config(
    cfg: &EmbeddedBrokerConfig,
    addr: SocketAddr,
    secret: Option<InternalSecret>,
) -> Config {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: CONNECT_TIMEOUT_MS,
        max_payload_size: cfg.max_payload_size + PACKET_HEADROOM,
        max_inflight_count: MAX_INFLIGHT_COUNT,
        auth: None,
        external_auth: None,
        // Off: never create a commit log for a topic nobody subscribed to.
        dynamic_filters: false,
    };
    if let Some(secret) = secret {
        connections.set_auth_handler(move |_client_id, _user, password: String| {
            let admitted = secret.admits(&password);
            async move { admitted }
        });
    }
    let listener = ServerSettings {
        name: "campuswatch-mqtt-v4".to_owned(),
        listen: addr,
        tls: None,
        // rumqttd sleeps this long after each accept; 0 so that load tests connecting
        // thousands of clients are not throttled to 1,000 per second.
        next_connection_delay_ms: 0,
        connections,
    };
    let router = RouterConfig {
        max_connections: cfg.max_connections,
        // Also the cap on retained messages sent to a new QoS 0 subscription.
        max_outgoing_packet_count: cfg.max_connections.max(MIN_OUTGOING_PACKET_COUNT) as u64,
        max_segment_size: MAX_SEGMENT_SIZE,
        max_segment_count: MAX_SEGMENT_COUNT,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    // Everything else (v5, websocket, console, prometheus, metrics, bridge, cluster) off:
    // the console would also be the only part that prints to stdout.
    Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("1".to_owned(), listener)])),
        ..Config::default()
    }
}

fn connect_addr(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// Polls until the broker completes an MQTT handshake, rumqttd's thread ends, or
/// [`STARTUP_TIMEOUT`] passes. A full CONNECT/CONNACK (not just a TCP connect) proves the
/// router is up too, and leaves no half-open connection for rumqttd to log as an error.
async fn wait_until_ready(
    addr: SocketAddr,
    secret: Option<&InternalSecret>,
    stopped: &mut oneshot::Receiver<String>,
) -> Result<(), BrokerError> {
    let target = connect_addr(addr);
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut last_error = String::from("no attempt made");
    loop {
        match stopped.try_recv() {
            Ok(reason) => return Err(BrokerError::Stopped { addr, reason }),
            Err(oneshot::error::TryRecvError::Closed) => {
                return Err(BrokerError::Stopped {
                    addr,
                    reason: "the broker thread panicked".to_owned(),
                })
            }
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(BrokerError::StartTimeout {
                addr,
                waited: STARTUP_TIMEOUT,
                last_error,
            });
        }
        match timeout(remaining, mqtt_handshake(target, secret)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => {
                debug!(%target, error = %e, "embedded broker not ready yet");
                last_error = e.to_string();
            }
            Err(_) => last_error = "handshake timed out".to_owned(),
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// One MQTT 3.1.1 CONNECT (clean session, no will, the internal password if any) →
/// CONNACK(accepted) → DISCONNECT.
async fn mqtt_handshake(target: SocketAddr, secret: Option<&InternalSecret>) -> io::Result<()> {
    use rumqttc::mqttbytes::v4::{Connect, Login};
    let mut stream = TcpStream::connect(target).await?;
    let mut connect = Connect::new(PROBE_CLIENT_ID);
    connect.keep_alive = 10;
    connect.clean_session = true;
    connect.login = secret.map(|s| Login::new("probe", s.expose()));
    let mut packet = bytes::BytesMut::new();
    connect
        .write(&mut packet)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
    stream.write_all(&packet).await?;

    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).await?;
    if connack != [0x20, 0x02, 0x00, 0x00] {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected reply to MQTT CONNECT: {connack:02x?}"),
        ));
    }
    stream.write_all(&[0xE0, 0x00]).await?;
    Ok(())
}
