//! Cause codes: why a device is down or degraded, as a stable code with parameters
//! (`tcp.refused`, `http.status{got, expected}`), so a console can say it in the
//! operator's language. Schema version 4 carries one next to the free-text `cause`,
//! which stays for people reading a log and for servers that know no codes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The schema version in which cause codes appeared.
pub const CAUSE_CODE_SCHEMA_VERSION: u32 = 4;
/// Longest code, in bytes.
pub const MAX_CODE_BYTES: usize = 64;
/// Most parameters one cause carries.
pub const MAX_CAUSE_PARAMS: usize = 8;
/// Longest text parameter, in bytes.
pub const MAX_PARAM_BYTES: usize = 128;

/// A cause as a code and its parameters. Codes are dot-separated lower-case words: the
/// probe or part that judged (`tcp`, `rtsp`, `dc09`, `gateway`, `campus`), then what it
/// found. `docs/PROTOCOL.md` §4.1 lists the codes and their parameters; a reader that does
/// not know a code shows the free-text cause instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CauseCode {
    pub code: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, CauseParam>,
}

/// One parameter's value: a number (a status, a count, milliseconds) or a short text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CauseParam {
    Number(serde_json::Number),
    Text(String),
}

impl CauseCode {
    /// A code without parameters.
    pub fn new(code: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            params: BTreeMap::new(),
        }
    }

    /// The same code with one more parameter.
    pub fn with(mut self, name: &str, value: impl Into<CauseParam>) -> Self {
        self.params.insert(name.to_string(), value.into());
        self
    }

    /// The probe or part that judged: the code's first word.
    pub fn source(&self) -> &str {
        self.code.split('.').next().unwrap_or_default()
    }

    /// Checks the bounds of the code and its parameters; the error says which is broken.
    pub fn validate(&self) -> Result<(), String> {
        let word = |w: &str| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if self.code.len() > MAX_CODE_BYTES || !self.code.split('.').all(word) {
            return Err(format!(
                "cause_code.code must be dot-separated words of a-z, 0-9 and _, at most {MAX_CODE_BYTES} bytes"
            ));
        }
        if self.params.len() > MAX_CAUSE_PARAMS {
            return Err(format!(
                "cause_code.params must have at most {MAX_CAUSE_PARAMS} entries"
            ));
        }
        for (name, value) in &self.params {
            if name.len() > 32 || !word(name) {
                return Err(
                    "cause_code.params names must be 1 to 32 bytes of a-z, 0-9 and _".into(),
                );
            }
            if let CauseParam::Text(t) = value {
                if t.len() > MAX_PARAM_BYTES || t.chars().any(char::is_control) {
                    return Err(format!(
                        "cause_code.params.{name} must be at most {MAX_PARAM_BYTES} bytes without control characters"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for CauseCode {
    /// `http.status{expected=200,got=404}`: the form logs and CSVs use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)?;
        if self.params.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (name, value)) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match value {
                CauseParam::Number(n) => write!(f, "{name}={n}")?,
                CauseParam::Text(t) => write!(f, "{name}={t}")?,
            }
        }
        f.write_str("}")
    }
}

/// A text parameter is kept within the protocol's bounds, whatever a device said: control
/// characters become spaces and the text is cut to [`MAX_PARAM_BYTES`] (at a character
/// boundary), so a code the agent makes never gets its message refused.
impl From<&str> for CauseParam {
    fn from(s: &str) -> Self {
        let mut text: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut end = text.len().min(MAX_PARAM_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        CauseParam::Text(text)
    }
}

impl From<String> for CauseParam {
    fn from(s: String) -> Self {
        s.as_str().into()
    }
}

macro_rules! integer_params {
    ($($t:ty),*) => {$(
        impl From<$t> for CauseParam {
            fn from(n: $t) -> Self {
                CauseParam::Number(n.into())
            }
        }
    )*};
}
integer_params!(u16, u32, u64, i64, usize);

impl From<f64> for CauseParam {
    /// Rounded to 0.1 (a frame rate, a drift in seconds); a value that is not finite
    /// becomes its text.
    fn from(x: f64) -> Self {
        serde_json::Number::from_f64((x * 10.0).round() / 10.0)
            .map(CauseParam::Number)
            .unwrap_or_else(|| CauseParam::Text(x.to_string()))
    }
}

/// Every code campuswatch writes, with its parameters: the agent's probes, then the
/// server's own judgements. Any probe's `{probe}.failed` and `{probe}.degraded` are the
/// fallback of a cause without a more precise code. A flapping device's code carries
/// the parameter `flapping` (state changes in the window) besides its own.
pub const CODES: &[(&str, &[&str])] = &[
    ("tcp.refused", &[]),
    ("tcp.unreachable", &[]),
    ("tcp.network_unreachable", &[]),
    ("tcp.timeout", &[]),
    ("tcp.reset", &[]),
    ("tcp.address", &[]),
    ("tcp.resolve", &[]),
    ("tcp.error", &[]),
    ("probe.timeout", &["ms"]),
    ("http.status", &["got", "expected"]),
    ("http.body_mismatch", &["expected"]),
    ("http.unauthorized", &[]),
    ("http.tls", &[]),
    ("http.connect", &[]),
    ("http.read", &[]),
    ("http.request", &[]),
    ("rtsp.unauthorized", &[]),
    ("rtsp.forbidden", &[]),
    ("rtsp.not_found", &[]),
    ("rtsp.bandwidth", &[]),
    ("rtsp.transport", &[]),
    ("rtsp.unavailable", &[]),
    ("rtsp.status", &["status", "step"]),
    ("rtsp.credentials_needed", &[]),
    ("rtsp.failed", &["step"]),
    ("rtsp.no_answer", &["step", "ms"]),
    ("rtsp.no_video", &[]),
    ("rtsp.no_frames", &["seconds"]),
    ("rtsp.no_keyframe", &["seconds"]),
    ("rtsp.low_frame_rate", &["fps", "min"]),
    ("rtsp.stream_ended", &[]),
    ("snapshot.too_large", &["mib"]),
    ("snapshot.not_jpeg", &[]),
    ("onvif.fault", &[]),
    ("onvif.unauthorized", &[]),
    ("onvif.bad_answer", &[]),
    ("onvif.clock_drift", &["seconds", "max"]),
    ("dc09.nak", &["encrypted"]),
    ("dc09.duh", &[]),
    ("dc09.wrong_sequence", &["got", "expected"]),
    ("dc09.wrong_key", &[]),
    ("dc09.clear_ack", &[]),
    ("dc09.key_needed", &[]),
    ("dc09.unexpected_answer", &["got"]),
    ("dc09.bad_answer", &[]),
    ("dc09.closed", &[]),
    ("dc09.send", &[]),
    ("dc09.read", &[]),
    ("dc09.encrypt", &[]),
    ("dc09.silent", &["account", "seconds", "window"]),
    ("dc09.never_polled", &["account"]),
    ("sip.closed", &[]),
    ("sip.bad_answer", &[]),
    ("gateway.socket", &[]),
    ("device.flapping", &["flapping"]),
    // The server's own.
    ("gateway.connection_lost", &[]),
    ("gateway.shutdown", &[]),
    ("gateway.no_heartbeat", &["seconds"]),
    (
        "campus.alarm_down",
        &["down", "monitored", "needed", "expected"],
    ),
    (
        "campus.video_down",
        &["down", "monitored", "needed", "expected"],
    ),
    ("link.flapping", &[]),
    // The server's, of GB/T 28181 devices and the video platform's view of a campus.
    ("gb.keepalive_missed", &["seconds"]),
    ("gb.registration_expired", &[]),
    ("gb.unregistered", &[]),
    ("gb.alarm", &["priority", "method", "type"]),
    (
        "campus.platform_video_down",
        &["down", "monitored", "needed", "expected"],
    ),
];

impl CauseCode {
    /// Whether campuswatch writes this code (see [`CODES`]), a probe's fallback included.
    pub fn is_known(&self) -> bool {
        CODES.iter().any(|(c, _)| *c == self.code)
            || self
                .code
                .rsplit_once('.')
                .is_some_and(|(_, what)| what == "failed" || what == "degraded")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_print_with_their_parameters_and_read_back() {
        let c = CauseCode::new("http.status")
            .with("got", 404u16)
            .with("expected", "200");
        assert_eq!(c.to_string(), "http.status{expected=200,got=404}");
        assert_eq!(c.source(), "http");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"code":"http.status","params":{"expected":"200","got":404}}"#
        );
        assert_eq!(serde_json::from_str::<CauseCode>(&json).unwrap(), c);
        assert_eq!(
            CauseParam::from(14.96),
            CauseParam::Number(serde_json::Number::from_f64(15.0).unwrap())
        );
    }

    #[test]
    fn text_parameters_are_cut_to_the_bounds_whatever_they_were() {
        // Found by the dc09_answer fuzz target: a receiver's answer with a 150-character
        // id gave a parameter the server refuses, and with it the whole event.
        let long = "A".repeat(MAX_PARAM_BYTES + 30);
        let code = CauseCode::new("dc09.unexpected_answer").with("got", long.as_str());
        assert_eq!(code.validate(), Ok(()));
        assert_eq!(
            code.params["got"],
            CauseParam::Text("A".repeat(MAX_PARAM_BYTES))
        );
        let chinese = "摄".repeat(MAX_PARAM_BYTES);
        let CauseParam::Text(cut) = CauseParam::from(chinese) else {
            panic!("not a text")
        };
        assert_eq!(cut, "摄".repeat(MAX_PARAM_BYTES / 3));
        assert_eq!(
            CauseParam::from("a\nb\u{7f}c"),
            CauseParam::Text("a b c".into())
        );
        assert_eq!(CauseParam::from("ok"), CauseParam::Text("ok".into()));
    }

    fn raw_text(host: &str) -> CauseCode {
        let mut c = CauseCode::new("tcp.refused");
        c.params
            .insert("host".into(), CauseParam::Text(host.to_string()));
        c
    }

    #[test]
    fn bad_codes_and_parameters_are_refused() {
        let ok = CauseCode::new("rtsp.low_frame_rate").with("fps", 3.2);
        assert!(ok.validate().is_ok());
        for bad in [
            CauseCode::new(""),
            CauseCode::new("Tcp.Refused"),
            CauseCode::new("tcp..refused"),
            CauseCode::new("tcp.refused "),
            CauseCode::new("x".repeat(65)),
            CauseCode::new("tcp.refused").with("Port", 1u16),
            // As a received message may carry them: `with` keeps texts within bounds.
            raw_text("a\nb"),
            raw_text(&"h".repeat(129)),
            (0..9).fold(CauseCode::new("tcp.refused"), |c, i| {
                c.with(&format!("p{i}"), 1u16)
            }),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_garbage_never_panics() {
        // Every byte string of a few shapes either parses and validates, or is refused.
        let pieces = [
            "\"code\":\"a\"",
            "\"code\":1",
            "\"params\":{}",
            "\"params\":{\"a\":null}",
            "\"params\":{\"a\":[1]}",
            "\"params\":{\"a\":1e400}",
            "\"params\":{\"a\":\"\\u0000\"}",
            "\"extra\":true",
        ];
        for mask in 0u32..(1 << pieces.len()) {
            let body: Vec<&str> = pieces
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, p)| *p)
                .collect();
            let json = format!("{{{}}}", body.join(","));
            if let Ok(c) = serde_json::from_str::<CauseCode>(&json) {
                let _ = c.validate();
            }
        }
    }
}
