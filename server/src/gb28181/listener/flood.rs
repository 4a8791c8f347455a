//! REGISTERs per second per source IP address: a token bucket per address, so one
//! address that floods the listener with REGISTERs (each of which would cost a digest
//! check and an answer) is dropped while every other device registers as before. Per
//! IP, not per port: a flood from many ports of one host is still one flood.

use std::collections::HashMap;
use std::net::IpAddr;

use tokio::time::Instant;

/// Most addresses tracked; beyond, the buckets that are full again are forgotten.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug)]
pub(super) struct Flood {
    per_second: f64,
    burst: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl Flood {
    /// `per_second` REGISTERs per address with bursts of `burst`; 0 per second: no limit.
    pub(super) fn new((per_second, burst): (u32, u32)) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Whether a REGISTER from `ip` at `now` is within the rate (and takes its token).
    pub(super) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.per_second <= 0.0 {
            return true;
        }
        if self.buckets.len() >= MAX_ADDRESSES && !self.buckets.contains_key(&ip) {
            let (rate, burst) = (self.per_second, self.burst);
            self.buckets
                .retain(|_, (tokens, at)| refill(*tokens, *at, now, rate, burst) < burst);
            if self.buckets.len() >= MAX_ADDRESSES {
                // Spoofed sources by the thousand: start over rather than grow.
                self.buckets.clear();
            }
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((self.burst, now));
        let available = refill(*tokens, *at, now, self.per_second, self.burst);
        *at = now;
        if available >= 1.0 {
            *tokens = available - 1.0;
            true
        } else {
            *tokens = available;
            false
        }
    }
}

fn refill(tokens: f64, at: Instant, now: Instant, rate: f64, burst: f64) -> f64 {
    (tokens + now.saturating_duration_since(at).as_secs_f64() * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_address_gets_its_burst_then_its_rate_and_others_are_not_held_back() {
        let now = Instant::now();
        let mut flood = Flood::new((2, 5));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert_eq!((0..10).filter(|_| flood.allow(a, now)).count(), 5);
        assert!(flood.allow(b, now), "another address is not held back");
        let later = now + Duration::from_secs(1);
        assert_eq!((0..10).filter(|_| flood.allow(a, later)).count(), 2);
        let much_later = now + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| flood.allow(a, much_later)).count(), 5);
        let mut unlimited = Flood::new((0, 0));
        assert!((0..1000).all(|_| unlimited.allow(a, now)));
    }

    #[test]
    fn many_addresses_do_not_grow_the_buckets_without_bound() {
        let now = Instant::now();
        let mut flood = Flood::new((1, 1));
        for i in 0..(MAX_ADDRESSES as u32 + 500) {
            assert!(flood.allow(IpAddr::from(i.to_be_bytes()), now));
        }
        assert!(flood.buckets.len() <= MAX_ADDRESSES);
    }
}
