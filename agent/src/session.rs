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
    Event, Heartbeat, Message, MessageKind, BASE_SCHEMA_VERSION, MAX_PAYLOAD_BYTES,
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

/// Topics of this campus.
struct Topics {
    birth: String,
    death: String,
    heartbeat: String,
    event: String,
    rebirth: String,
}

impl Topics {
    fn of(config: &AgentConfig) -> Self {
        let topic = |kind| CampusTopic::new(config.region, config.campus.clone(), kind).to_string();
        Topics {
            birth: topic(MessageKind::Birth),
            death: topic(MessageKind::Death),
            heartbeat: topic(MessageKind::Heartbeat),
            event: topic(MessageKind::Event),
            rebirth: CommandTopic::new(config.region, config.campus.clone(), CommandKind::Rebirth)
                .to_string(),
        }
    }
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
        debug!(epoch, url = %campuswatch_protocol::redact_url(&self.config.mqtt.url), "Connecting to the broker.");
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
                    url = %campuswatch_protocol::redact_url(&self.config.mqtt.url),
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
            measurements: tr.measurements.clone(),
            info: tr.info.clone(),
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

    /// The birth of session `epoch`: the whole inventory as it is now.
    fn birth_message(&self, epoch: u64) -> Birth {
        let snap = self.inventory.snapshot();
        let mut birth = Birth {
            v: BASE_SCHEMA_VERSION,
            campus: self.config.campus.clone(),
            region: self.config.region,
            epoch,
            at: chrono::Utc::now(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            config_digest: self.digest.clone(),
            heartbeat_interval_ms: (self.config.heartbeat_interval.as_millis() as u64)
                .clamp(1, 3_600_000),
            last_event_id: snap.last_event_id,
            devices: snap.devices,
            dropped_events: self.spool.dropped_total(),
        };
        // Version 3 only when it says something version 2 cannot: older servers keep
        // reading the births of gateways that never dropped an event.
        birth.v = birth.needed_version();
        birth
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

    /// Heartbeat `seq` of session `epoch`: host health and the one-letter digest of the
    /// device states, never the inventory itself. Every byte is sent every few seconds
    /// over links that may be metered, so the time is to the second and percentages to
    /// a tenth (finer figures are noise, and cost about 20 bytes a heartbeat).
    fn heartbeat_message(&self, epoch: u64, seq: u64) -> Heartbeat {
        use chrono::SubsecRound;
        let (states, last_event_id) = self.inventory.states();
        let mut health = self.health.sample(&self.config.state_dir);
        for pct in [
            &mut health.cpu_pct,
            &mut health.mem_used_pct,
            &mut health.disk_used_pct,
        ] {
            *pct = (*pct * 10.0).round() / 10.0;
        }
        Heartbeat {
            v: BASE_SCHEMA_VERSION,
            campus: self.config.campus.clone(),
            region: self.config.region,
            epoch,
            seq,
            at: chrono::Utc::now().trunc_subsecs(0),
            health,
            states,
            last_event_id,
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

/// Exponential backoff with full jitter: `unit` (uniform in [0, 1)) of
/// `min · 2^attempt`, capped at `max`, and never below [`MIN_RECONNECT_DELAY`] (or `min`
/// if that is shorter). Pure, so the spread of a fleet is simulated in a test.
fn reconnect_delay(min: Duration, max: Duration, attempt: u32, unit: f64) -> Duration {
    let cap = min.saturating_mul(1u32 << attempt.min(20)).min(max);
    cap.mul_f64(unit.clamp(0.0, 1.0))
        .max(MIN_RECONNECT_DELAY.min(min))
}

/// The next reload request; pending forever when there is no channel.
async fn next_reload(reloads: &mut Option<mpsc::Receiver<Reload>>) -> Option<Reload> {
    match reloads {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Requests a DISCONNECT; `None` when it cannot even be queued (then the connection is
/// simply dropped, and the broker publishes the Last Will of this same epoch).
fn disconnect(conn: &mut Conn) -> Option<Phase> {
    match conn.client.try_disconnect() {
        Ok(()) => Some(Phase::Disconnecting(
            tokio::time::Instant::now() + DISCONNECT_TIMEOUT,
        )),
        Err(e) => {
            warn!(error = %e, "Cannot queue the DISCONNECT; dropping the connection.");
            None
        }
    }
}

/// Builds the options of one connection with epoch `epoch`.
fn mqtt_options(
    config: &AgentConfig,
    topics: &Topics,
    epoch: u64,
) -> Result<MqttOptions, SetupError> {
    let m = &config.mqtt;
    let mut o = m.login().options(format!("cw-{}", config.campus))?;
    o.set_keep_alive(m.keepalive.max(Duration::from_secs(1)));
    o.set_clean_session(false);
    o.set_inflight((MAX_EVENTS_IN_FLIGHT + 8) as u16);
    o.set_max_packet_size(
        MAX_PAYLOAD_BYTES + PACKET_HEADROOM,
        MAX_PAYLOAD_BYTES + PACKET_HEADROOM,
    );
    let will = Message::Death(Death {
        v: BASE_SCHEMA_VERSION,
        campus: config.campus.clone(),
        region: config.region,
        epoch,
        reason: DeathReason::ConnectionLost,
    });
    o.set_last_will(LastWill::new(
        &topics.death,
        will.encode(),
        QoS::AtLeastOnce,
        false,
    ));
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use campuswatch_protocol::{CampusId, RegionCode};

    fn config(url: &str) -> AgentConfig {
        let mut c = AgentConfig::new(
            CampusId::parse("150102-K-0001").unwrap(),
            RegionCode::parse("150102").unwrap(),
        );
        c.mqtt.url = url.into();
        c
    }

    fn topics(c: &AgentConfig) -> Topics {
        Topics::of(c)
    }

    #[test]
    fn options_carry_the_client_id_the_will_with_the_epoch_and_url_credentials() {
        let c = config("mqtt://gw%40x:p%3Ass@broker.example:1884");
        let o = mqtt_options(&c, &topics(&c), 77).unwrap();
        assert_eq!(o.client_id(), "cw-150102-K-0001");
        assert_eq!(o.broker_address(), ("broker.example".to_string(), 1884));
        let login = o.credentials().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("gw@x", "p:ss")
        );
        assert!(!o.clean_session());
        let will = o.last_will().unwrap();
        assert_eq!(will.topic, "cw/v1/150102/150102-K-0001/death");
        let death: Death = serde_json::from_slice(&will.message).unwrap();
        assert_eq!(
            (death.epoch, death.reason),
            (77, DeathReason::ConnectionLost)
        );
    }

    #[test]
    fn mqtts_defaults_to_port_8883_and_uses_tls() {
        let c = config("mqtts://broker.example");
        let o = mqtt_options(&c, &topics(&c), 1).unwrap();
        assert_eq!(o.broker_address().1, 8883);
        assert!(matches!(o.transport(), rumqttc::Transport::Tls(_)));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_key() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "not a certificate").unwrap();
        let mut c = config("mqtts://broker.example");
        c.mqtt.ca_file = f.path().display().to_string();
        let err = mqtt_options(&c, &topics(&c), 1).unwrap_err().to_string();
        assert!(err.contains("mqtt.ca_file"), "{err}");
    }

    /// A session over a fresh state dir with one device and two spooled events, and a
    /// connection whose event loop is never polled (requests just queue up).
    fn session_with_two_events(dir: &std::path::Path) -> (Session, Conn, EventLoop, [u64; 2]) {
        session_with_two_events_bounded(dir, crate::config::SpoolConfig::default())
    }

    fn session_with_two_events_bounded(
        dir: &std::path::Path,
        spool: crate::config::SpoolConfig,
    ) -> (Session, Conn, EventLoop, [u64; 2]) {
        use crate::config::{DeviceConfig, ProbeConfig};
        use crate::hysteresis::Transition;
        use campuswatch_protocol::{DeviceId, DeviceKind, DeviceState};
        let mut c = config("mqtt://127.0.0.1:1");
        c.state_dir = dir.to_path_buf();
        c.spool = spool;
        c.devices.push(DeviceConfig::new(
            DeviceId::parse("alarm-1").unwrap(),
            DeviceKind::Alarm,
            ProbeConfig::Tcp {
                target: "127.0.0.1:1".into(),
            },
        ));
        let (spool, _) = Spool::open(dir, 1_000, c.spool).unwrap();
        let inventory = Arc::new(Inventory::new(&c, 0));
        let config = Arc::new(c);
        let mut session = Session::new(
            config.clone(),
            EpochStore::open(dir),
            spool,
            inventory,
            Arc::new(HealthSampler::new()),
            CancellationToken::new(),
        );
        for (from, to) in [
            (DeviceState::Unknown, DeviceState::Up),
            (DeviceState::Up, DeviceState::Down),
        ] {
            // Task 0: the device has no probe task; the test reports for it.
            session.record(DeviceTransition {
                device: DeviceId::parse("alarm-1").unwrap(),
                task: 0,
                transition: Transition {
                    from,
                    to,
                    at: chrono::Utc::now(),
                    cause: None,
                    measurements: Default::default(),
                    // The first probe learned the device's identity.
                    info: (to == DeviceState::Up).then(|| campuswatch_protocol::DeviceInfo {
                        model: Some("DS-2CD2143G2-I".into()),
                        ..Default::default()
                    }),
                },
            });
        }
        let ids: Vec<u64> = (session.spool.last_id() - 1..=session.spool.last_id()).collect();
        // The event loop is returned unpolled: it only has to exist for try_publish to
        // queue requests.
        let (client, eventloop) =
            AsyncClient::new(mqtt_options(&config, &session.topics, 5).unwrap(), 16);
        let conn = Conn::new(client, 5);
        (session, conn, eventloop, [ids[0], ids[1]])
    }

    fn feed(session: &mut Session, conn: &mut Conn, events: Vec<MqttEvent>) {
        let mut phase = Phase::Running;
        let mut hb = tokio::time::interval(Duration::from_secs(1));
        for e in events {
            session.handle(e, conn, &mut phase, &mut hb);
        }
    }

    fn connack() -> MqttEvent {
        MqttEvent::Incoming(Packet::ConnAck(rumqttc::ConnAck {
            session_present: false,
            code: rumqttc::ConnectReturnCode::Success,
        }))
    }

    fn sent(pkid: u16) -> MqttEvent {
        MqttEvent::Outgoing(Outgoing::Publish(pkid))
    }

    fn puback(pkid: u16) -> MqttEvent {
        MqttEvent::Incoming(Packet::PubAck(rumqttc::PubAck::new(pkid)))
    }

    #[tokio::test]
    async fn an_identity_learned_by_a_probe_travels_in_its_event_and_stays_in_the_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _conn, _eventloop, _) = session_with_two_events(dir.path());
        let events: Vec<_> = s.spool.unacked().cloned().collect();
        let model =
            |i: &Option<campuswatch_protocol::DeviceInfo>| i.as_ref().and_then(|i| i.model.clone());
        assert_eq!(model(&events[0].info).as_deref(), Some("DS-2CD2143G2-I"));
        assert_eq!(events[0].v, BASE_SCHEMA_VERSION);
        // The device went down since; the birth still says what it is.
        assert_eq!(model(&events[1].info), None);
        let birth_devices = s.inventory.snapshot().devices;
        assert_eq!(
            model(&birth_devices[0].info).as_deref(),
            Some("DS-2CD2143G2-I")
        );
    }

    #[tokio::test]
    async fn pubacks_are_mapped_back_to_the_events_they_acknowledge() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, mut conn, _eventloop, [a, b]) = session_with_two_events(dir.path());
        feed(&mut s, &mut conn, vec![connack()]);
        assert_eq!(conn.fifo, [Qos1::Birth, Qos1::Event(a), Qos1::Event(b)]);
        // A heartbeat (pkid 0) in between does not consume a QoS 1 request.
        feed(&mut s, &mut conn, vec![sent(1), sent(0), sent(2), sent(3)]);
        feed(&mut s, &mut conn, vec![puback(3)]);
        assert_eq!(s.spool.unacked().map(|e| e.id).collect::<Vec<_>>(), [a]);
        feed(&mut s, &mut conn, vec![puback(1), puback(2)]);
        assert!(s.spool.is_empty());
        assert_eq!(conn.events_in_flight, 0);
    }

    #[tokio::test]
    async fn a_packet_id_collision_keeps_the_held_back_event_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, mut conn, _eventloop, [a, b]) = session_with_two_events(dir.path());
        feed(&mut s, &mut conn, vec![connack()]);
        // Birth gets 1, event a gets 2, event b collides on 1 and waits for its PUBACK.
        feed(
            &mut s,
            &mut conn,
            vec![sent(1), sent(2), MqttEvent::Outgoing(Outgoing::AwaitAck(1))],
        );
        assert_eq!(conn.stash, Some((1, Qos1::Event(b))));
        // The birth's PUBACK frees id 1; rumqttc then sends b under it.
        feed(&mut s, &mut conn, vec![puback(1), sent(1)]);
        assert_eq!(conn.stash, None);
        feed(&mut s, &mut conn, vec![puback(1)]);
        assert_eq!(s.spool.unacked().map(|e| e.id).collect::<Vec<_>>(), [a]);
        feed(&mut s, &mut conn, vec![puback(2)]);
        assert!(s.spool.is_empty());
    }

    #[test]
    fn long_causes_are_cut_on_a_character_boundary() {
        let s = "校".repeat(200);
        let cut = truncate_text(s, MAX_TEXT_BYTES);
        assert!(cut.len() <= MAX_TEXT_BYTES);
        assert!(cut.chars().all(|c| c == '校'));
    }

    fn rebirth_request(epoch: u64) -> (String, Vec<u8>) {
        let cmd = Command::Rebirth(campuswatch_protocol::Rebirth {
            v: campuswatch_protocol::COMMAND_SCHEMA_VERSION,
            campus: CampusId::parse("150102-K-0001").unwrap(),
            region: RegionCode::parse("150102").unwrap(),
            epoch,
            reason: "digest_mismatch".into(),
        });
        (cmd.topic().to_string(), cmd.encode())
    }

    fn births_queued(conn: &Conn) -> usize {
        conn.fifo.iter().filter(|r| **r == Qos1::Birth).count()
    }

    #[tokio::test]
    async fn a_rebirth_request_of_this_session_is_answered_at_most_once_per_gap() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, mut conn, _eventloop, _) = session_with_two_events(dir.path());
        feed(&mut s, &mut conn, vec![connack()]);
        assert_eq!(births_queued(&conn), 1, "the connection's own birth");
        // Through the event loop's path: answered.
        let (topic, payload) = rebirth_request(5);
        feed(
            &mut s,
            &mut conn,
            vec![MqttEvent::Incoming(Packet::Publish(rumqttc::Publish::new(
                &topic,
                QoS::AtLeastOnce,
                payload.clone(),
            )))],
        );
        assert_eq!(births_queued(&conn), 2);
        let t0 = conn.rebirth_answered.unwrap();
        // Asked again at once: a server in a loop gets no second birth.
        s.on_command(&mut conn, &topic, &payload, t0 + Duration::from_secs(1));
        assert_eq!(births_queued(&conn), 2);
        // A request kept by the broker for an older session, a malformed one and one
        // for another campus are ignored, whenever they come.
        let late = t0 + REBIRTH_ANSWER_GAP * 2;
        let (old_topic, old) = rebirth_request(4);
        s.on_command(&mut conn, &old_topic, &old, late);
        s.on_command(&mut conn, &topic, b"{\"v\":3}", late);
        let other = String::from_utf8(payload.clone())
            .unwrap()
            .replace("150102-K-0001", "150102-K-0002");
        s.on_command(
            &mut conn,
            "cw/v1/150102/150102-K-0002/cmd/rebirth",
            other.as_bytes(),
            late,
        );
        assert_eq!(births_queued(&conn), 2);
        assert_eq!(
            conn.bad_commands, 2,
            "the malformed one and the other campus's"
        );
        // After the gap the session answers again.
        s.on_command(&mut conn, &topic, &payload, late);
        assert_eq!(births_queued(&conn), 3);
    }

    #[tokio::test]
    async fn a_birth_reports_spool_drops_as_version_3_and_is_version_2_without() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _conn, _eventloop, _) = session_with_two_events(dir.path());
        let b = s.birth_message(5);
        assert_eq!((b.v, b.dropped_events), (BASE_SCHEMA_VERSION, 0));
        let json = String::from_utf8(Message::Birth(b).encode()).unwrap();
        assert!(!json.contains("dropped_events"), "{json}");

        let dir = tempfile::tempdir().unwrap();
        let bounded = crate::config::SpoolConfig {
            max_events: 1,
            ..Default::default()
        };
        let (s, _conn, _eventloop, [_, kept]) =
            session_with_two_events_bounded(dir.path(), bounded);
        assert_eq!(s.spool.unacked().map(|e| e.id).collect::<Vec<_>>(), [kept]);
        let b = s.birth_message(5);
        assert_eq!((b.v, b.dropped_events, b.last_event_id), (3, 1, kept));
        // What a server reads back.
        let msg = Message::Birth(b);
        assert!(campuswatch_protocol::decode(&msg.topic(), &msg.encode()).is_ok());
    }

    /// The traffic a campus of 64 cameras and 2 alarm links costs: heartbeats carry one
    /// letter per device, the inventory only travels in births. Prints the sizes (see
    /// docs/BENCHMARKS.md) and fails if a heartbeat stops being small.
    #[tokio::test]
    async fn heartbeats_stay_small_for_64_cameras_and_2_alarms_and_births_carry_the_rest() {
        use crate::config::{DeviceConfig, ProbeConfig};
        use crate::hysteresis::Transition;
        use campuswatch_protocol::{DeviceId, DeviceInfo, DeviceKind, DeviceState};
        let dir = tempfile::tempdir().unwrap();
        let mut c = config("mqtts://broker.example:8883");
        c.state_dir = dir.path().to_path_buf();
        c.devices.push(DeviceConfig::new(
            DeviceId::parse("alarm-1").unwrap(),
            DeviceKind::Alarm,
            ProbeConfig::Tcp {
                target: "192.168.10.20:5000".into(),
            },
        ));
        c.devices.push(DeviceConfig::new(
            DeviceId::parse("alarm-arc").unwrap(),
            DeviceKind::Alarm,
            ProbeConfig::Dc09 {
                target: "10.20.0.5:12128".into(),
                transport: crate::config::Transport::Tcp,
                account: "1234".into(),
                prefix: "0".into(),
                receiver: None,
                key: None,
                supervision: None,
            },
        ));
        for i in 1..=64 {
            c.devices.push(DeviceConfig::new(
                DeviceId::parse(&format!("cam-{i:02}")).unwrap(),
                DeviceKind::Camera,
                ProbeConfig::Rtsp {
                    url: format!("rtsp://192.168.11.{i}:554/Streaming/Channels/101"),
                    username: "admin".into(),
                    password: "secret".into(),
                    transport: crate::config::Transport::Tcp,
                    stream_check: true,
                    stream_interval: Duration::from_secs(300),
                    stream_window: Duration::from_secs(4),
                    min_frame_rate: None,
                },
            ));
        }
        let (spool, _) = Spool::open(dir.path(), 1_800_000_000_000, c.spool).unwrap();
        let inventory = Arc::new(Inventory::new(&c, 0));
        // Every device probed: states, last measurements and camera identities, as a
        // gateway has them a few minutes after it started.
        for i in 0..c.devices.len() {
            let camera = i >= 2;
            let measurements = if camera {
                [
                    ("latency_ms", 3.2),
                    ("frame_rate", 25.0),
                    ("bitrate_kbps", 2048.0),
                    ("first_keyframe_ms", 112.0),
                    ("width", 1920.0),
                    ("height", 1080.0),
                    ("frames", 100.0),
                    ("keyframes", 4.0),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect()
            } else {
                [("latency_ms".to_string(), 1.8)].into()
            };
            let t = Transition {
                from: DeviceState::Unknown,
                to: if i % 16 == 5 {
                    DeviceState::Down
                } else {
                    DeviceState::Up
                },
                at: chrono::Utc::now(),
                cause: (i % 16 == 5).then(|| "no answer to DESCRIBE within 5s".to_string()),
                measurements,
                info: camera.then(|| DeviceInfo {
                    manufacturer: Some("HIKVISION".into()),
                    model: Some("DS-2CD2143G2-I".into()),
                    firmware: Some("V5.7.3 build 220112".into()),
                    serial: Some(format!("DS-2CD2143G2-I20220112AACH{i:09}")),
                    hardware: Some("88".into()),
                }),
            };
            // Task 0: no probe task started yet.
            inventory.apply(&c.devices[i].id, 0, &t, 1_800_000_000_000 + i as u64);
        }
        let s = Session::new(
            Arc::new(c),
            EpochStore::open(dir.path()),
            spool,
            inventory,
            Arc::new(HealthSampler::new()),
            CancellationToken::new(),
        );
        let heartbeat = Message::Heartbeat(s.heartbeat_message(1_795_500_000, 17_280)).encode();
        let birth = Message::Birth(s.birth_message(1_795_500_000)).encode();
        let topic = s.topics.heartbeat.len();
        println!(
            "64 cameras + 2 alarms: heartbeat {} bytes of JSON (+ {topic} of topic), birth {} bytes",
            heartbeat.len(),
            birth.len()
        );
        let text = String::from_utf8(heartbeat.clone()).unwrap();
        assert!(
            !text.contains("cam-01"),
            "no inventory in heartbeats: {text}"
        );
        // 299 bytes when measured (323 before the time and percentages were rounded);
        // the margin is for longer uptimes and sequence numbers.
        assert!(heartbeat.len() <= 330, "{} bytes: {text}", heartbeat.len());
        assert!(birth.len() > 20 * heartbeat.len());
        assert!(birth.len() < MAX_PAYLOAD_BYTES / 4);
    }

    /// 10,000 gateways lose their broker at the same instant (a broker restart) and
    /// retry with the default backoff; the broker is back after `outage`. However long
    /// the outage, the reconnections that succeed are spread out: no second sees more
    /// than a small share of the fleet arrive.
    #[test]
    fn the_default_backoff_spreads_ten_thousand_gateways_after_a_broker_restart() {
        use rand::{Rng, SeedableRng};
        let m = crate::config::MqttConfig::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261129);
        const FLEET: usize = 10_000;
        for outage_ms in [100u64, 500, 2_000, 5_000, 10_000, 30_000, 120_000] {
            let outage = Duration::from_millis(outage_ms);
            let mut per_second = std::collections::BTreeMap::<u64, usize>::new();
            for _ in 0..FLEET {
                let mut t = Duration::ZERO;
                let mut attempt = 0;
                loop {
                    t += reconnect_delay(
                        m.reconnect_delay_min,
                        m.reconnect_delay_max,
                        attempt,
                        rng.random::<f64>(),
                    );
                    attempt += 1;
                    if t >= outage {
                        *per_second.entry(t.as_secs()).or_default() += 1;
                        break;
                    }
                }
            }
            let peak = per_second.values().copied().max().unwrap_or(0);
            println!(
                "broker back after {outage:?}: at most {peak} of {FLEET} gateways reconnect in one second"
            );
            assert!(peak <= FLEET * 15 / 100, "{outage:?}: {peak} in one second");
        }
        // Each delay stays in its window.
        let d = reconnect_delay(Duration::from_secs(10), Duration::from_secs(60), 3, 0.999);
        assert!(d <= Duration::from_secs(60));
        let d = reconnect_delay(Duration::from_secs(10), Duration::from_secs(60), 0, 0.0);
        assert_eq!(d, MIN_RECONNECT_DELAY);
    }
}
