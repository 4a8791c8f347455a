//! The agent's configuration: typed, with documented defaults, loaded from built-in
//! defaults, then a TOML file, then `CAMPUSWATCH__SECTION__KEY` environment variables
//! (last one wins), then validated.
//!
//! `campuswatch-agent print-config` prints `config/agent.example.toml`, which a test parses
//! so it never drifts from these structs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use campuswatch_protocol::{CampusId, DeviceId, DeviceKind, RegionCode, RegionLevel, MAX_DEVICES};
use campuswatch_service::redact;
use campuswatch_service::settings::{Env, Loader};
use campuswatch_service::Invalid;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::probe::ProbedDevice;
pub use crate::probe::{ProbeConfig, Transport};
pub use crate::supervision::Category;
pub use campuswatch_service::{ConfigError, Secret};

/// The documented example configuration (what `print-config` prints).
pub const EXAMPLE_TOML: &str = include_str!("../../config/agent.example.toml");

/// How the agent reads its configuration (see [`Loader`]).
const LOADER: Loader = Loader {
    hint: "`campuswatch-agent print-config` shows every key with its default",
    list_keys: &[],
    name_env_variables: true,
};

/// The whole agent configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The campus's registry id (for example `150102-K-0001`). Required.
    pub campus: CampusId,
    /// The campus's county-level region code (for example `150102`). Required.
    pub region: RegionCode,
    /// Where the agent keeps its epoch and its event spool. Default `/var/lib/campuswatch`.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// How often a heartbeat is published while connected. Default `15s`: about 2 MB a
    /// day on a metered link, and a silently lost gateway is stale after 45 s (the
    /// server's three missed heartbeats); a killed one is announced by its Last Will.
    #[serde(default = "default_heartbeat_interval", with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// The MQTT broker connection.
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// The bound of the on-disk event spool.
    #[serde(default)]
    pub spool: SpoolConfig,
    /// How many RTSP stream checks may run at once on this gateway (each plays a camera's
    /// stream for its `stream_window`); more are postponed. Default 2.
    #[serde(default = "default_max_stream_checks")]
    pub max_stream_checks: usize,
    /// The campus's alarm devices and cameras, in the order they are reported.
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/campuswatch")
}

fn default_heartbeat_interval() -> Duration {
    Duration::from_secs(15)
}

/// The MQTT broker connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker URL: `mqtt://host:1883` or `mqtts://host:8883` (TLS). Credentials may be
    /// given as userinfo (`mqtt://user:pass@host:1883`). Default `mqtt://127.0.0.1:1883`.
    pub url: String,
    /// Username; empty = take it from the URL, or connect without credentials.
    pub username: String,
    /// Password; empty = take it from the URL.
    pub password: String,
    /// PEM file of CA certificates to trust for `mqtts://` besides the system's roots
    /// (the CA that signed the broker's certificate). Empty = system roots only.
    pub ca_file: String,
    /// PEM file of this gateway's client certificate (`mqtts://` only), for brokers that
    /// authenticate gateways by certificate; set with `client_key_file`. Empty = none.
    pub client_cert_file: String,
    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1, not
    /// encrypted). Empty = none.
    pub client_key_file: String,
    /// MQTT keepalive; the broker publishes the Last Will about 1.5 x this after it stops
    /// hearing from the gateway. At least 1s. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// The window of the first reconnection attempt after a lost or refused connection:
    /// the agent waits a random time between 0 and this; each failed attempt doubles the
    /// window, up to `reconnect_delay_max`. It sets how fast a fleet may come back after
    /// a broker restart: about (gateways / this) connections a second at the peak.
    /// Default `10s` (10,000 gateways: about 1,000 a second).
    #[serde(with = "humantime_serde")]
    pub reconnect_delay_min: Duration,
    /// Longest delay between reconnection attempts. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub reconnect_delay_max: Duration,
    /// The newest payload schema version the server reads. Fields of newer versions
    /// are left out (version 3: no cause codes), so an agent upgraded before its server
    /// keeps being understood. 2 to 4; default 4.
    pub schema_version: u32,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            username: String::new(),
            password: String::new(),
            ca_file: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            keepalive: Duration::from_secs(10),
            reconnect_delay_min: Duration::from_secs(10),
            reconnect_delay_max: Duration::from_secs(60),
            schema_version: campuswatch_protocol::SCHEMA_VERSION,
        }
    }
}

impl MqttConfig {
    /// How to reach and log in to the broker, for the connection and the field check.
    pub fn login(&self) -> campuswatch_mqtt::BrokerLogin {
        campuswatch_mqtt::BrokerLogin {
            url: self.url.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
        }
    }

    fn check(&self) -> Result<(), Invalid> {
        // URL, credentials and every TLS file, read and parsed as at connect time.
        self.login()
            .validate()
            .map_err(|e| Invalid::new(e.key, e.message))?;
        if self.keepalive < Duration::from_secs(1) || self.keepalive > Duration::from_secs(65535) {
            return Err(Invalid::new(
                "mqtt.keepalive",
                "must be 1s to 65535s (MQTT counts it in whole seconds)",
            ));
        }
        if self.reconnect_delay_min.is_zero() || self.reconnect_delay_max < self.reconnect_delay_min
        {
            return Err(Invalid::new(
                "mqtt.reconnect_delay_min",
                "must be longer than zero and not longer than mqtt.reconnect_delay_max",
            ));
        }
        let versions =
            campuswatch_protocol::BASE_SCHEMA_VERSION..=campuswatch_protocol::SCHEMA_VERSION;
        if !versions.contains(&self.schema_version) {
            return Err(Invalid::new(
                "mqtt.schema_version",
                format!(
                    "must be {} to {} (the newest version the server reads)",
                    versions.start(),
                    versions.end()
                ),
            ));
        }
        Ok(())
    }
}

/// The bound of the event spool (`state_dir/spool`). Events wait there until the broker
/// acknowledges them; when a broker outage outlasts the bound, the oldest waiting events
/// are dropped first, and the drop is counted, logged and reported in the next birth.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Most events waiting for acknowledgement. At least 1. Default 10000 (a day of a
    /// flapping camera every ten seconds).
    pub max_events: usize,
    /// Most bytes of waiting events, as written (an event takes 250 to 600 bytes). The
    /// spool file can hold up to twice this between compactions, and the newest event is
    /// always kept. 64 KiB to 1 GiB. Default 4194304 (4 MiB).
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_events: 10_000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// One alarm device or camera. Unset optional keys take the per-kind defaults
/// (see [`KindDefaults`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Unique within the campus (`alarm-1`, `cam-gate-north`).
    pub id: DeviceId,
    /// `alarm` or `camera`.
    pub kind: DeviceKind,
    /// A required device that is down fails `campuswatch-agent check`. Default: true for
    /// alarms, false for cameras.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Time between probes. Default: alarm `10s`, camera `30s`.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    /// How long one probe (for a camera, each RTSP exchange) may take before it counts as
    /// failed. Default: alarm `3s`, camera `3300ms`.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Consecutive failed probes before the device is down. Default: alarm 2, camera 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_after: Option<u32>,
    /// Consecutive good probes before a down device is up again. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_after: Option<u32>,
    /// After a failed probe of a device that is not down, the next probe begins this long
    /// after the failed one began (at most `interval`; at once if that one took longer),
    /// and so on until it is down or answers again: a dead link is confirmed in seconds,
    /// not whole intervals. Default `3s`.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_interval: Option<Duration>,
    /// How the device is probed.
    pub probe: ProbeConfig,
}

fn default_max_stream_checks() -> usize {
    2
}

/// Per-kind defaults for the optional device keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindDefaults {
    pub required: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub down_after: u32,
    pub up_after: u32,
    pub retry_interval: Duration,
}

impl KindDefaults {
    pub fn of(kind: DeviceKind) -> Self {
        match kind {
            // Alarm links are what the police rely on: probe often, judge quickly.
            DeviceKind::Alarm => Self {
                required: true,
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(3),
                down_after: 2,
                up_after: 2,
                retry_interval: Duration::from_secs(3),
            },
            DeviceKind::Camera => Self {
                required: false,
                interval: Duration::from_secs(30),
                // Three probes that each wait the whole timeout, one right after another,
                // fit in 10 s: a hung camera is down within interval + 10 s. And a TCP
                // handshake may still use the SYN Linux sends again after 3 s.
                timeout: Duration::from_millis(3300),
                down_after: 3,
                up_after: 2,
                retry_interval: Duration::from_secs(3),
            },
        }
    }
}

impl DeviceConfig {
    /// A device with every optional key at its per-kind default.
    pub fn new(id: DeviceId, kind: DeviceKind, probe: ProbeConfig) -> Self {
        Self {
            id,
            kind,
            required: None,
            interval: None,
            timeout: None,
            down_after: None,
            up_after: None,
            retry_interval: None,
            probe,
        }
    }

    fn defaults(&self) -> KindDefaults {
        KindDefaults::of(self.kind)
    }
    pub fn required(&self) -> bool {
        self.required.unwrap_or(self.defaults().required)
    }
    /// The probe interval: as set, else what the DC-09 supervision category needs, else
    /// the per-kind default.
    pub fn interval(&self) -> Duration {
        if let Some(i) = self.interval {
            return i;
        }
        match &self.probe {
            ProbeConfig::Dc09 {
                supervision: Some(c),
                ..
            } => c.probe_interval(self.down_after(), self.timeout()),
            _ => self.defaults().interval,
        }
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(self.defaults().timeout)
    }
    pub fn down_after(&self) -> u32 {
        self.down_after.unwrap_or(self.defaults().down_after)
    }
    pub fn up_after(&self) -> u32 {
        self.up_after.unwrap_or(self.defaults().up_after)
    }
    /// The wait before the next probe while a failure is being confirmed: as set, else
    /// the per-kind default, never longer than the interval.
    pub fn retry_interval(&self) -> Duration {
        self.retry_interval
            .unwrap_or(self.defaults().retry_interval)
            .min(self.interval())
    }

    /// Checks the device's own keys, then its probe's.
    fn check(&self) -> Result<(), Invalid> {
        if self.interval().is_zero() {
            return Err(Invalid::new("interval", "must be longer than zero"));
        }
        if self.timeout().is_zero() {
            return Err(Invalid::new("timeout", "must be longer than zero"));
        }
        if self.down_after() == 0 {
            return Err(Invalid::new("down_after", "must be at least 1"));
        }
        if self.retry_interval().is_zero() {
            return Err(Invalid::new("retry_interval", "must be longer than zero"));
        }
        if self.up_after() == 0 {
            return Err(Invalid::new("up_after", "must be at least 1"));
        }
        self.probe.validate(&ProbedDevice {
            id: self.id.as_str(),
            interval: self.interval,
            timeout: self.timeout(),
            down_after: self.down_after(),
        })
    }
}

impl AgentConfig {
    /// A configuration with every optional key at its default and no devices.
    pub fn new(campus: CampusId, region: RegionCode) -> Self {
        Self {
            campus,
            region,
            state_dir: default_state_dir(),
            heartbeat_interval: default_heartbeat_interval(),
            mqtt: MqttConfig::default(),
            spool: SpoolConfig::default(),
            max_stream_checks: default_max_stream_checks(),
            devices: Vec::new(),
        }
    }

    /// Defaults, then `file`, then the process environment; validated.
    pub fn load(file: &Path) -> Result<AgentConfig, ConfigError> {
        Self::load_from(file, None)
    }

    /// `load`, reading the environment from `env` instead of the process when given
    /// (tests hand variables in rather than set them on the shared process).
    pub fn load_from(file: &Path, env: Option<Env>) -> Result<AgentConfig, ConfigError> {
        // The built-in defaults are the serde defaults of the structs: campus and region
        // have none on purpose, a gateway must say which campus it is.
        LOADER.load(None, Some(file), env, |cfg: &AgentConfig, name| {
            cfg.check().map_err(|e| e.in_source(name))
        })
    }

    /// Checks what the types cannot; errors name the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(|e| e.in_source("configuration"))
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.region.level() != RegionLevel::County {
            return Err(Invalid::new(
                "region",
                format!(
                    "{} is a {:?}-level code; use the campus's county-level code (last two digits not 00)",
                    self.region,
                    self.region.level()
                ),
            ));
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval > Duration::from_secs(3600)
        {
            return Err(Invalid::new(
                "heartbeat_interval",
                "must be longer than zero and at most 1h (for example \"5s\")",
            ));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(Invalid::new(
                "state_dir",
                "must name a directory the agent may write (for example \"/var/lib/campuswatch\")",
            ));
        }
        self.mqtt.check()?;
        if !(1..=1_000_000).contains(&self.spool.max_events) {
            return Err(Invalid::new(
                "spool.max_events",
                "must be 1 to 1000000 (events kept while the broker cannot be reached)",
            ));
        }
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&self.spool.max_bytes) {
            return Err(Invalid::new(
                "spool.max_bytes",
                "must be 65536 (64 KiB) to 1073741824 (1 GiB), in bytes",
            ));
        }
        if !(1..=64).contains(&self.max_stream_checks) {
            return Err(Invalid::new(
                "max_stream_checks",
                "must be 1 to 64 (stream checks running at once on this gateway)",
            ));
        }
        if self.devices.len() > MAX_DEVICES {
            return Err(Invalid::new(
                "devices",
                format!("at most {MAX_DEVICES} devices per gateway"),
            ));
        }
        let mut ids = HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            let device = format!("devices[{i}]");
            if !ids.insert(&d.id) {
                return Err(Invalid::new(
                    "id",
                    format!(
                        "device id {:?} is listed twice; give each device its own id",
                        d.id.as_str()
                    ),
                )
                .within(&device));
            }
            d.check().map_err(|e| e.within(&device))?;
        }
        Ok(())
    }

    /// A short digest of the configuration that is in effect, sent in every birth so an
    /// operator can spot gateways running a stale config. Credentials are left out: the
    /// digest travels to everyone who may read the birth topic.
    pub fn digest(&self) -> String {
        let mut c = self.clone();
        c.mqtt.password.clear();
        c.mqtt.username.clear();
        c.mqtt.url = redact::url(&c.mqtt.url);
        for d in &mut c.devices {
            d.probe.forget_secrets();
        }
        // JSON of these structs is canonical: fields in declaration order, no maps with
        // unordered keys.
        let bytes = serde_json::to_vec(&c).unwrap_or_default();
        let hash = Sha256::digest(&bytes);
        hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
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

    const MINIMAL: &str = "campus = \"150102-K-0001\"\nregion = \"150102\"\n";

    fn no_env() -> Option<Env> {
        Some(Env::new())
    }

    #[test]
    fn the_example_config_parses_with_every_device_kind() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/agent.example.toml");
        let cfg = AgentConfig::load_from(Path::new(path), no_env()).unwrap();
        assert_eq!(cfg.campus.as_str(), "150102-K-0001");
        assert_eq!(cfg.mqtt, MqttConfig::default());
        assert_eq!(cfg.spool, SpoolConfig::default());
        assert_eq!(cfg.heartbeat_interval, Duration::from_secs(15));
        assert!(cfg.devices.iter().any(|d| d.kind == DeviceKind::Alarm));
        assert!(cfg.devices.iter().any(|d| d.kind == DeviceKind::Camera));
        assert!(cfg.devices.iter().any(|d| d.probe.kind() == "http"));
        assert!(cfg.devices.iter().any(|d| d.probe.kind() == "tcp"));
        assert_eq!(EXAMPLE_TOML, std::fs::read_to_string(path).unwrap());
    }

    #[test]
    fn a_minimal_file_takes_every_default() {
        let f = write(MINIMAL);
        let cfg = AgentConfig::load_from(f.path(), no_env()).unwrap();
        let expected = AgentConfig::new(
            CampusId::parse("150102-K-0001").unwrap(),
            RegionCode::parse("150102").unwrap(),
        );
        assert_eq!(cfg, expected);
    }

    #[test]
    fn devices_take_per_kind_defaults_unless_set() {
        let f = write(&format!(
            "{MINIMAL}[[devices]]\nid = \"a\"\nkind = \"alarm\"\nprobe = {{ type = \"tcp\", target = \"10.0.0.1:5000\" }}\n\
             [[devices]]\nid = \"c\"\nkind = \"camera\"\ninterval = \"1m\"\nrequired = true\n\
             probe = {{ type = \"http\", url = \"http://10.0.0.4/status\", expect_status = [200, 204] }}\n"
        ));
        let cfg = AgentConfig::load_from(f.path(), no_env()).unwrap();
        let (a, c) = (&cfg.devices[0], &cfg.devices[1]);
        assert!(a.required());
        assert_eq!(
            (a.interval(), a.timeout()),
            (Duration::from_secs(10), Duration::from_secs(3))
        );
        assert_eq!((a.down_after(), a.up_after()), (2, 2));
        assert!(c.required());
        assert_eq!(
            (c.interval(), c.timeout()),
            (Duration::from_secs(60), Duration::from_millis(3300))
        );
        assert_eq!(c.down_after(), 3);
        assert!(
            matches!(&c.probe, ProbeConfig::Http { expect_status, .. } if expect_status == &[200, 204])
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let f = write(&format!(
            "{MINIMAL}[mqtt]\nurl = \"mqtt://file:1883\"\nkeepalive = \"30s\"\n"
        ));
        let env = [
            ("CAMPUSWATCH__MQTT__URL", "mqtts://env.example:8883"),
            ("CAMPUSWATCH__HEARTBEAT_INTERVAL", "2s"),
            ("CAMPUSWATCH__SPOOL__MAX_EVENTS", "500"),
            // Another variable of the family that is not a key must not be read.
            ("CAMPUSWATCH_TEST_MQTT_URL", "mqtt://ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cfg = AgentConfig::load_from(f.path(), Some(env)).unwrap();
        assert_eq!(cfg.mqtt.url, "mqtts://env.example:8883");
        assert_eq!(cfg.mqtt.keepalive, Duration::from_secs(30));
        assert_eq!(cfg.heartbeat_interval, Duration::from_secs(2));
        assert_eq!(cfg.spool.max_events, 500);
        assert_eq!(cfg.spool.max_bytes, SpoolConfig::default().max_bytes);
    }

    #[test]
    fn an_unknown_key_names_the_key_and_the_file() {
        let f = write(&format!("{MINIMAL}[mqtt]\nkeep_alive = \"5s\"\n"));
        let err = AgentConfig::load_from(f.path(), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("keep_alive"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");
    }

    #[test]
    fn a_refused_file_names_the_line_of_the_problem() {
        let device = |kind: &str, target: &str| {
            format!(
                "{MINIMAL}\n[[devices]]\nid = \"a\"\nkind = \"{kind}\"\n\
                 probe = {{ type = \"tcp\", target = \"{target}\" }}\n"
            )
        };
        for (body, line, says) in [
            // A syntax error, an unknown key, a wrong type, a bad enum value, and a value
            // that only validation refuses.
            (
                format!("{MINIMAL}[mqtt]\nurl = \"mqtt://x:1883\n"),
                4,
                "string",
            ),
            (
                format!("{MINIMAL}[mqtt]\n\nkeep_alive = \"5s\"\n"),
                5,
                "keep_alive",
            ),
            (format!("{MINIMAL}heartbeat_interval = 5\n"), 3, "duration"),
            (device("alarmx", "h:1"), 6, "alarmx"),
            (device("alarm", "h"), 7, "devices[0].probe.target"),
        ] {
            let f = write(&body);
            let err = AgentConfig::load_from(f.path(), no_env()).unwrap_err();
            assert_eq!(err.line(), Some(line), "{err}");
            assert_eq!(err.source_name(), f.path().display().to_string());
            assert!(
                err.to_string()
                    .starts_with(&format!("{}:{line}: ", f.path().display())),
                "{err}"
            );
            assert!(err.reason().contains(says), "{says} in {err}");
        }
    }

    #[test]
    fn a_bad_value_from_the_environment_names_the_variable_not_a_line() {
        let f = write(&format!("{MINIMAL}[mqtt]\nurl = \"mqtt://fine:1883\"\n"));
        let env = [("CAMPUSWATCH__MQTT__URL", "http://broker")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let err = AgentConfig::load_from(f.path(), Some(env)).unwrap_err();
        assert_eq!(err.line(), None);
        assert!(
            err.source_name().contains("CAMPUSWATCH__MQTT__URL"),
            "{err}"
        );
        assert!(err.reason().contains("mqtt.url"), "{err}");
    }

    #[test]
    fn a_missing_campus_is_named() {
        let f = write("region = \"150102\"\n");
        let err = AgentConfig::load_from(f.path(), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("campus"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        for (body, key) in [
            ("campus = \"150102-K-0001\"\nregion = \"150100\"\n", "region"),
            (&format!("{MINIMAL}[mqtt]\nurl = \"http://broker\"\n") as &str, "mqtt.url"),
            (&format!("{MINIMAL}[mqtt]\nkeepalive = \"100ms\"\n"), "mqtt.keepalive"),
            (&format!("{MINIMAL}[mqtt]\nca_file = \"/nonexistent/ca.pem\"\n"), "mqtt.ca_file"),
            (&format!("{MINIMAL}[spool]\nmax_events = 0\n"), "spool.max_events"),
            (&format!("{MINIMAL}[spool]\nmax_bytes = 1000\n"), "spool.max_bytes"),
            (
                &format!("{MINIMAL}[[devices]]\nid = \"a\"\nkind = \"alarm\"\nprobe = {{ type = \"tcp\", target = \"10.0.0.1\" }}\n"),
                "devices[0].probe.target",
            ),
            (
                &format!("{MINIMAL}[[devices]]\nid = \"a\"\nkind = \"alarm\"\ndown_after = 0\nprobe = {{ type = \"tcp\", target = \"h:1\" }}\n"),
                "devices[0].down_after",
            ),
            (
                &format!("{MINIMAL}[[devices]]\nid = \"a\"\nkind = \"alarm\"\nprobe = {{ type = \"tcp\", target = \"h:1\" }}\n\
                          [[devices]]\nid = \"a\"\nkind = \"camera\"\nprobe = {{ type = \"http\", url = \"http://h/\" }}\n"),
                "devices[1].id",
            ),
            (
                &format!("{MINIMAL}[[devices]]\nid = \"c\"\nkind = \"camera\"\nprobe = {{ type = \"http\", url = \"ftp://h/\" }}\n"),
                "devices[0].probe.url",
            ),
        ] {
            let f = write(body);
            let err = AgentConfig::load_from(f.path(), no_env()).unwrap_err().to_string();
            assert!(err.contains(key), "expected {key} in: {err}");
            assert!(err.contains(&f.path().display().to_string()), "{err}");
        }
    }

    #[test]
    fn broker_tls_files_are_read_at_load_and_errors_name_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let crt = dir.path().join("gw.crt");
        let key = dir.path().join("gw.key");
        let body = format!(
            "{MINIMAL}[mqtt]\nurl = \"mqtts://broker.example:8883\"\n\
             client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            crt.display(),
            key.display()
        );
        let err = AgentConfig::load_from(write(&body).path(), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("mqtt.client_cert_file"), "{err}");
        assert!(err.contains(&crt.display().to_string()), "{err}");
        let pair = rcgen::generate_simple_self_signed(vec!["150102-K-0001".into()]).unwrap();
        std::fs::write(&crt, pair.cert.pem()).unwrap();
        std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
        let cfg = AgentConfig::load_from(write(&body).path(), no_env()).unwrap();
        assert_eq!(cfg.mqtt.login().describe(), "TLS, client certificate");
        // The environment can point at other files; a key alone is refused.
        let env = [("CAMPUSWATCH__MQTT__CLIENT_CERT_FILE", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let err = AgentConfig::load_from(write(&body).path(), Some(env))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mqtt.client_cert_file: must be set together"),
            "{err}"
        );
        // Client certificates and CA bundles need mqtts://.
        let plain = body.replace("mqtts://", "mqtt://");
        let err = AgentConfig::load_from(write(&plain).path(), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not use TLS"), "{err}");
    }

    #[test]
    fn a_supervision_category_sets_the_link_test_interval_and_the_listener_window() {
        let body = format!(
            "{MINIMAL}[[devices]]\nid = \"arc\"\nkind = \"alarm\"\n\
             probe = {{ type = \"dc09\", target = \"10.0.0.5:12128\", account = \"1234\", supervision = \"SP4\" }}\n\
             [[devices]]\nid = \"panel\"\nkind = \"alarm\"\n\
             probe = {{ type = \"dc09_listen\", listen = \"0.0.0.0:12128\", account = \"XTRM189\", supervision = \"sp5\" }}\n"
        );
        let f = write(&body);
        let cfg = AgentConfig::load_from(f.path(), no_env()).unwrap();
        // SP4 reports within 3 min: (180 s - 3 s timeout) / (2 failures + 1).
        assert_eq!(cfg.devices[0].interval(), Duration::from_secs(59));
        let window = match &cfg.devices[1].probe {
            ProbeConfig::Dc09Listen {
                window,
                supervision,
                ..
            } => window.or(supervision.map(|c| c.reporting_time())),
            other => panic!("{other:?}"),
        };
        assert_eq!(window, Some(Duration::from_secs(90)));

        // An explicit interval too slow for the category is refused, with the arithmetic.
        let slow = body.replacen(
            "kind = \"alarm\"\n",
            "kind = \"alarm\"\ninterval = \"2m\"\n",
            1,
        );
        let err = AgentConfig::load_from(write(&slow).path(), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("devices[0].interval"), "{err}");
        assert!(err.contains("SP4 reporting time of 3m"), "{err}");
        // So is a listener window longer than the category's reporting time, a listener
        // with neither, and a category that does not exist.
        for (bad, key, says) in [
            (
                body.replace(
                    "supervision = \"sp5\"",
                    "supervision = \"SP5\", window = \"5m\"",
                ),
                "devices[1].probe.window",
                "SP5 reporting time",
            ),
            (
                body.replace(", supervision = \"sp5\"", ""),
                "devices[1].probe.window",
                "supervision = \"SP4\"",
            ),
            (
                body.replace("\"SP4\"", "\"SP9\""),
                "",
                "SP1, SP2, SP3, SP4, SP5, SP6, DP1, DP2, DP3, DP4",
            ),
        ] {
            let err = AgentConfig::load_from(write(&bad).path(), no_env())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(says), "{err}");
        }
    }

    #[test]
    fn an_unknown_probe_key_or_type_is_refused() {
        for probe in [
            "{ type = \"tcp\", target = \"h:1\", url = \"x\" }",
            "{ type = \"telnet\", target = \"h\" }",
        ] {
            let f = write(&format!(
                "{MINIMAL}[[devices]]\nid = \"a\"\nkind = \"alarm\"\nprobe = {probe}\n"
            ));
            let err = AgentConfig::load_from(f.path(), no_env())
                .unwrap_err()
                .to_string();
            assert!(err.contains("url") || err.contains("telnet"), "{err}");
        }
    }

    const KEY_HEX: &str = "30313233343536373839414243444546";

    fn dc09_device(key: &str) -> String {
        format!(
            "{MINIMAL}[[devices]]\nid = \"alarm-path\"\nkind = \"alarm\"\n\
             probe = {{ type = \"dc09\", target = \"10.20.0.5:12128\", account = \"1234\", key = \"{key}\" }}\n\
             [[devices]]\nid = \"panel\"\nkind = \"alarm\"\n\
             probe = {{ type = \"dc09_listen\", listen = \"0.0.0.0:12128\", account = \"XTRM189\", window = \"3m\", key = \"{KEY_HEX}\" }}\n"
        )
    }

    #[test]
    fn dc09_keys_load_and_never_show_in_debug_output() {
        let f = write(&dc09_device(&"ab".repeat(32)));
        let cfg = AgentConfig::load_from(f.path(), no_env()).unwrap();
        assert!(matches!(
            &cfg.devices[0].probe,
            ProbeConfig::Dc09 { key: Some(k), .. } if k.expose() == "ab".repeat(32)
        ));
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("abab") && !shown.contains(KEY_HEX),
            "{shown}"
        );
        assert!(shown.contains("key: Some(\"***\")"), "{shown}");
    }

    #[test]
    fn a_bad_dc09_key_is_refused_naming_the_device_but_not_the_key() {
        for (key, says) in [
            ("3031323334353637383941424344454", "it has 31 characters"),
            ("303132333435363738394142434445ZZ", "hex digits only"),
            ("0123456789ABCDEF", "as the hex of those characters"),
        ] {
            let f = write(&dc09_device(key));
            let err = AgentConfig::load_from(f.path(), no_env())
                .unwrap_err()
                .to_string();
            assert!(err.contains("devices[0].probe.key"), "{err}");
            assert!(err.contains("\"alarm-path\""), "{err}");
            assert!(err.contains(says), "{err}");
            assert!(!err.contains(key), "the key itself is never printed: {err}");
        }
    }

    #[test]
    fn the_digest_leaves_out_keys_and_camera_passwords_but_not_whether_a_key_is_set() {
        let f = write(&dc09_device(KEY_HEX));
        let a = AgentConfig::load_from(f.path(), no_env()).unwrap();
        let mut b = a.clone();
        if let ProbeConfig::Dc09 { key, .. } = &mut b.devices[0].probe {
            *key = Some(Secret::new("ff".repeat(16)));
        }
        b.devices.push(DeviceConfig::new(
            DeviceId::parse("cam").unwrap(),
            DeviceKind::Camera,
            ProbeConfig::Onvif {
                url: "http://10.0.0.4/onvif/device_service".into(),
                username: "admin".into(),
                password: "one".into(),
                max_clock_drift: Duration::from_secs(60),
            },
        ));
        let mut c = b.clone();
        if let ProbeConfig::Onvif { password, .. } = &mut c.devices[2].probe {
            *password = "two".into();
        }
        assert_eq!(b.digest(), c.digest());
        let mut unkeyed = a.clone();
        if let ProbeConfig::Dc09 { key, .. } = &mut unkeyed.devices[0].probe {
            *key = None;
        }
        assert_ne!(a.digest(), unkeyed.digest());
        b.devices.pop();
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn the_digest_follows_the_config_but_not_the_password() {
        let f = write(MINIMAL);
        let a = AgentConfig::load_from(f.path(), no_env()).unwrap();
        let mut b = a.clone();
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 16);
        b.mqtt.password = "secret".into();
        assert_eq!(a.digest(), b.digest());
        b.heartbeat_interval = Duration::from_secs(6);
        assert_ne!(a.digest(), b.digest());
    }
}
