//! Dead-link benchmark: how soon the real `campuswatch-agent` (the release binary, every
//! device at its kind's default settings) reports a device `down` after its peer dies, and
//! how often it reports a healthy device `down` behind a link that loses packets. Every
//! figure is printed twice from the same run: with the quick retries (`retry_interval` at
//! its default, 3 s) and with the cadence before them (`retry_interval`
//! = `interval`). Not a test: it prints figures (docs/BENCHMARKS.md).
//!
//! The peers are the real ones: GStreamer's RTSP server streaming H.264 for cameras
//! (`tests/peers/rtsp_camera.py`, system Python with `python3-gi`) and pysiaalarm's DC-09
//! receiver for alarm links (`tests/peers/dc09_receiver.py`, the venv `.ci/run` makes).
//! The agent reports to a broker in this process; its device events are read on MQTT, its
//! probes from its own debug log (one `Probed.` line per probe).
//!
//! - `death`: every device has a peer of its own; once the device is up, its peer is
//!   killed (SIGKILL) or frozen (SIGSTOP, a hung device) at a chosen phase of the probe
//!   cycle, spread evenly over the interval across the trials so the worst case shows.
//!   Death to the `down` event on MQTT, p50 and max.
//! - `loss` (root: network namespaces and nftables): per loss rate, the peers live in a
//!   network namespace behind a veth pair whose two ends drop that share of the packets
//!   arriving on them (nftables `numgen random` on the ingress hook, so a dropped packet
//!   has left its sender, which must retransmit; segmentation offload is off so a packet
//!   is one TCP segment). Healthy devices are probed for `--minutes`; every `down` is a
//!   false one. Probes, failed probes, false downs.
//!
//! The agent is the release build; this program only starts peers and reads what the
//! agent says, so its own debug build does (and spares building the server for release):
//!
//! cargo build --release -p campuswatch-agent --bin campuswatch-agent
//! cargo build -p campuswatch-tests --bin deadlink-bench
//! ./target/debug/deadlink-bench --agent target/release/campuswatch-agent death --trials 10
//! ./target/debug/deadlink-bench --agent target/release/campuswatch-agent loss --minutes 35

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use campuswatch_agent::config::KindDefaults;
use campuswatch_protocol::{DeviceKind, DeviceState};
use campuswatch_tests::bench::{
    lock, peer_process, percentile, progress, sibling_program, start_progress, Running,
};
use campuswatch_tests::deadlink::{
    campus, in_netns, spawn_agent, watch_events, write_config, DeviceBlock, LinkCounters,
    LossyLink, Seen, ACCOUNT,
};
use campuswatch_tests::TestBroker;
use clap::{Parser, Subcommand};
use tokio::sync::broadcast;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    what: What,
    /// Python with GStreamer's RTSP server bindings (`python3-gi`).
    #[arg(
        long,
        env = "CAMPUSWATCH_TEST_RTSP_PYTHON",
        default_value = "/usr/bin/python3",
        global = true
    )]
    rtsp_python: PathBuf,
    /// The agent binary; default: `campuswatch-agent` next to this program. The figures
    /// are the release build's (this program only starts peers and reads events).
    #[arg(long, global = true)]
    agent: Option<PathBuf>,
    /// Python with pysiaalarm 3.2.2.
    #[arg(
        long,
        env = "CAMPUSWATCH_TEST_SIA_PYTHON",
        default_value = "/tmp/campuswatch-sia-venv/bin/python",
        global = true
    )]
    sia_python: PathBuf,
}

#[derive(Subcommand)]
enum What {
    /// Time from a peer's death to the agent reporting its device down.
    Death {
        /// Trials per kind of device, way of dying and cadence.
        #[arg(long, default_value_t = 10)]
        trials: usize,
        /// Only this kind of device (`alarm` or `camera`).
        #[arg(long)]
        only: Option<String>,
    },
    /// False downs of healthy devices behind links that lose packets.
    Loss {
        /// Measured time, after `--warm-up`.
        #[arg(long, default_value_t = 30)]
        minutes: u64,
        /// Seconds before counting: every device probed and its first stream check done.
        #[arg(long, default_value_t = 90)]
        warm_up: u64,
        /// Loss rates in percent, one link each.
        #[arg(long, value_delimiter = ',', default_value = "5,20")]
        loss: Vec<u32>,
        /// Alarm links per link and cadence.
        #[arg(long, default_value_t = 40)]
        alarms: usize,
        /// Cameras per link and cadence.
        #[arg(long, default_value_t = 10)]
        cameras: usize,
    },
}

// ---- cadences and devices --------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Cadence {
    /// `retry_interval` at the kind's default.
    Quick,
    /// `retry_interval` = `interval`: every probe one interval after the last.
    Old,
}

impl Cadence {
    const BOTH: [Cadence; 2] = [Cadence::Quick, Cadence::Old];

    fn tag(self) -> &'static str {
        match self {
            Cadence::Quick => "quick",
            Cadence::Old => "old",
        }
    }

    fn label(self, kind: DeviceKind) -> String {
        let d = KindDefaults::of(kind);
        match self {
            Cadence::Quick => format!("quick retries ({} s)", d.retry_interval.as_secs()),
            Cadence::Old => format!("old cadence ({} s)", d.interval.as_secs()),
        }
    }

    /// The device's `retry_interval` key: unset (the default), or its interval.
    fn retry_interval(self, kind: DeviceKind) -> Option<Duration> {
        match self {
            Cadence::Quick => None,
            Cadence::Old => Some(KindDefaults::of(kind).interval),
        }
    }
}

/// The agent, started with its probes logged; what it says goes to `seen`.
fn start_agent(
    args: &Args,
    config: &Path,
    seen: broadcast::Sender<Seen>,
) -> anyhow::Result<Running> {
    let exe = match &args.agent {
        Some(p) => p.clone(),
        None => sibling_program("campuswatch-agent", "campuswatch-agent")?,
    };
    spawn_agent(&exe, config, seen)
}

/// The peer of a device of `kind`, in the link's network namespace if there is one: a
/// DC-09 receiver (pysiaalarm) for an alarm link, an RTSP camera (GStreamer) for a camera.
fn start_peer(
    args: &Args,
    kind: DeviceKind,
    link: Option<&LossyLink>,
) -> anyhow::Result<(Running, SocketAddr)> {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
    let host = link.map_or("127.0.0.1".to_string(), |l| l.peer_addr.clone());
    let (mut cmd, what) = match kind {
        DeviceKind::Alarm => {
            let mut c = in_netns(link, &args.sia_python);
            c.arg(peers.join("dc09_receiver.py"))
                .args(["tcp", ACCOUNT, "--host", &host]);
            (
                c,
                "the DC-09 receiver (CAMPUSWATCH_TEST_SIA_PYTHON: a Python with pysiaalarm 3.2.2)",
            )
        }
        DeviceKind::Camera => {
            let mut c = in_netns(link, &args.rtsp_python);
            c.arg(peers.join("rtsp_camera.py")).args(["--host", &host]);
            (
                c,
                "the RTSP camera (CAMPUSWATCH_TEST_RTSP_PYTHON: python3-gi with GstRtspServer)",
            )
        }
    };
    let (peer, port) = peer_process(&mut cmd).with_context(|| format!("{what} did not start"))?;
    Ok((peer, format!("{host}:{port}").parse()?))
}

/// Waits for the next `Seen` that `pick` takes, until `deadline`.
async fn next_seen<T>(
    rx: &mut broadcast::Receiver<Seen>,
    deadline: Instant,
    mut pick: impl FnMut(&Seen) -> Option<T>,
) -> Option<T> {
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, rx.recv()).await {
            Err(_) => return None,
            Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                progress(format!(
                    "{n} observations skipped (the benchmark fell behind)"
                ));
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            Ok(Ok(s)) => {
                if let Some(t) = pick(&s) {
                    return Some(t);
                }
            }
        }
    }
}

// ---- death: time to flag ---------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Death {
    /// SIGKILL: the port closes, connections are refused.
    Killed,
    /// SIGSTOP: connections are accepted by the kernel, nothing answers.
    Frozen,
}

impl Death {
    fn tag(self) -> &'static str {
        match self {
            Death::Killed => "killed",
            Death::Frozen => "frozen",
        }
    }
}

fn scenario_label(kind: DeviceKind, death: Death) -> &'static str {
    match (kind, death) {
        (DeviceKind::Camera, Death::Killed) => "camera killed (SIGKILL)",
        (DeviceKind::Camera, Death::Frozen) => "camera hung (SIGSTOP)",
        (DeviceKind::Alarm, Death::Killed) => "alarm receiver killed (SIGKILL)",
        (DeviceKind::Alarm, Death::Frozen) => "alarm receiver hung (SIGSTOP)",
    }
}

/// One device whose peer dies during the run.
struct Trial {
    kind: DeviceKind,
    death: Death,
    cadence: Cadence,
    device: String,
    /// Where in the probe cycle the peer dies, as a fraction of the interval after a
    /// probe began.
    phase: f64,
}

struct Outcome {
    /// Seconds from the probe before the death to the death.
    phase_s: f64,
    /// Seconds from the death to the `down` event on MQTT; `None`: not within the limit.
    to_down_s: Option<f64>,
    cause: Option<String>,
}

async fn run_trial(
    trial: &Trial,
    mut peer: Running,
    mut rx: broadcast::Receiver<Seen>,
) -> anyhow::Result<Outcome> {
    let d = KindDefaults::of(trial.kind);
    let dev = trial.device.as_str();
    let start_by = Instant::now() + Duration::from_secs(180);
    next_seen(&mut rx, start_by, |s| match s {
        Seen::Transition { device, to, .. } if device == dev && *to == DeviceState::Up => Some(()),
        _ => None,
    })
    .await
    .with_context(|| format!("{dev} was not up within 3 min"))?;
    // The probe cycle, from the next three good probes after it is up. A probe's line is
    // written when it ends, and its latency is DESCRIBE's, not a stream check's 4 s; a
    // healthy device's probes begin one interval apart, so the last one began at the
    // earliest of each line less its latency plus the intervals since, which is exact
    // unless all three checked the stream.
    let mut good = Vec::new();
    while good.len() < 3 {
        let began = next_seen(&mut rx, start_by + d.interval * 3, |s| match s {
            Seen::Probe {
                device,
                ok: true,
                latency,
                at,
            } if device == dev => Some(*at - *latency),
            _ => None,
        })
        .await
        .with_context(|| format!("{dev}: no two good probes after it was up"))?;
        good.push(began);
    }
    let probe_began = (good.iter().enumerate())
        .map(|(k, at)| *at + d.interval * (good.len() - 1 - k) as u32)
        .min()
        .context("three probes")?;
    let mut kill_at = probe_began + d.interval.mul_f64(trial.phase);
    while kill_at < Instant::now() {
        kill_at += d.interval;
    }
    let probe_began = kill_at - d.interval.mul_f64(trial.phase);
    tokio::time::sleep_until(tokio::time::Instant::from_std(kill_at)).await;
    match trial.death {
        Death::Killed => peer.kill()?,
        Death::Frozen => peer.freeze()?,
    }
    let died = Instant::now();
    let limit = died + (d.interval + d.timeout) * (d.down_after + 1) + Duration::from_secs(30);
    let down = next_seen(&mut rx, limit, |s| match s {
        Seen::Transition {
            device,
            to: DeviceState::Down,
            cause,
            at,
        } if device == dev => Some((*at, cause.clone())),
        _ => None,
    })
    .await;
    drop(peer);
    Ok(Outcome {
        phase_s: (died - probe_began).as_secs_f64(),
        to_down_s: down.as_ref().map(|(at, _)| (*at - died).as_secs_f64()),
        cause: down.and_then(|(_, c)| c),
    })
}

async fn death(args: &Args, trials: usize, only: Option<&str>) -> anyhow::Result<()> {
    let kinds: Vec<DeviceKind> = [DeviceKind::Camera, DeviceKind::Alarm]
        .into_iter()
        .filter(|k| only.is_none_or(|o| o == DeviceKind::as_str(*k)))
        .collect();
    anyhow::ensure!(!kinds.is_empty(), "--only: alarm or camera");
    let broker = TestBroker::at(None).await;
    let (seen, _) = broadcast::channel(1 << 16);
    watch_events(broker.addr(), &campus(), seen.clone()).await?;

    // Every trial at once, each device with a peer of its own: one agent, as on a campus.
    let mut plan = Vec::new();
    for &kind in &kinds {
        for death in [Death::Killed, Death::Frozen] {
            for cadence in Cadence::BOTH {
                for i in 0..trials {
                    // Spread over the interval: trial i dies in the i-th slice of it.
                    let phase = (i as f64 + rand::random::<f64>()) / trials as f64;
                    let device = format!(
                        "{}-{}-{}-{i:02}",
                        DeviceKind::as_str(kind),
                        death.tag(),
                        cadence.tag()
                    );
                    plan.push(Trial {
                        kind,
                        death,
                        cadence,
                        device,
                        phase,
                    });
                }
            }
        }
    }
    progress(format!("starting {} peers", plan.len()));
    let mut peers = Vec::new();
    let mut blocks = Vec::new();
    for t in &plan {
        let (peer, addr) = start_peer(args, t.kind, None)?;
        peers.push(peer);
        blocks.push(DeviceBlock::new(
            t.device.clone(),
            t.kind,
            addr,
            t.cadence.retry_interval(t.kind),
        ));
    }
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &campus(), broker.addr(), &blocks)?;
    let plan = Arc::new(plan);
    let mut tasks = Vec::new();
    for (i, peer) in peers.into_iter().enumerate() {
        let rx = seen.subscribe();
        let plan = plan.clone();
        tasks.push(tokio::spawn(
            async move { run_trial(&plan[i], peer, rx).await },
        ));
    }
    let _agent = start_agent(args, &config, seen.clone())?;
    progress(format!(
        "agent started with {} devices; peers die one by one",
        plan.len()
    ));

    let mut results: BTreeMap<(DeviceKind, Death, Cadence), Vec<f64>> = BTreeMap::new();
    let mut missed: BTreeMap<(DeviceKind, Death, Cadence), usize> = BTreeMap::new();
    println!(
        "{:<34} {:<22} {:>8} {:>14}  cause",
        "device", "cadence", "phase s", "death→down s"
    );
    for (t, task) in plan.iter().zip(tasks) {
        let o = task.await??;
        let key = (t.kind, t.death, t.cadence);
        match o.to_down_s {
            Some(s) => results.entry(key).or_default().push(s),
            None => *missed.entry(key).or_default() += 1,
        }
        println!(
            "{:<34} {:<22} {:>8.1} {:>14}  {}",
            t.device,
            t.cadence.label(t.kind),
            o.phase_s,
            o.to_down_s
                .map_or("not down".to_string(), |s| format!("{s:.1}")),
            o.cause.unwrap_or_default()
        );
    }

    println!();
    println!(
        "{:<34} {:<22} {:>3} {:>7} {:>7} {:>9} {:>8}",
        "death → down event on MQTT", "cadence", "n", "p50 s", "max s", "target s", "not down"
    );
    for &kind in &kinds {
        let d = KindDefaults::of(kind);
        let target = d.interval.as_secs() + 10;
        for death in [Death::Killed, Death::Frozen] {
            for cadence in Cadence::BOTH {
                let key = (kind, death, cadence);
                let mut v = results.get(&key).cloned().unwrap_or_default();
                v.sort_by(f64::total_cmp);
                println!(
                    "{:<34} {:<22} {:>3} {:>7.1} {:>7.1} {:>9} {:>8}",
                    scenario_label(kind, death),
                    cadence.label(kind),
                    v.len(),
                    percentile(&v, 0.5),
                    v.last().copied().unwrap_or(f64::NAN),
                    target,
                    missed.get(&key).copied().unwrap_or(0)
                );
            }
        }
    }
    Ok(())
}

// ---- loss: false downs behind a lossy link --------------------------------------------

/// What one device did while counted.
#[derive(Debug, Default, Clone)]
struct Tally {
    probes: u64,
    failed: u64,
    downs: u64,
    degraded: u64,
    causes: BTreeMap<String, u64>,
}

/// The group a loss device belongs to: loss %, kind, cadence.
type Group = (u32, DeviceKind, Cadence);

async fn loss(
    args: &Args,
    minutes: u64,
    warm_up: u64,
    rates: &[u32],
    alarms: usize,
    cameras: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        // SAFETY: geteuid only reads this process's user id.
        unsafe { libc::geteuid() } == 0,
        "the lossy links are network namespaces with nftables rules: run as root"
    );
    let broker = TestBroker::at(None).await;
    let (seen, _) = broadcast::channel(1 << 16);
    watch_events(broker.addr(), &campus(), seen.clone()).await?;

    let mut links = Vec::new();
    let mut peers = Vec::new();
    let mut blocks = Vec::new();
    let mut groups: HashMap<String, Group> = HashMap::new();
    for (i, &rate) in rates.iter().enumerate() {
        let link = LossyLink::new(rate, i as u32)?;
        let (rx, rx_addr) = start_peer(args, DeviceKind::Alarm, Some(&link))?;
        let (cam, cam_addr) = start_peer(args, DeviceKind::Camera, Some(&link))?;
        progress(format!(
            "link {rate} %: namespace {}, receiver {rx_addr}, camera {cam_addr}",
            link.netns
        ));
        peers.extend([rx, cam]);
        for cadence in Cadence::BOTH {
            for n in 0..alarms {
                let id = format!("l{rate:02}-{}-alarm-{n:02}", cadence.tag());
                groups.insert(id.clone(), (rate, DeviceKind::Alarm, cadence));
                blocks.push(DeviceBlock::new(
                    id,
                    DeviceKind::Alarm,
                    rx_addr,
                    cadence.retry_interval(DeviceKind::Alarm),
                ));
            }
            for n in 0..cameras {
                let id = format!("l{rate:02}-{}-camera-{n:02}", cadence.tag());
                groups.insert(id.clone(), (rate, DeviceKind::Camera, cadence));
                blocks.push(DeviceBlock::new(
                    id,
                    DeviceKind::Camera,
                    cam_addr,
                    cadence.retry_interval(DeviceKind::Camera),
                ));
            }
        }
        links.push(link);
    }
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &campus(), broker.addr(), &blocks)?;

    // Tallies per device, from the moment counting starts.
    let counting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tallies: Arc<Mutex<HashMap<String, Tally>>> = Arc::default();
    {
        let (counting, tallies, mut rx) = (counting.clone(), tallies.clone(), seen.subscribe());
        tokio::spawn(async move {
            loop {
                let s = match rx.recv().await {
                    Ok(s) => s,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        progress(format!("{n} observations skipped: the counts are short"));
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if !counting.load(std::sync::atomic::Ordering::Relaxed) {
                    continue;
                }
                let mut t = lock(&tallies);
                match s {
                    Seen::Probe { device, ok, .. } => {
                        let e = t.entry(device).or_default();
                        e.probes += 1;
                        e.failed += u64::from(!ok);
                    }
                    Seen::Transition {
                        device, to, cause, ..
                    } => {
                        let e = t.entry(device).or_default();
                        match to {
                            DeviceState::Down => {
                                e.downs += 1;
                                *e.causes.entry(cause.unwrap_or_default()).or_default() += 1;
                            }
                            DeviceState::Degraded => e.degraded += 1,
                            _ => {}
                        }
                    }
                }
            }
        });
    }
    let mut agent = start_agent(args, &config, seen.clone())?;
    progress(format!(
        "agent started with {} devices; warming up {warm_up} s, then counting {minutes} min",
        blocks.len()
    ));
    tokio::time::sleep(Duration::from_secs(warm_up)).await;
    let before: Vec<LinkCounters> = links
        .iter()
        .map(LossyLink::counters)
        .collect::<Result<_, _>>()?;
    counting.store(true, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let summarise = |tallies: &HashMap<String, Tally>| {
        let mut by: BTreeMap<Group, Tally> = BTreeMap::new();
        for (device, t) in tallies {
            let Some(g) = groups.get(device) else {
                continue;
            };
            let e = by.entry(*g).or_default();
            e.probes += t.probes;
            e.failed += t.failed;
            e.downs += t.downs;
            e.degraded += t.degraded;
            for (c, n) in &t.causes {
                *e.causes.entry(c.clone()).or_default() += n;
            }
        }
        by
    };
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        tokio::time::sleep(Duration::from_secs(60)).await;
        anyhow::ensure!(agent.exited().is_none(), "the agent exited");
        for p in &mut peers {
            anyhow::ensure!(
                p.exited().is_none(),
                "a peer exited: its downs would not be false"
            );
        }
        let by = summarise(&lock(&tallies));
        let line: Vec<String> = by
            .iter()
            .map(|((rate, kind, cadence), t)| {
                format!(
                    "{rate}%/{}/{}: {}p {}f {}d",
                    DeviceKind::as_str(*kind),
                    cadence.tag(),
                    t.probes,
                    t.failed,
                    t.downs
                )
            })
            .collect();
        progress(line.join(" · "));
    }
    counting.store(false, std::sync::atomic::Ordering::Relaxed);
    let measured = started.elapsed();
    for p in &mut peers {
        anyhow::ensure!(
            p.exited().is_none(),
            "a peer exited: its downs would not be false"
        );
    }
    let by = summarise(&lock(&tallies));

    println!(
        "healthy devices behind lossy links, {:.1} min counted after {warm_up} s of warm-up; every down is a false down",
        measured.as_secs_f64() / 60.0
    );
    for (link, before) in links.iter().zip(&before) {
        let c = link.counters()? - *before;
        println!(
            "link {:>2} %: {} of {} packets dropped ({:.2} %); the peers sent {} TCP segments, {} of them retransmissions ({:.2} %)",
            link.loss,
            c.dropped,
            c.seen,
            100.0 * c.dropped as f64 / c.seen.max(1) as f64,
            c.out_segs,
            c.retrans_segs,
            100.0 * c.retrans_segs as f64 / c.out_segs.max(1) as f64
        );
    }
    println!(
        "{:>6} {:<7} {:<22} {:>7} {:>8} {:>8} {:>9} {:>12} {:>14} {:>9}",
        "loss %",
        "kind",
        "cadence",
        "devices",
        "probes",
        "failed",
        "failed %",
        "false downs",
        "per 1k probes",
        "degraded"
    );
    let device_count = |kind: DeviceKind| match kind {
        DeviceKind::Alarm => alarms,
        DeviceKind::Camera => cameras,
    };
    for ((rate, kind, cadence), t) in &by {
        println!(
            "{:>6} {:<7} {:<22} {:>7} {:>8} {:>8} {:>9.2} {:>12} {:>14.2} {:>9}",
            rate,
            DeviceKind::as_str(*kind),
            cadence.label(*kind),
            device_count(*kind),
            t.probes,
            t.failed,
            100.0 * t.failed as f64 / t.probes.max(1) as f64,
            t.downs,
            1000.0 * t.downs as f64 / t.probes.max(1) as f64,
            t.degraded
        );
    }
    println!("causes of the false downs:");
    for ((rate, kind, cadence), t) in &by {
        for (cause, n) in &t.causes {
            println!(
                "  {rate:>2} % {:<6} {:<5} {n:>5} × {cause}",
                DeviceKind::as_str(*kind),
                cadence.tag()
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    start_progress();
    let args = Args::parse();
    match &args.what {
        What::Death { trials, only } => death(&args, *trials, only.as_deref()).await,
        What::Loss {
            minutes,
            warm_up,
            loss: rates,
            alarms,
            cameras,
        } => loss(&args, *minutes, *warm_up, rates, *alarms, *cameras).await,
    }
}
