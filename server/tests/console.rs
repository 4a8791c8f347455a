//! The console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs) against a running server with a seeded
//! registry and gateways reporting over MQTT. A user signs in, reads the overview's
//! figures, drills down to a campus, acknowledges an alert, sees a device drop appear
//! without reloading and switches the language; a user of another county sees nothing
//! of this one.
//!
//! Without Chromium the tests say so and pass on a developer's machine; in CI (`CI` set)
//! they fail.

mod common;

use std::process::Command;

use campuswatch_protocol::{CampusId, DeviceKind, DeviceState, RegionCode, SchoolType};
use campuswatch_server::auth::Role;
use campuswatch_server::registry::RegistryEntry;
use campuswatch_server::testing;
use campuswatch_testkit::{device, event};
use common::browser::Browser;
use serde_json::json;

/// The page's DOM after its script ran, as Chromium renders it.
fn rendered(browser: &str, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("Chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A campus named "{id} 幼儿园" (the pages are read for that name), with an alarm and two
/// cameras.
fn entry(id: &str, region: &str, school_type: SchoolType) -> RegistryEntry {
    testing::entry(id, region, school_type, 1, 2).named(format!("{id} 幼儿园"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_registered_figures_in_chinese_and_in_english() {
    let Some(browser) = common::browser::chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::local_config(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(cfg, listener).await.unwrap();
    server
        .import_registry(
            vec![
                entry("k-1", "150102", SchoolType::Kindergarten),
                entry("k-2", "150102", SchoolType::Kindergarten),
                entry("p-1", "150203", SchoolType::Primary),
            ],
            false,
        )
        .await
        .unwrap();
    let base = format!("http://{}", server.http_addr());

    let browser = browser.to_string();
    // A still snapshot: an open live stream would keep the page loading forever.
    let url = format!("{base}/console?live=off");
    let zh = tokio::task::spawn_blocking({
        let (b, u) = (browser.clone(), url.clone());
        move || rendered(&b, &u)
    })
    .await
    .unwrap();
    assert!(zh.contains("<h2 id=\"area\">全部地区</h2>"), "{zh}");
    assert!(
        zh.contains("data-figure=\"registered\"><span>在册校园</span><b>3</b>"),
        "{zh}"
    );
    assert!(
        zh.contains("data-figure=\"reporting\"><span>在线上报</span><b>0</b>"),
        "{zh}"
    );

    // The county's page, in English: its two kindergartens, neither reporting.
    let en = tokio::task::spawn_blocking(move || {
        rendered(&browser, &format!("{url}&lang=en&region=150102"))
    })
    .await
    .unwrap();
    assert!(
        en.contains("<span>Registered campuses</span><b>2</b>"),
        "{en}"
    );
    assert!(
        en.contains("k-1 幼儿园") && en.contains("k-2 幼儿园"),
        "{en}"
    );
    assert!(!en.contains("p-1 幼儿园"), "another county's campus: {en}");
    assert!(en.contains(">Dropped links now<"), "{en}");
    server.stop().await;
}

/// Signs in through the console's form and waits for the overview.
async fn sign_in(b: &Browser, name: &str, password: &str) {
    b.type_into("#signin input[name=name]", name).await;
    b.type_into("#signin input[name=password]", password).await;
    b.click("#signin button[type=submit]").await;
    b.find("#totals .total").await;
}

/// A figure of the overview's totals, as shown.
async fn figure(b: &Browser, key: &str) -> String {
    b.text(&format!("#totals [data-figure={key}] b")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_drills_down_acknowledges_and_sees_a_drop_live() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(common::signed_in(dir.path()), listener)
        .await
        .unwrap();
    server
        .import_registry(
            vec![
                entry("k-1", "150102", SchoolType::Kindergarten),
                entry("k-2", "150102", SchoolType::Kindergarten),
                entry("p-1", "150102", SchoolType::Primary),
                entry("b-1", "150203", SchoolType::Primary),
            ],
            false,
        )
        .await
        .unwrap();
    common::add_users(
        &server,
        &[
            ("duty", Role::Operator, None),
            ("baotou", Role::Operator, Some("150203")),
        ],
    )
    .await;
    // k-1 fully networked; p-1 reports its alarm down (an alert at once); k-2 and b-1
    // have no gateway yet.
    let broker = common::broker_addr(&server);
    let k1 = common::gateway(
        broker,
        "k-1",
        "150102",
        vec![
            device("alarm-1", DeviceKind::Alarm, DeviceState::Up),
            device("cam-1", DeviceKind::Camera, DeviceState::Up),
            device("cam-2", DeviceKind::Camera, DeviceState::Up),
        ],
    )
    .await;
    let _p1 = common::gateway(
        broker,
        "p-1",
        "150102",
        vec![device("alarm-1", DeviceKind::Alarm, DeviceState::Down)],
    )
    .await;
    let base = format!("http://{}", server.http_addr());

    // Signed out, the console asks who you are; a wrong password is refused.
    b.goto(&format!("{base}/console")).await;
    b.type_into("#signin input[name=name]", "duty").await;
    b.type_into("#signin input[name=password]", "not the password")
        .await;
    b.click("#signin button[type=submit]").await;
    b.wait_for_text("#signin-error", "用户名或密码错误").await;
    b.eval(
        "document.querySelector('#signin').reset(); return 1;",
        json!([]),
    )
    .await;
    sign_in(&b, "duty", "duty password").await;
    b.wait_for_text("#alert-rows", "p-1 幼儿园").await;

    // The overview's figures, in Chinese by default.
    assert_eq!(b.text("header h1").await, "校园安防联网监测");
    assert_eq!(figure(&b, "registered").await, "4");
    assert_eq!(figure(&b, "reporting").await, "2");
    assert_eq!(figure(&b, "alarm").await, "1");
    assert_eq!(figure(&b, "video").await, "1");
    assert_eq!(figure(&b, "full").await, "1");
    let by_type = b.text("#school-types").await;
    assert!(
        by_type.contains("幼儿园") && by_type.contains("小学"),
        "{by_type}"
    );

    // Drill down province › city › county › campus, without reloading the page.
    b.page_marker(true).await;
    b.click("#children a[data-region='150000']").await;
    b.wait_for_text("#crumbs", "全部地区").await;
    b.click("#children a[data-region='150100']").await;
    b.click("#children a[data-region='150102']").await;
    let county = b.wait_for_text("#children", "k-2 幼儿园").await;
    assert!(!county.contains("b-1"), "another county's campus: {county}");
    assert_eq!(figure(&b, "registered").await, "3");
    assert!(b.url().await.contains("region=150102"));
    b.click("#children a[href^='/console/campus/k-1']").await;
    b.find("body[data-page=campus][data-ready]").await;
    assert!(b.url().await.contains("/console/campus/k-1"));
    assert_eq!(b.page_marker(false).await, json!(1), "the page reloaded");

    // Back to the overview: acknowledge p-1's alarm from the list, with a comment.
    b.click("#nav a[href^='/console/']").await;
    b.click("tr[data-alert] button[data-ack]").await;
    b.type_into("form[data-ack-form] input[name=comment]", "已电话通知学校")
        .await;
    b.click("form[data-ack-form] button[type=submit]").await;
    b.wait_for_text("#alert-rows", "已确认：duty").await;
    let (_, open) = b.fetch("/api/v1/alerts?state=open&campus=p-1").await;
    let ack = &open["alerts"][0]["acknowledged"];
    assert_eq!(ack["by"], "duty", "{open}");
    assert_eq!(ack["comment"], "已电话通知学校", "{open}");

    // k-1's alarm drops: the list and the figures change with no reload.
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
    b.wait_for_text("#alert-rows", "k-1 幼儿园").await;
    b.wait_for_text("#totals [data-figure=alarm] b", "0").await;
    assert_eq!(figure(&b, "full").await, "0");
    assert_eq!(b.page_marker(false).await, json!(1), "the page reloaded");
    assert_eq!(b.text("#link").await, "实时");

    // English at the press of a button, remembered.
    b.click("#lang").await;
    b.wait_for_text("header h1", "Campus safety network monitor")
        .await;
    b.wait_for_text("#totals", "Registered").await;
    b.wait_for_text("#alert-rows", "Acknowledged by duty").await;

    // The server goes away: the console says so, and recovers when it is back.
    let addr = server.http_addr();
    server.stop().await;
    b.wait_for_text("#link", "Connection lost").await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = campuswatch_server::start(common::signed_in(dir.path()), listener)
        .await
        .unwrap();
    b.wait_for_text("#link", "Live").await;
    assert_eq!(b.page_marker(false).await, json!(1), "the page reloaded");
    assert_eq!(figure(&b, "registered").await, "4");

    // Signed out, another county's operator sees nothing of this one.
    b.click("#signout").await;
    b.find("#signin").await;
    sign_in(&b, "baotou", "baotou password").await;
    assert_eq!(figure(&b, "registered").await, "1");
    let page = b.text("#page").await;
    for other in ["k-1", "k-2", "p-1"] {
        assert!(!page.contains(other), "{other} shown to Baotou: {page}");
    }
    assert_eq!(b.fetch("/api/v1/campuses/k-1").await.0, 404);
    assert_eq!(b.fetch("/api/v1/coverage?region=150102").await.0, 403);
    b.goto(&format!("{base}/console/campus/k-1?lang=en")).await;
    b.find("body[data-page=campus][data-ready]").await;
    let page = b.text("#page").await;
    assert!(!page.contains("k-1 幼儿园"), "{page}");
    server.stop().await;
}
