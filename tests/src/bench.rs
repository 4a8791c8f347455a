//! What the benchmark programs share: a program built next to them, run as a child
//! process that is killed when dropped; the CPU time and memory of a process from /proc;
//! percentiles; the open-files limit; waiting for a condition with a deadline; a campus's device inventory and heartbeat as a
//! gateway sends them; one sample of the server's `/metrics`; the lines of its live
//! event stream; and the load benchmark's registry, which the console benchmark shows too.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::Context;
use campuswatch_protocol::{CampusId, RegionCode, SchoolType};
use campuswatch_server::regions::RegionNames;
use campuswatch_server::registry::RegistryEntry;

static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Starts the clock that [`progress`] lines count from (else its first line does).
pub fn start_progress() {
    STARTED.get_or_init(std::time::Instant::now);
}

/// A progress line on stderr, with the time since the start; the figures go to stdout.
pub fn progress(what: impl std::fmt::Display) {
    let t = STARTED
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64();
    eprintln!("[{t:7.1} s] {what}");
}

/// A benchmark's shared state, even after a task panicked holding it.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A campus's device inventory and heartbeat as a gateway sends them.
pub use campuswatch_testkit::{heartbeat, inventory};

/// The program `name` built next to the running benchmark (`target/release/{name}`);
/// the error says how to build it.
pub fn sibling_program(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?
        .parent()
        .context("the benchmark's directory")?
        .join(name);
    anyhow::ensure!(
        exe.exists(),
        "{} not found: build it with `cargo build --release -p {package} --bin {name}`",
        exe.display()
    );
    Ok(exe)
}

/// A process killed (and reaped) when dropped, so a benchmark that fails leaves nothing
/// running behind it.
pub struct Running(pub Child);

impl Running {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL, as a crash or an out-of-memory kill would end it, and reap it.
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.0.kill()?;
        self.0.wait().map(|_| ())
    }

    /// SIGSTOP: its sockets stay open, the kernel still accepts connections for it, but
    /// nothing answers (a hung device). Dropping it kills it all the same.
    pub fn freeze(&self) -> std::io::Result<()> {
        // SAFETY: kill only sends a signal to the process this value owns.
        if unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGSTOP) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether it has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

/// Starts `command`, a peer from `tests/peers/` that binds a port and prints `PORT <n>`
/// on stdout, and waits for that line; what it prints afterwards is read and dropped, so
/// it never blocks on a full pipe.
pub fn peer_process(command: &mut std::process::Command) -> anyhow::Result<(Running, u16)> {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting the peer {command:?}"))?;
    let stdout = child.stdout.take().context("the peer's stdout")?;
    let running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let line = lines
            .next()
            .with_context(|| format!("the peer {command:?} exited before printing its port"))??;
        if let Some(p) = line.strip_prefix("PORT ") {
            break p
                .trim()
                .parse()
                .with_context(|| format!("the peer said {line:?}"))?;
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Ok((running, port))
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time and memory of one process, from `/proc/{pid}/stat` and `/proc/{pid}/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSample {
    /// User + system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident memory now (VmRSS), kB.
    pub rss_kb: u64,
    /// Highest resident memory so far (VmHWM), kB.
    pub hwm_kb: u64,
}

/// Clock ticks per second of `/proc/*/stat` times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// A sample of process `pid` (`None`: it is gone, or /proc is not readable).
pub fn process_sample(pid: u32) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields after its last ')'
    // start with the state (field 3), so utime and stime (14, 15) are 11 and 12 here.
    let after: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = after.get(11)?.parse::<f64>().ok()? + after.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcessSample {
        cpu_seconds: ticks / clock_ticks(),
        rss_kb: kb("VmRSS:"),
        hwm_kb: kb("VmHWM:"),
    })
}

/// This process's own sample.
pub fn own_sample() -> ProcessSample {
    process_sample(std::process::id()).unwrap_or_default()
}

/// The value at fraction `p` (0 to 1) of `sorted` values, NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize]
}

/// Raises this process's soft limit of open files to its hard limit (thousands of MQTT
/// connections are thousands of sockets); returns the limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur)
}

/// The soft limit of open files of process `pid`, from `/proc/{pid}/limits`
/// (`None`: unlimited, or not readable).
pub fn open_files_limit_of(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The value of a Prometheus sample line (`name{labels}`) in a `/metrics` text.
pub fn sample_value(metrics: &str, sample: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Splits a server-sent-events stream (`GET /api/v1/live`) into its events as the
/// chunks arrive, whatever their boundaries: `(event, data)` for each `data:` line, with
/// the `event:` name that came before it.
#[derive(Default)]
pub struct SseLines {
    buf: String,
    event: String,
}

impl SseLines {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<(String, String)> {
        self.buf.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(end) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=end).collect();
            let line = line.trim_end();
            if let Some(kind) = line.strip_prefix("event:") {
                self.event = kind.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                out.push((self.event.clone(), data.trim().to_string()));
            }
        }
        out
    }
}

/// Polls `check` every `every` until it gives `Some`, or fails after `within`.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    within: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            anyhow::bail!("{what}: not within {within:?}");
        }
        tokio::time::sleep(every).await;
    }
}

// ---- the load benchmark's registry ------------------------------------------------------

/// `counties` county codes of the built-in region table, from Ordos on (the end-to-end
/// tests use Hohhot's and Baotou's counties, which may share the broker).
pub fn bench_counties(counties: usize) -> anyhow::Result<Vec<RegionCode>> {
    let first_city = RegionCode::parse("150600")?;
    let all: Vec<RegionCode> = RegionNames::builtin()
        .counties()
        .map(|r| r.code)
        .filter(|c| {
            c.city()
                .is_some_and(|city| city.as_str() >= first_city.as_str())
        })
        .collect();
    anyhow::ensure!(
        counties >= 1 && counties <= all.len(),
        "--counties {counties}: the built-in region table has {} counties from Ordos on",
        all.len()
    );
    Ok(all.into_iter().take(counties).collect())
}

/// The school type of the `n`th campus of a county: 35 % kindergartens, 40 % primary,
/// 20 % secondary, 5 % other.
pub fn school_type(n: usize) -> SchoolType {
    match n % 20 {
        0..7 => SchoolType::Kindergarten,
        7..15 => SchoolType::Primary,
        15..19 => SchoolType::Secondary,
        _ => SchoolType::Other,
    }
}

/// The load benchmark's registry: `campuses` spread evenly over `counties` (the `n`th
/// campus of a county is `{county}-{K|P|S|O}-{n:04}`), each expecting `alarms` alarm
/// links and `cameras` cameras.
pub fn registry(
    counties: &[RegionCode],
    campuses: usize,
    alarms: u32,
    cameras: u32,
) -> anyhow::Result<Vec<RegistryEntry>> {
    let names = RegionNames::builtin();
    (0..campuses)
        .map(|i| {
            let county = counties[i % counties.len()];
            let n = i / counties.len() + 1;
            let t = school_type(n);
            let letter = match t {
                SchoolType::Kindergarten => 'K',
                SchoolType::Primary => 'P',
                SchoolType::Secondary => 'S',
                SchoolType::Other => 'O',
            };
            let id = format!("{county}-{letter}-{n:04}");
            Ok(RegistryEntry {
                campus: CampusId::parse(&id).with_context(|| format!("campus id {id}"))?,
                name: format!("{} {} school {n}", names.name(&county), t.as_str()),
                region: county,
                school_type: t,
                expected_alarms: alarms,
                expected_cameras: cameras,
                gb_device_ids: Vec::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn a_sample_is_read_from_metrics_text() {
        let text = "# TYPE x counter\ncw_messages_applied_total{kind=\"heartbeat\"} 1234\ncw_gateways{state=\"online\"} 7\n";
        assert_eq!(
            sample_value(text, "cw_messages_applied_total{kind=\"heartbeat\"}"),
            Some(1234.0)
        );
        assert_eq!(
            sample_value(text, "cw_gateways{state=\"online\"}"),
            Some(7.0)
        );
        assert_eq!(sample_value(text, "cw_gateways"), None);
    }

    #[test]
    fn server_sent_events_are_split_across_chunks() {
        let mut sse = SseLines::default();
        assert!(sse.push(b"event: transi").is_empty());
        let got = sse.push(b"tion\ndata: {\"a\":1}\n\n: keep-alive\nevent: resync\ndata: {}\n");
        assert_eq!(
            got,
            vec![
                ("transition".to_string(), "{\"a\":1}".to_string()),
                ("resync".to_string(), "{}".to_string())
            ]
        );
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = own_sample();
        assert!(s.rss_kb > 0);
        assert!(s.hwm_kb >= s.rss_kb);
        assert!(process_sample(u32::MAX).is_none());
    }
}
