//! Support for the end-to-end tests and benchmarks: a broker (the machine's Mosquitto
//! when `CAMPUSWATCH_TEST_MQTT_URL` says so, else an embedded one on a free port), a
//! server on port 0, a TCP proxy that can freeze or cut a gateway's link, TCP devices
//! that go down and up (on demand or at random), and waiting on conditions with a
//! deadline instead of sleeping.

pub mod bench;
pub mod mosquitto;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use campuswatch_server::broker::{EmbeddedBroker, EmbeddedBrokerConfig};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::ServerHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A broker for a test.
pub struct TestBroker {
    pub url: String,
    _embedded: Option<EmbeddedBroker>,
}

impl TestBroker {
    /// The machine's broker if `CAMPUSWATCH_TEST_MQTT_URL` is set, else a fresh embedded
    /// one. Panics with a clear message if the configured broker cannot be reached, so a
    /// missing peer fails the run instead of skipping it.
    pub async fn start() -> TestBroker {
        Self::at(None).await
    }

    /// `external` (a benchmark's `--mqtt-url`) if given, else as [`TestBroker::start`].
    pub async fn at(external: Option<String>) -> TestBroker {
        if let Some(url) = external.or_else(|| std::env::var("CAMPUSWATCH_TEST_MQTT_URL").ok()) {
            let addr = url
                .trim_start_matches("mqtt://")
                .trim_start_matches("tcp://")
                .to_string();
            if let Err(e) = TcpStream::connect(&addr).await {
                panic!(
                    "CAMPUSWATCH_TEST_MQTT_URL={url} is set but the broker does not answer: {e}"
                );
            }
            return TestBroker {
                url,
                _embedded: None,
            };
        }
        let b = EmbeddedBroker::start(EmbeddedBrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fallback_to_free_port: true,
            max_connections: 20_000,
            max_payload_size: 4 * campuswatch_protocol::MAX_PAYLOAD_BYTES,
        })
        .await
        .expect("embedded broker starts");
        TestBroker {
            url: b.url(),
            _embedded: Some(b),
        }
    }

    /// `host:port` of the broker.
    pub fn addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("mqtt://")
            .trim_start_matches("tcp://")
            .parse()
            .expect("broker URL is host:port")
    }
}

/// An agent config for the end-to-end tests: its own state dir, the broker at `url`,
/// scaled timings (heartbeat 300 ms, keepalive 2 s, reconnect after 100–500 ms) and one
/// alarm device, `alarm-1`, probed over TCP at `alarm` every 100 ms with a 500 ms
/// timeout. Tests adjust the device's thresholds and the login as they need.
pub fn agent_config(
    campus: &str,
    county: &str,
    url: &str,
    dir: &std::path::Path,
    alarm: SocketAddr,
) -> campuswatch_agent::AgentConfig {
    use campuswatch_agent::{AgentConfig, DeviceConfig, ProbeConfig};
    use campuswatch_protocol::{CampusId, DeviceId, DeviceKind, RegionCode};
    let mut c = AgentConfig::new(
        CampusId::parse(campus).expect("campus id"),
        RegionCode::parse(county).expect("region"),
    );
    c.state_dir = dir.to_path_buf();
    c.heartbeat_interval = Duration::from_millis(300);
    c.mqtt.url = url.to_string();
    c.mqtt.keepalive = Duration::from_secs(2);
    c.mqtt.reconnect_delay_min = Duration::from_millis(100);
    c.mqtt.reconnect_delay_max = Duration::from_millis(500);
    let mut d = DeviceConfig::new(
        DeviceId::parse("alarm-1").expect("device id"),
        DeviceKind::Alarm,
        ProbeConfig::Tcp {
            target: alarm.to_string(),
        },
    );
    d.interval = Some(Duration::from_millis(100));
    d.timeout = Some(Duration::from_millis(500));
    c.devices.push(d);
    c
}

/// A server config for tests: its own data dir, the given broker, watching only
/// `county` (so tests sharing one Mosquitto never see each other's campuses), short
/// liveness timings.
pub fn server_config(data_dir: &std::path::Path, broker_url: &str, county: &str) -> ServerConfig {
    let mut cfg = ServerConfig {
        id: format!("test-{county}-{}", rand::random::<u32>()),
        data_dir: data_dir.to_path_buf(),
        ..ServerConfig::default()
    };
    cfg.mqtt.url = broker_url.to_string();
    cfg.mqtt.regions = vec![county.to_string()];
    cfg.mqtt.keepalive = Duration::from_secs(5);
    cfg.liveness.missed_heartbeats = 3;
    cfg.liveness.default_heartbeat_interval = Duration::from_millis(300);
    cfg.liveness.check_interval = Duration::from_millis(50);
    // A gateway that keeps disagreeing is asked again within the tests' deadlines.
    cfg.liveness.rebirth_min_interval = Duration::from_secs(1);
    cfg.liveness.rebirth_max_interval = Duration::from_secs(4);
    // These tests measure when links are flagged, not the operators' hold-down.
    cfg.alerts.hold_down_gateway = Duration::ZERO;
    cfg.alerts.hold_down_alarm = Duration::ZERO;
    cfg.alerts.hold_down_camera = Duration::ZERO;
    cfg.alerts.group_wait = Duration::ZERO;
    // These suites read the API as a script with full access would; sign-in and scopes
    // are tested in the server's auth and console suites.
    cfg.auth.enabled = false;
    cfg
}

/// Starts a server on a free HTTP port.
pub async fn start_server(cfg: ServerConfig) -> ServerHandle {
    init_logging();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    campuswatch_server::start(cfg, listener)
        .await
        .expect("server starts")
}

/// A broker, a server watching one county, and its registry: what most tests start with.
pub struct Fixture {
    pub broker: TestBroker,
    pub server: ServerHandle,
    /// The server's config, to start it again on the same data.
    pub cfg: ServerConfig,
    /// The server's data directory, removed when the fixture goes.
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start(
        county: &str,
        registry: Vec<campuswatch_server::registry::RegistryEntry>,
    ) -> Fixture {
        let broker = TestBroker::start().await;
        let dir = tempfile::tempdir().expect("temporary directory");
        let cfg = server_config(dir.path(), &broker.url, county);
        let server = start_server(cfg.clone()).await;
        if !registry.is_empty() {
            server
                .import_registry(registry, false)
                .await
                .expect("registry import");
        }
        Fixture {
            broker,
            server,
            cfg,
            dir,
        }
    }
}

/// Logs to the test's output, filtered by RUST_LOG (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rumqttd=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An alarm device as a TCP probe sees it: a listener that accepts connections, which
/// can be switched off (connections refused) and on again at the same port.
pub struct TcpDevice {
    pub addr: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TcpDevice {
    pub async fn start() -> TcpDevice {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = l.local_addr().expect("local addr");
        let mut d = TcpDevice { addr, task: None };
        d.serve(l);
        d
    }

    fn serve(&mut self, l: TcpListener) {
        self.task = Some(tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                drop(c);
            }
        }));
    }

    /// Stops listening: connections are refused.
    pub fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        if self.task.is_some() {
            return;
        }
        // The aborted listener closes when its task is dropped; retry until the port is free.
        let addr = self.addr;
        let l = wait_for(
            "the device port to be free again",
            Duration::from_secs(20),
            || async move {
                let s = TcpSocket::new_v4().ok()?;
                s.set_reuseaddr(true).ok()?;
                s.bind(addr).ok()?;
                s.listen(64).ok()
            },
        )
        .await;
        self.serve(l);
    }
}

/// A device whose link drops and comes back at random, each state lasting a time drawn
/// from `phase`, until [`FlappingDevice::settle_up`].
pub struct FlappingDevice {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<TcpDevice>,
}

impl FlappingDevice {
    pub async fn start(phase: std::ops::Range<Duration>) -> FlappingDevice {
        let mut device = TcpDevice::start().await;
        let addr = device.addr;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                let hold = rand::random_range(phase.clone());
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(hold) => {}
                }
                if device.task.is_some() {
                    device.down();
                } else {
                    device.up().await;
                }
            }
            device.up().await;
            device
        });
        FlappingDevice { addr, stop, task }
    }

    /// Stops the flapping with the device up, and hands it back.
    pub async fn settle_up(self) -> TcpDevice {
        self.stop.cancel();
        self.task.await.expect("flapping device task")
    }
}

/// GETs JSON from the server's API.
pub async fn get_json(server: &ServerHandle, path: &str) -> serde_json::Value {
    let url = format!("http://{}{}", server.http_addr(), path);
    let resp = reqwest::get(&url).await.expect("API answers");
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.json().await.expect("API returns JSON")
}

/// The value of a Prometheus sample line (`name{labels}`) in the server's `/metrics`.
pub async fn metric(server: &ServerHandle, sample: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{}/metrics", server.http_addr()))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    bench::sample_value(&text, sample)
}

/// Every stored event (device transitions with an agent event id) of a campus, read
/// through `GET /api/v1/events` page by page.
pub async fn all_events(server: &ServerHandle, campus: &str) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    loop {
        let page = get_json(
            server,
            &format!(
                "/api/v1/events?campus={campus}&limit=1000&offset={}",
                all.len()
            ),
        )
        .await;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        let n = events.len();
        all.extend(events);
        if n < 1000 {
            break;
        }
    }
    all.retain(|e| e["event_id"].is_u64());
    all
}

/// What a proxied link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// Bytes flow both ways.
    Pass,
    /// Connections stay open but nothing flows (a frozen or silently cut gateway).
    Freeze,
    /// Every connection is closed at once and new ones are refused (a killed gateway,
    /// or a broker that is down as far as the gateway can tell).
    Cut,
}

/// A TCP proxy in front of the broker, standing for a gateway's network link.
pub struct LinkProxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<LinkMode>>,
}

impl LinkProxy {
    pub async fn start(upstream: SocketAddr) -> LinkProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, _) = watch::channel(LinkMode::Pass);
        let mode = Arc::new(tx);
        let m = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *m.borrow() == LinkMode::Cut {
                    drop(client);
                    continue;
                }
                let rx = m.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = pump(cr, sw, rx.clone()) => {}
                        _ = pump(sr, cw, rx) => {}
                    }
                });
            }
        });
        LinkProxy { addr, mode }
    }

    /// The URL agents use to reach the broker through this link.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    pub fn set(&self, mode: LinkMode) {
        self.mode.send_replace(mode);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<LinkMode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let current = *mode.borrow_and_update();
        match current {
            LinkMode::Cut => return,
            LinkMode::Freeze => {
                if mode.changed().await.is_err() {
                    return;
                }
                continue;
            }
            LinkMode::Pass => {}
        }
        tokio::select! {
            changed = mode.changed() => if changed.is_err() { return },
            n = from.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if to.write_all(&buf[..n]).await.is_err() { return },
            },
        }
    }
}

/// A hand-driven gateway: a plain MQTT client speaking the protocol from
/// docs/PROTOCOL.md, as `mosquitto_pub` would. Used where a test needs exact control
/// over epochs and messages.
pub struct RawGateway {
    pub client: rumqttc::AsyncClient,
    pub campus: campuswatch_protocol::CampusId,
    pub region: campuswatch_protocol::RegionCode,
    pub epoch: u64,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RawGateway {
    /// Connects with the Last Will of `epoch` and waits for the CONNACK.
    pub async fn connect(broker: SocketAddr, campus: &str, region: &str, epoch: u64) -> RawGateway {
        let o = rumqttc::MqttOptions::new(
            format!("cw-{campus}"),
            broker.ip().to_string(),
            broker.port(),
        );
        Self::connect_with(o, campus, region, epoch).await
    }

    /// `connect` with the broker address, client id, credentials and TLS of `o` (for
    /// example from `campuswatch_mqtt::BrokerLogin::options`).
    pub async fn connect_with(
        mut o: rumqttc::MqttOptions,
        campus: &str,
        region: &str,
        epoch: u64,
    ) -> RawGateway {
        use campuswatch_protocol::{CampusId, Death, DeathReason, Message, RegionCode};
        let campus = CampusId::parse(campus).expect("campus id");
        let region = RegionCode::parse(region).expect("region");
        let will = Message::Death(Death {
            v: 1,
            campus: campus.clone(),
            region,
            epoch,
            reason: DeathReason::ConnectionLost,
        });
        o.set_keep_alive(Duration::from_secs(5))
            // As the agent does: on rumqttd a takeover of a clean session breaks the will.
            .set_clean_session(false)
            // Large enough for the oversized payloads of the bad-input tests.
            .set_max_packet_size(1 << 20, 1 << 20)
            .set_last_will(rumqttc::LastWill::new(
                will.topic().to_string(),
                will.encode(),
                rumqttc::QoS::AtLeastOnce,
                false,
            ));
        let (client, mut el) = rumqttc::AsyncClient::new(o, 64);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut tx = Some(tx);
            loop {
                match el.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), rx)
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

    pub async fn publish(&self, msg: &campuswatch_protocol::Message) {
        let qos = match msg {
            campuswatch_protocol::Message::Heartbeat(_) => rumqttc::QoS::AtMostOnce,
            _ => rumqttc::QoS::AtLeastOnce,
        };
        self.client
            .publish(msg.topic().to_string(), qos, false, msg.encode())
            .await
            .expect("publish queued");
    }

    /// Publishes raw bytes on a topic (for bad-input tests).
    pub async fn publish_raw(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish queued");
    }

    /// A birth of this gateway's epoch with the given devices.
    pub fn birth(
        &self,
        devices: Vec<campuswatch_protocol::DeviceReport>,
    ) -> campuswatch_protocol::Message {
        campuswatch_protocol::Message::Birth(campuswatch_protocol::Birth {
            v: 1,
            campus: self.campus.clone(),
            region: self.region,
            epoch: self.epoch,
            at: chrono::Utc::now(),
            agent_version: "raw".into(),
            config_digest: "raw".into(),
            heartbeat_interval_ms: 300,
            last_event_id: 0,
            devices,
            dropped_events: 0,
        })
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
                let hb = bench::heartbeat(&campus, region, epoch, seq, "", 0);
                let _ = client
                    .publish(
                        hb.topic().to_string(),
                        rumqttc::QoS::AtMostOnce,
                        false,
                        hb.encode(),
                    )
                    .await;
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

/// A device report for a birth.
pub fn device(
    id: &str,
    kind: campuswatch_protocol::DeviceKind,
    state: campuswatch_protocol::DeviceState,
) -> campuswatch_protocol::DeviceReport {
    campuswatch_protocol::DeviceReport {
        id: campuswatch_protocol::DeviceId::parse(id).expect("device id"),
        kind,
        probe: "tcp".into(),
        target: "127.0.0.1:9".into(),
        required: kind == campuswatch_protocol::DeviceKind::Alarm,
        state,
        since: Some(chrono::Utc::now()),
        cause: None,
        measurements: Default::default(),
        info: None,
    }
}

/// Registry entries for tests.
pub fn registry_entry(
    id: &str,
    county: &str,
    school_type: campuswatch_protocol::SchoolType,
    alarms: u32,
    cameras: u32,
) -> campuswatch_server::registry::RegistryEntry {
    campuswatch_server::registry::RegistryEntry {
        campus: campuswatch_protocol::CampusId::parse(id).expect("campus id"),
        name: format!("{id} school"),
        region: campuswatch_protocol::RegionCode::parse(county).expect("county"),
        school_type,
        expected_alarms: alarms,
        expected_cameras: cameras,
    }
}

/// A webhook receiver on a free loopback port, as an operator's alerting endpoint would be:
/// it answers 200 to every POST and keeps the JSON bodies, in arrival order.
#[derive(Clone)]
pub struct WebhookSink {
    pub addr: SocketAddr,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let sink = WebhookSink {
            addr: listener.local_addr().expect("local address"),
            bodies: Default::default(),
        };
        let bodies = sink.bodies.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let bodies = bodies.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    // One request per connection: headers, then Content-Length bytes.
                    let (head_end, length) = loop {
                        let Ok(n) = conn.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (i + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let Ok(n) = conn.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = &buf[head_end..head_end + length];
                    if let Ok(v) = serde_json::from_slice(body) {
                        bodies.lock().unwrap_or_else(|p| p.into_inner()).push(v);
                    }
                    let _ = conn
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The `kind` of every notice received so far.
    pub fn kinds(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .filter_map(|b| b["kind"].as_str().map(str::to_string))
            .collect()
    }

    /// A webhook channel posting here, for `ServerConfig::notify.channels`.
    pub fn channel(&self) -> campuswatch_server::config::ChannelConfig {
        use campuswatch_server::config::{ChannelConfig, ChannelKind};
        ChannelConfig {
            min_severity: campuswatch_server::notify::Severity::Info,
            rate_limit: 1000,
            ..ChannelConfig::new("duty", ChannelKind::Webhook, &self.url())
        }
    }
}
