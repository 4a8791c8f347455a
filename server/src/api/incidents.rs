//! Regional incidents: open ones from the live state, the rest from history.

use axum::extract::State;
use axum::Json;
use campuswatch_protocol::{CampusId, RegionCode, Timestamp};
use serde::{Deserialize, Serialize};

use super::caller::Caller;
use super::error::{parse_region, ApiError};
use super::extract::ApiQuery;
use super::AppState;
use crate::monitor::{Incident, IncidentState};
use crate::regions::RegionNames;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IncidentQuery {
    state: Option<String>,
    /// Only incidents in this region (a county, or any county below a city or province).
    region: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

#[derive(Serialize)]
struct IncidentCampus {
    id: CampusId,
    name: Option<String>,
}

#[derive(Serialize)]
struct IncidentItem {
    id: u64,
    region: RegionCode,
    region_name: String,
    state: IncidentState,
    since: Timestamp,
    opened_at: Timestamp,
    resolved_at: Option<Timestamp>,
    campuses: Vec<IncidentCampus>,
    /// Campuses still offline.
    open_alerts: usize,
}

#[derive(Serialize)]
pub(super) struct IncidentList {
    incidents: Vec<IncidentItem>,
}

/// Regional incidents: open ones from the live state, the rest from history.
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
    let region = caller.region(q.region.as_deref().map(parse_region).transpose()?)?;
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
