//! The console's registry and reports pages in a real headless Chromium, driven over
//! WebDriver: an administrator imports a registry file through the page (a file with bad
//! lines is refused whole, each line named), a viewer only reads; a report of a known day
//! shows the hand-computed figures, links its CSV and prints without the console's frame.
//!
//! Without Chromium and ChromeDriver the tests say so and pass on a developer's machine;
//! in CI (`CI` set) they fail.

mod common;

use campuswatch_protocol::SchoolType;
use campuswatch_server::auth::{hash_password, Role};
use campuswatch_server::monitor::Change;
use campuswatch_server::registry::COLUMNS;
use campuswatch_server::testing::{self, entry, ManualClock};
use campuswatch_testkit::at;
use common::browser::Browser;
use serde_json::{json, Value};

/// Signs in through the console's own form, starting at `path`.
async fn sign_in(browser: &Browser, base: &str, path: &str, name: &str, password: &str) {
    browser.goto(&format!("{base}{path}")).await;
    browser.type_into("#signin input[name=name]", name).await;
    browser
        .type_into("#signin input[name=password]", password)
        .await;
    browser.click("#signin button[type=submit]").await;
}

/// The cells' texts of each body row of the table matching `css`.
async fn rows(browser: &Browser, css: &str) -> Vec<Vec<String>> {
    let v = browser
        .eval(
            "return [...document.querySelectorAll(arguments[0] + ' tbody tr')].map(r => [...r.cells].map(c => c.innerText.trim()));",
            json!([css]),
        )
        .await;
    serde_json::from_value(v).unwrap()
}

/// The body row whose first cell contains `first`.
fn row<'a>(rows: &'a [Vec<String>], first: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r[0].contains(first))
        .unwrap_or_else(|| panic!("no row {first:?} in {rows:?}"))
}

/// Fetches `url` in the page (with its session) and answers [content type, text].
async fn fetch(browser: &Browser, url: &str) -> (String, String) {
    let v: Value = browser
        .eval(
            // Decoded keeping a byte order mark, which `text()` would drop.
            "return fetch(arguments[0]).then(r => r.arrayBuffer().then(b => [r.headers.get('content-type'), new TextDecoder('utf-8', { ignoreBOM: true }).decode(b)]));",
            json!([url]),
        )
        .await;
    (
        v[0].as_str().unwrap_or_default().to_string(),
        v[1].as_str().unwrap_or_default().to_string(),
    )
}

async fn href(browser: &Browser, css: &str) -> String {
    browser
        .eval(
            "return document.querySelector(arguments[0]).getAttribute('href');",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_imports_the_registry_in_the_console_and_a_viewer_only_reads_it() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(common::signed_in(dir.path()), listener)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    for (name, role) in [("registrar", Role::Admin), ("watcher", Role::Viewer)] {
        let hash = hash_password(&format!("{name} password")).unwrap();
        server
            .store
            .put_user(name, &hash, role, None, now)
            .await
            .unwrap();
    }
    server
        .import_registry(
            vec![
                entry("150102-K-0001", "150102", SchoolType::Kindergarten, 1, 1)
                    .named("新城区第一幼儿园"),
                entry("150102-P-0001", "150102", SchoolType::Primary, 1, 1).named("新城区第一小学"),
            ],
            false,
        )
        .await
        .unwrap();
    let base = format!("http://{}", server.http_addr());

    sign_in(
        &browser,
        &base,
        "/console/registry?lang=en",
        "registrar",
        "registrar password",
    )
    .await;
    browser.wait_for_text("#registered-total", "2").await;
    assert_eq!(
        rows(&browser, "#registry-types").await,
        [
            vec!["Kindergarten", "1", "0 (0.0%)"],
            vec!["Primary", "1", "0 (0.0%)"]
        ]
    );
    // The expected columns, as the parser names them.
    let help = browser.text("#import-help").await;
    assert!(help.contains(&COLUMNS.join(",")), "{help}");
    assert!(help.contains("nothing is imported"), "{help}");

    // A file with two bad lines (3: a city's code, 4: an unknown school type) is refused
    // whole: the good line 2 is not imported either.
    let files = tempfile::tempdir().unwrap();
    let header = COLUMNS.join(",");
    let bad = files.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "{header}\n150102-P-0002,新城区第二小学,150102,primary,1,4\n150102-P-0003,新城区第三小学,150100,primary,1,4\n150102-P-0004,新城区第四小学,150102,college,1,4\n"
        ),
    )
    .unwrap();
    browser
        .type_into("#import-file", bad.to_str().unwrap())
        .await;
    browser.click("#import-form button[type=submit]").await;
    let refused = browser
        .wait_for_text("#import-result", "nothing was imported")
        .await;
    assert!(refused.contains("bad.csv"), "{refused}");
    let errors = rows(&browser, "#import-errors").await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0][..2], ["3", "region"]);
    assert!(
        errors[0][2].contains("150100 is the code of a city"),
        "{errors:?}"
    );
    assert_eq!(errors[1][..2], ["4", "school_type"]);
    assert!(
        errors[1][2].contains("Unknown school type “college”"),
        "{errors:?}"
    );
    // The same reasons in Chinese, from their codes.
    browser.click("#lang").await;
    browser
        .wait_for_text("#import-result", "未导入任何校园")
        .await;
    let errors = rows(&browser, "#import-errors").await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0][2].contains("150100 是地级市（盟）的代码") && errors[0][2].contains("县级行政区"),
        "{errors:?}"
    );
    assert!(
        errors[1][2].contains("未知的学校类型“college”"),
        "{errors:?}"
    );
    browser.click("#lang").await;
    browser
        .wait_for_text("#import-result", "nothing was imported")
        .await;
    assert_eq!(server.store.registry().await.unwrap().len(), 2);
    assert_eq!(browser.text("#registered-total").await, "2");

    // A good file: its three campuses are imported, the page and the overview count 5.
    let good = files.path().join("good.csv");
    std::fs::write(
        &good,
        format!(
            "{header}\n150102-P-0002,新城区第二小学,150102,primary,1,4\n150102-P-0003,新城区第三小学,150102,小学,1,4\n150203-S-0001,昆都仑区第一中学,150203,secondary,2,30\n"
        ),
    )
    .unwrap();
    browser
        .type_into("#import-file", good.to_str().unwrap())
        .await;
    browser.click("#import-form button[type=submit]").await;
    let ok = browser
        .wait_for_text("#import-result", "Imported 3 campuses")
        .await;
    assert!(ok.contains("holds 5 campuses"), "{ok}");
    assert!(!ok.contains("nothing was imported"), "{ok}");
    browser.wait_for_text("#registered-total", "5").await;
    assert_eq!(server.store.registry().await.unwrap().len(), 5);
    let regions = rows(&browser, "#registry-regions").await;
    assert_eq!(row(&regions, "Inner Mongolia Autonomous Region")[1], "5");
    let listed = browser.text("#registered").await;
    assert!(
        listed.contains("150203-S-0001") && listed.contains("昆都仑区第一中学"),
        "{listed}"
    );
    browser.click("#nav a[href^=\"/console/?\"]").await;
    browser
        .wait_for_text("#totals [data-figure=registered] b", "5")
        .await;

    // The current registry as CSV, with a byte order mark for Excel, imports again.
    browser.click("#nav a[href^=\"/console/registry\"]").await;
    browser.find("#registry-csv").await;
    let csv_url = href(&browser, "#registry-csv").await;
    let (content_type, csv) = fetch(&browser, &csv_url).await;
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert!(csv.starts_with(&format!("\u{feff}{header}\n")), "{csv:?}");
    assert_eq!(
        campuswatch_server::registry::parse_csv(csv.as_bytes())
            .unwrap()
            .len(),
        5
    );

    // A campus that reports without being registered is listed for review, live.
    let _gateway = common::gateway(
        common::broker_addr(&server),
        "150102-X-0009",
        "150102",
        vec![],
    )
    .await;
    browser
        .wait_for_text("#unregistered-list", "150102-X-0009")
        .await;
    let unregistered = rows(&browser, "#unregistered-list").await;
    let seen = row(&unregistered, "150102-X-0009");
    assert_eq!(seen[1..3], ["150102", "online"]);
    assert_ne!(seen[5], "–", "first seen: {seen:?}");
    assert_eq!(browser.text("#registered-total").await, "5", "not counted");

    // A viewer sees the lists but no import form.
    browser.click("#signout").await;
    browser.find("#signin input[name=name]").await;
    sign_in(
        &browser,
        &base,
        "/console/registry?lang=en",
        "watcher",
        "watcher password",
    )
    .await;
    browser.wait_for_text("#registered-total", "5").await;
    browser
        .wait_for_text("#unregistered-list", "150102-X-0009")
        .await;
    assert!(browser.shown("#registered").await);
    assert_eq!(
        browser
            .eval(
                "return document.getElementById('import-form') === null;",
                json!([])
            )
            .await,
        json!(true)
    );
    server.stop().await;
}

/// A stored transition; device transitions carry the agent's event id `id`.
fn transition(
    campus: &str,
    region: &str,
    device: Option<&str>,
    (from, to): (&str, &str),
    t: &str,
    id: u64,
) -> Change {
    Change::Transition(testing::transition(
        campus,
        region,
        device,
        (from, to),
        at(t),
        id,
    ))
}

/// The local day 2027-03-01 (+08:00) is [2027-02-28T16:00Z, 2027-03-01T16:00Z), watched
/// all day by the server. c-1 (新城区, primary) is stale 04:00Z–10:00Z and its camera
/// down 12:00Z–14:00Z: gateway and alarm 18/24 = 75%, video and fully 16/24 = 66.7%.
/// c-2 (新城区, kindergarten) never reported: 0%. c-3 (昆都仑区, primary) is up all day.
async fn seed_known_day(server: &campuswatch_server::ServerHandle) {
    server
        .import_registry(
            vec![
                entry("c-1", "150102", SchoolType::Primary, 1, 1).named("新城区第一小学"),
                entry("c-2", "150102", SchoolType::Kindergarten, 1, 1).named("新城区第二幼儿园"),
                entry("c-3", "150203", SchoolType::Primary, 1, 1).named("昆都仑区第三小学"),
            ],
            false,
        )
        .await
        .unwrap();
    let store = &server.store;
    let run = store
        .start_server_run(at("2027-02-28T00:00:00Z"))
        .await
        .unwrap();
    store
        .server_alive(run, at("2027-03-02T00:00:00Z"))
        .await
        .unwrap();
    let mut changes = Vec::new();
    for (campus, region) in [("c-1", "150102"), ("c-3", "150203")] {
        changes.push(transition(
            campus,
            region,
            None,
            ("never_seen", "online"),
            "2027-02-28T10:00:00Z",
            0,
        ));
        for (id, device) in [(1, "alarm-1"), (2, "cam-1")] {
            changes.push(transition(
                campus,
                region,
                Some(device),
                ("unknown", "up"),
                "2027-02-28T10:00:01Z",
                id,
            ));
        }
    }
    changes.extend([
        transition(
            "c-1",
            "150102",
            None,
            ("online", "stale"),
            "2027-03-01T04:00:00Z",
            0,
        ),
        transition(
            "c-1",
            "150102",
            None,
            ("stale", "online"),
            "2027-03-01T10:00:00Z",
            0,
        ),
        transition(
            "c-1",
            "150102",
            Some("cam-1"),
            ("up", "down"),
            "2027-03-01T12:00:00Z",
            3,
        ),
        transition(
            "c-1",
            "150102",
            Some("cam-1"),
            ("down", "up"),
            "2027-03-01T14:00:00Z",
            4,
        ),
    ]);
    store
        .apply(&changes, at("2027-03-02T00:00:00Z"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_page_shows_a_known_day_links_its_csv_and_prints_only_the_report() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2027-03-02T02:00:00Z"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server =
        campuswatch_server::start_with_clock(common::local_config(dir.path()), listener, clock)
            .await
            .unwrap();
    seed_known_day(&server).await;
    let base = format!("http://{}", server.http_addr());

    // The province on that day, coverage at 21:00 local (13:00Z: c-1's camera is down).
    browser
        .goto(&format!(
            "{base}/console/reports?lang=en&live=off&region=150000&period=day&date=2027-03-01&at=2027-03-01T21:00"
        ))
        .await;
    let title = browser.wait_for_text("#report-title", "2027-03-01").await;
    assert!(
        title.contains("Inner Mongolia Autonomous Region"),
        "{title}"
    );

    // Availability: the mean over campuses, link by link.
    let cities = rows(&browser, "#avail-regions").await;
    assert_eq!(
        cities[0][1..],
        ["3", "72.0", "58.3%", "58.3%", "55.6%", "55.6%"]
    );
    assert_eq!(
        row(&cities, "Hohhot")[1..],
        ["2", "48.0", "37.5%", "37.5%", "33.3%", "33.3%"]
    );
    assert_eq!(
        row(&cities, "Baotou")[1..],
        ["1", "24.0", "100.0%", "100.0%", "100.0%", "100.0%"]
    );
    let types = rows(&browser, "#avail-types").await;
    assert_eq!(
        row(&types, "Kindergarten")[1..],
        ["1", "24.0", "0.0%", "0.0%", "0.0%", "0.0%"]
    );
    assert_eq!(
        row(&types, "Primary")[1..],
        ["2", "48.0", "87.5%", "87.5%", "83.3%", "83.3%"]
    );

    // Coverage at 21:00: c-1 reporting with its alarm, c-3 fully networked.
    let coverage = browser.text("#coverage h2").await;
    assert!(coverage.contains("At 2027-03-01 21:00"), "{coverage}");
    let cov = rows(&browser, "#cov-regions").await;
    assert_eq!(
        cov[0][1..],
        ["3", "2 (66.7%)", "2 (66.7%)", "1 (33.3%)", "1 (33.3%)"]
    );
    assert_eq!(
        row(&cov, "Hohhot")[1..],
        ["2", "1 (50.0%)", "1 (50.0%)", "0 (0.0%)", "0 (0.0%)"]
    );
    let missing = rows(&browser, "#not-networked").await;
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert_eq!(
        row(&missing, "c-1")[1..],
        [
            "Xincheng District",
            "Primary",
            "video networking",
            "2027-03-01 20:00",
            "1 h"
        ]
    );
    assert_eq!(
        row(&missing, "c-2")[1..],
        [
            "Xincheng District",
            "Kindergarten",
            "gateway not reporting",
            "before 2027-01-29 21:00",
            "31 d"
        ]
    );

    // The CSV links answer the same figures as CSV.
    let (content_type, csv) = fetch(&browser, &href(&browser, "#csv-coverage").await).await;
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert!(
        csv.contains("150000,内蒙古自治区,province,all,3,2.000,2.000,1.000,1.000,0.666667,0.666667,0.333333,0.333333"),
        "{csv}"
    );
    let (_, csv) = fetch(&browser, &href(&browser, "#csv-not-networked").await).await;
    assert!(
        csv.starts_with("\u{feff}id,name,region")
            && csv.contains("\nc-1,")
            && csv.contains("\nc-2,"),
        "{csv}"
    );
    let (_, csv) = fetch(&browser, &href(&browser, "#csv-availability").await).await;
    assert!(
        csv.contains("150100,呼和浩特市,city,2,48.000,0.375000,0.375000,0.333333,0.333333"),
        "{csv}"
    );

    // Printed: the title and the tables, without the console's frame, form or links.
    browser.emulate_media("print").await;
    for shown in [
        "#report-title",
        "#avail-regions",
        "#cov-regions",
        "#not-networked",
    ] {
        assert!(browser.shown(shown).await, "{shown} is not printed");
    }
    for hidden in ["header", "#report-form", "#print", ".downloads", "#crumbs"] {
        assert!(!browser.shown(hidden).await, "{hidden} is printed");
    }
    browser.emulate_media("").await;

    // Down to the county: its campuses, and the address keeps the report's state.
    browser.click("#avail-regions a").await;
    browser
        .wait_for_text("#avail-regions", "Xincheng District")
        .await;
    browser.click("#avail-regions a").await;
    browser.find("#avail-campuses").await;
    let url = browser.url().await;
    assert!(
        url.contains("region=150102") && url.contains("date=2027-03-01"),
        "{url}"
    );
    let campuses = rows(&browser, "#avail-campuses").await;
    assert_eq!(
        row(&campuses, "c-1")[1..],
        ["Primary", "24.0", "75.0%", "75.0%", "66.7%", "66.7%"]
    );
    assert_eq!(
        row(&campuses, "c-2")[1..],
        ["Kindergarten", "24.0", "0.0%", "0.0%", "0.0%", "0.0%"]
    );

    // Coverage averaged over the day instead, through the form; reloading keeps it.
    browser
        .eval(
            "document.querySelector('#report-form select[name=cov]').value = 'period';",
            json!([]),
        )
        .await;
    browser.click("#report-form button[type=submit]").await;
    browser
        .wait_for_text("#coverage h2", "Averaged over 2027-03-01")
        .await;
    let url = browser.url().await;
    assert!(url.contains("cov=period") && !url.contains("at="), "{url}");
    browser.goto(&url).await;
    browser
        .wait_for_text("#coverage h2", "Averaged over 2027-03-01")
        .await;
    let cov = rows(&browser, "#cov-regions").await;
    // Rates are the mean availability, counts rate × registered: (0.75 + 0) / 2 × 2.
    assert_eq!(
        cov[0][1..],
        [
            "2",
            "0.8 (37.5%)",
            "0.8 (37.5%)",
            "0.7 (33.3%)",
            "0.7 (33.3%)"
        ]
    );
    let missing = rows(&browser, "#not-networked").await;
    assert_eq!(row(&missing, "c-1")[5], "8 h", "{missing:?}");
    assert_eq!(row(&missing, "c-2")[5], "1 d", "{missing:?}");

    // The same report in Chinese, the console's default language.
    browser.click("#lang").await;
    browser
        .wait_for_text("#coverage h2", "2027-03-01 平均")
        .await;
    assert!(browser.url().await.contains("lang=zh"));
    let cov = rows(&browser, "#cov-regions").await;
    assert_eq!(cov[0][2], "0.8 (37.5%)");
    assert_eq!(
        row(&rows(&browser, "#avail-types").await, "小学")[1..],
        ["1", "24.0", "75.0%", "75.0%", "66.7%", "66.7%"]
    );
    server.stop().await;
}
