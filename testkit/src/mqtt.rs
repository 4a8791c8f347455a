//! Gateways played by plain MQTT clients speaking the protocol from docs/PROTOCOL.md, as
//! `mosquitto_pub` would: for tests that need exact control over epochs and messages.

use std::net::SocketAddr;
use std::time::Duration;

use campuswatch_protocol::{CampusId, DeathReason, DeviceReport, Message, RegionCode};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::messages::{birth, death, heartbeat};

/// Polls `el` in a task until it is aborted, trying again 50 ms after an error (the
/// event loop reconnects); the receiver hears of the first CONNACK.
fn poll_in_background(mut el: EventLoop) -> (JoinHandle<()>, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    (task, rx)
}

/// A plain MQTT client of the broker at `broker`, its event loop polled in the
/// background (reconnecting after 50 ms when the connection drops).
pub fn client(broker: SocketAddr, id: &str, capacity: usize) -> AsyncClient {
    let o = MqttOptions::new(id, broker.ip().to_string(), broker.port());
    let (client, el) = AsyncClient::new(o, capacity);
    poll_in_background(el);
    client
}

/// Publishes `message` on its own topic, at least once.
pub async fn publish(client: &AsyncClient, message: &Message) {
    client
        .publish(
            message.topic().to_string(),
            QoS::AtLeastOnce,
            false,
            message.encode(),
        )
        .await
        .unwrap();
}

/// Publishes `message` on its own topic at the QoS a gateway sends it with: heartbeats at
/// most once, everything else at least once.
pub async fn send(client: &AsyncClient, message: &Message) -> Result<(), rumqttc::ClientError> {
    let qos = match message {
        Message::Heartbeat(_) => QoS::AtMostOnce,
        _ => QoS::AtLeastOnce,
    };
    client
        .publish(message.topic().to_string(), qos, false, message.encode())
        .await
}

/// A hand-driven gateway: its own connection with the Last Will of its epoch, publishing
/// what the test tells it to.
pub struct RawGateway {
    pub client: AsyncClient,
    pub campus: CampusId,
    pub region: RegionCode,
    pub epoch: u64,
    tasks: Vec<JoinHandle<()>>,
}

impl RawGateway {
    /// Connects with the Last Will of `epoch` and waits for the CONNACK.
    pub async fn connect(broker: SocketAddr, campus: &str, region: &str, epoch: u64) -> RawGateway {
        let o = MqttOptions::new(
            format!("cw-{campus}"),
            broker.ip().to_string(),
            broker.port(),
        );
        Self::connect_with(o, campus, region, epoch).await
    }

    /// `connect` with the broker address, client id, credentials and TLS of `o` (for
    /// example from `campuswatch_mqtt::BrokerLogin::options`).
    pub async fn connect_with(
        mut o: MqttOptions,
        campus: &str,
        region: &str,
        epoch: u64,
    ) -> RawGateway {
        let campus = CampusId::parse(campus).expect("campus id");
        let region = RegionCode::parse(region).expect("region");
        let will = death(&campus, region, epoch, DeathReason::ConnectionLost);
        o.set_keep_alive(Duration::from_secs(5))
            // As the agent does: on rumqttd a takeover of a clean session breaks the will.
            .set_clean_session(false)
            // Large enough for the oversized payloads of the bad-input tests (10 MB).
            .set_max_packet_size(1 << 20, 1 << 24)
            .set_last_will(LastWill::new(
                will.topic().to_string(),
                will.encode(),
                QoS::AtLeastOnce,
                false,
            ));
        let (client, el) = AsyncClient::new(o, 64);
        let (task, connected) = poll_in_background(el);
        tokio::time::timeout(Duration::from_secs(10), connected)
            .await
            .expect("gateway connects within 10 s")
            .expect("connection task alive");
        RawGateway {
            client,
            campus,
            region,
            epoch,
            tasks: vec![task],
        }
    }

    /// [`RawGateway::connect`], then a [`RawGateway::birth`] of `devices`, then heartbeats
    /// every `interval`: a gateway that comes online and stays.
    pub async fn online(
        broker: SocketAddr,
        campus: &str,
        region: &str,
        epoch: u64,
        devices: Vec<DeviceReport>,
        interval: Duration,
    ) -> RawGateway {
        let mut g = Self::connect(broker, campus, region, epoch).await;
        g.publish(&g.birth(devices)).await;
        g.start_heartbeats(interval);
        g
    }

    /// Publishes `msg` at the QoS a gateway would ([`send`]).
    pub async fn publish(&self, msg: &Message) {
        send(&self.client, msg).await.expect("publish queued");
    }

    /// Publishes raw bytes on a topic (for bad-input tests).
    pub async fn publish_raw(&self, topic: &str, payload: Vec<u8>) {
        self.publish_raw_at(topic, payload, QoS::AtLeastOnce).await;
    }

    /// [`RawGateway::publish_raw`] at `qos`.
    pub async fn publish_raw_at(&self, topic: &str, payload: Vec<u8>, qos: QoS) {
        self.client
            .publish(topic, qos, false, payload)
            .await
            .expect("publish queued");
    }

    /// A birth of this gateway's epoch with the given devices, saying heartbeats come
    /// every 300 ms (as the end-to-end agents send them).
    pub fn birth(&self, devices: Vec<DeviceReport>) -> Message {
        let mut born = birth(&self.campus, self.region, self.epoch, devices);
        if let Message::Birth(b) = &mut born {
            b.agent_version = "raw".into();
            b.config_digest = "raw".into();
            b.heartbeat_interval_ms = 300;
        }
        born
    }

    /// Sends heartbeats every `interval` until killed.
    pub fn start_heartbeats(&mut self, interval: Duration) {
        let (client, campus, region, epoch) = (
            self.client.clone(),
            self.campus.clone(),
            self.region,
            self.epoch,
        );
        self.tasks.push(tokio::spawn(async move {
            let mut seq = 0;
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                seq += 1;
                let hb = heartbeat(&campus, region, epoch, seq, "", 0);
                let _ = send(&client, &hb).await;
            }
        }));
    }

    /// Drops the connection without a word: the broker publishes the Last Will.
    pub fn kill(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}
