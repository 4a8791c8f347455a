//! The monitor's behaviour, with time passed in.

use super::*;
use campuswatch_protocol::{DeathReason, DeviceInfo, DeviceReport, HostHealth};
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
        dropped_events: 0,
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

fn immediate() -> Settings {
    Settings::immediate()
}

fn monitor_with(entries: &[RegistryEntry]) -> Monitor {
    let mut m = Monitor::new(immediate());
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
        ..Snapshot::default()
    };
    // The server was down for an hour; the gateway's last heartbeat is long past.
    let mut r = Monitor::restore(immediate(), snap, t(3600));
    assert_eq!(r.coverage().total(None, None).fully_networked, 1);
    assert!(r.expire(t(3614)).is_empty());
    assert!(!r.expire(t(3615)).is_empty());
}

#[test]
fn a_server_watching_some_regions_counts_only_their_campuses() {
    let settings = || Settings {
        partition: vec![region("150100")],
        ..immediate()
    };
    let entries = [
        entry("c1", "150102", SchoolType::Primary, 1, 2),
        entry("c2", "150203", SchoolType::Primary, 1, 2),
    ];
    let mut m = Monitor::new(settings());
    m.set_registry(&entries, false, t(0));
    assert_eq!(m.coverage().total(None, None).registered, 1);
    assert!(m.campus("c2").is_none());
    // Restored from a database that also holds another partition's state: only this
    // partition's campuses come back, so nothing of theirs can go stale here.
    let mut other = Monitor::new(Settings::immediate());
    other.set_registry(&entries, false, t(0));
    other.apply(&healthy("c2", "150203", 1), t(0));
    let snap = Snapshot {
        registry: entries.to_vec(),
        gateways: vec![(
            cid("c2"),
            region("150203"),
            other.campus("c2").unwrap().gateway.clone(),
        )],
        ..Snapshot::default()
    };
    let mut r = Monitor::restore(settings(), snap, t(10));
    assert_eq!(r.coverage().total(None, None).registered, 1);
    assert!(r.campus("c2").is_none());
    assert!(r
        .expire(t(100_000))
        .iter()
        .all(|c| !format!("{c:?}").contains("c2")));
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

// ---- alert lifecycle ---------------------------------------------------------------------

use crate::notify::{Notice, NoticeKind, Severity};

/// A monitor with these alert rules, whose gateways never go stale on their own (the
/// lifecycle tests drop them on purpose).
fn with_rules(rules: AlertRules, entries: &[RegistryEntry]) -> Monitor {
    let mut m = Monitor::new(Settings {
        alerts: rules,
        missed_heartbeats: 1_000_000,
        ..Settings::default()
    });
    m.set_registry(entries, false, t(0));
    m
}

/// Campuses of county 150102, all reporting since t(0).
fn online_county(rules: AlertRules, ids: &[&str]) -> Monitor {
    let entries: Vec<_> = ids
        .iter()
        .map(|id| entry(id, "150102", SchoolType::Primary, 1, 1))
        .collect();
    let mut m = with_rules(rules, &entries);
    for id in ids {
        m.apply(&healthy(id, "150102", 1), t(0));
    }
    m
}

fn notices(changes: &[Change]) -> Vec<Notice> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Notice(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// `event(…)` that happened at `at` on the gateway.
fn event_at(
    id: &str,
    event_id: u64,
    device: &str,
    from: DeviceState,
    to: DeviceState,
    at: Timestamp,
) -> Message {
    let mut m = event(id, "150102", event_id, device, from, to);
    if let Message::Event(e) = &mut m {
        e.at = at;
    }
    m
}

fn kinds(ns: &[Notice]) -> Vec<NoticeKind> {
    ns.iter().map(|n| n.kind).collect()
}

fn cameras(n: usize) -> Vec<DeviceReport> {
    let mut devices = vec![dev("alarm-1", DeviceKind::Alarm, DeviceState::Up)];
    devices.extend((1..=n).map(|i| dev(&format!("cam-{i}"), DeviceKind::Camera, DeviceState::Up)));
    devices
}

#[test]
fn a_link_becomes_an_alert_only_after_its_hold_down_and_a_blip_is_never_told() {
    let rules = AlertRules {
        hold_down_camera: TimeDelta::seconds(60),
        ..AlertRules::default()
    };
    let mut m = with_rules(rules, &[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    let down = m.apply(
        &event_at("c1", 101, "cam-1", DeviceState::Up, DeviceState::Down, t(1)),
        t(1),
    );
    assert!(notices(&down.changes).is_empty());
    assert!(open_alerts(&m).is_empty(), "within the hold-down");
    assert!(notices(&m.expire(t(60))).is_empty());
    let opened = notices(&m.expire(t(61)));
    assert_eq!(kinds(&opened), [NoticeKind::AlertOpened]);
    assert_eq!(opened[0].severity, Severity::Warning);
    assert!(
        opened[0].title.contains("Camera down"),
        "{}",
        opened[0].title
    );
    assert_eq!(opened[0].path, "/console/campuses/c1");
    let a = m.active_alerts().next().unwrap();
    assert_eq!((a.since, a.opened_at), (t(1), t(61)));

    let up = m.apply(
        &event_at(
            "c1",
            102,
            "cam-1",
            DeviceState::Down,
            DeviceState::Up,
            t(90),
        ),
        t(90),
    );
    assert_eq!(kinds(&notices(&up.changes)), [NoticeKind::AlertResolved]);

    // Down for 30 s and back: no alert, nothing told.
    m.apply(
        &event_at(
            "c1",
            103,
            "cam-2",
            DeviceState::Up,
            DeviceState::Down,
            t(100),
        ),
        t(100),
    );
    let back = m.apply(
        &event_at(
            "c1",
            104,
            "cam-2",
            DeviceState::Down,
            DeviceState::Up,
            t(130),
        ),
        t(130),
    );
    assert!(
        notices(&back.changes).is_empty(),
        "{:#?}",
        notices(&back.changes)
    );
    assert!(notices(&m.expire(t(200))).is_empty());
    assert_eq!(m.active_alerts().count(), 0);
}

#[test]
fn the_alarm_link_and_a_campus_video_are_critical_and_one_camera_a_warning() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 3)]);
    m.apply(&birth("c1", "150102", 1, cameras(3)), t(0));
    let alarm = m.apply(
        &event(
            "c1",
            "150102",
            101,
            "alarm-1",
            DeviceState::Up,
            DeviceState::Down,
        ),
        t(1),
    );
    let n = notices(&alarm.changes);
    assert_eq!(
        (n[0].kind, n[0].severity),
        (NoticeKind::AlertOpened, Severity::Critical)
    );
    assert!(n[0].title.starts_with("Alarm link down"));

    let one = m.apply(
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
    assert_eq!(notices(&one.changes)[0].severity, Severity::Warning);
    // Two of three cameras: more than half, the campus's video is down.
    let two = m.apply(
        &event(
            "c1",
            "150102",
            103,
            "cam-2",
            DeviceState::Up,
            DeviceState::Down,
        ),
        t(3),
    );
    let n = notices(&two.changes);
    let video: Vec<_> = n
        .iter()
        .filter(|n| n.link.as_deref() == Some("video"))
        .collect();
    assert_eq!(video.len(), 1, "{n:?}");
    assert_eq!(video[0].severity, Severity::Critical);
    assert!(
        video[0].detail.contains("2 of 3 cameras down"),
        "{}",
        video[0].detail
    );
    // One back: the video alert resolves, the other camera's stays.
    let back = m.apply(
        &event(
            "c1",
            "150102",
            104,
            "cam-2",
            DeviceState::Down,
            DeviceState::Up,
        ),
        t(4),
    );
    let n = notices(&back.changes);
    assert_eq!(n.len(), 2, "{n:?}");
    assert!(n.iter().all(|n| n.kind == NoticeKind::AlertResolved));
    assert_eq!(m.active_alerts().count(), 2, "alarm-1 and cam-1");
}

#[test]
fn a_gateway_drop_behind_which_forty_cameras_go_dark_is_one_alert_and_one_notice() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 40)]);
    m.apply(&birth("c1", "150102", 1, cameras(40)), t(0));
    let mut told = notices(&m.apply(&death("c1", "150102", 1), t(1)).changes);
    told.extend(notices(&m.expire(t(2))));
    assert_eq!(kinds(&told), [NoticeKind::AlertOpened]);
    assert_eq!(told[0].link.as_deref(), Some("gateway"));
    assert_eq!(told[0].severity, Severity::Critical);
    assert_eq!(m.active_alerts().count(), 1);
}

#[test]
fn a_county_whose_gateways_drop_together_is_one_incident_and_one_resolution() {
    let rules = AlertRules {
        hold_down_gateway: TimeDelta::seconds(30),
        group_wait: TimeDelta::seconds(30),
        ..AlertRules::default()
    };
    let ids: Vec<String> = (0..100).map(|i| format!("k{i:03}")).collect();
    let entries: Vec<_> = ids
        .iter()
        .map(|id| entry(id, "150102", SchoolType::Kindergarten, 1, 1))
        .collect();
    let mut m = with_rules(rules, &entries);
    for id in &ids {
        m.apply(&healthy(id, "150102", 1), t(0));
    }
    // The county's network drops: deaths arrive over a few seconds.
    let mut told = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        told.extend(notices(
            &m.apply(&death(id, "150102", 1), t(10 + i as i64 / 20))
                .changes,
        ));
    }
    for s in (10..=120).step_by(5) {
        told.extend(notices(&m.expire(t(s))));
    }
    assert_eq!(kinds(&told), [NoticeKind::IncidentOpened], "{told:#?}");
    assert_eq!(told[0].campuses.len(), 100);
    assert_eq!(told[0].severity, Severity::Critical);
    assert!(told[0].title.contains("100 campus gateways offline"));
    assert_eq!(m.open_incidents().count(), 1);
    assert_eq!(
        m.active_alerts().count(),
        100,
        "each campus keeps its own alert"
    );

    let mut told = Vec::new();
    for id in &ids {
        told.extend(notices(&m.apply(&healthy(id, "150102", 2), t(300)).changes));
        told.extend(notices(&m.expire(t(301))));
    }
    assert_eq!(kinds(&told), [NoticeKind::IncidentResolved]);
    assert_eq!(m.open_incidents().count(), 0);
}

#[test]
fn a_few_gateways_are_told_one_by_one_and_a_late_one_joins_an_open_incident() {
    let rules = AlertRules {
        hold_down_gateway: TimeDelta::zero(),
        group_wait: TimeDelta::seconds(30),
        incident_min_gateways: 3,
        ..AlertRules::default()
    };
    let mut m = online_county(rules, &["a", "b", "c", "d", "e"]);
    // Two drop: below the incident size, told one by one after the group wait.
    m.apply(&death("a", "150102", 1), t(10));
    m.apply(&death("b", "150102", 1), t(12));
    assert!(notices(&m.expire(t(39))).is_empty());
    let told = notices(&m.expire(t(40)));
    assert_eq!(
        kinds(&told),
        [NoticeKind::AlertOpened, NoticeKind::AlertOpened]
    );
    // Three more a minute later: an incident of those three.
    for id in ["c", "d", "e"] {
        m.apply(&death(id, "150102", 1), t(100));
    }
    let told = notices(&m.expire(t(130)));
    assert_eq!(kinds(&told), [NoticeKind::IncidentOpened]);
    assert_eq!(told[0].campuses.len(), 3);
    // "a" comes back and drops again while the incident is open: it joins silently.
    m.apply(&healthy("a", "150102", 2), t(140));
    m.apply(&death("a", "150102", 2), t(150));
    assert!(notices(&m.expire(t(200))).is_empty());
    assert_eq!(
        m.open_incidents().next().unwrap().campuses.len(),
        4,
        "a joined"
    );
}

#[test]
fn a_flapping_link_is_told_once_and_resolves_once_stable() {
    let rules = AlertRules {
        hold_down_alarm: TimeDelta::seconds(30),
        flap_changes: 6,
        flap_window: TimeDelta::minutes(10),
        ..AlertRules::default()
    };
    let mut m = with_rules(rules, &[entry("c1", "150102", SchoolType::Primary, 1, 0)]);
    m.apply(
        &birth(
            "c1",
            "150102",
            1,
            vec![dev("alarm-1", DeviceKind::Alarm, DeviceState::Up)],
        ),
        t(0),
    );
    // Down and up every 5 s for two minutes: never down long enough for the hold-down.
    let mut told = Vec::new();
    let mut id = 100;
    for i in 0..24 {
        let (from, to) = if i % 2 == 0 {
            (DeviceState::Up, DeviceState::Down)
        } else {
            (DeviceState::Down, DeviceState::Up)
        };
        id += 1;
        let at = t(5 + i * 5);
        told.extend(notices(
            &m.apply(&event_at("c1", id, "alarm-1", from, to, at), at)
                .changes,
        ));
        told.extend(notices(&m.expire(t(6 + i * 5))));
    }
    assert_eq!(kinds(&told), [NoticeKind::AlertFlapping], "{told:#?}");
    assert!(m.active_alerts().next().unwrap().flapping);
    // Up since t(120) (the last change): resolved once stable for the window.
    assert!(notices(&m.expire(t(120 + 599))).is_empty());
    let told = notices(&m.expire(t(120 + 600)));
    assert_eq!(kinds(&told), [NoticeKind::AlertResolved]);
    assert_eq!(m.active_alerts().count(), 0);
}

#[test]
fn an_alert_is_acknowledged_by_someone_until_it_resolves() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    m.apply(
        &event(
            "c1",
            "150102",
            101,
            "alarm-1",
            DeviceState::Up,
            DeviceState::Down,
        ),
        t(1),
    );
    let id = m.active_alerts().next().unwrap().id;
    assert_eq!(m.acknowledge(id, " ", None, t(2)), Err(AckError::NoName));
    assert_eq!(
        m.acknowledge(id + 100, "duty officer", None, t(2)),
        Err(AckError::NotActive(id + 100))
    );
    let a = m
        .acknowledge(
            id,
            "Wang Li",
            Some("police informed; technician on the way".into()),
            t(5),
        )
        .unwrap();
    let ack = a.acknowledged.as_ref().unwrap();
    assert_eq!((ack.by.as_str(), ack.at), ("Wang Li", t(5)));
    // Still down, still acknowledged; resolved on recovery, and then no longer ackable.
    m.apply(&heartbeat("c1", "150102", 1, 2), t(6));
    assert!(m.active_alerts().next().unwrap().acknowledged.is_some());
    m.apply(
        &event(
            "c1",
            "150102",
            102,
            "alarm-1",
            DeviceState::Down,
            DeviceState::Up,
        ),
        t(7),
    );
    assert_eq!(
        m.acknowledge(id, "Wang Li", None, t(8)),
        Err(AckError::NotActive(id))
    );
}

#[test]
fn losing_the_broker_is_told_once_after_the_grace_and_flags_no_campus() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    assert!(m.on_broker_reconnected(t(0)).is_empty());
    m.apply(&healthy("c1", "150102", 1), t(0));
    // A short loss: nothing is told.
    m.on_broker_lost(t(10));
    assert!(m.check_monitoring(t(30)).is_empty());
    assert!(m.on_broker_reconnected(t(31)).is_empty());

    m.on_broker_lost(t(40));
    assert!(m.check_monitoring(t(99)).is_empty());
    let told = notices(&m.check_monitoring(t(100)));
    assert_eq!(kinds(&told), [NoticeKind::MonitoringDegraded]);
    assert_eq!(
        (told[0].severity, told[0].region),
        (Severity::Critical, None)
    );
    assert!(m.check_monitoring(t(200)).is_empty(), "told once");
    let told = notices(&m.on_broker_reconnected(t(300)));
    assert_eq!(kinds(&told), [NoticeKind::MonitoringRestored]);
    assert!(told[0].detail.contains("Interrupted from"));
    // The gateway was silent for the whole outage: it gets a full window from now.
    assert!(m.expire(t(301)).is_empty());
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Online);
    assert!(open_alerts(&m).is_empty());
}

fn nightly_camera_window(campus: &str) -> maintenance::Maintenance {
    // 22:00 to 07:00 China time, every night.
    maintenance::Maintenance {
        id: 0,
        scope: maintenance::Scope::Campus {
            campus: cid(campus),
        },
        schedule: maintenance::Schedule::Daily {
            at: chrono::NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            minutes: 9 * 60,
            weekdays: Vec::new(),
            from: None,
            until: None,
        },
        utc_offset_minutes: 480,
        comment: Some("cameras switched off at night".into()),
        created_by: "kindergarten office".into(),
        created_at: t(0),
    }
}

#[test]
fn inside_a_maintenance_window_nothing_is_told_and_a_link_still_down_at_its_end_is() {
    // t(0) is 2027-01-15T08:00:00Z = 16:00 China time.
    let rules = AlertRules {
        hold_down_camera: TimeDelta::seconds(60),
        ..AlertRules::default()
    };
    let mut m = with_rules(
        rules,
        &[entry("k1", "150102", SchoolType::Kindergarten, 1, 2)],
    );
    m.apply(&healthy("k1", "150102", 1), t(0));
    let (w, changes) = m
        .add_maintenance(nightly_camera_window("k1"), t(0))
        .unwrap();
    assert_eq!(w.id, 1);
    assert!(matches!(changes[..], [Change::MaintenanceAdded(_)]));
    let night = t(6 * 3600 + 5 * 60); // 22:05 local
    let morning = t(15 * 3600); // 07:00 local, the window's end
    let mut told = Vec::new();
    for (n, cam) in [(101, "cam-1"), (102, "cam-2")] {
        let e = event_at("k1", n, cam, DeviceState::Up, DeviceState::Down, night);
        told.extend(notices(&m.apply(&e, night).changes));
    }
    for s in (0..=8).map(|h| night + TimeDelta::hours(h)) {
        told.extend(notices(&m.expire(s)));
    }
    assert!(told.is_empty(), "{told:#?}");
    assert_eq!(
        m.active_alerts().count(),
        3,
        "the alerts exist, quietly: both cameras and the campus's video"
    );
    // cam-1 is switched back on before 07:00; cam-2 is not.
    let back = event_at(
        "k1",
        103,
        "cam-1",
        DeviceState::Down,
        DeviceState::Up,
        morning - TimeDelta::minutes(30),
    );
    assert!(notices(&m.apply(&back, morning - TimeDelta::minutes(30)).changes).is_empty());
    assert!(notices(&m.expire(morning - TimeDelta::seconds(1))).is_empty());
    let told = notices(&m.expire(morning));
    assert_eq!(kinds(&told), [NoticeKind::AlertOpened]);
    assert_eq!(told[0].device.as_ref().map(|d| d.as_str()), Some("cam-2"));
}

#[test]
fn gateways_dropping_in_a_regional_window_are_told_as_an_incident_only_if_still_down_after() {
    let rules = AlertRules {
        hold_down_gateway: TimeDelta::zero(),
        group_wait: TimeDelta::seconds(30),
        incident_min_gateways: 3,
        ..AlertRules::default()
    };
    let ids = ["a", "b", "c", "d"];
    let mut m = online_county(rules, &ids);
    // Network works in the city, 10:00 to 12:00 UTC.
    let works = maintenance::Maintenance {
        scope: maintenance::Scope::Region {
            region: region("150100"),
        },
        schedule: maintenance::Schedule::Once {
            start: t(7200),
            end: t(14400),
        },
        ..nightly_camera_window("a")
    };
    m.add_maintenance(works, t(0)).unwrap();
    let mut told = Vec::new();
    for id in ids {
        told.extend(notices(&m.apply(&death(id, "150102", 1), t(8000)).changes));
    }
    for s in (8000..14400).step_by(60) {
        told.extend(notices(&m.expire(t(s))));
    }
    assert!(told.is_empty(), "{told:#?}");
    // Two are back before the end; two are still down when it ends.
    m.apply(&healthy("a", "150102", 2), t(14000));
    m.apply(&healthy("b", "150102", 2), t(14000));
    let mut told = notices(&m.expire(t(14400)));
    told.extend(notices(&m.expire(t(14430))));
    assert_eq!(
        kinds(&told),
        [NoticeKind::AlertOpened, NoticeKind::AlertOpened],
        "two gateways: below the incident size"
    );
    // Withdrawing a window tells what it kept quiet.
    let mut m2 = with_rules(
        AlertRules::default(),
        &[entry("k1", "150102", SchoolType::Kindergarten, 1, 2)],
    );
    m2.apply(&healthy("k1", "150102", 1), t(0));
    let (w, _) = m2
        .add_maintenance(nightly_camera_window("k1"), t(0))
        .unwrap();
    let night = t(6 * 3600 + 5 * 60);
    m2.apply(
        &event_at(
            "k1",
            101,
            "cam-1",
            DeviceState::Up,
            DeviceState::Down,
            night,
        ),
        night,
    );
    assert!(notices(&m2.expire(night + TimeDelta::minutes(5))).is_empty());
    m2.remove_maintenance(w.id, night + TimeDelta::minutes(10))
        .unwrap();
    let told = notices(&m2.expire(night + TimeDelta::minutes(10)));
    assert_eq!(kinds(&told), [NoticeKind::AlertOpened]);
    assert_eq!(
        m2.remove_maintenance(w.id, night),
        Err(maintenance::MaintenanceError::NotFound(w.id))
    );
}

// ---- heartbeat digests, rebirths and dropped events ---------------------------------

fn heartbeat_saying(id: &str, epoch: u64, states: &str, last_event_id: u64) -> Message {
    let Message::Heartbeat(mut h) = heartbeat(id, "150102", epoch, 1) else {
        unreachable!()
    };
    h.states = states.into();
    h.last_event_id = last_event_id;
    Message::Heartbeat(h)
}

fn rebirth_reason(out: &Outcome) -> Option<RebirthReason> {
    out.rebirth.as_ref().map(|r| r.reason)
}

#[test]
fn a_heartbeat_that_agrees_with_the_view_asks_for_nothing() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    for s in 1..20 {
        let out = m.apply(&heartbeat_saying("c1", 1, "UUU", 100), t(s * 5));
        assert_eq!(out.rebirth, None);
    }
    assert!(m.counters().rebirth_requests.is_empty());
}

#[test]
fn a_disagreeing_digest_asks_for_a_rebirth_at_once_then_spaced_and_doubling() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    // The gateway says cam-1 is down at the same newest event: the view is wrong.
    let wrong = heartbeat_saying("c1", 1, "UDU", 100);
    let out = m.apply(&wrong, t(5));
    assert_eq!(
        out.rebirth,
        Some(RebirthRequest {
            campus: cid("c1"),
            region: region("150102"),
            epoch: 1,
            reason: RebirthReason::DigestMismatch,
        })
    );
    // Spaced by rebirth_min_interval (1 min), then 2 min, then 4 min.
    let asked: Vec<i64> = (2..=80)
        .map(|i| i * 5)
        .filter(|s| m.apply(&wrong, t(*s)).rebirth.is_some())
        .collect();
    assert_eq!(asked, [65, 185], "requests at t=5, then these");
    assert_eq!(
        m.counters().rebirth_requests[&RebirthReason::DigestMismatch],
        3
    );
    // Once a heartbeat agrees (the rebirth came), the next disagreement waits only the
    // minimum from the last request.
    assert_eq!(
        m.apply(&heartbeat_saying("c1", 1, "UUU", 100), t(405))
            .rebirth,
        None
    );
    assert_eq!(
        m.apply(&wrong, t(410)).rebirth.map(|r| r.reason),
        Some(RebirthReason::DigestMismatch)
    );
    assert_eq!(m.apply(&wrong, t(415)).rebirth, None);
}

#[test]
fn the_spacing_stops_doubling_at_the_maximum() {
    let mut m = Monitor::new(Settings {
        rebirth_min_interval: TimeDelta::seconds(10),
        rebirth_max_interval: TimeDelta::seconds(30),
        ..immediate()
    });
    m.apply(&healthy("c1", "150102", 1), t(0));
    let wrong = heartbeat_saying("c1", 1, "DDD", 100);
    let asked: Vec<i64> = (1..=40)
        .map(|i| i * 5)
        .filter(|s| m.apply(&wrong, t(*s)).rebirth.is_some())
        .collect();
    // 10 s, 20 s, then 30 s apart.
    assert_eq!(asked, [5, 15, 35, 65, 95, 125, 155, 185]);
}

#[test]
fn a_session_heard_only_by_its_heartbeats_is_asked_for_its_birth() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    // Never seen before: the server started after the gateway's birth went out.
    let out = m.apply(&heartbeat_saying("c1", 7, "UUU", 100), t(0));
    assert_eq!(gateway_state(&m, "c1"), GatewayState::Online);
    assert_eq!(
        out.rebirth.map(|r| (r.reason, r.epoch)),
        Some((RebirthReason::BirthMissing, 7))
    );
    // The birth comes; from then on the digest is compared, and agrees.
    m.apply(&healthy("c1", "150102", 7), t(1));
    assert_eq!(
        m.apply(&heartbeat_saying("c1", 7, "UUU", 100), t(5))
            .rebirth,
        None
    );
    // A new session whose birth is lost: asked again (a minute after the last request).
    let out = m.apply(&heartbeat_saying("c1", 8, "UUU", 100), t(70));
    assert_eq!(rebirth_reason(&out), Some(RebirthReason::BirthMissing));
}

#[test]
fn announced_events_that_never_arrive_ask_for_a_rebirth_after_a_window() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    // Events 101 and 102 are on their way (a spool being replayed): no request while
    // they keep arriving.
    assert_eq!(
        m.apply(&heartbeat_saying("c1", 1, "UDD", 102), t(5))
            .rebirth,
        None
    );
    m.apply(
        &event(
            "c1",
            "150102",
            101,
            "cam-1",
            DeviceState::Up,
            DeviceState::Down,
        ),
        t(12),
    );
    assert_eq!(
        m.apply(&heartbeat_saying("c1", 1, "UDD", 102), t(15))
            .rebirth,
        None
    );
    // 102 was lost on the way: one staleness window (3 × 5 s) without progress.
    assert_eq!(
        m.apply(&heartbeat_saying("c1", 1, "UDD", 102), t(25))
            .rebirth,
        None
    );
    let out = m.apply(&heartbeat_saying("c1", 1, "UDD", 102), t(30));
    assert_eq!(rebirth_reason(&out), Some(RebirthReason::EventsMissing));
}

#[test]
fn a_heartbeat_older_than_the_applied_events_is_not_compared() {
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
    // Sent before event 101, delivered after it.
    assert_eq!(
        m.apply(&heartbeat_saying("c1", 1, "UUU", 100), t(2))
            .rebirth,
        None
    );
    assert_eq!(
        m.apply(&heartbeat_saying("c1", 1, "UDU", 101), t(5))
            .rebirth,
        None
    );
}

#[test]
fn a_heartbeat_of_an_old_session_or_after_the_death_asks_for_nothing() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 2), t(0));
    assert_eq!(
        m.apply(&heartbeat_saying("c1", 1, "DDD", 100), t(1))
            .rebirth,
        None
    );
    m.apply(&death("c1", "150102", 2), t(2));
    assert_eq!(
        m.apply(&heartbeat_saying("c1", 2, "DDD", 100), t(3))
            .rebirth,
        None
    );
}

#[test]
fn a_restored_monitor_compares_digests_without_asking_for_births_it_stored() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 4), t(0));
    let c = m.campus("c1").unwrap();
    let snap = Snapshot {
        registry: vec![entry("c1", "150102", SchoolType::Primary, 1, 2)],
        gateways: vec![(cid("c1"), region("150102"), c.gateway.clone())],
        devices: c.devices.iter().map(|d| (cid("c1"), d.clone())).collect(),
        ..Snapshot::default()
    };
    let mut r = Monitor::restore(immediate(), snap, t(60));
    assert_eq!(
        r.apply(&heartbeat_saying("c1", 4, "UUU", 100), t(61))
            .rebirth,
        None
    );
    let out = r.apply(&heartbeat_saying("c1", 4, "UUD", 100), t(62));
    assert_eq!(rebirth_reason(&out), Some(RebirthReason::DigestMismatch));
}

#[test]
fn births_report_dropped_events_once_and_a_wiped_gateway_counts_again() {
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    let with_drops = |epoch: u64, dropped: u64| {
        let Message::Birth(mut b) = healthy("c1", "150102", epoch) else {
            unreachable!()
        };
        b.v = 3;
        b.dropped_events = dropped;
        Message::Birth(b)
    };
    assert_eq!(m.apply(&with_drops(1, 0), t(0)).newly_dropped, 0);
    let out = m.apply(&with_drops(2, 5), t(10));
    assert_eq!(out.newly_dropped, 5);
    // Stored with the gateway record, so it survives a restart.
    assert!(out.changes.iter().any(|c| matches!(
        c,
        Change::Gateway { record, .. } if record.dropped_events == 5
    )));
    assert_eq!(m.apply(&with_drops(3, 5), t(20)).newly_dropped, 0);
    assert_eq!(m.apply(&with_drops(4, 7), t(30)).newly_dropped, 2);
    assert_eq!(m.campus("c1").unwrap().gateway.dropped_events, 7);
    // A reinstalled gateway (state directory wiped) starts from zero.
    assert_eq!(m.apply(&with_drops(5, 0), t(40)).newly_dropped, 0);
    assert_eq!(m.campus("c1").unwrap().gateway.dropped_events, 0);
    assert_eq!(m.apply(&with_drops(6, 1), t(50)).newly_dropped, 1);
    assert_eq!(m.counters().gateway_dropped_events, 8);
    // A birth of an older session says nothing.
    assert_eq!(m.apply(&with_drops(5, 9), t(60)).newly_dropped, 0);
}

#[test]
fn a_fleet_missing_its_births_is_asked_at_the_fleet_wide_rate() {
    let mut m = Monitor::new(Settings {
        rebirth_rate: 100,
        ..immediate()
    });
    // 250 gateways heard only by their heartbeats, all in the same second, and again
    // five seconds later, and again.
    let ids: Vec<String> = (0..250).map(|i| format!("c{i}")).collect();
    let mut asked_per_round = Vec::new();
    for round in 0..3 {
        let asked = ids
            .iter()
            .filter(|id| {
                m.apply(&heartbeat_saying(id, 1, "UUU", 100), t(round * 5))
                    .rebirth
                    .is_some()
            })
            .count();
        asked_per_round.push(asked);
    }
    // A burst of 100, then 100 per round (the bucket refills in a second and holds 100);
    // nobody is asked twice before everyone has been asked once.
    assert_eq!(asked_per_round, [100, 100, 50]);
    assert_eq!(
        m.counters().rebirth_requests[&RebirthReason::BirthMissing],
        250
    );
    assert_eq!(m.counters().rebirth_deferred, 150 + 50);
}

mod model;
mod truth;
