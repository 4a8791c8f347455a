//! `GET /api/v1/reports/coverage/daily`: the daily coverage history.

use super::*;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(in crate::api) struct DailyQuery {
    /// Only this region node and what lies below it: a province, city (prefecture or
    /// league) or county code. Default: the caller's scope (everything for a user of
    /// every region).
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
    /// Only campuses of this school type.
    #[param(value_type = Option<schemas::SchoolType>)]
    school_type: Option<String>,
    /// First local date (inclusive); default 30 days before `to`.
    #[param(value_type = Option<schemas::Date>)]
    from: Option<String>,
    /// Last local date (inclusive); default yesterday. Today or later: the answer's
    /// `today` holds today so far.
    #[param(value_type = Option<schemas::Date>)]
    to: Option<String>,
    /// Local time for days: +HH:MM or -HH:MM (percent-encode `+` as %2B). Default: the
    /// server's `time_zone` (+08:00 for Asia/Shanghai).
    #[param(value_type = Option<schemas::UtcOffset>, inline, example = "+08:00")]
    utc_offset: Option<String>,
}

/// Daily coverage history of a node.
#[derive(Serialize, ToSchema)]
#[schema(as = DailyCoverageReport)]
pub(in crate::api) struct DailyResponse {
    /// The node asked for; null for the whole area.
    #[schema(required)]
    region: Option<RegionInfo>,
    /// The school type asked for; null for all.
    #[schema(required, value_type = Option<schemas::SchoolType>)]
    school_type: Option<SchoolType>,
    /// The local time of the days, as +HH:MM.
    #[schema(example = "+08:00")]
    utc_offset: String,
    /// Days that are over, oldest first; days with no registered campus are left out.
    days: Vec<DailyCoverage>,
    /// Today so far (from its start to `today_as_of`), when the range reaches today;
    /// null otherwise. Not final: it changes until the day is over.
    #[schema(required)]
    today: Option<DailyCoverage>,
    /// The time `today`'s figures run to; null without `today`.
    #[schema(required, value_type = Option<String>, format = DateTime)]
    today_as_of: Option<Timestamp>,
}

fn parse_day(field: &str, s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{field} {s:?}: use YYYY-MM-DD")))
}

/// Daily coverage history
///
/// One row per local day that is over: registered campuses and the average numbers
/// reporting and networked over the day; with `to` today (or later), also today so far. Days not yet stored are computed from the
/// transition history on demand; the server stores each day a few minutes after it
/// ends.
#[utoipa::path(
    get,
    path = "/api/v1/reports/coverage/daily",
    operation_id = "getDailyCoverage",
    tag = "reports",
    params(DailyQuery),
    responses(
        (status = 200, description = "The history.", body = DailyResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(in crate::api) async fn coverage_daily(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DailyQuery>,
) -> Result<Json<DailyResponse>, ApiError> {
    let (region, school_type) = node(q.region.as_deref(), q.school_type.as_deref())?;
    // Within the caller's region scope (its whole scope when no region is asked for).
    let region = caller.region(region)?;
    let tz = offset(q.utc_offset.as_deref(), &s)?;
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
    s.store
        .ensure_coverage_days(from, last, tz, rules, now)
        .await?;
    let days = s
        .store
        .coverage_daily(region, school_type, from, last, tz)
        .await?;
    // Today so far, when asked for: this server is alive now (its run's last mark may be
    // up to half a minute old), and the figures run to now.
    let today_so_far = match crate::store::local_midnight(today, tz) {
        Some(midnight) if from <= today && to >= today => {
            s.store.server_alive(s.server_run, now).await?;
            Some(
                s.store
                    .coverage_so_far(region, school_type, today, midnight, now, rules)
                    .await?,
            )
        }
        _ => None,
    };
    Ok(Json(DailyResponse {
        region: region.map(region_info),
        school_type,
        utc_offset: offset_text(tz),
        days,
        today_as_of: today_so_far.as_ref().map(|_| now),
        today: today_so_far,
    }))
}
