//! SIP OPTIONS probe for SIP alarm intercoms and help points: the device is reachable
//! when its SIP stack gives any final response (2xx–6xx) to an OPTIONS request; a 401 or
//! 404 still proves the link. The response code and the latency are reported.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use campuswatch_protocol::CauseCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::settings::Transport;
use super::tcp::connect_cause;
use super::{Cause, Probe, ProbeFuture, ProbeResult};

/// Largest SIP response read.
const MAX_RESPONSE_BYTES: usize = 8 * 1024;

pub struct SipProbe {
    target: String,
    transport: Transport,
    cseq: AtomicU32,
}

impl SipProbe {
    pub fn new(target: String, transport: Transport) -> Self {
        Self {
            target,
            transport,
            cseq: AtomicU32::new(0),
        }
    }

    fn request(&self, local: SocketAddr, call_id: &str, cseq: u32) -> String {
        let proto = match self.transport {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        };
        let tag: u32 = rand::random();
        let branch: u64 = rand::random();
        format!(
            "OPTIONS sip:{target} SIP/2.0\r\n\
             Via: SIP/2.0/{proto} {local};branch=z9hG4bK{branch:x};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:campuswatch@{ip}>;tag={tag:x}\r\n\
             To: <sip:{target}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} OPTIONS\r\n\
             Contact: <sip:campuswatch@{local}>\r\n\
             Accept: application/sdp\r\n\
             User-Agent: campuswatch-agent/{version}\r\n\
             Content-Length: 0\r\n\r\n",
            target = self.target,
            ip = local.ip(),
            version = env!("CARGO_PKG_VERSION"),
        )
    }

    async fn exchange(&self) -> Result<u16, Cause> {
        let cseq = self.cseq.fetch_add(1, Ordering::Relaxed) + 1;
        let call_id = format!("{:x}@campuswatch", rand::random::<u64>());
        match self.transport {
            Transport::Udp => {
                let socket = super::connected_udp(&self.target).await?;
                let local = socket
                    .local_addr()
                    .map_err(|e| Cause::from(format!("no local address: {e}")))?;
                let req = self.request(local, &call_id, cseq);
                socket
                    .send(req.as_bytes())
                    .await
                    .map_err(|e| connect_cause(&e))?;
                let mut buf = vec![0u8; MAX_RESPONSE_BYTES];
                loop {
                    let n = socket.recv(&mut buf).await.map_err(|e| connect_cause(&e))?;
                    // Provisional (1xx) answers and strays are skipped; the timeout
                    // around the probe bounds the wait.
                    if let Some(code) = final_status(&buf[..n], &call_id).map_err(bad_answer)? {
                        return Ok(code);
                    }
                }
            }
            Transport::Tcp => {
                let mut stream = TcpStream::connect(&self.target)
                    .await
                    .map_err(|e| connect_cause(&e))?;
                let local = stream
                    .local_addr()
                    .map_err(|e| Cause::from(format!("no local address: {e}")))?;
                let req = self.request(local, &call_id, cseq);
                stream
                    .write_all(req.as_bytes())
                    .await
                    .map_err(|e| Cause::from(format!("sending the request failed: {e}")))?;
                let mut data = Vec::with_capacity(512);
                let mut buf = [0u8; 1024];
                loop {
                    let n = stream
                        .read(&mut buf)
                        .await
                        .map_err(|e| Cause::from(format!("reading the response failed: {e}")))?;
                    if n == 0 {
                        return Err(Cause::new(
                            CauseCode::new("sip.closed"),
                            "the device closed the connection without a SIP response",
                        ));
                    }
                    data.extend_from_slice(&buf[..n]);
                    // Responses on a stream are delimited by the blank line (OPTIONS
                    // answers may carry a body, which is not needed here).
                    while let Some(end) = find(&data, b"\r\n\r\n") {
                        let message: Vec<u8> = data.drain(..end + 4).collect();
                        if let Some(code) = final_status(&message, &call_id).map_err(bad_answer)? {
                            return Ok(code);
                        }
                    }
                    if data.len() > MAX_RESPONSE_BYTES {
                        return Err(bad_answer(
                            "the device's answer is not a SIP response (too long)".into(),
                        ));
                    }
                }
            }
        }
    }
}

fn bad_answer(text: String) -> Cause {
    Cause::new(CauseCode::new("sip.bad_answer"), text)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status code of a final response to our request; `None` for a provisional one or
/// a response to another call.
pub(crate) fn final_status(message: &[u8], call_id: &str) -> Result<Option<u16>, String> {
    let text = String::from_utf8_lossy(message);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some("SIP/2.0"), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "the device's answer is not a SIP response ({:?})",
            status_line.chars().take(60).collect::<String>()
        ));
    };
    let code: u16 = code
        .parse()
        .ok()
        .filter(|c| (100..700).contains(c))
        .ok_or_else(|| format!("invalid SIP status {code:?}"))?;
    let ours = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .any(|(name, value)| {
            let name = name.trim();
            (name.eq_ignore_ascii_case("call-id") || name == "i") && value.trim() == call_id
        });
    if !ours || code < 200 {
        return Ok(None);
    }
    Ok(Some(code))
}

impl Probe for SipProbe {
    fn kind(&self) -> &'static str {
        "sip"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let started = Instant::now();
            match self.exchange().await {
                Ok(code) => {
                    let mut r = ProbeResult::ok(started.elapsed());
                    r.measurements.insert("sip_status".into(), f64::from(code));
                    r
                }
                Err(cause) => ProbeResult::fail(started.elapsed(), cause.prefixed("SIP")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_final_response_to_our_call_counts() {
        let ok = b"SIP/2.0 200 OK\r\nCall-ID: abc@x\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(final_status(ok, "abc@x"), Ok(Some(200)));
        let compact = b"SIP/2.0 404 Not Found\r\ni: abc@x\r\n\r\n";
        assert_eq!(final_status(compact, "abc@x"), Ok(Some(404)));
        let trying = b"SIP/2.0 100 Trying\r\nCall-ID: abc@x\r\n\r\n";
        assert_eq!(final_status(trying, "abc@x"), Ok(None));
        assert_eq!(final_status(ok, "other@x"), Ok(None));
        assert!(final_status(b"HTTP/1.1 200 OK\r\n\r\n", "abc@x").is_err());
        assert!(final_status(b"SIP/2.0 99x Bad\r\n\r\n", "abc@x").is_err());
        assert!(final_status(&[0xff; 40], "abc@x").is_err());
    }

    #[test]
    fn mangled_answers_never_panic_and_give_only_real_status_codes() {
        let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\nCall-ID: abc@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        for m in crate::mutants::mutants(ok, 11, 20_000) {
            if let Ok(Some(code)) = final_status(&m, "abc@x") {
                assert!((200..=699).contains(&code), "{code}");
            }
        }
    }
}
