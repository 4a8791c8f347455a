//! The audit log: every administrative action written with who did it (from the
//! session or token, never from the request), and read by administrators within their
//! scope.

use axum::extract::State;
use axum::Json;
use campuswatch_protocol::{RegionCode, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::openapi::{BadRequest, Forbidden, Internal, Unauthorized};
use super::schemas;
use super::AppState;
use crate::auth::Role;
use crate::store::{AuditAction, AuditEntry, AuditFilter, NewAudit};

/// Who an audit entry names: the signed-in user, or `local` with sign-in off (as for the
/// command line).
pub(super) const LOCAL: &str = "local";

/// Writes what `caller` did to the audit log. The action is done by then: a log that
/// cannot be written is logged as an error, not a reason to answer that it failed.
pub(super) async fn record(
    s: &AppState,
    caller: &Caller,
    action: AuditAction,
    target: String,
    region: Option<RegionCode>,
    details: serde_json::Value,
) {
    let entry = NewAudit {
        at: s.clock.now(),
        actor: if s.auth.enabled {
            caller.0.name.clone()
        } else {
            LOCAL.to_string()
        },
        token: caller.0.token,
        action,
        target,
        region,
        details,
        source: caller.1.map(|a| a.to_string()),
    };
    if let Err(e) = s.store.record_audit(&entry).await {
        tracing::error!(error = %e, action = action.as_str(), target = %entry.target, actor = %entry.actor, "Could not write the audit log.");
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Only what this user did (`local`: the command line, or sign-in off).
    #[param(example = "admin")]
    actor: Option<String>,
    /// Only this action.
    #[param(value_type = Option<AuditAction>)]
    action: Option<String>,
    /// RFC 3339 time, inclusive. Percent-encode a `+` in the offset (or use `Z`).
    #[param(value_type = Option<String>, format = DateTime, example = "2026-01-01T00:00:00Z")]
    since: Option<Timestamp>,
    /// RFC 3339 time, exclusive.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<Timestamp>,
    /// Page size, 1 to 1000.
    #[param(default = 100, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Entries to skip.
    #[param(default = 0)]
    offset: Option<u32>,
}

/// A page of the audit log, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct AuditList {
    entries: Vec<AuditEntry>,
}

/// Read the audit log
///
/// Administrative actions, newest first: registry imports, users added, changed,
/// disabled and enabled, tokens made and revoked, maintenance windows planned and
/// withdrawn, alerts acknowledged. An administrator with a scope sees the entries of
/// regions within it; those of the whole area (no region) only if the scope is a
/// province. Needs the `admin` role.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "listAudit",
    tag = "access",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries.", body = AuditList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    caller.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit {limit}: 1 to 1000")));
    }
    if let (Some(since), Some(until)) = (q.since, q.until) {
        if since >= until {
            return Err(ApiError::BadRequest("since must come before until".into()));
        }
    }
    let action = q
        .action
        .as_deref()
        .map(|a| {
            AuditAction::parse(a).ok_or_else(|| {
                ApiError::BadRequest(format!("action {a:?}: use {}", AuditAction::choices()))
            })
        })
        .transpose()?;
    let actor = q.actor.map(|a| a.trim().to_string());
    if actor
        .as_deref()
        .is_some_and(|a| a.is_empty() || a.chars().count() > 64)
    {
        return Err(ApiError::BadRequest("actor: a user name".into()));
    }
    let entries = s
        .store
        .audit(&AuditFilter {
            scope: caller.0.scope,
            actor,
            action,
            since: q.since,
            until: q.until,
            limit,
            offset: q.offset.unwrap_or(0),
        })
        .await?;
    Ok(Json(AuditList { entries }))
}

impl utoipa::ToSchema for AuditAction {}

impl utoipa::PartialSchema for AuditAction {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        schemas::string_enum(
            AuditAction::ALL.map(AuditAction::as_str),
            "What an audit entry records.",
        )
        .into()
    }
}
