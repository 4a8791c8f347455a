//! A payload far above the protocol's bound, through a Mosquitto that passes it on (its
//! `message_size_limit` is unlimited by default): the server reads it, counts it as
//! `too_large`, acknowledges it and goes on, without losing its connection, at QoS 1
//! (which the broker would otherwise deliver again and again) and at QoS 0.

use std::time::Duration;

use campuswatch_protocol::{DeviceKind as K, DeviceState as S, Message, SchoolType};
use campuswatch_tests::*;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_payload_is_dropped_without_losing_the_broker() {
    let county = "150309";
    let id = format!("t{county}-gw");
    let broker_dir = tempfile::tempdir().unwrap();
    let Some(broker) = campuswatch_tests::mosquitto::RestartableMosquitto::start(broker_dir.path())
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = server_config(dir.path(), &broker.url(), county);
    let server = start_server(cfg).await;
    server
        .import_registry(
            vec![registry_entry(&id, county, SchoolType::Primary, 1, 1)],
            false,
        )
        .await
        .unwrap();
    let devices = vec![
        device("alarm-1", K::Alarm, S::Up),
        device("cam-01", K::Camera, S::Up),
    ];
    let addr = broker.url().trim_start_matches("mqtt://").parse().unwrap();
    let gw = RawGateway::online(addr, &id, county, 1, devices, Duration::from_millis(300)).await;
    wait_for("the gateway online", WAIT, || async {
        let v = get_json(&server, &format!("/api/v1/campuses/{id}")).await;
        (v["gateway_state"] == "online").then_some(())
    })
    .await;

    // Ten megabytes on the campus's event topic at QoS 1, and at QoS 0 on its heartbeat
    // topic, then a valid event: the alarm link drops.
    let huge = vec![b'{'; 10 * 1024 * 1024];
    gw.publish_raw(&format!("cw/v1/{county}/{id}/event"), huge.clone())
        .await;
    gw.publish_raw_at(
        &format!("cw/v1/{county}/{id}/heartbeat"),
        huge,
        rumqttc::QoS::AtMostOnce,
    )
    .await;
    let Message::Event(down) = campuswatch_testkit::event(
        &campuswatch_protocol::CampusId::parse(&id).unwrap(),
        campuswatch_protocol::RegionCode::parse(county).unwrap(),
        1,
        1,
        "alarm-1",
        K::Alarm,
        (S::Up, S::Down),
    ) else {
        unreachable!()
    };
    gw.publish(&Message::Event(down)).await;

    wait_for("both counted as too large", WAIT, || async {
        (server.metrics.dropped_count("too_large") >= 2).then_some(())
    })
    .await;
    wait_for("the valid event after them applied", WAIT, || async {
        let v = get_json(&server, &format!("/api/v1/campuses/{id}")).await;
        (v["device_list"][0]["state"] == "down").then_some(())
    })
    .await;
    // Never cut off: the connection held (so the QoS 1 one was acknowledged, not
    // delivered again), and the gateway stayed online through it all.
    assert_eq!(
        metric(&server, "cw_broker_disconnects_total").await,
        Some(0.0)
    );
    let v = get_json(&server, &format!("/api/v1/campuses/{id}")).await;
    assert_eq!(v["gateway_state"], "online", "{v}");
    gw.kill();
    server.stop().await;
    drop(broker);
}
