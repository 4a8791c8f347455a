//! GB/T 28181: the devices registered to the server as a video platform, one device with
//! its channels, and the campuses whose two views of their video disagree.

use axum::extract::{Path, State};
use axum::Json;
use campuswatch_protocol::{CampusId, CauseCode, RegionCode, SchoolType, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::openapi::{BadRequest, ErrorDoc, Forbidden, Unauthorized};
use super::schemas;
use super::AppState;
use crate::gb28181::{ChannelKind, ChannelStatus, GbCode, Transport};
use crate::monitor::{CampusVideoViews, Disagreement, GbChannel, GbDeviceView, GbState, Monitor};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DevicesQuery {
    /// Only devices of campuses in this region node (a province, city or county code);
    /// devices no campus lists, only if their code's division is within it.
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
    /// Only the devices this campus lists.
    #[param(value_type = Option<schemas::CampusId>)]
    campus: Option<String>,
    /// `true`: only devices no campus lists (for review); `false`: only listed ones.
    mapped: Option<bool>,
    /// Only devices in this state.
    #[param(value_type = Option<GbState>)]
    state: Option<String>,
}

/// Channel counts of a device's catalog.
#[derive(Serialize, ToSchema)]
struct ChannelCounts {
    total: usize,
    on: usize,
    /// Camera channels (type 131/132).
    cameras: usize,
    cameras_on: usize,
    /// Alarm inputs (type 134).
    alarm_inputs: usize,
    alarm_inputs_on: usize,
}

/// A GB/T 28181 device registered (or once registered) to the server.
#[derive(Serialize, ToSchema)]
#[schema(as = GbDevice)]
pub(super) struct DeviceSummary {
    /// The device's 20-digit code.
    #[schema(value_type = String, example = "15010200001180000001")]
    id: GbCode,
    /// The campus that lists it; null for a device no campus lists.
    #[schema(required, value_type = Option<schemas::CampusId>)]
    campus: Option<CampusId>,
    /// That campus's name.
    #[schema(required)]
    campus_name: Option<String>,
    /// The campus's county, else the division of the code's first six digits.
    #[schema(required, value_type = Option<schemas::RegionCode>)]
    region: Option<RegionCode>,
    state: GbState,
    #[schema(value_type = String, format = DateTime)]
    since: Timestamp,
    #[schema(required)]
    cause: Option<String>,
    #[schema(required, value_type = Option<Object>)]
    cause_code: Option<CauseCode>,
    /// Where it registered from (`ip:port`).
    address: String,
    #[schema(value_type = String, example = "udp")]
    transport: Transport,
    #[schema(value_type = String, format = DateTime)]
    registered_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
    #[schema(required, value_type = Option<String>, format = DateTime)]
    last_keepalive: Option<Timestamp>,
    keepalive_secs: u32,
    #[schema(required, value_type = Option<String>, format = DateTime)]
    catalog_at: Option<Timestamp>,
    channels: ChannelCounts,
}

/// One channel of a device's catalog.
#[derive(Serialize, ToSchema)]
struct ChannelItem {
    #[schema(value_type = String, example = "15010200001320000001")]
    id: GbCode,
    #[schema(required)]
    name: Option<String>,
    #[schema(required)]
    manufacturer: Option<String>,
    #[schema(required)]
    model: Option<String>,
    #[schema(value_type = String, example = "camera")]
    kind: ChannelKind,
    #[schema(value_type = String, example = "on")]
    status: ChannelStatus,
    #[schema(value_type = String, format = DateTime)]
    since: Timestamp,
    /// The campus the channel counts for (its own listing, else its device's).
    #[schema(required, value_type = Option<schemas::CampusId>)]
    campus: Option<CampusId>,
}

/// A device with every channel of its catalog.
#[derive(Serialize, ToSchema)]
#[schema(as = GbDeviceDetail)]
pub(super) struct DeviceDetail {
    #[serde(flatten)]
    device: DeviceSummary,
    channel_list: Vec<ChannelItem>,
}

/// GB/T 28181 devices, in code order.
#[derive(Serialize, ToSchema)]
pub(super) struct DeviceList {
    devices: Vec<DeviceSummary>,
}

fn counts(channels: &[GbChannel]) -> ChannelCounts {
    let on = |c: &&GbChannel| c.status == ChannelStatus::On;
    let of = |k: ChannelKind| channels.iter().filter(move |c| c.id.channel_kind() == k);
    ChannelCounts {
        total: channels.len(),
        on: channels.iter().filter(on).count(),
        cameras: of(ChannelKind::Camera).count(),
        cameras_on: of(ChannelKind::Camera).filter(on).count(),
        alarm_inputs: of(ChannelKind::AlarmInput).count(),
        alarm_inputs_on: of(ChannelKind::AlarmInput).filter(on).count(),
    }
}

/// The region a device is judged by for scopes: its campus's, else its code's division.
fn device_region(m: &Monitor, d: &GbDeviceView<'_>) -> Option<RegionCode> {
    match d.campus {
        Some(c) => m.campus(c.as_str()).map(|v| v.region),
        None => d.record.id.division(),
    }
}

fn summary(m: &Monitor, d: &GbDeviceView<'_>) -> DeviceSummary {
    let r = d.record;
    DeviceSummary {
        id: r.id,
        campus: d.campus.cloned(),
        campus_name: d
            .campus
            .and_then(|c| m.campus(c.as_str()))
            .and_then(|v| v.registry.map(|e| e.name.clone())),
        region: device_region(m, d),
        state: r.state,
        since: r.since,
        cause: r.cause.clone(),
        cause_code: r.cause_code.clone(),
        address: r.address.clone(),
        transport: r.transport,
        registered_at: r.registered_at,
        expires_at: r.expires_at,
        last_keepalive: r.last_keepalive,
        keepalive_secs: r.keepalive_secs,
        catalog_at: r.catalog_at,
        channels: counts(&r.channels),
    }
}

/// Whether the caller may see this device: within their scope by its region; a device
/// with no region (its code names no division) only by callers of the whole area.
fn visible(caller: &Caller, region: Option<RegionCode>) -> bool {
    match region {
        Some(r) => caller.sees(&r),
        None => caller.0.scope.is_none(),
    }
}

/// List GB/T 28181 devices
///
/// The devices (campus NVRs and cameras, lower platforms in cascade) registered to the
/// server as a GB/T 28181 platform, with their registration, keepalive and channel
/// counts. Devices no campus's registry entry lists are included for review
/// (`mapped=false`).
#[utoipa::path(
    get,
    path = "/api/v1/gb28181/devices",
    operation_id = "listGbDevices",
    tag = "gb28181",
    params(DevicesQuery),
    responses(
        (status = 200, description = "The devices.", body = DeviceList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
)]
pub(super) async fn gb_devices(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DevicesQuery>,
) -> Result<Json<DeviceList>, ApiError> {
    let region = caller.region_param(q.region.as_deref())?;
    let state = match q.state.as_deref() {
        None => None,
        Some(st) => Some(GbState::parse(st).ok_or_else(|| {
            ApiError::BadRequest(format!("state {st:?}: use {}", GbState::choices()))
        })?),
    };
    let campus = q
        .campus
        .as_deref()
        .map(CampusId::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let m = s.monitor();
    let listed: Option<Vec<GbCode>> = campus
        .as_ref()
        .map(|c| m.campus_gb_devices(c).into_iter().map(|d| d.id).collect());
    let devices = m
        .gb_devices()
        .into_iter()
        .filter(|d| {
            let r = device_region(&m, d);
            visible(&caller, r)
                && region.is_none_or(|want| r.is_some_and(|r| r.is_within(&want)))
                && q.mapped.is_none_or(|want| d.campus.is_some() == want)
                && state.is_none_or(|st| d.record.state == st)
                && listed.as_ref().is_none_or(|l| l.contains(&d.record.id))
        })
        .map(|d| summary(&m, &d))
        .collect();
    Ok(Json(DeviceList { devices }))
}

/// One GB/T 28181 device
///
/// A device with every channel of its last catalog (name, kind, `Status` and since
/// when) and the campus each channel counts for.
#[utoipa::path(
    get,
    path = "/api/v1/gb28181/devices/{id}",
    operation_id = "getGbDevice",
    tag = "gb28181",
    params(("id" = String, Path, description = "The device's 20-digit code.")),
    responses(
        (status = 200, description = "The device.", body = DeviceDetail),
        (status = 400, description = "Not a 20-digit code.", body = ErrorDoc),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such device (or outside the caller's region scope).", body = ErrorDoc),
    ),
)]
pub(super) async fn gb_device(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeviceDetail>, ApiError> {
    let code = GbCode::parse(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let m = s.monitor();
    let d = m
        .gb_device(&code)
        .filter(|d| visible(&caller, device_region(&m, d)))
        .ok_or_else(|| ApiError::NotFound(format!("no GB/T 28181 device {code}")))?;
    let channel_list = d
        .record
        .channels
        .iter()
        .map(|c| ChannelItem {
            id: c.id,
            name: c.name.clone(),
            manufacturer: c.manufacturer.clone(),
            model: c.model.clone(),
            kind: c.id.channel_kind(),
            status: c.status,
            since: c.since,
            campus: m.gb_channel_campus(&c.id, &code).cloned(),
        })
        .collect();
    Ok(Json(DeviceDetail {
        device: summary(&m, &d),
        channel_list,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DisagreementQuery {
    /// Only campuses in this region node.
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
}

/// A campus whose agent and video platform disagree about its video.
#[derive(Serialize, ToSchema)]
struct DisagreementItem {
    #[schema(value_type = schemas::CampusId)]
    campus: CampusId,
    name: String,
    #[schema(value_type = schemas::RegionCode)]
    region: RegionCode,
    #[schema(value_type = schemas::SchoolType)]
    school_type: SchoolType,
    disagreement: Disagreement,
    /// Cameras the registry expects.
    cameras_expected: u32,
    /// Cameras the agent sees up.
    agent_cameras_up: u64,
    views: CampusVideoViews,
}

/// Campuses whose two views disagree, in id order.
#[derive(Serialize, ToSchema)]
pub(super) struct DisagreementList {
    campuses: Vec<DisagreementItem>,
}

/// Where the agent and the video platform disagree
///
/// Registered campuses whose video is networked by one view and not the other, while
/// both can be heard (the agent's gateway online, the campus's GB/T 28181 devices
/// listed): `uplink_broken` (cameras up on campus, channels not ON on the platform) or
/// `agent_blind` (channels ON on the platform, the agent does not see the cameras).
#[utoipa::path(
    get,
    path = "/api/v1/coverage/disagreements",
    operation_id = "listDisagreements",
    tag = "gb28181",
    params(DisagreementQuery),
    responses(
        (status = 200, description = "The campuses.", body = DisagreementList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
)]
pub(super) async fn disagreements(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DisagreementQuery>,
) -> Result<Json<DisagreementList>, ApiError> {
    let region = caller.region_param(q.region.as_deref())?;
    let m = s.monitor();
    let campuses = m
        .disagreements()
        .into_iter()
        .filter(|(c, _)| caller.sees(&c.region) && region.is_none_or(|r| c.region.is_within(&r)))
        .filter_map(|(c, how)| {
            let r = c.registry?;
            Some(DisagreementItem {
                campus: c.id.clone(),
                name: r.name.clone(),
                region: c.region,
                school_type: r.school_type,
                disagreement: how,
                cameras_expected: r.expected_cameras,
                agent_cameras_up: c.contribution.camera_up,
                views: m.campus_video_views(c.id.as_str())?,
            })
        })
        .collect();
    Ok(Json(DisagreementList { campuses }))
}

/// A campus's GB/T 28181 side, for its detail page.
#[derive(Serialize, ToSchema)]
pub(super) struct CampusGb {
    /// The codes its registry entry lists.
    #[schema(value_type = Vec<String>)]
    listed: Vec<GbCode>,
    /// The devices behind them, as they stand.
    devices: Vec<DeviceSummary>,
    views: CampusVideoViews,
}

/// The GB/T 28181 side of a campus; `None` for an unknown campus.
pub(super) fn campus_gb(m: &Monitor, id: &CampusId) -> Option<CampusGb> {
    let view = m.campus(id.as_str())?;
    let listed = view
        .registry
        .map(|r| r.gb_device_ids.clone())
        .unwrap_or_default();
    let devices = m
        .campus_gb_devices(id)
        .into_iter()
        .filter_map(|r| m.gb_device(&r.id))
        .map(|d| summary(m, &d))
        .collect();
    Some(CampusGb {
        listed,
        devices,
        views: m.campus_video_views(id.as_str())?,
    })
}
