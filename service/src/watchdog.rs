//! A watchdog fed by the real work, not by a timer of its own.
//!
//! A timer task that pings systemd every few seconds would keep pinging while the loop
//! that does the work is stuck (a lock never released, a store call that never returns):
//! the runtime's other threads keep the timer going. So each work loop beats a
//! [`Liveness`] as it goes round, and [`Watchdog::run`] pings only while every loop beat
//! within [`Watchdog::max_silence`]. A stuck loop stops the pings; systemd restarts the
//! service `WatchdogSec` later.
//!
//! Time comes from `tokio::time::Instant`, so tests drive it with a paused clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// The heartbeat of one work loop: cheap to beat (one atomic store), cheap to clone.
#[derive(Debug, Clone)]
pub struct Liveness {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: &'static str,
    origin: Instant,
    /// Milliseconds after `origin` of the latest beat.
    last: AtomicU64,
}

impl Liveness {
    /// A loop called `name` (for the log), counted as having just beaten.
    pub fn new(name: &'static str) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                origin: Instant::now(),
                last: AtomicU64::new(0),
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The loop is alive now.
    pub fn beat(&self) {
        self.beat_at(Instant::now());
    }

    /// The loop was alive at `at` (a beat never moves backwards).
    pub fn beat_at(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.inner.origin).as_millis() as u64;
        self.inner.last.fetch_max(ms, Ordering::Relaxed);
    }

    /// How long the loop has been silent at `now`.
    pub fn silent_for(&self, now: Instant) -> Duration {
        let last =
            self.inner.origin + Duration::from_millis(self.inner.last.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }
}

/// When to ping, from systemd's `WATCHDOG_USEC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchdog {
    /// Time between two pings: half the watchdog timeout, as systemd recommends.
    pub ping_every: Duration,
    /// The longest a loop may be silent and still count as alive.
    pub max_silence: Duration,
}

/// What one round of the watchdog decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ping,
    /// The named loop has been silent this long: no ping.
    Withhold {
        name: &'static str,
        silent_for: Duration,
    },
}

impl Watchdog {
    /// The watchdog for a timeout of `timeout` (`WatchdogSec`): ping at half of it, and
    /// count a loop as stuck once it was silent for half of it. A stuck loop is then
    /// restarted at most about twice the timeout after it stopped.
    pub fn for_timeout(timeout: Duration) -> Self {
        let half = (timeout / 2).max(Duration::from_millis(1));
        Self {
            ping_every: half,
            max_silence: half,
        }
    }

    /// From `WATCHDOG_USEC` (and `WATCHDOG_PID`, when set, naming this process); `None`
    /// when systemd runs no watchdog for this service.
    pub fn from_env() -> Option<Self> {
        sd_notify::watchdog_enabled()
            .filter(|t| !t.is_zero())
            .map(Self::for_timeout)
    }

    /// The decision at `now` for these loops: ping only if every one beat recently.
    pub fn verdict(&self, loops: &[Liveness], now: Instant) -> Verdict {
        for l in loops {
            let silent_for = l.silent_for(now);
            if silent_for > self.max_silence {
                return Verdict::Withhold {
                    name: l.name(),
                    silent_for,
                };
            }
        }
        Verdict::Ping
    }

    /// Every [`ping_every`](Self::ping_every) until `shutdown`: calls `ping` if every
    /// loop is alive, else logs (once per stall) that it is withholding the ping.
    pub async fn run(
        self,
        loops: Vec<Liveness>,
        shutdown: CancellationToken,
        mut ping: impl FnMut(),
    ) {
        let mut tick = tokio::time::interval(self.ping_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stalled = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.verdict(&loops, Instant::now()) {
                Verdict::Ping => {
                    if stalled {
                        info!("Every work loop is running again; watchdog pings resumed.");
                        stalled = false;
                    }
                    ping();
                }
                Verdict::Withhold { name, silent_for } => {
                    if !stalled {
                        error!(
                            work_loop = name,
                            silent_for = ?silent_for,
                            "A work loop is stuck; watchdog pings withheld so that the service manager restarts the service."
                        );
                        stalled = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watchdog_pings_at_half_the_timeout() {
        let w = Watchdog::for_timeout(Duration::from_secs(30));
        assert_eq!(w.ping_every, Duration::from_secs(15));
        assert_eq!(w.max_silence, Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn the_verdict_follows_the_quietest_loop() {
        let w = Watchdog::for_timeout(Duration::from_secs(10));
        let session = Liveness::new("session");
        let engine = Liveness::new("engine");
        let t0 = Instant::now();
        assert_eq!(
            w.verdict(&[session.clone(), engine.clone()], t0),
            Verdict::Ping
        );

        // Five seconds of silence is still alive; one more millisecond is not.
        let t5 = t0 + Duration::from_secs(5);
        session.beat_at(t5);
        assert_eq!(
            w.verdict(&[session.clone(), engine.clone()], t5),
            Verdict::Ping
        );
        let later = t5 + Duration::from_millis(1);
        assert_eq!(
            w.verdict(&[session.clone(), engine.clone()], later),
            Verdict::Withhold {
                name: "engine",
                silent_for: Duration::from_millis(5001)
            }
        );
        // A beat brings it back; a beat from the past changes nothing.
        engine.beat_at(later);
        engine.beat_at(t0);
        assert_eq!(w.verdict(&[session, engine], later), Verdict::Ping);
    }

    /// The run loop with a paused clock: a loop that beats every second keeps the pings
    /// coming; once it stops beating, at most one more ping goes out and then none.
    #[tokio::test(start_paused = true)]
    async fn pings_stop_when_the_work_loop_stops_beating() {
        let w = Watchdog::for_timeout(Duration::from_secs(4));
        let work = Liveness::new("session");
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        let watchdog = tokio::spawn(w.run(vec![work.clone()], shutdown.clone(), move || {
            let _ = tx.send(Instant::now());
        }));

        // The work loop runs for 20 s, beating every second.
        for _ in 0..20 {
            work.beat();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let stuck_at = Instant::now();
        // ... then hangs for a minute.
        tokio::time::sleep(Duration::from_secs(60)).await;
        shutdown.cancel();
        watchdog.await.unwrap();

        let mut pings = Vec::new();
        while let Ok(at) = rx.try_recv() {
            pings.push(at);
        }
        let before: Vec<_> = pings.iter().filter(|t| **t < stuck_at).collect();
        let after: Vec<_> = pings.iter().filter(|t| **t >= stuck_at).collect();
        // Every 2 s while alive: at 0, 2, ..., 18 s.
        assert_eq!(before.len(), 10, "{pings:?} (start {start:?})");
        // The last beat was at 19 s: the ping at 20 s (1 s of silence) still goes out,
        // the one at 22 s (3 s > 2 s allowed) does not, nor any after it.
        assert_eq!(after.len(), 1, "{pings:?}");
        assert!(*after[0] - stuck_at <= Duration::from_secs(2));
    }
}
