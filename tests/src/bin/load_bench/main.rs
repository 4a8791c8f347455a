//! Load benchmark: the real `campuswatch-server` program watching 10,000 campuses of 40
//! devices each through an external Mosquitto. Every campus is one gateway with its own
//! MQTT connection, Last Will and persistent session, as the agent connects; gateways
//! connect and send their births spread over a ramp, then heartbeat at the agent's
//! default interval. While they run, the benchmark
//!
//! - counts the heartbeats the server applied (its `/metrics`) against what a bare MQTT
//!   subscriber to the same topics received from the same broker;
//! - samples the server's CPU time and memory (`/proc/{pid}`);
//! - queries coverage (`GET /api/v1/coverage`) at a steady rate and times each answer;
//! - injects failures and times each from the failure to its flag on the server's live
//!   stream (`GET /api/v1/live`): alarm and camera links dropping (events), gateways
//!   killed (the connection drops without DISCONNECT, so the broker sends the Last Will),
//!   gateways frozen (heartbeats stop, the connection stays), and a regional outage (every
//!   gateway of one county dropped at once: one regional incident);
//!
//! then brings the failed gateways back, kills the server (SIGKILL) and starts it again on
//! the same store, timing how long it takes to answer, to hold every campus again and to
//! have heard every gateway again. Not a test: it prints figures (docs/BENCHMARKS.md).
//!
//! One run at a time per broker: the gateways' client ids are their campuses' (`cw-{id}`),
//! so two runs would take each other's sessions over.
//!
//! For a province (100,000 gateways) one process is not enough, on either side: every
//! connection is a file, and a process may open at most its hard limit (20,000 here). The
//! benchmark then runs its own broker tier (`--edge-brokers`: a core Mosquitto for the
//! server and edge Mosquittos bridged to it for the gateways, see `brokers.rs`) and plays
//! the gateways in worker processes (`--workers`, see `fleet.rs`), each connection from
//! one of `--source-addresses` loopback addresses.
//!
//! cargo build --release -p campuswatch-tests --bin load-bench -p campuswatch-server --bin campuswatch-server
//! ./target/release/load-bench
//! ./target/release/load-bench --campuses 100000 --counties 62 --edge-brokers 6 --nice 10 \
//!     --source-addresses 64 --postgres postgres://postgres@127.0.0.1:5432/test

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use campuswatch_protocol::{
    campus_filters, decode_command, Birth, CampusId, Command as ServerCommand, CommandKind,
    CommandTopic, Death, DeathReason, DeviceReport, DeviceState, Message, MessageKind, RegionCode,
    BASE_SCHEMA_VERSION,
};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::registry::{to_csv, RegistryEntry};
use campuswatch_server::testing::TestSchema;
use campuswatch_tests::bench::{
    bench_counties, heartbeat, inventory, lock, open_files_limit_of, percentile, process_sample,
    progress, raise_open_files_limit, registry, sample_value, sibling_program, start_progress,
    wait_until, ProcessSample, Running, SseLines,
};
use clap::Parser;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod brokers;
mod fleet;
mod link;

use fleet::{Gate, Workers};
use link::{Incoming, Link};

#[derive(Parser)]
// The workers get this program's arguments with their own after them.
#[command(args_override_self = true)]
#[command(about = "10,000 campuses × 40 devices through an external broker into the real server")]
struct Args {
    /// Campuses played, each one gateway with its own MQTT connection.
    #[arg(long, default_value_t = 10_000)]
    campuses: usize,
    /// Counties the campuses are spread over, evenly; the regional outage takes the last.
    #[arg(long, default_value_t = 20)]
    counties: usize,
    /// Devices per campus: `--alarms` alarm links, the rest cameras.
    #[arg(long, default_value_t = 40)]
    devices: usize,
    #[arg(long, default_value_t = 2)]
    alarms: usize,
    /// Heartbeat interval of every gateway (the agent's default).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
    /// MQTT keepalive of every gateway (the agent's default).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    keepalive: Duration,
    /// Time over which the gateways connect and send their births, evenly spread.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    ramp: Duration,
    /// Measured time under load, in seconds: heartbeats counted, coverage queried,
    /// failures injected. Flags still due afterwards are waited for.
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Alarm and camera links that drop during the measured time (half of each).
    #[arg(long, default_value_t = 200)]
    device_faults: usize,
    /// Gateways killed one by one (connection dropped without DISCONNECT).
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Gateways frozen one by one (heartbeats stop, connection kept).
    #[arg(long, default_value_t = 20)]
    freezes: usize,
    /// Coverage requests per second during the measured time.
    #[arg(long, default_value_t = 20.0)]
    coverage_rate: f64,
    /// The broker, `mqtt://host:port`.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    mqtt_url: String,
    /// The server program; default: `campuswatch-server` next to this program.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Edge Mosquittos bridged to a core Mosquitto, all started by the benchmark: the
    /// gateways connect to the edges, the server and the bare subscriber to the core
    /// (`--mqtt-url` is then not used). 0: everything on `--mqtt-url`.
    #[arg(long, default_value_t = 0)]
    edge_brokers: usize,
    /// Processes playing the gateways; 0: as many as the open-files limit needs.
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Loopback addresses (127.1.x.y) the gateways connect from, in turn; 0: the
    /// system's choice (127.0.0.1).
    #[arg(long, default_value_t = 0)]
    source_addresses: usize,
    /// The server's store on this PostgreSQL database (in a schema of its own, dropped
    /// at the end); default: SQLite in the temporary directory.
    #[arg(long)]
    postgres: Option<String>,
    /// Partition servers, each watching its share of the counties with its own store
    /// (`mqtt.regions`); the first answers for the whole area, adding the others'
    /// coverage (`cluster.peers`), and is the one whose failures and restart are timed.
    #[arg(long, default_value_t = 1)]
    partitions: usize,
    /// Skip the server restart at the end.
    #[arg(long)]
    no_restart: bool,
    /// Run the processes that stand for other machines (the workers playing the
    /// gateways, and the broker tier of `--edge-brokers`) at this nice value, so that on
    /// one machine they take the CPU the server and its store leave, as gateways and
    /// brokers on machines of their own would. With it, the gateways are always played
    /// by workers, never in this process (which times the server's answers). 0: as
    /// before, everything at the same priority.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    nice: i32,
    /// Internal: play the gateways of this worker (see `fleet.rs`).
    #[arg(long, hide = true)]
    worker: Option<usize>,
    /// Internal: when the ramp starts, in ms since 1970, and the brokers of the
    /// gateways, for the workers.
    #[arg(long, hide = true, default_value_t = 0)]
    ramp_start_unix_ms: u64,
    #[arg(long, hide = true, value_delimiter = ',')]
    gateway_brokers: Vec<SocketAddr>,
    /// Keep the server's data directory and log (their path is printed).
    #[arg(long)]
    keep: bool,
}

/// The server's MQTT client is `cw-server-{SERVER_ID}` (`…-p{k}` for partition k > 0);
/// its persistent session is wiped
/// before and after the run so that no run inherits the messages queued for another.
const SERVER_ID: &str = "load-bench";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.worker.is_some() && args.nice > 0 {
        // Before any thread exists: threads take their creator's nice value.
        lower_priority(0, args.nice)?;
    }
    // Thousands of sockets: the soft limit of open files is often 1,024.
    let files = raise_open_files_limit().context("raising the open-files limit")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(k) = args.worker {
        return runtime.block_on(run_worker(args, k));
    }
    let per_process = files.saturating_sub(512).max(1) as usize;
    let workers = match args.workers {
        0 if args.campuses <= per_process => 1,
        0 => args.campuses.div_ceil(per_process),
        w => w,
    };
    anyhow::ensure!(
        args.campuses.div_ceil(workers) <= per_process,
        "a process may open only {files} files here (hard limit) and {workers} workers would need about {} each: raise --workers, or the hard limit (`ulimit -Hn`, or LimitNOFILE= in a unit)",
        args.campuses.div_ceil(workers) + 512
    );
    if args.edge_brokers > 0 {
        let per_edge = args.campuses.div_ceil(args.edge_brokers);
        anyhow::ensure!(
            per_edge as u64 + 100 <= files,
            "an edge Mosquitto started here may open only {files} files and would hold {per_edge} gateways: raise --edge-brokers"
        );
    }
    runtime.block_on(run(args, files, workers))
}

/// Sets the nice value of process `pid` (0: this one) to `nice`. On Linux it is a
/// thread's: the threads a process starts afterwards take it over.
fn lower_priority(pid: u32, nice: i32) -> anyhow::Result<()> {
    // SAFETY: setpriority only changes a scheduling priority; it takes no pointers.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, nice) };
    anyhow::ensure!(
        r == 0,
        "setting the nice value of process {pid} to {nice}: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// The connection of gateway `i` of the registry: the broker it uses and the loopback
/// address it connects from.
fn gateway_route(i: usize, brokers: &[SocketAddr], sources: usize) -> (SocketAddr, Option<IpAddr>) {
    let broker = brokers[i % brokers.len()];
    let source = (sources > 0).then(|| {
        let j = i % sources;
        IpAddr::V4(Ipv4Addr::new(127, 1, (j / 250) as u8, (j % 250 + 1) as u8))
    });
    (broker, source)
}

/// Starts the gateways `keep` chooses from `entries`, connecting over the ramp.
#[allow(clippy::too_many_arguments)]
fn spawn_gateways(
    args: &Args,
    entries: &[RegistryEntry],
    brokers: &[SocketAddr],
    inventory: &Arc<Vec<DeviceReport>>,
    fleet: &Arc<Fleet>,
    ramp_start: tokio::time::Instant,
    keep: impl Fn(usize) -> bool,
) -> (
    HashMap<usize, mpsc::UnboundedSender<Control>>,
    Vec<JoinHandle<()>>,
) {
    let n = entries.len();
    let mut controls = HashMap::new();
    let mut tasks = Vec::new();
    let event_ids_from = unix_time().as_millis() as u64;
    for (i, e) in entries.iter().enumerate().filter(|(i, _)| keep(*i)) {
        let (tx, rx) = mpsc::unbounded_channel();
        controls.insert(i, tx);
        let (broker, source) = gateway_route(i, brokers, args.source_addresses);
        let g = Gateway {
            campus: e.campus.clone(),
            region: e.region,
            broker,
            source,
            keepalive: args.keepalive,
            interval: args.heartbeat_interval,
            inventory: inventory.clone(),
            states: vec![DeviceState::Up; inventory.len()],
            epoch: 0,
            seq: 0,
            last_event_id: 0,
            next_event_id: event_ids_from,
            fleet: fleet.clone(),
        };
        let connect_at = ramp_start + args.ramp.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(g.run(connect_at, rx)));
    }
    (controls, tasks)
}

/// A worker process: the gateways whose index is `k` modulo `--workers`, ordered through
/// standard input (see `fleet.rs`).
async fn run_worker(args: Args, k: usize) -> anyhow::Result<()> {
    let counties = bench_counties(args.counties)?;
    let cameras = args.devices - args.alarms;
    let entries = registry(&counties, args.campuses, args.alarms as u32, cameras as u32)?;
    let inventory = Arc::new(inventory(args.alarms, args.devices));
    let fleet = Arc::new(Fleet::default());
    let wait = Duration::from_millis(args.ramp_start_unix_ms).saturating_sub(unix_time());
    let ramp_start = tokio::time::Instant::now() + wait;
    anyhow::ensure!(
        !args.gateway_brokers.is_empty(),
        "a worker needs --gateway-brokers"
    );
    let workers = args.workers.max(1);
    let (controls, _tasks) = spawn_gateways(
        &args,
        &entries,
        &args.gateway_brokers,
        &inventory,
        &fleet,
        ramp_start,
        |i| i % workers == k,
    );
    fleet::serve(controls, fleet).await;
    Ok(())
}

// ---- progress ---------------------------------------------------------------------------

// ---- the broker -----------------------------------------------------------------------

#[derive(Clone)]
struct Broker {
    host: String,
    port: u16,
}

impl Broker {
    fn parse(url: &str) -> anyhow::Result<Broker> {
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .with_context(|| format!("--mqtt-url {url:?}: expected mqtt://host:port"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .with_context(|| format!("--mqtt-url {url:?}: no port"))?;
        let port = port
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("--mqtt-url {url:?}: bad port"))?;
        Ok(Broker {
            host: host.to_string(),
            port,
        })
    }

    fn is_local(&self) -> bool {
        self.host == "localhost" || self.host.starts_with("127.") || self.host == "[::1]"
    }

    fn options(&self, client_id: String) -> MqttOptions {
        MqttOptions::new(client_id, self.host.clone(), self.port)
    }
}

/// The local Mosquitto, if exactly one runs: its pid and the config file it was given.
fn local_mosquitto() -> Option<(u32, Option<PathBuf>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() == "mosquitto" {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let words: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            let config = words
                .iter()
                .position(|w| w == "-c" || w == "--config-file")
                .and_then(|i| words.get(i + 1))
                .map(PathBuf::from);
            found.push((pid, config));
        }
    }
    (found.len() == 1).then(|| found.remove(0))
}

/// Says what limits the local Mosquitto puts on this run; changes nothing.
fn report_broker_limits(campuses: usize) -> Option<u32> {
    let Some((pid, config)) = local_mosquitto() else {
        progress("no single local Mosquitto process found: its limits are not checked");
        return None;
    };
    match open_files_limit_of(pid) {
        Some(limit) => {
            progress(format!(
                "Mosquitto (pid {pid}) may open {limit} files: about {} client connections",
                limit.saturating_sub(10)
            ));
            if limit < campuses as u64 + 64 {
                progress(format!(
                    "WARNING: Mosquitto will refuse connections past about {} (it gets accept() errors once its open-files limit is reached). \
                     Its limit is the RLIMIT_NOFILE of the shell or unit that started it: restart it with a higher `ulimit -n` \
                     (or LimitNOFILE= in its systemd unit). This benchmark does not change the machine's settings.",
                    limit.saturating_sub(10)
                ));
            }
        }
        None => progress(format!(
            "Mosquitto (pid {pid}): open-files limit not readable"
        )),
    }
    let keys = [
        "max_connections",
        "max_inflight_messages",
        "max_queued_messages",
        "max_queued_bytes",
        "memory_limit",
        "persistence",
    ];
    if let Some(text) = config
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        let set: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| keys.iter().any(|k| l.starts_with(k)))
            .collect();
        progress(format!(
            "Mosquitto settings that bear on this run: {} (unset: max_connections unlimited, max_inflight_messages 20, max_queued_messages 1000 per client)",
            if set.is_empty() {
                "none set".to_string()
            } else {
                set.join(", ")
            }
        ));
    }
    Some(pid)
}

/// Connects as `client_id` with a clean session and leaves: the broker forgets that
/// client's persistent session and whatever was queued for it.
async fn forget_session(broker: &Broker, client_id: &str) -> anyhow::Result<()> {
    let mut o = broker.options(client_id.to_string());
    o.set_clean_session(true);
    let (client, mut el) = AsyncClient::new(o, 4);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match el.poll().await? {
                Event::Incoming(Packet::ConnAck(_)) => client.disconnect().await?,
                Event::Outgoing(rumqttc::Outgoing::Disconnect) => return anyhow::Ok(()),
                _ => {}
            }
        }
    })
    .await
    .with_context(|| format!("forgetting the MQTT session of {client_id}"))?
}

// ---- the registry -----------------------------------------------------------------------

// ---- the server process -------------------------------------------------------------------

/// The server's HTTP API.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn text(&self, path: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        anyhow::ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
        Ok(resp.text().await?)
    }

    async fn json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.text(path).await?)?)
    }

    /// One sample of `/metrics` (`name{labels}`).
    async fn metric(&self, sample: &str) -> anyhow::Result<f64> {
        sample_value(&self.text("/metrics").await?, sample)
            .with_context(|| format!("/metrics has no {sample}"))
    }

    /// A metric summed over several servers (the partitions).
    async fn metric_sum(apis: &[Api], sample: &str) -> anyhow::Result<f64> {
        let mut sum = 0.0;
        for api in apis {
            sum += api.metric(sample).await?;
        }
        Ok(sum)
    }

    /// Whether the API answers at all (any status).
    async fn answers(&self) -> bool {
        self.http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_ok()
    }
}

const APPLIED_HEARTBEATS: &str = "cw_messages_applied_total{kind=\"heartbeat\"}";
const ONLINE: &str = "cw_gateways{state=\"online\"}";

struct Server {
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    process: Running,
    api: Api,
}

impl Server {
    /// Writes the config and starts the program. Everything is at its default but the
    /// broker, the store's directory, the HTTP port, the regions and sign-in (off, as a
    /// script with full access).
    fn start(
        bin: PathBuf,
        dir: &Path,
        broker_url: &str,
        database_url: Option<&str>,
        (id, counties, peers): (&str, &[RegionCode], &[String]),
    ) -> anyhow::Result<Server> {
        std::fs::create_dir_all(dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let regions: Vec<String> = counties.iter().map(|c| format!("\"{c}\"")).collect();
        let config = dir.join("server.toml");
        std::fs::write(
            &config,
            format!(
                "id = \"{id}\"\ndata_dir = {:?}\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[mqtt]\nurl = {broker_url:?}\nregions = [{}]\n\n[auth]\nenabled = false\n\n[database]\nurl = {:?}\n\n[cluster]\npeers = {peers:?}\n",
                dir.join("data").display().to_string(),
                regions.join(", "),
                database_url.unwrap_or_default()
            ),
        )?;
        let log = dir.join("server.log");
        let api = Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: format!("http://127.0.0.1:{port}"),
        };
        let process = Self::spawn(&bin, &config, &log)?;
        Ok(Server {
            bin,
            config,
            log,
            process,
            api,
        })
    }

    fn spawn(bin: &Path, config: &Path, log: &Path) -> anyhow::Result<Running> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(bin)
            .args(["--log-level", "warn", "run", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Running(child))
    }

    /// SIGKILL, as a crash would end it, then the same program on the same store.
    fn crash_and_start(&mut self) -> anyhow::Result<()> {
        self.process.kill()?;
        self.process = Self::spawn(&self.bin, &self.config, &self.log)?;
        Ok(())
    }

    /// Waits until `/healthz` answers and the server holds its broker connection.
    async fn ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.process.exited() {
                bail!("the server exited ({status}):\n{}", self.log_tail());
            }
            if self.api.metric("cw_broker_connected").await.ok() == Some(1.0) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was not ready within {within:?}:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn sample(&self) -> ProcessSample {
        process_sample(self.process.pid()).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, and a wait for the clean stop (its offline state, its last heartbeat
    /// times); SIGKILL after 15 s.
    async fn stop(mut self) {
        // SAFETY: kill(2) with a pid this process started and has not reaped.
        unsafe {
            libc::kill(self.process.pid() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.process.exited().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---- the gateways -----------------------------------------------------------------------

/// Counters of the whole fleet.
#[derive(Default)]
pub struct Fleet {
    /// Gateways whose connection is up now.
    connected: AtomicU64,
    births: AtomicU64,
    heartbeats: AtomicU64,
    events: AtomicU64,
    /// Rebirth requests received from the server (none expected: the fleet's heartbeats
    /// always agree with what it told the server).
    rebirths_asked: AtomicU64,
    /// Connections lost without the benchmark killing them.
    lost: AtomicU64,
}

impl Fleet {
    /// Every counter, in the order the workers report them (see `fleet.rs`).
    fn counters(&self) -> [&AtomicU64; 6] {
        [
            &self.connected,
            &self.births,
            &self.heartbeats,
            &self.events,
            &self.rebirths_asked,
            &self.lost,
        ]
    }
}

/// What the benchmark tells a gateway to do.
pub enum Control {
    /// Device `device` of the inventory drops: an event, as the agent sends it once its
    /// hysteresis decided. Answered with the time it was published.
    DeviceDown {
        device: usize,
        reply: oneshot::Sender<Option<Instant>>,
    },
    /// The gateway dies: its connection drops without DISCONNECT. Answered with when.
    Kill { reply: oneshot::Sender<Instant> },
    /// The gateway hangs: no more heartbeats, the connection stays (its pings go on).
    /// Answered with the time of its last heartbeat.
    Freeze { reply: oneshot::Sender<Instant> },
    /// A frozen gateway heartbeats again.
    Resume,
    /// A killed gateway comes back: a new session (epoch), a birth.
    Reconnect,
    /// The end: a clean DISCONNECT (no Last Will).
    Disconnect { done: oneshot::Sender<()> },
}

/// A gateway's connection, once it was opened.
struct Session {
    link: Link,
    /// The broker accepted the connection.
    up: bool,
}

struct Gateway {
    campus: CampusId,
    region: RegionCode,
    /// The broker (or edge broker) it connects to, and the local address it connects from.
    broker: SocketAddr,
    source: Option<IpAddr>,
    keepalive: Duration,
    interval: Duration,
    /// The birth inventory, shared by every gateway; `states` is this one's.
    inventory: Arc<Vec<DeviceReport>>,
    states: Vec<DeviceState>,
    epoch: u64,
    seq: u64,
    last_event_id: u64,
    next_event_id: u64,
    fleet: Arc<Fleet>,
}

fn unix_time() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// What happened on a gateway's connection.
enum Heard {
    Up,
    Rebirth(u64),
    Down(String),
}

impl Gateway {
    /// A new session as the agent opens one: a higher epoch, its death as the Last Will,
    /// a persistent session.
    async fn open_session(&mut self) -> Result<Session, String> {
        self.epoch = (self.epoch + 1).max(unix_time().as_secs());
        self.seq = 0;
        let will = Message::Death(Death {
            v: BASE_SCHEMA_VERSION,
            campus: self.campus.clone(),
            region: self.region,
            epoch: self.epoch,
            reason: DeathReason::ConnectionLost,
        });
        let will = LastWill::new(
            will.topic().to_string(),
            will.encode(),
            QoS::AtLeastOnce,
            false,
        );
        Link::connect(
            self.source,
            self.broker,
            format!("cw-{}", self.campus),
            self.keepalive,
            will,
        )
        .await
        .map(|link| Session { link, up: false })
        .map_err(|e| e.to_string())
    }

    fn birth(&self) -> Message {
        let mut devices = self.inventory.as_ref().clone();
        for (d, s) in devices.iter_mut().zip(&self.states) {
            d.state = *s;
        }
        Message::Birth(Birth {
            v: BASE_SCHEMA_VERSION,
            campus: self.campus.clone(),
            region: self.region,
            epoch: self.epoch,
            at: chrono::Utc::now(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            config_digest: "load".into(),
            heartbeat_interval_ms: self.interval.as_millis() as u64,
            last_event_id: self.last_event_id,
            devices,
            dropped_events: 0,
        })
    }

    async fn publish(s: &mut Session, msg: &Message) -> bool {
        let qos = match msg {
            Message::Heartbeat(_) => QoS::AtMostOnce,
            _ => QoS::AtLeastOnce,
        };
        s.link
            .publish(msg.topic().to_string(), qos, msg.encode())
            .await
            .is_ok()
    }

    /// Publishes the birth of the current session with the current device states.
    async fn send_birth(&self, s: &mut Session) -> bool {
        let sent = Self::publish(s, &self.birth()).await;
        if sent {
            self.fleet.births.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    async fn send_heartbeat(&mut self, s: &mut Session) {
        self.seq += 1;
        let states: String = self.states.iter().map(|s| s.code()).collect();
        let hb = heartbeat(
            &self.campus,
            self.region,
            self.epoch,
            self.seq,
            &states,
            self.last_event_id,
        );
        if Self::publish(s, &hb).await {
            self.fleet.heartbeats.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The event of device `d` dropping, with the next event id; `None` if it is down.
    fn device_down(&mut self, d: usize) -> Option<Message> {
        if self.states.get(d) != Some(&DeviceState::Up) {
            return None;
        }
        self.states[d] = DeviceState::Down;
        self.last_event_id = self.next_event_id;
        self.next_event_id += 1;
        let device = &self.inventory[d];
        Some(campuswatch_tests::event(
            &self.campus,
            self.region,
            self.epoch,
            self.last_event_id,
            device.id.as_str(),
            device.kind,
            (DeviceState::Up, DeviceState::Down),
        ))
    }

    /// Drops the connection without DISCONNECT: the broker sends the Last Will.
    fn close(&self, s: Session) {
        if s.up {
            self.fleet.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Opens a session; a failure to connect is handled as a lost connection.
    async fn reopen(&mut self) -> (Option<Session>, Option<String>) {
        match self.open_session().await {
            Ok(s) => (Some(s), None),
            Err(why) => (None, Some(why)),
        }
    }

    async fn run(
        mut self,
        connect_at: tokio::time::Instant,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        tokio::time::sleep_until(connect_at).await;
        let (mut session, mut failed) = self.reopen().await;
        let mut frozen = false;
        let mut next_heartbeat = connect_at + self.interval;
        let mut last_heartbeat = Instant::now();
        let mut last_birth: Option<Instant> = None;
        let mut reconnect_at: Option<tokio::time::Instant> = None;
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            let ping_at = session
                .as_ref()
                .map_or(far, |s| s.link.last_sent + self.keepalive);
            let heard = match failed.take().map(Heard::Down) {
                Some(h) => Some(h),
                None => tokio::select! {
                    _ = tokio::time::sleep_until(next_heartbeat), if session.is_some() && !frozen => {
                        let now = tokio::time::Instant::now();
                        next_heartbeat += self.interval;
                        if next_heartbeat <= now {
                            next_heartbeat = now + self.interval;
                        }
                        if let Some(s) = session.as_mut() {
                            self.send_heartbeat(s).await;
                            last_heartbeat = Instant::now();
                        }
                        None
                    }
                    _ = tokio::time::sleep_until(ping_at), if session.is_some() => {
                        match session.as_mut().map(|s| s.link.ping()) {
                            Some(ping) => ping.await.err().map(|e| Heard::Down(e.to_string())),
                            None => None,
                        }
                    }
                    heard = next_heard(&mut session) => Some(heard),
                    _ = tokio::time::sleep_until(reconnect_at.unwrap_or(far)), if session.is_none() && reconnect_at.is_some() => {
                        reconnect_at = None;
                        (session, failed) = self.reopen().await;
                        next_heartbeat = tokio::time::Instant::now() + self.interval;
                        None
                    }
                    c = control.recv() => match c {
                        None => break,
                        Some(Control::DeviceDown { device, reply }) => {
                            let sent = match (session.as_mut(), self.device_down(device)) {
                                (Some(s), Some(event)) => {
                                    let at = Instant::now();
                                    if Self::publish(s, &event).await {
                                        self.fleet.events.fetch_add(1, Ordering::Relaxed);
                                        Some(at)
                                    } else {
                                        None
                                    }
                                }
                                _ => None,
                            };
                            let _ = reply.send(sent);
                            None
                        }
                        Some(Control::Kill { reply }) => {
                            if let Some(s) = session.take() {
                                self.close(s);
                            }
                            reconnect_at = None;
                            let _ = reply.send(Instant::now());
                            None
                        }
                        Some(Control::Freeze { reply }) => {
                            frozen = true;
                            let _ = reply.send(last_heartbeat);
                            None
                        }
                        Some(Control::Resume) => {
                            frozen = false;
                            next_heartbeat = tokio::time::Instant::now();
                            None
                        }
                        Some(Control::Reconnect) => {
                            if session.is_none() {
                                reconnect_at = None;
                                (session, failed) = self.reopen().await;
                                next_heartbeat = tokio::time::Instant::now() + self.interval;
                            }
                            None
                        }
                        Some(Control::Disconnect { done }) => {
                            if let Some(s) = session.take() {
                                if s.up {
                                    self.fleet.connected.fetch_sub(1, Ordering::Relaxed);
                                }
                                s.link.disconnect().await;
                            }
                            let _ = done.send(());
                            break;
                        }
                    },
                },
            };
            match heard {
                None => {}
                Some(Heard::Up) => {
                    let Some(s) = session.as_mut() else { continue };
                    s.up = true;
                    self.fleet.connected.fetch_add(1, Ordering::Relaxed);
                    // As the agent: its rebirth requests, then the birth.
                    let cmd =
                        CommandTopic::new(self.region, self.campus.clone(), CommandKind::Rebirth);
                    let _ = s.link.subscribe(cmd.to_string(), QoS::AtLeastOnce).await;
                    if self.send_birth(s).await {
                        last_birth = Some(Instant::now());
                    }
                }
                Some(Heard::Rebirth(epoch)) => {
                    self.fleet.rebirths_asked.fetch_add(1, Ordering::Relaxed);
                    // As the agent: only for this session, at most once in 10 s.
                    let due = last_birth.is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                    if let (Some(s), true) = (session.as_mut(), epoch == self.epoch && due) {
                        if self.send_birth(s).await {
                            last_birth = Some(Instant::now());
                        }
                    }
                }
                Some(Heard::Down(why)) => {
                    let n = self.fleet.lost.fetch_add(1, Ordering::Relaxed);
                    if n < 5 {
                        progress(format!(
                            "gateway {} lost its connection: {why}",
                            self.campus
                        ));
                    }
                    if let Some(s) = session.take() {
                        self.close(s);
                    }
                    // As the agent: back after a while, under a new epoch.
                    let wait = Duration::from_millis(rand::rng().random_range(5_000..15_000));
                    reconnect_at = Some(tokio::time::Instant::now() + wait);
                }
            }
        }
    }
}

/// The next thing heard on the session's connection; never, without a session.
async fn next_heard(session: &mut Option<Session>) -> Heard {
    let Some(s) = session else {
        return std::future::pending().await;
    };
    loop {
        match s.link.next().await {
            Ok(Incoming::Up) => return Heard::Up,
            Ok(Incoming::Publish(p)) => {
                let asked = CommandTopic::parse(&p.topic)
                    .ok()
                    .and_then(|t| decode_command(&t, &p.payload).ok());
                if let Some(ServerCommand::Rebirth(r)) = asked {
                    return Heard::Rebirth(r.epoch);
                }
            }
            Err(e) => return Heard::Down(e.to_string()),
        }
    }
}

/// A bare MQTT subscriber to the heartbeat topics of `counties`: what the broker
/// delivers to anyone who asks, counted.
async fn bare_subscriber(
    broker: &Broker,
    counties: &[RegionCode],
) -> anyhow::Result<Arc<AtomicU64>> {
    let mut o = broker.options(format!("cw-load-bench-bare-{}", rand::random::<u32>()));
    o.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 64);
    for f in campus_filters(MessageKind::Heartbeat, counties) {
        client.subscribe(f, QoS::AtMostOnce).await?;
    }
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(_))) => {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => {
                    progress(format!("the bare subscriber lost the broker: {e}"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(count)
}

// ---- flags on the live stream ---------------------------------------------------------------

/// What the live stream showed, and when it arrived here.
#[derive(Default)]
struct Seen {
    /// Arrival times per flag key (see [`flag_key`]).
    flags: HashMap<String, Vec<Instant>>,
    /// Incidents opened, per county.
    incidents: HashMap<String, BTreeSet<u64>>,
    resyncs: u64,
}

/// The key of a flag: a transition to a state, an alert opened, an incident opened.
fn flag_key(what: &str, campus_or_region: &str, device: Option<&str>, detail: &str) -> String {
    format!(
        "{what} {campus_or_region} {} {detail}",
        device.unwrap_or("-")
    )
}

fn record(seen: &Mutex<Seen>, at: Instant, event: &str, data: &str) {
    let mut seen = lock(seen);
    if event == "resync" {
        seen.resyncs += 1;
        return;
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
        return;
    };
    let d = &v["data"];
    let key = match event {
        "transition" => flag_key(
            "transition",
            d["campus"].as_str().unwrap_or(""),
            d["device"].as_str(),
            d["to"].as_str().unwrap_or(""),
        ),
        "alert" if d["state"] == "open" => flag_key(
            "alert",
            d["campus"].as_str().unwrap_or(""),
            d["device"].as_str(),
            d["kind"].as_str().unwrap_or(""),
        ),
        "incident" if d["state"] == "open" => {
            let region = d["region"].as_str().unwrap_or("").to_string();
            if let Some(id) = d["id"].as_u64() {
                seen.incidents.entry(region.clone()).or_default().insert(id);
            }
            flag_key("incident", &region, None, "open")
        }
        _ => return,
    };
    seen.flags.entry(key).or_default().push(at);
}

/// Holds `GET /api/v1/live` open and records every flag as it arrives.
async fn watch_live(api: &Api, seen: Arc<Mutex<Seen>>) -> anyhow::Result<JoinHandle<()>> {
    let mut resp = reqwest::Client::new()
        .get(format!("{}/api/v1/live", api.base))
        .send()
        .await
        .context("opening the live stream")?;
    anyhow::ensure!(resp.status().is_success(), "live stream: {}", resp.status());
    Ok(tokio::spawn(async move {
        let mut sse = SseLines::default();
        while let Ok(Some(chunk)) = resp.chunk().await {
            let at = Instant::now();
            for (event, data) in sse.push(&chunk) {
                record(&seen, at, &event, &data);
            }
        }
    }))
}

/// The kinds of failure and the flag each should raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Flag {
    AlarmDown,
    AlarmAlert,
    CameraDown,
    CameraAlert,
    KilledOffline,
    KilledAlert,
    FrozenStale,
    FrozenAlert,
    OutageOffline,
    OutageIncident,
}

impl Flag {
    const ALL: [Flag; 10] = [
        Flag::AlarmDown,
        Flag::AlarmAlert,
        Flag::CameraDown,
        Flag::CameraAlert,
        Flag::KilledOffline,
        Flag::KilledAlert,
        Flag::FrozenStale,
        Flag::FrozenAlert,
        Flag::OutageOffline,
        Flag::OutageIncident,
    ];

    fn label(self) -> &'static str {
        match self {
            Flag::AlarmDown => "alarm link down (event) -> device down",
            Flag::AlarmAlert => "alarm link down (event) -> alert open",
            Flag::CameraDown => "camera down (event) -> device down",
            Flag::CameraAlert => "camera down (event) -> alert open",
            Flag::KilledOffline => "gateway killed -> offline",
            Flag::KilledAlert => "gateway killed -> alert open",
            Flag::FrozenStale => "gateway frozen -> stale (from last heartbeat)",
            Flag::FrozenAlert => "gateway frozen -> alert open (from last heartbeat)",
            Flag::OutageOffline => "regional outage -> each gateway offline",
            Flag::OutageIncident => "regional outage -> one incident open",
        }
    }

    /// When the server's rules say it should come, after the failure.
    fn expected(self, cfg: &ServerConfig, interval: Duration) -> (Duration, String) {
        let a = &cfg.alerts;
        let window = interval * cfg.liveness.missed_heartbeats;
        let check = cfg.liveness.check_interval;
        let s = |d: Duration| humantime::format_duration(d).to_string();
        match self {
            Flag::AlarmDown | Flag::CameraDown => (Duration::ZERO, "at once".into()),
            Flag::KilledOffline | Flag::OutageOffline => {
                (Duration::ZERO, "at once (Last Will)".into())
            }
            Flag::AlarmAlert => (
                a.hold_down_alarm,
                format!("hold-down {}", s(a.hold_down_alarm)),
            ),
            Flag::CameraAlert => (
                a.hold_down_camera,
                format!("hold-down {}", s(a.hold_down_camera)),
            ),
            Flag::KilledAlert => (
                a.hold_down_gateway,
                format!("hold-down {}", s(a.hold_down_gateway)),
            ),
            Flag::FrozenStale => (
                window + check,
                format!(
                    "{} x {} + check {}",
                    cfg.liveness.missed_heartbeats,
                    s(interval),
                    s(check)
                ),
            ),
            Flag::FrozenAlert => (
                window + check + a.hold_down_gateway,
                format!("stale + hold-down {}", s(a.hold_down_gateway)),
            ),
            Flag::OutageIncident => (
                a.hold_down_gateway + a.group_wait + check,
                format!(
                    "hold-down {} + group wait {}",
                    s(a.hold_down_gateway),
                    s(a.group_wait)
                ),
            ),
        }
    }
}

/// One failure injected, and the flag it should raise.
struct Fault {
    flag: Flag,
    key: String,
    at: Instant,
}

/// The wall-clock time of `at` (the server stamps transitions with the wall clock).
fn wall_of(at: Instant) -> chrono::DateTime<chrono::Utc> {
    let ago = chrono::TimeDelta::from_std(at.elapsed()).unwrap_or_default();
    chrono::Utc::now() - ago
}

impl Fault {
    /// The campus and device of a transition flag (see [`flag_key`]).
    fn subject(&self) -> (&str, Option<&str>) {
        let mut parts = self.key.split(' ').skip(1);
        let campus = parts.next().unwrap_or("");
        let device = parts.next().filter(|d| *d != "-");
        (campus, device)
    }

    /// How long after the failure its flag arrived, if it did.
    fn latency(&self, seen: &Seen) -> Option<Duration> {
        seen.flags
            .get(&self.key)?
            .iter()
            .find(|t| **t >= self.at)
            .map(|t| *t - self.at)
    }
}

/// For the flags that should come at once, how their time splits between reaching the
/// server (until it applied the message: the `received_at` it stored with the
/// transition) and the server's own work until the live stream carried the flag
/// (committing the batch, sending the event). Per flag: both parts in seconds.
async fn time_split(
    api: &Api,
    faults: &Faults,
    seen: &Mutex<Seen>,
) -> Vec<(Flag, Vec<f64>, Vec<f64>)> {
    let flags = [
        Flag::AlarmDown,
        Flag::CameraDown,
        Flag::KilledOffline,
        Flag::OutageOffline,
    ];
    // Per flag: its kind, campus, device, latency (s) and wall-clock time.
    type Measured = (
        Flag,
        String,
        Option<String>,
        f64,
        chrono::DateTime<chrono::Utc>,
    );
    let measured: Vec<Measured> = {
        let s = lock(seen);
        faults
            .faults
            .iter()
            .filter(|f| flags.contains(&f.flag))
            .filter_map(|f| {
                let (campus, device) = f.subject();
                Some((
                    f.flag,
                    campus.to_string(),
                    device.map(str::to_string),
                    f.latency(&s)?.as_secs_f64(),
                    wall_of(f.at),
                ))
            })
            .collect()
    };
    let mut out: Vec<(Flag, Vec<f64>, Vec<f64>)> =
        flags.iter().map(|f| (*f, Vec::new(), Vec::new())).collect();
    for (flag, campus, device, latency, wall) in measured {
        let Ok(page) = api
            .json(&format!("/api/v1/events?campus={campus}&limit=20"))
            .await
        else {
            continue;
        };
        let to = if device.is_some() { "down" } else { "offline" };
        let received = page["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|e| {
                (e["device"].as_str() == device.as_deref() && e["to"] == to)
                    .then(|| e["received_at"].as_str())
                    .flatten()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .filter(|t| *t >= wall - chrono::TimeDelta::seconds(1))
            });
        if let (Some(received), Some(row)) = (received, out.iter_mut().find(|r| r.0 == flag)) {
            let to_server = (received.with_timezone(&chrono::Utc) - wall)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1e6;
            row.1.push(to_server);
            row.2.push(latency - to_server);
        }
    }
    for row in &mut out {
        row.1.sort_by(f64::total_cmp);
        row.2.sort_by(f64::total_cmp);
    }
    out
}

// ---- coverage queries ------------------------------------------------------------------------

/// GETs `/api/v1/coverage` at `rate` a second (at most 32 at once) over the whole area,
/// the province, a city and a county in turn, until `stop`; returns each answer's time
/// in ms and the number of failed requests.
/// Coverage answers' times in ms by query (all, then the whole area, the province, the
/// city and the county), and the requests that failed.
type CoverageTimes = (Vec<(&'static str, Vec<f64>)>, u64);

async fn coverage_load(
    api: Api,
    county: RegionCode,
    rate: f64,
    stop: CancellationToken,
) -> CoverageTimes {
    let mut paths = vec!["/api/v1/coverage".to_string()];
    paths.push(format!("/api/v1/coverage?region={}", county.province()));
    if let Some(city) = county.city() {
        paths.push(format!("/api/v1/coverage?region={city}"));
    }
    paths.push(format!("/api/v1/coverage?region={county}"));
    if rate <= 0.0 {
        return (vec![("all", Vec::new())], 0);
    }
    let times = Arc::new(Mutex::new(Vec::<(usize, f64)>::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n = 0usize;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let which = n % paths.len();
        let (api, path, times, failed) = (
            api.clone(),
            paths[which].clone(),
            times.clone(),
            failed.clone(),
        );
        n += 1;
        tokio::spawn(async move {
            let started = Instant::now();
            match api.text(&path).await {
                Ok(_) => lock(&times).push((which, started.elapsed().as_secs_f64() * 1000.0)),
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(slot);
        });
    }
    let _ = slots.acquire_many(32).await;
    let times = std::mem::take(&mut *lock(&times));
    let names = ["whole area", "province", "city", "county"];
    let mut by_query: Vec<(&'static str, Vec<f64>)> = names[..paths.len().min(4)]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let mut v: Vec<f64> = times
                .iter()
                .filter(|(w, _)| *w == k)
                .map(|(_, t)| *t)
                .collect();
            v.sort_by(f64::total_cmp);
            (*name, v)
        })
        .collect();
    let mut all: Vec<f64> = times.iter().map(|(_, t)| *t).collect();
    all.sort_by(f64::total_cmp);
    by_query.insert(0, ("all", all));
    (by_query, failed.load(Ordering::Relaxed))
}

// ---- the run -----------------------------------------------------------------------------------

/// CPU share of one core between two samples `wall` apart, in percent.
fn cpu_pct(a: &ProcessSample, b: &ProcessSample, wall: Duration) -> f64 {
    (b.cpu_seconds - a.cpu_seconds) / wall.as_secs_f64().max(1e-9) * 100.0
}

/// The machine's 1-minute load average: other work on the two cores shows in every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Counters and process samples read at both ends of the measured time.
struct Reading {
    /// Heartbeats the bare subscriber received.
    bare: u64,
    /// Heartbeats the server applied (its `/metrics`).
    applied: f64,
    /// Heartbeats the gateways sent.
    sent: u64,
    server: ProcessSample,
    /// Every Mosquitto process of the run, summed.
    broker: Option<ProcessSample>,
    /// This program and its workers, summed.
    own: ProcessSample,
}

/// The CPU time and memory of several processes, summed; `None` for none.
fn summed(pids: &[u32]) -> Option<ProcessSample> {
    let samples: Vec<ProcessSample> = pids.iter().filter_map(|p| process_sample(*p)).collect();
    (!samples.is_empty()).then(|| ProcessSample {
        cpu_seconds: samples.iter().map(|s| s.cpu_seconds).sum(),
        rss_kb: samples.iter().map(|s| s.rss_kb).sum(),
        hwm_kb: samples.iter().map(|s| s.hwm_kb).sum(),
    })
}

impl Reading {
    /// `servers`: every partition's API and process.
    async fn take(
        bare: &AtomicU64,
        (apis, servers): (&[Api], &[u32]),
        fleet: &Fleet,
        brokers: &[u32],
        workers: &[u32],
    ) -> anyhow::Result<Reading> {
        let own: Vec<u32> = std::iter::once(std::process::id())
            .chain(workers.iter().copied())
            .collect();
        Ok(Reading {
            bare: bare.load(Ordering::Relaxed),
            applied: Api::metric_sum(apis, APPLIED_HEARTBEATS).await?,
            sent: fleet.heartbeats.load(Ordering::Relaxed),
            server: summed(servers).unwrap_or_default(),
            broker: summed(brokers),
            own: summed(&own).unwrap_or_default(),
        })
    }
}

async fn run(args: Args, files: u64, workers: usize) -> anyhow::Result<()> {
    start_progress();
    anyhow::ensure!(
        args.alarms >= 1 && args.devices > args.alarms,
        "--devices must exceed --alarms (at least one alarm and one camera)"
    );
    anyhow::ensure!(
        args.campuses >= args.counties,
        "fewer campuses than counties"
    );
    anyhow::ensure!(
        !args.heartbeat_interval.is_zero(),
        "--heartbeat-interval must be longer than zero"
    );
    let dir = tempfile::Builder::new().prefix("load-bench-").tempdir()?;
    progress(format!("open-files limit of this process: {files}"));
    // The brokers: the machine's (`--mqtt-url`), or a tier of the benchmark's own.
    let tier = if args.edge_brokers > 0 {
        let t = brokers::Tier::start(dir.path(), args.edge_brokers)?;
        if args.nice > 0 {
            // Mosquitto has one thread.
            for pid in t.pids() {
                lower_priority(pid, args.nice)?;
            }
        }
        progress(format!(
            "broker tier: core Mosquitto on {} (pid {}), {} edge Mosquittos bridged to it on {}",
            t.core.addr,
            t.core.pid(),
            t.edges.len(),
            t.edges
                .iter()
                .map(|e| e.addr.port().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Some(t)
    } else {
        None
    };
    let mqtt_url = tier
        .as_ref()
        .map_or(args.mqtt_url.clone(), |t| t.core.url());
    let broker = Broker::parse(&mqtt_url)?;
    let broker_addr = tokio::net::lookup_host((broker.host.as_str(), broker.port))
        .await?
        .next()
        .with_context(|| format!("{mqtt_url}: no address"))?;
    tokio::net::TcpStream::connect(broker_addr)
        .await
        .with_context(|| format!("the broker at {mqtt_url} does not answer"))?;
    let broker_pids: Vec<u32> = match &tier {
        Some(t) => t.pids(),
        None if broker.is_local() => report_broker_limits(args.campuses).into_iter().collect(),
        None => Vec::new(),
    };
    let gateway_brokers: Vec<SocketAddr> = match &tier {
        Some(t) => t.edges.iter().map(|e| e.addr).collect(),
        None => vec![broker_addr],
    };
    let bin = match args.server_bin.clone() {
        Some(b) => b,
        None => sibling_program("campuswatch-server", "campuswatch-server")?,
    };
    let defaults = ServerConfig::default();

    // The registry: counties × campuses, mixed school types.
    let counties = bench_counties(args.counties)?;
    let cameras = args.devices - args.alarms;
    let entries = registry(&counties, args.campuses, args.alarms as u32, cameras as u32)?;
    let n = entries.len();

    // The servers, on fresh stores, with no MQTT session left from an earlier run. With
    // partitions, county j goes to partition (last - j) mod P, so that the outage county
    // (the last) is the first partition's, whose live stream and restart are measured;
    // the first partition answers for the whole area, adding the others' figures.
    let partitions = args.partitions.max(1);
    let of_partition = |k: usize| -> Vec<RegionCode> {
        (0..counties.len())
            .filter(|j| (counties.len() - 1 - j) % partitions == k)
            .map(|j| counties[j])
            .collect()
    };
    let mut stores = Vec::new();
    let mut others: Vec<Server> = Vec::new();
    for k in (0..partitions).rev() {
        let id = if k == 0 {
            SERVER_ID.to_string()
        } else {
            format!("{SERVER_ID}-p{k}")
        };
        forget_session(&broker, &format!("cw-server-{id}")).await?;
        let store = match &args.postgres {
            // A schema of its own, dropped at the end (or kept with --keep).
            Some(admin) => Some(
                TestSchema::create(admin, &format!("cw_load_bench_p{k}"))
                    .await
                    .with_context(|| format!("a schema in PostgreSQL at {admin}"))?,
            ),
            None => None,
        };
        let peers: Vec<String> = if k == 0 {
            others.iter().map(|s| s.api.base.clone()).collect()
        } else {
            Vec::new()
        };
        let mut s = Server::start(
            bin.clone(),
            &dir.path().join(format!("p{k}")),
            &mqtt_url,
            store.as_ref().map(TestSchema::url).as_deref(),
            (&id, &of_partition(k), &peers),
        )?;
        s.ready(Duration::from_secs(60)).await?;
        stores.extend(store);
        others.push(s);
    }
    let mut server = others.pop().context("no partition")?;
    let apis: Vec<Api> = std::iter::once(&server)
        .chain(&others)
        .map(|s| s.api.clone())
        .collect();
    let mine: BTreeSet<RegionCode> = of_partition(0).into_iter().collect();
    let n0 = entries.iter().filter(|e| mine.contains(&e.region)).count();
    if partitions > 1 {
        progress(format!(
            "{partitions} partition servers (the first answers for the whole area, {n0} campuses of its own)"
        ));
    }
    progress(format!(
        "server pid {} on {} (log {}); liveness {} x {} (defaults), alert rules at their defaults",
        server.process.pid(),
        server.api.base,
        server.log.display(),
        defaults.liveness.missed_heartbeats,
        humantime::format_duration(args.heartbeat_interval)
    ));
    let started = Instant::now();
    let csv = to_csv(&entries);
    for api in &apis {
        let resp = api
            .http
            .post(format!("{}/api/v1/registry?mode=replace", api.base))
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "registry import: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    progress(format!(
        "registry of {n} campuses in {} counties imported through the API in {:.2} s",
        counties.len(),
        started.elapsed().as_secs_f64()
    ));

    let bare = bare_subscriber(&broker, &counties).await?;

    // The fleet: connections and births spread evenly over the ramp, counties interleaved.
    let fleet = Arc::new(Fleet::default());
    let inventory = Arc::new(inventory(args.alarms, args.devices));
    let ramp_start = tokio::time::Instant::now() + Duration::from_millis(1500);
    let (controls, tasks, worker_pids): (Vec<Gate>, Vec<JoinHandle<()>>, Vec<u32>) =
        if workers <= 1 && args.nice == 0 {
            let (mut by_index, tasks) = spawn_gateways(
                &args,
                &entries,
                &gateway_brokers,
                &inventory,
                &fleet,
                ramp_start,
                |_| true,
            );
            let controls = (0..n)
                .map(|i| Gate::Local(by_index.remove(&i).expect("every gateway")))
                .collect();
            (controls, tasks, Vec::new())
        } else {
            let ramp_unix = unix_time() + Duration::from_millis(1500);
            let mut pass: Vec<String> = std::env::args().skip(1).collect();
            pass.extend([
                "--workers".into(),
                workers.to_string(),
                "--ramp-start-unix-ms".into(),
                ramp_unix.as_millis().to_string(),
                "--gateway-brokers".into(),
                gateway_brokers
                    .iter()
                    .map(SocketAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ]);
            let w = Workers::start(workers, &pass, fleet.clone())?;
            let controls = (0..n)
                .map(|i| Gate::Remote {
                    workers: w.clone(),
                    worker: i % workers,
                    gateway: i,
                })
                .collect();
            let pids = w.pids().to_vec();
            (controls, Vec::new(), pids)
        };
    progress(format!(
        "{n} gateways of {} devices ({} alarms, {cameras} cameras) in {workers} process(es), connecting over {}, heartbeat every {}",
        args.devices,
        args.alarms,
        humantime::format_duration(args.ramp),
        humantime::format_duration(args.heartbeat_interval)
    ));
    let births_began = Instant::now();
    let server_pids = |server: &Server| -> Vec<u32> {
        std::iter::once(server.process.pid())
            .chain(others.iter().map(|s| s.process.pid()))
            .collect()
    };
    let ramp_cpu0 = summed(&server_pids(&server)).unwrap_or_default();
    let all_online = wait_until(
        "every gateway online at the server",
        args.ramp + Duration::from_secs(180),
        Duration::from_secs(1),
        || {
            let (apis, fleet) = (apis.clone(), fleet.clone());
            async move {
                let online = Api::metric_sum(&apis, ONLINE).await.ok()? as usize;
                if births_began.elapsed().as_secs().is_multiple_of(10) {
                    progress(format!(
                        "connected {} births sent {} online at the server {online}",
                        fleet.connected.load(Ordering::Relaxed),
                        fleet.births.load(Ordering::Relaxed)
                    ));
                }
                (online >= n).then_some(())
            }
        },
    )
    .await;
    if let Err(e) = all_online {
        progress(format!("server log tail:\n{}", server.log_tail()));
        return Err(e);
    }
    let online_after = births_began.elapsed();
    // The whole area's answer (from the first partition, adding the others' with
    // partitions) holds every campus.
    let whole = server.api.json("/api/v1/coverage").await?;
    progress(format!(
        "whole area's coverage from {}: registered {} reporting {} (of {n})",
        server.api.base, whole["registered"], whole["reporting"]
    ));
    anyhow::ensure!(
        whole["registered"].as_u64() == Some(n as u64),
        "the whole area's coverage does not hold every campus: {}",
        whole["registered"]
    );
    let ramp_cpu = cpu_pct(
        &ramp_cpu0,
        &summed(&server_pids(&server)).unwrap_or_default(),
        online_after,
    );
    progress(format!(
        "all {n} gateways online at the server {:.1} s after the first connection (server CPU {ramp_cpu:.0} % of a core meanwhile)",
        online_after.as_secs_f64()
    ));
    // One full interval, so that every gateway is in its heartbeat rhythm.
    tokio::time::sleep(args.heartbeat_interval).await;

    // The measured time.
    let seen = Arc::new(Mutex::new(Seen::default()));
    // Every partition's live stream: failures happen in all of them.
    let mut watchers = Vec::new();
    for api in &apis {
        watchers.push(watch_live(api, seen.clone()).await?);
    }
    let stop_coverage = CancellationToken::new();
    let coverage = tokio::spawn(coverage_load(
        server.api.clone(),
        counties[0],
        args.coverage_rate,
        stop_coverage.clone(),
    ));
    let window = Duration::from_secs(args.seconds);
    let load0 = load_average();
    let t0 = Instant::now();
    let pids = server_pids(&server);
    let reading = || Reading::take(&bare, (&apis, &pids), &fleet, &broker_pids, &worker_pids);
    let start = reading().await?;
    progress(format!(
        "measuring for {} s, failures injected meanwhile",
        args.seconds
    ));
    let faults = inject_faults(
        &args, &entries, &inventory, &counties, &controls, t0, window,
    )
    .await?;
    tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + window)).await;
    let wall = t0.elapsed();
    let end = reading().await?;
    stop_coverage.cancel();
    let (coverage_by_query, coverage_failed) = coverage.await?;
    let coverage_ms = coverage_by_query
        .first()
        .map(|(_, v)| v.clone())
        .unwrap_or_default();

    // Flags still due (a camera's hold-down, a frozen gateway's window) are waited for.
    let deadline = faults
        .faults
        .iter()
        .map(|f| f.at + f.flag.expected(&defaults, args.heartbeat_interval).0)
        .max()
        .unwrap_or(t0)
        + Duration::from_secs(20);
    while Instant::now() < deadline {
        let pending = {
            let s = lock(&seen);
            faults
                .faults
                .iter()
                .filter(|f| f.latency(&s).is_none())
                .count()
        };
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // ---- figures of the measured time ----
    let secs = wall.as_secs_f64();
    let bare_n = end.bare - start.bare;
    let server_n = (end.applied - start.applied).max(0.0) as u64;
    println!();
    println!(
        "== load: {n} campuses x {} devices through {} ==",
        args.devices,
        match &tier {
            Some(t) => format!(
                "{} edge Mosquittos bridged to a core Mosquitto ({mqtt_url})",
                t.edges.len()
            ),
            None => mqtt_url.clone(),
        }
    );
    println!(
        "server store: {}; gateways from {} loopback address(es)",
        if args.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        args.source_addresses.max(1)
    );
    println!(
        "heartbeat interval {}, ramp {}, measured {secs:.0} s",
        humantime::format_duration(args.heartbeat_interval),
        humantime::format_duration(args.ramp)
    );
    println!(
        "machine load average (1 min) at the start and end of the measured time: {load0} / {}",
        load_average()
    );
    println!("births: all {n} gateways online {:.1} s after the first connection; server CPU {ramp_cpu:.0} % of one core meanwhile", online_after.as_secs_f64());
    println!(
        "heartbeats sent by the gateways /s     {:>10.1}",
        (end.sent - start.sent) as f64 / secs
    );
    println!(
        "bare subscriber received /s            {:>10.1}",
        bare_n as f64 / secs
    );
    println!(
        "server applied /s (its /metrics)       {:>10.1}",
        server_n as f64 / secs
    );
    println!(
        "ratio server / bare subscriber         {:>10.3}",
        server_n as f64 / bare_n.max(1) as f64
    );
    println!(
        "server CPU, % of one core              {:>10.1}",
        cpu_pct(&start.server, &end.server, wall)
    );
    println!(
        "server memory: VmRSS {:.0} MB, VmHWM {:.0} MB",
        mb(end.server.rss_kb),
        mb(end.server.hwm_kb)
    );
    if let (Some(a), Some(b)) = (start.broker, end.broker) {
        println!(
            "Mosquitto ({} process(es)): CPU {:.1} % of one core, VmRSS {:.0} MB",
            broker_pids.len(),
            cpu_pct(&a, &b, wall),
            mb(b.rss_kb)
        );
    }
    println!(
        "this load generator ({n} connections, {} process(es)): CPU {:.1} % of one core, VmRSS {:.0} MB",
        worker_pids.len().max(1),
        cpu_pct(&start.own, &end.own, wall),
        mb(end.own.rss_kb)
    );
    println!(
        "coverage API: {} requests ({:.1}/s, whole area / province / city / county in turn), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, failed {coverage_failed}",
        coverage_ms.len(),
        coverage_ms.len() as f64 / secs,
        percentile(&coverage_ms, 0.5),
        percentile(&coverage_ms, 0.99),
        percentile(&coverage_ms, 1.0)
    );
    for (query, ms) in coverage_by_query.iter().skip(1) {
        println!(
            "  {query:<10} {:>5} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms.len(),
            percentile(ms, 0.5),
            percentile(ms, 0.99),
            percentile(ms, 1.0)
        );
    }
    {
        let s = lock(&seen);
        println!();
        println!(
            "{:<52} {:>5} {:>7} {:>9} {:>9} {:>9}  expected",
            "failure -> flag (live stream)", "n", "flagged", "p50 s", "p99 s", "max s"
        );
        for flag in Flag::ALL {
            let of: Vec<&Fault> = faults.faults.iter().filter(|f| f.flag == flag).collect();
            if of.is_empty() {
                continue;
            }
            let mut lat: Vec<f64> = of
                .iter()
                .filter_map(|f| f.latency(&s))
                .map(|d| d.as_secs_f64())
                .collect();
            lat.sort_by(f64::total_cmp);
            println!(
                "{:<52} {:>5} {:>7} {:>9.3} {:>9.3} {:>9.3}  {}",
                flag.label(),
                of.len(),
                lat.len(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                percentile(&lat, 1.0),
                flag.expected(&defaults, args.heartbeat_interval).1
            );
        }
        let outage = faults.outage_county.to_string();
        println!(
            "incidents opened for the county of the outage ({} gateways): {}",
            faults.outage_size,
            s.incidents.get(&outage).map_or(0, |i| i.len())
        );
        println!(
            "incidents opened elsewhere: {}",
            s.incidents
                .iter()
                .filter(|(r, _)| **r != outage)
                .map(|(_, i)| i.len())
                .sum::<usize>()
        );
        println!("live stream resyncs (events missed): {}", s.resyncs);
    }
    println!();
    println!(
        "{:<52} {:>5} {:>19} {:>23}",
        "where the time of the flags due at once goes",
        "n",
        "to the server p50/p99 s",
        "server to stream p50/p99 s"
    );
    for (flag, to_server, server) in time_split(&server.api, &faults, &seen).await {
        if to_server.is_empty() {
            continue;
        }
        println!(
            "{:<52} {:>5} {:>11.3} / {:>5.3} {:>15.3} / {:>5.3}",
            flag.label(),
            to_server.len(),
            percentile(&to_server, 0.5),
            percentile(&to_server, 0.99),
            percentile(&server, 0.5),
            percentile(&server, 0.99)
        );
    }
    let metrics = server.api.text("/metrics").await.unwrap_or_default();
    let sum = |prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    };
    println!(
        "server counters: dropped {} ignored {} rebirth requests {} store batches {} ({:.1} s in all)",
        sum("cw_messages_dropped_total"),
        sum("cw_messages_ignored_total"),
        sum("cw_rebirth_requests_total"),
        sum("cw_store_batches_total"),
        sum("cw_store_batch_seconds_total")
    );
    println!(
        "fleet: births {} events {} rebirth requests received {} connections lost unasked {}",
        fleet.births.load(Ordering::Relaxed),
        fleet.events.load(Ordering::Relaxed),
        fleet.rebirths_asked.load(Ordering::Relaxed),
        fleet.lost.load(Ordering::Relaxed)
    );
    for w in watchers {
        w.abort();
    }

    // ---- the failed gateways come back ----
    progress("bringing the killed and frozen gateways back");
    let recovery = Instant::now();
    for (k, i) in faults.killed.iter().enumerate() {
        // Spread over 5 s, as gateways coming back after an outage do (their backoff).
        if k > 0 && k % 100 == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let _ = controls[*i].send(Control::Reconnect);
    }
    for i in &faults.frozen {
        let _ = controls[*i].send(Control::Resume);
    }
    wait_until(
        "every gateway online again",
        Duration::from_secs(120),
        Duration::from_millis(200),
        || {
            let apis = apis.clone();
            async move { (Api::metric_sum(&apis, ONLINE).await.ok()? as usize >= n).then_some(()) }
        },
    )
    .await?;
    println!(
        "recovery: {} killed and {} frozen gateways back, all {n} online again after {:.1} s",
        faults.killed.len(),
        faults.frozen.len(),
        recovery.elapsed().as_secs_f64()
    );

    if !args.no_restart {
        // With partitions, the first one's: it holds `n0` of the campuses.
        measure_restart(&mut server, &fleet, n0, args.heartbeat_interval, &defaults).await?;
    }

    // ---- the end ----
    progress("stopping: server, then the gateways (clean DISCONNECT)");
    server.stop().await;
    forget_session(&broker, &format!("cw-server-{SERVER_ID}")).await?;
    for (k, s) in others.into_iter().enumerate() {
        s.stop().await;
        forget_session(
            &broker,
            &format!("cw-server-{SERVER_ID}-p{}", partitions - 1 - k),
        )
        .await?;
    }
    let mut done = Vec::with_capacity(n);
    for c in &controls {
        let (tx, rx) = oneshot::channel();
        if c.send(Control::Disconnect { done: tx }).is_ok() {
            done.push(rx);
        }
    }
    for rx in done {
        let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
    }
    for t in tasks {
        t.abort();
    }
    for store in &mut stores {
        if args.keep {
            store.keep();
            println!("kept the PostgreSQL schema {}", store.name());
        }
    }
    if args.keep {
        let kept = dir.keep();
        println!("kept {}", kept.display());
    }
    Ok(())
}

/// The failures injected, for the report and for bringing them back.
struct Faults {
    faults: Vec<Fault>,
    killed: Vec<usize>,
    frozen: Vec<usize>,
    outage_county: RegionCode,
    outage_size: usize,
}

/// Injects the failures over the measured time: the regional outage early (its incident
/// comes after hold-down and group wait), the device links, kills and freezes spread
/// over its first three quarters, each on a campus of its own outside the outage county,
/// kills and freezes in turn through the other counties so that they do not make
/// incidents of their own.
async fn inject_faults(
    args: &Args,
    entries: &[RegistryEntry],
    inventory: &[DeviceReport],
    counties: &[RegionCode],
    controls: &[Gate],
    t0: Instant,
    window: Duration,
) -> anyhow::Result<Faults> {
    let mut rng = StdRng::seed_from_u64(7);
    let outage_county = *counties.last().context("no counties")?;
    let outage: Vec<usize> = (0..entries.len())
        .filter(|i| entries[*i].region == outage_county)
        .collect();
    // Campuses outside the outage county, by county, shuffled.
    let others: Vec<RegionCode> = counties
        .iter()
        .copied()
        .filter(|c| *c != outage_county)
        .collect();
    let mut pools: Vec<Vec<usize>> = others
        .iter()
        .map(|c| {
            let mut v: Vec<usize> = (0..entries.len())
                .filter(|i| entries[*i].region == *c)
                .collect();
            v.shuffle(&mut rng);
            v
        })
        .collect();
    let mut turn = 0usize;
    let mut take = |pools: &mut Vec<Vec<usize>>| -> anyhow::Result<usize> {
        for _ in 0..pools.len() {
            let k = turn % pools.len().max(1);
            turn += 1;
            if let Some(i) = pools.get_mut(k).and_then(|p| p.pop()) {
                return Ok(i);
            }
        }
        bail!("not enough campuses outside the outage county for the failures asked for")
    };

    enum Plan {
        Outage,
        Device {
            campus: usize,
            device: usize,
            alarm: bool,
        },
        Kill(usize),
        Freeze(usize),
    }
    let mut plan: Vec<(Duration, Plan)> = vec![(window.mul_f64(0.1), Plan::Outage)];
    let spread =
        |k: usize, of: usize, from: f64| window.mul_f64(from + 0.6 * k as f64 / of.max(1) as f64);
    for k in 0..args.kills {
        plan.push((spread(k, args.kills, 0.05), Plan::Kill(take(&mut pools)?)));
    }
    for k in 0..args.freezes {
        plan.push((
            spread(k, args.freezes, 0.07),
            Plan::Freeze(take(&mut pools)?),
        ));
    }
    let cameras = args.devices - args.alarms;
    for k in 0..args.device_faults {
        let alarm = k % 2 == 0;
        let device = if alarm {
            rng.random_range(0..args.alarms)
        } else {
            args.alarms + rng.random_range(0..cameras)
        };
        let at = window.mul_f64(0.02 + 0.75 * k as f64 / args.device_faults.max(1) as f64);
        plan.push((
            at,
            Plan::Device {
                campus: take(&mut pools)?,
                device,
                alarm,
            },
        ));
    }
    plan.sort_by_key(|(at, _)| *at);

    let mut out = Faults {
        faults: Vec::new(),
        killed: Vec::new(),
        frozen: Vec::new(),
        outage_county,
        outage_size: outage.len(),
    };
    let campus = |i: usize| entries[i].campus.as_str();
    let gateway_key = |i: usize, to: &str| flag_key("transition", campus(i), None, to);
    let alert_key = |i: usize| flag_key("alert", campus(i), None, "gateway");
    for (at, p) in plan {
        tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + at)).await;
        let kill = matches!(p, Plan::Kill(_));
        match p {
            Plan::Outage => {
                progress(format!(
                    "regional outage: all {} gateways of county {outage_county} killed at once",
                    outage.len()
                ));
                let first = Instant::now();
                let mut replies = Vec::new();
                for i in &outage {
                    let (tx, rx) = oneshot::channel();
                    let _ = controls[*i].send(Control::Kill { reply: tx });
                    replies.push((*i, rx));
                }
                for (i, rx) in replies {
                    if let Ok(when) = rx.await {
                        out.faults.push(Fault {
                            flag: Flag::OutageOffline,
                            key: gateway_key(i, "offline"),
                            at: when,
                        });
                    }
                    out.killed.push(i);
                }
                out.faults.push(Fault {
                    flag: Flag::OutageIncident,
                    key: flag_key("incident", outage_county.as_str(), None, "open"),
                    at: first,
                });
            }
            Plan::Kill(i) | Plan::Freeze(i) => {
                let (tx, rx) = oneshot::channel();
                // A killed gateway goes offline (its Last Will), a frozen one stale; a
                // frozen one's time is that of its last heartbeat.
                let (control, state, to, alert) = if kill {
                    (
                        Control::Kill { reply: tx },
                        Flag::KilledOffline,
                        "offline",
                        Flag::KilledAlert,
                    )
                } else {
                    (
                        Control::Freeze { reply: tx },
                        Flag::FrozenStale,
                        "stale",
                        Flag::FrozenAlert,
                    )
                };
                let _ = controls[i].send(control);
                if let Ok(at) = rx.await {
                    out.faults.push(Fault {
                        flag: state,
                        key: gateway_key(i, to),
                        at,
                    });
                    out.faults.push(Fault {
                        flag: alert,
                        key: alert_key(i),
                        at,
                    });
                }
                if kill {
                    out.killed.push(i);
                } else {
                    out.frozen.push(i);
                }
            }
            Plan::Device {
                campus: i,
                device,
                alarm,
            } => {
                let (tx, rx) = oneshot::channel();
                let _ = controls[i].send(Control::DeviceDown { device, reply: tx });
                if let Ok(Some(when)) = rx.await {
                    let id = entries[i].campus.as_str();
                    let dev = inventory[device].id.as_str();
                    let (state, alert, kind) = if alarm {
                        (Flag::AlarmDown, Flag::AlarmAlert, "alarm")
                    } else {
                        (Flag::CameraDown, Flag::CameraAlert, "camera")
                    };
                    out.faults.push(Fault {
                        flag: state,
                        key: flag_key("transition", id, Some(dev), "down"),
                        at: when,
                    });
                    out.faults.push(Fault {
                        flag: alert,
                        key: flag_key("alert", id, Some(dev), kind),
                        at: when,
                    });
                }
            }
        }
    }
    progress(format!("{} failures injected", out.faults.len()));
    Ok(out)
}

/// Kills the server (SIGKILL) with every gateway online, starts it again on the same
/// store, and times: the API answering, every campus held again (restored from the
/// store), the broker connection, and every gateway heard again (a heartbeat after the
/// restart). One staleness window later, no gateway may be stale or offline.
/// How many campuses' gateways were heard (a heartbeat) since `since`, from the listing
/// of every campus, 10,000 a page; `None` if the API did not answer.
async fn heard_since(api: &Api, since: chrono::DateTime<chrono::Utc>) -> Option<usize> {
    let mut fresh = 0usize;
    let mut offset = 0usize;
    loop {
        let page = api
            .json(&format!("/api/v1/campuses?limit=10000&offset={offset}"))
            .await
            .ok()?;
        let list = page["campuses"].as_array()?;
        fresh += list
            .iter()
            .filter_map(|c| c["last_heartbeat"].as_str())
            .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .filter(|t| *t >= since)
            .count();
        offset += list.len();
        if list.len() < 10_000 {
            return Some(fresh);
        }
    }
}

async fn measure_restart(
    server: &mut Server,
    fleet: &Fleet,
    n: usize,
    interval: Duration,
    defaults: &ServerConfig,
) -> anyhow::Result<()> {
    let open_before = server.api.metric("cw_alerts{state=\"open\"}").await?;
    // The same requests as after the restart below, so that memory before and after
    // compares like with like: the listing of every campus, once a second, 20 times.
    let steady = server.sample();
    let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    for _ in 0..20 {
        heard_since(&server.api, epoch).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let listed = server.sample();
    let births_before = fleet.births.load(Ordering::Relaxed);
    let rebirths_before = fleet.rebirths_asked.load(Ordering::Relaxed);
    progress("server restart: SIGKILL, then the same program on the same store");
    server.crash_and_start()?;
    let started = Instant::now();
    let started_wall = chrono::Utc::now();
    let api = server.api.clone();
    let mut http = None;
    let mut restored = None;
    let mut broker = None;
    let deadline = started + Duration::from_secs(120);
    while restored.is_none() || broker.is_none() {
        if let Some(status) = server.process.exited() {
            bail!(
                "the server exited after the restart ({status}):\n{}",
                server.log_tail()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the restarted server did not restore its state within 120 s:\n{}",
                server.log_tail()
            );
        }
        if http.is_none() && api.answers().await {
            http = Some(started.elapsed());
        }
        if http.is_some() {
            if let Ok(text) = api.text("/metrics").await {
                if restored.is_none()
                    && sample_value(&text, ONLINE).is_some_and(|v| v as usize >= n)
                {
                    restored = Some(started.elapsed());
                }
                if broker.is_none() && sample_value(&text, "cw_broker_connected") == Some(1.0) {
                    broker = Some(started.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_restore = server.sample();
    // Every gateway heard again: its last heartbeat is after the restart.
    let heard = wait_until(
        "every gateway heard again after the restart",
        interval * 2 + Duration::from_secs(60),
        Duration::from_secs(1),
        || {
            let api = api.clone();
            async move { (heard_since(&api, started_wall).await? >= n).then(|| started.elapsed()) }
        },
    )
    .await?;
    let sample = server.sample();
    // One full staleness window after the restart: nothing may have gone stale.
    let window = interval * defaults.liveness.missed_heartbeats;
    tokio::time::sleep_until(tokio::time::Instant::from_std(
        started + window + Duration::from_secs(2),
    ))
    .await;
    let text = api.text("/metrics").await?;
    let after_window = server.sample();
    let state =
        |s: &str| sample_value(&text, &format!("cw_gateways{{state=\"{s}\"}}")).unwrap_or(f64::NAN);
    let f = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
    println!();
    println!("restart (SIGKILL, then the same program on the same store):");
    println!(
        "  API answering after                         {:>7.2} s",
        f(http)
    );
    println!(
        "  all {n} campuses held again (from the store) {:>7.2} s",
        f(restored)
    );
    println!(
        "  broker connected after                      {:>7.2} s",
        f(broker)
    );
    println!(
        "  every gateway heard again after             {:>7.2} s",
        heard.as_secs_f64()
    );
    println!(
        "  {} later: online {} stale {} offline {}; open alerts {} (before the restart {open_before})",
        humantime::format_duration(window + Duration::from_secs(2)),
        state("online"),
        state("stale"),
        state("offline"),
        sample_value(&text, "cw_alerts{state=\"open\"}").unwrap_or(f64::NAN)
    );
    println!(
        "  births after the restart {}, rebirth requests received {}",
        fleet.births.load(Ordering::Relaxed) - births_before,
        fleet.rebirths_asked.load(Ordering::Relaxed) - rebirths_before
    );
    println!(
        "  server memory before the restart: VmRSS {:.0} MB (VmHWM {:.0} MB), {:.0} MB after 20 listings of every campus (VmHWM {:.0} MB)",
        mb(steady.rss_kb),
        mb(steady.hwm_kb),
        mb(listed.rss_kb),
        mb(listed.hwm_kb)
    );
    println!(
        "  restarted server memory: VmRSS {:.0} MB once restored (VmHWM {:.0} MB), {:.0} MB once every gateway was heard, through listings once a second (VmHWM {:.0} MB), {:.0} MB a staleness window after the restart",
        mb(at_restore.rss_kb),
        mb(at_restore.hwm_kb),
        mb(sample.rss_kb),
        mb(sample.hwm_kb),
        mb(after_window.rss_kb)
    );
    Ok(())
}
