//! DC-09 frames as the agent's panel listener (`dc09_listen`) receives them: what a panel
//! sends on a TCP connection (split into frames as the listener does) and in a UDP
//! datagram; and, since a fuzzer seldom gets a CRC right, the same bytes as the body of
//! a frame with a right CRC and length.
//!
//! Properties: every frame gets an answer that is itself a valid frame (ACK, DUH or
//! NAK); an account counts as polled only after an ACK; a panel with a key is never
//! polled by a frame in clear.

#![no_main]

use campuswatch_agent::dc09::Frame;
use campuswatch_agent::fuzzing::PanelListener;
use campuswatch_fuzz::{dc09_framed, dc09_key};
use libfuzzer_sys::fuzz_target;

/// The account that must encrypt its frames, with the key of the reference panel's
/// frames in the corpus.
const KEYED: &str = "1234";

fn checked(answer: &[u8]) -> Frame {
    let frame = Frame::decode(answer).unwrap_or_else(|e| panic!("answer {answer:?}: {e}"));
    assert!(
        ["ACK", "DUH", "NAK"].contains(&frame.id.as_str()),
        "{frame:?}"
    );
    frame
}

fuzz_target!(|data: &[u8]| {
    let listener = PanelListener::new();
    listener.set_key(KEYED, Some(dc09_key()));
    let answers = listener.answer_stream(data);
    assert_eq!(answers.len(), data.iter().filter(|&&b| b == b'\r').count());
    let mut acked = Vec::new();
    let datagrams = [
        listener.answer_datagram(data),
        listener.answer_datagram(&dc09_framed(data)),
    ];
    for answer in answers.iter().chain(&datagrams) {
        let frame = checked(answer);
        if frame.id == "ACK" {
            acked.push(frame.account.clone());
            assert!(frame.account != KEYED || frame.encrypted, "{frame:?}");
        }
    }
    for account in ["5678", KEYED, "XTRM189"] {
        assert_eq!(listener.polled(account), acked.iter().any(|a| a == account));
    }
});
