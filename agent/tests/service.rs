//! The `campuswatch-agent` binary as systemd runs it: a notification socket the test
//! binds stands in for systemd (`NOTIFY_SOCKET`, `WATCHDOG_USEC`), signals stand in for
//! `systemctl reload` and `systemctl stop`, and a subscriber on the broker sees what the
//! server would.
//!
//! Runs against an embedded rumqttd, or the broker at `CAMPUSWATCH_TEST_MQTT_URL`.

mod common;
#[path = "../../service/tests/support/under_systemd.rs"]
mod under_systemd;

use std::path::{Path, PathBuf};

use campuswatch_protocol::{DeathReason, DeviceState, Message};
use common::*;
use under_systemd::{Notifications, Supervised};

fn config(
    campus: &str,
    dir: &Path,
    url: &str,
    devices: &[(&str, String)],
    keepalive: &str,
) -> String {
    let mut s = format!(
        "campus = \"{campus}\"\nregion = \"{REGION}\"\nstate_dir = \"{}\"\n\
         heartbeat_interval = \"200ms\"\n\n[mqtt]\nurl = \"{url}\"\nkeepalive = \"{keepalive}\"\n\
         reconnect_delay_min = \"50ms\"\nreconnect_delay_max = \"200ms\"\n",
        dir.display()
    );
    for (id, target) in devices {
        s.push_str(&format!(
            "\n[[devices]]\nid = \"{id}\"\nkind = \"alarm\"\ninterval = \"100ms\"\n\
             probe = {{ type = \"tcp\", target = \"{target}\" }}\n"
        ));
    }
    s
}

/// Messages until one for which `until` holds; returns them all, that one last.
async fn messages_until(
    sub: &mut Subscriber,
    what: &str,
    mut until: impl FnMut(&Message) -> bool,
) -> Vec<Message> {
    let mut seen = Vec::new();
    sub.expect(what, |m| {
        seen.push(m.clone());
        until(m)
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_the_agent_is_ready_feeds_the_watchdog_and_reloads_without_a_new_session() {
    let campus = unique_campus("svc");
    let mut sub = Subscriber::start(&campus).await;
    let alarm1 = TcpDevice::start().await;
    let alarm2 = TcpDevice::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path: PathBuf = dir.path().join("agent.toml");
    let url = broker_url();
    let one = [("alarm-1", alarm1.addr.to_string())];
    std::fs::write(&path, config(campus.as_str(), &state, &url, &one, "5s")).unwrap();
    let socket = dir.path().join("notify.sock");
    let mut notes = Notifications::bind(&socket, DEADLINE);
    let mut agent = Supervised::start(env!("CARGO_BIN_EXE_campuswatch-agent"), &path, &socket);

    // Ready, with a status line; then the watchdog pings.
    let ready = notes.expect("READY=1").await;
    assert!(ready.contains("STATUS=Running; campus"), "{ready}");
    let Message::Birth(birth) = sub
        .expect("a birth", |m| matches!(m, Message::Birth(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(birth.devices.len(), 1);
    sub.expect("alarm-1 up", |m| {
        matches!(m, Message::Event(e) if e.device.as_str() == "alarm-1" && e.to == DeviceState::Up)
    })
    .await;
    notes.expect("WATCHDOG=1").await;
    notes.expect("WATCHDOG=1").await;

    // A broken file: refused with its file, line and reason; the agent runs on.
    let broken = config(
        campus.as_str(),
        &state,
        &url,
        &[
            ("alarm-1", alarm1.addr.to_string()),
            ("alarm-2", "no-port".into()),
        ],
        "5s",
    );
    let bad_line = broken.lines().position(|l| l.contains("no-port")).unwrap() + 1;
    std::fs::write(&path, &broken).unwrap();
    agent.signal("HUP");
    let reloading = notes.expect("RELOADING=1").await;
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let refused = notes.expect("READY=1").await;
    assert!(refused.contains("reload refused"), "{refused}");
    let at = format!("{}:{bad_line}: devices[1].probe.target", path.display());
    agent.wait_for_log(&at, DEADLINE).await;
    assert!(agent.log().contains("is not host:port"), "{}", agent.log());
    assert!(agent.running(), "{}", agent.log());
    notes.expect("WATCHDOG=1").await;
    notes.expect("WATCHDOG=1").await;

    // A device added: a new birth with both devices in the same epoch, and no death.
    let two = [
        ("alarm-1", alarm1.addr.to_string()),
        ("alarm-2", alarm2.addr.to_string()),
    ];
    std::fs::write(&path, config(campus.as_str(), &state, &url, &two, "5s")).unwrap();
    agent.signal("HUP");
    notes.expect("RELOADING=1").await;
    let reloaded = notes.expect("READY=1").await;
    assert!(reloaded.contains("devices added: alarm-2"), "{reloaded}");
    let seen = messages_until(
        &mut sub,
        "a birth with alarm-2",
        |m| matches!(m, Message::Birth(b) if b.devices.len() == 2),
    )
    .await;
    let Some(Message::Birth(again)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(
        again.epoch, birth.epoch,
        "a reload keeps the session's epoch"
    );
    assert_eq!(stored_epoch(&state), birth.epoch);
    assert_ne!(again.config_digest, birth.config_digest);
    // The kept device kept its state; the new one starts unknown and is probed.
    assert_eq!(again.devices[0].state, DeviceState::Up);
    assert_eq!(again.devices[1].id.as_str(), "alarm-2");
    for m in &seen {
        assert!(
            !matches!(m, Message::Death(_)),
            "a death during a reload: {m:?}"
        );
    }
    let seen = messages_until(&mut sub, "alarm-2 up", |m| {
        matches!(m, Message::Event(e) if e.device.as_str() == "alarm-2" && e.to == DeviceState::Up)
    })
    .await;
    for m in &seen {
        assert!(
            !matches!(m, Message::Death(_)),
            "a death during a reload: {m:?}"
        );
        // alarm-1's probe was not replaced, so it reports no fresh `unknown → up`.
        assert!(
            !matches!(m, Message::Event(e) if e.device.as_str() == "alarm-1"),
            "{m:?}"
        );
    }

    // A connection setting changed: a clean reconnection under a new epoch, no Last Will.
    std::fs::write(&path, config(campus.as_str(), &state, &url, &two, "6s")).unwrap();
    agent.signal("HUP");
    let reloaded = notes.expect("READY=1").await;
    assert!(reloaded.contains("mqtt.keepalive changed"), "{reloaded}");
    let seen = messages_until(
        &mut sub,
        "a birth of a new epoch",
        |m| matches!(m, Message::Birth(b) if b.epoch > birth.epoch),
    )
    .await;
    for m in &seen {
        assert!(
            !matches!(m, Message::Death(_)),
            "a death when reconnecting: {m:?}"
        );
    }
    let Some(Message::Birth(third)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(third.devices.len(), 2);

    // Where the epoch and spool live cannot change while running: refused, kept.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&path, config(campus.as_str(), &elsewhere, &url, &two, "6s")).unwrap();
    agent.signal("HUP");
    let refused = notes.expect("READY=1").await;
    assert!(
        refused.contains("reload refused: `state_dir` changed"),
        "{refused}"
    );
    assert!(agent.running());
    assert!(!elsewhere.exists());

    // systemctl stop: STOPPING=1, the shutdown death, a clean exit.
    agent.signal("TERM");
    notes.expect("STOPPING=1").await;
    sub.expect("the shutdown death", |m| {
        matches!(m, Message::Death(d) if d.epoch == third.epoch && d.reason == DeathReason::Shutdown)
    })
    .await;
    let exited = tokio::task::spawn_blocking(move || {
        let status = agent.wait();
        (status, agent.log())
    })
    .await
    .unwrap();
    assert!(exited.0.success(), "{:?}\n{}", exited.0, exited.1);
}
