//! Maintenance windows: listed, planned and withdrawn (through the engine, in order
//! with the message stream).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use campuswatch_protocol::{CampusId, RegionCode, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{parse_number, ApiError};
use super::extract::{ApiJson, ApiQuery};
use super::openapi::{BadRequest, Forbidden, Internal, NotFound, Unauthorized, Unavailable};
use super::schemas;
use super::AppState;
use crate::auth::Role;
use crate::ingest::{ask_engine, Inbound, MaintenanceOp};
use crate::monitor::maintenance::{Maintenance, MaintenanceError, Schedule, Scope};
use crate::store::AuditAction;

/// A window to plan: `scope` with `region`, `campus`, or `campus` and `device`.
#[derive(Deserialize, ToSchema)]
pub(super) struct MaintenanceRequest {
    #[serde(flatten)]
    scope: Scope,
    schedule: Schedule,
    /// Local time's offset from UTC for daily windows, in minutes; default 480 (+08:00).
    #[serde(default = "china_standard_time")]
    #[schema(minimum = -840, maximum = 840, default = 480)]
    utc_offset_minutes: i32,
    /// Why, or what is done meanwhile.
    #[schema(max_length = 1000)]
    comment: Option<String>,
    /// Who planned it, when sign-in is off (there is no user to name then). With sign-in
    /// on it is ignored: a window is stored as planned by the signed-in user.
    #[schema(min_length = 1, max_length = 64)]
    created_by: Option<String>,
}

fn china_standard_time() -> i32 {
    480
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct MaintenanceQuery {
    /// Also list withdrawn windows (history).
    #[param(default = false)]
    withdrawn: Option<bool>,
}

/// A maintenance window as the API shows it, every key present (`null` where it does not
/// apply): alerts inside it are kept but not told; a link still down at its end is told
/// then.
#[derive(Serialize, ToSchema)]
#[schema(as = MaintenanceWindow)]
pub(super) struct MaintenanceItem {
    id: u64,
    /// What the window covers: every campus of a region (county, city or province), one
    /// campus (its gateway and devices), or one device.
    #[schema(schema_with = scope_name)]
    scope: &'static str,
    /// For scope `region`; else null.
    #[schema(required, value_type = Option<schemas::RegionCode>)]
    region: Option<RegionCode>,
    /// For scope `campus` and `device`; else null.
    #[schema(required, value_type = Option<schemas::CampusId>)]
    campus: Option<CampusId>,
    /// For scope `device`; else null.
    #[schema(required, value_type = Option<schemas::DeviceId>)]
    device: Option<campuswatch_protocol::DeviceId>,
    schedule: ScheduleView,
    /// Local time's offset from UTC for daily windows, in minutes (480 = +08:00).
    utc_offset_minutes: i32,
    /// Why, or what is done meanwhile.
    #[schema(required)]
    comment: Option<String>,
    /// Who planned it.
    created_by: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// If the window applies now, when this occurrence ends.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    active_until: Option<Timestamp>,
    /// Whether it was withdrawn (listed only with `withdrawn=true`).
    withdrawn: bool,
}

fn scope_name() -> utoipa::openapi::schema::ObjectBuilder {
    schemas::string_enum(
        ["region", "campus", "device"],
        "What the window covers: every campus of a region (county, city or province), one \
         campus (its gateway and devices), or one device.",
    )
}

fn repeat_name() -> utoipa::openapi::schema::ObjectBuilder {
    schemas::string_enum(["once", "daily"], "How the window repeats.")
}

/// The schedule as stored; keys that do not apply to its `repeat` are null.
#[derive(Serialize, ToSchema)]
#[schema(as = MaintenanceScheduleView)]
struct ScheduleView {
    #[schema(schema_with = repeat_name)]
    repeat: &'static str,
    /// `once`: when it begins.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    start: Option<Timestamp>,
    /// `once`: when it ends.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    end: Option<Timestamp>,
    /// `daily`: local time of day it begins, `HH:MM:SS`.
    #[schema(required, value_type = Option<String>, pattern = r"^\d{2}:\d{2}:\d{2}$")]
    at: Option<chrono::NaiveTime>,
    /// `daily`: length of each occurrence, in minutes.
    #[schema(required, minimum = 1, maximum = 10080)]
    minutes: Option<u32>,
    /// `daily`: only on these days (of the occurrence's start); null for every day.
    #[schema(required, value_type = Option<Vec<schemas::Weekday>>)]
    weekdays: Option<Vec<chrono::Weekday>>,
    /// `daily`: first day.
    #[schema(required, value_type = Option<schemas::Date>)]
    from: Option<chrono::NaiveDate>,
    /// `daily`: last day.
    #[schema(required, value_type = Option<schemas::Date>)]
    until: Option<chrono::NaiveDate>,
}

impl MaintenanceItem {
    fn new(w: Maintenance, now: Timestamp, withdrawn: bool) -> Self {
        let (scope, region, campus, device) = match w.scope.clone() {
            Scope::Region { region } => ("region", Some(region), None, None),
            Scope::Campus { campus } => ("campus", None, Some(campus), None),
            Scope::Device { campus, device } => ("device", None, Some(campus), Some(device)),
        };
        let schedule = match w.schedule.clone() {
            Schedule::Once { start, end } => ScheduleView {
                repeat: "once",
                start: Some(start),
                end: Some(end),
                at: None,
                minutes: None,
                weekdays: None,
                from: None,
                until: None,
            },
            Schedule::Daily {
                at,
                minutes,
                weekdays,
                from,
                until,
            } => ScheduleView {
                repeat: "daily",
                start: None,
                end: None,
                at: Some(at),
                minutes: Some(minutes),
                weekdays: (!weekdays.is_empty()).then_some(weekdays),
                from,
                until,
            },
        };
        Self {
            id: w.id,
            scope,
            region,
            campus,
            device,
            schedule,
            utc_offset_minutes: w.utc_offset_minutes,
            active_until: w.active_until(now),
            comment: w.comment,
            created_by: w.created_by,
            created_at: w.created_at,
            withdrawn,
        }
    }
}

/// Maintenance windows, by id.
#[derive(Serialize, ToSchema)]
pub(super) struct MaintenanceList {
    maintenance: Vec<MaintenanceItem>,
}

/// List maintenance windows
///
/// The windows that concern campuses the caller sees, by id: those planned (applying
/// now or later), and with `withdrawn=true` also the withdrawn ones.
#[utoipa::path(
    get,
    path = "/api/v1/maintenance",
    operation_id = "listMaintenance",
    tag = "alerts",
    params(MaintenanceQuery),
    responses(
        (status = 200, description = "The windows, by id.", body = MaintenanceList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn list_maintenance(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MaintenanceQuery>,
) -> Result<Json<MaintenanceList>, ApiError> {
    let now = s.clock.now();
    let live: BTreeMap<u64, Maintenance> = s
        .monitor()
        .maintenance_windows()
        .map(|w| (w.id, w.clone()))
        .collect();
    let windows = if q.withdrawn.unwrap_or(false) {
        s.store.maintenance(true).await?
    } else {
        live.values().cloned().collect()
    };
    let maintenance = windows
        .into_iter()
        .filter(|w| window_visible(&s, &caller, w))
        .map(|w| {
            let withdrawn = !live.contains_key(&w.id);
            MaintenanceItem::new(w, now, withdrawn)
        })
        .collect();
    Ok(Json(MaintenanceList { maintenance }))
}

async fn submit_maintenance(
    s: &AppState,
    op: MaintenanceOp,
) -> Result<Option<Maintenance>, ApiError> {
    ask_engine(&s.inbound, |reply| Inbound::Maintenance { op, reply })
        .await?
        .map_err(|e| match e {
            MaintenanceError::NotFound(_) => ApiError::NotFound(e.to_string()),
            _ => ApiError::BadRequest(e.to_string()),
        })
}

/// The region a campus is registered (or reports) in.
fn campus_region(s: &AppState, campus: &CampusId) -> Option<RegionCode> {
    s.monitor().campus(campus.as_str()).map(|c| c.region)
}

/// Refuses a window that covers campuses outside the caller's scope: the rule for
/// planning one and for withdrawing it.
fn check_within_scope(s: &AppState, caller: &Caller, scope: &Scope) -> Result<(), ApiError> {
    let allowed = match scope {
        Scope::Region { region } => caller.sees(region),
        Scope::Campus { campus } | Scope::Device { campus, .. } => {
            campus_region(s, campus).is_some_and(|r| caller.sees(&r))
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the window covers campuses outside your scope".into(),
        ))
    }
}

/// Whether a window concerns campuses the caller sees: one of theirs, or a region that
/// contains their scope.
fn window_visible(s: &AppState, caller: &Caller, w: &Maintenance) -> bool {
    match &w.scope {
        Scope::Region { region } => {
            caller.sees(region) || caller.0.scope.is_some_and(|own| own.is_within(region))
        }
        Scope::Campus { campus } | Scope::Device { campus, .. } => {
            campus_region(s, campus).is_some_and(|r| caller.sees(&r))
        }
    }
}

/// Plan a maintenance window
///
/// Alerts inside the window are kept but not told; a link still down when it ends is
/// told then. Answered once stored. Needs the `operator` role, and the window must cover
/// only campuses within the caller's scope.
#[utoipa::path(
    post,
    path = "/api/v1/maintenance",
    operation_id = "addMaintenance",
    tag = "alerts",
    request_body = MaintenanceRequest,
    responses(
        (status = 201, description = "The window as stored, with its id.", body = MaintenanceItem),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub(super) async fn add_maintenance(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<MaintenanceRequest>,
) -> Result<(StatusCode, Json<MaintenanceItem>), ApiError> {
    caller.require(Role::Operator)?;
    let now = s.clock.now();
    check_within_scope(&s, &caller, &r.scope)?;
    // Who planned it is who is signed in, never what the request says.
    let created_by = if s.auth.enabled {
        caller.0.name.clone()
    } else {
        r.created_by
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| caller.0.name.clone())
    };
    let window = Maintenance {
        id: 0,
        scope: r.scope,
        schedule: r.schedule,
        utc_offset_minutes: r.utc_offset_minutes,
        comment: r
            .comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        created_by,
        created_at: now,
    };
    let window = submit_maintenance(&s, MaintenanceOp::Add(window))
        .await?
        .ok_or_else(|| ApiError::Internal("the window was not stored".into()))?;
    audit_window(&s, &caller, AuditAction::MaintenanceCreate, &window).await;
    Ok((
        StatusCode::CREATED,
        Json(MaintenanceItem::new(window, now, false)),
    ))
}

/// Withdraw a maintenance window
///
/// What the window kept quiet and is still down is told now. The window stays in
/// history. Needs the `operator` role, and the window must cover only campuses within the
/// caller's scope (403 for one that reaches beyond it).
#[utoipa::path(
    delete,
    path = "/api/v1/maintenance/{id}",
    operation_id = "removeMaintenance",
    tag = "alerts",
    params(("id" = u64, Path, description = "Window id.")),
    responses(
        (status = 204, description = "Withdrawn."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub(super) async fn remove_maintenance(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_number("window id", &id)?;
    caller.require(Role::Operator)?;
    let window = s
        .monitor()
        .maintenance_windows()
        .find(|w| w.id == id)
        .cloned()
        .filter(|w| window_visible(&s, &caller, w))
        .ok_or_else(|| ApiError::NotFound(format!("maintenance window {id} does not exist")))?;
    // The rule of planning one: a window reaching beyond the caller's scope (a province's,
    // seen by a city's operator) is theirs to read, not to withdraw.
    check_within_scope(&s, &caller, &window.scope)?;
    submit_maintenance(&s, MaintenanceOp::Remove(id)).await?;
    audit_window(&s, &caller, AuditAction::MaintenanceDelete, &window).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Writes a window's planning or withdrawal to the audit log, under the region it
/// covers (a campus's or device's: the campus's county).
async fn audit_window(s: &AppState, caller: &Caller, action: AuditAction, w: &Maintenance) {
    let region = match &w.scope {
        Scope::Region { region } => Some(*region),
        Scope::Campus { campus } | Scope::Device { campus, .. } => campus_region(s, campus),
    };
    let details = serde_json::json!({
        "scope": w.scope,
        "schedule": w.schedule,
        "comment": w.comment,
        "created_by": w.created_by,
    });
    super::audit::record(
        s,
        caller,
        action,
        format!("maintenance {}", w.id),
        region,
        details,
    )
    .await;
}
