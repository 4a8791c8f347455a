//! The RTSP probe against a real camera: GStreamer's RTSP server streaming live H.264
//! (`tests/peers/rtsp_camera.py`, run with the system Python and its GObject bindings;
//! `.ci/run` installs them and sets `CAMPUSWATCH_TEST_RTSP_PYTHON`).

mod peer;

use std::time::{Duration, Instant};

use campuswatch_agent::config::Transport;
use campuswatch_agent::probe::rtsp::{RtspProbe, StreamCheck, StreamSlots};
use campuswatch_agent::probe::{probe_once, Probe, ProbeResult, ProbeStatus};
use peer::Peer;

const TIMEOUT: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(2);

fn python() -> Option<String> {
    peer::rtsp_python()
}

fn camera(py: &str, args: &[&str]) -> Peer {
    let script = peer::script("rtsp_camera.py");
    let mut all = vec![script.as_str()];
    all.extend_from_slice(args);
    Peer::start(py, &all)
}

struct Opts<'a> {
    user: &'a str,
    password: &'a str,
    transport: Transport,
    min_frame_rate: Option<f64>,
    slots: StreamSlots,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Self {
            user: "",
            password: "",
            transport: Transport::Tcp,
            min_frame_rate: Some(10.0),
            slots: StreamSlots::new(2),
        }
    }
}

fn probe(port: u16, o: Opts<'_>) -> RtspProbe {
    RtspProbe::new(
        &format!("rtsp://127.0.0.1:{port}/cam1"),
        o.user,
        o.password,
        o.transport,
        Some(StreamCheck {
            interval: Duration::from_secs(300),
            window: WINDOW,
            min_frame_rate: o.min_frame_rate,
        }),
        TIMEOUT,
        o.slots,
    )
    .unwrap()
}

/// A probe with `stream_check = false`.
fn describe_only(url: &str) -> RtspProbe {
    RtspProbe::new(
        url,
        "",
        "",
        Transport::Tcp,
        None,
        TIMEOUT,
        StreamSlots::new(1),
    )
    .unwrap()
}

async fn once(p: &RtspProbe) -> ProbeResult {
    probe_once(p, TIMEOUT).await
}

fn assert_streaming(r: &ProbeResult, fps: f64) {
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
    let m = &r.measurements;
    assert!(
        (m["frame_rate"] - fps).abs() <= fps * 0.25,
        "frame rate near {fps}: {m:?}"
    );
    assert!(m["keyframes"] >= 1.0, "{m:?}");
    assert!(m["bitrate_kbps"] > 0.0, "{m:?}");
    assert!(m["first_keyframe_ms"] < WINDOW.as_millis() as f64, "{m:?}");
    assert_eq!((m["width"], m["height"]), (640.0, 360.0), "{m:?}");
}

#[tokio::test]
async fn a_streaming_camera_is_up_with_its_measured_frame_rate_over_tcp_and_udp() {
    let Some(py) = python() else { return };
    let cam = camera(&py, &["--fps", "15"]);
    for transport in [Transport::Tcp, Transport::Udp] {
        let p = probe(
            cam.port,
            Opts {
                transport,
                ..Opts::default()
            },
        );
        let r = once(&p).await;
        assert_streaming(&r, 15.0);
        // Within the stream interval only DESCRIBE runs; the stream verdict stands.
        let started = Instant::now();
        let again = once(&p).await;
        assert_eq!(again.status, ProbeStatus::Ok, "{again:?}");
        assert!(started.elapsed() < WINDOW, "no second stream check");
        assert_eq!(
            again.measurements["frame_rate"],
            r.measurements["frame_rate"]
        );
    }
}

#[tokio::test]
async fn a_camera_below_the_required_frame_rate_is_degraded() {
    let Some(py) = python() else { return };
    let cam = camera(&py, &["--fps", "4"]);
    let r = once(&probe(cam.port, Opts::default())).await;
    assert_eq!(r.status, ProbeStatus::Degraded, "{r:?}");
    assert!(
        r.cause
            .as_deref()
            .unwrap()
            .contains("below the required 10 fps"),
        "{r:?}"
    );
    assert!(r.measurements["frame_rate"] < 6.0, "{r:?}");
}

#[tokio::test]
async fn digest_and_basic_authentication_with_the_right_password_stream_and_a_wrong_one_says_so() {
    let Some(py) = python() else { return };
    for method in ["digest", "basic"] {
        let cam = camera(&py, &["--auth", method, "admin", "s3cret"]);
        let good = Opts {
            user: "admin",
            password: "s3cret",
            ..Opts::default()
        };
        assert_streaming(&once(&probe(cam.port, good)).await, 15.0);

        let wrong = Opts {
            user: "admin",
            password: "guess",
            ..Opts::default()
        };
        let r = once(&probe(cam.port, wrong)).await;
        assert_eq!(r.status, ProbeStatus::Fail, "{method}: {r:?}");
        assert_eq!(
            r.cause.as_deref(),
            Some("RTSP 401 Unauthorized: check the camera's user and password"),
            "{method}"
        );

        let none = once(&probe(cam.port, Opts::default())).await;
        assert_eq!(none.status, ProbeStatus::Fail, "{method}: {none:?}");
        assert!(none.cause.as_deref().unwrap().contains("user and password"));
    }
}

#[tokio::test]
async fn credentials_in_the_url_are_used_and_never_shown() {
    let Some(py) = python() else { return };
    let cam = camera(&py, &["--auth", "digest", "admin", "p@ss:word"]);
    let p = describe_only(&format!(
        "rtsp://admin:p%40ss%3Aword@127.0.0.1:{}/cam1",
        cam.port
    ));
    assert!(!p.target().contains("word"), "{}", p.target());
    let r = once(&p).await;
    assert_eq!(r.status, ProbeStatus::Ok, "{r:?}");
    // DESCRIBE only: no stream figures.
    assert!(!r.measurements.contains_key("frame_rate"), "{r:?}");
}

#[tokio::test]
async fn a_killed_camera_is_down_and_a_wrong_path_says_so() {
    let Some(py) = python() else { return };
    let mut cam = camera(&py, &[]);
    let p = probe(cam.port, Opts::default());
    assert_streaming(&once(&p).await, 15.0);

    let wrong_path = describe_only(&format!("rtsp://127.0.0.1:{}/nothing-here", cam.port));
    let r = once(&wrong_path).await;
    assert_eq!(r.status, ProbeStatus::Fail);
    assert_eq!(
        r.cause.as_deref(),
        Some("RTSP 404 Not Found: check the stream path in the URL")
    );

    cam.kill();
    let r = once(&p).await;
    assert_eq!(r.status, ProbeStatus::Fail, "{r:?}");
    assert!(
        r.cause.as_deref().unwrap().contains("connection refused"),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_frozen_camera_times_out_cleanly_instead_of_hanging_the_probe() {
    let Some(py) = python() else { return };
    let cam = camera(&py, &[]);
    let p = probe(cam.port, Opts::default());
    assert_streaming(&once(&p).await, 15.0);

    // Frozen before the probe: the connection is accepted (by the kernel) and DESCRIBE is
    // never answered.
    cam.freeze();
    let started = Instant::now();
    let r = once(&p).await;
    assert_eq!(r.status, ProbeStatus::Fail, "{r:?}");
    assert!(
        r.cause
            .as_deref()
            .unwrap()
            .contains("no answer to DESCRIBE within 2s"),
        "{r:?}"
    );
    assert!(started.elapsed() < TIMEOUT + Duration::from_secs(1));
    cam.thaw();

    // Frozen in the middle of a stream check: the window still ends on time, with what
    // arrived before the camera stopped.
    let fresh = probe(cam.port, Opts::default());
    let started = Instant::now();
    let checking = tokio::spawn(async move { once(&fresh).await });
    tokio::time::sleep(Duration::from_millis(900)).await;
    cam.freeze();
    let r = checking.await.unwrap();
    assert!(
        started.elapsed() < TIMEOUT * 2 + WINDOW,
        "took {:?}",
        started.elapsed()
    );
    assert_ne!(r.status, ProbeStatus::Ok, "{r:?}");
}

#[tokio::test]
async fn a_gateway_runs_at_most_its_limit_of_stream_checks_at_once() {
    let Some(py) = python() else { return };
    let cam = camera(&py, &[]);
    let slots = StreamSlots::new(1);
    let a = probe(
        cam.port,
        Opts {
            slots: slots.clone(),
            ..Opts::default()
        },
    );
    let b = probe(
        cam.port,
        Opts {
            slots,
            ..Opts::default()
        },
    );
    let (ra, rb) = tokio::join!(once(&a), once(&b));
    let checked = [&ra, &rb]
        .iter()
        .filter(|r| r.measurements.contains_key("frame_rate"))
        .count();
    assert_eq!(checked, 1, "one stream check, one postponed: {ra:?} {rb:?}");
    assert_eq!((ra.status, rb.status), (ProbeStatus::Ok, ProbeStatus::Ok));
    // The postponed one checks its stream on its next probe.
    let (ra, rb) = tokio::join!(once(&a), once(&b));
    assert!(
        ra.measurements.contains_key("frame_rate") && rb.measurements.contains_key("frame_rate")
    );
}

#[tokio::test]
async fn the_field_check_measures_every_camera_one_stream_at_a_time() {
    use campuswatch_agent::{AgentConfig, DeviceConfig, ProbeConfig};
    use campuswatch_protocol::{CampusId, DeviceId, DeviceKind, RegionCode};

    let Some(py) = python() else { return };
    let cam = camera(&py, &["--auth", "digest", "admin", "s3cret"]);
    let mut config = AgentConfig::new(
        CampusId::parse("150102-K-0001").unwrap(),
        RegionCode::parse("150102").unwrap(),
    );
    config.max_stream_checks = 1;
    for (id, password) in [("cam-1", "s3cret"), ("cam-2", "s3cret"), ("cam-3", "nope")] {
        let mut d = DeviceConfig::new(
            DeviceId::parse(id).unwrap(),
            DeviceKind::Camera,
            ProbeConfig::Rtsp {
                url: format!("rtsp://admin:{password}@127.0.0.1:{}/cam1", cam.port),
                username: String::new(),
                password: String::new(),
                transport: Transport::Tcp,
                stream_check: true,
                stream_interval: Duration::from_secs(300),
                stream_window: WINDOW,
                min_frame_rate: None,
            },
        );
        d.timeout = Some(TIMEOUT);
        config.devices.push(d);
    }
    let started = Instant::now();
    let report = campuswatch_agent::check::check(&config).await;
    assert!(
        started.elapsed() >= WINDOW * 2,
        "the two stream checks ran one after the other"
    );
    let table = report.render_table();
    println!("{table}");
    for row in &report.rows[..2] {
        assert_eq!(row.result, ProbeStatus::Ok, "{table}");
        assert!(row.measurements["frame_rate"] > 10.0, "{table}");
    }
    assert_eq!(report.rows[2].result, ProbeStatus::Fail);
    assert!(table.contains(" fps, 640x360, "), "{table}");
    assert!(
        table.contains("check the camera's user and password"),
        "{table}"
    );
    assert!(
        !table.contains("s3cret") && !table.contains("nope"),
        "{table}"
    );
}
