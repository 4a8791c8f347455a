//! SIA DC-09 frames: the alarm-transmission format spoken between alarm panels (or the
//! agent acting for them) and the alarm receiving centre.
//!
//! `<LF><crc><0LLL>"<id>"<seq>[R<rcvr>]L<pref>#<acct>[<data>][_HH:MM:SS,MM-DD-YYYY]<CR>`
//!
//! The CRC is CRC-16/ARC over everything from the opening `"` to just before `<CR>`; the
//! length is that span's byte count as `0` plus three hex digits. This module only encodes
//! and decodes (no I/O); it is lenient where real panels are (account ids that are not
//! hex, lower-case hex) and strict where a wrong answer would mislead (CRC, length).

use std::fmt;

use chrono::NaiveDateTime;

const LF: u8 = b'\n';
const CR: u8 = b'\r';
/// Longest frame accepted; real frames are well under 200 bytes.
pub const MAX_FRAME_BYTES: usize = 1024;

/// One DC-09 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// `NULL`, `SIA-DCS`, `ADM-CID`, `ACK`, `NAK`, `DUH`, …
    pub id: String,
    /// The id was marked `*` (AES-encrypted body). The body is kept as sent.
    pub encrypted: bool,
    /// 0000–9999, echoed by the receiver's answer.
    pub seq: u16,
    /// Receiver number (hex), if present.
    pub receiver: Option<String>,
    /// Account prefix (hex).
    pub prefix: String,
    /// Account id; real panels send non-hex ids, so any printable text is accepted.
    pub account: String,
    /// What stands between `[` and `]` (empty for supervision frames).
    pub data: String,
    /// `_HH:MM:SS,MM-DD-YYYY`, in UTC by convention.
    pub timestamp: Option<NaiveDateTime>,
}

/// Why bytes are not a DC-09 frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is longer than {MAX_FRAME_BYTES}")]
    TooLong(usize),
    #[error("frame does not start with LF and end with CR")]
    Framing,
    #[error("CRC/length header {0:?} is not 8 hex digits")]
    Header(String),
    #[error("length says {declared} bytes, the frame has {actual}")]
    Length { declared: usize, actual: usize },
    #[error("CRC says {declared:04X}, the frame's is {actual:04X}")]
    Crc { declared: u16, actual: u16 },
    #[error("malformed {field}: {detail}")]
    Field { field: &'static str, detail: String },
}

fn field(field: &'static str, detail: impl Into<String>) -> FrameError {
    FrameError::Field {
        field,
        detail: detail.into(),
    }
}

/// CRC-16/ARC (polynomial 0x8005 reflected, initial value 0), as DC-09 specifies.
pub fn crc16_arc(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

const TIMESTAMP_FORMAT: &str = "_%H:%M:%S,%m-%d-%Y";

impl Frame {
    /// A supervision (link test) frame.
    pub fn null(seq: u16, receiver: Option<&str>, prefix: &str, account: &str) -> Frame {
        Frame {
            id: "NULL".into(),
            encrypted: false,
            seq,
            receiver: receiver.map(str::to_string),
            prefix: prefix.into(),
            account: account.into(),
            data: String::new(),
            timestamp: None,
        }
    }

    /// The acknowledgement a receiver sends for this frame: same sequence, receiver,
    /// prefix and account, empty data, the receiver's time.
    pub fn ack(&self, now: NaiveDateTime) -> Frame {
        Frame {
            id: "ACK".into(),
            encrypted: false,
            seq: self.seq,
            receiver: self.receiver.clone(),
            prefix: self.prefix.clone(),
            account: self.account.clone(),
            data: String::new(),
            timestamp: Some(now),
        }
    }

    /// The bytes between the header and `<CR>`, over which CRC and length are taken.
    fn body(&self) -> String {
        let mut s = String::with_capacity(64);
        s.push('"');
        if self.encrypted {
            s.push('*');
        }
        s.push_str(&self.id);
        s.push('"');
        s.push_str(&format!("{:04}", self.seq % 10_000));
        if let Some(r) = &self.receiver {
            s.push('R');
            s.push_str(r);
        }
        s.push('L');
        s.push_str(&self.prefix);
        s.push('#');
        s.push_str(&self.account);
        s.push('[');
        s.push_str(&self.data);
        s.push(']');
        if let Some(t) = self.timestamp {
            s.push_str(&t.format(TIMESTAMP_FORMAT).to_string());
        }
        s
    }

    /// The frame on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let body = self.body();
        let mut out = Vec::with_capacity(body.len() + 10);
        out.push(LF);
        out.extend_from_slice(
            format!("{:04X}0{:03X}", crc16_arc(body.as_bytes()), body.len()).as_bytes(),
        );
        out.extend_from_slice(body.as_bytes());
        out.push(CR);
        out
    }

    /// Parses one frame (with its LF and CR), checking length and CRC.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLong(bytes.len()));
        }
        let inner = bytes
            .strip_prefix(&[LF])
            .and_then(|b| b.strip_suffix(&[CR]))
            .ok_or(FrameError::Framing)?;
        if inner.len() < 8 {
            return Err(FrameError::Header(
                String::from_utf8_lossy(inner).into_owned(),
            ));
        }
        let (header, body) = inner.split_at(8);
        let header_text = std::str::from_utf8(header)
            .map_err(|_| FrameError::Header(String::from_utf8_lossy(header).into_owned()))?;
        let hex = |s: &str| u16::from_str_radix(s, 16).ok();
        let (Some(declared_crc), Some(declared_len)) =
            (hex(&header_text[..4]), hex(&header_text[4..]))
        else {
            return Err(FrameError::Header(header_text.to_string()));
        };
        if usize::from(declared_len) != body.len() {
            return Err(FrameError::Length {
                declared: declared_len.into(),
                actual: body.len(),
            });
        }
        let actual_crc = crc16_arc(body);
        if actual_crc != declared_crc {
            return Err(FrameError::Crc {
                declared: declared_crc,
                actual: actual_crc,
            });
        }
        let body = std::str::from_utf8(body).map_err(|_| field("body", "not ASCII"))?;
        parse_body(body)
    }
}

fn parse_body(body: &str) -> Result<Frame, FrameError> {
    let rest = body
        .strip_prefix('"')
        .ok_or_else(|| field("id", "no opening quote"))?;
    let close = rest
        .find('"')
        .ok_or_else(|| field("id", "no closing quote"))?;
    let (mut id, rest) = (&rest[..close], &rest[close + 1..]);
    let encrypted = id.starts_with('*');
    if encrypted {
        id = &id[1..];
    }
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(field("id", format!("{id:?}")));
    }
    let (seq, rest) = rest
        .split_at_checked(4)
        .ok_or_else(|| field("sequence", "too short"))?;
    if !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(field("sequence", format!("{seq:?} is not four digits")));
    }
    let seq: u16 = seq
        .parse()
        .map_err(|_| field("sequence", seq.to_string()))?;

    let (receiver, rest) = match rest.strip_prefix('R') {
        Some(r) => {
            let end = r
                .find('L')
                .ok_or_else(|| field("receiver", "no L after R"))?;
            (Some(hex_field("receiver", &r[..end])?), &r[end..])
        }
        None => (None, rest),
    };
    let rest = rest
        .strip_prefix('L')
        .ok_or_else(|| field("prefix", "no L"))?;
    let hash = rest.find('#').ok_or_else(|| field("account", "no #"))?;
    let prefix = hex_field("prefix", &rest[..hash])?;
    let rest = &rest[hash + 1..];
    let open = rest.find('[').ok_or_else(|| field("data", "no ["))?;
    let account = &rest[..open];
    if account.is_empty()
        || account.len() > 16
        || !account.bytes().all(|b| b.is_ascii_graphic() && b != b'[')
    {
        return Err(field("account", format!("{account:?}")));
    }
    let rest = &rest[open + 1..];
    // Encrypted data may hold ']'-free hex only; plain data ends at the last ']'.
    let close = rest.rfind(']').ok_or_else(|| field("data", "no ]"))?;
    let data = &rest[..close];
    let tail = &rest[close + 1..];
    let timestamp = if tail.is_empty() {
        None
    } else {
        Some(
            NaiveDateTime::parse_from_str(tail, TIMESTAMP_FORMAT)
                .map_err(|e| field("timestamp", format!("{tail:?}: {e}")))?,
        )
    };
    Ok(Frame {
        id: id.to_string(),
        encrypted,
        seq,
        receiver,
        prefix,
        account: account.to_string(),
        data: data.to_string(),
        timestamp,
    })
}

fn hex_field(name: &'static str, s: &str) -> Result<String, FrameError> {
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(field(name, format!("{s:?} is not 1 to 6 hex digits")));
    }
    Ok(s.to_string())
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A supervision frame captured from a real panel.
    const CAPTURED: &[u8] = b"\n31FD0018\"NULL\"0000R0L0#XTRM189[]\r";

    #[test]
    fn crc16_arc_matches_its_check_value() {
        assert_eq!(crc16_arc(b"123456789"), 0xBB3D);
    }

    #[test]
    fn a_captured_panel_frame_decodes_and_encodes_back_byte_for_byte() {
        let f = Frame::decode(CAPTURED).unwrap();
        assert_eq!(f.id, "NULL");
        assert_eq!(f.seq, 0);
        assert_eq!(f.receiver.as_deref(), Some("0"));
        assert_eq!(f.prefix, "0");
        assert_eq!(f.account, "XTRM189", "non-hex account ids are accepted");
        assert_eq!(f.encode(), CAPTURED);
        assert_eq!(Frame::null(0, Some("0"), "0", "XTRM189").encode(), CAPTURED);
    }

    #[test]
    fn an_ack_echoes_sequence_receiver_prefix_and_account() {
        let f = Frame::decode(CAPTURED).unwrap();
        let now =
            NaiveDateTime::parse_from_str("2026-11-29 08:01:02", "%Y-%m-%d %H:%M:%S").unwrap();
        let ack = f.ack(now);
        let wire = ack.encode();
        let text = String::from_utf8(wire.clone()).unwrap();
        assert!(
            text.ends_with("\"ACK\"0000R0L0#XTRM189[]_08:01:02,11-29-2026\r"),
            "{text:?}"
        );
        assert_eq!(Frame::decode(&wire).unwrap(), ack);
    }

    #[test]
    fn a_wrong_crc_or_length_is_refused() {
        let mut bad_crc = CAPTURED.to_vec();
        bad_crc[1] = b'4';
        assert!(matches!(
            Frame::decode(&bad_crc),
            Err(FrameError::Crc { .. })
        ));
        let mut bad_len = CAPTURED.to_vec();
        bad_len[8] = b'9';
        assert!(matches!(
            Frame::decode(&bad_len),
            Err(FrameError::Length { .. })
        ));
        let mut flipped = CAPTURED.to_vec();
        flipped[20] = b'X';
        assert!(matches!(
            Frame::decode(&flipped),
            Err(FrameError::Crc { .. })
        ));
    }

    #[test]
    fn event_frames_with_data_and_timestamps_round_trip() {
        let f = Frame {
            id: "SIA-DCS".into(),
            encrypted: false,
            seq: 42,
            receiver: Some("12AB".into()),
            prefix: "789".into(),
            account: "1234".into(),
            data: "#1234|NFA129".into(),
            timestamp: NaiveDateTime::parse_from_str("2026-01-31 23:59:59", "%Y-%m-%d %H:%M:%S")
                .ok(),
        };
        assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
        let no_receiver = Frame {
            receiver: None,
            ..f.clone()
        };
        assert_eq!(Frame::decode(&no_receiver.encode()).unwrap(), no_receiver);
    }

    #[test]
    fn garbage_never_panics_and_is_refused() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..20_000 {
            let mut bytes = CAPTURED.to_vec();
            match rng.random_range(0..3) {
                0 => {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] = rng.random();
                }
                1 => bytes.truncate(rng.random_range(0..bytes.len())),
                _ => {
                    let n = rng.random_range(0..64);
                    bytes = (0..n).map(|_| rng.random()).collect();
                }
            }
            if let Ok(f) = Frame::decode(&bytes) {
                // Whatever decodes must encode to something that decodes the same.
                assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
            }
        }
        assert!(Frame::decode(&vec![b'\n'; 2000]).is_err());
    }
}
