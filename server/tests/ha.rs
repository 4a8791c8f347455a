//! An active/standby pair: two `campuswatch-server` processes with the same id on one
//! PostgreSQL database and one broker. The active one is killed (SIGKILL) while a
//! regional incident is open and another campus's alarm link is down; the standby takes
//! over, and the operators hear of the incident's opening and of its resolution once
//! each, and of the alarm link once, though its gateway restarted during the takeover.
//!
//! Needs PostgreSQL: `CAMPUSWATCH_TEST_DATABASE_URL` (`.ci/run` sets it). Without it the
//! test says so and does nothing; with it, a database that cannot be reached fails it.

mod common;
#[allow(dead_code)]
#[path = "../../service/tests/support/under_systemd.rs"]
mod under_systemd;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use campuswatch_protocol::{CampusId, DeathReason, DeviceKind, DeviceState, Message, RegionCode};
use campuswatch_server::broker::{EmbeddedBroker, EmbeddedBrokerConfig};
use campuswatch_server::testing::{self, TestSchema};
use campuswatch_testkit::{birth, device, event, heartbeat, wait_until};
use under_systemd::{Notifications, Supervised};

const DEADLINE: Duration = Duration::from_secs(30);
const COUNTY: &str = "150102";
const CHECK: Duration = Duration::from_millis(250);

/// The state of every delivery of notice `id` in the replicas' database.
async fn delivery_states(schema: &TestSchema, id: &str) -> Vec<String> {
    let mut conn = testing::connect(&schema.url()).await;
    sqlx::query_scalar("SELECT state FROM deliveries WHERE notice = $1")
        .bind(id)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default()
}

/// A webhook receiver: the `Idempotency-Key` (the notice id) of every request, in order.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let key = headers
                    .get("Idempotency-Key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(none)")
                    .to_string();
                seen.lock().unwrap().push(key);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, got)
}

fn config(dir: &Path, broker: &str, database: &str, hook: SocketAddr) -> String {
    format!(
        r#"id = "province-15"
data_dir = "{data}"

[http]
listen = "127.0.0.1:0"

[auth]
enabled = false

[mqtt]
url = "{broker}"

[database]
url = "{database}"

[ha]
enabled = true
check_interval = "{check}ms"

[alerts]
hold_down_gateway = "0s"
group_wait = "1s"
incident_min_gateways = 5

[[notify.channels]]
name = "ops"
type = "webhook"
url = "http://{hook}/hook"
"#,
        data = dir.join("data").display(),
        check = CHECK.as_millis(),
    )
}

/// How many campuses the replica at `api` sees reporting.
async fn reporting(http: &reqwest::Client, api: &str) -> u64 {
    let c = common::get_json(http, &format!("http://{api}/api/v1/coverage")).await;
    c["reporting"].as_u64().unwrap_or(u64::MAX)
}

/// Waits until the replica says it runs (every replica first says it is a standby);
/// returns its HTTP address and what it said.
async fn running(notes: &mut Notifications) -> (String, String) {
    loop {
        let ready = notes.expect("READY=1").await;
        if ready.contains("STATUS=Running") {
            return (http_addr(&ready), ready);
        }
    }
}

fn http_addr(ready: &str) -> String {
    ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=Running; HTTP on "))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("{ready}"))
        .to_string()
}

/// The topics of what the broker publishes on `filter`, from when this returns.
async fn observer(
    broker: SocketAddr,
    filter: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let o = rumqttc::MqttOptions::new("ha-observer", broker.ip().to_string(), broker.port());
    let (client, mut el) = rumqttc::AsyncClient::new(o, 16);
    client
        .subscribe(filter, rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed, ready) = tokio::sync::oneshot::channel();
    let mut subscribed = Some(subscribed);
    tokio::spawn(async move {
        let _client = client;
        while let Ok(event) = el.poll().await {
            match event {
                rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => {
                    subscribed.take().map(|s| s.send(()));
                }
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                    let _ = tx.send(p.topic);
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(DEADLINE, ready)
        .await
        .expect("subscribed")
        .unwrap();
    rx
}

/// The Last Will of `campus`'s first session.
fn death(campus: &str) -> Message {
    campuswatch_testkit::death(
        &CampusId::parse(campus).unwrap(),
        RegionCode::parse(COUNTY).unwrap(),
        1,
        DeathReason::ConnectionLost,
    )
}

/// What a gateway's heartbeats say: its session (epoch), the digest of its device states,
/// and the newest event id it produced.
type Session = (u64, &'static str, u64);

/// Heartbeats of `campus` every second, saying what `session` holds at the time.
fn heartbeats(
    client: rumqttc::AsyncClient,
    campus: &str,
    session: tokio::sync::watch::Receiver<Session>,
) -> tokio::task::JoinHandle<()> {
    let campus = CampusId::parse(campus).unwrap();
    tokio::spawn(async move {
        let (mut seq, mut of) = (0, 0);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let (epoch, states, last_event_id) = *session.borrow();
            // `seq` counts from 1 within each session.
            seq = if of == epoch { seq + 1 } else { 1 };
            of = epoch;
            let county = RegionCode::parse(COUNTY).unwrap();
            let hb = heartbeat(&campus, county, epoch, seq, states, last_event_id);
            let _ = campuswatch_testkit::mqtt::send(&client, &hb).await;
        }
    })
}

/// The open alerts the replica at `api` lists: `(id, kind, campus)` of each.
async fn open_alerts(http: &reqwest::Client, api: &str) -> Vec<(u64, String, String)> {
    let list = common::get_json(http, &format!("http://{api}/api/v1/alerts?state=open")).await;
    list["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|a| {
            (
                a["id"].as_u64().unwrap(),
                a["kind"].as_str().unwrap().to_string(),
                a["campus"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_replica_mid_incident_hands_over_and_tells_each_notice_once() {
    let Some(schema) = TestSchema::new("cw_ha", "the active/standby test").await else {
        return;
    };
    let broker = EmbeddedBroker::start(EmbeddedBrokerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        fallback_to_free_port: false,
        max_connections: 100,
        max_payload_size: 4 * campuswatch_protocol::MAX_PAYLOAD_BYTES,
        ..EmbeddedBrokerConfig::default()
    })
    .await
    .unwrap();
    let broker_addr: SocketAddr = broker.url().trim_start_matches("mqtt://").parse().unwrap();
    let (hook, heard) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    std::fs::write(
        &path,
        config(dir.path(), &broker.url(), &schema.url(), hook),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_campuswatch-server");

    // Replica A starts first and becomes active; B waits as a standby.
    let sock_a = dir.path().join("a.sock");
    let mut notes_a = Notifications::bind(&sock_a, DEADLINE);
    let a = Supervised::start(bin, &path, &sock_a);
    let (api_a, _) = running(&mut notes_a).await;
    let sock_b = dir.path().join("b.sock");
    let mut notes_b = Notifications::bind(&sock_b, DEADLINE);
    let b = Supervised::start(bin, &path, &sock_b);
    let standby = notes_b.expect("READY=1").await;
    assert!(standby.contains("STATUS=Standby"), "{standby}");

    // Eight registered campuses of one county; six gateways drop: one incident. A ninth
    // campus's alarm link is down from the start and stays down throughout, while its
    // gateway stays online.
    let http = reqwest::Client::new();
    let campuses: Vec<String> = (1..=8).map(|i| format!("{COUNTY}-P-{i:04}")).collect();
    let steady = format!("{COUNTY}-P-0009");
    let csv: String = std::iter::once(
        "id,name,region,school_type,expected_alarms,expected_cameras\n".to_string(),
    )
    .chain(
        campuses
            .iter()
            .chain([&steady])
            .map(|c| format!("{c},School {c},{COUNTY},primary,1,0\n")),
    )
    .collect();
    let imported = http
        .post(format!("http://{api_a}/api/v1/registry"))
        .body(csv)
        .send()
        .await
        .unwrap();
    assert!(imported.status().is_success(), "{}", imported.status());
    let mut gateways = Vec::new();
    for c in &campuses {
        let alarm = device("alarm-1", DeviceKind::Alarm, DeviceState::Up);
        gateways.push(common::gateway(broker_addr, c, COUNTY, vec![alarm]).await);
    }
    let down = device("alarm-1", DeviceKind::Alarm, DeviceState::Down);
    let steady_gw = common::gateway(broker_addr, &steady, COUNTY, vec![down]).await;
    let (session, said) = tokio::sync::watch::channel((1, "D", 0));
    let steady_heartbeats = heartbeats(steady_gw.clone(), &steady, said);
    wait_until(
        "nine gateways online on the active replica",
        DEADLINE,
        || async { reporting(&http, &api_a).await == 9 },
    )
    .await;
    let alarm_alert = open_alerts(&http, &api_a)
        .await
        .into_iter()
        .find(|(_, kind, campus)| kind == "alarm" && *campus == steady)
        .expect("the alarm alert")
        .0;
    // The campus is out of alarm coverage too: its campus-level alert.
    let networking_alert = open_alerts(&http, &api_a)
        .await
        .into_iter()
        .find(|(_, kind, campus)| kind == "alarm_networking" && *campus == steady)
        .expect("the alarm networking alert")
        .0;
    let alarm_opened = format!("alert-{alarm_alert}-opened");
    let networking_opened = format!("alert-{networking_alert}-opened");
    wait_until("the alarm alerts' openings sent", DEADLINE, || async {
        delivery_states(&schema, &alarm_opened).await == ["sent"]
            && delivery_states(&schema, &networking_opened).await == ["sent"]
    })
    .await;
    for (client, c) in gateways.iter().zip(&campuses).take(6) {
        common::publish(client, &death(c)).await;
    }
    wait_until(
        "the incident's opening sent and recorded as sent",
        DEADLINE,
        || async { delivery_states(&schema, "incident-1-opened").await == ["sent"] },
    )
    .await;

    // The active replica dies mid-incident. The standby is held (SIGSTOP) a moment so
    // that two more gateways drop while no replica is active: the broker keeps their
    // deaths in the partition's session for whichever replica comes next.
    let mut deaths = observer(broker_addr, "cw/v1/+/+/death").await;
    b.signal("STOP");
    a.signal("KILL");
    for (client, c) in gateways.iter().zip(&campuses).skip(6) {
        common::publish(client, &death(c)).await;
    }
    // The ninth campus's gateway restarts meanwhile: its new session's birth lists the
    // alarm `unknown` (not probed yet), the old session's Last Will comes late, and the
    // first probes find the alarm link down again.
    let (campus, county) = (
        CampusId::parse(&steady).unwrap(),
        RegionCode::parse(COUNTY).unwrap(),
    );
    let mut unknown = device("alarm-1", DeviceKind::Alarm, DeviceState::Up);
    (unknown.state, unknown.since, unknown.measurements) =
        (DeviceState::Unknown, None, Default::default());
    common::publish(&steady_gw, &birth(&campus, county, 2, vec![unknown])).await;
    session.send_replace((2, "N", 0));
    common::publish(&steady_gw, &death(&steady)).await;
    let found_down = event(
        &campus,
        county,
        2,
        1,
        "alarm-1",
        DeviceKind::Alarm,
        (DeviceState::Unknown, DeviceState::Down),
    );
    common::publish(&steady_gw, &found_down).await;
    session.send_replace((2, "D", 1));
    // Both deaths are with the broker before the standby goes on.
    for _ in 0..2 {
        tokio::time::timeout(DEADLINE, deaths.recv())
            .await
            .expect("the broker passes the deaths on")
            .unwrap();
    }
    b.signal("CONT");
    let resumed = Instant::now();
    let (api_b, said) = running(&mut notes_b).await;
    let takeover = resumed.elapsed();
    assert!(said.contains("active replica"), "{said}");
    println!(
        "takeover: the standby was serving {} ms after it could run with the active replica gone (check every {} ms)",
        takeover.as_millis(),
        CHECK.as_millis()
    );
    wait_until(
        "the gap's deaths applied by the new active replica",
        DEADLINE,
        || async { reporting(&http, &api_b).await == 1 },
    )
    .await;
    // The restarted gateway's alarm link is down again, and still the alert it was.
    let url = format!("http://{api_b}/api/v1/campuses/{steady}");
    wait_until(
        "the ninth gateway's new session applied",
        DEADLINE,
        || async {
            let v = common::get_json(&http, &url).await;
            v["gateway_state"] == "online"
                && v["gateway"]["epoch"] == 2
                && v["gateway"]["last_event_id"] == 1
                && v["device_list"][0]["state"] == "down"
        },
    )
    .await;
    let mut alarms: Vec<_> = open_alerts(&http, &api_b)
        .await
        .into_iter()
        .filter(|(_, kind, _)| kind.starts_with("alarm"))
        .collect();
    alarms.sort();
    assert_eq!(
        alarms,
        [
            (alarm_alert, "alarm".to_string(), steady.clone()),
            (
                networking_alert,
                "alarm_networking".to_string(),
                steady.clone()
            )
        ],
        "the same alarm alerts, open on the new active replica"
    );

    // The gateways come back: the new active resolves the incident it took over.
    for (client, c) in gateways.iter().zip(&campuses) {
        let (campus, county) = (
            CampusId::parse(c).unwrap(),
            RegionCode::parse(COUNTY).unwrap(),
        );
        let alarm = device("alarm-1", DeviceKind::Alarm, DeviceState::Up);
        common::publish(client, &birth(&campus, county, 2, vec![alarm])).await;
    }
    wait_until("the incident's resolution sent", DEADLINE, || async {
        delivery_states(&schema, "incident-1-resolved").await == ["sent"]
    })
    .await;
    let incidents = common::get_json(&http, &format!("http://{api_b}/api/v1/incidents")).await;
    assert_eq!(
        incidents["incidents"][0]["state"], "resolved",
        "{incidents}"
    );
    // Everything made so far has been sent (a false resolution of the alarm alert, or a
    // second opening, would be among it).
    wait_until("every delivery sent", DEADLINE, || async {
        let mut conn = testing::connect(&schema.url()).await;
        let states: Vec<String> = sqlx::query_scalar("SELECT state FROM deliveries")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
        states.iter().all(|s| s == "sent")
    })
    .await;
    assert_eq!(
        *heard.lock().unwrap(),
        [
            alarm_opened.as_str(),
            networking_opened.as_str(),
            "incident-1-opened",
            "incident-1-resolved"
        ],
        "each notice once, none lost; the alarm link that stayed down told once, never resolved"
    );
    assert!(
        open_alerts(&http, &api_b)
            .await
            .iter()
            .any(|(id, _, _)| *id == alarm_alert),
        "the alarm link is still down"
    );
    steady_heartbeats.abort();
    drop((a, b));
}
