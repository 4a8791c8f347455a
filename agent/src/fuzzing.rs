//! The agent's parsers of device answers, reachable from the fuzz targets (`fuzz/`):
//! thin wrappers over the functions the probes call, so that what is fuzzed is what runs
//! on a gateway. Not an API; nothing in the agent uses this module.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::dc09::{AesKey, Frame};
use crate::probe::dc09_listen::{self, Listener};
use crate::probe::ProbeResult;

/// The status code of a SIP device's final response to the OPTIONS of call `call_id`
/// (`None`: provisional, or another call's), as the SIP probe reads it.
pub fn sip_final_status(message: &[u8], call_id: &str) -> Result<Option<u16>, String> {
    crate::probe::sip::final_status(message, call_id)
}

/// What the DC-09 probe makes of a receiver's `answer` to the frame it `sent`, `key` set
/// when the frame went out encrypted.
pub fn dc09_judge(sent: &Frame, answer: &[u8], key: Option<&AesKey>) -> ProbeResult {
    crate::probe::dc09::judge(sent, answer, key, Duration::ZERO)
}

/// A DC-09 panel listener without a socket: bytes in, answers out.
pub struct PanelListener(Listener);

impl Default for PanelListener {
    fn default() -> Self {
        Self::new()
    }
}

impl PanelListener {
    pub fn new() -> Self {
        Self(Listener::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
    }

    /// From now on, frames of `account` must be encrypted with `key`.
    pub fn set_key(&self, account: &str, key: Option<AesKey>) {
        self.0.set_key(account, key);
    }

    /// The answers to what a panel sent on one TCP connection, frame by frame as the
    /// listener splits the stream; what is left after the last frame's CR stays unread.
    pub fn answer_stream(&self, stream: &[u8]) -> Vec<Vec<u8>> {
        let mut data = stream.to_vec();
        std::iter::from_fn(|| dc09_listen::next_frame(&mut data))
            .map(|frame| self.0.answer(&frame))
            .collect()
    }

    /// The answer to one UDP datagram.
    pub fn answer_datagram(&self, datagram: &[u8]) -> Vec<u8> {
        self.0.answer(datagram)
    }

    /// Whether a valid frame of `account` has arrived.
    pub fn polled(&self, account: &str) -> bool {
        self.0.last(account).is_some()
    }
}

/// A SOAP fault in a camera's ONVIF answer, in the words the ONVIF probe reports.
pub fn onvif_fault(xml: &str) -> Option<String> {
    crate::probe::onvif::fault(xml)
}
