//! TCP probe: the device is up when a TCP connection to `host:port` succeeds. Enough for
//! alarm panels and intercoms that listen on a known port.

use std::io;
use std::time::Instant;

use campuswatch_service::Invalid;
use tokio::net::TcpStream;

use campuswatch_protocol::CauseCode;

use super::{Cause, Probe, ProbeFuture, ProbeResult};

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

/// Words an installer can act on for a failed connect, and their code (`tcp.refused`,
/// `tcp.unreachable`, `tcp.network_unreachable`, `tcp.timeout`, `tcp.reset`,
/// `tcp.address`, `tcp.resolve`, else `tcp.error`).
pub fn connect_cause(e: &io::Error) -> Cause {
    use io::ErrorKind::*;
    const NO_ROUTE: &str = "no route to host (device off, unplugged or on another network)";
    const NO_NET: &str = "network unreachable (check the gateway's routes)";
    let (code, text) = match e.kind() {
        ConnectionRefused => (
            "refused",
            "connection refused (nothing listens on that port)".into(),
        ),
        HostUnreachable => ("unreachable", NO_ROUTE.into()),
        NetworkUnreachable => ("network_unreachable", NO_NET.into()),
        TimedOut => ("timeout", "timed out while connecting".into()),
        ConnectionReset => ("reset", "connection reset by the device".into()),
        AddrNotAvailable => ("address", "address not available on this gateway".into()),
        _ => match e.raw_os_error() {
            // EHOSTUNREACH / ENETUNREACH on kernels where std maps them to Other.
            Some(113) => ("unreachable", NO_ROUTE.into()),
            Some(101) => ("network_unreachable", NO_NET.into()),
            _ if e.to_string().contains("failed to lookup address") => {
                ("resolve", format!("cannot resolve the host name ({e})"))
            }
            _ => ("error", e.to_string()),
        },
    };
    Cause::new(CauseCode::new(format!("tcp.{code}")), text)
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
        assert_eq!(r.cause_code, Some(CauseCode::new("tcp.refused")));
    }

    #[tokio::test]
    async fn an_unresolvable_host_says_so() {
        let r = TcpProbe::new("no-such-host.invalid:5000".into())
            .probe()
            .await;
        assert_eq!(r.status, ProbeStatus::Fail);
        assert!(r.cause.as_deref().unwrap().contains("resolve"), "{r:?}");
        assert_eq!(r.cause_code, Some(CauseCode::new("tcp.resolve")));
    }

    /// A probe that fails without saying what code its cause has; or, `panicking`, whose
    /// answer reader panics, as the RTSP client's SDP reader did on a camera's malformed
    /// SDP (found by the rtsp fuzz target).
    struct Odd {
        panicking: bool,
    }

    const UNCODED: Odd = Odd { panicking: false };

    impl Probe for Odd {
        fn kind(&self) -> &'static str {
            if self.panicking {
                "rtsp"
            } else {
                "sip"
            }
        }
        fn target(&self) -> &str {
            "10.0.0.1:5060"
        }
        fn probe(&self) -> ProbeFuture<'_> {
            Box::pin(async move {
                assert!(!self.panicking, "assertion `left == right` failed");
                ProbeResult::fail(std::time::Duration::ZERO, "odd answer")
            })
        }
    }

    #[tokio::test]
    async fn every_cause_gets_a_code_and_a_timeout_says_how_long() {
        let r = crate::probe::probe_once(&UNCODED, std::time::Duration::from_secs(1)).await;
        assert_eq!(r.cause_code, Some(CauseCode::new("sip.failed")));
        assert_eq!(r.cause.as_deref(), Some("odd answer"));
        let r = ProbeResult::timed_out(std::time::Duration::from_millis(1500));
        assert_eq!(r.cause_code.unwrap().to_string(), "probe.timeout{ms=1500}");
    }

    #[tokio::test]
    async fn a_probe_that_panics_fails_with_the_reason_and_the_task_goes_on() {
        for _ in 0..2 {
            let r = crate::probe::probe_once(
                &Odd { panicking: true },
                std::time::Duration::from_secs(1),
            )
            .await;
            assert_eq!(r.status, ProbeStatus::Fail);
            assert_eq!(r.cause_code, Some(CauseCode::new("rtsp.failed")));
            assert!(r.cause.unwrap().contains("left == right"));
        }
    }
}
