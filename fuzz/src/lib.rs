//! What the fuzz targets share.

use campuswatch_agent::dc09::{crc16_arc, AesKey};
use campuswatch_agent::probe::{ProbeResult, ProbeStatus};

/// `body` as a DC-09 frame with a right CRC and length (LF, header, body, CR): a fuzzer
/// seldom gets a CRC right, and would not get past it.
pub fn dc09_framed(body: &[u8]) -> Vec<u8> {
    let header = format!("{:04X}0{:03X}", crc16_arc(body), body.len() & 0xFFF);
    [b"\n", header.as_bytes(), body, b"\r"].concat()
}

/// The AES key of the reference receiver's and panel's frames in the corpus
/// ("0123456789ABCDEF", written as the hex of those characters).
pub fn dc09_key() -> AesKey {
    AesKey::from_hex("30313233343536373839414243444546").unwrap()
}

/// A probe's result as an event carries it: a failure has a cause, and a cause code is
/// one the protocol lists and carries (a server refuses an event with a bad one).
pub fn check_result(result: &ProbeResult) {
    assert_eq!(
        result.status == ProbeStatus::Fail,
        result.cause.is_some(),
        "{result:?}"
    );
    if let Some(code) = &result.cause_code {
        assert!(code.is_known(), "{code:?}");
        code.validate().unwrap_or_else(|e| panic!("{code:?}: {e}"));
    }
}
