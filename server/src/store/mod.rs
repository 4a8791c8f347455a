//! The store: registry, gateway and device states, transition history and alerts.
//!
//! SQLite by default (a file in the data directory). Writes come in batches of
//! [`Change`]s applied in one transaction, so many events cost one commit (group commit)
//! and a QoS 1 message is acknowledged only after the batch holding it is durable.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use campuswatch_protocol::{
    CampusId, CauseCode, DeviceId, Measurements, RegionCode, RegionLevel, SchoolType, Timestamp,
};
use campuswatch_service::redact;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Database, Postgres, QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::Notify;

use crate::model::Severity;
use crate::monitor::maintenance::Maintenance;
use crate::monitor::{
    Acknowledgement, Alert, AlertKind, AlertState, Change, DeviceRecord, GatewayRecord, Incident,
    IncidentState, Snapshot, Transition,
};
use crate::registry::RegistryEntry;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(
        "the raw history before {raw_from} is no longer kept: a period that starts before it must start and end at local midnights of UTC offset {offset} (whole days, from their daily roll-ups)"
    )]
    BeforeHistory { raw_from: String, offset: String },
    #[error("stored row is corrupt ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    Unsupported(String),
}

/// Formats a time the way every table stores it.
pub fn ts(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<Timestamp, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt("timestamp", e))
}

pub(crate) fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: e.to_string(),
    }
}

/// A stored transition with its row id and when the server received it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredTransition {
    pub id: i64,
    #[serde(flatten)]
    pub transition: Transition,
    pub received_at: Timestamp,
}

/// Filters for history and alert listings.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub campus: Option<CampusId>,
    pub region: Option<RegionCode>,
    pub kind: Option<AlertKind>,
    pub state: Option<AlertState>,
    /// Alerts only: of this severity.
    pub severity: Option<Severity>,
    /// Alerts only: acknowledged (`true`) or not.
    pub acknowledged: Option<bool>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: u32,
    pub offset: u32,
}

/// A campus's GB/T 28181 codes as the registry table keeps them: `;`-separated.
fn gb_codes_text(codes: &[crate::gb28181::GbCode]) -> String {
    codes
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

fn parse_gb_codes(text: String) -> Result<Vec<crate::gb28181::GbCode>, StoreError> {
    text.split(';')
        .filter(|s| !s.is_empty())
        .map(|s| crate::gb28181::GbCode::parse(s).map_err(|e| corrupt("gb_device_ids", e)))
        .collect()
}

/// SQL `LIKE` pattern for every code within a region node.
fn region_pattern(r: &RegionCode) -> String {
    let s = r.as_str();
    match r.level() {
        RegionLevel::Province => format!("{}%", &s[..2]),
        RegionLevel::City => format!("{}%", &s[..4]),
        RegionLevel::County => s.to_string(),
    }
}

/// The database behind the store: SQLite (the default) or PostgreSQL.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction that writes. On SQLite it takes the write lock when it begins
/// (`BEGIN IMMEDIATE`), so one that reads before it writes waits its turn under the busy
/// timeout instead of failing with "database is locked" when another writer committed
/// since its read; PostgreSQL's own transactions do not need it.
pub(crate) trait BeginWrite {
    type Db: Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Runs `$body` with `$p` bound to the store's pool and `Db` naming its sqlx database
/// type: each query is written once (with `$1`-style parameters, which both databases
/// take) and compiled for both.
macro_rules! with_db {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::store::Pool::Sqlite($p) => {
                #[allow(dead_code)]
                type Db = ::sqlx::Sqlite;
                $body
            }
            $crate::store::Pool::Postgres($p) => {
                #[allow(dead_code)]
                type Db = ::sqlx::Postgres;
                $body
            }
        }
    };
}
pub(crate) use with_db;

/// A value a column decodes to, the same on both databases.
pub(crate) trait ColType:
    for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
{
}
impl<T> ColType for T where
    T: for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

/// A row of either database, read by column name.
pub(crate) trait Cols {
    fn col<T: ColType>(&self, name: &str) -> Result<T, sqlx::Error>;
}

impl Cols for SqliteRow {
    fn col<T: ColType>(&self, name: &str) -> Result<T, sqlx::Error> {
        self.try_get(name)
    }
}

impl Cols for PgRow {
    fn col<T: ColType>(&self, name: &str) -> Result<T, sqlx::Error> {
        self.try_get(name)
    }
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Pinged after a commit that wrote notices, so the dispatcher delivers them at once
    /// instead of at its next poll.
    notices_committed: Arc<Notify>,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date:
    /// `sqlite://PATH` or `postgres://USER@HOST[:PORT]/DATABASE` (PostgreSQL's own URL
    /// parameters apply, e.g. `?sslmode=require` or `?options[search_path]=SCHEMA`).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(open_postgres(url).await?)
        } else {
            Pool::Sqlite(open_sqlite(url).await?)
        };
        Ok(Store {
            pool,
            notices_committed: Arc::new(Notify::new()),
        })
    }

    /// Which database this is, for logs and `/healthz`.
    pub fn kind(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Woken after every commit that wrote a notice (one stored permit if nobody waits,
    /// so a wake-up between two looks at the outbox is not lost).
    pub fn notice_signal(&self) -> Arc<Notify> {
        self.notices_committed.clone()
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        with_db!(&self.pool, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .is_ok())
    }

    /// Applies a batch of changes in one transaction.
    pub async fn apply(&self, changes: &[Change], now: Timestamp) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let now = ts(now);
        let mut wrote_notice = false;
        with_db!(&self.pool, |pool| {
            async fn upsert_device(
                tx: &mut sqlx::Transaction<'_, Db>,
                campus: &CampusId,
                d: &DeviceRecord,
                position: Option<i64>,
            ) -> Result<(), StoreError> {
                let json = serde_json::to_string(d).map_err(|e| corrupt("device", e))?;
                sqlx::query(
                    "INSERT INTO devices (campus, device, position, kind, state, record)
                     VALUES ($1, $2, COALESCE($3, (SELECT COUNT(*) FROM devices WHERE campus = $4)), $5, $6, $7)
                     ON CONFLICT (campus, device) DO UPDATE SET kind = excluded.kind,
                       state = excluded.state, record = excluded.record",
                )
                .bind(campus.as_str())
                .bind(d.id.as_str())
                .bind(position)
                .bind(campus.as_str())
                .bind(d.kind.as_str())
                .bind(d.state.as_str())
                .bind(json)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }
            async fn insert_transitions(
                tx: &mut sqlx::Transaction<'_, Db>,
                run: &[&Transition],
                now: &str,
            ) -> Result<(), StoreError> {
                let measurements = run
                    .iter()
                    .map(|t| serde_json::to_string(&t.measurements))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| corrupt("measurements", e))?;
                let codes = run
                    .iter()
                    .map(|t| t.cause_code.as_ref().map(serde_json::to_string).transpose())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| corrupt("cause_code", e))?;
                let rows: Vec<_> = run.iter().zip(measurements).zip(codes).collect();
                // 12 parameters a row: far below either database's limit per statement.
                for chunk in rows.chunks(500) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "INSERT INTO transitions (campus, region, device, kind, from_state,
                           to_state, at, cause, event_id, measurements, received_at,
                           cause_code) ",
                    );
                    qb.push_values(chunk, |mut b, ((t, m), code)| {
                        b.push_bind(t.campus.as_str())
                            .push_bind(t.region.as_str())
                            .push_bind(t.device.as_ref().map(|d| d.as_str()))
                            .push_bind(t.kind.as_str())
                            .push_bind(t.from.as_str())
                            .push_bind(t.to.as_str())
                            .push_bind(ts(t.at))
                            .push_bind(t.cause.as_deref())
                            .push_bind(t.event_id.map(|i| i as i64))
                            .push_bind(m.as_str())
                            .push_bind(now)
                            .push_bind(code.as_deref());
                    });
                    // A redelivered event (even twice in one run) is stored once.
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
            let mut tx = pool.begin_write().await?;
            let mut i = 0;
            while i < changes.len() {
                let change = &changes[i];
                i += 1;
                if let Change::Transition(first) = change {
                    // A run of transitions (a burst of events) goes in multi-row inserts.
                    let mut run = vec![first];
                    while let Some(Change::Transition(t)) = changes.get(i) {
                        run.push(t);
                        i += 1;
                    }
                    insert_transitions(&mut tx, &run, &now).await?;
                    continue;
                }
                match change {
                    Change::Gateway {
                        campus,
                        region,
                        record,
                    } => {
                        let json =
                            serde_json::to_string(record).map_err(|e| corrupt("gateway", e))?;
                        sqlx::query(
                            "INSERT INTO gateways (campus, region, state, epoch, record, updated_at)
                             VALUES ($1, $2, $3, $4, $5, $6)
                             ON CONFLICT (campus) DO UPDATE SET region = excluded.region,
                               state = excluded.state, epoch = excluded.epoch,
                               record = excluded.record, updated_at = excluded.updated_at",
                        )
                        .bind(campus.as_str())
                        .bind(region.as_str())
                        .bind(record.state.as_str())
                        .bind(record.epoch as i64)
                        .bind(json)
                        .bind(&now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Change::Inventory { campus, devices } => {
                        sqlx::query("DELETE FROM devices WHERE campus = $1")
                            .bind(campus.as_str())
                            .execute(&mut *tx)
                            .await?;
                        for (pos, d) in devices.iter().enumerate() {
                            upsert_device(&mut tx, campus, d, Some(pos as i64)).await?;
                        }
                    }
                    Change::Device { campus, device } => {
                        upsert_device(&mut tx, campus, device, None).await?;
                    }
                    // Written with the run they open, below.
                    Change::Transition(_) => {}
                    Change::Alert(a) => {
                        let ack = a.acknowledged.as_ref();
                        let code = a
                            .cause_code
                            .as_ref()
                            .map(serde_json::to_string)
                            .transpose()
                            .map_err(|e| corrupt("cause_code", e))?;
                        sqlx::query(
                            "INSERT INTO alerts (id, campus, region, device, kind, state, since,
                               cause, resolved_at, updated_at, severity, opened_at, acked_by,
                               acked_at, ack_comment, flapping, notified, incident, cause_code)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
                             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                               cause = excluded.cause, cause_code = excluded.cause_code,
                               resolved_at = excluded.resolved_at,
                               updated_at = excluded.updated_at, acked_by = excluded.acked_by,
                               acked_at = excluded.acked_at, ack_comment = excluded.ack_comment,
                               flapping = excluded.flapping, notified = excluded.notified,
                               incident = excluded.incident",
                        )
                        .bind(a.id as i64)
                        .bind(a.campus.as_str())
                        .bind(a.region.as_str())
                        .bind(a.device.as_ref().map(|d| d.as_str()))
                        .bind(a.kind.as_str())
                        .bind(a.state.as_str())
                        .bind(ts(a.since))
                        .bind(&a.cause)
                        .bind(a.resolved_at.map(ts))
                        .bind(&now)
                        .bind(a.severity.as_str())
                        .bind(ts(a.opened_at))
                        .bind(ack.map(|k| k.by.as_str()))
                        .bind(ack.map(|k| ts(k.at)))
                        .bind(ack.and_then(|k| k.comment.as_deref()))
                        .bind(a.flapping)
                        .bind(a.notified)
                        .bind(a.incident.map(|i| i as i64))
                        .bind(code)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Change::Acknowledged { alert, ack } => {
                        sqlx::query(
                            "INSERT INTO alert_acks (alert, by_name, at, comment)
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(*alert as i64)
                        .bind(&ack.by)
                        .bind(ts(ack.at))
                        .bind(ack.comment.as_deref())
                        .execute(&mut *tx)
                        .await?;
                    }
                    Change::Incident(i) => {
                        let campuses = serde_json::to_string(&i.campuses)
                            .map_err(|e| corrupt("incident", e))?;
                        let open = serde_json::to_string(&i.open_alerts)
                            .map_err(|e| corrupt("incident", e))?;
                        sqlx::query(
                            "INSERT INTO incidents (id, region, state, since, opened_at, resolved_at,
                               campuses, open_alerts, updated_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                               resolved_at = excluded.resolved_at, campuses = excluded.campuses,
                               open_alerts = excluded.open_alerts, updated_at = excluded.updated_at",
                        )
                        .bind(i.id as i64)
                        .bind(i.region.as_str())
                        .bind(i.state.as_str())
                        .bind(ts(i.since))
                        .bind(ts(i.opened_at))
                        .bind(i.resolved_at.map(ts))
                        .bind(campuses)
                        .bind(open)
                        .bind(&now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Change::MaintenanceAdded(w) => {
                        let body =
                            serde_json::to_string(w).map_err(|e| corrupt("maintenance", e))?;
                        sqlx::query(
                            "INSERT INTO maintenance (id, body, created_at) VALUES ($1, $2, $3)
                             ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                        )
                        .bind(w.id as i64)
                        .bind(body)
                        .bind(ts(w.created_at))
                        .execute(&mut *tx)
                        .await?;
                    }
                    Change::MaintenanceRemoved { id } => {
                        sqlx::query("UPDATE maintenance SET removed_at = $1 WHERE id = $2")
                            .bind(&now)
                            .bind(*id as i64)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Change::GbDevice(d) => {
                        let json = serde_json::to_string(d).map_err(|e| corrupt("gb_device", e))?;
                        sqlx::query(
                            "INSERT INTO gb_devices (code, state, record, updated_at)
                             VALUES ($1, $2, $3, $4)
                             ON CONFLICT (code) DO UPDATE SET state = excluded.state,
                               record = excluded.record, updated_at = excluded.updated_at",
                        )
                        .bind(d.id.as_str())
                        .bind(d.state.as_str())
                        .bind(json)
                        .bind(&now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Change::Notice(n) => {
                        wrote_notice = true;
                        let body = serde_json::to_string(n).map_err(|e| corrupt("notice", e))?;
                        // The id is deterministic: a notice derived twice is stored once.
                        sqlx::query(
                            "INSERT INTO notices (id, kind, severity, region, body, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6)
                             ON CONFLICT (id) DO NOTHING",
                        )
                        .bind(&n.id)
                        .bind(n.kind.as_str())
                        .bind(n.severity.as_str())
                        .bind(n.region.map(|r| r.as_str().to_string()))
                        .bind(body)
                        .bind(ts(n.at))
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        if wrote_notice {
            self.notices_committed.notify_one();
        }
        Ok(())
    }

    /// Loads or updates registry entries in one transaction: all or nothing. With
    /// `replace`, entries not in `entries` are removed.
    pub async fn import_registry(
        &self,
        entries: &[RegistryEntry],
        replace: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        with_db!(self.pool(), |pool| {
            let now = ts(now);
            let mut tx = pool.begin_write().await?;
            if replace {
                // Only the campuses that leave: those that stay keep when they were
                // registered.
                let keep: HashSet<&str> = entries.iter().map(|e| e.campus.as_str()).collect();
                let listed: Vec<String> = sqlx::query_scalar("SELECT campus FROM registry")
                    .fetch_all(&mut *tx)
                    .await?;
                let gone: Vec<&String> = listed
                    .iter()
                    .filter(|c| !keep.contains(c.as_str()))
                    .collect();
                for chunk in gone.chunks(500) {
                    let mut qb: QueryBuilder<Db> =
                        QueryBuilder::new("DELETE FROM registry WHERE campus IN (");
                    let mut list = qb.separated(", ");
                    for c in chunk {
                        list.push_bind(c.as_str());
                    }
                    qb.push(")");
                    qb.build().execute(&mut *tx).await?;
                }
            }
            // Multi-row inserts: a 100,000-row registry is a few hundred statements.
            for chunk in entries.chunks(500) {
                let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                    "INSERT INTO registry (campus, name, region, school_type, expected_alarms,
                       expected_cameras, updated_at, registered_at, gb_device_ids) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(e.campus.as_str())
                        .push_bind(&e.name)
                        .push_bind(e.region.as_str())
                        .push_bind(e.school_type.as_str())
                        .push_bind(e.expected_alarms as i64)
                        .push_bind(e.expected_cameras as i64)
                        .push_bind(&now)
                        .push_bind(&now)
                        .push_bind(gb_codes_text(&e.gb_device_ids));
                });
                qb.push(
                    " ON CONFLICT (campus) DO UPDATE SET name = excluded.name,
                       region = excluded.region, school_type = excluded.school_type,
                       expected_alarms = excluded.expected_alarms,
                       expected_cameras = excluded.expected_cameras,
                       gb_device_ids = excluded.gb_device_ids,
                       updated_at = excluded.updated_at",
                );
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn registry(&self) -> Result<Vec<RegistryEntry>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows = sqlx::query(
                "SELECT campus, name, region, school_type, expected_alarms, expected_cameras,
                   gb_device_ids FROM registry ORDER BY campus",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let school: String = r.try_get("school_type")?;
                    Ok(RegistryEntry {
                        campus: parse_id(r.try_get("campus")?)?,
                        name: r.try_get("name")?,
                        region: parse_region(r.try_get("region")?)?,
                        school_type: SchoolType::parse(&school)
                            .ok_or_else(|| corrupt("school_type", &school))?,
                        expected_alarms: count(r.try_get("expected_alarms")?)?,
                        expected_cameras: count(r.try_get("expected_cameras")?)?,
                        gb_device_ids: parse_gb_codes(r.try_get("gb_device_ids")?)?,
                    })
                })
                .collect()
        })
    }

    /// When each registered campus entered the registry.
    pub async fn registered_at(&self) -> Result<HashMap<CampusId, Timestamp>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows = sqlx::query(
                "SELECT campus, COALESCE(registered_at, updated_at) AS at FROM registry",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok((parse_id(r.try_get("campus")?)?, parse_ts(r.try_get("at")?)?)))
                .collect()
        })
    }

    /// Everything the monitor needs to resume after a restart.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        with_db!(self.pool(), |pool| {
            let registry = self.registry().await?;
            let registered_at = self.registered_at().await?;
            let gateways = sqlx::query("SELECT campus, region, record FROM gateways")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    let record: String = r.try_get("record")?;
                    Ok((
                        parse_id(r.try_get("campus")?)?,
                        parse_region(r.try_get("region")?)?,
                        serde_json::from_str::<GatewayRecord>(&record)
                            .map_err(|e| corrupt("gateway", e))?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            // Row by row, and grouped by campus as they come (in campus order): a
            // province's devices number in the millions. Holding every row next to its
            // parsed record doubled the memory a restart needs, and a campus id parsed
            // for every row left millions of freed strings between the records kept,
            // memory the allocator could not hand back.
            // A campus's devices gather in one buffer used over and over, and each list
            // kept is allocated once at its exact size: a list grown device by device
            // left four freed buffers a campus between the records kept.
            let mut devices: Vec<(CampusId, Vec<DeviceRecord>)> = Vec::new();
            let mut campus_devices: Vec<DeviceRecord> = Vec::new();
            let mut rows =
                sqlx::query("SELECT campus, record FROM devices ORDER BY campus, position")
                    .fetch(pool);
            while let Some(r) = rows.try_next().await? {
                let campus: &str = r.try_get("campus")?;
                let record: &str = r.try_get("record")?;
                let device = serde_json::from_str::<DeviceRecord>(record)
                    .map_err(|e| corrupt("device", e))?;
                if devices.last().is_none_or(|(id, _)| id.as_str() != campus) {
                    if let Some((_, list)) = devices.last_mut() {
                        *list = exact_sized(&mut campus_devices);
                    }
                    devices.push((parse_id(campus)?, Vec::new()));
                }
                campus_devices.push(device);
            }
            if let Some((_, list)) = devices.last_mut() {
                *list = exact_sized(&mut campus_devices);
            }
            drop(rows);
            let alerts = self.query_alerts(&Filter::default(), true).await?;
            let max_alert_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM alerts")
                .fetch_one(pool)
                .await?;
            let incidents = self
                .incidents(Some(IncidentState::Open), None, u32::MAX, 0)
                .await?;
            let max_incident_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM incidents")
                .fetch_one(pool)
                .await?;
            let maintenance = self.maintenance(false).await?;
            let gb_devices = self.gb_devices().await?;
            let max_maintenance_id: Option<i64> =
                sqlx::query_scalar("SELECT MAX(id) FROM maintenance")
                    .fetch_one(pool)
                    .await?;
            Ok(Snapshot {
                registry,
                registered_at,
                gateways,
                devices,
                alerts,
                max_alert_id: max_alert_id.unwrap_or(0).max(0) as u64,
                incidents,
                max_incident_id: max_incident_id.unwrap_or(0).max(0) as u64,
                maintenance,
                max_maintenance_id: max_maintenance_id.unwrap_or(0).max(0) as u64,
                gb_devices,
            })
        })
    }

    /// The GB/T 28181 devices as last stored, in code order.
    pub async fn gb_devices(&self) -> Result<Vec<crate::monitor::GbDeviceRecord>, StoreError> {
        with_db!(self.pool(), |pool| {
            let records: Vec<String> =
                sqlx::query_scalar("SELECT record FROM gb_devices ORDER BY code")
                    .fetch_all(pool)
                    .await?;
            records
                .iter()
                .map(|r| serde_json::from_str(r).map_err(|e| corrupt("gb_device", e)))
                .collect()
        })
    }

    /// Maintenance windows by id; with `withdrawn`, also those taken back.
    pub async fn maintenance(&self, withdrawn: bool) -> Result<Vec<Maintenance>, StoreError> {
        with_db!(self.pool(), |pool| {
            let sql = if withdrawn {
                "SELECT body FROM maintenance ORDER BY id"
            } else {
                "SELECT body FROM maintenance WHERE removed_at IS NULL ORDER BY id"
            };
            let bodies: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await?;
            bodies
                .iter()
                .map(|b| serde_json::from_str(b).map_err(|e| corrupt("maintenance", e)))
                .collect()
        })
    }

    /// Transitions, newest first.
    pub async fn transitions(&self, f: &Filter) -> Result<Vec<StoredTransition>, StoreError> {
        with_db!(self.pool(), |pool| {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                "SELECT id, campus, region, device, kind, from_state, to_state, at, cause, event_id,
                   measurements, received_at, cause_code FROM transitions WHERE 1 = 1",
            );
            push_common(&mut qb, f, "at");
            qb.push(" ORDER BY at DESC, id DESC LIMIT ")
                .push_bind(f.limit as i64)
                .push(" OFFSET ")
                .push_bind(f.offset as i64);
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let kind: String = r.try_get("kind")?;
                    let m: Option<String> = r.try_get("measurements")?;
                    let device: Option<String> = r.try_get("device")?;
                    let event_id: Option<i64> = r.try_get("event_id")?;
                    Ok(StoredTransition {
                        id: r.try_get("id")?,
                        transition: Transition {
                            campus: parse_id(r.try_get("campus")?)?,
                            region: parse_region(r.try_get("region")?)?,
                            device: device.as_deref().map(parse_device).transpose()?,
                            kind: AlertKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
                            from: r.try_get("from_state")?,
                            to: r.try_get("to_state")?,
                            at: parse_ts(r.try_get("at")?)?,
                            cause: r.try_get("cause")?,
                            cause_code: parse_code(r.try_get("cause_code")?)?,
                            event_id: event_id.map(|i| i as u64),
                            measurements: match m {
                                Some(m) => serde_json::from_str::<Measurements>(&m)
                                    .map_err(|e| corrupt("measurements", e))?,
                                None => Measurements::new(),
                            },
                        },
                        received_at: parse_ts(r.try_get("received_at")?)?,
                    })
                })
                .collect()
        })
    }

    /// Alerts, newest first.
    pub async fn alerts(&self, f: &Filter) -> Result<Vec<Alert>, StoreError> {
        self.query_alerts(f, false).await
    }

    /// Alerts matching `f`, newest first; `active_only` = every alert not resolved,
    /// without paging (for a restart).
    async fn query_alerts(&self, f: &Filter, active_only: bool) -> Result<Vec<Alert>, StoreError> {
        with_db!(self.pool(), |pool| {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                "SELECT id, campus, region, device, kind, state, since, cause, resolved_at,
                   severity, opened_at, acked_by, acked_at, ack_comment, flapping, notified,
                   incident, cause_code
                 FROM alerts WHERE 1 = 1",
            );
            push_common(&mut qb, f, "since");
            if let Some(s) = f.state {
                qb.push(" AND state = ").push_bind(s.as_str());
            }
            if let Some(s) = f.severity {
                qb.push(" AND severity = ").push_bind(s.as_str());
            }
            match f.acknowledged {
                Some(true) => {
                    qb.push(" AND acked_by IS NOT NULL");
                }
                Some(false) => {
                    qb.push(" AND acked_by IS NULL");
                }
                None => {}
            }
            if active_only {
                qb.push(" AND state <> 'resolved' ORDER BY id");
            } else {
                qb.push(" ORDER BY since DESC, id DESC LIMIT ")
                    .push_bind(f.limit.min(i64::MAX as u32) as i64)
                    .push(" OFFSET ")
                    .push_bind(f.offset as i64);
            }
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter().map(alert_row).collect()
        })
    }

    /// Regional incidents, newest first, optionally of one state and within one region
    /// (filtered before paging, so that a page holds `limit` of the region's incidents).
    pub async fn incidents(
        &self,
        state: Option<IncidentState>,
        region: Option<RegionCode>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Incident>, StoreError> {
        with_db!(self.pool(), |pool| {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                "SELECT id, region, state, since, opened_at, resolved_at, campuses, open_alerts
                 FROM incidents WHERE 1 = 1",
            );
            if let Some(s) = state {
                qb.push(" AND state = ").push_bind(s.as_str());
            }
            if let Some(r) = &region {
                qb.push(" AND region LIKE ").push_bind(region_pattern(r));
            }
            qb.push(" ORDER BY id DESC LIMIT ")
                .push_bind(limit.min(i64::MAX as u32) as i64)
                .push(" OFFSET ")
                .push_bind(offset.min(i64::MAX as u64) as i64);
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let state: String = r.try_get("state")?;
                    let resolved: Option<String> = r.try_get("resolved_at")?;
                    let campuses: String = r.try_get("campuses")?;
                    let open: String = r.try_get("open_alerts")?;
                    Ok(Incident {
                        id: r.try_get::<i64, _>("id")? as u64,
                        region: parse_region(r.try_get("region")?)?,
                        state: IncidentState::parse(&state)
                            .ok_or_else(|| corrupt("incident state", &state))?,
                        since: parse_ts(r.try_get("since")?)?,
                        opened_at: parse_ts(r.try_get("opened_at")?)?,
                        resolved_at: resolved.as_deref().map(parse_ts).transpose()?,
                        campuses: serde_json::from_str(&campuses)
                            .map_err(|e| corrupt("incident campuses", e))?,
                        open_alerts: serde_json::from_str(&open)
                            .map_err(|e| corrupt("incident alerts", e))?,
                    })
                })
                .collect()
        })
    }
}

fn alert_row(r: &impl Cols) -> Result<Alert, StoreError> {
    let kind: String = r.col("kind")?;
    let state: String = r.col("state")?;
    let severity: String = r.col("severity")?;
    let device: Option<String> = r.col("device")?;
    let resolved: Option<String> = r.col("resolved_at")?;
    let since = parse_ts(&r.col::<String>("since")?)?;
    let opened: Option<String> = r.col("opened_at")?;
    let acked_by: Option<String> = r.col("acked_by")?;
    let acked_at: Option<String> = r.col("acked_at")?;
    let incident: Option<i64> = r.col("incident")?;
    Ok(Alert {
        id: r.col::<i64>("id")? as u64,
        campus: parse_id(&r.col::<String>("campus")?)?,
        region: parse_region(r.col("region")?)?,
        device: device.as_deref().map(parse_device).transpose()?,
        kind: AlertKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        state: AlertState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        severity: Severity::parse(&severity).ok_or_else(|| corrupt("severity", &severity))?,
        since,
        // Alerts stored before hold-down existed opened when the link dropped.
        opened_at: opened
            .as_deref()
            .map(parse_ts)
            .transpose()?
            .unwrap_or(since),
        cause: r.col("cause")?,
        cause_code: parse_code(r.col("cause_code")?)?,
        resolved_at: resolved.as_deref().map(parse_ts).transpose()?,
        acknowledged: match (acked_by, acked_at) {
            (Some(by), Some(at)) => Some(Acknowledgement {
                by,
                at: parse_ts(&at)?,
                comment: r.col("ack_comment")?,
            }),
            _ => None,
        },
        flapping: r.col("flapping")?,
        notified: r.col("notified")?,
        incident: incident.map(|i| i as u64),
    })
}

fn push_common<'a, DB: Database>(qb: &mut QueryBuilder<'a, DB>, f: &Filter, time_col: &str)
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(c) = &f.campus {
        qb.push(" AND campus = ").push_bind(c.as_str().to_string());
    }
    if let Some(r) = &f.region {
        qb.push(" AND region LIKE ").push_bind(region_pattern(r));
    }
    if let Some(k) = f.kind {
        qb.push(" AND kind = ").push_bind(k.as_str().to_string());
    }
    if let Some(s) = f.since {
        qb.push(format!(" AND {time_col} >= ")).push_bind(ts(s));
    }
    if let Some(u) = f.until {
        qb.push(format!(" AND {time_col} < ")).push_bind(ts(u));
    }
}

fn open_error(url: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |source| StoreError::Open {
        url: redact::url(url),
        source,
    }
}

async fn open_sqlite(url: &str) -> Result<SqlitePool, StoreError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Unsupported(redact::url(url)))?;
    if let Some(dir) = Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| open_error(url)(sqlx::Error::Io(e)))?;
        }
    }
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
        .map_err(open_error(url))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a commit survives power loss, which is what acknowledging a QoS 1
        // message promises. Group commit keeps the cost per event small.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(std::time::Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .map_err(open_error(url))?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

async fn open_postgres(url: &str) -> Result<PgPool, StoreError> {
    let opts = PgConnectOptions::from_str(url).map_err(open_error(url))?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(opts)
        .await
        .map_err(open_error(url))?;
    // sqlx holds an advisory lock while migrating, so replicas starting together
    // migrate once.
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}

/// `buffer`'s items moved into a vector of exactly their number; `buffer` keeps its
/// room for the next.
fn exact_sized<T>(buffer: &mut Vec<T>) -> Vec<T> {
    let mut exact = Vec::with_capacity(buffer.len());
    exact.append(buffer);
    exact
}

fn parse_id(s: &str) -> Result<CampusId, StoreError> {
    CampusId::parse(s).map_err(|e| corrupt("campus", e))
}

fn parse_device(s: &str) -> Result<DeviceId, StoreError> {
    DeviceId::parse(s).map_err(|e| corrupt("device", e))
}

fn parse_region(s: String) -> Result<RegionCode, StoreError> {
    RegionCode::parse(&s).map_err(|e| corrupt("region", e))
}

fn parse_code(s: Option<String>) -> Result<Option<CauseCode>, StoreError> {
    s.map(|s| serde_json::from_str(&s).map_err(|e| corrupt("cause_code", e)))
        .transpose()
}

fn count(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|e| corrupt("count", e))
}

mod users;
pub use users::{TokenInfo, UserInfo, LAST_USED_STEP};
mod audit;
pub use audit::{AuditAction, AuditEntry, AuditFilter, NewAudit};
mod reports;
pub use reports::{keep_coverage_daily, keep_server_run, local_midnight, DailyCoverage, Retention};
mod retention;
pub use retention::HistoryHorizon;

#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;
