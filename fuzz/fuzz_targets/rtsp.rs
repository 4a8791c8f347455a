//! A camera's answers to the RTSP probe's DESCRIBE (with Basic or Digest authentication
//! as the camera asks), as the probe reads them: the RTSP client parses the responses and
//! the SDP, the probe looks for a video stream and puts the client's errors in an
//! installer's words. The camera is a loopback socket that sends the input and closes.
//!
//! The probe runs as the agent runs it (`probe_once`), which turns a panic into a failed
//! probe: the RTSP client's SDP reader asserts on some malformed SDP. Panics in the
//! libraries it uses are caught so; a panic in the project's own code is a finding.
//!
//! Properties: the probe always ends, within its timeout; a failure has a cause whose
//! code the protocol carries (a server refuses an event with a bad one).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use campuswatch_agent::probe::rtsp::{RtspProbe, StreamSlots};
use campuswatch_agent::probe::{probe_once, ProbeStatus, Transport};
use campuswatch_fuzz::check_result;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

const TIMEOUT: Duration = Duration::from_secs(2);

struct Camera {
    runtime: Runtime,
    listener: TcpListener,
    probe: RtspProbe,
}

/// Aborts (a finding) on a panic in the project's code; lets one in a library unwind
/// to the probe's guard.
fn abort_on_our_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let ours = info
            .location()
            .is_none_or(|l| !l.file().contains("/.cargo/registry/"));
        if ours {
            report(info);
            std::process::abort();
        }
    }));
}

fn camera() -> &'static Camera {
    static CAMERA: OnceLock<Camera> = OnceLock::new();
    CAMERA.get_or_init(|| {
        abort_on_our_panics();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!(
            "rtsp://{}/Streaming/Channels/101",
            listener.local_addr().unwrap()
        );
        let probe = RtspProbe::new(
            &url,
            "admin",
            "secret",
            Transport::Tcp,
            None,
            TIMEOUT,
            StreamSlots::new(1),
        )
        .unwrap();
        Camera {
            runtime,
            listener,
            probe,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let camera = camera();
    let result = camera.runtime.block_on(async {
        // Everything the camera says, then its end of the connection; it reads on until
        // the probe closes its own, so that nothing is reset.
        let answer = async {
            let Ok((mut conn, _)) = camera.listener.accept().await else {
                return;
            };
            let _ = conn.write_all(data).await;
            let _ = conn.shutdown().await;
            let mut buf = [0u8; 2048];
            while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        let (result, answered) = tokio::join!(
            tokio::time::timeout(TIMEOUT * 2, probe_once(&camera.probe, TIMEOUT)),
            tokio::time::timeout(TIMEOUT * 2, answer)
        );
        answered.expect("the probe connected and closed its connection");
        result.expect("the probe ends within its timeout")
    });
    assert_ne!(result.status, ProbeStatus::Degraded, "{result:?}");
    check_result(&result);
});
