//! The console for a command centre, in real headless Chromium: a campus that leaves video
//! coverage raises one critical campus-level alert in the alarm centre, which resolves
//! when the campus is back; the wallboard turns between the user's regions; the trend's
//! footnote names the server's time zone; and screenshots of the trend, registry and
//! reports pages in both languages, on a 1440×900 screen and a 390×844 phone, none of
//! which scrolls sideways.

mod common;

use std::time::Duration;

use campuswatch_protocol::{DeviceKind, DeviceState, SchoolType};
use campuswatch_server::auth::Role;
use campuswatch_server::config::ServerConfig;
use campuswatch_server::testing::entry;
use campuswatch_testkit::{device, event, wait_for, RawGateway};
use common::browser::Browser;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(20);

async fn sign_in(b: &Browser, base: &str, path: &str, name: &str) {
    b.goto(&format!("{base}{path}")).await;
    b.type_into("#signin input[name=name]", name).await;
    b.type_into("#signin input[name=password]", &format!("{name} password"))
        .await;
    b.click("#signin button[type=submit]").await;
}

/// The open alerts of campus `campus`, as (kind, severity, device), from the page's API.
async fn open_alerts(b: &Browser, campus: &str) -> Vec<(String, String, Option<String>)> {
    let (_, body) = b
        .fetch(&format!("/api/v1/alerts?state=open&campus={campus}"))
        .await;
    let mut v: Vec<_> = body["alerts"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap_or_default().to_string(),
                a["severity"].as_str().unwrap_or_default().to_string(),
                a["device"].as_str().map(str::to_string),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_leaving_video_coverage_raises_one_critical_alert_until_it_is_back() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::signed_in(dir.path());
    // A camera's alert (and the campus's video alert) at once: no hold-down to wait out.
    cfg.alerts.hold_down_camera = Duration::ZERO;
    let server = common::start(cfg).await;
    // Five cameras expected: at 80 % four must be up.
    server
        .import_registry(
            vec![entry("v-1", "150102", SchoolType::Primary, 1, 5).named("新城区视频小学")],
            false,
        )
        .await
        .unwrap();
    common::add_users(&server, &[("duty", Role::Operator, None)]).await;
    let mut devices = vec![device("alarm-1", DeviceKind::Alarm, DeviceState::Up)];
    for i in 1..=5 {
        devices.push(device(
            &format!("cam-{i}"),
            DeviceKind::Camera,
            DeviceState::Up,
        ));
    }
    let gw = RawGateway::online(
        common::broker_addr(&server),
        "v-1",
        "150102",
        1,
        devices,
        Duration::from_millis(300),
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    sign_in(&b, &base, "/console/alarms", "duty").await;
    b.wait_for_text("#alarm-counts", "0 严重").await;

    let camera = |id: u64, cam: &str, states: (DeviceState, DeviceState)| {
        event(
            &gw.campus,
            gw.region,
            gw.epoch,
            id,
            cam,
            DeviceKind::Camera,
            states,
        )
    };
    // One camera down: four of five are up, the campus is still video networked. Only
    // the camera's warning.
    gw.publish(&camera(1, "cam-1", (DeviceState::Up, DeviceState::Down)))
        .await;
    b.wait_for_text("#alarm-counts", "1 警告").await;
    assert_eq!(
        open_alerts(&b, "v-1").await,
        [("camera".into(), "warning".into(), Some("cam-1".into()))]
    );
    assert!(b.text("#alarm-counts").await.contains("0 严重"));

    // A second: three of five, below 80 %: one critical campus-level video alert.
    gw.publish(&camera(2, "cam-2", (DeviceState::Up, DeviceState::Down)))
        .await;
    let counts = b.wait_for_text("#alarm-counts", "1 严重").await;
    assert!(counts.contains("2 警告"), "{counts}");
    assert_eq!(
        open_alerts(&b, "v-1").await,
        [
            ("camera".into(), "warning".into(), Some("cam-1".into())),
            ("camera".into(), "warning".into(), Some("cam-2".into())),
            ("video".into(), "critical".into(), None),
        ]
    );
    let group = b.text("#alarm-groups article[data-campus='v-1']").await;
    assert!(
        group.contains("新城区视频小学") && group.contains("视频联网"),
        "{group}"
    );
    let critical = b
        .eval(
            "return [...document.querySelectorAll('#alarm-groups tr.sev-critical')].map(r => r.cells[1].innerText.trim());",
            json!([]),
        )
        .await;
    assert_eq!(critical, json!(["视频联网"]));

    // One camera back: four of five, networked again. The video alert resolves; cam-2's
    // warning stays.
    gw.publish(&camera(3, "cam-1", (DeviceState::Down, DeviceState::Up)))
        .await;
    let counts = b.wait_for_text("#alarm-counts", "0 严重").await;
    assert!(counts.contains("1 警告"), "{counts}");
    assert_eq!(
        open_alerts(&b, "v-1").await,
        [("camera".into(), "warning".into(), Some("cam-2".into()))]
    );
    let (_, resolved) = b
        .fetch("/api/v1/alerts?state=resolved&campus=v-1&kind=video")
        .await;
    assert_eq!(
        resolved["alerts"].as_array().map(Vec::len),
        Some(1),
        "{resolved}"
    );
    assert!(!b.text("#alarm-groups").await.contains("视频联网"));
    gw.kill();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallboard_turns_between_the_users_regions_and_the_trend_names_the_servers_zone() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        time_zone: "Europe/Berlin".into(),
        ..common::signed_in(dir.path())
    };
    let server = common::start(cfg).await;
    server
        .import_registry(
            vec![
                entry("h-1", "150102", SchoolType::Primary, 1, 1),
                entry("b-1", "150203", SchoolType::Primary, 1, 1),
            ],
            false,
        )
        .await
        .unwrap();
    common::add_users(&server, &[("province", Role::Viewer, Some("150000"))]).await;
    let base = format!("http://{}", server.http_addr());

    // Turning every second: the province, Hohhot, Baotou, and the province again.
    sign_in(&b, &base, "/console/wall?turn=1&live=off", "province").await;
    let mut seen: Vec<String> = Vec::new();
    for want in ["150000", "150100", "150200", "150000"] {
        let got = wait_for(&format!("the wall on {want}"), DEADLINE, || async {
            let region = b
                .eval(
                    "const w = document.getElementById('wall'); return w ? w.dataset.region : null;",
                    json!([]),
                )
                .await;
            (region == json!(want)).then_some(region)
        })
        .await;
        seen.push(got.as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["150000", "150100", "150200", "150000"]);
    let area = b.text("#wall-area").await;
    assert!(!area.is_empty(), "the wall names its region");

    // The trend's footnote names the server's zone, not Beijing time, in both languages.
    let offset = {
        use chrono::Offset;
        let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Berlin);
        let secs = now.offset().fix().local_minus_utc();
        format!("UTC+{:02}:00", secs / 3600)
    };
    b.goto(&format!("{base}/console/trend?live=off")).await;
    let note = b.wait_for_text("#trend-note", "Europe/Berlin").await;
    assert!(note.contains(&format!("Europe/Berlin，{offset}")), "{note}");
    assert!(!note.contains("北京时间"), "{note}");
    b.goto(&format!("{base}/console/trend?live=off&lang=en"))
        .await;
    let note = b.wait_for_text("#trend-note", "Europe/Berlin").await;
    assert!(note.contains(&format!("Europe/Berlin, {offset}")), "{note}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trend_registry_and_reports_pages_fit_a_screen_and_a_phone_in_both_languages() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(common::signed_in(dir.path())).await;
    let mut registry = Vec::new();
    for (i, county) in ["150102", "150203", "150826", "152502"].iter().enumerate() {
        for n in 1..=3 {
            registry.push(
                entry(
                    &format!("{county}-P-{n:04}"),
                    county,
                    SchoolType::ALL[(i + n) % 4],
                    1,
                    2,
                )
                .named(format!("第{n}学校（{county}）")),
            );
        }
    }
    server.import_registry(registry, false).await.unwrap();
    common::add_users(&server, &[("admin2", Role::Admin, None)]).await;
    let broker = common::broker_addr(&server);
    let mut gateways = Vec::new();
    for (id, county, alarm) in [
        ("150102-P-0001", "150102", DeviceState::Up),
        ("150102-P-0002", "150102", DeviceState::Down),
        ("150203-P-0001", "150203", DeviceState::Up),
    ] {
        gateways.push(
            common::gateway(
                broker,
                id,
                county,
                vec![
                    device("alarm-1", DeviceKind::Alarm, alarm),
                    device("cam-1", DeviceKind::Camera, DeviceState::Up),
                    device("cam-2", DeviceKind::Camera, DeviceState::Up),
                ],
            )
            .await,
        );
    }
    // An unregistered campus, for the registry's review list.
    gateways.push(common::gateway(broker, "stray-1", "150102", Vec::new()).await);
    let base = format!("http://{}", server.http_addr());
    sign_in(&b, &base, "/console?live=off", "admin2").await;
    b.find("#totals .total").await;

    let mut sideways = Vec::new();
    for (page, ready) in [
        ("trend", "#trend-days tbody tr"),
        ("registry", "#registered tbody tr"),
        ("reports", "#not-networked tbody tr"),
        ("access", "#user-rows tbody tr"),
        ("audit", "#audit-rows"),
    ] {
        for lang in ["zh", "en"] {
            for (w, h) in [(1440, 900), (390, 844)] {
                b.resize(w, h).await;
                b.goto(&format!("{base}/console/{page}?live=off&lang={lang}"))
                    .await;
                b.find(ready).await;
                let name = format!("history-{page}-{lang}-{w}");
                if b.screenshot(&name).await && w == 390 {
                    // Name what sticks out, to fix it.
                    let wide = b
                        .eval(
                            "const w = document.documentElement.clientWidth;
                             return [...document.querySelectorAll('body *')]
                               .filter(e => e.getBoundingClientRect().right > w + 1)
                               .filter(e => !e.parentElement || e.parentElement.getBoundingClientRect().right <= w + 1)
                               .map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + Math.round(e.getBoundingClientRect().right));",
                            json!([]),
                        )
                        .await;
                    sideways.push(format!("{name}: {wide}"));
                }
            }
        }
    }
    assert!(sideways.is_empty(), "these scroll sideways: {sideways:?}");

    // What the pages say of a campus never seen: since it was registered, with the date.
    b.resize(1440, 900).await;
    b.goto(&format!("{base}/console/reports?live=off&region=150826"))
        .await;
    let cell = b
        .wait_for_text("#not-networked td[data-since-registered]", "列入名册起")
        .await;
    let today = b
        .eval(
            "return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date());",
            json!([]),
        )
        .await;
    assert!(cell.contains(today.as_str().unwrap()), "{cell}");
    let v: Value = b.fetch("/api/v1/campuses/150826-P-0001").await.1;
    assert!(v["registered_at"].is_string(), "{v}");
    drop(gateways);
    server.stop().await;
}
