//! Every value the server writes, it can read back.
//!
//! The regression test for alert rows of kind `video` that the store could write but not
//! parse: `GET /api/v1/alerts?state=all` answered 500, `?kind=video` 400, and a restarted
//! server refused to start ("stored row is corrupt (kind): video").
//!
//! A real server, with gateways played over MQTT, is driven until its store holds an
//! alert of every kind in every state it can take (a flapping and an acknowledged one
//! among them), regional incidents both open and resolved, maintenance windows (one
//! withdrawn) and a notice of every kind, all made by the server's own code: the monitor,
//! the dispatcher (a rate-limited channel's summary) and a cut of the server's link to
//! the broker (monitoring interrupted, then restored). It is stopped and started again on
//! the same database, and every listing and filter of the API is read and compared with
//! what the database held at the stop; the notices left undelivered are delivered by the
//! restarted server. Once on SQLite (the default file in the data directory) and once on
//! PostgreSQL when `CAMPUSWATCH_TEST_DATABASE_URL` names a database (`.ci/run` sets it;
//! without it that half says so and does nothing, with it an unreachable database fails).
//!
//! The kinds, states and filter values come from the code's enums (`ALL`): a variant the
//! scenario does not produce fails the test instead of going unchecked.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use campuswatch_protocol::{
    CampusId, DeathReason, DeviceKind, DeviceState, GatewayState, Message, RegionCode, RegionLevel,
    SchoolType,
};
use campuswatch_server::broker::{EmbeddedBroker, EmbeddedBrokerConfig};
use campuswatch_server::config::{AlertsConfig, ChannelConfig, ChannelKind, ServerConfig};
use campuswatch_server::monitor::{severity_of, AlertKind, AlertState, IncidentState};
use campuswatch_server::notify::{Notice, NoticeKind, Severity};
use campuswatch_server::registry::RegistryEntry;
use campuswatch_server::testing::{self, TestSchema};
use campuswatch_server::ServerHandle;
use campuswatch_testkit::{
    birth, death, device, event, heartbeat, wait_until, LinkMode, LinkProxy,
};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::net::TcpListener;

/// Bound for anything that takes milliseconds to a few seconds on loopback.
const DEADLINE: Duration = Duration::from_secs(30);

/// Device alerts of every kind and state, and the flapping and acknowledged alert.
const COUNTY_DEVICES: &str = "150102";
/// Two gateways that drop together and come back: a resolved incident.
const COUNTY_BACK: &str = "150103";
/// Two gateways that drop together and stay down: an open incident.
const COUNTY_DOWN: &str = "150104";
/// A gateway that stops sending heartbeats: stale.
const COUNTY_STALE: &str = "150105";

/// Heartbeat interval of the gateways that stay online: far longer than the test.
const SLOW_HEARTBEAT_MS: u64 = 60_000;
/// Heartbeat interval of the gateway that goes stale after three missed ones.
const FAST_HEARTBEAT_MS: u64 = 200;

// ---------------------------------------------------------------------------------------
// The names of the code's enums

/// For each enum with fixed names: serde's JSON name is `as_str()`, `parse` reads it back,
/// `ALL` has no repeats and `choices()` names every variant.
macro_rules! check_names {
    ($($t:ty),+ $(,)?) => {$({
        let all = <$t>::ALL;
        assert!(!all.is_empty(), "{} has variants", stringify!($t));
        let names: BTreeSet<&str> = all.iter().map(|v| v.as_str()).collect();
        assert_eq!(names.len(), all.len(), "{}: names repeat", stringify!($t));
        for v in all.iter().copied() {
            let name = v.as_str();
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                Value::String(name.to_string()),
                "{}::{v:?}: serde's name is not as_str()", stringify!($t)
            );
            assert_eq!(
                serde_json::from_value::<$t>(Value::String(name.to_string())).unwrap(),
                v,
                "{}::{v:?}: serde does not read {name:?}", stringify!($t)
            );
            assert_eq!(<$t>::parse(name), Some(v), "{}::parse({name:?})", stringify!($t));
            assert_eq!(v.to_string(), name, "{}::{v:?} displays as its name", stringify!($t));
            assert!(
                <$t>::choices().contains(name),
                "{}::choices() = {:?} leaves out {name:?}", stringify!($t), <$t>::choices()
            );
        }
        assert_eq!(<$t>::parse("no-such-name"), None);
        assert_eq!(<$t>::parse(""), None);
    })+};
}

#[test]
fn every_named_variant_round_trips_through_serde_and_parse() {
    check_names!(AlertKind, AlertState, IncidentState, Severity, NoticeKind);
}

#[test]
fn the_documented_names_are_the_codes() {
    let doc: Value = serde_json::from_str(include_str!("../../docs/openapi.json"))
        .expect("docs/openapi.json is JSON");
    let documented = |schema: &str| -> Vec<String> {
        doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("docs/openapi.json: schema {schema} has an enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<String> {
        all.iter().map(|v| name(*v).to_string()).collect()
    }
    assert_eq!(
        documented("AlertKind"),
        names(AlertKind::ALL, AlertKind::as_str)
    );
    assert_eq!(
        documented("AlertState"),
        names(AlertState::ALL, AlertState::as_str)
    );
    assert_eq!(
        documented("IncidentState"),
        names(IncidentState::ALL, IncidentState::as_str)
    );
    assert_eq!(
        documented("Severity"),
        names(Severity::ALL, Severity::as_str)
    );
    // The state filters: every state, and `all`.
    for (path, all) in [
        ("/api/v1/alerts", names(AlertState::ALL, AlertState::as_str)),
        (
            "/api/v1/incidents",
            names(IncidentState::ALL, IncidentState::as_str),
        ),
    ] {
        let params = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has parameters"));
        let state = params
            .iter()
            .find(|p| p["name"] == "state")
            .unwrap_or_else(|| panic!("{path} documents state"));
        let got: BTreeSet<&str> = state["schema"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let want: BTreeSet<&str> = all.iter().map(String::as_str).chain(["all"]).collect();
        assert_eq!(got, want, "{path}: the documented state filter");
    }
    // The notice kinds, as docs/notifications.md lists them for the webhook's `kind`.
    let notifications = include_str!("../../docs/notifications.md");
    let line = notifications
        .lines()
        .find(|l| l.starts_with("| `kind` |"))
        .expect("docs/notifications.md documents the webhook's kind");
    let listed: BTreeSet<&str> = line.split('`').skip(3).step_by(2).collect();
    let kinds: BTreeSet<&str> = NoticeKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(listed, kinds, "docs/notifications.md: {line}");
}

// ---------------------------------------------------------------------------------------
// The database, looked at directly

/// One of the two stores, and a way to read it that does not go through the server's
/// code (which is what is tested).
struct Db {
    /// `database.url` for the server: empty (the default SQLite file) or PostgreSQL.
    config_url: String,
    _schema: Option<TestSchema>,
}

impl Db {
    fn sqlite() -> Db {
        Db {
            config_url: String::new(),
            _schema: None,
        }
    }

    async fn postgres() -> Option<Db> {
        let schema = TestSchema::new("cw_readback", "the PostgreSQL half of this test").await?;
        Some(Db {
            config_url: schema.url(),
            _schema: Some(schema),
        })
    }
}

/// The first column of every row of `sql` as text, read with sqlx directly.
async fn texts(url: &str, sql: &str) -> Vec<String> {
    if url.starts_with("sqlite:") {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .create_if_missing(false);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        sqlx::query_scalar(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    } else {
        let mut conn = testing::connect(url).await;
        sqlx::query_scalar(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// An alert as the database holds it, or as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AlertRow {
    campus: String,
    /// Empty for the gateway and the campus's video.
    device: String,
    kind: String,
    state: String,
    severity: String,
    flapping: bool,
    /// Empty when not acknowledged.
    acked_by: String,
    /// 0 in the scenario's expectations, which cannot know ids.
    id: u64,
}

impl AlertRow {
    fn expected(campus: &str, device: &str, kind: AlertKind, state: AlertState) -> AlertRow {
        AlertRow {
            campus: campus.into(),
            device: device.into(),
            kind: kind.as_str().into(),
            state: state.as_str().into(),
            severity: severity_of(kind).as_str().into(),
            flapping: false,
            acked_by: String::new(),
            id: 0,
        }
    }

    fn without_id(&self) -> AlertRow {
        AlertRow {
            id: 0,
            ..self.clone()
        }
    }

    fn from_api(a: &Value) -> AlertRow {
        let text = |k: &str| a[k].as_str().unwrap_or_default().to_string();
        AlertRow {
            campus: text("campus"),
            device: text("device"),
            kind: text("kind"),
            state: text("state"),
            severity: text("severity"),
            flapping: a["flapping"].as_bool().expect("flapping is a boolean"),
            acked_by: a["acknowledged"]["by"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            id: a["id"].as_u64().expect("an alert id"),
        }
    }
}

async fn stored_alerts(url: &str) -> Vec<AlertRow> {
    let rows = texts(
        url,
        "SELECT CAST(id AS TEXT) || '|' || campus || '|' || COALESCE(device, '') || '|' || kind
           || '|' || state || '|' || severity || '|'
           || CASE WHEN flapping THEN 'flapping' ELSE '' END || '|' || COALESCE(acked_by, '')
         FROM alerts ORDER BY id",
    )
    .await;
    let mut alerts: Vec<AlertRow> = rows
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.splitn(8, '|').collect();
            AlertRow {
                id: f[0].parse().unwrap(),
                campus: f[1].into(),
                device: f[2].into(),
                kind: f[3].into(),
                state: f[4].into(),
                severity: f[5].into(),
                flapping: f[6] == "flapping",
                acked_by: f[7].into(),
            }
        })
        .collect();
    alerts.sort();
    alerts
}

/// A regional incident: its county, state, campuses and how many of its alerts are open.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct IncidentRow {
    region: String,
    state: String,
    campuses: BTreeSet<String>,
    open_alerts: usize,
}

async fn stored_incidents(url: &str) -> Vec<IncidentRow> {
    let rows = texts(
        url,
        "SELECT region || '|' || state || '|' || open_alerts || '|' || campuses FROM incidents",
    )
    .await;
    let mut incidents: Vec<IncidentRow> = rows
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.splitn(4, '|').collect();
            IncidentRow {
                region: f[0].into(),
                state: f[1].into(),
                open_alerts: serde_json::from_str::<Vec<u64>>(f[2]).unwrap().len(),
                campuses: serde_json::from_str(f[3]).unwrap(),
            }
        })
        .collect();
    incidents.sort();
    incidents
}

/// Every stored notice, checked to be readable: its kind and severity columns are names
/// the code parses, and its body is a `Notice` that says the same.
async fn stored_notices(url: &str) -> Vec<Notice> {
    let heads = texts(
        url,
        "SELECT id || '|' || kind || '|' || severity FROM notices ORDER BY id",
    )
    .await;
    let bodies = texts(url, "SELECT body FROM notices ORDER BY id").await;
    assert_eq!(heads.len(), bodies.len());
    heads
        .iter()
        .zip(&bodies)
        .map(|(head, body)| {
            let f: Vec<&str> = head.splitn(3, '|').collect();
            let kind = NoticeKind::parse(f[1])
                .unwrap_or_else(|| panic!("notice {}: kind {:?} does not parse", f[0], f[1]));
            let severity = Severity::parse(f[2])
                .unwrap_or_else(|| panic!("notice {}: severity {:?} does not parse", f[0], f[2]));
            let n: Notice = serde_json::from_str(body).unwrap_or_else(|e| {
                panic!("notice {}: the body does not parse: {e}\n{body}", f[0])
            });
            assert_eq!(n.id, f[0]);
            assert_eq!(n.kind, kind, "notice {}: the body's kind", n.id);
            assert_eq!(n.severity, severity, "notice {}: the body's severity", n.id);
            n
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Peers: gateways, the broker link, a webhook receiver

/// A campus gateway played by a plain MQTT client, talking to the broker directly.
struct Gateway {
    campus: CampusId,
    region: RegionCode,
    client: rumqttc::AsyncClient,
    devices: Vec<campuswatch_protocol::DeviceReport>,
    heartbeat_ms: u64,
    last_event: u64,
}

impl Gateway {
    async fn connect(
        broker: SocketAddr,
        campus: &str,
        region: &str,
        devices: &[(&str, DeviceKind)],
        heartbeat_ms: u64,
    ) -> Gateway {
        let client = common::mqtt_client(broker, &format!("readback-{campus}"), 64);
        Gateway {
            campus: CampusId::parse(campus).unwrap(),
            region: RegionCode::parse(region).unwrap(),
            client,
            devices: devices
                .iter()
                .map(|(id, kind)| device(id, *kind, DeviceState::Up))
                .collect(),
            heartbeat_ms,
            last_event: 0,
        }
    }

    /// A birth of session `epoch` with every device up, and a first heartbeat.
    async fn born(&self, epoch: u64) {
        let mut born = birth(&self.campus, self.region, epoch, self.devices.clone());
        if let Message::Birth(b) = &mut born {
            b.heartbeat_interval_ms = self.heartbeat_ms;
        }
        common::publish(&self.client, &born).await;
        let states = "U".repeat(self.devices.len());
        let first = heartbeat(&self.campus, self.region, epoch, 1, &states, 0);
        common::publish(&self.client, &first).await;
    }

    /// Born until the server has seen it: a birth published before the server subscribed
    /// is gone, so it is published again until it lands.
    async fn appear(&self, server: &ServerHandle) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.born(1).await;
            let again = Instant::now() + Duration::from_secs(2);
            while Instant::now() < again {
                if gateway_state(server, self.campus.as_str()) != GatewayState::NeverSeen {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(
                Instant::now() < deadline,
                "the server never saw gateway {}",
                self.campus
            );
        }
    }

    /// The agent reports `device` down or up (the next event of session 1).
    async fn report(&mut self, device: &str, up: bool) {
        let kind = self
            .devices
            .iter()
            .find(|d| d.id.as_str() == device)
            .map(|d| d.kind)
            .expect("a device of the gateway");
        self.last_event += 1;
        let (from, to) = if up {
            (DeviceState::Down, DeviceState::Up)
        } else {
            (DeviceState::Up, DeviceState::Down)
        };
        let change = event(
            &self.campus,
            self.region,
            1,
            self.last_event,
            device,
            kind,
            (from, to),
        );
        common::publish(&self.client, &change).await;
    }

    /// The session ends: its Last Will, as the broker would publish it.
    async fn die(&self) {
        let will = death(&self.campus, self.region, 1, DeathReason::ConnectionLost);
        common::publish(&self.client, &will).await;
    }
}

fn gateway_state(server: &ServerHandle, campus: &str) -> GatewayState {
    let m = server.monitor.read().unwrap();
    m.campus(campus)
        .map_or(GatewayState::NeverSeen, |c| c.gateway.state)
}

/// A webhook receiver for two channels (`/ops`, `/burst`): refuses everything (503) until
/// `accept`, then records the channel and notice id of each request.
struct Receiver {
    addr: SocketAddr,
    accept: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let accept = Arc::new(AtomicBool::new(false));
        let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (accepting, seen) = (accept.clone(), got.clone());
        let app = axum::Router::new().route(
            "/{channel}",
            axum::routing::post(
                move |axum::extract::Path(channel): axum::extract::Path<String>,
                      headers: axum::http::HeaderMap| {
                    let (accepting, seen) = (accepting.clone(), seen.clone());
                    async move {
                        if !accepting.load(Ordering::SeqCst) {
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let id = headers
                            .get("Idempotency-Key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("(none)")
                            .to_string();
                        seen.lock().unwrap().push((channel, id));
                        axum::http::StatusCode::OK
                    }
                },
            ),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, accept, got }
    }

    /// The notice ids delivered to `channel`.
    fn delivered(&self, channel: &str) -> BTreeSet<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == channel)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The server

fn config(dir: &Path, database_url: &str, broker_url: &str, hook: SocketAddr) -> ServerConfig {
    let mut cfg = common::local_config(dir);
    cfg.id = "readback".into();
    cfg.database.url = database_url.to_string();
    cfg.mqtt.url = broker_url.to_string();
    cfg.liveness.check_interval = Duration::from_millis(50);
    cfg.alerts = AlertsConfig {
        // Links are alerts at once, so that none is still waiting when the server stops.
        hold_down_gateway: Duration::ZERO,
        hold_down_alarm: Duration::ZERO,
        hold_down_camera: Duration::ZERO,
        // Down, up, down, up, down: flapping; no other link changes that often.
        flap_changes: 4,
        // Two gateways of a county that drop together are one incident: published back
        // to back, they arrive well within this even on a busy machine.
        group_wait: Duration::from_secs(2),
        incident_min_gateways: 2,
        monitoring_grace: Duration::from_millis(200),
        ..AlertsConfig::default()
    };
    cfg.notify.retry_initial = Duration::from_millis(50);
    cfg.notify.retry_max = Duration::from_millis(200);
    cfg.notify.poll_interval = Duration::from_millis(200);
    let hook = |channel: &str, rate_limit: u32| ChannelConfig {
        min_severity: Severity::Info,
        rate_limit,
        ..ChannelConfig::new(
            channel,
            ChannelKind::Webhook,
            &format!("http://{hook}/{channel}"),
        )
    };
    cfg.notify.channels = vec![
        // Every notice.
        hook("ops", 10_000),
        // One a minute: the rest is folded into a summary (the dispatcher's notice).
        hook("burst", 1),
    ];
    cfg.validate("the readback test's config")
        .expect("the test's config is valid");
    cfg
}

async fn start(cfg: &ServerConfig) -> Result<ServerHandle, campuswatch_server::ServerError> {
    init_logging();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    campuswatch_server::start(cfg.clone(), listener).await
}

/// The server's log in the test's output, by RUST_LOG (default: errors only; the refused
/// deliveries of the first run are warnings).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,rumqttd=off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Looks until `done` holds for what `look` returns, and returns that; after the deadline,
/// panics with the last look.
async fn wait_for<T: std::fmt::Debug>(
    what: &str,
    mut look: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = look().await;
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the last look:\n{seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Status and JSON body of `GET path`.
async fn get(http: &reqwest::Client, server: &ServerHandle, path: &str) -> (u16, Value) {
    let url = format!("http://{}{path}", server.http_addr());
    let resp = http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The JSON of `GET path`, which must answer 200.
async fn get_ok(http: &reqwest::Client, server: &ServerHandle, path: &str) -> Value {
    let (status, body) = get(http, server, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// `GET path` must answer 400 with an error that names every one of `accepted`.
async fn refused(http: &reqwest::Client, server: &ServerHandle, path: &str, accepted: &[&str]) {
    let (status, body) = get(http, server, path).await;
    assert_eq!(status, 400, "GET {path}: {body}");
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("GET {path}: no error message in {body}"));
    for name in accepted {
        assert!(
            error.contains(name),
            "GET {path}: the error {error:?} does not name {name:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The scenario

fn registry() -> Vec<RegistryEntry> {
    vec![
        common::registry_entry("a-down", COUNTY_DEVICES, SchoolType::Kindergarten, 2, 3),
        common::registry_entry("a-dark", COUNTY_DEVICES, SchoolType::Primary, 1, 3),
        common::registry_entry("a-back", COUNTY_DEVICES, SchoolType::Secondary, 1, 3),
        common::registry_entry("a-never", COUNTY_DEVICES, SchoolType::Other, 1, 1),
        common::registry_entry("b-1", COUNTY_BACK, SchoolType::Primary, 1, 0),
        common::registry_entry("b-2", COUNTY_BACK, SchoolType::Primary, 1, 0),
        common::registry_entry("c-1", COUNTY_DOWN, SchoolType::Kindergarten, 1, 0),
        common::registry_entry("c-2", COUNTY_DOWN, SchoolType::Secondary, 1, 0),
        common::registry_entry("d-stale", COUNTY_STALE, SchoolType::Other, 1, 0),
        // Campuses whose video the GB/T 28181 platform sees: an NVR that leaves, one
        // that leaves and comes back.
        common::registry_entry("g-gone", COUNTY_DEVICES, SchoolType::Primary, 1, 1)
            .with_gb(&[NVR_GONE]),
        common::registry_entry("g-back", COUNTY_DEVICES, SchoolType::Primary, 1, 1)
            .with_gb(&[NVR_BACK]),
    ]
}

/// The GB/T 28181 NVRs of g-gone and g-back.
const NVR_GONE: &str = "15010200001180000001";
const NVR_BACK: &str = "15010200001180000002";

/// Each campus's gateway state at the end of the scenario.
fn gateway_states() -> BTreeMap<&'static str, GatewayState> {
    use GatewayState::*;
    BTreeMap::from([
        ("a-down", Online),
        ("a-dark", Offline),
        ("a-back", Online),
        ("a-never", NeverSeen),
        // Reports without being registered.
        ("x-unreg", Online),
        ("b-1", Online),
        ("b-2", Online),
        ("c-1", Offline),
        ("c-2", Offline),
        ("d-stale", Stale),
        // No agent: their video is seen by the GB/T 28181 platform only.
        ("g-gone", NeverSeen),
        ("g-back", NeverSeen),
    ])
}

/// The alerts the scenario makes.
fn expected_alerts() -> Vec<AlertRow> {
    use AlertKind::*;
    use AlertState::*;
    let a = AlertRow::expected;
    let mut acked = a("a-down", "alarm-1", Alarm, Open);
    acked.acked_by = "duty officer".into();
    let mut flapping = a("a-down", "alarm-2", Alarm, Open);
    flapping.flapping = true;
    let mut rows = vec![
        // Online, with an alarm link and so its alarm networking down, two of three
        // cameras and so its video down, and an alarm link that went down and up twice
        // before staying down (flapping).
        acked,
        a("a-down", "alarm-2", Alarm, Resolved),
        a("a-down", "alarm-2", Alarm, Resolved),
        flapping,
        a("a-down", "cam-1", Camera, Open),
        a("a-down", "cam-2", Camera, Open),
        a("a-down", "", Video, Open),
        a("a-down", "", AlarmNetworking, Open),
        // The same, then its gateway dropped: its gateway's alert speaks for it.
        a("a-dark", "", Gateway, Open),
        a("a-dark", "alarm-1", Alarm, Suppressed),
        a("a-dark", "cam-1", Camera, Suppressed),
        a("a-dark", "cam-2", Camera, Suppressed),
        a("a-dark", "", Video, Suppressed),
        a("a-dark", "", AlarmNetworking, Suppressed),
        // The same links down, then back.
        a("a-back", "alarm-1", Alarm, Resolved),
        a("a-back", "cam-1", Camera, Resolved),
        a("a-back", "cam-2", Camera, Resolved),
        a("a-back", "", Video, Resolved),
        a("a-back", "", AlarmNetworking, Resolved),
        // A regional incident that is over, one that is not, and a stale gateway.
        a("b-1", "", Gateway, Resolved),
        a("b-2", "", Gateway, Resolved),
        a("c-1", "", Gateway, Open),
        a("c-2", "", Gateway, Open),
        a("d-stale", "", Gateway, Open),
        // The GB/T 28181 devices: one offline (and with it its campus's video, by the
        // platform's view), one back.
        a("g-gone", NVR_GONE, GbDevice, Open),
        a("g-gone", "", Video, Open),
        a("g-back", NVR_BACK, GbDevice, Resolved),
    ];
    rows.sort();
    rows
}

fn expected_incidents() -> Vec<IncidentRow> {
    let campuses = |a: &str, b: &str| BTreeSet::from([a.to_string(), b.to_string()]);
    let mut rows = vec![
        IncidentRow {
            region: COUNTY_BACK.into(),
            state: IncidentState::Resolved.as_str().into(),
            campuses: campuses("b-1", "b-2"),
            open_alerts: 0,
        },
        IncidentRow {
            region: COUNTY_DOWN.into(),
            state: IncidentState::Open.as_str().into(),
            campuses: campuses("c-1", "c-2"),
            open_alerts: 2,
        },
    ];
    rows.sort();
    rows
}

/// Whether `kind` can be in `state`: a gateway's own alert is never suppressed (it is
/// what suppresses the others), nor is a GB/T 28181 device's (the platform hears it
/// whatever the gateway); a channel's status and a platform alarm are history, never
/// alerts.
fn possible(kind: AlertKind, state: AlertState) -> bool {
    match kind {
        AlertKind::Gateway | AlertKind::GbDevice => state != AlertState::Suppressed,
        AlertKind::GbChannel | AlertKind::GbAlarm => false,
        _ => true,
    }
}

#[test]
fn the_scenario_makes_every_kind_of_alert_in_every_state_and_every_incident_state() {
    let rows = expected_alerts();
    for kind in AlertKind::ALL.iter().copied() {
        for state in AlertState::ALL.iter().copied() {
            let made = rows
                .iter()
                .any(|r| r.kind == kind.as_str() && r.state == state.as_str());
            assert_eq!(
                made,
                possible(kind, state),
                "an alert of kind {kind} in state {state}: add it to the scenario (or say \
                 why it cannot exist)"
            );
        }
    }
    let severities: BTreeSet<String> = rows.iter().map(|r| r.severity.clone()).collect();
    for kind in AlertKind::ALL.iter().copied() {
        assert!(severities.contains(severity_of(kind).as_str()));
    }
    for state in IncidentState::ALL.iter().copied() {
        assert!(
            expected_incidents()
                .iter()
                .any(|i| i.state == state.as_str()),
            "an incident in state {state}"
        );
    }
}

/// What the first run leaves behind, read from the database after it stopped.
struct Written {
    alerts: Vec<AlertRow>,
    incidents: Vec<IncidentRow>,
    notices: Vec<Notice>,
    transitions: Vec<String>,
    /// The maintenance windows in force, as the API answered their planning, and the id
    /// of the one withdrawn.
    windows: Vec<Value>,
    withdrawn: u64,
}

/// Drives a server on `cfg`'s database through the scenario, and stops it.
async fn write_everything(cfg: &ServerConfig, broker: SocketAddr, link: &LinkProxy) -> Written {
    let url = cfg.database_url();
    let server = start(cfg).await.expect("the server starts");
    let http = reqwest::Client::new();
    server
        .import_registry(registry(), false)
        .await
        .expect("the registry imports");

    // The server loses its broker for longer than `monitoring_grace`, then gets it back.
    let broker_connected = |s: &ServerHandle| s.metrics.broker_connected.load(Ordering::Relaxed);
    wait_until("the server to reach the broker", DEADLINE, async || {
        broker_connected(&server)
    })
    .await;
    link.set(LinkMode::Cut);
    let notice_kinds = async || texts(&url, "SELECT kind FROM notices").await;
    wait_until(
        "the operators to be told monitoring is interrupted",
        DEADLINE,
        async || {
            notice_kinds()
                .await
                .iter()
                .any(|k| k == "monitoring_degraded")
        },
    )
    .await;
    link.set(LinkMode::Pass);
    wait_until(
        "the operators to be told monitoring is back",
        DEADLINE,
        async || {
            notice_kinds()
                .await
                .iter()
                .any(|k| k == "monitoring_restored")
        },
    )
    .await;

    // Every gateway reports, with every device up.
    let alarms_and_cameras: &[(&str, DeviceKind)] = &[
        ("alarm-1", DeviceKind::Alarm),
        ("cam-1", DeviceKind::Camera),
        ("cam-2", DeviceKind::Camera),
        ("cam-3", DeviceKind::Camera),
    ];
    let alarm_only: &[(&str, DeviceKind)] = &[("alarm-1", DeviceKind::Alarm)];
    let mut a_down_devices = alarms_and_cameras.to_vec();
    a_down_devices.push(("alarm-2", DeviceKind::Alarm));
    let slow = SLOW_HEARTBEAT_MS;
    let mut a_down =
        Gateway::connect(broker, "a-down", COUNTY_DEVICES, &a_down_devices, slow).await;
    let mut a_dark =
        Gateway::connect(broker, "a-dark", COUNTY_DEVICES, alarms_and_cameras, slow).await;
    let mut a_back =
        Gateway::connect(broker, "a-back", COUNTY_DEVICES, alarms_and_cameras, slow).await;
    let x_unreg = Gateway::connect(broker, "x-unreg", COUNTY_DEVICES, alarm_only, slow).await;
    let b: Vec<Gateway> = [
        Gateway::connect(broker, "b-1", COUNTY_BACK, alarm_only, slow).await,
        Gateway::connect(broker, "b-2", COUNTY_BACK, alarm_only, slow).await,
    ]
    .into();
    let c: Vec<Gateway> = [
        Gateway::connect(broker, "c-1", COUNTY_DOWN, alarm_only, slow).await,
        Gateway::connect(broker, "c-2", COUNTY_DOWN, alarm_only, slow).await,
    ]
    .into();
    let d_stale = Gateway::connect(
        broker,
        "d-stale",
        COUNTY_STALE,
        alarm_only,
        FAST_HEARTBEAT_MS,
    )
    .await;
    for g in [&a_down, &a_dark, &a_back, &x_unreg]
        .into_iter()
        .chain(&b)
        .chain(&c)
    {
        g.appear(&server).await;
    }
    wait_until("every gateway online", DEADLINE, async || {
        gateway_states()
            .iter()
            .filter(|(_, s)| **s == GatewayState::Online)
            .all(|(c, _)| gateway_state(&server, c) == GatewayState::Online)
    })
    .await;
    // Sends no more heartbeats: stale after three intervals.
    d_stale.appear(&server).await;

    // Device links drop; on a-back they come back; alarm-2 of a-down flaps.
    for g in [&mut a_down, &mut a_dark, &mut a_back] {
        g.report("alarm-1", false).await;
        g.report("cam-1", false).await;
        g.report("cam-2", false).await;
    }
    for up in [false, true, false, true, false] {
        a_down.report("alarm-2", up).await;
    }
    a_back.report("alarm-1", true).await;
    a_back.report("cam-1", true).await;
    a_back.report("cam-2", true).await;
    // a-dark's device alerts open before its gateway drops and suppresses them.
    wait_until("a-dark's device alerts", DEADLINE, async || {
        let m = server.monitor.read().unwrap();
        m.active_alerts()
            .filter(|a| a.campus.as_str() == "a-dark" && a.state == AlertState::Open)
            .count()
            == 5
    })
    .await;
    a_dark.die().await;

    // Two counties' gateways drop together: two incidents; one county's come back.
    for g in b.iter().chain(&c) {
        g.die().await;
    }
    wait_until("the regional incidents", DEADLINE, async || {
        stored_incidents(&url).await.len() == 2
    })
    .await;
    for g in &b {
        g.born(2).await;
    }

    // GB/T 28181: two NVRs register and answer their catalogs (a channel OFF, and an
    // alarm); one leaves, the other leaves and comes back.
    {
        use campuswatch_server::gb28181::{AlarmInfo, GbInput};
        use campuswatch_server::testing::{
            gb_catalog, gb_code as code, gb_registered as registered,
        };
        let left = |d: &str| GbInput::Unregistered { device: code(d) };
        for input in [
            registered(NVR_GONE),
            registered(NVR_BACK),
            gb_catalog(NVR_GONE, &[("15010200001320000001", false)]),
            GbInput::Alarm {
                device: code(NVR_GONE),
                alarm: AlarmInfo {
                    source: code(NVR_GONE),
                    priority: Some(1),
                    method: Some(2),
                    alarm_type: None,
                    time: None,
                    description: Some("一键报警".into()),
                },
            },
            left(NVR_GONE),
            left(NVR_BACK),
            registered(NVR_BACK),
        ] {
            server.gb_input(input).await;
        }
    }

    // An operator acknowledges a-down's alarm alert.
    let (_, open) = get(
        &http,
        &server,
        "/api/v1/alerts?state=open&campus=a-down&kind=alarm",
    )
    .await;
    let acked = open["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["device"] == "alarm-1")
        .and_then(|a| a["id"].as_u64())
        .unwrap_or_else(|| panic!("a-down's alarm-1 alert is open: {open}"));
    let ack = http
        .post(format!(
            "http://{}/api/v1/alerts/{acked}/ack",
            server.http_addr()
        ))
        .json(&json!({"by": "duty officer", "comment": "technician called"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ack.status(),
        200,
        "{}",
        ack.text().await.unwrap_or_default()
    );

    // Maintenance: a campus's one-off window, a device's daily one, and a region's,
    // withdrawn.
    let tomorrow = chrono::Utc::now() + chrono::TimeDelta::days(1);
    let today = chrono::Utc::now().date_naive();
    let mut windows = Vec::new();
    for body in [
        json!({
            "scope": "campus", "campus": "a-back",
            "schedule": {"repeat": "once", "start": tomorrow, "end": tomorrow + chrono::TimeDelta::hours(2)},
            "comment": "network upgrade", "created_by": "county office"
        }),
        json!({
            "scope": "device", "campus": "a-back", "device": "cam-3",
            "schedule": {"repeat": "daily", "at": "22:00:00", "minutes": 540,
                         "weekdays": ["Mon", "Fri"], "from": today,
                         "until": today + chrono::TimeDelta::days(30)},
            "utc_offset_minutes": 480, "created_by": "kindergarten office"
        }),
        json!({
            "scope": "region", "region": COUNTY_STALE,
            "schedule": {"repeat": "once", "start": tomorrow, "end": tomorrow + chrono::TimeDelta::hours(1)},
            "created_by": "city office"
        }),
    ] {
        let resp = http
            .post(format!("http://{}/api/v1/maintenance", server.http_addr()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            201,
            "{}",
            resp.text().await.unwrap_or_default()
        );
        windows.push(resp.json::<Value>().await.unwrap());
    }
    let withdrawn = windows[2]["id"].as_u64().expect("a window id");
    let resp = http
        .delete(format!(
            "http://{}/api/v1/maintenance/{withdrawn}",
            server.http_addr()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    // Everything is in the store.
    let want = expected_alerts();
    wait_for(
        "the scenario's alerts in the store",
        async || without_ids(&stored_alerts(&url).await),
        |stored| stored == &want,
    )
    .await;
    let want = expected_incidents();
    wait_for(
        "the scenario's incidents in the store",
        async || stored_incidents(&url).await,
        |stored| stored == &want,
    )
    .await;
    let every_kind: BTreeSet<String> = NoticeKind::ALL.iter().map(|k| k.to_string()).collect();
    wait_for(
        "a notice of every kind in the store",
        async || notice_kinds().await.into_iter().collect::<BTreeSet<_>>(),
        |told| told == &every_kind,
    )
    .await;

    server.stop().await;
    Written {
        alerts: stored_alerts(&url).await,
        incidents: stored_incidents(&url).await,
        notices: stored_notices(&url).await,
        transitions: texts(&url, "SELECT kind FROM transitions").await,
        windows: windows[..2].to_vec(),
        withdrawn,
    }
}

fn without_ids(alerts: &[AlertRow]) -> Vec<AlertRow> {
    let mut rows: Vec<AlertRow> = alerts.iter().map(AlertRow::without_id).collect();
    rows.sort();
    rows
}

/// The filter values of a listing: none, then each name.
fn filters<'a>(
    extra: &[&'a str],
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<Option<&'a str>> {
    std::iter::once(None)
        .chain(extra.iter().map(|e| Some(*e)))
        .chain(names.into_iter().map(Some))
        .collect()
}

fn query(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let mut q: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();
    q.sort();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// Reads every listing and filter of the restarted server's API, compared with what was
/// stored when the first run stopped.
async fn read_everything_back(server: &ServerHandle, written: &Written) {
    let http = reqwest::Client::new();
    let http = &http;

    // Alerts: every state filter (each state, `all`, none) with every kind filter.
    let alert_states = filters(&["all"], AlertState::ALL.iter().map(|s| s.as_str()));
    let alert_kinds = filters(&[], AlertKind::ALL.iter().map(|k| k.as_str()));
    for state in &alert_states {
        for kind in &alert_kinds {
            let path = query(
                "/api/v1/alerts",
                &[("state", *state), ("kind", *kind), ("limit", Some("1000"))],
            );
            let body = get_ok(http, server, &path).await;
            let listed = body["alerts"].as_array().expect("alerts");
            let mut got: Vec<AlertRow> = listed.iter().map(AlertRow::from_api).collect();
            got.sort();
            let want: Vec<AlertRow> = written
                .alerts
                .iter()
                .filter(|a| state.is_none_or(|s| s == "all" || a.state == s))
                .filter(|a| kind.is_none_or(|k| a.kind == k))
                .cloned()
                .collect();
            assert_eq!(got, want, "GET {path}");
            for a in listed {
                let kind: AlertKind = serde_json::from_value(a["kind"].clone()).unwrap();
                let severity: Severity = serde_json::from_value(a["severity"].clone()).unwrap();
                assert_eq!(severity, severity_of(kind), "GET {path}: {a}");
                let registered = a["campus"] != "x-unreg";
                assert_eq!(a["campus_name"].is_string(), registered, "GET {path}: {a}");
            }
            // Newest first.
            let since: Vec<chrono::DateTime<chrono::FixedOffset>> = listed
                .iter()
                .map(|a| {
                    chrono::DateTime::parse_from_rfc3339(a["since"].as_str().unwrap()).unwrap()
                })
                .collect();
            assert!(
                since.windows(2).all(|w| w[0] >= w[1]),
                "GET {path}: order {since:?}"
            );
        }
    }
    // Pages of the whole history add up to it.
    let all = get_ok(http, server, "/api/v1/alerts?state=all&limit=1000").await;
    let mut paged = Vec::new();
    for offset in (0..written.alerts.len() + 4).step_by(4) {
        let page = get_ok(
            http,
            server,
            &format!("/api/v1/alerts?state=all&limit=4&offset={offset}"),
        )
        .await;
        paged.extend(page["alerts"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(&Value::Array(paged), &all["alerts"], "paged alerts");
    refused(
        http,
        server,
        "/api/v1/alerts?state=no-such-state",
        &[AlertState::choices().as_str(), "all"],
    )
    .await;
    refused(
        http,
        server,
        "/api/v1/alerts?kind=no-such-kind",
        &[AlertKind::choices().as_str()],
    )
    .await;

    // Events: every kind filter, each answering exactly the stored transitions of its kind
    // (a campus's video is not a link of its own and has none).
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &written.transitions {
        *per_kind.entry(k.as_str()).or_default() += 1;
    }
    assert!(
        written.transitions.len() < 1000,
        "one page holds every event"
    );
    for kind in filters(&[], AlertKind::ALL.iter().map(|k| k.as_str())) {
        let path = query("/api/v1/events", &[("kind", kind), ("limit", Some("1000"))]);
        let body = get_ok(http, server, &path).await;
        let events = body["events"].as_array().expect("events");
        let want = match kind {
            Some(k) => per_kind.get(k).copied().unwrap_or(0),
            None => written.transitions.len(),
        };
        assert_eq!(events.len(), want, "GET {path}");
        for e in events {
            let k: AlertKind = serde_json::from_value(e["kind"].clone()).unwrap();
            assert!(
                kind.is_none_or(|want| k.as_str() == want),
                "GET {path}: {e}"
            );
        }
    }
    for kind in [AlertKind::Gateway, AlertKind::Alarm, AlertKind::Camera] {
        assert!(
            per_kind.contains_key(kind.as_str()),
            "events of kind {kind}"
        );
    }
    refused(
        http,
        server,
        "/api/v1/events?kind=no-such-kind",
        &[AlertKind::choices().as_str()],
    )
    .await;
    refused(http, server, "/api/v1/events?state=open", &["kind"]).await;

    // Incidents: every state filter, in the whole area, a city and each county; a county
    // has one incident, which a page of one holds.
    let regions = [None, Some("150100"), Some(COUNTY_BACK), Some(COUNTY_DOWN)];
    for (state, region) in filters(&["all"], IncidentState::ALL.iter().map(|s| s.as_str()))
        .into_iter()
        .flat_map(|s| regions.map(|r| (s, r)))
    {
        let county =
            region.filter(|r| RegionCode::parse(r).unwrap().level() == RegionLevel::County);
        let path = query(
            "/api/v1/incidents",
            &[
                ("state", state),
                ("region", region),
                ("limit", county.map(|_| "1")),
            ],
        );
        let body = get_ok(http, server, &path).await;
        let mut got: Vec<IncidentRow> = body["incidents"]
            .as_array()
            .expect("incidents")
            .iter()
            .map(|i| IncidentRow {
                region: i["region"].as_str().unwrap().into(),
                state: i["state"].as_str().unwrap().into(),
                campuses: i["campuses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["id"].as_str().unwrap().to_string())
                    .collect(),
                open_alerts: i["open_alerts"].as_u64().unwrap() as usize,
            })
            .collect();
        got.sort();
        let want: Vec<IncidentRow> = written
            .incidents
            .iter()
            .filter(|i| state.is_none_or(|s| s == "all" || i.state == s))
            .filter(|i| {
                region.is_none_or(|r| {
                    RegionCode::parse(&i.region)
                        .unwrap()
                        .is_within(&RegionCode::parse(r).unwrap())
                })
            })
            .cloned()
            .collect();
        assert_eq!(got, want, "GET {path}");
    }
    refused(
        http,
        server,
        "/api/v1/incidents?state=no-such-state",
        &[IncidentState::choices().as_str(), "all"],
    )
    .await;

    // Maintenance: the windows in force, and with the withdrawn one.
    let without_active_until = |w: &Value| {
        let mut w = w.clone();
        w.as_object_mut().unwrap().remove("active_until");
        w
    };
    for (path, withdrawn) in [
        ("/api/v1/maintenance", false),
        ("/api/v1/maintenance?withdrawn=false", false),
        ("/api/v1/maintenance?withdrawn=true", true),
    ] {
        let body = get_ok(http, server, path).await;
        let listed: Vec<Value> = body["maintenance"]
            .as_array()
            .expect("maintenance")
            .iter()
            .map(without_active_until)
            .collect();
        let mut want: Vec<Value> = written.windows.iter().map(without_active_until).collect();
        if withdrawn {
            let gone = listed
                .iter()
                .find(|w| w["id"] == written.withdrawn)
                .unwrap_or_else(|| panic!("GET {path}: window {} listed", written.withdrawn));
            assert_eq!(gone["withdrawn"], true, "GET {path}: {gone}");
            assert_eq!(gone["scope"], "region");
            want.push(gone.clone());
        }
        assert_eq!(listed, want, "GET {path}");
    }

    // Campuses: every gateway state, registered or not, every school type.
    let states = gateway_states();
    let registry = registry();
    let listed_ids = |body: &Value| -> BTreeSet<String> {
        body["campuses"]
            .as_array()
            .expect("campuses")
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    for state in filters(&[], GatewayState::ALL.iter().map(|s| s.as_str())) {
        let path = query(
            "/api/v1/campuses",
            &[("state", state), ("limit", Some("1000"))],
        );
        let body = get_ok(http, server, &path).await;
        let want: BTreeSet<String> = states
            .iter()
            .filter(|(_, s)| state.is_none_or(|want| s.as_str() == want))
            .map(|(c, _)| c.to_string())
            .collect();
        assert_eq!(listed_ids(&body), want, "GET {path}");
        assert_eq!(body["total"], want.len(), "GET {path}");
    }
    for registered in [true, false] {
        let path = format!("/api/v1/campuses?registered={registered}");
        let body = get_ok(http, server, &path).await;
        let want: BTreeSet<String> = states
            .keys()
            .filter(|c| registry.iter().any(|e| e.campus.as_str() == **c) == registered)
            .map(|c| c.to_string())
            .collect();
        assert_eq!(listed_ids(&body), want, "GET {path}");
    }
    for t in SchoolType::ALL {
        let want: BTreeSet<String> = registry
            .iter()
            .filter(|e| e.school_type == t)
            .map(|e| e.campus.to_string())
            .collect();
        let path = format!("/api/v1/campuses?school_type={t}");
        assert_eq!(
            listed_ids(&get_ok(http, server, &path).await),
            want,
            "GET {path}"
        );
        let path = format!("/api/v1/coverage?school_type={t}");
        let body = get_ok(http, server, &path).await;
        assert_eq!(body["registered"], want.len(), "GET {path}");
    }
    let gateway_names: Vec<&str> = GatewayState::ALL.iter().map(|s| s.as_str()).collect();
    refused(
        http,
        server,
        "/api/v1/campuses?state=no-such-state",
        &gateway_names,
    )
    .await;
    let school_names: Vec<&str> = SchoolType::ALL.iter().map(|t| t.as_str()).collect();
    refused(
        http,
        server,
        "/api/v1/campuses?school_type=no-such-type",
        &school_names,
    )
    .await;

    // Each campus: its gateway state and the alerts not resolved.
    for (campus, state) in &states {
        let path = format!("/api/v1/campuses/{campus}");
        let body = get_ok(http, server, &path).await;
        assert_eq!(body["gateway_state"], state.as_str(), "GET {path}");
        let mut got: Vec<AlertRow> = body["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(AlertRow::from_api)
            .collect();
        got.sort();
        let want: Vec<AlertRow> = written
            .alerts
            .iter()
            .filter(|a| a.campus == *campus && a.state != AlertState::Resolved.as_str())
            .cloned()
            .collect();
        assert_eq!(got, want, "GET {path}");
    }

    // Coverage: the whole area, and each county.
    let reporting = |region: Option<&str>| {
        registry
            .iter()
            .filter(|e| region.is_none_or(|r| e.region.as_str() == r))
            .filter(|e| states[e.campus.as_str()] == GatewayState::Online)
            .count()
    };
    let registered = |region: Option<&str>| {
        registry
            .iter()
            .filter(|e| region.is_none_or(|r| e.region.as_str() == r))
            .count()
    };
    for region in [
        None,
        Some(COUNTY_DEVICES),
        Some(COUNTY_BACK),
        Some(COUNTY_DOWN),
        Some(COUNTY_STALE),
    ] {
        let path = query("/api/v1/coverage", &[("region", region)]);
        let body = get_ok(http, server, &path).await;
        assert_eq!(body["registered"], registered(region), "GET {path}");
        assert_eq!(body["reporting"], reporting(region), "GET {path}");
    }

    // Reports read the stored history (transitions of every kind, maintenance).
    for path in [
        "/api/v1/reports/availability",
        "/api/v1/reports/availability?period=day",
        "/api/v1/reports/availability?period=day&region=150102",
        "/api/v1/reports/coverage",
        "/api/v1/reports/coverage?period=day",
        "/api/v1/reports/coverage/daily",
    ] {
        let body = get_ok(http, server, path).await;
        assert!(body.is_object(), "GET {path}: {body}");
    }
    for path in [
        "/api/v1/reports/availability?period=day&format=csv",
        "/api/v1/reports/coverage?period=day&format=csv",
        "/api/v1/reports/coverage?format=csv&table=not_networked",
        "/api/v1/registry?format=csv",
    ] {
        let (status, body) = get(http, server, path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
    }
    // A county's report lists its campuses.
    let path = format!("/api/v1/reports/availability?period=day&region={COUNTY_DEVICES}");
    let today = get_ok(http, server, &path).await;
    let reported: BTreeSet<&str> = today["campuses"]
        .as_array()
        .expect("campuses")
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let county: BTreeSet<&str> = registry
        .iter()
        .filter(|e| e.region.as_str() == COUNTY_DEVICES)
        .map(|e| e.campus.as_str())
        .collect();
    assert_eq!(reported, county, "GET {path}");

    // The registry, health and metrics.
    let stored_registry = get_ok(http, server, "/api/v1/registry").await;
    let ids: BTreeSet<&str> = stored_registry
        .as_array()
        .expect("registry entries")
        .iter()
        .map(|e| e["campus"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        registry.iter().map(|e| e.campus.as_str()).collect(),
        "GET /api/v1/registry"
    );
    let health = get_ok(http, server, "/healthz").await;
    assert_eq!(health["database"], true, "{health}");
    let metrics = http
        .get(format!("http://{}/metrics", server.http_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let live = http
        .get(format!("http://{}/api/v1/live", server.http_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200, "GET /api/v1/live");
    drop(live);
}

async fn every_alert_incident_window_and_notice_written_is_read_back_after_a_restart_on(db: Db) {
    let started = Instant::now();
    let embedded = EmbeddedBroker::start(EmbeddedBrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        fallback_to_free_port: false,
        max_connections: 100,
        max_payload_size: 4 * campuswatch_protocol::MAX_PAYLOAD_BYTES,
        ..EmbeddedBrokerConfig::default()
    })
    .await
    .expect("embedded broker starts");
    let broker = embedded.connect_addr();
    let link = LinkProxy::start(broker).await;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &db.config_url, &link.url(), receiver.addr);

    let written = write_everything(&cfg, broker, &link).await;
    assert_eq!(without_ids(&written.alerts), expected_alerts());
    assert_eq!(written.incidents, expected_incidents());
    let kinds: BTreeSet<&str> = written.notices.iter().map(|n| n.kind.as_str()).collect();
    assert_eq!(kinds, NoticeKind::ALL.iter().map(|k| k.as_str()).collect());

    // Started again on the same database, with the receiver taking deliveries now.
    receiver.accept.store(true, Ordering::SeqCst);
    let server = start(&cfg)
        .await
        .unwrap_or_else(|e| panic!("the server does not start again on what it wrote itself: {e}"));
    read_everything_back(&server, &written).await;

    // The restarted server reads every notice left undelivered and delivers it: each to
    // `ops`, except the summaries, which go to the channel whose rate limit made them.
    let want_ops: BTreeSet<String> = written
        .notices
        .iter()
        .filter(|n| n.kind != NoticeKind::Summary)
        .map(|n| n.id.clone())
        .collect();
    let want_burst: BTreeSet<String> = written
        .notices
        .iter()
        .filter(|n| n.kind == NoticeKind::Summary)
        .map(|n| n.id.clone())
        .collect();
    wait_until(
        "the notices delivered after the restart",
        DEADLINE,
        async || {
            receiver.delivered("ops").is_superset(&want_ops)
                && receiver.delivered("burst").is_superset(&want_burst)
        },
    )
    .await;
    let deliveries = server
        .store
        .deliveries()
        .await
        .expect("deliveries read back");
    assert!(
        deliveries.iter().all(|d| d.state != "failed"),
        "no delivery failed: {deliveries:#?}"
    );
    // What the restarted server added reads back too.
    assert!(stored_notices(&cfg.database_url()).await.len() >= written.notices.len());
    server.stop().await;
    eprintln!(
        "read back {} alerts, {} incidents, {} notices in {:?}",
        written.alerts.len(),
        written.incidents.len(),
        written.notices.len(),
        started.elapsed()
    );
}

mod every_alert_incident_window_and_notice_written_is_read_back_after_a_restart {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        every_alert_incident_window_and_notice_written_is_read_back_after_a_restart_on(
            Db::sqlite(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = Db::postgres().await {
            every_alert_incident_window_and_notice_written_is_read_back_after_a_restart_on(db)
                .await;
        }
    }
}
