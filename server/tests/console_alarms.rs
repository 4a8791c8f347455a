//! The alarm centre and the popup of new critical alerts, in real headless Chromium: the
//! counts per severity, the alerts grouped by campus, a critical alert that pops up live
//! and is acknowledged from the popup, the filters, the history, a viewer of another
//! city; and screenshots of the overview and the alarm centre in both languages, on a
//! 1440×900 screen and a 390×844 phone, none of which scrolls sideways.

mod common;

use campuswatch_protocol::{CampusId, DeviceKind, DeviceState, RegionCode, SchoolType};
use campuswatch_server::auth::Role;
use campuswatch_server::testing::entry;
use campuswatch_testkit::{device, event};
use common::browser::Browser;

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

async fn sign_in(b: &Browser, base: &str, name: &str) {
    b.goto(&format!("{base}/console")).await;
    b.type_into("#signin input[name=name]", name).await;
    b.type_into("#signin input[name=password]", &format!("{name} password"))
        .await;
    b.click("#signin button[type=submit]").await;
    b.find("#totals .total").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_critical_alert_pops_up_live_and_is_acknowledged_from_the_alarm_centre() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in_with(
        dir.path(),
        vec![
            entry("k-1", "150102", SchoolType::Kindergarten, 1, 1),
            entry("b-1", "150203", SchoolType::Primary, 1, 1),
        ],
        &[
            ("duty", Role::Operator, None),
            ("hohhot", Role::Viewer, Some("150100")),
        ],
    )
    .await;
    // k-1 fully networked; b-1's alarm is down: its device's warning and its campus's
    // critical alarm networking alert, at once.
    let broker = common::broker_addr(&server);
    let up = |k, id| device(id, k, DeviceState::Up);
    let k1 = common::gateway(
        broker,
        "k-1",
        "150102",
        vec![
            up(DeviceKind::Alarm, "alarm-1"),
            up(DeviceKind::Camera, "cam-1"),
        ],
    )
    .await;
    let b1 = common::gateway(
        broker,
        "b-1",
        "150203",
        vec![
            device("alarm-1", DeviceKind::Alarm, DeviceState::Down),
            up(DeviceKind::Camera, "cam-1"),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());

    sign_in(&b, &base, "duty").await;
    b.goto(&format!("{base}/console/alarms")).await;
    b.wait_for_text("#alarm-counts", "1 严重").await;
    assert!(b.text("#alarm-counts").await.contains("1 警告"));
    let groups = b.text("#alarm-groups").await;
    assert!(
        groups.contains("b-1")
            && groups.contains("报警联网")
            && groups.contains("一键报警 alarm-1"),
        "{groups}"
    );
    assert!(groups.contains("包头市"), "the region column: {groups}");

    // k-1's alarm drops: a popup, wherever the operator is, acknowledged from there.
    b.click("#sound input").await;
    common::publish(
        &k1,
        &event(
            &CampusId::parse("k-1").unwrap(),
            RegionCode::parse("150102").unwrap(),
            1,
            1,
            "alarm-1",
            DeviceKind::Alarm,
            (DeviceState::Up, DeviceState::Down),
        ),
    )
    .await;
    let popup = b.wait_for_text("#popups .popup", "k-1").await;
    assert!(
        popup.contains("新的严重报警") && popup.contains("报警联网"),
        "{popup}"
    );
    b.click("#popups .popup button[data-popup-ack]").await;
    let acked = campuswatch_testkit::wait_for("the acknowledgement", DEADLINE, || async {
        let (_, open) = b
            .fetch("/api/v1/alerts?state=open&campus=k-1&kind=alarm_networking")
            .await;
        let by = open["alerts"][0]["acknowledged"]["by"].clone();
        (by == "duty").then_some(by)
    })
    .await;
    assert_eq!(acked, "duty");
    // The popup goes once the page has the server's answer (stored first, then answered).
    campuswatch_testkit::wait_for("the popup to go once acknowledged", DEADLINE, || async {
        (!b.shown("#popups .popup").await).then_some(())
    })
    .await;
    b.wait_for_text("#alarm-counts", "2 严重").await;

    // The critical ones only, at the press of their count.
    b.click("#alarm-counts button[data-severity=critical]")
        .await;
    // The filter shows it (a select's text is all its options: ask for its value).
    campuswatch_testkit::wait_for("the severity filter set", DEADLINE, || async {
        let v = b
            .eval(
                "const s = document.getElementById('al-severity'); return s ? s.value : null;",
                serde_json::json!([]),
            )
            .await;
        (v == "critical").then_some(())
    })
    .await;
    let groups = b.wait_for_text("#alarm-groups", "k-1").await;
    assert!(
        !groups.contains("一键报警 alarm-1"),
        "warnings left out: {groups}"
    );

    // b-1's alarm is back: its alerts go to the history.
    common::publish(
        &b1,
        &event(
            &CampusId::parse("b-1").unwrap(),
            RegionCode::parse("150203").unwrap(),
            1,
            1,
            "alarm-1",
            DeviceKind::Alarm,
            (DeviceState::Down, DeviceState::Up),
        ),
    )
    .await;
    b.click("#alarm-tabs button[data-tab=history]").await;
    campuswatch_testkit::wait_until("b-1 in the history", DEADLINE, async || {
        b.click("#alarm-tabs button[data-tab=history]").await;
        b.text("#history-rows").await.contains("b-1")
    })
    .await;
    let csv = b
        .eval(
            "return document.querySelector('#al-csv').getAttribute('href');",
            serde_json::json!([]),
        )
        .await;
    assert!(
        csv.as_str()
            .is_some_and(|h| h.contains("state=resolved") && h.contains("format=csv")),
        "{csv}"
    );

    // Screenshots, in both languages, on a screen and a phone.
    b.click("#alarm-tabs button[data-tab=open]").await;
    for (lang, suffix) in [("zh", ""), ("en", "&lang=en")] {
        for (w, h, screen) in [(1440, 900, "screen"), (390, 844, "phone")] {
            b.resize(w, h).await;
            for page in ["", "alarms", "campus/k-1"] {
                b.goto(&format!("{base}/console/{page}?live=off{suffix}"))
                    .await;
                b.find("body[data-ready='1']").await;
                let name = format!(
                    "{}-{lang}-{screen}",
                    if page.is_empty() {
                        "overview"
                    } else {
                        &page[..page.find('/').unwrap_or(page.len())]
                    }
                );
                assert!(!b.screenshot(&name).await, "{name} scrolls sideways");
            }
        }
    }
    b.resize(1440, 900).await;

    // A viewer of Hohhot: its alerts only.
    b.click("#signout").await;
    b.find("#signin").await;
    sign_in(&b, &base, "hohhot").await;
    b.goto(&format!("{base}/console/alarms")).await;
    let groups = b.wait_for_text("#alarm-groups", "k-1").await;
    assert!(!groups.contains("b-1"), "another city's campus: {groups}");
    assert!(
        !b.shown("button[data-ack-alert]").await,
        "a viewer may not acknowledge"
    );
    // Another city's overview: the API's refusal, said in the console's language.
    b.goto(&format!("{base}/console/?region=150203")).await;
    let said = b.wait_for_text("#page .error", "无权执行此操作").await;
    assert!(said.contains("150203"), "the server's detail too: {said}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallboard_shows_the_area_without_controls_and_outlives_a_server_restart() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in(dir.path()).await;
    server
        .import_registry(
            vec![
                entry("k-1", "150102", SchoolType::Kindergarten, 1, 1),
                entry("b-1", "150203", SchoolType::Primary, 1, 1),
            ],
            false,
        )
        .await
        .unwrap();
    common::add_users(&server, &[("wall", Role::Viewer, None)]).await;
    let broker = common::broker_addr(&server);
    let _b1 = common::gateway(
        broker,
        "b-1",
        "150203",
        vec![
            device("alarm-1", DeviceKind::Alarm, DeviceState::Down),
            device("cam-1", DeviceKind::Camera, DeviceState::Up),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    sign_in(&b, &base, "wall").await;
    b.goto(&format!("{base}/console/wall")).await;
    // The whole area first: no controls, the figures and the newest critical alert.
    let area = b.wait_for_text("#wall-area", "全部地区").await;
    assert_eq!(area, "全部地区");
    assert!(!b.shown("header").await, "full screen: no header");
    assert!(!b.shown("#wall button").await, "no controls");
    b.wait_for_text("#wall-alerts", "Campus b-1").await;
    assert!(b.text("#wall-age").await.contains("数据时间"));
    for lang in ["zh", "en"] {
        b.resize(1440, 900).await;
        b.goto(&format!("{base}/console/wall?lang={lang}")).await;
        b.find("#wall-area").await;
        assert!(!b.screenshot(&format!("wall-{lang}-screen")).await);
    }

    // The server goes away: the wall keeps its figures, dimmed, saying how old.
    let addr = server.http_addr();
    server.stop().await;
    b.wait_for_text("#wall-age", "Server not reachable").await;
    assert!(b.shown("#wall.lost").await);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = campuswatch_server::start(common::signed_in(dir.path()), listener)
        .await
        .unwrap();
    b.wait_for_text("#wall-age", "Figures as of").await;
    assert!(!b.shown("#wall.lost").await, "back to full colour");
    server.stop().await;
}
