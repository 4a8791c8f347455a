//! The notification settings (`[notify]` and its `[[notify.channels]]`): owned here, next
//! to the channels that use them, and read by the configuration loader
//! ([`crate::config`]), which re-exports them.

use std::path::Path;
use std::time::Duration;

use campuswatch_protocol::RegionCode;
use serde::{Deserialize, Serialize};

use super::Severity;

/// Notifications to operators (docs/notifications.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Base URL of the web console; every notice links to this plus its page's path.
    pub console_url: String,
    /// Wait before the first retry of a failed delivery; doubled per attempt (with
    /// jitter) up to `retry_max`.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest wait between two attempts.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// A delivery still failing this long after its notice was made is given up and
    /// recorded as failed with its last error.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// Time limit of one attempt (connect, send, answer).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How often the outbox is looked at when nobody wakes the dispatcher.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often firing alerts are sent again to Alertmanager channels, which forget an
    /// alert that is not repeated (its `endsAt` is four times this).
    #[serde(with = "humantime_serde")]
    pub alertmanager_resend: Duration,
    /// Where notices go. File only: lists of tables cannot be set from the environment.
    pub channels: Vec<ChannelConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            console_url: "http://127.0.0.1:8080".into(),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            give_up_after: Duration::from_secs(6 * 3600),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(5),
            alertmanager_resend: Duration::from_secs(60),
            channels: Vec::new(),
        }
    }
}

/// The kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Webhook,
    Alertmanager,
    Wecom,
    Dingtalk,
    Smtp,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Alertmanager => "alertmanager",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Smtp => "smtp",
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain text (a relay on the same host or a trusted network only).
    None,
    /// Upgrade with STARTTLS; refuse a server that does not offer it. Port 587.
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS"). Port 465.
    Tls,
}

impl SmtpSecurity {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

/// A credential, shown as `***` (the one type both programs use for their secrets).
pub use campuswatch_service::Secret;

/// One place notices go: a `[[notify.channels]]` table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Names the channel in logs, metrics and the outbox: letters, digits, '-' or '_'.
    pub name: String,
    /// `webhook`, `alertmanager`, `wecom`, `dingtalk` or `smtp`.
    #[serde(rename = "type")]
    pub kind: ChannelKind,
    /// Where to POST (all but smtp). Alertmanager: its base URL (`/api/v2/alerts` is
    /// appended). WeCom and DingTalk: the robot's webhook URL with its key or token,
    /// which is a secret and masked wherever the URL is shown.
    #[serde(default)]
    pub url: String,
    /// DingTalk: the robot's signing secret (`SEC…`); empty = no signature.
    #[serde(default)]
    pub secret: Secret,
    /// SMTP server.
    #[serde(default)]
    pub host: String,
    /// SMTP port; default by `security`: 25, 587 (starttls) or 465 (tls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// SMTP: `none`, `starttls` (default) or `tls`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// SMTP login; empty = no authentication.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    /// SMTP sender address (`campuswatch <noc@example.org>`).
    #[serde(default)]
    pub from: String,
    /// SMTP recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// SMTP with `starttls` or `tls`: a PEM file of CA certificates to trust besides the
    /// system's (a mail server with a certificate of the authority's own CA).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    /// Region codes this channel covers (a city or province covers its counties);
    /// empty = all.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Least severity sent: `info`, `warning` (default) or `critical`.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Most messages per minute; more are folded into one summary.
    #[serde(default = "default_rate_limit")]
    pub rate_limit: u32,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}

fn default_rate_limit() -> u32 {
    20
}

impl ChannelConfig {
    /// A channel of `kind` posting to `url`, with every other key at its default.
    pub fn new(name: &str, kind: ChannelKind, url: &str) -> Self {
        Self {
            name: name.into(),
            kind,
            url: url.into(),
            secret: Secret::default(),
            host: String::new(),
            port: None,
            security: SmtpSecurity::default(),
            username: String::new(),
            password: Secret::default(),
            from: String::new(),
            to: Vec::new(),
            ca_file: String::new(),
            regions: Vec::new(),
            min_severity: default_min_severity(),
            rate_limit: default_rate_limit(),
        }
    }

    /// The parsed `regions` (checked by `validate`).
    pub fn region_codes(&self) -> Vec<RegionCode> {
        self.regions
            .iter()
            .filter_map(|r| RegionCode::parse(r).ok())
            .collect()
    }
}

impl NotifyConfig {
    /// Checks the settings; `invalid(key, why)` makes the loader's error.
    pub(crate) fn validate<E>(&self, invalid: &dyn Fn(&str, String) -> E) -> Result<(), E> {
        let console = url::Url::parse(&self.console_url).map_err(|e| {
            invalid(
                "notify.console_url",
                format!("{e}: expected http(s)://host[:port]"),
            )
        })?;
        if !matches!(console.scheme(), "http" | "https") {
            return Err(invalid(
                "notify.console_url",
                format!("scheme {:?}: use http:// or https://", console.scheme()),
            ));
        }
        for (key, d) in [
            ("notify.retry_initial", self.retry_initial),
            ("notify.retry_max", self.retry_max),
            ("notify.give_up_after", self.give_up_after),
            ("notify.timeout", self.timeout),
            ("notify.poll_interval", self.poll_interval),
            ("notify.alertmanager_resend", self.alertmanager_resend),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be longer than zero".into()));
            }
        }
        if self.retry_max < self.retry_initial {
            return Err(invalid(
                "notify.retry_max",
                "must not be shorter than notify.retry_initial".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.channels.iter().enumerate() {
            let key = |k: &str| format!("notify.channels[{i}].{k}");
            if c.name.is_empty()
                || !c
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(invalid(
                    &key("name"),
                    format!("{:?}: use letters, digits, '-' or '_'", c.name),
                ));
            }
            if !names.insert(c.name.as_str()) {
                return Err(invalid(
                    &key("name"),
                    format!("{:?} is used by two channels", c.name),
                ));
            }
            let key = |k: &str| format!("notify.channels[{i}] ({}).{k}", c.name);
            let smtp = c.kind == ChannelKind::Smtp;
            // Keys of another type are refused rather than ignored: they are a sign of
            // a mix-up, like a `secret` on a WeCom robot (which has none).
            let foreign = [
                ("url", !c.url.is_empty() && smtp),
                (
                    "secret",
                    !c.secret.is_empty() && c.kind != ChannelKind::Dingtalk,
                ),
                ("host", !c.host.is_empty() && !smtp),
                ("port", c.port.is_some() && !smtp),
                ("security", c.security != SmtpSecurity::default() && !smtp),
                ("username", !c.username.is_empty() && !smtp),
                ("password", !c.password.is_empty() && !smtp),
                ("from", !c.from.is_empty() && !smtp),
                ("to", !c.to.is_empty() && !smtp),
                ("ca_file", !c.ca_file.is_empty() && !smtp),
            ];
            if let Some((k, _)) = foreign.iter().find(|(_, bad)| *bad) {
                return Err(invalid(
                    &key(k),
                    format!("does not apply to type = {:?}", c.kind.as_str()),
                ));
            }
            if smtp {
                if c.host.is_empty() {
                    return Err(invalid(&key("host"), "an smtp channel needs a host".into()));
                }
                if c.port == Some(0) {
                    return Err(invalid(&key("port"), "must not be 0".into()));
                }
                if c.from.is_empty() {
                    return Err(invalid(
                        &key("from"),
                        "an smtp channel needs a sender".into(),
                    ));
                }
                if c.to.is_empty() {
                    return Err(invalid(&key("to"), "list at least one recipient".into()));
                }
                for a in std::iter::once(&c.from).chain(&c.to) {
                    if !a.contains('@') {
                        return Err(invalid(
                            &key(if a == &c.from { "from" } else { "to" }),
                            format!("{a:?} is not an e-mail address"),
                        ));
                    }
                }
                if c.username.is_empty() != c.password.is_empty() {
                    return Err(invalid(
                        &key("password"),
                        "give both username and password, or neither".into(),
                    ));
                }
                if !c.ca_file.is_empty() {
                    if c.security == SmtpSecurity::None {
                        return Err(invalid(
                            &key("ca_file"),
                            "applies only with security = \"starttls\" or \"tls\"".into(),
                        ));
                    }
                    if !Path::new(&c.ca_file).is_file() {
                        return Err(invalid(
                            &key("ca_file"),
                            format!("{:?} is not a readable file", c.ca_file),
                        ));
                    }
                }
            } else {
                let url = url::Url::parse(&c.url)
                    .map_err(|e| invalid(&key("url"), format!("{e}: expected http(s)://…")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(invalid(
                        &key("url"),
                        "expected an http:// or https:// URL with a host".into(),
                    ));
                }
            }
            for r in &c.regions {
                RegionCode::parse(r).map_err(|e| invalid(&key("regions"), e.to_string()))?;
            }
            if c.rate_limit == 0 {
                return Err(invalid(&key("rate_limit"), "must be at least 1".into()));
            }
        }
        Ok(())
    }
}
