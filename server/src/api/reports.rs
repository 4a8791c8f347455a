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

use super::caller::Caller;
use super::coverage::{level_name, region_info, RegionInfo};
use super::error::{parse_region, parse_school_type, ApiError};
use super::extract::ApiQuery;
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

fn offset(s: Option<&str>) -> Result<FixedOffset, ApiError> {
    Ok(parse_utc_offset(s.unwrap_or("+08:00"))?)
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
    }
}

/// The child of `node` on the way down to `region` (`None`: the whole area, whose
/// children are provinces).
fn child_of(node: Option<RegionCode>, region: RegionCode) -> Option<RegionCode> {
    region.lineage().find(|c| c.parent() == node)
}

fn csv_response(filename: &str, body: Vec<u8>) -> Response {
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
fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec())
}

fn finish_csv(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, ApiError> {
    w.into_inner()
        .map_err(|e| ApiError::Internal(format!("CSV: {e}")))
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| format!("{x:.6}"))
}

fn format_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "format {other:?}: use json or csv"
        ))),
    }
}

// ---- availability -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AvailabilityQuery {
    region: Option<String>,
    school_type: Option<String>,
    period: Option<String>,
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
    utc_offset: Option<String>,
    format: Option<String>,
}

#[derive(Serialize)]
struct SchoolTypeFigures {
    school_type: SchoolType,
    #[serde(flatten)]
    figures: Figures,
}

#[derive(Serialize)]
struct ChildFigures {
    code: String,
    name: String,
    level: &'static str,
    #[serde(flatten)]
    figures: Figures,
}

#[derive(Serialize)]
struct CampusFigures {
    id: String,
    name: String,
    region: String,
    school_type: SchoolType,
    observed_hours: f64,
    gateway: Option<f64>,
    alarm: Option<f64>,
    video: Option<f64>,
    fully: Option<f64>,
}

impl From<&CampusAvailability> for CampusFigures {
    fn from(c: &CampusAvailability) -> Self {
        CampusFigures {
            id: c.campus.to_string(),
            name: c.name.clone(),
            region: c.region.to_string(),
            school_type: c.school_type,
            observed_hours: c.gateway.counted_ms as f64 / 3_600_000.0,
            gateway: c.gateway.availability(),
            alarm: c.alarm.availability(),
            video: c.video.availability(),
            fully: c.fully.availability(),
        }
    }
}

#[derive(Serialize)]
pub(super) struct AvailabilityResponse {
    from: Timestamp,
    to: Timestamp,
    utc_offset: String,
    region: Option<RegionInfo>,
    school_type: Option<SchoolType>,
    #[serde(flatten)]
    figures: Figures,
    school_types: Vec<SchoolTypeFigures>,
    children: Vec<ChildFigures>,
    /// The campuses of a county (empty for a higher node).
    campuses: Vec<CampusFigures>,
}

pub(super) async fn availability(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AvailabilityQuery>,
) -> Result<Response, ApiError> {
    let (region, school_type) = node(q.region.as_deref(), q.school_type.as_deref())?;
    // Within the caller's region scope (its whole scope when no region is asked for).
    let region = caller.region(region)?;
    let csv = format_csv(q.format.as_deref())?;
    let tz = offset(q.utc_offset.as_deref())?;
    let period = Period::resolve(
        q.period.as_deref(),
        q.date.as_deref(),
        q.from.as_deref(),
        q.to.as_deref(),
        tz,
        s.clock.now(),
    )?;
    let all = s.store.availability(region, period, rules(&s)).await?;
    let school_types = SchoolType::ALL
        .into_iter()
        .filter(|t| school_type.is_none_or(|st| st == *t))
        .map(|t| SchoolTypeFigures {
            school_type: t,
            figures: aggregate(all.iter().filter(|c| c.school_type == t)),
        })
        .collect();
    let chosen: Vec<&CampusAvailability> = all
        .iter()
        .filter(|c| school_type.is_none_or(|t| c.school_type == t))
        .collect();
    let mut by_child: BTreeMap<RegionCode, Vec<&CampusAvailability>> = BTreeMap::new();
    for c in &chosen {
        if let Some(child) = child_of(region, c.region) {
            by_child.entry(child).or_default().push(c);
        }
    }
    let children: Vec<ChildFigures> = by_child
        .into_iter()
        .map(|(code, cs)| {
            let info = region_info(code);
            ChildFigures {
                code: info.code,
                name: info.name,
                level: info.level,
                figures: aggregate(cs),
            }
        })
        .collect();
    let campuses: Vec<CampusFigures> = match region {
        Some(r) if r.level() == RegionLevel::County => {
            chosen.iter().map(|c| CampusFigures::from(*c)).collect()
        }
        _ => Vec::new(),
    };
    let figures = aggregate(chosen.iter().copied());
    if csv {
        let mut w = csv_writer();
        let rows = std::iter::once((
            region.map_or_else(String::new, |r| r.to_string()),
            region.map_or_else(|| "all".to_string(), |r| RegionNames::builtin().name(&r)),
            region.map_or("all", |r| level_name(r.level())),
            &figures,
        ))
        .chain(
            children
                .iter()
                .map(|c| (c.code.clone(), c.name.clone(), c.level, &c.figures)),
        );
        let header = [
            "code",
            "name",
            "level",
            "registered",
            "observed_campus_hours",
            "gateway",
            "alarm",
            "video",
            "fully",
        ];
        let write = || -> Result<(), csv::Error> {
            w.write_record(header)?;
            for (code, name, level, f) in rows {
                w.write_record([
                    code,
                    name,
                    level.to_string(),
                    f.registered.to_string(),
                    format!("{:.3}", f.observed_campus_hours),
                    fmt_opt(f.gateway),
                    fmt_opt(f.alarm),
                    fmt_opt(f.video),
                    fmt_opt(f.fully),
                ])?;
            }
            for c in &campuses {
                w.write_record([
                    c.id.clone(),
                    c.name.clone(),
                    "campus".to_string(),
                    "1".to_string(),
                    format!("{:.3}", c.observed_hours),
                    fmt_opt(c.gateway),
                    fmt_opt(c.alarm),
                    fmt_opt(c.video),
                    fmt_opt(c.fully),
                ])?;
            }
            Ok(())
        };
        write().map_err(|e| ApiError::Internal(format!("CSV: {e}")))?;
        return Ok(csv_response("availability.csv", finish_csv(w)?));
    }
    Ok(Json(AvailabilityResponse {
        from: period.from,
        to: period.to,
        utc_offset: offset_text(tz),
        region: region.map(region_info),
        school_type,
        figures,
        school_types,
        children,
        campuses,
    })
    .into_response())
}

// ---- coverage -----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CoverageReportQuery {
    region: Option<String>,
    school_type: Option<String>,
    at: Option<String>,
    period: Option<String>,
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
    utc_offset: Option<String>,
    format: Option<String>,
    /// For CSV: `summary` (default) or `not_networked`.
    table: Option<String>,
}

/// Per-campus values of the four measures: 0 or 1 at a point in time, the share of the
/// period over one.
#[derive(Clone, Copy)]
struct Measures {
    reporting: Option<f64>,
    alarm: Option<f64>,
    video: Option<f64>,
    fully: Option<f64>,
}

#[derive(Serialize)]
struct CoverageRow {
    /// Region code; null for the whole area.
    code: Option<String>,
    name: String,
    /// `all`, `province`, `city` or `county`.
    level: &'static str,
    /// Null for all school types together.
    school_type: Option<SchoolType>,
    registered: u64,
    reporting: f64,
    alarm_networked: f64,
    video_networked: f64,
    fully_networked: f64,
    reporting_rate: Option<f64>,
    alarm_networked_rate: Option<f64>,
    video_networked_rate: Option<f64>,
    fully_networked_rate: Option<f64>,
}

fn coverage_row(
    code: Option<RegionCode>,
    school_type: Option<SchoolType>,
    ms: &[Measures],
) -> CoverageRow {
    let mean = |f: fn(&Measures) -> Option<f64>| {
        let v: Vec<f64> = ms.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let registered = ms.len() as u64;
    let (r, a, v, f) = (
        mean(|m| m.reporting),
        mean(|m| m.alarm),
        mean(|m| m.video),
        mean(|m| m.fully),
    );
    let count = |x: Option<f64>| x.unwrap_or(0.0) * registered as f64;
    CoverageRow {
        code: code.map(|c| c.to_string()),
        name: code.map_or_else(|| "all".to_string(), |c| RegionNames::builtin().name(&c)),
        level: code.map_or("all", |c| level_name(c.level())),
        school_type,
        registered,
        reporting: count(r),
        alarm_networked: count(a),
        video_networked: count(v),
        fully_networked: count(f),
        reporting_rate: r,
        alarm_networked_rate: a,
        video_networked_rate: v,
        fully_networked_rate: f,
    }
}

#[derive(Serialize)]
struct NotNetworked {
    id: String,
    name: String,
    region: String,
    region_name: String,
    school_type: SchoolType,
    /// At the end of the report (the point in time, or the period's end).
    reporting: bool,
    alarm_networked: bool,
    video_networked: bool,
    /// Since when it has not been fully networked, if it is not at the end; when
    /// `since_at_least`, the outage began before the report looked back.
    since: Option<Timestamp>,
    since_at_least: bool,
    /// Hours not fully networked: since `since` at a point in time; within the period
    /// (counted time only) over a period.
    hours: f64,
}

#[derive(Serialize)]
pub(super) struct CoverageReport {
    /// The point in time, or null over a period.
    at: Option<Timestamp>,
    /// The period, or null at a point in time.
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    region: Option<RegionInfo>,
    school_type: Option<SchoolType>,
    /// The node, then the node per school type, then its children.
    rows: Vec<CoverageRow>,
    not_networked: Vec<NotNetworked>,
}

pub(super) async fn coverage(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CoverageReportQuery>,
) -> Result<Response, ApiError> {
    let (region, school_type) = node(q.region.as_deref(), q.school_type.as_deref())?;
    // Within the caller's region scope (its whole scope when no region is asked for).
    let region = caller.region(region)?;
    let csv = format_csv(q.format.as_deref())?;
    let not_networked_table = match q.table.as_deref() {
        None | Some("summary") => false,
        Some("not_networked") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "table {other:?}: use summary or not_networked"
            )))
        }
    };
    let tz = offset(q.utc_offset.as_deref())?;
    let now = s.clock.now();
    let over_period = q.period.is_some() || q.from.is_some() || q.to.is_some();
    if over_period && q.at.is_some() {
        return Err(ApiError::BadRequest(
            "give either at (a point in time) or a period, not both".into(),
        ));
    }
    let (period, at) = if over_period || q.date.is_some() {
        let p = Period::resolve(
            q.period.as_deref(),
            q.date.as_deref(),
            q.from.as_deref(),
            q.to.as_deref(),
            tz,
            now,
        )?;
        (p, None)
    } else {
        let at = match q.at.as_deref() {
            None => now,
            Some(t) => chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| {
                    ApiError::BadRequest(format!(
                        "at {t:?}: use an RFC 3339 time (2026-11-29T08:00:00+08:00)"
                    ))
                })?,
        };
        (
            Period {
                from: at - TimeDelta::days(LOOKBACK_DAYS),
                to: at,
            },
            Some(at),
        )
    };
    let all: Vec<CampusAvailability> = s
        .store
        .availability(region, period, rules(&s))
        .await?
        .into_iter()
        .filter(|c| school_type.is_none_or(|t| c.school_type == t))
        .collect();
    let measures = |c: &CampusAvailability| match at {
        Some(_) => {
            let b = |x: bool| Some(if x { 1.0 } else { 0.0 });
            Measures {
                reporting: b(c.end.online),
                alarm: b(c.end.alarm),
                video: b(c.end.video),
                fully: b(c.end.alarm && c.end.video),
            }
        }
        None => Measures {
            reporting: c.gateway.availability(),
            alarm: c.alarm.availability(),
            video: c.video.availability(),
            fully: c.fully.availability(),
        },
    };
    let mut rows = vec![coverage_row(
        region,
        None,
        &all.iter().map(measures).collect::<Vec<_>>(),
    )];
    for t in SchoolType::ALL
        .into_iter()
        .filter(|t| school_type.is_none_or(|st| st == *t))
    {
        let ms: Vec<Measures> = all
            .iter()
            .filter(|c| c.school_type == t)
            .map(measures)
            .collect();
        rows.push(coverage_row(region, Some(t), &ms));
    }
    let mut by_child: BTreeMap<RegionCode, Vec<Measures>> = BTreeMap::new();
    for c in &all {
        if let Some(child) = child_of(region, c.region) {
            by_child.entry(child).or_default().push(measures(c));
        }
    }
    rows.extend(
        by_child
            .into_iter()
            .map(|(code, ms)| coverage_row(Some(code), school_type, &ms)),
    );
    let names = RegionNames::builtin();
    let not_networked: Vec<NotNetworked> = all
        .iter()
        .filter(|c| match at {
            Some(_) => !(c.end.alarm && c.end.video),
            None => c.fully.up_ms < c.fully.counted_ms,
        })
        .map(|c| {
            let since = c.end.not_fully_since;
            let hours = match at {
                Some(at) => since.map_or(0.0, |s| (at - s).num_milliseconds() as f64 / 3.6e6),
                None => (c.fully.counted_ms - c.fully.up_ms) as f64 / 3.6e6,
            };
            NotNetworked {
                id: c.campus.to_string(),
                name: c.name.clone(),
                region: c.region.to_string(),
                region_name: names.name(&c.region),
                school_type: c.school_type,
                reporting: c.end.online,
                alarm_networked: c.end.alarm,
                video_networked: c.end.video,
                since,
                since_at_least: since == Some(period.from),
                hours,
            }
        })
        .collect();
    if csv {
        let mut w = csv_writer();
        let mut write = || -> Result<(), csv::Error> {
            if not_networked_table {
                w.write_record([
                    "id",
                    "name",
                    "region",
                    "region_name",
                    "school_type",
                    "reporting",
                    "alarm_networked",
                    "video_networked",
                    "since",
                    "since_at_least",
                    "hours",
                ])?;
                for n in &not_networked {
                    w.write_record([
                        n.id.clone(),
                        n.name.clone(),
                        n.region.clone(),
                        n.region_name.clone(),
                        n.school_type.as_str().to_string(),
                        n.reporting.to_string(),
                        n.alarm_networked.to_string(),
                        n.video_networked.to_string(),
                        n.since.map_or_else(String::new, crate::store::ts),
                        n.since_at_least.to_string(),
                        format!("{:.3}", n.hours),
                    ])?;
                }
            } else {
                w.write_record([
                    "code",
                    "name",
                    "level",
                    "school_type",
                    "registered",
                    "reporting",
                    "alarm_networked",
                    "video_networked",
                    "fully_networked",
                    "reporting_rate",
                    "alarm_networked_rate",
                    "video_networked_rate",
                    "fully_networked_rate",
                ])?;
                for r in &rows {
                    w.write_record([
                        r.code.clone().unwrap_or_default(),
                        r.name.clone(),
                        r.level.to_string(),
                        r.school_type.map_or("all", |t| t.as_str()).to_string(),
                        r.registered.to_string(),
                        format!("{:.3}", r.reporting),
                        format!("{:.3}", r.alarm_networked),
                        format!("{:.3}", r.video_networked),
                        format!("{:.3}", r.fully_networked),
                        fmt_opt(r.reporting_rate),
                        fmt_opt(r.alarm_networked_rate),
                        fmt_opt(r.video_networked_rate),
                        fmt_opt(r.fully_networked_rate),
                    ])?;
                }
            }
            Ok(())
        };
        write().map_err(|e| ApiError::Internal(format!("CSV: {e}")))?;
        let name = if not_networked_table {
            "not-networked.csv"
        } else {
            "coverage.csv"
        };
        return Ok(csv_response(name, finish_csv(w)?));
    }
    Ok(Json(CoverageReport {
        at,
        from: at.is_none().then_some(period.from),
        to: at.is_none().then_some(period.to),
        region: region.map(region_info),
        school_type,
        rows,
        not_networked,
    })
    .into_response())
}

// ---- daily coverage history ---------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DailyQuery {
    region: Option<String>,
    school_type: Option<String>,
    /// First local date (inclusive); default 30 days before `to`.
    from: Option<String>,
    /// Last local date (inclusive); default yesterday.
    to: Option<String>,
    utc_offset: Option<String>,
}

#[derive(Serialize)]
pub(super) struct DailyResponse {
    region: Option<RegionInfo>,
    school_type: Option<SchoolType>,
    utc_offset: String,
    days: Vec<DailyCoverage>,
}

fn parse_day(field: &str, s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{field} {s:?}: use YYYY-MM-DD")))
}

pub(super) async fn coverage_daily(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DailyQuery>,
) -> Result<Json<DailyResponse>, ApiError> {
    let (region, school_type) = node(q.region.as_deref(), q.school_type.as_deref())?;
    // Within the caller's region scope (its whole scope when no region is asked for).
    let region = caller.region(region)?;
    let tz = offset(q.utc_offset.as_deref())?;
    let now = s.clock.now();
    let today = now.with_timezone(&tz).date_naive();
    let yesterday = today.pred_opt().unwrap_or(today);
    let to =
        q.to.as_deref()
            .map(|t| parse_day("to", t))
            .transpose()?
            .unwrap_or(yesterday);
    let from = q
        .from
        .as_deref()
        .map(|f| parse_day("from", f))
        .transpose()?
        .unwrap_or_else(|| to.checked_sub_signed(TimeDelta::days(29)).unwrap_or(to));
    if to < from {
        return Err(ApiError::BadRequest("`to` is before `from`".into()));
    }
    if to - from >= TimeDelta::days(crate::reports::period::MAX_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "the history covers at most {} days",
            crate::reports::period::MAX_DAYS
        )));
    }
    // Only whole days that are over: today's figure is not final.
    let last = to.min(yesterday);
    let rules = rules(&s);
    let mut day = from;
    while day <= last {
        s.store.ensure_coverage_daily(day, tz, rules, now).await?;
        day = match day.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    let days = s
        .store
        .coverage_daily(region, school_type, from, last, tz)
        .await?;
    Ok(Json(DailyResponse {
        region: region.map(region_info),
        school_type,
        utc_offset: offset_text(tz),
        days,
    }))
}
