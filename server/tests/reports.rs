//! Reports across server restarts: each run of the server is recorded from its start to
//! its shutdown, and the time between two runs is neither up nor down.

mod common;

use std::sync::Arc;

use campuswatch_protocol::{DeviceKind, DeviceState, SchoolType, Timestamp};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::reports::{AvailabilityRules, Period};
use campuswatch_server::testing::{entry, ManualClock};
use campuswatch_testkit::at;

fn config(dir: &std::path::Path) -> ServerConfig {
    common::local_config(dir)
}

async fn start(dir: &std::path::Path, clock: Arc<ManualClock>) -> campuswatch_server::ServerHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    campuswatch_server::start_with_clock(config(dir), listener, clock)
        .await
        .expect("server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_between_two_server_runs_is_left_out_of_availability() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2027-03-01T00:00:00Z"));

    let first = start(dir.path(), clock.clone()).await;
    first
        .import_registry(
            vec![entry("c-1", "150102", SchoolType::Primary, 1, 1).named("第一小学")],
            false,
        )
        .await
        .unwrap();
    clock.set(at("2027-03-01T02:00:00Z"));
    first.stop().await;

    // Down from 02:00 to 04:00 UTC.
    clock.set(at("2027-03-01T04:00:00Z"));
    let second = start(dir.path(), clock.clone()).await;
    let store = second.store.clone();
    clock.set(at("2027-03-01T06:00:00Z"));
    second.stop().await;

    let period = Period {
        from: at("2027-03-01T00:00:00Z"),
        to: at("2027-03-01T08:00:00Z"),
    };
    let runs = store.server_runs(period.from, period.to).await.unwrap();
    let spans: Vec<(Timestamp, Timestamp)> =
        runs.iter().map(|r| (r.started_at, r.alive_at)).collect();
    assert_eq!(
        spans,
        [
            (at("2027-03-01T00:00:00Z"), at("2027-03-01T02:00:00Z")),
            (at("2027-03-01T04:00:00Z"), at("2027-03-01T06:00:00Z")),
        ]
    );
    let rules = AvailabilityRules {
        alarm_fraction: 1.0,
        video_fraction: 0.8,
        video_view: campuswatch_server::monitor::VideoView::PlatformWherePresent,
    };
    let campuses = store.availability(None, period, rules).await.unwrap();
    assert_eq!(campuses.len(), 1);
    // Never seen: down for the 4 h the server watched; the other 4 h are unknown.
    let g = campuses[0].gateway;
    assert_eq!((g.counted_ms, g.up_ms), (4 * 3_600_000, 0));
    assert_eq!(g.availability(), Some(0.0));
}

fn time(v: &serde_json::Value) -> Timestamp {
    at(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
}

/// The not-networked list's entry of `id` in a coverage report.
fn not_networked<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["not_networked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_never_seen_is_out_since_it_was_registered_never_since_before() {
    let dir = tempfile::tempdir().unwrap();
    // The server starts long before the campus is registered, and a later import (the
    // whole registry again) does not make it newer.
    let clock = ManualClock::new(at("2027-03-01T00:00:00Z"));
    let first = start(dir.path(), clock.clone()).await;
    first
        .import_registry(
            vec![entry("old", "150102", SchoolType::Primary, 1, 1)],
            false,
        )
        .await
        .unwrap();
    clock.set(at("2027-04-10T08:00:00Z"));
    let registry = vec![
        entry("old", "150102", SchoolType::Primary, 1, 1),
        entry("new", "150102", SchoolType::Primary, 1, 1),
    ];
    first.import_registry(registry.clone(), true).await.unwrap();
    clock.set(at("2027-04-12T08:00:00Z"));
    first.import_registry(registry, true).await.unwrap();
    first.stop().await;

    // Three days after "new" was registered, after a restart.
    clock.set(at("2027-04-13T08:00:00Z"));
    let server = start(dir.path(), clock.clone()).await;
    let base = format!("http://{}", server.http_addr());
    let http = reqwest::Client::new();
    let report = common::get_json(&http, &format!("{base}/api/v1/reports/coverage")).await;
    let new = not_networked(&report, "new");
    assert_eq!(new["since_registered"], true, "{new}");
    assert_eq!(new["since_at_least"], false, "{new}");
    assert_eq!(time(&new["since"]), at("2027-04-10T08:00:00Z"), "{new}");
    assert_eq!(
        time(&new["registered_at"]),
        at("2027-04-10T08:00:00Z"),
        "{new}"
    );
    assert_eq!(new["hours"], 72.0, "{new}");
    // Registered 43 days ago, beyond the report's 31-day look back: still since it was
    // registered, with the date, not "at least since" the look back.
    let old = not_networked(&report, "old");
    assert_eq!(old["since_registered"], true, "{old}");
    assert_eq!(time(&old["since"]), at("2027-03-01T00:00:00Z"), "{old}");
    assert_eq!(old["hours"], 43.0 * 24.0 + 8.0, "{old}");

    // The campus list says when each was registered.
    let list = common::get_json(&http, &format!("{base}/api/v1/campuses?networked=false")).await;
    let dates: Vec<(&str, Timestamp)> = list["campuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), time(&c["registered_at"])))
        .collect();
    assert_eq!(
        dates,
        [
            ("new", at("2027-04-10T08:00:00Z")),
            ("old", at("2027-03-01T00:00:00Z"))
        ]
    );

    // And so does the CSV.
    let csv = http
        .get(format!(
            "{base}/api/v1/reports/coverage?format=csv&table=not_networked"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let new_row: Vec<&str> = lines
        .find(|l| l.starts_with("new,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(new_row[column("since_registered")], "true", "{csv}");
    assert_eq!(
        at(new_row[column("registered_at")]),
        at("2027-04-10T08:00:00Z"),
        "{csv}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_history_gives_today_so_far_when_asked_up_to_today() {
    let dir = tempfile::tempdir().unwrap();
    // 10:00 in Beijing: the server starts, with one campus online and one never seen.
    let clock = ManualClock::new(at("2027-03-01T02:00:00Z"));
    let server = start(dir.path(), clock.clone()).await;
    server
        .import_registry(
            vec![
                entry("on", "150102", SchoolType::Primary, 1, 1),
                entry("off", "150102", SchoolType::Primary, 1, 1),
            ],
            false,
        )
        .await
        .unwrap();
    let broker = common::broker_addr(&server);
    let gateway = common::gateway(
        broker,
        "on",
        "150102",
        vec![
            campuswatch_testkit::device("alarm-1", DeviceKind::Alarm, DeviceState::Up),
            campuswatch_testkit::device("cam-1", DeviceKind::Camera, DeviceState::Up),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    let http = reqwest::Client::new();
    campuswatch_testkit::wait_for(
        "the gateway online",
        std::time::Duration::from_secs(20),
        || async {
            let c = common::get_json(&http, &format!("{base}/api/v1/campuses/on")).await;
            (c["gateway_state"] == "online").then_some(())
        },
    )
    .await;
    // Two hours later (the server's own alive mark is older: asking marks it now).
    clock.set(at("2027-03-01T04:00:00Z"));
    let daily = common::get_json(
        &http,
        &format!("{base}/api/v1/reports/coverage/daily?from=2027-02-27&to=2027-03-01"),
    )
    .await;
    let today = &daily["today"];
    assert_eq!(today["date"], "2027-03-01", "{daily}");
    assert_eq!(time(&daily["today_as_of"]), at("2027-03-01T04:00:00Z"));
    assert_eq!(today["registered"], 2, "{daily}");
    assert_eq!(today["observed"], 2, "{daily}");
    // "on" reported nearly all of the two hours the server watched, "off" none.
    let rate = today["reporting_rate"].as_f64().unwrap();
    assert!(rate > 0.45 && rate <= 0.5, "{daily}");
    assert_eq!(today["fully_networked_rate"], today["reporting_rate"]);
    // Days that are over are in `days`; today is not one of them.
    assert!(
        daily["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["date"] != "2027-03-01"),
        "{daily}"
    );
    // Up to yesterday (the default): no today.
    let daily = common::get_json(&http, &format!("{base}/api/v1/reports/coverage/daily")).await;
    assert_eq!(daily["today"], serde_json::Value::Null, "{daily}");
    assert_eq!(daily["today_as_of"], serde_json::Value::Null, "{daily}");
    drop(gateway);
    server.stop().await;
}
