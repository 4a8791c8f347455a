//! GB/T 28181 (public-security video networking), the platform side: campus NVRs and
//! cameras register to the server over SIP and report keepalives, catalogs and alarms.
//! Built in steps; so far the SIP messages ([`sip`]), REGISTER's digest authentication
//! ([`digest`]), the MANSCDP bodies of keepalives, catalogs and alarms ([`manscdp`]),
//! what the listener hands to the engine ([`types`]), the per-device passwords file
//! ([`device_file`]) and the listener itself ([`listener`]): UDP and TCP, registration,
//! keepalives, catalogs, alarms; and simulated devices that speak to it as campus NVRs
//! do ([`simulator`]), for the demo, the benchmark and tests.

pub mod device_file;
pub mod digest;
pub mod listener;
pub mod manscdp;
pub mod simulator;
pub mod sip;
pub mod types;

use std::net::{IpAddr, SocketAddr};

pub use device_file::DeviceFile;
pub use listener::{Listener, ListenerSettings};
pub use types::{
    AlarmInfo, ChannelInfo, ChannelKind, ChannelStatus, CodeError, GbCode, GbInput, Registration,
    Transport,
};

/// The local address that reaches `peer`, for a socket bound to every address: what the
/// platform names in its requests' Via, and where a simulated device says it is.
pub(crate) fn route_to(peer: SocketAddr) -> std::io::Result<IpAddr> {
    let any: SocketAddr = match peer {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // Connecting a UDP socket sends nothing; it only picks the route.
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(peer)?;
    Ok(probe.local_addr()?.ip())
}
