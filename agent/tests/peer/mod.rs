//! Real peers run as child processes (a reference alarm receiver, an RTSP camera): each
//! binds port 0, prints `PORT <n>`, and is killed when the test drops it.
//!
//! A peer whose interpreter is not available is skipped with a message on a developer's
//! machine, and fails the test in CI (`CI` set), so CI never passes without its peers.

#![allow(dead_code)]

pub mod sia;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The path of a peer script in `tests/peers/`.
pub fn script(name: &str) -> String {
    format!("{}/../tests/peers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A running peer process.
pub struct Peer {
    child: Child,
    pub port: u16,
}

impl Peer {
    /// Starts `program args…` and waits for the `PORT <n>` line it prints.
    pub fn start<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(program: &str, args: &[S]) -> Peer {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the peer {program} {args:?}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let port = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("the peer {args:?} exited before printing its port"))
                .expect("readable output");
            if let Some(p) = line.strip_prefix("PORT ") {
                break p.trim().parse().expect("a port number");
            }
        };
        // Keep reading so the peer never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Peer { child, port }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Pauses the peer (SIGSTOP): its sockets stay open but nothing answers.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} {} failed", self.pid());
    }

    /// Kills the peer and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SIGKILL ends a frozen process too.
        self.kill();
    }
}

/// A peer's interpreter: `env_var` if set, else `fallback` if `works` says it can run the
/// peer. `None` (with a message) on a developer's machine without it; a panic in CI.
pub fn interpreter(
    env_var: &str,
    fallback: Option<&str>,
    works: impl Fn(&str) -> bool,
    what: &str,
) -> Option<String> {
    if let Ok(p) = std::env::var(env_var) {
        return Some(p);
    }
    if let Some(f) = fallback.filter(|f| works(f)) {
        return Some(f.to_string());
    }
    if std::env::var_os("CI").is_some() {
        panic!("{env_var} is not set and no fallback works: .ci/run must install {what}");
    }
    eprintln!("{env_var} not set: tests against {what} not run (see .ci/run)");
    None
}

/// The Python with GStreamer's RTSP server bindings (`tests/peers/rtsp_camera.py`):
/// `CAMPUSWATCH_TEST_RTSP_PYTHON`, else the system Python if it has them.
pub fn rtsp_python() -> Option<String> {
    interpreter(
        "CAMPUSWATCH_TEST_RTSP_PYTHON",
        Some("/usr/bin/python3"),
        |py| {
            std::process::Command::new(py)
                .args([
                    "-c",
                    "import gi; gi.require_version('GstRtspServer', '1.0'); \
                     from gi.repository import GstRtspServer",
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        },
        "the GStreamer RTSP camera (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer plugins)",
    )
}
