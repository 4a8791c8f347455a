//! The signals a service manager sends: SIGTERM (and Ctrl-C by hand) to stop, SIGHUP to
//! read the configuration again.

/// Returns when the process is asked to stop: Ctrl-C, or SIGTERM (what service managers
/// send). Where SIGTERM cannot be handled, Ctrl-C alone.
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP could not be handled.
#[derive(Debug, thiserror::Error)]
#[error("cannot handle SIGHUP")]
pub struct HangupError(#[source] pub std::io::Error);

/// Every SIGHUP from now on, one `recv` each. Call it before anything else at start:
/// until it is handled, SIGHUP's default action ends the process.
#[cfg(unix)]
pub fn hangups() -> Result<tokio::signal::unix::Signal, HangupError> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(HangupError)
}
