//! GB/T 28181 platform benchmark: the real `campuswatch-server` program with its platform
//! on, beside the MQTT load of agent-like gateways through a broker (Mosquitto by
//! default), then thousands of simulated NVRs (`gb28181::simulator`, each a SIP user
//! agent on its own loopback address) registering at once, keeping alive and answering
//! catalogs. It prints
//!
//! - registrations a second at start (every device registering at once);
//! - the server's CPU (process CPU time over wall time, `/proc/{pid}/stat`) during steady
//!   keepalives against the same run's baseline without devices, and the ratio;
//! - resident memory per device (RSS with the devices minus before, over their number);
//! - the time from a device's last keepalive to offline on the API (a device with a
//!   short interval; the rule is 3 × interval), measured against the rule;
//! - the time from a catalog answer with channels OFF (or ON again) to the coverage
//!   change on the API.
//!
//! Not a test: it prints figures (docs/BENCHMARKS.md). The devices bind addresses of
//! 127.0.0.0/8 other than 127.0.0.1 (Linux's loopback answers them all), one each, as
//! NVRs on a network have: the platform limits REGISTERs per address.
//!
//! cargo build --release -p campuswatch-tests --bin gb-bench -p campuswatch-server --bin campuswatch-server
//! ./target/release/gb-bench

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use campuswatch_protocol::{Message, RegionCode};
use campuswatch_server::gb28181::simulator::{
    channel_code, DeviceSpec, PlatformAddress, SimulatedDevice,
};
use campuswatch_server::gb28181::{ChannelStatus, GbCode};
use campuswatch_server::registry::{to_csv, RegistryEntry};
use campuswatch_testkit::birth;
use campuswatch_tests::bench::{
    bench_counties, heartbeat, inventory, own_sample, process_sample, progress,
    raise_open_files_limit, registry, sample_value, sibling_program, start_progress, wait_until,
    Running,
};
use clap::Parser;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "thousands of GB/T 28181 devices on the real server beside its MQTT load")]
struct Args {
    /// Simulated NVRs, each listed by its own campus.
    #[arg(long, default_value_t = 5000)]
    devices: usize,
    /// Camera channels per NVR (the campus expects as many cameras).
    #[arg(long, default_value_t = 20)]
    channels: usize,
    /// The NVRs' keepalive interval (GB/T 28181's default).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    keepalive: Duration,
    /// The keepalive interval of the device whose time to offline is measured.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    probe_keepalive: Duration,
    /// Agent-like gateways heartbeating through the broker (the first campuses').
    #[arg(long, default_value_t = 2000)]
    gateways: usize,
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
    /// Each CPU window (baseline, then with the devices); at least one keepalive
    /// interval, so that every device's keepalive falls in it.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// Samples of each timing.
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// The broker, `mqtt://host:port`.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    mqtt_url: String,
    /// The server program; default: `campuswatch-server` next to this program.
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

const SERVER_ID: &str = "gb-bench";
const PLATFORM_ID: &str = "34020000002000000001";
const PASSWORD: &str = "gb-bench-password";
/// How often the API is asked while a change is awaited.
const POLL: Duration = Duration::from_millis(20);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let files = raise_open_files_limit().context("raising the open-files limit")?;
    let needed = (args.devices + args.gateways) as u64 + 512;
    anyhow::ensure!(
        files >= needed,
        "this process may open only {files} files and needs about {needed}: raise `ulimit -Hn` first"
    );
    start_progress();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// A code of type 118 (NVR) in `county`.
fn nvr(county: RegionCode, serial: usize) -> anyhow::Result<GbCode> {
    Ok(GbCode::parse(&format!("{county}00001180{serial:06}"))?)
}

/// The `n`th device's own loopback address (127.1.0.1, …).
fn device_ip(n: usize) -> SocketAddr {
    SocketAddr::from((
        [
            127,
            1 + (n / 62_500) as u8,
            (n / 250 % 250) as u8,
            (n % 250 + 1) as u8,
        ],
        0,
    ))
}

/// A UDP and TCP port free on 127.0.0.1 now.
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both UDP and TCP")
}

struct Server {
    process: Running,
    http: reqwest::Client,
    base: String,
    log: PathBuf,
}

impl Server {
    fn start(
        bin: &Path,
        dir: &Path,
        broker: &str,
        regions: &[RegionCode],
        sip: u16,
        probe: &GbCode,
        probe_keepalive: Duration,
    ) -> anyhow::Result<Server> {
        let http_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let devices = dir.join("devices.csv");
        std::fs::write(
            &devices,
            format!("{probe},{PASSWORD},{}\n", probe_keepalive.as_secs().max(1)),
        )?;
        let regions: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "id = \"{SERVER_ID}\"\ndata_dir = {:?}\n\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n\n\
                 [mqtt]\nurl = {broker:?}\nregions = [{}]\n\n[auth]\nenabled = false\n\n\
                 [gb28181]\nenabled = true\nlisten = \"127.0.0.1:{sip}\"\nplatform_id = \"{PLATFORM_ID}\"\n\
                 password = \"{PASSWORD}\"\ndevices_file = {:?}\n",
                dir.join("data").display().to_string(),
                regions.join(", "),
                devices.display().to_string(),
            ),
        )?;
        let log = dir.join("server.log");
        let child = Command::new(bin)
            .args(["--log-level", "warn", "run", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Server {
            process: Running(child),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: format!("http://127.0.0.1:{http_port}"),
            log,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<String> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await?;
        anyhow::ensure!(r.status().is_success(), "GET {path}: {}", r.status());
        Ok(r.text().await?)
    }

    async fn json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.get(path).await?)?)
    }

    /// Campuses networked by the platform's view, from the coverage.
    async fn platform_networked(&self) -> anyhow::Result<u64> {
        let v = self.json("/api/v1/coverage").await?;
        v["video_views"]["platform_networked"]
            .as_u64()
            .context("video_views.platform_networked")
    }

    fn cpu_and_rss(&self) -> (f64, u64) {
        let s = process_sample(self.process.pid()).unwrap_or_default();
        (s.cpu_seconds, s.rss_kb)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// One agent-like gateway: a birth of its campus's devices all up, then heartbeats.
async fn gateway(
    broker: (String, u16),
    entry: RegistryEntry,
    interval: Duration,
    sent: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let mut o = MqttOptions::new(format!("cw-{}", entry.campus), broker.0, broker.1);
    o.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 16);
    let poll = tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let devices = 1 + entry.expected_cameras as usize;
    let epoch = chrono::Utc::now().timestamp() as u64;
    let mut b = birth(&entry.campus, entry.region, epoch, inventory(1, devices));
    if let Message::Birth(b) = &mut b {
        b.heartbeat_interval_ms = interval.as_millis() as u64;
    }
    let _ = client
        .publish(b.topic().to_string(), QoS::AtLeastOnce, false, b.encode())
        .await;
    let states = "U".repeat(devices);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + interval.mul_f64(rand::random::<f64>()),
        interval,
    );
    for seq in 1.. {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let hb = heartbeat(&entry.campus, entry.region, epoch, seq, &states, 0);
        let topic = hb.topic().to_string();
        let published = client
            .publish(topic, QoS::AtMostOnce, false, hb.encode())
            .await;
        sent.fetch_add(u64::from(published.is_ok()), Ordering::Relaxed);
    }
    let _ = client.disconnect().await;
    poll.abort();
}

/// The server's CPU share (CPU seconds over wall seconds) and this process's, over `window`.
async fn cpu_over(server: &Server, window: Duration) -> (f64, f64) {
    let (s0, o0, t0) = (
        server.cpu_and_rss().0,
        own_sample().cpu_seconds,
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let wall = t0.elapsed().as_secs_f64();
    (
        (server.cpu_and_rss().0 - s0) / wall,
        (own_sample().cpu_seconds - o0) / wall,
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    campuswatch_tests::bench::percentile(v, 0.5)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => sibling_program("campuswatch-server", "campuswatch-server")?,
    };
    let counties = bench_counties(20)?;
    // One campus per device, each listing its NVR; one more for the probe device.
    let mut entries = registry(&counties, args.devices + 1, 1, args.channels as u32)?;
    for (i, e) in entries.iter_mut().enumerate() {
        e.gb_device_ids = vec![nvr(e.region, i + 1)?];
    }
    let probe_code = entries[args.devices].gb_device_ids[0];
    let dir = tempfile::tempdir()?;
    let sip = free_port()?;
    let server = Server::start(
        &bin,
        dir.path(),
        &args.mqtt_url,
        &counties,
        sip,
        &probe_code,
        args.probe_keepalive,
    )?;
    wait_until(
        "the server answers",
        Duration::from_secs(30),
        POLL,
        || async { server.get("/healthz").await.ok() },
    )
    .await
    .with_context(|| format!("the server did not answer:\n{}", server.log_tail()))?;
    let r = server
        .http
        .post(format!("{}/api/v1/registry?mode=replace", server.base))
        .header("content-type", "text/csv")
        .body(to_csv(&entries))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "registry import: {}", r.status());
    progress(format!(
        "server pid {} at {}, SIP 127.0.0.1:{sip}; {} campuses imported",
        server.process.pid(),
        server.base,
        entries.len()
    ));

    // The MQTT load.
    let url = args.mqtt_url.trim_start_matches("mqtt://");
    let (host, port) = url
        .rsplit_once(':')
        .context("--mqtt-url mqtt://host:port")?;
    let broker = (host.to_string(), port.trim_end_matches('/').parse::<u16>()?);
    let stop = CancellationToken::new();
    let heartbeats = Arc::new(AtomicU64::new(0));
    for e in entries.iter().take(args.gateways) {
        tokio::spawn(gateway(
            broker.clone(),
            e.clone(),
            args.heartbeat_interval,
            heartbeats.clone(),
            stop.clone(),
        ));
    }
    let gateways = args.gateways.min(entries.len()) as f64;
    wait_until(
        "gateways online",
        Duration::from_secs(120),
        POLL,
        || async {
            let m = server.get("/metrics").await.ok()?;
            (sample_value(&m, "cw_gateways{state=\"online\"}")? >= gateways).then_some(())
        },
    )
    .await
    .context("the gateways did not come online")?;
    progress(format!(
        "{} gateways online, heartbeating every {:?}",
        args.gateways, args.heartbeat_interval
    ));
    tokio::time::sleep(args.heartbeat_interval).await;

    // Baseline: the MQTT load alone.
    let (_, rss_before) = server.cpu_and_rss();
    let (cpu_base, own_base) = cpu_over(&server, args.window).await;
    progress(format!(
        "baseline: server {:.1} % of a core, RSS {} MB",
        cpu_base * 100.0,
        rss_before / 1024
    ));

    // Every device at once.
    let platform = PlatformAddress {
        addr: SocketAddr::from(([127, 0, 0, 1], sip)),
        id: GbCode::parse(PLATFORM_ID)?,
        realm: PLATFORM_ID[..10].to_string(),
    };
    let started = Instant::now();
    let mut devices = Vec::with_capacity(args.devices);
    for (i, e) in entries.iter().take(args.devices).enumerate() {
        let mut spec = DeviceSpec::nvr(e.gb_device_ids[0], PASSWORD, args.channels);
        spec.keepalive = args.keepalive;
        spec.items_per_message = 10;
        spec.bind = device_ip(i);
        devices.push(SimulatedDevice::start(spec, platform.clone()).await?);
    }
    let bound = started.elapsed();
    let mut last_registered = started;
    for d in &devices {
        let s = d
            .wait_for(Duration::from_secs(120), |s| s.registered)
            .await
            .with_context(|| format!("device {} did not register", d.id()))?;
        if let Some(at) = s.registered_at {
            last_registered = last_registered.max(at);
        }
    }
    let reg_secs = (last_registered - started).as_secs_f64();
    let retransmitted: u64 = devices.iter().map(|d| d.status().unanswered).sum();
    progress(format!(
        "{} devices registered in {reg_secs:.2} s (sockets bound in {:.2} s)",
        args.devices,
        bound.as_secs_f64()
    ));
    let n = args.devices as u64;
    wait_until("catalogs in", Duration::from_secs(180), POLL, || async {
        (server.platform_networked().await.ok()? >= n).then_some(())
    })
    .await
    .context("the devices' catalogs did not all arrive")?;
    let catalogs_secs = started.elapsed().as_secs_f64();
    progress(format!(
        "every campus networked by the platform's view {catalogs_secs:.1} s after the start"
    ));

    // The probe device (short keepalive), then steady keepalives.
    let mut probe_spec = DeviceSpec::nvr(probe_code, PASSWORD, args.channels);
    probe_spec.keepalive = args.probe_keepalive;
    probe_spec.bind = device_ip(args.devices);
    let mut probe = SimulatedDevice::start(probe_spec.clone(), platform.clone()).await?;
    probe
        .wait_for(Duration::from_secs(30), |s| s.catalogs > 0)
        .await
        .context("probe registers")?;
    tokio::time::sleep(args.keepalive).await;
    let (cpu_gb, own_gb) = cpu_over(&server, args.window).await;
    let (_, rss_after) = server.cpu_and_rss();
    let keepalives: u64 = devices.iter().map(|d| d.status().keepalives).sum();
    progress(format!(
        "with devices: server {:.1} % of a core, RSS {} MB",
        cpu_gb * 100.0,
        rss_after / 1024
    ));

    // Last keepalive → offline on the API.
    let device_path = format!("/api/v1/gb28181/devices/{probe_code}");
    let state = |v: serde_json::Value| v["state"].as_str().map(str::to_string);
    let mut offline = Vec::new();
    for _ in 0..args.samples {
        probe.set_keepalives(true);
        wait_until("probe online", Duration::from_secs(30), POLL, || async {
            (state(server.json(&device_path).await.ok()?)? == "online").then_some(())
        })
        .await
        .context("the probe device is online")?;
        tokio::time::sleep(args.probe_keepalive * 2).await;
        probe.set_keepalives(false);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let last = probe.status().last_keepalive.context("a keepalive")?;
        let seen = wait_until("probe offline", Duration::from_secs(60), POLL, || async {
            (state(server.json(&device_path).await.ok()?)? == "offline").then(Instant::now)
        })
        .await
        .context("the probe device goes offline")?;
        offline.push((seen - last).as_secs_f64());
    }
    let rule = 3.0 * args.probe_keepalive.as_secs_f64();

    // Catalog answer with channels OFF (then ON) → coverage on the API. The device
    // restarts (from another port), so the platform queries its catalog at once.
    let off = (args.channels / 4 + 1).min(args.channels);
    let mut catalog = Vec::new();
    progress(format!("last keepalive → offline: {offline:.2?} s"));
    probe.set_keepalives(true);
    // Online again first: an offline device's campus is not networked either way.
    wait_until("probe online", Duration::from_secs(30), POLL, || async {
        (state(server.json(&device_path).await.ok()?)? == "online").then_some(())
    })
    .await?;
    for k in 0..args.samples {
        let status = if k % 2 == 0 {
            ChannelStatus::Off
        } else {
            ChannelStatus::On
        };
        let before = server.platform_networked().await?;
        for c in 0..off {
            let ch = channel_code(&probe_code, 131, c);
            if let Some(x) = probe_spec.channels.iter_mut().find(|x| x.id == ch) {
                x.status = status;
            }
        }
        probe.stop().await;
        probe = SimulatedDevice::start(probe_spec.clone(), platform.clone()).await?;
        let sent = probe
            .wait_for(Duration::from_secs(30), |s| s.catalog_sent_at.is_some())
            .await
            .and_then(|s| s.catalog_sent_at)
            .context("the catalog answered")?;
        let seen = wait_until("coverage change", Duration::from_secs(60), POLL, || async {
            (server.platform_networked().await.ok()? != before).then(Instant::now)
        })
        .await
        .context("coverage changes")?;
        catalog.push((seen - sent).as_secs_f64());
    }
    let metrics = server.get("/metrics").await?;
    let refused: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("cw_gb_refused_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    stop.cancel();

    println!("devices                          {} NVRs × {} channels, keepalive {:?}; {} gateways heartbeating every {:?} through {}", args.devices, args.channels, args.keepalive, args.gateways, args.heartbeat_interval, args.mqtt_url);
    println!("registrations at start           {:.0} a second ({} in {reg_secs:.2} s; requests given up {retransmitted})", n as f64 / reg_secs, args.devices);
    println!("catalogs in, all campuses        {catalogs_secs:.1} s after the start");
    println!(
        "server CPU, baseline (MQTT)      {:.2} % of a core over {:?}",
        cpu_base * 100.0,
        args.window
    );
    println!(
        "server CPU, with the devices     {:.2} % of a core ({keepalives} keepalives sent so far)",
        cpu_gb * 100.0
    );
    println!(
        "ratio with / baseline            {:.2}",
        cpu_gb / cpu_base.max(1e-9)
    );
    println!(
        "benchmark process CPU            {:.1} % → {:.1} % of a core (simulator and gateways)",
        own_base * 100.0,
        own_gb * 100.0
    );
    println!(
        "server RSS                       {} MB → {} MB: {:.1} kB a device",
        rss_before / 1024,
        rss_after / 1024,
        (rss_after as f64 - rss_before as f64) / n as f64
    );
    println!("last keepalive → offline         {:.2} s median of {:?} (rule 3 × {:?} = {rule:.1} s; ratio {:.3})", median(&mut offline.clone()), offline.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>(), args.probe_keepalive, median(&mut offline.clone()) / rule);
    println!(
        "catalog answer → coverage        {:.3} s median of {:?}",
        median(&mut catalog.clone()),
        catalog
            .iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
    );
    println!("refusals counted by the server   {refused}");
    println!(
        "MQTT heartbeats sent             {}",
        heartbeats.load(Ordering::Relaxed)
    );
    drop(devices);
    Ok(())
}
