//! Running campuswatch as a system service, shared by the agent and the server binaries.
//!
//! - [`notify`]: tells systemd (or any service manager speaking the `sd_notify`
//!   protocol) that the service is ready, reloading or stopping, with a status line; all
//!   of it does nothing when `NOTIFY_SOCKET` is unset, so the same binary runs by hand.
//! - [`watchdog`]: the work loops beat a [`Liveness`](watchdog::Liveness); the watchdog
//!   task pings systemd only while every loop beat recently, so a hung loop stops the
//!   pings and systemd restarts the service (`WatchdogSec=`).
//! - [`locate`]: the line of a TOML error or of a key in a config file, so that a refused
//!   configuration is reported as `file:line: reason`.

pub mod locate;
pub mod notify;
pub mod watchdog;

pub use watchdog::{Liveness, Watchdog};
