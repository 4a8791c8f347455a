//! Rebirth pacing: when a heartbeat that disagrees with the view makes the monitor ask
//! its gateway for its birth again, and how often.
//!
//! # Heartbeat digests and rebirths
//!
//! Heartbeats carry the gateway's device states as one letter per device and the newest
//! event id they reflect, never the inventory. When that id equals the newest event the
//! monitor applied, the letters must equal its own view; when they do not, or a session
//! is heard whose birth never came, or the events a heartbeat announces do not arrive
//! within one staleness window, the outcome asks the caller to send the gateway a
//! rebirth request (`cmd/rebirth`). Requests to one gateway are spaced by
//! `rebirth_min_interval`, doubling up to `rebirth_max_interval` while it keeps
//! disagreeing, and the spacing starts over once a heartbeat agrees. Across all
//! gateways at most `rebirth_rate` requests go out per second (a server that lost its
//! broker's queue would otherwise ask a whole fleet for 30 KB births at once); a request
//! held back waits for the gateway's next heartbeat that still disagrees.

use campuswatch_protocol::{Heartbeat, Timestamp};
use chrono::TimeDelta;

use super::{Monitor, RebirthReason, RebirthRequest};

/// When a gateway was last asked for a rebirth, and how often since its heartbeats last
/// agreed with the view.
#[derive(Debug, Clone, Default)]
pub(super) struct RebirthTrack {
    last_request: Option<Timestamp>,
    /// Requests since the last agreeing heartbeat.
    unanswered: u32,
    /// Newer events a heartbeat announced (its id, ours then, since when).
    pub(super) awaited: Option<(u64, u64, Timestamp)>,
}

impl RebirthTrack {
    /// Whether a request may go out at `now`: the first at once, then after `min`, and
    /// after twice as long each time while the gateway keeps disagreeing, up to `max`.
    fn due(&self, now: Timestamp, min: TimeDelta, max: TimeDelta) -> bool {
        let doublings = self.unanswered.saturating_sub(1).min(16);
        let gap = (min * 2i32.pow(doublings)).min(max);
        self.last_request.is_none_or(|last| now - last >= gap)
    }

    fn sent(&mut self, now: Timestamp) {
        self.last_request = Some(now);
        self.unanswered += 1;
    }

    /// A heartbeat agreed with the view: the next disagreement waits only `min`.
    fn agreed(&mut self) {
        self.unanswered = 0;
        self.awaited = None;
    }
}

/// The fleet-wide pacing of rebirth requests: a token bucket of `rebirth_rate` tokens
/// refilled at `rebirth_rate` a second.
#[derive(Debug, Clone, Default)]
pub(super) struct RebirthPace {
    tokens: f64,
    refilled: Option<Timestamp>,
}

impl RebirthPace {
    fn take(&mut self, now: Timestamp, rate: u32) -> bool {
        let rate = f64::from(rate.max(1));
        let elapsed = self.refilled.map_or(f64::INFINITY, |t| {
            (now - t).num_milliseconds().max(0) as f64 / 1000.0
        });
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.refilled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Monitor {
    /// Compares a heartbeat with the view; `Some` when the gateway should be asked for
    /// its birth (see the module documentation).
    pub(super) fn check_digest(&mut self, h: &Heartbeat, now: Timestamp) -> Option<RebirthRequest> {
        let window = self.window(&self.campuses.get(&h.campus)?.gateway);
        let (min, max, rate) = (
            self.settings.rebirth_min_interval,
            self.settings.rebirth_max_interval,
            self.settings.rebirth_rate,
        );
        let c = self.campuses.get_mut(&h.campus)?;
        let ours = c.gateway.last_event_id;
        let reason = if h.epoch > c.birth_epoch {
            RebirthReason::BirthMissing
        } else if h.last_event_id == ours {
            c.rebirth.awaited = None;
            let agrees = h
                .states
                .chars()
                .eq(c.devices.iter().map(|d| d.state.code()));
            if agrees {
                c.rebirth.agreed();
                return None;
            }
            RebirthReason::DigestMismatch
        } else if h.last_event_id > ours {
            // Newer events on their way (a spool being replayed), or lost on the way.
            match c.rebirth.awaited {
                Some((theirs, then, since)) if theirs == h.last_event_id && then == ours => {
                    if now - since < window {
                        return None;
                    }
                    RebirthReason::EventsMissing
                }
                _ => {
                    c.rebirth.awaited = Some((h.last_event_id, ours, now));
                    return None;
                }
            }
        } else {
            // Older than what was applied: a heartbeat overtaken by an event.
            return None;
        };
        if !c.rebirth.due(now, min, max) {
            return None;
        }
        if !self.rebirth_pace.take(now, rate) {
            self.counters.rebirth_deferred += 1;
            return None;
        }
        c.rebirth.sent(now);
        *self.counters.rebirth_requests.entry(reason).or_default() += 1;
        Some(RebirthRequest {
            campus: c.id.clone(),
            region: c.region,
            epoch: h.epoch,
            reason,
        })
    }
}
