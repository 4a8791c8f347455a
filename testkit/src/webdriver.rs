//! A headless Chromium session over the W3C WebDriver protocol, by Debian's
//! `chromedriver`: the driver on a free port (started again when it names none, as it
//! now and then does for port 0), the browser in a fresh profile. The server's console
//! tests and the console benchmark each drive it in their own manner (panicking where a
//! test should fail; answering errors a benchmark reports).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// A browser session and the driver behind it; both end when it is dropped.
pub struct Session {
    driver: Driver,
    /// `http://127.0.0.1:{port}/session/{id}`.
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Session {
    /// Starts `chromedriver` and a headless `chromium` session with `args` besides the
    /// usual headless ones; why not, in words.
    pub async fn start(
        chromium: &str,
        chromedriver: &str,
        args: &[String],
    ) -> Result<Session, String> {
        let mut said = Vec::new();
        let mut found = None;
        for _ in 0..5 {
            let mut child = Command::new(chromedriver)
                .arg("--port=0")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("starting {chromedriver}: {e}"))?;
            let stdout = child.stdout.take().ok_or("chromedriver's output")?;
            let driver = Driver(child);
            // "ChromeDriver was started successfully on port 34473." (an earlier line says
            // "Starting ChromeDriver … on port 0": the port asked for, not the one taken).
            let (port, lines) = tokio::task::spawn_blocking(move || {
                let mut lines = Vec::new();
                let port = BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .inspect(|l| lines.push(l.clone()))
                    .find_map(|l| {
                        l.split_once("started successfully on port ")
                            .and_then(|(_, p)| p.trim_end_matches('.').trim().parse::<u16>().ok())
                    });
                (port, lines)
            })
            .await
            .map_err(|e| e.to_string())?;
            said = lines;
            if let Some(port) = port {
                found = Some((driver, port));
                break;
            }
        }
        let Some((driver, port)) = found else {
            return Err(format!("chromedriver names no port; it said {said:?}"));
        };
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        let base = format!("http://127.0.0.1:{port}");
        let mut all: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ]
        .map(String::from)
        .to_vec();
        all.extend_from_slice(args);
        all.push(format!("--user-data-dir={}", profile.path().display()));
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": chromium, "args": all },
            }}}))
            .send()
            .await
            .map_err(|e| format!("chromedriver does not answer: {e}"))?
            .json()
            .await
            .map_err(|e| format!("chromedriver's answer: {e}"))?;
        let session = answer["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no browser session: {answer}"))?
            .to_string();
        Ok(Session {
            driver,
            base: format!("{base}/session/{session}"),
            http,
            _profile: profile,
        })
    }

    /// The driver's process id (the browser's processes are its descendants).
    pub fn driver_pid(&self) -> u32 {
        self.driver.0.id()
    }

    /// A WebDriver command: its value, or its error's name and message (`no answer` when
    /// the driver did not answer).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (String, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let answer: Value = match req.send().await {
            Ok(r) => r
                .json()
                .await
                .map_err(|e| ("no answer".into(), json!(e.to_string())))?,
            Err(e) => return Err(("no answer".into(), json!(e.to_string()))),
        };
        match answer["value"]["error"].as_str() {
            Some(err) => Err((err.to_string(), answer["value"]["message"].clone())),
            None => Ok(answer["value"].clone()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // End the browser session (Chromium with it), then the driver when it is dropped.
        let url = self.base.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async { reqwest::Client::new().delete(url).send().await.ok() })
        })
        .join();
    }
}

/// The driver's process, killed and reaped when dropped (also when starting the session
/// fails).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
