//! `GET /api/v1/reports/coverage`: coverage at a point in time or averaged over a period,
//! with the campuses not networked.

use super::*;
use crate::csv_cell::text;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(in crate::api) struct CoverageReportQuery {
    /// Only this region node and what lies below it: a province, city (prefecture or
    /// league) or county code. Default: the caller's scope (everything for a user of
    /// every region).
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
    /// Only campuses of this school type.
    #[param(value_type = Option<schemas::SchoolType>)]
    school_type: Option<String>,
    /// A point in time (RFC 3339); default now. Not with a period.
    #[param(value_type = Option<String>, format = DateTime)]
    at: Option<String>,
    /// `day`, `week` (ISO, Monday to Sunday) or `month`, containing `date`.
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
    /// For CSV: `summary` (default, the rows) or `not_networked` (the campuses).
    #[param(value_type = Option<schemas::CsvTable>, inline)]
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
    /// Video by the agent's view alone.
    video_agent: Option<f64>,
    /// Video by the GB/T 28181 view; `None` for a campus without codes.
    video_platform: Option<f64>,
    /// The campus's entry lists GB/T 28181 codes.
    listed: bool,
}

/// Coverage of a node (and school type): at a point in time, counts of campuses; over a
/// period, the average number of campuses over the period (maintenance and server gaps
/// left out).
#[derive(Serialize, ToSchema)]
#[schema(as = CoverageReportRow)]
struct CoverageRow {
    /// Region code; null for the whole area.
    #[schema(required, value_type = Option<schemas::RegionCode>)]
    code: Option<String>,
    /// The region's name (`all` for the whole area).
    name: String,
    /// `all`, `province`, `city` or `county`.
    #[schema(schema_with = row_level)]
    level: &'static str,
    /// Null for all school types together.
    #[schema(required, value_type = Option<schemas::SchoolType>)]
    school_type: Option<SchoolType>,
    /// Registered campuses.
    registered: u64,
    /// Campuses whose gateway is online.
    reporting: f64,
    /// Campuses alarm networked.
    alarm_networked: f64,
    /// Campuses video networked.
    video_networked: f64,
    /// Campuses fully networked.
    fully_networked: f64,
    /// `reporting / registered`; null when nothing is registered (or nothing observed
    /// over a period).
    #[schema(required)]
    reporting_rate: Option<f64>,
    /// `alarm_networked / registered`; null as `reporting_rate`.
    #[schema(required)]
    alarm_networked_rate: Option<f64>,
    /// `video_networked / registered`; null as `reporting_rate`.
    #[schema(required)]
    video_networked_rate: Option<f64>,
    /// `fully_networked / registered`; null as `reporting_rate`.
    #[schema(required)]
    fully_networked_rate: Option<f64>,
    /// Campuses video networked by the agent's view alone (`video_networked` follows
    /// the view in force, `gb28181.video_view`).
    video_networked_agent: f64,
    /// Campuses whose registry entry lists GB/T 28181 codes.
    platform_campuses: u64,
    /// Of those, campuses video networked by the GB/T 28181 view.
    video_networked_platform: f64,
    /// `video_networked_platform / platform_campuses`; null when none lists codes.
    #[schema(required)]
    video_networked_platform_rate: Option<f64>,
}

fn row_level() -> ObjectBuilder {
    schemas::string_enum(
        ["all", "province", "city", "county"],
        "`all` (the whole area), `province`, `city` or `county`.",
    )
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
    let platform_campuses = ms.iter().filter(|m| m.listed).count() as u64;
    let (va, vp) = (mean(|m| m.video_agent), mean(|m| m.video_platform));
    CoverageRow {
        video_networked_agent: count(va),
        platform_campuses,
        video_networked_platform: vp.unwrap_or(0.0) * platform_campuses as f64,
        video_networked_platform_rate: vp,
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

/// A registered campus not fully networked, with how long.
#[derive(Serialize, ToSchema)]
#[schema(as = NotNetworkedCampus)]
struct NotNetworked {
    #[schema(value_type = schemas::CampusId)]
    id: String,
    /// Registered name.
    name: String,
    #[schema(value_type = schemas::RegionCode)]
    region: String,
    /// The county's name.
    region_name: String,
    #[schema(value_type = schemas::SchoolType)]
    school_type: SchoolType,
    /// Gateway online at the end of the report (the point in time, or the period's end).
    reporting: bool,
    /// Alarm networked at the end of the report.
    alarm_networked: bool,
    /// Video networked at the end of the report.
    video_networked: bool,
    /// Since when it has not been fully networked, if it is not at the end (null if it
    /// is at the end of a period); when `since_at_least`, the outage began before the
    /// report looked back.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    since: Option<Timestamp>,
    /// The outage began before the report looked back (31 days at a point in time, the
    /// period's start over a period).
    since_at_least: bool,
    /// The campus has not been fully networked at any time since it was registered (its
    /// gateway never reported by the end of the report, or the outage began no later than
    /// its registration): `since` is then `registered_at`, never a time before the campus
    /// was registered.
    since_registered: bool,
    /// When the campus entered the registry.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    registered_at: Option<Timestamp>,
    /// Hours not fully networked: since `since` at a point in time; counted hours within
    /// the period over a period.
    hours: f64,
}

/// Coverage at a point in time or averaged over a period.
#[derive(Serialize, ToSchema)]
pub(in crate::api) struct CoverageReport {
    /// The point in time; null over a period.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    at: Option<Timestamp>,
    /// Start of the period; null at a point in time.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// End of the period; null at a point in time.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// The node asked for; null for the whole area.
    #[schema(required)]
    region: Option<RegionInfo>,
    /// The school type asked for; null for all.
    #[schema(required, value_type = Option<schemas::SchoolType>)]
    school_type: Option<SchoolType>,
    /// The node, then the node per school type, then its children.
    rows: Vec<CoverageRow>,
    /// The campuses not fully networked (at the end, or at some time of the period), the
    /// longest first.
    not_networked: Vec<NotNetworked>,
}

/// Coverage at a point in time or over a period
///
/// Registered and networked campuses with rates per region node and school type, at
/// `at` (default now) or averaged over a period, and the campuses not fully networked
/// with how long.
#[utoipa::path(
    get,
    path = "/api/v1/reports/coverage",
    operation_id = "getCoverageReport",
    tag = "reports",
    params(CoverageReportQuery),
    responses(
        (status = 200, description = "Coverage figures.", content(
            (CoverageReport = "application/json"),
            (String = "text/csv; charset=utf-8"),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(in crate::api) async fn coverage(
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
    let tz = offset(q.utc_offset.as_deref(), &s)?;
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
                video_agent: b(c.end.video_agent),
                video_platform: c.end.video_platform.and_then(b),
                listed: c.video_platform.is_some(),
            }
        }
        None => Measures {
            reporting: c.gateway.availability(),
            alarm: c.alarm.availability(),
            video: c.video.availability(),
            fully: c.fully.availability(),
            video_agent: c.video_agent.availability(),
            video_platform: c.video_platform.and_then(|t| t.availability()),
            listed: c.video_platform.is_some(),
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
    let registered_at = s.store.registered_at().await?;
    // When each campus's gateway first reported, as the monitor knows it.
    let first_seen: BTreeMap<String, Option<Timestamp>> = {
        let m = s.monitor();
        all.iter()
            .map(|c| {
                let seen = m
                    .campus(c.campus.as_str())
                    .and_then(|v| v.gateway.first_seen);
                (c.campus.to_string(), seen)
            })
            .collect()
    };
    let end = at.unwrap_or(period.to);
    let mut not_networked: Vec<NotNetworked> = all
        .iter()
        .filter(|c| match at {
            Some(_) => !(c.end.alarm && c.end.video),
            None => c.fully.up_ms < c.fully.counted_ms,
        })
        .map(|c| {
            let registered = registered_at.get(&c.campus).copied();
            let never_seen = first_seen
                .get(c.campus.as_str())
                .copied()
                .flatten()
                .is_none_or(|seen| seen >= end);
            // Out of coverage since it was registered: said so, with that time, rather
            // than "at least since" the start of the look back (which may be before the
            // campus, or the server, existed).
            let since_registered = match (registered, c.end.not_fully_since) {
                (Some(r), Some(since)) => r <= end && (never_seen || since <= r),
                _ => false,
            };
            let since = if since_registered {
                registered
            } else {
                c.end.not_fully_since
            };
            let hours = match at {
                Some(at) => {
                    since.map_or(0.0, |s| (at - s).num_milliseconds().max(0) as f64 / 3.6e6)
                }
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
                since_at_least: !since_registered && since == Some(period.from),
                since_registered,
                registered_at: registered,
                hours,
            }
        })
        .collect();
    // The longest out of full networking first: where to send someone.
    not_networked.sort_by(|a, b| b.hours.total_cmp(&a.hours).then_with(|| a.id.cmp(&b.id)));
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
                    "since_registered",
                    "registered_at",
                ])?;
                for n in &not_networked {
                    w.write_record([
                        n.id.clone(),
                        text(&n.name),
                        n.region.clone(),
                        text(&n.region_name),
                        n.school_type.as_str().to_string(),
                        n.reporting.to_string(),
                        n.alarm_networked.to_string(),
                        n.video_networked.to_string(),
                        n.since.map_or_else(String::new, crate::store::ts),
                        n.since_at_least.to_string(),
                        format!("{:.3}", n.hours),
                        n.since_registered.to_string(),
                        n.registered_at.map_or_else(String::new, crate::store::ts),
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
                    "video_networked_agent",
                    "platform_campuses",
                    "video_networked_platform",
                    "video_networked_platform_rate",
                ])?;
                for r in &rows {
                    w.write_record([
                        r.code.clone().unwrap_or_default(),
                        text(&r.name),
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
                        format!("{:.3}", r.video_networked_agent),
                        r.platform_campuses.to_string(),
                        format!("{:.3}", r.video_networked_platform),
                        fmt_opt(r.video_networked_platform_rate),
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
