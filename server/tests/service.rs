//! The `campuswatch-server` binary as systemd runs it: a notification socket the test
//! binds stands in for systemd (`NOTIFY_SOCKET`, `WATCHDOG_USEC`), signals stand in for
//! `systemctl reload` and `systemctl stop`.

use std::path::Path;
use std::time::Duration;

#[path = "../../service/tests/support/under_systemd.rs"]
mod under_systemd;

use under_systemd::{Notifications, Supervised};

const DEADLINE: Duration = Duration::from_secs(30);

fn config(dir: &Path, extra: &str) -> String {
    format!(
        "data_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nenabled = false\n\n\
         [mqtt.embedded]\nlisten = \"127.0.0.1:0\"\n{extra}",
        dir.join("data").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_the_server_is_ready_feeds_the_watchdog_checks_reloads_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    std::fs::write(&path, config(dir.path(), "")).unwrap();
    let socket_path = dir.path().join("notify.sock");
    let mut notes = Notifications::bind(&socket_path, DEADLINE);
    let mut server = Supervised::start(
        env!("CARGO_BIN_EXE_campuswatch-server"),
        &path,
        &socket_path,
    );

    // Ready once HTTP listens: the status says where, and it answers there.
    let ready = notes.expect("READY=1").await;
    let addr = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=Running; HTTP on "))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("{ready}"))
        .to_string();
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert!(health.status().is_success(), "{}", health.status());
    notes.expect("WATCHDOG=1").await;
    notes.expect("WATCHDOG=1").await;

    // A broken file: refused with its file and line; the server runs on.
    let broken = config(dir.path(), "\n[liveness]\nmissed_heartbeats = \"three\"\n");
    let line = broken.lines().position(|l| l.contains("three")).unwrap() + 1;
    std::fs::write(&path, &broken).unwrap();
    server.signal("HUP");
    let reloading = notes.expect("RELOADING=1").await;
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let refused = notes.expect("READY=1").await;
    assert!(refused.contains("reload refused"), "{refused}");
    server
        .wait_for_log(&format!("{}:{line}:", path.display()), DEADLINE)
        .await;
    assert!(server.running());
    notes.expect("WATCHDOG=1").await;

    // A valid change: named, and left for a restart.
    std::fs::write(
        &path,
        config(dir.path(), "\n[alerts]\nhold_down_gateway = \"45s\"\n"),
    )
    .unwrap();
    server.signal("HUP");
    notes.expect("RELOADING=1").await;
    let checked = notes.expect("READY=1").await;
    assert!(
        checked.contains("alerts changed in the file, applied at the next restart"),
        "{checked}"
    );
    assert!(reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap()
        .status()
        .is_success());

    // systemctl stop.
    server.signal("TERM");
    notes.expect("STOPPING=1").await;
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}
