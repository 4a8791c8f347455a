//! Restores, partitions, the broker's absence, registry edits, and coverage kept
//! incrementally equal to a full recount.

use super::*;

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
        devices: vec![(cid("c1"), m.campus("c1").unwrap().devices.to_vec())],
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
