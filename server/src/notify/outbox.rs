//! The outbox: the `deliveries` table and the notices it delivers. Every state change of
//! a delivery is a committed row update, so a restart resumes where the last process
//! stopped: nothing routed is lost, nothing sent is sent again — except an attempt that
//! was under way when the process died, which is sent once more (at least once; the
//! webhook's `Idempotency-Key` lets a receiver drop the repeat).
//!
//! States: `pending` (waiting for `next_at`) → `sending` (attempt under way) → `sent`, or
//! back to `pending` with a later `next_at`, or `failed` (given up at `give_up_at`, with
//! the last error); `summarized` when the rate limit folded it into a summary notice.

use campuswatch_protocol::Timestamp;
use serde::Serialize;
use sqlx::Row;

use super::{format, Notice};
use crate::store::{corrupt, parse_ts, ts, with_db, Store, StoreError};

/// How many rows one look at the outbox takes at most.
const BATCH: i64 = 1000;

/// A delivery as stored, for the API, tests and operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub notice: String,
    pub channel: String,
    pub state: String,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub next_at: Timestamp,
    pub give_up_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub summary: Option<String>,
}

/// A delivery due to be attempted.
#[derive(Debug, Clone)]
pub struct Due {
    pub notice: Notice,
    pub attempts: u32,
    pub give_up_at: Timestamp,
}

/// One notice's routing: the channels it goes to (possibly none).
pub struct Route {
    pub notice_id: String,
    pub problem: Option<String>,
    pub channels: Vec<String>,
    pub give_up_at: Timestamp,
}

fn notice_of(body: &str) -> Result<Notice, StoreError> {
    serde_json::from_str(body).map_err(|e| corrupt("notice", e))
}

impl Store {
    /// Notices not yet routed, oldest first.
    pub async fn unrouted_notices(&self) -> Result<Vec<Notice>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT body FROM notices WHERE NOT routed ORDER BY created_at, id LIMIT $1",
            )
            .bind(BATCH)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|b| notice_of(b)).collect()
        })
    }

    /// The channels that have a delivery of any notice of `problem`.
    pub async fn channels_of_problem(&self, problem: &str) -> Result<Vec<String>, StoreError> {
        with_db!(self.pool(), |pool| {
            Ok(sqlx::query_scalar(
                "SELECT DISTINCT d.channel FROM deliveries d JOIN notices n ON n.id = d.notice
                 WHERE n.problem = $1 ORDER BY d.channel",
            )
            .bind(problem)
            .fetch_all(pool)
            .await?)
        })
    }

    /// The first notice of `problem` (its opening), whose labels its later notices keep.
    pub async fn first_of_problem(&self, problem: &str) -> Result<Option<Notice>, StoreError> {
        with_db!(self.pool(), |pool| {
            let body: Option<String> = sqlx::query_scalar(
                "SELECT body FROM notices WHERE problem = $1 ORDER BY created_at, id LIMIT 1",
            )
            .bind(problem)
            .fetch_optional(pool)
            .await?;
            body.as_deref().map(notice_of).transpose()
        })
    }

    /// Makes the deliveries of routed notices and marks them routed, in one transaction.
    pub async fn route_notices(&self, routes: &[Route], now: Timestamp) -> Result<(), StoreError> {
        with_db!(self.pool(), |pool| {
            let now = ts(now);
            let mut tx = pool.begin().await?;
            for r in routes {
                for channel in &r.channels {
                    sqlx::query(
                        "INSERT INTO deliveries (notice, channel, state, attempts, created_at,
                           next_at, give_up_at, updated_at)
                         VALUES ($1, $2, 'pending', 0, $3, $4, $5, $6)
                         ON CONFLICT (notice, channel) DO NOTHING",
                    )
                    .bind(&r.notice_id)
                    .bind(channel)
                    .bind(&now)
                    .bind(&now)
                    .bind(ts(r.give_up_at))
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("UPDATE notices SET routed = TRUE, problem = $1 WHERE id = $2")
                    .bind(&r.problem)
                    .bind(&r.notice_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// After a restart: attempts that were under way are due again (they may have
    /// arrived: at least once), and deliveries to channels no longer configured fail.
    /// Returns (attempts resumed, deliveries failed).
    pub async fn recover_deliveries(
        &self,
        channels: &[&str],
        now: Timestamp,
    ) -> Result<(u64, u64), StoreError> {
        with_db!(self.pool(), |pool| {
            let now = ts(now);
            let resumed = sqlx::query(
                "UPDATE deliveries SET state = 'pending', next_at = $1, updated_at = $2,
                   last_error = 'interrupted by a restart; sent again (it may have arrived)'
                 WHERE state = 'sending'",
            )
            .bind(&now)
            .bind(&now)
            .execute(pool)
            .await?
            .rows_affected();
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "UPDATE deliveries SET state = 'failed', updated_at = ",
            );
            qb.push_bind(&now).push(
                ", last_error = 'the channel is no longer configured' WHERE state = 'pending'",
            );
            if !channels.is_empty() {
                qb.push(" AND channel NOT IN (");
                let mut sep = qb.separated(", ");
                for c in channels {
                    sep.push_bind(*c);
                }
                qb.push(")");
            }
            let dropped = qb.build().execute(pool).await?.rows_affected();
            Ok((resumed, dropped))
        })
    }

    /// Pending deliveries of `channel` due at `now`: the longest waiting first, so a
    /// delivery that keeps failing moves behind the others instead of blocking them.
    pub async fn due_deliveries(
        &self,
        channel: &str,
        now: Timestamp,
    ) -> Result<Vec<Due>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows = sqlx::query(
                "SELECT n.body, d.attempts, d.give_up_at FROM deliveries d
                 JOIN notices n ON n.id = d.notice
                 WHERE d.channel = $1 AND d.state = 'pending' AND d.next_at <= $2
                 ORDER BY d.next_at, n.created_at, n.id LIMIT $3",
            )
            .bind(channel)
            .bind(ts(now))
            .bind(BATCH)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Due {
                        notice: notice_of(r.try_get("body")?)?,
                        attempts: r.try_get::<i64, _>("attempts")?.max(0) as u32,
                        give_up_at: parse_ts(r.try_get("give_up_at")?)?,
                    })
                })
                .collect()
        })
    }

    /// When the next pending delivery of `channel` falls due.
    pub async fn next_due(&self, channel: &str) -> Result<Option<Timestamp>, StoreError> {
        with_db!(self.pool(), |pool| {
            let t: Option<String> = sqlx::query_scalar(
                "SELECT MIN(next_at) FROM deliveries WHERE channel = $1 AND state = 'pending'",
            )
            .bind(channel)
            .fetch_one(pool)
            .await?;
            t.as_deref().map(parse_ts).transpose()
        })
    }

    /// Messages `channel` was sent after `since`, and the earliest of their times.
    pub async fn sent_since(
        &self,
        channel: &str,
        since: Timestamp,
    ) -> Result<(u32, Option<Timestamp>), StoreError> {
        with_db!(self.pool(), |pool| {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, MIN(sent_at) AS first FROM deliveries
                 WHERE channel = $1 AND state = 'sent' AND sent_at > $2",
            )
            .bind(channel)
            .bind(ts(since))
            .fetch_one(pool)
            .await?;
            let first: Option<String> = row.try_get("first")?;
            Ok((
                row.try_get::<i64, _>("n")?.max(0) as u32,
                first.as_deref().map(parse_ts).transpose()?,
            ))
        })
    }

    /// Whether a summary for `channel` was made after `since`.
    pub async fn summarized_since(
        &self,
        channel: &str,
        since: Timestamp,
    ) -> Result<bool, StoreError> {
        with_db!(self.pool(), |pool| {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries d JOIN notices n ON n.id = d.notice
                 WHERE d.channel = $1 AND n.kind = 'summary' AND d.created_at > $2",
            )
            .bind(channel)
            .bind(ts(since))
            .fetch_one(pool)
            .await?;
            Ok(n > 0)
        })
    }

    /// Marks a pending delivery as being attempted; false if it is not pending (another
    /// dispatcher took it, or it was folded meanwhile).
    pub async fn claim_delivery(
        &self,
        notice: &str,
        channel: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        with_db!(self.pool(), |pool| {
            let n = sqlx::query(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = $1
                 WHERE notice = $2 AND channel = $3 AND state = 'pending'",
            )
            .bind(ts(now))
            .bind(notice)
            .bind(channel)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    pub async fn delivery_sent(
        &self,
        notice: &str,
        channel: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.end_attempt(notice, channel, "sent", None, None, Some(now), now)
            .await
    }

    /// A failed attempt: due again at `next_at`, or given up when that is `None`.
    pub async fn delivery_failed(
        &self,
        notice: &str,
        channel: &str,
        error: &str,
        next_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let state = if next_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        self.end_attempt(notice, channel, state, next_at, Some(error), None, now)
            .await
    }

    /// Records how an attempt ended; `None` keeps a column as it is.
    #[allow(clippy::too_many_arguments)]
    async fn end_attempt(
        &self,
        notice: &str,
        channel: &str,
        state: &str,
        next_at: Option<Timestamp>,
        error: Option<&str>,
        sent_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        with_db!(self.pool(), |pool| {
            sqlx::query(
                "UPDATE deliveries SET state = $1, next_at = COALESCE($2, next_at),
                   last_error = COALESCE($3, last_error), sent_at = COALESCE($4, sent_at),
                   updated_at = $5
                 WHERE notice = $6 AND channel = $7",
            )
            .bind(state)
            .bind(next_at.map(ts))
            .bind(error)
            .bind(sent_at.map(ts))
            .bind(ts(now))
            .bind(notice)
            .bind(channel)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Gives up the pending deliveries of `channel` whose time is past (one due exactly
    /// at its limit gets its last attempt first); those never
    /// attempted get `why` as their error. Returns how many.
    pub async fn give_up_deliveries(
        &self,
        channel: &str,
        why: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        with_db!(self.pool(), |pool| {
            let now = ts(now);
            Ok(sqlx::query(
                "UPDATE deliveries SET state = 'failed', updated_at = $1,
                   last_error = COALESCE(last_error, $2)
                 WHERE channel = $3 AND state = 'pending' AND give_up_at < $4",
            )
            .bind(&now)
            .bind(why)
            .bind(channel)
            .bind(&now)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }

    /// Stores `summary` as a notice with one delivery (to `channel`) and marks the
    /// pending deliveries of `folded` as carried by it, in one transaction. Returns how
    /// many it folded (some may have left `pending` meanwhile).
    pub async fn fold_into_summary(
        &self,
        channel: &str,
        summary: &Notice,
        folded: &[String],
        give_up_at: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        with_db!(self.pool(), |pool| {
            let body = serde_json::to_string(summary).map_err(|e| corrupt("notice", e))?;
            let now = ts(now);
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO notices (id, kind, severity, region, body, created_at, routed)
                 VALUES ($1, $2, $3, NULL, $4, $5, TRUE)",
            )
            .bind(&summary.id)
            .bind(summary.kind.as_str())
            .bind(summary.severity.as_str())
            .bind(body)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO deliveries (notice, channel, state, attempts, created_at, next_at,
                   give_up_at, updated_at)
                 VALUES ($1, $2, 'pending', 0, $3, $4, $5, $6)",
            )
            .bind(&summary.id)
            .bind(channel)
            .bind(&now)
            .bind(&now)
            .bind(ts(give_up_at))
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            let mut n = 0;
            for id in folded {
                n += sqlx::query(
                    "UPDATE deliveries SET state = 'summarized', summary = $1, updated_at = $2
                     WHERE notice = $3 AND channel = $4 AND state = 'pending'",
                )
                .bind(&summary.id)
                .bind(&now)
                .bind(id)
                .bind(channel)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            Ok(n)
        })
    }

    /// The notices a summary carries to `channel`.
    pub async fn folded_notices(
        &self,
        summary: &str,
        channel: &str,
    ) -> Result<Vec<Notice>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT n.body FROM deliveries d JOIN notices n ON n.id = d.notice
                 WHERE d.summary = $1 AND d.channel = $2 ORDER BY n.created_at, n.id",
            )
            .bind(summary)
            .bind(channel)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|b| notice_of(b)).collect()
        })
    }

    /// The problems told to `channel` (sent or summarized) since `since` that are still
    /// open: for each, its latest notice and its first one. Alertmanager forgets alerts
    /// that are not repeated, so these are sent again periodically.
    pub async fn firing_problems(
        &self,
        channel: &str,
        since: Timestamp,
    ) -> Result<Vec<(Notice, Notice)>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT n.body FROM notices n WHERE n.problem IN (
                   SELECT m.problem FROM deliveries d JOIN notices m ON m.id = d.notice
                   WHERE d.channel = $1 AND d.state IN ('sent', 'summarized')
                     AND d.created_at >= $2 AND m.problem IS NOT NULL)
                 ORDER BY n.created_at, n.id",
            )
            .bind(channel)
            .bind(ts(since))
            .fetch_all(pool)
            .await?;
            // problem → (first, latest), in order of first appearance.
            let mut order: Vec<String> = Vec::new();
            let mut by_problem: std::collections::HashMap<String, (Notice, Notice)> =
                std::collections::HashMap::new();
            for b in rows {
                let n = notice_of(&b)?;
                let Some(p) = format::problem_key(&n) else {
                    continue;
                };
                match by_problem.get_mut(&p) {
                    Some(e) => e.1 = n,
                    None => {
                        order.push(p.clone());
                        by_problem.insert(p, (n.clone(), n));
                    }
                }
            }
            Ok(order
                .into_iter()
                .filter_map(|p| by_problem.remove(&p))
                .filter(|(_, latest)| !latest.kind.is_resolution())
                .map(|(first, latest)| (latest, first))
                .collect())
        })
    }

    /// Every delivery, oldest first (for operators and tests).
    pub async fn deliveries(&self) -> Result<Vec<DeliveryRecord>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows = sqlx::query(
                "SELECT notice, channel, state, attempts, created_at, next_at, give_up_at, sent_at,
                   last_error, summary
                 FROM deliveries ORDER BY created_at, notice, channel",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let sent: Option<String> = r.try_get("sent_at")?;
                    Ok(DeliveryRecord {
                        notice: r.try_get("notice")?,
                        channel: r.try_get("channel")?,
                        state: r.try_get("state")?,
                        attempts: r.try_get::<i64, _>("attempts")?.max(0) as u32,
                        created_at: parse_ts(r.try_get("created_at")?)?,
                        next_at: parse_ts(r.try_get("next_at")?)?,
                        give_up_at: parse_ts(r.try_get("give_up_at")?)?,
                        sent_at: sent.as_deref().map(parse_ts).transpose()?,
                        last_error: r.try_get("last_error")?,
                        summary: r.try_get("summary")?,
                    })
                })
                .collect()
        })
    }
}
