//! Real agents, a real broker and the server together. A TCP proxy stands for each
//! gateway's network link, so a test can cut it (a killed gateway: the socket closes)
//! or freeze it (a frozen gateway: the connection stays open, nothing flows). Devices are
//! real TCP listeners.

use std::time::{Duration, Instant};

use campuswatch_agent::AgentConfig;
use campuswatch_protocol::SchoolType;
use campuswatch_server::ServerHandle;
use campuswatch_tests::*;

const WAIT: Duration = Duration::from_secs(20);

async fn campus(server: &ServerHandle, id: &str) -> serde_json::Value {
    get_json(server, &format!("/api/v1/campuses/{id}")).await
}

async fn wait_gateway(server: &ServerHandle, id: &str, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    wait_for(&format!("{id} to be {want}"), within, || async {
        (campus(server, id).await["gateway_state"] == want).then_some(())
    })
    .await;
    started.elapsed()
}

async fn open_alerts(server: &ServerHandle) -> Vec<serde_json::Value> {
    get_json(server, "/api/v1/alerts?state=open").await["alerts"]
        .as_array()
        .unwrap()
        .clone()
}

struct Setup {
    fixture: Fixture,
    _agent_dir: tempfile::TempDir,
    link: LinkProxy,
    device: TcpDevice,
    agent_cfg: AgentConfig,
}

async fn setup(county: &str, id: &str) -> Setup {
    let fixture = Fixture::start(
        county,
        vec![registry_entry(id, county, SchoolType::Primary, 1, 0)],
    )
    .await;
    let agent_dir = tempfile::tempdir().unwrap();
    let link = LinkProxy::start(fixture.broker.addr()).await;
    let device = TcpDevice::start().await;
    let mut agent_cfg = agent_config(id, county, &link.url(), agent_dir.path(), device.addr);
    agent_cfg.devices[0].down_after = Some(2);
    agent_cfg.devices[0].up_after = Some(1);
    Setup {
        fixture,
        _agent_dir: agent_dir,
        link,
        device,
        agent_cfg,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_is_flagged_within_two_seconds_and_recovers_with_a_new_epoch() {
    let s = setup("150202", "t150202-gw").await;
    let agent = spawn_agent(s.agent_cfg.clone());
    wait_gateway(&s.fixture.server, "t150202-gw", "online", WAIT).await;
    let epoch = campus(&s.fixture.server, "t150202-gw").await["gateway"]["epoch"]
        .as_u64()
        .unwrap();

    // The gateway's connection closes abruptly (a killed process, a pulled cable on a
    // link that resets): the broker publishes its Last Will.
    s.link.set(LinkMode::Cut);
    let took = wait_gateway(
        &s.fixture.server,
        "t150202-gw",
        "offline",
        Duration::from_secs(2),
    )
    .await;
    println!("killed gateway flagged offline after {took:?}");
    let alerts = wait_for("one gateway alert", WAIT, || async {
        let a = open_alerts(&s.fixture.server).await;
        (a.len() == 1).then_some(a)
    })
    .await;
    assert_eq!(alerts[0]["kind"], "gateway");

    s.link.set(LinkMode::Pass);
    wait_gateway(&s.fixture.server, "t150202-gw", "online", WAIT).await;
    let v = campus(&s.fixture.server, "t150202-gw").await;
    assert!(
        v["gateway"]["epoch"].as_u64().unwrap() > epoch,
        "a new session has a higher epoch"
    );
    wait_for("the gateway alert to resolve", WAIT, || async {
        open_alerts(&s.fixture.server)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    agent.stop().await;
    s.fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_gateway_is_flagged_stale_after_the_missed_heartbeats() {
    let s = setup("150203", "t150203-gw").await;
    let agent = spawn_agent(s.agent_cfg.clone());
    wait_gateway(&s.fixture.server, "t150203-gw", "online", WAIT).await;

    // The connection stays open but nothing flows: only the server's own heartbeat
    // timer can notice (3 x 300 ms here).
    s.link.set(LinkMode::Freeze);
    let took = wait_gateway(
        &s.fixture.server,
        "t150203-gw",
        "stale",
        Duration::from_millis(1500),
    )
    .await;
    println!("frozen gateway flagged stale after {took:?}");
    let v = campus(&s.fixture.server, "t150203-gw").await;
    assert!(
        v["gateway"]["cause"]
            .as_str()
            .unwrap()
            .contains("no heartbeat"),
        "{v}"
    );
    // Its devices are unknown now, and only the gateway is alerted.
    assert_eq!(v["device_list"][0]["state"], "unknown");

    s.link.set(LinkMode::Pass);
    wait_gateway(&s.fixture.server, "t150203-gw", "online", WAIT).await;
    agent.stop().await;
    s.fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_alarm_raises_its_alert_and_its_campus_alert_and_recovery_resolves_both() {
    let mut s = setup("150204", "t150204-gw").await;
    let agent = spawn_agent(s.agent_cfg.clone());
    wait_for("the alarm to be up", WAIT, || async {
        let v = campus(&s.fixture.server, "t150204-gw").await;
        (v["device_list"][0]["state"] == "up").then_some(())
    })
    .await;
    let cov = get_json(&s.fixture.server, "/api/v1/coverage?region=150204").await;
    assert_eq!(cov["alarm_networked"], 1);

    s.device.down().await;
    let alerts = wait_for("an alarm alert", WAIT, || async {
        let a = open_alerts(&s.fixture.server).await;
        (!a.is_empty()).then_some(a)
    })
    .await;
    // The device's alert, and the campus's: out of alarm coverage.
    let mut kinds: Vec<&str> = alerts.iter().filter_map(|a| a["kind"].as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["alarm", "alarm_networking"]);
    let device = alerts.iter().find(|a| a["kind"] == "alarm").unwrap();
    assert_eq!(device["device"], "alarm-1");
    assert!(device["cause"].as_str().is_some_and(|c| !c.is_empty()));
    let cov = get_json(&s.fixture.server, "/api/v1/coverage?region=150204").await;
    assert_eq!(cov["alarm_networked"], 0);

    s.device.up().await;
    wait_for("the alarm alert to resolve", WAIT, || async {
        open_alerts(&s.fixture.server)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    // History comes from the store, which follows the live state by one commit.
    let all = wait_for("the resolution to be stored", WAIT, || async {
        let all = get_json(&s.fixture.server, "/api/v1/alerts?state=all").await;
        let list = all["alerts"].as_array()?;
        list.iter()
            .all(|a| a["state"] != "open")
            .then_some(list.clone())
    })
    .await;
    assert_eq!(all.len(), 2, "one alert per link for one outage: {all:?}");
    assert!(all.iter().all(|a| a["state"] == "resolved"), "{all:?}");
    let events = get_json(
        &s.fixture.server,
        "/api/v1/events?campus=t150204-gw&kind=alarm",
    )
    .await;
    let tos: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(&tos[..2], ["up", "down"], "newest first: {tos:?}");
    agent.stop().await;
    s.fixture.server.stop().await;
}

fn spooled(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("spool").join("events.log"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_produced_while_the_broker_is_unreachable_arrive_afterwards_exactly_once() {
    let mut s = setup("150205", "t150205-gw").await;
    let agent = spawn_agent(s.agent_cfg.clone());
    wait_for("the alarm to be up", WAIT, || async {
        let v = campus(&s.fixture.server, "t150205-gw").await;
        (v["device_list"][0]["state"] == "up").then_some(())
    })
    .await;
    s.link.set(LinkMode::Cut);
    wait_gateway(&s.fixture.server, "t150205-gw", "offline", WAIT).await;

    // Three outages and recoveries while the broker cannot be reached: six events,
    // each waiting in the agent's spool.
    let spool_dir = s.agent_cfg.state_dir.clone();
    let before = spooled(&spool_dir);
    for i in 1..=3 {
        s.device.down().await;
        wait_for("a down event in the spool", WAIT, || async {
            (spooled(&spool_dir) >= before + 2 * i - 1).then_some(())
        })
        .await;
        s.device.up().await;
        wait_for("an up event in the spool", WAIT, || async {
            (spooled(&spool_dir) >= before + 2 * i).then_some(())
        })
        .await;
    }
    let restored_at = chrono::Utc::now();
    s.link.set(LinkMode::Pass);
    let events = wait_for("the six events at the server", WAIT, || async {
        let v = get_json(
            &s.fixture.server,
            "/api/v1/events?campus=t150205-gw&kind=alarm&limit=1000",
        )
        .await;
        let e = v["events"].as_array()?.clone();
        let downs = e.iter().filter(|e| e["to"] == "down").count();
        (downs >= 3).then_some(e)
    })
    .await;
    let mut ids: Vec<u64> = events
        .iter()
        .map(|e| e["event_id"].as_u64().unwrap())
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no event stored twice");
    // Unknown -> up, then three (up -> down, down -> up): seven, consecutive ids.
    assert_eq!(n, 7, "{events:?}");
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "no event lost: {ids:?}"
    );
    // Replayed with their original times: every one happened before the link came back.
    for e in &events {
        let at: chrono::DateTime<chrono::Utc> = e["at"].as_str().unwrap().parse().unwrap();
        assert!(at < restored_at, "{e}");
    }
    // And the current state is right: up, no alert.
    wait_gateway(&s.fixture.server, "t150205-gw", "online", WAIT).await;
    assert!(open_alerts(&s.fixture.server).await.is_empty());
    agent.stop().await;
    s.fixture.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_agent_shutdown_says_so_and_a_restart_keeps_counting_events() {
    let s = setup("150206", "t150206-gw").await;
    let agent = spawn_agent(s.agent_cfg.clone());
    wait_gateway(&s.fixture.server, "t150206-gw", "online", WAIT).await;
    let first = campus(&s.fixture.server, "t150206-gw").await;
    agent.stop().await;
    wait_gateway(&s.fixture.server, "t150206-gw", "offline", WAIT).await;
    let v = campus(&s.fixture.server, "t150206-gw").await;
    assert_eq!(v["gateway"]["cause"], "agent shut down");
    let agent = spawn_agent(s.agent_cfg.clone());
    wait_gateway(&s.fixture.server, "t150206-gw", "online", WAIT).await;
    let second = campus(&s.fixture.server, "t150206-gw").await;
    assert!(second["gateway"]["epoch"].as_u64() > first["gateway"]["epoch"].as_u64());
    agent.stop().await;
    s.fixture.server.stop().await;
}
