//! The HTTP API: `/api/v1/…` (JSON), `/metrics`, `/healthz`.
//!
//! Handlers read the monitor under a short read lock (never across an `.await`) or query
//! the store for history. Every error leaves through [`ApiError`], which speaks JSON and
//! hides internals.

use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::ingest::{Clock, Inbound};
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::store::Store;

mod alerts;
mod audit;
mod caller;
mod campuses;
mod coverage;
mod error;
mod extract;
mod gb28181;
mod health;
mod incidents;
mod live;
mod maintenance;
mod openapi;
mod origin;
mod registry;
mod reports;
mod router;
mod schemas;
mod session;
pub mod throttle;
mod users;

pub use caller::Caller;
pub use coverage::CountyListings;
pub use error::ApiError;
pub use openapi::openapi_json;
pub use router::router;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub monitor: Arc<RwLock<Monitor>>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub inbound: mpsc::Sender<Inbound>,
    pub auth: crate::config::AuthConfig,
    /// Stored changes, for the consoles' live updates.
    pub live: tokio::sync::broadcast::Sender<crate::live::LiveEvent>,
    /// Cancelled when the server stops: live streams end then, so that consoles see the
    /// server go (and reconnect to its successor) and a graceful stop is not held up.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The servers of the other partitions (coverage of the whole area).
    pub peers: crate::peers::Peers,
    /// The time zone of the times the console and the reports show (`time_zone`).
    pub time_zone: chrono_tz::Tz,
    /// This server's run ([`crate::store::Store::start_server_run`]): a figure "so far"
    /// marks it alive up to the moment it is computed.
    pub server_run: i64,
    /// Sign-in failures by name and address ([`throttle`]).
    pub sign_in_throttle: Arc<throttle::SignInThrottle>,
    /// Counties' campus listings kept until they change ([`CountyListings`]).
    pub county_listings: Arc<CountyListings>,
}

impl AppState {
    fn monitor(&self) -> std::sync::RwLockReadGuard<'_, Monitor> {
        self.monitor.read().unwrap_or_else(|p| p.into_inner())
    }
}
