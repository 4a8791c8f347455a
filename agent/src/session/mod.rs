//! The MQTT session: one task owns the rumqttc `EventLoop`, the event spool and the
//! epoch. It publishes the birth, heartbeats and spooled events, maps broker
//! acknowledgements back to event ids, answers the server's rebirth requests, and
//! reconnects forever with backoff.
//!
//! # Why rumqttc never reconnects by itself
//!
//! The Last Will is fixed at CONNECT and carries the epoch, and every CONNECT needs a new
//! epoch. So [`Session::run_once`] advances the epoch durably, builds fresh options, a
//! fresh client and a fresh `EventLoop`, and returns at the first connection error;
//! [`Session::run`] loops with exponential backoff and full jitter: a lost connection is
//! retried after a delay drawn uniformly from `[0, reconnect_delay_min · 2^attempt]`
//! (capped at `reconnect_delay_max`), so gateways that lose their broker together (a
//! broker restart) come back spread over the window rather than in one burst; see
//! `reconnect_delay` and its simulation test.
//!
//! # Mapping PUBACKs to events
//!
//! rumqttc hands out packet ids only in events. This task is the only one issuing QoS 1
//! publishes, always through `try_publish` (an awaited publish from the task that polls
//! the event loop would deadlock on the bounded request channel). rumqttc turns requests
//! into packets in channel order, so a FIFO of issued QoS 1 requests lines up with the
//! `Outgoing::Publish(pkid)` events: each pops the FIFO front and records pkid → request;
//! `Incoming::PubAck(pkid)` looks it up. A packet id collision (`Outgoing::AwaitAck`)
//! holds the front request back; rumqttc sends it later as `Outgoing::Publish` of the
//! same pkid, right after the PUBACK that frees the id, which is when the stash is taken.
//! A connection error forgets all of it: the next session publishes everything still
//! unacknowledged again (the server de-duplicates by campus and event id).
//!
//! # Births
//!
//! A birth (the full inventory, and the spool's drop count) goes out right after every
//! CONNACK, and again within the same session when the server asks for one on
//! `cmd/rebirth` (its view no longer matches the heartbeats' digest), at most once per
//! [`REBIRTH_ANSWER_GAP`]. Events are dropped only while the broker does not acknowledge
//! them, which ends in a new connection and so in a birth with the new count: an event
//! dropped while in flight on a working connection is acknowledged afterwards and taken
//! off the count (see [`crate::spool`]).
//!
//! # Clean session
//!
//! The agent connects with `clean_session = false`, as docs/PROTOCOL.md §1 requires:
//! rumqttd publishes the *new* connection's Last Will at once when a clean session takes
//! over an old one (a false "offline" carrying the live epoch). Each connection still
//! starts from a fresh `EventLoop` and republishes from the spool, so nothing depends on
//! what the broker kept. The gateway subscribes only to its rebirth command; a request
//! the broker kept for it while it was away names an older epoch and is ignored (the
//! connection's own birth already answered it).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use campuswatch_mqtt::{Diagnosis, SetupError};
use campuswatch_protocol::message::MAX_TEXT_BYTES;
use campuswatch_protocol::{
    decode_command, Birth, CampusTopic, Command, CommandKind, CommandTopic, Death, DeathReason,
    Event, Heartbeat, Message, MessageKind, BASE_SCHEMA_VERSION, CAUSE_CODE_SCHEMA_VERSION,
    MAX_PAYLOAD_BYTES,
};
use rand::Rng;
use rumqttc::{
    AsyncClient, ConnectionError, Event as MqttEvent, EventLoop, LastWill, MqttOptions, Outgoing,
    Packet, QoS,
};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::AgentConfig;
use crate::epoch::{EpochError, EpochStore};
use crate::health::HealthSampler;
use crate::inventory::Inventory;
use crate::probe::ProbeSetupError;
use crate::reload::{Reload, ReloadError, ReloadOutcome};
use crate::scheduler::{DeviceTasks, DeviceTransition};
use crate::spool::{Spool, MAX_EVENTS_IN_FLIGHT};
use campuswatch_service::Liveness;

mod connection;
mod messages;

use connection::{disconnect, mqtt_options, next_reload, reconnect_delay, Topics};
/// Capacity of rumqttc's request channel: the in-flight events plus birth, death and a
/// few heartbeats.
const REQUEST_CAPACITY: usize = 64;
/// How long a clean shutdown waits for the broker to acknowledge the death.
const DEATH_ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a clean shutdown waits for the DISCONNECT to be written.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A connection that lasted this long resets the reconnect backoff.
const STABLE_CONNECTION: Duration = Duration::from_secs(30);
/// Never reconnect faster than this, whatever the jitter draws.
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(50);
/// Room for the topic and packet header above the payload limit.
const PACKET_HEADROOM: usize = 64 * 1024;
/// Rebirth requests answered at most once per this long within a session: a server
/// that asks in a loop must not turn a metered link into a stream of births.
pub const REBIRTH_ANSWER_GAP: Duration = Duration::from_secs(10);
/// While the spool keeps dropping events, say so at most this often.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// How often the session loop beats its [`Liveness`] while it has nothing else to do.
const ALIVE_PERIOD: Duration = Duration::from_secs(1);
/// Capacity of the channel from the device tasks to the session.
const TRANSITION_QUEUE: usize = 256;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Epoch(#[from] EpochError),
    /// The configuration cannot make a connection (a file went missing since the start).
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// No connection was made: the broker refused it, or could not be reached.
    #[error("cannot connect to the broker at {url} (epoch {epoch}): {diagnosis}")]
    Connect {
        url: String,
        epoch: u64,
        diagnosis: Diagnosis,
        #[source]
        source: ConnectionError,
    },
    /// An established connection failed.
    #[error("the connection to {url} (epoch {epoch}) was lost: {source}")]
    Lost {
        url: String,
        epoch: u64,
        #[source]
        source: ConnectionError,
    },
}

impl SessionError {
    /// Whether someone must act (configuration, credentials, certificates) before the
    /// gateway can report again, as opposed to an outage that may pass by itself.
    pub fn needs_action(&self) -> bool {
        match self {
            SessionError::Epoch(_) | SessionError::Setup(_) => true,
            SessionError::Connect { diagnosis, .. } => diagnosis.needs_action,
            SessionError::Lost { .. } => false,
        }
    }
}

/// A QoS 1 request whose packet id is not known yet, or whose PUBACK is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qos1 {
    Birth,
    Event(u64),
    Death,
}

/// Bookkeeping of one connection; dropped with it.
struct Conn {
    client: AsyncClient,
    epoch: u64,
    connected: bool,
    fifo: VecDeque<Qos1>,
    by_pkid: HashMap<u16, Qos1>,
    stash: Option<(u16, Qos1)>,
    events_in_flight: usize,
    /// The lowest event id not yet published on this connection.
    next_event: u64,
    heartbeat_seq: u64,
    /// When a rebirth request was last answered on this connection.
    rebirth_answered: Option<tokio::time::Instant>,
    /// Commands refused on this connection (the first is logged as a warning).
    bad_commands: u64,
}

impl Conn {
    fn new(client: AsyncClient, epoch: u64) -> Self {
        Conn {
            client,
            epoch,
            connected: false,
            fifo: VecDeque::new(),
            by_pkid: HashMap::new(),
            stash: None,
            events_in_flight: 0,
            next_event: 0,
            heartbeat_seq: 0,
            rebirth_answered: None,
            bad_commands: 0,
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The shutdown death was sent; waiting for its PUBACK until the deadline.
    DeathSent(tokio::time::Instant),
    /// DISCONNECT requested; waiting for it to be written until the deadline.
    Disconnecting(tokio::time::Instant),
}

/// What handling one event-loop event decided.
enum Step {
    Continue,
    /// The clean shutdown is complete.
    Done,
}

/// The MQTT session owner. See the module documentation.
pub struct Session {
    config: Arc<AgentConfig>,
    topics: Topics,
    digest: String,
    epoch: EpochStore,
    spool: Spool,
    inventory: Arc<Inventory>,
    health: Arc<HealthSampler>,
    transitions: mpsc::Receiver<DeviceTransition>,
    transitions_open: bool,
    attempt: u32,
    /// When spool drops were last logged, and the total then.
    drops_logged: Option<(tokio::time::Instant, u64)>,
    /// The probe task of every device, which send on `transitions`.
    devices: DeviceTasks,
    /// New configurations to apply (SIGHUP); `None` when nobody sends any.
    reloads: Option<mpsc::Receiver<Reload>>,
    /// Beaten as the session loop goes round; the watchdog reads it.
    liveness: Liveness,
    alive: tokio::time::Interval,
    /// The current connection ended on purpose, to reconnect with new MQTT settings.
    reconnect: bool,
}

fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate_text(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl Session {
    /// A session for `config`; its device tasks stop at `shutdown`. Start them with
    /// [`start_devices`](Self::start_devices).
    pub fn new(
        config: Arc<AgentConfig>,
        epoch: EpochStore,
        spool: Spool,
        inventory: Arc<Inventory>,
        health: Arc<HealthSampler>,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, transitions) = mpsc::channel(TRANSITION_QUEUE);
        let devices = DeviceTasks::new(tx, shutdown, config.max_stream_checks);
        let mut alive = tokio::time::interval(ALIVE_PERIOD);
        alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let topics = Topics::of(&config);
        Self {
            digest: config.digest(),
            config,
            topics,
            epoch,
            spool,
            inventory,
            health,
            transitions,
            transitions_open: true,
            attempt: 0,
            drops_logged: None,
            devices,
            reloads: None,
            liveness: Liveness::new("agent session"),
            alive,
            reconnect: false,
        }
    }

    /// Takes new configurations from `reloads`, and beats `liveness` as the loop runs.
    pub fn with_control(
        mut self,
        reloads: Option<mpsc::Receiver<Reload>>,
        liveness: Liveness,
    ) -> Self {
        self.reloads = reloads;
        self.liveness = liveness;
        self
    }

    /// Starts a probe task for every configured device.
    pub fn start_devices(&mut self) -> Result<(), ProbeSetupError> {
        self.devices
            .reconfigure(&[], &self.config, &self.inventory)
            .map(|_| ())
    }

    /// After [`run`](Self::run): waits for the device tasks to stop (they watch the same
    /// shutdown token), spooling what they still report meanwhile.
    pub async fn stop_devices(&mut self) {
        loop {
            tokio::select! {
                joined = self.devices.join_next() => match joined {
                    Some(Err(e)) if e.is_panic() => error!(error = %e, "A device task panicked."),
                    Some(_) => {}
                    None => break,
                },
                Some(t) = self.transitions.recv() => self.record(t),
            }
        }
        self.drain_transitions();
    }

    /// Connects, and reconnects forever with backoff, until `shutdown`; then publishes
    /// the shutdown death (if connected) and disconnects.
    pub async fn run(&mut self, shutdown: &CancellationToken) {
        loop {
            let started = Instant::now();
            let err = match self.run_once(shutdown).await {
                Ok(()) if self.reconnect && !shutdown.is_cancelled() => {
                    // Ended on purpose to take new MQTT settings: connect again at once.
                    self.reconnect = false;
                    self.attempt = 0;
                    continue;
                }
                Ok(()) => return,
                Err(e) => e,
            };
            if started.elapsed() >= STABLE_CONNECTION {
                self.attempt = 0;
            }
            let delay = self.next_delay();
            self.attempt = self.attempt.saturating_add(1);
            match &err {
                SessionError::Epoch(_) => {
                    error!(error = %err, retry_in = ?delay, "Cannot start an MQTT session: the state directory is not writable.");
                }
                // An operator must act: the gateway reports nothing until then.
                _ if err.needs_action() => {
                    error!(error = %err, retry_in = ?delay, unacked_events = self.spool.len(), "Cannot connect to the broker; the gateway is not reporting.");
                }
                _ => {
                    warn!(error = %err, retry_in = ?delay, unacked_events = self.spool.len(), "MQTT session ended; reconnecting.");
                }
            }
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = &mut sleep => break,
                    t = self.transitions.recv(), if self.transitions_open => match t {
                        Some(t) => self.record(t),
                        None => self.transitions_open = false,
                    },
                    r = next_reload(&mut self.reloads) => match r {
                        Some(r) => {
                            // Not connected: new MQTT settings are tried at once.
                            if self.apply_reload(r, None, Phase::Running, None) {
                                self.attempt = 0;
                                break;
                            }
                        }
                        None => self.reloads = None,
                    },
                    _ = self.alive.tick() => self.liveness.beat(),
                }
            }
        }
    }

    fn next_delay(&self) -> Duration {
        let m = &self.config.mqtt;
        reconnect_delay(
            m.reconnect_delay_min,
            m.reconnect_delay_max,
            self.attempt,
            rand::rng().random::<f64>(),
        )
    }

    /// One connection: advance the epoch, connect, serve until the connection fails
    /// (`Err`) or a clean shutdown completes (`Ok`).
    pub async fn run_once(&mut self, shutdown: &CancellationToken) -> Result<(), SessionError> {
        let epoch = self.epoch.advance(unix_now().as_secs())?;
        let options = mqtt_options(&self.config, &self.topics, epoch)?;
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
        let mut conn = Conn::new(client, epoch);
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut phase = Phase::Running;
        debug!(epoch, url = %campuswatch_service::redact::url(&self.config.mqtt.url), "Connecting to the broker.");
        loop {
            let polled = self
                .wait_for_event(
                    &mut eventloop,
                    &mut conn,
                    &mut phase,
                    &mut heartbeat,
                    shutdown,
                )
                .await;
            let event = match polled {
                None => return Ok(()),
                Some(Ok(event)) => event,
                // Once the shutdown began, the connection ending is its end.
                Some(Err(_)) if phase != Phase::Running => return Ok(()),
                Some(Err(source)) => {
                    let login = self.config.mqtt.login();
                    let url = login.redacted_url();
                    return Err(if conn.connected {
                        SessionError::Lost { url, epoch, source }
                    } else {
                        SessionError::Connect {
                            url,
                            epoch,
                            diagnosis: login.diagnose(&source),
                            source,
                        }
                    });
                }
            };
            if let Step::Done = self.handle(event, &mut conn, &mut phase, &mut heartbeat) {
                return Ok(());
            }
        }
    }

    /// Polls the event loop while serving transitions, heartbeats and shutdown. The poll
    /// future is kept across those (never dropped half-way), so a connection attempt is
    /// never abandoned and restarted under the same epoch. `None`: shutdown is complete.
    async fn wait_for_event(
        &mut self,
        eventloop: &mut EventLoop,
        conn: &mut Conn,
        phase: &mut Phase,
        heartbeat: &mut tokio::time::Interval,
        shutdown: &CancellationToken,
    ) -> Option<Result<MqttEvent, ConnectionError>> {
        let poll = eventloop.poll();
        tokio::pin!(poll);
        loop {
            let deadline = match *phase {
                Phase::Running => None,
                Phase::DeathSent(d) | Phase::Disconnecting(d) => Some(d),
            };
            tokio::select! {
                biased;
                ev = &mut poll => return Some(ev),
                _ = shutdown.cancelled(), if *phase == Phase::Running => {
                    if !conn.connected {
                        return None;
                    }
                    *phase = self.begin_shutdown(conn);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    match *phase {
                        Phase::DeathSent(_) => {
                            warn!(epoch = conn.epoch, "The broker did not acknowledge the shutdown death in time; disconnecting anyway.");
                            *phase = disconnect(conn)?;
                        }
                        _ => return None,
                    }
                }
                t = self.transitions.recv(), if self.transitions_open => match t {
                    Some(t) => {
                        self.record(t);
                        if *phase == Phase::Running {
                            self.pump(conn);
                        }
                    }
                    None => self.transitions_open = false,
                },
                _ = heartbeat.tick(), if conn.connected && *phase == Phase::Running => {
                    self.heartbeat(conn);
                }
                r = next_reload(&mut self.reloads) => match r {
                    Some(r) => {
                        let connected = conn.connected;
                        if self.apply_reload(r, Some(&mut *conn), *phase, Some(&mut *heartbeat)) {
                            if !connected {
                                // Still connecting with the old settings: start over.
                                self.reconnect = true;
                                return None;
                            }
                            self.reconnect = true;
                            *phase = disconnect(conn).unwrap_or(Phase::Disconnecting(tokio::time::Instant::now()));
                        }
                    }
                    None => self.reloads = None,
                },
                _ = self.alive.tick() => self.liveness.beat(),
            }
        }
    }

    fn handle(
        &mut self,
        event: MqttEvent,
        conn: &mut Conn,
        phase: &mut Phase,
        heartbeat: &mut tokio::time::Interval,
    ) -> Step {
        self.liveness.beat();
        match event {
            MqttEvent::Incoming(Packet::ConnAck(ack)) => {
                conn.connected = true;
                info!(
                    epoch = conn.epoch,
                    url = %campuswatch_service::redact::url(&self.config.mqtt.url),
                    session_present = ack.session_present,
                    unacked_events = self.spool.len(),
                    "Connected to the broker."
                );
                // Before the birth, so the subscription takes the first packet id of this
                // fresh event loop and never shares one with a publish in flight.
                if let Err(e) = conn
                    .client
                    .try_subscribe(&self.topics.rebirth, QoS::AtLeastOnce)
                {
                    warn!(error = %e, "Cannot subscribe to rebirth requests; the server's view is repaired at the next connection only.");
                }
                self.publish_birth(conn);
                self.pump(conn);
                // The birth stands in for the first heartbeat.
                heartbeat.reset();
            }
            MqttEvent::Outgoing(Outgoing::Publish(pkid)) if pkid != 0 => {
                let req = match conn.stash {
                    Some((stashed, req)) if stashed == pkid => {
                        conn.stash = None;
                        Some(req)
                    }
                    _ => conn.fifo.pop_front(),
                };
                match req {
                    Some(req) => {
                        conn.by_pkid.insert(pkid, req);
                    }
                    None => warn!(
                        pkid,
                        "A QoS 1 publish left that this session did not issue."
                    ),
                }
            }
            MqttEvent::Outgoing(Outgoing::AwaitAck(pkid)) => {
                debug!(
                    pkid,
                    "Packet id collision; rumqttc holds the publish until the id is free."
                );
                conn.stash = conn.fifo.pop_front().map(|req| (pkid, req));
            }
            MqttEvent::Incoming(Packet::PubAck(ack)) => match conn.by_pkid.remove(&ack.pkid) {
                Some(Qos1::Event(id)) => {
                    conn.events_in_flight = conn.events_in_flight.saturating_sub(1);
                    if let Err(e) = self.spool.ack(id) {
                        error!(error = %e, event_id = id, "Cannot record an acknowledged event; it may be sent again after a restart.");
                    }
                    if *phase == Phase::Running {
                        self.pump(conn);
                    }
                }
                Some(Qos1::Birth) => debug!(epoch = conn.epoch, "Birth acknowledged."),
                Some(Qos1::Death) => {
                    debug!(epoch = conn.epoch, "Shutdown death acknowledged.");
                    match disconnect(conn) {
                        Some(p) => *phase = p,
                        None => return Step::Done,
                    }
                }
                None => debug!(pkid = ack.pkid, "PUBACK for an unknown packet id."),
            },
            MqttEvent::Outgoing(Outgoing::Disconnect) => {
                info!(epoch = conn.epoch, "Disconnected cleanly.");
                return Step::Done;
            }
            MqttEvent::Incoming(Packet::Publish(p)) if *phase == Phase::Running => {
                self.on_command(conn, &p.topic, &p.payload, tokio::time::Instant::now());
            }
            _ => {}
        }
        Step::Continue
    }

    /// Spools a transition and applies it to the inventory (in that order: a state
    /// reported in a birth must never be missing from the spool).
    pub fn record(&mut self, t: DeviceTransition) {
        // A transition a replaced or removed probe sent before it stopped is dropped:
        // the device's new probe speaks for it now.
        let Some(kind) = self.inventory.current_kind(&t.device, t.task) else {
            debug!(device = %t.device, task = t.task, "Transition of a replaced probe dropped.");
            return;
        };
        let tr = &t.transition;
        let id = self.spool.allocate_id();
        let event = Event {
            v: BASE_SCHEMA_VERSION,
            campus: self.config.campus.clone(),
            region: self.config.region,
            id,
            epoch: self.epoch.current().max(1),
            at: tr.at,
            device: t.device.clone(),
            kind,
            from: tr.from,
            to: tr.to,
            cause: tr.cause.clone().map(|c| truncate_text(c, MAX_TEXT_BYTES)),
            cause_code: tr
                .cause_code
                .clone()
                .filter(|_| self.config.mqtt.schema_version >= CAUSE_CODE_SCHEMA_VERSION),
            measurements: tr.measurements.clone(),
            info: tr.info.clone(),
        };
        let event = Event {
            v: event.needed_version(),
            ..event
        };
        let dropped_before = self.spool.dropped_total();
        if let Err(e) = self.spool.append(event) {
            error!(error = %e, event_id = id, device = %t.device, "Cannot write an event to the spool; it is kept in memory only.");
        }
        self.inventory.apply(&t.device, t.task, tr, id);
        if self.spool.dropped_total() > dropped_before {
            self.log_drops();
        }
    }

    /// Says that the spool is dropping events: at once the first time, then at most
    /// once per [`DROP_LOG_INTERVAL`] with how many went since (an event dropped while in
    /// flight and acknowledged afterwards is taken off the total later).
    fn log_drops(&mut self) {
        let now = tokio::time::Instant::now();
        let total = self.spool.dropped_total();
        let since_logged = match self.drops_logged {
            Some((at, _)) if now.duration_since(at) < DROP_LOG_INTERVAL => return,
            Some((_, logged)) => total.saturating_sub(logged),
            None => total,
        };
        self.drops_logged = Some((now, total));
        let limits = self.config.spool;
        warn!(
            dropped = since_logged,
            dropped_total = total,
            waiting = self.spool.len(),
            max_events = limits.max_events,
            max_bytes = limits.max_bytes,
            "The event spool is full: dropped the oldest events waiting for the broker. The next birth tells the server the count."
        );
    }

    /// A command from the server (the only subscription is the rebirth topic), received
    /// at `now`.
    fn on_command(
        &mut self,
        conn: &mut Conn,
        topic: &str,
        payload: &[u8],
        now: tokio::time::Instant,
    ) {
        let decoded = CommandTopic::parse(topic)
            .map_err(|e| e.to_string())
            .and_then(|t| decode_command(&t, payload).map_err(|e| e.to_string()));
        let refused = match decoded {
            Ok(Command::Rebirth(r)) if r.campus == self.config.campus => Ok(r),
            Ok(_) => Err("the command is for another campus".to_string()),
            Err(e) => Err(e),
        };
        let request = match refused {
            Ok(r) => r,
            Err(error) => {
                // Logged once per connection: whoever can publish garbage there must not
                // also fill the gateway's log (broker ACLs should stop them).
                conn.bad_commands += 1;
                if conn.bad_commands == 1 {
                    warn!(topic, %error, "Ignored a bad command (further ones on this connection are logged at debug level).");
                } else {
                    debug!(topic, %error, refused = conn.bad_commands, "Ignored a bad command.");
                }
                return;
            }
        };
        if request.epoch != conn.epoch {
            debug!(
                asked = request.epoch,
                epoch = conn.epoch,
                "Rebirth request for another session ignored; this one began with a birth."
            );
            return;
        }
        if conn
            .rebirth_answered
            .is_some_and(|at| now.duration_since(at) < REBIRTH_ANSWER_GAP)
        {
            debug!(reason = %request.reason, "Rebirth request ignored: answered one moments ago.");
            return;
        }
        conn.rebirth_answered = Some(now);
        info!(reason = %request.reason, epoch = conn.epoch, "The server asked for a rebirth; publishing the birth again.");
        self.publish_birth(conn);
    }

    /// Spools transitions still queued (at shutdown, after the device tasks stopped).
    pub fn drain_transitions(&mut self) {
        while let Ok(t) = self.transitions.try_recv() {
            self.record(t);
        }
    }

    pub fn transitions(&mut self) -> &mut mpsc::Receiver<DeviceTransition> {
        &mut self.transitions
    }

    /// Applies a reload and answers it. `conn` is the connection, if there is one (a
    /// connected one gets a new birth); `heartbeat` its heartbeat timer. Returns true when
    /// the connection's own settings changed, so it must be replaced.
    fn apply_reload(
        &mut self,
        reload: Reload,
        conn: Option<&mut Conn>,
        phase: Phase,
        heartbeat: Option<&mut tokio::time::Interval>,
    ) -> bool {
        let result = if phase == Phase::Running {
            self.reconfigure(reload.config)
        } else {
            Err(ReloadError::SessionEnding)
        };
        let mut outcome = match result {
            Ok(o) => o,
            Err(e) => {
                let _ = reload.done.send(Err(e));
                return false;
            }
        };
        let reconnect = !outcome.reconnect.is_empty();
        if !reconnect && outcome.changed {
            if let Some(conn) = conn.filter(|c| c.connected) {
                if let (Some(hb), Some(interval)) = (heartbeat, outcome.heartbeat_interval) {
                    *hb =
                        tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                    hb.set_missed_tick_behavior(MissedTickBehavior::Delay);
                }
                self.publish_birth(conn);
                outcome.birth_epoch = Some(conn.epoch);
            }
        }
        if reconnect {
            info!(keys = ?outcome.reconnect, "MQTT connection settings changed: disconnecting cleanly (no Last Will) to connect again with them.");
        }
        info!(%outcome, "Configuration reloaded.");
        let _ = reload.done.send(Ok(outcome));
        reconnect
    }

    /// Takes on `new` (already validated): replaces the probe tasks of changed devices
    /// and keeps the new configuration; says what changed. Nothing changes on error.
    fn reconfigure(&mut self, new: AgentConfig) -> Result<ReloadOutcome, ReloadError> {
        if let Some(key) = crate::reload::needs_restart(&self.config, &new) {
            return Err(ReloadError::NeedsRestart { key });
        }
        let old = self.config.clone();
        let devices = self
            .devices
            .reconfigure(&old.devices, &new, &self.inventory)?;
        let (reconnect, later) = crate::reload::mqtt_changes(&old.mqtt, &new.mqtt);
        let outcome = ReloadOutcome {
            heartbeat_interval: (new.heartbeat_interval != old.heartbeat_interval)
                .then_some(new.heartbeat_interval),
            changed: *old != new,
            devices,
            reconnect,
            later,
            birth_epoch: None,
        };
        self.digest = new.digest();
        self.config = Arc::new(new);
        Ok(outcome)
    }

    fn publish_birth(&mut self, conn: &mut Conn) {
        let birth = self.birth_message(conn.epoch);
        let dropped = birth.dropped_events;
        let payload = Message::Birth(birth).encode();
        match conn
            .client
            .try_publish(&self.topics.birth, QoS::AtLeastOnce, false, payload)
        {
            Ok(()) => {
                conn.fifo.push_back(Qos1::Birth);
                if dropped > 0 {
                    debug!(
                        epoch = conn.epoch,
                        dropped_total = dropped,
                        "Birth carries the spool's drop count."
                    );
                }
            }
            // The server still brings the gateway online from its heartbeats, and asks
            // for the birth again.
            Err(e) => warn!(error = %e, epoch = conn.epoch, "Cannot queue the birth."),
        }
    }

    /// Publishes unacknowledged events in order while the in-flight window has room.
    fn pump(&mut self, conn: &mut Conn) {
        while conn.connected && conn.events_in_flight < MAX_EVENTS_IN_FLIGHT {
            let Some(event) = self.spool.next_unacked(conn.next_event) else {
                return;
            };
            let id = event.id;
            let payload = Message::Event(event.clone()).encode();
            match conn
                .client
                .try_publish(&self.topics.event, QoS::AtLeastOnce, false, payload)
            {
                Ok(()) => {
                    conn.fifo.push_back(Qos1::Event(id));
                    conn.events_in_flight += 1;
                    conn.next_event = id + 1;
                }
                Err(e) => {
                    // The request channel is full; the next PUBACK pumps again.
                    debug!(error = %e, event_id = id, "Event publish deferred.");
                    return;
                }
            }
        }
    }

    fn heartbeat(&mut self, conn: &mut Conn) {
        conn.heartbeat_seq += 1;
        let hb = self.heartbeat_message(conn.epoch, conn.heartbeat_seq);
        let payload = Message::Heartbeat(hb).encode();
        if let Err(e) =
            conn.client
                .try_publish(&self.topics.heartbeat, QoS::AtMostOnce, false, payload)
        {
            warn!(error = %e, seq = conn.heartbeat_seq, "Heartbeat skipped: the MQTT request queue is full.");
        }
    }

    fn begin_shutdown(&mut self, conn: &mut Conn) -> Phase {
        let death = Message::Death(Death {
            v: BASE_SCHEMA_VERSION,
            campus: self.config.campus.clone(),
            region: self.config.region,
            epoch: conn.epoch,
            reason: DeathReason::Shutdown,
        });
        match conn
            .client
            .try_publish(&self.topics.death, QoS::AtLeastOnce, false, death.encode())
        {
            Ok(()) => {
                conn.fifo.push_back(Qos1::Death);
                info!(epoch = conn.epoch, "Shutting down: death published.");
                Phase::DeathSent(tokio::time::Instant::now() + DEATH_ACK_TIMEOUT)
            }
            Err(e) => {
                warn!(error = %e, "Cannot queue the shutdown death; disconnecting.");
                disconnect(conn).unwrap_or(Phase::Disconnecting(tokio::time::Instant::now()))
            }
        }
    }
}

#[cfg(test)]
mod tests;
