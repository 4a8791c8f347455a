//! The server's configuration: typed, documented defaults, loaded from built-in
//! defaults, then a TOML file, then `CAMPUSWATCH__SECTION__KEY` environment variables
//! (last one wins), then validated. `campuswatch-server print-config` prints the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use campuswatch_protocol::RegionCode;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: {message}\n  (see docs/configuration.md; `campuswatch-server print-config` shows every key with its default)")]
    Load {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {key}: {message}")]
    Invalid {
        source_name: String,
        key: &'static str,
        message: String,
    },
}

/// The whole server configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// This server's id: it names the MQTT client (`cw-server-{id}`) and the retained
    /// state topic `cw/v1/server/{id}/state`.
    pub id: String,
    /// Where the SQLite database and other state live.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub mqtt: MqttConfig,
    pub database: DatabaseConfig,
    pub liveness: LivenessConfig,
    pub coverage: CoverageConfig,
    pub alerts: AlertsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            id: "main".into(),
            data_dir: PathBuf::from("campuswatch-data"),
            http: HttpConfig::default(),
            mqtt: MqttConfig::default(),
            database: DatabaseConfig::default(),
            liveness: LivenessConfig::default(),
            coverage: CoverageConfig::default(),
            alerts: AlertsConfig::default(),
        }
    }
}

/// The HTTP API and console.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the API listens on.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// The MQTT broker connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// External broker, `mqtt://host:1883` or `mqtts://host:8883` (credentials may be
    /// given in the URL). Empty: run the embedded broker.
    pub url: String,
    /// Username, if not in the URL.
    pub username: String,
    /// Password, if not in the URL.
    pub password: String,
    /// PEM file of CA certificates to trust for `mqtts://` besides the system's.
    pub ca_file: String,
    /// MQTT keepalive of the server's own connection.
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// Region codes this server watches (province, city or county); empty = all.
    pub regions: Vec<String>,
    /// QoS 1 messages the server may have unacknowledged at once.
    pub inflight: u16,
    pub embedded: EmbeddedConfig,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            username: String::new(),
            password: String::new(),
            ca_file: String::new(),
            keepalive: Duration::from_secs(10),
            regions: Vec::new(),
            inflight: 100,
            embedded: EmbeddedConfig::default(),
        }
    }
}

/// The embedded broker, used when `mqtt.url` is empty.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Where agents connect.
    pub listen: SocketAddr,
    /// If `listen` is taken (another broker on 1883, say), take a free port instead and
    /// log which.
    pub fallback_to_free_port: bool,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            fallback_to_free_port: true,
        }
    }
}

/// The store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH`. Empty: `sqlite://{data_dir}/campuswatch.db`.
    pub url: String,
}

/// When a gateway counts as stale.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LivenessConfig {
    /// Heartbeat intervals without a heartbeat before a gateway is stale.
    pub missed_heartbeats: u32,
    /// Interval assumed until a gateway's birth states its own.
    #[serde(with = "humantime_serde")]
    pub default_heartbeat_interval: Duration,
    /// How often staleness is checked.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            missed_heartbeats: 3,
            default_heartbeat_interval: Duration::from_secs(5),
            check_interval: Duration::from_millis(500),
        }
    }
}

/// What counts as networked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CoverageConfig {
    /// Share of a campus's expected alarm devices that must be up (at least one).
    pub alarm_fraction: f64,
    /// Share of a campus's expected cameras that must be up (at least one).
    pub video_fraction: f64,
}

impl Default for CoverageConfig {
    fn default() -> Self {
        Self {
            alarm_fraction: 1.0,
            video_fraction: 0.8,
        }
    }
}

/// When dropped links become alerts, and how they are grouped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// How long a gateway must stay offline or stale before it is an alert.
    #[serde(with = "humantime_serde")]
    pub hold_down_gateway: Duration,
    /// The same for an alarm link (the agent already waits for repeated failures).
    #[serde(with = "humantime_serde")]
    pub hold_down_alarm: Duration,
    /// The same for a camera, and for a campus's video as a whole.
    #[serde(with = "humantime_serde")]
    pub hold_down_camera: Duration,
    /// State changes within `flap_window` that mark a link flapping.
    pub flap_changes: u32,
    /// The flapping window; a flapping link must stay up this long to resolve.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
    /// Share of a campus's cameras (two or more) that, exceeded by the cameras down, opens
    /// its critical video alert.
    pub video_down_fraction: f64,
    /// From this many gateways of one county dropping together, one regional incident is
    /// told instead of one alert each.
    pub incident_min_gateways: usize,
    /// How long a county's gateway alerts are gathered before they are told.
    #[serde(with = "humantime_serde")]
    pub group_wait: Duration,
    /// How long the server may be without the MQTT broker before the operators are told
    /// that it cannot see the campuses.
    #[serde(with = "humantime_serde")]
    pub monitoring_grace: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        let r = crate::monitor::AlertRules::default();
        let std = |d: chrono::TimeDelta| d.to_std().unwrap_or_default();
        Self {
            hold_down_gateway: std(r.hold_down_gateway),
            hold_down_alarm: std(r.hold_down_alarm),
            hold_down_camera: std(r.hold_down_camera),
            flap_changes: r.flap_changes,
            flap_window: std(r.flap_window),
            video_down_fraction: r.video_down_fraction,
            incident_min_gateways: r.incident_min_gateways,
            group_wait: std(r.group_wait),
            monitoring_grace: std(r.monitoring_grace),
        }
    }
}

impl AlertsConfig {
    /// The monitor's rules from this section.
    pub fn rules(&self) -> crate::monitor::AlertRules {
        let delta = |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        crate::monitor::AlertRules {
            hold_down_gateway: delta(self.hold_down_gateway),
            hold_down_alarm: delta(self.hold_down_alarm),
            hold_down_camera: delta(self.hold_down_camera),
            flap_changes: self.flap_changes,
            flap_window: delta(self.flap_window),
            video_down_fraction: self.video_down_fraction,
            incident_min_gateways: self.incident_min_gateways,
            group_wait: delta(self.group_wait),
            monitoring_grace: delta(self.monitoring_grace),
        }
    }
}

impl ServerConfig {
    /// Defaults, then `file` (if any), then the environment; validated.
    pub fn load(file: Option<&Path>) -> Result<ServerConfig, ConfigError> {
        Self::load_from(file, None)
    }

    /// `load`, reading the environment from `env` instead of the process when given.
    fn load_from(
        file: Option<&Path>,
        env: Option<config::Map<String, String>>,
    ) -> Result<ServerConfig, ConfigError> {
        let name = file.map_or_else(|| "defaults".to_string(), |f| f.display().to_string());
        let load_err = |e: config::ConfigError| ConfigError::Load {
            source_name: name.clone(),
            message: e.to_string(),
        };
        let mut builder = config::Config::builder()
            .add_source(config::Config::try_from(&ServerConfig::default()).map_err(load_err)?);
        if let Some(f) = file {
            builder = builder.add_source(
                config::File::from(f)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let cfg: ServerConfig = builder
            .add_source(
                config::Environment::with_prefix("CAMPUSWATCH")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("mqtt.regions")
                    .try_parsing(true)
                    .source(env),
            )
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(load_err)?;
        cfg.validate(&name)?;
        Ok(cfg)
    }

    /// Checks what types cannot.
    pub fn validate(&self, source_name: &str) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid {
            source_name: source_name.to_string(),
            key,
            message,
        };
        if self.id.is_empty()
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid("id", "use letters, digits, '-' or '_'".into()));
        }
        if !self.mqtt.url.is_empty() {
            let url = url::Url::parse(&self.mqtt.url)
                .map_err(|e| invalid("mqtt.url", format!("{e}: expected mqtt://host:port")))?;
            if !matches!(url.scheme(), "mqtt" | "mqtts" | "tcp" | "ssl") {
                return Err(invalid(
                    "mqtt.url",
                    format!("scheme {:?}: use mqtt:// or mqtts://", url.scheme()),
                ));
            }
            if url.host_str().is_none() {
                return Err(invalid("mqtt.url", "no host".into()));
            }
        }
        for r in &self.mqtt.regions {
            RegionCode::parse(r).map_err(|e| invalid("mqtt.regions", e.to_string()))?;
        }
        if self.mqtt.inflight == 0 {
            return Err(invalid("mqtt.inflight", "must be at least 1".into()));
        }
        if self.mqtt.keepalive < Duration::from_secs(1) {
            return Err(invalid("mqtt.keepalive", "must be at least 1s".into()));
        }
        if self.liveness.missed_heartbeats == 0 {
            return Err(invalid(
                "liveness.missed_heartbeats",
                "must be at least 1".into(),
            ));
        }
        if self.liveness.default_heartbeat_interval.is_zero()
            || self.liveness.check_interval.is_zero()
        {
            return Err(invalid(
                "liveness",
                "intervals must be longer than zero".into(),
            ));
        }
        let a = &self.alerts;
        for (key, d) in [
            ("alerts.hold_down_gateway", a.hold_down_gateway),
            ("alerts.hold_down_alarm", a.hold_down_alarm),
            ("alerts.hold_down_camera", a.hold_down_camera),
            ("alerts.group_wait", a.group_wait),
            ("alerts.monitoring_grace", a.monitoring_grace),
        ] {
            if d > Duration::from_secs(24 * 3600) {
                return Err(invalid(key, "must be at most 24h".into()));
            }
        }
        if a.flap_changes < 2 {
            return Err(invalid(
                "alerts.flap_changes",
                "must be at least 2 (a drop and a recovery are not flapping)".into(),
            ));
        }
        if a.flap_window.is_zero() || a.flap_window > Duration::from_secs(24 * 3600) {
            return Err(invalid(
                "alerts.flap_window",
                "must be longer than zero and at most 24h".into(),
            ));
        }
        if a.incident_min_gateways < 2 {
            return Err(invalid(
                "alerts.incident_min_gateways",
                "must be at least 2 (one gateway is an alert, not an incident)".into(),
            ));
        }
        for (key, f) in [
            ("coverage.alarm_fraction", self.coverage.alarm_fraction),
            ("coverage.video_fraction", self.coverage.video_fraction),
            (
                "alerts.video_down_fraction",
                self.alerts.video_down_fraction,
            ),
        ] {
            if !(f > 0.0 && f <= 1.0) {
                return Err(invalid(key, format!("{f} is not in (0, 1]")));
            }
        }
        if !self.database.url.is_empty() && !self.database.url.starts_with("sqlite:") {
            return Err(invalid(
                "database.url",
                "only sqlite://PATH is supported in this version".into(),
            ));
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}",
                self.data_dir.join("campuswatch.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }

    /// Parsed partition regions (validated by `validate`).
    pub fn regions(&self) -> Vec<RegionCode> {
        self.mqtt
            .regions
            .iter()
            .filter_map(|r| RegionCode::parse(r).ok())
            .collect()
    }

    /// The documented default configuration as TOML.
    pub fn default_toml() -> String {
        include_str!("../../config/server.example.toml").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(s: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::io::Write::write_all(&mut f, s.as_bytes()).unwrap();
        f
    }

    #[test]
    fn the_example_config_parses_and_equals_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/server.example.toml");
        let cfg = ServerConfig::load(Some(Path::new(path))).unwrap();
        assert_eq!(cfg, ServerConfig::default());
    }

    #[test]
    fn a_file_overrides_defaults() {
        let f = write("[liveness]\nmissed_heartbeats = 5\n[mqtt]\nkeepalive = \"30s\"\n");
        let cfg = ServerConfig::load(Some(f.path())).unwrap();
        assert_eq!(cfg.liveness.missed_heartbeats, 5);
        assert_eq!(cfg.mqtt.keepalive, Duration::from_secs(30));
        assert_eq!(cfg.http, HttpConfig::default());
    }

    #[test]
    fn an_unknown_key_names_the_key_and_the_file() {
        let f = write("[liveness]\nmissed_heartbeat = 5\n");
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("missed_heartbeat"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }

    #[test]
    fn a_bad_value_is_refused_with_its_key() {
        let f = write("[coverage]\nvideo_fraction = 1.5\n");
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("coverage.video_fraction"), "{err}");
        let f = write("[mqtt]\nurl = \"http://broker\"\n");
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("mqtt.url"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        // The variables are handed in rather than set on the process, which would leak
        // into the other tests running in parallel.
        let f = write("[liveness]\nmissed_heartbeats = 5\n");
        let env = [
            ("CAMPUSWATCH__LIVENESS__MISSED_HEARTBEATS", "7"),
            ("CAMPUSWATCH__MQTT__REGIONS", "150100,150203"),
            ("CAMPUSWATCH_TEST_MQTT_URL", "mqtt://ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cfg = ServerConfig::load_from(Some(f.path()), Some(env)).unwrap();
        assert_eq!(cfg.liveness.missed_heartbeats, 7);
        assert_eq!(cfg.mqtt.regions, ["150100", "150203"]);
    }
}
