//! TCP probe: the device is up when a TCP connection to `host:port` succeeds. Enough for
//! alarm panels and intercoms that listen on a known port.

use std::io;
use std::time::Instant;

use campuswatch_service::Invalid;
use tokio::net::TcpStream;

use super::{Probe, ProbeFuture, ProbeResult};

/// Connects to `target` (`host:port`).
#[derive(Debug, Clone)]
pub struct TcpProbe {
    target: String,
}

impl TcpProbe {
    pub fn new(target: String) -> Self {
        Self { target }
    }
}

impl Probe for TcpProbe {
    fn kind(&self) -> &'static str {
        "tcp"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let started = Instant::now();
            match TcpStream::connect(&self.target).await {
                // Dropping the stream closes it at once: the probe holds no device socket.
                Ok(_stream) => ProbeResult::ok(started.elapsed()),
                Err(e) => ProbeResult::fail(started.elapsed(), connect_cause(&e)),
            }
        })
    }
}

/// Words an installer can act on for a failed connect.
pub fn connect_cause(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused (nothing listens on that port)".into(),
        HostUnreachable => "no route to host (device off, unplugged or on another network)".into(),
        NetworkUnreachable => "network unreachable (check the gateway's routes)".into(),
        TimedOut => "timed out while connecting".into(),
        ConnectionReset => "connection reset by the device".into(),
        AddrNotAvailable => "address not available on this gateway".into(),
        _ => match e.raw_os_error() {
            // EHOSTUNREACH / ENETUNREACH on kernels where std maps them to Other.
            Some(113) => "no route to host (device off, unplugged or on another network)".into(),
            Some(101) => "network unreachable (check the gateway's routes)".into(),
            _ if e.to_string().contains("failed to lookup address") => {
                format!("cannot resolve the host name ({e})")
            }
            _ => e.to_string(),
        },
    }
}

/// `probe.target` (of a tcp, sip or dc09 probe; a dc09_listen probe's `listen`): a
/// `host:port` with a port other than 0.
pub(crate) fn check_target(target: &str) -> Result<(), Invalid> {
    let ok = target
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    if !ok {
        return Err(Invalid::new(
            "probe.target",
            format!("{target:?} is not host:port (for example \"192.168.10.20:5000\")"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbeStatus;

    #[tokio::test]
    async fn a_listening_port_is_up_with_its_latency() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = TcpProbe::new(l.local_addr().unwrap().to_string());
        let r = p.probe().await;
        assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
        assert!(r.measurements.contains_key("latency_ms"));
        assert_eq!(r.cause, None);
    }

    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let r = TcpProbe::new(addr.to_string()).probe().await;
        assert_eq!(r.status, ProbeStatus::Fail);
        assert!(
            r.cause
                .as_deref()
                .unwrap()
                .starts_with("connection refused"),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn an_unresolvable_host_says_so() {
        let r = TcpProbe::new("no-such-host.invalid:5000".into())
            .probe()
            .await;
        assert_eq!(r.status, ProbeStatus::Fail);
        assert!(r.cause.as_deref().unwrap().contains("resolve"), "{r:?}");
    }
}
