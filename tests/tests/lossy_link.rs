//! A link between the gateway and its devices that loses packets. The real agent program,
//! every device at its kind's default settings, probes alarm links on pysiaalarm's DC-09
//! receiver and cameras on GStreamer's RTSP server, all behind a veth pair whose two ends
//! drop 5 % of the packets that arrive on them (a network namespace and nftables, made by
//! the test as root). Loss that TCP recovers from within a probe's timeout must never flag
//! a healthy device: the quick retries confirm a failure, they do not make one.
//!
//! Needs root, iproute2 and nftables (`.ci/run` installs them) and both peers; without
//! them it says so and passes on a developer's machine, and fails in CI.

#[path = "../../agent/tests/peer/mod.rs"]
mod peer;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use campuswatch_protocol::{DeviceKind, DeviceState};
use campuswatch_tests::deadlink::{
    campus, spawn_agent, watch_events, write_config, DeviceBlock, LossyLink, Seen, ACCOUNT,
};
use campuswatch_tests::TestBroker;
use peer::Peer;
use tokio::sync::broadcast;

const AGENT: &str = env!("CARGO_BIN_EXE_campuswatch-agent-under-test");

/// Alarm links and cameras behind the link, and the probes each must have had: about
/// 50 s at the defaults (alarm every 10 s, camera every 30 s; each once at start).
const ALARMS: usize = 10;
const CAMERAS: usize = 4;
const ALARM_PROBES: u64 = 6;
const CAMERA_PROBES: u64 = 2;

fn lossy_link(loss: u32) -> Option<LossyLink> {
    match LossyLink::new(loss, 0) {
        Ok(link) => Some(link),
        Err(e) => {
            let why = format!("a lossy link needs root, iproute2 and nftables: {e:#}");
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("{why}: not run");
            None
        }
    }
}

/// `python script args…` in the link's namespace, as a peer whose port it prints.
fn peer_in(link: &LossyLink, python: &str, script: &str, args: &[&str]) -> Peer {
    let script = peer::script(script);
    let mut all = vec!["netns", "exec", &link.netns, python, &script];
    all.extend_from_slice(args);
    Peer::start("ip", &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_devices_behind_a_link_that_loses_5_percent_of_packets_are_never_reported_down() {
    let (Some(sia), Some(rtsp)) = (peer::sia::python(), peer::rtsp_python()) else {
        return;
    };
    let Some(link) = lossy_link(5) else { return };
    let host = link.peer_addr.as_str();
    let receiver = peer_in(
        &link,
        &sia,
        "dc09_receiver.py",
        &["tcp", ACCOUNT, "--host", host],
    );
    let camera = peer_in(&link, &rtsp, "rtsp_camera.py", &["--host", host]);
    let broker = TestBroker::start().await;
    let (seen, mut rx) = broadcast::channel(4096);
    watch_events(broker.addr(), &campus(), seen.clone())
        .await
        .unwrap();

    let mut devices = Vec::new();
    for (kind, count, port) in [
        (DeviceKind::Alarm, ALARMS, receiver.port),
        (DeviceKind::Camera, CAMERAS, camera.port),
    ] {
        let addr = format!("{host}:{port}").parse().unwrap();
        for n in 0..count {
            let id = format!("{}-{n}", kind.as_str());
            devices.push(DeviceBlock::new(id, kind, addr, None));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &campus(), broker.addr(), &devices).unwrap();
    let before = link.counters().unwrap();
    let _agent = spawn_agent(Path::new(AGENT), &config, seen).unwrap();

    let enough = |id: &str, n: u64| {
        n >= if id.starts_with("alarm") {
            ALARM_PROBES
        } else {
            CAMERA_PROBES
        }
    };
    let mut probes: HashMap<String, u64> = devices.iter().map(|d| (d.id.clone(), 0)).collect();
    let mut failed = 0;
    let mut up = HashSet::new();
    let mut down = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(150);
    while !probes.iter().all(|(id, n)| enough(id, *n)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Err(_) => panic!("the agent did not probe every device enough: {probes:?}"),
            Ok(Err(e)) => panic!("the agent's probes and events: {e}"),
            Ok(Ok(Seen::Probe { device, ok, .. })) => {
                *probes.entry(device).or_default() += 1;
                failed += u64::from(!ok);
            }
            Ok(Ok(Seen::Transition {
                device, to, cause, ..
            })) => match to {
                DeviceState::Up => {
                    up.insert(device);
                }
                DeviceState::Down => down.push((device, cause)),
                _ => {}
            },
        }
    }
    let link_said = link.counters().unwrap() - before;
    let total: u64 = probes.values().sum();
    eprintln!("{total} probes, {failed} failed; the link: {link_said:?}");
    assert!(down.is_empty(), "healthy devices reported down: {down:?}");
    assert_eq!(up.len(), ALARMS + CAMERAS, "devices up: {up:?}");
    // The link really lost packets, and TCP made up for them.
    assert!(link_said.dropped > 0, "{link_said:?}");
    assert!(link_said.retrans_segs > 0, "{link_said:?}");
}
