//! Counters of the ingest path and of notice deliveries, and `/metrics`: one snapshot of
//! them and of the monitor per scrape, encoded by prometheus-client in the Prometheus text
//! format 0.0.4 (not OpenMetrics, so the content type and `# TYPE` lines that scrapers and
//! dashboards already read stay as they were).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use campuswatch_protocol::MessageKind;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

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

/// Why the HTTP API refused a request as an attack on its edges (`cw_http_refused_total`).
pub const HTTP_REFUSALS: [&str; 5] = [
    "cross_origin",
    "connection_limit",
    "sign_in_throttled",
    "unauthenticated",
    "forbidden",
];

/// Why the embedded broker's guarded front refused a client (`cw_broker_refused_total`);
/// the labels of `broker::guard::Refusal`.
pub const BROKER_REFUSALS: [&str; 10] = [
    "anonymous",
    "credentials",
    "will",
    "publish",
    "subscribe",
    "malformed",
    "too_large",
    "tls",
    "timeout",
    "connection_limit",
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
    http_refused: [AtomicU64; HTTP_REFUSALS.len()],
    broker_refused: [AtomicU64; BROKER_REFUSALS.len()],
    /// The GB/T 28181 listener's counters, which it is handed.
    pub gb: Arc<crate::gb28181::listener::Counters>,
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
        self.first_time(source.to_string(), reason)
    }

    /// True the first time `source` is seen with `reason` (bounded, see `logged`).
    fn first_time(&self, source: String, reason: &'static str) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.len() >= LOGGED_CAP {
            return false;
        }
        logged.insert((source, reason))
    }

    /// Counts a client the embedded broker's front refused for `reason` (one of
    /// [`BROKER_REFUSALS`]); true the first time for this source and reason, to log once.
    pub fn broker_refused(&self, source: &str, reason: &'static str) -> bool {
        bump(&BROKER_REFUSALS, &self.broker_refused, reason);
        self.first_time(format!("mqtt client {source}"), reason)
    }

    pub fn broker_refused_count(&self, reason: &str) -> u64 {
        count(&BROKER_REFUSALS, &self.broker_refused, reason)
    }

    pub fn dropped_count(&self, reason: &str) -> u64 {
        count(&DROP_REASONS, &self.dropped, reason)
    }

    /// Counts a request the API refused for `reason` (one of [`HTTP_REFUSALS`]).
    pub fn http_refused(&self, reason: &'static str) {
        bump(&HTTP_REFUSALS, &self.http_refused, reason);
    }

    pub fn http_refused_count(&self, reason: &str) -> u64 {
        count(&HTTP_REFUSALS, &self.http_refused, reason)
    }

    /// Renders every metric in the Prometheus text format (0.0.4), encoded by
    /// prometheus-client from one snapshot taken now.
    pub fn render(&self, monitor: &Monitor) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.snapshot(monitor)));
        let mut s = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut s, &registry);
        s
    }

    /// Every figure of `/metrics` at this moment, in the order they are served.
    fn snapshot(&self, monitor: &Monitor) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters = monitor.counters();
        let by_kind = |count: &dyn Fn(MessageKind) -> u64| {
            MessageKind::ALL
                .iter()
                .map(|&k| (vec![("kind", k.to_string())], Value::Int(count(k))))
                .collect()
        };
        let single = |v: Value| vec![(Vec::new(), v)];
        let mut families = vec![
            Family::counter(
                "cw_messages_received",
                "Campus messages received, by kind.",
                by_kind(&|k| self.received_count(k)),
            ),
            Family::counter(
                "cw_messages_applied",
                "Campus messages applied to the monitor, by kind.",
                by_kind(&|k| self.applied_count(k)),
            ),
            Family::counter(
                "cw_messages_dropped",
                "Messages dropped as bad input, by reason.",
                by_reason(&DROP_REASONS, &self.dropped),
            ),
            Family::counter(
                "cw_messages_ignored",
                "Valid messages that did not change state (stale epoch, replay, ...), by reason.",
                counters
                    .ignored
                    .iter()
                    .map(|(r, n)| (vec![("reason", r.to_string())], Value::Int(*n)))
                    .collect(),
            ),
            Family::counter(
                "cw_unregistered_messages",
                "Messages from campuses not in the registry (listed, never counted).",
                single(Value::Int(counters.unregistered_messages)),
            ),
            Family::counter(
                "cw_rebirth_requests",
                "Rebirth requests sent to gateways, by reason (digest_mismatch, birth_missing, events_missing).",
                crate::monitor::RebirthReason::ALL
                    .iter()
                    .map(|r| {
                        let n = counters.rebirth_requests.get(r).copied().unwrap_or(0);
                        (vec![("reason", r.as_str().to_string())], Value::Int(n))
                    })
                    .collect(),
            ),
            Family::counter(
                "cw_rebirth_requests_deferred",
                "Rebirth requests held back by liveness.rebirth_rate (asked at a later heartbeat).",
                single(Value::Int(counters.rebirth_deferred)),
            ),
            Family::counter(
                "cw_gateway_dropped_events",
                "Events gateways reported their spools dropped (full during a broker outage); their ids never arrive.",
                single(Value::Int(counters.gateway_dropped_events)),
            ),
        ];
        for (name, help, v) in [
            (
                "cw_store_batches",
                "Store transactions committed.",
                &self.store_batches,
            ),
            (
                "cw_store_errors",
                "Store transactions that failed (retried).",
                &self.store_errors,
            ),
            (
                "cw_acks_sent",
                "QoS 1 messages acknowledged after being stored.",
                &self.acks_sent,
            ),
            (
                "cw_broker_disconnects",
                "Times the server lost its broker connection.",
                &self.broker_disconnects,
            ),
        ] {
            families.push(Family::counter(name, help, single(Value::Int(load(v)))));
        }
        families.push(Family::counter(
            "cw_http_refused",
            "HTTP requests refused as attacks on the API's edges, by reason (cross_origin: a state-changing request a browser sent from another origin; connection_limit: a connection beyond http.max_connections; sign_in_throttled: a sign-in attempt after too many failures; unauthenticated: no, a wrong, an expired or a revoked session or token, or a disabled user; forbidden: a role or region scope that does not allow the request).",
            by_reason(&HTTP_REFUSALS, &self.http_refused),
        ));
        families.push(Family::counter(
            "cw_broker_refused",
            "Clients the embedded broker's guarded front refused and disconnected, by reason (anonymous: no user name; credentials: unknown user or wrong password; will: a Last Will outside the user's topics; publish, subscribe: a topic or filter outside them; malformed: not MQTT 3.1.1; too_large: a packet over the payload limit; tls: a failed TLS handshake; timeout: no CONNECT in time; connection_limit: beyond max connections).",
            by_reason(&BROKER_REFUSALS, &self.broker_refused),
        ));
        families.push(Family::counter(
            "cw_gb_messages",
            "Messages GB/T 28181 devices sent that the listener accepted, by kind (register: a registration or its refresh; unregister: Expires 0; keepalive; catalog: each message of a catalog answer; alarm; other: other MANSCDP messages).",
            labelled("kind", self.gb.messages()),
        ));
        families.push(Family::counter(
            "cw_gb_refused",
            "What the GB/T 28181 listener refused or dropped, by reason (malformed: not SIP or MANSCDP, or no device code; too_large: over the size bounds; auth: a wrong password or digest; unknown_device: no password for the device; not_registered: a MESSAGE from a device not registered; wrong_address: a MESSAGE from another address than the device registered from; flood: REGISTERs beyond the rate per address; interval_too_brief: Expires below the minimum; media_type: a MESSAGE that is not MANSCDP; method: a method the platform does not take; connection_limit: a TCP connection beyond the limit; overload: a datagram dropped while the listener was behind).",
            labelled("reason", self.gb.refusals()),
        ));
        let p = monitor.platform_counters();
        families.push(Family::counter(
            "cw_gb_inputs_dropped",
            "What GB/T 28181 devices said that the monitor could not use, by reason (unmapped_alarm: an alarm from a device or channel no campus lists; channels_over_limit: catalog channels beyond a device's limit; not_registered: a keepalive or catalog of a device whose registration had ended).",
            labelled(
                "reason",
                [
                    ("unmapped_alarm", p.unmapped_alarms),
                    ("channels_over_limit", p.channels_dropped),
                    ("not_registered", p.not_registered),
                ]
                .into_iter(),
            ),
        ));
        let mut gb_devices: std::collections::BTreeMap<(&str, &str), u64> = [
            (("online", "true"), 0),
            (("online", "false"), 0),
            (("offline", "true"), 0),
            (("offline", "false"), 0),
        ]
        .into();
        for d in monitor.gb_devices() {
            let mapped = if d.campus.is_some() { "true" } else { "false" };
            *gb_devices
                .entry((d.record.state.as_str(), mapped))
                .or_default() += 1;
        }
        families.push(Family::gauge(
            "cw_gb_devices",
            "GB/T 28181 devices by state, and whether a campus's registry entry lists them (mapped=false: for review).",
            gb_devices
                .into_iter()
                .map(|((state, mapped), n)| {
                    (
                        vec![("state", state.to_string()), ("mapped", mapped.to_string())],
                        Value::Int(n),
                    )
                })
                .collect(),
        ));
        families.push(Family::counter(
            "cw_store_batch_seconds",
            "Time spent committing store batches.",
            single(Value::Float(load(&self.store_batch_micros) as f64 / 1e6)),
        ));
        families.push(Family::gauge(
            "cw_broker_connected",
            "1 while the server is connected to its broker.",
            single(Value::Int(
                self.broker_connected.load(Ordering::Relaxed) as u64
            )),
        ));
        families.push(Family::gauge(
            "cw_gateways",
            "Registered campuses by gateway state.",
            monitor
                .gateway_counts()
                .into_iter()
                .map(|(state, n)| (vec![("state", state.to_string())], Value::Int(n)))
                .collect(),
        ));
        let (mut open, mut suppressed) = (0, 0);
        for a in monitor.active_alerts() {
            match a.state {
                crate::monitor::AlertState::Open => open += 1,
                _ => suppressed += 1,
            }
        }
        families.push(Family::gauge(
            "cw_alerts",
            "Alerts not yet resolved, by state.",
            vec![
                (vec![("state", "open".to_string())], Value::Int(open)),
                (
                    vec![("state", "suppressed".to_string())],
                    Value::Int(suppressed),
                ),
            ],
        ));
        let total = monitor.coverage().total(None, None);
        families.push(Family::gauge(
            "cw_coverage_campuses",
            "Registered campuses of the whole area, by coverage measure.",
            [
                ("registered", total.registered),
                ("reporting", total.reporting),
                ("alarm_networked", total.alarm_networked),
                ("video_networked", total.video_networked),
                ("fully_networked", total.fully_networked),
            ]
            .into_iter()
            .map(|(m, v)| (vec![("measure", m.to_string())], Value::Int(v)))
            .collect(),
        ));
        families.push(Family::gauge(
            "cw_unregistered_campuses",
            "Campuses that report but are not in the registry.",
            single(Value::Int(monitor.unregistered_count() as u64)),
        ));
        families.push(Family::counter(
            "cw_notify_deliveries",
            "Notice deliveries by channel and outcome (sent, failed = given up, summarized, retried = failed attempts).",
            self.deliveries
                .lock()
                .iter()
                .flat_map(|(channel, counts)| {
                    DELIVERY_OUTCOMES.iter().zip(counts).map(|(outcome, n)| {
                        (
                            vec![("channel", channel.clone()), ("outcome", outcome.to_string())],
                            Value::Int(*n),
                        )
                    })
                })
                .collect(),
        ));
        Snapshot { families }
    }
}

/// The figures of one scrape, owned, for prometheus-client's registry.
#[derive(Debug)]
struct Snapshot {
    families: Vec<Family>,
}

/// Adds one to the counter of `reason` among `counters`, which `reasons` label in order;
/// an unknown reason counts nowhere.
fn bump(reasons: &[&str], counters: &[AtomicU64], reason: &str) {
    if let Some(i) = reasons.iter().position(|r| *r == reason) {
        counters[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// The counter of `reason` among `counters`, which `reasons` label in order (0 for an
/// unknown reason).
fn count(reasons: &[&str], counters: &[AtomicU64], reason: &str) -> u64 {
    reasons
        .iter()
        .position(|r| *r == reason)
        .map_or(0, |i| counters[i].load(Ordering::Relaxed))
}

/// One sample per reason, labelled `reason`.
fn by_reason(
    reasons: &[&str],
    counters: &[AtomicU64],
) -> Vec<(Vec<(&'static str, String)>, Value)> {
    reasons
        .iter()
        .zip(counters)
        .map(|(r, n)| {
            (
                vec![("reason", r.to_string())],
                Value::Int(n.load(Ordering::Relaxed)),
            )
        })
        .collect()
}

/// One sample per name, labelled `label`.
fn labelled(label: &'static str, counts: impl Iterator<Item = (&'static str, u64)>) -> Samples {
    counts
        .map(|(name, n)| (vec![(label, name.to_string())], Value::Int(n)))
        .collect()
}

/// One metric: its samples, each with its labels (none for a single sample).
#[derive(Debug)]
struct Family {
    /// Counters without their `_total`, which the encoder adds.
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Vec<(Vec<(&'static str, String)>, Value)>,
}

#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

type Samples = Vec<(Vec<(&'static str, String)>, Value)>;

impl Family {
    fn counter(name: &'static str, help: &'static str, samples: Samples) -> Self {
        Family {
            name,
            help,
            kind: MetricType::Counter,
            samples,
        }
    }

    fn gauge(name: &'static str, help: &'static str, samples: Samples) -> Self {
        Family {
            name,
            help,
            kind: MetricType::Gauge,
            samples,
        }
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.families {
            let mut metric = encoder.encode_descriptor(f.name, f.help, None, f.kind)?;
            match f.samples.as_slice() {
                [(labels, value)] if labels.is_empty() => encode_value(f.kind, *value, metric)?,
                samples => {
                    for (labels, value) in samples {
                        encode_value(f.kind, *value, metric.encode_family(labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn encode_value(
    kind: MetricType,
    value: Value,
    encoder: MetricEncoder,
) -> Result<(), std::fmt::Error> {
    use prometheus_client::encoding::EncodeMetric;
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;
    match (kind, value) {
        (MetricType::Counter, Value::Int(v)) => ConstCounter::new(v).encode(encoder),
        (MetricType::Counter, Value::Float(v)) => ConstCounter::new(v).encode(encoder),
        (_, Value::Int(v)) => ConstGauge::new(v as i64).encode(encoder),
        (_, Value::Float(v)) => ConstGauge::new(v).encode(encoder),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use campuswatch_protocol::{CampusId, DeviceKind, DeviceState, RegionCode, SchoolType};
    use campuswatch_testkit::messages::{birth, device};

    /// Every name, label, type and help line of `/metrics`, as dashboards and alert rules
    /// written against it expect them: the text the hand-written renderer produced before
    /// prometheus-client encoded it (its one difference: a float has no trailing zeros).
    #[test]
    fn every_metric_keeps_its_name_labels_and_type() {
        let campus = CampusId::parse("150102-K-1").unwrap();
        let region = RegionCode::parse("150102").unwrap();
        let mut monitor = Monitor::new(crate::monitor::Settings::immediate());
        let registry = [
            crate::testing::entry("150102-K-1", "150102", SchoolType::Kindergarten, 1, 1),
            crate::testing::entry("150102-K-2", "150102", SchoolType::Kindergarten, 1, 1),
        ];
        monitor.set_registry(&registry, false, chrono::Utc::now());
        let devices = vec![
            device("alarm-1", DeviceKind::Alarm, DeviceState::Down),
            device("cam-1", DeviceKind::Camera, DeviceState::Up),
        ];
        monitor.apply(&birth(&campus, region, 1, devices), chrono::Utc::now());
        let metrics = Metrics::default();
        metrics.received(MessageKind::Birth);
        metrics.received(MessageKind::Heartbeat);
        metrics.received(MessageKind::Heartbeat);
        metrics.applied(MessageKind::Birth);
        metrics.dropped("cw/v1/x", "too_large");
        metrics.store_batches.store(3, Ordering::Relaxed);
        metrics
            .store_batch_micros
            .store(1_500_250, Ordering::Relaxed);
        metrics.broker_connected.store(true, Ordering::Relaxed);
        metrics.gb.refused("10.6.6.6", "flood");
        metrics.deliveries.register("hook");
        metrics.deliveries.add("hook", "sent", 2);
        let text = metrics.render(&monitor);
        assert_eq!(text, EXPECTED);
    }

    const EXPECTED: &str = r#"# HELP cw_messages_received_total Campus messages received, by kind.
# TYPE cw_messages_received_total counter
cw_messages_received_total{kind="birth"} 1
cw_messages_received_total{kind="death"} 0
cw_messages_received_total{kind="heartbeat"} 2
cw_messages_received_total{kind="event"} 0
# HELP cw_messages_applied_total Campus messages applied to the monitor, by kind.
# TYPE cw_messages_applied_total counter
cw_messages_applied_total{kind="birth"} 1
cw_messages_applied_total{kind="death"} 0
cw_messages_applied_total{kind="heartbeat"} 0
cw_messages_applied_total{kind="event"} 0
# HELP cw_messages_dropped_total Messages dropped as bad input, by reason.
# TYPE cw_messages_dropped_total counter
cw_messages_dropped_total{reason="topic"} 0
cw_messages_dropped_total{reason="too_large"} 1
cw_messages_dropped_total{reason="version"} 0
cw_messages_dropped_total{reason="malformed"} 0
cw_messages_dropped_total{reason="topic_mismatch"} 0
cw_messages_dropped_total{reason="invalid"} 0
cw_messages_dropped_total{reason="outside_partition"} 0
# HELP cw_messages_ignored_total Valid messages that did not change state (stale epoch, replay, ...), by reason.
# TYPE cw_messages_ignored_total counter
# HELP cw_unregistered_messages_total Messages from campuses not in the registry (listed, never counted).
# TYPE cw_unregistered_messages_total counter
cw_unregistered_messages_total 0
# HELP cw_rebirth_requests_total Rebirth requests sent to gateways, by reason (digest_mismatch, birth_missing, events_missing).
# TYPE cw_rebirth_requests_total counter
cw_rebirth_requests_total{reason="digest_mismatch"} 0
cw_rebirth_requests_total{reason="birth_missing"} 0
cw_rebirth_requests_total{reason="events_missing"} 0
# HELP cw_rebirth_requests_deferred_total Rebirth requests held back by liveness.rebirth_rate (asked at a later heartbeat).
# TYPE cw_rebirth_requests_deferred_total counter
cw_rebirth_requests_deferred_total 0
# HELP cw_gateway_dropped_events_total Events gateways reported their spools dropped (full during a broker outage); their ids never arrive.
# TYPE cw_gateway_dropped_events_total counter
cw_gateway_dropped_events_total 0
# HELP cw_store_batches_total Store transactions committed.
# TYPE cw_store_batches_total counter
cw_store_batches_total 3
# HELP cw_store_errors_total Store transactions that failed (retried).
# TYPE cw_store_errors_total counter
cw_store_errors_total 0
# HELP cw_acks_sent_total QoS 1 messages acknowledged after being stored.
# TYPE cw_acks_sent_total counter
cw_acks_sent_total 0
# HELP cw_broker_disconnects_total Times the server lost its broker connection.
# TYPE cw_broker_disconnects_total counter
cw_broker_disconnects_total 0
# HELP cw_http_refused_total HTTP requests refused as attacks on the API's edges, by reason (cross_origin: a state-changing request a browser sent from another origin; connection_limit: a connection beyond http.max_connections; sign_in_throttled: a sign-in attempt after too many failures; unauthenticated: no, a wrong, an expired or a revoked session or token, or a disabled user; forbidden: a role or region scope that does not allow the request).
# TYPE cw_http_refused_total counter
cw_http_refused_total{reason="cross_origin"} 0
cw_http_refused_total{reason="connection_limit"} 0
cw_http_refused_total{reason="sign_in_throttled"} 0
cw_http_refused_total{reason="unauthenticated"} 0
cw_http_refused_total{reason="forbidden"} 0
# HELP cw_broker_refused_total Clients the embedded broker's guarded front refused and disconnected, by reason (anonymous: no user name; credentials: unknown user or wrong password; will: a Last Will outside the user's topics; publish, subscribe: a topic or filter outside them; malformed: not MQTT 3.1.1; too_large: a packet over the payload limit; tls: a failed TLS handshake; timeout: no CONNECT in time; connection_limit: beyond max connections).
# TYPE cw_broker_refused_total counter
cw_broker_refused_total{reason="anonymous"} 0
cw_broker_refused_total{reason="credentials"} 0
cw_broker_refused_total{reason="will"} 0
cw_broker_refused_total{reason="publish"} 0
cw_broker_refused_total{reason="subscribe"} 0
cw_broker_refused_total{reason="malformed"} 0
cw_broker_refused_total{reason="too_large"} 0
cw_broker_refused_total{reason="tls"} 0
cw_broker_refused_total{reason="timeout"} 0
cw_broker_refused_total{reason="connection_limit"} 0
# HELP cw_gb_messages_total Messages GB/T 28181 devices sent that the listener accepted, by kind (register: a registration or its refresh; unregister: Expires 0; keepalive; catalog: each message of a catalog answer; alarm; other: other MANSCDP messages).
# TYPE cw_gb_messages_total counter
cw_gb_messages_total{kind="register"} 0
cw_gb_messages_total{kind="unregister"} 0
cw_gb_messages_total{kind="keepalive"} 0
cw_gb_messages_total{kind="catalog"} 0
cw_gb_messages_total{kind="alarm"} 0
cw_gb_messages_total{kind="other"} 0
# HELP cw_gb_refused_total What the GB/T 28181 listener refused or dropped, by reason (malformed: not SIP or MANSCDP, or no device code; too_large: over the size bounds; auth: a wrong password or digest; unknown_device: no password for the device; not_registered: a MESSAGE from a device not registered; wrong_address: a MESSAGE from another address than the device registered from; flood: REGISTERs beyond the rate per address; interval_too_brief: Expires below the minimum; media_type: a MESSAGE that is not MANSCDP; method: a method the platform does not take; connection_limit: a TCP connection beyond the limit; overload: a datagram dropped while the listener was behind).
# TYPE cw_gb_refused_total counter
cw_gb_refused_total{reason="malformed"} 0
cw_gb_refused_total{reason="too_large"} 0
cw_gb_refused_total{reason="auth"} 0
cw_gb_refused_total{reason="unknown_device"} 0
cw_gb_refused_total{reason="not_registered"} 0
cw_gb_refused_total{reason="wrong_address"} 0
cw_gb_refused_total{reason="flood"} 1
cw_gb_refused_total{reason="interval_too_brief"} 0
cw_gb_refused_total{reason="media_type"} 0
cw_gb_refused_total{reason="method"} 0
cw_gb_refused_total{reason="connection_limit"} 0
cw_gb_refused_total{reason="overload"} 0
# HELP cw_gb_inputs_dropped_total What GB/T 28181 devices said that the monitor could not use, by reason (unmapped_alarm: an alarm from a device or channel no campus lists; channels_over_limit: catalog channels beyond a device's limit; not_registered: a keepalive or catalog of a device whose registration had ended).
# TYPE cw_gb_inputs_dropped_total counter
cw_gb_inputs_dropped_total{reason="unmapped_alarm"} 0
cw_gb_inputs_dropped_total{reason="channels_over_limit"} 0
cw_gb_inputs_dropped_total{reason="not_registered"} 0
# HELP cw_gb_devices GB/T 28181 devices by state, and whether a campus's registry entry lists them (mapped=false: for review).
# TYPE cw_gb_devices gauge
cw_gb_devices{state="offline",mapped="false"} 0
cw_gb_devices{state="offline",mapped="true"} 0
cw_gb_devices{state="online",mapped="false"} 0
cw_gb_devices{state="online",mapped="true"} 0
# HELP cw_store_batch_seconds_total Time spent committing store batches.
# TYPE cw_store_batch_seconds_total counter
cw_store_batch_seconds_total 1.50025
# HELP cw_broker_connected 1 while the server is connected to its broker.
# TYPE cw_broker_connected gauge
cw_broker_connected 1
# HELP cw_gateways Registered campuses by gateway state.
# TYPE cw_gateways gauge
cw_gateways{state="online"} 1
cw_gateways{state="stale"} 0
cw_gateways{state="offline"} 0
cw_gateways{state="never_seen"} 1
# HELP cw_alerts Alerts not yet resolved, by state.
# TYPE cw_alerts gauge
cw_alerts{state="open"} 2
cw_alerts{state="suppressed"} 0
# HELP cw_coverage_campuses Registered campuses of the whole area, by coverage measure.
# TYPE cw_coverage_campuses gauge
cw_coverage_campuses{measure="registered"} 2
cw_coverage_campuses{measure="reporting"} 1
cw_coverage_campuses{measure="alarm_networked"} 0
cw_coverage_campuses{measure="video_networked"} 1
cw_coverage_campuses{measure="fully_networked"} 0
# HELP cw_unregistered_campuses Campuses that report but are not in the registry.
# TYPE cw_unregistered_campuses gauge
cw_unregistered_campuses 0
# HELP cw_notify_deliveries_total Notice deliveries by channel and outcome (sent, failed = given up, summarized, retried = failed attempts).
# TYPE cw_notify_deliveries_total counter
cw_notify_deliveries_total{channel="hook",outcome="sent"} 2
cw_notify_deliveries_total{channel="hook",outcome="failed"} 0
cw_notify_deliveries_total{channel="hook",outcome="summarized"} 0
cw_notify_deliveries_total{channel="hook",outcome="retried"} 0
"#;
}
