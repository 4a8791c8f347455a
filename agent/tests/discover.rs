//! `campuswatch-agent discover`, the real binary, against cameras that answer WS-Discovery:
//!
//! - over loopback, probed directly (`--unicast`), by a responder in this test; runs
//!   everywhere;
//! - over multicast, in a network namespace this test makes (a veth pair, the camera's
//!   side in the namespace, answered by `tests/peers/wsd_camera.py`); needs root and
//!   `ip`. Without them it says so and passes locally, and fails in CI (`CI` set).
//!
//! Only loopback and the test's own namespace carry test traffic.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use campuswatch_agent::AgentConfig;
use campuswatch_wire::xml::element;

const BIN: &str = env!("CARGO_BIN_EXE_campuswatch-agent");
const NAME: &str = "Gate North 大门";
const HARDWARE: &str = "IPC-HFW2431";

fn discover(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("discover")
        .args(args)
        .output()
        .expect("the agent binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A ProbeMatches as a camera sends it.
fn probe_matches(relates_to: &str, endpoint: &str, xaddr: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><env:Envelope \
         xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\" \
         xmlns:wsadis=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" \
         xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\" \
         xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\"><env:Header>\
         <wsadis:MessageID>uuid:9d1c</wsadis:MessageID><wsadis:RelatesTo>{relates_to}</wsadis:RelatesTo>\
         <wsadis:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsadis:Action>\
         </env:Header><env:Body><d:ProbeMatches><d:ProbeMatch>\
         <wsadis:EndpointReference><wsadis:Address>{endpoint}</wsadis:Address></wsadis:EndpointReference>\
         <d:Types>dn:NetworkVideoTransmitter</d:Types>\
         <d:Scopes>onvif://www.onvif.org/name/Gate%20North%20%E5%A4%A7%E9%97%A8 \
         onvif://www.onvif.org/hardware/IPC-HFW2431</d:Scopes>\
         <d:XAddrs>{xaddr}</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion>\
         </d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"
    )
}

/// The configuration entry `discover` printed, loaded by the agent's own loader.
fn assert_loads(device_toml: &str) {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    let text = format!("campus = \"150102-K-0001\"\nregion = \"150102\"\n{device_toml}");
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    let cfg = AgentConfig::load_from(f.path(), Some(Default::default()))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(cfg.devices.len(), 1, "{text}");
    assert_eq!(cfg.devices[0].probe.kind(), "onvif");
}

#[test]
fn a_camera_probed_directly_on_loopback_is_found_once_with_its_configuration() {
    let camera = UdpSocket::bind("127.0.0.1:0").unwrap();
    camera
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = camera.local_addr().unwrap().port();
    let xaddr = "http://127.0.0.1:8899/onvif/device_service";
    let (probes_tx, probes_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = camera.recv_from(&mut buf) {
            let probe = String::from_utf8_lossy(&buf[..n]).into_owned();
            let Some(id) = element(&probe, "MessageID").map(str::to_string) else {
                continue;
            };
            assert_eq!(element(&probe, "Types"), Some("dn:NetworkVideoTransmitter"));
            // Noise first: garbage, and an answer to someone else's probe.
            let _ = camera.send_to(b"<not xml", from);
            let other = probe_matches("uuid:other", "urn:uuid:other-cam", xaddr);
            let _ = camera.send_to(other.as_bytes(), from);
            let answer = probe_matches(&id, "urn:uuid:cam-loopback", xaddr);
            let _ = camera.send_to(answer.as_bytes(), from);
            let _ = probes_tx.send(id);
        }
    });

    let target = format!("127.0.0.1:{port}");
    let out = discover(&["--unicast", &target, "--timeout", "1s", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cams = json["cameras"].as_array().unwrap();
    assert_eq!(cams.len(), 1, "one camera, answered twice: {json}");
    let cam = &cams[0];
    assert_eq!(cam["endpoint"], "urn:uuid:cam-loopback");
    assert_eq!(cam["xaddrs"], serde_json::json!([xaddr]));
    assert_eq!(cam["name"], NAME);
    assert_eq!(cam["hardware"], HARDWARE);
    assert_eq!(cam["from"], target);
    assert_loads(cam["device_toml"].as_str().unwrap());

    // The probe went out twice (UDP may drop one), with one message id.
    let first = probes_rx.recv_timeout(Duration::from_secs(1)).unwrap();
    let second = probes_rx.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(first, second);
    assert!(first.starts_with("uuid:"));

    // The text for the installer names the camera and holds the same entry.
    let out = discover(&["--unicast", &target, "--timeout", "500ms"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains(&format!("name:     {NAME}")), "{text}");
    let entry = &text[text.find("[[devices]]").expect("a [[devices]] entry")..];
    assert_loads(entry);
}

#[test]
fn when_no_camera_answers_discover_says_so_and_exits_1() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = silent.local_addr().unwrap().to_string();
    let out = discover(&["--unicast", &target, "--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains("No ONVIF camera answered within 300ms"));
    let out = discover(&["--unicast", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Whether this process runs as root (Linux: the effective uid in /proc).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with a veth pair to it; removed again when dropped, also when the
/// test fails.
struct Namespace {
    name: String,
    host_if: String,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it ours; the
        // second command covers a pair whose end never moved into the namespace.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

struct Responder(Child);

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_camera_on_the_gateways_network_is_found_by_multicast() {
    let ip_present = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !is_root() || !ip_present {
        let why = format!(
            "the multicast discovery test needs root and `ip` (root: {}, ip: {ip_present})",
            is_root()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{why}");
        }
        eprintln!("{why}: not run");
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag = format!("{:06x}", (std::process::id() ^ nanos) & 0xff_ffff);
    // 198.18.0.0/15 is set aside for testing network equipment; a /30 per run.
    let (a, b) = ((nanos >> 8) & 0xff, (nanos & 0x3f) * 4);
    let (host_addr, cam_addr) = (
        format!("198.18.{a}.{}", b + 1),
        format!("198.18.{a}.{}", b + 2),
    );
    let ns = Namespace {
        name: format!("cw-discover-{tag}"),
        host_if: format!("cwh{tag}"),
    };
    let cam_if = format!("cwc{tag}");
    ip(&["netns", "add", &ns.name]);
    ip(&[
        "link",
        "add",
        &ns.host_if,
        "type",
        "veth",
        "peer",
        "name",
        &cam_if,
    ]);
    ip(&["link", "set", &cam_if, "netns", &ns.name]);
    ip(&[
        "addr",
        "add",
        &format!("{host_addr}/30"),
        "dev",
        &ns.host_if,
    ]);
    ip(&["link", "set", &ns.host_if, "up"]);
    let in_ns = |args: &[&str]| {
        let mut all = vec!["netns", "exec", &ns.name, "ip"];
        all.extend(args);
        ip(&all);
    };
    in_ns(&["addr", "add", &format!("{cam_addr}/30"), "dev", &cam_if]);
    in_ns(&["link", "set", &cam_if, "up"]);
    in_ns(&["link", "set", "lo", "up"]);

    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/peers/wsd_camera.py");
    let xaddr = format!("http://{cam_addr}/onvif/device_service");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, python, script])
        .args([cam_addr.as_str(), &xaddr, NAME, HARDWARE])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the camera responder starts");
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let responder = Responder(child);
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = ready_tx.send(line);
        }
    });
    let (probe_tx, probe_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = probe_tx.send(line);
        }
    });
    assert_eq!(
        ready_rx.recv_timeout(Duration::from_secs(10)).as_deref(),
        Ok("READY"),
        "the camera responder joined the group"
    );

    let out = discover(&["--interface", &host_addr, "--timeout", "2s", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cams = json["cameras"].as_array().unwrap();
    assert_eq!(cams.len(), 1, "{json}");
    assert_eq!(cams[0]["xaddrs"], serde_json::json!([xaddr]));
    assert_eq!(cams[0]["name"], NAME);
    assert_eq!(cams[0]["hardware"], HARDWARE);
    assert_eq!(
        cams[0]["endpoint"],
        "urn:uuid:5f0c7e2a-7d3b-4c1e-9a51-3c2b1d0e9f01"
    );
    assert_eq!(cams[0]["from"], format!("{cam_addr}:3702"));
    assert_loads(cams[0]["device_toml"].as_str().unwrap());
    let heard = probe_rx.recv_timeout(Duration::from_secs(1)).unwrap();
    assert!(heard.starts_with("PROBE uuid:"), "{heard}");
    drop(responder);
    drop(ns);
}
