//! Store benchmark: device events written through the server's store in batches of 1, 100
//! and 1,000 per transaction (the engine's group commit), on SQLite and on PostgreSQL in
//! the same run; then the bytes each stored event takes (table and indexes), and what a
//! year of history weighs at a given event rate. Not a test: it prints figures
//! (docs/BENCHMARKS.md).
//!
//! cargo run --release -p campuswatch-tests --bin store-bench -- \
//!     --postgres postgres://postgres@127.0.0.1:5432/test

use std::time::Instant;

use anyhow::Context;
use campuswatch_protocol::{CampusId, DeviceId, Measurements, RegionCode};
use campuswatch_server::monitor::{AlertKind, Change, Transition};
use campuswatch_server::store::Store;
use campuswatch_server::testing::TestSchema;
use chrono::{TimeDelta, Utc};
use clap::Parser;
use sqlx::Connection;

#[derive(Parser)]
struct Args {
    /// A PostgreSQL database to measure too (a schema of its own is made and dropped).
    #[arg(long, env = "CAMPUSWATCH_TEST_DATABASE_URL")]
    postgres: Option<String>,
    /// Events written per batch size (batches of 1 write a tenth of it).
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// For the size per year: campuses, devices per campus, and events per device a day.
    #[arg(long, default_value_t = 10_000)]
    campuses: u64,
    #[arg(long, default_value_t = 40)]
    devices: u64,
    #[arg(long, default_value_t = 2.0)]
    events_per_device_day: f64,
}

fn event(i: usize) -> Change {
    let campus = i % 1000;
    let (from, to) = if i.is_multiple_of(2) {
        ("up", "down")
    } else {
        ("down", "up")
    };
    Change::Transition(Transition {
        campus: CampusId::parse(&format!("150102-P-{campus:04}")).expect("campus id"),
        region: RegionCode::parse("150102").expect("region"),
        device: Some(DeviceId::parse(&format!("cam-{}", i % 38)).expect("device id")),
        kind: AlertKind::Camera,
        from: from.into(),
        to: to.into(),
        at: Utc::now() + TimeDelta::milliseconds(i as i64),
        cause: Some("no RTP packets within 2 s".into()),
        cause_code: None,
        event_id: Some(i as u64 + 1),
        measurements: Measurements::from([("latency_ms".to_string(), 12.5)]),
    })
}

/// Writes events `first..first + n` in batches of `batch`; returns events per second.
async fn write(store: &Store, first: usize, n: usize, batch: usize) -> anyhow::Result<f64> {
    let changes: Vec<Change> = (first..first + n).map(event).collect();
    let start = Instant::now();
    for chunk in changes.chunks(batch) {
        store.apply(chunk, Utc::now()).await?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

struct Measured {
    rates: Vec<(usize, f64)>,
    rows: usize,
}

async fn measure(store: &Store, events: usize) -> anyhow::Result<Measured> {
    let mut rates = Vec::new();
    let mut written = 0;
    for batch in [1, 100, 1000] {
        let n = if batch == 1 { events / 10 } else { events };
        rates.push((batch, write(store, written, n, batch).await?));
        written += n;
    }
    Ok(Measured {
        rates,
        rows: written,
    })
}

fn print(name: &str, m: &Measured, bytes: u64, args: &Args) {
    let per_row = bytes as f64 / m.rows as f64;
    let per_year =
        args.campuses as f64 * args.devices as f64 * args.events_per_device_day * 365.0 * per_row;
    for (batch, rate) in &m.rates {
        println!("{name}: batches of {batch:>4}: {rate:>9.0} events/s");
    }
    println!(
        "{name}: {per_row:.0} bytes per stored event (table and indexes, {} events); \
         a year at {} campuses x {} devices x {} events a day: {:.1} GB",
        m.rows,
        args.campuses,
        args.devices,
        args.events_per_device_day,
        per_year / 1e9
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let sqlite = Store::open(&format!("sqlite://{}", path.display())).await?;
    let m = measure(&sqlite, args.events).await?;
    drop(sqlite);
    // Size with the write-ahead log folded in: the file alone, after a checkpoint.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    let pages: i64 =
        sqlx::query_scalar("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'transitions%'")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(0);
    let bytes = if pages > 0 {
        pages as u64
    } else {
        std::fs::metadata(&path)?.len()
    };
    print("SQLite", &m, bytes, &args);

    if let Some(admin) = &args.postgres {
        // Dropped at the end, whatever happened.
        let schema = TestSchema::create(admin, "cw_store_bench")
            .await
            .with_context(|| format!("a schema in PostgreSQL at {admin}"))?;
        let pg = Store::open(&schema.url()).await?;
        let m = measure(&pg, args.events).await?;
        let mut conn = sqlx::PgConnection::connect(admin).await?;
        let bytes: i64 = sqlx::query_scalar(&format!(
            "SELECT pg_total_relation_size('{}.transitions')",
            schema.name()
        ))
        .fetch_one(&mut conn)
        .await?;
        print("PostgreSQL", &m, bytes as u64, &args);
    } else {
        println!("PostgreSQL: not measured (give --postgres URL or CAMPUSWATCH_TEST_DATABASE_URL)");
    }
    Ok(())
}
