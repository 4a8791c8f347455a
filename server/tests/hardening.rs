//! Attacks on the server's edges, each reproduced against a running server and shown
//! refused, counted and logged.

mod common;

use std::time::Duration;

use campuswatch_protocol::{DeviceKind, DeviceState};
use campuswatch_testkit::{device, wait_for};

const WAIT: Duration = Duration::from_secs(15);

/// PROTOCOL.md §2: a campus reports under its county's code. Messages on a city's or the
/// province's code are dropped as `topic`, never listed as an unregistered campus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_or_province_code_in_a_topic_is_dropped_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(common::local_config(dir.path()), listener)
        .await
        .unwrap();
    let broker = common::broker_addr(&server);
    let devices = || vec![device("alarm-1", DeviceKind::Alarm, DeviceState::Up)];
    // A birth and a heartbeat each, under the city of Hohhot and under the province.
    let _city = common::gateway(broker, "150100-K-1", "150100", devices()).await;
    let _province = common::gateway(broker, "150000-K-1", "150000", devices()).await;
    // And a campus that reports under its county, which is listed.
    let _county = common::gateway(broker, "150102-K-1", "150102", devices()).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr());
    let listed = wait_for("the county's campus to be listed", WAIT, || async {
        let v = common::get_json(&http, &format!("{base}/api/v1/campuses?registered=false")).await;
        let ids: Vec<String> = v["campuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        ids.contains(&"150102-K-1".to_string()).then_some(ids)
    })
    .await;
    wait_for("the four messages to be dropped as topic", WAIT, || async {
        (server.metrics.dropped_count("topic") >= 4).then_some(())
    })
    .await;
    // Every message is in by now: the county's campus alone is listed.
    let v = common::get_json(&http, &format!("{base}/api/v1/campuses?registered=false")).await;
    let ids: Vec<&str> = v["campuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["150102-K-1"], "{listed:?}");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cw_messages_dropped_total{reason=\"topic\"}"),
        "{metrics}"
    );
    server.stop().await;
}
