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

/// A registry entry named "Campus {id}".
pub fn registry_entry(
    id: &str,
    region: &str,
    school_type: campuswatch_protocol::SchoolType,
    alarms: u32,
    cameras: u32,
) -> campuswatch_server::registry::RegistryEntry {
    campuswatch_server::registry::RegistryEntry {
        campus: CampusId::parse(id).unwrap(),
        name: format!("Campus {id}"),
        region: RegionCode::parse(region).unwrap(),
        school_type,
        expected_alarms: alarms,
        expected_cameras: cameras,
    }
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
    let client = mqtt_client(broker, &format!("cw-{campus}"), 16);
    publish(&client, &birth(&campus, &region, 1, devices)).await;
    publish(&client, &heartbeat(&campus, &region, (1, 1), "", 0)).await;
    client
}

/// A heartbeat of session `epoch` (number `seq` in it), now, with the device-state
/// digest `states` and the newest event id.
pub fn heartbeat(
    campus: &CampusId,
    region: &RegionCode,
    (epoch, seq): (u64, u64),
    states: &str,
    last_event_id: u64,
) -> Message {
    Message::Heartbeat(Heartbeat {
        v: SCHEMA_VERSION,
        campus: campus.clone(),
        region: *region,
        epoch,
        seq,
        at: chrono::Utc::now(),
        health: HostHealth {
            cpu_pct: 3.5,
            mem_used_pct: 40.0,
            disk_used_pct: 12.5,
            uptime_s: 1000,
        },
        states: states.to_string(),
        last_event_id,
    })
}

/// A gateway's birth for session `epoch` (heartbeats every minute).
pub fn birth(
    campus: &CampusId,
    region: &RegionCode,
    epoch: u64,
    devices: Vec<DeviceReport>,
) -> Message {
    Message::Birth(Birth {
        v: SCHEMA_VERSION,
        campus: campus.clone(),
        region: *region,
        epoch,
        at: chrono::Utc::now(),
        agent_version: "test".into(),
        config_digest: "digest".into(),
        heartbeat_interval_ms: 60_000,
        last_event_id: 0,
        devices,
        dropped_events: 0,
    })
}

/// A device as a gateway's birth reports it, probed over TCP.
pub fn device(id: &str, kind: campuswatch_protocol::DeviceKind, up: bool) -> DeviceReport {
    use campuswatch_protocol::{DeviceId, DeviceKind, DeviceState};
    DeviceReport {
        id: DeviceId::parse(id).unwrap(),
        kind,
        probe: "tcp".into(),
        target: "10.1.2.3:5000".into(),
        required: kind == DeviceKind::Alarm,
        state: if up {
            DeviceState::Up
        } else {
            DeviceState::Down
        },
        since: Some(chrono::Utc::now()),
        cause: (!up).then(|| "connection refused".to_string()),
        measurements: [("latency_ms".to_string(), 4.0)].into_iter().collect(),
        info: None,
    }
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

/// A device's state change as the gateway's agent reports it (event `id` of epoch 1).
pub fn transition(
    campus: &str,
    region: &str,
    id: u64,
    device: &str,
    kind: campuswatch_protocol::DeviceKind,
    up: bool,
) -> Message {
    use campuswatch_protocol::{DeviceId, DeviceState, Event};
    let (from, to) = if up {
        (DeviceState::Down, DeviceState::Up)
    } else {
        (DeviceState::Up, DeviceState::Down)
    };
    Message::Event(Event {
        v: SCHEMA_VERSION,
        campus: CampusId::parse(campus).unwrap(),
        region: RegionCode::parse(region).unwrap(),
        id,
        epoch: 1,
        at: chrono::Utc::now(),
        device: DeviceId::parse(device).unwrap(),
        kind,
        from,
        to,
        cause: (!up).then(|| "connection refused".to_string()),
        measurements: Default::default(),
        info: None,
    })
}
