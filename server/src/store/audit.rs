//! The audit log of administrative actions (registry imports, users, tokens,
//! maintenance windows, acknowledgements) and the history of each alert's
//! acknowledgements.

use campuswatch_protocol::{RegionCode, RegionLevel, Timestamp};
use serde::Serialize;
use sqlx::QueryBuilder;

use super::{corrupt, parse_region, parse_ts, region_pattern, ts, Cols, Store, StoreError};
use crate::monitor::Acknowledgement;

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// A registry file imported (its counts in the details).
    RegistryImport,
    /// A user added (`campuswatch-server user add`).
    UserCreate,
    /// An existing user's password, role and scope set again (`user add` of a name that
    /// exists): their sessions and tokens end.
    UserPassword,
    UserDisable,
    UserEnable,
    TokenCreate,
    TokenRevoke,
    MaintenanceCreate,
    MaintenanceDelete,
    AlertAcknowledge,
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl AuditAction {
    pub const ALL: [AuditAction; 10] = [
        AuditAction::RegistryImport,
        AuditAction::UserCreate,
        AuditAction::UserPassword,
        AuditAction::UserDisable,
        AuditAction::UserEnable,
        AuditAction::TokenCreate,
        AuditAction::TokenRevoke,
        AuditAction::MaintenanceCreate,
        AuditAction::MaintenanceDelete,
        AuditAction::AlertAcknowledge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::RegistryImport => "registry.import",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserPassword => "user.password",
            AuditAction::UserDisable => "user.disable",
            AuditAction::UserEnable => "user.enable",
            AuditAction::TokenCreate => "token.create",
            AuditAction::TokenRevoke => "token.revoke",
            AuditAction::MaintenanceCreate => "maintenance.create",
            AuditAction::MaintenanceDelete => "maintenance.delete",
            AuditAction::AlertAcknowledge => "alert.acknowledge",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Every action, for messages.
    pub fn choices() -> String {
        Self::ALL.map(AuditAction::as_str).join(", ")
    }
}

/// An entry to write.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub at: Timestamp,
    /// The user's name, or `local` (the command line, or sign-in off).
    pub actor: String,
    /// The API token the user acted with, if any.
    pub token: Option<i64>,
    pub action: AuditAction,
    /// What was acted on: a user's name, `token 4`, `maintenance 7`, `alert 12`, or the
    /// registry.
    pub target: String,
    /// The region the action concerns; `None` for the whole area.
    pub region: Option<RegionCode>,
    pub details: serde_json::Value,
    /// The client's address; `None` from the command line.
    pub source: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub token: Option<i64>,
    pub action: AuditAction,
    pub target: String,
    pub region: Option<RegionCode>,
    pub details: serde_json::Value,
    pub source: Option<String>,
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries an administrator of this scope sees: those whose region lies within
    /// it, and, for a province's administrator, those of the whole area (no region).
    /// `None`: every entry.
    pub scope: Option<RegionCode>,
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: u32,
    pub offset: u32,
}

impl Store {
    /// Writes an entry to the audit log.
    pub async fn record_audit(&self, e: &NewAudit) -> Result<i64, StoreError> {
        let details = serde_json::to_string(&e.details).map_err(|x| corrupt("audit details", x))?;
        with_db!(self.pool(), |pool| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO audit_log (at, actor, token, action, target, region, details, source)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(ts(e.at))
            .bind(&e.actor)
            .bind(e.token)
            .bind(e.action.as_str())
            .bind(&e.target)
            .bind(e.region.map(|r| r.as_str().to_string()))
            .bind(details)
            .bind(&e.source)
            .fetch_one(pool)
            .await?;
            Ok(id)
        })
    }

    /// Audit entries matching `f`, newest first.
    pub async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        with_db!(self.pool(), |pool| {
            let mut qb: QueryBuilder<Db> = QueryBuilder::new(
                "SELECT id, at, actor, token, action, target, region, details, source
                 FROM audit_log WHERE 1 = 1",
            );
            if let Some(scope) = &f.scope {
                qb.push(" AND (region LIKE ")
                    .push_bind(region_pattern(scope));
                if scope.level() == RegionLevel::Province {
                    qb.push(" OR region IS NULL");
                }
                qb.push(")");
            }
            if let Some(a) = &f.actor {
                qb.push(" AND actor = ").push_bind(a.clone());
            }
            if let Some(a) = f.action {
                qb.push(" AND action = ").push_bind(a.as_str());
            }
            if let Some(t) = f.since {
                qb.push(" AND at >= ").push_bind(ts(t));
            }
            if let Some(t) = f.until {
                qb.push(" AND at < ").push_bind(ts(t));
            }
            qb.push(" ORDER BY at DESC, id DESC LIMIT ")
                .push_bind(i64::from(f.limit))
                .push(" OFFSET ")
                .push_bind(i64::from(f.offset));
            let rows = qb.build().fetch_all(pool).await?;
            rows.iter().map(audit_row).collect()
        })
    }

    /// Removes the audit entries older than `before`; returns how many went.
    pub async fn prune_audit(&self, before: Timestamp) -> Result<u64, StoreError> {
        with_db!(self.pool(), |pool| {
            let gone = sqlx::query("DELETE FROM audit_log WHERE at < $1")
                .bind(ts(before))
                .execute(pool)
                .await?
                .rows_affected();
            Ok(gone)
        })
    }

    /// The region of alert `id` and every acknowledgement of it, oldest first; `None`
    /// if there is no such alert.
    pub async fn acknowledgements(
        &self,
        alert: u64,
    ) -> Result<Option<(RegionCode, Vec<Acknowledgement>)>, StoreError> {
        let Ok(id) = i64::try_from(alert) else {
            return Ok(None);
        };
        with_db!(self.pool(), |pool| {
            let region: Option<String> =
                sqlx::query_scalar("SELECT region FROM alerts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            let Some(region) = region else {
                return Ok(None);
            };
            let rows = sqlx::query(
                "SELECT by_name, at, comment FROM alert_acks WHERE alert = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            let acks = rows
                .iter()
                .map(|r| {
                    Ok(Acknowledgement {
                        by: r.col("by_name")?,
                        at: parse_ts(&r.col::<String>("at")?)?,
                        comment: r.col("comment")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some((parse_region(region)?, acks)))
        })
    }
}

fn audit_row(r: &impl Cols) -> Result<AuditEntry, StoreError> {
    let action: String = r.col("action")?;
    let region: Option<String> = r.col("region")?;
    let details: String = r.col("details")?;
    Ok(AuditEntry {
        id: r.col("id")?,
        at: parse_ts(&r.col::<String>("at")?)?,
        actor: r.col("actor")?,
        token: r.col("token")?,
        action: AuditAction::parse(&action).ok_or_else(|| corrupt("audit action", &action))?,
        target: r.col("target")?,
        region: region.map(parse_region).transpose()?,
        details: serde_json::from_str(&details).map_err(|e| corrupt("audit details", e))?,
        source: r.col("source")?,
    })
}
