//! The one-command demo, run as a user runs it: the real binary, real agents, the
//! embedded broker; it must show live coverage and stop cleanly on Ctrl-C (SIGINT).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_demo_shows_live_coverage_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_campuswatch-server"))
        .args([
            "demo",
            "--campuses",
            "30",
            "--http",
            "127.0.0.1:0",
            "--mqtt",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let api = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo prints where the API listens");
        if let Some(url) = line.trim().strip_prefix("API:") {
            break url.trim().to_string();
        }
    };
    assert!(api.ends_with("/api/v1/coverage"), "{api}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let coverage = rt.block_on(async {
        loop {
            if let Ok(r) = reqwest::get(&api).await {
                let v: serde_json::Value = r.json().await.unwrap();
                if v["reporting"].as_u64().unwrap_or(0) >= 25 {
                    break v;
                }
            }
            assert!(Instant::now() < deadline, "campuses did not come online");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert_eq!(coverage["registered"], 30);
    // Inner Mongolia, its cities below it.
    let all = coverage["children"].as_array().unwrap();
    assert_eq!(all[0]["code"], "150000");

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not stop within 20 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit:?}");
}
