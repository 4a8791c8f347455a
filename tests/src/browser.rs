//! A headless Chromium for the benchmarks, driven by Debian's `chromedriver` over the W3C
//! WebDriver protocol, with Chromium's DevTools protocol (CDP) through ChromeDriver's
//! `goog/cdp/execute` for what WebDriver does not say: scripts run before a page's own,
//! the page's performance metrics, a forced garbage collection. The browser's processes
//! are found in `/proc` under the driver, so their memory can be read.
//!
//! The session itself is the testkit's (`campuswatch_testkit::webdriver`), shared with the
//! server's console tests (`server/tests/common/browser.rs`): they click and type and
//! panic where a test should fail; a benchmark needs answers and errors it can report,
//! and the processes behind the page.

use campuswatch_testkit::webdriver::Session;
use serde_json::{json, Value};

use crate::bench::process_sample;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    session: Session,
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
        let args = [
            // A wall left alone for an hour is not a background tab.
            "--disable-background-timer-throttling".to_string(),
            "--disable-renderer-backgrounding".to_string(),
            format!("--window-size={width},{height}"),
        ];
        let session = Session::start(CHROMIUM, CHROMEDRIVER, &args)
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(Browser { session })
    }

    /// A WebDriver command's value.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.session
            .request(method, path, body)
            .await
            .map_err(|(err, message)| anyhow::anyhow!("WebDriver {path}: {err}: {message}"))
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
        descendants(self.session.driver_pid())
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
        descendants(self.session.driver_pid())
            .into_iter()
            .filter_map(process_sample)
            .map(|s| s.rss_kb)
            .sum()
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
