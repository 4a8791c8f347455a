//! `campuswatch-server demo`: a complete, live system from one command.
//!
//! The embedded broker, the server with SQLite in a data directory, and a few hundred
//! simulated campuses over a realistic registry (Inner Mongolia's 12 league-level cities
//! and 103 counties). Every campus is a real agent instance with its own MQTT connection,
//! probing real TCP and HTTP listeners on loopback (see `farm`). A fault injector takes
//! devices down and up at realistic rates, drops single gateways, and now and then a
//! whole county's network. The server is a GB/T 28181 platform too, with simulated NVRs
//! for one campus in five (see `gb28181`).

mod farm;
mod gb28181;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use campuswatch_agent::{AgentConfig, DeviceConfig, ProbeConfig};
use campuswatch_protocol::{CampusId, DeviceId, DeviceKind, RegionCode};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::gb28181::simulator::PlatformAddress;
use campuswatch_server::gb28181::GbCode;
use campuswatch_server::registry::{demo_registry, RegistryEntry};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use farm::{AlarmDevice, CameraFarm};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Simulated campuses.
    #[arg(long, default_value_t = 300)]
    campuses: usize,
    /// Where the HTTP API listens; if the default is taken, a free port is used.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Where agents reach the embedded broker; a free port if taken.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: SocketAddr,
    /// Data directory (SQLite database, agents' state).
    #[arg(long, default_value = "campuswatch-demo")]
    data_dir: PathBuf,
    /// Seed for the registry and the faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Share of registered campuses whose gateway is not installed yet (never seen).
const NOT_INSTALLED: f64 = 0.03;
/// Campuses that report without being registered, for the review list.
const UNREGISTERED: usize = 2;
/// How often the demo's GB/T 28181 devices send keepalives (and the platform expects
/// them): short, so that a silent one is offline within half a minute.
const GB_KEEPALIVE: Duration = Duration::from_secs(10);
/// How often the platform queries the demo devices' catalogs.
const GB_CATALOG_INTERVAL: Duration = Duration::from_secs(60);

struct Campus {
    entry: RegistryEntry,
    config: AgentConfig,
    alarms: Vec<AlarmDevice>,
    cameras: Vec<String>,
    agent: Option<(CancellationToken, JoinHandle<()>)>,
}

struct Demo {
    campuses: Vec<Campus>,
    farm: CameraFarm,
    health: Arc<campuswatch_agent::health::HealthSampler>,
    rng: StdRng,
    /// When each faulted device or dropped gateway comes back (tick number).
    repairs: BTreeMap<u64, Vec<Repair>>,
    /// Campuses whose cameras stay faulted (their NVR says ON: the agent is blind).
    blind: HashSet<usize>,
}

#[derive(Debug, Clone, Copy)]
enum Repair {
    Alarm(usize, usize),
    Camera(usize, usize),
    Gateway(usize),
}

/// The demo's users, with new passwords on every run (printed, never reused): an
/// administrator, an operator of everything, and a viewer of one city.
async fn demo_users(
    cfg: &ServerConfig,
) -> anyhow::Result<Vec<(&'static str, String, &'static str)>> {
    use campuswatch_server::auth::{hash_password, new_password, Role};
    let store = campuswatch_server::store::Store::open(&cfg.database_url()).await?;
    let hohhot = RegionCode::parse("150100").ok();
    let mut users = Vec::new();
    for (name, role, scope, what) in [
        ("admin", Role::Admin, None, "administrator"),
        (
            "operator",
            Role::Operator,
            None,
            "operator: acknowledges alerts",
        ),
        (
            "hohhot",
            Role::Viewer,
            hohhot,
            "viewer of Hohhot (150100) only",
        ),
    ] {
        let password = new_password();
        let hash = hash_password(&password).map_err(|e| anyhow::anyhow!(e))?;
        store
            .put_user(name, &hash, role, scope, chrono::Utc::now())
            .await?;
        users.push((name, password, what));
    }
    Ok(users)
}

pub async fn run(args: DemoArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut cfg = ServerConfig {
        data_dir: args.data_dir.clone(),
        ..ServerConfig::default()
    };
    cfg.mqtt.embedded.listen = args.mqtt;
    cfg.mqtt.embedded.fallback_to_free_port = true;
    // The GB/T 28181 platform on the broker's loopback, a free port, a new password.
    let gb_password = campuswatch_server::auth::new_password();
    cfg.gb28181.enabled = true;
    cfg.gb28181.listen = SocketAddr::new(args.mqtt.ip(), 0);
    cfg.gb28181.password = gb_password.clone();
    cfg.gb28181.keepalive_interval = GB_KEEPALIVE;
    cfg.gb28181.catalog_interval = GB_CATALOG_INTERVAL;
    let (gb_platform, gb_realm) = (cfg.gb28181.platform_id.clone(), cfg.gb28181.realm());
    let listener = match args.http {
        Some(addr) => crate::bind(addr).await?,
        None => match crate::bind(cfg.http.listen).await {
            Ok(l) => l,
            Err(_) => crate::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?,
        },
    };
    let users = demo_users(&cfg).await?;
    let server = campuswatch_server::start(cfg, listener).await?;
    let broker_url = server.broker_url().to_string();

    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut registry = demo_registry(args.campuses, args.seed);
    let gb_plan = gb28181::Plan::new(&mut registry, &gb_password, GB_KEEPALIVE);
    server
        .import_registry(registry.clone(), true)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let farm = CameraFarm::default();
    let (farm_addr, _farm_task) = farm.clone().start().await.context("camera farm")?;
    let agents_dir = args.data_dir.join("agents");
    let mut campuses = Vec::new();
    let mut strays = Vec::new();
    for i in 0..UNREGISTERED {
        let e = &registry[i % registry.len().max(1)];
        strays.push(RegistryEntry {
            campus: CampusId::parse(&format!("{}-X-{:04}", e.region, 9001 + i))?,
            name: "unregistered".into(),
            ..e.clone()
        });
    }
    for entry in registry.iter().chain(&strays) {
        let mut config = AgentConfig::new(entry.campus.clone(), entry.region);
        config.state_dir = agents_dir.join(entry.campus.as_str());
        config.mqtt.url = broker_url.clone();
        let mut alarms = Vec::new();
        for a in 0..entry.expected_alarms.max(1) {
            let dev = AlarmDevice::start()
                .await
                .context("alarm device listener")?;
            config.devices.push(DeviceConfig::new(
                DeviceId::parse(&format!("alarm-{}", a + 1))?,
                DeviceKind::Alarm,
                ProbeConfig::Tcp {
                    target: dev.addr.to_string(),
                },
            ));
            alarms.push(dev);
        }
        let mut cameras = Vec::new();
        for c in 0..entry.expected_cameras {
            let id = format!("cam-{:02}", c + 1);
            config.devices.push(DeviceConfig::new(
                DeviceId::parse(&id)?,
                DeviceKind::Camera,
                ProbeConfig::Http {
                    url: format!("http://{farm_addr}/cam/{}/{id}", entry.campus),
                    expect_status: vec![200],
                    body_contains: None,
                    insecure_tls: false,
                },
            ));
            cameras.push(id);
        }
        campuses.push(Campus {
            entry: entry.clone(),
            config,
            alarms,
            cameras,
            agent: None,
        });
    }
    let mut demo = Demo {
        campuses,
        farm,
        health: Arc::new(campuswatch_agent::health::HealthSampler::new()),
        rng: StdRng::seed_from_u64(rng.random()),
        repairs: BTreeMap::new(),
        blind: HashSet::new(),
    };
    for campus in gb_plan.blind_campuses() {
        if let Some(i) = demo.campuses.iter().position(|c| c.entry.campus == campus) {
            let c = &demo.campuses[i];
            for cam in &c.cameras {
                demo.farm.set_faulted(c.entry.campus.as_str(), cam, true);
            }
            demo.blind.insert(i);
        }
    }
    let gb_devices = gb_plan.devices.len();
    let gb_summary = format!(
        "{} simulated NVRs for {} campuses ({} uplink broken, {} agent blind, {} going silent now and then), {} no campus lists",
        gb_devices,
        gb_devices - gb_plan.count(gb28181::Role::Unlisted),
        gb_plan.count(gb28181::Role::UplinkBroken),
        gb_plan.count(gb28181::Role::AgentBlind),
        gb_plan.count(gb28181::Role::GoesSilent),
        gb_plan.count(gb28181::Role::Unlisted),
    );
    let gb_addr = server
        .gb28181_addr()
        .context("the GB/T 28181 platform is enabled")?;
    let gb_task = tokio::spawn(gb_plan.run(
        PlatformAddress {
            addr: gb_addr,
            id: GbCode::parse(&gb_platform)?,
            realm: gb_realm.clone(),
        },
        rng.random(),
        shutdown.child_token(),
    ));
    let registered = registry.len();
    let mut installed = 0;
    for i in 0..demo.campuses.len() {
        let is_stray = i >= registered;
        if is_stray || !demo.rng.random_bool(NOT_INSTALLED) {
            demo.start_agent(i);
            installed += 1;
        }
    }
    let http = server.http_addr();
    println!();
    println!("campuswatch demo is running.");
    println!("  Console:   http://{http}/console");
    for (i, (name, password, what)) in users.iter().enumerate() {
        let label = if i == 0 { "Sign in:" } else { "" };
        println!("  {label:<10} {name} / {password}  ({what})");
    }
    println!("  API:       http://{http}/api/v1/coverage");
    println!("             http://{http}/api/v1/alerts?state=open");
    println!("             http://{http}/api/v1/campuses?region=150100");
    println!("             http://{http}/api/v1/coverage/disagreements");
    println!("             http://{http}/api/v1/gb28181/devices");
    println!("  Metrics:   http://{http}/metrics");
    println!("  Broker:    {broker_url}  (agents connect here)");
    println!(
        "  SIP:       {gb_addr} (UDP and TCP)  (GB/T 28181 devices register here: platform {gb_platform}, domain {gb_realm}, password {gb_password})"
    );
    println!(
        "  Campuses:  {registered} registered, {} with a gateway, {UNREGISTERED} unregistered",
        installed - UNREGISTERED.min(installed)
    );
    println!("  GB/T 28181: {gb_summary}");
    println!("  Data:      {}", args.data_dir.display());
    println!("Press Ctrl-C to stop.");
    println!();

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                n += 1;
                demo.inject(n);
            }
        }
    }
    // The server first: the campuses' goodbyes after it are not a network outage to
    // report, and the next start restores them as they were.
    server.stop().await;
    info!("Stopping the simulated campuses.");
    let _ = tokio::time::timeout(Duration::from_secs(5), gb_task).await;
    let mut stopping = Vec::new();
    for c in &mut demo.campuses {
        if let Some((token, task)) = c.agent.take() {
            token.cancel();
            stopping.push(task);
        }
    }
    for t in stopping {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    Ok(())
}

impl Demo {
    fn start_agent(&mut self, i: usize) {
        let c = &mut self.campuses[i];
        if c.agent.is_some() {
            return;
        }
        let token = CancellationToken::new();
        let config = c.config.clone();
        let health = self.health.clone();
        let t = token.clone();
        let campus = c.entry.campus.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = campuswatch_agent::run_with(config, t, health).await {
                tracing::warn!(campus = %campus, error = %e, "Simulated agent stopped.");
            }
        });
        c.agent = Some((token, task));
    }

    /// Drops the gateway's connection without a goodbye: its Last Will fires.
    fn drop_gateway(&mut self, i: usize) -> bool {
        match self.campuses[i].agent.take() {
            Some((_, task)) => {
                task.abort();
                true
            }
            None => false,
        }
    }

    fn schedule(&mut self, now: u64, after: std::ops::Range<u64>, r: Repair) {
        let at = now + self.rng.random_range(after);
        self.repairs.entry(at).or_default().push(r);
    }

    /// One second of simulated life.
    fn inject(&mut self, now: u64) {
        let due: Vec<u64> = self.repairs.range(..=now).map(|(k, _)| *k).collect();
        for k in due {
            for r in self.repairs.remove(&k).unwrap_or_default() {
                match r {
                    Repair::Alarm(c, a) => self.campuses[c].alarms[a].recover(),
                    Repair::Camera(c, k) => {
                        let (campus, cam) =
                            (&self.campuses[c].entry.campus, &self.campuses[c].cameras[k]);
                        self.farm.set_faulted(campus.as_str(), cam, false);
                    }
                    Repair::Gateway(c) => self.start_agent(c),
                }
            }
        }
        let n = self.campuses.len();
        if n == 0 {
            return;
        }
        // Cameras: about one failure every 2 s over the whole demo, fixed in 1-10 min.
        if self.rng.random_bool(0.5) {
            let c = self.rng.random_range(0..n);
            if !self.campuses[c].cameras.is_empty() && !self.blind.contains(&c) {
                let k = self.rng.random_range(0..self.campuses[c].cameras.len());
                let (campus, cam) = (&self.campuses[c].entry.campus, &self.campuses[c].cameras[k]);
                self.farm.set_faulted(campus.as_str(), cam, true);
                self.schedule(now, 60..600, Repair::Camera(c, k));
            }
        }
        // Alarm links: rarer, about one every 20 s, fixed in 1-5 min.
        if self.rng.random_bool(0.05) {
            let c = self.rng.random_range(0..n);
            let a = self
                .rng
                .random_range(0..self.campuses[c].alarms.len().max(1));
            if let Some(dev) = self.campuses[c].alarms.get_mut(a) {
                if dev.is_up() {
                    dev.fail();
                    self.schedule(now, 60..300, Repair::Alarm(c, a));
                }
            }
        }
        // A single gateway drops (power cut, 4G loss): about once a minute, back in 1-3 min.
        if self.rng.random_bool(1.0 / 60.0) {
            let c = self.rng.random_range(0..n);
            if self.drop_gateway(c) {
                info!(campus = %self.campuses[c].entry.campus, "Demo: a gateway drops.");
                self.schedule(now, 60..180, Repair::Gateway(c));
            }
        }
        // A whole county's network drops: about every 5 minutes, back in 1-2 min.
        if self.rng.random_bool(1.0 / 300.0) {
            let mut by_county: HashMap<RegionCode, Vec<usize>> = HashMap::new();
            for (i, c) in self.campuses.iter().enumerate() {
                by_county.entry(c.entry.region).or_default().push(i);
            }
            let mut counties: Vec<_> = by_county.into_iter().collect();
            counties.sort_by_key(|(r, _)| *r);
            let (county, members) = counties.swap_remove(self.rng.random_range(0..counties.len()));
            info!(county = %county, campuses = members.len(), "Demo: a county's network drops.");
            let back = self.rng.random_range(60..120);
            for c in members {
                if self.drop_gateway(c) {
                    self.repairs
                        .entry(now + back)
                        .or_default()
                        .push(Repair::Gateway(c));
                }
            }
        }
    }
}
