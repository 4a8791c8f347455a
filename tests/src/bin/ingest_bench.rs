//! Ingest benchmark: N simulated campuses, each its own MQTT connection, heartbeat
//! through a broker into the server. In the same run a bare rumqttc subscriber counts
//! what the broker delivers; the server's figure is printed next to it with the ratio,
//! so the machine's noise cancels out. Not a test: it prints figures (docs/BENCHMARKS.md).
//!
//! cargo run --release -p campuswatch-tests --bin ingest-bench -- --campuses 2000 --seconds 10

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use campuswatch_protocol::{Birth, CampusId, Message, RegionCode, SchoolType};
use campuswatch_server::registry::RegistryEntry;
use campuswatch_tests::bench::{heartbeat, inventory, own_sample};
use campuswatch_tests::{server_config, start_server, TestBroker};
use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[derive(Parser)]
struct Args {
    /// Simulated campuses (one MQTT connection each).
    #[arg(long, default_value_t = 2000)]
    campuses: usize,
    /// How long heartbeats are sent.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Heartbeats per second offered by all campuses together.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// External broker (e.g. mqtt://127.0.0.1:1883); default: an embedded one.
    #[arg(long)]
    mqtt_url: Option<String>,
}

const COUNTY: &str = "150102";

fn campus(i: usize) -> CampusId {
    CampusId::parse(&format!("bench-{i:06}")).expect("valid id")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let broker = TestBroker::at(args.mqtt_url.clone()).await;
    let dir = tempfile::tempdir()?;
    let mut cfg = server_config(dir.path(), &broker.url, COUNTY);
    cfg.liveness.default_heartbeat_interval = Duration::from_secs(5);
    cfg.mqtt.keepalive = Duration::from_secs(30);
    let server = start_server(cfg).await;
    let region = RegionCode::parse(COUNTY)?;
    let registry: Vec<RegistryEntry> = (0..args.campuses)
        .map(|i| RegistryEntry {
            campus: campus(i),
            name: format!("bench campus {i}"),
            region,
            school_type: SchoolType::Primary,
            expected_alarms: 1,
            expected_cameras: 4,
            gb_device_ids: Vec::new(),
        })
        .collect();
    server
        .import_registry(registry, true)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // The bare subscriber: what the broker delivers to anyone who asks.
    let bare = Arc::new(AtomicU64::new(0));
    {
        let mut o = MqttOptions::new(
            format!("bench-bare-{}", rand::random::<u32>()),
            broker.addr().ip().to_string(),
            broker.addr().port(),
        );
        o.set_keep_alive(Duration::from_secs(30))
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut el) = AsyncClient::new(o, 1024);
        client
            .subscribe(format!("cw/v1/{COUNTY}/+/heartbeat"), QoS::AtMostOnce)
            .await?;
        let bare = bare.clone();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(_))) => {
                        bare.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
    }

    // Campuses: connect, birth, then heartbeat at rate / campuses per second each.
    let per_campus = Duration::from_secs_f64(args.campuses as f64 / args.rate.max(1) as f64);
    let sent = Arc::new(AtomicU64::new(0));
    let start_at = Instant::now() + Duration::from_secs(3);
    let stop_at = start_at + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for i in 0..args.campuses {
        let addr = broker.addr();
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let id = campus(i);
            let mut o = MqttOptions::new(format!("cw-{id}"), addr.ip().to_string(), addr.port());
            o.set_keep_alive(Duration::from_secs(30));
            let (client, mut el) = AsyncClient::new(o, 64);
            tokio::spawn(async move { while el.poll().await.is_ok() {} });
            let birth = Message::Birth(Birth {
                v: 1,
                campus: id.clone(),
                region,
                epoch: 1,
                at: chrono::Utc::now(),
                agent_version: "bench".into(),
                config_digest: "bench".into(),
                heartbeat_interval_ms: 5000,
                last_event_id: 0,
                // The 40 devices its heartbeats' digest names (1 alarm, 39 cameras), so
                // that the server's view agrees and asks for no rebirth.
                devices: inventory(1, 40),
                dropped_events: 0,
            });
            let _ = client
                .publish(
                    birth.topic().to_string(),
                    QoS::AtLeastOnce,
                    false,
                    birth.encode(),
                )
                .await;
            tokio::time::sleep_until(
                tokio::time::Instant::from_std(start_at)
                    + per_campus.mul_f64((i % 1000) as f64 / 1000.0),
            )
            .await;
            let mut tick = tokio::time::interval(per_campus);
            let mut seq = 0;
            while Instant::now() < stop_at {
                tick.tick().await;
                seq += 1;
                let hb = heartbeat(&id, region, 1, seq, &"U".repeat(40), 0);
                if client
                    .publish(hb.topic().to_string(), QoS::AtMostOnce, false, hb.encode())
                    .await
                    .is_ok()
                {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = client.disconnect().await;
        }));
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(start_at)).await;
    let bare0 = bare.load(Ordering::Relaxed);
    let server0 = server
        .metrics
        .applied_count(campuswatch_protocol::MessageKind::Heartbeat);
    let cpu0 = own_sample().cpu_seconds;
    for t in tasks {
        let _ = t.await;
    }
    // Let both sides drain what the broker still holds.
    let mut last = (0, 0);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = (
            bare.load(Ordering::Relaxed),
            server
                .metrics
                .applied_count(campuswatch_protocol::MessageKind::Heartbeat),
        );
        if now == last {
            break;
        }
        last = now;
    }
    let cpu = own_sample().cpu_seconds - cpu0;
    let secs = args.seconds as f64;
    let bare_n = last.0 - bare0;
    let server_n = last.1 - server0;
    println!("campuses                      {}", args.campuses);
    println!("offered heartbeats/s          {}", args.rate);
    println!(
        "sent heartbeats               {}",
        sent.load(Ordering::Relaxed)
    );
    println!("bare subscriber received/s    {:.0}", bare_n as f64 / secs);
    println!(
        "server processed/s            {:.0}",
        server_n as f64 / secs
    );
    println!(
        "ratio server / bare           {:.3}",
        server_n as f64 / bare_n.max(1) as f64
    );
    println!(
        "process CPU seconds (all)     {cpu:.1} over {secs:.0}s (broker + server + load generator)"
    );
    let cov = server
        .monitor
        .read()
        .map(|m| m.coverage().total(None, None))
        .ok();
    if let Some(c) = cov {
        println!(
            "campuses reporting            {} of {}",
            c.reporting, c.registered
        );
    }
    server.stop().await;
    Ok(())
}
