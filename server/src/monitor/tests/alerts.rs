//! The alert lifecycle: hold-downs, severity, incidents, flapping, acknowledgement,
//! monitoring interruptions and maintenance windows.

use super::*;

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
    // The camera, and the campus's video: two cameras expected, both needed.
    let opened = notices(&m.expire(t(61)));
    assert_eq!(kinds(&opened), [NoticeKind::AlertOpened; 2]);
    assert_eq!(opened[0].severity, Severity::Warning);
    assert!(
        opened[0].title.contains("Camera down"),
        "{}",
        opened[0].title
    );
    assert_eq!(opened[0].path, "/console/campuses/c1");
    assert_eq!(opened[1].severity, Severity::Critical);
    assert!(
        opened[1].title.contains("Video networking lost"),
        "{}",
        opened[1].title
    );
    for a in m.active_alerts() {
        assert_eq!((a.since, a.opened_at), (t(1), t(61)));
    }

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
    assert_eq!(kinds(&notices(&up.changes)), [NoticeKind::AlertResolved; 2]);

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
fn a_campus_out_of_alarm_or_video_coverage_is_critical_and_one_device_a_warning() {
    // Five cameras expected: coverage needs ceil(0.8 x 5) = 4 of them up.
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 5)]);
    m.apply(&birth("c1", "150102", 1, cameras(5)), t(0));
    let down = |m: &mut Monitor, n: u64, device: &str, at: i64| {
        let e = event(
            "c1",
            "150102",
            n,
            device,
            DeviceState::Up,
            DeviceState::Down,
        );
        notices(&m.apply(&e, t(at)).changes)
    };
    let summary = |ns: &[Notice]| -> Vec<(String, Severity)> {
        ns.iter()
            .map(|n| {
                let link = n.device.as_ref().map(|d| d.to_string());
                (link.or(n.link.clone()).unwrap(), n.severity)
            })
            .collect()
    };
    let n = down(&mut m, 101, "alarm-1", 1);
    assert_eq!(
        summary(&n),
        [
            ("alarm-1".into(), Severity::Warning),
            ("alarm_networking".into(), Severity::Critical)
        ]
    );
    assert!(n[0].title.starts_with("Alarm link down"), "{}", n[0].title);
    assert!(
        n[1].title.starts_with("Alarm networking lost"),
        "{}",
        n[1].title
    );
    assert_eq!(m.coverage().total(None, None).alarm_networked, 0);

    // One camera of five: still video networked, a warning only.
    let n = down(&mut m, 102, "cam-1", 2);
    assert_eq!(summary(&n), [("cam-1".into(), Severity::Warning)]);
    assert_eq!(m.coverage().total(None, None).video_networked, 1);
    // Two: three of five up, below the four coverage needs: the campus's video.
    let n = down(&mut m, 103, "cam-2", 3);
    assert_eq!(
        summary(&n),
        [
            ("cam-2".into(), Severity::Warning),
            ("video".into(), Severity::Critical)
        ]
    );
    assert!(
        n[1].detail
            .contains("2 of 5 cameras down; 4 of 5 expected must be up"),
        "{}",
        n[1].detail
    );
    assert_eq!(n[1].since, n[0].since, "since the camera that tipped it");
    assert_eq!(m.coverage().total(None, None).video_networked, 0);
    // A third: nothing new for the campus.
    let n = down(&mut m, 104, "cam-3", 4);
    assert_eq!(summary(&n), [("cam-3".into(), Severity::Warning)]);

    // Two back: four of five up, networked again; the video alert resolves with them.
    let mut n = Vec::new();
    for (id, cam) in [(105, "cam-2"), (106, "cam-3")] {
        let e = event("c1", "150102", id, cam, DeviceState::Down, DeviceState::Up);
        n.extend(notices(&m.apply(&e, t(10)).changes));
    }
    assert_eq!(
        summary(&n),
        [
            ("cam-2".into(), Severity::Warning),
            ("cam-3".into(), Severity::Warning),
            ("video".into(), Severity::Critical)
        ]
    );
    assert!(n.iter().all(|n| n.kind == NoticeKind::AlertResolved));
    assert_eq!(m.coverage().total(None, None).video_networked, 1);
    let open: Vec<_> = open_alerts(&m).into_iter().map(|a| a.2).collect();
    assert_eq!(
        open,
        [
            AlertKind::Alarm,
            AlertKind::AlarmNetworking,
            AlertKind::Camera
        ],
        "alarm-1, cam-1 and the campus's alarm networking"
    );
}

#[test]
fn a_campus_that_cannot_be_networked_with_every_device_up_has_no_networking_alert() {
    // Four cameras expected, coverage needs four; the gateway watches two.
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 4)]);
    m.apply(&birth("c1", "150102", 1, cameras(2)), t(0));
    assert_eq!(m.coverage().total(None, None).video_networked, 0);
    let e = event(
        "c1",
        "150102",
        101,
        "cam-1",
        DeviceState::Up,
        DeviceState::Down,
    );
    let n = notices(&m.apply(&e, t(1)).changes);
    assert_eq!(kinds(&n), [NoticeKind::AlertOpened]);
    assert_eq!(n[0].severity, Severity::Warning, "the camera only");
    // The registry is corrected to the two cameras installed: now its outage takes the
    // campus out of video coverage.
    let changes = m.set_registry(
        &[entry("c1", "150102", SchoolType::Primary, 1, 2)],
        false,
        t(5),
    );
    let n = notices(&changes);
    assert_eq!(kinds(&n), [NoticeKind::AlertOpened]);
    assert_eq!(n[0].link.as_deref(), Some("video"));
    assert_eq!(n[0].since, t(1));
    // Back to four expected: the video alert ends, saying why, not "Restored".
    let n = notices(&m.set_registry(
        &[entry("c1", "150102", SchoolType::Primary, 1, 4)],
        false,
        t(9),
    ));
    assert_eq!(kinds(&n), [NoticeKind::AlertResolved]);
    assert!(
        n[0].title.starts_with("No longer monitored: "),
        "{}",
        n[0].title
    );
    assert!(
        n[0].detail.contains("The registry changed"),
        "{}",
        n[0].detail
    );
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
    // The alarm device, and the campus's alarm networking that follows it.
    assert_eq!(kinds(&told), [NoticeKind::AlertFlapping; 2], "{told:#?}");
    assert!(m.active_alerts().all(|a| a.flapping));
    // Up since t(120) (the last change): resolved once stable for the window.
    assert!(notices(&m.expire(t(120 + 599))).is_empty());
    let told = notices(&m.expire(t(120 + 600)));
    assert_eq!(kinds(&told), [NoticeKind::AlertResolved; 2]);
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
    // cam-2, and the campus's video: one of its two cameras is not enough.
    let told = notices(&m.expire(morning));
    assert_eq!(kinds(&told), [NoticeKind::AlertOpened; 2]);
    assert_eq!(told[0].device.as_ref().map(|d| d.as_str()), Some("cam-2"));
    assert_eq!(told[1].link.as_deref(), Some("video"));
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
    assert_eq!(
        kinds(&told),
        [NoticeKind::AlertOpened; 2],
        "cam-1 and video"
    );
    assert_eq!(
        m2.remove_maintenance(w.id, night),
        Err(maintenance::MaintenanceError::NotFound(w.id))
    );
}

#[test]
fn every_alert_carries_its_cause_as_a_code_consoles_can_translate() {
    use campuswatch_protocol::CauseCode;
    let mut m = monitor_with(&[entry("c1", "150102", SchoolType::Primary, 1, 2)]);
    m.apply(&healthy("c1", "150102", 1), t(0));
    // The agent's code travels to the device alert.
    let Message::Event(mut e) = event(
        "c1",
        "150102",
        101,
        "cam-1",
        DeviceState::Up,
        DeviceState::Down,
    ) else {
        unreachable!()
    };
    e.v = 4;
    e.cause = Some("HTTP status 404 (expected 200)".into());
    e.cause_code = Some(
        CauseCode::new("http.status")
            .with("got", 404u16)
            .with("expected", "200"),
    );
    m.apply(&Message::Event(e), t(1));
    let code = |m: &Monitor, kind: AlertKind| {
        m.active_alerts()
            .find(|a| a.kind == kind)
            .and_then(|a| a.cause_code.as_ref().map(ToString::to_string))
    };
    assert_eq!(
        code(&m, AlertKind::Camera).as_deref(),
        Some("http.status{expected=200,got=404}")
    );
    // The server's own causes are coded too: the campus out of video coverage…
    assert_eq!(
        code(&m, AlertKind::Video).as_deref(),
        Some("campus.video_down{down=1,expected=2,monitored=2,needed=2}")
    );
    // …and a gateway whose connection was lost.
    m.apply(&death("c1", "150102", 1), t(2));
    let later = t(600);
    m.expire(later);
    assert_eq!(
        code(&m, AlertKind::Gateway).as_deref(),
        Some("gateway.connection_lost")
    );
    let g = &m.campus("c1").unwrap().gateway;
    assert_eq!(g.cause.as_deref(), Some("connection lost"));
}
