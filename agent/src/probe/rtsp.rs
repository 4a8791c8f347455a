//! RTSP probe: a camera's video link as a viewer sees it.
//!
//! Every probe sends `DESCRIBE` (Basic or Digest authentication as the camera asks): the
//! camera's RTSP service answers and describes a video stream. Every `stream_interval`,
//! and on every probe while the last stream check was not good, it also runs a **stream
//! check**: `SETUP` and `PLAY` (RTP over the RTSP connection, or over UDP) and counts the
//! frames and keyframes that arrive within `stream_window`. It reports frame rate, bitrate
//! and time to first keyframe. No frames at all is down; a stream without a keyframe in
//! the window, or below `min_frame_rate`, is degraded. Between stream checks the last
//! stream verdict stands, so a camera that describes itself but sends no video stays
//! down.
//!
//! Stream checks cost the camera an encoder session and the campus uplink some bandwidth,
//! so a gateway runs at most `max_stream_checks` of them at once ([`StreamSlots`]); a check
//! that finds no free slot is postponed to the next probe and only `DESCRIBE` runs.
//!
//! Every step is bounded (`timeout` per RTSP exchange, `stream_window` for frames), so a
//! camera that accepts the connection and then hangs gives a clean `down`, never a stuck
//! probe.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use campuswatch_protocol::{CauseCode, Measurements};
use campuswatch_service::{redact, Invalid};
use futures_util::StreamExt;
use retina::client::{
    Credentials, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    UdpTransportOptions,
};
use retina::codec::CodecItem;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::settings::Transport;
use super::{millis, Cause, Probe, ProbeFuture, ProbeResult, ProbeSetupError, ProbeStatus};

/// The gateway's limit on RTSP stream checks running at once, shared by all its cameras.
#[derive(Debug, Clone)]
pub struct StreamSlots {
    semaphore: Arc<Semaphore>,
    /// Wait for a free slot instead of postponing the check (the one-shot field check,
    /// which must measure every camera).
    wait: bool,
}

impl StreamSlots {
    /// At most `max` stream checks at once; a check that finds none free is postponed.
    pub fn new(max: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(max.max(1))),
            wait: false,
        }
    }

    /// At most `max` stream checks at once; a check waits for a free slot.
    pub fn waiting(max: usize) -> Self {
        Self {
            wait: true,
            ..Self::new(max)
        }
    }

    async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        if self.wait {
            self.semaphore.clone().acquire_owned().await.ok()
        } else {
            self.semaphore.clone().try_acquire_owned().ok()
        }
    }
}

/// How and how often the stream itself is checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamCheck {
    /// Time between stream checks while the stream is good.
    pub interval: Duration,
    /// How long frames are counted.
    pub window: Duration,
    /// Below this frame rate the camera is degraded.
    pub min_frame_rate: Option<f64>,
}

/// The outcome of the last stream check, which stands until the next one.
#[derive(Debug, Clone)]
struct StreamVerdict {
    status: ProbeStatus,
    cause: Option<Cause>,
    measurements: Measurements,
}

#[derive(Debug, Default)]
struct Memory {
    checked_at: Option<Instant>,
    verdict: Option<StreamVerdict>,
}

pub struct RtspProbe {
    /// The URL without credentials (the RTSP client refuses them in the URL).
    url: url::Url,
    /// The URL as shown to people: the password masked.
    target: String,
    credentials: Option<Credentials>,
    transport: Transport,
    stream: Option<StreamCheck>,
    timeout: Duration,
    slots: StreamSlots,
    memory: Mutex<Memory>,
}

impl RtspProbe {
    pub fn new(
        url: &str,
        username: &str,
        password: &str,
        transport: Transport,
        stream: Option<StreamCheck>,
        timeout: Duration,
        slots: StreamSlots,
    ) -> Result<Self, ProbeSetupError> {
        let setup_error = |reason: String| ProbeSetupError {
            kind: "rtsp",
            target: redact::url(url),
            reason,
        };
        let mut parsed = url::Url::parse(url).map_err(|e| setup_error(e.to_string()))?;
        if parsed.scheme() != "rtsp" || parsed.host_str().is_none() {
            return Err(setup_error("use an rtsp:// URL with a host".into()));
        }
        // Credentials in the URL, percent-decoded, unless given on their own.
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let (mut user, mut pass) = (username.to_string(), password.to_string());
        if user.is_empty() && !parsed.username().is_empty() {
            user = decode(parsed.username());
            pass = parsed.password().map(decode).unwrap_or_default();
        }
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        Ok(Self {
            target: parsed.to_string(),
            url: parsed,
            credentials: (!user.is_empty()).then_some(Credentials {
                username: user,
                password: pass,
            }),
            transport,
            stream,
            timeout,
            slots,
            memory: Mutex::new(Memory::default()),
        })
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this probe should check the stream: never checked, last check not good,
    /// or the interval is over.
    fn stream_due(&self, now: Instant) -> bool {
        let Some(check) = self.stream else {
            return false;
        };
        let m = self.memory();
        match (&m.verdict, m.checked_at) {
            (Some(v), Some(at)) => v.status != ProbeStatus::Ok || now - at >= check.interval,
            _ => true,
        }
    }

    fn options(&self) -> SessionOptions {
        SessionOptions::default()
            .creds(self.credentials.clone())
            .user_agent(concat!("campuswatch-agent/", env!("CARGO_PKG_VERSION")).into())
    }

    async fn run(&self) -> ProbeResult {
        let started = Instant::now();
        let fail = |cause: Cause| ProbeResult::fail(started.elapsed(), cause);
        let session = match tokio::time::timeout(
            self.timeout,
            Session::describe(self.url.clone(), self.options()),
        )
        .await
        {
            Err(_) => return fail(no_answer("DESCRIBE", self.timeout)),
            Ok(Err(e)) => return fail(cause("DESCRIBE", &e, self.transport)),
            Ok(Ok(s)) => s,
        };
        let latency = started.elapsed();
        let Some(video) = session.streams().iter().position(|s| s.media() == "video") else {
            return fail(Cause::new(
                CauseCode::new("rtsp.no_video"),
                "the camera describes no video stream at this URL: check the stream path",
            ));
        };
        let mut result = ProbeResult::ok(latency);

        let verdict = if self.stream_due(started) {
            match (self.stream, self.slots.acquire().await) {
                (Some(check), Some(_permit)) => {
                    let v = self.check_stream(session, video, check).await;
                    crate::memory::release_free_memory();
                    let mut m = self.memory();
                    m.checked_at = Some(Instant::now());
                    m.verdict = Some(v.clone());
                    Some(v)
                }
                // No free slot: postponed; the last verdict stands.
                _ => self.memory().verdict.clone(),
            }
        } else {
            self.memory().verdict.clone()
        };
        if let Some(v) = verdict {
            result.status = v.status;
            if let Some(c) = v.cause {
                result.set_cause(c);
            }
            result.measurements.extend(v.measurements);
        }
        result
    }

    async fn check_stream(
        &self,
        mut session: Session<retina::client::Described>,
        video: usize,
        check: StreamCheck,
    ) -> StreamVerdict {
        let down = |cause: Cause| StreamVerdict {
            status: ProbeStatus::Fail,
            cause: Some(cause),
            measurements: Measurements::new(),
        };
        let transport = match self.transport {
            Transport::Tcp => retina::client::Transport::Tcp(TcpTransportOptions::default()),
            Transport::Udp => retina::client::Transport::Udp(UdpTransportOptions::default()),
        };
        let timed_out = |step: &str| no_answer(step, self.timeout);
        match tokio::time::timeout(
            self.timeout,
            session.setup(video, SetupOptions::default().transport(transport)),
        )
        .await
        {
            Err(_) => return down(timed_out("SETUP")),
            Ok(Err(e)) => return down(cause("SETUP", &e, self.transport)),
            Ok(Ok(())) => {}
        }
        let play_sent = Instant::now();
        let playing =
            match tokio::time::timeout(self.timeout, session.play(PlayOptions::default())).await {
                Err(_) => return down(timed_out("PLAY")),
                Ok(Err(e)) => return down(cause("PLAY", &e, self.transport)),
                Ok(Ok(p)) => p,
            };
        let mut frames = match playing.demuxed() {
            Ok(d) => d,
            Err(e) => return down(cause("PLAY", &e, self.transport)),
        };

        let deadline = Instant::now() + check.window;
        let mut count = FrameCount::default();
        let mut ended = None;
        loop {
            match tokio::time::timeout_at(deadline, frames.next()).await {
                Err(_) => break,
                Ok(None) => {
                    ended = Some(Cause::new(
                        CauseCode::new("rtsp.stream_ended"),
                        "the camera ended the stream",
                    ));
                    break;
                }
                Ok(Some(Err(e))) => {
                    ended = Some(cause("the stream", &e, self.transport));
                    break;
                }
                Ok(Some(Ok(CodecItem::VideoFrame(f)))) if f.stream_id() == video => {
                    count.frame(
                        Instant::now() - play_sent,
                        f.is_random_access_point(),
                        f.data().len(),
                    );
                }
                Ok(Some(Ok(_))) => {}
            }
        }
        let span = Instant::now() - play_sent;
        let dimensions = frames
            .streams()
            .get(video)
            .and_then(|s| match s.parameters() {
                Some(retina::codec::ParametersRef::Video(v)) => Some(v.pixel_dimensions()),
                _ => None,
            });
        // Dropping the session tears it down in the background.
        drop(frames);
        let mut verdict = count.judge(span, check, ended);
        if let Some((w, h)) = dimensions {
            verdict.measurements.insert("width".into(), f64::from(w));
            verdict.measurements.insert("height".into(), f64::from(h));
        }
        verdict
    }
}

/// Frames counted during one stream check, with arrival times measured from `PLAY`.
#[derive(Debug, Default, Clone, PartialEq)]
struct FrameCount {
    frames: u64,
    keyframes: u64,
    bytes: u64,
    first_frame: Option<Duration>,
    first_keyframe: Option<Duration>,
}

impl FrameCount {
    fn frame(&mut self, at: Duration, keyframe: bool, bytes: usize) {
        self.frames += 1;
        self.bytes += bytes as u64;
        self.first_frame.get_or_insert(at);
        if keyframe {
            self.keyframes += 1;
            self.first_keyframe.get_or_insert(at);
        }
    }

    /// The verdict on a stream watched for `span` after `PLAY`; `ended` says why the
    /// stream stopped early, if it did.
    fn judge(&self, span: Duration, check: StreamCheck, ended: Option<Cause>) -> StreamVerdict {
        let window = humantime::format_duration(check.window);
        let window_s = check.window.as_secs_f64();
        let Some(first) = self.first_frame else {
            return StreamVerdict {
                status: ProbeStatus::Fail,
                cause: Some(match ended {
                    Some(why) => why.prefixed("no video frames"),
                    None => Cause::new(
                        CauseCode::new("rtsp.no_frames").with("seconds", window_s),
                        format!(
                            "no video frames within {window} after PLAY: the camera accepts the \
                             session but its encoder sends nothing"
                        ),
                    ),
                }),
                measurements: [("frame_rate".to_string(), 0.0)].into(),
            };
        };
        // Rates over the time frames were flowing: from the first frame to the end of the
        // window (a stream that stops mid-window counts as slow, not as fast).
        let flowing = span.saturating_sub(first).max(Duration::from_millis(100));
        let secs = flowing.as_secs_f64();
        let frame_rate = (self.frames as f64 / secs * 10.0).round() / 10.0;
        let bitrate_kbps = (self.bytes as f64 * 8.0 / secs / 1000.0).round();
        let mut measurements: Measurements = [
            ("frame_rate".to_string(), frame_rate),
            ("bitrate_kbps".to_string(), bitrate_kbps),
            ("frames".to_string(), self.frames as f64),
            ("keyframes".to_string(), self.keyframes as f64),
        ]
        .into();
        if let Some(k) = self.first_keyframe {
            measurements.insert("first_keyframe_ms".into(), millis(k));
        }
        let mut problems = Vec::new();
        if self.keyframes == 0 {
            problems.push(Cause::new(
                CauseCode::new("rtsp.no_keyframe").with("seconds", window_s),
                format!(
                    "no keyframe within {window}: lost packets, or a keyframe interval longer \
                     than the check window (stream_window)"
                ),
            ));
        }
        if let Some(min) = check.min_frame_rate.filter(|min| frame_rate < *min) {
            problems.push(Cause::new(
                CauseCode::new("rtsp.low_frame_rate")
                    .with("fps", frame_rate)
                    .with("min", min),
                format!("frame rate {frame_rate} fps is below the required {min} fps"),
            ));
        }
        if let Some(why) = ended {
            problems.push(why.prefixed("the stream stopped early"));
        }
        StreamVerdict {
            status: if problems.is_empty() {
                ProbeStatus::Ok
            } else {
                ProbeStatus::Degraded
            },
            cause: joined(problems),
            measurements,
        }
    }
}

/// Several problems as one cause: their words joined, the first one's code (the most
/// telling: keyframes, then frame rate, then an early end).
fn joined(problems: Vec<Cause>) -> Option<Cause> {
    let code = problems.first()?.code.clone();
    let text = problems
        .into_iter()
        .map(|c| c.text)
        .collect::<Vec<_>>()
        .join("; ");
    Some(Cause { text, code })
}

/// No answer to an RTSP request within the timeout.
fn no_answer(step: &str, timeout: Duration) -> Cause {
    Cause::new(
        CauseCode::new("rtsp.no_answer")
            .with("step", step)
            .with("ms", timeout.as_millis() as u64),
        format!(
            "no answer to {step} within {}: the camera is hung or overloaded",
            humantime::format_duration(timeout)
        ),
    )
}

/// A failed RTSP step in an installer's words, and its code: `rtsp.unauthorized`,
/// `rtsp.forbidden`, `rtsp.not_found`, `rtsp.bandwidth`, `rtsp.transport`,
/// `rtsp.unavailable`, `rtsp.status{status,step}`, a failed connect's `tcp.*`,
/// `rtsp.credentials_needed`, else `rtsp.failed{step}`.
fn cause(step: &str, e: &retina::Error, transport: Transport) -> Cause {
    let text = e.to_string();
    let first_line = text.lines().next().unwrap_or_default().trim();
    let coded = |code: &str, text: String| Cause::new(CauseCode::new(format!("rtsp.{code}")), text);
    match e.status_code() {
        Some(401) => coded(
            "unauthorized",
            "RTSP 401 Unauthorized: check the camera's user and password".into(),
        ),
        Some(403) => coded(
            "forbidden",
            "RTSP 403 Forbidden: the camera's user may not view this stream (check its rights)"
                .into(),
        ),
        Some(404) => coded(
            "not_found",
            "RTSP 404 Not Found: check the stream path in the URL".into(),
        ),
        Some(453) => coded(
            "bandwidth",
            "RTSP 453 Not Enough Bandwidth: the camera serves too many viewers".into(),
        ),
        Some(461) => coded(
            "transport",
            format!(
                "RTSP 461 Unsupported Transport: the camera refuses RTP over {}; try the other \
             transport",
                match transport {
                    Transport::Tcp => "TCP",
                    Transport::Udp => "UDP",
                }
            ),
        ),
        Some(503) => coded(
            "unavailable",
            "RTSP 503 Service Unavailable: the camera is busy (too many viewers, or \
             restarting its stream)"
                .into(),
        ),
        Some(code) => Cause::new(
            CauseCode::new("rtsp.status")
                .with("status", code)
                .with("step", step),
            format!("RTSP {code} in answer to {step}"),
        ),
        None => {
            // The RTSP client reports socket errors as text ending in "(os error N)".
            let os_error = first_line
                .rsplit_once("(os error ")
                .and_then(|(_, n)| n.trim_end_matches(')').parse::<i32>().ok());
            match os_error {
                Some(n) => super::tcp::connect_cause(&std::io::Error::from_raw_os_error(n)),
                None if first_line.contains("credentials") || first_line.contains("uthenticat") => {
                    coded(
                        "credentials_needed",
                        format!("the camera asks for a user and password: {first_line}"),
                    )
                }
                None => Cause::new(
                    CauseCode::new("rtsp.failed").with("step", step),
                    format!("{step} failed: {first_line}"),
                ),
            }
        }
    }
}

impl Probe for RtspProbe {
    fn kind(&self) -> &'static str {
        "rtsp"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }

    fn budget(&self, timeout: Duration) -> Option<Duration> {
        if self.slots.wait {
            // Bounded step by step; the wait for a slot is bounded by the other checks.
            return None;
        }
        // DESCRIBE, SETUP and PLAY each within `timeout`, then the window.
        let window = self.stream.map_or(Duration::ZERO, |s| s.window);
        Some(timeout * 3 + window + Duration::from_secs(1))
    }
}

/// An rtsp probe's keys: its `url` (shown with its password masked) and its stream check.
pub(crate) fn check_settings(
    url: &str,
    stream_interval: Duration,
    stream_window: Duration,
    min_frame_rate: Option<f64>,
) -> Result<(), Invalid> {
    let example = "for example \"rtsp://10.0.0.4:554/Streaming/Channels/101\"";
    let shown = redact::url(url);
    let parsed = url::Url::parse(url)
        .map_err(|e| Invalid::new("probe.url", format!("{shown:?}: {e} ({example})")))?;
    if parsed.scheme() != "rtsp" || parsed.host_str().is_none_or(str::is_empty) {
        return Err(Invalid::new(
            "probe.url",
            format!("{shown:?}: use an rtsp:// URL with a host ({example})"),
        ));
    }
    if stream_interval.is_zero() {
        return Err(Invalid::new(
            "probe.stream_interval",
            "must be longer than zero (for example \"5m\")",
        ));
    }
    if stream_window.is_zero() || stream_window > Duration::from_secs(60) {
        return Err(Invalid::new(
            "probe.stream_window",
            "must be longer than zero and at most 60s; it should cover the \
             camera's keyframe interval (for example \"4s\")",
        ));
    }
    if let Some(f) = min_frame_rate.filter(|f| !(f.is_finite() && *f > 0.0)) {
        return Err(Invalid::new(
            "probe.min_frame_rate",
            format!("{f} is not a frame rate (frames per second above zero)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECK: StreamCheck = StreamCheck {
        interval: Duration::from_secs(300),
        window: Duration::from_secs(3),
        min_frame_rate: Some(10.0),
    };

    fn steady(fps: u32, keyframe_every: u32, seconds: u32) -> FrameCount {
        let mut c = FrameCount::default();
        let start = Duration::from_millis(120);
        for i in 0..fps * seconds {
            let at = start + Duration::from_secs_f64(f64::from(i) / f64::from(fps));
            c.frame(at, i % keyframe_every == 0, 4000);
        }
        c
    }

    #[test]
    fn a_steady_stream_is_up_with_its_rates() {
        let c = steady(15, 15, 3);
        let v = c.judge(Duration::from_millis(3120), CHECK, None);
        assert_eq!(v.status, ProbeStatus::Ok, "{:?}", v.cause);
        assert_eq!(v.measurements["frame_rate"], 15.0);
        assert_eq!(v.measurements["keyframes"], 3.0);
        assert_eq!(v.measurements["first_keyframe_ms"], 120.0);
        assert_eq!(v.measurements["bitrate_kbps"], 480.0);
    }

    #[test]
    fn a_slow_stream_is_degraded_and_says_by_how_much() {
        let v = steady(5, 5, 3).judge(Duration::from_millis(3120), CHECK, None);
        assert_eq!(v.status, ProbeStatus::Degraded);
        let cause = v.cause.unwrap();
        assert!(cause
            .text
            .contains("frame rate 5 fps is below the required 10 fps"));
        assert_eq!(
            cause.code.unwrap().to_string(),
            "rtsp.low_frame_rate{fps=5.0,min=10.0}"
        );
    }

    #[test]
    fn a_stream_without_keyframes_is_degraded() {
        let mut c = FrameCount::default();
        for i in 0..45 {
            c.frame(Duration::from_millis(100 + i * 66), false, 3000);
        }
        let v = c.judge(Duration::from_millis(3100), CHECK, None);
        assert_eq!(v.status, ProbeStatus::Degraded);
        let cause = v.cause.unwrap();
        assert!(cause.text.contains("no keyframe within 3s"));
        assert_eq!(
            cause.code.unwrap().to_string(),
            "rtsp.no_keyframe{seconds=3.0}"
        );
        assert!(!v.measurements.contains_key("first_keyframe_ms"));
    }

    #[test]
    fn a_stream_that_stops_mid_window_counts_as_slow() {
        let v = steady(15, 15, 1).judge(Duration::from_millis(3120), CHECK, None);
        assert_eq!(v.status, ProbeStatus::Degraded);
        assert_eq!(v.measurements["frame_rate"], 5.0);
    }

    #[test]
    fn no_frames_is_down_with_the_reason() {
        let c = FrameCount::default();
        let v = c.judge(Duration::from_secs(3), CHECK, None);
        assert_eq!(v.status, ProbeStatus::Fail);
        assert!(v.cause.unwrap().text.contains("no video frames within 3s"));
        let ended = Cause::new(
            CauseCode::new("rtsp.stream_ended"),
            "the camera ended the stream",
        );
        let v = c.judge(Duration::from_secs(1), CHECK, Some(ended));
        let cause = v.cause.unwrap();
        assert_eq!(cause.text, "no video frames: the camera ended the stream");
        assert_eq!(cause.code.unwrap().code, "rtsp.stream_ended");
    }

    #[test]
    fn credentials_leave_the_url_and_the_target() {
        let p = RtspProbe::new(
            "rtsp://admin:p%40ss@10.0.0.4:554/Streaming/Channels/101",
            "",
            "",
            Transport::Tcp,
            None,
            Duration::from_secs(5),
            StreamSlots::new(1),
        )
        .unwrap();
        assert_eq!(p.target(), "rtsp://10.0.0.4:554/Streaming/Channels/101");
        let c = p.credentials.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("admin", "p@ss")
        );
        assert!(RtspProbe::new(
            "http://10.0.0.4/",
            "",
            "",
            Transport::Tcp,
            None,
            Duration::from_secs(5),
            StreamSlots::new(1)
        )
        .is_err());
    }

    #[tokio::test]
    async fn a_full_gateway_postpones_stream_checks_and_the_field_check_waits() {
        let slots = StreamSlots::new(1);
        let held = slots.acquire().await.unwrap();
        assert!(slots.acquire().await.is_none());
        drop(held);
        assert!(slots.acquire().await.is_some());

        let waiting = StreamSlots::waiting(1);
        let held = waiting.acquire().await.unwrap();
        let w = waiting.clone();
        let queued = tokio::spawn(async move { w.acquire().await.is_some() });
        tokio::task::yield_now().await;
        assert!(!queued.is_finished());
        drop(held);
        assert!(queued.await.unwrap());
    }
}
