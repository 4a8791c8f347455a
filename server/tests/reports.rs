//! Reports across server restarts: each run of the server is recorded from its start to
//! its shutdown, and the time between two runs is neither up nor down.

mod common;

use std::sync::Arc;

use campuswatch_protocol::{SchoolType, Timestamp};
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
    };
    let campuses = store.availability(None, period, rules).await.unwrap();
    assert_eq!(campuses.len(), 1);
    // Never seen: down for the 4 h the server watched; the other 4 h are unknown.
    let g = campuses[0].gateway;
    assert_eq!((g.counted_ms, g.up_ms), (4 * 3_600_000, 0));
    assert_eq!(g.availability(), Some(0.0));
}
