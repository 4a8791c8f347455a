//! The `campuswatch-server` binary as systemd runs it: a notification socket the test
//! binds stands in for systemd (`NOTIFY_SOCKET`, `WATCHDOG_USEC`), signals stand in for
//! `systemctl reload` and `systemctl stop`.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixDatagram;

const DEADLINE: Duration = Duration::from_secs(30);

/// systemd's side of the notification socket.
struct Notifications {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl Notifications {
    /// The next datagram with a line `line`; others are kept in `seen` and skipped.
    async fn expect(&mut self, line: &str) -> String {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = tokio::time::timeout_at(deadline, self.socket.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {line} from the server; got {:#?}", self.seen))
                .unwrap();
            let datagram = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(datagram.clone());
            if datagram.lines().any(|l| l == line) {
                return datagram;
            }
        }
    }
}

struct Server {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn wait_for_log(&self, text: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !self.log.lock().unwrap().iter().any(|l| l.contains(text)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {text:?} in the log:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let mut notes = Notifications {
        socket: UnixDatagram::bind(&socket_path).unwrap(),
        seen: Vec::new(),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_campuswatch-server"))
        .args(["run", "--config"])
        .arg(&path)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            lines.lock().unwrap().push(line);
        }
    });
    let mut server = Server { child, log };

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
        .wait_for_log(&format!("{}:{line}:", path.display()))
        .await;
    assert!(server.child.try_wait().unwrap().is_none());
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
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}
