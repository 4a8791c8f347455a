//! Retention of the raw transition history. Each local day's availability per campus is
//! rolled up (`availability_daily`, with the day's coverage history) once the day is
//! over; raw transitions older than `history.raw_days` are then removed, except each
//! link's last one before the cut (the state the history after it starts from).
//! Availability over a period that reaches back before the cut adds the roll-ups of its
//! whole days to the raw history after it, so reports keep their figures.

use crate::store::BeginWrite;
use std::collections::HashMap;

use campuswatch_protocol::{RegionCode, Timestamp};
use chrono::{FixedOffset, NaiveDate, TimeDelta};
use sqlx::QueryBuilder;

use super::reports::local_midnight;
use super::{parse_ts, region_pattern, ts, Cols, Store, StoreError};
use crate::reports::{AvailabilityRules, CampusAvailability, EndState, Period, Tally};

/// Where the raw history starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryHorizon {
    /// A local midnight: raw transitions before it are gone (but each link's last one).
    pub raw_from: Timestamp,
    /// The offset of the days rolled up before it.
    pub tz: FixedOffset,
}

/// A campus's rolled-up days within a period.
#[derive(Debug, Clone, Copy, Default)]
struct Rolled {
    /// Gateway, alarm, video (the view in force), fully networked, video by the agent.
    tallies: [Tally; 5],
    /// Video by the GB/T 28181 view, on days the campus listed codes.
    platform: Option<Tally>,
    /// The state at the end of the last day.
    end: EndState,
}

impl Store {
    /// Where the raw history starts, once some of it was removed.
    pub async fn history_horizon(&self) -> Result<Option<HistoryHorizon>, StoreError> {
        let row = with_db!(self.pool(), |pool| {
            let row = sqlx::query(
                "SELECT raw_from, utc_offset_minutes FROM history_horizon WHERE id = 1",
            )
            .fetch_optional(pool)
            .await?;
            row.map(|r| -> Result<(String, i64), StoreError> {
                Ok((r.col("raw_from")?, r.col("utc_offset_minutes")?))
            })
            .transpose()?
        });
        row.map(|(raw_from, minutes)| {
            Ok(HistoryHorizon {
                raw_from: parse_ts(&raw_from)?,
                tz: i32::try_from(minutes * 60)
                    .ok()
                    .and_then(FixedOffset::east_opt)
                    .ok_or_else(|| super::corrupt("history offset", minutes))?,
            })
        })
        .transpose()
    }

    /// Per campus, since when it had not been fully networked at the end of local `day`
    /// (campuses that were, or have no roll-up that day, are absent).
    pub(super) async fn not_fully_since(
        &self,
        day: NaiveDate,
        tz: FixedOffset,
    ) -> Result<HashMap<String, Timestamp>, StoreError> {
        let rows: Vec<(String, String)> = with_db!(self.pool(), |pool| {
            sqlx::query(
                "SELECT campus, not_fully_since FROM availability_daily
                 WHERE day = $1 AND utc_offset_minutes = $2 AND not_fully_since IS NOT NULL",
            )
            .bind(day.to_string())
            .bind(i64::from(tz.local_minus_utc() / 60))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| Ok((r.col("campus")?, r.col("not_fully_since")?)))
            .collect::<Result<_, StoreError>>()?
        });
        rows.into_iter()
            .map(|(c, s)| Ok((c, parse_ts(&s)?)))
            .collect()
    }

    /// The availability of every registered campus within `region` over `period`. Whole
    /// local days before the raw history's start come from their roll-ups; a period that
    /// starts there must start at a local midnight of the roll-ups' offset.
    pub async fn availability(
        &self,
        region: Option<RegionCode>,
        period: Period,
        rules: AvailabilityRules,
    ) -> Result<Vec<CampusAvailability>, StoreError> {
        let Some(h) = self.history_horizon().await? else {
            return self.availability_raw(region, period, rules).await;
        };
        if period.from >= h.raw_from {
            return self.availability_raw(region, period, rules).await;
        }
        let rolled_to = period.to.min(h.raw_from);
        let local = |t: Timestamp| t.with_timezone(&h.tz);
        if local(period.from).time() != chrono::NaiveTime::MIN
            || local(rolled_to).time() != chrono::NaiveTime::MIN
        {
            return Err(StoreError::BeforeHistory {
                raw_from: ts(h.raw_from),
                offset: h.tz.to_string(),
            });
        }
        let rolled = self
            .rolled(
                region,
                local(period.from).date_naive(),
                local(rolled_to).date_naive(),
                h.tz,
            )
            .await?;
        // The raw part (if any) lists the campuses; with none, a zero-length one does.
        let raw_from = rolled_to;
        let mut out = self
            .availability_raw(
                region,
                Period {
                    from: raw_from,
                    to: period.to.max(raw_from),
                },
                rules,
            )
            .await?;
        for c in &mut out {
            let Some(r) = rolled.get(c.campus.as_str()) else {
                continue;
            };
            let links = [
                &mut c.gateway,
                &mut c.alarm,
                &mut c.video,
                &mut c.fully,
                &mut c.video_agent,
            ];
            for (t, add) in links.into_iter().zip(r.tallies) {
                t.counted_ms += add.counted_ms;
                t.up_ms += add.up_ms;
            }
            if let Some(add) = r.platform {
                let t = c.video_platform.get_or_insert_with(Tally::default);
                t.counted_ms += add.counted_ms;
                t.up_ms += add.up_ms;
            }
            if period.to <= raw_from {
                c.end = r.end;
            } else if c.end.not_fully_since == Some(raw_from) {
                // Not fully networked since the raw part's start: since when before it.
                if let Some(before) = r.end.not_fully_since {
                    c.end.not_fully_since = Some(before);
                }
            }
            // "At least since the period's start".
            c.end.not_fully_since = c.end.not_fully_since.map(|s| s.max(period.from));
        }
        Ok(out)
    }

    /// The roll-ups of local days `from..to` per campus within `region`: summed tallies
    /// and the state at the end of the last day.
    async fn rolled(
        &self,
        region: Option<RegionCode>,
        from: NaiveDate,
        to: NaiveDate,
        tz: FixedOffset,
    ) -> Result<HashMap<String, Rolled>, StoreError> {
        let offset = i64::from(tz.local_minus_utc() / 60);
        let pattern = region.map_or_else(|| "%".to_string(), |r| region_pattern(&r));
        with_db!(self.pool(), |pool| {
            /// The roll-ups of the days and region asked for.
            fn within(
                qb: &mut QueryBuilder<'_, Db>,
                offset: i64,
                (from, to): (NaiveDate, NaiveDate),
                pattern: &str,
            ) {
                qb.push_bind(offset)
                    .push(" AND day >= ")
                    .push_bind(from.to_string())
                    .push(" AND day < ")
                    .push_bind(to.to_string())
                    .push(" AND region LIKE ")
                    .push_bind(pattern.to_string());
            }
            let mut qb = QueryBuilder::<Db>::new(
                "SELECT campus,
                   CAST(SUM(gateway_counted_ms) AS BIGINT) AS gc,
                   CAST(SUM(gateway_up_ms) AS BIGINT) AS gu,
                   CAST(SUM(alarm_counted_ms) AS BIGINT) AS ac,
                   CAST(SUM(alarm_up_ms) AS BIGINT) AS au,
                   CAST(SUM(video_counted_ms) AS BIGINT) AS vc,
                   CAST(SUM(video_up_ms) AS BIGINT) AS vu,
                   CAST(SUM(fully_counted_ms) AS BIGINT) AS fc,
                   CAST(SUM(fully_up_ms) AS BIGINT) AS fu,
                   CAST(SUM(COALESCE(video_agent_counted_ms, video_counted_ms)) AS BIGINT) AS vac,
                   CAST(SUM(COALESCE(video_agent_up_ms, video_up_ms)) AS BIGINT) AS vau,
                   CAST(SUM(video_platform_counted_ms) AS BIGINT) AS vpc,
                   CAST(SUM(video_platform_up_ms) AS BIGINT) AS vpu
                 FROM availability_daily WHERE utc_offset_minutes = ",
            );
            within(&mut qb, offset, (from, to), &pattern);
            qb.push(" GROUP BY campus");
            let mut out = HashMap::new();
            for r in qb.build().fetch_all(pool).await? {
                let tally = |c: &str, u: &str| -> Result<Tally, StoreError> {
                    Ok(Tally {
                        counted_ms: r.col(c)?,
                        up_ms: r.col(u)?,
                    })
                };
                out.insert(
                    r.col::<String>("campus")?,
                    Rolled {
                        tallies: [
                            tally("gc", "gu")?,
                            tally("ac", "au")?,
                            tally("vc", "vu")?,
                            tally("fc", "fu")?,
                            tally("vac", "vau")?,
                        ],
                        platform: match (r.col::<Option<i64>>("vpc")?, r.col::<Option<i64>>("vpu")?)
                        {
                            (Some(counted_ms), Some(up_ms)) => Some(Tally { counted_ms, up_ms }),
                            _ => None,
                        },
                        end: EndState::default(),
                    },
                );
            }
            // Each campus's state at the end of its last rolled-up day in the period.
            let mut qb = QueryBuilder::<Db>::new(
                "SELECT a.campus, a.end_online, a.end_alarm, a.end_video, a.not_fully_since
                 FROM availability_daily a JOIN (
                   SELECT campus, MAX(day) AS last FROM availability_daily
                   WHERE utc_offset_minutes = ",
            );
            within(&mut qb, offset, (from, to), &pattern);
            qb.push(
                " GROUP BY campus) l ON l.campus = a.campus AND l.last = a.day
                     WHERE a.utc_offset_minutes = ",
            )
            .push_bind(offset);
            for r in qb.build().fetch_all(pool).await? {
                let campus: String = r.col("campus")?;
                let since: Option<String> = r.col("not_fully_since")?;
                if let Some(c) = out.get_mut(&campus) {
                    c.end = EndState {
                        online: r.col("end_online")?,
                        alarm: r.col("end_alarm")?,
                        video: r.col("end_video")?,
                        video_agent: r.col("end_video")?,
                        video_platform: None,
                        not_fully_since: since.as_deref().map(parse_ts).transpose()?,
                    };
                }
            }
            Ok(out)
        })
    }

    /// Keeps the raw history of the last `raw_days` local days (at `tz`) before `now`:
    /// rolls up every earlier day not rolled up yet, then removes the raw transitions
    /// before the cut, but each link's last one. Returns how many rows went.
    pub async fn prune_history(
        &self,
        raw_days: u32,
        tz: FixedOffset,
        rules: AvailabilityRules,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let today = now.with_timezone(&tz).date_naive();
        let cut_day = today - TimeDelta::days(i64::from(raw_days));
        let Some(cut) = local_midnight(cut_day, tz) else {
            return Ok(0);
        };
        let current = self.history_horizon().await?;
        if current.is_some_and(|h| h.raw_from >= cut) {
            return Ok(0);
        }
        let first: Option<String> = match current {
            Some(h) => Some(ts(h.raw_from)),
            None => with_db!(self.pool(), |pool| {
                sqlx::query_scalar("SELECT MIN(at) FROM transitions")
                    .fetch_one(pool)
                    .await?
            }),
        };
        let Some(first) = first else {
            return Ok(0);
        };
        let day = parse_ts(&first)?.with_timezone(&tz).date_naive();
        if let Some(before_cut) = cut_day.pred_opt().filter(|d| *d >= day) {
            self.ensure_coverage_days(day, before_cut, tz, rules, now)
                .await?;
        }
        let cut = ts(cut);
        with_db!(self.pool(), |pool| {
            let mut tx = pool.begin_write().await?;
            let removed = sqlx::query(
                "DELETE FROM transitions WHERE at < $1 AND id NOT IN (
                   SELECT t.id FROM transitions t JOIN (
                     SELECT campus, COALESCE(device, '') AS link, MAX(at) AS last
                     FROM transitions WHERE at < $2 GROUP BY campus, COALESCE(device, '')
                   ) p ON p.campus = t.campus AND p.link = COALESCE(t.device, '')
                     AND t.at = p.last)",
            )
            .bind(&cut)
            .bind(&cut)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "INSERT INTO history_horizon (id, raw_from, utc_offset_minutes, updated_at)
                 VALUES (1, $1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET raw_from = excluded.raw_from,
                   utc_offset_minutes = excluded.utc_offset_minutes,
                   updated_at = excluded.updated_at",
            )
            .bind(&cut)
            .bind(i64::from(tz.local_minus_utc() / 60))
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(removed)
        })
    }
}
