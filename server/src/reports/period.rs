//! Report periods: a local day, an ISO week (Monday to Sunday), a calendar month, or a
//! custom `[from, to)`, in local time at a fixed UTC offset (default +08:00), so a day is
//! the day people at the campus live, even where it straddles midnight UTC.

use campuswatch_protocol::Timestamp;
use chrono::{DateTime, Datelike, FixedOffset, Months, NaiveDate, TimeDelta, TimeZone, Utc};
use serde::Serialize;

/// The longest custom range a report covers.
pub const MAX_DAYS: i64 = 366;

/// A report period `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// Why a period was refused; the message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("period {0:?}: use day, week or month")]
    BadKind(String),
    #[error("date {0:?}: use YYYY-MM-DD")]
    BadDate(String),
    #[error("{field} {value:?}: use an RFC 3339 time (2026-11-29T00:00:00+08:00) or a date (2026-11-29)")]
    BadTime { field: &'static str, value: String },
    #[error("utc_offset {0:?}: use +HH:MM or -HH:MM between -14:00 and +14:00")]
    BadOffset(String),
    #[error("give either period (with an optional date) or from and to, not both")]
    Mixed,
    #[error("give both from and to")]
    HalfRange,
    #[error("date is only used with period")]
    DateWithoutPeriod,
    #[error("`to` must be after `from`")]
    Empty,
    #[error("a report covers at most {MAX_DAYS} days")]
    TooLong,
}

/// Parses `+08:00`, `-05:30`, `+0800` or `Z`.
pub fn parse_utc_offset(s: &str) -> Result<FixedOffset, PeriodError> {
    let bad = || PeriodError::BadOffset(s.to_string());
    // An unencoded `+` in a query string arrives as a space: take it as meant.
    let t = match s.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
        _ => s.trim().to_string(),
    };
    let t = t.as_str();
    if t == "Z" || t == "z" {
        return FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 && rest.is_ascii() => rest.split_at(2),
        None => return Err(bad()),
    };
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h * 60 + m > 14 * 60 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

fn parse_date(s: &str) -> Result<NaiveDate, PeriodError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| PeriodError::BadDate(s.to_string()))
}

fn local_midnight(day: NaiveDate, tz: FixedOffset) -> Option<Timestamp> {
    // A fixed offset has no gaps: midnight always exists exactly once.
    tz.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// A time as RFC 3339, or a date meaning its local midnight.
fn parse_time(field: &'static str, s: &str, tz: FixedOffset) -> Result<Timestamp, PeriodError> {
    let bad = || PeriodError::BadTime {
        field,
        value: s.to_string(),
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
    local_midnight(day, tz).ok_or_else(bad)
}

impl Period {
    /// Resolves the query parameters of a report: `period` (`day`, `week`, `month`) with
    /// `date` (default: the local date at `now`), or `from` and `to`.
    pub fn resolve(
        period: Option<&str>,
        date: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        tz: FixedOffset,
        now: Timestamp,
    ) -> Result<Period, PeriodError> {
        let p = match (period, from, to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => return Err(PeriodError::Mixed),
            (Some(kind), None, None) => {
                let day = match date {
                    Some(d) => parse_date(d)?,
                    None => now.with_timezone(&tz).date_naive(),
                };
                let (first, next) = match kind {
                    "day" => (day, day.succ_opt()),
                    "week" => {
                        let back = TimeDelta::days(i64::from(day.weekday().num_days_from_monday()));
                        let monday = day
                            .checked_sub_signed(back)
                            .ok_or_else(|| PeriodError::BadDate(day.to_string()))?;
                        (monday, monday.checked_add_signed(TimeDelta::days(7)))
                    }
                    "month" => {
                        let first = day.with_day(1).unwrap_or(day);
                        (first, first.checked_add_months(Months::new(1)))
                    }
                    other => return Err(PeriodError::BadKind(other.to_string())),
                };
                let bad = || PeriodError::BadDate(date.unwrap_or_default().to_string());
                let next = next.ok_or_else(bad)?;
                Period {
                    from: local_midnight(first, tz).ok_or_else(bad)?,
                    to: local_midnight(next, tz).ok_or_else(bad)?,
                }
            }
            (None, Some(f), Some(t)) => {
                if date.is_some() {
                    return Err(PeriodError::DateWithoutPeriod);
                }
                Period {
                    from: parse_time("from", f, tz)?,
                    to: parse_time("to", t, tz)?,
                }
            }
            (None, None, None) if date.is_some() => return Err(PeriodError::DateWithoutPeriod),
            (None, None, None) => {
                // The default: today so far is the most asked-for figure, but "today" is
                // not over; yesterday is a whole day.
                let today = now.with_timezone(&tz).date_naive();
                let bad = || PeriodError::BadDate(today.to_string());
                let yesterday = today.pred_opt().ok_or_else(bad)?;
                Period {
                    from: local_midnight(yesterday, tz).ok_or_else(bad)?,
                    to: local_midnight(today, tz).ok_or_else(bad)?,
                }
            }
            _ => return Err(PeriodError::HalfRange),
        };
        if p.to <= p.from {
            return Err(PeriodError::Empty);
        }
        if p.to - p.from > TimeDelta::days(MAX_DAYS) {
            return Err(PeriodError::TooLong);
        }
        Ok(p)
    }

    /// The local days `[from, to)` touches, each as its own period clipped to `[from, to)`.
    pub fn days(&self, tz: FixedOffset) -> Vec<(NaiveDate, Period)> {
        let mut out = Vec::new();
        let mut day = self.from.with_timezone(&tz).date_naive();
        while let Some(start) = local_midnight(day, tz) {
            if start >= self.to {
                break;
            }
            let Some(next) = day.succ_opt() else { break };
            let Some(end) = local_midnight(next, tz) else {
                break;
            };
            out.push((
                day,
                Period {
                    from: start.max(self.from),
                    to: end.min(self.to),
                },
            ));
            day = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use campuswatch_testkit::at;

    fn cst() -> FixedOffset {
        parse_utc_offset("+08:00").unwrap()
    }

    #[test]
    fn a_local_day_in_china_starts_at_sixteen_hundred_utc_the_day_before() {
        let p = Period::resolve(
            Some("day"),
            Some("2026-11-29"),
            None,
            None,
            cst(),
            at("2026-12-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(p.from, at("2026-11-28T16:00:00Z"));
        assert_eq!(p.to, at("2026-11-29T16:00:00Z"));
    }

    #[test]
    fn a_week_runs_monday_to_monday_and_a_month_to_the_first_of_the_next() {
        let now = at("2026-12-01T00:00:00Z");
        // 2026-11-29 is a Sunday: its week began on Monday the 23rd.
        let w = Period::resolve(Some("week"), Some("2026-11-29"), None, None, cst(), now).unwrap();
        assert_eq!(w.from, at("2026-11-22T16:00:00Z"));
        assert_eq!(w.to, at("2026-11-29T16:00:00Z"));
        let m = Period::resolve(Some("month"), Some("2026-02-14"), None, None, cst(), now).unwrap();
        assert_eq!(m.from, at("2026-01-31T16:00:00Z"));
        assert_eq!(m.to, at("2026-02-28T16:00:00Z"));
    }

    #[test]
    fn a_custom_range_takes_times_or_local_dates() {
        let now = at("2026-12-01T00:00:00Z");
        let p = Period::resolve(
            None,
            None,
            Some("2026-11-01"),
            Some("2026-11-02T12:00:00Z"),
            cst(),
            now,
        )
        .unwrap();
        assert_eq!(p.from, at("2026-10-31T16:00:00Z"));
        assert_eq!(p.to, at("2026-11-02T12:00:00Z"));
        let utc = parse_utc_offset("Z").unwrap();
        let d = Period::resolve(None, None, None, None, utc, now).unwrap();
        assert_eq!((d.from, d.to), (at("2026-11-30T00:00:00Z"), now));
    }

    #[test]
    fn bad_periods_are_refused_with_the_reason() {
        let now = at("2026-12-01T00:00:00Z");
        let r = |p, d, f, t| Period::resolve(p, d, f, t, cst(), now);
        assert_eq!(
            r(Some("year"), None, None, None),
            Err(PeriodError::BadKind("year".into()))
        );
        assert_eq!(
            r(Some("day"), Some("29/11/2026"), None, None),
            Err(PeriodError::BadDate("29/11/2026".into()))
        );
        assert_eq!(
            r(Some("day"), None, Some("2026-11-01"), None),
            Err(PeriodError::Mixed)
        );
        assert_eq!(
            r(None, None, Some("2026-11-01"), None),
            Err(PeriodError::HalfRange)
        );
        assert_eq!(
            r(None, Some("2026-11-01"), None, None),
            Err(PeriodError::DateWithoutPeriod)
        );
        assert_eq!(
            r(None, None, Some("2026-11-02"), Some("2026-11-01")),
            Err(PeriodError::Empty)
        );
        assert_eq!(
            r(None, None, Some("2020-01-01"), Some("2026-11-01")),
            Err(PeriodError::TooLong)
        );
        assert!(matches!(
            r(None, None, Some("yesterday"), Some("2026-11-01")),
            Err(PeriodError::BadTime { field: "from", .. })
        ));
        for bad in ["8", "+8:00", "+15:00", "+08:60", "08:00", "+0８:00"] {
            assert!(parse_utc_offset(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_utc_offset("-05:30").unwrap().local_minus_utc(),
            -(5 * 3600 + 1800)
        );
        assert_eq!(
            parse_utc_offset("+0800").unwrap().local_minus_utc(),
            8 * 3600
        );
        assert_eq!(
            parse_utc_offset(" 08:00").unwrap().local_minus_utc(),
            8 * 3600
        );
    }

    #[test]
    fn dates_at_the_ends_of_the_calendar_are_refused_not_a_panic() {
        let now = at("2026-12-01T00:00:00Z");
        for d in ["-262143-01-01", "+262143-12-31", "262143-12-31"] {
            for kind in ["day", "week", "month"] {
                let _ = Period::resolve(Some(kind), Some(d), None, None, cst(), now);
            }
            let _ = Period::resolve(None, None, Some(d), Some(d), cst(), now);
        }
    }

    #[test]
    fn a_range_splits_into_local_days_clipped_to_it() {
        let p = Period {
            from: at("2026-11-28T20:00:00Z"),
            to: at("2026-11-30T16:00:00Z"),
        };
        let days = p.days(cst());
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].0, NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        assert_eq!(days[0].1.from, at("2026-11-28T20:00:00Z"));
        assert_eq!(days[1].1.to, at("2026-11-30T16:00:00Z"));
    }
}
