use chrono::{NaiveTime, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::monitor::maintenance::Schedule;
use crate::testing::{entry, transition};
use campuswatch_testkit::at;

const HOUR: i64 = 3_600_000;

/// The local day 2026-11-29 at +08:00: it straddles midnight UTC.
fn day() -> (Timestamp, Timestamp) {
    (at("2026-11-28T16:00:00Z"), at("2026-11-29T16:00:00Z"))
}

fn rules() -> AvailabilityRules {
    AvailabilityRules {
        alarm_fraction: 1.0,
        video_fraction: 0.8,
        video_view: crate::monitor::VideoView::PlatformWherePresent,
    }
}

/// Campus c-1: online with its alarm and both cameras up since the day before; cam-2
/// down from 23:00 to 01:00 UTC (across midnight UTC, 07:00 to 09:00 local), the
/// gateway stale from 04:00 to 05:00 UTC.
fn history() -> CampusHistory {
    CampusHistory::from_rows(
        entry("c-1", "150102", SchoolType::Primary, 1, 2),
        day().0,
        history_rows(),
        &[],
        None,
    )
}

/// The rows of [`history`].
fn history_rows() -> Vec<Transition> {
    vec![
        transition(
            "c-1",
            "150102",
            None,
            ("never_seen", "online"),
            at("2026-11-28T10:00:00Z"),
            1,
        ),
        transition(
            "c-1",
            "150102",
            Some("alarm-1"),
            ("unknown", "up"),
            at("2026-11-28T10:00:01Z"),
            1,
        ),
        transition(
            "c-1",
            "150102",
            Some("cam-1"),
            ("unknown", "up"),
            at("2026-11-28T10:00:01Z"),
            1,
        ),
        transition(
            "c-1",
            "150102",
            Some("cam-2"),
            ("unknown", "up"),
            at("2026-11-28T10:00:02Z"),
            1,
        ),
        transition(
            "c-1",
            "150102",
            Some("cam-2"),
            ("up", "down"),
            at("2026-11-28T23:00:00Z"),
            1,
        ),
        transition(
            "c-1",
            "150102",
            Some("cam-2"),
            ("down", "up"),
            at("2026-11-29T01:00:00Z"),
            1,
        ),
        transition(
            "c-1",
            "150102",
            None,
            ("online", "stale"),
            at("2026-11-29T04:00:00Z"),
            1,
        ),
        transition(
            "c-1",
            "150102",
            None,
            ("stale", "online"),
            at("2026-11-29T05:00:00Z"),
            1,
        ),
    ]
}

fn always_running() -> Vec<ServerRun> {
    vec![ServerRun {
        started_at: at("2026-11-01T00:00:00Z"),
        alive_at: at("2026-12-01T00:00:00Z"),
    }]
}

fn window(scope: Scope, schedule: Schedule, created: &str, removed: Option<&str>) -> WindowRecord {
    WindowRecord {
        window: Maintenance {
            id: 1,
            scope,
            schedule,
            utc_offset_minutes: 480,
            comment: None,
            created_by: "county office".into(),
            created_at: at(created),
        },
        removed_at: removed.map(at),
    }
}

fn once(start: &str, end: &str) -> Schedule {
    Schedule::Once {
        start: at(start),
        end: at(end),
    }
}

fn campus_scope() -> Scope {
    Scope::Campus {
        campus: CampusId::parse("c-1").unwrap(),
    }
}

fn run(h: &CampusHistory, windows: &[WindowRecord], runs: &[ServerRun]) -> CampusAvailability {
    let (from, to) = day();
    campus_availability(h, from, to, windows, runs, rules())
}

fn tally(counted_h: f64, up_h: f64) -> Tally {
    Tally {
        counted_ms: (counted_h * HOUR as f64) as i64,
        up_ms: (up_h * HOUR as f64) as i64,
    }
}

#[test]
fn a_day_straddling_midnight_utc_counts_each_outage_once_in_hours() {
    let a = run(&history(), &[], &always_running());
    assert_eq!(a.gateway, tally(24.0, 23.0));
    assert_eq!(a.alarm, tally(24.0, 23.0));
    // Video: two cameras expected, ceil(0.8 × 2) = 2 needed: down while cam-2 was down
    // (2 h) and while the gateway was stale (1 h).
    assert_eq!(a.video, tally(24.0, 21.0));
    assert_eq!(a.fully, tally(24.0, 21.0));
    assert_eq!(a.video.availability(), Some(21.0 / 24.0));
}

#[test]
fn the_state_at_the_start_comes_from_the_last_transition_before_it() {
    let h = history();
    assert_eq!(h.gateway, GatewayState::Online);
    assert_eq!(
        h.transitions.len(),
        4,
        "only the period's transitions are replayed"
    );
    let cam2 = DeviceId::parse("cam-2").unwrap();
    assert_eq!(h.devices[&cam2], (DeviceKind::Camera, DeviceState::Up));
}

#[test]
fn a_campus_maintenance_window_is_left_out_of_both_sides() {
    let w = window(
        campus_scope(),
        once("2026-11-29T04:00:00Z", "2026-11-29T05:00:00Z"),
        "2026-11-20T00:00:00Z",
        None,
    );
    let a = run(&history(), &[w], &always_running());
    assert_eq!(a.gateway, tally(23.0, 23.0));
    assert_eq!(a.video, tally(23.0, 21.0));
}

#[test]
fn a_region_window_covers_the_campus_and_another_campus_window_does_not() {
    let region = window(
        Scope::Region {
            region: RegionCode::parse("150100").unwrap(),
        },
        once("2026-11-29T04:00:00Z", "2026-11-29T06:00:00Z"),
        "2026-11-20T00:00:00Z",
        None,
    );
    let other = window(
        Scope::Campus {
            campus: CampusId::parse("c-2").unwrap(),
        },
        once("2026-11-28T16:00:00Z", "2026-11-29T16:00:00Z"),
        "2026-11-20T00:00:00Z",
        None,
    );
    let a = run(&history(), &[region, other], &always_running());
    assert_eq!(a.gateway, tally(22.0, 22.0));
}

#[test]
fn a_withdrawn_window_counts_only_until_it_was_withdrawn_and_a_late_one_not_before_it_was_planned()
{
    let withdrawn = window(
        campus_scope(),
        once("2026-11-29T04:00:00Z", "2026-11-29T05:00:00Z"),
        "2026-11-20T00:00:00Z",
        Some("2026-11-29T04:30:00Z"),
    );
    let a = run(&history(), &[withdrawn], &always_running());
    assert_eq!(a.gateway, tally(23.5, 23.0));
    // Planned after the outage: it cannot excuse it after the fact.
    let late = window(
        campus_scope(),
        once("2026-11-29T04:00:00Z", "2026-11-29T05:00:00Z"),
        "2026-11-29T06:00:00Z",
        None,
    );
    let a = run(&history(), &[late], &always_running());
    assert_eq!(a.gateway, tally(24.0, 23.0));
}

#[test]
fn a_device_window_excuses_that_device_only_and_never_the_gateway() {
    let cam2 = window(
        Scope::Device {
            campus: CampusId::parse("c-1").unwrap(),
            device: DeviceId::parse("cam-2").unwrap(),
        },
        once("2026-11-28T22:00:00Z", "2026-11-29T02:00:00Z"),
        "2026-11-20T00:00:00Z",
        None,
    );
    let a = run(&history(), std::slice::from_ref(&cam2), &always_running());
    assert_eq!(a.gateway, tally(24.0, 23.0), "the gateway is not excused");
    assert_eq!(a.video, tally(24.0, 23.0), "cam-2's outage is excused");
    // A window for cam-1 does not excuse cam-2.
    let cam1 = WindowRecord {
        window: Maintenance {
            scope: Scope::Device {
                campus: CampusId::parse("c-1").unwrap(),
                device: DeviceId::parse("cam-1").unwrap(),
            },
            ..cam2.window.clone()
        },
        ..cam2
    };
    assert_eq!(
        run(&history(), &[cam1], &always_running()).video,
        tally(24.0, 21.0)
    );
}

#[test]
fn a_nightly_window_crossing_local_midnight_is_cut_out_on_both_sides_of_the_day() {
    // 22:00 local for 9 h: 14:00 to 23:00 UTC. The day holds 16:00–23:00 UTC of the
    // night before and 14:00–16:00 UTC of the night after: 9 h.
    let nightly = window(
        campus_scope(),
        Schedule::Daily {
            at: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            minutes: 9 * 60,
            weekdays: vec![],
            from: None,
            until: None,
        },
        "2026-11-01T00:00:00Z",
        None,
    );
    let a = run(&history(), &[nightly], &always_running());
    // cam-2 was down 23:00–01:00 UTC, just after the window: all of it counts.
    assert_eq!(a.gateway, tally(15.0, 14.0));
    assert_eq!(a.video, tally(15.0, 12.0));
}

#[test]
fn time_the_server_was_not_running_is_neither_up_nor_down() {
    let runs = vec![
        ServerRun {
            started_at: at("2026-11-01T00:00:00Z"),
            alive_at: at("2026-11-29T02:00:00Z"),
        },
        ServerRun {
            started_at: at("2026-11-29T03:00:00Z"),
            alive_at: at("2026-12-01T00:00:00Z"),
        },
    ];
    let a = run(&history(), &[], &runs);
    assert_eq!(a.gateway, tally(23.0, 22.0));
    assert_eq!(a.video, tally(23.0, 20.0));
    // No run at all: nothing is known.
    let none = run(&history(), &[], &[]);
    assert_eq!(none.gateway, Tally::default());
    assert_eq!(none.gateway.availability(), None);
}

#[test]
fn a_registered_campus_never_seen_is_unavailable_all_period() {
    let h = CampusHistory::from_rows(
        entry("c-9", "150102", SchoolType::Primary, 1, 2),
        day().0,
        vec![],
        &[],
        None,
    );
    let a = run(&h, &[], &always_running());
    for t in [a.gateway, a.alarm, a.video, a.fully] {
        assert_eq!(t, tally(24.0, 0.0));
    }
}

#[test]
fn aggregates_weigh_each_campus_the_same_and_add_the_observed_hours() {
    let seen = run(&history(), &[], &always_running());
    let never = run(
        &CampusHistory::from_rows(
            entry("c-9", "150102", SchoolType::Primary, 1, 2),
            day().0,
            vec![],
            &[],
            None,
        ),
        &[],
        &always_running(),
    );
    let f = aggregate([&seen, &never]);
    assert_eq!(f.registered, 2);
    assert_eq!(f.observed_campus_hours, 48.0);
    assert_eq!(f.gateway, Some((23.0 / 24.0 + 0.0) / 2.0));
    assert_eq!(f.video, Some((21.0 / 24.0) / 2.0));
    assert_eq!(aggregate([]), Figures::default());
}

fn devices_up(h: &mut CampusHistory) {
    for (id, kind) in [
        ("alarm-1", DeviceKind::Alarm),
        ("cam-1", DeviceKind::Camera),
        ("cam-2", DeviceKind::Camera),
    ] {
        h.devices
            .insert(DeviceId::parse(id).unwrap(), (kind, DeviceState::Up));
    }
}

/// A random history for c-1 within the day: random transitions of the gateway and the
/// devices, random windows and runs.
fn random_case(rng: &mut StdRng) -> (CampusHistory, Vec<WindowRecord>, Vec<ServerRun>) {
    let (from, to) = day();
    let span = (to - from).num_seconds();
    let mut rows = Vec::new();
    for _ in 0..rng.random_range(0..30) {
        let t = from + TimeDelta::seconds(rng.random_range(-3600..span));
        let mut r = match rng.random_range(0..3) {
            0 => transition(
                "c-1",
                "150102",
                None,
                ("online", "stale"),
                at("2026-11-29T00:00:00Z"),
                1,
            ),
            1 => transition(
                "c-1",
                "150102",
                Some("alarm-1"),
                ("up", "down"),
                at("2026-11-29T00:00:00Z"),
                1,
            ),
            _ => transition(
                "c-1",
                "150102",
                Some("cam-1"),
                ("up", "down"),
                at("2026-11-29T00:00:00Z"),
                1,
            ),
        };
        let up = rng.random_bool(0.5);
        if r.kind == AlertKind::Gateway {
            r.to = if up { "online" } else { "offline" }.into();
        } else {
            r.to = if up { "up" } else { "down" }.into();
        }
        r.at = t;
        rows.push(r);
    }
    let mut windows = Vec::new();
    for _ in 0..rng.random_range(0..3) {
        let s = from + TimeDelta::seconds(rng.random_range(-3600..span));
        let e = s + TimeDelta::seconds(rng.random_range(1..20_000));
        windows.push(WindowRecord {
            window: Maintenance {
                id: 1,
                scope: if rng.random_bool(0.5) {
                    campus_scope()
                } else {
                    Scope::Device {
                        campus: CampusId::parse("c-1").unwrap(),
                        device: DeviceId::parse("cam-1").unwrap(),
                    }
                },
                schedule: Schedule::Once { start: s, end: e },
                utc_offset_minutes: 480,
                comment: None,
                created_by: "x".into(),
                created_at: from - TimeDelta::days(1),
            },
            removed_at: None,
        });
    }
    let mut runs = Vec::new();
    let mut t = from - TimeDelta::hours(1);
    while t < to {
        let s = t + TimeDelta::seconds(rng.random_range(0..7200));
        let e = s + TimeDelta::seconds(rng.random_range(1..30_000));
        runs.push(ServerRun {
            started_at: s,
            alive_at: e,
        });
        t = e;
    }
    let mut h = CampusHistory::from_rows(
        entry("c-1", "150102", SchoolType::Primary, 1, 2),
        from,
        rows,
        &[],
        None,
    );
    devices_up(&mut h);
    (h, windows, runs)
}

#[test]
fn availability_is_always_between_zero_and_one_and_never_counts_more_than_the_period() {
    let mut rng = StdRng::seed_from_u64(0x0a11_ab1e);
    for _ in 0..500 {
        let (h, w, r) = random_case(&mut rng);
        let a = run(&h, &w, &r);
        for t in [a.gateway, a.alarm, a.video, a.fully] {
            assert!(
                0 <= t.up_ms && t.up_ms <= t.counted_ms && t.counted_ms <= 24 * HOUR,
                "{t:?}"
            );
            assert!(t.availability().is_none_or(|x| (0.0..=1.0).contains(&x)));
        }
        // Fully networked needs both: never more up than either.
        assert!(a.fully.up_ms <= a.alarm.up_ms.min(a.video.up_ms));
        // The same link time is counted for every link.
        assert_eq!(a.gateway.counted_ms, a.fully.counted_ms);
    }
}

#[test]
fn with_no_transitions_and_everything_up_availability_is_one() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..100 {
        let (mut h, w, r) = random_case(&mut rng);
        h.transitions.clear();
        h.gateway = GatewayState::Online;
        devices_up(&mut h);
        let a = run(&h, &w, &r);
        for t in [a.gateway, a.alarm, a.video, a.fully] {
            assert_eq!(t.up_ms, t.counted_ms);
            assert!(t.availability().is_none_or(|x| x == 1.0));
        }
    }
}

#[test]
fn the_aggregate_of_one_campus_is_that_campus() {
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..100 {
        let (h, w, r) = random_case(&mut rng);
        let a = run(&h, &w, &r);
        let f = aggregate([&a]);
        assert_eq!(f.registered, 1);
        assert_eq!(f.gateway, a.gateway.availability());
        assert_eq!(f.alarm, a.alarm.availability());
        assert_eq!(f.video, a.video.availability());
        assert_eq!(f.fully, a.fully.availability());
        assert_eq!(
            f.observed_campus_hours,
            a.gateway.counted_ms as f64 / HOUR as f64
        );
    }
}

#[test]
fn the_end_state_says_since_when_the_campus_is_not_fully_networked() {
    let h = history();
    let (from, _) = day();
    let a = campus_availability(&h, from, at("2026-11-29T04:30:00Z"), &[], &[], rules());
    assert!(!a.end.online && !a.end.alarm && !a.end.video);
    assert_eq!(a.end.not_fully_since, Some(at("2026-11-29T04:00:00Z")));
    let a = campus_availability(&h, from, at("2026-11-29T00:30:00Z"), &[], &[], rules());
    assert!(a.end.online && a.end.alarm && !a.end.video);
    assert_eq!(a.end.not_fully_since, Some(at("2026-11-28T23:00:00Z")));
    let a = run(&h, &[], &[]);
    assert_eq!(a.end.not_fully_since, None);
    assert!(a.end.online && a.end.alarm && a.end.video);
}

/// A row of the GB/T 28181 view: device (or channel) `code` of campus c-1.
fn gb_row(kind: AlertKind, code: &str, (from, to): (&str, &str), at_: &str) -> Transition {
    Transition {
        kind,
        ..transition("c-1", "150102", Some(code), (from, to), at(at_), 0)
    }
}

#[test]
fn the_platform_view_counts_where_the_registry_lists_devices_and_both_views_are_kept() {
    const NVR: &str = "15010200001180000001";
    const CAM1: &str = "15010200001320000001";
    const CAM2: &str = "15010200001320000002";
    let code = |s| GbCode::parse(s).unwrap();
    // Today both channels are ON and the NVR online (what the store's records say).
    let current = PlatformHistory {
        cameras: vec![(code(CAM1), code(NVR)), (code(CAM2), code(NVR))],
        devices: [(code(NVR), true)].into(),
        channels: [(code(CAM1), true), (code(CAM2), true)].into(),
    };
    let mut rows = history_rows();
    rows.extend([
        // Registered the day before, offline from 00:00 to 03:00 UTC of the day, and
        // CAM2 OFF from 10:00 to 12:00 UTC.
        gb_row(
            AlertKind::GbDevice,
            NVR,
            ("unknown", "online"),
            "2026-11-28T09:00:00Z",
        ),
        gb_row(
            AlertKind::GbDevice,
            NVR,
            ("online", "offline"),
            "2026-11-29T00:00:00Z",
        ),
        gb_row(
            AlertKind::GbDevice,
            NVR,
            ("offline", "online"),
            "2026-11-29T03:00:00Z",
        ),
        gb_row(
            AlertKind::GbChannel,
            CAM2,
            ("on", "off"),
            "2026-11-29T10:00:00Z",
        ),
        gb_row(
            AlertKind::GbChannel,
            CAM2,
            ("off", "on"),
            "2026-11-29T12:00:00Z",
        ),
    ]);
    let listed = entry("c-1", "150102", SchoolType::Primary, 1, 2).with_gb(&[NVR]);
    let h = CampusHistory::from_rows(listed, day().0, rows, &[], Some(current));
    let a = run(&h, &[], &always_running());
    // The agent's view: cam-2 down 23:00–01:00 UTC, the gateway stale 04:00–05:00.
    assert_eq!(a.video_agent, tally(24.0, 21.0));
    // The platform's: the NVR offline 00:00–03:00 (3 h), a channel OFF 10:00–12:00
    // (2 h); the gateway's silence does not matter to it.
    assert_eq!(a.video_platform, Some(tally(24.0, 19.0)));
    // In force (platform_where_present): the platform's.
    assert_eq!(a.video, tally(24.0, 19.0));
    let f = aggregate([&a]);
    assert_eq!(f.platform_campuses, 1);
    assert_eq!(f.video_platform, Some(19.0 / 24.0));
    assert_eq!(f.video_agent, Some(21.0 / 24.0));

    // With the agent's view in force, video is the agent's; the platform's is kept.
    let agent_rules = AvailabilityRules {
        video_view: VideoView::Agent,
        ..rules()
    };
    let (from, to) = day();
    let a = campus_availability(&h, from, to, &[], &always_running(), agent_rules);
    assert_eq!(a.video, tally(24.0, 21.0));
    assert_eq!(a.video_platform, Some(tally(24.0, 19.0)));

    // A campus without codes has no platform figure.
    let a = run(&history(), &[], &always_running());
    assert_eq!(a.video_platform, None);
    assert_eq!(a.video, a.video_agent);
}
