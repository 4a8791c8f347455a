//! Two servers, each watching some regions (`mqtt.regions`) with its own database, give
//! one coverage figure for the whole area: each adds the other's (`cluster.peers`). The
//! same registry file is imported into both; each keeps its own regions' campuses.

mod common;

use std::time::{Duration, Instant};

use campuswatch_protocol::{DeviceKind, DeviceState, SchoolType};
use campuswatch_server::config::{ClusterConfig, ServerConfig};
use campuswatch_server::testing::entry;
use campuswatch_server::ServerHandle;
use campuswatch_testkit::device;

async fn coverage(server: &str, query: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(format!("http://{server}/api/v1/coverage{query}"))
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn wait_reporting(server: &str, query: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, c) = coverage(server, query).await;
        if c["reporting"] == n {
            return;
        }
        assert!(Instant::now() < deadline, "{server}{query}: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partition_answers_for_the_whole_area_and_a_missing_one_is_an_error() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let listen_a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen_b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr_a, addr_b) = (
        listen_a.local_addr().unwrap().to_string(),
        listen_b.local_addr().unwrap().to_string(),
    );
    let partition = |dir: &std::path::Path, id: &str, region: &str, peer: &str| {
        let mut cfg = common::local_config(dir);
        cfg.id = id.into();
        cfg.mqtt.regions = vec![region.into()];
        cfg.cluster = ClusterConfig {
            peers: vec![format!("http://{peer}")],
            ..ClusterConfig::default()
        };
        cfg
    };
    let cfg_a: ServerConfig = partition(dir_a.path(), "hohhot", "150100", &addr_b);
    let cfg_b: ServerConfig = partition(dir_b.path(), "baotou", "150200", &addr_a);
    let a: ServerHandle = campuswatch_server::start(cfg_a, listen_a).await.unwrap();
    let b: ServerHandle = campuswatch_server::start(cfg_b, listen_b).await.unwrap();

    // One registry for the province, imported into both.
    let registry = vec![
        entry("h-1", "150102", SchoolType::Primary, 1, 0),
        entry("h-2", "150102", SchoolType::Kindergarten, 1, 0),
        entry("b-1", "150203", SchoolType::Primary, 1, 0),
        entry("b-2", "150203", SchoolType::Secondary, 1, 0),
        entry("b-3", "150204", SchoolType::Primary, 1, 0),
    ];
    for server in [&a, &b] {
        server
            .import_registry(registry.clone(), false)
            .await
            .unwrap();
    }
    let alarm = || vec![device("alarm-1", DeviceKind::Alarm, DeviceState::Up)];
    let _gateways = [
        common::gateway(common::broker_addr(&a), "h-1", "150102", alarm()).await,
        common::gateway(common::broker_addr(&b), "b-1", "150203", alarm()).await,
        common::gateway(common::broker_addr(&b), "b-2", "150203", alarm()).await,
    ];
    wait_reporting(&addr_a, "?local=true", 1).await;
    wait_reporting(&addr_b, "?local=true", 2).await;

    // Each server alone knows its own campuses only.
    let (_, own) = coverage(&addr_a, "?local=true").await;
    assert_eq!(
        (own["registered"].clone(), own["reporting"].clone()),
        (2.into(), 1.into())
    );

    // Asked for the whole area, either answers the same figures.
    for server in [&addr_a, &addr_b] {
        let (status, all) = coverage(server, "").await;
        assert_eq!(status, 200, "{all}");
        assert_eq!(all["registered"], 5, "{all}");
        assert_eq!(all["reporting"], 3, "{all}");
        assert_eq!(all["alarm_networked"], 3, "{all}");
        assert_eq!(all["reporting_rate"], 0.6, "{all}");
        assert_eq!(all["devices"]["alarm"]["expected"], 5, "{all}");
        let primary = all["school_types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["school_type"] == "primary")
            .unwrap();
        assert_eq!(
            (primary["registered"].clone(), primary["reporting"].clone()),
            (3.into(), 2.into())
        );
        let cities: Vec<_> = all["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["code"].as_str().unwrap().to_string(),
                    c["registered"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(cities, [("150000".to_string(), 5)], "{all}");
    }
    // Below the province, a city of the other partition comes from it.
    let (_, baotou) = coverage(&addr_a, "?region=150200").await;
    assert_eq!(
        (baotou["registered"].clone(), baotou["reporting"].clone()),
        (3.into(), 2.into())
    );
    let counties: Vec<_> = baotou["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(counties, ["150203", "150204"], "{baotou}");
    let (_, campuses) = coverage(&addr_a, "?region=150203").await;
    assert_eq!(
        campuses["children"].as_array().unwrap().len(),
        2,
        "{campuses}"
    );

    // One partition gone: no smaller figure passed off as the whole area's.
    b.stop().await;
    let (status, err) = coverage(&addr_a, "").await;
    assert_eq!(status, 503, "{err}");
    assert!(err["error"].as_str().unwrap().contains(&addr_b), "{err}");
    let (status, _) = coverage(&addr_a, "?local=true").await;
    assert_eq!(status, 200);
    a.stop().await;
}
