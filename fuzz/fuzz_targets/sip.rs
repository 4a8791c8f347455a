//! The SIP probe's reading of a device's answer to its OPTIONS (one UDP datagram, or one
//! message of a TCP stream).
//!
//! Properties: never a panic; a final status is a real one (200 to 699) and is only
//! found in an answer to our call.

#![no_main]

use campuswatch_agent::fuzzing::sip_final_status;
use libfuzzer_sys::fuzz_target;

const CALL_ID: &str = "a84b4c76e66710@campuswatch";

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(code)) = sip_final_status(data, CALL_ID) {
        assert!((200..700).contains(&code), "{code}");
        // Another call's answer is never ours.
        let other = "b84b4c76e66710@campuswatch";
        if !data.windows(other.len()).any(|w| w == other.as_bytes()) {
            assert_eq!(sip_final_status(data, other), Ok(None));
        }
    }
});
