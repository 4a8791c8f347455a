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
    Figures, ServerRun, Tally, WindowRecord,
};
pub use period::{parse_utc_offset, Period, PeriodError};

/// The default local time of reports: +08:00, China Standard Time.
pub const CHINA_STANDARD_TIME: chrono::FixedOffset = match chrono::FixedOffset::east_opt(8 * 3600) {
    Some(o) => o,
    // Evaluated at compile time: a bad constant fails the build, never a run.
    None => panic!("+08:00 is a valid UTC offset"),
};
