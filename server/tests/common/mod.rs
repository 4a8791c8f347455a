//! Shared by the server's test binaries.

#![allow(dead_code)]

use std::net::SocketAddr;

use campuswatch_server::config::{EmbeddedConfig, MqttConfig, ServerConfig};

/// The defaults, with the data in `dir` and the embedded broker on a free port.
pub fn local_config(dir: &std::path::Path) -> ServerConfig {
    let defaults = ServerConfig::default();
    ServerConfig {
        data_dir: dir.to_path_buf(),
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
