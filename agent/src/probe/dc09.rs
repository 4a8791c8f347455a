//! DC-09 link test: the agent acts as a transmitter and sends a `NULL` supervision frame
//! to the alarm receiving centre. An `ACK` for that very frame means the alarm path to
//! the police is up; `NAK`, `DUH`, a refused connection or silence means it is down.
//!
//! With an AES key the frame goes out encrypted (`*NULL`, stamped with the gateway's
//! UTC time) and only an encrypted `*ACK` that opens with the same key counts.

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

use campuswatch_protocol::CauseCode;
use campuswatch_service::{Invalid, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::settings::{ProbedDevice, Transport};
use super::tcp::connect_cause;
use super::{Cause, Probe, ProbeFuture, ProbeResult};
use crate::dc09::{AesKey, Frame, MAX_FRAME_BYTES};
use crate::supervision::Category;

/// Sends supervision frames to `target`.
pub struct Dc09Probe {
    target: String,
    transport: Transport,
    /// The frame sent, but for its sequence number.
    template: Frame,
    /// Sequence numbers run 0001 to 9999 and wrap, as receivers expect.
    seq: AtomicU16,
    /// Set: frames are encrypted with it.
    key: Option<AesKey>,
}

impl Dc09Probe {
    pub fn new(target: String, transport: Transport, template: Frame) -> Self {
        Self {
            target,
            transport,
            template,
            seq: AtomicU16::new(0),
            key: None,
        }
    }

    /// The same probe, sending its frames encrypted with `key`.
    pub fn with_key(self, key: AesKey) -> Self {
        Self {
            key: Some(key),
            ..self
        }
    }

    fn next_frame(&self) -> Frame {
        let seq = self
            .seq
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(if s >= 9999 { 1 } else { s + 1 })
            })
            .map_or(1, |prev| if prev >= 9999 { 1 } else { prev + 1 });
        Frame {
            seq,
            ..self.template.clone()
        }
    }

    /// The frame as it goes on the wire: sealed when there is a key.
    fn wire(&self, frame: &Frame) -> Result<Vec<u8>, Cause> {
        let Some(key) = &self.key else {
            return Ok(frame.encode());
        };
        let stamped = Frame {
            timestamp: Some(chrono::Utc::now().naive_utc()),
            ..frame.clone()
        };
        stamped
            .encrypt(key, &mut rand::rng())
            .map(|f| f.encode())
            .map_err(|e| coded("encrypt", format!("DC-09: cannot encrypt the frame ({e})")))
    }

    async fn exchange(&self, frame: &Frame) -> Result<Vec<u8>, Cause> {
        let wire = self.wire(frame)?;
        match self.transport {
            Transport::Tcp => {
                let mut stream = TcpStream::connect(&self.target)
                    .await
                    .map_err(|e| connect_cause(&e))?;
                stream
                    .write_all(&wire)
                    .await
                    .map_err(|e| coded("send", format!("sending the frame failed: {e}")))?;
                let mut answer = Vec::with_capacity(64);
                let mut buf = [0u8; 256];
                // An answer is one frame, ending in CR.
                while !answer.ends_with(b"\r") {
                    let n = stream
                        .read(&mut buf)
                        .await
                        .map_err(|e| coded("read", format!("reading the answer failed: {e}")))?;
                    if n == 0 {
                        return Err(coded(
                            "closed",
                            "the receiver closed the connection without answering",
                        ));
                    }
                    answer.extend_from_slice(&buf[..n]);
                    if answer.len() > MAX_FRAME_BYTES {
                        return Err(coded(
                            "bad_answer",
                            "the receiver's answer is not a DC-09 frame (too long)",
                        ));
                    }
                }
                Ok(answer)
            }
            Transport::Udp => {
                let socket = super::connected_udp(&self.target).await?;
                socket
                    .send(&wire)
                    .await
                    .map_err(|e| coded("send", format!("sending the frame failed: {e}")))?;
                let mut buf = vec![0u8; MAX_FRAME_BYTES];
                let n = socket.recv(&mut buf).await.map_err(|e| connect_cause(&e))?;
                buf.truncate(n);
                Ok(buf)
            }
        }
    }
}

impl Probe for Dc09Probe {
    fn kind(&self) -> &'static str {
        "dc09"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let started = Instant::now();
            let frame = self.next_frame();
            let answer = match self.exchange(&frame).await {
                Ok(a) => a,
                Err(cause) => return ProbeResult::fail(started.elapsed(), cause),
            };
            let elapsed = started.elapsed();
            judge(&frame, &answer, self.key.as_ref(), elapsed)
        })
    }
}

/// What the receiver's answer means for the alarm link; `key` is set when the frame
/// went out encrypted.
pub(crate) fn judge(
    sent: &Frame,
    answer: &[u8],
    key: Option<&AesKey>,
    elapsed: std::time::Duration,
) -> ProbeResult {
    let answer = match Frame::decode(answer) {
        Ok(f) => f,
        Err(e) => {
            return ProbeResult::fail(
                elapsed,
                coded(
                    "bad_answer",
                    format!("DC-09: the receiver's answer is not a valid frame ({e})"),
                ),
            )
        }
    };
    // A NAK names no frame (the standard's NAK carries sequence 0000): it answers ours.
    if answer.id == "NAK" {
        return ProbeResult::fail(
            elapsed,
            if key.is_some() {
                Cause::new(CauseCode::new("dc09.nak").with("encrypted", 1u16),
                "DC-09 NAK: the receiver rejected the encrypted frame — check the AES key and the gateway's clock")
            } else {
                coded("nak", "DC-09 NAK: the receiver refused the frame (check the gateway's clock and the account)")
            },
        );
    }
    if answer.seq != sent.seq {
        return ProbeResult::fail(
            elapsed,
            Cause::new(
                CauseCode::new("dc09.wrong_sequence")
                    .with("got", u32::from(answer.seq))
                    .with("expected", u32::from(sent.seq)),
                format!(
                    "DC-09: the answer is for frame {:04}, not {:04}",
                    answer.seq, sent.seq
                ),
            ),
        );
    }
    let answer = match (key, answer.encrypted) {
        (Some(key), true) => match answer.decrypt(key) {
            Ok(clear) => clear,
            Err(e) => {
                return ProbeResult::fail(
                    elapsed,
                    coded("wrong_key", format!("DC-09: the receiver's encrypted {} does not open with our AES key ({e}) — check that the gateway and the centre use the same key", answer.id)),
                )
            }
        },
        (Some(_), false) if answer.id == "ACK" => {
            return ProbeResult::fail(
                elapsed,
                coded("clear_ack", "DC-09: the receiver answered an encrypted frame with an ACK in clear — it is not set up for encryption on this account (check the key at the centre)"),
            )
        }
        (None, true) => {
            return ProbeResult::fail(
                elapsed,
                coded("key_needed", format!("DC-09: the receiver answered encrypted (*{}) — set the account's AES key", answer.id)),
            )
        }
        _ => answer,
    };
    match answer.id.as_str() {
        "ACK" => ProbeResult::ok(elapsed),
        "DUH" => ProbeResult::fail(
            elapsed,
            coded("duh", "DC-09 DUH: the receiver did not understand the frame (check account, prefix and receiver number)"),
        ),
        other => ProbeResult::fail(
            elapsed,
            Cause::new(
                CauseCode::new("dc09.unexpected_answer").with("got", other),
                format!("DC-09: unexpected answer {other:?} instead of ACK"),
            ),
        ),
    }
}

/// A cause of code `dc09.{code}`.
pub(crate) fn coded(code: &str, text: impl Into<String>) -> Cause {
    Cause::new(CauseCode::new(format!("dc09.{code}")), text)
}

/// A dc09 probe's keys. An explicit device `interval` must let a failed path be reported
/// within the supervision category's reporting time.
pub(crate) fn check_settings(
    target: &str,
    account: &str,
    prefix: &str,
    receiver: Option<&str>,
    key: Option<&Secret>,
    supervision: Option<Category>,
    device: &ProbedDevice<'_>,
) -> Result<(), Invalid> {
    super::tcp::check_target(target)?;
    check_key(key, device)?;
    if let (Some(c), Some(interval)) = (supervision, device.interval) {
        let detected = Category::detection_time(interval, device.down_after, device.timeout);
        if detected > c.reporting_time() {
            return Err(Invalid::new(
                "interval",
                format!(
                    "with this interval a failed alarm path is reported after up to {} \
                     (down_after {} probes plus the timeout), later than the {} \
                     reporting time of {}; leave interval unset to derive it from the \
                     category",
                    humantime::format_duration(detected),
                    device.down_after,
                    c,
                    humantime::format_duration(c.reporting_time())
                ),
            ));
        }
    }
    if !valid_account(account) {
        return Err(Invalid::new(
            "probe.account",
            format!("{account:?}: 1 to 16 printable characters, as the receiving centre knows this campus"),
        ));
    }
    if !is_hex_1_to_6(prefix) {
        return Err(Invalid::new(
            "probe.prefix",
            format!("{prefix:?} is not 1 to 6 hex digits"),
        ));
    }
    if let Some(r) = receiver.filter(|r| !is_hex_1_to_6(r)) {
        return Err(Invalid::new(
            "probe.receiver",
            format!("{r:?} is not 1 to 6 hex digits"),
        ));
    }
    Ok(())
}

/// `probe.key` of a dc09 or dc09_listen probe: an AES key as hex. The message names the
/// device and what is wrong, never the key itself.
pub(crate) fn check_key(key: Option<&Secret>, device: &ProbedDevice<'_>) -> Result<(), Invalid> {
    let Some(k) = key else {
        return Ok(());
    };
    if let Err(e) = AesKey::from_hex(k.expose()) {
        let hint = if matches!(k.expose().trim().len(), 16 | 24 | 32) {
            "; a key given as 16, 24 or 32 characters is written here as the hex of those characters (docs/configuration.md)"
        } else {
            ""
        };
        return Err(Invalid::new(
            "probe.key",
            format!("device {:?}: the AES key {e}{hint}", device.id),
        ));
    }
    Ok(())
}

/// DC-09 account ids as real panels send them: printable, not necessarily hex.
pub(crate) fn valid_account(s: &str) -> bool {
    (1..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic() && b != b'[')
}

fn is_hex_1_to_6(s: &str) -> bool {
    (1..=6).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbeStatus;

    fn template() -> Frame {
        Frame::null(0, Some("0"), "0", "XTRM189")
    }

    #[test]
    fn sequence_numbers_run_from_one_to_9999_and_wrap() {
        let p = Dc09Probe::new("x:1".into(), Transport::Tcp, template());
        assert_eq!(p.next_frame().seq, 1);
        assert_eq!(p.next_frame().seq, 2);
        p.seq.store(9998, Ordering::Relaxed);
        assert_eq!(p.next_frame().seq, 9999);
        assert_eq!(p.next_frame().seq, 1);
    }

    #[test]
    fn an_ack_for_the_frame_is_up_and_anything_else_is_down_with_a_reason() {
        let sent = Frame {
            seq: 7,
            ..template()
        };
        let now = chrono::NaiveDateTime::default();
        let d = std::time::Duration::from_millis(3);
        assert_eq!(
            judge(&sent, &sent.ack(now).encode(), None, d).status,
            ProbeStatus::Ok
        );
        let nak = Frame {
            id: "NAK".into(),
            ..sent.ack(now)
        };
        let r = judge(&sent, &nak.encode(), None, d);
        assert!(r.cause.unwrap().starts_with("DC-09 NAK"));
        let duh = Frame {
            id: "DUH".into(),
            ..sent.ack(now)
        };
        assert!(judge(&sent, &duh.encode(), None, d)
            .cause
            .unwrap()
            .contains("DUH"));
        let other_seq = Frame {
            seq: 8,
            ..sent.ack(now)
        };
        assert_eq!(
            judge(&sent, &other_seq.encode(), None, d).status,
            ProbeStatus::Fail
        );
        assert!(judge(&sent, b"garbage", None, d)
            .cause
            .unwrap()
            .contains("not a valid frame"));
        // The standard's NAK names frame 0000 and no account: still a NAK for our frame.
        let r = judge(&sent, &Frame::nak(now).encode(), None, d);
        assert!(r.cause.unwrap().starts_with("DC-09 NAK"));
    }

    #[test]
    fn an_unexpected_answer_of_any_length_gives_a_code_a_server_accepts() {
        // Found by the dc09_answer fuzz target: the id of the answer went into the code's
        // parameter whole, and a server refuses an event whose parameter is too long.
        let sent = Frame {
            seq: 7,
            ..template()
        };
        let long = Frame {
            id: "A".repeat(150),
            ..sent.ack(chrono::NaiveDateTime::default())
        };
        let r = judge(&sent, &long.encode(), None, std::time::Duration::ZERO);
        assert_eq!(r.status, ProbeStatus::Fail);
        let code = r.cause_code.unwrap();
        assert_eq!(code.code, "dc09.unexpected_answer");
        assert_eq!(code.validate(), Ok(()));
    }

    fn key(hex_digit: char) -> AesKey {
        AesKey::from_hex(&hex_digit.to_string().repeat(32)).unwrap()
    }

    #[test]
    fn with_a_key_frames_go_out_encrypted_and_stamped() {
        let p = Dc09Probe::new("x:1".into(), Transport::Tcp, template()).with_key(key('7'));
        let frame = p.next_frame();
        let wire = p.wire(&frame).unwrap();
        let sealed = Frame::decode(&wire).unwrap();
        assert!(sealed.encrypted);
        assert!(String::from_utf8_lossy(&wire).contains("\"*NULL\"0001R0L0#XTRM189["));
        let clear = sealed.decrypt(&key('7')).unwrap();
        let at = clear.timestamp.expect("encrypted frames carry the time");
        let skew = (chrono::Utc::now().naive_utc() - at).num_seconds().abs();
        assert!(skew <= 2);
    }

    #[test]
    fn with_a_key_only_an_encrypted_ack_that_opens_is_up() {
        let sent = Frame {
            seq: 7,
            ..template()
        };
        let now = chrono::Utc::now().naive_utc();
        let d = std::time::Duration::from_millis(3);
        let ours = key('7');
        let mut rng = rand::rng();
        let sealed_ack = sent.ack(now).encrypt(&ours, &mut rng).unwrap().encode();
        assert_eq!(
            judge(&sent, &sealed_ack, Some(&ours), d).status,
            ProbeStatus::Ok
        );

        let cause = |answer: &[u8]| judge(&sent, answer, Some(&ours), d).cause.unwrap();
        let other_key = sent.ack(now).encrypt(&key('8'), &mut rng).unwrap().encode();
        assert!(cause(&other_key).contains("does not open with our AES key"));
        assert!(cause(&sent.ack(now).encode()).contains("ACK in clear"));
        assert_eq!(
            cause(&Frame::nak(now).encode()),
            "DC-09 NAK: the receiver rejected the encrypted frame — check the AES key and the gateway's clock"
        );
        // Without a key, an encrypted answer says what to set.
        let r = judge(&sent, &sealed_ack, None, d);
        assert!(r.cause.unwrap().contains("set the account's AES key"));
    }
}
