//! The agent against a real broker: births, heartbeats, events, the Last Will, epochs
//! across restarts, and events that outlive a broker outage or an agent restart.
//!
//! Runs against an embedded rumqttd, or the broker at `CAMPUSWATCH_TEST_MQTT_URL`.

mod common;

use std::collections::BTreeSet;

use campuswatch_agent::AgentConfig;
use campuswatch_protocol::{Birth, CampusId, DeathReason, DeviceState, Event, Message};
use common::*;
use tokio_util::sync::CancellationToken;

/// An agent watching one TCP alarm, reporting through `url`: running, its birth and the
/// alarm's first `unknown → up` seen by `sub`.
struct Gateway {
    campus: CampusId,
    sub: Subscriber,
    device: TcpDevice,
    dir: tempfile::TempDir,
    config: AgentConfig,
    shutdown: CancellationToken,
    agent: tokio::task::JoinHandle<Result<(), campuswatch_agent::AgentError>>,
    birth: Birth,
    up: Event,
}

impl Gateway {
    async fn start(
        name: &str,
        url: impl FnOnce() -> String,
        tweak: impl FnOnce(&mut AgentConfig),
    ) -> Gateway {
        let campus = unique_campus(name);
        let mut sub = Subscriber::start(&campus).await;
        let device = TcpDevice::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = agent_config(&campus, &url(), dir.path());
        config.devices.push(tcp_alarm("alarm-1", device.addr));
        tweak(&mut config);
        let shutdown = CancellationToken::new();
        let agent = tokio::spawn(campuswatch_agent::run(config.clone(), shutdown.clone()));
        let birth = sub.birth("a birth").await;
        let up = sub
            .event("alarm-1 coming up", DeviceState::Unknown, DeviceState::Up)
            .await;
        Gateway {
            campus,
            sub,
            device,
            dir,
            config,
            shutdown,
            agent,
            birth,
            up,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn birth_heartbeats_events_last_will_and_a_higher_epoch_after_restart() {
    let Gateway {
        mut sub,
        mut device,
        dir,
        config,
        agent,
        birth,
        up,
        ..
    } = Gateway::start("life", broker_url, |_| {}).await;
    assert_eq!(birth.epoch, stored_epoch(dir.path()));
    assert_eq!(birth.devices.len(), 1);
    let d = &birth.devices[0];
    assert_eq!((d.id.as_str(), d.probe.as_str()), ("alarm-1", "tcp"));
    assert_eq!(d.target, device.addr.to_string());
    assert!(d.required);
    assert_eq!(birth.heartbeat_interval_ms, 200);
    assert_eq!(birth.config_digest, config.digest());
    assert_eq!(up.device.as_str(), "alarm-1");
    assert!(up.measurements.contains_key("latency_ms"));

    let first_seq = match sub
        .expect("a heartbeat", |m| matches!(m, Message::Heartbeat(_)))
        .await
    {
        Message::Heartbeat(hb) => {
            assert_eq!(hb.epoch, birth.epoch);
            hb.seq
        }
        _ => unreachable!(),
    };
    sub.expect("a later heartbeat showing the alarm up", |m| {
        matches!(m, Message::Heartbeat(hb) if hb.seq > first_seq && hb.states == "U" && hb.last_event_id >= up.id)
    })
    .await;

    device.down().await;
    let down = sub
        .event("alarm-1 going down", DeviceState::Up, DeviceState::Down)
        .await;
    assert!(down.id > up.id, "{} > {}", down.id, up.id);
    assert_eq!(down.epoch, birth.epoch);
    let cause = down.cause.clone().unwrap_or_default();
    assert!(cause.contains("connection refused"), "{cause}");
    sub.expect(
        "a heartbeat showing the alarm down",
        |m| matches!(m, Message::Heartbeat(hb) if hb.states == "D" && hb.last_event_id == down.id),
    )
    .await;

    // A killed agent leaves its Last Will, carrying the session's epoch.
    agent.abort();
    let _ = agent.await;
    let Message::Death(will) = sub
        .expect("the Last Will", |m| matches!(m, Message::Death(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        (will.epoch, will.reason),
        (birth.epoch, DeathReason::ConnectionLost)
    );

    // A restarted agent comes back under a higher epoch and knows its newest event.
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(campuswatch_agent::run(config, shutdown.clone()));
    let again = sub.birth("a second birth").await;
    assert!(
        again.epoch > birth.epoch,
        "{} > {}",
        again.epoch,
        birth.epoch
    );
    assert!(again.last_event_id >= down.id);
    sub.expect(
        "the restarted agent's first event",
        |m| matches!(m, Message::Event(e) if e.from == DeviceState::Unknown && e.id > down.id),
    )
    .await;

    // A clean shutdown says so itself, under the current epoch.
    shutdown.cancel();
    let Message::Death(death) = sub
        .expect("the shutdown death", |m| matches!(m, Message::Death(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        (death.epoch, death.reason),
        (again.epoch, DeathReason::Shutdown)
    );
    agent.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_a_broker_outage_are_all_delivered_once_it_is_back() {
    let proxy = LinkProxy::start(broker_addr()).await;
    let Gateway {
        mut sub,
        mut device,
        dir,
        shutdown,
        agent,
        birth,
        ..
    } = Gateway::start("outage", || proxy.url(), |_| {}).await;

    // So that the spool holds only what happens during the outage.
    wait_all_acknowledged(dir.path()).await;

    // Cut the gateway off; the device goes down and up twice while it is.
    proxy.set(LinkMode::Cut);
    sub.expect("the Last Will of the cut session", |m| {
        matches!(m, Message::Death(d) if d.epoch == birth.epoch && d.reason == DeathReason::ConnectionLost)
    })
    .await;
    let spooled = flap_twice(&mut device, dir.path()).await;

    proxy.set(LinkMode::Pass);
    let again = sub.birth("a birth after the outage").await;
    assert!(again.epoch > birth.epoch);
    assert_eq!(again.devices[0].state, DeviceState::Up);
    assert!(again.last_event_id >= *spooled.last().unwrap());
    let mut missing: BTreeSet<u64> = spooled.iter().copied().collect();
    while !missing.is_empty() {
        if let Message::Event(e) = sub
            .expect("the spooled events", |m| matches!(m, Message::Event(_)))
            .await
        {
            missing.remove(&e.id);
        }
    }
    // Once acknowledged, they leave the spool.
    wait_until("the spool to empty", DEADLINE, async || {
        spooled_events(dir.path()).is_empty()
    })
    .await;

    shutdown.cancel();
    agent.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_spooled_before_a_restart_are_replayed_with_their_original_times() {
    let campus = unique_campus("replay");
    let mut sub = Subscriber::start(&campus).await;
    let unreachable = LinkProxy::start(broker_addr()).await;
    unreachable.set(LinkMode::Cut);
    let mut device = TcpDevice::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = agent_config(&campus, &unreachable.url(), dir.path());
    config.devices.push(tcp_alarm("alarm-1", device.addr));

    // First life: the broker is never reachable.
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(campuswatch_agent::run(config.clone(), shutdown.clone()));
    wait_until("the up event in the spool", DEADLINE, async || {
        spooled_events(dir.path()).len() == 1
    })
    .await;
    device.down().await;
    wait_until("the down event in the spool", DEADLINE, async || {
        spooled_events(dir.path()).len() == 2
    })
    .await;
    shutdown.cancel();
    agent.await.unwrap().unwrap();
    let spooled = spooled_events(dir.path());

    // Second life: the broker is reachable; the device stays down, so no new events.
    config.mqtt.url = broker_url();
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(campuswatch_agent::run(config, shutdown.clone()));
    let birth = sub.birth("a birth").await;
    assert_eq!(birth.last_event_id, spooled[1].id);
    for want in &spooled {
        let Message::Event(got) = sub
            .expect(
                "a replayed event",
                |m| matches!(m, Message::Event(e) if e.id == want.id),
            )
            .await
        else {
            unreachable!()
        };
        assert_eq!(
            &got, want,
            "replayed unchanged, with the original time and epoch"
        );
    }
    shutdown.cancel();
    agent.await.unwrap().unwrap();
}

fn rebirth(campus: &campuswatch_protocol::CampusId, epoch: u64) -> campuswatch_protocol::Command {
    campuswatch_protocol::Command::Rebirth(campuswatch_protocol::Rebirth {
        v: campuswatch_protocol::COMMAND_SCHEMA_VERSION,
        campus: campus.clone(),
        region: campuswatch_protocol::RegionCode::parse(REGION).unwrap(),
        epoch,
        reason: "digest_mismatch".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebirth_request_of_the_current_session_is_answered_once_with_a_birth() {
    let Gateway {
        campus,
        mut sub,
        mut device,
        shutdown,
        agent,
        birth,
        up,
        ..
    } = Gateway::start("rebirth", broker_url, |_| {}).await;
    assert_eq!(birth.v, campuswatch_protocol::BASE_SCHEMA_VERSION);
    device.down().await;
    let down = sub
        .event("alarm-1 down", DeviceState::Up, DeviceState::Down)
        .await;
    assert!(down.id > up.id);

    // A request for an older session (kept by the broker while the gateway was away),
    // one for this session, and the same again at once.
    send_commands(&[
        rebirth(&campus, birth.epoch - 1),
        rebirth(&campus, birth.epoch),
        rebirth(&campus, birth.epoch),
    ])
    .await;
    let again = sub.birth("the answer").await;
    assert_eq!(again.epoch, birth.epoch, "a rebirth keeps the session");
    assert_eq!(again.last_event_id, down.id);
    assert_eq!(again.devices[0].state, DeviceState::Down);
    // Exactly one answer: count births until five more heartbeats went by.
    let mut births = 0;
    let mut heartbeats = 0;
    while heartbeats < 5 {
        match sub
            .expect("heartbeats", |m| {
                matches!(m, Message::Heartbeat(_) | Message::Birth(_))
            })
            .await
        {
            Message::Birth(_) => births += 1,
            _ => heartbeats += 1,
        }
    }
    assert_eq!(births, 0, "one answer for three requests");
    shutdown.cancel();
    agent.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_beyond_the_spool_bound_drops_the_oldest_events_and_the_birth_says_how_many() {
    let proxy = LinkProxy::start(broker_addr()).await;
    let Gateway {
        mut sub,
        mut device,
        dir,
        shutdown,
        agent,
        birth,
        ..
    } = Gateway::start("bound", || proxy.url(), |c| c.spool.max_events = 2).await;

    // Four transitions while cut off, with room for two.
    wait_all_acknowledged(dir.path()).await;
    proxy.set(LinkMode::Cut);
    sub.expect(
        "the Last Will of the cut session",
        |m| matches!(m, Message::Death(d) if d.epoch == birth.epoch),
    )
    .await;
    let ids = flap_twice(&mut device, dir.path()).await;

    proxy.set(LinkMode::Pass);
    let again = sub.birth("a birth after the outage").await;
    assert_eq!((again.v, again.dropped_events), (3, 2));
    assert_eq!(again.last_event_id, ids[3]);
    assert_eq!(again.devices[0].state, DeviceState::Up);
    // The two newest arrive, in order; the two oldest never do.
    for want in &ids[2..] {
        let Message::Event(got) = sub
            .expect("a kept event", |m| matches!(m, Message::Event(_)))
            .await
        else {
            unreachable!()
        };
        assert_eq!(got.id, *want, "kept: {:?}", &ids[2..]);
    }
    wait_until("the spool to empty", DEADLINE, async || {
        spooled_events(dir.path()).is_empty()
    })
    .await;
    let marks = std::fs::read_to_string(dir.path().join("spool/acked")).unwrap();
    assert_eq!(
        marks,
        format!("{} 2\n", ids[3]),
        "the count is kept on disk"
    );
    shutdown.cancel();
    agent.await.unwrap().unwrap();
}

/// Takes `device` down and up twice, waiting each time until the agent has written the
/// transition to the spool log under `state_dir`; the ids of the four records written.
async fn flap_twice(device: &mut TcpDevice, state_dir: &std::path::Path) -> Vec<u64> {
    let mut written = 0;
    for _ in 0..2 {
        device.down().await;
        written += 1;
        wait_until("the down event in the spool log", DEADLINE, async || {
            spooled_events(state_dir).len() >= written
        })
        .await;
        device.up().await;
        written += 1;
        wait_until("the up event in the spool log", DEADLINE, async || {
            spooled_events(state_dir).len() >= written
        })
        .await;
    }
    let ids: Vec<u64> = spooled_events(state_dir).iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    ids
}
