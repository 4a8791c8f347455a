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
