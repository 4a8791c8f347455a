//! The monitor's behaviour, with time passed in.

use super::*;
use campuswatch_protocol::{DeathReason, DeviceReport};
use chrono::{TimeZone, Utc};

fn t(secs: i64) -> Timestamp {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn cid(s: &str) -> CampusId {
    CampusId::parse(s).unwrap()
}

fn region(s: &str) -> RegionCode {
    RegionCode::parse(s).unwrap()
}

fn entry(
    id: &str,
    county: &str,
    school_type: SchoolType,
    alarms: u32,
    cameras: u32,
) -> RegistryEntry {
    RegistryEntry {
        campus: cid(id),
        name: format!("campus {id}"),
        region: region(county),
        school_type,
        expected_alarms: alarms,
        expected_cameras: cameras,
    }
}

fn dev(id: &str, kind: DeviceKind, state: DeviceState) -> DeviceReport {
    DeviceReport {
        id: DeviceId::parse(id).unwrap(),
        kind,
        probe: "tcp".into(),
        target: "10.0.0.1:5000".into(),
        required: kind == DeviceKind::Alarm,
        state,
        since: Some(t(0)),
        cause: None,
        measurements: Measurements::new(),
        info: None,
    }
}

fn birth(id: &str, county: &str, epoch: u64, devices: Vec<DeviceReport>) -> Message {
    Message::Birth(Birth {
        v: 1,
        campus: cid(id),
        region: region(county),
        epoch,
        at: t(0),
        agent_version: "0.1.0".into(),
        config_digest: "abc".into(),
        heartbeat_interval_ms: 5_000,
        last_event_id: 100,
        devices,
    })
}

fn healthy(id: &str, county: &str, epoch: u64) -> Message {
    birth(
        id,
        county,
        epoch,
        vec![
            dev("alarm-1", DeviceKind::Alarm, DeviceState::Up),
            dev("cam-1", DeviceKind::Camera, DeviceState::Up),
            dev("cam-2", DeviceKind::Camera, DeviceState::Up),
        ],
    )
}

fn heartbeat(id: &str, county: &str, epoch: u64, seq: u64) -> Message {
    Message::Heartbeat(Heartbeat {
        v: 1,
        campus: cid(id),
        region: region(county),
        epoch,
        seq,
        at: t(0),
        health: HostHealth {
            cpu_pct: 1.0,
            mem_used_pct: 20.0,
            disk_used_pct: 30.0,
            uptime_s: 10,
        },
        states: "UUU".into(),
        last_event_id: 100,
    })
}

fn death(id: &str, county: &str, epoch: u64) -> Message {
    Message::Death(Death {
        v: 1,
        campus: cid(id),
        region: region(county),
        epoch,
        reason: DeathReason::ConnectionLost,
    })
}

fn event(
    id: &str,
    county: &str,
    event_id: u64,
    device: &str,
    from: DeviceState,
    to: DeviceState,
) -> Message {
    Message::Event(Event {
        v: 1,
        campus: cid(id),
        region: region(county),
        id: event_id,
        epoch: 1,
        at: t(1),
        device: DeviceId::parse(device).unwrap(),
        kind: if device.starts_with("alarm") {
            DeviceKind::Alarm
        } else {
            DeviceKind::Camera
        },
        from,
        to,
        cause: Some("connection refused".into()),
        measurements: Measurements::new(),
        info: None,
    })
}

fn monitor_with(entries: &[RegistryEntry]) -> Monitor {
    let mut m = Monitor::new(Settings::default());
    m.set_registry(entries, false, t(0));
    m
}

fn open_alerts(m: &Monitor) -> Vec<(String, Option<String>, AlertKind)> {
    m.active_alerts()
        .filter(|a| a.state == AlertState::Open)
        .map(|a| {
            (
                a.campus.to_string(),
                a.device.as_ref().map(|d| d.to_string()),
                a.kind,
            )
        })
        .collect()
}

fn gateway_state(m: &Monitor, id: &str) -> GatewayState {
    m.campus(id).unwrap().gateway.state
}

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
    assert_eq!(device(&m).info.as_ref(), Some(&info));
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
    assert_eq!(device(&m).info, Some(info));
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
    assert_eq!(
        open_alerts(&m),
        [(
            "c1".to_string(),
            Some("cam-1".to_string()),
            AlertKind::Camera
        )]
    );
    // Video coverage needs ceil(0.8 x 2) = 2 cameras: lost.
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

#[test]
fn after_a_restore_nothing_goes_stale_before_a_full_window() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    let snap = Snapshot {
        registry: vec![entry("c1", "150102", SchoolType::Primary, 1, 2)],
        gateways: vec![(
            cid("c1"),
            region("150102"),
            m.campus("c1").unwrap().gateway.clone(),
        )],
        devices: m
            .campus("c1")
            .unwrap()
            .devices
            .iter()
            .map(|d| (cid("c1"), d.clone()))
            .collect(),
        alerts: vec![],
        max_alert_id: 0,
    };
    // The server was down for an hour; the gateway's last heartbeat is long past.
    let mut r = Monitor::restore(Settings::default(), snap, t(3600));
    assert_eq!(r.coverage().total(None, None).fully_networked, 1);
    assert!(r.expire(t(3614)).is_empty());
    assert!(!r.expire(t(3615)).is_empty());
}

#[test]
fn regaining_the_broker_gives_every_gateway_a_full_window() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    // The server could not hear anything from t=5 to t=60; it reconnects at t=60.
    m.on_broker_reconnected(t(60));
    assert!(m.expire(t(74)).is_empty());
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Online);
}

#[test]
fn a_registry_edit_moves_a_campus_between_regions_and_types_exactly() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    m.set_registry(
        &[entry("c1", "150203", SchoolType::Secondary, 1, 2)],
        false,
        t(1),
    );
    let old = m.coverage().total(Some(region("150100")), None);
    let new = m
        .coverage()
        .total(Some(region("150200")), Some(SchoolType::Secondary));
    assert_eq!((old.registered, old.fully_networked), (0, 0));
    // Its messages still name 150102, so the next ones are dropped, but the state it
    // had stays counted under the new region.
    assert_eq!(new.registered, 1);
    assert_eq!(
        m.coverage()
            .total(None, Some(SchoolType::Primary))
            .registered,
        0
    );
    assert_eq!(
        m.coverage()
            .child_regions(Some(region("150000")))
            .collect::<Vec<_>>(),
        [region("150200")]
    );
}

#[test]
fn replacing_the_registry_removes_campuses_from_the_counts_and_resolves_their_alerts() {
    let mut m = monitor_with(&[
        entry("c1", "150102", SchoolType::Primary, 1, 2),
        entry("c2", "150102", SchoolType::Primary, 1, 2),
    ]);
    m.apply(&healthy("c2", "150102", 1), t(0));
    m.apply(&death("c2", "150102", 1), t(1));
    assert_eq!(open_alerts(&m).len(), 1);
    let changes = m.set_registry(
        &[entry("c1", "150102", SchoolType::Primary, 1, 2)],
        true,
        t(2),
    );
    assert!(changes
        .iter()
        .any(|c| matches!(c, Change::Alert(a) if a.state == AlertState::Resolved)));
    assert_eq!(m.coverage().total(None, None).registered, 1);
    assert_eq!(m.unregistered_count(), 1);
}

/// Incremental coverage must always equal a recount from scratch, whatever happens.
#[test]
fn incremental_coverage_always_equals_a_full_recount() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let counties = ["150102", "150103", "150203", "152921"];
    let types = SchoolType::ALL;
    let entries: Vec<_> = (0..30)
        .map(|i| {
            entry(
                &format!("c{i}"),
                counties[i % counties.len()],
                types[i % types.len()],
                1 + (i % 2) as u32,
                (i % 5) as u32,
            )
        })
        .collect();
    let mut m = monitor_with(&entries);
    let mut epochs = vec![0u64; 30];
    let mut event_ids = vec![1000u64; 30];
    for step in 0..3000 {
        let now = t(step);
        let i = rng.random_range(0..30);
        let (id, county) = (format!("c{i}"), counties[i % counties.len()]);
        match rng.random_range(0..6) {
            0 => {
                epochs[i] += 1;
                let devices = (0..rng.random_range(0..6))
                    .map(|d| {
                        let kind = if d % 3 == 0 {
                            DeviceKind::Alarm
                        } else {
                            DeviceKind::Camera
                        };
                        let state = [DeviceState::Up, DeviceState::Down, DeviceState::Degraded]
                            [rng.random_range(0..3)];
                        dev(&format!("d{d}"), kind, state)
                    })
                    .collect();
                let mut b = birth(&id, county, epochs[i].max(1), devices);
                if let Message::Birth(b) = &mut b {
                    b.last_event_id = event_ids[i];
                }
                m.apply(&b, now);
            }
            1 => {
                m.apply(&death(&id, county, epochs[i].max(1)), now);
            }
            2 => {
                m.apply(&heartbeat(&id, county, epochs[i].max(1), 1), now);
            }
            3 => {
                event_ids[i] += 1;
                let d = rng.random_range(0..6);
                let name = if d % 3 == 0 {
                    format!("alarm-d{d}")
                } else {
                    format!("d{d}")
                };
                let (from, to) = if rng.random_bool(0.5) {
                    (DeviceState::Up, DeviceState::Down)
                } else {
                    (DeviceState::Down, DeviceState::Up)
                };
                m.apply(&event(&id, county, event_ids[i], &name, from, to), now);
            }
            4 => {
                m.expire(now);
            }
            _ => {
                // Registry edits: move a campus, change its expectations.
                let j = rng.random_range(0..30);
                let mut e = entries[j].clone();
                e.expected_cameras = rng.random_range(0..6);
                e.school_type = types[rng.random_range(0..4)];
                m.set_registry(&[e], false, now);
            }
        }
        if step % 100 == 0 {
            assert_recount(&m);
        }
    }
    assert_recount(&m);
}

fn assert_recount(m: &Monitor) {
    let mut expected = CoverageIndex::default();
    for c in m.campuses.values() {
        if c.registry.is_some() {
            expected.add(c.region, c.school_type(), &m.contribution(c));
        }
    }
    for node in [
        None,
        Some(region("150000")),
        Some(region("150100")),
        Some(region("150102")),
        Some(region("152900")),
    ] {
        for ty in std::iter::once(None).chain(SchoolType::ALL.map(Some)) {
            assert_eq!(
                m.coverage().total(node, ty),
                expected.total(node, ty),
                "{node:?} {ty:?}"
            );
        }
    }
}
