//! The embedded broker made safe to expose: its guarded front with TLS (certificates made
//! at test time), a password file written by the real `mosquitto_passwd`, and the topic
//! ACL of the Mosquitto recipe. Real agents, raw MQTT clients and raw bytes attack it;
//! what it refuses never reaches the server and is counted in
//! `cw_broker_refused_total{reason}`.
//!
//! Each test starts its own server (or broker) on free ports and watches its own county.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use campuswatch_agent::check::check_broker;
use campuswatch_agent::probe::ProbeStatus;
use campuswatch_mqtt::BrokerLogin;
use campuswatch_protocol::{CampusId, DeviceKind, DeviceState, Message};
use campuswatch_server::broker::{
    BrokerError, BrokerSecurity, EmbeddedBroker, EmbeddedBrokerConfig, TlsFiles,
};
use campuswatch_server::metrics::Metrics;
use campuswatch_server::ServerHandle;
use campuswatch_tests::mosquitto::{programs, Pki, Signer, Validity};
use campuswatch_tests::*;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Packet, QoS,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

/// Writes `users` into a password file with the real `mosquitto_passwd` (the first one
/// with Mosquitto 2's default PBKDF2-SHA512, the others with `-H sha512`, the form of
/// Mosquitto 1.6, when `both_forms`). `None`: Mosquitto is not installed outside CI.
fn mosquitto_passwords(dir: &Path, users: &[(&str, &str)], both_forms: bool) -> Option<PathBuf> {
    let (_, passwd) = programs()?;
    let file = dir.join("passwd");
    for (i, (user, password)) in users.iter().enumerate() {
        let mut cmd = Command::new(&passwd);
        if i > 0 && both_forms {
            cmd.args(["-H", "sha512"]);
        }
        if i == 0 {
            cmd.arg("-c");
        }
        let out = cmd
            .arg("-b")
            .arg(&file)
            .args([user, password])
            .output()
            .expect("mosquitto_passwd runs");
        assert!(out.status.success(), "mosquitto_passwd: {out:?}");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("$7$101$"),
        "Mosquitto 2's default form: {text}"
    );
    if both_forms && users.len() > 1 {
        assert!(text.contains(":$6$"), "the older form: {text}");
    }
    Some(file)
}

/// Certificates and a password file in a temporary directory.
struct Env {
    dir: tempfile::TempDir,
    pki: Pki,
    passwd: PathBuf,
    tls: TlsFiles,
}

impl Env {
    fn new(users: &[(&str, &str)]) -> Option<Env> {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let cert = pki.broker(
            "broker",
            &["127.0.0.1", "localhost"],
            Signer::Trusted,
            Validity::Current,
        );
        let passwd = mosquitto_passwords(dir.path(), users, true)?;
        Some(Env {
            tls: TlsFiles {
                cert: cert.cert,
                key: cert.key,
            },
            dir,
            pki,
            passwd,
        })
    }

    /// A server on its embedded broker, guarded by this password file and certificate,
    /// watching `county` with `campuses` registered.
    async fn server(&self, county: &str, campuses: &[&str]) -> ServerHandle {
        let mut cfg = server_config(&self.dir.path().join("server"), "", county);
        let e = &mut cfg.mqtt.embedded;
        e.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        e.password_file = self.passwd.display().to_string();
        e.tls_cert_file = self.tls.cert.display().to_string();
        e.tls_key_file = self.tls.key.display().to_string();
        cfg.validate("test")
            .expect("the embedded broker's settings are valid");
        let server = start_server(cfg).await;
        assert!(server.broker_url().starts_with("mqtts://127.0.0.1:"));
        let registry = campuses
            .iter()
            .map(|c| registry_entry(c, county, campuswatch_protocol::SchoolType::Primary, 1, 0))
            .collect();
        server.import_registry(registry, false).await.unwrap();
        server
    }

    fn login(&self, server: &ServerHandle, user: &str, password: &str) -> BrokerLogin {
        BrokerLogin {
            url: server.broker_url().to_string(),
            username: user.into(),
            password: password.into(),
            ca_file: self.pki.ca_file().display().to_string(),
            ..BrokerLogin::default()
        }
    }
}

async fn refused(server: &ServerHandle, reason: &str) -> f64 {
    metric(
        server,
        &format!("cw_broker_refused_total{{reason=\"{reason}\"}}"),
    )
    .await
    .unwrap_or(0.0)
}

async fn wait_refused(server: &ServerHandle, reason: &str, at_least: f64) {
    wait_for(
        &format!("{at_least} refusals for {reason}"),
        WAIT,
        || async { (refused(server, reason).await >= at_least).then_some(()) },
    )
    .await
}

/// What the broker answered a connection attempt of `options`: the CONNACK's code, and
/// the client's event loop to go on with when it was accepted.
async fn connect(options: MqttOptions) -> (Result<(), ConnectReturnCode>, AsyncClient, EventLoop) {
    let (client, mut el) = AsyncClient::new(options, 16);
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
                Err(e) => panic!("neither accepted nor refused: {e:?}"),
            }
        }
    })
    .await
    .expect("the broker answers CONNECT");
    (outcome, client, el)
}

/// Subscribes to `filter` and polls until the broker grants it.
async fn subscribed(client: &AsyncClient, el: &mut EventLoop, filter: &str) {
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(ack)) = el.poll().await.unwrap() {
            assert_eq!(
                ack.return_codes,
                [rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)],
                "{filter}"
            );
            return;
        }
    }
}

/// Polls until the broker closes the connection; panics if it answers `packet` instead.
async fn wait_closed(el: &mut EventLoop) {
    tokio::time::timeout(WAIT, async {
        loop {
            match el.poll().await {
                Err(_) => return,
                Ok(Event::Incoming(Packet::SubAck(ack))) => panic!("subscription granted: {ack:?}"),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the broker closes the connection")
}

/// A birth of `campus` claiming its alarm is down (a critical alert if believed).
fn forged_birth(campus: &str, county: &str) -> Message {
    campuswatch_testkit::birth(
        &CampusId::parse(campus).unwrap(),
        campuswatch_protocol::RegionCode::parse(county).unwrap(),
        9,
        vec![device("alarm-1", DeviceKind::Alarm, DeviceState::Down)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_reports_over_tls_with_its_mosquitto_password_and_only_for_itself() {
    let (county, a, b) = ("150191", "t150191-a", "t150191-b");
    let stray = "t150191-stray";
    let Some(env) = Env::new(&[(a, "a-secret"), (b, "b-secret")]) else {
        return;
    };
    let server = env.server(county, &[a, b]).await;

    // The real agent, over TLS with its password (Mosquitto 2's form in the file).
    let state = tempfile::tempdir().unwrap();
    let cfg = agent_with_login(a, county, &env.login(&server, a, "a-secret"), state.path()).await;
    let running = check_and_run_over_tls(&server, cfg, county).await;

    // Logged in as A: B's birth claiming its alarm is down, and a birth of a campus not
    // in the registry. Each closes the connection, and the rumqttc client's retry of the
    // same QoS 1 message after reconnecting is refused again.
    for victim in [b, stray] {
        let before = refused(&server, "publish").await;
        let gw = RawGateway::connect_with(
            env.login(&server, a, "a-secret")
                .options(format!("cw-{a}-forger"))
                .unwrap(),
            a,
            county,
            9,
        )
        .await;
        // The forger sends nothing else: a refused publish is this one (or its retries).
        gw.publish(&forged_birth(victim, county)).await;
        wait_refused(&server, "publish", before + 1.0).await;
        gw.kill();
    }
    // B, with its own password in Mosquitto 1.6's form, reports; what A forged did not.
    let b_gw = RawGateway::connect_with(
        env.login(&server, b, "b-secret")
            .options(format!("cw-{b}"))
            .unwrap(),
        b,
        county,
        1,
    )
    .await;
    b_gw.publish(&b_gw.birth(vec![device("alarm-1", DeviceKind::Alarm, DeviceState::Up)]))
        .await;
    wait_for("campus B online", WAIT, || async {
        (gateway_state(&server, b).await == "online").then_some(())
    })
    .await;
    let alerts = get_json(&server, "/api/v1/alerts").await;
    assert_eq!(
        alerts["alerts"].as_array().map(Vec::len),
        Some(0),
        "no alert from a forged birth: {alerts}"
    );
    let unregistered = get_json(&server, "/api/v1/campuses?registered=false").await;
    assert_eq!(unregistered["total"], 0, "{unregistered}");
    // A itself was never disturbed.
    assert_eq!(gateway_state(&server, a).await, "online");
    b_gw.kill();
    running.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_wrong_passwords_wide_subscriptions_and_foreign_wills_are_refused() {
    let (county, a, b) = ("150192", "t150192-a", "t150192-b");
    let Some(env) = Env::new(&[
        (a, "a-secret"),
        (b, "b-secret"),
        ("server", "reader-secret"),
    ]) else {
        return;
    };
    let server = env.server(county, &[a, b]).await;

    // Anonymous: CONNACK 5, not authorised.
    let anonymous = env.login(&server, "", "");
    let (r, _, _) = connect(anonymous.options("cw-stranger").unwrap()).await;
    assert_eq!(r, Err(ConnectReturnCode::NotAuthorized));
    // A wrong password and an unknown user: CONNACK 4, bad user name or password.
    for (user, password) in [(a, "guess"), ("t150192-nobody", "a-secret")] {
        let (r, _, _) = connect(
            env.login(&server, user, password)
                .options(format!("cw-{user}"))
                .unwrap(),
        )
        .await;
        assert_eq!(r, Err(ConnectReturnCode::BadUserNamePassword), "{user}");
    }
    // The installer is told in words, without the password.
    let state = tempfile::tempdir().unwrap();
    let cfg = agent_with_login(a, county, &env.login(&server, a, "guess"), state.path()).await;
    let check = check_broker(&cfg).await;
    assert_eq!(check.result, ProbeStatus::Fail);
    assert!(
        check
            .reason
            .starts_with("the broker refused the user name or password"),
        "{check:?}"
    );
    assert!(!check.reason.contains("guess"));

    // A Last Will on B's topic, logged in as A: CONNACK 5.
    let mut o = env
        .login(&server, a, "a-secret")
        .options(format!("cw-{a}"))
        .unwrap();
    o.set_last_will(LastWill::new(
        format!("cw/v1/{county}/{b}/death"),
        b"{}".to_vec(),
        QoS::AtLeastOnce,
        false,
    ));
    let (r, _, _) = connect(o).await;
    assert_eq!(r, Err(ConnectReturnCode::NotAuthorized));

    // A may subscribe to its own rebirth requests, not to everything.
    let (r, client, mut el) = connect(
        env.login(&server, a, "a-secret")
            .options(format!("cw-{a}"))
            .unwrap(),
    )
    .await;
    assert_eq!(r, Ok(()));
    subscribed(&client, &mut el, &format!("cw/v1/{county}/{a}/cmd/rebirth")).await;
    client.subscribe("cw/v1/#", QoS::AtMostOnce).await.unwrap();
    wait_closed(&mut el).await;

    // A reader with the server's rights (server_users) reads every campus.
    let (r, reader, mut reader_el) = connect(
        env.login(&server, "server", "reader-secret")
            .options("cw-reader")
            .unwrap(),
    )
    .await;
    assert_eq!(r, Ok(()));
    subscribed(&reader, &mut reader_el, &format!("cw/v1/{county}/#")).await;
    let gw = RawGateway::connect_with(
        env.login(&server, b, "b-secret")
            .options(format!("cw-{b}"))
            .unwrap(),
        b,
        county,
        1,
    )
    .await;
    gw.publish(&gw.birth(vec![])).await;
    let topic = tokio::time::timeout(WAIT, async {
        loop {
            match reader_el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => return p.topic,
                Ok(_) => {}
                Err(e) => panic!("the reader lost its connection: {e:?}"),
            }
        }
    })
    .await
    .expect("the reader hears B");
    assert_eq!(topic, format!("cw/v1/{county}/{b}/birth"));

    for (reason, n) in [
        ("anonymous", 1.0),
        ("credentials", 3.0),
        ("will", 1.0),
        ("subscribe", 1.0),
    ] {
        wait_refused(&server, reason, n).await;
    }
    gw.kill();
    server.stop().await;
}

/// A broker guarded by a password file only (loopback, no TLS): the frame reader sees the
/// bytes as sent.
async fn plain_guarded_broker(env: &Env, metrics: std::sync::Arc<Metrics>) -> EmbeddedBroker {
    EmbeddedBroker::start_with_metrics(
        EmbeddedBrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fallback_to_free_port: false,
            security: BrokerSecurity {
                password_file: Some(env.passwd.clone()),
                server_users: vec!["server".into()],
                ..BrokerSecurity::default()
            },
            ..EmbeddedBrokerConfig::default()
        },
        metrics,
    )
    .await
    .expect("the guarded broker starts")
}

/// Sends `bytes`, closes the sending side, and reads until the broker closes the
/// connection (which it must, within the deadline).
async fn send_and_wait_for_close(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The broker may close before all is written; that is an answer too.
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut sink = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut sink))
        .await
        .unwrap_or_else(|_| panic!("the broker kept the connection open after {bytes:02x?}"))
        .ok();
}

fn refusals(metrics: &Metrics) -> u64 {
    campuswatch_server::metrics::BROKER_REFUSALS
        .iter()
        .map(|r| metrics.broker_refused_count(r))
        .sum()
}

/// A valid MQTT 3.1.1 CONNECT of `user` with `password`.
fn connect_frame(client_id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xC2, 0x00, 0x0A];
    for s in [client_id, user, password] {
        body.extend_from_slice(&(s.len() as u16).to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    assert!(body.len() < 128);
    let mut frame = vec![0x10, body.len() as u8];
    frame.extend_from_slice(&body);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frame_reader_closes_and_counts_generated_garbage_without_panicking() {
    let a = "t150193-a";
    let Some(env) = Env::new(&[(a, "a-secret")]) else {
        return;
    };
    let metrics = std::sync::Arc::new(Metrics::default());
    let broker = plain_guarded_broker(&env, metrics.clone()).await;
    let addr = broker.connect_addr();

    // Named cases, each one refusal.
    let good = connect_frame(&format!("cw-{a}"), a, "a-secret");
    let mut level5 = good.clone();
    level5[8] = 0x05;
    let mut cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0x10, 0xff, 0xff, 0xff, 0x7f], "too_large"),
        (vec![0x30, 0xff, 0xff, 0xff, 0x7f, 0x00], "too_large"),
        (vec![0x10, 0xff, 0xff, 0xff, 0xff, 0x01], "malformed"),
        (good[..good.len() / 2].to_vec(), "malformed"),
        (vec![0x30, 0x05, 0x00, 0x01, b'x', b'y', b'z'], "malformed"),
        (vec![0x20, 0x02, 0x00, 0x00], "malformed"),
        (vec![0xc0, 0x00], "malformed"),
        (level5, "malformed"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "malformed"),
    ];
    // A logged-in client that then sends garbage, a truncated PUBLISH, a second CONNECT.
    for tail in [
        vec![0xff, 0x00, 0x01],
        vec![0x32, 0x20, 0x00, 0x05, b'c', b'w'],
        good.clone(),
        vec![0x90, 0x03, 0x00, 0x01, 0x00],
    ] {
        let mut bytes = good.clone();
        bytes.extend_from_slice(&tail);
        cases.push((bytes, "malformed"));
    }
    for (bytes, reason) in &cases {
        let before = metrics.broker_refused_count(reason);
        send_and_wait_for_close(addr, bytes).await;
        assert_eq!(
            metrics.broker_refused_count(reason),
            before + 1,
            "{reason}: {bytes:02x?}"
        );
    }

    // Generated: 400 random byte strings (a fixed seed, so a failure repeats), and every
    // truncation of a valid CONNECT. Each non-empty one is refused exactly once.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut generated: Vec<Vec<u8>> = (0..400)
        .map(|_| {
            let len = (next() % 48) as usize + 1;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect();
    generated.extend((1..good.len()).map(|n| good[..n].to_vec()));
    let before = refusals(&metrics);
    for bytes in &generated {
        send_and_wait_for_close(addr, bytes).await;
    }
    assert_eq!(refusals(&metrics), before + generated.len() as u64);

    // Bytes flipped in a valid CONNECT: whatever they turn into, the connection ends.
    for i in 0..good.len() {
        let mut bytes = good.clone();
        bytes[i] ^= (next() as u8) | 1;
        send_and_wait_for_close(addr, &bytes).await;
    }

    // Still serving: the campus logs in.
    let mut o = MqttOptions::new(format!("cw-{a}"), addr.ip().to_string(), addr.port());
    o.set_credentials(a, "a-secret");
    let (r, _, _) = connect(o).await;
    assert_eq!(r, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_on_the_tls_port_is_refused_and_counted() {
    let a = "t150194-a";
    let Some(env) = Env::new(&[(a, "a-secret")]) else {
        return;
    };
    let metrics = std::sync::Arc::new(Metrics::default());
    let broker = EmbeddedBroker::start_with_metrics(
        EmbeddedBrokerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            security: BrokerSecurity {
                password_file: Some(env.passwd.clone()),
                tls: Some(env.tls.clone()),
                ..BrokerSecurity::default()
            },
            ..EmbeddedBrokerConfig::default()
        },
        metrics.clone(),
    )
    .await
    .unwrap();
    assert!(broker.url().starts_with("mqtts://"));
    send_and_wait_for_close(broker.connect_addr(), &connect_frame("cw-x", a, "a-secret")).await;
    assert_eq!(metrics.broker_refused_count("tls"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_the_broker_needs_a_password_file_and_tls_unless_told_insecure() {
    let Some(env) = Env::new(&[("t150195-a", "a-secret")]) else {
        return;
    };
    let everywhere = SocketAddr::from(([0, 0, 0, 0], 0));
    let start = |security: BrokerSecurity| {
        EmbeddedBroker::start(EmbeddedBrokerConfig {
            listen: everywhere,
            fallback_to_free_port: false,
            security,
            ..EmbeddedBrokerConfig::default()
        })
    };

    // Nothing, and a password file without TLS: refused, naming what is missing.
    let err = start(BrokerSecurity::default()).await.unwrap_err();
    assert!(matches!(err, BrokerError::Exposed { .. }), "{err}");
    let says = err.to_string();
    for key in [
        "mqtt.embedded.password_file",
        "mqtt.embedded.tls_cert_file",
        "mqtt.embedded.tls_key_file",
        "mqtt.embedded.insecure = true",
    ] {
        assert!(says.contains(key), "{says}");
    }
    let err = start(BrokerSecurity {
        password_file: Some(env.passwd.clone()),
        ..BrokerSecurity::default()
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("mqtt.embedded.tls_cert_file") && !err.contains("password_file,"),
        "{err}"
    );

    // The configuration says the same before anything starts.
    let mut cfg = campuswatch_server::config::ServerConfig::default();
    cfg.mqtt.embedded.listen = SocketAddr::from(([0, 0, 0, 0], 1883));
    let err = cfg.validate("server.toml").unwrap_err().to_string();
    assert!(err.contains("mqtt.embedded.password_file"), "{err}");

    // Both: it starts, on every interface.
    let guarded = start(BrokerSecurity {
        password_file: Some(env.passwd.clone()),
        tls: Some(env.tls.clone()),
        ..BrokerSecurity::default()
    })
    .await
    .expect("a password file and TLS are enough");
    assert!(guarded.local_addr().ip().is_unspecified());

    // insecure = true: it starts, and anyone may connect.
    let open = start(BrokerSecurity {
        insecure: true,
        ..BrokerSecurity::default()
    })
    .await
    .expect("insecure = true starts");
    let addr = open.connect_addr();
    let (r, _, _) = connect(MqttOptions::new(
        "cw-anyone",
        addr.ip().to_string(),
        addr.port(),
    ))
    .await;
    assert_eq!(r, Ok(()));
}
