//! Test support: a broker (the machine's when `CAMPUSWATCH_TEST_MQTT_URL` is set, else an
//! embedded rumqttd on a free port), a subscriber that decodes campus messages, and the
//! agent's config and state directory as tests see them. Devices that can be taken down,
//! the proxy that cuts the agent off the broker and waiting with a deadline are
//! `campuswatch_testkit`'s, re-exported here.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use campuswatch_agent::{AgentConfig, DeviceConfig, ProbeConfig};
use campuswatch_protocol::{
    decode, CampusId, CampusTopic, Command, CommandTopic, DeviceId, DeviceKind, Message, RegionCode,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};

// Not every test binary uses every one.
#[allow(unused_imports)]
pub use campuswatch_testkit::{wait_until, LinkMode, LinkProxy, TcpDevice};

/// How long any expected thing may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub const REGION: &str = "150102";

/// The broker URL for this test binary (one embedded broker is shared by its tests).
pub fn broker_url() -> String {
    if let Ok(url) = std::env::var("CAMPUSWATCH_TEST_MQTT_URL") {
        return url;
    }
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(start_embedded_broker).clone()
}

pub fn broker_addr() -> SocketAddr {
    let url = broker_url();
    let hostport = url
        .trim_start_matches("mqtt://")
        .trim_start_matches("tcp://")
        .trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("broker URL {url} is not mqtt://host:port"))
}

fn start_embedded_broker() -> String {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let listener = ServerSettings {
        name: "agent-tests".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: 1024 * 1024,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: false,
        },
    };
    // Small segments: rumqttd's sample config lets a log grow to gigabytes.
    let router = RouterConfig {
        max_connections: 1000,
        max_outgoing_packet_count: 200,
        max_segment_size: 256 * 1024,
        max_segment_count: 4,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    let config = Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("1".to_owned(), listener)])),
        ..Config::default()
    };
    std::thread::Builder::new()
        .name("test-broker".into())
        .spawn(move || {
            let _ = Broker::new(config).start();
        })
        .expect("broker thread");
    // Wait until it accepts connections (a condition, not a fixed sleep).
    let deadline = std::time::Instant::now() + DEADLINE;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "embedded broker did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    format!("mqtt://{addr}")
}

/// A campus id no other test (or parallel run on a shared broker) uses.
pub fn unique_campus(name: &str) -> CampusId {
    CampusId::parse(&format!("t-{name}-{:08x}", rand::random::<u32>())).unwrap()
}

/// An agent config for tests: fast timings, the given broker URL and state dir.
pub fn agent_config(campus: &CampusId, url: &str, state_dir: &Path) -> AgentConfig {
    let mut c = AgentConfig::new(campus.clone(), RegionCode::parse(REGION).unwrap());
    c.state_dir = state_dir.to_path_buf();
    c.heartbeat_interval = Duration::from_millis(200);
    c.mqtt.url = url.to_string();
    c.mqtt.keepalive = Duration::from_secs(5);
    c.mqtt.reconnect_delay_min = Duration::from_millis(50);
    c.mqtt.reconnect_delay_max = Duration::from_millis(200);
    c
}

/// A fast TCP-probed alarm device.
pub fn tcp_alarm(id: &str, addr: SocketAddr) -> DeviceConfig {
    let mut d = DeviceConfig::new(
        DeviceId::parse(id).unwrap(),
        DeviceKind::Alarm,
        ProbeConfig::Tcp {
            target: addr.to_string(),
        },
    );
    d.interval = Some(Duration::from_millis(50));
    d.timeout = Some(Duration::from_secs(1));
    d.down_after = Some(2);
    d.up_after = Some(2);
    d
}

/// A subscriber to one campus's topics that decodes (and so validates) every message.
pub struct Subscriber {
    rx: mpsc::UnboundedReceiver<Result<Message, String>>,
    _client: AsyncClient,
}

impl Subscriber {
    pub async fn start(campus: &CampusId) -> Subscriber {
        let addr = broker_addr();
        let mut o = MqttOptions::new(format!("sub-{campus}"), addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(1024 * 1024, 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(o, 16);
        client
            .subscribe(format!("cw/v1/{REGION}/{campus}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(true);
                    }
                    // Commands to the gateway (the tests' own rebirth requests) are not
                    // the agent's messages.
                    Ok(Event::Incoming(Packet::Publish(p)))
                        if CommandTopic::parse(&p.topic).is_ok() => {}
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let msg = CampusTopic::parse(&p.topic)
                            .map_err(|e| e.to_string())
                            .and_then(|t| {
                                decode(&t, &p.payload).map_err(|e| {
                                    format!(
                                        "{}: {e}: {}",
                                        p.topic,
                                        String::from_utf8_lossy(&p.payload)
                                    )
                                })
                            });
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("test subscriber lost the broker: {e}"),
                }
            }
        });
        tokio::time::timeout(DEADLINE, subscribed.wait_for(|s| *s))
            .await
            .expect("SUBACK in time")
            .unwrap();
        Subscriber {
            rx,
            _client: client,
        }
    }

    /// The next message for which `pred` holds; others are skipped.
    pub async fn expect(&mut self, what: &str, mut pred: impl FnMut(&Message) -> bool) -> Message {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("subscriber running");
            let msg = msg.unwrap_or_else(|e| panic!("invalid message from the agent: {e}"));
            if pred(&msg) {
                return msg;
            }
        }
    }

    /// The next birth; other messages are skipped.
    pub async fn birth(&mut self, what: &str) -> campuswatch_protocol::Birth {
        match self.expect(what, |m| matches!(m, Message::Birth(_))).await {
            Message::Birth(b) => b,
            _ => unreachable!(),
        }
    }

    /// The next event taking a device `from → to`; other messages are skipped.
    pub async fn event(
        &mut self,
        what: &str,
        from: campuswatch_protocol::DeviceState,
        to: campuswatch_protocol::DeviceState,
    ) -> campuswatch_protocol::Event {
        let msg = self
            .expect(
                what,
                |m| matches!(m, Message::Event(e) if e.from == from && e.to == to),
            )
            .await;
        match msg {
            Message::Event(e) => e,
            _ => unreachable!(),
        }
    }
}

/// Publishes `commands` to the broker as a server would (QoS 1, not retained), in order,
/// and returns once the broker acknowledged them all.
pub async fn send_commands(commands: &[Command]) {
    let addr = broker_addr();
    let mut o = MqttOptions::new(
        format!("test-server-{:08x}", rand::random::<u32>()),
        addr.ip().to_string(),
        addr.port(),
    );
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(o, 16);
    for c in commands {
        client
            .publish(c.topic().to_string(), QoS::AtLeastOnce, false, c.encode())
            .await
            .unwrap();
    }
    let mut acked = 0;
    tokio::time::timeout(DEADLINE, async {
        while acked < commands.len() {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("test publisher lost the broker: {e}"),
            }
        }
    })
    .await
    .expect("PUBACKs in time");
}

/// The events currently in an agent's spool log (ids and `at`), read from disk.
pub fn spooled_events(state_dir: &Path) -> Vec<campuswatch_protocol::Event> {
    let text = std::fs::read_to_string(state_dir.join("spool/events.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(_, json)| serde_json::from_str(json).ok())
        .collect()
}

/// Waits until the broker has acknowledged every spooled event (the log is emptied then).
/// A subscriber may see an event before the agent has its PUBACK — Mosquitto delivers
/// first — so a test that counts the spool from some moment on waits for this first.
pub async fn wait_all_acknowledged(state_dir: &Path) {
    wait_until("every spooled event acknowledged", DEADLINE, async || {
        spooled_events(state_dir).is_empty()
    })
    .await;
}

/// The epoch stored in an agent's state dir.
pub fn stored_epoch(state_dir: &Path) -> u64 {
    std::fs::read_to_string(state_dir.join("epoch"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
