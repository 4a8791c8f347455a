//! Report queries on both databases (the store's contract, see `test_db`): the figures of the pure engine's
//! hand-computed day, with the history, windows and runs read back from the store.

use campuswatch_protocol::{CampusId, SchoolType};
use campuswatch_testkit::at;
use chrono::FixedOffset;

use super::*;
use crate::monitor::maintenance::{Maintenance, Schedule, Scope};
use crate::monitor::Change;
use crate::store::test_db::{contract, TestDb};
use crate::testing::{entry, transition};

contract!(
    availability_reads_the_day_its_windows_and_the_server_gap_from_the_store,
    the_history_around_a_period_holds_each_links_last_row_before_it,
    a_day_of_coverage_history_is_computed_once_and_summed_per_node,
    old_raw_history_goes_and_reports_of_its_days_keep_their_figures,
);

const HOUR: i64 = 3_600_000;

/// A stored transition of county 150102 at the RFC 3339 time `t`.
fn row(campus: &str, device: Option<&str>, from: &str, to: &str, t: &str, id: u64) -> Change {
    Change::Transition(transition(campus, "150102", device, (from, to), at(t), id))
}

fn rules() -> AvailabilityRules {
    AvailabilityRules {
        alarm_fraction: 1.0,
        video_fraction: 0.8,
        video_view: crate::monitor::VideoView::PlatformWherePresent,
    }
}

/// The local day 2026-11-29 at +08:00.
fn day() -> Period {
    Period {
        from: at("2026-11-28T16:00:00Z"),
        to: at("2026-11-29T16:00:00Z"),
    }
}

async fn store_with_history(db: &TestDb) -> Store {
    let store = db.open().await;
    store
        .import_registry(
            &[
                entry("c-1", "150102", SchoolType::Primary, 1, 2),
                entry("c-2", "150102", SchoolType::Primary, 1, 2),
            ],
            false,
            at("2026-11-01T00:00:00Z"),
        )
        .await
        .unwrap();
    // Two runs with the server down from 02:00 to 03:00 UTC.
    let first = store
        .start_server_run(at("2026-11-28T10:00:00Z"))
        .await
        .unwrap();
    store
        .server_alive(first, at("2026-11-29T02:00:00Z"))
        .await
        .unwrap();
    let second = store
        .start_server_run(at("2026-11-29T03:00:00Z"))
        .await
        .unwrap();
    store
        .server_alive(second, at("2026-11-30T00:00:00Z"))
        .await
        .unwrap();
    // An older alive mark never moves a run back.
    store
        .server_alive(second, at("2026-11-29T04:00:00Z"))
        .await
        .unwrap();
    let changes = [
        row(
            "c-1",
            None,
            "never_seen",
            "online",
            "2026-11-28T10:00:00Z",
            0,
        ),
        row(
            "c-1",
            Some("alarm-1"),
            "unknown",
            "up",
            "2026-11-28T10:00:01Z",
            1,
        ),
        row(
            "c-1",
            Some("cam-1"),
            "unknown",
            "up",
            "2026-11-28T10:00:01Z",
            2,
        ),
        row(
            "c-1",
            Some("cam-2"),
            "unknown",
            "up",
            "2026-11-28T10:00:02Z",
            3,
        ),
        // Older rows of cam-2: the last one before the day is what counts.
        row(
            "c-1",
            Some("cam-2"),
            "up",
            "down",
            "2026-11-28T23:00:00Z",
            4,
        ),
        row(
            "c-1",
            Some("cam-2"),
            "down",
            "up",
            "2026-11-29T01:00:00Z",
            5,
        ),
        row("c-1", None, "online", "stale", "2026-11-29T04:00:00Z", 0),
        row("c-1", None, "stale", "online", "2026-11-29T05:00:00Z", 0),
        // After the day: not part of it.
        row("c-1", None, "online", "offline", "2026-11-29T17:00:00Z", 0),
        // Not registered: never counted.
        row(
            "x-9",
            None,
            "never_seen",
            "online",
            "2026-11-28T10:00:00Z",
            0,
        ),
    ];
    store
        .apply(&changes, at("2026-11-29T06:00:00Z"))
        .await
        .unwrap();
    // A campus window 04:00–05:00, withdrawn at 04:30.
    let window = Maintenance {
        id: 1,
        scope: Scope::Campus {
            campus: CampusId::parse("c-1").unwrap(),
        },
        schedule: Schedule::Once {
            start: at("2026-11-29T04:00:00Z"),
            end: at("2026-11-29T05:00:00Z"),
        },
        utc_offset_minutes: 480,
        comment: None,
        created_by: "county office".into(),
        created_at: at("2026-11-20T00:00:00Z"),
    };
    store
        .apply(
            &[Change::MaintenanceAdded(window)],
            at("2026-11-20T00:00:00Z"),
        )
        .await
        .unwrap();
    store
        .apply(
            &[Change::MaintenanceRemoved { id: 1 }],
            at("2026-11-29T04:30:00Z"),
        )
        .await
        .unwrap();
    store
}

async fn availability_reads_the_day_its_windows_and_the_server_gap_from_the_store(db: &TestDb) {
    let store = store_with_history(db).await;
    let all = store.availability(None, day(), rules()).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|c| c.campus.as_str()).collect();
    assert_eq!(ids, ["c-1", "c-2"], "registered campuses only");
    let c1 = &all[0];
    // 24 h less the server gap (1 h) and the window until it was withdrawn (0.5 h).
    assert_eq!(c1.gateway.counted_ms, 45 * HOUR / 2);
    assert_eq!(c1.gateway.up_ms, 22 * HOUR);
    // cam-2 down 2 h, the gateway down 0.5 h counted.
    assert_eq!(c1.video.up_ms, 20 * HOUR);
    let c2 = &all[1];
    assert_eq!((c2.gateway.counted_ms, c2.gateway.up_ms), (23 * HOUR, 0));
    let elsewhere = store
        .availability(Some(RegionCode::parse("150203").unwrap()), day(), rules())
        .await
        .unwrap();
    assert!(elsewhere.is_empty());
}

async fn the_history_around_a_period_holds_each_links_last_row_before_it(db: &TestDb) {
    let store = store_with_history(db).await;
    let p = day();
    let rows = store
        .transitions_around(Some(RegionCode::parse("150102").unwrap()), p.from, p.to)
        .await
        .unwrap();
    let c1: Vec<(Option<&str>, &str)> = rows
        .iter()
        .filter(|t| t.campus.as_str() == "c-1")
        .map(|t| (t.device.as_ref().map(|d| d.as_str()), t.to.as_str()))
        .collect();
    assert_eq!(
        c1,
        [
            (None, "online"),
            (Some("alarm-1"), "up"),
            (Some("cam-1"), "up"),
            (Some("cam-2"), "up"),
            (Some("cam-2"), "down"),
            (Some("cam-2"), "up"),
            (None, "stale"),
            (None, "online"),
        ]
    );
    let runs = store.server_runs(p.from, p.to).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].alive_at, at("2026-11-30T00:00:00Z"));
    let windows = store.maintenance_history().await.unwrap();
    assert_eq!(windows[0].removed_at, Some(at("2026-11-29T04:30:00Z")));
}

async fn a_day_of_coverage_history_is_computed_once_and_summed_per_node(db: &TestDb) {
    let store = store_with_history(db).await;
    let cst = FixedOffset::east_opt(8 * 3600).unwrap();
    let d = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let now = at("2026-11-30T00:00:00Z");
    store
        .ensure_coverage_daily(d, cst, rules(), now)
        .await
        .unwrap();
    let county = Some(RegionCode::parse("150102").unwrap());
    let days = store.coverage_daily(county, None, d, d, cst).await.unwrap();
    assert_eq!(days.len(), 1);
    let day = &days[0];
    assert_eq!((day.registered, day.observed), (2, 2));
    let c1_gateway = 22.0 / 22.5;
    assert_eq!(day.reporting_rate, Some(c1_gateway / 2.0));
    assert_eq!(day.reporting, Some(c1_gateway));
    // The whole area and the province hold the same two campuses.
    let all = store.coverage_daily(None, None, d, d, cst).await.unwrap();
    assert_eq!(all, days);
    // Stored once: a later change to the history does not move a day already computed.
    store
        .apply(
            &[row(
                "c-2",
                None,
                "never_seen",
                "online",
                "2026-11-29T00:00:00Z",
                0,
            )],
            now,
        )
        .await
        .unwrap();
    store
        .ensure_coverage_daily(d, cst, rules(), now)
        .await
        .unwrap();
    assert_eq!(
        store.coverage_daily(county, None, d, d, cst).await.unwrap(),
        days
    );
    // Another school type, another offset: nothing stored.
    let none = store
        .coverage_daily(county, Some(SchoolType::Kindergarten), d, d, cst)
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn old_raw_history_goes_and_reports_of_its_days_keep_their_figures(db: &TestDb) {
    let store = store_with_history(db).await;
    let cst = FixedOffset::east_opt(8 * 3600).unwrap();
    let periods = [
        // The local day 2026-11-29, the two days before the cut, and a period across it.
        day(),
        Period {
            from: at("2026-11-27T16:00:00Z"),
            to: at("2026-11-29T16:00:00Z"),
        },
        Period {
            from: at("2026-11-28T16:00:00Z"),
            to: at("2026-11-30T04:00:00Z"),
        },
    ];
    let mut before = Vec::new();
    for p in periods {
        before.push(store.availability(None, p, rules()).await.unwrap());
    }
    let all_rows = |store: Store| async move {
        store
            .transitions(&crate::store::Filter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
    };
    let rows_before = all_rows(store.clone()).await.len();

    // 35 days kept at 2027-01-04 (local): the raw history before 2026-11-30 goes.
    let now = at("2027-01-04T04:00:00Z");
    let removed = store.prune_history(35, cst, rules(), now).await.unwrap();
    let cut = at("2026-11-29T16:00:00Z");
    assert_eq!(
        store.history_horizon().await.unwrap().map(|h| h.raw_from),
        Some(cut)
    );
    let left = all_rows(store.clone()).await;
    assert_eq!(left.len() as u64 + removed, rows_before as u64);
    assert!(removed > 0);
    // Each link keeps its last row before the cut: cam-2's 01:00 `up`, not its `down`.
    let cam2: Vec<&str> = left
        .iter()
        .filter(|r| {
            r.transition
                .device
                .as_ref()
                .is_some_and(|d| d.as_str() == "cam-2")
        })
        .map(|r| r.transition.to.as_str())
        .collect();
    assert_eq!(cam2, ["up"]);
    assert!(left.iter().any(|r| r.transition.at >= cut));

    // Reports of those days come from their roll-ups, with the same figures.
    for (p, was) in periods.into_iter().zip(&before) {
        let now = store.availability(None, p, rules()).await.unwrap();
        assert_eq!(&now, was, "{p:?}");
    }
    // A period that starts within a day before the cut cannot be answered.
    let err = store
        .availability(
            None,
            Period {
                from: at("2026-11-29T02:00:00Z"),
                to: at("2026-11-30T04:00:00Z"),
            },
            rules(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BeforeHistory { .. }), "{err}");
    // Pruning again changes nothing; a pruned day is never computed again.
    assert_eq!(store.prune_history(35, cst, rules(), now).await.unwrap(), 0);
    let d = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let trend = store.coverage_daily(None, None, d, d, cst).await.unwrap();
    store
        .ensure_coverage_daily(d, cst, rules(), now)
        .await
        .unwrap();
    assert_eq!(
        store.coverage_daily(None, None, d, d, cst).await.unwrap(),
        trend
    );
    assert_eq!(trend.len(), 1);
}
