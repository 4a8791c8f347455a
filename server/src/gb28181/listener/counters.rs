//! The listener's counters: what devices sent that was accepted, by kind, and what was
//! refused, by reason. `/metrics` renders them (`cw_gb_messages_total`,
//! `cw_gb_refused_total`) from the server's `Metrics`, which holds them; they live here
//! so that the listener depends on nothing of the engine's side.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What GB/T 28181 devices said that the listener accepted: registrations and
/// refreshes, unregistrations, keepalives, catalog answer messages (each part of a
/// multi-part answer), alarms, other MANSCDP messages.
pub const MESSAGE_KINDS: [&str; 6] = [
    "register",
    "unregister",
    "keepalive",
    "catalog",
    "alarm",
    "other",
];

/// Why the listener refused or dropped what a device sent; docs/gb28181.md says when
/// each applies.
pub const REFUSALS: [&str; 12] = [
    "malformed",
    "too_large",
    "auth",
    "unknown_device",
    "not_registered",
    "wrong_address",
    "flood",
    "interval_too_brief",
    "media_type",
    "method",
    "connection_limit",
    "overload",
];

/// Most (source, reason) pairs remembered as logged; beyond, refusals are no longer
/// logged at warning level, so garbage from many sources cannot grow the set.
const LOGGED_CAP: usize = 10_000;

#[derive(Debug, Default)]
pub struct Counters {
    messages: [AtomicU64; MESSAGE_KINDS.len()],
    refused: [AtomicU64; REFUSALS.len()],
    logged: Mutex<HashSet<(String, &'static str)>>,
}

impl Counters {
    /// Counts an accepted message of `kind` (one of [`MESSAGE_KINDS`]).
    pub fn message(&self, kind: &str) {
        if let Some(i) = MESSAGE_KINDS.iter().position(|k| *k == kind) {
            self.messages[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a refusal for `reason` (one of [`REFUSALS`]); true the first time for
    /// this source and reason, to log once.
    pub fn refused(&self, source: &str, reason: &'static str) -> bool {
        if let Some(i) = REFUSALS.iter().position(|r| *r == reason) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        logged.len() < LOGGED_CAP && logged.insert((source.to_owned(), reason))
    }

    /// Each kind with its count, in [`MESSAGE_KINDS`]' order.
    pub fn messages(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        MESSAGE_KINDS
            .iter()
            .zip(&self.messages)
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
    }

    /// Each reason with its count, in [`REFUSALS`]' order.
    pub fn refusals(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REFUSALS
            .iter()
            .zip(&self.refused)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
    }

    pub fn message_count(&self, kind: &str) -> u64 {
        self.messages()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| n)
    }

    pub fn refused_count(&self, reason: &str) -> u64 {
        self.refusals()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| n)
    }
}
