//! Gateways and devices: births, deaths, heartbeats, staleness, events and who counts.

use super::*;

#[test]
fn a_birth_brings_the_gateway_online_and_coverage_counts_it() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Online);
    let all = m.coverage().total(None, None);
    assert_eq!(
        (
            all.registered,
            all.reporting,
            all.alarm_networked,
            all.video_networked,
            all.fully_networked
        ),
        (1, 1, 1, 1, 1)
    );
    assert_eq!((all.alarm_up, all.camera_up), (1, 2));
}

#[test]
fn a_device_identity_learned_after_the_birth_arrives_with_its_event_and_stays() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 1)]);
    let mut cam = dev("cam-1", DeviceKind::Camera, DeviceState::Unknown);
    cam.since = None;
    m.apply(&birth("c1", "150102", 1, vec![cam]), t(0));
    let info = DeviceInfo {
        manufacturer: Some("Dahua".into()),
        model: Some("IPC-HDW2431T".into()),
        firmware: Some("2.820.0".into()),
        ..DeviceInfo::default()
    };
    let mut up = event(
        "c1",
        "150102",
        101,
        "cam-1",
        DeviceState::Unknown,
        DeviceState::Up,
    );
    if let Message::Event(e) = &mut up {
        e.v = 2;
        e.info = Some(info.clone());
    }
    m.apply(&up, t(1));
    let device = |m: &Monitor| m.campus("c1").unwrap().devices[0].clone();
    assert_eq!(device(&m).info.as_deref(), Some(&info));
    // A later event without identity (the device is unreachable) keeps what is known.
    m.apply(
        &event(
            "c1",
            "150102",
            102,
            "cam-1",
            DeviceState::Up,
            DeviceState::Down,
        ),
        t(2),
    );
    assert_eq!(device(&m).state, DeviceState::Down);
    assert_eq!(device(&m).info.as_deref(), Some(&info));
}

#[test]
fn a_late_last_will_of_an_old_session_is_ignored() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 7), t(0));
    m.apply(&healthy("c1", "150102", 8), t(1));
    let out = m.apply(&death("c1", "150102", 7), t(2));
    assert_eq!(out.ignored, Some(Ignored::StaleEpoch));
    assert!(out.changes.is_empty());
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Online);
    assert!(open_alerts(&m).is_empty());
}

#[test]
fn a_birth_of_an_older_epoch_is_ignored() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 8), t(0));
    let out = m.apply(&birth("c1", "150102", 7, vec![]), t(1));
    assert_eq!(out.ignored, Some(Ignored::StaleEpoch));
    assert_eq!(m.campus("c1").unwrap().devices.len(), 3);
}

#[test]
fn a_death_of_the_current_epoch_takes_the_gateway_offline_with_one_alert() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 3), t(0));
    m.apply(&death("c1", "150102", 3), t(4));
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Offline);
    assert_eq!(
        open_alerts(&m),
        [("c1".to_string(), None, AlertKind::Gateway)]
    );
    let all = m.coverage().total(None, None);
    assert_eq!(
        (all.registered, all.reporting, all.fully_networked),
        (1, 0, 0)
    );
    // Its devices are unknown to users.
    let view = m.campus("c1").unwrap();
    assert!(view
        .devices
        .iter()
        .all(|d| view.device_state(d) == DeviceState::Unknown));
}

#[test]
fn a_silent_gateway_goes_stale_after_the_missed_heartbeats_and_not_before() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    m.apply(&heartbeat("c1", "150102", 1, 1), t(5));
    assert!(
        m.expire(t(19)).is_empty(),
        "3 x 5 s after the last heartbeat is t=20"
    );
    let changes = m.expire(t(20));
    assert!(!changes.is_empty());
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Stale);
    assert_eq!(open_alerts(&m).len(), 1);
    // Expiring again changes nothing.
    assert!(m.expire(t(30)).is_empty());
}

#[test]
fn heartbeat_updates_are_taken_a_chunk_at_a_time_and_each_once() {
    let ids = ["c1", "c2", "c3", "c4", "c5"];
    let entries: Vec<RegistryEntry> = ids
        .iter()
        .map(|id| entry(id, "150102", SchoolType::Primary, 1, 2))
        .collect();
    let mut m = monitor_with(&entries);
    for id in ids {
        m.apply(&healthy(id, "150102", 1), t(0));
        m.apply(&heartbeat(id, "150102", 1, 1), t(5));
    }
    let mut taken = Vec::new();
    for want in [2, 2, 1, 0] {
        let chunk = m.take_heartbeat_updates(2);
        assert_eq!(chunk.len(), want);
        for c in chunk {
            let Change::Gateway { campus, record, .. } = c else {
                panic!("a heartbeat update is a gateway record: {c:?}");
            };
            assert_eq!(record.last_heartbeat, Some(t(5)));
            taken.push(campus.to_string());
        }
    }
    taken.sort();
    assert_eq!(taken, ids);
    m.apply(&heartbeat("c3", "150102", 1, 2), t(10));
    assert_eq!(m.take_heartbeat_updates(usize::MAX).len(), 1);
}

#[test]
fn a_heartbeat_after_staleness_brings_the_gateway_back_and_resolves_its_alert() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    m.expire(t(15));
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Stale);
    let out = m.apply(&heartbeat("c1", "150102", 1, 2), t(16));
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Online);
    assert!(out.changes.iter().any(|c| matches!(
        c,
        Change::Alert(Alert {
            state: AlertState::Resolved,
            ..
        })
    )));
    assert!(open_alerts(&m).is_empty());
}

#[test]
fn a_heartbeat_overtaken_by_its_own_death_does_not_revive_the_gateway() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    m.apply(&death("c1", "150102", 1), t(1));
    let out = m.apply(&heartbeat("c1", "150102", 1, 9), t(2));
    assert_eq!(out.ignored, Some(Ignored::SessionEnded));
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Offline);
}

#[test]
fn a_device_outage_raises_one_alert_and_its_recovery_resolves_it() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    m.apply(
        &event(
            "c1",
            "150102",
            101,
            "cam-1",
            DeviceState::Up,
            DeviceState::Down,
        ),
        t(1),
    );
    // Video coverage needs ceil(0.8 x 2) = 2 cameras: lost, and alerted as such.
    assert_eq!(
        open_alerts(&m),
        [
            (
                "c1".to_string(),
                Some("cam-1".to_string()),
                AlertKind::Camera
            ),
            ("c1".to_string(), None, AlertKind::Video)
        ]
    );
    assert_eq!(m.coverage().total(None, None).video_networked, 0);
    assert_eq!(m.coverage().total(None, None).alarm_networked, 1);
    m.apply(
        &event(
            "c1",
            "150102",
            102,
            "cam-1",
            DeviceState::Down,
            DeviceState::Up,
        ),
        t(2),
    );
    assert!(open_alerts(&m).is_empty());
    assert_eq!(m.coverage().total(None, None).fully_networked, 1);
}

#[test]
fn a_gateway_drop_gives_one_alert_not_one_per_device() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 40)]);
    let mut devices = vec![dev("alarm-1", DeviceKind::Alarm, DeviceState::Up)];
    devices.extend((0..40).map(|i| dev(&format!("cam-{i}"), DeviceKind::Camera, DeviceState::Up)));
    m.apply(&birth("c1", "150102", 1, devices), t(0));
    m.apply(
        &event(
            "c1",
            "150102",
            101,
            "cam-3",
            DeviceState::Up,
            DeviceState::Down,
        ),
        t(1),
    );
    m.apply(&death("c1", "150102", 1), t(2));
    assert_eq!(
        open_alerts(&m),
        [("c1".to_string(), None, AlertKind::Gateway)]
    );
    // The camera's alert is held as suppressed, and comes back if it is still down.
    let suppressed: Vec<_> = m
        .active_alerts()
        .filter(|a| a.state == AlertState::Suppressed)
        .collect();
    assert_eq!(suppressed.len(), 1);
    let mut devices = vec![dev("alarm-1", DeviceKind::Alarm, DeviceState::Up)];
    devices.extend((0..40).map(|i| {
        let state = if i == 3 {
            DeviceState::Down
        } else {
            DeviceState::Up
        };
        dev(&format!("cam-{i}"), DeviceKind::Camera, state)
    }));
    m.apply(&birth("c1", "150102", 2, devices), t(10));
    assert_eq!(
        open_alerts(&m),
        [(
            "c1".to_string(),
            Some("cam-3".to_string()),
            AlertKind::Camera
        )]
    );
}

#[test]
fn an_event_already_reflected_by_the_birth_is_kept_as_history_only() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 2), t(0)); // last_event_id = 100
    let out = m.apply(
        &event(
            "c1",
            "150102",
            99,
            "cam-1",
            DeviceState::Up,
            DeviceState::Down,
        ),
        t(1),
    );
    assert_eq!(out.ignored, Some(Ignored::AlreadyApplied));
    assert!(matches!(out.changes.as_slice(), [Change::Transition(tr)] if tr.event_id == Some(99)));
    assert!(open_alerts(&m).is_empty());
    assert_eq!(m.coverage().total(None, None).fully_networked, 1);
}

#[test]
fn never_seen_campuses_count_only_as_registered() {
    let m = monitor_with(&[
        entry("c1", "150102", SchoolType::Primary, 1, 2),
        entry("c2", "150203", SchoolType::Kindergarten, 1, 8),
    ]);
    let all = m.coverage().total(None, None);
    assert_eq!(
        (
            all.registered,
            all.reporting,
            all.alarm_networked,
            all.video_networked,
            all.fully_networked
        ),
        (2, 0, 0, 0, 0)
    );
    assert_eq!((all.alarm_expected, all.camera_expected), (2, 10));
    assert_eq!(gateway_state(&m, "c2"), GatewayState::NeverSeen);
    assert!(m.active_alerts().next().is_none());
}

#[test]
fn an_unregistered_campus_is_listed_but_never_counted_or_alerted() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("stray", "150102", 1), t(0));
    m.apply(&death("stray", "150102", 1), t(1));
    assert_eq!(m.coverage().total(None, None).registered, 1);
    assert_eq!(m.coverage().total(None, None).reporting, 0);
    assert_eq!(m.unregistered_count(), 1);
    assert!(m.campus("stray").unwrap().registry.is_none());
    assert!(m.active_alerts().next().is_none());
}

#[test]
fn a_message_naming_another_region_than_the_registry_is_dropped() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    let out = m.apply(&healthy("c1", "150103", 1), t(0));
    assert_eq!(out.ignored, Some(Ignored::RegionMismatch));
    assert_eq!(gateway_state(&m, "c1"), GatewayState::NeverSeen);
    assert_eq!(m.coverage().total(None, None).reporting, 0);
}
