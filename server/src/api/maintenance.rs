//! Maintenance windows: listed, planned and withdrawn (through the engine, in order
//! with the message stream).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use campuswatch_protocol::{CampusId, RegionCode, Timestamp};
use serde::{Deserialize, Serialize};

use super::caller::Caller;
use super::error::{parse_number, ApiError};
use super::extract::{ApiJson, ApiQuery};
use super::AppState;
use crate::auth::Role;
use crate::ingest::{ask_engine, Inbound, MaintenanceOp};
use crate::monitor::maintenance::{Maintenance, MaintenanceError, Schedule, Scope};

#[derive(Deserialize)]
pub(super) struct MaintenanceRequest {
    #[serde(flatten)]
    scope: Scope,
    schedule: Schedule,
    #[serde(default = "china_standard_time")]
    utc_offset_minutes: i32,
    comment: Option<String>,
    created_by: String,
}

fn china_standard_time() -> i32 {
    480
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MaintenanceQuery {
    /// Include withdrawn windows.
    withdrawn: Option<bool>,
}

/// A window as the API shows it: every key present, `null` where it does not apply.
#[derive(Serialize)]
pub(super) struct MaintenanceItem {
    id: u64,
    scope: &'static str,
    region: Option<RegionCode>,
    campus: Option<CampusId>,
    device: Option<campuswatch_protocol::DeviceId>,
    schedule: ScheduleView,
    utc_offset_minutes: i32,
    comment: Option<String>,
    created_by: String,
    created_at: Timestamp,
    /// When the current occurrence ends, if the window applies now.
    active_until: Option<Timestamp>,
    /// Whether it was withdrawn (only listed with `withdrawn=true`).
    withdrawn: bool,
}

#[derive(Serialize)]
struct ScheduleView {
    repeat: &'static str,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    at: Option<chrono::NaiveTime>,
    minutes: Option<u32>,
    weekdays: Option<Vec<chrono::Weekday>>,
    from: Option<chrono::NaiveDate>,
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

#[derive(Serialize)]
pub(super) struct MaintenanceList {
    maintenance: Vec<MaintenanceItem>,
}

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

/// Plans a maintenance window; answered with it (and its id) once stored.
pub(super) async fn add_maintenance(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(r): ApiJson<MaintenanceRequest>,
) -> Result<(StatusCode, Json<MaintenanceItem>), ApiError> {
    caller.require(Role::Operator)?;
    let now = s.clock.now();
    let allowed = match &r.scope {
        Scope::Region { region } => caller.sees(region),
        Scope::Campus { campus } | Scope::Device { campus, .. } => {
            campus_region(&s, campus).is_some_and(|r| caller.sees(&r))
        }
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "the window covers campuses outside your scope".into(),
        ));
    }
    let window = Maintenance {
        id: 0,
        scope: r.scope,
        schedule: r.schedule,
        utc_offset_minutes: r.utc_offset_minutes,
        comment: r
            .comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        created_by: r.created_by.trim().to_string(),
        created_at: now,
    };
    let window = submit_maintenance(&s, MaintenanceOp::Add(window))
        .await?
        .ok_or_else(|| ApiError::Internal("the window was not stored".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(MaintenanceItem::new(window, now, false)),
    ))
}

/// Withdraws a maintenance window; what it kept quiet is told now.
pub(super) async fn remove_maintenance(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_number("window id", &id)?;
    caller.require(Role::Operator)?;
    let visible = s
        .monitor()
        .maintenance_windows()
        .find(|w| w.id == id)
        .cloned()
        .is_some_and(|w| window_visible(&s, &caller, &w));
    if !visible {
        return Err(ApiError::NotFound(format!(
            "maintenance window {id} does not exist"
        )));
    }
    submit_maintenance(&s, MaintenanceOp::Remove(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
