//! The GB/T 28181 listener against SIPp playing real devices, from the scenario files in
//! `tests/fixtures/sipp/` (written from GB/T 28181-2016's message formats): digest
//! registration over UDP and TCP, a wrong password, catalog answers with channels ON and
//! OFF named in GB2312, keepalives, alarms, unregistration; and what SIPp cannot send
//! (a REGISTER flood, garbage datagrams, a half-open TCP connection) from the test
//! itself. SIPp is Debian's `sip-tester`; `.ci/run` installs it, and under CI a missing
//! SIPp fails the run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use campuswatch_server::gb28181::{
    ChannelStatus, GbCode, GbInput, Listener, ListenerSettings, Registration, Transport,
};
use campuswatch_server::metrics::Metrics;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const PLATFORM: &str = "34020000002000000001";
const DOMAIN: &str = "3402000000";
const PASSWORD: &str = "12345678";

/// SIPp's path, or None outside CI when it is not installed.
fn sipp() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("sipp"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "SIPp is not installed: .ci/run must install Debian's sip-tester"
        );
        eprintln!(
            "SIPp not installed (apt-get install sip-tester): GB/T 28181 device test not run"
        );
    }
    found
}

struct Platform {
    addr: SocketAddr,
    inputs: mpsc::Receiver<GbInput>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Platform {
    async fn start(tune: impl FnOnce(&mut ListenerSettings)) -> Platform {
        Self::restarted(tune, Vec::new()).await
    }

    /// A platform that knew `restored` registrations when it stopped.
    async fn restarted(
        tune: impl FnOnce(&mut ListenerSettings),
        restored: Vec<Registration>,
    ) -> Platform {
        let mut settings = ListenerSettings::new(
            "127.0.0.1:0".parse().unwrap(),
            GbCode::parse(PLATFORM).unwrap(),
            chrono_tz::Asia::Shanghai,
        );
        settings.password = Some(PASSWORD.into());
        settings.catalog_wait = Duration::from_secs(10);
        tune(&mut settings);
        let metrics = Arc::new(Metrics::default());
        let listener = Listener::bind(settings, metrics.gb.clone()).await.unwrap();
        let addr = listener.local_addr();
        let (tx, inputs) = mpsc::channel(1000);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(listener.run(restored, tx, shutdown.clone()));
        Platform {
            addr,
            inputs,
            metrics,
            shutdown,
            task,
        }
    }

    /// The next input, within 10 s.
    async fn next(&mut self) -> GbInput {
        tokio::time::timeout(Duration::from_secs(10), self.inputs.recv())
            .await
            .expect("an input within 10 s")
            .expect("the listener runs")
    }

    /// Inputs already handed on.
    fn pending(&mut self) -> Vec<GbInput> {
        std::iter::from_fn(|| self.inputs.try_recv().ok()).collect()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the listener stops")
            .expect("the listener did not panic");
    }
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sipp")
        .join(name)
}

/// Runs SIPp as device `device` with `password` over `transport` ("u1" or "t1") against
/// the platform, from `port`: one call of `main` (with `ooc` answering requests outside
/// it); its exit code, with its logs printed when it is not 0.
#[allow(clippy::too_many_arguments)]
async fn run_sipp(
    bin: &Path,
    platform: SocketAddr,
    main: &str,
    ooc: Option<&str>,
    transport: &str,
    device: &str,
    password: &str,
    port: u16,
) -> i32 {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(bin);
    cmd.current_dir(dir.path())
        .arg(platform.to_string())
        .arg("-sf")
        .arg(scenario(main))
        .args(["-t", transport, "-i", "127.0.0.1", "-m", "1"])
        .arg("-p")
        .arg(port.to_string())
        .args(["-s", device, "-au", device, "-ap", password])
        .args(["-key", "platform", PLATFORM, "-key", "domain", DOMAIN])
        .args(["-timeout", "20s", "-timeout_error", "-nostdin"])
        .args(["-trace_err", "-trace_msg"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(ooc) = ooc {
        cmd.arg("-oocsf").arg(scenario(ooc));
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("SIPp ends within 30 s")
        .expect("SIPp starts");
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        eprintln!(
            "SIPp {main} exited {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let text = std::fs::read(entry.path()).unwrap_or_default();
            eprintln!(
                "--- {}\n{}",
                entry.path().display(),
                String::from_utf8_lossy(&text)
            );
        }
    }
    code
}

/// A port free for both UDP and TCP on 127.0.0.1 for SIPp to bind (SIPp takes 5060
/// when asked for port 0, or given none).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

const CAMERA: &str = "34020000001320000001";
const NVR: &str = "34020000001180000001";

#[tokio::test]
async fn a_device_registers_with_its_digest_over_udp_and_tcp() {
    let Some(sipp) = sipp() else { return };
    let mut platform = Platform::start(|_| {}).await;
    for (transport, flag) in [(Transport::Udp, "u1"), (Transport::Tcp, "t1")] {
        let code = run_sipp(
            &sipp,
            platform.addr,
            "register.xml",
            None,
            flag,
            CAMERA,
            PASSWORD,
            free_port(),
        )
        .await;
        assert_eq!(code, 0, "SIPp registered over {flag}");
        let GbInput::Registered {
            device,
            address,
            transport: got,
            expires_secs,
            keepalive_secs,
        } = platform.next().await
        else {
            panic!("not a registration")
        };
        assert_eq!(device.as_str(), CAMERA);
        assert_eq!(address.ip(), platform.addr.ip());
        assert_eq!((got, expires_secs, keepalive_secs), (transport, 3600, 60));
    }
    assert_eq!(platform.metrics.gb.message_count("register"), 2);
    assert_eq!(platform.metrics.gb.refused_count("auth"), 0);
    platform.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_counted() {
    let Some(sipp) = sipp() else { return };
    let mut platform = Platform::start(|_| {}).await;
    for (n, flag) in [(1, "u1"), (2, "t1")] {
        let code = run_sipp(
            &sipp,
            platform.addr,
            "wrong_password.xml",
            None,
            flag,
            CAMERA,
            "not-it",
            free_port(),
        )
        .await;
        assert_eq!(code, 0, "SIPp got its 403 over {flag}");
        assert_eq!(platform.metrics.gb.refused_count("auth"), n);
    }
    assert_eq!(platform.pending(), []);
    platform.stop().await;
}

/// The whole life of an NVR over `flag`: registration, the catalog with a camera ON, a
/// camera OFF and an alarm input, a keepalive, an alarm, unregistration.
async fn a_device_life(flag: &str) {
    let Some(sipp) = sipp() else { return };
    let mut platform = Platform::start(|_| {}).await;
    let code = run_sipp(
        &sipp,
        platform.addr,
        "device.xml",
        Some("catalog_answer.xml"),
        flag,
        NVR,
        PASSWORD,
        free_port(),
    )
    .await;
    assert_eq!(code, 0, "SIPp played the device over {flag}");
    let nvr = GbCode::parse(NVR).unwrap();
    assert!(matches!(platform.next().await, GbInput::Registered { device, .. } if device == nvr));
    let GbInput::Catalog {
        device,
        channels,
        complete,
    } = platform.next().await
    else {
        panic!("not a catalog")
    };
    assert_eq!((device, complete), (nvr, true));
    let seen: Vec<_> = channels
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_deref().unwrap_or(""), c.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("34020000001320000011", "校门", ChannelStatus::On),
            ("34020000001320000012", "操场", ChannelStatus::Off),
            ("34020000001340000013", "一键报警", ChannelStatus::On),
        ]
    );
    assert_eq!(
        platform.next().await,
        GbInput::Keepalive {
            device: nvr,
            ok: true
        }
    );
    let GbInput::Alarm { device, alarm } = platform.next().await else {
        panic!("not an alarm")
    };
    assert_eq!(
        (device, alarm.source.as_str()),
        (nvr, "34020000001340000013")
    );
    assert_eq!((alarm.priority, alarm.method), (Some(1), Some(2)));
    assert_eq!(platform.next().await, GbInput::Unregistered { device: nvr });
    for (kind, n) in [
        ("register", 1),
        ("catalog", 2),
        ("keepalive", 1),
        ("alarm", 1),
        ("unregister", 1),
    ] {
        assert_eq!(platform.metrics.gb.message_count(kind), n, "{kind}");
    }
    platform.stop().await;
}

#[tokio::test]
async fn a_device_over_udp_answers_its_catalog_keeps_alive_alarms_and_unregisters() {
    a_device_life("u1").await;
}

#[tokio::test]
async fn a_device_over_tcp_answers_its_catalog_keeps_alive_alarms_and_unregisters() {
    a_device_life("t1").await;
}

/// A REGISTER as a device sends it first, without credentials.
fn register(n: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:{PLATFORM}@{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKflood{n}\r\n\
         From: <sip:{CAMERA}@{DOMAIN}>;tag={n}\r\n\
         To: <sip:{CAMERA}@{DOMAIN}>\r\n\
         Call-ID: flood-{n}\r\n\
         CSeq: 1 REGISTER\r\n\
         Expires: 3600\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_register_flood_and_garbage_are_counted_and_a_good_device_still_registers() {
    let Some(sipp) = sipp() else { return };
    let mut platform = Platform::start(|s| s.register_rate = (20, 20)).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for n in 0..500 {
        socket.send_to(&register(n), platform.addr).await.unwrap();
    }
    let garbage: [&[u8]; 5] = [
        b"\x00\x01\x02 not sip at all",
        b"REGISTER\r\n\r\n",
        b"SIP/2.0 999 Odd\r\n\r\n",
        b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 50\r\n\r\nshort",
        &[0xff; 2000],
    ];
    for g in garbage {
        socket.send_to(g, platform.addr).await.unwrap();
    }
    // A TCP peer that opens, sends half a message and never more, and one that sends
    // garbage: neither holds the listener up.
    let mut half = tokio::net::TcpStream::connect(platform.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut half, b"REGISTER sip:x SIP/2.0\r\nVia: ")
        .await
        .unwrap();
    let mut bad = tokio::net::TcpStream::connect(platform.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut bad, b"HELLO\r\n\r\n")
        .await
        .unwrap();
    // The answers the flood got: at most the burst, and the rest dropped unanswered.
    let answered = {
        let mut buf = vec![0u8; 65_536];
        let mut n = 0;
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await
        {
            n += 1;
        }
        n
    };
    // (The kernel may drop some of the burst of datagrams before the listener reads
    // them: those are neither answered nor counted.)
    let flood = platform.metrics.gb.refused_count("flood");
    assert!(
        answered <= 40 && flood >= 100 && answered + flood <= 500,
        "answered {answered}, dropped {flood}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while platform.metrics.gb.refused_count("malformed") < 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "malformed counted: {}",
            platform.metrics.gb.refused_count("malformed")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A good device from the same address: the rate lets it through again (SIPp
    // retransmits over UDP until it is answered).
    let code = run_sipp(
        &sipp,
        platform.addr,
        "register.xml",
        None,
        "u1",
        NVR,
        PASSWORD,
        free_port(),
    )
    .await;
    assert_eq!(code, 0, "a good device registers after the flood");
    assert!(
        matches!(platform.next().await, GbInput::Registered { device, .. } if device.as_str() == NVR)
    );
    assert_eq!(platform.pending(), []);
    drop(half);
    platform.stop().await;
}

#[tokio::test]
async fn a_device_registered_before_a_restart_keeps_alive_without_registering_again() {
    let Some(sipp) = sipp() else { return };
    let port = free_port();
    let restored = Registration {
        device: GbCode::parse(CAMERA).unwrap(),
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        transport: Transport::Udp,
        expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
    };
    let mut platform = Platform::restarted(|_| {}, vec![restored]).await;
    let code = run_sipp(
        &sipp,
        platform.addr,
        "keepalive.xml",
        None,
        "u1",
        CAMERA,
        PASSWORD,
        port,
    )
    .await;
    assert_eq!(code, 0, "the keepalive was answered 200 OK");
    assert_eq!(
        platform.next().await,
        GbInput::Keepalive {
            device: GbCode::parse(CAMERA).unwrap(),
            ok: true
        }
    );
    // A device the platform did not know is told 404, to register.
    eprintln!("SIPp is expected to fail next: the platform answers 404.");
    let code = run_sipp(
        &sipp,
        platform.addr,
        "keepalive.xml",
        None,
        "u1",
        NVR,
        PASSWORD,
        free_port(),
    )
    .await;
    assert_ne!(code, 0);
    assert_eq!(platform.metrics.gb.refused_count("not_registered"), 1);
    assert_eq!(platform.pending(), []);
    platform.stop().await;
}

/// The whole server with its GB/T 28181 platform on, against SIPp as a campus NVR: what
/// the device says reaches the campus (devices, channels, history, the alarm as an
/// event, coverage by the platform's view), and nothing of it needs the agent.
#[tokio::test]
async fn a_campus_nvr_played_by_sipp_reaches_the_campus_through_the_whole_server() {
    let Some(sipp) = sipp() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = campuswatch_server::config::ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    cfg.auth.enabled = false;
    cfg.mqtt.embedded.listen = "127.0.0.1:0".parse().unwrap();
    cfg.gb28181.enabled = true;
    cfg.gb28181.listen = "127.0.0.1:0".parse().unwrap();
    cfg.gb28181.password = PASSWORD.into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(cfg, listener).await.unwrap();
    // A campus of county 340202 (division 340200's) listing the NVR: its camera
    // channels decide its video, 1 of 2 expected ON is not enough at the default 0.8.
    server
        .import_registry(
            vec![campuswatch_server::testing::entry(
                "340202-P-0001",
                "340202",
                campuswatch_protocol::SchoolType::Primary,
                1,
                2,
            )
            .with_gb(&[NVR])],
            false,
        )
        .await
        .unwrap();
    let sip = server.gb28181_addr().expect("the platform listens");
    let code = run_sipp(
        &sipp,
        sip,
        "device.xml",
        Some("catalog_answer.xml"),
        "u1",
        NVR,
        PASSWORD,
        free_port(),
    )
    .await;
    assert_eq!(code, 0, "SIPp played the NVR");
    let base = format!("http://{}", server.http_addr());
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let r = http.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    // The NVR unregistered at the end of its life: offline, with its channels known.
    // (Stored once the engine commits, just after the live state shows it.)
    campuswatch_testkit::wait_until("the unregistration", Duration::from_secs(10), async || {
        get(&format!("/api/v1/gb28181/devices/{NVR}")).await["state"] == "offline"
            && get("/api/v1/events?campus=340202-P-0001&kind=gb_device")
                .await
                .to_string()
                .contains("\"to\":\"offline\"")
    })
    .await;
    let device = get(&format!("/api/v1/gb28181/devices/{NVR}")).await;
    assert_eq!(device["campus"], "340202-P-0001");
    assert_eq!(device["cause_code"]["code"], "gb.unregistered");
    let channels: Vec<(String, String)> = device["channel_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        channels,
        [
            ("校门".to_string(), "on".to_string()),
            ("操场".to_string(), "off".to_string()),
            ("一键报警".to_string(), "on".to_string()),
        ]
    );
    // The history of the campus: the device online then offline, the playground camera
    // OFF, and the one-button alarm's notification.
    let events = get("/api/v1/events?campus=340202-P-0001&limit=50").await;
    let mut rows: Vec<(String, String, String)> = events
        .as_array()
        .or_else(|| events["events"].as_array())
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["from"].as_str().unwrap_or("").to_string(),
                e["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("gb_alarm".into(), "".into(), "alarm".into()),
            ("gb_channel".into(), "unknown".into(), "off".into()),
            ("gb_device".into(), "online".into(), "offline".into()),
            ("gb_device".into(), "unknown".into(), "online".into()),
        ]
    );
    // Coverage by the platform's view: listed, not networked (its device is offline).
    let coverage = get("/api/v1/coverage").await;
    assert_eq!(coverage["video_views"]["platform_campuses"], 1);
    assert_eq!(coverage["video_views"]["platform_networked"], 0);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cw_gb_messages_total{kind=\"alarm\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}
