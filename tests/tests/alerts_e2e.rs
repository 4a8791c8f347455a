//! What the operators on duty are told, end to end: gateways played by plain MQTT clients
//! (docs/PROTOCOL.md) or by the real agent program, a real broker, the server, and a
//! webhook receiver standing in for the duty channel. Each test watches its own county, so
//! tests can share one broker.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use campuswatch_protocol::{DeviceKind as K, DeviceReport, DeviceState as S, SchoolType};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::ServerHandle;
use campuswatch_tests::*;

const WAIT: Duration = Duration::from_secs(30);
const HEARTBEAT: Duration = Duration::from_millis(300);

/// A webhook receiver standing for the duty channel, and the server of `county` on the
/// broker at `broker_url` telling it; gateway alerts are gathered for a second. `adjust`
/// changes the config before the server starts.
struct Watch {
    sink: WebhookSink,
    /// The server's config, to start it again on the same data.
    cfg: ServerConfig,
    server: ServerHandle,
    _dir: tempfile::TempDir,
}

impl Watch {
    async fn start(
        broker_url: &str,
        county: &str,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> Watch {
        let sink = WebhookSink::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = server_config(dir.path(), broker_url, county);
        cfg.notify.channels = vec![sink.channel()];
        cfg.alerts.group_wait = Duration::from_secs(1);
        cfg.alerts.incident_min_gateways = 5;
        adjust(&mut cfg);
        let server = start_server(cfg.clone()).await;
        Watch {
            sink,
            cfg,
            server,
            _dir: dir,
        }
    }
}

/// Registers `n` kindergartens of `county`, `t{county}-000` on; their ids.
async fn register(server: &ServerHandle, county: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("t{county}-{i:03}")).collect();
    let registry = ids
        .iter()
        .map(|id| registry_entry(id, county, SchoolType::Kindergarten, 1, 1))
        .collect();
    server
        .import_registry(registry, false)
        .await
        .expect("registry import");
    ids
}

/// An alarm and a camera, both up.
fn alarm_and_camera() -> Vec<DeviceReport> {
    vec![
        device("alarm-1", K::Alarm, S::Up),
        device("cam-1", K::Camera, S::Up),
    ]
}

/// Connects gateways for `ids` under `epoch`, each of [`alarm_and_camera`].
async fn online(broker: &TestBroker, county: &str, epoch: u64, ids: &[String]) -> Vec<RawGateway> {
    let mut gateways = Vec::new();
    for id in ids {
        gateways.push(
            RawGateway::online(
                broker.addr(),
                id,
                county,
                epoch,
                alarm_and_camera(),
                HEARTBEAT,
            )
            .await,
        );
    }
    gateways
}

/// [`online`] under epoch 1, and waits until the server sees every one reporting.
async fn reporting(
    broker: &TestBroker,
    server: &ServerHandle,
    county: &str,
    ids: &[String],
) -> Vec<RawGateway> {
    let gateways = online(broker, county, 1, ids).await;
    wait_reporting(server, county, ids.len() as u64).await;
    gateways
}

/// Drops the gateways' connections without a word (each one's Last Will is published).
fn kill(gateways: Vec<RawGateway>) {
    for g in gateways {
        g.kill();
    }
}

async fn wait_reporting(server: &ServerHandle, county: &str, want: u64) {
    wait_for(&format!("{want} campuses reporting"), WAIT, || async {
        let c = get_json(server, &format!("/api/v1/coverage?region={county}")).await;
        (c["reporting"].as_u64() == Some(want)).then_some(())
    })
    .await
}

async fn wait_kinds(sink: &WebhookSink, want: &[&str]) {
    wait_for(&format!("notices {want:?}"), WAIT, || async {
        (sink.kinds().len() >= want.len()).then_some(())
    })
    .await;
    // Whatever else was going to be told has had time to be.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.kinds(), want, "{:#?}", sink.bodies());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_that_drops_at_once_is_one_notice_and_its_recovery_another() {
    let county = "150302";
    let broker = TestBroker::start().await;
    let Watch {
        sink, server, _dir, ..
    } = Watch::start(&broker.url, county, |_| {}).await;
    let ids = register(&server, county, 100).await;
    let gateways = reporting(&broker, &server, county, &ids).await;

    // The county's network drops: every gateway's connection is lost at once.
    kill(gateways);
    wait_kinds(&sink, &["incident_opened"]).await;
    let told = &sink.bodies()[0];
    assert_eq!(told["campuses"].as_array().map(Vec::len), Some(100));
    assert_eq!(told["severity"], "critical");
    assert_eq!(told["region"], county);
    let alerts = get_json(&server, "/api/v1/alerts?state=open&kind=gateway").await;
    assert_eq!(alerts["alerts"].as_array().map(Vec::len), Some(100));
    let incidents = get_json(&server, "/api/v1/incidents?state=open").await;
    assert_eq!(incidents["incidents"][0]["open_alerts"], 100);

    // And comes back.
    let gateways = online(&broker, county, 2, &ids).await;
    wait_kinds(&sink, &["incident_opened", "incident_resolved"]).await;
    assert_eq!(
        get_json(&server, "/api/v1/alerts?state=open").await["alerts"],
        serde_json::json!([])
    );
    kill(gateways);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_mid_incident_neither_repeats_nor_loses_a_notice_nor_flags_anyone_falsely(
) {
    let county = "150303";
    let broker = TestBroker::start().await;
    let Watch {
        sink,
        cfg,
        server,
        _dir,
    } = Watch::start(&broker.url, county, |_| {}).await;
    let ids = register(&server, county, 12).await;
    let (dropping, staying) = ids.split_at(8);
    let gateways = online(&broker, county, 1, dropping).await;
    let _staying = online(&broker, county, 1, staying).await;
    wait_reporting(&server, county, 12).await;

    kill(gateways);
    wait_kinds(&sink, &["incident_opened"]).await;

    // The server is stopped and started again while the incident is open; the gateways
    // that stayed up keep heartbeating meanwhile.
    server.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server = start_server(cfg).await;
    wait_reporting(&server, county, 4).await;
    // Nothing is told again, and nobody who stayed up is flagged.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.kinds(), ["incident_opened"], "{:#?}", sink.bodies());
    let alerts = get_json(&server, "/api/v1/alerts?state=open").await;
    let flagged: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["campus"].as_str())
        .collect();
    assert_eq!(flagged.len(), 8, "{flagged:?}");
    assert!(flagged.iter().all(|c| dropping.iter().any(|d| d == c)));

    // The recovery is told once.
    let back = online(&broker, county, 2, dropping).await;
    wait_kinds(&sink, &["incident_opened", "incident_resolved"]).await;
    kill(back);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_behind_which_forty_cameras_go_dark_is_told_once() {
    let county = "150304";
    let broker = TestBroker::start().await;
    let Watch {
        sink, server, _dir, ..
    } = Watch::start(&broker.url, county, |_| {}).await;
    let id = format!("t{county}-big");
    server
        .import_registry(
            vec![registry_entry(&id, county, SchoolType::Secondary, 1, 40)],
            false,
        )
        .await
        .unwrap();
    let mut devices = vec![device("alarm-1", K::Alarm, S::Up)];
    devices.extend((1..=40).map(|i| device(&format!("cam-{i}"), K::Camera, S::Up)));
    let g = RawGateway::online(broker.addr(), &id, county, 1, devices, HEARTBEAT).await;
    wait_reporting(&server, county, 1).await;
    g.kill();
    wait_kinds(&sink, &["alert_opened"]).await;
    let told = &sink.bodies()[0];
    assert_eq!(told["link"], "gateway");
    assert!(told["title"].as_str().unwrap().contains("Gateway offline"));
    assert!(told["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/console/campuses/{id}")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cut_off_from_the_broker_flags_no_campus_and_says_it_could_not_see() {
    let county = "150402";
    let broker = TestBroker::start().await;
    let link = LinkProxy::start(broker.addr()).await;
    // The server reaches the broker through a link the test can cut.
    let Watch {
        sink, server, _dir, ..
    } = Watch::start(&link.url(), county, |cfg| {
        cfg.alerts.monitoring_grace = Duration::from_secs(1);
    })
    .await;
    let ids = register(&server, county, 6).await;
    let gateways = reporting(&broker, &server, county, &ids).await;

    // Three seconds without the broker: more than three stale windows of these gateways.
    link.set(LinkMode::Cut);
    wait_kinds(&sink, &["monitoring_degraded"]).await;
    link.set(LinkMode::Pass);
    wait_kinds(&sink, &["monitoring_degraded", "monitoring_restored"]).await;
    let told = &sink.bodies()[0];
    assert_eq!(told["severity"], "critical");
    assert!(told["region"].is_null(), "told to every region's channel");
    assert_eq!(
        get_json(&server, "/api/v1/alerts?state=open").await["alerts"],
        serde_json::json!([]),
        "no campus is flagged for the time the server could not see"
    );
    wait_reporting(&server, county, 6).await;
    kill(gateways);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_link_flapping_every_second_is_told_once() {
    let county = "150403";
    let broker = TestBroker::start().await;
    let Watch {
        sink, server, _dir, ..
    } = Watch::start(&broker.url, county, |cfg| {
        // Never down long enough to be an alert on its own.
        cfg.alerts.hold_down_alarm = Duration::from_secs(60);
    })
    .await;
    let ids = register(&server, county, 1).await;
    let gateways = reporting(&broker, &server, county, &ids).await;
    let g = &gateways[0];
    for i in 0..10u64 {
        let (from, to) = if i % 2 == 0 {
            (S::Up, S::Down)
        } else {
            (S::Down, S::Up)
        };
        g.publish(&event(
            &g.campus,
            g.region,
            g.epoch,
            i + 1,
            "alarm-1",
            K::Alarm,
            (from, to),
        ))
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The alarm device, and the campus's alarm networking that follows it.
    wait_kinds(&sink, &["alert_flapping", "alert_flapping"]).await;
    let mut told: Vec<_> = sink
        .bodies()
        .iter()
        .map(|b| (b["link"].clone(), b["severity"].clone()))
        .collect();
    told.sort_by_key(|(l, _)| l.to_string());
    assert_eq!(
        told,
        [
            (serde_json::json!("alarm"), serde_json::json!("warning")),
            (
                serde_json::json!("alarm_networking"),
                serde_json::json!("critical")
            )
        ]
    );
    let alerts = get_json(&server, "/api/v1/alerts?state=open").await;
    assert_eq!(alerts["alerts"][0]["flapping"], true);
    assert_eq!(alerts["alerts"][1]["flapping"], true);
    kill(gateways);
    server.stop().await;
}

/// Reads server-sent events from `resp` until `done` says so (or the deadline passes).
async fn read_events(
    resp: &mut reqwest::Response,
    mut done: impl FnMut(&[(String, serde_json::Value)]) -> bool,
) -> Vec<(String, serde_json::Value)> {
    let mut events = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(&events) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("events within the deadline")
            .expect("the stream stays open")
            .expect("the stream is not closed");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut kind = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim());
                }
            }
            if !kind.is_empty() {
                events.push((kind, serde_json::from_str(&data).unwrap_or_default()));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_console_hears_of_a_dropped_link_at_once_and_only_for_its_region() {
    let (county, other) = ("150502", "150521");
    let broker = TestBroker::start().await;
    let Watch {
        sink: _sink,
        server,
        _dir,
        ..
    } = Watch::start(&broker.url, county, |cfg| {
        cfg.mqtt.regions = vec![county.to_string(), other.to_string()];
    })
    .await;
    let mine = register(&server, county, 1).await;
    let theirs = register(&server, other, 1).await;

    let mut stream = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/live?region={county}",
            server.http_addr()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    // The other county's gateway comes and goes first; then ours comes and drops.
    kill(reporting(&broker, &server, other, &theirs).await);
    kill(reporting(&broker, &server, county, &mine).await);
    let events = read_events(&mut stream, |ev| ev.iter().any(|(k, _)| k == "alert")).await;
    assert!(
        events.iter().all(|(_, e)| e["region"] == county),
        "only {county}: {events:#?}"
    );
    let transitions: Vec<&str> = events
        .iter()
        .filter(|(k, _)| k == "transition")
        .filter_map(|(_, e)| e["data"]["to"].as_str())
        .collect();
    assert_eq!(transitions, ["online", "offline"], "{events:#?}");
    let (_, alert) = events.iter().find(|(k, _)| k == "alert").unwrap();
    assert_eq!(alert["data"]["kind"], "gateway");
    assert_eq!(alert["campus"], mine[0].as_str());
    server.stop().await;
}

// ---- Links that stay down while everything around them restarts ------------------------
//
// Each test below keeps one link down from its drop to the end (or to a last recovery),
// restarts something around it — the agent (kill -9), the server, the broker — and asserts
// the exact notices the duty channel receives: one opening, no resolution, the same alert
// throughout. After a restart an agent's birth lists its devices `unknown` (not probed
// yet) and then reports `unknown → down`; that is no recovery and no new outage.

/// The agent program, built from agent/src/main.rs (see tests/Cargo.toml).
const AGENT: &str = env!("CARGO_BIN_EXE_campuswatch-agent-under-test");

/// The real agent program of one campus, killed with SIGKILL (no death of its own, so the
/// broker publishes its Last Will) and started again on the same configuration and state
/// directory, as a watchdog or an operator would after `kill -9`.
struct AgentProcess {
    config: PathBuf,
    log: PathBuf,
    child: Option<tokio::process::Child>,
}

impl AgentProcess {
    /// Writes its configuration into `dir` and starts it: heartbeats every 300 ms, the
    /// broker's keepalive 2 s, and `devices` (id, kind, address) probed over TCP every
    /// 100 ms, down after two failed probes and up after one good one.
    fn start(
        dir: &Path,
        campus: &str,
        county: &str,
        url: &str,
        devices: &[(&str, K, SocketAddr)],
    ) -> AgentProcess {
        let mut toml = format!(
            "campus = \"{campus}\"\nregion = \"{county}\"\nstate_dir = \"{}\"\n\
             heartbeat_interval = \"300ms\"\n\
             [mqtt]\nurl = \"{url}\"\nkeepalive = \"2s\"\n\
             reconnect_delay_min = \"100ms\"\nreconnect_delay_max = \"500ms\"\n",
            dir.join("state").display()
        );
        for (id, kind, addr) in devices {
            toml.push_str(&format!(
                "[[devices]]\nid = \"{id}\"\nkind = \"{}\"\ninterval = \"100ms\"\n\
                 timeout = \"500ms\"\ndown_after = 2\nup_after = 1\n\
                 probe = {{ type = \"tcp\", target = \"{addr}\" }}\n",
                kind.as_str()
            ));
        }
        let config = dir.join("agent.toml");
        std::fs::write(&config, toml).expect("write the agent config");
        let mut agent = AgentProcess {
            config,
            log: dir.join("agent.log"),
            child: None,
        };
        agent.spawn();
        agent
    }

    /// Starts the program (again).
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the agent is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("agent log file");
        self.child = Some(
            tokio::process::Command::new(AGENT)
                .args(["--log-level", "warn", "run", "--config"])
                .arg(&self.config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("the agent program starts"),
        );
    }

    /// `kill -9`.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL the agent");
        }
    }
}

impl Drop for AgentProcess {
    /// A failing test shows what the agent logged (the program itself is killed when its
    /// child handle goes).
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            println!("agent log:\n{log}");
        }
    }
}

async fn campus(server: &ServerHandle, id: &str) -> serde_json::Value {
    get_json(server, &format!("/api/v1/campuses/{id}")).await
}

/// The server's view of device `device` of the campus view `v`.
fn device_view<'a>(v: &'a serde_json::Value, device: &str) -> &'a serde_json::Value {
    v["device_list"]
        .as_array()
        .and_then(|l| l.iter().find(|d| d["id"] == device))
        .unwrap_or(&serde_json::Value::Null)
}

async fn wait_device(server: &ServerHandle, id: &str, device: &str, state: &str) {
    wait_for(&format!("{id} {device} {state}"), WAIT, || async {
        let v = campus(server, id).await;
        (v["gateway_state"] == "online" && device_view(&v, device)["state"] == state).then_some(())
    })
    .await
}

async fn wait_gateway(server: &ServerHandle, id: &str, state: &str) {
    wait_for(&format!("{id} {state}"), WAIT, || async {
        (campus(server, id).await["gateway_state"] == state).then_some(())
    })
    .await
}

/// The stored transitions of one device, oldest first: `(from→to, at)`.
async fn transitions(
    server: &ServerHandle,
    id: &str,
    device: &str,
) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    let mut events = all_events(server, id).await;
    events.retain(|e| e["device"] == device);
    events.sort_by_key(|e| e["event_id"].as_u64());
    events
        .iter()
        .map(|e| {
            (
                format!(
                    "{}→{}",
                    e["from"].as_str().unwrap_or("?"),
                    e["to"].as_str().unwrap_or("?")
                ),
                time(&e["at"]),
            )
        })
        .collect()
}

fn time(v: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a time: {v}"))
}

/// The open alerts: `(id, since)` of each, and the whole list. Times to the millisecond,
/// as the store keeps them.
async fn open_alerts(server: &ServerHandle) -> (Vec<(u64, i64)>, serde_json::Value) {
    let all = get_json(server, "/api/v1/alerts?state=open").await;
    let brief = all["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_u64().unwrap(),
                time(&a["since"]).timestamp_millis(),
            )
        })
        .collect();
    (brief, all)
}

/// The ids of the notices received so far (`alert-42-opened`).
fn notice_ids(sink: &WebhookSink) -> Vec<String> {
    sink.bodies()
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_string))
        .collect()
}

/// The ids of notices `suffix` (`opened`, `resolved`) of `alert_ids`.
fn said(alert_ids: &[u64], suffix: &str) -> Vec<String> {
    alert_ids
        .iter()
        .map(|a| format!("alert-{a}-{suffix}"))
        .collect()
}

/// The openings of `alert_ids` are all that was told (after a settling wait, as in
/// [`wait_kinds`]), and they are the open alerts, down since `since` (in milliseconds).
async fn told_once_and_still_open(
    server: &ServerHandle,
    sink: &WebhookSink,
    alert_ids: &[u64],
    since: i64,
    after: &str,
) {
    wait_kinds(sink, &vec!["alert_opened"; alert_ids.len()]).await;
    let mut told = notice_ids(sink);
    told.sort();
    assert_eq!(
        told,
        said(alert_ids, "opened"),
        "{after}: {:#?}",
        sink.bodies()
    );
    let (mut open, all) = open_alerts(server).await;
    open.sort();
    let want: Vec<(u64, i64)> = alert_ids.iter().map(|a| (*a, since)).collect();
    assert_eq!(open, want, "{after}: the same alerts, open: {all:#}");
}

/// The link comes back: exactly one more notice per alert, its resolution, saying
/// "Restored".
async fn restored_once(server: &ServerHandle, sink: &WebhookSink, id: &str, alert_ids: &[u64]) {
    let n = alert_ids.len();
    let mut kinds = vec!["alert_opened"; n];
    kinds.extend(vec!["alert_resolved"; n]);
    wait_kinds(sink, &kinds).await;
    let mut told = notice_ids(sink);
    let resolved_told = told.split_off(n);
    told.sort();
    assert_eq!(told, said(alert_ids, "opened"));
    let mut resolved_told = resolved_told;
    resolved_told.sort();
    assert_eq!(resolved_told, said(alert_ids, "resolved"));
    for resolved in &sink.bodies()[n..] {
        assert!(
            resolved["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Restored: ")),
            "{resolved:#}"
        );
    }
    // And the history holds that one alert for the whole outage.
    let history = wait_for("the resolution stored", WAIT, || async {
        let all = get_json(server, &format!("/api/v1/alerts?state=all&campus={id}")).await;
        let list = all["alerts"].as_array()?.clone();
        list.iter()
            .all(|a| a["state"] == "resolved")
            .then_some(list)
    })
    .await;
    let mut ids: Vec<u64> = history.iter().filter_map(|a| a["id"].as_u64()).collect();
    ids.sort();
    assert_eq!(
        ids, alert_ids,
        "one alert per link for one outage: {history:#?}"
    );
}

/// The notice of an opening of an alert about `link` (and `device`, for a device's); its
/// alert id.
fn opened_alert(sink: &WebhookSink, link: &str, device: Option<&str>) -> u64 {
    let bodies = sink.bodies();
    let told = bodies
        .iter()
        .find(|b| b["link"].as_str() == Some(link))
        .unwrap_or_else(|| panic!("no notice about {link}: {bodies:#?}"));
    assert_eq!(
        (told["kind"].as_str(), told["device"].as_str()),
        (Some("alert_opened"), device),
        "{told:#}"
    );
    told["alert_id"].as_u64().expect("an alert id")
}

/// The open alert of `cam-1`, once there is one.
async fn camera_alert(server: &ServerHandle) -> serde_json::Value {
    wait_for("the camera alert", WAIT, || async {
        let (_, all) = open_alerts(server).await;
        all["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["device"] == "cam-1")
            .cloned()
    })
    .await
}

/// `alert` is down since `dropped`, the first drop of its link, and opened a hold-down
/// after it. The server keeps an outage that went through `unknown` to the second
/// (docs/decisions.md), so `since` may be `dropped` to the second; never later.
/// Then its opening is the one notice told.
async fn counted_from_the_first_drop_and_told(
    sink: &WebhookSink,
    alert: &serde_json::Value,
    dropped: chrono::DateTime<chrono::Utc>,
    hold_down: Duration,
) {
    let since = time(&alert["since"]);
    assert!(
        (dropped.timestamp() * 1000..=dropped.timestamp_millis())
            .contains(&since.timestamp_millis()),
        "down since the first drop, {dropped}: {alert:#}"
    );
    assert!(
        time(&alert["opened_at"]) >= since + hold_down,
        "opened after the hold-down: {alert:#}"
    );
    // The camera, and the campus's video: its one expected camera is down.
    wait_kinds(sink, &["alert_opened", "alert_opened"]).await;
    assert_eq!(
        Some(opened_alert(sink, "camera", Some("cam-1"))),
        alert["id"].as_u64()
    );
    opened_alert(sink, "video", None);
}

/// A server of `county` whose duty channel is a webhook, with one registered campus,
/// `t{county}-gw`, of an alarm and `cameras` cameras. Gateway alerts wait 30 s: an agent
/// back within seconds is no gateway alert.
struct Duty {
    id: String,
    sink: WebhookSink,
    cfg: ServerConfig,
    server: ServerHandle,
    _dir: tempfile::TempDir,
}

impl Duty {
    async fn start(broker_url: &str, county: &str, cameras: u32, camera_hold: Duration) -> Duty {
        let id = format!("t{county}-gw");
        let Watch {
            sink,
            cfg,
            server,
            _dir,
        } = Watch::start(broker_url, county, |cfg| {
            cfg.alerts.hold_down_gateway = Duration::from_secs(30);
            cfg.alerts.hold_down_camera = camera_hold;
        })
        .await;
        server
            .import_registry(
                vec![registry_entry(&id, county, SchoolType::Primary, 1, cameras)],
                false,
            )
            .await
            .expect("registry import");
        Duty {
            id,
            sink,
            cfg,
            server,
            _dir,
        }
    }
}

/// The real agent of `duty`'s campus, with one alarm link that is up, then goes down
/// and stays down until the test says otherwise; returned once the opening of its alert
/// was told.
struct AlarmDown {
    alarm: TcpDevice,
    agent: AgentProcess,
    /// The alerts' ids (the alarm device's, and the campus's alarm networking: its one
    /// alarm is down) and since when (in milliseconds).
    alert_ids: Vec<u64>,
    since: i64,
    _dir: tempfile::TempDir,
}

impl AlarmDown {
    async fn start(
        duty_server: &ServerHandle,
        sink: &WebhookSink,
        id: &str,
        county: &str,
        broker_url: &str,
    ) -> AlarmDown {
        let mut alarm = TcpDevice::start().await;
        let dir = tempfile::tempdir().unwrap();
        let agent = AgentProcess::start(
            dir.path(),
            id,
            county,
            broker_url,
            &[("alarm-1", K::Alarm, alarm.addr)],
        );
        wait_device(duty_server, id, "alarm-1", "up").await;
        alarm.down().await;
        wait_kinds(sink, &["alert_opened", "alert_opened"]).await;
        let alert_ids = vec![
            opened_alert(sink, "alarm", Some("alarm-1")),
            opened_alert(sink, "alarm_networking", None),
        ];
        let since = open_alerts(duty_server).await.0[0].1;
        AlarmDown {
            alarm,
            agent,
            alert_ids,
            since,
            _dir: dir,
        }
    }

    /// The link comes back and that is told once ([`restored_once`]); then the agent is
    /// killed.
    async fn recover(&mut self, server: &ServerHandle, sink: &WebhookSink, id: &str) {
        self.alarm.up().await;
        restored_once(server, sink, id, &self.alert_ids).await;
        self.agent.kill().await;
    }

    /// [`told_once_and_still_open`] of this alert.
    async fn told_once_and_still_open(
        &self,
        server: &ServerHandle,
        sink: &WebhookSink,
        after: &str,
    ) {
        told_once_and_still_open(server, sink, &self.alert_ids, self.since, after).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restarted_while_its_alarm_link_stays_down_is_told_once_and_never_restored() {
    let county = "150305";
    let broker = TestBroker::start().await;
    let Duty {
        id,
        sink,
        server,
        _dir,
        ..
    } = Duty::start(&broker.url, county, 0, Duration::ZERO).await;
    // The alarm link drops, and stays down until the end of the test.
    let mut down = AlarmDown::start(&server, &sink, &id, county, &broker.url).await;

    // The agent is killed (its Last Will takes the gateway offline) and started again two
    // seconds later, twice. Each time its birth lists the alarm `unknown`, and its first
    // probes report `unknown → down`.
    for restart in 1..=2 {
        let epoch = campus(&server, &id).await["gateway"]["epoch"].as_u64();
        down.agent.kill().await;
        let killed = tokio::time::Instant::now();
        wait_gateway(&server, &id, "offline").await;
        tokio::time::sleep_until(killed + Duration::from_secs(2)).await;
        down.agent.spawn();
        wait_for("the restarted agent's unknown → down", WAIT, || async {
            let v = campus(&server, &id).await;
            let again = transitions(&server, &id, "alarm-1")
                .await
                .iter()
                .filter(|(t, _)| t == "unknown→down")
                .count();
            (v["gateway_state"] == "online"
                && v["gateway"]["epoch"].as_u64() > epoch
                && device_view(&v, "alarm-1")["state"] == "down"
                && again == restart)
                .then_some(())
        })
        .await;
        down.told_once_and_still_open(&server, &sink, &format!("after restart {restart}"))
            .await;
    }
    let history: Vec<String> = transitions(&server, &id, "alarm-1")
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        history,
        ["unknown→up", "up→down", "unknown→down", "unknown→down"]
    );

    down.recover(&server, &sink, &id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_hold_down_goes_on_counting_from_the_first_drop_across_an_agent_restart() {
    let county = "150306";
    let hold_down = Duration::from_secs(3);
    let broker = TestBroker::start().await;
    let Duty {
        id,
        sink,
        server,
        _dir,
        ..
    } = Duty::start(&broker.url, county, 1, hold_down).await;
    let alarm = TcpDevice::start().await;
    let mut camera = TcpDevice::start().await;
    let agent_dir = tempfile::tempdir().unwrap();
    let mut agent = AgentProcess::start(
        agent_dir.path(),
        &id,
        county,
        &broker.url,
        &[
            ("alarm-1", K::Alarm, alarm.addr),
            ("cam-1", K::Camera, camera.addr),
        ],
    );
    wait_device(&server, &id, "cam-1", "up").await;

    // The camera drops and stays down. Its agent is killed at once and started again
    // about 1.2 s after the drop, well inside the camera's hold-down.
    camera.down().await;
    let dropped = wait_for("the camera's drop at the server", WAIT, || async {
        transitions(&server, &id, "cam-1")
            .await
            .into_iter()
            .find(|(t, _)| t == "up→down")
            .map(|(_, at)| at)
    })
    .await;
    agent.kill().await;
    wait_gateway(&server, &id, "offline").await;
    let restart_at = dropped + chrono::Duration::milliseconds(1200);
    if let Ok(wait) = (restart_at - chrono::Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    agent.spawn();

    // The alert opens a hold-down after the first drop, not after the restart's
    // `unknown → down`.
    let alert = camera_alert(&server).await;
    // The history follows the live state by one commit.
    let history = wait_for("the restart's transition stored", WAIT, || async {
        let t: Vec<String> = transitions(&server, &id, "cam-1")
            .await
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        (t.len() >= 3).then_some(t)
    })
    .await;
    assert_eq!(
        history,
        ["unknown→up", "up→down", "unknown→down"],
        "the restarted agent reported the camera unknown, then down"
    );
    counted_from_the_first_drop_and_told(&sink, &alert, dropped, hold_down).await;
    agent.kill().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_while_an_alarm_link_stays_down_tells_it_once_and_keeps_the_alert() {
    let county = "150307";
    let broker = TestBroker::start().await;
    let Duty {
        id,
        sink,
        cfg,
        server,
        _dir,
    } = Duty::start(&broker.url, county, 0, Duration::ZERO).await;
    let mut down = AlarmDown::start(&server, &sink, &id, county, &broker.url).await;

    // The server is stopped and started again on the same data; the agent keeps running.
    server.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = chrono::Utc::now();
    let server = start_server(cfg).await;
    wait_for("the campus heard again", WAIT, || async {
        let v = campus(&server, &id).await;
        let heard: chrono::DateTime<chrono::Utc> =
            v["gateway"]["last_heartbeat"].as_str()?.parse().ok()?;
        (v["gateway_state"] == "online"
            && device_view(&v, "alarm-1")["state"] == "down"
            && heard > restarted)
            .then_some(())
    })
    .await;
    down.told_once_and_still_open(&server, &sink, "after the restart")
        .await;

    down.recover(&server, &sink, &id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_while_an_alarm_link_stays_down_tells_it_once_and_keeps_the_alert() {
    let county = "150308";
    let id = format!("t{county}-gw");
    // A broker of this test's own, which it can stop and start again on the same port
    // (the shared one cannot be restarted under the other tests).
    let broker_dir = tempfile::tempdir().unwrap();
    let Some(mut broker) =
        campuswatch_tests::mosquitto::RestartableMosquitto::start(broker_dir.path())
    else {
        return;
    };
    let Duty {
        sink, server, _dir, ..
    } = Duty::start(&broker.url(), county, 0, Duration::ZERO).await;
    let mut down = AlarmDown::start(&server, &sink, &id, county, &broker.url()).await;

    // The broker is restarted (it saves its sessions and queues, and reads them back),
    // then crashes and is started again; the server and the agent reconnect each time.
    for (how, crash) in [("a broker restart", false), ("a broker crash", true)] {
        let epoch = campus(&server, &id).await["gateway"]["epoch"].as_u64();
        if crash {
            broker.kill();
        } else {
            broker.stop();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        broker.start_again();
        // The agent's new session reached the server: both are connected again.
        wait_for(
            &format!("the agent's new session after {how}"),
            WAIT,
            || async {
                let v = campus(&server, &id).await;
                (v["gateway_state"] == "online"
                    && v["gateway"]["epoch"].as_u64() > epoch
                    && device_view(&v, "alarm-1")["state"] == "down")
                    .then_some(())
            },
        )
        .await;
        down.told_once_and_still_open(&server, &sink, &format!("after {how}"))
            .await;
    }

    down.recover(&server, &sink, &id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_left_unknown_by_an_agent_restart_keeps_its_hold_down_across_a_server_restart() {
    use campuswatch_protocol::Message;
    let county = "150309";
    let hold_down = Duration::from_secs(3);
    let broker = TestBroker::start().await;
    let Duty {
        id,
        sink,
        cfg,
        server,
        _dir,
    } = Duty::start(&broker.url, county, 1, hold_down).await;
    let event = |g: &RawGateway, n: u64, from: S| {
        campuswatch_tests::event(
            &g.campus,
            g.region,
            g.epoch,
            n,
            "cam-1",
            K::Camera,
            (from, S::Down),
        )
    };

    // The gateway's camera drops (event 1).
    let g = RawGateway::online(broker.addr(), &id, county, 1, alarm_and_camera(), HEARTBEAT).await;
    wait_device(&server, &id, "cam-1", "up").await;
    g.publish(&event(&g, 1, S::Up)).await;
    wait_device(&server, &id, "cam-1", "down").await;
    // The history follows the live state by one commit.
    let dropped = wait_for("the drop stored", WAIT, || async {
        transitions(&server, &id, "cam-1")
            .await
            .first()
            .map(|(_, at)| *at)
    })
    .await;

    // Its agent restarts at once: its Last Will, then a birth listing the camera unknown.
    g.kill();
    wait_gateway(&server, &id, "offline").await;
    let mut g = RawGateway::connect(broker.addr(), &id, county, 2).await;
    let mut unknown = device("cam-1", K::Camera, S::Unknown);
    unknown.since = None;
    let mut birth = g.birth(vec![device("alarm-1", K::Alarm, S::Up), unknown]);
    if let Message::Birth(b) = &mut birth {
        b.last_event_id = 1;
    }
    g.publish(&birth).await;
    g.start_heartbeats(HEARTBEAT);
    wait_device(&server, &id, "cam-1", "unknown").await;

    // The server restarts before the camera is probed again; then it is found down, in a
    // later second than its drop (the server keeps an outage through `unknown` to the
    // second, and this test is about that outage surviving the restart).
    server.stop().await;
    let server = start_server(cfg).await;
    wait_gateway(&server, &id, "online").await;
    let next_second = dropped.timestamp() + 1;
    if let Some(wait) = chrono::DateTime::from_timestamp(next_second, 1_000_000)
        .and_then(|t| (t - chrono::Utc::now()).to_std().ok())
    {
        tokio::time::sleep(wait).await;
    }
    g.publish(&event(&g, 2, S::Unknown)).await;

    let alert = camera_alert(&server).await;
    counted_from_the_first_drop_and_told(&sink, &alert, dropped, hold_down).await;
    g.kill();
    server.stop().await;
}
