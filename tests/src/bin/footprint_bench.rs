//! Agent footprint benchmark: the real `campuswatch-agent` binary watching 64 RTSP
//! cameras (GStreamer's RTSP server, real H.264) and 2 alarm devices at the default
//! intervals, reporting to a broker through a counting TCP relay. It prints the agent's
//! resident memory, its CPU share of one core and the bytes it sends to the broker,
//! scaled to a day. An agent with no devices runs beside it as the baseline, so the
//! machine's noise shows in both. Not a test: it prints figures (docs/BENCHMARKS.md).
//!
//! With `--flap-every`, some of the cameras drop and come back over and over (their RTSP
//! server is killed and started again on the same port), so the agent goes through down,
//! up and new sessions all run long; it then also prints the agent's resident memory at
//! the start, its highest and at the end, and the drift from start to end.
//!
//! cargo build --release -p campuswatch-agent -p campuswatch-tests --bin footprint-bench --bin campuswatch-agent
//! ./target/release/footprint-bench --seconds 600
//! ./target/release/footprint-bench --seconds 7200 --flap-every 3m --warmup 5m

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use campuswatch_tests::bench::{process_sample, sibling_program, Running};
use campuswatch_tests::TestBroker;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
struct Args {
    /// Cameras watched (RTSP, DESCRIBE at every probe and a stream check every 5 min).
    #[arg(long, default_value_t = 64)]
    cameras: usize,
    /// Alarm devices watched (TCP link to the alarm panel's port).
    #[arg(long, default_value_t = 2)]
    alarms: usize,
    /// Measured time, after the warm-up.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Time before the first sample. With `--flap-every 3m`, `5m` starts the measured
    /// time after the first drop and return (which maps the code that handles them), at
    /// the phase of the flapping where whole periods of it end.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// External broker (e.g. mqtt://127.0.0.1:1883); default: an embedded one.
    #[arg(long)]
    mqtt_url: Option<String>,
    /// Python with GStreamer's RTSP server bindings (`python3-gi`).
    #[arg(
        long,
        env = "CAMPUSWATCH_TEST_RTSP_PYTHON",
        default_value = "/usr/bin/python3"
    )]
    python: PathBuf,
    /// Make `--flapping` cameras drop and come back once in this period ("3m"), from
    /// the start of the warm-up; default: they never drop.
    #[arg(long, value_parser = humantime::parse_duration)]
    flap_every: Option<Duration>,
    /// How long the flapping cameras stay away each time.
    #[arg(long, default_value = "75s", value_parser = humantime::parse_duration)]
    flap_down: Duration,
    /// How many of the cameras flap (the last ones).
    #[arg(long, default_value_t = 16)]
    flapping: usize,
    /// With `--flap-every`, print the agent's resident memory this often during the run.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    report_every: Duration,
}

/// Relays TCP connections to `upstream`, counting the bytes sent towards it.
async fn counting_relay(upstream: SocketAddr, sent: Arc<AtomicU64>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let sent = sent.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    Ok(addr)
}

/// Accepts and holds TCP connections: an alarm panel's port that is up.
async fn alarm_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    Ok(addr)
}

/// GStreamer's RTSP server with `mounts` cameras (/cam1 …), on `port` (0: any free one).
fn start_cameras(python: &Path, mounts: usize, port: u16) -> anyhow::Result<(Running, u16)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/rtsp_camera.py");
    let mut child = Command::new(python)
        .arg(&script)
        .args(["--mounts", &mounts.to_string()])
        .args(["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting the RTSP camera with {}", python.display()))?;
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let line = BufReader::new(stdout).lines().next().context(
        "the RTSP camera printed nothing (is python3-gi with GstRtspServer installed?)",
    )??;
    let port = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| format!("the RTSP camera said {line:?}"))?;
    Ok((running, port))
}

/// Cameras that drop and come back: every `every`, their RTSP server is killed, and
/// started again on the same port `down` later. Runs until the process ends.
async fn flap(
    python: PathBuf,
    mounts: usize,
    mut server: Running,
    port: u16,
    every: Duration,
    down: Duration,
) -> anyhow::Result<()> {
    let mut next = tokio::time::Instant::now() + every.saturating_sub(down);
    loop {
        tokio::time::sleep_until(next).await;
        server.kill()?;
        tokio::time::sleep(down).await;
        // The port was just freed; another program may take it in between, rarely.
        let mut restarted = None;
        for _ in 0..10 {
            match start_cameras(&python, mounts, port) {
                Ok((s, p)) if p == port => {
                    restarted = Some(s);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        server = restarted.with_context(|| format!("cannot restart the cameras on {port}"))?;
        next += every;
    }
}

fn agent_config(
    dir: &Path,
    campus: &str,
    broker: SocketAddr,
    cameras: &[String],
    alarms: &[SocketAddr],
) -> anyhow::Result<PathBuf> {
    let mut toml = format!(
        "campus = \"{campus}\"\nregion = \"150102\"\nstate_dir = \"{}\"\n\n[mqtt]\nurl = \"mqtt://{broker}\"\n",
        dir.join("state").display()
    );
    for (i, a) in alarms.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[devices]]\nid = \"alarm-{}\"\nkind = \"alarm\"\nprobe = {{ type = \"tcp\", target = \"{a}\" }}\n",
            i + 1
        ));
    }
    for (i, url) in cameras.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[devices]]\nid = \"cam-{:02}\"\nkind = \"camera\"\nprobe = {{ type = \"rtsp\", url = \"{url}\" }}\n",
            i + 1
        ));
    }
    let path = dir.join(format!("{campus}.toml"));
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// Drops the agent program's pages from the page cache, so that the agents read it from
/// disk as at a gateway's boot. How much of a program a page fault maps depends on how its
/// pages came into the cache (written by the linker, copied, read ahead), so without this
/// the same program measured up to a fifth apart from one run to the next.
fn evict_from_page_cache(program: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(program)?;
    // SAFETY: posix_fadvise only advises the kernel about the open file's cached pages.
    let err = unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    anyhow::ensure!(err == 0, "posix_fadvise: error {err}");
    Ok(())
}

fn start_agent(program: &Path, config: &Path) -> anyhow::Result<Running> {
    let child = Command::new(program)
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Running(child))
}

struct Sample {
    cpu_s: f64,
    rss_kb: u64,
    sent: u64,
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let flapping = if args.flap_every.is_some() {
        args.flapping.min(args.cameras)
    } else {
        0
    };
    if let Some(every) = args.flap_every {
        anyhow::ensure!(
            args.flap_down < every,
            "--flap-down must be shorter than --flap-every"
        );
    }
    let broker = TestBroker::at(args.mqtt_url.clone()).await;
    let steady = args.cameras - flapping;
    let (_cameras, rtsp_port) = start_cameras(&args.python, steady.max(1), 0)?;
    let mut cameras: Vec<String> = (1..=steady)
        .map(|i| format!("rtsp://127.0.0.1:{rtsp_port}/cam{i}"))
        .collect();
    let mut flapper = None;
    if let Some(every) = args.flap_every.filter(|_| flapping > 0) {
        let (server, port) = start_cameras(&args.python, flapping, 0)?;
        cameras.extend((1..=flapping).map(|i| format!("rtsp://127.0.0.1:{port}/cam{i}")));
        flapper = Some(tokio::spawn(flap(
            args.python.clone(),
            flapping,
            server,
            port,
            every,
            args.flap_down,
        )));
    }
    let mut alarms = Vec::new();
    for _ in 0..args.alarms {
        alarms.push(alarm_port().await?);
    }
    let dir = tempfile::tempdir()?;
    let (full_sent, idle_sent) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let full_relay = counting_relay(broker.addr(), full_sent.clone()).await?;
    let idle_relay = counting_relay(broker.addr(), idle_sent.clone()).await?;
    let full_dir = dir.path().join("full");
    let idle_dir = dir.path().join("idle");
    std::fs::create_dir_all(&full_dir)?;
    std::fs::create_dir_all(&idle_dir)?;
    let full_cfg = agent_config(&full_dir, "bench-full", full_relay, &cameras, &alarms)?;
    let idle_cfg = agent_config(&idle_dir, "bench-idle", idle_relay, &[], &[])?;
    // Each agent runs its own copy of the program, as on a gateway of its own: the
    // pages of a file that two processes map are shared, and the kernel reclaims
    // neither's (memory::release_startup_code in the agent).
    let program = sibling_program("campuswatch-agent", "campuswatch-agent")?;
    let idle_program = idle_dir.join("campuswatch-agent");
    std::fs::copy(&program, &idle_program)?;
    evict_from_page_cache(&program)?;
    evict_from_page_cache(&idle_program)?;
    let full = start_agent(&program, &full_cfg)?;
    let idle = start_agent(&idle_program, &idle_cfg)?;
    println!(
        "agent with {} cameras and {} alarms vs an agent with no devices; warming up {}, then measuring {} s",
        args.cameras,
        args.alarms,
        humantime::format_duration(args.warmup),
        args.seconds
    );
    if let Some(every) = args.flap_every {
        println!(
            "{flapping} of the cameras drop for {} every {}",
            humantime::format_duration(args.flap_down),
            humantime::format_duration(every)
        );
    }
    tokio::time::sleep(args.warmup).await;

    let sample = |pid: u32, sent: &AtomicU64| -> anyhow::Result<Sample> {
        let p = process_sample(pid).context("the agent exited")?;
        Ok(Sample {
            cpu_s: p.cpu_seconds,
            rss_kb: p.rss_kb,
            sent: sent.load(Ordering::Relaxed),
        })
    };
    let start = Instant::now();
    let (full0, idle0) = (
        sample(full.pid(), &full_sent)?,
        sample(idle.pid(), &idle_sent)?,
    );
    let (mut full_max_rss, mut idle_max_rss) = (full0.rss_kb, idle0.rss_kb);
    let mut next_report = args.report_every;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while start.elapsed() < Duration::from_secs(args.seconds) {
        tick.tick().await;
        if let Some(f) = flapper.take_if(|f| f.is_finished()) {
            f.await?.context("flapping cameras")?;
        }
        let now = sample(full.pid(), &full_sent)?.rss_kb;
        full_max_rss = full_max_rss.max(now);
        idle_max_rss = idle_max_rss.max(sample(idle.pid(), &idle_sent)?.rss_kb);
        if args.flap_every.is_some() && start.elapsed() >= next_report {
            println!(
                "{:>6} s: agent with cameras {:.2} MB resident (max {:.2})",
                start.elapsed().as_secs(),
                mb(now),
                mb(full_max_rss)
            );
            next_report += args.report_every;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let (full1, idle1) = (
        sample(full.pid(), &full_sent)?,
        sample(idle.pid(), &idle_sent)?,
    );
    let per_day = |a: &Sample, b: &Sample| (b.sent - a.sent) as f64 / wall * 86_400.0;
    let cpu = |a: &Sample, b: &Sample| (b.cpu_s - a.cpu_s) / wall * 100.0;

    println!(
        "{:<22} {:>12} {:>12} {:>12} {:>16}",
        "agent", "RSS now MB", "RSS max MB", "CPU % core", "to broker MB/day"
    );
    for (name, a, b, max) in [
        (
            format!("{} cameras + {} alarms", args.cameras, args.alarms),
            &full0,
            &full1,
            full_max_rss,
        ),
        (
            "no devices (baseline)".to_string(),
            &idle0,
            &idle1,
            idle_max_rss,
        ),
    ] {
        println!(
            "{:<22} {:>12.1} {:>12.1} {:>12.2} {:>16.2}",
            name,
            mb(b.rss_kb),
            mb(max),
            cpu(a, b),
            per_day(a, b) / 1e6
        );
    }
    println!(
        "ratios to the baseline: RSS max {:.2}, CPU {:.2}, bytes {:.2}",
        full_max_rss as f64 / idle_max_rss.max(1) as f64,
        cpu(&full0, &full1) / cpu(&idle0, &idle1).max(1e-9),
        per_day(&full0, &full1) / per_day(&idle0, &idle1).max(1.0)
    );
    if args.flap_every.is_some() {
        println!(
            "agent with cameras over {:.0} s of flapping: RSS at start {:.2} MB, max {:.2} MB, end {:.2} MB; drift {:+.1} % (max {:+.1} % over the start)",
            wall,
            mb(full0.rss_kb),
            mb(full_max_rss),
            mb(full1.rss_kb),
            (full1.rss_kb as f64 / full0.rss_kb.max(1) as f64 - 1.0) * 100.0,
            (full_max_rss as f64 / full0.rss_kb.max(1) as f64 - 1.0) * 100.0
        );
    }
    Ok(())
}
