//! Support for the end-to-end tests and benchmarks: a broker (the machine's Mosquitto
//! when `CAMPUSWATCH_TEST_MQTT_URL` says so, else an embedded one on a free port), a
//! server on port 0, a webhook receiver, and reading the server's API. What the agent's
//! and the server's own tests use too (protocol message builders, a gateway driven by
//! hand over MQTT, a TCP proxy that can freeze or cut a gateway's link, TCP devices that
//! go down and up, waiting on conditions with a deadline) is `campuswatch_testkit`'s, and
//! the registry fixture `campuswatch_server::testing`'s; both are re-exported here.

pub mod bench;
pub mod browser;
pub mod deadlink;
pub mod mosquitto;

use std::net::SocketAddr;
use std::time::Duration;

use campuswatch_server::broker::{EmbeddedBroker, EmbeddedBrokerConfig};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::ServerHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub use campuswatch_server::testing::entry as registry_entry;
pub use campuswatch_testkit::{
    birth, death, device, event, heartbeat, inventory, wait_for, wait_until, FlappingDevice,
    LinkMode, LinkProxy, RawGateway, TcpDevice,
};

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
            ..EmbeddedBrokerConfig::default()
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

/// [`agent_config`] of `campus` logging in with `login` (user, password, CA, client
/// certificate), with one alarm device (a local TCP listener that accepts) probed every
/// 200 ms and up after one success.
pub async fn agent_with_login(
    campus: &str,
    county: &str,
    login: &campuswatch_mqtt::BrokerLogin,
    state: &std::path::Path,
) -> campuswatch_agent::AgentConfig {
    let alarm = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = alarm.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((c, _)) = alarm.accept().await {
            drop(c);
        }
    });
    let mut c = agent_config(campus, county, &login.url, state, addr);
    c.mqtt.username = login.username.clone();
    c.mqtt.password = login.password.clone();
    c.mqtt.ca_file = login.ca_file.clone();
    c.mqtt.client_cert_file = login.client_cert_file.clone();
    c.mqtt.client_key_file = login.client_key_file.clone();
    let device = &mut c.devices[0];
    device.interval = Some(Duration::from_millis(200));
    device.timeout = None;
    device.up_after = Some(1);
    c
}

/// The gateway state the API shows for campus `id`.
pub async fn gateway_state(server: &ServerHandle, id: &str) -> String {
    get_json(server, &format!("/api/v1/campuses/{id}")).await["gateway_state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// What an installer does over TLS with a password: the field check must pass with
/// `TLS, user {campus}`; then the agent runs until its campus counts as reporting with
/// its alarm networked, within 20 s.
pub async fn check_and_run_over_tls(
    server: &ServerHandle,
    cfg: campuswatch_agent::AgentConfig,
    county: &str,
) -> Agent {
    cfg.validate().expect("the agent's TLS settings are valid");
    let check = campuswatch_agent::check::check_broker(&cfg).await;
    assert_eq!(
        check.result,
        campuswatch_agent::probe::ProbeStatus::Ok,
        "{check:?}"
    );
    assert_eq!(check.login, format!("TLS, user {}", cfg.campus));
    let campus = cfg.campus.to_string();
    let agent = spawn_agent(cfg);
    wait_for(
        "the campus to count as reporting",
        Duration::from_secs(20),
        || async {
            let c = get_json(server, &format!("/api/v1/coverage?region={county}")).await;
            (c["reporting"] == 1 && c["alarm_networked"] == 1).then_some(())
        },
    )
    .await;
    assert_eq!(gateway_state(server, &campus).await, "online");
    agent
}

/// An agent running in this test's process (`campuswatch_agent::run`), until
/// [`Agent::stop`].
pub struct Agent {
    token: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Starts an agent with `cfg` in this process.
pub fn spawn_agent(cfg: campuswatch_agent::AgentConfig) -> Agent {
    let token = tokio_util::sync::CancellationToken::new();
    let t = token.clone();
    let task = tokio::spawn(async move {
        campuswatch_agent::run(cfg, t).await.expect("agent runs");
    });
    Agent { token, task }
}

impl Agent {
    /// Shuts it down as a signal would, waiting up to 5 s for it to end.
    pub async fn stop(self) {
        self.token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
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
