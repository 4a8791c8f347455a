//! Ingest: the server's MQTT connection and the task that owns the monitor.
//!
//! The connection task owns the rumqttc `EventLoop`: it decodes every publish (topic and
//! payload validation happen here, off the monitor's task), counts and drops bad input,
//! and hands the rest to the engine through a bounded channel, together with broker
//! up/down notices. The engine task drains what is queued, applies it to the monitor,
//! writes the resulting changes in one transaction and only then acknowledges the QoS 1
//! messages of that batch (manual acks): a crash before the commit means the broker
//! redelivers, and the store de-duplicates. It also sends the rebirth requests the
//! monitor decided on (QoS 1, not retained, on the gateway's `cmd/rebirth` topic).

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use campuswatch_mqtt::BrokerLogin;
use campuswatch_protocol::{
    campus_filters, decode, server_state_topic, CampusTopic, Command, Message, MessageKind,
    Rebirth, RegionCode, ServerState, ServerStatus, Timestamp, BASE_SCHEMA_VERSION,
    COMMAND_SCHEMA_VERSION, MAX_PAYLOAD_BYTES,
};
use rand::Rng;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Packet, Publish, QoS,
    SubscribeFilter,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::metrics::Metrics;
use crate::monitor::maintenance::{Maintenance, MaintenanceError};
use crate::monitor::{AckError, Alert, Change, Monitor, RebirthRequest};
use crate::registry::RegistryEntry;
use crate::store::{Store, StoreError};

pub use crate::clock::{Clock, SystemClock};

/// The engine task is gone: the server is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is shutting down")]
pub struct EngineGone;

/// Hands a request to the engine, which applies it in order with the message stream,
/// and waits for its answer (given once what it changed is stored).
pub async fn ask_engine<T>(
    inbound: &mpsc::Sender<Inbound>,
    request: impl FnOnce(oneshot::Sender<T>) -> Inbound,
) -> Result<T, EngineGone> {
    let (reply, rx) = oneshot::channel();
    inbound.send(request(reply)).await.map_err(|_| EngineGone)?;
    rx.await.map_err(|_| EngineGone)
}

/// Loads registry entries (upsert; with `replace`, the registry becomes exactly these)
/// through the engine, in order with the message stream; answered once stored.
pub async fn import_registry(
    inbound: &mpsc::Sender<Inbound>,
    entries: Vec<RegistryEntry>,
    replace: bool,
) -> Result<Result<(), StoreError>, EngineGone> {
    ask_engine(inbound, |reply| Inbound::Registry {
        entries,
        replace,
        reply,
    })
    .await
}

/// What the engine task receives.
pub enum Inbound {
    /// A decoded campus message; `ack` is the QoS 1 publish to acknowledge once stored.
    Message {
        msg: Box<Message>,
        ack: Option<Publish>,
    },
    BrokerUp,
    BrokerDown,
    /// What a GB/T 28181 device said (the listener in `gb28181`).
    Gb(crate::gb28181::GbInput),
    /// A registry import from the API or CLI, applied in order with the messages.
    Registry {
        entries: Vec<RegistryEntry>,
        replace: bool,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// A maintenance window planned or withdrawn; answered once stored (with the window
    /// as planned, or `None` once withdrawn).
    Maintenance {
        op: MaintenanceOp,
        reply: oneshot::Sender<Result<Option<Maintenance>, MaintenanceError>>,
    },
    /// An operator acknowledges an alert; answered once it is stored.
    Acknowledge {
        alert: u64,
        by: String,
        comment: Option<String>,
        reply: oneshot::Sender<Result<Alert, AckError>>,
    },
}

/// What to do with the maintenance windows.
pub enum MaintenanceOp {
    /// Plan this window (its id is assigned by the monitor).
    Add(Maintenance),
    /// Withdraw the window with this id.
    Remove(u64),
}

/// The broker connection cannot be set up from the configuration (the key and the fix
/// are named).
pub type MqttSetupError = campuswatch_mqtt::SetupError;

/// Connection settings resolved from the config.
#[derive(Clone)]
pub struct MqttSettings {
    /// URL, credentials, CA bundle and client certificate.
    pub login: BrokerLogin,
    pub keepalive: Duration,
    pub inflight: u16,
    pub server_id: String,
    pub regions: Vec<RegionCode>,
}

/// The largest packet MQTT 3.1.1 can carry: a remaining length of 268,435,455 bytes and a
/// fixed header of at most 5.
const MQTT_MAX_PACKET_BYTES: usize = 268_435_455 + 5;

fn mqtt_options(s: &MqttSettings) -> Result<MqttOptions, MqttSetupError> {
    let mut o = s.login.options(format!("cw-server-{}", s.server_id))?;
    o.set_keep_alive(s.keepalive)
        // A persistent session: while the server is away the broker keeps its QoS 1
        // messages (births, deaths, events) for it.
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(s.inflight)
        // Any packet MQTT can carry is read, so an oversized payload is counted, acknowledged
        // and dropped by us: a smaller bound would make the client break the connection on
        // it, and the broker deliver it again after every reconnect, for ever. Brokers
        // should refuse such payloads first (Mosquitto `message_size_limit`, EMQX
        // `mqtt.max_packet_size`; docs/broker-security.md).
        .set_max_packet_size(MQTT_MAX_PACKET_BYTES, 4 * MAX_PAYLOAD_BYTES)
        .set_request_channel_capacity(4096);
    let offline = serde_json::to_vec(&ServerState {
        v: BASE_SCHEMA_VERSION,
        server: s.server_id.clone(),
        state: ServerStatus::Offline,
    })
    .unwrap_or_default();
    o.set_last_will(LastWill::new(
        server_state_topic(&s.server_id),
        offline,
        QoS::AtLeastOnce,
        true,
    ));
    Ok(o)
}

/// Starts the MQTT connection task. Messages go to `tx`; the returned client is used
/// by the engine to acknowledge.
pub fn spawn_connection(
    settings: MqttSettings,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) -> Result<(AsyncClient, tokio::task::JoinHandle<()>), MqttSetupError> {
    let opts = mqtt_options(&settings)?;
    let (client, eventloop) = AsyncClient::new(opts, 4096);
    let task = tokio::spawn(connection_task(
        settings,
        client.clone(),
        eventloop,
        metrics,
        tx,
        shutdown,
    ));
    Ok((client, task))
}

async fn connection_task(
    settings: MqttSettings,
    client: AsyncClient,
    mut eventloop: EventLoop,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(250);
    let mut connected = false;
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                info!(url = %settings.login.redacted_url(), session_present = ack.session_present, "Connected to the broker.");
                connected = true;
                backoff = Duration::from_millis(250);
                metrics.broker_connected.store(true, Ordering::Relaxed);
                on_connected(&settings, &client);
                if tx.send(Inbound::BrokerUp).await.is_err() {
                    break;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Some(inbound) = accept(&settings, &metrics, &client, p) {
                    if tx.send(inbound).await.is_err() {
                        break;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                if connected {
                    warn!(url = %settings.login.redacted_url(), error = %e, "Lost the broker; monitoring is paused until it is back.");
                    connected = false;
                    metrics.broker_connected.store(false, Ordering::Relaxed);
                    metrics.broker_disconnects.fetch_add(1, Ordering::Relaxed);
                    if tx.send(Inbound::BrokerDown).await.is_err() {
                        break;
                    }
                } else {
                    let diagnosis = settings.login.diagnose(&e);
                    if diagnosis.needs_action {
                        // Nothing is monitored until someone fixes this.
                        error!(url = %settings.login.redacted_url(), error = %diagnosis, retry_in = ?backoff, "The broker refused the server.");
                    } else {
                        warn!(url = %settings.login.redacted_url(), error = %diagnosis, retry_in = ?backoff, "Cannot reach the broker.");
                    }
                }
                if matches!(e, ConnectionError::RequestsDone) {
                    break;
                }
                let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff + Duration::from_millis(jitter)) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    // Say goodbye: a retained offline state, then a clean disconnect, driven by a last
    // few polls of the loop.
    if connected {
        let offline = serde_json::to_vec(&ServerState {
            v: BASE_SCHEMA_VERSION,
            server: settings.server_id.clone(),
            state: ServerStatus::Offline,
        })
        .unwrap_or_default();
        let _ = client.try_publish(
            server_state_topic(&settings.server_id),
            QoS::AtLeastOnce,
            true,
            offline,
        );
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(ev) = eventloop.poll().await {
                if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
    metrics.broker_connected.store(false, Ordering::Relaxed);
}

fn on_connected(settings: &MqttSettings, client: &AsyncClient) {
    let filters: Vec<SubscribeFilter> = MessageKind::ALL
        .iter()
        .flat_map(|k| campus_filters(*k, &settings.regions))
        .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce))
        .collect();
    if let Err(e) = client.try_subscribe_many(filters) {
        error!(error = %e, "Cannot subscribe to campus topics.");
    }
    let online = serde_json::to_vec(&ServerState {
        v: BASE_SCHEMA_VERSION,
        server: settings.server_id.clone(),
        state: ServerStatus::Online,
    })
    .unwrap_or_default();
    // try_: this runs on the task that polls the event loop, which must never wait on
    // its own request channel.
    if let Err(e) = client.try_publish(
        server_state_topic(&settings.server_id),
        QoS::AtLeastOnce,
        true,
        online,
    ) {
        warn!(error = %e, "Cannot publish the server's online state.");
    }
}

/// Decodes one publish; bad input is counted, logged once per source, acknowledged (so
/// the broker does not send it again) and dropped.
fn accept(
    settings: &MqttSettings,
    metrics: &Metrics,
    client: &AsyncClient,
    p: Publish,
) -> Option<Inbound> {
    let drop = |source: &str, reason: &'static str, detail: &dyn std::fmt::Display| {
        if metrics.dropped(source, reason) {
            warn!(source, reason, %detail, "Dropped a bad message (logged once per source and reason; see cw_messages_dropped_total).");
        }
        if p.qos != QoS::AtMostOnce {
            let _ = client.try_ack(&p);
        }
    };
    let topic = p.topic.as_str();
    let parsed = match CampusTopic::parse(topic) {
        Ok(t) => t,
        Err(e) => {
            drop(topic, "topic", &e);
            return None;
        }
    };
    if !settings.regions.is_empty() && !settings.regions.iter().any(|r| parsed.region.is_within(r))
    {
        drop(
            topic,
            "outside_partition",
            &"region not watched by this server",
        );
        return None;
    }
    metrics.received(parsed.kind);
    match decode(&parsed, &p.payload) {
        Ok(msg) => {
            let ack = (p.qos != QoS::AtMostOnce).then_some(p);
            Some(Inbound::Message {
                msg: Box::new(msg),
                ack,
            })
        }
        Err(e) => {
            let source = format!("{}/{}", parsed.region, parsed.campus);
            drop(&source, e.reason(), &e);
            None
        }
    }
}

/// The engine: owns the monitor's writes, the store writes and the acks.
pub struct Engine {
    pub monitor: Arc<RwLock<Monitor>>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub client: Option<AsyncClient>,
    pub check_interval: Duration,
    /// How often heartbeat-only updates (last heartbeat, host health) are written.
    pub flush_interval: Duration,
    /// Where stored changes are told to open consoles.
    pub live: tokio::sync::broadcast::Sender<crate::live::LiveEvent>,
    /// Beaten every time round the loop (at least every `check_interval`) and while a
    /// commit is retried; the systemd watchdog pings only while it beats.
    pub liveness: campuswatch_service::Liveness,
}

/// Most inbound items applied and committed together.
const MAX_BATCH: usize = 4096;

/// Most heartbeat-only gateway updates written in one transaction. The engine applies
/// nothing while it writes, and every gateway's update at once (10,000 gateways: about
/// half a second on the project's machine) held each event, death and birth back that
/// long; in chunks, message batches are applied between them.
const FLUSH_CHUNK: usize = 500;

impl Engine {
    pub async fn run(self, mut rx: mpsc::Receiver<Inbound>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flush = tokio::time::interval(self.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut connected = false;
        // Heartbeat updates are being written, a chunk per turn of the loop.
        let mut flushing = false;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            self.liveness.beat();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                n = rx.recv_many(&mut batch, MAX_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    self.apply_batch(&mut batch, &mut connected, &shutdown).await;
                }
                _ = tick.tick() => {
                    // GB/T 28181 devices reach the server directly, broker or not.
                    let now = self.clock.now();
                    let changes = self.write_monitor().expire_gb(now);
                    for c in &changes {
                        if let Change::GbDevice(d) = c {
                            if d.state == crate::monitor::GbState::Offline {
                                warn!(device = %d.id, cause = d.cause.as_deref().unwrap_or(""), "GB/T 28181 device offline.");
                            }
                        }
                    }
                    self.commit(&changes, now, &shutdown).await;
                    if connected {
                        let now = self.clock.now();
                        let changes = self.write_monitor().expire(now);
                        for c in &changes {
                            if let Change::Gateway { campus, record, .. } = c {
                                if record.state == campuswatch_protocol::GatewayState::Stale {
                                    warn!(campus = %campus, "Heartbeats missed; gateway is stale.");
                                }
                            }
                        }
                        self.commit(&changes, now, &shutdown).await;
                    } else {
                        let now = self.clock.now();
                        let changes = self.write_monitor().check_monitoring(now);
                        if !changes.is_empty() {
                            error!("The server cannot see the campuses: no MQTT broker; operators are told.");
                        }
                        self.commit(&changes, now, &shutdown).await;
                    }
                }
                _ = flush.tick() => flushing = true,
                _ = std::future::ready(()), if flushing => {
                    let now = self.clock.now();
                    let changes = {
                        let mut m = self.write_monitor();
                        let mut c = m.take_heartbeat_updates(FLUSH_CHUNK);
                        c.extend(m.take_gb_keepalive_updates(FLUSH_CHUNK - c.len()));
                        c
                    };
                    flushing = changes.len() == FLUSH_CHUNK;
                    self.commit(&changes, now, &shutdown).await;
                }
            }
        }
        // Keep what heartbeats told us for the next start.
        let now = self.clock.now();
        let changes = {
            let mut m = self.write_monitor();
            let mut c = m.take_heartbeat_updates(usize::MAX);
            c.extend(m.take_gb_keepalive_updates(usize::MAX));
            c
        };
        if let Err(e) = self.store.apply(&changes, now).await {
            warn!(error = %e, "Could not save the last heartbeat times at shutdown.");
        }
    }

    fn write_monitor(&self) -> std::sync::RwLockWriteGuard<'_, Monitor> {
        // A panic while holding the lock cannot leave the monitor half-updated in a way
        // worse than stopping would, so keep serving.
        self.monitor.write().unwrap_or_else(|p| p.into_inner())
    }

    async fn apply_batch(
        &self,
        batch: &mut Vec<Inbound>,
        connected: &mut bool,
        shutdown: &CancellationToken,
    ) {
        let now = self.clock.now();
        let mut changes = Vec::new();
        let mut acks = Vec::new();
        let mut imports = Vec::new();
        let mut ack_replies = Vec::new();
        let mut maintenance_replies = Vec::new();
        let mut rebirths = Vec::new();
        {
            let mut m = self.write_monitor();
            for inbound in batch.drain(..) {
                match inbound {
                    Inbound::Message { msg, ack } => {
                        let out = m.apply(&msg, now);
                        self.metrics.applied(msg.kind());
                        if let Some(why) = out.ignored {
                            debug!(campus = %msg.campus(), kind = %msg.kind(), reason = why.as_str(), "Message did not change state.");
                        }
                        if out.newly_dropped > 0 {
                            warn!(campus = %msg.campus(), dropped = out.newly_dropped, "The gateway's spool was full during an outage and dropped its oldest events; their ids will not arrive.");
                        }
                        rebirths.extend(out.rebirth);
                        log_changes(&out.changes, now);
                        changes.extend(out.changes);
                        acks.extend(ack);
                    }
                    Inbound::Gb(input) => {
                        let out = m.apply_gb(&input, now);
                        log_changes(&out, now);
                        changes.extend(out);
                    }
                    Inbound::BrokerUp => {
                        changes.extend(m.on_broker_reconnected(now));
                        *connected = true;
                    }
                    Inbound::BrokerDown => {
                        m.on_broker_lost(now);
                        *connected = false;
                    }
                    Inbound::Maintenance { op, reply } => {
                        let result = match op {
                            MaintenanceOp::Add(w) => m.add_maintenance(w, now).map(|(w, c)| {
                                info!(id = w.id, by = %w.created_by, "Maintenance window planned.");
                                changes.extend(c);
                                Some(w)
                            }),
                            MaintenanceOp::Remove(id) => m.remove_maintenance(id, now).map(|c| {
                                info!(id, "Maintenance window withdrawn.");
                                changes.extend(c);
                                None
                            }),
                        };
                        maintenance_replies.push((reply, result));
                    }
                    Inbound::Acknowledge {
                        alert,
                        by,
                        comment,
                        reply,
                    } => {
                        let result = m.acknowledge(alert, &by, comment, now);
                        if let Ok(a) = &result {
                            changes.push(Change::Alert(a.clone()));
                            if let Some(ack) = &a.acknowledged {
                                changes.push(Change::Acknowledged {
                                    alert,
                                    ack: ack.clone(),
                                });
                            }
                            info!(alert, campus = %a.campus, by = %by, "Alert acknowledged.");
                        }
                        ack_replies.push((reply, result));
                    }
                    Inbound::Registry {
                        entries,
                        replace,
                        reply,
                    } => {
                        // Commit what came before, then the import, in order.
                        imports.push((entries, replace, reply, changes.len()));
                    }
                }
            }
        }
        if imports.is_empty() {
            self.commit(&changes, now, shutdown).await;
        } else {
            let mut done = 0;
            for (entries, replace, reply, upto) in imports {
                self.commit(&changes[done..upto], now, shutdown).await;
                done = upto;
                let result = self.import(&entries, replace, now, shutdown).await;
                let _ = reply.send(result);
            }
            self.commit(&changes[done..], now, shutdown).await;
        }
        // Stored by now: tell the operators who acknowledged.
        for (reply, result) in ack_replies {
            let _ = reply.send(result);
        }
        for (reply, result) in maintenance_replies {
            let _ = reply.send(result);
        }
        if let Some(client) = &self.client {
            if shutdown.is_cancelled() {
                // The connection is closing; the broker sends these again next time.
                return;
            }
            for r in &rebirths {
                request_rebirth(client, r);
            }
            for p in acks {
                match client.ack(&p).await {
                    Ok(()) => {
                        self.metrics.acks_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        warn!(error = %e, "Could not acknowledge a message; the broker will send it again.")
                    }
                }
            }
        }
    }

    async fn import(
        &self,
        entries: &[RegistryEntry],
        replace: bool,
        now: Timestamp,
        shutdown: &CancellationToken,
    ) -> Result<(), StoreError> {
        // A server watching some regions keeps only their campuses: the others are the
        // business of the servers of those regions (with their own databases).
        let watched = self.write_monitor().in_partition(entries);
        if watched.len() < entries.len() {
            info!(
                outside = entries.len() - watched.len(),
                "Registry entries outside this server's regions (mqtt.regions) left to the servers of those regions."
            );
        }
        self.store.import_registry(&watched, replace, now).await?;
        let changes = self.write_monitor().set_registry(&watched, replace, now);
        self.commit(&changes, now, shutdown).await;
        let _ = self.live.send(crate::live::LiveEvent::registry());
        info!(campuses = watched.len(), replace, "Registry imported.");
        Ok(())
    }

    /// Writes changes, retrying with backoff until the store takes them: the messages
    /// behind them are not acknowledged before that, so nothing is lost meanwhile.
    async fn commit(&self, changes: &[Change], now: Timestamp, shutdown: &CancellationToken) {
        if changes.is_empty() {
            return;
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            // Waiting for the store is the engine at work, not stuck.
            self.liveness.beat();
            let started = Instant::now();
            match self.store.apply(changes, now).await {
                Ok(()) => {
                    crate::live::publish(&self.live, changes);
                    self.metrics.store_batches.fetch_add(1, Ordering::Relaxed);
                    self.metrics
                        .store_batch_micros
                        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                    error!(error = %e, changes = changes.len(), retry_in = ?backoff, "Cannot write to the store; holding acknowledgements until it works.");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Publishes a rebirth request. `try_publish`: the request channel is large and a full
/// one means the connection is in trouble; the monitor asks again at the next heartbeat
/// that still disagrees (after its spacing).
fn request_rebirth(client: &AsyncClient, r: &RebirthRequest) {
    let cmd = Command::Rebirth(Rebirth {
        v: COMMAND_SCHEMA_VERSION,
        campus: r.campus.clone(),
        region: r.region,
        epoch: r.epoch,
        reason: r.reason.as_str().to_string(),
    });
    match client.try_publish(
        cmd.topic().to_string(),
        QoS::AtLeastOnce,
        false,
        cmd.encode(),
    ) {
        Ok(()) => {
            info!(campus = %r.campus, epoch = r.epoch, reason = r.reason.as_str(), "Asked the gateway for a rebirth.")
        }
        Err(e) => {
            warn!(campus = %r.campus, error = %e, "Could not queue a rebirth request; asking again later.")
        }
    }
}

/// Logs the alerts a message opened or ended (not those it only updated: an alert
/// open again once its gateway is back is no new drop).
fn log_changes(changes: &[Change], now: Timestamp) {
    for c in changes {
        if let Change::Alert(a) = c {
            match a.state {
                crate::monitor::AlertState::Open if a.opened_at == now => {
                    warn!(campus = %a.campus, device = ?a.device.as_ref().map(|d| d.as_str()), kind = a.kind.as_str(), cause = ?a.cause, "Link dropped.")
                }
                crate::monitor::AlertState::Resolved => {
                    info!(campus = %a.campus, device = ?a.device.as_ref().map(|d| d.as_str()), kind = a.kind.as_str(), "Alert ended.")
                }
                crate::monitor::AlertState::Open | crate::monitor::AlertState::Suppressed => {}
            }
        }
    }
}
