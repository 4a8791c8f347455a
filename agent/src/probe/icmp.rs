//! ICMP echo probe, for devices with no better check. It uses an unprivileged ICMP
//! ("ping") socket where the system allows one (`net.ipv4.ping_group_range`), a raw
//! socket with CAP_NET_RAW otherwise, and says clearly when neither is permitted.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use campuswatch_service::Invalid;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::{Probe, ProbeFuture, ProbeResult};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

pub struct IcmpProbe {
    host: String,
}

impl IcmpProbe {
    pub fn new(host: String) -> Self {
        Self { host }
    }
}

/// Opens an ICMP socket: unprivileged first, then raw. `true` when raw (replies then
/// come with their IPv4 header, and every ICMP packet of the host is seen).
fn open(ip: IpAddr) -> Result<(UdpSocket, bool), String> {
    let (domain, protocol) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let (socket, raw) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(s) => (s, false),
        Err(unprivileged) => match Socket::new(domain, Type::RAW, Some(protocol)) {
            Ok(s) => (s, true),
            Err(raw) => {
                return Err(format!(
                    "ICMP is not permitted on this gateway: allow unprivileged ping \
                     (sysctl net.ipv4.ping_group_range) or give the agent CAP_NET_RAW \
                     ({unprivileged}; {raw})"
                ))
            }
        },
    };
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("ICMP socket: {e}"))?;
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))
        .map_err(|e| format!("ICMP socket: {e}"))?;
    Ok((socket, raw))
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request carrying `token`, so our reply can be told from others'.
pub fn echo_request(v6: bool, seq: u16, token: u64) -> Vec<u8> {
    let mut p = vec![if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 }, 0, 0, 0];
    p.extend_from_slice(&(token as u16).to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&token.to_be_bytes());
    p.extend_from_slice(b"campuswatch");
    // IPv6 checksums cover a pseudo-header the kernel fills in; it computes them.
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `packet` (with its IPv4 header when `raw`) is the echo reply for `token`.
pub fn is_reply(packet: &[u8], v6: bool, raw: bool, token: u64) -> bool {
    let icmp = if raw && !v6 {
        let Some(&first) = packet.first() else {
            return false;
        };
        let header = usize::from(first & 0x0F) * 4;
        match packet.get(header..) {
            Some(rest) => rest,
            None => return false,
        }
    } else {
        packet
    };
    let reply = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    icmp.len() >= 16 && icmp[0] == reply && icmp[8..16] == token.to_be_bytes()
}

impl IcmpProbe {
    async fn run(&self) -> Result<std::time::Duration, String> {
        let ip = match self.host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => tokio::net::lookup_host((self.host.as_str(), 0))
                .await
                .map_err(|e| format!("cannot resolve the host name ({e})"))?
                .next()
                .ok_or_else(|| "the host name has no address".to_string())?
                .ip(),
        };
        let (socket, raw) = open(ip)?;
        let v6 = ip.is_ipv6();
        let token: u64 = rand::random();
        let request = echo_request(v6, 1, token);
        let started = Instant::now();
        socket
            .send_to(&request, SocketAddr::new(ip, 0))
            .await
            .map_err(|e| format!("sending the echo request failed: {e}"))?;
        let mut buf = vec![0u8; 2048];
        loop {
            // The timeout around the probe bounds this wait.
            let (n, from) = socket
                .recv_from(&mut buf)
                .await
                .map_err(|e| format!("receiving failed: {e}"))?;
            if from.ip() == ip && is_reply(&buf[..n], v6, raw, token) {
                return Ok(started.elapsed());
            }
        }
    }
}

impl Probe for IcmpProbe {
    fn kind(&self) -> &'static str {
        "icmp"
    }

    fn target(&self) -> &str {
        &self.host
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            match self.run().await {
                Ok(rtt) => ProbeResult::ok(rtt),
                Err(cause) => ProbeResult::fail(std::time::Duration::ZERO, cause),
            }
        })
    }
}

/// `probe.host`: an IP address or a host name.
pub(crate) fn check_host(host: &str) -> Result<(), Invalid> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if !ok {
        return Err(Invalid::new(
            "probe.host",
            format!("{host:?} is not an IP address or host name"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangled_packets_never_panic_and_only_our_reply_matches() {
        let token = 0x1122_3344_5566_7788;
        for v6 in [false, true] {
            let mut reply = echo_request(v6, 7, token);
            reply[0] = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
            assert!(is_reply(&reply, v6, false, token));
            assert!(!is_reply(&reply, v6, false, token + 1));
            // A raw IPv4 socket delivers the IP header too (20 bytes, IHL 5).
            let mut raw = vec![0x45; 20];
            raw.extend_from_slice(&reply);
            assert_eq!(is_reply(&raw, v6, true, token), !v6);
            for m in crate::mutants::mutants(&raw, 5, 5_000) {
                let _ = is_reply(&m, v6, true, token);
                let _ = is_reply(&m, v6, false, token);
            }
        }
    }
    use crate::probe::{probe_once, ProbeStatus};

    #[test]
    fn an_ipv4_request_has_a_valid_checksum() {
        let p = echo_request(false, 7, 0x1122_3344_5566_7788);
        assert_eq!(
            checksum(&p),
            0,
            "a packet including its checksum sums to zero"
        );
        assert_eq!(p[0], ECHO_REQUEST_V4);
    }

    #[test]
    fn only_the_reply_with_our_token_counts() {
        let token = 42;
        let mut reply = echo_request(false, 1, token);
        reply[0] = ECHO_REPLY_V4;
        assert!(is_reply(&reply, false, false, token));
        assert!(!is_reply(&reply, false, false, 43));
        let request = echo_request(false, 1, token);
        assert!(
            !is_reply(&request, false, false, token),
            "our own request seen on a raw socket"
        );
        let mut with_ip = vec![0x45; 20];
        with_ip.extend_from_slice(&reply);
        assert!(is_reply(&with_ip, false, true, token));
        assert!(!is_reply(&[0x4F], false, true, token));
        assert!(!is_reply(&[], false, true, token));
    }

    #[tokio::test]
    async fn loopback_answers_echo() {
        let p = IcmpProbe::new("127.0.0.1".into());
        let r = probe_once(&p, std::time::Duration::from_secs(2)).await;
        // CI runs as root, where a raw socket is always permitted. Elsewhere a gateway
        // may permit neither kind, and the failure must then say what to do.
        if std::env::var_os("CI").is_some() {
            assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
        }
        if r.status == ProbeStatus::Fail {
            let cause = r.cause.unwrap();
            assert!(cause.contains("CAP_NET_RAW"), "{cause}");
        } else {
            assert!(r.measurements.contains_key("latency_ms"));
        }
    }
}
