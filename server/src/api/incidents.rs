//! Regional incidents: open ones from the live state, the rest from history.

use axum::extract::State;
use axum::Json;
use campuswatch_protocol::{CampusId, RegionCode, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::openapi::{BadRequest, Forbidden, Internal, Unauthorized};
use super::schemas;
use super::AppState;
use crate::monitor::{Incident, IncidentState};
use crate::regions::RegionNames;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct IncidentQuery {
    /// Only incidents in this state; `all` (the default) for every state.
    #[param(value_type = Option<schemas::IncidentStateFilter>, inline)]
    state: Option<String>,
    /// Only incidents in this region (a county, or any county below a city or province).
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(default = 100)]
    limit: Option<u32>,
    /// Rows to skip.
    #[param(default = 0)]
    offset: Option<u64>,
}

/// A campus of an incident.
#[derive(Serialize, ToSchema)]
struct IncidentCampus {
    #[schema(value_type = schemas::CampusId)]
    id: CampusId,
    /// Registry name; null if not registered.
    #[schema(required)]
    name: Option<String>,
}

/// Many gateways of one county that dropped together, told as one.
#[derive(Serialize, ToSchema)]
#[schema(as = Incident)]
struct IncidentItem {
    id: u64,
    /// The county.
    #[schema(value_type = schemas::RegionCode)]
    region: RegionCode,
    /// The county's name (the code when unknown).
    region_name: String,
    state: IncidentState,
    /// When the first of its gateways dropped.
    #[schema(value_type = String, format = DateTime)]
    since: Timestamp,
    /// When it was told.
    #[schema(value_type = String, format = DateTime)]
    opened_at: Timestamp,
    /// When the last gateway was back; null while open.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    resolved_at: Option<Timestamp>,
    /// Every campus that was part of it.
    campuses: Vec<IncidentCampus>,
    /// Its campuses still offline.
    open_alerts: usize,
}

/// A page of incidents, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct IncidentList {
    incidents: Vec<IncidentItem>,
}

/// List regional incidents
///
/// Incidents: many gateways of one county that dropped together, told as one notice.
/// Open incidents come from the live state, the rest from history; newest first.
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    operation_id = "listIncidents",
    tag = "alerts",
    params(IncidentQuery),
    responses(
        (status = 200, description = "A page of incidents.", body = IncidentList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn incidents(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<IncidentQuery>,
) -> Result<Json<IncidentList>, ApiError> {
    let state = match q.state.as_deref() {
        None | Some("all") => None,
        Some(st) => Some(IncidentState::parse(st).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "state {st:?}: use all, {}",
                IncidentState::choices()
            ))
        })?),
    };
    let region = caller.region_param(q.region.as_deref())?;
    let limit = q.limit.unwrap_or(100).min(1000);
    let offset = q.offset.unwrap_or(0);
    let rows: Vec<Incident> = match state {
        Some(IncidentState::Open) => {
            let m = s.monitor();
            let mut v: Vec<Incident> = m
                .open_incidents()
                .filter(|i| region.is_none_or(|r| i.region.is_within(&r)))
                .cloned()
                .collect();
            v.sort_by_key(|i| std::cmp::Reverse(i.id));
            v.into_iter()
                .skip(offset.min(usize::MAX as u64) as usize)
                .take(limit as usize)
                .collect()
        }
        // The region (or the caller's scope) is filtered in the query, before paging.
        _ => s.store.incidents(state, region, limit, offset).await?,
    };
    let m = s.monitor();
    let names = RegionNames::builtin();
    let incidents = rows
        .into_iter()
        .filter(|i| caller.sees(&i.region) && region.is_none_or(|r| i.region.is_within(&r)))
        .map(|i| IncidentItem {
            id: i.id,
            region: i.region,
            region_name: names.name(&i.region),
            state: i.state,
            since: i.since,
            opened_at: i.opened_at,
            resolved_at: i.resolved_at,
            open_alerts: i.open_alerts.len(),
            campuses: i
                .campuses
                .iter()
                .map(|c| IncidentCampus {
                    id: c.clone(),
                    name: m
                        .campus(c.as_str())
                        .and_then(|v| v.registry.map(|r| r.name.clone())),
                })
                .collect(),
        })
        .collect();
    Ok(Json(IncidentList { incidents }))
}
