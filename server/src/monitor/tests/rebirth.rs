//! Heartbeat digests, rebirth requests and the events gateways dropped.

use super::*;

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
        devices: vec![(cid("c1"), c.devices.to_vec())],
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
