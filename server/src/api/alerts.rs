//! Alerts (open ones from the live state, the rest from history), their
//! acknowledgement, and the events (stored transitions).

use axum::extract::{Path, State};
use axum::Json;
use campuswatch_protocol::{CampusId, Timestamp};
use serde::{Deserialize, Serialize};

use super::caller::Caller;
use super::error::{parse_number, parse_region, ApiError};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::auth::Role;
use crate::ingest::{ask_engine, Inbound};
use crate::monitor::{AckError, Alert, AlertKind, AlertState, Monitor};
use crate::store::{Filter, StoredTransition};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    state: Option<String>,
    campus: Option<String>,
    region: Option<String>,
    kind: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl HistoryQuery {
    fn filter(&self) -> Result<Filter, ApiError> {
        Ok(Filter {
            campus: self
                .campus
                .as_deref()
                .map(|c| CampusId::parse(c).map_err(|e| ApiError::BadRequest(e.to_string())))
                .transpose()?,
            region: self.region.as_deref().map(parse_region).transpose()?,
            kind: self
                .kind
                .as_deref()
                .map(|k| {
                    AlertKind::parse(k).ok_or_else(|| {
                        ApiError::BadRequest(format!("kind {k:?}: use {}", AlertKind::choices()))
                    })
                })
                .transpose()?,
            state: None,
            since: self.since,
            until: self.until,
            limit: self.limit.unwrap_or(100).min(1000),
            offset: self.offset.unwrap_or(0),
        })
    }
}

#[derive(Serialize)]
pub(super) struct AlertList {
    alerts: Vec<AlertItem>,
}

#[derive(Serialize)]
pub(super) struct AlertItem {
    #[serde(flatten)]
    alert: Alert,
    campus_name: Option<String>,
}

pub(super) async fn alerts(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<AlertList>, ApiError> {
    let mut f = q.filter()?;
    f.region = caller.region(f.region)?;
    f.state = match q.state.as_deref() {
        None | Some("all") => None,
        Some(st) => Some(AlertState::parse(st).ok_or_else(|| {
            ApiError::BadRequest(format!("state {st:?}: use all, {}", AlertState::choices()))
        })?),
    };
    // Alerts not yet resolved come from the live state, so they always agree with the
    // campus and coverage endpoints; history (resolved, all) comes from the store.
    let rows = match f.state {
        Some(AlertState::Open | AlertState::Suppressed) => active_alerts(&s.monitor(), &f),
        _ => s.store.alerts(&f).await?,
    };
    let m = s.monitor();
    let alerts = rows
        .into_iter()
        .map(|a| AlertItem {
            campus_name: m
                .campus(a.campus.as_str())
                .and_then(|c| c.registry.map(|r| r.name.clone())),
            alert: a,
        })
        .collect();
    Ok(Json(AlertList { alerts }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AckBody {
    /// Who acknowledges; with sign-in, the signed-in user instead.
    by: Option<String>,
    comment: Option<String>,
}

/// Acknowledges an alert (who, when, a comment); answered once it is stored.
pub(super) async fn acknowledge(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AckBody>,
) -> Result<Json<AlertItem>, ApiError> {
    let id = parse_number("alert id", &id)?;
    caller.require(Role::Operator)?;
    // Signed in: the acknowledgement is the user's, whatever the body says.
    let by = if s.auth.enabled {
        caller.0.name.clone()
    } else {
        body.by
            .clone()
            .ok_or_else(|| ApiError::BadRequest("say who acknowledges (\"by\")".into()))?
    };
    let visible = s
        .monitor()
        .active_alerts()
        .any(|a| a.id == id && caller.sees(&a.region));
    if !visible {
        return Err(ApiError::NotFound(format!(
            "alert {id} is not open (unknown, or already resolved)"
        )));
    }
    let comment = body.comment;
    let alert = ask_engine(&s.inbound, |reply| Inbound::Acknowledge {
        alert: id,
        by,
        comment,
        reply,
    })
    .await?
    .map_err(|e| match e {
        AckError::NotActive(_) => ApiError::NotFound(e.to_string()),
        AckError::NoName | AckError::CommentTooLong => ApiError::BadRequest(e.to_string()),
    })?;
    let campus_name = s
        .monitor()
        .campus(alert.campus.as_str())
        .and_then(|c| c.registry.map(|r| r.name.clone()));
    Ok(Json(AlertItem { alert, campus_name }))
}

/// The live alerts matching `f`, in the store's order (newest first).
fn active_alerts(m: &Monitor, f: &Filter) -> Vec<Alert> {
    let mut v: Vec<Alert> = m
        .active_alerts()
        .filter(|a| f.state.is_none_or(|st| a.state == st))
        .filter(|a| f.campus.as_ref().is_none_or(|c| &a.campus == c))
        .filter(|a| f.region.is_none_or(|r| a.region.is_within(&r)))
        .filter(|a| f.kind.is_none_or(|k| a.kind == k))
        .filter(|a| f.since.is_none_or(|t| a.since >= t))
        .filter(|a| f.until.is_none_or(|t| a.since < t))
        .cloned()
        .collect();
    v.sort_by(|a, b| b.since.cmp(&a.since).then(b.id.cmp(&a.id)));
    v.into_iter()
        .skip(f.offset as usize)
        .take(f.limit as usize)
        .collect()
}

#[derive(Serialize)]
pub(super) struct EventList {
    events: Vec<StoredTransition>,
}

pub(super) async fn events(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<EventList>, ApiError> {
    if q.state.is_some() {
        return Err(ApiError::BadRequest(
            "events take campus, region, kind, since, until, limit, offset".into(),
        ));
    }
    let mut f = q.filter()?;
    f.region = caller.region(f.region)?;
    let events = s.store.transitions(&f).await?;
    Ok(Json(EventList { events }))
}
