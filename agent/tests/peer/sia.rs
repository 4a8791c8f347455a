//! The pysiaalarm reference peers (`tests/peers/dc09_*.py`), run with the Python named by
//! `CAMPUSWATCH_TEST_SIA_PYTHON` (`.ci/run` installs pysiaalarm in a venv and sets it).
//! Without that variable a test says so and passes locally; in CI (`CI` set) it fails, so
//! a missing peer is never silently skipped there.

#![allow(dead_code)]

use std::process::Command;

pub use super::script;

/// The Python with pysiaalarm, or `None` (with a note) when it is not set up here.
pub fn python() -> Option<String> {
    super::interpreter(
        "CAMPUSWATCH_TEST_SIA_PYTHON",
        None,
        |_| false,
        "the DC-09 reference peers (pysiaalarm)",
    )
}

/// pysiaalarm takes a key as 16, 24 or 32 characters and uses their bytes; the agent
/// takes the key's bytes in hex.
pub fn key_hex(text_key: &str) -> String {
    text_key.bytes().map(|b| format!("{b:02X}")).collect()
}

/// Runs the simulated panel once against `addr` and returns its `ANSWER …` line.
pub fn panel(
    python: &str,
    addr: std::net::SocketAddr,
    account: &str,
    text_key: &str,
    clock_skew_s: i64,
) -> String {
    let out = Command::new(python)
        .arg(script("dc09_panel.py"))
        .args([
            addr.ip().to_string(),
            addr.port().to_string(),
            account.to_string(),
            text_key.to_string(),
            clock_skew_s.to_string(),
        ])
        .output()
        .expect("the simulated panel runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the simulated panel failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().to_string()
}
