//! The store's contract: behaviour every database must show, each test run on SQLite and
//! on PostgreSQL (see `test_db`).

use super::test_db::{contract, texts, TestDb};
use super::*;
use crate::monitor::{Monitor, Settings};
use crate::testing;
use campuswatch_protocol::{
    Birth, DeviceInfo, DeviceKind, DeviceReport, DeviceState, Event, GatewayState, Message,
};
use campuswatch_testkit::t;

contract!(
    state_written_by_the_monitor_comes_back_after_a_restart,
    a_redelivered_event_is_stored_once,
    history_is_newest_first_and_filters_by_region_prefix,
    replacing_the_registry_removes_what_the_file_does_not_list,
    a_notice_derived_twice_is_stored_once,
    the_outbox_hands_each_delivery_out_once_and_resumes_after_a_restart,
    a_server_restarted_mid_incident_tells_nothing_twice_and_nothing_late_is_lost,
    maintenance_windows_survive_a_restart_and_withdrawn_ones_stay_in_history,
    users_sign_in_with_sessions_and_tokens_and_only_hashes_are_stored,
    tokens_are_listed_and_revoked_and_a_disabled_user_has_none,
    every_acknowledgement_of_an_alert_is_kept,
    the_audit_log_is_read_within_a_scope_and_by_actor_action_and_time,
    gb28181_devices_and_the_codes_campuses_list_come_back_after_a_restart,
);

/// A primary school with an alarm and two cameras, named in Chinese as registry names are.
fn entry(id: &str, county: &str) -> RegistryEntry {
    testing::entry(id, county, SchoolType::Primary, 1, 2).named(format!("第{id}小学"))
}

fn birth(id: &str) -> Message {
    Message::Birth(Birth {
        v: 1,
        campus: CampusId::parse(id).unwrap(),
        region: RegionCode::parse("150102").unwrap(),
        epoch: 4,
        at: t(0),
        agent_version: "0.1.0".into(),
        config_digest: "d".into(),
        heartbeat_interval_ms: 5000,
        last_event_id: 10,
        devices: ["alarm-1", "cam-1", "cam-2"]
            .iter()
            .map(|d| DeviceReport {
                id: DeviceId::parse(d).unwrap(),
                kind: if d.starts_with("alarm") {
                    DeviceKind::Alarm
                } else {
                    DeviceKind::Camera
                },
                probe: "tcp".into(),
                target: "10.0.0.9:554".into(),
                required: true,
                state: DeviceState::Up,
                since: Some(t(0)),
                cause: None,
                cause_code: None,
                measurements: Measurements::new(),
                info: (*d == "cam-1").then(|| DeviceInfo {
                    model: Some("DS-2CD2143G2-I".into()),
                    firmware: Some("V5.7.3".into()),
                    ..DeviceInfo::default()
                }),
            })
            .collect(),
        dropped_events: 0,
    })
}

fn cam_down(id: &str, event_id: u64) -> Message {
    Message::Event(Event {
        v: 4,
        campus: CampusId::parse(id).unwrap(),
        region: RegionCode::parse("150102").unwrap(),
        id: event_id,
        epoch: 4,
        at: t(5),
        device: DeviceId::parse("cam-2").unwrap(),
        kind: DeviceKind::Camera,
        from: DeviceState::Up,
        to: DeviceState::Down,
        cause: Some("connection refused".into()),
        cause_code: Some(campuswatch_protocol::CauseCode::new("tcp.refused")),
        measurements: [("latency_ms".to_string(), 2.0)].into(),
        info: None,
    })
}

async fn state_written_by_the_monitor_comes_back_after_a_restart(db: &TestDb) {
    let store = db.open().await;
    let registry = vec![entry("c1", "150102"), entry("c2", "150102")];
    store.import_registry(&registry, false, t(0)).await.unwrap();
    let mut m = Monitor::new(Settings::immediate());
    m.set_registry(&registry, false, t(0));
    for (msg, at) in [(birth("c1"), t(1)), (cam_down("c1", 11), t(6))] {
        let out = m.apply(&msg, at);
        store.apply(&out.changes, at).await.unwrap();
    }
    drop(store);
    let store = db.open().await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.registry, registry);
    let r = Monitor::restore(Settings::immediate(), snap, t(100));
    let c1 = r.campus("c1").unwrap();
    assert_eq!(c1.gateway.state, GatewayState::Online);
    assert_eq!(c1.gateway.epoch, 4);
    assert_eq!(c1.gateway.last_event_id, 11);
    let ids: Vec<_> = c1.devices.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(
        ids,
        ["alarm-1", "cam-1", "cam-2"],
        "inventory order is kept"
    );
    assert_eq!(c1.devices[2].state, DeviceState::Down);
    assert_eq!(
        c1.devices[1]
            .info
            .as_ref()
            .and_then(|i| i.firmware.as_deref()),
        Some("V5.7.3"),
        "the device's identity is kept"
    );
    assert_eq!(c1.devices[0].info, None);
    // cam-2's, and the campus's video (one of its two cameras is not enough).
    let open: Vec<_> = r.active_alerts().collect();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].device.as_ref().unwrap().as_str(), "cam-2");
    assert_eq!(open[1].kind, AlertKind::Video);
    // Their causes' codes come back, as does the device's.
    let code = |c: Option<&campuswatch_protocol::CauseCode>| c.map(ToString::to_string);
    assert_eq!(
        code(open[0].cause_code.as_ref()).as_deref(),
        Some("tcp.refused")
    );
    assert_eq!(
        code(open[1].cause_code.as_ref()).as_deref(),
        Some("campus.video_down{down=1,expected=2,monitored=2,needed=2}")
    );
    assert_eq!(
        code(c1.devices[2].cause_code.as_deref()).as_deref(),
        Some("tcp.refused")
    );
    let events = store
        .transitions(&crate::store::Filter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let coded: Vec<_> = events
        .iter()
        .filter_map(|e| code(e.transition.cause_code.as_ref()))
        .collect();
    assert_eq!(coded, ["tcp.refused"]);
    // New alerts after a restart get fresh ids.
    assert_eq!(r.coverage().total(None, None).video_networked, 0);
}

async fn a_redelivered_event_is_stored_once(db: &TestDb) {
    let store = db.open().await;
    let mut m = Monitor::new(Settings::immediate());
    m.apply(&birth("c1"), t(0));
    for _ in 0..3 {
        let out = m.apply(&cam_down("c1", 11), t(6));
        store.apply(&out.changes, t(6)).await.unwrap();
    }
    // Twice within one batch too (written as one multi-row insert).
    let twice: Vec<_> = store
        .transitions(&Filter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.transition.event_id == Some(11))
        .map(|r| Change::Transition(r.transition))
        .collect();
    let batch = [twice.clone(), twice].concat();
    assert_eq!(batch.len(), 2);
    store.apply(&batch, t(7)).await.unwrap();
    let rows = store
        .transitions(&Filter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let events: Vec<_> = rows
        .iter()
        .filter(|r| r.transition.event_id == Some(11))
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].transition.measurements["latency_ms"], 2.0);
}

async fn history_is_newest_first_and_filters_by_region_prefix(db: &TestDb) {
    let store = db.open().await;
    let mut m = Monitor::new(Settings::immediate());
    let out = m.apply(&birth("c1"), t(0));
    store.apply(&out.changes, t(0)).await.unwrap();
    let out = m.apply(&cam_down("c1", 11), t(6));
    store.apply(&out.changes, t(6)).await.unwrap();
    let f = |region: &str| Filter {
        region: Some(RegionCode::parse(region).unwrap()),
        limit: 10,
        ..Default::default()
    };
    let city = store.transitions(&f("150100")).await.unwrap();
    assert_eq!(city.len(), 2);
    assert_eq!(city[0].transition.event_id, Some(11), "newest first");
    assert_eq!(city[1].transition.kind, AlertKind::Gateway);
    assert!(store.transitions(&f("150200")).await.unwrap().is_empty());
    assert_eq!(store.transitions(&f("150000")).await.unwrap().len(), 2);
    let page = store
        .transitions(&Filter {
            limit: 1,
            offset: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].transition.kind, AlertKind::Gateway);
}

async fn replacing_the_registry_removes_what_the_file_does_not_list(db: &TestDb) {
    let store = db.open().await;
    store
        .import_registry(&[entry("c1", "150102"), entry("c2", "150102")], false, t(0))
        .await
        .unwrap();
    store
        .import_registry(&[entry("c3", "150203")], false, t(1))
        .await
        .unwrap();
    assert_eq!(store.registry().await.unwrap().len(), 3);
    store
        .import_registry(&[entry("c2", "150203")], true, t(2))
        .await
        .unwrap();
    assert_eq!(store.registry().await.unwrap(), [entry("c2", "150203")]);
}

#[tokio::test]
async fn a_url_of_another_database_is_refused_clearly_and_passwords_are_not_shown() {
    let err = Store::open("mysql://x").await.err().unwrap();
    let said = err.to_string();
    assert!(
        said.contains("sqlite://") && said.contains("postgres://"),
        "{said}"
    );
    // Nothing answers on port 9 (discard): the error names the URL without its password.
    let err = Store::open("postgres://cw:s3cret@127.0.0.1:9/cw")
        .await
        .err()
        .unwrap();
    let said = err.to_string();
    assert!(said.contains("postgres://cw:***@127.0.0.1:9/cw"), "{said}");
    assert!(!said.contains("s3cret"), "{said}");
}

async fn a_notice_derived_twice_is_stored_once(db: &TestDb) {
    use crate::notify::Notice;
    let store = db.open().await;
    let notice = alert_opened(7);
    for _ in 0..2 {
        store
            .apply(&[Change::Notice(notice.clone())], t(2))
            .await
            .unwrap();
    }
    let bodies = texts(&store, "SELECT body FROM notices").await;
    assert_eq!(bodies.len(), 1);
    let back: Notice = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(back, notice);
}

/// The notice of alert `id`'s opening.
fn alert_opened(id: u64) -> crate::notify::Notice {
    use crate::notify::{Notice, NoticeKind, Severity};
    Notice {
        id: format!("alert-{id}-opened"),
        kind: NoticeKind::AlertOpened,
        severity: Severity::Critical,
        region: Some(RegionCode::parse("150102").unwrap()),
        campus: None,
        device: None,
        link: Some("alarm".into()),
        alert_id: Some(id),
        incident_id: None,
        title: "Alarm link down".into(),
        detail: String::new(),
        since: t(1),
        at: t(2),
        campuses: Vec::new(),
        path: format!("/console/alerts/{id}"),
    }
}

async fn the_outbox_hands_each_delivery_out_once_and_resumes_after_a_restart(db: &TestDb) {
    use crate::notify::outbox::Route;
    let store = db.open().await;
    let notices = [alert_opened(7), alert_opened(8)];
    let changes: Vec<_> = notices.iter().cloned().map(Change::Notice).collect();
    store.apply(&changes, t(2)).await.unwrap();
    assert_eq!(store.unrouted_notices().await.unwrap(), notices);
    let routes: Vec<_> = notices
        .iter()
        .map(|n| Route {
            notice_id: n.id.clone(),
            problem: Some(format!("alert-{}", n.alert_id.unwrap())),
            channels: vec!["ops".into(), "county".into()],
            give_up_at: t(3600),
        })
        .collect();
    for _ in 0..2 {
        store.route_notices(&routes, t(3)).await.unwrap();
    }
    assert!(store.unrouted_notices().await.unwrap().is_empty());
    assert_eq!(
        store.deliveries().await.unwrap().len(),
        4,
        "routed twice, made once"
    );
    let due = |store: Store, at| async move {
        let due = store.due_deliveries("ops", at).await.unwrap();
        due.iter()
            .map(|d| (d.notice.id.clone(), d.attempts))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        due(store.clone(), t(3)).await,
        [("alert-7-opened".into(), 0), ("alert-8-opened".into(), 0)]
    );
    assert!(store
        .claim_delivery("alert-7-opened", "ops", t(4))
        .await
        .unwrap());
    assert!(
        !store
            .claim_delivery("alert-7-opened", "ops", t(4))
            .await
            .unwrap(),
        "a delivery is handed out once"
    );
    store
        .delivery_sent("alert-7-opened", "ops", t(5))
        .await
        .unwrap();
    assert!(store
        .claim_delivery("alert-8-opened", "ops", t(6))
        .await
        .unwrap());

    // The server dies mid-attempt; the channel `county` is gone from the new config.
    drop(store);
    let store = db.open().await;
    assert_eq!(
        store.recover_deliveries(&["ops"], t(10)).await.unwrap(),
        (1, 2),
        "the interrupted attempt is due again; the removed channel's deliveries fail"
    );
    assert_eq!(
        due(store.clone(), t(10)).await,
        [("alert-8-opened".into(), 1)]
    );
    assert_eq!(
        store.sent_since("ops", t(0)).await.unwrap(),
        (1, Some(t(5)))
    );
    assert_eq!(
        store.channels_of_problem("alert-7").await.unwrap(),
        ["county", "ops"]
    );
    assert!(store
        .claim_delivery("alert-8-opened", "ops", t(11))
        .await
        .unwrap());
    store
        .delivery_failed("alert-8-opened", "ops", "HTTP 503", Some(t(70)), t(11))
        .await
        .unwrap();
    assert_eq!(store.next_due("ops").await.unwrap(), Some(t(70)));
    assert!(due(store.clone(), t(69)).await.is_empty());
    assert_eq!(
        store
            .give_up_deliveries("ops", "too late", t(3601))
            .await
            .unwrap(),
        1
    );
    let firing = store.firing_problems("ops", t(0)).await.unwrap();
    assert_eq!(firing.len(), 1, "only alert 7 was told to ops");
    assert_eq!(firing[0].0.id, "alert-7-opened");
    let states: Vec<_> = store
        .deliveries()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.notice, d.channel, d.state, d.attempts, d.last_error))
        .collect();
    assert!(states.contains(&(
        "alert-8-opened".into(),
        "ops".into(),
        "failed".into(),
        2,
        Some("HTTP 503".into())
    )));
}

/// Every notice id in the store, oldest first.
async fn stored_notices(store: &Store) -> Vec<String> {
    texts(store, "SELECT id FROM notices ORDER BY created_at, id").await
}

async fn a_server_restarted_mid_incident_tells_nothing_twice_and_nothing_late_is_lost(db: &TestDb) {
    use crate::monitor::AlertRules;
    use campuswatch_protocol::{Death, DeathReason};
    let settings = || Settings {
        alerts: AlertRules {
            hold_down_gateway: chrono::TimeDelta::zero(),
            group_wait: chrono::TimeDelta::seconds(30),
            incident_min_gateways: 5,
            ..AlertRules::default()
        },
        missed_heartbeats: 1_000_000,
        ..Settings::default()
    };
    let store = db.open().await;
    let ids: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    let registry: Vec<_> = ids.iter().map(|id| entry(id, "150102")).collect();
    store.import_registry(&registry, false, t(0)).await.unwrap();
    let mut m = Monitor::new(settings());
    m.set_registry(&registry, false, t(0));
    let death = |id: &str| {
        Message::Death(Death {
            v: 1,
            campus: CampusId::parse(id).unwrap(),
            region: RegionCode::parse("150102").unwrap(),
            epoch: 4,
            reason: DeathReason::ConnectionLost,
        })
    };
    for id in &ids {
        let out = m.apply(&birth(id), t(1));
        store.apply(&out.changes, t(1)).await.unwrap();
    }
    // Six gateways drop; the server is restarted before their group was told.
    for id in &ids[..6] {
        let out = m.apply(&death(id), t(10));
        store.apply(&out.changes, t(10)).await.unwrap();
    }
    let restart = |at| async move {
        let store = db.open().await;
        let m = Monitor::restore(settings(), store.snapshot().await.unwrap(), at);
        (store, m)
    };
    drop((m, store));
    let (store, mut m) = restart(t(20)).await;
    for s in [20, 49, 50] {
        let changes = m.expire(t(s));
        store.apply(&changes, t(s)).await.unwrap();
    }
    assert_eq!(stored_notices(&store).await, ["incident-1-opened"]);

    // Restarted again mid-incident: nothing is told again.
    drop((m, store));
    let (store, mut m) = restart(t(60)).await;
    for s in [60, 120] {
        let changes = m.expire(t(s));
        store.apply(&changes, t(s)).await.unwrap();
    }
    assert_eq!(stored_notices(&store).await, ["incident-1-opened"]);
    assert_eq!(m.open_incidents().next().unwrap().campuses.len(), 6);

    // They come back: one resolution, once, even with a restart in the middle.
    for id in &ids[..3] {
        let out = m.apply(&birth(id), t(130));
        store.apply(&out.changes, t(130)).await.unwrap();
    }
    drop((m, store));
    let (store, mut m) = restart(t(140)).await;
    for id in &ids[3..6] {
        let mut out = m.apply(&birth(id), t(150));
        out.changes.extend(m.expire(t(151)));
        store.apply(&out.changes, t(151)).await.unwrap();
    }
    assert_eq!(
        stored_notices(&store).await,
        ["incident-1-opened", "incident-1-resolved"]
    );
    assert_eq!(m.open_incidents().count(), 0);
    assert_eq!(m.active_alerts().count(), 0);
}

async fn maintenance_windows_survive_a_restart_and_withdrawn_ones_stay_in_history(db: &TestDb) {
    use crate::monitor::maintenance::{Maintenance, Schedule, Scope};
    let store = db.open().await;
    let mut m = Monitor::new(Settings::immediate());
    let window = Maintenance {
        id: 0,
        scope: Scope::Region {
            region: RegionCode::parse("150102").unwrap(),
        },
        schedule: Schedule::Once {
            start: t(100),
            end: t(200),
        },
        utc_offset_minutes: 480,
        comment: Some("network works".into()),
        created_by: "county office".into(),
        created_at: t(1),
    };
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (w, changes) = m.add_maintenance(window.clone(), t(1)).unwrap();
        store.apply(&changes, t(1)).await.unwrap();
        ids.push(w.id);
    }
    let changes = m.remove_maintenance(ids[0], t(2)).unwrap();
    store.apply(&changes, t(2)).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.maintenance.len(), 1);
    assert_eq!(snap.maintenance[0].id, ids[1]);
    assert_eq!(snap.max_maintenance_id, ids[1]);
    let history = store.maintenance(true).await.unwrap();
    assert_eq!(history.len(), 2);
    let r = Monitor::restore(Settings::immediate(), snap, t(3));
    assert_eq!(r.maintenance_windows().count(), 1);
}

async fn users_sign_in_with_sessions_and_tokens_and_only_hashes_are_stored(db: &TestDb) {
    use crate::auth::{hash_password, new_secret, verify_password, Principal, Role};
    let store = db.open().await;
    assert!(!store.has_users().await.unwrap());
    let county = RegionCode::parse("150102").unwrap();
    let id = store
        .put_user(
            "wang.li",
            &hash_password("a long enough password").unwrap(),
            Role::Operator,
            Some(county),
            t(0),
        )
        .await
        .unwrap();
    let (p, hash) = store.login_user("wang.li").await.unwrap().unwrap();
    assert_eq!(
        (p.user_id, p.role, p.scope),
        (id, Role::Operator, Some(county))
    );
    assert!(verify_password("a long enough password", &hash));
    assert!(store.login_user("nobody").await.unwrap().is_none());

    let (session, stored) = new_secret("cws_");
    store
        .create_session(&stored, id, t(0), t(3600))
        .await
        .unwrap();
    assert_eq!(
        store.principal_for(&session, t(10)).await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        store.principal_for(&session, t(3600)).await.unwrap(),
        None,
        "expired"
    );
    let (token, stored) = new_secret("cwt_");
    store
        .create_token(&stored, id, "nightly report", t(0), t(100_000))
        .await
        .unwrap();
    assert_eq!(
        store.principal_for(&token, t(99_999)).await.unwrap(),
        Some(Principal {
            token: Some(1),
            ..p.clone()
        })
    );
    assert_eq!(
        store.principal_for(&token, t(100_000)).await.unwrap(),
        None,
        "the token expired"
    );
    assert_eq!(store.principal_for("cwt_guess", t(10)).await.unwrap(), None);

    // Nothing secret is stored in clear.
    let dump = texts(
        &store,
        "SELECT password_hash FROM users UNION ALL SELECT secret_hash FROM sessions
         UNION ALL SELECT secret_hash FROM api_tokens",
    )
    .await;
    assert!(dump
        .iter()
        .all(|v| !v.contains("long enough") && !v.contains(&token[4..])));
    // Signing out ends the session.
    store.delete_session(&session).await.unwrap();
    assert_eq!(store.principal_for(&session, t(10)).await.unwrap(), None);
    let listed = store.users().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "wang.li");

    // A new password ends every session and token the old one opened.
    let (session, stored) = new_secret("cws_");
    store
        .create_session(&stored, id, t(0), t(3600))
        .await
        .unwrap();
    let (token, stored) = new_secret("cwt_");
    let token_id = store
        .create_token(&stored, id, "export", t(0), t(100_000))
        .await
        .unwrap();
    assert_eq!(
        store.principal_for(&token, t(10)).await.unwrap(),
        Some(Principal {
            token: Some(token_id),
            ..p
        })
    );
    store
        .put_user(
            "wang.li",
            &hash_password("another long password").unwrap(),
            Role::Operator,
            Some(county),
            t(20),
        )
        .await
        .unwrap();
    assert_eq!(store.principal_for(&session, t(30)).await.unwrap(), None);
    assert_eq!(store.principal_for(&token, t(30)).await.unwrap(), None);
}

async fn tokens_are_listed_and_revoked_and_a_disabled_user_has_none(db: &TestDb) {
    use crate::auth::{new_secret, Role};
    let store = db.open().await;
    let county = RegionCode::parse("150102").unwrap();
    let id = store
        .put_user("li.na", "hash", Role::Operator, Some(county), t(0))
        .await
        .unwrap();
    let other = store
        .put_user("zhao", "hash", Role::Viewer, None, t(0))
        .await
        .unwrap();
    let mut secrets = Vec::new();
    for name in ["export", "wallboard"] {
        let (token, stored) = new_secret("cwt_");
        let tid = store
            .create_token(&stored, id, name, t(0), t(100_000))
            .await
            .unwrap();
        secrets.push((tid, token));
    }
    let (theirs, stored) = new_secret("cwt_");
    store
        .create_token(&stored, other, "theirs", t(0), t(100_000))
        .await
        .unwrap();
    // Listed newest first, their own only, with when each was last used.
    let listed = store.tokens(id).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["wallboard", "export"]);
    assert!(listed
        .iter()
        .all(|t| t.last_used.is_none() && t.user == "li.na"));
    let (export, export_secret) = &secrets[0];
    assert!(store
        .principal_for(export_secret, t(10))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .principal_for(export_secret, t(20))
        .await
        .unwrap()
        .is_some());
    let used = store.token(*export).await.unwrap().unwrap();
    assert_eq!(used.last_used, Some(t(10)), "written once a minute at most");
    assert!(store
        .principal_for(export_secret, t(75))
        .await
        .unwrap()
        .is_some());
    let used = store.token(*export).await.unwrap().unwrap();
    assert_eq!(used.last_used, Some(t(75)));

    // A revoked token stops at once, and revoking it again changes nothing.
    assert!(store.revoke_token(*export, t(100)).await.unwrap());
    assert!(!store.revoke_token(*export, t(200)).await.unwrap());
    assert_eq!(
        store.principal_for(export_secret, t(101)).await.unwrap(),
        None
    );
    assert_eq!(
        store.token(*export).await.unwrap().unwrap().revoked_at,
        Some(t(100))
    );
    assert!(store.token(9999).await.unwrap().is_none());

    // Disabling ends every session and token; enabling revives none.
    let (session, stored) = new_secret("cws_");
    store
        .create_session(&stored, id, t(0), t(3600))
        .await
        .unwrap();
    let (wallboard, wallboard_secret) = &secrets[1];
    assert!(store
        .principal_for(&session, t(110))
        .await
        .unwrap()
        .is_some());
    assert!(store.set_user_disabled(id, true, t(120)).await.unwrap());
    assert!(!store.set_user_disabled(9999, true, t(120)).await.unwrap());
    assert_eq!(store.principal_for(&session, t(121)).await.unwrap(), None);
    assert_eq!(
        store.principal_for(wallboard_secret, t(121)).await.unwrap(),
        None
    );
    assert!(
        store.login_user("li.na").await.unwrap().is_none(),
        "no sign-in"
    );
    assert!(store.user(id).await.unwrap().unwrap().disabled);
    assert!(store.set_user_disabled(id, false, t(130)).await.unwrap());
    assert!(store.login_user("li.na").await.unwrap().is_some());
    assert_eq!(store.principal_for(&session, t(131)).await.unwrap(), None);
    assert_eq!(
        store.principal_for(wallboard_secret, t(131)).await.unwrap(),
        None
    );
    assert_eq!(
        store.token(*wallboard).await.unwrap().unwrap().revoked_at,
        Some(t(120))
    );
    // Nobody else's tokens were touched.
    assert!(store
        .principal_for(&theirs, t(131))
        .await
        .unwrap()
        .is_some());
}

async fn every_acknowledgement_of_an_alert_is_kept(db: &TestDb) {
    let store = db.open().await;
    let registry = vec![entry("c1", "150102")];
    store.import_registry(&registry, false, t(0)).await.unwrap();
    let mut m = Monitor::new(Settings::immediate());
    m.set_registry(&registry, false, t(0));
    for (msg, at) in [(birth("c1"), t(1)), (cam_down("c1", 11), t(6))] {
        let out = m.apply(&msg, at);
        store.apply(&out.changes, at).await.unwrap();
    }
    let alert = m.active_alerts().next().expect("an alert").id;
    assert!(store
        .acknowledgements(alert)
        .await
        .unwrap()
        .unwrap()
        .1
        .is_empty());
    for (by, at, comment) in [("wang", 10, Some("on my way")), ("li", 20, None)] {
        let a = m
            .acknowledge(alert, by, comment.map(String::from), t(at))
            .unwrap();
        let ack = a.acknowledged.clone().unwrap();
        store
            .apply(
                &[Change::Alert(a), Change::Acknowledged { alert, ack }],
                t(at),
            )
            .await
            .unwrap();
    }
    let (region, acks) = store.acknowledgements(alert).await.unwrap().unwrap();
    assert_eq!(region.as_str(), "150102");
    let who: Vec<(&str, Timestamp, Option<&str>)> = acks
        .iter()
        .map(|a| (a.by.as_str(), a.at, a.comment.as_deref()))
        .collect();
    assert_eq!(
        who,
        [("wang", t(10), Some("on my way")), ("li", t(20), None)],
        "the second did not erase the first"
    );
    // The alert itself shows the latest.
    let stored = store
        .alerts(&Filter {
            limit: 10,
            ..Filter::default()
        })
        .await
        .unwrap();
    let acked = stored.iter().find(|a| a.id == alert).unwrap();
    assert_eq!(acked.acknowledged.as_ref().unwrap().by, "li");
    assert!(store.acknowledgements(alert + 100).await.unwrap().is_none());
    assert!(store.acknowledgements(u64::MAX).await.unwrap().is_none());
}

async fn the_audit_log_is_read_within_a_scope_and_by_actor_action_and_time(db: &TestDb) {
    let store = db.open().await;
    let region = |r: &str| Some(RegionCode::parse(r).unwrap());
    let entries = [
        (1, "admin", AuditAction::RegistryImport, None),
        (
            2,
            "hohhot-admin",
            AuditAction::MaintenanceCreate,
            region("150102"),
        ),
        (
            3,
            "baotou-admin",
            AuditAction::TokenRevoke,
            region("150203"),
        ),
        (4, "admin", AuditAction::UserDisable, region("150100")),
        (5, "local", AuditAction::UserCreate, region("150000")),
    ];
    for (at, actor, action, region) in entries {
        store
            .record_audit(&NewAudit {
                at: t(at),
                actor: actor.into(),
                token: (actor == "baotou-admin").then_some(7),
                action,
                target: format!("target {at}"),
                region,
                details: serde_json::json!({"n": at, "名": "第一小学"}),
                source: Some("127.0.0.1".into()),
            })
            .await
            .unwrap();
    }
    let read = |f: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .audit(&AuditFilter { limit: 100, ..f })
                .await
                .unwrap()
                .iter()
                .map(|e| e.details["n"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        read(AuditFilter::default()).await,
        [5, 4, 3, 2, 1],
        "newest first"
    );
    let all = store
        .audit(&AuditFilter {
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all[0].details["名"], "第一小学");
    assert_eq!(
        (all[0].action, all[0].source.as_deref()),
        (AuditAction::UserCreate, Some("127.0.0.1"))
    );
    // A city's administrator: their city's entries only, not the whole area's.
    let scoped = |r: &str| AuditFilter {
        scope: region(r),
        ..AuditFilter::default()
    };
    assert_eq!(read(scoped("150100")).await, [4, 2]);
    assert_eq!(read(scoped("150203")).await, [3]);
    // A province's: everything within it and the whole area's.
    assert_eq!(read(scoped("150000")).await, [5, 4, 3, 2, 1]);
    // Another province's: the whole area's only.
    assert_eq!(read(scoped("110000")).await, [1]);
    assert_eq!(
        read(AuditFilter {
            actor: Some("admin".into()),
            ..AuditFilter::default()
        })
        .await,
        [4, 1]
    );
    assert_eq!(
        read(AuditFilter {
            action: Some(AuditAction::TokenRevoke),
            ..AuditFilter::default()
        })
        .await,
        [3]
    );
    assert_eq!(
        read(AuditFilter {
            since: Some(t(2)),
            until: Some(t(4)),
            ..AuditFilter::default()
        })
        .await,
        [3, 2]
    );
    assert_eq!(
        read(AuditFilter {
            offset: 3,
            ..AuditFilter::default()
        })
        .await,
        [2, 1]
    );
    assert_eq!(store.prune_audit(t(3)).await.unwrap(), 2);
    assert_eq!(read(AuditFilter::default()).await, [5, 4, 3]);
}

async fn gb28181_devices_and_the_codes_campuses_list_come_back_after_a_restart(db: &TestDb) {
    use crate::gb28181::{ChannelInfo, ChannelStatus, GbCode, GbInput, Transport};
    const NVR: &str = "15010200001180000001";
    let store = db.open().await;
    let registry = vec![entry("c1", "150102").with_gb(&[NVR, "15010200001320000099"])];
    store.import_registry(&registry, false, t(0)).await.unwrap();
    let mut m = Monitor::new(Settings::immediate());
    m.set_registry(&registry, false, t(0));
    let nvr = GbCode::parse(NVR).unwrap();
    let cam = |i: u32, on: bool| ChannelInfo {
        id: GbCode::parse(&format!("150102000013200000{i:02}")).unwrap(),
        name: Some(format!("校门口{i}")),
        manufacturer: None,
        model: None,
        status: if on {
            ChannelStatus::On
        } else {
            ChannelStatus::Off
        },
        parent: None,
    };
    for (input, at) in [
        (
            GbInput::Registered {
                device: nvr,
                address: "10.1.2.3:5060".parse().unwrap(),
                transport: Transport::Tcp,
                expires_secs: 3600,
                keepalive_secs: 60,
            },
            t(1),
        ),
        (
            GbInput::Catalog {
                device: nvr,
                channels: vec![cam(1, true), cam(2, false)],
                complete: true,
            },
            t(2),
        ),
    ] {
        let changes = m.apply_gb(&input, at);
        store.apply(&changes, at).await.unwrap();
    }
    drop(store);
    let store = db.open().await;
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.registry, registry);
    assert_eq!(snap.gb_devices.len(), 1);
    let r = Monitor::restore(Settings::immediate(), snap, t(100));
    let d = r.gb_device(&nvr).unwrap();
    assert_eq!(d.campus.map(|c| c.as_str()), Some("c1"));
    assert_eq!(d.record, m.gb_device(&nvr).unwrap().record);
    assert_eq!(d.record.channels[0].name.as_deref(), Some("校门口1"));
    assert_eq!(
        r.coverage().total(None, None).platform_listed,
        m.coverage().total(None, None).platform_listed
    );
    // The channel went OFF in the history, under the campus.
    let events = store
        .transitions(&crate::store::Filter {
            kind: Some(AlertKind::GbChannel),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let rows: Vec<_> = events
        .iter()
        .map(|e| (e.transition.campus.as_str(), e.transition.to.as_str()))
        .collect();
    assert_eq!(rows, [("c1", "off")]);
}
