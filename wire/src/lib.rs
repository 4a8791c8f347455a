//! Text formats of the devices both programs talk to, read without I/O: [`xml`], the
//! lenient reader of the XML that cameras and video platforms send.
//!
//! The agent and the server never depend on each other; what both read from devices
//! lives here, once.

pub mod xml;
