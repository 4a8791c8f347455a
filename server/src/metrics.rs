//! Counters of the ingest path and of notice deliveries, and the Prometheus text
//! rendering of `/metrics`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use campuswatch_protocol::MessageKind;

use crate::monitor::Monitor;

/// Reasons a message is dropped before the monitor sees it.
pub const DROP_REASONS: [&str; 7] = [
    "topic",
    "too_large",
    "version",
    "malformed",
    "topic_mismatch",
    "invalid",
    "outside_partition",
];

#[derive(Debug, Default)]
pub struct Metrics {
    received: [AtomicU64; 4],
    applied: [AtomicU64; 4],
    dropped: [AtomicU64; DROP_REASONS.len()],
    pub store_batches: AtomicU64,
    pub store_errors: AtomicU64,
    pub store_batch_micros: AtomicU64,
    pub acks_sent: AtomicU64,
    pub broker_connected: AtomicBool,
    pub broker_disconnects: AtomicU64,
    /// Sources already logged per drop reason; bounded so garbage cannot grow it forever.
    logged: Mutex<HashSet<(String, &'static str)>>,
    pub deliveries: DeliveryCounters,
}

/// What happened to notice deliveries, per channel.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    by_channel: Mutex<BTreeMap<String, [u64; DELIVERY_OUTCOMES.len()]>>,
}

/// `sent`: delivered (summaries included); `failed`: given up; `summarized`: folded
/// into a summary by the rate limit; `retried`: attempts that failed and will be retried.
pub const DELIVERY_OUTCOMES: [&str; 4] = ["sent", "failed", "summarized", "retried"];

impl DeliveryCounters {
    /// Makes a channel's counters appear (at zero) before anything happened.
    pub fn register(&self, channel: &str) {
        self.lock().entry(channel.to_string()).or_default();
    }

    /// Adds `n` to a channel's count of `outcome` (one of [`DELIVERY_OUTCOMES`]).
    pub fn add(&self, channel: &str, outcome: &str, n: u64) {
        let Some(i) = DELIVERY_OUTCOMES.iter().position(|o| *o == outcome) else {
            return;
        };
        self.lock().entry(channel.to_string()).or_default()[i] += n;
    }

    pub fn count(&self, channel: &str, outcome: &str) -> u64 {
        let i = DELIVERY_OUTCOMES.iter().position(|o| *o == outcome);
        match (self.lock().get(channel), i) {
            (Some(c), Some(i)) => c[i],
            _ => 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, [u64; DELIVERY_OUTCOMES.len()]>> {
        self.by_channel.lock().unwrap_or_else(|p| p.into_inner())
    }
}

const LOGGED_CAP: usize = 10_000;

fn kind_index(k: MessageKind) -> usize {
    match k {
        MessageKind::Birth => 0,
        MessageKind::Death => 1,
        MessageKind::Heartbeat => 2,
        MessageKind::Event => 3,
    }
}

impl Metrics {
    pub fn received(&self, k: MessageKind) {
        self.received[kind_index(k)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn received_count(&self, k: MessageKind) -> u64 {
        self.received[kind_index(k)].load(Ordering::Relaxed)
    }

    /// Counts a message the monitor has applied (the benchmark's "processed").
    pub fn applied(&self, k: MessageKind) {
        self.applied[kind_index(k)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn applied_count(&self, k: MessageKind) -> u64 {
        self.applied[kind_index(k)].load(Ordering::Relaxed)
    }

    /// Counts a dropped message; returns true the first time this source drops for this
    /// reason, so the caller logs once per source instead of once per message.
    pub fn dropped(&self, source: &str, reason: &'static str) -> bool {
        let i = DROP_REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(DROP_REASONS.len() - 1);
        self.dropped[i].fetch_add(1, Ordering::Relaxed);
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.len() >= LOGGED_CAP {
            return false;
        }
        logged.insert((source.to_string(), reason))
    }

    pub fn dropped_count(&self, reason: &str) -> u64 {
        DROP_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.dropped[i].load(Ordering::Relaxed))
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self, monitor: &Monitor) -> String {
        let mut s = String::with_capacity(4096);
        header(
            &mut s,
            "cw_messages_received_total",
            "counter",
            "Campus messages received, by kind.",
        );
        for k in MessageKind::ALL {
            let _ = writeln!(
                s,
                "cw_messages_received_total{{kind=\"{k}\"}} {}",
                self.received_count(k)
            );
        }
        header(
            &mut s,
            "cw_messages_applied_total",
            "counter",
            "Campus messages applied to the monitor, by kind.",
        );
        for k in MessageKind::ALL {
            let _ = writeln!(
                s,
                "cw_messages_applied_total{{kind=\"{k}\"}} {}",
                self.applied_count(k)
            );
        }
        header(
            &mut s,
            "cw_messages_dropped_total",
            "counter",
            "Messages dropped as bad input, by reason.",
        );
        for (i, r) in DROP_REASONS.iter().enumerate() {
            let _ = writeln!(
                s,
                "cw_messages_dropped_total{{reason=\"{r}\"}} {}",
                self.dropped[i].load(Ordering::Relaxed)
            );
        }
        header(
            &mut s,
            "cw_messages_ignored_total",
            "counter",
            "Valid messages that did not change state (stale epoch, replay, ...), by reason.",
        );
        for (r, n) in &monitor.counters().ignored {
            let _ = writeln!(s, "cw_messages_ignored_total{{reason=\"{r}\"}} {n}");
        }
        header(
            &mut s,
            "cw_unregistered_messages_total",
            "counter",
            "Messages from campuses not in the registry (listed, never counted).",
        );
        let _ = writeln!(
            s,
            "cw_unregistered_messages_total {}",
            monitor.counters().unregistered_messages
        );
        header(
            &mut s,
            "cw_rebirth_requests_total",
            "counter",
            "Rebirth requests sent to gateways, by reason (digest_mismatch, birth_missing, events_missing).",
        );
        for r in crate::monitor::RebirthReason::ALL {
            let n = monitor
                .counters()
                .rebirth_requests
                .get(&r)
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                s,
                "cw_rebirth_requests_total{{reason=\"{}\"}} {n}",
                r.as_str()
            );
        }
        header(
            &mut s,
            "cw_rebirth_requests_deferred_total",
            "counter",
            "Rebirth requests held back by liveness.rebirth_rate (asked at a later heartbeat).",
        );
        let _ = writeln!(
            s,
            "cw_rebirth_requests_deferred_total {}",
            monitor.counters().rebirth_deferred
        );
        header(
            &mut s,
            "cw_gateway_dropped_events_total",
            "counter",
            "Events gateways reported their spools dropped (full during a broker outage); their ids never arrive.",
        );
        let _ = writeln!(
            s,
            "cw_gateway_dropped_events_total {}",
            monitor.counters().gateway_dropped_events
        );
        for (name, help, v) in [
            (
                "cw_store_batches_total",
                "Store transactions committed.",
                self.store_batches.load(Ordering::Relaxed),
            ),
            (
                "cw_store_errors_total",
                "Store transactions that failed (retried).",
                self.store_errors.load(Ordering::Relaxed),
            ),
            (
                "cw_acks_sent_total",
                "QoS 1 messages acknowledged after being stored.",
                self.acks_sent.load(Ordering::Relaxed),
            ),
            (
                "cw_broker_disconnects_total",
                "Times the server lost its broker connection.",
                self.broker_disconnects.load(Ordering::Relaxed),
            ),
        ] {
            header(&mut s, name, "counter", help);
            let _ = writeln!(s, "{name} {v}");
        }
        header(
            &mut s,
            "cw_store_batch_seconds_total",
            "counter",
            "Time spent committing store batches.",
        );
        let _ = writeln!(
            s,
            "cw_store_batch_seconds_total {:.6}",
            self.store_batch_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        header(
            &mut s,
            "cw_broker_connected",
            "gauge",
            "1 while the server is connected to its broker.",
        );
        let _ = writeln!(
            s,
            "cw_broker_connected {}",
            self.broker_connected.load(Ordering::Relaxed) as u8
        );
        header(
            &mut s,
            "cw_gateways",
            "gauge",
            "Registered campuses by gateway state.",
        );
        for (state, n) in monitor.gateway_counts() {
            let _ = writeln!(s, "cw_gateways{{state=\"{state}\"}} {n}");
        }
        header(
            &mut s,
            "cw_alerts",
            "gauge",
            "Alerts not yet resolved, by state.",
        );
        let (mut open, mut suppressed) = (0, 0);
        for a in monitor.active_alerts() {
            match a.state {
                crate::monitor::AlertState::Open => open += 1,
                _ => suppressed += 1,
            }
        }
        let _ = writeln!(s, "cw_alerts{{state=\"open\"}} {open}");
        let _ = writeln!(s, "cw_alerts{{state=\"suppressed\"}} {suppressed}");
        let total = monitor.coverage().total(None, None);
        header(
            &mut s,
            "cw_coverage_campuses",
            "gauge",
            "Registered campuses of the whole area, by coverage measure.",
        );
        for (m, v) in [
            ("registered", total.registered),
            ("reporting", total.reporting),
            ("alarm_networked", total.alarm_networked),
            ("video_networked", total.video_networked),
            ("fully_networked", total.fully_networked),
        ] {
            let _ = writeln!(s, "cw_coverage_campuses{{measure=\"{m}\"}} {v}");
        }
        header(
            &mut s,
            "cw_unregistered_campuses",
            "gauge",
            "Campuses that report but are not in the registry.",
        );
        let _ = writeln!(
            s,
            "cw_unregistered_campuses {}",
            monitor.unregistered_count()
        );
        header(
            &mut s,
            "cw_notify_deliveries_total",
            "counter",
            "Notice deliveries by channel and outcome (sent, failed = given up, summarized, retried = failed attempts).",
        );
        for (channel, counts) in self.deliveries.lock().iter() {
            for (outcome, n) in DELIVERY_OUTCOMES.iter().zip(counts) {
                let _ = writeln!(
                    s,
                    "cw_notify_deliveries_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        s
    }
}

fn header(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
}
