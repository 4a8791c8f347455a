//! Live-update benchmark: how the server's event stream (`GET /api/v1/live`) holds up
//! as more consoles keep it open. Gateways report device transitions over MQTT at a
//! steady rate; every console counts the transitions it receives and how long after
//! the device changed each one arrived. The same load runs first with one console (the
//! baseline) and then with many, in the same process, so the ratio cancels the
//! machine's noise. Not a test: it prints figures (docs/BENCHMARKS.md).
//!
//! cargo run --release -p campuswatch-tests --bin live-bench -- --consoles 1000

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use campuswatch_protocol::{DeviceKind, DeviceState, SchoolType};
use campuswatch_tests::bench::{percentile, SseLines};
use campuswatch_tests::{
    device, event, registry_entry, server_config, start_server, RawGateway, TestBroker,
};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Consoles holding the live stream open in the measured run.
    #[arg(long, default_value_t = 1000)]
    consoles: usize,
    /// Gateways reporting transitions.
    #[arg(long, default_value_t = 100)]
    campuses: usize,
    /// Device transitions per second, all gateways together.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    /// How long each run sends transitions.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

const COUNTY: &str = "150102";

/// What the consoles of one run saw.
#[derive(Default)]
struct Seen {
    /// Delay from the device's change to its arrival at a console, in ms, per arrival.
    delays_ms: Vec<f64>,
    resyncs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir()?;
    let mut cfg = server_config(dir.path(), &broker.url, COUNTY);
    cfg.liveness.default_heartbeat_interval = Duration::from_secs(5);
    let server = start_server(cfg).await;
    let ids: Vec<String> = (0..args.campuses).map(|i| format!("live-{i:04}")).collect();
    server
        .import_registry(
            ids.iter()
                .map(|id| registry_entry(id, COUNTY, SchoolType::Primary, 1, 1))
                .collect(),
            true,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut gateways = Vec::new();
    for id in &ids {
        let devices = vec![
            device("alarm-1", DeviceKind::Alarm, DeviceState::Up),
            device("cam-1", DeviceKind::Camera, DeviceState::Up),
        ];
        let heartbeats = Duration::from_millis(300);
        gateways.push(RawGateway::online(broker.addr(), id, COUNTY, 1, devices, heartbeats).await);
    }
    let live = format!("http://{}/api/v1/live", server.http_addr());

    println!(
        "{:>9} {:>12} {:>12} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "consoles", "transitions", "delivered", "expected", "p50 ms", "p99 ms", "max ms", "resyncs"
    );
    let mut next_event = vec![0u64; gateways.len()];
    let mut up = vec![true; gateways.len()];
    let mut baseline_p99 = None;
    for consoles in [1, args.consoles] {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let http = reqwest::Client::new();
        let mut readers = Vec::new();
        for _ in 0..consoles {
            let resp = http.get(&live).send().await?;
            anyhow::ensure!(resp.status().is_success(), "live stream: {}", resp.status());
            readers.push(tokio::spawn(read_stream(resp, seen.clone())));
        }
        // Let every stream be subscribed before the first change.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let total = args.rate * args.seconds;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
        for n in 0..total as usize {
            tick.tick().await;
            let i = n % gateways.len();
            next_event[i] += 1;
            up[i] = !up[i];
            let (from, to) = if up[i] {
                (DeviceState::Down, DeviceState::Up)
            } else {
                (DeviceState::Up, DeviceState::Down)
            };
            let g = &gateways[i];
            g.publish(&event(
                &g.campus,
                g.region,
                1,
                next_event[i],
                "cam-1",
                DeviceKind::Camera,
                (from, to),
            ))
            .await;
        }
        // Wait until every console has every transition, or 10 s of nothing new.
        let expected = total as usize * consoles;
        let mut last = (0, Instant::now());
        loop {
            let n = seen.lock().unwrap().delays_ms.len();
            if n >= expected || last.1.elapsed() > Duration::from_secs(10) {
                break;
            }
            if n != last.0 {
                last = (n, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for r in readers {
            r.abort();
        }
        let mut seen = std::mem::take(&mut *seen.lock().unwrap());
        seen.delays_ms.sort_by(f64::total_cmp);
        let q = |p: f64| percentile(&seen.delays_ms, p);
        println!(
            "{:>9} {:>12} {:>12} {:>10} {:>9.1} {:>9.1} {:>9.1} {:>8}",
            consoles,
            total,
            seen.delays_ms.len(),
            expected,
            q(0.5),
            q(0.99),
            q(1.0),
            seen.resyncs
        );
        match baseline_p99 {
            None => baseline_p99 = Some(q(0.99)),
            Some(base) => println!(
                "delivered/expected {:.3}; p99 delay with {} consoles / with 1: {:.2}",
                seen.delays_ms.len() as f64 / expected as f64,
                consoles,
                q(0.99) / base
            ),
        }
    }
    for g in gateways {
        g.kill();
    }
    server.stop().await;
    Ok(())
}

/// Reads one console's stream: for each camera transition, how long after the change
/// it came.
async fn read_stream(mut resp: reqwest::Response, seen: Arc<Mutex<Seen>>) {
    let mut sse = SseLines::default();
    while let Ok(Some(chunk)) = resp.chunk().await {
        for (event, data) in sse.push(&chunk) {
            if event == "resync" {
                seen.lock().unwrap().resyncs += 1;
            } else if event == "transition" {
                let v: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
                if v["data"]["kind"] != "camera" {
                    continue; // the campus's video as a whole, say
                }
                if let Some(at) = v["data"]["at"]
                    .as_str()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                {
                    let ms = (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                        .num_microseconds()
                        .unwrap_or(0) as f64
                        / 1000.0;
                    seen.lock().unwrap().delays_ms.push(ms);
                }
            }
        }
    }
}
