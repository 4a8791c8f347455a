//! Where "now" comes from. Everything that judges time takes it as an argument; the
//! engine, the dispatcher and the reports ask a [`Clock`], which tests of the I/O edges
//! may pin.

use campuswatch_protocol::Timestamp;

/// Where "now" comes from; tests of the I/O edges may pin it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A time as people read it in notices and messages, in the server's `time_zone`, with
/// the zone's offset: `2026-12-05 08:22:23 (UTC+08:00)`.
pub fn local_time(t: Timestamp, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S (UTC%:z)")
        .to_string()
}
