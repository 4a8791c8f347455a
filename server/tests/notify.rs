//! Notice delivery end to end: a real store, the dispatcher, and real receivers on
//! loopback — HTTP servers bound on port 0 that record every request and answer as each
//! test scripts (errors, garbage, a hang), and an SMTP server that accepts mail. Time is
//! a manual clock: rounds are driven by `run_once`, never by sleeping. The Alertmanager
//! test runs the real `prometheus-alertmanager` (Debian package); without it, it says so
//! and passes locally, and fails in CI (`CI` set).

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine as _;
use campuswatch_protocol::{CampusId, DeviceId, RegionCode, Timestamp};
use campuswatch_server::clock::Clock;
use campuswatch_server::config::{ChannelConfig, ChannelKind, NotifyConfig, Secret, SmtpSecurity};
use campuswatch_server::metrics::Metrics;
use campuswatch_server::monitor::Change;
use campuswatch_server::notify::{CampusRef, Dispatcher, Notice, NoticeKind, Severity};
use campuswatch_server::store::Store;
use campuswatch_server::testing::ManualClock;
use chrono::{TimeDelta, TimeZone};
use hmac::{Hmac, Mac};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Bound for anything that should take milliseconds on loopback.
const DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Time

fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2027, 3, 1, 8, 0, 0).unwrap()
}

// ---------------------------------------------------------------------------------------
// An HTTP receiver

#[derive(Debug, Clone)]
struct Request {
    path: String,
    raw_query: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Value,
    status: u16,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone)]
enum Answer {
    Status(u16, &'static str),
    /// Never answers.
    Hang,
}

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Receiver {
    /// Answers `default` unless `script` says otherwise for the next request.
    async fn start(default: Answer) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            addr: listener.local_addr().unwrap(),
            requests: Arc::default(),
            script: Arc::default(),
            arrived: Arc::default(),
        };
        let state = r.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            let default = default.clone();
            async move {
                let answer = state.script.lock().unwrap().pop_front().unwrap_or(default);
                let status = match &answer {
                    Answer::Status(s, _) => *s,
                    Answer::Hang => 0,
                };
                let raw_query = uri.query().unwrap_or("").to_string();
                state.requests.lock().unwrap().push(Request {
                    path: uri.path().to_string(),
                    query: url::form_urlencoded::parse(raw_query.as_bytes())
                        .into_owned()
                        .collect(),
                    raw_query,
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    status,
                });
                state.arrived.notify_one();
                match answer {
                    Answer::Status(s, b) => (StatusCode::from_u16(s).unwrap(), b.to_string()),
                    Answer::Hang => std::future::pending().await,
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived.
    async fn wait_for(&self, n: usize) {
        tokio::time::timeout(DEADLINE, async {
            while self.requests.lock().unwrap().len() < n {
                self.arrived.notified().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} requests did not arrive; got {:?}", self.requests()));
    }
}

const OK: Answer = Answer::Status(200, "ok");
const ROBOT_OK: Answer = Answer::Status(200, r#"{"errcode":0,"errmsg":"ok"}"#);

// ---------------------------------------------------------------------------------------
// Notices, channels, a dispatcher on a fresh store

fn region(s: &str) -> RegionCode {
    RegionCode::parse(s).unwrap()
}

fn campus(id: &str, county: &str) -> CampusRef {
    CampusRef {
        id: CampusId::parse(id).unwrap(),
        name: format!("School {id}"),
        region: region(county),
    }
}

/// An alarm-link alert opening in `county`.
fn alert(n: u64, county: &str, severity: Severity) -> Notice {
    let c = campus(&format!("{county}-P-{n:04}"), county);
    Notice {
        id: format!("alert-{n}-opened"),
        kind: NoticeKind::AlertOpened,
        severity,
        region: Some(region(county)),
        title: format!("Alarm link down: {} ({}), alarm-1", c.name, c.id),
        campus: Some(c.clone()),
        device: Some(DeviceId::parse("alarm-1").unwrap()),
        link: Some("alarm".into()),
        alert_id: Some(n),
        incident_id: None,
        detail: "No ACK to the DC-09 link test.".into(),
        since: t0() - TimeDelta::minutes(3),
        at: t0(),
        campuses: Vec::new(),
        path: format!("/console/campuses/{}", c.id),
    }
}

fn resolved(opening: &Notice, at: Timestamp) -> Notice {
    Notice {
        id: opening.id.replace("-opened", "-resolved"),
        kind: NoticeKind::AlertResolved,
        severity: Severity::Info,
        title: opening.title.replace("down", "restored"),
        at,
        ..opening.clone()
    }
}

fn channel(name: &str, kind: ChannelKind, url: &str) -> ChannelConfig {
    ChannelConfig {
        rate_limit: 100,
        ..ChannelConfig::new(name, kind, url)
    }
}

/// One webhook channel, `hook`, posting to `rx`.
fn hook(rx: &Receiver) -> NotifyConfig {
    settings(vec![channel("hook", ChannelKind::Webhook, &rx.url("/"))])
}

fn settings(channels: Vec<ChannelConfig>) -> NotifyConfig {
    NotifyConfig {
        console_url: "https://console.example".into(),
        retry_initial: Duration::from_secs(5),
        retry_max: Duration::from_secs(60),
        give_up_after: Duration::from_secs(600),
        channels,
        ..NotifyConfig::default()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    metrics: Arc<Metrics>,
    config: NotifyConfig,
}

impl Setup {
    async fn new(config: NotifyConfig) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cw.db").display());
        Setup {
            store: Store::open(&url).await.unwrap(),
            _dir: dir,
            clock: ManualClock::new(t0()),
            metrics: Arc::new(Metrics::default()),
            config,
        }
    }

    async fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(
            self.store.clone(),
            &self.config,
            chrono_tz::Asia::Shanghai,
            self.clock.clone(),
            self.metrics.clone(),
        )
        .await
        .expect("dispatcher starts")
    }

    async fn commit(&self, notices: &[Notice]) {
        let changes: Vec<Change> = notices.iter().cloned().map(Change::Notice).collect();
        self.store.apply(&changes, self.clock.now()).await.unwrap();
    }

    /// (state, attempts, last_error) of a delivery.
    async fn delivery(
        &self,
        notice: &str,
        channel: &str,
    ) -> (String, u32, Option<String>, Timestamp) {
        let d = self
            .store
            .deliveries()
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.notice == notice && d.channel == channel)
            .unwrap_or_else(|| panic!("no delivery of {notice} to {channel}"));
        (d.state, d.attempts, d.last_error, d.next_at)
    }

    async fn assert_all_sent(&self) {
        let all = self.store.deliveries().await.unwrap();
        assert!(all.iter().all(|d| d.state == "sent"), "{all:#?}");
    }

    async fn routes(&self) -> Vec<(String, String)> {
        let mut r: Vec<_> = self
            .store
            .deliveries()
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.notice, d.channel))
            .collect();
        r.sort();
        r
    }
}

// ---------------------------------------------------------------------------------------
// Formats on the wire

#[tokio::test]
async fn the_webhook_gets_the_documented_json_with_the_notice_id_as_idempotency_key() {
    let rx = Receiver::start(OK).await;
    let s = Setup::new(settings(vec![channel(
        "hook",
        ChannelKind::Webhook,
        &rx.url("/in"),
    )]))
    .await;
    let mut d = s.dispatcher().await;
    let n = alert(42, "150102", Severity::Critical);
    s.commit(std::slice::from_ref(&n)).await;
    d.run_once().await.unwrap();

    let [req] = &rx.requests()[..] else {
        panic!("{:?}", rx.requests())
    };
    assert_eq!(req.path, "/in");
    assert_eq!(req.header("idempotency-key"), Some("alert-42-opened"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    let expected = serde_json::json!({
        "version": 1,
        "id": "alert-42-opened",
        "kind": "alert_opened",
        "severity": "critical",
        "resolved": false,
        "title": "Alarm link down: School 150102-P-0042 (150102-P-0042), alarm-1",
        "detail": "No ACK to the DC-09 link test.",
        "since": "2027-03-01T07:57:00.000Z",
        "at": "2027-03-01T08:00:00.000Z",
        "region": "150102",
        "campus": {"id": "150102-P-0042", "name": "School 150102-P-0042", "region": "150102"},
        "device": "alarm-1",
        "link": "alarm",
        "alert_id": 42,
        "incident_id": null,
        "campuses": [],
        "url": "https://console.example/console/campuses/150102-P-0042",
    });
    assert_eq!(req.body, expected);
    assert_eq!(s.delivery("alert-42-opened", "hook").await.0, "sent");
    assert_eq!(s.metrics.deliveries.count("hook", "sent"), 1);
}

#[tokio::test]
async fn wecom_gets_markdown_and_its_errcode_is_checked() {
    let rx = Receiver::start(ROBOT_OK).await;
    rx.script([
        Answer::Status(200, r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#),
        Answer::Status(200, "<html>busy</html>"),
    ]);
    let url = rx.url("/cgi-bin/webhook/send?key=secret-key-1");
    let s = Setup::new(settings(vec![channel("wecom", ChannelKind::Wecom, &url)])).await;
    let mut d = s.dispatcher().await;
    s.commit(&[alert(1, "150102", Severity::Warning)]).await;

    d.run_once().await.unwrap();
    let (state, attempts, error, next) = s.delivery("alert-1-opened", "wecom").await;
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    let error = error.unwrap();
    assert!(
        error.contains("errcode 93000: invalid webhook url"),
        "{error}"
    );
    assert!(!error.contains("secret-key-1"), "{error}");

    s.clock.set(next);
    d.run_once().await.unwrap();
    let (_, _, error, next) = s.delivery("alert-1-opened", "wecom").await;
    let error = error.unwrap();
    assert!(
        error.contains("not its JSON") && error.contains("<html>busy</html>"),
        "{error}"
    );

    s.clock.set(next);
    d.run_once().await.unwrap();
    assert_eq!(s.delivery("alert-1-opened", "wecom").await.0, "sent");

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    let last = &reqs[2];
    assert_eq!(last.path, "/cgi-bin/webhook/send");
    assert_eq!(last.query["key"], "secret-key-1");
    assert_eq!(last.body["msgtype"], "markdown");
    let content = last.body["markdown"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("**[WARNING] Alarm link down: School 150102-P-0001"),
        "{content}"
    );
    assert!(
        content.contains("> Since: 2027-03-01 15:57:00 (UTC+08:00)"),
        "{content}"
    );
    assert!(
        content.contains("No ACK to the DC-09 link test."),
        "{content}"
    );
    assert!(
        content.ends_with(
            "[Open in the console](https://console.example/console/campuses/150102-P-0001)"
        ),
        "{content}"
    );
    assert_eq!(last.body.as_object().unwrap().len(), 2, "{}", last.body);
}

#[tokio::test]
async fn dingtalk_gets_markdown_signed_with_its_secret() {
    let rx = Receiver::start(ROBOT_OK).await;
    rx.script([Answer::Status(
        200,
        r#"{"errcode":310000,"errmsg":"sign not match"}"#,
    )]);
    let mut c = channel(
        "ding",
        ChannelKind::Dingtalk,
        &rx.url("/robot/send?access_token=tok"),
    );
    // A secret whose signatures need URL encoding (+, / or = in the base64) is the
    // interesting case; any secret gives some.
    c.secret = Secret::new("SEC0123456789abcdef");
    let s = Setup::new(settings(vec![c])).await;
    let mut d = s.dispatcher().await;
    s.commit(&[alert(7, "150102", Severity::Critical)]).await;
    d.run_once().await.unwrap();
    let (state, _, error, next) = s.delivery("alert-7-opened", "ding").await;
    assert_eq!(state, "pending");
    assert!(error.unwrap().contains("errcode 310000: sign not match"));
    s.clock.set(next);
    d.run_once().await.unwrap();
    assert_eq!(s.delivery("alert-7-opened", "ding").await.0, "sent");

    for req in rx.requests() {
        assert_eq!(req.path, "/robot/send");
        assert_eq!(req.query["access_token"], "tok");
        let stamp: i64 = req.query["timestamp"].parse().unwrap();
        assert!(stamp == t0().timestamp_millis() || stamp == next.timestamp_millis());
        // Recomputed here, independently of the server's code.
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"SEC0123456789abcdef").unwrap();
        mac.update(format!("{stamp}\nSEC0123456789abcdef").as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(req.query["sign"], expected);
        // On the wire the signature is URL-encoded: no raw base64 specials.
        let raw = req
            .raw_query
            .split("sign=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        assert!(!raw.contains(['+', '/', '=']), "{raw}");
        assert_eq!(req.body["msgtype"], "markdown");
        assert_eq!(
            req.body["markdown"]["title"],
            "Alarm link down: School 150102-P-0007 (150102-P-0007), alarm-1"
        );
        let text = req.body["markdown"]["text"].as_str().unwrap();
        assert!(text.starts_with("**[CRITICAL] Alarm link down"), "{text}");
        assert!(text.contains("(https://console.example/console/campuses/150102-P-0007)"));
    }
}

#[tokio::test]
async fn alertmanager_gets_stable_labels_a_resolution_and_firing_alerts_again() {
    let rx = Receiver::start(OK).await;
    let s = Setup::new(settings(vec![channel(
        "am",
        ChannelKind::Alertmanager,
        &rx.url("/"),
    )]))
    .await;
    let mut d = s.dispatcher().await;
    let opening = alert(42, "150102", Severity::Critical);
    s.commit(std::slice::from_ref(&opening)).await;
    d.run_once().await.unwrap();
    // Not repeated within the resend interval...
    s.clock.advance(TimeDelta::seconds(30));
    d.run_once().await.unwrap();
    assert_eq!(rx.requests().len(), 1);
    // ...and repeated after it, since Alertmanager forgets what is not repeated.
    s.clock.advance(TimeDelta::seconds(31));
    d.run_once().await.unwrap();
    let close = s.clock.now() + TimeDelta::seconds(5);
    s.commit(&[resolved(&opening, close)]).await;
    s.clock.set(close);
    d.run_once().await.unwrap();
    // Resolved: not sent again.
    s.clock.advance(TimeDelta::minutes(5));
    d.run_once().await.unwrap();

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    let labels = serde_json::json!({
        "alertname": "CampuswatchLinkDown",
        "severity": "critical",
        "region": "150102",
        "campus": "150102-P-0042",
        "device": "alarm-1",
        "link": "alarm",
        "alert_id": "42",
    });
    for (i, req) in reqs.iter().enumerate() {
        assert_eq!(req.path, "/api/v2/alerts");
        let [a] = &req.body.as_array().unwrap()[..] else {
            panic!("{}", req.body)
        };
        assert_eq!(a["labels"], labels, "request {i}");
        assert_eq!(a["startsAt"], "2027-03-01T07:57:00.000Z");
        assert_eq!(
            a["generatorURL"],
            "https://console.example/console/campuses/150102-P-0042"
        );
        assert_eq!(a.as_object().unwrap().len(), 5, "{a}");
    }
    // Firing: ends four resend intervals after sending, unless repeated.
    assert_eq!(reqs[0].body[0]["endsAt"], "2027-03-01T08:04:00.000Z");
    assert_eq!(reqs[0].body[0]["annotations"]["summary"], opening.title);
    assert_eq!(reqs[1].body[0]["endsAt"], "2027-03-01T08:05:01.000Z");
    // The resolution ends it at its own time, with the opening's labels (its own
    // severity is info).
    assert_eq!(reqs[2].body[0]["endsAt"], "2027-03-01T08:01:06.000Z");
    assert_eq!(reqs[2].body[0]["annotations"]["kind"], "alert_resolved");
}

/// What a small SMTP server received.
#[derive(Debug)]
struct Mail {
    auth: Option<String>,
    from: String,
    to: Vec<String>,
    data: String,
}

/// An SMTP server that speaks enough of RFC 5321 (EHLO, AUTH PLAIN, MAIL, RCPT, DATA,
/// RSET, NOOP, QUIT) to accept mail, and hands each message over. With `tls`, it offers
/// STARTTLS (RFC 3207) with a certificate for localhost from the test CA in
/// `tests/fixtures`, and refuses mail before the upgrade, as real servers do.
async fn smtp_sink_with(
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Mail>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (tx, tls) = (tx.clone(), tls.clone());
            tokio::spawn(async move {
                let mut sock = sock;
                sock.write_all(b"220 sink.test ESMTP\r\n").await.unwrap();
                let upgrade = smtp_session(&mut sock, &tx, tls.is_some()).await;
                if let (Some(Upgrade), Some(acceptor)) = (upgrade, tls) {
                    // The client waits for our 220 before its TLS hello: nothing is
                    // left in the line reader, which is gone.
                    if let Ok(mut secure) = acceptor.accept(sock).await {
                        smtp_session(&mut secure, &tx, false).await;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// The client asked for STARTTLS and was told to go ahead.
struct Upgrade;

/// One SMTP conversation on `stream`; returns `Some` when the client starts TLS.
async fn smtp_session<S>(
    stream: &mut S,
    tx: &mpsc::UnboundedSender<Mail>,
    offer_tls: bool,
) -> Option<Upgrade>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let empty = || Mail {
        auth: None,
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    let mut mail = empty();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            if offer_tls {
                b"250-sink.test\r\n250 STARTTLS\r\n"
            } else {
                b"250-sink.test\r\n250 AUTH PLAIN LOGIN\r\n"
            }
        } else if upper == "STARTTLS" && offer_tls {
            reader
                .get_mut()
                .write_all(b"220 2.0.0 Ready to start TLS\r\n")
                .await
                .ok()?;
            return Some(Upgrade);
        } else if offer_tls && !upper.starts_with("QUIT") && !upper.starts_with("NOOP") {
            b"530 5.7.0 Must issue a STARTTLS command first\r\n"
        } else if let Some(b64) = upper.strip_prefix("AUTH PLAIN ").map(|_| &line[11..]) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap();
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            mail.auth = Some(format!("{}:{}", parts[1], parts[2]));
            b"235 2.7.0 Authentication successful\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_string();
            b"250 2.1.0 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_string());
            b"250 2.1.5 OK\r\n"
        } else if upper == "DATA" {
            reader
                .get_mut()
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await
                .ok()?;
            let mut l = String::new();
            loop {
                l.clear();
                if reader.read_line(&mut l).await.ok()? == 0 {
                    return None;
                }
                let l = l.trim_end_matches(['\r', '\n']);
                if l == "." {
                    break;
                }
                mail.data.push_str(l.strip_prefix('.').unwrap_or(l));
                mail.data.push('\n');
            }
            let auth = mail.auth.clone();
            let _ = tx.send(std::mem::replace(&mut mail, empty()));
            mail.auth = auth;
            b"250 2.0.0 queued\r\n"
        } else if upper == "QUIT" {
            let _ = reader.get_mut().write_all(b"221 2.0.0 bye\r\n").await;
            return None;
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 2.0.0 OK\r\n"
        } else {
            b"502 5.5.2 not implemented\r\n"
        };
        reader.get_mut().write_all(reply).await.ok()?;
    }
}

async fn smtp_sink() -> (SocketAddr, mpsc::UnboundedReceiver<Mail>) {
    smtp_sink_with(None).await
}

/// The test CA's certificate for localhost, as a TLS acceptor.
fn localhost_tls() -> tokio_rustls::TlsAcceptor {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(format!("{dir}/smtp-cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/smtp-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn an_email_has_the_title_as_subject_and_the_detail_and_link_in_its_body() {
    let (addr, mut inbox) = smtp_sink().await;
    let mut c = channel("mail", ChannelKind::Smtp, "");
    c.host = addr.ip().to_string();
    c.port = Some(addr.port());
    c.security = SmtpSecurity::None;
    c.username = "cw".into();
    c.password = Secret::new("pw-123");
    c.from = "campuswatch <cw@example.org>".into();
    c.to = vec!["duty@example.org".into(), "chief@example.org".into()];
    let s = Setup::new(settings(vec![c])).await;
    let mut d = s.dispatcher().await;
    s.commit(&[alert(5, "150102", Severity::Critical)]).await;
    d.run_once().await.unwrap();
    assert_eq!(s.delivery("alert-5-opened", "mail").await.0, "sent");

    let mail = tokio::time::timeout(DEADLINE, inbox.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mail.auth.as_deref(), Some("cw:pw-123"));
    assert_eq!(mail.from, "<cw@example.org>");
    assert_eq!(mail.to, ["<duty@example.org>", "<chief@example.org>"]);
    // Unfolded headers, and quoted-printable soft line breaks joined.
    let data = mail
        .data
        .replace("\n ", " ")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(
        data.contains("Subject: Alarm link down: School 150102-P-0005 (150102-P-0005), alarm-1\n"),
        "{data}"
    );
    assert!(
        data.contains("Message-ID: <alert-5-opened@campuswatch>"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/plain; charset=utf-8"),
        "{data}"
    );
    assert!(
        data.contains(
            "Where:    School 150102-P-0005 (150102-P-0005), region 150102, device alarm-1"
        ),
        "{data}"
    );
    assert!(
        data.contains("Since:    2027-03-01 15:57:00 (UTC+08:00)"),
        "{data}"
    );
    assert!(data.contains("No ACK to the DC-09 link test."), "{data}");
    assert!(
        data.contains("https://console.example/console/campuses/150102-P-0005"),
        "{data}"
    );
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_a_failed_attempt_with_the_reason() {
    // A port nothing listens on: bound, then closed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = channel("mail", ChannelKind::Smtp, "");
    c.host = addr.ip().to_string();
    c.port = Some(addr.port());
    c.security = SmtpSecurity::None;
    c.from = "cw@example.org".into();
    c.to = vec!["duty@example.org".into()];
    let s = Setup::new(settings(vec![c])).await;
    let mut d = s.dispatcher().await;
    s.commit(&[alert(5, "150102", Severity::Critical)]).await;
    d.run_once().await.unwrap();
    let (state, attempts, error, _) = s.delivery("alert-5-opened", "mail").await;
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    let error = error.unwrap();
    assert!(
        error.starts_with("SMTP: ") && error.to_lowercase().contains("refused"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------
// Routing

#[tokio::test]
async fn notices_are_routed_by_region_and_severity() {
    let rx = Receiver::start(OK).await;
    let url = rx.url("/");
    let mut county = channel("county", ChannelKind::Webhook, &url);
    county.regions = vec!["150102".into()];
    let mut city = channel("city", ChannelKind::Webhook, &url);
    city.regions = vec!["150100".into()];
    let mut other = channel("other", ChannelKind::Webhook, &url);
    other.regions = vec!["150203".into()];
    let mut critical = channel("critical", ChannelKind::Webhook, &url);
    critical.min_severity = Severity::Critical;
    let s = Setup::new(settings(vec![county, city, other, critical])).await;
    let mut d = s.dispatcher().await;

    let a = alert(1, "150102", Severity::Warning);
    let b = alert(2, "150105", Severity::Critical);
    let c = alert(3, "150203", Severity::Warning);
    let quiet = alert(4, "150102", Severity::Info);
    let mut incident = alert(5, "150100", Severity::Critical);
    incident.id = "incident-9-opened".into();
    incident.kind = NoticeKind::IncidentOpened;
    incident.alert_id = None;
    incident.incident_id = Some(9);
    incident.campus = None;
    incident.device = None;
    incident.campuses = vec![
        campus("150102-P-0001", "150102"),
        campus("150105-P-0002", "150105"),
    ];
    let mut outage = alert(6, "150102", Severity::Warning);
    outage.id = "monitoring-1-degraded".into();
    outage.kind = NoticeKind::MonitoringDegraded;
    outage.region = None;
    outage.campus = None;
    outage.alert_id = None;
    s.commit(&[a.clone(), b, c, quiet, incident, outage]).await;
    d.run_once().await.unwrap();
    // The resolution is `info`, below the channels' least severity: it follows its
    // opening to the channels that heard of it all the same.
    s.commit(&[resolved(&a, t0())]).await;
    d.run_once().await.unwrap();

    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<_> = v
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        s.routes().await,
        pairs(&[
            ("alert-1-opened", "county"),
            ("alert-1-opened", "city"),
            ("alert-1-resolved", "county"),
            ("alert-1-resolved", "city"),
            ("alert-2-opened", "city"),
            ("alert-2-opened", "critical"),
            ("alert-3-opened", "other"),
            ("incident-9-opened", "county"),
            ("incident-9-opened", "city"),
            ("incident-9-opened", "critical"),
            ("monitoring-1-degraded", "county"),
            ("monitoring-1-degraded", "city"),
            ("monitoring-1-degraded", "other"),
        ])
    );
    assert_eq!(rx.requests().len(), 13);
    s.assert_all_sent().await;
}

// ---------------------------------------------------------------------------------------
// Retries, give-up, restarts

#[tokio::test]
async fn a_failed_delivery_is_retried_with_growing_backoff_until_the_receiver_accepts() {
    let rx = Receiver::start(OK).await;
    rx.script([
        Answer::Status(500, "boom"),
        Answer::Status(502, "bad gateway"),
    ]);
    let s = Setup::new(hook(&rx)).await;
    let mut d = s.dispatcher().await;
    s.commit(&[alert(1, "150102", Severity::Warning)]).await;

    let next = d.run_once().await.unwrap().expect("a retry is due");
    let (state, attempts, error, next_at) = s.delivery("alert-1-opened", "hook").await;
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    assert_eq!(
        error.as_deref(),
        Some("HTTP 500 Internal Server Error: boom")
    );
    assert_eq!(next, next_at);
    let wait = next_at - t0();
    assert!(
        wait >= TimeDelta::milliseconds(2500) && wait <= TimeDelta::seconds(5),
        "{wait}"
    );

    // Nothing is attempted before it is due.
    s.clock.set(next_at - TimeDelta::milliseconds(1));
    d.run_once().await.unwrap();
    assert_eq!(rx.requests().len(), 1);

    s.clock.set(next_at);
    d.run_once().await.unwrap();
    let (_, attempts, error, next_at2) = s.delivery("alert-1-opened", "hook").await;
    assert_eq!(attempts, 2);
    assert!(error.unwrap().starts_with("HTTP 502"));
    let wait = next_at2 - next_at;
    assert!(
        wait >= TimeDelta::seconds(5) && wait <= TimeDelta::seconds(10),
        "{wait}"
    );

    s.clock.set(next_at2);
    d.run_once().await.unwrap();
    assert_eq!(s.delivery("alert-1-opened", "hook").await.0, "sent");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs
        .iter()
        .all(|r| r.header("idempotency-key") == Some("alert-1-opened")));
    assert_eq!(s.metrics.deliveries.count("hook", "retried"), 2);
    assert_eq!(s.metrics.deliveries.count("hook", "sent"), 1);
}

#[tokio::test]
async fn a_delivery_is_given_up_after_the_limit_with_its_last_error() {
    let rx = Receiver::start(Answer::Status(503, "down for maintenance")).await;
    let mut cfg = hook(&rx);
    cfg.give_up_after = Duration::from_secs(120);
    let s = Setup::new(cfg).await;
    let mut d = s.dispatcher().await;
    s.commit(&[
        alert(1, "150102", Severity::Warning),
        alert(2, "150102", Severity::Warning),
    ])
    .await;

    let mut rounds = 0;
    while let Some(next) = d.run_once().await.unwrap() {
        rounds += 1;
        assert!(rounds < 100, "never gave up");
        s.clock.set(next);
    }
    let give_up_at = t0() + TimeDelta::seconds(120);
    for id in ["alert-1-opened", "alert-2-opened"] {
        let (state, attempts, error, _) = s.delivery(id, "hook").await;
        assert_eq!(state, "failed");
        assert!(attempts >= 3, "{attempts}");
        assert_eq!(
            error.as_deref(),
            Some("HTTP 503 Service Unavailable: down for maintenance")
        );
    }
    // The last attempt is made at the limit, not skipped because a backoff overshot it.
    let last = rx.requests().len();
    assert!(s.clock.now() >= give_up_at);
    assert!(last >= 6, "{last}");
    assert_eq!(s.metrics.deliveries.count("hook", "failed"), 2);
    assert_eq!(s.metrics.deliveries.count("hook", "sent"), 0);
}

#[tokio::test]
async fn a_dispatcher_restarted_mid_way_loses_and_repeats_nothing() {
    let rx = Receiver::start(OK).await;
    rx.script([OK, OK, OK, Answer::Status(500, "overloaded")]);
    let s = Setup::new(hook(&rx)).await;
    // Two-digit numbers, so that the ids sort like the numbers.
    let notices: Vec<Notice> = (11..=20)
        .map(|i| alert(i, "150102", Severity::Warning))
        .collect();
    s.commit(&notices).await;

    let mut first = s.dispatcher().await;
    first.run_once().await.unwrap();
    assert_eq!(rx.requests().len(), 4);
    drop(first);

    s.clock.advance(TimeDelta::minutes(5));
    let mut second = s.dispatcher().await;
    second.run_once().await.unwrap();

    let mut accepted: Vec<String> = rx
        .requests()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    accepted.sort();
    let expected: Vec<String> = notices.iter().map(|n| n.id.clone()).collect();
    assert_eq!(accepted, expected, "each notice accepted exactly once");
    assert_eq!(
        rx.requests().len(),
        11,
        "one refused attempt, then each notice once"
    );
    s.assert_all_sent().await;
}

#[tokio::test]
async fn an_attempt_cut_short_by_a_crash_is_sent_again_with_the_same_idempotency_key() {
    let rx = Receiver::start(OK).await;
    rx.script([OK, Answer::Hang]);
    let s = Setup::new(hook(&rx)).await;
    s.commit(&[
        alert(1, "150102", Severity::Warning),
        alert(2, "150102", Severity::Warning),
        alert(3, "150102", Severity::Warning),
    ])
    .await;

    let mut first = s.dispatcher().await;
    tokio::select! {
        r = first.run_once() => panic!("the round should hang on the second notice: {r:?}"),
        _ = rx.wait_for(2) => {}
    }
    drop(first); // the "crash": the attempt under way is abandoned
    assert_eq!(s.delivery("alert-2-opened", "hook").await.0, "sending");

    let mut second = s.dispatcher().await;
    second.run_once().await.unwrap();
    let keys: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "alert-1-opened",
            "alert-2-opened",
            "alert-2-opened",
            "alert-3-opened"
        ]
    );
    let (state, attempts, error, _) = s.delivery("alert-2-opened", "hook").await;
    assert_eq!((state.as_str(), attempts), ("sent", 2));
    assert!(error.unwrap().contains("interrupted by a restart"));
}

// ---------------------------------------------------------------------------------------
// Rate limit

#[tokio::test]
async fn a_burst_over_the_rate_limit_sends_the_allowed_ones_and_one_summary() {
    let rx = Receiver::start(OK).await;
    let mut c = channel("hook", ChannelKind::Webhook, &rx.url("/"));
    c.rate_limit = 5;
    let s = Setup::new(settings(vec![c])).await;
    let mut d = s.dispatcher().await;
    let mut burst: Vec<Notice> = (11..=22)
        .map(|i| alert(i, "150102", Severity::Warning))
        .collect();
    burst[8].severity = Severity::Critical;
    s.commit(&burst).await;
    d.run_once().await.unwrap();

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 6, "{reqs:?}");
    let ids: Vec<&str> = reqs
        .iter()
        .map(|r| r.body["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        &ids[..5],
        [
            "alert-11-opened",
            "alert-12-opened",
            "alert-13-opened",
            "alert-14-opened",
            "alert-15-opened"
        ]
    );
    let summary = &reqs[5].body;
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["severity"], "critical");
    assert_eq!(
        summary["title"],
        "7 more notices: rate limit of channel hook reached"
    );
    let detail = summary["detail"].as_str().unwrap();
    assert!(detail.contains("By kind: alert_opened 7."), "{detail}");
    assert!(
        detail.contains("By severity: critical 1, warning 6."),
        "{detail}"
    );
    assert!(detail.contains("School 150102-P-0016"), "{detail}");
    assert!(detail.contains("and 2 more"), "{detail}");
    let folded: Vec<_> = s
        .store
        .deliveries()
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.state == "summarized")
        .collect();
    assert_eq!(folded.len(), 7);
    assert!(folded
        .iter()
        .all(|d| d.summary.as_deref() == summary["id"].as_str()));
    assert_eq!(s.metrics.deliveries.count("hook", "summarized"), 7);
    assert_eq!(s.metrics.deliveries.count("hook", "sent"), 6);

    // Within the same minute, a new notice waits for room: no second summary.
    s.clock.advance(TimeDelta::seconds(10));
    s.commit(&[alert(23, "150102", Severity::Warning)]).await;
    let next = d.run_once().await.unwrap().expect("room is due");
    assert_eq!(rx.requests().len(), 6);
    assert_eq!(next, t0() + TimeDelta::seconds(60));
    s.clock.set(next);
    d.run_once().await.unwrap();
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 7);
    assert_eq!(reqs[6].body["id"], "alert-23-opened");
}

// ---------------------------------------------------------------------------------------
// The running task

#[tokio::test]
async fn committing_a_notice_wakes_the_running_dispatcher() {
    let rx = Receiver::start(OK).await;
    let mut cfg = hook(&rx);
    // Only a wake-up can deliver within the test's deadline.
    cfg.poll_interval = Duration::from_secs(3600);
    let s = Setup::new(cfg).await;
    s.commit(&[alert(1, "150102", Severity::Warning)]).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(s.dispatcher().await.run(shutdown.clone()));
    rx.wait_for(1).await;
    s.commit(&[alert(2, "150102", Severity::Warning)]).await;
    rx.wait_for(2).await;
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_starts_the_dispatcher_and_counts_deliveries_in_metrics() {
    use campuswatch_server::config::ServerConfig;
    let rx = Receiver::start(OK).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        notify: hook(&rx),
        ..common::local_config(dir.path())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(cfg, listener)
        .await
        .expect("server starts");
    let mut n = alert(1, "150102", Severity::Warning);
    n.at = chrono::Utc::now();
    server
        .store
        .apply(&[Change::Notice(n)], chrono::Utc::now())
        .await
        .unwrap();
    rx.wait_for(1).await;
    let metrics_url = format!("http://{}/metrics", server.http_addr());
    let body = tokio::time::timeout(DEADLINE, async {
        loop {
            let body = reqwest::get(&metrics_url)
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if body.contains("cw_notify_deliveries_total{channel=\"hook\",outcome=\"sent\"} 1") {
                return body;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the delivery is counted");
    assert!(body.contains("cw_notify_deliveries_total{channel=\"hook\",outcome=\"failed\"} 0"));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// A real Alertmanager

/// The Alertmanager binary: `CAMPUSWATCH_TEST_ALERTMANAGER`, else the Debian package's
/// `prometheus-alertmanager` or an `alertmanager` on the PATH. Missing in CI is a failure.
fn alertmanager_binary() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("CAMPUSWATCH_TEST_ALERTMANAGER") {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["prometheus-alertmanager", "alertmanager"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("Alertmanager is not installed (apt-get install prometheus-alertmanager, or set CAMPUSWATCH_TEST_ALERTMANAGER)");
    }
    eprintln!("SKIPPED: Alertmanager is not installed (apt-get install prometheus-alertmanager)");
    None
}

/// Starts Alertmanager on a free port with `hook` as its only receiver; returns the
/// process (killed on drop) and its address, read from its log.
async fn start_alertmanager(
    bin: &std::path::Path,
    dir: &std::path::Path,
    hook: &str,
) -> (tokio::process::Child, SocketAddr) {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: hook\n  group_by: ['alertname', 'alert_id']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {hook}\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg("--cluster.listen-address=")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
            if line.contains("msg=\"Listening on\"") {
                let addr = line
                    .split("address=")
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap();
                return addr.parse::<SocketAddr>().unwrap();
            }
        }
        panic!("Alertmanager exited:\n{log}");
    })
    .await
    .expect("Alertmanager says where it listens");
    // Keep reading its log so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_fires_and_resolves_the_alert() {
    let Some(bin) = alertmanager_binary() else {
        return;
    };
    let hook = Receiver::start(OK).await;
    let dir = tempfile::tempdir().unwrap();
    let (_am, am) = start_alertmanager(&bin, dir.path(), &hook.url("/hook")).await;
    let api = format!("http://{am}/api/v2/alerts");

    let s = Setup::new(settings(vec![channel(
        "am",
        ChannelKind::Alertmanager,
        &format!("http://{am}"),
    )]))
    .await;
    // Alertmanager judges startsAt/endsAt by its own clock: the test's clock is real time.
    let now = chrono::Utc::now();
    s.clock.set(now);
    let mut d = s.dispatcher().await;
    let mut opening = alert(42, "150102", Severity::Critical);
    opening.since = now - TimeDelta::minutes(3);
    opening.at = now;
    s.commit(std::slice::from_ref(&opening)).await;
    d.run_once().await.unwrap();
    assert_eq!(s.delivery("alert-42-opened", "am").await.0, "sent");

    let ours = |alerts: &Value| -> Option<Value> {
        alerts
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alert_id"] == "42")
            .cloned()
    };
    let client = reqwest::Client::new();
    let get = || async {
        client
            .get(&api)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let active = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(a) = ours(&get().await) {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("Alertmanager lists the alert");
    assert_eq!(active["status"]["state"], "active");
    assert_eq!(active["labels"]["alertname"], "CampuswatchLinkDown");
    assert_eq!(active["labels"]["severity"], "critical");
    assert_eq!(active["labels"]["campus"], "150102-P-0042");
    assert_eq!(active["annotations"]["summary"], opening.title);
    assert_eq!(
        active["generatorURL"],
        "https://console.example/console/campuses/150102-P-0042"
    );

    // Alertmanager's own receiver is told: firing...
    let notified = |status: &'static str| {
        let hook = hook.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    if let Some(r) = hook
                        .requests()
                        .into_iter()
                        .find(|r| r.body["status"] == status)
                    {
                        return r;
                    }
                    hook.arrived.notified().await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no {status} notification; got {:?}", hook.requests()))
        }
    };
    let firing = notified("firing").await;
    assert_eq!(firing.body["alerts"][0]["labels"]["device"], "alarm-1");

    // ...and resolved by the resolution, whose own severity (info) does not split it off.
    let at = chrono::Utc::now();
    s.clock.set(at);
    s.commit(&[resolved(&opening, at)]).await;
    d.run_once().await.unwrap();
    assert_eq!(s.delivery("alert-42-resolved", "am").await.0, "sent");
    let resolved_note = notified("resolved").await;
    assert_eq!(resolved_note.body["alerts"][0]["labels"]["alert_id"], "42");
    assert_eq!(resolved_note.body["alerts"][0]["status"], "resolved");
    tokio::time::timeout(Duration::from_secs(30), async {
        while ours(&get().await).is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("Alertmanager no longer lists the alert as active");
}

/// An SMTP channel to `addr` as `localhost`, with STARTTLS.
fn starttls_channel(addr: SocketAddr, ca_file: &str) -> ChannelConfig {
    let mut c = channel("mail", ChannelKind::Smtp, "");
    c.host = "localhost".into();
    c.port = Some(addr.port());
    c.security = SmtpSecurity::Starttls;
    c.ca_file = ca_file.into();
    c.username = "cw".into();
    c.password = Secret::new("pw-123");
    c.from = "cw@example.org".into();
    c.to = vec!["duty@example.org".into()];
    c
}

const TEST_CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp-ca.pem");

#[tokio::test]
async fn e_mail_goes_over_starttls_to_a_server_with_a_certificate_of_the_authoritys_own_ca() {
    let (addr, mut inbox) = smtp_sink_with(Some(localhost_tls())).await;
    let s = Setup::new(settings(vec![starttls_channel(addr, TEST_CA)])).await;
    let mut d = s.dispatcher().await;
    s.commit(&[alert(5, "150102", Severity::Critical)]).await;
    d.run_once().await.unwrap();
    let (state, _, error, _) = s.delivery("alert-5-opened", "mail").await;
    assert_eq!(state, "sent", "{error:?}");
    let mail = tokio::time::timeout(DEADLINE, inbox.recv())
        .await
        .unwrap()
        .unwrap();
    // The password travelled only inside TLS: the sink refuses AUTH before STARTTLS.
    assert_eq!(mail.auth.as_deref(), Some("cw:pw-123"));
    assert!(
        mail.data.contains("Subject: Alarm link down"),
        "{}",
        mail.data
    );
}

#[tokio::test]
async fn an_untrusted_certificate_or_a_server_without_starttls_is_not_sent_to() {
    // The certificate's CA is not trusted without ca_file.
    let (addr, _inbox) = smtp_sink_with(Some(localhost_tls())).await;
    let s = Setup::new(settings(vec![starttls_channel(addr, "")])).await;
    let mut d = s.dispatcher().await;
    s.commit(&[alert(5, "150102", Severity::Critical)]).await;
    d.run_once().await.unwrap();
    let (state, _, error, _) = s.delivery("alert-5-opened", "mail").await;
    assert_eq!(state, "pending");
    let error = error.unwrap_or_default().to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("issuer"),
        "{error}"
    );

    // A server that offers no STARTTLS gets nothing in clear.
    let (addr, mut inbox) = smtp_sink().await;
    let s = Setup::new(settings(vec![starttls_channel(addr, TEST_CA)])).await;
    let mut d = s.dispatcher().await;
    s.commit(&[alert(6, "150102", Severity::Critical)]).await;
    d.run_once().await.unwrap();
    assert_eq!(s.delivery("alert-6-opened", "mail").await.0, "pending");
    assert!(inbox.try_recv().is_err(), "nothing was sent in clear");
}
