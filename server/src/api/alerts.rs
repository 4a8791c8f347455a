//! Alerts (open ones from the live state, the rest from history), their
//! acknowledgement, and the events (stored transitions).

use crate::csv_cell::text;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use campuswatch_protocol::{CampusId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{parse_number, parse_region, ApiError};
use super::extract::{ApiJson, ApiQuery};
use super::openapi::{BadRequest, Forbidden, Internal, NotFound, Unauthorized, Unavailable};
use super::schemas;
use super::AppState;
use crate::auth::Role;
use crate::ingest::{ask_engine, Inbound};
use crate::model::Severity;
use crate::monitor::{AckError, Alert, AlertKind, AlertState, Monitor};
use crate::store::{Filter, StoredTransition};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct HistoryQuery {
    /// Only alerts in this state; `all` (the default) for every state.
    #[param(value_type = Option<schemas::AlertStateFilter>, inline)]
    state: Option<String>,
    /// Only this campus.
    #[param(value_type = Option<schemas::CampusId>)]
    campus: Option<String>,
    /// Only this region node and what lies below it: a province, city (prefecture or
    /// league) or county code.
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
    /// Only this kind of link.
    #[param(value_type = Option<AlertKind>)]
    kind: Option<String>,
    /// Alerts only: only this severity.
    #[param(value_type = Option<Severity>)]
    severity: Option<String>,
    /// Alerts only: `true` for acknowledged alerts, `false` for those nobody has.
    acknowledged: Option<bool>,
    /// Alerts only: `csv` for a CSV file of the alerts (times in the server's
    /// `time_zone`), else JSON.
    #[param(value_type = Option<String>, example = "csv")]
    format: Option<String>,
    /// RFC 3339 time, inclusive. Percent-encode a `+` in the offset (or use `Z`).
    #[param(value_type = Option<String>, format = DateTime, example = "2025-01-01T00:00:00Z")]
    since: Option<Timestamp>,
    /// RFC 3339 time, exclusive. Percent-encode a `+` in the offset (or use `Z`).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<Timestamp>,
    /// Page size; larger values are capped at 1000 (10000 for open and suppressed
    /// alerts, which come from the live state).
    #[param(default = 100)]
    limit: Option<u32>,
    /// Rows to skip.
    #[param(default = 0)]
    offset: Option<u32>,
}

/// The parameters of the event list: those of the alert list but these.
struct EventQuery;

const ALERTS_ONLY: [&str; 4] = ["state", "severity", "acknowledged", "format"];

impl IntoParams for EventQuery {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        HistoryQuery::into_params(parameter_in)
            .into_iter()
            .filter(|p| !ALERTS_ONLY.contains(&p.name.as_str()))
            .collect()
    }
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
            severity: self
                .severity
                .as_deref()
                .map(|v| {
                    Severity::parse(v).ok_or_else(|| {
                        ApiError::BadRequest(format!("severity {v:?}: use {}", Severity::choices()))
                    })
                })
                .transpose()?,
            acknowledged: self.acknowledged,
            since: self.since,
            until: self.until,
            limit: self.limit.unwrap_or(100).min(1000),
            offset: self.offset.unwrap_or(0),
        })
    }
}

/// A page of alerts, newest `since` first.
#[derive(Serialize, ToSchema)]
pub(super) struct AlertList {
    alerts: Vec<AlertItem>,
}

/// An alert with its campus's registered name.
#[derive(Serialize, ToSchema)]
pub(super) struct AlertItem {
    #[serde(flatten)]
    alert: Alert,
    /// Registered name of the campus; null for an unregistered campus.
    #[schema(required)]
    campus_name: Option<String>,
    /// The name of the alert's county (its code when the server does not know it).
    region_name: String,
    /// The name of the county's city; null when the server does not know it.
    #[schema(required)]
    city_name: Option<String>,
}

impl AlertItem {
    fn new(alert: Alert, m: &Monitor) -> AlertItem {
        let names = crate::regions::RegionNames::builtin();
        AlertItem {
            campus_name: m
                .campus(alert.campus.as_str())
                .and_then(|c| c.registry.map(|r| r.name.clone())),
            region_name: names.name(&alert.region),
            city_name: alert
                .region
                .city()
                .and_then(|c| names.get(&c))
                .map(|r| r.name.clone()),
            alert,
        }
    }
}

/// List alerts
///
/// Alerts for dropped gateway, alarm and camera links, newest first (by when the link
/// dropped). Open and suppressed alerts come from the live state (so they agree with the
/// campus and coverage endpoints), resolved ones and `all` from the stored history.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "listAlerts",
    tag = "alerts",
    params(HistoryQuery),
    responses(
        (status = 200, description = "A page of alerts (CSV with `format=csv`: one row per alert).", content(
            (AlertList = "application/json"),
            (String = "text/csv; charset=utf-8"),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn alerts(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    let csv = super::reports::format_csv(q.format.as_deref())?;
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
        Some(AlertState::Open | AlertState::Suppressed) => {
            f.limit = q.limit.unwrap_or(100).min(10_000);
            active_alerts(&s.monitor(), &f)
        }
        _ => s.store.alerts(&f).await?,
    };
    let alerts: Vec<AlertItem> = {
        let m = s.monitor();
        rows.into_iter().map(|a| AlertItem::new(a, &m)).collect()
    };
    if csv {
        return alerts_csv(&alerts, s.time_zone);
    }
    Ok(Json(AlertList { alerts }).into_response())
}

/// The alerts as a CSV file: one row each, times in the server's zone.
fn alerts_csv(alerts: &[AlertItem], tz: chrono_tz::Tz) -> Result<Response, ApiError> {
    let time = |t: Option<Timestamp>| {
        t.map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let mut w = super::reports::csv_writer();
    let header = [
        "id",
        "severity",
        "state",
        "kind",
        "campus",
        "campus_name",
        "region",
        "region_name",
        "device",
        "since",
        "opened_at",
        "resolved_at",
        "cause",
        "cause_code",
        "acknowledged_by",
        "acknowledged_at",
        "flapping",
    ];
    let bad = |e: csv::Error| ApiError::Internal(format!("writing the CSV: {e}"));
    w.write_record(header).map_err(bad)?;
    for item in alerts {
        let a = &item.alert;
        let ack = a.acknowledged.as_ref();
        w.write_record([
            a.id.to_string(),
            a.severity.as_str().to_string(),
            a.state.as_str().to_string(),
            a.kind.as_str().to_string(),
            a.campus.to_string(),
            text(item.campus_name.as_deref().unwrap_or_default()),
            a.region.to_string(),
            text(&item.region_name),
            a.device.as_ref().map(|d| d.to_string()).unwrap_or_default(),
            time(Some(a.since)),
            time(Some(a.opened_at)),
            time(a.resolved_at),
            text(a.cause.as_deref().unwrap_or_default()),
            a.cause_code
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            text(ack.map_or("", |k| k.by.as_str())),
            time(ack.map(|k| k.at)),
            a.flapping.to_string(),
        ])
        .map_err(bad)?;
    }
    Ok(super::reports::csv_response(
        "alerts.csv",
        super::reports::finish_csv(w)?,
    ))
}

/// An acknowledgement.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AckRequest)]
pub(super) struct AckBody {
    /// Who acknowledges; required with sign-in off; with sign-in on, the signed-in user is
    /// recorded instead.
    #[schema(min_length = 1, max_length = 64)]
    by: Option<String>,
    /// What is being done.
    #[schema(max_length = 1000)]
    comment: Option<String>,
}

/// Acknowledge an alert
///
/// Records who acknowledged an open or suppressed alert (the signed-in user), when, and
/// a comment. The alert stays acknowledged until it resolves; acknowledging again adds
/// to its history (`GET /api/v1/alerts/{id}/acknowledgements`) and the alert shows the
/// latest. Answered once stored. Needs the `operator` role.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/ack",
    operation_id = "acknowledgeAlert",
    tag = "alerts",
    params(("id" = u64, Path, description = "Alert id.")),
    request_body = AckBody,
    responses(
        (status = 200, description = "The acknowledged alert.", body = AlertItem),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
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
        by: by.clone(),
        comment,
        reply,
    })
    .await?
    .map_err(|e| match e {
        AckError::NotActive(_) => ApiError::NotFound(e.to_string()),
        AckError::NoName | AckError::CommentTooLong => ApiError::BadRequest(e.to_string()),
    })?;
    super::audit::record(
        &s,
        &caller,
        crate::store::AuditAction::AlertAcknowledge,
        format!("alert {id}"),
        Some(alert.region),
        serde_json::json!({
            "by": by,
            "campus": alert.campus,
            "comment": alert.acknowledged.as_ref().and_then(|a| a.comment.clone()),
        }),
    )
    .await;
    let item = AlertItem::new(alert, &s.monitor());
    Ok(Json(item))
}

/// Every acknowledgement of an alert, oldest first.
#[derive(Serialize, ToSchema)]
pub(super) struct AcknowledgementList {
    acknowledgements: Vec<crate::monitor::Acknowledgement>,
}

/// An alert's acknowledgements
///
/// Every acknowledgement of the alert (open or resolved), oldest first: who, when and
/// their comment. Acknowledging again adds one; none is ever replaced. An alert outside
/// the caller's scope is `404`, as one that does not exist.
#[utoipa::path(
    get,
    path = "/api/v1/alerts/{id}/acknowledgements",
    operation_id = "listAcknowledgements",
    tag = "alerts",
    params(("id" = u64, Path, description = "Alert id.")),
    responses(
        (status = 200, description = "The acknowledgements, oldest first.", body = AcknowledgementList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn acknowledgements(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AcknowledgementList>, ApiError> {
    let id = parse_number("alert id", &id)?;
    match s.store.acknowledgements(id).await? {
        Some((region, acknowledgements)) if caller.sees(&region) => {
            Ok(Json(AcknowledgementList { acknowledgements }))
        }
        _ => Err(ApiError::NotFound(format!("alert {id} does not exist"))),
    }
}

/// The live alerts matching `f`, in the store's order (newest first).
fn active_alerts(m: &Monitor, f: &Filter) -> Vec<Alert> {
    let mut v: Vec<Alert> = m
        .active_alerts()
        .filter(|a| f.state.is_none_or(|st| a.state == st))
        .filter(|a| f.campus.as_ref().is_none_or(|c| &a.campus == c))
        .filter(|a| f.region.is_none_or(|r| a.region.is_within(&r)))
        .filter(|a| f.kind.is_none_or(|k| a.kind == k))
        .filter(|a| f.severity.is_none_or(|sev| a.severity == sev))
        .filter(|a| {
            f.acknowledged
                .is_none_or(|ack| a.acknowledged.is_some() == ack)
        })
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

/// A page of link events, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct EventList {
    events: Vec<StoredTransition>,
}

/// List link events
///
/// The history of gateway, alarm and camera link state changes, newest first. `since`
/// and `until` apply to when the change happened. The `state` parameter is refused with
/// 400.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "listEvents",
    tag = "alerts",
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events.", body = EventList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn events(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<EventList>, ApiError> {
    if q.state.is_some() || q.severity.is_some() || q.acknowledged.is_some() || q.format.is_some() {
        return Err(ApiError::BadRequest(
            "events take campus, region, kind, since, until, limit, offset".into(),
        ));
    }
    let mut f = q.filter()?;
    f.region = caller.region(f.region)?;
    let events = s.store.transitions(&f).await?;
    Ok(Json(EventList { events }))
}
