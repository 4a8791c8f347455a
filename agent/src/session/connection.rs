//! What one MQTT connection of the session is made of: the campus's topics, the options
//! (client id, keepalive, Last Will with the epoch), the reconnect backoff and the
//! DISCONNECT.

use super::*;

/// Topics of this campus.
pub(super) struct Topics {
    pub(super) birth: String,
    pub(super) death: String,
    pub(super) heartbeat: String,
    pub(super) event: String,
    pub(super) rebirth: String,
}

impl Topics {
    pub(super) fn of(config: &AgentConfig) -> Self {
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

/// Exponential backoff with full jitter: `unit` (uniform in [0, 1)) of
/// `min · 2^attempt`, capped at `max`, and never below [`MIN_RECONNECT_DELAY`] (or `min`
/// if that is shorter). Pure, so the spread of a fleet is simulated in a test.
pub(super) fn reconnect_delay(min: Duration, max: Duration, attempt: u32, unit: f64) -> Duration {
    let cap = min.saturating_mul(1u32 << attempt.min(20)).min(max);
    cap.mul_f64(unit.clamp(0.0, 1.0))
        .max(MIN_RECONNECT_DELAY.min(min))
}

/// The next reload request; pending forever when there is no channel.
pub(super) async fn next_reload(reloads: &mut Option<mpsc::Receiver<Reload>>) -> Option<Reload> {
    match reloads {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Requests a DISCONNECT; `None` when it cannot even be queued (then the connection is
/// simply dropped, and the broker publishes the Last Will of this same epoch).
pub(super) fn disconnect(conn: &mut Conn) -> Option<Phase> {
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
pub(super) fn mqtt_options(
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
