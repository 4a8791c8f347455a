//! SIP messages as GB/T 28181 devices and platforms send them (RFC 3261 syntax): the
//! start line, headers (with their compact forms), and the body. Read from a UDP
//! datagram (one message) or from a TCP stream (framed by `Content-Length`, which a
//! stream must carry). Every malformed message is an error naming what is wrong, never
//! a panic; sizes are bounded so a device cannot make the server hold more than
//! [`MAX_MESSAGE_BYTES`] for one message.

use std::fmt;

/// The largest message read: a catalog answer of a few hundred channels fits many times.
/// GB/T 28181 devices split large catalogs into several `MESSAGE`s (`SumNum`).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The most header lines a message may have.
pub const MAX_HEADERS: usize = 100;

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    #[error("the message is not UTF-8 text before its body")]
    NotText,
    #[error("no start line")]
    Empty,
    #[error("start line {0:?} is neither a SIP/2.0 request nor a response")]
    StartLine(String),
    #[error("header line {0:?} has no name and colon")]
    Header(String),
    #[error("more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    #[error("the message is larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("Content-Length {0:?} is not a number of bytes")]
    ContentLength(String),
    #[error("Content-Length says {said} bytes but {got} follow")]
    ShortBody { said: usize, got: usize },
    #[error("a message on a stream must carry Content-Length")]
    NoContentLength,
    #[error("the headers do not end with an empty line")]
    Unterminated,
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// One SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    /// Headers in order, names in their full form with the case they were sent in.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The full name of a compact header name (RFC 3261 §7.3.3), else the name itself.
fn full_name(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "e" | "E" => "Content-Encoding",
        "k" | "K" => "Supported",
        "s" | "S" => "Subject",
        other => other,
    }
}

impl Message {
    /// A request with no headers yet.
    pub fn request(method: &str, uri: &str) -> Self {
        Self {
            start: StartLine::Request {
                method: method.into(),
                uri: uri.into(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The method of a request, or that of the `CSeq` of a response.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => self
                .header("CSeq")
                .and_then(|c| c.split_whitespace().nth(1)),
        }
    }

    /// The first value of header `name` (case-insensitive, compact forms read as full).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The answer to this request with `code`: its Via, From, To (with `to_tag` added if
    /// the To has no tag yet), Call-ID and CSeq, as RFC 3261 §8.2.6.2 asks.
    pub fn response(&self, code: u16, reason: &str, to_tag: &str) -> Message {
        let mut r = Message {
            start: StartLine::Response {
                code,
                reason: reason.into(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for via in self.headers_named("Via") {
            r.headers.push(("Via".into(), via.into()));
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = self.header(name) {
                let v = if name == "To" && !v.contains(";tag=") && !to_tag.is_empty() {
                    format!("{v};tag={to_tag}")
                } else {
                    v.to_owned()
                };
                r.headers.push((name.into(), v));
            }
        }
        r
    }

    /// The message on the wire, with `Content-Length` set from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.to_string().into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// The start line and headers, with `Content-Length` and the empty line (no body).
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.start {
            StartLine::Request { method, uri } => write!(f, "{method} {uri} SIP/2.0\r\n")?,
            StartLine::Response { code, reason } => write!(f, "SIP/2.0 {code} {reason}\r\n")?,
        }
        for (n, v) in &self.headers {
            if !n.eq_ignore_ascii_case("Content-Length") {
                write!(f, "{n}: {v}\r\n")?;
            }
        }
        write!(f, "Content-Length: {}\r\n\r\n", self.body.len())
    }
}

/// Where the headers end: the index of the body's first byte.
fn header_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn parse_head(head: &str) -> Result<(StartLine, Vec<(String, String)>), SipError> {
    let mut lines = head.split("\r\n").skip_while(|l| l.is_empty());
    let first = lines
        .next()
        .filter(|l| !l.is_empty())
        .ok_or(SipError::Empty)?;
    let start = parse_start(first)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            // A folded line continues the header before it.
            let (_, value) = headers
                .last_mut()
                .ok_or_else(|| SipError::Header(line.chars().take(80).collect()))?;
            value.push(' ');
            value.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(n, _)| !n.trim().is_empty() && !n.trim().contains(char::is_whitespace))
            .ok_or_else(|| SipError::Header(line.chars().take(80).collect()))?;
        if headers.len() == MAX_HEADERS {
            return Err(SipError::TooManyHeaders);
        }
        headers.push((full_name(name.trim()).to_owned(), value.trim().to_owned()));
    }
    Ok((start, headers))
}

fn parse_start(line: &str) -> Result<StartLine, SipError> {
    let bad = || SipError::StartLine(line.chars().take(80).collect());
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().map_err(|_| bad())?;
        if !(100..=699).contains(&code) {
            return Err(bad());
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_owned(),
        });
    }
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(uri), Some("SIP/2.0"), None)
            if !method.is_empty()
                && method.bytes().all(|b| b.is_ascii_alphabetic())
                && !uri.is_empty() =>
        {
            Ok(StartLine::Request {
                method: method.to_owned(),
                uri: uri.to_owned(),
            })
        }
        _ => Err(bad()),
    }
}

fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, SipError> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| {
            v.parse::<usize>()
                .map_err(|_| SipError::ContentLength(v.chars().take(20).collect()))
        })
        .transpose()
}

fn parse_at(bytes: &[u8], end: usize) -> Result<(StartLine, Vec<(String, String)>), SipError> {
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| SipError::NotText)?;
    parse_head(head)
}

/// One message from a UDP datagram. Without `Content-Length` the body is the rest of the
/// datagram (RFC 3261 §18.3); with it, bytes after the body are ignored.
pub fn parse_datagram(bytes: &[u8]) -> Result<Message, SipError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(SipError::TooLarge);
    }
    let end = header_end(bytes).ok_or(SipError::Unterminated)?;
    let (start, headers) = parse_at(bytes, end)?;
    let rest = &bytes[end..];
    let body = match content_length(&headers)? {
        Some(said) if said > rest.len() => {
            return Err(SipError::ShortBody {
                said,
                got: rest.len(),
            })
        }
        Some(said) => rest[..said].to_vec(),
        None => rest.to_vec(),
    };
    Ok(Message {
        start,
        headers,
        body,
    })
}

/// The next whole message at the front of `buf`, a TCP stream's unread bytes, removed
/// from it; `Ok(None)` while more bytes are needed. Keep-alive blank lines between
/// messages are skipped. An error means the stream cannot be read further.
pub fn next_in_stream(buf: &mut Vec<u8>) -> Result<Option<Message>, SipError> {
    let blank = buf
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(buf.len());
    buf.drain(..blank);
    let Some(end) = header_end(buf) else {
        return if buf.len() > MAX_MESSAGE_BYTES {
            Err(SipError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let (start, headers) = parse_at(buf, end)?;
    let said = content_length(&headers)?.ok_or(SipError::NoContentLength)?;
    if end + said > MAX_MESSAGE_BYTES {
        return Err(SipError::TooLarge);
    }
    if buf.len() < end + said {
        return Ok(None);
    }
    let body = buf[end..end + said].to_vec();
    buf.drain(..end + said);
    Ok(Some(Message {
        start,
        headers,
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A REGISTER as GB/T 28181-2016 §9.1 (annex) shows one, with its compact headers.
    const REGISTER: &str = "REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1371463273\r\n\
        f: <sip:34020000001320000001@3402000000>;tag=2043466181\r\n\
        To: <sip:34020000001320000001@3402000000>\r\n\
        i: 1011047669\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n\
        Max-Forwards: 70\r\n\
        User-Agent: IP Camera\r\n\
        Expires: 3600\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn a_register_reads_with_compact_headers_and_is_answered_with_its_dialog_headers() {
        let m = parse_datagram(REGISTER.as_bytes()).unwrap();
        assert_eq!(m.method(), Some("REGISTER"));
        assert_eq!(
            m.header("from"),
            Some("<sip:34020000001320000001@3402000000>;tag=2043466181")
        );
        assert_eq!(m.header("Call-ID"), Some("1011047669"));
        assert_eq!(m.header("Expires"), Some("3600"));
        let r = m.response(401, "Unauthorized", "cw1");
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(text.starts_with("SIP/2.0 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("To: <sip:34020000001320000001@3402000000>;tag=cw1\r\n"));
        assert!(text.contains("CSeq: 1 REGISTER\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let back = parse_datagram(&r.to_bytes()).unwrap();
        assert_eq!(back.method(), Some("REGISTER"));
        assert_eq!(
            back.start,
            StartLine::Response {
                code: 401,
                reason: "Unauthorized".into()
            }
        );
    }

    #[test]
    fn a_stream_is_framed_by_content_length_across_reads() {
        let body = "<?xml version=\"1.0\"?><Notify><CmdType>Keepalive</CmdType></Notify>";
        let msg = Message::request("MESSAGE", "sip:34020000002000000001@3402000000")
            .with("CSeq", "20 MESSAGE")
            .with("Content-Type", "Application/MANSCDP+xml");
        let mut one = msg.clone();
        one.body = body.as_bytes().to_vec();
        let mut wire = b"\r\n\r\n".to_vec(); // keep-alive blank lines first
        wire.extend(one.to_bytes());
        wire.extend(REGISTER.as_bytes());
        let mut buf = Vec::new();
        let mut got = Vec::new();
        // Fed a few bytes at a time, as a slow stream delivers them.
        for chunk in wire.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(m) = next_in_stream(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].body, body.as_bytes());
        assert_eq!(got[1].method(), Some("REGISTER"));
        assert!(buf.is_empty());
    }

    #[test]
    fn malformed_messages_are_errors_that_say_what_is_wrong() {
        let cases: [(&[u8], SipError); 6] = [
            (b"\r\n\r\n", SipError::Empty),
            (b"HELLO\r\n\r\n", SipError::StartLine("HELLO".into())),
            (
                b"SIP/2.0 99 x\r\n\r\n",
                SipError::StartLine("SIP/2.0 99 x".into()),
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\nno colon here\r\n\r\n",
                SipError::Header("no colon here".into()),
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nabc",
                SipError::ShortBody { said: 10, got: 3 },
            ),
            (b"OPTIONS sip:a SIP/2.0\r\n", SipError::Unterminated),
        ];
        for (bytes, want) in cases {
            assert_eq!(parse_datagram(bytes).unwrap_err(), want);
        }
        let mut buf = b"MESSAGE sip:a SIP/2.0\r\nCSeq: 1 MESSAGE\r\n\r\n".to_vec();
        assert_eq!(
            next_in_stream(&mut buf).unwrap_err(),
            SipError::NoContentLength
        );
        let mut buf = b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n".to_vec();
        assert_eq!(next_in_stream(&mut buf).unwrap_err(), SipError::TooLarge);
        let mut buf = vec![b'a'; MAX_MESSAGE_BYTES + 1];
        assert_eq!(next_in_stream(&mut buf).unwrap_err(), SipError::TooLarge);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        let text = format!("OPTIONS sip:a SIP/2.0\r\n{many}\r\n");
        assert_eq!(
            parse_datagram(text.as_bytes()).unwrap_err(),
            SipError::TooManyHeaders
        );
    }

    #[test]
    fn generated_garbage_and_every_truncation_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(28181);
        let valid = REGISTER.as_bytes();
        for cut in 0..valid.len() {
            let _ = parse_datagram(&valid[..cut]);
            let mut buf = valid[..cut].to_vec();
            assert_eq!(
                next_in_stream(&mut buf),
                Ok(None),
                "a prefix of {cut} bytes waits"
            );
        }
        let alphabet = b"SIP/2.0 REGISTER:;=<>@\r\n\t 0123456789abcdef\xff\xc3";
        for _ in 0..5000 {
            let len = rng.random_range(0..300);
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            if rng.random_bool(0.5) {
                let at = rng.random_range(0..=valid.len());
                bytes.splice(0..0, valid[..at].iter().copied());
            }
            let _ = parse_datagram(&bytes);
            let mut buf = bytes.clone();
            while let Ok(Some(_)) = next_in_stream(&mut buf) {}
        }
    }
}
