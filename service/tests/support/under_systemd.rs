//! Running a campuswatch binary as systemd would, for the agent's and the server's
//! service tests (each includes this file with `#[path]`): a notification socket the test
//! binds stands in for systemd, and the process's standard error is collected line by
//! line.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UnixDatagram;

/// systemd's side of the notification socket.
pub struct Notifications {
    socket: UnixDatagram,
    /// Every datagram received so far, in order.
    seen: Vec<String>,
    /// How long `expect` waits.
    patience: Duration,
}

impl Notifications {
    pub fn bind(path: &Path, patience: Duration) -> Self {
        Self {
            socket: UnixDatagram::bind(path).unwrap(),
            seen: Vec::new(),
            patience,
        }
    }

    /// The next datagram with a line `line`; others are kept in `seen` and skipped.
    pub async fn expect(&mut self, line: &str) -> String {
        let deadline = tokio::time::Instant::now() + self.patience;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = tokio::time::timeout_at(deadline, self.socket.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {line} from the process; got {:#?}", self.seen))
                .unwrap();
            let datagram = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(datagram.clone());
            if datagram.lines().any(|l| l == line) {
                return datagram;
            }
        }
    }
}

/// The process, started with `run --config CONFIG` under the notification socket (the
/// watchdog asking for a ping every half second), killed when dropped.
pub struct Supervised {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Supervised {
    pub fn start(program: &str, config: &Path, notify_socket: &Path) -> Supervised {
        let mut child = Command::new(program)
            .args(["run", "--config"])
            .arg(config)
            .env("NOTIFY_SOCKET", notify_socket)
            // Pings every half second.
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
        Supervised { child, log }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to end (blocking: call it from a blocking task).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// Everything it has written to standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until a line of its log contains `text`, or panics after `patience`.
    pub async fn wait_for_log(&self, text: &str, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        while !self.log.lock().unwrap().iter().any(|l| l.contains(text)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {text:?} in the log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
