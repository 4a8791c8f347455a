//! Campuses: the list, with gateway state and device counts, and one campus in detail.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use campuswatch_protocol::{
    CampusId, DeviceInfo, DeviceKind, DeviceState, GatewayState, HostHealth, Measurements,
    SchoolType, Timestamp,
};
use serde::{Deserialize, Serialize};

use super::caller::Caller;
use super::error::{parse_region, parse_school_type, ApiError};
use super::extract::ApiQuery;
use super::AppState;
use crate::monitor::{Alert, CampusView};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CampusesQuery {
    region: Option<String>,
    state: Option<String>,
    registered: Option<bool>,
    school_type: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Serialize)]
struct KindCount {
    up: usize,
    down: usize,
    total: usize,
}

#[derive(Serialize)]
struct CampusSummary {
    id: String,
    name: Option<String>,
    region: String,
    school_type: Option<SchoolType>,
    registered: bool,
    expected_alarms: Option<u32>,
    expected_cameras: Option<u32>,
    gateway_state: GatewayState,
    since: Option<Timestamp>,
    last_heartbeat: Option<Timestamp>,
    /// When the gateway first reported (the console's review of unregistered campuses).
    first_seen: Option<Timestamp>,
    alarm_networked: bool,
    video_networked: bool,
    devices: BTreeMap<DeviceKind, KindCount>,
}

fn summary(c: &CampusView<'_>) -> CampusSummary {
    let mut devices: BTreeMap<DeviceKind, KindCount> = DeviceKind::ALL
        .into_iter()
        .map(|k| {
            (
                k,
                KindCount {
                    up: 0,
                    down: 0,
                    total: 0,
                },
            )
        })
        .collect();
    for d in c.devices {
        if let Some(k) = devices.get_mut(&d.kind) {
            k.total += 1;
            match c.device_state(d) {
                s if s.is_reachable() => k.up += 1,
                DeviceState::Down => k.down += 1,
                _ => {}
            }
        }
    }
    CampusSummary {
        id: c.id.to_string(),
        name: c.registry.map(|r| r.name.clone()),
        region: c.region.to_string(),
        school_type: c.registry.map(|r| r.school_type),
        registered: c.registry.is_some(),
        expected_alarms: c.registry.map(|r| r.expected_alarms),
        expected_cameras: c.registry.map(|r| r.expected_cameras),
        gateway_state: c.gateway.state,
        since: c.gateway.since,
        last_heartbeat: c.gateway.last_heartbeat,
        first_seen: c.gateway.first_seen,
        alarm_networked: c.alarm_networked,
        video_networked: c.video_networked,
        devices,
    }
}

#[derive(Serialize)]
pub(super) struct CampusList {
    total: usize,
    campuses: Vec<CampusSummary>,
}

pub(super) async fn campuses(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CampusesQuery>,
) -> Result<Json<CampusList>, ApiError> {
    let region = caller.region(q.region.as_deref().map(parse_region).transpose()?)?;
    let school_type = q
        .school_type
        .as_deref()
        .map(parse_school_type)
        .transpose()?;
    let state = q
        .state
        .as_deref()
        .map(|st| {
            GatewayState::parse(st).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "state {st:?}: use online, stale, offline or never_seen"
                ))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100).min(10_000) as usize;
    let offset = q.offset.unwrap_or(0) as usize;
    let m = s.monitor();
    let matching: Vec<_> = m
        .campuses()
        .into_iter()
        .filter(|c| region.is_none_or(|r| c.region.is_within(&r)))
        .filter(|c| state.is_none_or(|st| c.gateway.state == st))
        .filter(|c| q.registered.is_none_or(|r| c.registry.is_some() == r))
        .filter(|c| school_type.is_none_or(|t| c.registry.is_some_and(|e| e.school_type == t)))
        .collect();
    Ok(Json(CampusList {
        total: matching.len(),
        campuses: matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(summary)
            .collect(),
    }))
}

#[derive(Serialize)]
struct GatewayDetail {
    state: GatewayState,
    since: Option<Timestamp>,
    cause: Option<String>,
    epoch: u64,
    last_heartbeat: Option<Timestamp>,
    health: Option<HostHealth>,
    agent_version: Option<String>,
    config_digest: Option<String>,
    heartbeat_interval_ms: u64,
    first_seen: Option<Timestamp>,
    /// Newest agent event id the device states reflect.
    last_event_id: u64,
    /// Events the gateway's spool dropped (full during a broker outage).
    dropped_events: u64,
}

#[derive(Serialize)]
struct DeviceDetail {
    id: String,
    kind: DeviceKind,
    probe: String,
    target: String,
    required: bool,
    /// What users see: `unknown` while the gateway is not online.
    state: DeviceState,
    /// What the agent last reported.
    reported_state: DeviceState,
    since: Option<Timestamp>,
    cause: Option<String>,
    measurements: Measurements,
    info: Option<DeviceInfo>,
}

#[derive(Serialize)]
pub(super) struct CampusDetail {
    #[serde(flatten)]
    summary: CampusSummary,
    gateway: GatewayDetail,
    device_list: Vec<DeviceDetail>,
    alerts: Vec<Alert>,
}

pub(super) async fn campus(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CampusDetail>, ApiError> {
    let id = CampusId::parse(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let m = s.monitor();
    let c = m
        .campus(id.as_str())
        .filter(|c| caller.sees(&c.region))
        .ok_or_else(|| ApiError::NotFound(format!("campus {id} is neither registered nor seen")))?;
    let g = c.gateway;
    Ok(Json(CampusDetail {
        summary: summary(&c),
        gateway: GatewayDetail {
            state: g.state,
            since: g.since,
            cause: g.cause.clone(),
            epoch: g.epoch,
            last_heartbeat: g.last_heartbeat,
            health: g.health,
            agent_version: g.agent_version.clone(),
            config_digest: g.config_digest.clone(),
            heartbeat_interval_ms: g.heartbeat_interval_ms,
            first_seen: g.first_seen,
            last_event_id: g.last_event_id,
            dropped_events: g.dropped_events,
        },
        device_list: c
            .devices
            .iter()
            .map(|d| DeviceDetail {
                id: d.id.to_string(),
                kind: d.kind,
                probe: d.probe.to_string(),
                target: d.target.to_string(),
                required: d.required,
                state: c.device_state(d),
                reported_state: d.state,
                since: d.since,
                cause: d.cause.clone(),
                measurements: d.measurements.clone(),
                info: d.info.as_deref().cloned(),
            })
            .collect(),
        alerts: m
            .active_alerts()
            .filter(|a| a.campus == id)
            .cloned()
            .collect(),
    }))
}
