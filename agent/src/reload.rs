//! Applying a new configuration to a running agent (`systemctl reload`, i.e. SIGHUP).
//!
//! The binary reads and validates the file; a configuration that does not load is
//! refused there, with its file, line and reason, and the agent keeps running on the
//! old one. A valid one is handed to the session, which owns everything it touches:
//!
//! - devices added, removed or changed: only their probe tasks are replaced (the others
//!   keep probing, and keep their hysteresis); the session publishes a new birth with the
//!   new inventory **in the same epoch**, which the server applies like any birth whose
//!   epoch is not older than the stored one (docs/PROTOCOL.md §4), so the gateway stays
//!   online: no death, no Last Will, no new epoch;
//! - `heartbeat_interval`: heartbeats follow the new interval, announced by that birth;
//! - the connection's own settings (`mqtt.url`, credentials, `ca_file`, `keepalive`):
//!   the session disconnects cleanly (an MQTT DISCONNECT, after which the broker drops
//!   the Last Will) and connects again with them, under a new epoch, as at start;
//! - `campus`, `region`, `state_dir`: they name the gateway and where its epoch and
//!   spool live, so they are refused: restart the agent to change them.

use std::fmt;
use std::time::Duration;

use campuswatch_protocol::DeviceId;
use tokio::sync::oneshot;

use crate::config::{AgentConfig, MqttConfig};
use crate::probe::ProbeSetupError;
use crate::scheduler::DeviceChanges;

/// A validated configuration for the running agent, and where to say what came of it.
#[derive(Debug)]
pub struct Reload {
    pub config: AgentConfig,
    pub done: oneshot::Sender<Result<ReloadOutcome, ReloadError>>,
}

impl Reload {
    /// A reload of `config`, and the receiver of its outcome.
    pub fn new(
        config: AgentConfig,
    ) -> (Self, oneshot::Receiver<Result<ReloadOutcome, ReloadError>>) {
        let (done, rx) = oneshot::channel();
        (Self { config, done }, rx)
    }
}

/// Why a valid configuration was not applied; the agent keeps the one it had.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(
        "`{key}` changed, which a running agent cannot take on (it names the gateway or \
         where its epoch and event spool are kept); restart the agent to apply it \
         (systemctl restart campuswatch-agent)"
    )]
    NeedsRestart { key: &'static str },
    #[error("{0}")]
    Probe(#[from] ProbeSetupError),
    /// The session is ending (a shutdown, or a reconnection for new MQTT settings).
    #[error("the agent is ending its MQTT session (stopping, or reconnecting with new settings); reload again in a moment")]
    SessionEnding,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    pub devices: DeviceChanges,
    /// The new heartbeat interval, when it changed.
    pub heartbeat_interval: Option<Duration>,
    /// MQTT keys whose change needs a new connection (empty: the session stays).
    pub reconnect: Vec<&'static str>,
    /// MQTT keys that changed and apply from the next reconnection on.
    pub later: Vec<&'static str>,
    /// The epoch of the new birth, when one was published.
    pub birth_epoch: Option<u64>,
    /// Whether the configuration differs from the running one at all.
    pub changed: bool,
}

fn ids(list: &[DeviceId]) -> String {
    list.iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ReloadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed {
            return f.write_str("configuration unchanged");
        }
        let mut parts = Vec::new();
        let d = &self.devices;
        if !d.added.is_empty() {
            parts.push(format!("devices added: {}", ids(&d.added)));
        }
        if !d.removed.is_empty() {
            parts.push(format!("devices removed: {}", ids(&d.removed)));
        }
        if !d.changed.is_empty() {
            parts.push(format!("devices changed: {}", ids(&d.changed)));
        }
        if d.reordered {
            parts.push("devices reordered".into());
        }
        if let Some(i) = self.heartbeat_interval {
            parts.push(format!(
                "heartbeat interval now {}",
                humantime::format_duration(i)
            ));
        }
        if !self.later.is_empty() {
            parts.push(format!(
                "{} apply from the next reconnection",
                self.later.join(", ")
            ));
        }
        if !self.reconnect.is_empty() {
            parts.push(format!(
                "{} changed: reconnecting to the broker under a new epoch",
                self.reconnect.join(", ")
            ));
        } else if let Some(epoch) = self.birth_epoch {
            parts.push(format!(
                "new birth published in epoch {epoch} (session kept)"
            ));
        } else {
            parts.push("session kept".into());
        }
        f.write_str(&parts.join("; "))
    }
}

/// The MQTT keys that changed, split into those that need a new connection and those
/// that only apply to the next one.
pub fn mqtt_changes(old: &MqttConfig, new: &MqttConfig) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut reconnect = Vec::new();
    let mut later = Vec::new();
    for (key, same) in [
        ("mqtt.url", old.url == new.url),
        ("mqtt.username", old.username == new.username),
        ("mqtt.password", old.password == new.password),
        ("mqtt.ca_file", old.ca_file == new.ca_file),
        ("mqtt.keepalive", old.keepalive == new.keepalive),
    ] {
        if !same {
            reconnect.push(key);
        }
    }
    for (key, same) in [
        (
            "mqtt.reconnect_delay_min",
            old.reconnect_delay_min == new.reconnect_delay_min,
        ),
        (
            "mqtt.reconnect_delay_max",
            old.reconnect_delay_max == new.reconnect_delay_max,
        ),
        (
            "mqtt.schema_version",
            old.schema_version == new.schema_version,
        ),
    ] {
        if !same {
            later.push(key);
        }
    }
    (reconnect, later)
}

/// The keys a reload cannot change, if one did.
pub fn needs_restart(old: &AgentConfig, new: &AgentConfig) -> Option<&'static str> {
    [
        ("campus", old.campus == new.campus),
        ("region", old.region == new.region),
        ("state_dir", old.state_dir == new.state_dir),
    ]
    .into_iter()
    .find(|(_, same)| !same)
    .map(|(key, _)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connection_settings_need_a_new_connection() {
        let old = MqttConfig::default();
        let mut new = old.clone();
        assert_eq!(mqtt_changes(&old, &new), (vec![], vec![]));
        new.reconnect_delay_max = Duration::from_secs(5);
        assert_eq!(
            mqtt_changes(&old, &new),
            (vec![], vec!["mqtt.reconnect_delay_max"])
        );
        new.password = "secret".into();
        new.keepalive = Duration::from_secs(30);
        assert_eq!(
            mqtt_changes(&old, &new).0,
            ["mqtt.password", "mqtt.keepalive"]
        );
    }

    #[test]
    fn the_gateway_identity_and_state_dir_need_a_restart() {
        use campuswatch_protocol::{CampusId, RegionCode};
        let old = AgentConfig::new(
            CampusId::parse("150102-K-0001").unwrap(),
            RegionCode::parse("150102").unwrap(),
        );
        let mut new = old.clone();
        new.heartbeat_interval = Duration::from_secs(9);
        assert_eq!(needs_restart(&old, &new), None);
        new.state_dir = "/elsewhere".into();
        assert_eq!(needs_restart(&old, &new), Some("state_dir"));
        new.campus = CampusId::parse("150102-K-0002").unwrap();
        assert_eq!(needs_restart(&old, &new), Some("campus"));
    }

    #[test]
    fn an_outcome_says_what_changed_in_words() {
        let mut o = ReloadOutcome::default();
        assert_eq!(o.to_string(), "configuration unchanged");
        o.changed = true;
        o.devices.added = vec![DeviceId::parse("cam-2").unwrap()];
        o.birth_epoch = Some(7);
        assert_eq!(
            o.to_string(),
            "devices added: cam-2; new birth published in epoch 7 (session kept)"
        );
        o.reconnect = vec!["mqtt.url"];
        assert!(o
            .to_string()
            .ends_with("mqtt.url changed: reconnecting to the broker under a new epoch"));
    }
}
