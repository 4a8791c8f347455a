//! GB/T 28181 (public-security video networking), the platform side: campus NVRs and
//! cameras register to the server over SIP and report keepalives, catalogs and alarms.
//! Built in steps; so far the SIP messages ([`sip`]) and REGISTER's digest
//! authentication ([`digest`]) that the listener is built on.

pub mod digest;
pub mod sip;
