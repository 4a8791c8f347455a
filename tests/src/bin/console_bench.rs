//! Console benchmark: the web console in a real headless Chromium against a server
//! watching the load benchmark's registry (10,000 campuses in 20 counties of Inner
//! Mongolia), signed in as an operator of the whole province. Measures
//!
//! - the overview (`/console/`) and the alarm centre (`/console/alarms`, 2,000 open
//!   alerts): the time from navigation start until the page is *usable*, over many loads;
//! - the wallboard (`/console/wall`): the browser's memory (JS heap and DOM from
//!   Chromium's `Performance.getMetrics`, the resident memory of the page's renderer
//!   process and of the whole browser from `/proc`) for `--seconds`, while devices drop
//!   for a few seconds and come back, campus after campus (alarm links opening and
//!   resolving critical alerts, cameras changing state).
//!
//! A page is *usable* when what it is for is on the screen: for the overview, the worst
//! regions, the worst campuses and the map's county tiles are in the document and a frame
//! has been drawn with them; for the alarm centre, the severity counts and the first page
//! of campus groups; for the wallboard, its worst regions, newest critical alerts and map.
//! A script injected before the console's own (CDP `Page.addScriptToEvaluateOnNewDocument`)
//! watches the document and notes `performance.now()` (milliseconds since navigation
//! start) in the first task after the first animation frame in which all of those exist.
//!
//! Every figure is measured twice in the same run, on a second server with a 300-campus
//! registry (the same counties, proportionally as many alerts), so the ratio cancels the
//! shared machine's noise. Each server runs in this process with its embedded broker;
//! each campus's gateway is played over MQTT (one connection per county), its births,
//! heartbeats at the agent's default interval and events as the agent sends them. Not a
//! test: it prints figures (docs/BENCHMARKS.md).
//!
//! cargo build --release -p campuswatch-tests --bin console-bench
//! RUST_LOG=error ./target/release/console-bench --seconds 3600

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use campuswatch_protocol::{
    CampusId, DeathReason, DeviceReport, DeviceState, GatewayState, Message, RegionCode,
};
use campuswatch_server::auth::{hash_password, Role};
use campuswatch_server::config::{AuthConfig, EmbeddedConfig, ServerConfig};
use campuswatch_server::monitor::AlertState;
use campuswatch_server::ServerHandle;
use campuswatch_testkit::mqtt::{client, send};
use campuswatch_tests::bench::{
    bench_counties, lock, percentile, progress, registry, start_progress,
};
use campuswatch_tests::browser::Browser;
use campuswatch_tests::{birth, death, event, heartbeat, inventory, start_server};
use clap::Parser;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rumqttc::AsyncClient;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "The web console in headless Chromium at 10,000 campuses")]
struct Args {
    /// Registered campuses of the measured server.
    #[arg(long, default_value_t = 10_000)]
    campuses: usize,
    /// Registered campuses of the baseline server, measured in the same run.
    #[arg(long, default_value_t = 300)]
    baseline_campuses: usize,
    /// Counties the campuses are spread over (the load benchmark's: from Ordos on).
    #[arg(long, default_value_t = 20)]
    counties: usize,
    /// Open alerts on the measured server (the baseline gets as many per campus).
    #[arg(long, default_value_t = 2000)]
    alerts: usize,
    /// Measured loads of each page, after one that warms the browser's cache.
    #[arg(long, default_value_t = 20)]
    loads: usize,
    /// How long the wallboard is watched, in seconds.
    #[arg(long, default_value_t = 3600)]
    seconds: u64,
    /// How often the wallboard's memory is sampled, in seconds.
    #[arg(long, default_value_t = 10)]
    sample_every: u64,
    /// Devices down at any one time while the wallboard is watched, each on a campus of
    /// its own, by turns an alarm link and a camera: one drops every `--down-for` /
    /// `--down` and comes back up `--down-for` later (2 × down / down-for transitions a
    /// second), walking through every campus that is up, so that each alarm link that
    /// drops is a new critical alert, not one link flapping.
    #[arg(long, default_value_t = 20)]
    down: usize,
    /// How long each of them stays down.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    down_for: Duration,
    /// Heartbeat interval of every gateway (the agent's default).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
    /// What to measure: any of overview, alarms, wall (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "overview,alarms,wall")]
    only: Vec<String>,
}

/// Alarm links and cameras each campus expects and its gateway reports.
const ALARMS: usize = 2;
const DEVICES: usize = 10;
/// The province-wide operator every measurement signs in as.
const USER: &str = "province";
const PASSWORD: &str = "province password";
const PROVINCE: &str = "150000";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    start_progress();
    for part in &args.only {
        anyhow::ensure!(
            ["overview", "alarms", "wall"].contains(&part.as_str()),
            "--only {part}: use overview, alarms or wall"
        );
    }
    let counties = bench_counties(args.counties)?;
    let baseline_alerts = args.alerts * args.baseline_campuses / args.campuses.max(1);
    let (baseline, measured) = tokio::try_join!(
        Site::start(
            "baseline",
            &counties,
            args.baseline_campuses,
            baseline_alerts,
            &args
        ),
        Site::start("measured", &counties, args.campuses, args.alerts, &args),
    )?;
    let sites = [&baseline, &measured];
    println!(
        "registries: measured {} campuses, {} open alerts; baseline {} campuses, {} open alerts; {} counties; {} devices a campus",
        measured.campuses, measured.open_alerts(), baseline.campuses, baseline.open_alerts(), counties.len(), DEVICES
    );

    for (part, path, what) in [
        ("overview", "/console/", "overview"),
        ("alarms", "/console/alarms", "alarm centre"),
    ] {
        if !args.only.iter().any(|p| p == part) {
            continue;
        }
        let browser = Browser::start(1440, 900).await?;
        watch_usable(&browser).await?;
        let mut results = Vec::new();
        for site in sites {
            site.sign_in(&browser).await?;
            progress(format!(
                "{what}: {} loads at {} campuses",
                args.loads, site.campuses
            ));
            results.push(measure_loads(&browser, &site.url(path), args.loads).await?);
        }
        report_loads(what, &sites, &results);
    }

    if args.only.iter().any(|p| p == "wall") {
        let (b, m) = tokio::try_join!(watch_wall(&baseline, &args), watch_wall(&measured, &args))?;
        report_wall(&[(&baseline, b), (&measured, m)]);
    }
    baseline.stop().await;
    measured.stop().await;
    Ok(())
}

// ---- a server and its campuses ----------------------------------------------------------

/// One campus's gateway as played here.
struct Gateway {
    campus: CampusId,
    region: RegionCode,
    /// Its county's MQTT connection.
    link: usize,
    epoch: u64,
    states: Vec<DeviceState>,
    last_event_id: u64,
    /// Heartbeating now (it sent a birth and no death).
    online: bool,
}

impl Gateway {
    /// Its birth: every device in its state, heartbeats every `interval`.
    fn birth(&self, interval: Duration) -> Message {
        let mut devices = INVENTORY.get_or_init(|| inventory(ALARMS, DEVICES)).clone();
        for (d, s) in devices.iter_mut().zip(&self.states) {
            d.state = *s;
            if *s == DeviceState::Down {
                d.cause = Some("connection refused".into());
            }
        }
        let mut b = birth(&self.campus, self.region, self.epoch, devices);
        if let Message::Birth(b) = &mut b {
            b.agent_version = env!("CARGO_PKG_VERSION").into();
            b.config_digest = "console-bench".into();
            b.heartbeat_interval_ms = interval.as_millis() as u64;
            b.last_event_id = self.last_event_id;
        }
        b
    }

    /// The event of device `d` going to `to`, with the next event id (`None`: it is there).
    fn change(&mut self, d: usize, to: DeviceState) -> Option<Message> {
        let from = *self.states.get(d)?;
        if from == to || !self.online {
            return None;
        }
        self.states[d] = to;
        self.last_event_id += 1;
        let device = &INVENTORY.get_or_init(|| inventory(ALARMS, DEVICES))[d];
        Some(event(
            &self.campus,
            self.region,
            self.epoch,
            self.last_event_id,
            device.id.as_str(),
            device.kind,
            (from, to),
        ))
    }
}

static INVENTORY: std::sync::OnceLock<Vec<DeviceReport>> = std::sync::OnceLock::new();

/// A server in this process with its embedded broker, its registry, its users and its
/// gateways.
struct Site {
    name: &'static str,
    campuses: usize,
    server: ServerHandle,
    links: Vec<AsyncClient>,
    gateways: Arc<Mutex<Vec<Gateway>>>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Site {
    /// Starts the server, imports the registry, adds the user, brings the gateways
    /// online in their states, and opens alarm links until `alerts` alerts are open.
    ///
    /// The campuses' states, drawn once from a fixed seed: 3 % never reported; 1 %
    /// reported, then their gateway went offline; 5 % with two of their eight cameras
    /// down (out of video coverage: below 80 %); the rest up. Then alarm links drop on
    /// campuses that are up, a few at a time, until the alerts open reach `alerts`.
    async fn start(
        name: &'static str,
        counties: &[RegionCode],
        campuses: usize,
        alerts: usize,
        args: &Args,
    ) -> anyhow::Result<Site> {
        let dir = tempfile::Builder::new()
            .prefix("console-bench-")
            .tempdir()?;
        let defaults = ServerConfig::default();
        let mut cfg = ServerConfig {
            id: format!("console-bench-{name}"),
            data_dir: dir.path().to_path_buf(),
            auth: AuthConfig {
                enabled: true,
                secure_cookies: false,
                ..AuthConfig::default()
            },
            ..defaults.clone()
        };
        cfg.mqtt.url = String::new();
        cfg.mqtt.embedded = EmbeddedConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            ..defaults.mqtt.embedded.clone()
        };
        let server = start_server(cfg).await;
        let entries = registry(counties, campuses, ALARMS as u32, (DEVICES - ALARMS) as u32)?;
        server
            .import_registry(entries.clone(), true)
            .await
            .map_err(|e| anyhow::anyhow!("registry import: {e}"))?;
        let hash = hash_password(PASSWORD).map_err(|e| anyhow::anyhow!(e))?;
        server
            .store
            .put_user(
                USER,
                &hash,
                Role::Operator,
                Some(RegionCode::parse(PROVINCE)?),
                chrono::Utc::now(),
            )
            .await?;
        let broker: std::net::SocketAddr = server
            .broker_url()
            .trim_start_matches("mqtt://")
            .parse()
            .context("the embedded broker's address")?;
        let links: Vec<AsyncClient> = counties
            .iter()
            .map(|c| client(broker, &format!("console-bench-{name}-{c}"), 1000))
            .collect();

        // Every campus's state, from a fixed seed.
        let mut rng = StdRng::seed_from_u64(14);
        let epoch = chrono::Utc::now().timestamp() as u64;
        let mut gateways = Vec::with_capacity(entries.len());
        let mut offline = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let link = counties.iter().position(|c| *c == e.region).unwrap_or(0);
            let draw: f64 = rng.random();
            let mut g = Gateway {
                campus: e.campus.clone(),
                region: e.region,
                link,
                epoch,
                states: vec![DeviceState::Up; DEVICES],
                last_event_id: 0,
                online: draw >= 0.03,
            };
            if (0.03..0.04).contains(&draw) {
                offline.push(i);
            } else if rng.random::<f64>() < 0.05 {
                g.states[DEVICES - 1] = DeviceState::Down;
                g.states[DEVICES - 2] = DeviceState::Down;
            }
            gateways.push(g);
        }
        let reporting = gateways.iter().filter(|g| g.online).count();
        let site = Site {
            name,
            campuses,
            server,
            links,
            gateways: Arc::new(Mutex::new(gateways)),
            stop: CancellationToken::new(),
            _dir: dir,
        };
        site.births(args.heartbeat_interval).await?;
        for &i in &offline {
            let (msg, link) = {
                let g = &mut lock(&site.gateways)[i];
                g.online = false;
                (
                    death(&g.campus, g.region, g.epoch, DeathReason::ConnectionLost),
                    g.link,
                )
            };
            send(&site.links[link], &msg).await?;
        }
        site.wait_for("the offline gateways", Duration::from_secs(60), || {
            site.gateway_counts()
                .get("offline")
                .copied()
                .unwrap_or_default() as usize
                >= offline.len()
        })
        .await?;
        site.heartbeat(args.heartbeat_interval);
        progress(format!(
            "{name}: {campuses} campuses, {} online, {} offline; waiting out the hold-downs (camera 60 s)",
            reporting - offline.len(),
            offline.len()
        ));
        tokio::time::sleep(defaults.alerts.hold_down_camera + Duration::from_secs(5)).await;

        // Alarm links drop until enough alerts are open.
        let mut order: Vec<usize> = {
            let gws = lock(&site.gateways);
            (0..gws.len())
                .filter(|&i| gws[i].online && gws[i].states.iter().all(|s| *s == DeviceState::Up))
                .collect()
        };
        order.shuffle(&mut rng);
        let mut next = order.into_iter();
        while site.open_alerts() < alerts {
            // A campus's alarm dropping opens its link's alert and its alarm networking's.
            let batch = (alerts - site.open_alerts()).div_ceil(2).min(200);
            let before = site.open_alerts();
            for _ in 0..batch {
                let Some(i) = next.next() else {
                    anyhow::bail!("{name}: too few campuses for {alerts} open alerts");
                };
                let msg = lock(&site.gateways)[i].change(0, DeviceState::Down);
                let link = lock(&site.gateways)[i].link;
                if let Some(msg) = msg {
                    send(&site.links[link], &msg).await?;
                }
            }
            site.wait_for("the alarm links' alerts", Duration::from_secs(60), || {
                site.open_alerts() > before
            })
            .await?;
            // Let the batch settle before counting again.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        progress(format!(
            "{name}: {} open alerts; gateways {:?}",
            site.open_alerts(),
            site.gateway_counts()
        ));
        Ok(site)
    }

    /// Births of every gateway that reports, 500 a second, sent again to those the server
    /// does not hold online after a while (the embedded broker may drop a connection that
    /// publishes faster than it routes), until every one is.
    async fn births(&self, heartbeat_interval: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let due: Vec<(Message, usize)> = {
                let m = self
                    .server
                    .monitor
                    .read()
                    .unwrap_or_else(|p| p.into_inner());
                lock(&self.gateways)
                    .iter()
                    .filter(|g| g.online)
                    .filter(|g| {
                        m.campus(g.campus.as_str()).is_none_or(|c| {
                            c.gateway.state != GatewayState::Online || c.gateway.epoch != g.epoch
                        })
                    })
                    .map(|g| (g.birth(heartbeat_interval), g.link))
                    .collect()
            };
            if due.is_empty() {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{}: {} gateways still not online after 10 minutes of births",
                self.name,
                due.len()
            );
            progress(format!("{}: {} births", self.name, due.len()));
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            for (msg, link) in &due {
                tick.tick().await;
                send(&self.links[*link], msg).await?;
            }
            // Until the server holds them all, or 5 s pass with none more coming online.
            let mut last = (self.online(), Instant::now());
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if self.all_online() {
                    return Ok(());
                }
                let online = self.online();
                if online != last.0 {
                    last = (online, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(5) {
                    break;
                }
            }
        }
    }

    /// Whether every gateway that reports is online at the server, in its session.
    fn all_online(&self) -> bool {
        let m = self
            .server
            .monitor
            .read()
            .unwrap_or_else(|p| p.into_inner());
        lock(&self.gateways).iter().filter(|g| g.online).all(|g| {
            m.campus(g.campus.as_str()).is_some_and(|c| {
                c.gateway.state == GatewayState::Online && c.gateway.epoch == g.epoch
            })
        })
    }

    fn online(&self) -> usize {
        self.gateway_counts()
            .get("online")
            .copied()
            .unwrap_or_default() as usize
    }

    fn gateway_counts(&self) -> BTreeMap<String, u64> {
        let m = self
            .server
            .monitor
            .read()
            .unwrap_or_else(|p| p.into_inner());
        m.gateway_counts()
            .into_iter()
            .map(|(s, n): (GatewayState, u64)| (s.as_str().to_string(), n))
            .collect()
    }

    fn open_alerts(&self) -> usize {
        let m = self
            .server
            .monitor
            .read()
            .unwrap_or_else(|p| p.into_inner());
        m.active_alerts()
            .filter(|a| a.state == AlertState::Open)
            .count()
    }

    async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while !done() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{}: {what} not within {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Heartbeats of every online gateway every `interval`, spread over it, with the
    /// digest of its devices' states, until the site stops.
    fn heartbeat(&self, interval: Duration) {
        for link in 0..self.links.len() {
            let (gateways, client, stop) = (
                self.gateways.clone(),
                self.links[link].clone(),
                self.stop.clone(),
            );
            tokio::spawn(async move {
                let mine: Vec<usize> = {
                    let gws = lock(&gateways);
                    (0..gws.len()).filter(|&i| gws[i].link == link).collect()
                };
                let gap = interval / mine.len().max(1) as u32;
                let mut seq = 0;
                let mut tick = tokio::time::interval(gap);
                loop {
                    seq += 1;
                    for &i in &mine {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tick.tick() => {}
                        }
                        let hb = {
                            let g = &lock(&gateways)[i];
                            if !g.online {
                                continue;
                            }
                            let states: String = g.states.iter().map(|s| s.code()).collect();
                            heartbeat(&g.campus, g.region, g.epoch, seq, &states, g.last_event_id)
                        };
                        let _ = send(&client, &hb).await;
                    }
                }
            });
        }
    }

    /// Devices drop and come back up as `--down` and `--down-for` say, until `stop`.
    fn flip(&self, down: usize, down_for: Duration, stop: CancellationToken) {
        let pool: Vec<usize> = {
            let gws = lock(&self.gateways);
            (0..gws.len())
                .filter(|&i| gws[i].online && gws[i].states.iter().all(|s| *s == DeviceState::Up))
                .collect()
        };
        let (gateways, links) = (self.gateways.clone(), self.links.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(down_for / down.max(1) as u32);
            let mut now_down = std::collections::VecDeque::new();
            for (n, &i) in pool.iter().cycle().enumerate() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let mut changes = Vec::new();
                {
                    let mut gws = lock(&gateways);
                    if now_down.len() >= down.max(1) {
                        if let Some((j, d)) = now_down.pop_front() {
                            let g: &mut Gateway = &mut gws[j];
                            changes.extend(g.change(d, DeviceState::Up).map(|m| (m, g.link)));
                        }
                    }
                    let d = if n % 2 == 0 { 1 } else { DEVICES - 1 };
                    let g = &mut gws[i];
                    if let Some(m) = g.change(d, DeviceState::Down) {
                        changes.push((m, g.link));
                        now_down.push_back((i, d));
                    }
                }
                for (msg, link) in changes {
                    let _ = send(&links[link], &msg).await;
                }
            }
        });
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.http_addr())
    }

    /// Signs the browser in on this server (its own origin, its own cookie).
    async fn sign_in(&self, browser: &Browser) -> anyhow::Result<()> {
        browser.goto(&self.url("/console/?live=off")).await?;
        let status = browser
            .eval_async(
                "const done = arguments[arguments.length - 1];
                 fetch('/api/v1/session', { method: 'POST', credentials: 'same-origin',
                   headers: { 'content-type': 'application/json' },
                   body: JSON.stringify({ name: arguments[0], password: arguments[1] }) })
                 .then(r => done(r.status), e => done(String(e)));",
                json!([USER, PASSWORD]),
            )
            .await?;
        anyhow::ensure!(
            status.as_u64().is_some_and(|s| s < 300),
            "{}: signing in answered {status}",
            self.name
        );
        Ok(())
    }

    async fn stop(&self) {
        self.stop.cancel();
    }
}

// ---- pages until usable -------------------------------------------------------------------

/// Installed before the console's own scripts on every page: notes in `window.__cwUsable`
/// when the page became usable (see the top of this file), with what the page loaded.
const USABLE: &str = r##"
(() => {
  const WANT = {
    overview: ["#worst-regions li[data-rank]", "#worst-campuses li[data-campus]", "#map rect.tile"],
    alarms: ["#alarm-counts", "#alarm-groups article.group"],
    wall: ["#wall-worst li", "#wall-alerts li", "#map rect.tile"],
  };
  const path = location.pathname.replace(/^\/console\/?/, "").split("/")[0];
  const want = WANT[path || "overview"];
  if (!want) return;
  let seen = false;
  const check = () => {
    if (seen || !want.every(s => document.querySelector(s))) return;
    seen = true;
    const inDom = performance.now();
    // The first task after the next frame: the frame with them has been drawn.
    requestAnimationFrame(() => setTimeout(() => {
      const nav = performance.getEntriesByType("navigation")[0] || {};
      window.__cwUsable = {
        usable: performance.now(), in_dom: inDom,
        dom_content_loaded: nav.domContentLoadedEventEnd || null,
        api: performance.getEntriesByType("resource")
          .filter(r => r.name.includes("/api/") || r.name.includes("/assets/"))
          .map(r => ({ name: new URL(r.name).pathname + new URL(r.name).search,
                       start: r.startTime, end: r.responseEnd, bytes: r.encodedBodySize || 0 })),
        nodes: document.getElementsByTagName("*").length,
      };
    }, 0));
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
})();
"##;

async fn watch_usable(browser: &Browser) -> anyhow::Result<()> {
    browser
        .cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": USABLE }),
        )
        .await
        .map(drop)
}

/// Waits for the page on show to note when it became usable.
async fn usable(browser: &Browser, within: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let v = browser
            .eval("return window.__cwUsable || null;", json!([]))
            .await?;
        if !v.is_null() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            let text = browser
                .eval("return document.body.innerText.slice(0, 500);", json!([]))
                .await?;
            anyhow::bail!("the page was not usable within {within:?}; it shows {text}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One page's loads: each a fresh navigation (the browser's cache warm from the first,
/// not counted).
struct Loads {
    /// The first load's, just after signing in (the page's scripts already cached by
    /// the sign-in page): not counted.
    first_ms: f64,
    usable_ms: Vec<f64>,
    dom_content_loaded_ms: Vec<f64>,
    nodes: f64,
    /// Per request of the page (path without the query's values), when it ended, ms
    /// since navigation start, one per load; and its body's bytes.
    requests: BTreeMap<String, (Vec<f64>, f64)>,
}

async fn measure_loads(browser: &Browser, url: &str, loads: usize) -> anyhow::Result<Loads> {
    let mut out = Loads {
        first_ms: f64::NAN,
        usable_ms: Vec::new(),
        dom_content_loaded_ms: Vec::new(),
        nodes: 0.0,
        requests: BTreeMap::new(),
    };
    for n in 0..=loads {
        browser.goto(url).await?;
        let v = usable(browser, Duration::from_secs(60)).await?;
        if n == 0 {
            out.first_ms = v["usable"].as_f64().unwrap_or(f64::NAN);
            continue;
        }
        out.usable_ms.push(v["usable"].as_f64().unwrap_or(f64::NAN));
        out.dom_content_loaded_ms
            .push(v["dom_content_loaded"].as_f64().unwrap_or(f64::NAN));
        out.nodes = v["nodes"].as_f64().unwrap_or_default();
        for r in v["api"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or_default();
            let key = name.split('?').next().unwrap_or(name).to_string()
                + &name
                    .split_once('?')
                    .map(|(_, q)| {
                        let keys: Vec<&str> = q
                            .split('&')
                            .map(|kv| kv.split('=').next().unwrap_or(kv))
                            .collect();
                        format!("?{}", keys.join("&"))
                    })
                    .unwrap_or_default();
            let e = out.requests.entry(key).or_default();
            e.0.push(r["end"].as_f64().unwrap_or(f64::NAN));
            e.1 = e.1.max(r["bytes"].as_f64().unwrap_or_default());
        }
    }
    for v in [&mut out.usable_ms, &mut out.dom_content_loaded_ms] {
        v.sort_by(f64::total_cmp);
    }
    Ok(out)
}

fn report_loads(what: &str, sites: &[&Site], results: &[Loads]) {
    println!();
    println!(
        "{what}: from navigation start until usable, ms ({} loads each)",
        results[0].usable_ms.len()
    );
    println!(
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>14} {:>11} {:>9}",
        "campuses", "p50", "p95", "max", "min", "DOM ready p50", "first load", "elements"
    );
    for (site, r) in sites.iter().zip(results) {
        println!(
            "{:>9} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>14.0} {:>11.0} {:>9.0}",
            site.campuses,
            percentile(&r.usable_ms, 0.5),
            percentile(&r.usable_ms, 0.95),
            percentile(&r.usable_ms, 1.0),
            percentile(&r.usable_ms, 0.0),
            percentile(&r.dom_content_loaded_ms, 0.5),
            r.first_ms,
            r.nodes
        );
    }
    if let [base, measured] = results {
        println!(
            "ratio to the baseline: p50 {:.2}, p95 {:.2}",
            percentile(&measured.usable_ms, 0.5) / percentile(&base.usable_ms, 0.5),
            percentile(&measured.usable_ms, 0.95) / percentile(&base.usable_ms, 0.95)
        );
        println!("requests of the measured page, median end (ms since navigation start) and size:");
        let mut rows: Vec<(&String, f64, f64)> = measured
            .requests
            .iter()
            .map(|(k, (ends, bytes))| {
                let mut e = ends.clone();
                e.sort_by(f64::total_cmp);
                (k, percentile(&e, 0.5), *bytes)
            })
            .collect();
        rows.sort_by(|a, b| a.1.total_cmp(&b.1));
        for (name, end, bytes) in rows {
            println!("  {end:>7.0} ms {:>10.1} kB  {name}", bytes / 1000.0);
        }
    }
}

// ---- the wallboard's memory ---------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Memory {
    heap_mb: f64,
    nodes: f64,
    listeners: f64,
    renderer_mb: f64,
    renderer_pss_mb: f64,
    browser_mb: f64,
}

impl Memory {
    async fn sample(browser: &Browser) -> anyhow::Result<Memory> {
        let m = browser.metrics().await?;
        let get = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
        Ok(Memory {
            heap_mb: get("JSHeapUsedSize") / 1e6,
            nodes: get("Nodes"),
            listeners: get("JSEventListeners"),
            renderer_mb: browser.renderer_rss_kb() as f64 / 1024.0,
            renderer_pss_mb: browser.renderer_pss_kb() as f64 / 1024.0,
            browser_mb: browser.browser_rss_kb() as f64 / 1024.0,
        })
    }

    /// After a full garbage collection: what the page still holds.
    async fn settled(browser: &Browser) -> anyhow::Result<Memory> {
        browser
            .cdp("HeapProfiler.collectGarbage", json!({}))
            .await?;
        Self::sample(browser).await
    }

    fn max(self, o: Memory) -> Memory {
        Memory {
            heap_mb: self.heap_mb.max(o.heap_mb),
            nodes: self.nodes.max(o.nodes),
            listeners: self.listeners.max(o.listeners),
            renderer_mb: self.renderer_mb.max(o.renderer_mb),
            renderer_pss_mb: self.renderer_pss_mb.max(o.renderer_pss_mb),
            browser_mb: self.browser_mb.max(o.browser_mb),
        }
    }
}

struct WallRun {
    usable_ms: f64,
    start: Memory,
    max: Memory,
    end: Memory,
    transitions: u64,
}

/// Opens the wallboard, lets devices drop and come back, samples the browser's memory.
async fn watch_wall(site: &Site, args: &Args) -> anyhow::Result<WallRun> {
    let browser = Browser::start(1920, 1080).await?;
    watch_usable(&browser).await?;
    site.sign_in(&browser).await?;
    browser.cdp("Performance.enable", json!({})).await?;
    browser.goto(&site.url("/console/wall")).await?;
    let usable_ms = usable(&browser, Duration::from_secs(60)).await?["usable"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let flips = CancellationToken::new();
    site.flip(args.down, args.down_for, flips.clone());
    let events_before = lock(&site.gateways)
        .iter()
        .map(|g| g.last_event_id)
        .sum::<u64>();
    // The wall's first turn and reload, then the figures to compare with.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let start = Memory::settled(&browser).await?;
    let mut max = start;
    let began = Instant::now();
    let total = Duration::from_secs(args.seconds);
    let mut last_said = Instant::now();
    while began.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(args.sample_every).min(total - began.elapsed()))
            .await;
        let now = Memory::sample(&browser).await?;
        max = max.max(now);
        if last_said.elapsed() >= Duration::from_secs(300) {
            last_said = Instant::now();
            progress(format!(
                "wall at {} campuses, {:.0} s: JS heap {:.1} MB, {} DOM nodes, {} listeners, renderer {:.0} MB",
                site.campuses,
                began.elapsed().as_secs_f64(),
                now.heap_mb,
                now.nodes,
                now.listeners,
                now.renderer_mb
            ));
        }
    }
    flips.cancel();
    let end = Memory::settled(&browser).await?;
    let transitions = lock(&site.gateways)
        .iter()
        .map(|g| g.last_event_id)
        .sum::<u64>()
        - events_before;
    Ok(WallRun {
        usable_ms,
        start,
        max: max.max(end),
        end,
        transitions,
    })
}

fn report_wall(runs: &[(&Site, WallRun)]) {
    println!();
    for (site, r) in runs {
        println!(
            "wallboard at {} campuses: usable {:.0} ms after navigation start; {} device transitions while watched",
            site.campuses, r.usable_ms, r.transitions
        );
        println!(
            "  {:<34} {:>10} {:>10} {:>10} {:>10}",
            "", "start", "max", "end", "end/start"
        );
        type Figure = fn(&Memory) -> f64;
        let rows: [(&str, Figure); 6] = [
            ("JS heap used, MB (start/end after GC)", |m| m.heap_mb),
            ("DOM nodes", |m| m.nodes),
            ("JS event listeners", |m| m.listeners),
            ("page's renderer RSS, MB", |m| m.renderer_mb),
            ("page's renderer PSS, MB", |m| m.renderer_pss_mb),
            ("all browser processes' RSS, MB", |m| m.browser_mb),
        ];
        for (label, f) in rows {
            println!(
                "  {label:<34} {:>10.1} {:>10.1} {:>10.1} {:>10.2}",
                f(&r.start),
                f(&r.max),
                f(&r.end),
                f(&r.end) / f(&r.start)
            );
        }
    }
    if let [(_, b), (_, m)] = runs {
        println!(
            "ratio to the baseline at the end: JS heap {:.2}, renderer RSS {:.2}",
            m.end.heap_mb / b.end.heap_mb,
            m.end.renderer_mb / b.end.renderer_mb
        );
    }
}
