//! What the operators on duty are told, end to end: gateways played by plain MQTT clients
//! (docs/PROTOCOL.md), a real broker, the server, and a webhook receiver standing in for
//! the duty channel. Each test watches its own county, so tests can share one broker.

use std::time::Duration;

use campuswatch_protocol::{DeviceKind as K, DeviceState as S, SchoolType};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::ServerHandle;
use campuswatch_tests::*;

const WAIT: Duration = Duration::from_secs(30);
const HEARTBEAT: Duration = Duration::from_millis(300);

/// The server of `county`, telling `sink`; gateway alerts are gathered for a second.
fn config(
    broker: &TestBroker,
    dir: &std::path::Path,
    county: &str,
    sink: &WebhookSink,
) -> ServerConfig {
    let mut cfg = server_config(dir, &broker.url, county);
    cfg.notify.channels = vec![sink.channel()];
    cfg.alerts.group_wait = Duration::from_secs(1);
    cfg.alerts.incident_min_gateways = 5;
    cfg
}

fn campuses(county: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("t{county}-{i:03}")).collect()
}

async fn register(server: &ServerHandle, county: &str, ids: &[String]) {
    let registry = ids
        .iter()
        .map(|id| registry_entry(id, county, SchoolType::Kindergarten, 1, 1))
        .collect();
    server
        .import_registry(registry, false)
        .await
        .expect("registry import");
}

/// Connects gateways for `ids` under `epoch`: a birth, then heartbeats.
async fn online(broker: &TestBroker, county: &str, epoch: u64, ids: &[String]) -> Vec<RawGateway> {
    let mut gateways = Vec::new();
    for id in ids {
        let mut g = RawGateway::connect(broker.addr(), id, county, epoch).await;
        g.publish(&g.birth(vec![
            device("alarm-1", K::Alarm, S::Up),
            device("cam-1", K::Camera, S::Up),
        ]))
        .await;
        g.start_heartbeats(HEARTBEAT);
        gateways.push(g);
    }
    gateways
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
    let sink = WebhookSink::start().await;
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(config(&broker, dir.path(), county, &sink)).await;
    let ids = campuses(county, 100);
    register(&server, county, &ids).await;
    let gateways = online(&broker, county, 1, &ids).await;
    wait_reporting(&server, county, 100).await;

    // The county's network drops: every gateway's connection is lost at once.
    for g in gateways {
        g.kill();
    }
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
    for g in gateways {
        g.kill();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_mid_incident_neither_repeats_nor_loses_a_notice_nor_flags_anyone_falsely(
) {
    let county = "150303";
    let sink = WebhookSink::start().await;
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&broker, dir.path(), county, &sink);
    let server = start_server(cfg.clone()).await;
    let ids = campuses(county, 12);
    register(&server, county, &ids).await;
    let (dropping, staying) = ids.split_at(8);
    let gateways = online(&broker, county, 1, dropping).await;
    let _staying = online(&broker, county, 1, staying).await;
    wait_reporting(&server, county, 12).await;

    for g in gateways {
        g.kill();
    }
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
    for g in back {
        g.kill();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_behind_which_forty_cameras_go_dark_is_told_once() {
    let county = "150304";
    let sink = WebhookSink::start().await;
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(config(&broker, dir.path(), county, &sink)).await;
    let id = format!("t{county}-big");
    server
        .import_registry(
            vec![registry_entry(&id, county, SchoolType::Secondary, 1, 40)],
            false,
        )
        .await
        .unwrap();
    let mut g = RawGateway::connect(broker.addr(), &id, county, 1).await;
    let mut devices = vec![device("alarm-1", K::Alarm, S::Up)];
    devices.extend((1..=40).map(|i| device(&format!("cam-{i}"), K::Camera, S::Up)));
    g.publish(&g.birth(devices)).await;
    g.start_heartbeats(HEARTBEAT);
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
    let sink = WebhookSink::start().await;
    let broker = TestBroker::start().await;
    let link = LinkProxy::start(broker.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&broker, dir.path(), county, &sink);
    // The server reaches the broker through a link the test can cut.
    cfg.mqtt.url = link.url();
    cfg.alerts.monitoring_grace = Duration::from_secs(1);
    let server = start_server(cfg).await;
    let ids = campuses(county, 6);
    register(&server, county, &ids).await;
    let gateways = online(&broker, county, 1, &ids).await;
    wait_reporting(&server, county, 6).await;

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
    for g in gateways {
        g.kill();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_link_flapping_every_second_is_told_once() {
    use campuswatch_protocol::{Event, Message};
    let county = "150403";
    let sink = WebhookSink::start().await;
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&broker, dir.path(), county, &sink);
    // Never down long enough to be an alert on its own.
    cfg.alerts.hold_down_alarm = Duration::from_secs(60);
    let server = start_server(cfg).await;
    let ids = campuses(county, 1);
    register(&server, county, &ids).await;
    let gateways = online(&broker, county, 1, &ids).await;
    wait_reporting(&server, county, 1).await;
    let g = &gateways[0];
    for i in 0..10u64 {
        let (from, to) = if i % 2 == 0 {
            (S::Up, S::Down)
        } else {
            (S::Down, S::Up)
        };
        g.publish(&Message::Event(Event {
            v: 1,
            campus: g.campus.clone(),
            region: g.region,
            id: i + 1,
            epoch: g.epoch,
            at: chrono::Utc::now(),
            device: campuswatch_protocol::DeviceId::parse("alarm-1").unwrap(),
            kind: K::Alarm,
            from,
            to,
            cause: Some("connection refused".into()),
            measurements: Default::default(),
            info: None,
        }))
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wait_kinds(&sink, &["alert_flapping"]).await;
    let told = &sink.bodies()[0];
    assert_eq!(
        (told["link"].as_str(), told["severity"].as_str()),
        (Some("alarm"), Some("critical"))
    );
    let alerts = get_json(&server, "/api/v1/alerts?state=open").await;
    assert_eq!(alerts["alerts"][0]["flapping"], true);
    for g in gateways {
        g.kill();
    }
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
    let sink = WebhookSink::start().await;
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&broker, dir.path(), county, &sink);
    cfg.mqtt.regions = vec![county.to_string(), other.to_string()];
    let server = start_server(cfg).await;
    let mine = campuses(county, 1);
    let theirs = campuses(other, 1);
    register(&server, county, &mine).await;
    register(&server, other, &theirs).await;

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
    let far = online(&broker, other, 1, &theirs).await;
    wait_reporting(&server, other, 1).await;
    for g in far {
        g.kill();
    }
    let gateways = online(&broker, county, 1, &mine).await;
    wait_reporting(&server, county, 1).await;
    for g in gateways {
        g.kill();
    }
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
