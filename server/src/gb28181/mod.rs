//! GB/T 28181 (public-security video networking), the platform side: campus NVRs and
//! cameras register to the server over SIP and report keepalives, catalogs and alarms.
//! Built in steps; so far the SIP messages ([`sip`]), REGISTER's digest authentication
//! ([`digest`]), the MANSCDP bodies of keepalives, catalogs and alarms ([`manscdp`]),
//! what the listener hands to the engine ([`types`]), the per-device passwords file
//! ([`device_file`]) and the listener itself ([`listener`]): UDP and TCP, registration,
//! keepalives, catalogs, alarms.

pub mod device_file;
pub mod digest;
pub mod listener;
pub mod manscdp;
pub mod sip;
pub mod types;

pub use device_file::DeviceFile;
pub use listener::{Listener, ListenerSettings};
pub use types::{
    AlarmInfo, ChannelInfo, ChannelKind, ChannelStatus, CodeError, GbCode, GbInput, Registration,
    Transport,
};
