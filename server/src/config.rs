//! The server's configuration: typed, documented defaults, loaded from built-in
//! defaults, then a TOML file, then `CAMPUSWATCH__SECTION__KEY` environment variables
//! (last one wins), then validated. `campuswatch-server print-config` prints the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use campuswatch_protocol::RegionCode;
use serde::{Deserialize, Serialize};

use campuswatch_service::redact;
use campuswatch_service::settings::{Env, Loader};
pub use campuswatch_service::ConfigError;

/// How the server reads its configuration (see [`Loader`]).
const LOADER: Loader = Loader {
    hint: "see docs/configuration.md; `campuswatch-server print-config` shows every key with its default",
    list_keys: &["mqtt.regions"],
    name_env_variables: false,
};

/// The whole server configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// This server's id: it names the MQTT client (`cw-server-{id}`) and the retained
    /// state topic `cw/v1/server/{id}/state`.
    pub id: String,
    /// Where the SQLite database and other state live.
    pub data_dir: PathBuf,
    /// The time zone (an IANA name) of every time the console shows, the notices give
    /// and the CSVs write, and of the days the reports count. Default `Asia/Shanghai`.
    pub time_zone: String,
    pub http: HttpConfig,
    pub mqtt: MqttConfig,
    pub database: DatabaseConfig,
    pub history: HistoryConfig,
    pub ha: HaConfig,
    pub cluster: ClusterConfig,
    pub liveness: LivenessConfig,
    pub coverage: CoverageConfig,
    pub alerts: AlertsConfig,
    pub auth: AuthConfig,
    pub notify: NotifyConfig,
    pub gb28181: Gb28181Config,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            id: "main".into(),
            data_dir: PathBuf::from("campuswatch-data"),
            time_zone: "Asia/Shanghai".into(),
            http: HttpConfig::default(),
            mqtt: MqttConfig::default(),
            database: DatabaseConfig::default(),
            history: HistoryConfig::default(),
            ha: HaConfig::default(),
            cluster: ClusterConfig::default(),
            liveness: LivenessConfig::default(),
            coverage: CoverageConfig::default(),
            alerts: AlertsConfig::default(),
            auth: AuthConfig::default(),
            notify: NotifyConfig::default(),
            gb28181: Gb28181Config::default(),
        }
    }
}

/// The HTTP API and console.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Most connections open at once; more are closed as they arrive (counted in
    /// `cw_http_refused_total{reason="connection_limit"}`). Each open console holds one
    /// for its live stream. Default 4096.
    pub max_connections: usize,
    /// Time a client has to send a request's headers once its connection is ready for
    /// one; also how long a kept-alive connection may sit idle. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Longest wait for the next part of a request's body (a registry file). Default `30s`.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

impl HttpConfig {
    /// The bounds the server holds HTTP clients to.
    pub fn limits(&self) -> crate::http::Limits {
        crate::http::Limits {
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
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
    /// PEM file of CA certificates to trust for `mqtts://` besides the system's (the CA
    /// that signed the broker's certificate).
    pub ca_file: String,
    /// PEM file of the server's client certificate (`mqtts://` only), for brokers that
    /// authenticate by certificate; set with `client_key_file`.
    pub client_cert_file: String,
    /// PEM file of the client certificate's private key (not encrypted).
    pub client_key_file: String,
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
            client_cert_file: String::new(),
            client_key_file: String::new(),
            keepalive: Duration::from_secs(10),
            regions: Vec::new(),
            inflight: 100,
            embedded: EmbeddedConfig::default(),
        }
    }
}

impl MqttConfig {
    /// How to reach and log in to the external broker.
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
    /// A password file in `mosquitto_passwd`'s format (user name = campus id). Set:
    /// every client must log in and is held to the topic ACL of the Mosquitto recipe.
    pub password_file: String,
    /// Users of the password file with the server's rights (read every campus, write
    /// the servers' state and rebirth requests): a standby server, a reader.
    pub server_users: Vec<String>,
    /// PEM file of the broker's certificate chain: clients connect with TLS (mqtts://).
    pub tls_cert_file: String,
    /// PEM file of that certificate's private key (not encrypted).
    pub tls_key_file: String,
    /// Listen beyond loopback without `password_file` and TLS anyway (anyone who reaches
    /// the port may read every campus and speak for any campus).
    pub insecure: bool,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            fallback_to_free_port: true,
            password_file: String::new(),
            server_users: vec!["server".into()],
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            insecure: false,
        }
    }
}

impl EmbeddedConfig {
    /// The broker's protection as `crate::broker` takes it.
    pub fn security(&self) -> crate::broker::BrokerSecurity {
        let path = |s: &str| (!s.is_empty()).then(|| std::path::PathBuf::from(s));
        crate::broker::BrokerSecurity {
            password_file: path(&self.password_file),
            server_users: self.server_users.clone(),
            tls: path(&self.tls_cert_file)
                .zip(path(&self.tls_key_file))
                .map(|(cert, key)| crate::broker::TlsFiles { cert, key }),
            insecure: self.insecure,
        }
    }

    /// The files read and parsed as at start, and the rule for listening beyond loopback.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        match (self.tls_cert_file.is_empty(), self.tls_key_file.is_empty()) {
            (false, true) => return Err(("mqtt.embedded.tls_key_file", "must be set together with mqtt.embedded.tls_cert_file: the PEM file of the certificate's private key".into())),
            (true, false) => return Err(("mqtt.embedded.tls_cert_file", "must be set together with mqtt.embedded.tls_key_file: the PEM file of the broker's certificate".into())),
            _ => {}
        }
        let security = self.security();
        security
            .check_exposure(self.listen)
            .map_err(|e| ("mqtt.embedded.listen", e.to_string()))?;
        if let Some(p) = &security.password_file {
            crate::broker::passwd::PasswordFile::load(p)
                .map_err(|e| ("mqtt.embedded.password_file", e))?;
        }
        if !self.tls_cert_file.is_empty() {
            for (key, r) in [
                (
                    "mqtt.embedded.tls_cert_file",
                    campuswatch_mqtt::certificates(
                        "mqtt.embedded.tls_cert_file",
                        &self.tls_cert_file,
                    )
                    .map(drop),
                ),
                (
                    "mqtt.embedded.tls_key_file",
                    campuswatch_mqtt::private_key("mqtt.embedded.tls_key_file", &self.tls_key_file)
                        .map(drop),
                ),
            ] {
                r.map_err(|e| (key, e.message))?;
            }
        }
        Ok(())
    }
}

/// The store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH`, or `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (with
    /// PostgreSQL's URL parameters, e.g. `?sslmode=require`). Empty:
    /// `sqlite://{data_dir}/campuswatch.db`.
    pub url: String,
}

/// How long the raw transition history is kept (see `store::retention`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Local days of raw transitions (events) kept; older ones are removed once their
    /// days are rolled up per campus, and availability reports of those days come from
    /// the roll-ups. 0: kept for ever.
    pub raw_days: u32,
    /// Days the audit log of administrative actions is kept; older entries are removed.
    /// At least 180 (six months, what China's Cybersecurity Law asks of network logs).
    /// 0: kept for ever.
    pub audit_days: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            raw_days: 400,
            audit_days: 400,
        }
    }
}

/// The least `history.audit_days` (other than 0).
pub const MIN_AUDIT_DAYS: u32 = 180;

/// The least `history.raw_days` (other than 0): the campus page's timeline and the
/// reports of the current month read raw history.
pub const MIN_RAW_DAYS: u32 = 35;

/// An active/standby pair (or more) per partition (see `crate::ha`, docs/scale-out.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HaConfig {
    /// Take turns with the other replicas that have this server's `id`, through a
    /// PostgreSQL advisory lock: one is active, the others wait as standbys. Needs a
    /// `postgres://` database and an external broker (`mqtt.url`).
    pub enabled: bool,
    /// How often a standby tries to take the lock, and the active checks it still holds
    /// it: the takeover after the active stops is about this plus a start.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            check_interval: Duration::from_secs(1),
        }
    }
}

/// The servers of the other partitions, for the whole area's coverage (see
/// `crate::peers`, docs/scale-out.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Base URLs of the servers that watch the other regions (`http://cw-b:8080`): the
    /// coverage API adds their figures to this server's. Empty: this server's alone.
    pub peers: Vec<String>,
    /// An API token valid on every peer (a viewer of the whole area is enough).
    pub token: String,
    /// How long a peer may take to answer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            peers: Vec::new(),
            token: String::new(),
            timeout: Duration::from_secs(2),
        }
    }
}

/// Who may use the API (see `crate::auth`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a signed-in user (session cookie or API token) for the API and the console,
    /// and apply users' roles and region scopes (on by default). Off: the API is open to
    /// whoever reaches it. Started with no users, the server makes the administrator
    /// `admin` and writes its password to `{data_dir}/initial-admin-password`.
    pub enabled: bool,
    /// How long a console session lasts after sign-in.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` (sent over HTTPS and to localhost only). Turn off
    /// only behind a plain-HTTP closed network that cannot do otherwise.
    pub secure_cookies: bool,
    /// How long an API token lasts when its request names no lifetime. Default `90days`.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// The longest lifetime a token may be given. Default `365days`.
    #[serde(with = "humantime_serde")]
    pub token_max_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: true,
            token_ttl: Duration::from_secs(90 * 86_400),
            token_max_ttl: Duration::from_secs(365 * 86_400),
        }
    }
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
    /// A gateway whose heartbeats disagree with the server's view (or whose birth was
    /// missed) is asked for a rebirth at once, then again after this if it still
    /// disagrees, the wait doubling each time up to `rebirth_max_interval`.
    #[serde(with = "humantime_serde")]
    pub rebirth_min_interval: Duration,
    /// The longest wait between two rebirth requests to one gateway.
    #[serde(with = "humantime_serde")]
    pub rebirth_max_interval: Duration,
    /// Most rebirth requests per second across all gateways; more wait for their
    /// gateway's next heartbeat, so a whole fleet missing its births is asked gradually.
    pub rebirth_rate: u32,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            missed_heartbeats: 3,
            default_heartbeat_interval: Duration::from_secs(15),
            check_interval: Duration::from_millis(500),
            rebirth_min_interval: Duration::from_secs(60),
            rebirth_max_interval: Duration::from_secs(3600),
            rebirth_rate: 100,
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

/// The GB/T 28181 platform (docs/gb28181.md): campus NVRs and cameras, or a lower
/// platform in cascade, register here as to an upper platform.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Gb28181Config {
    /// Listen for GB/T 28181 devices.
    pub enabled: bool,
    /// Where devices register: UDP and TCP on this port.
    pub listen: SocketAddr,
    /// The platform's own 20-digit code (its SIP user name).
    pub platform_id: String,
    /// The SIP domain of digest challenges. Empty: the first 10 digits of `platform_id`.
    pub realm: String,
    /// The password of devices that have none of their own in `devices_file`.
    pub password: String,
    /// A CSV file of per-device passwords: `device_id,password` per line, optionally a
    /// third column `keepalive_interval` in seconds. Read at start.
    pub devices_file: String,
    /// How often devices send keepalives, unless `devices_file` says otherwise (GB/T
    /// 28181's default is 60 s).
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// A device is offline after this many keepalive intervals without one (GB/T
    /// 28181's rule is 3).
    pub missed_keepalives: u32,
    /// The longest registration granted; a longer `Expires` is shortened to it.
    #[serde(with = "humantime_serde")]
    pub register_expires_max: Duration,
    /// How often each registered device's catalog is queried (also right after it
    /// registers).
    #[serde(with = "humantime_serde")]
    pub catalog_interval: Duration,
    /// Which view says whether a campus's video is networked, in coverage and alerts:
    /// `platform_where_present` (the GB/T 28181 view for campuses with devices in the
    /// registry's `gb_device_ids`, the agent's for the others), `agent` or `platform`.
    pub video_view: crate::monitor::VideoView,
    /// Alarm-input channels (type 134) of a campus's GB/T 28181 devices must be ON too
    /// for the campus to be alarm networked.
    pub alarm_channels: bool,
}

impl Default for Gb28181Config {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            platform_id: "34020000002000000001".into(),
            realm: String::new(),
            password: String::new(),
            devices_file: String::new(),
            keepalive_interval: Duration::from_secs(60),
            missed_keepalives: 3,
            register_expires_max: Duration::from_secs(3600),
            catalog_interval: Duration::from_secs(600),
            video_view: crate::monitor::VideoView::PlatformWherePresent,
            alarm_channels: false,
        }
    }
}

impl Gb28181Config {
    /// The rules the monitor applies to the GB/T 28181 view.
    pub fn rules(&self) -> crate::monitor::PlatformRules {
        crate::monitor::PlatformRules {
            video_view: self.video_view,
            alarm_channels: self.alarm_channels,
            missed_keepalives: self.missed_keepalives,
        }
    }

    /// The SIP domain in effect.
    pub fn realm(&self) -> String {
        if self.realm.is_empty() {
            self.platform_id.chars().take(10).collect()
        } else {
            self.realm.clone()
        }
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        crate::gb28181::GbCode::parse(&self.platform_id)
            .map_err(|e| ("gb28181.platform_id", e.to_string()))?;
        if self.missed_keepalives == 0 {
            return Err(("gb28181.missed_keepalives", "must be at least 1".into()));
        }
        for (key, d, min) in [
            ("gb28181.keepalive_interval", self.keepalive_interval, 1),
            (
                "gb28181.register_expires_max",
                self.register_expires_max,
                60,
            ),
            ("gb28181.catalog_interval", self.catalog_interval, 10),
        ] {
            if d < Duration::from_secs(min) || d > Duration::from_secs(7 * 24 * 3600) {
                return Err((key, format!("must be at least {min}s and at most 7d")));
            }
        }
        if self.enabled && self.password.is_empty() && self.devices_file.is_empty() {
            return Err((
                "gb28181.password",
                "set a password for devices (or gb28181.devices_file with one per device): without one, anyone who reaches the port could register as any device".into(),
            ));
        }
        if self.enabled && !self.devices_file.is_empty() {
            crate::gb28181::DeviceFile::load(Path::new(&self.devices_file))
                .map_err(|e| ("gb28181.devices_file", e))?;
        }
        Ok(())
    }
}

pub use crate::notify::settings::{ChannelConfig, ChannelKind, NotifyConfig, Secret, SmtpSecurity};

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
    /// No longer used: a campus's video alert follows the coverage rule
    /// (`coverage.video_fraction`). Accepted so that older files still load; the server
    /// warns at start when it is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_down_fraction: Option<f64>,
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
            video_down_fraction: None,
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
            incident_min_gateways: self.incident_min_gateways,
            group_wait: delta(self.group_wait),
            monitoring_grace: delta(self.monitoring_grace),
        }
    }
}

impl ServerConfig {
    /// The configured time zone (`time_zone`, checked by `validate`).
    pub fn zone(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// Defaults, then `file` (if any), then the environment; validated.
    pub fn load(file: Option<&Path>) -> Result<ServerConfig, ConfigError> {
        Self::load_from(file, None)
    }

    /// `load`, reading the environment from `env` instead of the process when given.
    fn load_from(file: Option<&Path>, env: Option<Env>) -> Result<ServerConfig, ConfigError> {
        LOADER.load(
            Some(&ServerConfig::default()),
            file,
            env,
            ServerConfig::validate,
        )
    }

    /// Checks what types cannot.
    pub fn validate(&self, source_name: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            source_name: source_name.to_string(),
            line: None,
            key: key.to_string(),
            message,
        };
        if self.auth.token_ttl.is_zero() || self.auth.token_ttl > self.auth.token_max_ttl {
            return Err(invalid(
                "auth.token_ttl",
                "must be longer than zero and not longer than auth.token_max_ttl".into(),
            ));
        }
        if self.http.max_connections == 0 {
            return Err(invalid("http.max_connections", "must be at least 1".into()));
        }
        for (key, t) in [
            ("http.header_timeout", self.http.header_timeout),
            ("http.body_timeout", self.http.body_timeout),
        ] {
            if t.is_zero() {
                return Err(invalid(key, "must be longer than zero".into()));
            }
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(
                "time_zone",
                format!(
                    "{:?} is not a time zone name such as Asia/Shanghai or Asia/Urumqi",
                    self.time_zone
                ),
            ));
        }
        if self.id.is_empty()
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid("id", "use letters, digits, '-' or '_'".into()));
        }
        if !self.mqtt.url.is_empty() {
            // URL, credentials and every TLS file, read and parsed as at connect time.
            self.mqtt
                .login()
                .validate()
                .map_err(|e| invalid(e.key, e.message))?;
        } else {
            // The embedded broker speaks plain MQTT on loopback-style listeners; TLS keys
            // would silently do nothing.
            for (key, value) in [
                ("mqtt.ca_file", &self.mqtt.ca_file),
                ("mqtt.client_cert_file", &self.mqtt.client_cert_file),
                ("mqtt.client_key_file", &self.mqtt.client_key_file),
            ] {
                if !value.is_empty() {
                    return Err(invalid(
                        key,
                        "is set but mqtt.url is empty (the server connects to its embedded broker in-process; the broker's own TLS is mqtt.embedded.tls_cert_file): set mqtt.url to the broker, or leave this empty".into(),
                    ));
                }
            }
            self.mqtt
                .embedded
                .validate()
                .map_err(|(key, message)| invalid(key, message))?;
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
        let l = &self.liveness;
        if !(1..=100_000).contains(&l.rebirth_rate) {
            return Err(invalid(
                "liveness.rebirth_rate",
                "must be 1 to 100000 (rebirth requests per second)".into(),
            ));
        }
        if l.rebirth_min_interval < Duration::from_secs(1)
            || l.rebirth_max_interval < l.rebirth_min_interval
            || l.rebirth_max_interval > Duration::from_secs(7 * 24 * 3600)
        {
            return Err(invalid(
                "liveness.rebirth_min_interval",
                "must be at least 1s and not longer than liveness.rebirth_max_interval (at most 7d)"
                    .into(),
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
        ] {
            if !(f > 0.0 && f <= 1.0) {
                return Err(invalid(key, format!("{f} is not in (0, 1]")));
            }
        }
        let url = &self.database.url;
        if !url.is_empty()
            && !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| url.starts_with(p))
        {
            return Err(invalid(
                "database.url",
                format!(
                    "{:?} is neither sqlite://PATH nor postgres://USER@HOST/DATABASE",
                    redact::url(url)
                ),
            ));
        }
        if self.history.raw_days != 0 && self.history.raw_days < MIN_RAW_DAYS {
            return Err(invalid(
                "history.raw_days",
                format!(
                    "{} is fewer than {MIN_RAW_DAYS} days (0 keeps the raw history for ever)",
                    self.history.raw_days
                ),
            ));
        }
        if self.history.audit_days != 0 && self.history.audit_days < MIN_AUDIT_DAYS {
            return Err(invalid(
                "history.audit_days",
                format!(
                    "{} is fewer than {MIN_AUDIT_DAYS} days (0 keeps the audit log for ever)",
                    self.history.audit_days
                ),
            ));
        }
        for peer in &self.cluster.peers {
            if !(peer.starts_with("http://") || peer.starts_with("https://")) {
                return Err(invalid(
                    "cluster.peers",
                    format!("{peer:?} is not an http:// or https:// URL"),
                ));
            }
        }
        if self.ha.enabled {
            if !url.starts_with("postgres") {
                return Err(invalid(
                    "ha.enabled",
                    "replicas take turns through PostgreSQL: set database.url = \"postgres://…\""
                        .into(),
                ));
            }
            if self.mqtt.url.is_empty() {
                return Err(invalid(
                    "ha.enabled",
                    "replicas must share a broker: set mqtt.url (the embedded broker is per process)".into(),
                ));
            }
            if self.ha.check_interval.is_zero() {
                return Err(invalid("ha.check_interval", "must be more than 0".into()));
            }
        }
        self.notify.validate(&invalid)?;
        self.gb28181
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
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

    /// This configuration with every secret replaced by `***`: passwords, the DingTalk
    /// secret, the cluster's token, credentials in the broker's, the database's and the
    /// peers' URLs, and the query values of channel and database URLs (robot keys, tokens,
    /// `?password=`).
    pub fn masked(&self) -> ServerConfig {
        let mut c = self.clone();
        for secret in [
            &mut c.mqtt.password,
            &mut c.cluster.token,
            &mut c.gb28181.password,
        ] {
            if !secret.is_empty() {
                *secret = "***".into();
            }
        }
        c.mqtt.url = redact::url(&c.mqtt.url);
        if !c.database.url.is_empty() {
            c.database.url = redact::url_and_query(&c.database.url);
        }
        for peer in &mut c.cluster.peers {
            *peer = redact::url_and_query(peer);
        }
        for ch in &mut c.notify.channels {
            if !ch.url.is_empty() {
                ch.url = redact::url_and_query(&ch.url);
            }
            for s in [&mut ch.secret, &mut ch.password] {
                if !s.is_empty() {
                    *s = Secret::new("***");
                }
            }
        }
        c
    }

    /// The configuration in effect as TOML, secrets masked (`print-config --config`).
    pub fn to_masked_toml(&self) -> String {
        toml::to_string(&self.masked())
            .unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }

    /// The documented default configuration as TOML.
    pub fn default_toml() -> String {
        include_str!("../../config/server.example.toml").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

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
    fn no_secret_reaches_the_printed_configuration() {
        let f = write(
            "[mqtt]\nurl = \"mqtts://srv:mqtt-url-secret@broker.example:8883\"\n\
             password = \"mqtt-password-secret\"\n\
             [database]\nurl = \"postgres://cw:db-url-secret@db.example/cw?password=db-query-secret\"\n\
             [cluster]\npeers = [\"http://viewer:peer-secret@cw-b:8080\"]\ntoken = \"cluster-token-secret\"\n\
             [[notify.channels]]\nname = \"ding\"\ntype = \"dingtalk\"\n\
             url = \"https://oapi.dingtalk.com/robot/send?access_token=robot-secret\"\n\
             secret = \"SECsigning-secret\"\n",
        );
        let cfg = ServerConfig::load(Some(f.path())).unwrap();
        let printed = cfg.to_masked_toml();
        for secret in [
            "mqtt-url-secret",
            "mqtt-password-secret",
            "db-url-secret",
            "db-query-secret",
            "peer-secret",
            "cluster-token-secret",
            "robot-secret",
            "signing-secret",
        ] {
            assert!(!printed.contains(secret), "{secret} in:\n{printed}");
        }
        // What is not secret stays, to check the configuration by.
        for kept in [
            "broker.example:8883",
            "db.example/cw",
            "cw-b:8080",
            "oapi.dingtalk.com",
        ] {
            assert!(printed.contains(kept), "{kept} missing in:\n{printed}");
        }
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
    fn broker_tls_files_are_checked_at_load_naming_the_key_and_the_file() {
        let f = write(
            "[mqtt]\nurl = \"mqtts://broker.example:8883\"\nca_file = \"/nonexistent/broker-ca.pem\"\n",
        );
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("mqtt.ca_file"), "{err}");
        assert!(err.contains("/nonexistent/broker-ca.pem"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");
        let f = write(
            "[mqtt]\nurl = \"mqtts://broker.example:8883\"\nclient_cert_file = \"/etc/cw/server.crt\"\n",
        );
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("mqtt.client_key_file"), "{err}");
        // The server reaches its embedded broker in-process: such keys would do nothing.
        let f = write("[mqtt]\nca_file = \"/etc/cw/ca.pem\"\n");
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(
            err.contains("mqtt.ca_file") && err.contains("embedded"),
            "{err}"
        );
        // The embedded broker's own files, and where it may listen without them.
        for (toml, key, says) in [
            ("tls_cert_file = \"/etc/cw/broker.crt\"", "mqtt.embedded.tls_key_file", "must be set together"),
            ("password_file = \"/nonexistent/passwd\"", "mqtt.embedded.password_file", "/nonexistent/passwd"),
            ("listen = \"0.0.0.0:1883\"", "mqtt.embedded.listen", "mqtt.embedded.password_file, mqtt.embedded.tls_cert_file and mqtt.embedded.tls_key_file"),
        ] {
            let f = write(&format!("[mqtt.embedded]\n{toml}\n"));
            let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(says), "{toml}: {err}");
        }
        let f = write("[mqtt.embedded]\nlisten = \"0.0.0.0:1883\"\ninsecure = true\n");
        ServerConfig::load(Some(f.path())).expect("insecure = true is the operator's choice");
    }

    #[test]
    fn the_gb28181_platform_needs_passwords_and_a_valid_code_and_masks_its_password() {
        let devices = write("15010200001180000001,hunter2\n3402,oops\n");
        for (toml, key, says) in [
            ("enabled = true", "gb28181.password", "without one"),
            ("platform_id = \"3402\"", "gb28181.platform_id", "20 digits"),
            (
                "missed_keepalives = 0",
                "gb28181.missed_keepalives",
                "at least 1",
            ),
            (
                "catalog_interval = \"1s\"",
                "gb28181.catalog_interval",
                "at least 10s",
            ),
            (
                &format!("enabled = true\ndevices_file = {:?}", devices.path()),
                "gb28181.devices_file",
                "line 2",
            ),
            ("video_view = \"both\"", "`both`", "platform_where_present"),
        ] {
            let f = write(&format!("[gb28181]\n{toml}\n"));
            let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(says), "{toml}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let f = write("[gb28181]\nenabled = true\npassword = \"hunter2\"\n");
        let cfg = ServerConfig::load(Some(f.path())).unwrap();
        assert_eq!(cfg.gb28181.realm(), "3402000000");
        assert!(!cfg.to_masked_toml().contains("hunter2"));
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
    fn the_time_zone_is_a_zone_name_and_asia_shanghai_by_default() {
        assert_eq!(ServerConfig::default().zone(), chrono_tz::Asia::Shanghai);
        let f = write("time_zone = \"Asia/Urumqi\"\n");
        let cfg = ServerConfig::load(Some(f.path())).unwrap();
        assert_eq!(cfg.zone(), chrono_tz::Asia::Urumqi);
        let f = write("time_zone = \"+08:00\"\n");
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(
            err.contains("time_zone") && err.contains("Asia/Shanghai"),
            "{err}"
        );
    }

    #[test]
    fn databases_are_sqlite_or_postgres_and_a_replica_pair_needs_postgres_and_a_broker() {
        let f = write("[database]\nurl = \"mysql://cw:secret@db/cw\"\n");
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(
            err.contains("database.url") && err.contains("postgres://") && !err.contains("secret"),
            "{err}"
        );
        let pg = "[database]\nurl = \"postgres://cw@db/cw\"\n";
        assert!(ServerConfig::load(Some(write(pg).path())).is_ok());
        let f = write("[ha]\nenabled = true\n[mqtt]\nurl = \"mqtt://broker:1883\"\n");
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(
            err.contains("ha.enabled") && err.contains("postgres"),
            "{err}"
        );
        let f = write(&format!("{pg}[ha]\nenabled = true\n"));
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(
            err.contains("ha.enabled") && err.contains("mqtt.url"),
            "{err}"
        );
        let f = write(&format!(
            "{pg}[ha]\nenabled = true\n[mqtt]\nurl = \"mqtt://broker:1883\"\n"
        ));
        let cfg = ServerConfig::load(Some(f.path())).unwrap();
        assert_eq!(cfg.ha.check_interval, Duration::from_secs(1));
    }

    #[test]
    fn channels_are_read_from_the_file_with_their_defaults() {
        let f = write(
            r#"
[notify]
console_url = "https://console.example"
[[notify.channels]]
name = "county"
type = "wecom"
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1"
regions = ["150102"]
[[notify.channels]]
name = "mail"
type = "smtp"
host = "smtp.example.org"
security = "tls"
username = "cw"
password = "hunter2"
from = "cw <cw@example.org>"
to = ["duty@example.org"]
min_severity = "critical"
rate_limit = 5
"#,
        );
        let cfg = ServerConfig::load(Some(f.path())).unwrap();
        let [wecom, mail] = &cfg.notify.channels[..] else {
            panic!("{:?}", cfg.notify.channels)
        };
        assert_eq!(wecom.kind, ChannelKind::Wecom);
        assert_eq!(wecom.min_severity, Severity::Warning);
        assert_eq!(wecom.rate_limit, 20);
        assert_eq!(wecom.region_codes()[0].as_str(), "150102");
        assert_eq!(mail.security, SmtpSecurity::Tls);
        assert_eq!(mail.password.expose(), "hunter2");
        assert_eq!(mail.min_severity, Severity::Critical);
        // Secrets never show in Debug output, which is what logs use.
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password: \"***\""), "{shown}");
    }

    #[test]
    fn the_effective_configuration_is_printed_without_secrets() {
        let f = write(
            r#"
[mqtt]
url = "mqtts://server:brokerpw@broker:8883"
password = "mqttpw"
[[notify.channels]]
name = "ding"
type = "dingtalk"
url = "https://oapi.dingtalk.com/robot/send?access_token=tok123"
secret = "SECsecret"
[[notify.channels]]
name = "mail"
type = "smtp"
host = "smtp.example.org"
username = "cw"
password = "mailpw"
from = "cw@example.org"
to = ["duty@example.org"]
"#,
        );
        let cfg = ServerConfig::load(Some(f.path())).unwrap();
        let shown = cfg.to_masked_toml();
        for secret in ["brokerpw", "mqttpw", "tok123", "SECsecret", "mailpw"] {
            assert!(!shown.contains(secret), "{secret} in\n{shown}");
        }
        assert!(shown.contains("access_token=***"), "{shown}");
        assert!(shown.contains("[[notify.channels]]"), "{shown}");
        // It is still a configuration file.
        let back = write(&shown);
        let again = ServerConfig::load(Some(back.path())).unwrap();
        assert_eq!(again.notify.channels.len(), 2);
        assert_eq!(again.notify.channels[1].password.expose(), "***");
    }

    #[test]
    fn bad_channels_are_refused_naming_the_channel_and_key() {
        for (toml, key) in [
            ("name = \"a b\"\ntype = \"webhook\"\nurl = \"http://h/\"", "notify.channels[0].name"),
            ("name = \"w\"\ntype = \"webhook\"\nurl = \"ftp://h/\"", "(w).url"),
            ("name = \"w\"\ntype = \"wecom\"\nurl = \"http://h/\"\nsecret = \"x\"", "(w).secret"),
            ("name = \"w\"\ntype = \"webhook\"\nurl = \"http://h/\"\nregions = [\"15\"]", "(w).regions"),
            ("name = \"w\"\ntype = \"webhook\"\nurl = \"http://h/\"\nrate_limit = 0", "(w).rate_limit"),
            ("name = \"m\"\ntype = \"smtp\"\nhost = \"h\"\nfrom = \"a@b\"", "(m).to"),
            ("name = \"m\"\ntype = \"smtp\"\nfrom = \"a@b\"\nto = [\"c@d\"]", "(m).host"),
            ("name = \"m\"\ntype = \"smtp\"\nhost = \"h\"\nfrom = \"a@b\"\nto = [\"c\"]", "(m).to"),
            ("name = \"m\"\ntype = \"smtp\"\nhost = \"h\"\nfrom = \"a@b\"\nto = [\"c@d\"]\nusername = \"u\"", "(m).password"),
        ] {
            let f = write(&format!("[[notify.channels]]\n{toml}\n"));
            let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
        let f = write("[[notify.channels]]\nname = \"x\"\ntype = \"pager\"\nurl = \"http://h\"\n");
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("pager"), "{err}");
        let f = write("[[notify.channels]]\nname = \"x\"\ntype = \"webhook\"\nurl = \"http://h\"\n[[notify.channels]]\nname = \"x\"\ntype = \"webhook\"\nurl = \"http://h\"\n");
        let err = ServerConfig::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("used by two channels"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        // The variables are handed in rather than set on the process, which would leak
        // into the other tests running in parallel.
        let f = write("[liveness]\nmissed_heartbeats = 5\n");
        let env = [
            ("CAMPUSWATCH__LIVENESS__MISSED_HEARTBEATS", "7"),
            ("CAMPUSWATCH__MQTT__REGIONS", "150100,150203"),
            (
                "CAMPUSWATCH__NOTIFY__CONSOLE_URL",
                "https://console.example",
            ),
            ("CAMPUSWATCH__NOTIFY__RETRY_MAX", "2m"),
            ("CAMPUSWATCH_TEST_MQTT_URL", "mqtt://ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cfg = ServerConfig::load_from(Some(f.path()), Some(env)).unwrap();
        assert_eq!(cfg.liveness.missed_heartbeats, 7);
        assert_eq!(cfg.mqtt.regions, ["150100", "150203"]);
        assert_eq!(cfg.notify.console_url, "https://console.example");
        assert_eq!(cfg.notify.retry_max, Duration::from_secs(120));
    }
}
