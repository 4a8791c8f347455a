//! Shared by the server's test binaries.

#![allow(dead_code)]

pub mod browser;

use std::net::SocketAddr;
use std::time::Duration;

use campuswatch_protocol::{
    Birth, CampusId, DeviceReport, Heartbeat, HostHealth, Message, RegionCode, SCHEMA_VERSION,
};

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

/// A gateway played by a plain MQTT client: a birth, then heartbeats.
pub async fn gateway(
    broker: SocketAddr,
    campus: &str,
    region: &str,
    devices: Vec<DeviceReport>,
) -> rumqttc::AsyncClient {
    let campus = CampusId::parse(campus).unwrap();
    let region = RegionCode::parse(region).unwrap();
    let o = rumqttc::MqttOptions::new(
        format!("cw-{campus}"),
        broker.ip().to_string(),
        broker.port(),
    );
    let (client, mut el) = rumqttc::AsyncClient::new(o, 16);
    tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let birth = Message::Birth(Birth {
        v: SCHEMA_VERSION,
        campus: campus.clone(),
        region,
        epoch: 1,
        at: chrono::Utc::now(),
        agent_version: "test".into(),
        config_digest: "digest".into(),
        heartbeat_interval_ms: 60_000,
        last_event_id: 0,
        devices,
    });
    client
        .publish(
            birth.topic().to_string(),
            rumqttc::QoS::AtLeastOnce,
            false,
            birth.encode(),
        )
        .await
        .unwrap();
    let heartbeat = Message::Heartbeat(Heartbeat {
        v: SCHEMA_VERSION,
        campus,
        region,
        epoch: 1,
        seq: 1,
        at: chrono::Utc::now(),
        health: HostHealth {
            cpu_pct: 3.5,
            mem_used_pct: 40.0,
            disk_used_pct: 12.5,
            uptime_s: 1000,
        },
        states: String::new(),
        last_event_id: 0,
    });
    client
        .publish(
            heartbeat.topic().to_string(),
            rumqttc::QoS::AtLeastOnce,
            false,
            heartbeat.encode(),
        )
        .await
        .unwrap();
    client
}
