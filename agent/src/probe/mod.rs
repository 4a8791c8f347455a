//! Device probes: one module per kind behind the small [`Probe`] trait. A probe only
//! tries once and reports; the scheduler ([`crate::scheduler`]) owns the interval, the
//! timeout and shutdown, so every probe kind gets them the same way.

pub mod dc09;
pub mod dc09_listen;
pub mod http;
pub mod icmp;
pub mod onvif;
pub mod rtsp;
pub mod settings;
pub mod sip;
pub mod snapshot;
pub mod tcp;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Duration;

use campuswatch_protocol::{CauseCode, DeviceInfo, Measurements};
use futures_util::FutureExt;

pub use settings::{ProbeConfig, ProbedDevice, Transport};

/// The verdict of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeStatus {
    /// The device answered as expected.
    Ok,
    /// The device answered but is impaired: an RTSP stream below its frame rate or
    /// without keyframes, an ONVIF camera whose clock drifts.
    Degraded,
    /// The device did not answer, or answered wrongly.
    Fail,
}

impl ProbeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeStatus::Ok => "ok",
            ProbeStatus::Degraded => "degraded",
            ProbeStatus::Fail => "fail",
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub status: ProbeStatus,
    /// Time until the device answered (or until the probe gave up).
    pub latency: Duration,
    /// Why it failed or is degraded, in words an installer can act on.
    pub cause: Option<String>,
    /// The same as a code with parameters (schema version 4), for consoles in any
    /// language; [`probe_once`] gives a cause without one the code `{probe}.failed`.
    pub cause_code: Option<CauseCode>,
    /// Numbers for the server: `latency_ms`, `http_status`, …
    pub measurements: Measurements,
    /// What the device said it is (ONVIF), for the inventory.
    pub info: Option<DeviceInfo>,
}

impl ProbeResult {
    pub fn ok(latency: Duration) -> Self {
        Self {
            status: ProbeStatus::Ok,
            latency,
            cause: None,
            cause_code: None,
            measurements: latency_ms(latency),
            info: None,
        }
    }

    pub fn fail(latency: Duration, cause: impl Into<Cause>) -> Self {
        let cause = cause.into();
        Self {
            status: ProbeStatus::Fail,
            latency,
            cause: Some(cause.text),
            cause_code: cause.code,
            measurements: Measurements::new(),
            info: None,
        }
    }

    /// The result of a probe that did not finish within `timeout`.
    pub fn timed_out(timeout: Duration) -> Self {
        Self::fail(timeout, Cause::timed_out(timeout))
    }

    /// Sets the cause, text and code.
    pub fn set_cause(&mut self, cause: Cause) {
        self.cause = Some(cause.text);
        self.cause_code = cause.code;
    }
}

/// Why a probe failed or found the device impaired: words an installer can act on and,
/// where the probe knows it, the stable code consoles translate.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub text: String,
    pub code: Option<CauseCode>,
}

impl Cause {
    pub fn new(code: CauseCode, text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            code: Some(code),
        }
    }

    /// A step that did not finish within `timeout`.
    pub fn timed_out(timeout: Duration) -> Self {
        Self::new(
            CauseCode::new("probe.timeout").with("ms", timeout.as_millis() as u64),
            format!("timed out after {}", humantime::format_duration(timeout)),
        )
    }

    /// The same cause with `prefix: ` before its words (`ONVIF: …`); the code stays.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.text = format!("{prefix}: {}", self.text);
        self
    }
}

impl From<String> for Cause {
    fn from(text: String) -> Self {
        Self { text, code: None }
    }
}

impl From<&str> for Cause {
    fn from(text: &str) -> Self {
        text.to_string().into()
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A duration in milliseconds, rounded to 0.01 ms: more digits are noise and only make
/// payloads longer.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

fn latency_ms(latency: Duration) -> Measurements {
    [("latency_ms".to_string(), millis(latency))].into()
}

/// A future returned by a probe.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = ProbeResult> + Send + 'a>>;

/// One way of checking a device. Implementations try once and report; they need not
/// bound their own run time (the scheduler wraps them in a timeout) but may, to report a
/// more precise cause.
pub trait Probe: Send + Sync {
    /// The probe kind as reported in the birth (`tcp`, `http`).
    fn kind(&self) -> &'static str;
    /// What the probe reaches (`10.0.0.2:5000`, `http://10.0.0.4/status`).
    fn target(&self) -> &str;
    /// Probes the device once.
    fn probe(&self) -> ProbeFuture<'_>;
    /// The longest one probe may run, given the device's `timeout`; `None` for a probe
    /// that bounds every step itself and may wait for its turn (RTSP stream checks in the
    /// field check).
    fn budget(&self, timeout: Duration) -> Option<Duration> {
        Some(timeout)
    }
}

/// A probe could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the {kind} probe of {target}: {reason}")]
pub struct ProbeSetupError {
    pub kind: &'static str,
    pub target: String,
    pub reason: String,
}

/// Builds the probe a device's configuration asks for. `slots` is the gateway's limit on
/// concurrent RTSP stream checks, shared by all its probes.
pub fn build(
    cfg: &ProbeConfig,
    timeout: Duration,
    slots: &rtsp::StreamSlots,
) -> Result<Box<dyn Probe>, ProbeSetupError> {
    Ok(match cfg {
        ProbeConfig::Tcp { target } => Box::new(tcp::TcpProbe::new(target.clone())),
        ProbeConfig::Http {
            url,
            expect_status,
            body_contains,
            insecure_tls,
        } => Box::new(http::HttpProbe::new(
            url.clone(),
            expect_status.clone(),
            body_contains.clone(),
            *insecure_tls,
            timeout,
        )?),
        ProbeConfig::Dc09 {
            target,
            transport,
            account,
            prefix,
            receiver,
            key,
            supervision: _,
        } => {
            let probe = dc09::Dc09Probe::new(
                target.clone(),
                *transport,
                crate::dc09::Frame::null(0, receiver.as_deref(), prefix, account),
            );
            Box::new(match aes_key(cfg, key.as_ref())? {
                Some(k) => probe.with_key(k),
                None => probe,
            })
        }
        ProbeConfig::Dc09Listen {
            listen,
            transport,
            account,
            window,
            key,
            supervision,
        } => {
            // `validate` makes sure one of the two is set.
            let window = window
                .or(supervision.map(|c| c.reporting_time()))
                .unwrap_or(Duration::from_secs(180));
            let probe = dc09_listen::Dc09ListenProbe::new(
                listen.clone(),
                *transport,
                account.clone(),
                window,
            );
            Box::new(match aes_key(cfg, key.as_ref())? {
                Some(k) => probe.with_key(k),
                None => probe,
            })
        }
        ProbeConfig::Onvif {
            url,
            username,
            password,
            max_clock_drift,
        } => Box::new(onvif::OnvifProbe::new(
            url.clone(),
            username.clone(),
            password.clone(),
            *max_clock_drift,
            timeout,
        )?),
        ProbeConfig::Icmp { host } => Box::new(icmp::IcmpProbe::new(host.clone())),
        ProbeConfig::Snapshot { url, insecure_tls } => Box::new(snapshot::SnapshotProbe::new(
            url.clone(),
            *insecure_tls,
            timeout,
        )?),
        ProbeConfig::Sip { target, transport } => {
            Box::new(sip::SipProbe::new(target.clone(), *transport))
        }
        ProbeConfig::Rtsp {
            url,
            username,
            password,
            transport,
            stream_check,
            stream_interval,
            stream_window,
            min_frame_rate,
        } => Box::new(rtsp::RtspProbe::new(
            url,
            username,
            password,
            *transport,
            stream_check.then_some(rtsp::StreamCheck {
                interval: *stream_interval,
                window: *stream_window,
                min_frame_rate: *min_frame_rate,
            }),
            timeout,
            slots.clone(),
        )?),
    })
}

/// A DC-09 probe's AES key from its configuration (checked by `validate`, so an error
/// here means the configuration was built without it).
fn aes_key(
    cfg: &ProbeConfig,
    key: Option<&campuswatch_service::Secret>,
) -> Result<Option<crate::dc09::AesKey>, ProbeSetupError> {
    key.map(|k| {
        crate::dc09::AesKey::from_hex(k.expose()).map_err(|e| ProbeSetupError {
            kind: cfg.kind(),
            target: cfg.target().to_string(),
            reason: format!("the AES key {e}"),
        })
    })
    .transpose()
}

/// Runs `probe` once, bounded by its budget for `timeout`. A cause the probe gave no
/// code gets `{probe}.failed` (or `.degraded`), so every cause has one.
///
/// A probe that panics (a library reading the device's answer may, on an answer it did
/// not expect) fails with the panic's message instead of ending the device's task, which
/// would leave the device in its last state with nobody probing it.
pub async fn probe_once(probe: &dyn Probe, timeout: Duration) -> ProbeResult {
    let started = std::time::Instant::now();
    let guarded = async {
        match AssertUnwindSafe(probe.probe()).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(probe = probe.kind(), target = probe.target(), %message, "The probe panicked; the device is reported failed.");
                ProbeResult::fail(
                    started.elapsed(),
                    format!("the device's answer could not be read (the probe failed: {message})"),
                )
            }
        }
    };
    let mut result = match probe.budget(timeout) {
        None => guarded.await,
        Some(budget) => match tokio::time::timeout(budget, guarded).await {
            Ok(r) => r,
            Err(_) => ProbeResult::timed_out(budget),
        },
    };
    if result.cause.is_some() && result.cause_code.is_none() {
        let what = match result.status {
            ProbeStatus::Degraded => "degraded",
            _ => "failed",
        };
        result.cause_code = Some(CauseCode::new(format!("{}.{what}", probe.kind())));
    }
    debug_assert!(
        result.cause_code.as_ref().is_none_or(CauseCode::is_known),
        "a cause code missing from the protocol's list: {:?}",
        result.cause_code
    );
    result
}

/// A UDP socket connected to `target` (`host:port` or `[v6]:port`), for request/answer
/// probes; errors are in an installer's words.
pub(crate) async fn connected_udp(target: &str) -> Result<tokio::net::UdpSocket, Cause> {
    let bind = if target.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = tokio::net::UdpSocket::bind(bind).await.map_err(|e| {
        Cause::new(
            CauseCode::new("gateway.socket"),
            format!("cannot open a UDP socket: {e}"),
        )
    })?;
    socket
        .connect(target)
        .await
        .map_err(|e| tcp::connect_cause(&e))?;
    Ok(socket)
}
