//! `GET /api/v1/reports/availability`: time-weighted availability over a period.

use super::*;
use crate::csv_cell::text;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(in crate::api) struct AvailabilityQuery {
    /// Only this region node and what lies below it: a province, city (prefecture or
    /// league) or county code. Default: the caller's scope (everything for a user of
    /// every region).
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
    /// Only campuses of this school type.
    #[param(value_type = Option<schemas::SchoolType>)]
    school_type: Option<String>,
    /// `day`, `week` (ISO, Monday to Sunday) or `month`, containing `date`. Without
    /// period, from and to: yesterday.
    #[param(value_type = Option<schemas::Period>, inline)]
    period: Option<String>,
    /// A local date (YYYY-MM-DD) for `period`; default today.
    #[param(value_type = Option<schemas::Date>, example = "2026-11-29")]
    date: Option<String>,
    /// Start of a custom period (inclusive): RFC 3339 time or a local date (its
    /// midnight). With `to`, instead of `period`.
    #[param(example = "2026-11-01")]
    from: Option<String>,
    /// End of a custom period (exclusive): RFC 3339 time or a local date (its midnight).
    /// At most 366 days after `from`.
    #[param(example = "2026-12-01")]
    to: Option<String>,
    /// Local time for days, weeks and months: +HH:MM or -HH:MM (percent-encode `+` as
    /// %2B). Default: the server's `time_zone` (+08:00 for Asia/Shanghai).
    #[param(value_type = Option<schemas::UtcOffset>, inline, example = "+08:00")]
    utc_offset: Option<String>,
    /// `json` (default) or `csv` (UTF-8 with a byte order mark, so Excel shows Chinese
    /// names; a header row).
    #[param(value_type = Option<schemas::Format>, inline)]
    format: Option<String>,
}

/// Availability of one school type.
#[derive(Serialize, ToSchema)]
#[schema(as = SchoolTypeAvailability)]
struct SchoolTypeFigures {
    #[schema(value_type = schemas::SchoolType)]
    school_type: SchoolType,
    #[serde(flatten)]
    figures: Figures,
}

/// Availability of a child region node.
#[derive(Serialize, ToSchema)]
#[schema(as = AvailabilityChild)]
struct ChildFigures {
    #[schema(value_type = schemas::RegionCode)]
    code: String,
    /// The region's name.
    name: String,
    #[schema(value_type = schemas::RegionLevel)]
    level: &'static str,
    #[serde(flatten)]
    figures: Figures,
}

/// One campus's availability over the period.
#[derive(Serialize, ToSchema)]
#[schema(as = CampusAvailability)]
struct CampusFigures {
    #[schema(value_type = schemas::CampusId)]
    id: String,
    /// Registered name.
    name: String,
    #[schema(value_type = schemas::RegionCode)]
    region: String,
    #[schema(value_type = schemas::SchoolType)]
    school_type: SchoolType,
    /// Counted hours (the period less maintenance and server gaps).
    observed_hours: f64,
    /// Share of counted time the gateway was online.
    #[schema(required)]
    gateway: Option<f64>,
    /// Share of counted time the campus was alarm networked.
    #[schema(required)]
    alarm: Option<f64>,
    /// Share of counted time the campus was video networked.
    #[schema(required)]
    video: Option<f64>,
    /// Share of counted time the campus was fully networked.
    #[schema(required)]
    fully: Option<f64>,
    /// Share of counted time its video was networked by the agent's view alone.
    #[schema(required)]
    video_agent: Option<f64>,
    /// By the GB/T 28181 view; null when its entry lists no codes.
    #[schema(required)]
    video_platform: Option<f64>,
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
            video_agent: c.video_agent.availability(),
            video_platform: c.video_platform.and_then(|t| t.availability()),
        }
    }
}

/// Availability of a region node (or the whole area) over a period, split by school type
/// and by child node, with the campuses of a county.
#[derive(Serialize, ToSchema)]
#[schema(as = AvailabilityReport)]
pub(in crate::api) struct AvailabilityResponse {
    /// Start of the period (inclusive).
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    /// End of the period (exclusive).
    #[schema(value_type = String, format = DateTime)]
    to: Timestamp,
    /// The local time used for days, weeks and months, as +HH:MM.
    #[schema(example = "+08:00")]
    utc_offset: String,
    /// The node asked for; null for the whole area.
    #[schema(required)]
    region: Option<RegionInfo>,
    /// The school type asked for; null for all.
    #[schema(required, value_type = Option<schemas::SchoolType>)]
    school_type: Option<SchoolType>,
    #[serde(flatten)]
    figures: Figures,
    /// One block per school type (only the one asked for, if any).
    school_types: Vec<SchoolTypeFigures>,
    /// One block per child node holding registered campuses.
    children: Vec<ChildFigures>,
    /// The campuses of a county; empty for a higher node.
    campuses: Vec<CampusFigures>,
}

/// Availability over a period
///
/// Time-weighted availability of the gateway link, alarm, video and full networking, per
/// region node and school type, from the transition history; maintenance windows and
/// times the server was not running are left out; registered campuses never seen count
/// as unavailable. See docs/reports.md.
#[utoipa::path(
    get,
    path = "/api/v1/reports/availability",
    operation_id = "getAvailabilityReport",
    tag = "reports",
    params(AvailabilityQuery),
    responses(
        (status = 200, description = "Availability figures (CSV: the node, its children and a county's campuses, one row each).", content(
            (AvailabilityResponse = "application/json"),
            (String = "text/csv; charset=utf-8"),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(in crate::api) async fn availability(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AvailabilityQuery>,
) -> Result<Response, ApiError> {
    let (region, school_type) = node(q.region.as_deref(), q.school_type.as_deref())?;
    // Within the caller's region scope (its whole scope when no region is asked for).
    let region = caller.region(region)?;
    let csv = format_csv(q.format.as_deref())?;
    let tz = offset(q.utc_offset.as_deref(), &s)?;
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
            "video_agent",
            "video_platform",
        ];
        let write = || -> Result<(), csv::Error> {
            w.write_record(header)?;
            for (code, name, level, f) in rows {
                w.write_record([
                    code,
                    text(&name),
                    level.to_string(),
                    f.registered.to_string(),
                    format!("{:.3}", f.observed_campus_hours),
                    fmt_opt(f.gateway),
                    fmt_opt(f.alarm),
                    fmt_opt(f.video),
                    fmt_opt(f.fully),
                    fmt_opt(f.video_agent),
                    fmt_opt(f.video_platform),
                ])?;
            }
            for c in &campuses {
                w.write_record([
                    c.id.clone(),
                    text(&c.name),
                    "campus".to_string(),
                    "1".to_string(),
                    format!("{:.3}", c.observed_hours),
                    fmt_opt(c.gateway),
                    fmt_opt(c.alarm),
                    fmt_opt(c.video),
                    fmt_opt(c.fully),
                    fmt_opt(c.video_agent),
                    fmt_opt(c.video_platform),
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
