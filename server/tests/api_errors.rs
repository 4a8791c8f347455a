//! Every error of the API is JSON (`{"error": "..."}`), including those the HTTP
//! framework finds before a handler runs: a method the path does not take (405), a body
//! larger than the route accepts (413), a query string or a JSON body that cannot be
//! read (400), a path that does not exist (404). A request that is not signed in is told
//! so first.

mod common;

use campuswatch_server::auth::{hash_password, Role};
use campuswatch_server::ServerHandle;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Api {
    base: String,
    http: reqwest::Client,
    /// The session cookie of a signed-in administrator.
    cookie: String,
}

/// What an error answer says, after checking that it is the API's JSON error.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    error: String,
}

impl Api {
    async fn start(dir: &std::path::Path) -> (ServerHandle, Api) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = campuswatch_server::start(common::signed_in(dir), listener)
            .await
            .unwrap();
        let hash = hash_password("admin password").unwrap();
        server
            .store
            .put_user("admin", &hash, Role::Admin, None, chrono::Utc::now())
            .await
            .unwrap();
        let base = format!("http://{}", server.http_addr());
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"name": "admin", "password": "admin password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        (server, Api { base, http, cookie })
    }

    fn request(&self, method: Method, path: &str, signed_in: bool) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        if signed_in {
            req.header("cookie", &self.cookie)
        } else {
            req
        }
    }

    /// Sends `req` and checks that the answer is `{"error": "...", "code": "..."}` as
    /// `application/json`, with the code of its status that the console translates.
    async fn error(&self, what: &str, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{what}: {status} {text}"
        );
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: {status}, not JSON ({e}): {text}"));
        let obj = body.as_object().expect("an object");
        assert_eq!(
            obj.keys().collect::<Vec<_>>(),
            ["code", "error"],
            "{what}: {status} {body}"
        );
        let code = match status.as_u16() {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            413 => "too_large",
            503 => "unavailable",
            other => panic!("{what}: status {other}"),
        };
        assert_eq!(body["code"], code, "{what}: {status} {body}");
        let error = body["error"].as_str().expect("a string").to_string();
        assert!(!error.is_empty(), "{what}: an empty error");
        Answer {
            status,
            headers,
            error,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frameworks_errors_are_json_errors_too() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = Api::start(dir.path()).await;

    // 405: the path exists, the method does not; `Allow` says which do.
    for (method, path, allowed) in [
        (Method::PUT, "/api/v1/coverage", "GET"),
        (Method::DELETE, "/api/v1/alerts/1/ack", "POST"),
        (Method::PATCH, "/api/v1/registry", "POST"),
        (Method::POST, "/healthz", "GET"),
    ] {
        let what = format!("{method} {path}");
        let a = api
            .error(&what, api.request(method.clone(), path, true))
            .await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        assert!(a.error.contains(method.as_str()), "{what}: {}", a.error);
        let allow = a.headers.get("allow").map(|v| v.to_str().unwrap());
        assert!(
            allow.is_some_and(|v| v.split(',').any(|m| m.trim() == allowed)),
            "{what}: Allow: {allow:?}"
        );
    }

    // 404: no such path, as before.
    let a = api
        .error(
            "GET /api/v1/nothing",
            api.request(Method::GET, "/api/v1/nothing", true),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // 400: a query string that does not fit, with the framework's explanation.
    for (path, says) in [
        ("/api/v1/campuses?limit=many", "limit"),
        ("/api/v1/coverage?bogus=1", "unknown field `bogus`"),
        ("/api/v1/alerts?since=yesterday", "since"),
        (
            "/api/v1/registry?mode=x&format=csv&extra=1",
            "unknown field",
        ),
    ] {
        let a = api.error(path, api.request(Method::GET, path, true)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            a.error.starts_with("Failed to deserialize query string") && a.error.contains(says),
            "{path}: {}",
            a.error
        );
    }

    // 400: a JSON body that cannot be read: not JSON, not of the expected shape, not
    // sent as JSON.
    for (what, req, says) in [
        (
            "not JSON",
            api.request(Method::POST, "/api/v1/tokens", true)
                .header("content-type", "application/json")
                .body("{\"name\":"),
            "Failed to parse the request body as JSON",
        ),
        (
            "a field missing",
            api.request(Method::POST, "/api/v1/tokens", true)
                .json(&json!({"title": "nightly export"})),
            "Failed to deserialize the JSON body into the target type",
        ),
        (
            "not sent as JSON",
            api.request(Method::POST, "/api/v1/maintenance", true)
                .header("content-type", "text/plain")
                .body("{}"),
            "Content-Type: application/json",
        ),
        (
            "an unknown field",
            api.request(Method::POST, "/api/v1/alerts/1/ack", true)
                .json(&json!({"by": "x", "urgency": "high"})),
            "unknown field `urgency`",
        ),
    ] {
        let a = api.error(what, req).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{what}");
        assert!(a.error.contains(says), "{what}: {}", a.error);
    }

    // 413: a registry file beyond the import's 64 MiB.
    let too_large = vec![b'x'; 64 * 1024 * 1024 + 1];
    let a = api
        .error(
            "a 64 MiB registry",
            api.request(Method::POST, "/api/v1/registry", true)
                .header("content-type", "text/csv")
                .body(too_large),
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.error);

    // Not signed in: 401 comes before what is wrong with the query or the body.
    for (what, req) in [
        (
            "a bad query",
            api.request(Method::GET, "/api/v1/campuses?limit=many", false),
        ),
        (
            "a bad body",
            api.request(Method::POST, "/api/v1/tokens", false)
                .header("content-type", "application/json")
                .body("{"),
        ),
    ] {
        let a = api.error(what, req).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.error);
    }

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registry_file_gives_each_line_a_stable_code_with_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let (server, api) = Api::start(dir.path()).await;
    let file = "id,name,region,school_type,expected_alarms,expected_cameras\n\
                k-1,新城区第一幼儿园,150102,kindergarten,1,8\n\
                k-2,新城区第二幼儿园,150100,kindergarten,1,8\n\
                k-3,新城区第三幼儿园,150102,college,1,8\n\
                k-1,重复,150102,primary,two,8\n";
    let resp = api
        .request(Method::POST, "/api/v1/registry", true)
        .header("content-type", "text/csv")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "bad_registry", "{body}");
    let lines: Vec<Value> = body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json!([l["line"], l["column"], l["code"], l["params"]]))
        .collect();
    assert_eq!(
        lines,
        [
            json!([3, "region", "not_county", {"value": "150100", "level": "city"}]),
            json!([4, "school_type", "unknown_school_type", {"value": "college"}]),
            json!([5, "expected_alarms", "bad_count", {"value": "two", "max": "1024"}]),
            json!([5, "id", "duplicate_id", {"id": "k-1", "first_line": "2"}]),
        ],
        "{body}"
    );
    // Every line keeps its English words.
    let all = body["lines"].as_array().unwrap();
    assert!(
        all.iter()
            .all(|l| !l["message"].as_str().unwrap().is_empty()),
        "{body}"
    );
    assert!(
        all[0]["message"]
            .as_str()
            .unwrap()
            .contains("150100 is the code of a city"),
        "{body}"
    );
    assert_eq!(server.store.registry().await.unwrap().len(), 0);
    server.stop().await;
}
