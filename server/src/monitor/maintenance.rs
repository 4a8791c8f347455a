//! Maintenance windows: planned times when a campus, a region or one device may be down
//! without anyone being told (a kindergarten's cameras switched off every night, school
//! holidays, works on a county's network). Alerts still open inside a window (they are
//! the truth), but are not told; one still down when its window ends is told then.
//!
//! A window is one-off (`start` to `end`) or repeats daily at a local time of day for a
//! duration, on chosen weekdays, between optional dates. Local time is the window's UTC
//! offset (default +08:00, China Standard Time), so "22:00 every night" stays 22:00.

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Weekday};
use serde::{Deserialize, Serialize};

use campuswatch_protocol::{CampusId, DeviceId, RegionCode, Timestamp};

/// What a window covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Scope {
    /// Every campus in the region (a county, a city or a province).
    Region { region: RegionCode },
    /// One campus: its gateway and all its devices.
    Campus { campus: CampusId },
    /// One device of a campus.
    Device { campus: CampusId, device: DeviceId },
}

/// When a window applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "repeat", rename_all = "snake_case")]
pub enum Schedule {
    /// Once, from `start` to `end`.
    Once { start: Timestamp, end: Timestamp },
    /// Every day (or only on `weekdays`) from `at` local time for `hours`, from the
    /// date `from` (inclusive) to `until` (inclusive), each optional.
    Daily {
        at: NaiveTime,
        /// Length of each occurrence in minutes (at most a week).
        minutes: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        weekdays: Vec<Weekday>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<NaiveDate>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<NaiveDate>,
    },
}

/// A maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Maintenance {
    pub id: u64,
    #[serde(flatten)]
    pub scope: Scope,
    pub schedule: Schedule,
    /// Offset of local time from UTC in minutes, for daily windows (480 = +08:00).
    #[serde(default = "china_standard_time")]
    pub utc_offset_minutes: i32,
    pub comment: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
}

fn china_standard_time() -> i32 {
    480
}

/// Why a window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaintenanceError {
    #[error("the window ends before it starts")]
    EndsBeforeStart,
    #[error("a daily window lasts 1 minute to 7 days")]
    BadLength,
    #[error("the UTC offset must be between -14:00 and +14:00")]
    BadOffset,
    #[error("`until` is before `from`")]
    UntilBeforeFrom,
    #[error("say who plans it (1 to 64 characters)")]
    NoName,
    #[error("the comment is longer than 1000 characters")]
    CommentTooLong,
    #[error("maintenance window {0} does not exist")]
    NotFound(u64),
}

impl Maintenance {
    pub fn validate(&self) -> Result<(), MaintenanceError> {
        let by = self.created_by.trim();
        if by.is_empty() || by.chars().count() > 64 {
            return Err(MaintenanceError::NoName);
        }
        if self
            .comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > 1000)
        {
            return Err(MaintenanceError::CommentTooLong);
        }
        if self.utc_offset_minutes.abs() > 14 * 60 {
            return Err(MaintenanceError::BadOffset);
        }
        match &self.schedule {
            Schedule::Once { start, end } if end <= start => Err(MaintenanceError::EndsBeforeStart),
            Schedule::Daily { minutes, .. } if *minutes == 0 || *minutes > 7 * 24 * 60 => {
                Err(MaintenanceError::BadLength)
            }
            Schedule::Daily {
                from: Some(f),
                until: Some(u),
                ..
            } if u < f => Err(MaintenanceError::UntilBeforeFrom),
            _ => Ok(()),
        }
    }

    /// Whether the window covers this link: `device` is `None` for the gateway and for a
    /// campus's video as a whole.
    pub fn covers(&self, region: RegionCode, campus: &CampusId, device: Option<&DeviceId>) -> bool {
        match &self.scope {
            Scope::Region { region: r } => region.is_within(r),
            Scope::Campus { campus: c } => c == campus,
            Scope::Device {
                campus: c,
                device: d,
            } => c == campus && device == Some(d),
        }
    }

    /// If the window applies at `now`, when this occurrence ends.
    pub fn active_until(&self, now: Timestamp) -> Option<Timestamp> {
        match &self.schedule {
            Schedule::Once { start, end } => (*start <= now && now < *end).then_some(*end),
            Schedule::Daily { minutes, .. } => {
                let tz = FixedOffset::east_opt(self.utc_offset_minutes * 60)?;
                let local = now.with_timezone(&tz);
                let length = TimeDelta::minutes(i64::from(*minutes));
                // An occurrence that covers `now` started at most `length` ago: look at
                // the start on each day back that far.
                let days_back = length.num_days() + 1;
                (0..=days_back).find_map(|back| {
                    let day = local.date_naive() - TimeDelta::days(back);
                    let (start, end) = self.occurrence_on(day)?;
                    (start <= now && now < end).then_some(end)
                })
            }
        }
    }

    /// The occurrence of a daily window that starts on local date `day`, if it has one
    /// that day. `None` for a one-off window.
    fn occurrence_on(&self, day: NaiveDate) -> Option<(Timestamp, Timestamp)> {
        let Schedule::Daily {
            at,
            minutes,
            weekdays,
            from,
            until,
        } = &self.schedule
        else {
            return None;
        };
        let tz = FixedOffset::east_opt(self.utc_offset_minutes * 60)?;
        let on_day = (weekdays.is_empty() || weekdays.contains(&day.weekday()))
            && from.is_none_or(|f| day >= f)
            && until.is_none_or(|u| day <= u);
        if !on_day {
            return None;
        }
        let start = tz
            .from_local_datetime(&day.and_time(*at))
            .single()?
            .with_timezone(&chrono::Utc);
        Some((start, start + TimeDelta::minutes(i64::from(*minutes))))
    }

    /// Every stretch of `[from, to)` the window applies to, in time order, clipped to
    /// `[from, to)`. Occurrences of a daily window may overlap; they are returned as
    /// they are (callers treat the union).
    pub fn occurrences(&self, from: Timestamp, to: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let clip = |(s, e): (Timestamp, Timestamp)| {
            let (s, e) = (s.max(from), e.min(to));
            (s < e).then_some((s, e))
        };
        match &self.schedule {
            Schedule::Once { start, end } => clip((*start, *end)).into_iter().collect(),
            Schedule::Daily { minutes, .. } => {
                let Some(tz) = FixedOffset::east_opt(self.utc_offset_minutes * 60) else {
                    return Vec::new();
                };
                if from >= to {
                    return Vec::new();
                }
                let back = TimeDelta::minutes(i64::from(*minutes)).num_days() + 1;
                let first = from.with_timezone(&tz).date_naive() - TimeDelta::days(back);
                let last = to.with_timezone(&tz).date_naive();
                first
                    .iter_days()
                    .take_while(|d| *d <= last)
                    .filter_map(|d| self.occurrence_on(d))
                    .filter_map(clip)
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use campuswatch_testkit::at;
    use chrono::Utc;

    fn window(schedule: Schedule) -> Maintenance {
        Maintenance {
            id: 1,
            scope: Scope::Region {
                region: RegionCode::parse("150100").unwrap(),
            },
            schedule,
            utc_offset_minutes: 480,
            comment: None,
            created_by: "county office".into(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_one_off_window_applies_from_its_start_until_just_before_its_end() {
        let w = window(Schedule::Once {
            start: at("2026-07-10T00:00:00Z"),
            end: at("2026-08-31T00:00:00Z"),
        });
        assert_eq!(w.active_until(at("2026-07-09T23:59:59Z")), None);
        assert_eq!(
            w.active_until(at("2026-07-10T00:00:00Z")),
            Some(at("2026-08-31T00:00:00Z"))
        );
        assert_eq!(w.active_until(at("2026-08-31T00:00:00Z")), None);
    }

    #[test]
    fn a_nightly_window_keeps_local_time_and_crosses_midnight() {
        // 22:00 to 07:00 China time = 14:00 to 23:00 UTC, school nights only.
        let w = window(Schedule::Daily {
            at: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            minutes: 9 * 60,
            weekdays: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            from: None,
            until: None,
        });
        // Monday 2026-11-30, 21:59 and 22:00 local.
        assert_eq!(w.active_until(at("2026-11-30T13:59:00Z")), None);
        assert_eq!(
            w.active_until(at("2026-11-30T14:00:00Z")),
            Some(at("2026-11-30T23:00:00Z"))
        );
        // Tuesday 06:59 local: still Monday night's occurrence.
        assert_eq!(
            w.active_until(at("2026-11-30T22:59:00Z")),
            Some(at("2026-11-30T23:00:00Z"))
        );
        assert_eq!(w.active_until(at("2026-11-30T23:00:00Z")), None);
        // Saturday night is not a school night.
        assert_eq!(w.active_until(at("2026-12-05T15:00:00Z")), None);
    }

    #[test]
    fn a_region_window_covers_its_counties_and_a_device_window_only_its_device() {
        let county = RegionCode::parse("150102").unwrap();
        let other = RegionCode::parse("150203").unwrap();
        let c = CampusId::parse("150102-K-0001").unwrap();
        let cam = DeviceId::parse("cam-1").unwrap();
        let w = window(Schedule::Once {
            start: at("2026-01-01T00:00:00Z"),
            end: at("2027-01-01T00:00:00Z"),
        });
        assert!(w.covers(county, &c, None));
        assert!(!w.covers(other, &c, None));
        let d = Maintenance {
            scope: Scope::Device {
                campus: c.clone(),
                device: cam.clone(),
            },
            ..w
        };
        assert!(d.covers(county, &c, Some(&cam)));
        assert!(!d.covers(county, &c, None), "not the gateway");
        assert!(!d.covers(county, &c, Some(&DeviceId::parse("cam-2").unwrap())));
    }

    #[test]
    fn bad_windows_are_refused_with_the_reason() {
        let mut w = window(Schedule::Once {
            start: at("2026-01-02T00:00:00Z"),
            end: at("2026-01-01T00:00:00Z"),
        });
        assert_eq!(w.validate(), Err(MaintenanceError::EndsBeforeStart));
        w.schedule = Schedule::Daily {
            at: NaiveTime::MIN,
            minutes: 0,
            weekdays: vec![],
            from: None,
            until: None,
        };
        assert_eq!(w.validate(), Err(MaintenanceError::BadLength));
        w.schedule = Schedule::Daily {
            at: NaiveTime::MIN,
            minutes: 60,
            weekdays: vec![],
            from: None,
            until: None,
        };
        w.created_by = " ".into();
        assert_eq!(w.validate(), Err(MaintenanceError::NoName));
    }
}
