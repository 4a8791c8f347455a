//! The OpenAPI document against the code. It is generated from the handlers and types
//! (`campuswatch_server::api::openapi_json`), so what is tested here is that the copy in
//! `docs/openapi.json` is that document, that every documented operation is routed (and
//! nothing else on a documented path), that its `$ref`s resolve, and that the JSON a real
//! server returns has exactly the fields (and nullability and types) it says: the
//! schemas of the server's records that the API passes through are described by hand
//! (`api/schemas.rs`), and this is what keeps them true.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use campuswatch_protocol::{DeviceInfo, DeviceKind, DeviceReport, DeviceState, SchoolType};
use campuswatch_server::config::{AlertsConfig, ServerConfig};
use campuswatch_server::ServerHandle;
use campuswatch_testkit::{device, wait_until};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(15);

/// Set to write the generated document to `docs/openapi.json`.
const UPDATE: &str = "CAMPUSWATCH_UPDATE_OPENAPI";

/// The generated document.
fn doc() -> Value {
    serde_json::from_str(&campuswatch_server::api::openapi_json())
        .expect("the generated document is JSON")
}

#[test]
fn the_document_is_openapi_3() {
    let d = doc();
    let version = d["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3."), "openapi is {version}");
    assert!(d["info"]["title"].is_string());
    assert!(d["paths"].is_object());
}

#[test]
fn docs_openapi_json_is_the_generated_document() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let generated = campuswatch_server::api::openapi_json();
    if std::env::var_os(UPDATE).is_some() {
        std::fs::write(&path, &generated).expect("docs/openapi.json is written");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "docs/openapi.json is not the document the code generates (they differ from line \
             {line}: {:?} in the file, {:?} generated). Refresh it with\n\n    \
             {UPDATE}=1 cargo test -p campuswatch-server --test openapi\n\nand commit it.",
            committed.lines().nth(line - 1).unwrap_or("(end of file)"),
            generated.lines().nth(line - 1).unwrap_or("(end of file)"),
        );
    }
}

/// Every documented operation of every documented path, with its path parameters filled
/// in: `(method, path as documented, path to ask)`.
fn documented_operations(d: &Value) -> Vec<(String, String, String)> {
    let mut ops = Vec::new();
    for (path, item) in d["paths"].as_object().expect("paths is an object") {
        let asked = path.replace("{id}", "1");
        assert!(
            !asked.contains('{'),
            "{path}: a path parameter the test does not know"
        );
        for method in item.as_object().expect("a path item").keys() {
            ops.push((method.to_uppercase(), path.clone(), asked.clone()));
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_no_other_method_of_its_path() {
    let d = doc();
    let ops = documented_operations(&d);
    assert!(ops.len() >= 20, "only {} operations documented", ops.len());
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(common::local_config(dir.path()), listener)
        .await
        .expect("server starts");
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr());
    // What the router answers for a path it does not have, and for a method a path does
    // not take.
    let fallback = http
        .get(format!("{base}/api/v1/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_eq!(fallback.status(), 404);
    let fallback: Value = fallback.json().await.unwrap();
    let routed = |status: u16, body: &Value| status != 405 && !(status == 404 && *body == fallback);
    let mut wrong = Vec::new();
    for (method, path, asked) in &ops {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        // An empty body: a request that changes something is refused, but by its handler.
        let resp = http
            .request(m, format!("{base}{asked}"))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = if path == "/api/v1/live" {
            Value::Null // a stream that does not end
        } else {
            resp.json().await.unwrap_or(Value::Null)
        };
        if !routed(status, &body) {
            wrong.push(format!(
                "{method} {path} is documented but answers {status} {body}"
            ));
        }
    }
    let paths: BTreeSet<&str> = ops.iter().map(|(_, p, _)| p.as_str()).collect();
    for path in paths {
        let asked = path.replace("{id}", "1");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if ops.iter().any(|(m, p, _)| m == method && p == path) {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let resp = http
                .request(m, format!("{base}{asked}"))
                .send()
                .await
                .unwrap();
            if resp.status() != 405 {
                wrong.push(format!(
                    "{method} {path} is not documented but answers {}",
                    resp.status()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    server.stop().await;
}

#[test]
fn every_ref_resolves() {
    fn walk(d: &Value, v: &Value, missing: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        let r = x.as_str().unwrap_or_default();
                        if pointer(d, r).is_none() {
                            missing.push(r.to_string());
                        }
                    } else {
                        walk(d, x, missing);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(d, x, missing)),
            _ => {}
        }
    }
    let d = doc();
    let mut missing = Vec::new();
    walk(&d, &d, &mut missing);
    assert!(missing.is_empty(), "unresolved $refs: {missing:?}");
}

// ---- schema walking -------------------------------------------------------------------

fn pointer<'a>(d: &'a Value, r: &str) -> Option<&'a Value> {
    d.pointer(r.strip_prefix('#')?)
}

/// Follows `$ref`s to the schema itself.
fn resolve<'a>(d: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        s = pointer(d, r).unwrap_or_else(|| panic!("unresolved $ref {r}"));
    }
    s
}

/// The properties of an object schema, merged over `allOf` (how `#[serde(flatten)]` is
/// written), with the keys it requires; `None` if the schema lists no properties.
#[allow(clippy::type_complexity)]
fn properties<'a>(
    d: &'a Value,
    s: &'a Value,
) -> Option<(Vec<(&'a str, &'a Value)>, BTreeSet<&'a str>)> {
    let s = resolve(d, s);
    let mut out: Vec<(&str, &Value)> = Vec::new();
    let mut required = BTreeSet::new();
    let mut any = false;
    if let Some(p) = s.get("properties").and_then(Value::as_object) {
        any = true;
        out.extend(p.iter().map(|(k, v)| (k.as_str(), v)));
        required.extend(
            s.get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        );
    }
    for part in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some((p, r)) = properties(d, part) {
            any = true;
            out.extend(p);
            required.extend(r);
        }
    }
    any.then_some((out, required))
}

/// The types a schema allows (`type: "string"` or, in OpenAPI 3.1, `type: ["string",
/// "null"]`); empty if it does not say.
fn types(s: &Value) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Checks `v` against schema `s`: objects have every key their schema requires and none
/// it does not list, `null` only where the schema allows it (`type` with `null`, or a
/// `oneOf` with a `null` alternative), types and enums. Pushes what is wrong onto `errs`.
fn check(d: &Value, s: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let s = resolve(d, s);
    if let Some(alternatives) = s.get("oneOf").and_then(Value::as_array) {
        // `Option<T>` of a named schema: `oneOf: [{type: null}, {$ref: T}]`; otherwise
        // one of several shapes.
        let (nulls, others): (Vec<&Value>, Vec<&Value>) = alternatives
            .iter()
            .partition(|a| types(resolve(d, a)) == ["null"]);
        if v.is_null() {
            if nulls.is_empty() {
                errs.push(format!("{at}: null but the schema does not allow null"));
            }
            return;
        }
        let mut tried = Vec::new();
        for alternative in &others {
            let mut e = Vec::new();
            check(d, alternative, v, at, &mut e);
            if e.is_empty() {
                return;
            }
            tried.extend(e);
        }
        errs.push(format!(
            "{at}: {v} fits none of oneOf: {}",
            tried.join("; ")
        ));
        return;
    }
    let ts = types(s);
    if v.is_null() {
        if !ts.contains(&"null") {
            errs.push(format!("{at}: null but the schema does not allow null"));
        }
        return;
    }
    if let Some((props, required)) = properties(d, s) {
        let Some(obj) = v.as_object() else {
            errs.push(format!("{at}: expected an object, got {v}"));
            return;
        };
        let listed: BTreeSet<&str> = props.iter().map(|(k, _)| *k).collect();
        let got: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        let missing: Vec<_> = required.difference(&got).collect();
        let extra: Vec<_> = got.difference(&listed).collect();
        if !missing.is_empty() || !extra.is_empty() {
            errs.push(format!(
                "{at}: keys {got:?}, the document lists {listed:?} and requires \
                 {required:?} (missing {missing:?}, extra {extra:?})"
            ));
        }
        for (k, ps) in props {
            if let Some(x) = obj.get(k) {
                check(d, ps, x, &format!("{at}.{k}"), errs);
            }
        }
        return;
    }
    // A schema without properties of its own: a wrapper (`allOf: [$ref]`) or a leaf.
    for part in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check(d, part, v, at, errs);
    }
    let fits = |t: &str| match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => false,
        other => {
            panic!("{at}: unknown schema type {other}");
        }
    };
    if !ts.is_empty() && !ts.iter().any(|t| fits(t)) {
        errs.push(format!("{at}: {v} is not of type {}", s["type"]));
    }
    if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            check(d, items, x, &format!("{at}[{i}]"), errs);
        }
    }
    if let (Some(obj), Some(ap)) = (v.as_object(), s.get("additionalProperties")) {
        if ap.is_object() {
            for (k, x) in obj {
                check(d, ap, x, &format!("{at}.{k}"), errs);
            }
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            errs.push(format!("{at}: {v} is not one of {allowed:?}"));
        }
    }
}

/// The JSON schema the document gives for a 200 response of `GET path`.
fn response_schema<'a>(d: &'a Value, path: &str) -> &'a Value {
    let s = &d["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(
        s.is_object(),
        "GET {path} has no application/json 200 schema"
    );
    s
}

// ---- a real server ----------------------------------------------------------------------

const COUNTY: &str = "150102";

/// [`device`], with `latency` as its only measurement if any, and the identity of an up
/// camera.
fn report(id: &str, kind: DeviceKind, state: DeviceState, latency: Option<f64>) -> DeviceReport {
    DeviceReport {
        measurements: latency
            .map(|l| [("latency_ms".to_string(), l)].into_iter().collect())
            .unwrap_or_default(),
        // One device with its identity, the others without: both shapes are checked.
        info: (kind == DeviceKind::Camera && state == DeviceState::Up).then(|| DeviceInfo {
            manufacturer: Some("HIKVISION".into()),
            model: Some("DS-2CD2143G2-I".into()),
            firmware: Some("V5.7.3 build 220112".into()),
            serial: Some("DS-2CD2143G2-I20220101AAWRJ12345678".into()),
            hardware: Some("88".into()),
        }),
        ..device(id, kind, state)
    }
}

async fn get(http: &reqwest::Client, server: &ServerHandle, path: &str) -> (u16, Value) {
    let url = format!("http://{}{}", server.http_addr(), path);
    let resp = http.get(&url).send().await.expect("the API answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("the API answers JSON"))
}

/// POSTs a registry of one campus, `c-4` in `region`, to `{base}/api/v1/registry{query}`:
/// the answer is `status`, with the body the document gives for it (what differs goes
/// to `errs`).
async fn post_registry(
    http: &reqwest::Client,
    d: &Value,
    base: &str,
    query: &str,
    region: &str,
    status: u16,
    errs: &mut Vec<String>,
) {
    let resp = http
        .post(format!("{base}/api/v1/registry{query}"))
        .header("content-type", "text/csv")
        .body(format!(
            "id,name,region,school_type,expected_alarms,expected_cameras\nc-4,Four,{region},primary,1,1\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), status);
    let body: Value = resp.json().await.unwrap();
    check(
        d,
        &d["paths"]["/api/v1/registry"]["post"]["responses"][status.to_string()]["content"]
            ["application/json"]["schema"],
        &body,
        &format!("POST /api/v1/registry ({status})"),
        errs,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_responses_have_exactly_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let local = common::local_config(dir.path());
    let cfg = ServerConfig {
        // Alerts at once: the test looks at their shape, not their timing.
        alerts: AlertsConfig {
            hold_down_gateway: Duration::ZERO,
            hold_down_alarm: Duration::ZERO,
            hold_down_camera: Duration::ZERO,
            ..local.alerts.clone()
        },
        ..local
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(cfg, listener)
        .await
        .expect("server starts");
    server
        .import_registry(
            vec![
                common::registry_entry("c-1", COUNTY, SchoolType::Primary, 1, 2),
                common::registry_entry("c-2", COUNTY, SchoolType::Kindergarten, 1, 1),
                common::registry_entry("c-3", "150203", SchoolType::Secondary, 2, 8),
            ],
            false,
        )
        .await
        .expect("registry imports");

    // c-1 reports with a camera down (an open alert); x-9 reports but is not registered.
    let broker = common::broker_addr(&server);
    let _c1 = common::gateway(
        broker,
        "c-1",
        COUNTY,
        vec![
            report("alarm-1", DeviceKind::Alarm, DeviceState::Up, Some(3.0)),
            report("cam-1", DeviceKind::Camera, DeviceState::Up, None),
            report("cam-2", DeviceKind::Camera, DeviceState::Down, None),
        ],
    )
    .await;
    let _x9 = common::gateway(
        broker,
        "x-9",
        COUNTY,
        vec![report("cam-1", DeviceKind::Camera, DeviceState::Up, None)],
    )
    .await;

    let http = reqwest::Client::new();
    wait_until(
        "c-1 online with host health, x-9 seen, an open alert and events",
        DEADLINE,
        async || {
            let (_, c1) = get(&http, &server, "/api/v1/campuses/c-1").await;
            let (x9, _) = get(&http, &server, "/api/v1/campuses/x-9").await;
            let (_, alerts) = get(&http, &server, "/api/v1/alerts").await;
            let (_, events) = get(&http, &server, "/api/v1/events").await;
            c1["gateway_state"] == "online"
                && c1["gateway"]["health"].is_object()
                && c1["alerts"].as_array().is_some_and(|a| !a.is_empty())
                && x9 == 200
                && alerts["alerts"].as_array().is_some_and(|a| !a.is_empty())
                && events["events"].as_array().is_some_and(|a| !a.is_empty())
        },
    )
    .await;

    // An operator acknowledges c-1's alert: the answer is the documented alert, and so is
    // every listing of it from now on.
    let alert_id = get(&http, &server, "/api/v1/alerts?state=open").await.1["alerts"][0]["id"]
        .as_u64()
        .expect("an alert id");
    let ack = http
        .post(format!(
            "http://{}/api/v1/alerts/{alert_id}/ack",
            server.http_addr()
        ))
        .json(&serde_json::json!({"by": "duty officer", "comment": "technician called"}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(ack.status(), 200);
    let acked: Value = ack.json().await.unwrap();
    assert_eq!(acked["acknowledged"]["by"], "duty officer");

    let d = doc();
    let mut errs = Vec::new();
    let schema = &d["paths"]["/api/v1/alerts/{id}/ack"]["post"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    check(
        &d,
        schema,
        &acked,
        "POST /api/v1/alerts/{id}/ack",
        &mut errs,
    );
    for (id, body, status) in [
        ("999999", serde_json::json!({"by": "x"}), 404),
        (
            &alert_id.to_string(),
            serde_json::json!({"comment": "who?"}),
            400,
        ),
        (&alert_id.to_string(), serde_json::json!({"by": "  "}), 400),
        ("abc", serde_json::json!({"by": "x"}), 400),
    ] {
        let resp = http
            .post(format!(
                "http://{}/api/v1/alerts/{id}/ack",
                server.http_addr()
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "ack {id} {body}");
        let err: Value = resp.json().await.unwrap();
        assert!(err["error"].is_string(), "{err}");
    }
    // A maintenance window is planned, listed and withdrawn, in the documented shapes.
    let base = format!("http://{}", server.http_addr());
    let planned = http
        .post(format!("{base}/api/v1/maintenance"))
        .json(&serde_json::json!({
            "scope": "campus", "campus": "c-2",
            "schedule": {"repeat": "daily", "at": "22:00:00", "minutes": 540, "weekdays": ["Mon", "Fri"]},
            "comment": "cameras off at night", "created_by": "kindergarten office"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(planned.status(), 201);
    let planned: Value = planned.json().await.unwrap();
    let schema = &d["paths"]["/api/v1/maintenance"]["post"]["responses"]["201"]["content"]
        ["application/json"]["schema"];
    check(&d, schema, &planned, "POST /api/v1/maintenance", &mut errs);
    let bad = http
        .post(format!("{base}/api/v1/maintenance"))
        .json(&serde_json::json!({
            "scope": "region", "region": "150100",
            "schedule": {"repeat": "once", "start": "2027-01-02T00:00:00Z", "end": "2027-01-01T00:00:00Z"},
            "created_by": "x"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let (_, listed) = get(&http, &server, "/api/v1/maintenance").await;
    assert_eq!(listed["maintenance"][0]["campus"], "c-2");
    let window_id = planned["id"].as_u64().unwrap();
    // A user to list (with sign-in off nobody needs one, but administrators list them).
    let hash = campuswatch_server::auth::hash_password("a long enough password").unwrap();
    server
        .store
        .put_user(
            "county-viewer",
            &hash,
            campuswatch_server::auth::Role::Viewer,
            Some(campuswatch_protocol::RegionCode::parse(COUNTY).unwrap()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let acknowledgements = format!("/api/v1/alerts/{alert_id}/acknowledgements");
    // (path asked for, path as documented)
    let cases = [
        (
            acknowledgements.as_str(),
            "/api/v1/alerts/{id}/acknowledgements",
        ),
        ("/api/v1/users", "/api/v1/users"),
        ("/api/v1/tokens", "/api/v1/tokens"),
        ("/api/v1/audit", "/api/v1/audit"),
        (
            "/api/v1/audit?action=alert.acknowledge&limit=1",
            "/api/v1/audit",
        ),
        ("/healthz", "/healthz"),
        ("/api/v1/coverage", "/api/v1/coverage"),
        ("/api/v1/coverage?region=150100", "/api/v1/coverage"),
        (
            "/api/v1/coverage?region=150102&school_type=primary",
            "/api/v1/coverage",
        ),
        ("/api/v1/campuses", "/api/v1/campuses"),
        ("/api/v1/campuses?registered=false", "/api/v1/campuses"),
        ("/api/v1/campuses/c-1", "/api/v1/campuses/{id}"),
        ("/api/v1/campuses/c-2", "/api/v1/campuses/{id}"),
        ("/api/v1/campuses/x-9", "/api/v1/campuses/{id}"),
        ("/api/v1/alerts", "/api/v1/alerts"),
        ("/api/v1/alerts?state=open&kind=camera", "/api/v1/alerts"),
        ("/api/v1/incidents", "/api/v1/incidents"),
        ("/api/v1/incidents?state=open", "/api/v1/incidents"),
        ("/api/v1/maintenance", "/api/v1/maintenance"),
        ("/api/v1/events", "/api/v1/events"),
        ("/api/v1/registry", "/api/v1/registry"),
        (
            "/api/v1/reports/availability",
            "/api/v1/reports/availability",
        ),
        (
            "/api/v1/reports/availability?region=150102&period=day&utc_offset=%2B08:00",
            "/api/v1/reports/availability",
        ),
        (
            "/api/v1/reports/availability?region=150100&school_type=primary&period=month",
            "/api/v1/reports/availability",
        ),
        ("/api/v1/reports/coverage", "/api/v1/reports/coverage"),
        (
            "/api/v1/reports/coverage?region=150102",
            "/api/v1/reports/coverage",
        ),
        (
            "/api/v1/reports/coverage?region=150100&period=week",
            "/api/v1/reports/coverage",
        ),
        (
            "/api/v1/reports/coverage/daily",
            "/api/v1/reports/coverage/daily",
        ),
    ];
    for (path, documented) in cases {
        let (status, body) = get(&http, &server, path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        let schema = response_schema(&d, documented);
        // The brief's minimum, stated on its own: the top-level keys.
        if let Some((props, _)) = properties(&d, schema) {
            let want: BTreeSet<&str> = props.iter().map(|(k, _)| *k).collect();
            let got: BTreeSet<&str> = body
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(got, want, "top-level keys of GET {path}");
        }
        check(&d, schema, &body, &format!("GET {path}"), &mut errs);
    }

    // The reports see the registry: a county lists its campuses, the coverage report
    // counts c-1 as reporting and c-2 (never seen) as not networked since it was
    // registered.
    let (_, county) = get(
        &http,
        &server,
        "/api/v1/reports/availability?region=150102&period=day",
    )
    .await;
    let ids: Vec<&str> = county["campuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["c-1", "c-2"]);
    let (_, cov) = get(&http, &server, "/api/v1/reports/coverage?region=150102").await;
    assert_eq!(cov["rows"][0]["registered"], 2);
    assert_eq!(cov["rows"][0]["reporting"], 1.0);
    let c2 = cov["not_networked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "c-2")
        .expect("c-2 is not networked");
    assert_eq!(c2["since_at_least"], false);
    assert_eq!(c2["since_registered"], true);
    assert_eq!(c2["since"], c2["registered_at"]);
    assert_eq!(c2["reporting"], false);
    // The server began the history a moment ago: no whole day yet, only today so far.
    let today = (chrono::Utc::now() + chrono::TimeDelta::hours(8)).date_naive();
    let (_, daily) = get(
        &http,
        &server,
        &format!("/api/v1/reports/coverage/daily?to={today}"),
    )
    .await;
    assert_eq!(daily["days"], serde_json::json!([]), "{daily}");
    assert_eq!(daily["today"]["registered"], 3, "{daily}");
    for (path, first_line) in [
        (
            "/api/v1/reports/availability?region=150102&format=csv",
            "code,name,level,registered,observed_campus_hours,gateway,alarm,video,fully,video_agent,video_platform",
        ),
        (
            "/api/v1/reports/coverage?format=csv&table=not_networked",
            "id,name,region,region_name,school_type,reporting,alarm_networked,video_networked,since,since_at_least,hours,since_registered,registered_at",
        ),
    ] {
        let resp = http
            .get(format!("http://{}{path}", server.http_addr()))
            .send()
            .await
            .unwrap();
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let bytes = resp.bytes().await.unwrap();
        let text = bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .expect("CSV starts with a UTF-8 byte order mark");
        let text = std::str::from_utf8(text).unwrap();
        assert_eq!(text.lines().next(), Some(first_line), "{path}");
        assert!(text.lines().count() > 1, "{path}: {text}");
    }

    // Errors speak `{"error": ...}` with the documented statuses.
    for (path, documented, status) in [
        ("/api/v1/coverage?bogus=1", "/api/v1/coverage", "400"),
        ("/api/v1/campuses?state=asleep", "/api/v1/campuses", "400"),
        ("/api/v1/campuses/nobody", "/api/v1/campuses/{id}", "404"),
        ("/api/v1/events?state=open", "/api/v1/events", "400"),
        ("/api/v1/registry?format=xml", "/api/v1/registry", "400"),
        ("/api/v1/incidents?state=maybe", "/api/v1/incidents", "400"),
        ("/api/v1/audit?action=nothing", "/api/v1/audit", "400"),
        ("/api/v1/tokens?user=x", "/api/v1/tokens", "400"),
        ("/api/v1/tokens?user=999", "/api/v1/tokens", "404"),
        (
            "/api/v1/alerts/999999/acknowledgements",
            "/api/v1/alerts/{id}/acknowledgements",
            "404",
        ),
        (
            "/api/v1/reports/availability?period=year",
            "/api/v1/reports/availability",
            "400",
        ),
        (
            "/api/v1/reports/availability?utc_offset=8",
            "/api/v1/reports/availability",
            "400",
        ),
        (
            "/api/v1/reports/availability?from=2026-11-01",
            "/api/v1/reports/availability",
            "400",
        ),
        (
            "/api/v1/reports/availability?format=xml",
            "/api/v1/reports/availability",
            "400",
        ),
        (
            "/api/v1/reports/coverage?at=yesterday",
            "/api/v1/reports/coverage",
            "400",
        ),
        (
            "/api/v1/reports/coverage?at=2026-11-01T00:00:00Z&period=day",
            "/api/v1/reports/coverage",
            "400",
        ),
        (
            "/api/v1/reports/coverage?format=csv&table=all",
            "/api/v1/reports/coverage",
            "400",
        ),
        (
            "/api/v1/reports/coverage/daily?from=2026-11-05&to=2026-11-01",
            "/api/v1/reports/coverage/daily",
            "400",
        ),
    ] {
        let (got, body) = get(&http, &server, path).await;
        assert_eq!(got.to_string(), status, "GET {path}: {body}");
        let resp = &d["paths"][documented]["get"]["responses"][status];
        assert!(
            resp.is_object(),
            "GET {documented} does not document {status}"
        );
        let resp = resolve(&d, resp);
        let schema = &resp["content"]["application/json"]["schema"];
        check(
            &d,
            schema,
            &body,
            &format!("GET {path} ({status})"),
            &mut errs,
        );
    }

    let gone = http
        .delete(format!("{base}/api/v1/maintenance/{window_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let again = http
        .delete(format!("{base}/api/v1/maintenance/{window_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let (_, history) = get(&http, &server, "/api/v1/maintenance?withdrawn=true").await;
    assert_eq!(history["maintenance"][0]["withdrawn"], true);
    check(
        &d,
        response_schema(&d, "/api/v1/maintenance"),
        &history,
        "GET /api/v1/maintenance?withdrawn=true",
        &mut errs,
    );

    assert!(
        errs.is_empty(),
        "responses differ from the OpenAPI document:\n{}",
        errs.join("\n")
    );

    // The other content types.
    let base = format!("http://{}", server.http_addr());
    let csv = http
        .get(format!("{base}/api/v1/registry?format=csv"))
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(
        d["paths"]["/api/v1/registry"]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("text/csv"))
    );
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    let ct = metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        d["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
            .get(&ct)
            .is_some(),
        "/metrics answers {ct}, not documented"
    );
    let served = common::get_json(&http, &format!("{base}/api/v1/openapi.json")).await;
    assert_eq!(served, d, "the server serves the generated document");

    // A registry import: 422 with lines for a bad file, 200 for a good one.
    let mut errs = Vec::new();
    post_registry(&http, &d, &base, "", "150100", 422, &mut errs).await;
    post_registry(&http, &d, &base, "?mode=upsert", "150102", 200, &mut errs).await;
    assert!(errs.is_empty(), "{}", errs.join("\n"));

    server.stop().await;
}
