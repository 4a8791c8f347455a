//! Fixed times, for tests that pass "now" in instead of reading a clock.

use campuswatch_protocol::Timestamp;

/// The tests' fixed origin in seconds since the Unix epoch: 2027-01-15T08:00:00Z.
pub const T0_SECS: i64 = 1_800_000_000;

/// `secs` seconds after the fixed origin [`T0_SECS`] (before it when negative).
pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_timestamp(T0_SECS + secs, 0).expect("a time chrono can hold")
}

/// The RFC 3339 time `rfc3339`, e.g. `at("2026-11-28T16:00:00Z")`; panics if it is not one.
pub fn at(rfc3339: &str) -> Timestamp {
    rfc3339
        .parse()
        .unwrap_or_else(|e| panic!("{rfc3339:?} is not an RFC 3339 time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_is_the_same_instant_either_way() {
        assert_eq!(t(0), at("2027-01-15T08:00:00Z"));
        assert_eq!(t(30 * 60), at("2027-01-15T09:30:00+01:00"));
        assert_eq!(t(-1), at("2027-01-15T07:59:59Z"));
    }
}
