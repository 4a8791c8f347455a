//! Shared by the server's test binaries.

#![allow(dead_code)]

pub mod browser;

use std::net::SocketAddr;
use std::time::Duration;

use campuswatch_protocol::{CampusId, DeviceReport, Message, RegionCode};

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

/// A plain MQTT client of the broker at `broker`, its event loop polled in the
/// background (reconnecting after 50 ms when the connection drops).
pub fn mqtt_client(broker: SocketAddr, id: &str, capacity: usize) -> rumqttc::AsyncClient {
    let o = rumqttc::MqttOptions::new(id, broker.ip().to_string(), broker.port());
    let (client, mut el) = rumqttc::AsyncClient::new(o, capacity);
    tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    client
}

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

/// Publishes `message` on its own topic, at least once.
pub async fn publish(client: &rumqttc::AsyncClient, message: &Message) {
    client
        .publish(
            message.topic().to_string(),
            rumqttc::QoS::AtLeastOnce,
            false,
            message.encode(),
        )
        .await
        .unwrap();
}
