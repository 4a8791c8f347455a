//! The one-command demo, run as a user runs it: the real binary, real agents, the
//! embedded broker, simulated GB/T 28181 NVRs; it must show live coverage with the
//! platform's view beside the agents' (and where they disagree), and stop cleanly on
//! Ctrl-C (SIGINT).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_demo_shows_live_coverage_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Demo(
        Command::new(env!("CARGO_BIN_EXE_campuswatch-server"))
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
            .expect("demo starts"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The API's address, the demo users' names and passwords, where devices register.
    let (mut api, mut credentials, mut sip) = (None, None, None);
    while api.is_none() || credentials.is_none() || sip.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo prints where the API listens and how to sign in");
        if let Some(url) = line.trim().strip_prefix("API:") {
            api = Some(url.trim().to_string());
        }
        if let Some(rest) = line.trim().strip_prefix("Sign in:") {
            let (name, rest) = rest.trim().split_once(" / ").expect("name / password");
            let password = rest.split_whitespace().next().unwrap();
            credentials = Some((name.to_string(), password.to_string()));
        }
        if let Some(rest) = line.trim().strip_prefix("SIP:") {
            sip = rest.split_whitespace().next().map(str::to_string);
        }
    }
    let sip: std::net::SocketAddr = sip.unwrap().parse().expect("the SIP address");
    assert!(sip.ip().is_loopback() && sip.port() != 0, "{sip}");
    let credentials = credentials.unwrap();
    let api = api.unwrap();
    assert!(api.ends_with("/api/v1/coverage"), "{api}");
    let base = api.trim_end_matches("/api/v1/coverage").to_string();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let coverage = rt.block_on(async {
        // Sign-in is on in the demo: nothing without it, everything with it.
        assert_eq!(http.get(&api).send().await.unwrap().status(), 401);
        let answer = http
            .post(format!("{base}/api/v1/session"))
            .json(&serde_json::json!({"name": credentials.0, "password": credentials.1}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "the printed password signs in");
        let cookie = answer.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        let coverage = loop {
            if let Ok(r) = http.get(&api).header("cookie", &cookie).send().await {
                let v: serde_json::Value = r.json().await.unwrap();
                if v["reporting"].as_u64().unwrap_or(0) >= 25 {
                    break v;
                }
            }
            assert!(Instant::now() < deadline, "campuses did not come online");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // The platform's view: campuses with NVRs, their catalogs answered, and the
        // campuses where the two views disagree.
        let get = |path: String| {
            let request = http.get(path).header("cookie", &cookie).send();
            async move {
                request
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let views = get(api.clone()).await["video_views"].clone();
            let disagreements = get(format!("{base}/api/v1/coverage/disagreements")).await;
            let listed = views["platform_campuses"].as_u64().unwrap_or(0);
            let networked = views["platform_networked"].as_u64().unwrap_or(0);
            let disagreeing = disagreements["campuses"].as_array().map_or(0, Vec::len);
            // The NVR no campus lists (it starts last), for review.
            let devices = get(format!("{base}/api/v1/gb28181/devices")).await;
            let unlisted = devices.to_string().contains("900001");
            if listed > 0 && networked > 0 && disagreeing > 0 && unlisted {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no platform figures, disagreements or unlisted device: {views} {disagreements} {devices}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        coverage
    });
    assert_eq!(coverage["registered"], 30);
    // Inner Mongolia, its cities below it.
    let all = coverage["children"].as_array().unwrap();
    assert_eq!(all[0]["code"], "150000");

    let status = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.0.kill();
            panic!("the demo did not stop within 20 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit:?}");
}

/// The demo process, killed if the test fails before stopping it.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
