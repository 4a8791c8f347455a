//! The overview as a provincial operator uses it, in real headless Chromium: the worst
//! county is one click from the province's first screen, the map's colours are the API's
//! rates on the console's scale for every county, and times read the same whatever the
//! browser's own time zone.

mod common;

use campuswatch_protocol::{DeviceKind, DeviceState, SchoolType};
use campuswatch_server::auth::Role;
use campuswatch_server::testing::entry;
use campuswatch_testkit::device;
use common::browser::Browser;
use serde_json::json;

/// The console's colour step of a rate (`step` in console.js), written again from its
/// documented thresholds.
fn step(rate: Option<f64>) -> &'static str {
    match rate {
        None => "rn",
        Some(r) if r <= 0.0 => "r0",
        Some(r) if r < 0.5 => "r1",
        Some(r) if r < 0.8 => "r2",
        Some(r) if r < 0.9 => "r3",
        Some(r) if r < 0.98 => "r4",
        Some(_) => "r5",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_county_is_one_click_away_the_map_agrees_with_the_api_and_times_ignore_the_browsers_zone(
) {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in(dir.path()).await;
    // Xincheng: 3 campuses, 1 networked. Kundulun: 2, both out. Hanggin Rear: 1, networked.
    let registry = [
        ("x-1", "150102"),
        ("x-2", "150102"),
        ("x-3", "150102"),
        ("k-1", "150203"),
        ("k-2", "150203"),
        ("h-1", "150826"),
    ];
    server
        .import_registry(
            registry
                .iter()
                .map(|(id, county)| entry(id, county, SchoolType::Primary, 1, 1))
                .collect(),
            false,
        )
        .await
        .unwrap();
    common::add_users(&server, &[("province", Role::Viewer, None)]).await;
    let broker = common::broker_addr(&server);
    let mut gateways = Vec::new();
    for (id, county, alarm) in [
        ("x-1", "150102", DeviceState::Up),
        ("x-2", "150102", DeviceState::Down),
        ("k-1", "150203", DeviceState::Down),
        ("h-1", "150826", DeviceState::Up),
    ] {
        let devices = vec![
            device("alarm-1", DeviceKind::Alarm, alarm),
            device("cam-1", DeviceKind::Camera, DeviceState::Up),
        ];
        gateways.push(common::gateway(broker, id, county, devices).await);
    }
    let base = format!("http://{}", server.http_addr());
    b.goto(&format!("{base}/console")).await;
    b.type_into("#signin input[name=name]", "province").await;
    b.type_into("#signin input[name=password]", "province password")
        .await;
    b.click("#signin button[type=submit]").await;
    b.wait_for_text("#totals [data-figure=reporting] b", "4")
        .await;

    // The first screen ranks the counties; the worst is Kundulun (2 of 2 out), one click
    // from the province's overview.
    let first = b.text("#worst-regions li:first-child").await;
    assert!(
        first.contains("昆都仑区") && first.contains("2 / 2"),
        "{first}"
    );
    b.click("#worst-regions li:first-child a").await;
    b.wait_for_text("#area", "昆都仑区").await;
    assert!(b.url().await.contains("region=150203"));

    // Back to the province: every county's tile has the colour of its rate.
    b.goto(&format!("{base}/console/?region=150000")).await;
    b.find("#map").await;
    let (_, counties) = b.fetch("/api/v1/coverage?level=county&region=150000").await;
    let tiles = b
        .eval(
            "return [...document.querySelectorAll('#map a[data-tile] rect')].map(r => [r.parentNode.dataset.tile, r.getAttribute('class')]);",
            json!([]),
        )
        .await;
    let tiles = tiles.as_array().unwrap();
    assert_eq!(tiles.len(), 103, "one tile per county of Inner Mongolia");
    for tile in tiles {
        let code = tile[0].as_str().unwrap();
        let class = tile[1].as_str().unwrap();
        let county = counties["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == code);
        let want = step(county.and_then(|c| c["fully_networked_rate"].as_f64()));
        assert!(
            class.split(' ').any(|c| c == want),
            "county {code}: tile {class}, rate {county:?}"
        );
    }

    // The same times with the browser in UTC, in China and in New York: the server's
    // zone (Asia/Shanghai), always.
    let shown = |zone: &'static str| {
        let b = &b;
        let base = &base;
        async move {
            b.cdp(
                "Emulation.setTimezoneOverride",
                json!({ "timezoneId": zone }),
            )
            .await;
            b.goto(&format!("{base}/console/alarms?live=off")).await;
            b.find("#alarm-groups tr[data-alert]").await;
            let offset = b
                .eval("return new Date(0).getTimezoneOffset();", json!([]))
                .await;
            let want = match zone {
                "UTC" => 0,
                "Asia/Shanghai" => -480,
                _ => 300,
            };
            assert_eq!(offset, json!(want), "the browser is in {zone}");
            b.text("#alarm-groups tr[data-alert] td:nth-child(3)").await
        }
    };
    let utc = shown("UTC").await;
    assert_eq!(utc, shown("Asia/Shanghai").await, "an alert's time");
    assert_eq!(utc, shown("America/New_York").await, "an alert's time");
    let (_, all) = b.fetch("/api/v1/alerts?state=open&limit=100").await;
    let in_china: Vec<String> = all["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            chrono::DateTime::parse_from_rfc3339(a["since"].as_str().unwrap())
                .unwrap()
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .collect();
    assert!(in_china.contains(&utc), "{utc} is none of {in_china:?}");
    drop(gateways);
    server.stop().await;
}
