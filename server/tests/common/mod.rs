//! Shared by the server's test binaries.

#![allow(dead_code)]

pub mod browser;

use std::net::SocketAddr;

use campuswatch_protocol::{CampusId, DeviceReport, RegionCode};

use campuswatch_server::config::{AuthConfig, EmbeddedConfig, MqttConfig, ServerConfig};

/// The defaults, with the data in `dir` and the embedded broker on a free port. Sign-in
/// is off: these suites use the API as a script with full access would; `signed_in`
/// turns it on.
pub fn local_config(dir: &std::path::Path) -> ServerConfig {
    let defaults = ServerConfig::default();
    ServerConfig {
        data_dir: dir.to_path_buf(),
        auth: AuthConfig {
            enabled: false,
            ..AuthConfig::default()
        },
        mqtt: MqttConfig {
            // Empty: the embedded broker.
            url: String::new(),
            embedded: EmbeddedConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..defaults.mqtt.embedded.clone()
            },
            ..defaults.mqtt.clone()
        },
        ..defaults
    }
}

/// `local_config` with sign-in on, over plain HTTP on loopback.
pub fn signed_in(dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        auth: AuthConfig {
            enabled: true,
            secure_cookies: false,
            ..AuthConfig::default()
        },
        ..local_config(dir)
    }
}

/// Where a test server's embedded broker listens.
pub fn broker_addr(server: &campuswatch_server::ServerHandle) -> SocketAddr {
    server
        .broker_url()
        .trim_start_matches("mqtt://")
        .trim_start_matches("tcp://")
        .parse()
        .expect("broker URL is host:port")
}

/// A plain MQTT client of a broker, and publishing a message on its own topic at least
/// once: `campuswatch_testkit`'s.
#[allow(unused_imports)]
pub use campuswatch_testkit::mqtt::{client as mqtt_client, publish};

/// A registry entry named "Campus {id}" (`openapi.rs` and `readback.rs` call it so).
#[allow(unused_imports)]
pub use campuswatch_server::testing::entry as registry_entry;

/// A gateway played by a plain MQTT client: a birth, then heartbeats.
pub async fn gateway(
    broker: SocketAddr,
    campus: &str,
    region: &str,
    devices: Vec<DeviceReport>,
) -> rumqttc::AsyncClient {
    let campus = CampusId::parse(campus).unwrap();
    let region = RegionCode::parse(region).unwrap();
    let client = mqtt_client(broker, &format!("cw-{campus}"), 16);
    publish(
        &client,
        &campuswatch_testkit::birth(&campus, region, 1, devices),
    )
    .await;
    publish(
        &client,
        &campuswatch_testkit::heartbeat(&campus, region, 1, 1, "", 0),
    )
    .await;
    client
}

/// The JSON `url` answers (panics if it does not answer JSON).
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// A server with `cfg`, listening on a free port.
pub async fn start(cfg: ServerConfig) -> campuswatch_server::ServerHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    campuswatch_server::start(cfg, listener)
        .await
        .expect("server starts")
}

/// `local_config` whose camera (and video, and GB/T 28181 device) alerts open at once:
/// a page must show the alert, not wait for its hold-down.
pub fn alerts_at_once(dir: &std::path::Path) -> ServerConfig {
    let local = local_config(dir);
    ServerConfig {
        alerts: campuswatch_server::config::AlertsConfig {
            hold_down_camera: std::time::Duration::ZERO,
            ..local.alerts.clone()
        },
        ..local
    }
}

/// GB/T 28181 inputs as the SIP listener hands them to the engine: `campuswatch_server`'s.
#[allow(unused_imports)]
pub use campuswatch_server::testing::{gb_catalog, gb_code, gb_registered};

/// A server with sign-in on (`signed_in`), listening on a free port.
#[allow(dead_code)]
pub async fn start_signed_in(dir: &std::path::Path) -> campuswatch_server::ServerHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    campuswatch_server::start(signed_in(dir), listener)
        .await
        .unwrap()
}

/// A server with sign-in on whose clock the test sets.
#[allow(dead_code)]
pub async fn start_signed_in_at(
    dir: &std::path::Path,
    clock: std::sync::Arc<campuswatch_server::testing::ManualClock>,
) -> campuswatch_server::ServerHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    campuswatch_server::start_with_clock(signed_in(dir), listener, clock)
        .await
        .unwrap()
}

/// A server with sign-in on, `registry` imported and `users` added (as [`add_users`]).
#[allow(dead_code)]
pub async fn start_signed_in_with(
    dir: &std::path::Path,
    registry: Vec<campuswatch_server::registry::RegistryEntry>,
    users: &[(&str, campuswatch_server::auth::Role, Option<&str>)],
) -> campuswatch_server::ServerHandle {
    let server = start_signed_in(dir).await;
    server.import_registry(registry, false).await.unwrap();
    add_users(&server, users).await;
    server
}

/// A client that sends `name`'s session cookie (password "{name} password") with every
/// request, as a browser would.
#[allow(dead_code)]
pub async fn cookie_client(base: &str, name: &str) -> reqwest::Client {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"name": name, "password": format!("{name} password")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{name} signs in");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("cookie", cookie.split(';').next().unwrap().parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Adds users to `server`, each `(name, role, scope)` with the password
/// "{name} password".
#[allow(dead_code)]
pub async fn add_users(
    server: &campuswatch_server::ServerHandle,
    users: &[(&str, campuswatch_server::auth::Role, Option<&str>)],
) {
    let now = chrono::Utc::now();
    for (name, role, scope) in users {
        let hash = campuswatch_server::auth::hash_password(&format!("{name} password")).unwrap();
        let scope = scope.map(|s| RegionCode::parse(s).unwrap());
        server
            .store
            .put_user(name, &hash, *role, scope, now)
            .await
            .unwrap();
    }
}
