//! Store queries for reports: the history around a period, maintenance windows as they
//! were, and the server's runs (written here too).

use crate::store::BeginWrite;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use campuswatch_protocol::{CampusId, RegionCode, SchoolType, Timestamp};
use chrono::{FixedOffset, NaiveDate, TimeDelta};
use serde::Serialize;
use sqlx::{QueryBuilder, Row};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{corrupt, parse_device, parse_id, parse_region, parse_ts, region_pattern, ts};
use super::{Store, StoreError};
use crate::clock::Clock;
use crate::gb28181::GbCode;
use crate::monitor::{AlertKind, DeviceRecord, GbDeviceRecord, Transition};
use crate::registry::RegistryEntry;
use crate::reports::{
    campus_availability, AvailabilityRules, CampusAvailability, CampusHistory, Period,
    PlatformHistory, ServerRun, WindowRecord,
};

/// How often a running server says it is alive.
pub const ALIVE_INTERVAL: Duration = Duration::from_secs(30);

impl Store {
    /// Records the start of a server run; returns its id.
    pub async fn start_server_run(&self, now: Timestamp) -> Result<i64, StoreError> {
        with_db!(self.pool(), |pool| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO server_runs (started_at, alive_at) VALUES ($1, $2) RETURNING id",
            )
            .bind(ts(now))
            .bind(ts(now))
            .fetch_one(pool)
            .await?;
            Ok(id)
        })
    }

    /// Says the run is still alive at `now`.
    pub async fn server_alive(&self, run: i64, now: Timestamp) -> Result<(), StoreError> {
        with_db!(self.pool(), |pool| {
            sqlx::query("UPDATE server_runs SET alive_at = $1 WHERE id = $2 AND alive_at < $3")
                .bind(ts(now))
                .bind(run)
                .bind(ts(now))
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The server's runs that overlap `[from, to)`, oldest first.
    /// When the history began: the first server run on this store or the first
    /// transition in it (stores older than the record of runs), if either is there.
    pub async fn history_start(&self) -> Result<Option<Timestamp>, StoreError> {
        let (run, transition): (Option<String>, Option<String>) = with_db!(self.pool(), |pool| {
            let run = sqlx::query_scalar("SELECT MIN(started_at) FROM server_runs")
                .fetch_one(pool)
                .await?;
            let transition = sqlx::query_scalar("SELECT MIN(at) FROM transitions")
                .fetch_one(pool)
                .await?;
            (run, transition)
        });
        let first = [run, transition]
            .into_iter()
            .flatten()
            .map(|t| parse_ts(&t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(first.into_iter().min())
    }

    pub async fn server_runs(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ServerRun>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows = sqlx::query(
                "SELECT started_at, alive_at FROM server_runs
                 WHERE started_at < $1 AND alive_at > $2 ORDER BY started_at, id",
            )
            .bind(ts(to))
            .bind(ts(from))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ServerRun {
                        started_at: parse_ts(r.try_get("started_at")?)?,
                        alive_at: parse_ts(r.try_get("alive_at")?)?,
                    })
                })
                .collect()
        })
    }

    /// Every maintenance window ever planned, withdrawn ones with when.
    pub async fn maintenance_history(&self) -> Result<Vec<WindowRecord>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows = sqlx::query("SELECT body, removed_at FROM maintenance ORDER BY id")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let body: String = r.try_get("body")?;
                    let removed: Option<String> = r.try_get("removed_at")?;
                    Ok(WindowRecord {
                        window: serde_json::from_str(&body)
                            .map_err(|e| corrupt("maintenance", e))?,
                        removed_at: removed.as_deref().map(parse_ts).transpose()?,
                    })
                })
                .collect()
        })
    }

    /// Per link (gateway or device) of the campuses within `region`: its last transition
    /// before `from`, and every transition in `[from, to)`, in time order.
    pub async fn transitions_around(
        &self,
        region: Option<RegionCode>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Transition>, StoreError> {
        with_db!(self.pool(), |pool| {
            let pattern = region.map_or_else(|| "%".to_string(), |r| region_pattern(&r));
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                "SELECT t.id, t.campus, t.region, t.device, t.kind, t.from_state, t.to_state, t.at
                 FROM transitions t JOIN (
                   SELECT campus, COALESCE(device, '') AS link, MAX(at) AS last FROM transitions
                   WHERE at < ",
            );
            qb.push_bind(ts(from))
                .push(" AND region LIKE ")
                .push_bind(pattern.clone())
                .push(
                    " GROUP BY campus, COALESCE(device, '')) p
                     ON p.campus = t.campus AND p.link = COALESCE(t.device, '') AND t.at = p.last
                     UNION ALL
                     SELECT id, campus, region, device, kind, from_state, to_state, at
                     FROM transitions WHERE at >= ",
                )
                .push_bind(ts(from))
                .push(" AND at < ")
                .push_bind(ts(to))
                .push(" AND region LIKE ")
                .push_bind(pattern)
                .push(" ORDER BY 8, 1");
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .filter_map(|r| {
                    let kind: String = match r.try_get("kind") {
                        Ok(k) => k,
                        Err(e) => return Some(Err(e.into())),
                    };
                    // Only gateway, alarm and camera rows are links: a campus's alarm and
                    // video networking are derived from its devices, never transitions of
                    // their own.
                    let kind = AlertKind::parse(&kind)
                        .filter(|k| !matches!(k, AlertKind::Video | AlertKind::AlarmNetworking))?;
                    Some((|| -> Result<Transition, StoreError> {
                        let device: Option<String> = r.try_get("device")?;
                        Ok(Transition {
                            campus: parse_id(r.try_get("campus")?)?,
                            region: parse_region(r.try_get("region")?)?,
                            device: device.as_deref().map(parse_device).transpose()?,
                            kind,
                            from: r.try_get("from_state")?,
                            to: r.try_get("to_state")?,
                            at: parse_ts(r.try_get("at")?)?,
                            cause: None,
                            cause_code: None,
                            event_id: None,
                            measurements: Default::default(),
                        })
                    })())
                })
                .collect()
        })
    }

    /// The current device inventory of every campus.
    pub async fn inventories(&self) -> Result<Vec<(String, DeviceRecord)>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows = sqlx::query("SELECT campus, record FROM devices ORDER BY campus, position")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let record: String = r.try_get("record")?;
                    Ok((
                        r.try_get("campus")?,
                        serde_json::from_str(&record).map_err(|e| corrupt("device", e))?,
                    ))
                })
                .collect()
        })
    }

    /// The availability of every registered campus within `region` over `period`, from
    /// the raw transition history alone (see `availability` for periods reaching back
    /// before the raw history's start).
    pub(super) async fn availability_raw(
        &self,
        region: Option<RegionCode>,
        period: Period,
        rules: AvailabilityRules,
    ) -> Result<Vec<CampusAvailability>, StoreError> {
        let registry = self.registry().await?;
        let mut rows: HashMap<String, Vec<Transition>> = HashMap::new();
        for t in self
            .transitions_around(region, period.from, period.to)
            .await?
        {
            rows.entry(t.campus.as_str().to_string())
                .or_default()
                .push(t);
        }
        let mut inventory: HashMap<String, Vec<DeviceRecord>> = HashMap::new();
        for (campus, d) in self.inventories().await? {
            inventory.entry(campus).or_default().push(d);
        }
        let windows = self.maintenance_history().await?;
        let runs = self.server_runs(period.from, period.to).await?;
        let gb = self.gb_devices().await?;
        let platform = PlatformUnits::new(&registry, &gb);
        Ok(registry
            .iter()
            .filter(|e| region.is_none_or(|r| e.region.is_within(&r)))
            .map(|e| {
                let id = e.campus.as_str().to_string();
                let h = CampusHistory::from_rows(
                    e.clone(),
                    period.from,
                    rows.remove(&id).unwrap_or_default(),
                    inventory.get(&id).map_or(&[][..], Vec::as_slice),
                    platform.history(e),
                );
                campus_availability(&h, period.from, period.to, &windows, &runs, rules)
            })
            .collect())
    }
}

/// The GB/T 28181 devices as stored, and who lists which code: what a campus's
/// [`PlatformHistory`] starts from.
struct PlatformUnits<'a> {
    devices: HashMap<GbCode, &'a GbDeviceRecord>,
    channel_device: HashMap<GbCode, GbCode>,
    owner: HashMap<GbCode, &'a CampusId>,
}

impl<'a> PlatformUnits<'a> {
    fn new(registry: &'a [RegistryEntry], gb: &'a [GbDeviceRecord]) -> Self {
        PlatformUnits {
            devices: gb.iter().map(|d| (d.id, d)).collect(),
            channel_device: gb
                .iter()
                .flat_map(|d| d.channels.iter().map(move |c| (c.id, d.id)))
                .collect(),
            owner: registry
                .iter()
                .flat_map(|e| e.gb_device_ids.iter().map(move |c| (*c, &e.campus)))
                .collect(),
        }
    }

    /// The campus's camera units with their devices' and channels' current states;
    /// `None` when its entry lists no codes.
    fn history(&self, e: &RegistryEntry) -> Option<PlatformHistory> {
        if e.gb_device_ids.is_empty() {
            return None;
        }
        let units = crate::monitor::campus_units(
            &e.campus,
            &e.gb_device_ids,
            |c| self.devices.get(c).copied(),
            |c| self.channel_device.get(c).copied(),
            |c| self.owner.get(c).copied(),
        );
        let mut p = PlatformHistory::default();
        for u in units
            .iter()
            .filter(|u| u.id.channel_kind() == crate::gb28181::ChannelKind::Camera)
        {
            let device = u.device.map_or(u.id, |d| d.id);
            p.cameras.push((u.id, device));
            if let Some(d) = u.device {
                p.devices.insert(d.id, d.online());
            }
            if let Some(ch) = u.channel {
                p.channels
                    .insert(ch.id, ch.status == crate::gb28181::ChannelStatus::On);
            }
        }
        Some(p)
    }
}

/// One day of coverage history for a region node (and school type, or all).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyCoverage {
    /// The local date.
    pub date: NaiveDate,
    pub registered: u64,
    /// Campuses with counted time that day.
    pub observed: u64,
    /// Average numbers of campuses over the day; null when none was observed.
    pub reporting: Option<f64>,
    pub alarm_networked: Option<f64>,
    pub video_networked: Option<f64>,
    pub fully_networked: Option<f64>,
    pub reporting_rate: Option<f64>,
    pub alarm_networked_rate: Option<f64>,
    pub video_networked_rate: Option<f64>,
    pub fully_networked_rate: Option<f64>,
}

/// The start of local `day` at `tz`.
pub fn local_midnight(day: NaiveDate, tz: FixedOffset) -> Option<Timestamp> {
    day.and_time(chrono::NaiveTime::MIN)
        .and_local_timezone(tz)
        .single()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn node_key(node: Option<RegionCode>) -> String {
    node.map_or_else(|| "all".to_string(), |r| r.to_string())
}

impl Store {
    /// Computes and stores the coverage history of local `day` from the transitions,
    /// unless it is stored already. Call it only for days that are over.
    pub async fn ensure_coverage_daily(
        &self,
        day: NaiveDate,
        tz: FixedOffset,
        rules: AvailabilityRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.ensure_coverage_days(day, day, tz, rules, now).await
    }

    /// [`Store::ensure_coverage_daily`] for every local day from `first` to `last`, with
    /// the history's bounds read once.
    pub async fn ensure_coverage_days(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        tz: FixedOffset,
        rules: AvailabilityRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // A day over before the history began is not computed: there is nothing to
        // compute, and storing a row per campus for it would only grow the store.
        let Some(start) = self.history_start().await? else {
            return Ok(());
        };
        // A day whose raw history is gone cannot be computed again: what is stored stays.
        let horizon = self.history_horizon().await?.map(|h| h.raw_from);
        let mut day = first;
        while day <= last {
            if let (Some(from), Some(to)) = (
                local_midnight(day, tz),
                day.succ_opt().and_then(|d| local_midnight(d, tz)),
            ) {
                if to > start && horizon.is_none_or(|h| from >= h) {
                    self.compute_coverage_day(day, from, to, tz, rules, now)
                        .await?;
                }
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        Ok(())
    }

    /// Computes local `day` (`from`..`to`) unless it is stored already.
    async fn compute_coverage_day(
        &self,
        day: NaiveDate,
        from: Timestamp,
        to: Timestamp,
        tz: FixedOffset,
        rules: AvailabilityRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let offset = i64::from(tz.local_minus_utc() / 60);
        let (have_coverage, have_campuses) = with_db!(self.pool(), |pool| {
            let coverage: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM coverage_daily WHERE day = $1 AND utc_offset_minutes = $2",
            )
            .bind(day.to_string())
            .bind(offset)
            .fetch_one(pool)
            .await?;
            let campuses: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM availability_daily
                 WHERE day = $1 AND utc_offset_minutes = $2",
            )
            .bind(day.to_string())
            .bind(offset)
            .fetch_one(pool)
            .await?;
            (coverage > 0, campuses > 0)
        });
        if have_coverage && have_campuses {
            return Ok(());
        }
        let campuses = self
            .availability_raw(None, Period { from, to }, rules)
            .await?;
        // (node, school type) -> registered, observed, sums
        let mut groups: BTreeMap<(String, SchoolType), (i64, i64, [f64; 4])> = BTreeMap::new();
        for c in &campuses {
            let nodes = c.region.lineage().map(Some).chain(std::iter::once(None));
            for node in nodes {
                let g = groups.entry((node_key(node), c.school_type)).or_default();
                g.0 += 1;
                let links = [c.gateway, c.alarm, c.video, c.fully];
                if c.gateway.counted_ms > 0 {
                    g.1 += 1;
                    for (sum, t) in g.2.iter_mut().zip(links) {
                        *sum += t.availability().unwrap_or(0.0);
                    }
                }
            }
        }
        // Since when a campus has not been fully networked goes back over the days before
        // (the day's own figure stops at its start).
        let before = match day.pred_opt() {
            Some(prev) if !have_campuses => self.not_fully_since(prev, tz).await?,
            _ => HashMap::new(),
        };
        with_db!(self.pool(), |pool| {
            let mut tx = pool.begin_write().await?;
            for ((node, school_type), (registered, observed, sums)) in
                groups.into_iter().filter(|_| !have_coverage)
            {
                sqlx::query(
                    "INSERT INTO coverage_daily (day, utc_offset_minutes, region, school_type,
                       registered, observed, reporting, alarm_networked, video_networked,
                       fully_networked, computed_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT DO NOTHING",
                )
                .bind(day.to_string())
                .bind(offset)
                .bind(node)
                .bind(school_type.as_str())
                .bind(registered)
                .bind(observed)
                .bind(sums[0])
                .bind(sums[1])
                .bind(sums[2])
                .bind(sums[3])
                .bind(ts(now))
                .execute(&mut *tx)
                .await?;
            }
            for c in campuses.iter().filter(|_| !have_campuses) {
                let since = match c.end.not_fully_since {
                    Some(s) if s == from => before.get(c.campus.as_str()).copied().or(Some(s)),
                    other => other,
                };
                sqlx::query(
                    "INSERT INTO availability_daily (day, utc_offset_minutes, campus, region,
                       gateway_counted_ms, gateway_up_ms, alarm_counted_ms, alarm_up_ms,
                       video_counted_ms, video_up_ms, fully_counted_ms, fully_up_ms,
                       end_online, end_alarm, end_video, not_fully_since,
                       video_agent_counted_ms, video_agent_up_ms, video_platform_counted_ms,
                       video_platform_up_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                       $16, $17, $18, $19, $20)
                     ON CONFLICT DO NOTHING",
                )
                .bind(day.to_string())
                .bind(offset)
                .bind(c.campus.as_str())
                .bind(c.region.as_str())
                .bind(c.gateway.counted_ms)
                .bind(c.gateway.up_ms)
                .bind(c.alarm.counted_ms)
                .bind(c.alarm.up_ms)
                .bind(c.video.counted_ms)
                .bind(c.video.up_ms)
                .bind(c.fully.counted_ms)
                .bind(c.fully.up_ms)
                .bind(c.end.online)
                .bind(c.end.alarm)
                .bind(c.end.video)
                .bind(since.map(ts))
                .bind(c.video_agent.counted_ms)
                .bind(c.video_agent.up_ms)
                .bind(c.video_platform.map(|t| t.counted_ms))
                .bind(c.video_platform.map(|t| t.up_ms))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The coverage of local `day` so far: from its start `from` to `now`, computed from
    /// the transitions as [`Store::ensure_coverage_daily`] computes a whole day, for a
    /// region node (or the whole area) and one school type or all. Not stored: it changes
    /// until the day is over.
    pub async fn coverage_so_far(
        &self,
        region: Option<RegionCode>,
        school_type: Option<SchoolType>,
        day: NaiveDate,
        from: Timestamp,
        now: Timestamp,
        rules: AvailabilityRules,
    ) -> Result<DailyCoverage, StoreError> {
        let campuses = self
            .availability(
                region,
                Period {
                    from,
                    to: now.max(from),
                },
                rules,
            )
            .await?;
        let (mut registered, mut observed, mut sums) = (0u64, 0u64, [0.0f64; 4]);
        for c in campuses
            .iter()
            .filter(|c| school_type.is_none_or(|t| c.school_type == t))
        {
            registered += 1;
            if c.gateway.counted_ms > 0 {
                observed += 1;
                for (sum, t) in sums.iter_mut().zip([c.gateway, c.alarm, c.video, c.fully]) {
                    *sum += t.availability().unwrap_or(0.0);
                }
            }
        }
        let rate = |i: usize| (observed > 0).then(|| sums[i] / observed as f64);
        let count = |x: Option<f64>| x.map(|x| x * registered as f64);
        Ok(DailyCoverage {
            date: day,
            registered,
            observed,
            reporting: count(rate(0)),
            alarm_networked: count(rate(1)),
            video_networked: count(rate(2)),
            fully_networked: count(rate(3)),
            reporting_rate: rate(0),
            alarm_networked_rate: rate(1),
            video_networked_rate: rate(2),
            fully_networked_rate: rate(3),
        })
    }

    /// The stored coverage history of a region node (or the whole area), one school type
    /// or all, for local days `from..=to`.
    pub async fn coverage_daily(
        &self,
        region: Option<RegionCode>,
        school_type: Option<SchoolType>,
        from: NaiveDate,
        to: NaiveDate,
        tz: FixedOffset,
    ) -> Result<Vec<DailyCoverage>, StoreError> {
        with_db!(self.pool(), |pool| {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                "SELECT day, CAST(SUM(registered) AS BIGINT) AS registered,
                       CAST(SUM(observed) AS BIGINT) AS observed,
                   SUM(reporting) AS reporting, SUM(alarm_networked) AS alarm,
                   SUM(video_networked) AS video, SUM(fully_networked) AS fully
                 FROM coverage_daily WHERE utc_offset_minutes = ",
            );
            qb.push_bind(i64::from(tz.local_minus_utc() / 60))
                .push(" AND region = ")
                .push_bind(node_key(region))
                .push(" AND day >= ")
                .push_bind(from.to_string())
                .push(" AND day <= ")
                .push_bind(to.to_string());
            if let Some(t) = school_type {
                qb.push(" AND school_type = ").push_bind(t.as_str());
            }
            qb.push(" GROUP BY day ORDER BY day");
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let day: String = r.try_get("day")?;
                    let registered: i64 = r.try_get("registered")?;
                    let observed: i64 = r.try_get("observed")?;
                    let rate = |col: &str| -> Result<Option<f64>, StoreError> {
                        let sum: f64 = r.try_get(col)?;
                        Ok((observed > 0).then(|| sum / observed as f64))
                    };
                    let (rep, alarm, video, fully) = (
                        rate("reporting")?,
                        rate("alarm")?,
                        rate("video")?,
                        rate("fully")?,
                    );
                    let count = |x: Option<f64>| x.map(|x| x * registered as f64);
                    Ok(DailyCoverage {
                        date: NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                            .map_err(|e| corrupt("coverage day", e))?,
                        registered: registered.max(0) as u64,
                        observed: observed.max(0) as u64,
                        reporting: count(rep),
                        alarm_networked: count(alarm),
                        video_networked: count(video),
                        fully_networked: count(fully),
                        reporting_rate: rep,
                        alarm_networked_rate: alarm,
                        video_networked_rate: video,
                        fully_networked_rate: fully,
                    })
                })
                .collect()
        })
    }
}

/// How many days of history [`keep_coverage_daily`] keeps (0: all): raw transitions and
/// audit log entries (the `history` settings).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub raw_days: u32,
    pub audit_days: u32,
}

/// Computes each local day's coverage history and per-campus availability once the day
/// is over (a few minutes after local midnight, so the last alive mark of the day is
/// stored), and keeps `keep.raw_days` days of raw history and `keep.audit_days` of the
/// audit log (0: all), until `shutdown`.
pub async fn keep_coverage_daily(
    store: Store,
    clock: Arc<dyn Clock>,
    rules: AvailabilityRules,
    tz: FixedOffset,
    keep: Retention,
    shutdown: CancellationToken,
) {
    let Retention {
        raw_days,
        audit_days,
    } = keep;
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let settled = clock.now() - TimeDelta::minutes(5);
        let yesterday = settled.with_timezone(&tz).date_naive() - TimeDelta::days(1);
        if let Err(e) = store
            .ensure_coverage_daily(yesterday, tz, rules, clock.now())
            .await
        {
            warn!(error = %e, day = %yesterday, "Could not compute the day's coverage history.");
        }
        if raw_days > 0 {
            match store.prune_history(raw_days, tz, rules, settled).await {
                Ok(0) => {}
                Ok(n) => info!(
                    removed = n,
                    raw_days, "Raw history older than its days removed (their roll-ups are kept)."
                ),
                Err(e) => warn!(error = %e, "Could not remove old raw history."),
            }
        }
        if audit_days > 0 {
            let before = clock.now() - TimeDelta::days(i64::from(audit_days));
            match store.prune_audit(before).await {
                Ok(0) => {}
                Ok(n) => info!(
                    removed = n,
                    audit_days, "Audit log entries older than their days removed."
                ),
                Err(e) => warn!(error = %e, "Could not remove old audit log entries."),
            }
        }
    }
}

/// Keeps saying that server run `run` (see [`Store::start_server_run`]) is alive, every
/// [`ALIVE_INTERVAL`] and once more at `shutdown`.
pub async fn keep_server_run(
    store: Store,
    clock: Arc<dyn Clock>,
    run: i64,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(ALIVE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = store.server_alive(run, clock.now()).await {
            warn!(error = %e, run, "Could not record that the server is alive.");
        }
    }
    if let Err(e) = store.server_alive(run, clock.now()).await {
        warn!(error = %e, run, "Could not record the end of the server run.");
    }
}

#[cfg(test)]
mod tests;
