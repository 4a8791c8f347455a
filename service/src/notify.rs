//! Service-manager notifications over the `sd_notify` protocol (a datagram to the Unix
//! socket named by `NOTIFY_SOCKET`). Every function is a no-op when the variable is unset.
//!
//! A failed notification is logged, never fatal: the service's work matters more than
//! telling systemd about it, and systemd's own timeouts catch a service that never says
//! it is ready.

use std::sync::atomic::{AtomicBool, Ordering};

use sd_notify::NotifyState;

/// Whether this process was started with a notification socket.
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// `READY=1`: start-up is complete (also ends a reload), with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(&one_line(status))]);
}

/// `STATUS=…`: what the service is doing, shown by `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(&one_line(status))]);
}

/// `RELOADING=1` with `MONOTONIC_USEC` (systemd 253 and later require the timestamp for
/// `Type=notify-reload`, and accept it from `Type=notify` services); finish the reload
/// with [`ready`], whether it succeeded or not.
pub fn reloading(status: &str) {
    let status = one_line(status);
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now, NotifyState::Status(&status)]),
        Err(_) => send(&[NotifyState::Reloading, NotifyState::Status(&status)]),
    }
}

/// `STOPPING=1`: a clean shutdown has begun.
pub fn stopping(status: &str) {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status(&one_line(status)),
    ]);
}

/// `WATCHDOG=1`: the service is alive. Call it only through [`crate::watchdog`], which
/// checks that the work loops really are.
pub fn watchdog_ping() {
    send(&[NotifyState::Watchdog]);
}

/// A status is one line of the datagram; a newline would start another assignment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn send(states: &[NotifyState]) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(e) = sd_notify::notify(states) {
        // Once: a socket that is gone stays gone, and the watchdog would repeat it.
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e, socket = ?std::env::var_os("NOTIFY_SOCKET"), "Cannot notify the service manager.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_with_newlines_stays_one_assignment() {
        assert_eq!(one_line("a\nREADY=1\r\nb"), "a READY=1  b");
    }
}
