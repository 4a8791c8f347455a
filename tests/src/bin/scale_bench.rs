//! In-process scale benchmark: the server's monitor holding N campuses with D devices
//! each (births and heartbeats applied as the ingest path applies them), then coverage
//! queried the way `GET /api/v1/coverage` asks it. Prints the resident memory per device
//! and the query latency; a 1,000-campus monitor measured first in the same process is
//! the baseline. Not a test: it prints figures (docs/BENCHMARKS.md).
//!
//! cargo build --release -p campuswatch-tests --bin scale-bench
//! ./target/release/scale-bench --campuses 100000 --devices 40

use std::time::Instant;

use campuswatch_protocol::{Birth, DeviceState, Message, RegionCode, SchoolType};
use campuswatch_server::monitor::{Monitor, Settings};
use campuswatch_server::registry::demo_registry;
use campuswatch_tests::bench::{heartbeat, inventory, percentile};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Campuses held.
    #[arg(long, default_value_t = 100_000)]
    campuses: usize,
    /// Devices per campus (1 alarm, the rest cameras).
    #[arg(long, default_value_t = 40)]
    devices: usize,
    /// Coverage queries timed per size.
    #[arg(long, default_value_t = 2_000)]
    queries: usize,
}

/// Resident memory of this process, in bytes, after handing freed memory back.
fn rss_bytes() -> u64 {
    campuswatch_agent::memory::release_free_memory();
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// A monitor with `campuses` registered campuses, each online with `devices` devices.
fn load(campuses: usize, devices: usize) -> Monitor {
    let now = chrono::Utc::now();
    let mut m = Monitor::new(Settings::default());
    let registry = demo_registry(campuses, 7);
    let _ = m.set_registry(&registry, true, now);
    for (n, e) in registry.iter().enumerate() {
        let mut reports = inventory(1, devices);
        for (d, r) in reports.iter_mut().enumerate() {
            // One camera in twenty down, so coverage has something to count.
            if (n + d) % 20 == 7 {
                r.state = DeviceState::Down;
            }
        }
        let birth = Message::Birth(Birth {
            v: 2,
            campus: e.campus.clone(),
            region: e.region,
            epoch: 1,
            at: now,
            agent_version: "bench".into(),
            config_digest: "bench".into(),
            heartbeat_interval_ms: 15_000,
            last_event_id: 0,
            devices: reports,
            dropped_events: 0,
        });
        let _ = m.apply(&birth, now);
        let _ = m.apply(&heartbeat(&e.campus, e.region, 1, 1, "", 0), now);
    }
    let _ = m.take_heartbeat_updates(usize::MAX);
    m
}

/// What `GET /api/v1/coverage?region=…` computes: the node's totals, one block per
/// school type and one per child; returns something of it so it is not optimised away.
fn coverage_query(m: &Monitor, region: Option<RegionCode>) -> u64 {
    let cov = m.coverage();
    let mut sum = cov.total(region, None).block().registered;
    for t in SchoolType::ALL {
        sum += cov.total(region, Some(t)).block().reporting;
    }
    match region {
        Some(r) if r.level() == campuswatch_protocol::RegionLevel::County => {
            for c in m.county_campuses(&r) {
                sum += c.contribution.block().fully_networked;
            }
        }
        _ => {
            for child in cov.child_regions(region).collect::<Vec<_>>() {
                sum += cov.total(Some(child), None).block().fully_networked;
            }
        }
    }
    sum
}

/// Latencies of `n` coverage queries over the whole area, a city and a county, in
/// microseconds: (p50, p99).
fn time_queries(m: &Monitor, n: usize) -> (f64, f64, u64) {
    let regions: Vec<Option<RegionCode>> = [None, Some("150000"), Some("150100"), Some("150102")]
        .into_iter()
        .map(|r| r.map(|c| RegionCode::parse(c).expect("region")))
        .collect();
    let mut us = Vec::with_capacity(n);
    let mut check = 0;
    for i in 0..n {
        let started = Instant::now();
        check += coverage_query(m, regions[i % regions.len()]);
        us.push(started.elapsed().as_secs_f64() * 1e6);
    }
    us.sort_by(f64::total_cmp);
    (percentile(&us, 0.5), percentile(&us, 0.99), check)
}

fn main() {
    let args = Args::parse();
    println!(
        "{:>9} {:>10} {:>12} {:>14} {:>12} {:>12} {:>10}",
        "campuses", "devices", "load s", "RSS added MB", "B / device", "query p50 ms", "p99 ms"
    );
    let mut baseline = None;
    for campuses in [1_000, args.campuses] {
        let before = rss_bytes();
        let started = Instant::now();
        let m = load(campuses, args.devices);
        let load_s = started.elapsed().as_secs_f64();
        let added = rss_bytes().saturating_sub(before);
        let devices = (campuses * args.devices) as u64;
        let (p50, p99, check) = time_queries(&m, args.queries);
        assert!(check > 0, "coverage counted nothing");
        let registered = m.coverage().total(None, None).block().registered;
        assert_eq!(registered as usize, campuses, "every campus counted");
        println!(
            "{:>9} {:>10} {:>12.1} {:>14.1} {:>12.0} {:>12.3} {:>10.3}",
            campuses,
            devices,
            load_s,
            added as f64 / 1e6,
            added as f64 / devices as f64,
            p50 / 1000.0,
            p99 / 1000.0
        );
        match baseline {
            None => baseline = Some((added as f64 / devices as f64, p99)),
            Some((per_device, base_p99)) => println!(
                "ratios to the 1,000-campus monitor: bytes per device {:.2}, query p99 {:.2}; {} devices would take {:.2} GiB",
                added as f64 / devices as f64 / per_device,
                p99 / base_p99,
                4_000_000,
                added as f64 / devices as f64 * 4e6 / (1u64 << 30) as f64
            ),
        }
        drop(m);
    }
}
