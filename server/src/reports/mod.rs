//! Reports: time-weighted availability and coverage over a period, per campus and per
//! region node and school type, from the stored transition history.
//!
//! Pure: no I/O, no clock. The store gathers the history ([`CampusHistory`]), the
//! maintenance windows as they were ([`WindowRecord`]) and the times the server was
//! running ([`ServerRun`]); this module turns them into figures. `docs/reports.md` gives
//! the definitions and formulas.

pub mod availability;
pub mod period;

pub use availability::{
    aggregate, campus_availability, AvailabilityRules, CampusAvailability, CampusHistory, EndState,
    Figures, PlatformHistory, ServerRun, Tally, WindowRecord,
};
pub use period::{parse_utc_offset, Period, PeriodError};

/// The UTC offset of time zone `tz` at `at` (the days a report counts are the zone's).
pub fn zone_offset(tz: chrono_tz::Tz, at: campuswatch_protocol::Timestamp) -> chrono::FixedOffset {
    use chrono::{Offset, TimeZone};
    tz.offset_from_utc_datetime(&at.naive_utc()).fix()
}
