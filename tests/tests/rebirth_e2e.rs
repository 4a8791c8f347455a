//! Full state on request: heartbeats carry only a digest of the device states, so when
//! the server's view diverges from it (a lost birth, a view changed behind the agent's
//! back) the server asks the gateway for a rebirth and the view converges.

use std::time::Duration;

use campuswatch_protocol::{
    Birth, CampusId, DeviceKind, DeviceState, Message, RegionCode, SchoolType, BASE_SCHEMA_VERSION,
};
use campuswatch_server::ServerHandle;
use campuswatch_tests::*;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);
const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

async fn campus(server: &ServerHandle, id: &str) -> serde_json::Value {
    get_json(server, &format!("/api/v1/campuses/{id}")).await
}

/// The view the agent's birth gives: its version, the device as probed and up.
fn converged(v: &serde_json::Value) -> bool {
    v["gateway_state"] == "online"
        && v["gateway"]["agent_version"] == AGENT_VERSION
        && v["device_list"][0]["probe"] == "tcp"
        && v["device_list"][0]["reported_state"] == "up"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_heard_only_by_its_heartbeats_is_asked_for_its_birth() {
    let (county, id) = ("150223", "t150223-gw");
    // The gateway is up before the server: its birth goes out to nobody.
    let broker = TestBroker::start().await;
    let device = TcpDevice::start().await;
    let agent_dir = tempfile::tempdir().unwrap();
    let token = CancellationToken::new();
    let agent = tokio::spawn(campuswatch_agent::run(
        agent_config(id, county, &broker.url, agent_dir.path(), device.addr),
        token.clone(),
    ));
    // Its first event acknowledged by the broker: connected, birth sent.
    let acked = agent_dir.path().join("spool").join("acked");
    wait_for("the agent's first event at the broker", WAIT, || async {
        acked.exists().then_some(())
    })
    .await;

    let data = tempfile::tempdir().unwrap();
    let server = start_server(server_config(data.path(), &broker.url, county)).await;
    server
        .import_registry(
            vec![registry_entry(id, county, SchoolType::Primary, 1, 0)],
            false,
        )
        .await
        .unwrap();
    let v = wait_for("the agent's birth, asked for", WAIT, || async {
        let v = campus(&server, id).await;
        converged(&v).then_some(v)
    })
    .await;
    assert_eq!(
        v["gateway"]["heartbeat_interval_ms"], 300,
        "the birth's own fields: {v}"
    );
    assert!(metric(
        &server,
        "cw_rebirth_requests_total{reason=\"birth_missing\"}"
    )
    .await
    .is_some_and(|n| n >= 1.0));
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_that_disagrees_with_the_heartbeat_digest_is_repaired_by_a_rebirth() {
    let (county, id) = ("150224", "t150224-gw");
    let fixture = Fixture::start(
        county,
        vec![registry_entry(id, county, SchoolType::Primary, 1, 0)],
    )
    .await;
    let device = TcpDevice::start().await;
    let agent_dir = tempfile::tempdir().unwrap();
    let token = CancellationToken::new();
    let agent = tokio::spawn(campuswatch_agent::run(
        agent_config(
            id,
            county,
            &fixture.broker.url,
            agent_dir.path(),
            device.addr,
        ),
        token.clone(),
    ));
    let v = wait_for("the agent's view at the server", WAIT, || async {
        let v = campus(&fixture.server, id).await;
        converged(&v).then_some(v)
    })
    .await;
    let epoch = v["gateway"]["epoch"].as_u64().unwrap();
    let last_event_id = v["gateway"]["last_event_id"].as_u64().unwrap();
    assert!(last_event_id > 0, "{v}");

    // Someone else's birth of the same session says the alarm is down: the server's
    // view now disagrees with what the gateway's heartbeats say, at the same event.
    let intruder = RawGateway::connect(fixture.broker.addr(), "t150224-intruder", county, 1).await;
    let mut alarm = campuswatch_tests::device("alarm-1", DeviceKind::Alarm, DeviceState::Down);
    alarm.cause = Some("injected".into());
    let mut birth = Birth {
        v: BASE_SCHEMA_VERSION,
        campus: CampusId::parse(id).unwrap(),
        region: RegionCode::parse(county).unwrap(),
        epoch,
        at: chrono::Utc::now(),
        agent_version: "intruder".into(),
        config_digest: "-".into(),
        heartbeat_interval_ms: 300,
        last_event_id,
        devices: vec![alarm],
        dropped_events: 0,
    };
    birth.v = birth.needed_version();
    intruder.publish(&Message::Birth(birth)).await;
    wait_for("the digest mismatch to be noticed", WAIT, || async {
        metric(
            &fixture.server,
            "cw_rebirth_requests_total{reason=\"digest_mismatch\"}",
        )
        .await
        .filter(|n| *n >= 1.0)
    })
    .await;
    let v = wait_for("the view repaired by the rebirth", WAIT, || async {
        let v = campus(&fixture.server, id).await;
        converged(&v).then_some(v)
    })
    .await;
    assert_eq!(v["gateway"]["epoch"], epoch, "the same session");
    assert!(v["device_list"][0]["cause"].is_null(), "{v}");
    intruder.kill();
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    fixture.server.stop().await;
}
