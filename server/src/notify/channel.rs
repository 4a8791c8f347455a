//! A channel: where notices go (an HTTP receiver or an SMTP server), which of them it
//! wants (regions, least severity), and one attempt at sending one message. Retries,
//! rate limits and summaries are the dispatcher's; a channel only tries once and says
//! what went wrong in words an operator can act on.

use std::time::Duration;

use campuswatch_protocol::{RegionCode, Timestamp};
use campuswatch_service::redact;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use serde_json::Value;

use super::settings::{ChannelConfig, ChannelKind, Secret, SmtpSecurity};
use super::{format, Notice, Severity};

/// Why one attempt failed. The text never contains a secret (robot keys in URLs,
/// passwords): it is logged and stored with the delivery.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// A channel that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("channel {channel}: {message}")]
pub struct ChannelError {
    pub channel: String,
    pub message: String,
}

/// What one message to a channel carries.
pub struct Outgoing<'a> {
    /// What to say: a notice, or the summary of notices held back by the rate limit.
    pub notice: &'a Notice,
    /// Alertmanager only: the alerts to post, each as (notice, first notice of its
    /// problem, whose labels it takes). One for a notice; the folded ones for a summary.
    pub alerts: &'a [(Notice, Notice)],
    pub console_url: &'a str,
    /// The zone of the times the message gives (`time_zone`).
    pub zone: chrono_tz::Tz,
    pub now: Timestamp,
    /// Alertmanager only: when a firing alert lapses unless sent again.
    pub firing_until: Timestamp,
}

enum Target {
    Http {
        client: reqwest::Client,
        url: String,
        secret: Secret,
    },
    Smtp {
        mailer: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
        to: Vec<Mailbox>,
    },
}

pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub rate_limit: u32,
    regions: Vec<RegionCode>,
    min_severity: Severity,
    target: Target,
}

/// An error and its causes on one line (reqwest's own text is only "error sending
/// request"); `without_url` has been applied where a URL could carry a secret.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = c.source();
    }
    s
}

/// The start of an answer's body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    s = s.replace(['\n', '\r'], " ");
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

/// What WeCom and DingTalk robots answer (HTTP 200 either way).
#[derive(Deserialize)]
struct RobotAnswer {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl Channel {
    pub fn from_config(c: &ChannelConfig, timeout: Duration) -> Result<Channel, ChannelError> {
        let err = |message: String| ChannelError {
            channel: c.name.clone(),
            message,
        };
        let target = match c.kind {
            ChannelKind::Smtp => {
                let parse = |a: &str, key: &str| {
                    a.parse::<Mailbox>()
                        .map_err(|e| err(format!("{key} {a:?} is not an address: {e}")))
                };
                let from = parse(&c.from, "from")?;
                let to =
                    c.to.iter()
                        .map(|a| parse(a, "to"))
                        .collect::<Result<Vec<_>, _>>()?;
                let builder = match c.security {
                    SmtpSecurity::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.as_str())
                    }
                    SmtpSecurity::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)
                            .map_err(|e| err(format!("host {:?}: {}", c.host, chain(&e))))?
                    }
                    SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host)
                        .map_err(|e| err(format!("host {:?}: {}", c.host, chain(&e))))?,
                };
                let mut builder = builder
                    .port(c.port.unwrap_or(c.security.default_port()))
                    .timeout(Some(timeout));
                if !c.ca_file.is_empty() && c.security != SmtpSecurity::None {
                    let pem = std::fs::read(&c.ca_file)
                        .map_err(|e| err(format!("ca_file {:?}: {e}", c.ca_file)))?;
                    let ca = Certificate::from_pem(&pem)
                        .map_err(|e| err(format!("ca_file {:?}: {}", c.ca_file, chain(&e))))?;
                    let params = TlsParameters::builder(c.host.clone())
                        .add_root_certificate(ca)
                        .build_rustls()
                        .map_err(|e| err(format!("TLS: {}", chain(&e))))?;
                    builder = builder.tls(if c.security == SmtpSecurity::Tls {
                        Tls::Wrapper(params)
                    } else {
                        Tls::Required(params)
                    });
                }
                if !c.username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        c.username.clone(),
                        c.password.expose().to_string(),
                    ));
                }
                Target::Smtp {
                    mailer: Box::new(builder.build()),
                    from,
                    to,
                }
            }
            _ => {
                let client = reqwest::Client::builder()
                    .timeout(timeout)
                    .user_agent(concat!("campuswatch/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| err(format!("HTTP client: {}", chain(&e))))?;
                let url = if c.kind == ChannelKind::Alertmanager {
                    format!("{}/api/v2/alerts", c.url.trim_end_matches('/'))
                } else {
                    c.url.clone()
                };
                Target::Http {
                    client,
                    url,
                    secret: c.secret.clone(),
                }
            }
        };
        Ok(Channel {
            name: c.name.clone(),
            kind: c.kind,
            rate_limit: c.rate_limit,
            regions: c.region_codes(),
            min_severity: c.min_severity,
            target,
        })
    }

    /// Whether a new notice goes to this channel: severe enough, and about one of its
    /// regions. A notice about a region covers the channels of that region and of the
    /// regions above it; an incident also reaches the channels of its campuses' regions
    /// (a city-wide incident tells each affected county). Notices without a region
    /// (monitoring) go to every channel.
    pub fn wants(&self, n: &Notice) -> bool {
        if n.severity < self.min_severity {
            return false;
        }
        let Some(region) = n.region.or(n.campus.as_ref().map(|c| c.region)) else {
            return true;
        };
        self.regions.is_empty()
            || self
                .regions
                .iter()
                .any(|r| region.is_within(r) || n.campuses.iter().any(|c| c.region.is_within(r)))
    }

    /// Where messages go, safe to log.
    pub fn target(&self) -> String {
        match &self.target {
            Target::Http { url, .. } => redact::url_and_query(url),
            Target::Smtp { to, .. } => format!(
                "mail to {}",
                to.iter()
                    .map(|m| m.email.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// One attempt at sending one message.
    pub async fn send(&self, out: &Outgoing<'_>) -> Result<(), SendError> {
        let n = out.notice;
        let link = format::link(out.console_url, &n.path);
        match (&self.target, self.kind) {
            (Target::Smtp { mailer, from, to }, _) => {
                let mut b = lettre::Message::builder()
                    .from(from.clone())
                    .subject(n.title.clone())
                    // One Message-ID per notice: a message sent twice (see the delivery
                    // guarantees) is recognisably the same one.
                    .message_id(Some(format!("<{}@campuswatch>", n.id)))
                    .header(ContentType::TEXT_PLAIN);
                for m in to {
                    b = b.to(m.clone());
                }
                let msg = b
                    .body(format::email_text(n, &link, out.zone))
                    .map_err(|e| SendError(format!("cannot build the e-mail: {e}")))?;
                mailer
                    .send(msg)
                    .await
                    .map_err(|e| SendError(format!("SMTP: {}", chain(&e))))?;
                Ok(())
            }
            (
                Target::Http {
                    client,
                    url,
                    secret,
                },
                kind,
            ) => {
                let (body, url) = match kind {
                    ChannelKind::Webhook => (format::webhook_body(n, &link), url.clone()),
                    ChannelKind::Alertmanager => {
                        if out.alerts.is_empty() {
                            return Ok(());
                        }
                        let alerts: Vec<Value> = out
                            .alerts
                            .iter()
                            .map(|(a, first)| {
                                let l = format::link(out.console_url, &a.path);
                                format::alertmanager_alert(a, first, &l, out.firing_until)
                            })
                            .collect();
                        (Value::Array(alerts), url.clone())
                    }
                    ChannelKind::Wecom => (format::wecom_body(n, &link, out.zone), url.clone()),
                    ChannelKind::Dingtalk => {
                        let mut u = url::Url::parse(url)
                            .map_err(|e| SendError(format!("bad robot URL: {e}")))?;
                        if !secret.is_empty() {
                            let stamp = out.now.timestamp_millis();
                            u.query_pairs_mut()
                                .append_pair("timestamp", &stamp.to_string())
                                .append_pair(
                                    "sign",
                                    &format::dingtalk_sign(secret.expose(), stamp),
                                );
                        }
                        (format::dingtalk_body(n, &link, out.zone), u.to_string())
                    }
                    ChannelKind::Smtp => {
                        return Err(SendError("an smtp channel without a mailer".into()))
                    }
                };
                let payload = serde_json::to_vec(&body)
                    .map_err(|e| SendError(format!("cannot encode the message: {e}")))?;
                let mut req = client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(payload);
                if kind == ChannelKind::Webhook {
                    req = req.header("Idempotency-Key", n.id.as_str());
                }
                let resp = req
                    .send()
                    .await
                    .map_err(|e| SendError(chain(&e.without_url())))?;
                let status = resp.status();
                let answer = resp.bytes().await.map_err(|e| {
                    SendError(format!("reading the answer: {}", chain(&e.without_url())))
                })?;
                if !status.is_success() {
                    return Err(SendError(format!("HTTP {status}: {}", snippet(&answer))));
                }
                if matches!(kind, ChannelKind::Wecom | ChannelKind::Dingtalk) {
                    let a: RobotAnswer = serde_json::from_slice(&answer).map_err(|e| {
                        SendError(format!(
                            "the robot's answer is not its JSON ({e}): {}",
                            snippet(&answer)
                        ))
                    })?;
                    if a.errcode != 0 {
                        return Err(SendError(format!(
                            "the robot refused the message: errcode {}: {}",
                            a.errcode, a.errmsg
                        )));
                    }
                }
                Ok(())
            }
        }
    }
}
