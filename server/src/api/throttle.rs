//! Guessing passwords: sign-in failures are counted per user name and per address, and
//! past a few in a row each further attempt must wait, twice as long each time up to 15
//! minutes, before it is even checked (`429 Too Many Requests` with `Retry-After`). A
//! success clears the name's count (not the address's: one valid account must not reset
//! a spray of guesses at others); a count is forgotten 15 minutes after its last
//! failure. Every failure is logged with the
//! name and address; every refusal is counted in
//! `cw_http_refused_total{reason="sign_in_throttled"}`.
//!
//! An address gets more failures before waiting than a name: the operators of a county
//! office may share one address behind NAT. Times come from the server's clock, so the
//! back-off is tested without waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::TimeDelta;

use campuswatch_protocol::Timestamp;

/// Failures of one name allowed in a row before attempts must wait.
pub const FREE_PER_NAME: u32 = 5;
/// Failures from one address allowed in a row before attempts must wait.
pub const FREE_PER_ADDRESS: u32 = 20;
/// The longest wait.
const MAX_WAIT_SECS: i64 = 15 * 60;
/// Names and addresses remembered at most; beyond, those not failing for the longest
/// wait are forgotten, then the oldest.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Name(String),
    Address(IpAddr),
}

impl Key {
    fn free(&self) -> u32 {
        match self {
            Key::Name(_) => FREE_PER_NAME,
            Key::Address(_) => FREE_PER_ADDRESS,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Timestamp,
}

impl Failures {
    /// Until when attempts of this key must wait, if they must.
    fn wait_until(&self, free: u32) -> Option<Timestamp> {
        let over = self.count.checked_sub(free)?;
        let secs = 1i64
            .checked_shl(over.min(20))
            .unwrap_or(MAX_WAIT_SECS)
            .min(MAX_WAIT_SECS);
        Some(self.last + TimeDelta::seconds(secs))
    }
}

/// The failure counts of every name and address that failed lately.
#[derive(Debug, Default)]
pub struct SignInThrottle {
    failures: Mutex<HashMap<Key, Failures>>,
}

fn keys(name: &str, address: Option<IpAddr>) -> Vec<Key> {
    let mut k = vec![Key::Name(name.to_lowercase())];
    k.extend(address.map(Key::Address));
    k
}

impl SignInThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long an attempt for `name` from `address` must still wait at `now`; None
    /// when it may be checked.
    pub fn wait(&self, name: &str, address: Option<IpAddr>, now: Timestamp) -> Option<TimeDelta> {
        let map = self.lock();
        keys(name, address)
            .iter()
            .filter_map(|k| map.get(k)?.wait_until(k.free()))
            .max()
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Counts a failed attempt.
    pub fn failed(&self, name: &str, address: Option<IpAddr>, now: Timestamp) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            let stale = now - TimeDelta::seconds(MAX_WAIT_SECS);
            map.retain(|_, f| f.last > stale);
            if map.len() >= MAX_ENTRIES {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        for k in keys(name, address) {
            let f = map.entry(k).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now - f.last > TimeDelta::seconds(MAX_WAIT_SECS) {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
    }

    /// Clears the name's count after a successful sign-in.
    pub fn succeeded(&self, name: &str) {
        self.lock().remove(&Key::Name(name.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use campuswatch_testkit::t;

    #[test]
    fn after_five_failures_a_name_waits_twice_as_long_each_time_until_a_success() {
        let th = SignInThrottle::default();
        let a: IpAddr = "10.0.0.7".parse().unwrap();
        for i in 0..FREE_PER_NAME {
            assert_eq!(th.wait("admin", Some(a), t(i as i64)), None);
            th.failed("admin", Some(a), t(i as i64));
        }
        // The sixth attempt, at once: wait 1 s; after it fails too, 2 s, then 4 s.
        assert_eq!(th.wait("Admin", None, t(4)), Some(TimeDelta::seconds(1)));
        assert_eq!(th.wait("admin", Some(a), t(5)), None);
        th.failed("admin", Some(a), t(5));
        assert_eq!(th.wait("admin", None, t(5)), Some(TimeDelta::seconds(2)));
        th.failed("admin", Some(a), t(7));
        assert_eq!(th.wait("admin", None, t(7)), Some(TimeDelta::seconds(4)));
        // Another name from the same address is not held up yet (7 of 20).
        assert_eq!(th.wait("duty", Some(a), t(7)), None);
        // Never longer than 15 minutes.
        for i in 0..40 {
            th.failed("admin", Some(a), t(8 + i));
        }
        assert_eq!(
            th.wait("admin", None, t(47)),
            Some(TimeDelta::seconds(MAX_WAIT_SECS))
        );
        th.succeeded("admin");
        assert_eq!(th.wait("admin", None, t(47)), None);
        // The address's 47 failures stand, until 15 minutes after the last.
        assert!(th.wait("admin", Some(a), t(47)).is_some());
        th.failed("duty", Some(a), t(47 + MAX_WAIT_SECS + 1));
        assert_eq!(th.wait("duty", Some(a), t(48 + MAX_WAIT_SECS)), None);
    }

    #[test]
    fn an_address_spraying_names_waits_after_twenty() {
        let th = SignInThrottle::default();
        let a: IpAddr = "10.0.0.8".parse().unwrap();
        for i in 0..FREE_PER_ADDRESS {
            th.failed(&format!("user{i}"), Some(a), t(0));
        }
        assert!(th.wait("someone-else", Some(a), t(0)).is_some());
        assert!(th.wait("someone-else", None, t(0)).is_none());
    }
}
