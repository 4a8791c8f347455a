//! The campus page and the coverage trend in a real headless Chromium: a gateway played
//! by an MQTT client reports its devices, a camera goes down, and the campus page shows
//! it live (gateway, host health, measurements, alert, timeline); the trend page draws a
//! seeded daily history with the figures the history gives and gaps for days without.
//!
//! Without Chromium the tests say so and pass on a developer's machine; in CI (`CI` set)
//! they fail.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use campuswatch_protocol::{
    CampusId, CauseCode, DeviceId, DeviceInfo, DeviceKind, DeviceReport, DeviceState, Event,
    Message, RegionCode, SchoolType, Timestamp, SCHEMA_VERSION,
};
use campuswatch_server::auth::{hash_password, Role};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::monitor::Change;
use campuswatch_server::store::Store;
use campuswatch_server::testing::{entry, transition};
use chrono::{FixedOffset, NaiveDate, TimeDelta};
use common::browser::Browser;
use serde_json::json;

const COUNTY: &str = "150102";

fn device(
    id: &str,
    kind: DeviceKind,
    probe: &str,
    measurements: &[(&str, f64)],
    info: Option<DeviceInfo>,
) -> DeviceReport {
    DeviceReport {
        id: DeviceId::parse(id).unwrap(),
        kind,
        probe: probe.into(),
        target: "10.1.2.3:554".into(),
        required: kind == DeviceKind::Alarm,
        state: DeviceState::Up,
        since: Some(chrono::Utc::now()),
        cause: None,
        cause_code: None,
        measurements: measurements
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        info,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campus_page_shows_the_gateway_the_devices_and_a_camera_going_down_live() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(common::alerts_at_once(dir.path())).await;
    server
        .import_registry(
            vec![entry("k-1", COUNTY, SchoolType::Kindergarten, 1, 2).named("新城区第一幼儿园")],
            false,
        )
        .await
        .unwrap();
    let base = format!("http://{}", server.http_addr());

    // Open the page before the gateway reports: it shows up through the live stream.
    browser
        .goto(&format!("{base}/console/campus/k-1?lang=en"))
        .await;
    browser
        .wait_for_text("#campus-name", "新城区第一幼儿园")
        .await;
    browser.wait_for_text("#gateway", "never seen").await;

    let client = common::gateway(
        common::broker_addr(&server),
        "k-1",
        COUNTY,
        vec![
            device(
                "alarm-1",
                DeviceKind::Alarm,
                "sip",
                &[("latency_ms", 1.8), ("sip_status", 200.0)],
                None,
            ),
            device(
                "cam-1",
                DeviceKind::Camera,
                "rtsp",
                &[
                    ("frame_rate", 25.0),
                    ("bitrate_kbps", 4096.0),
                    ("width", 1920.0),
                    ("height", 1080.0),
                ],
                Some(DeviceInfo {
                    manufacturer: Some("Hikvision".into()),
                    model: Some("DS-2CD2143G2-I".into()),
                    firmware: Some("V5.7.3".into()),
                    ..DeviceInfo::default()
                }),
            ),
            device(
                "cam-2",
                DeviceKind::Camera,
                "onvif",
                &[("clock_drift_s", 0.4)],
                None,
            ),
        ],
    )
    .await;

    // The birth reaches the open page through the live stream.
    browser
        .wait_for_text("#gateway [data-fact=state]", "online")
        .await;
    // The heartbeat changes no state, so nothing announces it: once the API has its host
    // health, load the page again.
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let c = common::get_json(&http, &format!("{base}/api/v1/campuses/k-1")).await;
        if !c["gateway"]["health"].is_null() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no heartbeat: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser
        .goto(&format!("{base}/console/campus/k-1?lang=en"))
        .await;

    // The gateway online with its host health (from the heartbeat).
    let gateway = browser.wait_for_text("#gateway", "3.5%").await;
    assert!(gateway.contains("online"), "{gateway}");
    let health = browser.text("#health").await;
    for figure in [
        "CPU\n3.5%",
        "Memory\n40.0%",
        "Disk\n12.5%",
        "Uptime\n16 min",
    ] {
        assert!(health.contains(figure), "{figure} in:\n{health}");
    }
    assert_eq!(browser.text("[data-fact=agent-version] dd").await, "test");
    // Not the epoch: a protocol counter, not a count of anything an operator knows.
    assert!(!browser.shown("[data-fact=epoch]").await);
    let flagged = browser
        .eval(
            "return document.getElementById('gateway').classList.contains('flagged');",
            json!([]),
        )
        .await;
    assert_eq!(flagged, json!(false), "an online gateway is not flagged");

    // The devices with their measurements, in words and units, and identity.
    let alarm = browser.text("tr[data-device=alarm-1]").await;
    assert!(alarm.contains("up"), "{alarm}");
    assert!(alarm.contains("latency 1.8 ms"), "{alarm}");
    assert!(alarm.contains("SIP status 200"), "{alarm}");
    let cam1 = browser.text("tr[data-device=cam-1]").await;
    for part in [
        "frame rate 25 fps",
        "bitrate 4.1 Mbit/s",
        "resolution 1920×1080",
        "Hikvision DS-2CD2143G2-I",
        "firmware V5.7.3",
    ] {
        assert!(cam1.contains(part), "{part} in:\n{cam1}");
    }
    assert!(browser
        .text("tr[data-device=cam-2]")
        .await
        .contains("clock drift 0.4 s"));
    let facts = browser.text("#campus-facts").await;
    assert!(
        facts.contains("Kindergarten")
            && facts.contains("Registered")
            && facts.contains("Xincheng District"),
        "{facts}"
    );

    // cam-2 goes down.
    let down = Message::Event(Event {
        v: SCHEMA_VERSION,
        campus: CampusId::parse("k-1").unwrap(),
        region: RegionCode::parse(COUNTY).unwrap(),
        id: 1,
        epoch: 1,
        at: chrono::Utc::now(),
        device: DeviceId::parse("cam-2").unwrap(),
        kind: DeviceKind::Camera,
        from: DeviceState::Up,
        to: DeviceState::Down,
        cause: Some("HTTP status 404 (expected 200)".into()),
        cause_code: Some(
            CauseCode::new("http.status")
                .with("got", 404u16)
                .with("expected", "200"),
        ),
        measurements: BTreeMap::from([("latency_ms".to_string(), 3000.0)]),
        info: None,
    });
    client
        .publish(
            down.topic().to_string(),
            rumqttc::QoS::AtLeastOnce,
            false,
            down.encode(),
        )
        .await
        .unwrap();

    let cam2 = browser.wait_for_text("tr[data-device=cam-2]", "down").await;
    assert!(cam2.contains("HTTP status 404 (expected 200)"), "{cam2}");
    let alerts = browser.wait_for_text("#campus-alerts", "cam-2").await;
    assert!(
        alerts.contains("camera cam-2") && alerts.contains("open"),
        "{alerts}"
    );

    // The timeline: the newest transition first, then the gateway's first report.
    browser.wait_for_text("#transitions", "cam-2").await;
    let rows = browser
        .eval(
            "return [...document.querySelectorAll('#transitions tr')].map(r => r.innerText);",
            json!([]),
        )
        .await;
    let rows: Vec<String> = serde_json::from_value(rows).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].contains("cam-2 camera")
            && rows[0].contains("up → down")
            && rows[0].contains("HTTP status 404 (expected 200)")
            && rows[0].contains("latency 3000 ms"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains("Gateway") && rows[1].contains("never seen → online"),
        "{rows:?}"
    );
    // One band per link, the gateway's too (it has a transition); each band ends in the
    // link's state now.
    let bands = browser
        .eval(
            "return [...document.querySelectorAll('#timeline-chart g[data-band]')].map(g => {
               const parts = [...g.querySelectorAll('rect[data-state]')];
               return [g.dataset.band, parts.map(r => r.dataset.state)];
             });",
            json!([]),
        )
        .await;
    assert_eq!(
        bands,
        json!([
            ["gateway", ["never_seen", "online"]],
            ["alarm-1", ["up"]],
            ["cam-1", ["up"]],
            ["cam-2", ["up", "down"]],
        ])
    );

    // Back to the campus's county in the overview.
    browser.click("#crumbs a[data-region='150102']").await;
    browser.wait_for_text("#area", "Xincheng District").await;
    assert!(browser
        .url()
        .await
        .ends_with("/console/?region=150102&lang=en"));
    assert!(browser.text("#children").await.contains("新城区第一幼儿园"));

    // In Chinese the cause is said from its code, with the agent's words on hover.
    browser
        .goto(&format!("{base}/console/campus/k-1?lang=zh"))
        .await;
    let said = "HTTP 状态码 404（应为 200）";
    let cam2 = browser.wait_for_text("tr[data-device=cam-2]", said).await;
    assert!(!cam2.contains("HTTP status"), "{cam2}");
    browser.wait_for_text("#campus-alerts", said).await;
    browser.wait_for_text("#transitions", said).await;
    let hover = browser
        .eval(
            "return document.querySelector('tr[data-device=cam-2] span[title]').title;",
            json!([]),
        )
        .await;
    assert_eq!(hover, json!("HTTP status 404 (expected 200)"));
    server.stop().await;
}

/// The local day `n` days before today, in the history's time zone (UTC+8).
fn day(n: i64) -> NaiveDate {
    let cst = FixedOffset::east_opt(8 * 3600).unwrap();
    chrono::Utc::now().with_timezone(&cst).date_naive() - TimeDelta::days(n)
}

/// Local midnight at the start of `d`, UTC+8.
fn midnight(d: NaiveDate) -> Timestamp {
    d.and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(FixedOffset::east_opt(8 * 3600).unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// A stored transition of campus t-1.
fn row(device: Option<&str>, from: &str, to: &str, at: Timestamp, id: u64) -> Change {
    Change::Transition(transition("t-1", COUNTY, device, (from, to), at, id))
}

/// Three days of history in the store before the server starts (so the server's own
/// daily task computes yesterday from it): two registered campuses of the county, t-1
/// online and networked from three days ago but for its camera down from noon the day
/// before yesterday until midnight, t-2 never seen; the server ran all three days and not
/// before. Plus a county user and a campus of another county.
async fn seed(cfg: &ServerConfig) {
    let store = Store::open(&cfg.database_url()).await.unwrap();
    let start = midnight(day(3));
    store
        .import_registry(
            &[
                entry("t-1", COUNTY, SchoolType::Primary, 1, 2).named("新城区第一小学"),
                entry("t-2", COUNTY, SchoolType::Kindergarten, 1, 2).named("新城区第二幼儿园"),
                entry("p-9", "150203", SchoolType::Primary, 1, 2).named("昆都仑区第九小学"),
            ],
            false,
            start - TimeDelta::days(30),
        )
        .await
        .unwrap();
    let run = store.start_server_run(start).await.unwrap();
    store.server_alive(run, midnight(day(0))).await.unwrap();
    let noon = midnight(day(2)) + TimeDelta::hours(12);
    let history = [
        row(None, "never_seen", "online", start, 0),
        row(Some("alarm-1"), "unknown", "up", start, 1),
        row(Some("cam-1"), "unknown", "up", start, 2),
        row(Some("cam-2"), "unknown", "up", start, 3),
        row(Some("cam-1"), "up", "down", noon, 4),
        row(Some("cam-1"), "down", "up", midnight(day(1)), 5),
    ];
    store.apply(&history, start).await.unwrap();
    let hash = hash_password("xincheng password").unwrap();
    store
        .put_user(
            "xincheng",
            &hash,
            Role::Viewer,
            Some(RegionCode::parse(COUNTY).unwrap()),
            start,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trend_page_draws_the_daily_history_with_gaps_where_there_is_none() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::signed_in(dir.path());
    seed(&cfg).await;
    let server = common::start(cfg).await;
    let base = format!("http://{}", server.http_addr());

    // A county user signs in (the Chinese default) and sees their county's trend.
    browser.goto(&format!("{base}/console/trend")).await;
    browser
        .type_into("#signin input[name=name]", "xincheng")
        .await;
    browser
        .type_into("#signin input[name=password]", "xincheng password")
        .await;
    browser.click("#signin button[type=submit]").await;
    let title = browser.wait_for_text("#trend-area", "新城区").await;
    assert!(title.contains("联网率趋势"), "{title}");
    assert_eq!(browser.text("header nav a.here").await, "趋势");

    // Four weeks by default: 28 days up to yesterday and today so far, newest first.
    let dates = browser
        .eval(
            "return [...document.querySelectorAll('#trend-days tbody tr')].map(r => r.dataset.date);",
            json!([]),
        )
        .await;
    let expected: Vec<String> = (0..=28).map(|n| day(n).to_string()).collect();
    assert_eq!(dates, json!(expected));
    // Yesterday and the day before that, with the figures the history gives: t-1 fully
    // networked but for 12 h of camera, t-2 never seen.
    let cells = |d: NaiveDate| {
        let b = &browser;
        async move {
            b.eval(
                "return [...document.querySelectorAll(`#trend-days tr[data-date='${arguments[0]}'] td`)].map(c => c.innerText.trim());",
                json!([d.to_string()]),
            )
            .await
        }
    };
    let whole = |d: NaiveDate, video: &str, full: &str| {
        json!([d.to_string(), "2", "2", "50.0%", "50.0%", video, full])
    };
    assert_eq!(cells(day(1)).await, whole(day(1), "50.0%", "50.0%"));
    assert_eq!(cells(day(2)).await, whole(day(2), "25.0%", "25.0%"));
    assert_eq!(cells(day(3)).await, whole(day(3), "50.0%", "50.0%"));
    // Today so far, labelled so: the server has run since it started a moment ago
    // (not since midnight, when the seeded run ended), t-1 networked and t-2 never seen.
    let now = cells(day(0)).await;
    let label = now[0].as_str().unwrap();
    assert!(
        label.starts_with(&day(0).to_string()) && label.contains("今天（截至"),
        "{now}"
    );
    assert_eq!(
        now.as_array().unwrap()[1..],
        whole(day(0), "50.0%", "50.0%").as_array().unwrap()[1..]
    );
    let note = browser.text("#trend-note").await;
    assert!(
        note.contains("北京时间，UTC+08:00") && note.contains("“今天”为当日零时至"),
        "{note}"
    );
    // Before the history began: nothing computed or stored, a gap, not 0%.
    assert_eq!(
        cells(day(4)).await,
        json!([day(4).to_string(), "–", "–", "无历史数据"])
    );

    // The chart: a point per series on each day with history and none elsewhere, one
    // unbroken line over the three days.
    let points = browser
        .eval(
            "const out = {};
             for (const g of document.querySelectorAll('#trend-chart g[data-series]')) {
               out[g.dataset.series] = {
                 days: [...g.querySelectorAll('circle')].map(c => [c.dataset.date, Number(c.dataset.rate)]),
                 moves: (g.querySelector('path').getAttribute('d').match(/M/g) || []).length,
               };
             }
             return out;",
            json!([]),
        )
        .await;
    let series = |rates: [f64; 3]| {
        json!({
            "days": [
                [day(3).to_string(), rates[0]],
                [day(2).to_string(), rates[1]],
                [day(1).to_string(), rates[2]],
                [day(0).to_string(), 0.5],
            ],
            "moves": 1,
        })
    };
    assert_eq!(
        points,
        json!({
            "reporting-rate": series([0.5, 0.5, 0.5]),
            "alarm-rate": series([0.5, 0.5, 0.5]),
            "video-rate": series([0.5, 0.25, 0.5]),
            "full-rate": series([0.5, 0.25, 0.5]),
        })
    );
    let legend = browser.text("#trend-legend").await;
    for name in ["上报率", "一键报警联网率", "视频联网率", "全部联网率"] {
        assert!(legend.contains(name), "{name} in {legend}");
    }
    // Today's point is hollow, apart from the line of whole days.
    let hollow = browser
        .eval(
            "return [...document.querySelectorAll('#trend-chart circle[data-today]')].map(c => c.getAttribute('fill'));",
            json!([]),
        )
        .await;
    assert_eq!(hollow, json!(["#fff", "#fff", "#fff", "#fff"]));
    // Axis labels: the rates, and dates a week apart ending today.
    let labels = browser
        .eval(
            "return [...document.querySelectorAll('#trend-chart text')].map(t => t.textContent);",
            json!([]),
        )
        .await;
    let mut expected: Vec<String> = ["0%", "25%", "50%", "75%", "100%"].map(String::from).into();
    expected.extend([28, 21, 14, 7, 0].map(|n| day(n).format("%m-%d").to_string()));
    assert_eq!(labels, json!(expected));

    // Eight weeks: 56 days, the same three with history.
    browser.click("#trend-weeks a[data-weeks='8']").await;
    browser
        .find(&format!("#trend[data-from='{}']", day(56)))
        .await;
    let rows = browser
        .eval(
            "return document.querySelectorAll('#trend-days tbody tr:not(.gap)').length
               + '/' + document.querySelectorAll('#trend-days tbody tr').length;",
            json!([]),
        )
        .await;
    assert_eq!(rows, json!("4/57"));
    assert!(browser.url().await.ends_with("/console/trend?weeks=8"));

    // A campus of another county is not there for this user.
    browser.goto(&format!("{base}/console/campus/p-9")).await;
    let missing = browser.wait_for_text("#campus-missing", "未找到校园").await;
    assert!(missing.contains("p-9"), "{missing}");
    server.stop().await;
}
