//! The server against a real broker, with gateways played by plain MQTT clients that
//! speak docs/PROTOCOL.md (as `mosquitto_pub` would): epochs, coverage, bad input,
//! restarts. Each test watches its own county, so tests can share one broker.

use std::time::Duration;

use campuswatch_protocol::{DeviceKind as K, DeviceState as S, Message, SchoolType};
use campuswatch_tests::*;

const WAIT: Duration = Duration::from_secs(15);
/// How often the gateways played here send heartbeats.
const HEARTBEAT: Duration = Duration::from_millis(300);

async fn gateway_state(server: &campuswatch_server::ServerHandle, id: &str) -> Option<String> {
    let v = get_json(server, &format!("/api/v1/campuses/{id}")).await;
    v["gateway_state"].as_str().map(str::to_string)
}

async fn wait_state(server: &campuswatch_server::ServerHandle, id: &str, want: &str) {
    wait_for(&format!("{id} to be {want}"), WAIT, || async {
        (gateway_state(server, id).await.as_deref() == Some(want)).then_some(())
    })
    .await
}

fn healthy() -> Vec<campuswatch_protocol::DeviceReport> {
    vec![
        device("alarm-1", K::Alarm, S::Up),
        device("cam-1", K::Camera, S::Up),
        device("cam-2", K::Camera, S::Up),
    ]
}

/// A [`Fixture`] of `county` with `ids` registered, each a primary school of one alarm and
/// two cameras.
async fn primaries(county: &str, ids: &[&str]) -> Fixture {
    let registry = ids
        .iter()
        .map(|i| registry_entry(i, county, SchoolType::Primary, 1, 2))
        .collect();
    Fixture::start(county, registry).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_last_will_of_an_old_epoch_never_marks_a_live_gateway_offline() {
    let county = "150121";
    let id = "t150121-c1";
    let Fixture {
        broker,
        server,
        dir: _dir,
        ..
    } = primaries(county, &[id]).await;

    let old = RawGateway::connect(broker.addr(), id, county, 41).await;
    old.publish(&old.birth(healthy())).await;
    wait_state(&server, id, "online").await;
    old.kill();
    // The gateway reconnects with a new epoch (and is online again) ...
    let new = RawGateway::online(broker.addr(), id, county, 42, healthy(), HEARTBEAT).await;
    wait_for("epoch 42 to be applied", WAIT, || async {
        let v = get_json(&server, &format!("/api/v1/campuses/{id}")).await;
        (v["gateway"]["epoch"] == 42 && v["gateway_state"] == "online").then_some(())
    })
    .await;
    // ... and only then does the old session's Last Will arrive.
    let late = RawGateway::connect(broker.addr(), "t150121-late-publisher", county, 1).await;
    let will = Message::Death(campuswatch_protocol::Death {
        v: 1,
        campus: campuswatch_protocol::CampusId::parse(id).unwrap(),
        region: campuswatch_protocol::RegionCode::parse(county).unwrap(),
        epoch: 41,
        reason: campuswatch_protocol::DeathReason::ConnectionLost,
    });
    late.publish(&will).await;
    wait_for(
        "the late will to be counted as a stale epoch",
        WAIT,
        || async {
            let m = reqwest::get(format!("http://{}/metrics", server.http_addr()))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            m.contains("cw_messages_ignored_total{reason=\"stale_epoch\"}")
                .then_some(())
        },
    )
    .await;
    assert_eq!(gateway_state(&server, id).await.as_deref(), Some("online"));
    let alerts = get_json(&server, "/api/v1/alerts?state=open").await;
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 0, "{alerts}");

    // A death of the current epoch does take it offline, with one gateway alert.
    new.kill();
    wait_state(&server, id, "offline").await;
    // The store follows the in-memory state by one commit.
    let alerts = wait_for("the gateway alert", WAIT, || async {
        let v = get_json(&server, "/api/v1/alerts?state=open").await;
        let a = v["alerts"].as_array()?.clone();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["kind"], "gateway");
    assert!(alerts[0]["device"].is_null());
    late.kill();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_is_exact_with_never_seen_and_unregistered_campuses() {
    let county = "150122";
    let Fixture {
        broker,
        server,
        dir: _dir,
        ..
    } = Fixture::start(
        county,
        vec![
            registry_entry("t150122-ok", county, SchoolType::Primary, 1, 2),
            registry_entry("t150122-never", county, SchoolType::Kindergarten, 1, 8),
            registry_entry("t150122-noalarm", county, SchoolType::Secondary, 1, 2),
        ],
    )
    .await;
    let mut ok = RawGateway::connect(broker.addr(), "t150122-ok", county, 1).await;
    ok.publish(&ok.birth(healthy())).await;
    let mut noalarm = RawGateway::connect(broker.addr(), "t150122-noalarm", county, 1).await;
    noalarm
        .publish(&noalarm.birth(vec![
            device("alarm-1", K::Alarm, S::Down),
            device("cam-1", K::Camera, S::Up),
            device("cam-2", K::Camera, S::Degraded),
        ]))
        .await;
    let mut stray = RawGateway::connect(broker.addr(), "t150122-stray", county, 1).await;
    stray.publish(&stray.birth(healthy())).await;
    // Heartbeats keep them online however slowly the assertions below run.
    for g in [&mut ok, &mut noalarm, &mut stray] {
        g.start_heartbeats(HEARTBEAT);
    }
    wait_for("three campuses seen", WAIT, || async {
        let v = get_json(&server, "/api/v1/campuses").await;
        (v["total"] == 4
            && v["campuses"]
                .as_array()?
                .iter()
                .filter(|c| c["gateway_state"] == "online")
                .count()
                == 3)
            .then_some(())
    })
    .await;

    let cov = get_json(&server, &format!("/api/v1/coverage?region={county}")).await;
    assert_eq!(cov["registered"], 3, "{cov}");
    assert_eq!(cov["reporting"], 2);
    assert_eq!(cov["alarm_networked"], 1);
    assert_eq!(
        cov["video_networked"], 2,
        "a degraded camera still counts as networked"
    );
    assert_eq!(cov["fully_networked"], 1);
    assert_eq!(cov["fully_networked_rate"].as_f64().unwrap(), 1.0 / 3.0);
    assert_eq!(cov["devices"]["alarm"]["expected"], 3);
    assert_eq!(cov["devices"]["alarm"]["up"], 1);
    assert_eq!(cov["devices"]["camera"]["expected"], 12);
    assert_eq!(cov["devices"]["camera"]["up"], 4);
    let children = cov["children"].as_array().unwrap();
    let ids: Vec<_> = children
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t150122-never", "t150122-noalarm", "t150122-ok"]);
    let kg = cov["school_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["school_type"] == "kindergarten")
        .unwrap();
    assert_eq!(
        (kg["registered"].as_u64(), kg["reporting"].as_u64()),
        (Some(1), Some(0))
    );

    // Up the tree: the city and province hold exactly the same campuses.
    let city = get_json(&server, "/api/v1/coverage?region=150100").await;
    assert_eq!(city["registered"], 3);
    assert_eq!(city["children"][0]["code"], county);
    let by_type = get_json(
        &server,
        &format!("/api/v1/coverage?region={county}&school_type=secondary"),
    )
    .await;
    assert_eq!(
        (
            by_type["registered"].as_u64(),
            by_type["alarm_networked"].as_u64()
        ),
        (Some(1), Some(0))
    );

    // The stray campus is listed for review, never counted.
    let unregistered = get_json(&server, "/api/v1/campuses?registered=false").await;
    assert_eq!(unregistered["campuses"][0]["id"], "t150122-stray");
    assert_eq!(unregistered["total"], 1);
    // The campus without its alarm is flagged, with its alarm as the dropped link, and as
    // out of alarm coverage.
    let alerts = get_json(&server, "/api/v1/alerts?state=open").await;
    let mut alerts: Vec<(&str, &str, &str)> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or("");
            (s("campus"), s("kind"), s("device"))
        })
        .collect();
    alerts.sort();
    assert_eq!(
        alerts,
        [
            ("t150122-noalarm", "alarm", "alarm-1"),
            ("t150122-noalarm", "alarm_networking", "")
        ]
    );
    for g in [ok, noalarm, stray] {
        g.kill();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_counted_and_dropped_without_changing_coverage() {
    let county = "150123";
    let id = "t150123-c1";
    let Fixture {
        broker,
        server,
        dir: _dir,
        ..
    } = primaries(county, &[id]).await;
    let gw = RawGateway::online(broker.addr(), id, county, 1, healthy(), HEARTBEAT).await;
    wait_state(&server, id, "online").await;
    let before = get_json(&server, &format!("/api/v1/coverage?region={county}")).await;

    let base = format!("cw/v1/{county}/{id}");
    let death_other_campus = format!(
        r#"{{"v":1,"campus":"t150123-other","region":"{county}","epoch":1,"reason":"connection_lost"}}"#
    );
    let death_unknown_field = format!(
        r#"{{"v":1,"campus":"{id}","region":"{county}","epoch":1,"reason":"connection_lost","x":1}}"#
    );
    let death_v9 = format!(
        r#"{{"v":9,"campus":"{id}","region":"{county}","epoch":1,"reason":"connection_lost"}}"#
    );
    let cases: Vec<(String, Vec<u8>)> = vec![
        (format!("{base}/death"), b"{not json".to_vec()),
        (format!("{base}/death"), death_other_campus.into_bytes()),
        (format!("{base}/death"), death_unknown_field.into_bytes()),
        (format!("{base}/death"), death_v9.into_bytes()),
        (format!("{base}/event"), vec![b'x'; 300 * 1024]),
        (format!("{base}/death"), vec![0xff, 0xfe, 0xfd]),
    ];
    for (topic, payload) in &cases {
        gw.publish_raw(topic, payload.clone()).await;
    }
    // Delivery is at least once: a message whose acknowledgement was lost in a
    // reconnect comes again and is counted again, so each count is a lower bound.
    let expected = [
        ("malformed", 3),
        ("topic_mismatch", 1),
        ("version", 1),
        ("too_large", 1),
    ];
    wait_for("every bad message to be counted", WAIT, || async {
        let m = &server.metrics;
        expected
            .iter()
            .all(|(reason, n)| m.dropped_count(reason) >= *n)
            .then_some(())
    })
    .await;
    let after = get_json(&server, &format!("/api/v1/coverage?region={county}")).await;
    for key in [
        "registered",
        "reporting",
        "alarm_networked",
        "video_networked",
        "fully_networked",
    ] {
        assert_eq!(before[key], after[key], "{key}");
    }
    assert_eq!(gateway_state(&server, id).await.as_deref(), Some("online"));
    let health = get_json(&server, "/healthz").await;
    assert_eq!(health["database"], true);

    // Bad HTTP input gets a clear 400, not a crash.
    for path in [
        "/api/v1/coverage?region=15x",
        "/api/v1/coverage?school_type=university",
        "/api/v1/campuses?state=sleeping",
        "/api/v1/alerts?limit=-1",
        "/api/v1/events?colour=red",
    ] {
        let r = reqwest::get(format!("http://{}{path}", server.http_addr()))
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    gw.kill();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_import_with_bad_rows_is_refused_whole_with_line_numbers() {
    let county = "150124";
    let Fixture {
        server, dir: _dir, ..
    } = Fixture::start(county, vec![]).await;
    let url = format!("http://{}/api/v1/registry", server.http_addr());
    let http = reqwest::Client::new();
    let good = "id,name,region,school_type,expected_alarms,expected_cameras\n\
                t150124-a,第一小学,150124,primary,1,12\n\
                t150124-b,第一幼儿园,150124,幼儿园,1,8\n";
    let r = http.post(&url).body(good).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bad = "id,name,region,school_type,expected_alarms,expected_cameras\n\
               t150124-c,第二小学,150124,primary,1,12\n\
               t150124-d,第三小学,150100,primary,1,12\n\
               t150124-e,第四小学,150124,university,1,12\n";
    let r = http.post(&url).body(bad).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    let lines: Vec<_> = body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4], "{body}");
    let cov = get_json(&server, &format!("/api/v1/coverage?region={county}")).await;
    assert_eq!(cov["registered"], 2, "nothing of the bad file was imported");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_restores_state_and_raises_no_false_alerts() {
    let county = "150125";
    let ids = ["t150125-a", "t150125-b", "t150125-c"];
    let Fixture {
        broker,
        server,
        cfg,
        dir: _dir,
    } = primaries(county, &ids).await;
    let mut gateways = Vec::new();
    for id in ids {
        gateways.push(RawGateway::online(broker.addr(), id, county, 1, healthy(), HEARTBEAT).await);
    }
    for id in ids {
        wait_state(&server, id, "online").await;
    }
    server.stop().await;

    // While the server is away: longer than a staleness window passes, the gateways keep
    // heartbeating into the void.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let server = start_server(cfg).await;
    let cov = get_json(&server, &format!("/api/v1/coverage?region={county}")).await;
    assert_eq!(cov["fully_networked"], 3, "state is back at once: {cov}");
    // Three more windows with heartbeats flowing: still no alert of any kind.
    let until = std::time::Instant::now() + Duration::from_millis(2700);
    while std::time::Instant::now() < until {
        for id in ids {
            assert_eq!(gateway_state(&server, id).await.as_deref(), Some("online"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = get_json(&server, "/api/v1/alerts?state=all").await;
    assert_eq!(all["alerts"].as_array().unwrap().len(), 0, "{all}");
    // A gateway that really stops is still caught after the restart.
    gateways.pop().unwrap().kill();
    wait_state(&server, "t150125-c", "offline").await;
    for g in gateways {
        g.kill();
    }
    server.stop().await;
}
