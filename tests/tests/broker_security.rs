//! Broker security against a private Mosquitto started by each test: TLS with
//! certificates made at test time, a password file, the ACL of docs/broker-security.md,
//! and a listener that authenticates campuses by client certificate. Real agents and the
//! real server connect to it over TLS; what the broker refuses is told in the words of
//! `campuswatch_mqtt::BrokerLogin::diagnose`, in the installer's field check and in the
//! agent's log; what it drops never reaches the server.
//!
//! Each test watches its own county and starts its own broker, so they run in parallel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use campuswatch_agent::check::check_broker;
use campuswatch_agent::probe::ProbeStatus;
use campuswatch_mqtt::BrokerLogin;
use campuswatch_protocol::{
    CampusId, DeviceKind, DeviceState, Heartbeat, HostHealth, Message, RegionCode, SchoolType,
};
use campuswatch_server::ServerHandle;
use campuswatch_tests::mosquitto::{CertFiles, Pki, PrivateMosquitto, Signer, Validity};
use campuswatch_tests::*;

const WAIT: Duration = Duration::from_secs(20);
const SERVER_PASSWORD: &str = "server-secret";

/// A directory of certificates and a private Mosquitto using them.
struct Env {
    dir: tempfile::TempDir,
    pki: Pki,
    broker: PrivateMosquitto,
}

impl Env {
    /// A broker whose certificate `broker_cert` makes from the PKI, with `users` in its
    /// password file (the server's account is always there). `None`: Mosquitto is not
    /// installed and this is not CI.
    fn start(broker_cert: impl Fn(&Pki) -> CertFiles, users: &[(&str, &str)]) -> Option<Env> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let pki = Pki::new(dir.path());
        let cert = broker_cert(&pki);
        let mut all = vec![("server", SERVER_PASSWORD)];
        all.extend_from_slice(users);
        let broker = PrivateMosquitto::start(dir.path(), &pki, &cert, &all)?;
        Some(Env { dir, pki, broker })
    }

    /// The usual broker certificate: issued by the trusted CA for 127.0.0.1 and localhost.
    fn good_cert(pki: &Pki) -> CertFiles {
        pki.broker(
            "broker",
            &["127.0.0.1", "localhost"],
            Signer::Trusted,
            Validity::Current,
        )
    }

    /// A server logged in as `server` over TLS, watching `county`, with `campuses` in its
    /// registry (primary schools of one alarm and no camera).
    async fn server(&self, county: &str, campuses: &[&str]) -> ServerHandle {
        let data = self.dir.path().join(format!("server-{county}"));
        let mut cfg = server_config(&data, &self.broker.password_url(), county);
        cfg.mqtt.username = "server".into();
        cfg.mqtt.password = SERVER_PASSWORD.into();
        cfg.mqtt.ca_file = self.pki.ca_file().display().to_string();
        cfg.validate("test")
            .expect("the server's TLS settings are valid");
        let server = start_server(cfg).await;
        let registry = campuses
            .iter()
            .map(|c| registry_entry(c, county, SchoolType::Primary, 1, 0))
            .collect();
        server
            .import_registry(registry, false)
            .await
            .expect("registry import");
        server
    }

    /// A login of the password listener as `user`, trusting the test CA.
    fn login(&self, user: &str, password: &str) -> BrokerLogin {
        BrokerLogin {
            url: self.broker.password_url(),
            username: user.into(),
            password: password.into(),
            ca_file: self.pki.ca_file().display().to_string(),
            ..BrokerLogin::default()
        }
    }
}

async fn wait_state(server: &ServerHandle, id: &str, want: &str) {
    wait_for(&format!("{id} to be {want}"), WAIT, || async {
        (gateway_state(server, id).await == want).then_some(())
    })
    .await
}

fn healthy() -> Vec<campuswatch_protocol::DeviceReport> {
    vec![device("alarm-1", DeviceKind::Alarm, DeviceState::Up)]
}

/// A heartbeat payload claiming to come from `campus`.
fn heartbeat_of(campus: &str, county: &str, epoch: u64) -> Message {
    Message::Heartbeat(Heartbeat {
        v: 2,
        campus: CampusId::parse(campus).unwrap(),
        region: RegionCode::parse(county).unwrap(),
        epoch,
        seq: 1,
        at: chrono::Utc::now(),
        health: HostHealth {
            cpu_pct: 1.0,
            mem_used_pct: 10.0,
            disk_used_pct: 10.0,
            uptime_s: 1,
        },
        states: "U".into(),
        last_event_id: 0,
    })
}

/// `msg` (a birth or heartbeat of the gateway's own campus) rewritten to speak for
/// `other`: its topic follows its payload, so it goes to `other`'s topic.
fn as_campus(mut msg: Message, other: &str) -> Message {
    let other = CampusId::parse(other).unwrap();
    match &mut msg {
        Message::Birth(b) => b.campus = other,
        Message::Heartbeat(h) => h.campus = other,
        _ => unreachable!("only births and heartbeats are rewritten"),
    }
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_with_its_password_and_the_ca_reports_over_tls() {
    let (county, a) = ("150181", "t150181-a");
    let Some(env) = Env::start(Env::good_cert, &[(a, "a-secret")]) else {
        return;
    };
    let server = env.server(county, &[a]).await;
    let state = tempfile::tempdir().unwrap();
    let cfg = agent_with_login(a, county, &env.login(a, "a-secret"), state.path()).await;
    // What the installer sees first, then the agent.
    let agent = check_and_run_over_tls(&server, cfg, county).await;
    // The broker saw it log in with its user name over the TLS listener.
    env.broker
        .wait_for_log(&[&format!("as cw-{a} "), &format!("u'{a}'")])
        .await;
    agent.stop().await;
    wait_state(&server, a, "offline").await;
    server.stop().await;
}

/// Log lines written by the agent, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

// One thread: the log subscriber set for it sees the agent's tasks too.
#[tokio::test]
async fn a_wrong_password_is_refused_and_the_agent_says_why() {
    let (county, a) = ("150182", "t150182-a");
    let Some(env) = Env::start(Env::good_cert, &[(a, "right")]) else {
        return;
    };
    let server = env.server(county, &[a]).await;
    let state = tempfile::tempdir().unwrap();
    let cfg = agent_with_login(a, county, &env.login(a, "wrong"), state.path()).await;

    let check = check_broker(&cfg).await;
    assert_eq!(check.result, ProbeStatus::Fail);
    assert!(
        check.reason.starts_with(
            "the broker refused the user name or password: check mqtt.username and mqtt.password"
        ),
        "{check:?}"
    );
    assert!(!check.reason.contains("wrong"), "no password in the reason");

    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_env_filter("campuswatch_agent=info")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let agent = spawn_agent(cfg);
    let line = wait_for("the agent to log why it cannot connect", WAIT, || async {
        logs.text()
            .lines()
            .find(|l| l.contains("the broker refused the user name or password"))
            .map(str::to_string)
    })
    .await;
    assert!(line.contains("ERROR"), "an operator must act: {line}");
    assert!(line.contains("Cannot connect to the broker"), "{line}");
    // The broker refused it (the CONNACK's return code 5), and again after a backoff:
    // the agent keeps trying until someone fixes the password.
    wait_for("the broker to refuse the agent twice", WAIT, || async {
        let refusals = env
            .broker
            .log()
            .iter()
            .filter(|l| l.contains("disconnected, not authorised"))
            .count();
        // The field check's attempt was the first.
        (refusals >= 3).then_some(())
    })
    .await;
    agent.stop().await;
    assert_eq!(gateway_state(&server, a).await, "never_seen");
    assert!(!logs.text().contains("Connected to the broker"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_drops_what_a_campus_publishes_under_another_campus() {
    let (county, a, b) = ("150183", "t150183-a", "t150183-b");
    let Some(env) = Env::start(Env::good_cert, &[(a, "a-secret"), (b, "b-secret")]) else {
        return;
    };
    let server = env.server(county, &[a, b]).await;
    let login = env.login(a, "a-secret");
    let gw =
        RawGateway::connect_with(login.options(format!("cw-{a}")).unwrap(), a, county, 7).await;

    // Logged in as campus A, a birth and a heartbeat of campus B on B's topics.
    let forged = as_campus(gw.birth(healthy()), b);
    assert_eq!(
        forged.topic().to_string(),
        format!("cw/v1/{county}/{b}/birth")
    );
    gw.publish(&forged).await;
    gw.publish(&as_campus(heartbeat_of(a, county, 7), b)).await;
    env.broker
        .wait_for_log(&["Denied PUBLISH", &format!("cw-{a}"), &format!("{b}/birth")])
        .await;
    // A's own birth, sent after them on the same connection: once the server has it, it
    // would have had them too.
    gw.publish(&gw.birth(healthy())).await;
    wait_state(&server, a, "online").await;
    assert_eq!(gateway_state(&server, b).await, "never_seen");

    // A payload about B on A's own topic passes the broker's ACL; the server drops it
    // (payload and topic disagree) and counts it.
    let before = server.metrics.dropped_count("topic_mismatch");
    let about_b = heartbeat_of(b, county, 7);
    gw.publish_raw(&format!("cw/v1/{county}/{a}/heartbeat"), about_b.encode())
        .await;
    wait_for("the mismatch to be counted", WAIT, || async {
        (server.metrics.dropped_count("topic_mismatch") > before).then_some(())
    })
    .await;
    let metrics = reqwest::get(format!("http://{}/metrics", server.http_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cw_messages_dropped_total{reason=\"topic_mismatch\"}"),
        "{metrics}"
    );
    assert_eq!(gateway_state(&server, b).await, "never_seen");
    assert_eq!(gateway_state(&server, a).await, "online");
    gw.kill();
    server.stop().await;
}

/// A campus whose id is a server's id cannot write that server's retained state, nor
/// anything but its four kinds of message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_named_like_a_server_cannot_write_the_servers_state() {
    let county = "150184";
    let Some(env) = Env::start(Env::good_cert, &[("main", "main-secret")]) else {
        return;
    };
    let login = env.login("main", "main-secret");
    let gw = RawGateway::connect_with(
        login.options("cw-main".to_string()).unwrap(),
        "main",
        county,
        1,
    )
    .await;
    gw.publish_raw(
        "cw/v1/server/main/state",
        b"{\"v\":2,\"server\":\"main\",\"state\":\"offline\"}".to_vec(),
    )
    .await;
    env.broker
        .wait_for_log(&["Denied PUBLISH", "cw-main", "cw/v1/server/main/state"])
        .await;
    gw.publish_raw(&format!("cw/v1/{county}/main/status"), b"{}".to_vec())
        .await;
    env.broker
        .wait_for_log(&["Denied PUBLISH", "cw-main", "main/status"])
        .await;
    gw.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_untrusted_or_misnamed_broker_certificate_is_refused_with_the_reason() {
    let (county, a) = ("150184", "t150184-a");
    let state = tempfile::tempdir().unwrap();
    type MakeCert = fn(&Pki) -> CertFiles;
    let cases: [(&str, MakeCert, &str); 3] = [
        (
            "expired",
            |pki| {
                pki.broker(
                    "expired",
                    &["127.0.0.1", "localhost"],
                    Signer::Trusted,
                    Validity::Expired,
                )
            },
            "the broker's certificate expired on 2021-01-01 00:00:00 UTC (this machine's clock reads ",
        ),
        (
            "untrusted",
            |pki| {
                pki.broker(
                    "rogue",
                    &["127.0.0.1", "localhost"],
                    Signer::Rogue,
                    Validity::Current,
                )
            },
            "the broker's certificate is not trusted (unknown issuer): check mqtt.ca_file (\"",
        ),
        (
            "misnamed",
            |pki| pki.broker("misnamed", &["broker.example"], Signer::Trusted, Validity::Current),
            "the broker's certificate is not valid for the host in mqtt.url (127.0.0.1:",
        ),
    ];
    for (case, cert, says) in cases {
        let Some(env) = Env::start(cert, &[(a, "a-secret")]) else {
            return;
        };
        let cfg = agent_with_login(a, county, &env.login(a, "a-secret"), state.path()).await;
        let check = check_broker(&cfg).await;
        assert_eq!(check.result, ProbeStatus::Fail, "{case}");
        assert!(check.reason.starts_with(says), "{case}: {}", check.reason);
        if case == "misnamed" {
            assert!(
                check.reason.contains("it names broker.example"),
                "{}",
                check.reason
            );
        }
        // Not a word reached the broker's MQTT layer: it saw a failed handshake.
        assert!(
            !env.broker
                .log()
                .iter()
                .any(|l| l.contains(&format!("as cw-{a}"))),
            "{case}: {:?}",
            env.broker.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_authenticate_campuses_and_bad_ones_are_refused() {
    let (county, a, b) = ("150185", "t150185-a", "t150185-b");
    let Some(env) = Env::start(Env::good_cert, &[]) else {
        return;
    };
    let server = env.server(county, &[a, b]).await;
    let cert_login = |files: Option<&CertFiles>| BrokerLogin {
        url: env.broker.cert_url(),
        ca_file: env.pki.ca_file().display().to_string(),
        client_cert_file: files
            .map(|f| f.cert.display().to_string())
            .unwrap_or_default(),
        client_key_file: files
            .map(|f| f.key.display().to_string())
            .unwrap_or_default(),
        ..BrokerLogin::default()
    };
    let a_cert = env.pki.client("a", a, Signer::Trusted, Validity::Current);
    let state = tempfile::tempdir().unwrap();
    let cfg = agent_with_login(a, county, &cert_login(Some(&a_cert)), state.path()).await;
    let check = check_broker(&cfg).await;
    assert_eq!(check.result, ProbeStatus::Ok, "{check:?}");
    assert_eq!(check.login, "TLS, client certificate");
    let agent = spawn_agent(cfg.clone());
    wait_state(&server, a, "online").await;
    // The broker took the certificate's CN as the user name.
    env.broker
        .wait_for_log(&[&format!("as cw-{a} "), &format!("u'{a}'")])
        .await;
    agent.stop().await;
    wait_state(&server, a, "offline").await;

    // A certificate from another CA, an expired one, and none at all.
    let rogue = env
        .pki
        .client("a-rogue", a, Signer::Rogue, Validity::Current);
    let expired = env
        .pki
        .client("a-expired", a, Signer::Trusted, Validity::Expired);
    for (files, says) in [
        (
            Some(&rogue),
            "the broker refused the client certificate (it was not issued by a CA the broker trusts): check mqtt.client_cert_file",
        ),
        (
            Some(&expired),
            "the broker refused the client certificate (it has expired or is not valid yet): check mqtt.client_cert_file",
        ),
        (None, "the broker at 127.0.0.1:"),
    ] {
        let mut bad = cfg.clone();
        let login = cert_login(files);
        bad.mqtt.client_cert_file = login.client_cert_file;
        bad.mqtt.client_key_file = login.client_key_file;
        let check = check_broker(&bad).await;
        assert_eq!(check.result, ProbeStatus::Fail, "{files:?}");
        assert!(check.reason.starts_with(says), "{files:?}: {}", check.reason);
        if files.is_none() {
            assert!(
                check.reason.contains("requires a client certificate: set mqtt.client_cert_file"),
                "{}",
                check.reason
            );
        }
    }

    // The certificate's identity binds topics as a password does: as A, B's birth is
    // dropped by the broker; A's own, sent after it, arrives.
    let gw = RawGateway::connect_with(
        cert_login(Some(&a_cert))
            .options(format!("cw-{a}"))
            .unwrap(),
        a,
        county,
        4_000_000_000,
    )
    .await;
    gw.publish(&as_campus(gw.birth(healthy()), b)).await;
    env.broker
        .wait_for_log(&["Denied PUBLISH", &format!("{b}/birth")])
        .await;
    gw.publish(&gw.birth(healthy())).await;
    wait_state(&server, a, "online").await;
    assert_eq!(gateway_state(&server, b).await, "never_seen");
    gw.kill();
    server.stop().await;
}
