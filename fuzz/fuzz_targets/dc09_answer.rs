//! DC-09 frames as the agent's DC-09 probe reads a receiver's answer (`ACK`, `NAK`,
//! `DUH`, encrypted `*ACK`).
//!
//! Input: a frame as sent, and the same bytes as the body of a frame with a right CRC
//! and length (a fuzzer seldom gets a CRC right, and would not get past it).
//!
//! Properties: a frame that decodes encodes to a frame that decodes the same; an
//! encrypted one that opens with the key seals and opens again to the same frame; the
//! probe's verdict is up only for an ACK of the frame it sent, and its cause code is one
//! the protocol carries (a server refuses an event with a bad one).

#![no_main]

use campuswatch_agent::dc09::Frame;
use campuswatch_agent::fuzzing::dc09_judge;
use campuswatch_agent::probe::ProbeStatus;
use campuswatch_fuzz::{check_result, dc09_framed, dc09_key};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    answer(data);
    answer(&dc09_framed(data));
});

fn answer(data: &[u8]) {
    let key = dc09_key();
    if let Ok(frame) = Frame::decode(data) {
        let again = Frame::decode(&frame.encode())
            .unwrap_or_else(|e| panic!("{frame:?} encoded does not decode: {e}"));
        assert_eq!(again, frame);
        if let Ok(clear) = frame.decrypt(&key) {
            assert!(!clear.encrypted && clear.timestamp.is_some(), "{clear:?}");
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let sealed = clear
                .encrypt(&key, &mut rng)
                .expect("an opened frame seals");
            assert_eq!(Frame::decode(&sealed.encode()).as_ref(), Ok(&sealed));
            assert_eq!(sealed.decrypt(&key).as_ref(), Ok(&clear));
        }
    }
    // The probe sent frame 0007 of account 1234, in clear and encrypted.
    let sent = Frame::null(7, Some("0"), "0", "1234");
    for key in [None, Some(&key)] {
        let result = dc09_judge(&sent, data, key);
        check_result(&result);
        if result.status == ProbeStatus::Ok {
            let answer = Frame::decode(data).expect("an answer judged up is a frame");
            assert_eq!(answer.seq, sent.seq);
            let answer = match key {
                Some(k) => answer.decrypt(k).expect("an encrypted ACK that opens"),
                None => answer,
            };
            assert_eq!(answer.id, "ACK");
        }
    }
}
