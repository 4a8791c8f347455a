//! The GB/T 28181 routes of the API, for every role and for a user scoped to another
//! region: the devices, one device with its channels, the campuses whose two views
//! disagree, and the campus detail's GB/T 28181 side.

mod common;

use std::time::Duration;

use campuswatch_protocol::{DeviceKind, DeviceState, SchoolType};
use campuswatch_server::auth::Role;
use campuswatch_server::testing::entry;
use campuswatch_testkit::device as device_report;
use serde_json::Value;

/// Campus A (county 150102, city 150100) lists its NVR; campus B (city 150200) its own.
const NVR_A: &str = "15010200001180000001";
const NVR_B: &str = "15020300001180000001";
/// Registered, listed by no campus.
const STRAY: &str = "15010200001180000077";

#[tokio::test]
async fn gb28181_routes_answer_every_role_within_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in_with(
        dir.path(),
        vec![
            entry("150102-P-0001", "150102", SchoolType::Primary, 1, 2).with_gb(&[NVR_A]),
            entry("150203-P-0001", "150203", SchoolType::Primary, 1, 1).with_gb(&[NVR_B]),
        ],
        &[
            ("viewer", Role::Viewer, None),
            ("operator", Role::Operator, None),
            ("admin", Role::Admin, None),
            ("baotou", Role::Admin, Some("150200")),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    // Campus A's agent sees both cameras up; its NVR has one channel OFF on the platform.
    let _agent = common::gateway(
        common::broker_addr(&server),
        "150102-P-0001",
        "150102",
        vec![
            device_report("alarm-1", DeviceKind::Alarm, DeviceState::Up),
            device_report("cam-1", DeviceKind::Camera, DeviceState::Up),
            device_report("cam-2", DeviceKind::Camera, DeviceState::Up),
        ],
    )
    .await;
    for input in [
        common::gb_registered(NVR_A),
        common::gb_catalog(
            NVR_A,
            &[
                ("15010200001320000001", true),
                ("15010200001320000002", false),
            ],
        ),
        common::gb_registered(NVR_B),
        common::gb_registered(STRAY),
    ] {
        server.gb_input(input).await;
    }
    let monitor = server.monitor.clone();
    campuswatch_testkit::wait_until(
        "the campus's views to disagree",
        Duration::from_secs(10),
        async || {
            let m = monitor.read().unwrap();
            m.gb_devices().len() == 3 && m.coverage().total(None, None).uplink_broken == 1
        },
    )
    .await;

    for name in ["viewer", "operator", "admin"] {
        let http = common::cookie_client(&base, name).await;
        let list = common::get_json(&http, &format!("{base}/api/v1/gb28181/devices")).await;
        let ids: Vec<&str> = list["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [NVR_A, STRAY, NVR_B], "{name}");
        let a = &list["devices"][0];
        assert_eq!(a["campus"], "150102-P-0001");
        assert_eq!(a["state"], "online");
        assert_eq!(a["channels"]["cameras"], 2);
        assert_eq!(a["channels"]["cameras_on"], 1);
        let unmapped = common::get_json(
            &http,
            &format!("{base}/api/v1/gb28181/devices?mapped=false"),
        )
        .await;
        assert_eq!(unmapped["devices"].as_array().unwrap().len(), 1);
        assert_eq!(unmapped["devices"][0]["id"], STRAY);
        assert_eq!(unmapped["devices"][0]["region"], "150102");

        let one = common::get_json(&http, &format!("{base}/api/v1/gb28181/devices/{NVR_A}")).await;
        let statuses: Vec<(&str, &str)> = one["channel_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["status"].as_str().unwrap(), c["kind"].as_str().unwrap()))
            .collect();
        assert_eq!(statuses, [("on", "camera"), ("off", "camera")]);
        assert_eq!(
            one["channel_list"][0]["name"],
            "channel 15010200001320000001"
        );

        let dis = common::get_json(&http, &format!("{base}/api/v1/coverage/disagreements")).await;
        let rows = dis["campuses"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{dis}");
        assert_eq!(rows[0]["campus"], "150102-P-0001");
        assert_eq!(rows[0]["disagreement"], "uplink_broken");
        assert_eq!(rows[0]["views"]["agent"], true);
        assert_eq!(rows[0]["views"]["platform"], false);
        assert_eq!(rows[0]["views"]["platform_cameras_on"], 1);

        let campus =
            common::get_json(&http, &format!("{base}/api/v1/campuses/150102-P-0001")).await;
        assert_eq!(campus["gb28181"]["listed"], serde_json::json!([NVR_A]));
        assert_eq!(campus["gb28181"]["views"]["in_force"], "platform");
        assert_eq!(campus["gb28181"]["devices"][0]["id"], NVR_A);
        // In force: the platform's view, so not video networked.
        assert_eq!(campus["video_networked"], false);

        // The coverage report keeps both views too, from the stored history.
        let report = common::get_json(&http, &format!("{base}/api/v1/reports/coverage")).await;
        let all = &report["rows"][0];
        assert_eq!(all["platform_campuses"], 2, "{report}");
        assert_eq!(all["video_networked_agent"], 1.0);
        assert_eq!(all["video_networked_platform"], 0.0);
        assert_eq!(all["video_networked"], 0.0);

        let coverage = common::get_json(&http, &format!("{base}/api/v1/coverage")).await;
        let views = &coverage["video_views"];
        assert_eq!(views["platform_campuses"], 2, "{coverage}");
        assert_eq!(views["agent_networked"], 1);
        assert_eq!(views["uplink_broken"], 1);
    }

    // A user scoped to another city sees only that city's device, and none of city
    // 150100's: not in lists, not by its code, not in disagreements.
    let baotou = common::cookie_client(&base, "baotou").await;
    let list = common::get_json(&baotou, &format!("{base}/api/v1/gb28181/devices")).await;
    let ids: Vec<&str> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [NVR_B]);
    for path in [NVR_A, STRAY] {
        let r = baotou
            .get(format!("{base}/api/v1/gb28181/devices/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let dis = common::get_json(&baotou, &format!("{base}/api/v1/coverage/disagreements")).await;
    assert_eq!(dis["campuses"], serde_json::json!([]));
    for path in [
        "/api/v1/gb28181/devices?region=150100",
        "/api/v1/coverage/disagreements?region=150102",
    ] {
        let r = baotou.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }

    // Without signing in: nothing. Bad input: a clear 400.
    let anonymous = reqwest::Client::new();
    for path in [
        "/api/v1/gb28181/devices".to_string(),
        format!("/api/v1/gb28181/devices/{NVR_A}"),
        "/api/v1/coverage/disagreements".to_string(),
    ] {
        let r = anonymous.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let viewer = common::cookie_client(&base, "viewer").await;
    for (path, says) in [
        ("/api/v1/gb28181/devices/1234", "20 digits"),
        ("/api/v1/gb28181/devices?state=up", "online or offline"),
        ("/api/v1/gb28181/devices?campus=..", "campus id"),
    ] {
        let r = viewer.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(body.to_string().contains(says), "{path}: {body}");
    }
    server.stop().await;
}
