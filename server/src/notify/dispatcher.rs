//! The dispatcher: the task that takes notices from the store to the channels.
//!
//! Each round ([`Dispatcher::run_once`]) routes the notices not yet routed (one
//! `deliveries` row per matching channel, in the transaction that marks them routed),
//! gives up deliveries whose time ran out, and sends what is due, per channel and
//! concurrently across channels: within the rate limit one by one, the rest folded into
//! one summary. A failed attempt is retried with exponential backoff and jitter; the
//! channel then waits for that retry before trying its other deliveries, so a receiver
//! that is down gets one attempt at a time, not a burst.
//!
//! All times come from the injected [`Clock`], so tests drive rounds with a manual clock
//! instead of sleeping. [`Dispatcher::run`] repeats rounds until shutdown, woken by the
//! store when notices are committed, by the next due time, or by the poll interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use campuswatch_protocol::Timestamp;
use chrono::TimeDelta;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::channel::{Channel, ChannelError, Outgoing};
use super::outbox::{Due, Route};
use super::settings::{ChannelKind, NotifyConfig};
use super::{format, Notice, NoticeKind};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// The rate limit's window.
pub const RATE_WINDOW: TimeDelta = TimeDelta::seconds(60);

/// How far back Alertmanager channels look for open problems to send again.
const FIRING_LOOKBACK: TimeDelta = TimeDelta::days(30);

/// Shortest pause between two rounds, so that nothing can make the loop spin.
const MIN_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// The wait before retry number `attempt` (1 = the first retry): `initial` doubled per
/// attempt, capped at `max`, then scaled by a factor in [0.5, 1] from `jitter` in [0, 1]
/// so that deliveries failing together do not retry together.
pub fn backoff(initial: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let base = initial.saturating_mul(1u32 << doublings).min(max);
    base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One channel and what the dispatcher remembers about it between rounds.
struct Worker {
    channel: Channel,
    /// After a failed attempt, nothing else is tried before this.
    blocked_until: Option<Timestamp>,
    last_error: Option<String>,
    /// Alertmanager: when firing alerts are next sent again.
    next_refresh: Option<Timestamp>,
}

/// What every worker shares in a round.
struct Round<'a> {
    store: &'a Store,
    settings: &'a NotifyConfig,
    zone: chrono_tz::Tz,
    metrics: &'a Metrics,
    clock: &'a dyn Clock,
}

pub struct Dispatcher {
    store: Store,
    settings: NotifyConfig,
    /// The zone of the times messages give (`time_zone`).
    zone: chrono_tz::Tz,
    workers: Vec<Worker>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
}

impl Dispatcher {
    /// Builds the channels of `config` and recovers the outbox: attempts a previous
    /// process left under way are due again, deliveries to removed channels fail.
    pub async fn new(
        store: Store,
        config: &NotifyConfig,
        zone: chrono_tz::Tz,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Dispatcher, NotifyError> {
        let mut workers = Vec::with_capacity(config.channels.len());
        for c in &config.channels {
            let channel = Channel::from_config(c, config.timeout)?;
            metrics.deliveries.register(&channel.name);
            info!(channel = %channel.name, kind = channel.kind.as_str(), target = %channel.target(), "Notification channel ready.");
            workers.push(Worker {
                channel,
                blocked_until: None,
                last_error: None,
                next_refresh: None,
            });
        }
        let names: Vec<&str> = workers.iter().map(|w| w.channel.name.as_str()).collect();
        let (resumed, dropped) = store.recover_deliveries(&names, clock.now()).await?;
        if resumed > 0 {
            warn!(
                deliveries = resumed,
                "Deliveries were under way when the server stopped; sending them again."
            );
        }
        if dropped > 0 {
            warn!(
                deliveries = dropped,
                "Pending deliveries to channels no longer configured were dropped."
            );
        }
        let wake = store.notice_signal();
        let mut settings = config.clone();
        settings.channels.clear();
        Ok(Dispatcher {
            store,
            settings,
            zone,
            workers,
            clock,
            metrics,
            wake,
        })
    }

    /// One round: route, give up, send. Returns when something is next due, if known.
    pub async fn run_once(&mut self) -> Result<Option<Timestamp>, NotifyError> {
        self.route().await?;
        let round = Round {
            store: &self.store,
            settings: &self.settings,
            zone: self.zone,
            metrics: &self.metrics,
            clock: self.clock.as_ref(),
        };
        let results =
            futures_util::future::join_all(self.workers.iter_mut().map(|w| w.round(&round))).await;
        let mut next = None;
        for r in results {
            next = earliest(next, r?);
        }
        Ok(next)
    }

    /// Rounds until `shutdown`. A round cut short by shutdown leaves its attempt under
    /// way, which the next start sends again.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let poll = self.settings.poll_interval;
        let mut failed = false;
        loop {
            let result = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.round_after(failed) => r,
            };
            failed = result.is_err();
            let wait = match result {
                Ok(Some(t)) => (t - self.clock.now())
                    .to_std()
                    .unwrap_or_default()
                    .min(poll),
                Ok(None) => poll,
                Err(e) => {
                    warn!(error = %e, retry_in = ?poll, "Notice dispatch failed; trying again.");
                    poll
                }
            };
            let wake = self.wake.clone();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait.max(MIN_PAUSE)) => {}
            }
        }
    }

    /// A round; after a failed one, first the recovery done at start: a round that
    /// failed between an attempt and its record left the delivery `sending`.
    async fn round_after(&mut self, failed: bool) -> Result<Option<Timestamp>, NotifyError> {
        if failed {
            let names: Vec<&str> = self
                .workers
                .iter()
                .map(|w| w.channel.name.as_str())
                .collect();
            self.store
                .recover_deliveries(&names, self.clock.now())
                .await?;
        }
        self.run_once().await
    }

    /// Routes unrouted notices: each to the channels that want it, except a resolution,
    /// which goes to the channels that heard of its problem (so an `info` resolution
    /// reaches the channel that got the `critical` opening, and no channel gets the end
    /// of something it was never told).
    async fn route(&self) -> Result<(), NotifyError> {
        loop {
            let notices = self.store.unrouted_notices().await?;
            if notices.is_empty() {
                return Ok(());
            }
            let now = self.clock.now();
            let mut heard: HashMap<String, Vec<String>> = HashMap::new();
            let mut routes = Vec::with_capacity(notices.len());
            for n in &notices {
                let problem = format::problem_key(n);
                let mut channels: Vec<String> = self
                    .workers
                    .iter()
                    .filter(|w| w.channel.wants(n))
                    .map(|w| w.channel.name.clone())
                    .collect();
                if let Some(p) = &problem {
                    if n.kind.is_resolution() {
                        let mut before = self.store.channels_of_problem(p).await?;
                        before.extend(heard.get(p).into_iter().flatten().cloned());
                        if !before.is_empty() {
                            channels = self
                                .workers
                                .iter()
                                .map(|w| w.channel.name.clone())
                                .filter(|c| before.contains(c))
                                .collect();
                        }
                    }
                    heard
                        .entry(p.clone())
                        .or_default()
                        .extend(channels.iter().cloned());
                }
                if n.kind == NoticeKind::Summary {
                    channels.clear();
                }
                debug!(notice = %n.id, channels = ?channels, "Notice routed.");
                routes.push(Route {
                    notice_id: n.id.clone(),
                    problem,
                    channels,
                    give_up_at: n.at + delta(self.settings.give_up_after),
                });
            }
            self.store.route_notices(&routes, now).await?;
        }
    }
}

impl Worker {
    async fn round(&mut self, r: &Round<'_>) -> Result<Option<Timestamp>, NotifyError> {
        let name = self.channel.name.clone();
        let now = r.clock.now();
        let why = match &self.last_error {
            Some(e) => format!("not sent in time; the channel's last error: {e}"),
            None => "not sent in time".to_string(),
        };
        let gone = r.store.give_up_deliveries(&name, &why, now).await?;
        if gone > 0 {
            r.metrics.deliveries.add(&name, "failed", gone);
            error!(channel = %name, deliveries = gone, last_error = ?self.last_error, "Notice deliveries given up.");
        }
        if let Some(b) = self.blocked_until {
            if now < b {
                return Ok(earliest(Some(b), self.next_refresh));
            }
            self.blocked_until = None;
        }
        if self.channel.kind == ChannelKind::Alertmanager
            && self.next_refresh.is_none_or(|t| now >= t)
        {
            self.refresh(r, now).await?;
            self.next_refresh = Some(now + delta(r.settings.alertmanager_resend));
        }

        let due = r.store.due_deliveries(&name, now).await?;
        let mut held_until = None;
        if !due.is_empty() {
            let window = now - RATE_WINDOW;
            let (sent, first_sent) = r.store.sent_since(&name, window).await?;
            let room = self.channel.rate_limit.saturating_sub(sent) as usize;
            // Summaries are the rate limit's own message: always sent.
            let (mut batch, notices): (Vec<Due>, Vec<Due>) = due
                .into_iter()
                .partition(|d| d.notice.kind == NoticeKind::Summary);
            let mut notices = notices.into_iter();
            batch.extend(notices.by_ref().take(room));
            let rest: Vec<Due> = notices.collect();
            if !rest.is_empty() {
                if r.store.summarized_since(&name, window).await? {
                    // One summary per window: the rest waits for room.
                    held_until = Some(
                        first_sent
                            .map(|f| f + RATE_WINDOW)
                            .filter(|t| *t > now)
                            .unwrap_or(now + delta(r.settings.poll_interval)),
                    );
                } else {
                    batch.push(self.summarize(r, &rest, now).await?);
                }
            }
            for d in batch {
                if !self.attempt(r, d).await? {
                    break;
                }
            }
        }
        if let Some(b) = self.blocked_until {
            return Ok(earliest(Some(b), self.next_refresh));
        }
        let next = match held_until {
            Some(h) => Some(h),
            None => r.store.next_due(&name).await?,
        };
        Ok(earliest(next, self.next_refresh))
    }

    /// Folds `rest` into one summary notice, stored with its delivery.
    async fn summarize(
        &self,
        r: &Round<'_>,
        rest: &[Due],
        now: Timestamp,
    ) -> Result<Due, NotifyError> {
        let name = &self.channel.name;
        let folded: Vec<Notice> = rest.iter().map(|d| d.notice.clone()).collect();
        let summary = format::summary_notice(name, &folded, now, r.zone);
        let ids: Vec<String> = folded.iter().map(|n| n.id.clone()).collect();
        let give_up_at = now + delta(r.settings.give_up_after);
        let n = r
            .store
            .fold_into_summary(name, &summary, &ids, give_up_at, now)
            .await?;
        r.metrics.deliveries.add(name, "summarized", n);
        info!(channel = %name, folded = n, limit = self.channel.rate_limit, "Rate limit reached; the other notices go in one summary.");
        Ok(Due {
            notice: summary,
            attempts: 0,
            give_up_at,
        })
    }

    /// One attempt at one delivery; false if it failed (the channel then waits).
    async fn attempt(&mut self, r: &Round<'_>, d: Due) -> Result<bool, NotifyError> {
        let name = self.channel.name.clone();
        let id = d.notice.id.clone();
        if !r.store.claim_delivery(&id, &name, r.clock.now()).await? {
            return Ok(true);
        }
        let alerts = if self.channel.kind == ChannelKind::Alertmanager {
            let notices = if d.notice.kind == NoticeKind::Summary {
                r.store.folded_notices(&id, &name).await?
            } else {
                vec![d.notice.clone()]
            };
            let mut alerts = Vec::with_capacity(notices.len());
            for n in notices {
                let first = match format::problem_key(&n) {
                    Some(p) => r.store.first_of_problem(&p).await?,
                    None => None,
                };
                let first = first.unwrap_or_else(|| n.clone());
                alerts.push((n, first));
            }
            alerts
        } else {
            Vec::new()
        };
        let now = r.clock.now();
        let out = Outgoing {
            notice: &d.notice,
            alerts: &alerts,
            console_url: &r.settings.console_url,
            zone: r.zone,
            now,
            firing_until: now + delta(r.settings.alertmanager_resend) * 4,
        };
        let result = self.channel.send(&out).await;
        let now = r.clock.now();
        match result {
            Ok(()) => {
                r.store.delivery_sent(&id, &name, now).await?;
                r.metrics.deliveries.add(&name, "sent", 1);
                self.last_error = None;
                info!(channel = %name, notice = %id, attempt = d.attempts + 1, "Notice delivered.");
                Ok(true)
            }
            Err(e) => {
                let attempt = d.attempts + 1;
                let wait = backoff(
                    r.settings.retry_initial,
                    r.settings.retry_max,
                    attempt,
                    rand::random::<f64>(),
                );
                // Whole milliseconds, as stored: the channel waits exactly as long as
                // the delivery does.
                let retry_at =
                    chrono::DateTime::from_timestamp_millis((now + delta(wait)).timestamp_millis())
                        .unwrap_or(now + delta(wait));
                let next = (now < d.give_up_at).then(|| retry_at.min(d.give_up_at));
                r.store.delivery_failed(&id, &name, &e.0, next, now).await?;
                match next {
                    Some(t) => {
                        r.metrics.deliveries.add(&name, "retried", 1);
                        warn!(channel = %name, notice = %id, attempt, retry_at = %t, error = %e, "Notice delivery failed; retrying later.");
                    }
                    None => {
                        r.metrics.deliveries.add(&name, "failed", 1);
                        error!(channel = %name, notice = %id, attempt, error = %e, "Notice delivery given up.");
                    }
                }
                self.blocked_until = Some(next.unwrap_or(retry_at));
                self.last_error = Some(e.0);
                Ok(false)
            }
        }
    }

    /// Alertmanager forgets a firing alert at its `endsAt` unless it is sent again, as
    /// Prometheus does: every `alertmanager_resend`, the open problems this channel was
    /// told of go again in one request. A failure waits for the next refresh.
    async fn refresh(&mut self, r: &Round<'_>, now: Timestamp) -> Result<(), NotifyError> {
        let firing = r
            .store
            .firing_problems(&self.channel.name, now - FIRING_LOOKBACK)
            .await?;
        let Some((latest, _)) = firing.first() else {
            return Ok(());
        };
        let out = Outgoing {
            notice: latest,
            alerts: &firing,
            console_url: &r.settings.console_url,
            zone: r.zone,
            now,
            firing_until: now + delta(r.settings.alertmanager_resend) * 4,
        };
        match self.channel.send(&out).await {
            Ok(()) => {
                debug!(channel = %self.channel.name, alerts = firing.len(), "Firing alerts sent again.")
            }
            Err(e) => {
                warn!(channel = %self.channel.name, error = %e, "Could not send firing alerts again; trying at the next refresh.")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_down_to_half() {
        let (i, m) = (Duration::from_secs(5), Duration::from_secs(60));
        assert_eq!(backoff(i, m, 1, 1.0), Duration::from_secs(5));
        assert_eq!(backoff(i, m, 2, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(i, m, 4, 1.0), Duration::from_secs(40));
        assert_eq!(backoff(i, m, 5, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(i, m, 500, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(i, m, 2, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(i, m, 0, 0.5), Duration::from_millis(3750));
    }
}
