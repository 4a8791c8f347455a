//! High availability: replicas of one partition (servers with the same `id`) on one
//! PostgreSQL database take turns through a session advisory lock. The replica holding
//! it is active: it alone connects to the broker (under the partition's MQTT client id,
//! whose persistent session keeps the QoS 1 messages of the gap), writes transitions and
//! sends notifications. A standby waits for the lock; PostgreSQL releases it when the
//! active's connection ends (its process exits or is killed), and a standby that takes it
//! starts as a restarted server would: state from the store, deliveries resumed from the
//! outbox. An active that can no longer reach PostgreSQL stops, so that two replicas are
//! never active together. See docs/scale-out.md.

use std::time::Duration;

use campuswatch_service::redact;
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The advisory lock key of the partition `id`: replicas with the same id share it.
pub fn lock_key(id: &str) -> i64 {
    let digest = Sha256::digest(format!("campuswatch-active:{id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Non-negative, so that pg_locks' two 32-bit halves put it together without sign.
    i64::from_be_bytes(first) & i64::MAX
}

/// The lock, held on a connection of its own for as long as this value lives.
pub struct Leadership {
    conn: PgConnection,
    key: i64,
}

impl Leadership {
    /// Waits until this replica holds the lock of partition `id`, trying every `every`;
    /// `None` if `shutdown` comes first. PostgreSQL being away is waited out.
    pub async fn acquire(
        url: &str,
        id: &str,
        every: Duration,
        shutdown: &CancellationToken,
    ) -> Option<Leadership> {
        let key = lock_key(id);
        let mut said = false;
        let mut conn: Option<PgConnection> = None;
        loop {
            match try_lock(&mut conn, url, key).await {
                Ok(true) => {
                    info!(
                        partition = id,
                        "Took the active lock: this replica is active."
                    );
                    let conn = conn.take()?;
                    return Some(Leadership { conn, key });
                }
                Ok(false) if !said => {
                    info!(
                        partition = id,
                        "Standby: another replica of this partition is active; taking over when it stops."
                    );
                    said = true;
                }
                Ok(false) => {}
                Err(e) => {
                    conn = None;
                    warn!(database = %redact::url_and_query(url), error = %e, "Standby: cannot reach PostgreSQL to take the active lock; trying again.");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Resolves (with the reason) once the lock can no longer be known to be held: its
    /// connection fails or does not answer within `every`, checked every `every`.
    pub async fn lost(mut self, every: Duration) -> String {
        loop {
            tokio::time::sleep(every).await;
            let held = sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                   AND pid = pg_backend_pid() AND granted
                   AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1)",
            )
            .bind(self.key)
            .fetch_one(&mut self.conn);
            match tokio::time::timeout(every.max(Duration::from_secs(1)), held).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return "the lock is no longer held".into(),
                Ok(Err(e)) => return format!("the lock's connection failed: {e}"),
                Err(_) => return "PostgreSQL did not answer on the lock's connection".into(),
            }
        }
    }
}

/// One try on `conn` (connected first if it is not): whether it now holds the lock.
async fn try_lock(
    conn: &mut Option<PgConnection>,
    url: &str,
    key: i64,
) -> Result<bool, sqlx::Error> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(PgConnection::connect(url).await?),
    };
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(c)
        .await
}
