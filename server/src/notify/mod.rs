//! Notifications: what the server tells the operators on duty, and the channels it tells
//! them on (webhook, Alertmanager, WeCom and DingTalk group robots, e-mail).
//!
//! The monitor decides *what* to say: it emits a [`Notice`] as a change, which the store
//! writes to the `notices` table in the same transaction as the state that caused it. So
//! a notice exists exactly when its cause was committed: a crash cannot lose one, and a
//! restart, which re-derives state from the store instead of re-judging it, cannot make a
//! second one. Delivery (routing, retries, rate limits, summaries) works from that table:
//! the [`Dispatcher`] routes each notice to the matching channels (an outbox row per
//! notice and channel, see [`outbox`]), sends them ([`channel`], in the formats of
//! [`format`]) and retries with backoff. `docs/notifications.md` is the user's view.

pub mod channel;
pub mod dispatcher;
pub mod format;
pub mod outbox;
pub mod settings;

pub use dispatcher::{Dispatcher, NotifyError};
pub use outbox::DeliveryRecord;

pub use crate::model::{CampusRef, Notice, NoticeKind, Severity};
