//! A headless Chromium for the benchmarks, driven by Debian's `chromedriver` over the W3C
//! WebDriver protocol, with Chromium's DevTools protocol (CDP) through ChromeDriver's
//! `goog/cdp/execute` for what WebDriver does not say: scripts run before a page's own,
//! the page's performance metrics, a forced garbage collection. The browser's processes
//! are found in `/proc` under the driver, so their memory can be read.
//!
//! The server's console tests have their own driver (`server/tests/common/browser.rs`):
//! they click and type and panic where a test should fail; a benchmark needs answers and
//! errors it can report, and the processes behind the page.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::bench::{process_sample, Running};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    driver: Running,
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts ChromeDriver on a free port and a headless Chromium session in a fresh
    /// profile, its window `width` × `height`.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Browser> {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            anyhow::ensure!(
                std::path::Path::new(bin).exists(),
                "{bin} not found: install Debian's chromium and chromium-driver"
            );
        }
        // ChromeDriver asked for port 0 now and then gives up: start it again, a few times.
        let mut said = Vec::new();
        let mut found = None;
        for _ in 0..5 {
            let mut child = Command::new(CHROMEDRIVER)
                .arg("--port=0")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("starting chromedriver")?;
            let stdout = child.stdout.take().context("chromedriver's output")?;
            let driver = Running(child);
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
            .await?;
            said = lines;
            if let Some(port) = port {
                found = Some((driver, port));
                break;
            }
        }
        let Some((driver, port)) = found else {
            bail!("chromedriver names no port; it said {said:?}");
        };
        let profile = tempfile::tempdir()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run",
                        // A wall left alone for an hour is not a background tab.
                        "--disable-background-timer-throttling",
                        "--disable-renderer-backgrounding",
                        format!("--window-size={width},{height}"),
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                },
            }}}))
            .send()
            .await
            .context("chromedriver answers")?
            .json()
            .await?;
        let session = answer["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no browser session: {answer}"))?
            .to_string();
        Ok(Browser {
            driver,
            base: format!("{base}/session/{session}"),
            http,
            _profile: profile,
        })
    }

    /// A WebDriver command's value.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let answer: Value = req
            .send()
            .await
            .with_context(|| format!("WebDriver {path}"))?
            .json()
            .await?;
        if let Some(err) = answer["value"]["error"].as_str() {
            bail!("WebDriver {path}: {err}: {}", answer["value"]["message"]);
        }
        Ok(answer["value"].clone())
    }

    /// Loads `url` and waits for its `load` event, as the address bar does.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn eval(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Runs `script` (a function body that calls `arguments[arguments.length - 1]` with
    /// its answer) in the page and waits for the answer.
    pub async fn eval_async(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// A command of Chromium's DevTools protocol on the page, and its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await
    }

    /// The page's `Performance.getMetrics` by name (`JSHeapUsedSize`, `Nodes`, …).
    pub async fn metrics(&self) -> anyhow::Result<std::collections::HashMap<String, f64>> {
        let v = self.cdp("Performance.getMetrics", json!({})).await?;
        Ok(v["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m["name"].as_str()?.to_string(), m["value"].as_f64()?)))
            .collect())
    }

    /// The renderer processes of the browser's pages (Chromium's `--type=renderer` under
    /// this driver, not the one of its own user interface, `--top-chrome-webui`, which a
    /// headless Chromium starts too), by pid.
    pub fn renderers(&self) -> Vec<u32> {
        descendants(self.driver.pid())
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| {
                        let c = String::from_utf8_lossy(&c);
                        c.contains("--type=renderer")
                            && !c.contains("--top-chrome-webui")
                            && !c.contains("--extension-process")
                    })
                    .unwrap_or(false)
            })
            .collect()
    }

    /// The resident memory of the pages' renderer processes together, kB.
    pub fn renderer_rss_kb(&self) -> u64 {
        self.renderers()
            .into_iter()
            .filter_map(process_sample)
            .map(|s| s.rss_kb)
            .sum()
    }

    /// The proportional share (PSS, from `/proc/PID/smaps_rollup`) of the pages' renderer
    /// processes together, kB: their resident memory with each page shared with other
    /// processes (Chromium's code, fonts) counted in part. What the page costs the machine.
    pub fn renderer_pss_kb(&self) -> u64 {
        self.renderers()
            .into_iter()
            .filter_map(|pid| {
                let roll = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
                roll.lines()
                    .find_map(|l| l.strip_prefix("Pss:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum()
    }

    /// The resident memory of every process of the browser together (the driver not
    /// counted), kB.
    pub fn browser_rss_kb(&self) -> u64 {
        descendants(self.driver.pid())
            .into_iter()
            .filter_map(process_sample)
            .map(|s| s.rss_kb)
            .sum()
    }
}

impl Drop for Browser {
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

/// Every process below `root` in the process tree (not `root` itself).
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command name's last ')': the state, then the parent's pid.
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}
