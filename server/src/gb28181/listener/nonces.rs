//! The nonces of digest challenges: random, single-use, valid for [`NONCE_LIFETIME`],
//! and bounded in number so that REGISTERs without credentials cannot grow them. Single
//! use means a REGISTER captured on the wire cannot be replayed from another address to
//! move the device's registration there; devices answer the fresh challenge of their
//! next refresh, as they answer the first.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// How long a challenge may be answered.
pub(super) const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Most outstanding nonces; the oldest go first beyond it.
const MAX_NONCES: usize = 50_000;

/// Whether a nonce given back in credentials may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NonceState {
    /// Issued here, within its lifetime, and not used before: now used.
    Fresh,
    /// Expired, used, or never issued (or forgotten at a restart): challenge again with
    /// `stale=true`, so the device answers without asking anyone for the password.
    Stale,
}

#[derive(Debug, Default)]
pub(super) struct Nonces {
    issued: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl Nonces {
    pub(super) fn issue(&mut self, now: Instant) -> String {
        self.prune(now);
        let mut bytes = [0u8; 16];
        rand::rng().fill(&mut bytes);
        let nonce: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.issued.insert(nonce.clone(), now);
        self.order.push_back((now, nonce.clone()));
        nonce
    }

    /// Uses `nonce` up.
    pub(super) fn take(&mut self, nonce: &str, now: Instant) -> NonceState {
        match self.issued.remove(nonce) {
            Some(at) if now.saturating_duration_since(at) <= NONCE_LIFETIME => NonceState::Fresh,
            _ => NonceState::Stale,
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some((at, nonce)) = self.order.front() {
            let old = now.saturating_duration_since(*at) > NONCE_LIFETIME;
            if !old && self.order.len() < MAX_NONCES {
                break;
            }
            self.issued.remove(nonce);
            self.order.pop_front();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.issued.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_used_once_and_only_within_its_lifetime() {
        let now = Instant::now();
        let mut nonces = Nonces::default();
        let a = nonces.issue(now);
        let b = nonces.issue(now);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(nonces.take(&a, now), NonceState::Fresh);
        assert_eq!(nonces.take(&a, now), NonceState::Stale, "used once");
        assert_eq!(
            nonces.take(&b, now + NONCE_LIFETIME + Duration::from_secs(1)),
            NonceState::Stale
        );
        assert_eq!(nonces.take("made-up", now), NonceState::Stale);
    }

    #[test]
    fn unanswered_challenges_do_not_pile_up() {
        let now = Instant::now();
        let mut nonces = Nonces::default();
        for _ in 0..(MAX_NONCES + 100) {
            nonces.issue(now);
        }
        assert!(nonces.len() <= MAX_NONCES);
        nonces.issue(now + NONCE_LIFETIME + Duration::from_secs(1));
        assert_eq!(nonces.len(), 1, "expired ones are forgotten");
    }
}
