//! Report endpoints: availability and coverage over a period or at a point in time, and
//! the daily coverage history. The figures come from [`crate::reports`]; definitions are
//! in `docs/reports.md`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use campuswatch_protocol::{RegionCode, RegionLevel, SchoolType, Timestamp};
use chrono::{FixedOffset, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::coverage::{level_name, region_info, RegionInfo};
use super::error::{parse_region, parse_school_type, ApiError};
use super::extract::ApiQuery;
use super::openapi::{BadRequest, Forbidden, Internal, Unauthorized};
use super::schemas;
use super::AppState;
use crate::regions::RegionNames;
use crate::reports::{
    aggregate, parse_utc_offset, AvailabilityRules, CampusAvailability, Figures, Period,
    PeriodError,
};
use crate::store::DailyCoverage;

/// How far back a point-in-time coverage report looks for since when a campus is not
/// networked: older outages show as "at least since" this far back.
const LOOKBACK_DAYS: i64 = 31;

impl From<PeriodError> for ApiError {
    fn from(e: PeriodError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

/// The region node and school type a report is about.
fn node(
    region: Option<&str>,
    school_type: Option<&str>,
) -> Result<(Option<RegionCode>, Option<SchoolType>), ApiError> {
    Ok((
        region.map(parse_region).transpose()?,
        school_type.map(parse_school_type).transpose()?,
    ))
}

/// The UTC offset asked for, or the server's time zone's now. Only the zone's own
/// offsets (two where it keeps summer time) are accepted: days of another offset are
/// other days, each computed from the whole history and stored, which a caller could
/// otherwise have the server do for every offset there is.
fn offset(s: Option<&str>, state: &AppState) -> Result<FixedOffset, ApiError> {
    let now = state.clock.now();
    let zone = |t| crate::reports::zone_offset(state.time_zone, t);
    let Some(s) = s else {
        return Ok(zone(now));
    };
    let asked = parse_utc_offset(s)?;
    // The zone's offsets over the last year.
    let allowed = [0, 91, 182, 273].map(|d| zone(now - chrono::TimeDelta::days(d)));
    if allowed.contains(&asked) {
        Ok(asked)
    } else {
        Err(ApiError::BadRequest(format!(
            "utc_offset {s}: this server reports the days of {} (UTC{}); leave utc_offset out",
            state.time_zone,
            offset_text(zone(now))
        )))
    }
}

fn offset_text(tz: FixedOffset) -> String {
    let secs = tz.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let m = secs.abs() / 60;
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

fn rules(s: &AppState) -> AvailabilityRules {
    let m = s.monitor();
    AvailabilityRules {
        alarm_fraction: m.settings().alarm_fraction,
        video_fraction: m.settings().video_fraction,
        video_view: m.settings().platform.video_view,
    }
}

/// The child of `node` on the way down to `region` (`None`: the whole area, whose
/// children are provinces).
fn child_of(node: Option<RegionCode>, region: RegionCode) -> Option<RegionCode> {
    region.lineage().find(|c| c.parent() == node)
}

pub(in crate::api) fn csv_response(filename: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A CSV writer whose output starts with the UTF-8 byte order mark, so Excel opens
/// Chinese names correctly.
pub(in crate::api) fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec())
}

pub(in crate::api) fn finish_csv(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, ApiError> {
    w.into_inner()
        .map_err(|e| ApiError::Internal(format!("CSV: {e}")))
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| format!("{x:.6}"))
}

/// Whether `format` asks for CSV (`csv`) rather than JSON (none, or `json`).
pub(in crate::api) fn format_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "format {other:?}: use json or csv"
        ))),
    }
}

mod availability;
mod coverage;
mod daily;

pub(in crate::api) use availability::{__path_availability, availability};
pub(in crate::api) use coverage::{__path_coverage, coverage};
pub(in crate::api) use daily::{__path_coverage_daily, coverage_daily};
