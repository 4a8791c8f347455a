//! HTTP probe: GET a status URL of a camera or device; up when the status is one of
//! `expect_status` (any 200–399 when unset) and, if asked, the body contains a text.
//! Reports `http_status` and `latency_ms`.

use std::error::Error as _;
use std::time::{Duration, Instant};

use campuswatch_service::Invalid;

use campuswatch_protocol::CauseCode;

use super::{tcp::connect_cause, Cause, Probe, ProbeFuture, ProbeResult, ProbeSetupError};

/// Most of a body read when looking for `body_contains`: status pages are small, and a
/// camera that streams video on that URL must not keep the probe reading forever.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// GETs a URL.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    url: String,
    expect_status: Vec<u16>,
    body_contains: Option<String>,
    timeout: Duration,
    client: reqwest::Client,
}

impl HttpProbe {
    pub fn new(
        url: String,
        expect_status: Vec<u16>,
        body_contains: Option<String>,
        insecure_tls: bool,
        timeout: Duration,
    ) -> Result<Self, ProbeSetupError> {
        let client = client_for("http", &url, insecure_tls)?;
        Ok(Self {
            url,
            expect_status,
            body_contains: body_contains.filter(|s| !s.is_empty()),
            timeout,
            client,
        })
    }

    fn status_ok(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..=399).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }

    fn expected(&self) -> String {
        if self.expect_status.is_empty() {
            "200-399".into()
        } else {
            self.expect_status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    async fn run(&self) -> ProbeResult {
        let started = Instant::now();
        let request = self.client.get(&self.url).timeout(self.timeout);
        let mut resp = match request.send().await {
            Ok(r) => r,
            Err(e) => return ProbeResult::fail(started.elapsed(), self.cause(&e)),
        };
        let status = resp.status().as_u16();
        let mut result = if !self.status_ok(status) {
            ProbeResult::fail(
                started.elapsed(),
                Cause::new(
                    CauseCode::new("http.status")
                        .with("got", status)
                        .with("expected", self.expected()),
                    format!("HTTP status {status} (expected {})", self.expected()),
                ),
            )
        } else if let Some(needle) = &self.body_contains {
            let mut body = Vec::new();
            let found = loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        body.extend_from_slice(&chunk);
                        if contains(&body, needle.as_bytes()) {
                            break Ok(true);
                        }
                        if body.len() >= MAX_BODY_BYTES {
                            break Ok(false);
                        }
                    }
                    Ok(None) => break Ok(false),
                    Err(e) => break Err(e),
                }
            };
            match found {
                Ok(true) => ProbeResult::ok(started.elapsed()),
                Ok(false) => ProbeResult::fail(
                    started.elapsed(),
                    Cause::new(
                        CauseCode::new("http.body_mismatch").with("expected", needle.as_str()),
                        format!("response body does not contain {needle:?}"),
                    ),
                ),
                Err(e) => ProbeResult::fail(started.elapsed(), self.cause(&e)),
            }
        } else {
            ProbeResult::ok(started.elapsed())
        };
        result
            .measurements
            .insert("latency_ms".into(), super::millis(result.latency));
        result
            .measurements
            .insert("http_status".into(), f64::from(status));
        result
    }

    fn cause(&self, e: &reqwest::Error) -> Cause {
        request_cause(e, self.timeout)
    }
}

/// Words an installer can act on for a failed request, and their code: a failed
/// connect's (`tcp.*`), `probe.timeout`, `http.tls`, `http.connect`, `http.read` or
/// `http.request`.
pub(super) fn request_cause(e: &reqwest::Error, timeout: Duration) -> Cause {
    if e.is_timeout() {
        return Cause::timed_out(timeout);
    }
    // The useful words are at the bottom of the chain (an io::Error, a TLS alert).
    let mut source = e.source();
    let mut innermost = None;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if e.is_connect() {
                return connect_cause(io);
            }
        }
        innermost = Some(s);
        source = s.source();
    }
    let detail = innermost.map_or_else(|| e.to_string(), ToString::to_string);
    if e.is_connect() {
        let lower = detail.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            return Cause::new(
                CauseCode::new("http.tls"),
                format!(
                    "TLS handshake failed: {detail} (set insecure_tls = true for a self-signed camera)"
                ),
            );
        }
        return Cause::new(
            CauseCode::new("http.connect"),
            format!("cannot connect: {detail}"),
        );
    }
    if e.is_body() || e.is_decode() {
        return Cause::new(
            CauseCode::new("http.read"),
            format!("error reading the response: {detail}"),
        );
    }
    Cause::new(
        CauseCode::new("http.request"),
        format!("request failed: {detail}"),
    )
}

/// One client per TLS mode, shared by every HTTP probe in the process: building a client
/// loads the TLS roots, which hundreds of in-process agents (the demo) should not repeat
/// per camera. Pooling is off, so sharing never reuses a device connection.
/// The shared client for a probe being set up, its failure named after the probe.
pub(super) fn client_for(
    kind: &'static str,
    target: &str,
    insecure_tls: bool,
) -> Result<reqwest::Client, ProbeSetupError> {
    shared_client(insecure_tls).map_err(|e| ProbeSetupError {
        kind,
        target: target.to_string(),
        reason: e.to_string(),
    })
}

fn shared_client(insecure_tls: bool) -> Result<reqwest::Client, reqwest::Error> {
    use std::sync::OnceLock;
    static SECURE: OnceLock<reqwest::Client> = OnceLock::new();
    static INSECURE: OnceLock<reqwest::Client> = OnceLock::new();
    let cell = if insecure_tls { &INSECURE } else { &SECURE };
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    let client = reqwest::Client::builder()
        // A fresh connection per probe: a pooled keep-alive connection would hide a
        // device that stopped accepting new ones.
        .pool_max_idle_per_host(0)
        // The status of the URL itself is what is judged; 3xx counts as an answer.
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(insecure_tls)
        .user_agent(concat!("campuswatch-agent/", env!("CARGO_PKG_VERSION")))
        .build()?;
    Ok(cell.get_or_init(|| client).clone())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

impl Probe for HttpProbe {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn target(&self) -> &str {
        &self.url
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}

/// An http probe's keys: its `url`, and the status codes it accepts.
pub(crate) fn check_settings(url: &str, expect_status: &[u16]) -> Result<(), Invalid> {
    check_url(url)?;
    if let Some(s) = expect_status.iter().find(|s| !(100..=599).contains(*s)) {
        return Err(Invalid::new(
            "probe.expect_status",
            format!("{s} is not an HTTP status code (100 to 599)"),
        ));
    }
    Ok(())
}

/// `probe.url` of an http, snapshot or onvif probe: an `http://` or `https://` URL with a
/// host.
pub(crate) fn check_url(url: &str) -> Result<(), Invalid> {
    let parsed = url::Url::parse(url).map_err(|e| {
        Invalid::new(
            "probe.url",
            format!("{url:?}: {e} (for example \"http://10.0.0.4/status\")"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Invalid::new(
            "probe.url",
            format!("{url:?}: use an http:// or https:// URL with a host"),
        ));
    }
    Ok(())
}
