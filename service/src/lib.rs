//! What both binaries, `campuswatch-agent` and `campuswatch-server`, need to run as a
//! service: configuration loading, secrets, logs, signals and systemd.
//!
//! One crate rather than a settings crate beside this one: every piece is the same
//! program-level plumbing the two `main`s share, none of it knows about campuses, and
//! the pieces lean on each other (the loader on [`locate`], `print-config` on [`Secret`]
//! and [`redact`]).
//!
//! - [`settings`]: built-in defaults, then a TOML file, then `CAMPUSWATCH__SECTION__KEY`
//!   environment variables, then the program's checks; a refusal is a
//!   [`ConfigError`] naming the file and line (or the variable) and the key.
//! - [`locate`]: the line of a TOML error or of a key in a config file, so that a refused
//!   configuration is reported as `file:line: reason`.
//! - [`Secret`]: a credential from the configuration, shown as `***`.
//! - [`redact`]: URLs with their passwords (and query values) masked, for logs and errors.
//! - [`logs`]: the log subscriber (`RUST_LOG`, else `--log-level`).
//! - [`signals`]: SIGTERM and Ctrl-C to stop, SIGHUP to reload.
//! - [`notify`]: tells systemd (or any service manager speaking the `sd_notify`
//!   protocol) that the service is ready, reloading or stopping, with a status line; all
//!   of it does nothing when `NOTIFY_SOCKET` is unset, so the same binary runs by hand.
//! - [`memory`]: the allocator's arenas limited and its free pages handed back.
//! - [`watchdog`]: the work loops beat a [`Liveness`](watchdog::Liveness); the watchdog
//!   task pings systemd only while every loop beat recently, so a hung loop stops the
//!   pings and systemd restarts the service (`WatchdogSec=`).

pub mod locate;
pub mod logs;
pub mod memory;
pub mod notify;
pub mod redact;
pub mod secret;
pub mod settings;
pub mod signals;
pub mod watchdog;

pub use secret::Secret;
pub use settings::{ConfigError, Invalid, Loader};
pub use watchdog::{Liveness, Watchdog};
