//! Campuses: the list, with gateway state and device counts, and one campus in detail.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use campuswatch_protocol::{
    CampusId, CauseCode, DeviceInfo, DeviceKind, DeviceState, GatewayState, HostHealth,
    Measurements, SchoolType, Timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::{parse_school_type, ApiError};
use super::extract::ApiQuery;
use super::openapi::{BadRequest, ErrorDoc, Forbidden, Unauthorized};
use super::schemas;
use super::AppState;
use crate::monitor::{Alert, CampusView};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct CampusesQuery {
    /// Only this region node and what lies below it: a province, city (prefecture or
    /// league) or county code.
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
    /// Only campuses whose gateway is in this state.
    #[param(value_type = Option<schemas::GatewayState>)]
    state: Option<String>,
    /// `true`: only campuses in the registry; `false`: only unregistered campuses that
    /// reported.
    registered: Option<bool>,
    /// Only campuses of this school type.
    #[param(value_type = Option<schemas::SchoolType>)]
    school_type: Option<String>,
    /// `false`: only registered campuses not fully networked (alarm and video); `true`:
    /// only those that are.
    networked: Option<bool>,
    /// Only campuses whose id or registered name contains this text (ignoring case).
    #[param(example = "第一小学")]
    q: Option<String>,
    /// `id` (the default): in campus id order. `worst`: the worst first: gateways not
    /// heard (offline, stale), then campuses reporting without alarm and video, without
    /// alarm, without video, then those never seen, then the fully networked; longest in
    /// their state first.
    #[param(value_type = Option<String>, example = "worst")]
    sort: Option<String>,
    /// Page size; larger values are capped at 10000.
    #[param(default = 100)]
    limit: Option<u32>,
    /// Rows to skip.
    #[param(default = 0)]
    offset: Option<u32>,
}

/// Devices of one kind that the gateway reported.
#[derive(Serialize, ToSchema)]
struct KindCount {
    /// Up or degraded (as users see them).
    up: usize,
    /// Down.
    down: usize,
    /// Reported; those neither up nor down are unknown.
    total: usize,
}

/// Reported devices per kind.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "the shape of `CampusSummary::devices`, for the document"
)]
struct DeviceCounts {
    alarm: KindCount,
    camera: KindCount,
}

/// A campus: registered, seen (its gateway reported), or both.
#[derive(Serialize, ToSchema)]
struct CampusSummary {
    #[schema(value_type = schemas::CampusId)]
    id: String,
    /// Registered name; null for an unregistered campus.
    #[schema(required)]
    name: Option<String>,
    #[schema(value_type = schemas::RegionCode)]
    region: String,
    /// Registered school type; null for an unregistered campus.
    #[schema(required, value_type = Option<schemas::SchoolType>)]
    school_type: Option<SchoolType>,
    /// Whether the campus is in the registry (only registered campuses count in
    /// coverage).
    registered: bool,
    /// When the campus entered the registry: a campus never seen has not been networked
    /// since then. Null for an unregistered campus.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    registered_at: Option<Timestamp>,
    /// Alarm devices the registry expects; null for an unregistered campus.
    #[schema(required)]
    expected_alarms: Option<u32>,
    /// Cameras the registry expects; null for an unregistered campus.
    #[schema(required)]
    expected_cameras: Option<u32>,
    #[schema(value_type = schemas::GatewayState)]
    gateway_state: GatewayState,
    /// When the gateway entered its state; null if never seen.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    since: Option<Timestamp>,
    /// When the gateway's last heartbeat arrived; null if none.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    last_heartbeat: Option<Timestamp>,
    /// When the gateway first reported (the console's review of unregistered campuses);
    /// null if never seen.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    first_seen: Option<Timestamp>,
    /// Whether the campus's alarm link counts as networked.
    alarm_networked: bool,
    /// Whether the campus's video link counts as networked.
    video_networked: bool,
    #[schema(value_type = DeviceCounts)]
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
        registered_at: c.registered_at,
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

/// One page of campuses.
#[derive(Serialize, ToSchema)]
pub(super) struct CampusList {
    /// Campuses matching the filters, before `limit` and `offset`.
    total: usize,
    /// In campus id order, or worst first (`sort=worst`).
    campuses: Vec<CampusSummary>,
}

/// List campuses
///
/// Campuses (registered, or unregistered ones whose gateway reported) with their gateway
/// state, networked flags and device counts, in campus id order.
#[utoipa::path(
    get,
    path = "/api/v1/campuses",
    operation_id = "listCampuses",
    tag = "campuses",
    params(CampusesQuery),
    responses(
        (status = 200, description = "A page of campuses.", body = CampusList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
)]
pub(super) async fn campuses(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CampusesQuery>,
) -> Result<Json<CampusList>, ApiError> {
    let region = caller.region_param(q.region.as_deref())?;
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
    let worst = match q.sort.as_deref() {
        None | Some("id") => false,
        Some("worst") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "sort {other:?}: use id or worst"
            )))
        }
    };
    let limit = q.limit.unwrap_or(100).min(10_000) as usize;
    let offset = q.offset.unwrap_or(0) as usize;
    let m = s.monitor();
    let fully = |c: &CampusView<'_>| c.alarm_networked && c.video_networked;
    let text =
        q.q.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase);
    if text.as_ref().is_some_and(|t| t.len() > 200) {
        return Err(ApiError::BadRequest("q: at most 200 bytes".into()));
    }
    let found = |c: &CampusView<'_>| {
        text.as_ref().is_none_or(|t| {
            c.id.as_str().to_lowercase().contains(t)
                || c.registry
                    .is_some_and(|e| e.name.to_lowercase().contains(t))
        })
    };
    let mut matching: Vec<_> = m
        .campuses()
        .into_iter()
        .filter(|c| region.is_none_or(|r| c.region.is_within(&r)))
        .filter(|c| state.is_none_or(|st| c.gateway.state == st))
        .filter(|c| q.registered.is_none_or(|r| c.registry.is_some() == r))
        .filter(|c| school_type.is_none_or(|t| c.registry.is_some_and(|e| e.school_type == t)))
        .filter(|c| {
            q.networked
                .is_none_or(|n| c.registry.is_some() && fully(c) == n)
        })
        .filter(found)
        .collect();
    if worst {
        // A stable sort: campus id order within a tier and time.
        matching.sort_by_key(|c| (badness(c), c.gateway.since));
    }
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

/// How bad a campus's state is, worst first (see `sort=worst`).
fn badness(c: &CampusView<'_>) -> u8 {
    match c.gateway.state {
        GatewayState::Offline | GatewayState::Stale => 0,
        GatewayState::Online => match (c.alarm_networked, c.video_networked) {
            (false, false) => 1,
            (false, true) => 2,
            (true, false) => 3,
            (true, true) => 5,
        },
        GatewayState::NeverSeen => 4,
    }
}

/// What the server knows of a campus's gateway.
#[derive(Serialize, ToSchema)]
struct GatewayDetail {
    #[schema(value_type = schemas::GatewayState)]
    state: GatewayState,
    /// When it entered `state`; null if never seen.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    since: Option<Timestamp>,
    /// Why it is in `state` (for example `connection lost`); null if not known.
    #[schema(required)]
    cause: Option<String>,
    /// The same as a code (`gateway.connection_lost`, `gateway.shutdown`,
    /// `gateway.no_heartbeat`); null if not known.
    #[schema(required, value_type = Option<schemas::doc::CauseCode>)]
    cause_code: Option<CauseCode>,
    /// Session epoch; the agent increments it before every connect.
    epoch: u64,
    /// When the last heartbeat arrived.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    last_heartbeat: Option<Timestamp>,
    /// Host health from the last heartbeat; null if none yet.
    #[schema(required, value_type = Option<schemas::doc::HostHealth>)]
    health: Option<HostHealth>,
    /// From the gateway's last birth.
    #[schema(required)]
    agent_version: Option<String>,
    /// Digest of the agent's configuration, to spot gateways running a stale config.
    #[schema(required)]
    config_digest: Option<String>,
    /// The heartbeat interval the gateway announced (0 if never seen).
    heartbeat_interval_ms: u64,
    /// When the gateway first reported.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    first_seen: Option<Timestamp>,
    /// Newest event id of the gateway that the device states reflect (from its last
    /// birth or event).
    last_event_id: u64,
    /// Events the gateway's spool dropped, oldest first, because a broker outage outlasted
    /// its bound (as its last birth said; 0 from agents before schema version 3). Their
    /// ids never arrive: a gap in the event ids of this size is explained, not lost in
    /// transit.
    dropped_events: u64,
}

/// An alarm device or camera as its gateway last reported it.
#[derive(Serialize, ToSchema)]
struct DeviceDetail {
    #[schema(value_type = schemas::DeviceId)]
    id: String,
    #[schema(value_type = schemas::DeviceKind)]
    kind: DeviceKind,
    /// The probe that judges it (`tcp`, `http`, …).
    probe: String,
    /// What the probe reaches (`10.1.2.3:5000`, `http://10.1.2.4/status`).
    target: String,
    /// A required device that is down makes the gateway's own check fail.
    required: bool,
    /// What users see: `unknown` while the gateway is not online.
    #[schema(value_type = schemas::DeviceState)]
    state: DeviceState,
    /// What the agent last reported.
    #[schema(value_type = schemas::DeviceState)]
    reported_state: DeviceState,
    /// When the device entered its reported state; null while unknown.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    since: Option<Timestamp>,
    /// Why, if the agent said.
    #[schema(required)]
    cause: Option<String>,
    /// The same as a code with parameters, if the agent sent one (schema version 4).
    #[schema(required, value_type = Option<schemas::doc::CauseCode>)]
    cause_code: Option<CauseCode>,
    #[schema(value_type = schemas::Measurements)]
    measurements: Measurements,
    /// What the device says it is (ONVIF device information), once a probe has learned
    /// it; null until then.
    #[schema(required, value_type = Option<schemas::doc::DeviceInfo>)]
    info: Option<DeviceInfo>,
}

/// A campus with its gateway, devices and active alerts.
#[derive(Serialize, ToSchema)]
pub(super) struct CampusDetail {
    #[serde(flatten)]
    summary: CampusSummary,
    gateway: GatewayDetail,
    /// Devices in the order of the gateway's birth inventory.
    device_list: Vec<DeviceDetail>,
    /// The campus's active (open and suppressed) alerts.
    alerts: Vec<Alert>,
    /// Its GB/T 28181 devices and its video by both views.
    gb28181: Option<super::gb28181::CampusGb>,
}

/// One campus
///
/// A campus with its gateway (state, session, host health), every alarm device and
/// camera it reported, and its active alerts.
#[utoipa::path(
    get,
    path = "/api/v1/campuses/{id}",
    operation_id = "getCampus",
    tag = "campuses",
    params(("id" = schemas::CampusId, Path, description = "The campus id.")),
    responses(
        (status = 200, description = "The campus.", body = CampusDetail),
        (status = 400, description = "Not a valid campus id.", body = ErrorDoc),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "The campus is neither registered nor seen (or is outside the caller's region scope).", body = ErrorDoc),
    ),
)]
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
            cause_code: g.cause_code.clone(),
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
                cause: d.cause.as_deref().map(String::from),
                cause_code: d.cause_code.as_deref().cloned(),
                measurements: d.measurements.to_map(),
                info: d.info.as_deref().cloned(),
            })
            .collect(),
        alerts: m
            .active_alerts()
            .filter(|a| a.campus == id)
            .cloned()
            .collect(),
        gb28181: super::gb28181::campus_gb(&m, &id),
    }))
}
