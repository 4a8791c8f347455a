//! Sign-in, roles and region scopes against a running server: a user scoped to one
//! county sees nothing of another, whether through a console session or an API token.

mod common;

use campuswatch_protocol::{RegionCode, SchoolType};
use campuswatch_server::auth::{hash_password, Role};
use campuswatch_server::testing::entry;
use campuswatch_server::ServerHandle;
use serde_json::{json, Value};

async fn start(dir: &std::path::Path) -> ServerHandle {
    let cfg = common::signed_in(dir);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    campuswatch_server::start(cfg, listener).await.unwrap()
}

/// How a request signs in.
#[derive(Clone)]
enum As {
    Nobody,
    Cookie(String),
    Token(String),
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: &As,
        body: Option<Value>,
    ) -> (u16, Value, Option<String>) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        req = match who {
            As::Nobody => req,
            As::Cookie(c) => req.header("cookie", c),
            As::Token(t) => req.bearer_auth(t),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body, cookie)
    }

    async fn get(&self, path: &str, who: &As) -> (u16, Value) {
        let (s, b, _) = self.call(reqwest::Method::GET, path, who, None).await;
        (s, b)
    }

    async fn sign_in(&self, name: &str, password: &str) -> (u16, Option<As>) {
        let (s, _, cookie) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/session",
                &As::Nobody,
                Some(json!({"name": name, "password": password})),
            )
            .await;
        (s, cookie.map(As::Cookie))
    }
}

fn campus_ids(v: &Value) -> Vec<String> {
    v["campuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_user_sees_only_their_county_and_may_only_what_their_role_allows() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    server
        .import_registry(
            vec![
                entry("c-1", "150102", SchoolType::Primary, 1, 1),
                entry("c-2", "150203", SchoolType::Primary, 1, 1),
            ],
            false,
        )
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let county = Some(RegionCode::parse("150102").unwrap());
    for (name, role, scope) in [
        ("xincheng", Role::Viewer, county),
        ("xincheng-duty", Role::Operator, county),
        ("province", Role::Admin, None),
    ] {
        let hash = hash_password(&format!("{name} password")).unwrap();
        server
            .store
            .put_user(name, &hash, role, scope, now)
            .await
            .unwrap();
    }
    let api = Api {
        base: format!("http://{}", server.http_addr()),
        http: reqwest::Client::new(),
    };

    // Nothing without signing in, except health.
    assert_eq!(api.get("/api/v1/campuses", &As::Nobody).await.0, 401);
    assert_eq!(api.get("/healthz", &As::Nobody).await.0, 200);
    assert_eq!(api.sign_in("xincheng", "guess").await.0, 401);
    assert_eq!(api.sign_in("nobody", "guess").await.0, 401);
    let (status, viewer) = api.sign_in("xincheng", "xincheng password").await;
    assert_eq!(status, 200);
    let viewer = viewer.expect("a session cookie");

    // Only their county, wherever they look.
    let (_, me) = api.get("/api/v1/session", &viewer).await;
    assert_eq!(
        (me["role"].as_str(), me["scope"].as_str()),
        (Some("viewer"), Some("150102"))
    );
    assert_eq!(
        campus_ids(&api.get("/api/v1/campuses", &viewer).await.1),
        ["c-1"]
    );
    assert_eq!(api.get("/api/v1/campuses/c-1", &viewer).await.0, 200);
    assert_eq!(
        api.get("/api/v1/campuses/c-2", &viewer).await.0,
        404,
        "not even its existence"
    );
    assert_eq!(
        api.get("/api/v1/coverage?region=150203", &viewer).await.0,
        403
    );
    assert_eq!(
        api.get("/api/v1/coverage?region=150000", &viewer).await.0,
        403
    );
    let (_, cov) = api.get("/api/v1/coverage", &viewer).await;
    assert_eq!(cov["region"]["code"], "150102", "{cov}");
    assert_eq!(cov["registered"], 1);
    let (_, reg) = api.get("/api/v1/registry", &viewer).await;
    assert_eq!(reg.as_array().map(Vec::len), Some(1));
    assert_eq!(
        api.get("/api/v1/events?region=150200", &viewer).await.0,
        403
    );
    assert_eq!(
        api.get("/api/v1/alerts?region=150102", &viewer).await.0,
        200
    );
    assert_eq!(
        api.get("/api/v1/reports/availability?region=150203", &viewer)
            .await
            .0,
        403
    );
    assert_eq!(
        api.get("/api/v1/reports/coverage?region=150200", &viewer)
            .await
            .0,
        403
    );
    let (status, report) = api.get("/api/v1/reports/coverage", &viewer).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["region"]["code"], "150102", "{report}");

    // A viewer may not act.
    let window = json!({"scope": "campus", "campus": "c-1",
        "schedule": {"repeat": "once", "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"},
        "created_by": "ignored"});
    let post = |path: &'static str, who: As, body: Value| {
        let api = &api;
        async move {
            api.call(reqwest::Method::POST, path, &who, Some(body))
                .await
                .0
        }
    };
    assert_eq!(
        post("/api/v1/maintenance", viewer.clone(), window.clone()).await,
        403
    );
    // An operator may, for their county only.
    let (_, duty) = api.sign_in("xincheng-duty", "xincheng-duty password").await;
    let duty = duty.unwrap();
    assert_eq!(
        post("/api/v1/maintenance", duty.clone(), window.clone()).await,
        201
    );
    let elsewhere = json!({"scope": "region", "region": "150200",
        "schedule": {"repeat": "once", "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"},
        "created_by": "x"});
    assert_eq!(
        post("/api/v1/maintenance", duty.clone(), elsewhere).await,
        403
    );

    // A token acts as its user, with the same scope.
    let (status, token, _) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            &viewer,
            Some(json!({"name": "nightly export"})),
        )
        .await;
    assert_eq!(status, 201);
    let token = As::Token(token["token"].as_str().unwrap().to_string());
    assert_eq!(
        campus_ids(&api.get("/api/v1/campuses", &token).await.1),
        ["c-1"]
    );
    assert_eq!(
        api.get("/api/v1/campuses", &As::Token("cwt_forged".into()))
            .await
            .0,
        401
    );

    // Signed out, the session no longer works; the province admin sees both counties.
    let (status, _, _) = api
        .call(reqwest::Method::DELETE, "/api/v1/session", &viewer, None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(api.get("/api/v1/campuses", &viewer).await.0, 401);
    let (_, admin) = api.sign_in("province", "province password").await;
    let mut all = campus_ids(&api.get("/api/v1/campuses", &admin.unwrap()).await.1);
    all.sort();
    assert_eq!(all, ["c-1", "c-2"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_server_makes_its_first_administrator_with_a_password_only_its_user_may_read() {
    let dir = tempfile::tempdir().unwrap();
    // The defaults: sign-in on, no users.
    let cfg = campuswatch_server::config::ServerConfig {
        auth: campuswatch_server::config::AuthConfig {
            secure_cookies: false,
            ..Default::default()
        },
        ..common::local_config(dir.path())
    };
    assert!(cfg.auth.enabled, "sign-in is on by default");
    let file = dir
        .path()
        .join(campuswatch_server::FIRST_ADMIN_PASSWORD_FILE);
    // A world-readable file of that name is already there (left over, or planted): the
    // password must not go into it as it is.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&file, "old\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(cfg.clone(), listener)
        .await
        .unwrap();
    let password = std::fs::read_to_string(&file).expect("the password file is written");
    let password = password.trim();
    assert!(password.len() >= 20, "{password:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the server's user may read it");
    }
    let api = Api {
        base: format!("http://{}", server.http_addr()),
        http: reqwest::Client::new(),
    };
    assert_eq!(api.get("/api/v1/coverage", &As::Nobody).await.0, 401);
    assert_eq!(api.sign_in("admin", "admin").await.0, 401);
    let (status, admin) = api.sign_in("admin", password).await;
    assert_eq!(status, 200);
    let (status, me) = api.get("/api/v1/session", &admin.unwrap()).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("admin")));
    server.stop().await;

    // A restart with users does not make another one, nor a new password.
    std::fs::remove_file(&file).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = campuswatch_server::start(cfg, listener).await.unwrap();
    assert!(!file.exists());
    let api = Api {
        base: format!("http://{}", server.http_addr()),
        http: reqwest::Client::new(),
    };
    assert_eq!(api.sign_in("admin", password).await.0, 200);
    server.stop().await;
}
