//! An alert ends only when its link is seen up: an agent restart, a gateway that goes
//! away and comes back, or a rebirth never resolves a link that is still down, never
//! tells it again and never starts its hold-down over.

use super::*;
use DeviceState::{Down, Unknown, Up};

/// Device `device` of campus c1 reported going `from → to` at `at` (event `n`).
fn ev(n: u64, device: &str, (from, to): (DeviceState, DeviceState), at: Timestamp) -> Message {
    event_at("c1", n, device, from, to, at)
}

/// The birth of an agent that has just started: it has probed nothing yet.
fn restarted(id: &str, epoch: u64, devices: &[(&str, DeviceKind)]) -> Message {
    birth(
        id,
        "150102",
        epoch,
        devices
            .iter()
            .map(|(d, k)| dev(d, *k, DeviceState::Unknown))
            .collect(),
    )
}

/// An agent killed at `at` (its Last Will) and started again `gap` later.
fn restart(
    m: &mut Monitor,
    id: &str,
    epoch: u64,
    devices: &[(&str, DeviceKind)],
    at: Timestamp,
    gap: TimeDelta,
) -> Vec<Change> {
    let mut changes = m.apply(&death(id, "150102", epoch), at).changes;
    changes.extend(m.expire(at + gap));
    changes.extend(
        m.apply(&restarted(id, epoch + 1, devices), at + gap)
            .changes,
    );
    changes.extend(m.expire(at + gap));
    changes
}

const CAMPUS: [(&str, DeviceKind); 4] = [
    ("alarm-1", DeviceKind::Alarm),
    ("cam-1", DeviceKind::Camera),
    ("cam-2", DeviceKind::Camera),
    ("cam-3", DeviceKind::Camera),
];

fn rules() -> AlertRules {
    AlertRules {
        hold_down_gateway: TimeDelta::seconds(30),
        hold_down_alarm: TimeDelta::zero(),
        hold_down_camera: TimeDelta::seconds(30),
        group_wait: TimeDelta::zero(),
        ..AlertRules::default()
    }
}

fn campus() -> Monitor {
    let mut m = with_rules(rules(), &[entry("c1", "150102", SchoolType::Primary, 1, 3)]);
    m.apply(&birth("c1", "150102", 1, cameras(3)), t(0));
    m
}

/// What each notice is about: its kind and its link (a device id, or the campus-level
/// link: `gateway`, `alarm_networking`, `video`).
fn told(ns: &[Notice]) -> Vec<(NoticeKind, String)> {
    ns.iter()
        .map(|n| {
            let link = n.device.as_ref().map(|d| d.to_string());
            (n.kind, link.or(n.link.clone()).unwrap_or_default())
        })
        .collect()
}

fn alert_ids(m: &Monitor) -> Vec<(u64, AlertKind, AlertState)> {
    m.active_alerts().map(|a| (a.id, a.kind, a.state)).collect()
}

#[test]
fn an_agent_restart_while_the_alarm_link_stays_down_neither_resolves_nor_tells_it_again() {
    let mut m = campus();
    let down = ev(101, "alarm-1", (Up, Down), t(10));
    let opened = notices(&m.apply(&down, t(10)).changes);
    assert_eq!(
        told(&opened),
        [
            (NoticeKind::AlertOpened, "alarm-1".into()),
            (NoticeKind::AlertOpened, "alarm_networking".into())
        ],
        "the device, and the campus out of alarm coverage"
    );
    let first = alert_ids(&m);
    assert_eq!(
        first,
        [
            (1, AlertKind::Alarm, AlertState::Open),
            (2, AlertKind::AlarmNetworking, AlertState::Open)
        ]
    );

    for round in 0..3 {
        let at = t(100 + round * 100);
        let epoch = 1 + round as u64;
        let changes = restart(&mut m, "c1", epoch, &CAMPUS, at, TimeDelta::seconds(2));
        assert!(notices(&changes).is_empty(), "{:#?}", notices(&changes));
        assert_eq!(alert_ids(&m), first, "the same alert, open again once back");
        // The restarted agent probes the device: still down.
        let again = ev(
            102 + round as u64,
            "alarm-1",
            (Unknown, Down),
            at + TimeDelta::seconds(3),
        );
        let changes = m.apply(&again, at + TimeDelta::seconds(3)).changes;
        assert!(notices(&changes).is_empty(), "{:#?}", notices(&changes));
        assert_eq!(alert_ids(&m), first);
    }
    assert!(
        m.active_alerts().all(|a| a.since == t(10)),
        "down since it first went down"
    );

    let up = ev(110, "alarm-1", (Down, Up), t(500));
    let resolved = notices(&m.apply(&up, t(500)).changes);
    assert_eq!(kinds(&resolved), [NoticeKind::AlertResolved; 2]);
    assert!(
        resolved.iter().all(|n| n.title.starts_with("Restored: ")),
        "{resolved:#?}"
    );
    assert_eq!(resolved[0].alert_id, Some(1));
}

#[test]
fn a_restarted_agent_that_finds_the_link_up_resolves_its_alert() {
    let mut m = campus();
    let down = ev(101, "alarm-1", (Up, Down), t(10));
    m.apply(&down, t(10));
    restart(&mut m, "c1", 1, &CAMPUS, t(20), TimeDelta::seconds(2));
    let up = ev(102, "alarm-1", (Unknown, Up), t(23));
    let told = notices(&m.apply(&up, t(23)).changes);
    assert_eq!(kinds(&told), [NoticeKind::AlertResolved; 2]);
    assert!(
        told.iter().all(|n| n.detail.contains("Back since")),
        "{told:#?}"
    );
    assert!(m.active_alerts().next().is_none());
}

#[test]
fn a_hold_down_under_way_goes_on_counting_from_the_first_drop_across_an_agent_restart() {
    let mut m = campus();
    let down = ev(101, "cam-1", (Up, Down), t(100));
    m.apply(&down, t(100));
    assert!(notices(&m.expire(t(115))).is_empty());
    restart(&mut m, "c1", 1, &CAMPUS, t(118), TimeDelta::seconds(2));
    let again = ev(102, "cam-1", (Unknown, Down), t(125));
    assert!(notices(&m.apply(&again, t(125)).changes).is_empty());
    assert!(notices(&m.expire(t(129))).is_empty());
    let opened = notices(&m.expire(t(130)));
    assert_eq!(
        told(&opened),
        [
            (NoticeKind::AlertOpened, "cam-1".into()),
            (NoticeKind::AlertOpened, "video".into())
        ],
        "30 s after t(100)"
    );
    assert!(m.active_alerts().all(|a| a.since == t(100)));
}

#[test]
fn a_link_unknown_after_a_drop_opens_no_alert_until_it_is_reported_down_again() {
    let mut m = campus();
    let down = ev(101, "cam-1", (Up, Down), t(100));
    m.apply(&down, t(100));
    // The gateway goes away before the hold-down ends and comes back much later.
    m.apply(&death("c1", "150102", 1), t(110));
    let gateway = |ns: &[Notice]| {
        ns.iter()
            .map(|n| (n.kind, n.link.clone()))
            .collect::<Vec<_>>()
    };
    let told = notices(&m.expire(t(140)));
    assert_eq!(
        gateway(&told),
        [(NoticeKind::AlertOpened, Some("gateway".into()))],
        "only the gateway's own outage is told"
    );
    let mut back = m.apply(&restarted("c1", 2, &CAMPUS), t(500)).changes;
    back.extend(m.expire(t(500)));
    assert_eq!(
        gateway(&notices(&back)),
        [(NoticeKind::AlertResolved, Some("gateway".into()))]
    );
    assert!(
        notices(&m.expire(t(600))).is_empty(),
        "nothing while unknown"
    );
    // Reported down: its hold-down ended long ago, so it opens at once.
    let again = ev(102, "cam-1", (Unknown, Down), t(601));
    let told = notices(&m.apply(&again, t(601)).changes);
    assert_eq!(
        kinds(&told),
        [NoticeKind::AlertOpened; 2],
        "cam-1 and video"
    );
    assert!(told.iter().all(|n| n.since == t(100)), "{told:#?}");
}

#[test]
fn a_gateway_that_goes_away_and_comes_back_keeps_its_devices_alerts_and_tells_none_again() {
    let mut m = campus();
    for (n, cam) in [(101, "cam-1"), (102, "cam-2")] {
        let e = ev(n, cam, (Up, Down), t(10));
        m.apply(&e, t(10));
    }
    let told = notices(&m.expire(t(40)));
    assert_eq!(
        told.len(),
        3,
        "two cameras and the campus's video: {told:#?}"
    );
    let before: Vec<u64> = m.active_alerts().map(|a| a.id).collect();

    // Away past the gateway's hold-down: its own alert is told, the others kept quiet.
    m.apply(&death("c1", "150102", 1), t(100));
    let told = notices(&m.expire(t(130)));
    assert_eq!(kinds(&told), [NoticeKind::AlertOpened]);
    assert_eq!(told[0].link.as_deref(), Some("gateway"));
    assert!(m
        .active_alerts()
        .filter(|a| a.kind != AlertKind::Gateway)
        .all(|a| a.state == AlertState::Suppressed));

    // Back, with every device unknown: only the gateway's alert ends.
    let mut changes = m.apply(&restarted("c1", 2, &CAMPUS), t(200)).changes;
    changes.extend(m.expire(t(200)));
    let told = notices(&changes);
    assert_eq!(kinds(&told), [NoticeKind::AlertResolved]);
    assert_eq!(told[0].link.as_deref(), Some("gateway"));
    let after: Vec<u64> = m.active_alerts().map(|a| a.id).collect();
    assert_eq!(after, before);
    assert!(m.active_alerts().all(|a| a.state == AlertState::Open));
    // The cameras are probed: still down. Nothing new.
    for (n, cam) in [(103, "cam-1"), (104, "cam-2")] {
        let e = ev(n, cam, (Unknown, Down), t(203));
        assert!(notices(&m.apply(&e, t(203)).changes).is_empty());
    }
    assert!(notices(&m.expire(t(400))).is_empty());
    assert_eq!(m.active_alerts().map(|a| a.id).collect::<Vec<_>>(), before);
}

#[test]
fn restarts_are_not_flapping() {
    let mut m = with_rules(
        AlertRules {
            flap_changes: 3,
            ..rules()
        },
        &[entry("c1", "150102", SchoolType::Primary, 1, 3)],
    );
    m.apply(&birth("c1", "150102", 1, cameras(3)), t(0));
    let down = ev(101, "alarm-1", (Up, Down), t(10));
    m.apply(&down, t(10));
    let mut told = Vec::new();
    for epoch in 1..6u64 {
        let at = t(10 + epoch as i64 * 10);
        told.extend(notices(&restart(
            &mut m,
            "c1",
            epoch,
            &CAMPUS,
            at,
            TimeDelta::seconds(1),
        )));
        let e = ev(
            101 + epoch,
            "alarm-1",
            (Unknown, Down),
            at + TimeDelta::seconds(2),
        );
        told.extend(notices(&m.apply(&e, at + TimeDelta::seconds(2)).changes));
    }
    // The gateway did come and go five times (its own flapping is real); the alarm
    // link never changed.
    let alarm: Vec<&Notice> = told
        .iter()
        .filter(|n| n.link.as_deref() == Some("alarm"))
        .collect();
    assert!(alarm.is_empty(), "{alarm:#?}");
    assert!(m
        .active_alerts()
        .filter(|a| a.kind == AlertKind::Alarm)
        .all(|a| !a.flapping));
}

#[test]
fn a_device_that_leaves_the_inventory_ends_its_alert_saying_so_never_restored() {
    let mut m = campus();
    let down = ev(101, "alarm-1", (Up, Down), t(10));
    m.apply(&down, t(10));
    // The installer takes the alarm out of the agent's configuration.
    let without: Vec<DeviceReport> = cameras(3).into_iter().skip(1).collect();
    let told = notices(&m.apply(&birth("c1", "150102", 2, without), t(50)).changes);
    assert_eq!(kinds(&told), [NoticeKind::AlertResolved; 2]);
    assert!(
        told[0]
            .title
            .starts_with("No longer monitored: Alarm link down"),
        "{}",
        told[0].title
    );
    // With no alarm device left, the campus cannot be alarm networked at all: an
    // installation gap, not a dropped link.
    assert!(
        told[1]
            .title
            .starts_with("No longer monitored: Alarm networking lost"),
        "{}",
        told[1].title
    );
    for n in &told {
        assert!(
            n.detail.contains("removed from the gateway's inventory"),
            "{}",
            n.detail
        );
        assert!(!n.detail.contains("Back since"));
    }
}

#[test]
fn a_down_camera_that_leaves_the_inventory_ends_the_video_alert_saying_so() {
    let mut m = campus();
    for (n, cam) in [(101, "cam-1"), (102, "cam-2")] {
        let e = ev(n, cam, (Up, Down), t(10));
        m.apply(&e, t(10));
    }
    m.expire(t(40));
    // cam-2 is taken out: with two cameras left the campus cannot have the three the
    // registry expects, so it is no dropped link that keeps it out of video coverage.
    let mut devices = cameras(3);
    devices.remove(2);
    devices[1].state = DeviceState::Down;
    let told = notices(&m.apply(&birth("c1", "150102", 2, devices), t(50)).changes);
    let mut titles: Vec<&str> = told.iter().map(|n| n.title.as_str()).collect();
    titles.sort();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(titles[0].starts_with("No longer monitored: Camera down"));
    assert!(titles[1].starts_with("No longer monitored: Video networking lost"));
    assert_eq!(open_alerts(&m).len(), 1, "cam-1 stays down");
}

#[test]
fn a_campus_that_leaves_the_registry_ends_its_alerts_saying_so() {
    let mut m = campus();
    let down = ev(101, "alarm-1", (Up, Down), t(10));
    m.apply(&down, t(10));
    let told = notices(&m.set_registry(&[], true, t(20)));
    assert_eq!(kinds(&told), [NoticeKind::AlertResolved; 2]);
    for n in &told {
        assert!(n.title.starts_with("No longer monitored: "), "{}", n.title);
        assert!(
            n.detail.contains("removed from the registry"),
            "{}",
            n.detail
        );
    }
}

#[test]
fn a_rebirth_with_the_link_still_down_changes_nothing() {
    let mut m = campus();
    let down = ev(101, "alarm-1", (Up, Down), t(10));
    m.apply(&down, t(10));
    let mut devices = cameras(3);
    devices[0].state = DeviceState::Down;
    devices[0].since = Some(t(10));
    let out = m.apply(&birth("c1", "150102", 1, devices), t(20));
    assert!(notices(&out.changes).is_empty());
    assert_eq!(
        alert_ids(&m),
        [
            (1, AlertKind::Alarm, AlertState::Open),
            (2, AlertKind::AlarmNetworking, AlertState::Open)
        ]
    );
}

#[test]
fn an_outage_start_is_kept_to_the_second_through_unknown_and_stored() {
    let mut m = campus();
    let at = t(10) + TimeDelta::milliseconds(250);
    m.apply(&ev(101, "alarm-1", (Up, Down), at), at);
    let record = |m: &Monitor| m.campus("c1").unwrap().devices[0].clone();
    assert_eq!(record(&m).outage_start(), Some(t(10)));
    restart(&mut m, "c1", 1, &CAMPUS, t(20), TimeDelta::seconds(2));
    let unknown = record(&m);
    assert_eq!(unknown.state, DeviceState::Unknown);
    assert_eq!(unknown.outage_start(), Some(t(10)));
    // Written to the store as JSON and read back after a restart.
    let json = serde_json::to_string(&unknown).unwrap();
    assert!(
        json.contains(r#""down_since":"2027-01-15T08:00:10Z""#),
        "{json}"
    );
    let back: DeviceRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, unknown);
    // Up: no outage, nothing stored.
    m.apply(&ev(102, "alarm-1", (Unknown, Up), t(30)), t(30));
    assert_eq!(record(&m).outage_start(), None);
    assert!(!serde_json::to_string(&record(&m))
        .unwrap()
        .contains("down_since"));
}

#[test]
fn a_device_record_keeps_its_outage_start_without_growing() {
    // 4,000,000 devices in a province: the outage start lives in the record's padding.
    assert!(std::mem::size_of::<DeviceRecord>() <= 136);
}

#[test]
fn a_report_of_down_again_within_the_same_second_does_not_move_the_outage_start() {
    let mut m = campus();
    let ms = |n: i64| t(10) + TimeDelta::milliseconds(n);
    m.apply(&ev(101, "cam-1", (Up, Down), ms(100)), ms(100));
    m.apply(&death("c1", "150102", 1), ms(200));
    m.apply(&restarted("c1", 2, &CAMPUS), ms(300));
    m.apply(&ev(102, "cam-1", (Unknown, Down), ms(500)), ms(500));
    assert!(notices(&m.expire(t(39))).is_empty());
    assert_eq!(
        kinds(&notices(&m.expire(t(40)))),
        [NoticeKind::AlertOpened; 2],
        "cam-1 and video"
    );
    assert!(m.active_alerts().all(|a| a.since == t(10)));
}
