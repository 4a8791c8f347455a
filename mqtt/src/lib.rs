//! How the agent and the server reach the broker: the `[mqtt]` keys they share (URL,
//! user name and password, CA bundle, client certificate), turned into rumqttc options
//! with TLS over rustls (ring provider, server certificate and host name verified), and
//! connection failures told in an installer's words ([`BrokerLogin::diagnose`]).
//!
//! Agent and server never depend on each other; both depend on this crate so that a
//! gateway and the server check certificates, read key files and explain a refusal the
//! same way. Everything that can be checked before connecting is checked by
//! [`BrokerLogin::validate`], which both configurations call at load time, so a missing
//! or unreadable file stops the program at start with the key and the file named.

mod diagnose;
mod tls;
mod tunnel;

use std::fmt;

use rumqttc::{MqttOptions, Transport};

pub use diagnose::Diagnosis;
pub use tls::{certificates, private_key};

/// The standard ports of MQTT over TCP and over TLS.
pub const PLAIN_PORT: u16 = 1883;
pub const TLS_PORT: u16 = 8883;

/// A configuration value that cannot work, with the key it came from (`mqtt.ca_file`)
/// and what is wrong, in words that say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SetupError {
    pub key: &'static str,
    pub message: String,
}

impl SetupError {
    fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

/// How to reach and log in to the broker: the `[mqtt]` keys agent and server share.
/// Empty strings are unset keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BrokerLogin {
    /// `mqtt://host:1883` or `mqtts://host:8883`, optionally with `user:password@`.
    pub url: String,
    /// User name; wins over the URL's.
    pub username: String,
    /// Password; wins over the URL's.
    pub password: String,
    /// PEM file of CA certificates trusted besides the system's roots.
    pub ca_file: String,
    /// PEM file of this client's certificate (and any intermediates after it).
    pub client_cert_file: String,
    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub client_key_file: String,
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS with the broker's certificate verified.
    pub tls: bool,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Decodes the percent-encoding of a URL's user name or password.
fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl BrokerLogin {
    /// The URL with any password replaced by `***`, for logs and errors.
    pub fn redacted_url(&self) -> String {
        campuswatch_service::redact::url(&self.url)
    }

    /// Host, port and whether TLS is used, from `url`.
    pub fn endpoint(&self) -> Result<Endpoint, SetupError> {
        let bad = |why: String| SetupError::new("mqtt.url", why);
        let url = url::Url::parse(&self.url).map_err(|e| {
            bad(format!(
                "{:?} is not a URL ({e}); write mqtt://host:1883 or mqtts://host:8883",
                self.redacted_url()
            ))
        })?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => {
                return Err(bad(format!(
                    "scheme {other:?}: use mqtt:// (plain) or mqtts:// (TLS)"
                )))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("the URL names no host".into()))?;
        // IPv6 literals come bracketed from the URL; sockets and TLS want them bare.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url
            .port()
            .unwrap_or(if tls { TLS_PORT } else { PLAIN_PORT });
        Ok(Endpoint { host, port, tls })
    }

    /// The user name and password to send: the keys win over the URL's user info; a
    /// `password` key alone goes with the URL's user name. `None`: no credentials.
    pub fn credentials(&self) -> Option<(String, String)> {
        let url = url::Url::parse(&self.url).ok();
        let (user, pass) = if !self.username.is_empty() {
            (self.username.clone(), self.password.clone())
        } else {
            let user = url
                .as_ref()
                .map(|u| percent_decode(u.username()))
                .unwrap_or_default();
            let pass = if self.password.is_empty() {
                url.as_ref()
                    .and_then(|u| u.password().map(percent_decode))
                    .unwrap_or_default()
            } else {
                self.password.clone()
            };
            (user, pass)
        };
        (!user.is_empty()).then_some((user, pass))
    }

    /// Whether a client certificate is configured.
    pub fn has_client_cert(&self) -> bool {
        !self.client_cert_file.is_empty()
    }

    /// Checks everything that can be checked without connecting: the URL, credentials
    /// that go together, and every file (read and parsed as it will be at connect time).
    pub fn validate(&self) -> Result<(), SetupError> {
        self.checked().map(drop)
    }

    /// rumqttc options for `client_id`: address, credentials and, for `mqtts://`, TLS.
    /// The caller adds what is its own (keepalive, Last Will, session, in-flight window).
    ///
    /// With TLS, rumqttc is pointed at this process's private socket for the login, from
    /// which the connection is carried to the broker over TLS ([`tunnel`]).
    pub fn options(&self, client_id: impl Into<String>) -> Result<MqttOptions, SetupError> {
        let (endpoint, tls) = self.checked()?;
        let mut o = match tls {
            None => MqttOptions::new(client_id, endpoint.host, endpoint.port),
            Some(config) => {
                let socket = tunnel::socket(self, endpoint, config).map_err(|e| {
                    SetupError::new(
                        "mqtt.url",
                        format!("cannot prepare the TLS connection to the broker: {e}"),
                    )
                })?;
                let mut o = MqttOptions::new(client_id, socket.to_string_lossy(), 0);
                o.set_transport(Transport::Unix);
                o
            }
        };
        if let Some((user, pass)) = self.credentials() {
            o.set_credentials(user, pass);
        }
        Ok(o)
    }

    /// The endpoint and, for TLS, the client configuration; or why they cannot be made.
    fn checked(&self) -> Result<(Endpoint, Option<rustls::ClientConfig>), SetupError> {
        let endpoint = self.endpoint()?;
        if self.credentials().is_none() && !self.password.is_empty() {
            return Err(SetupError::new(
                "mqtt.username",
                "mqtt.password is set but no user name is: set mqtt.username too",
            ));
        }
        if !endpoint.tls {
            for (key, value) in [
                ("mqtt.ca_file", &self.ca_file),
                ("mqtt.client_cert_file", &self.client_cert_file),
                ("mqtt.client_key_file", &self.client_key_file),
            ] {
                if !value.is_empty() {
                    return Err(SetupError::new(
                        key,
                        format!(
                            "is set, but mqtt.url {:?} does not use TLS: write mqtts://host:8883, or leave {key} empty",
                            self.redacted_url()
                        ),
                    ));
                }
            }
            return Ok((endpoint, None));
        }
        tls::server_name(&endpoint.host)?;
        let config = tls::client_config(self)?;
        Ok((endpoint, Some(config)))
    }

    /// A short description of how this login authenticates, for the field check
    /// (`TLS, user 150102-K-0001`, `TLS, client certificate`, `no TLS, anonymous`).
    pub fn describe(&self) -> String {
        let tls = match self.endpoint() {
            Ok(e) if e.tls => "TLS",
            _ => "no TLS",
        };
        let mut how = vec![tls.to_string()];
        if let Some((user, _)) = self.credentials() {
            how.push(format!("user {user}"));
        }
        if self.has_client_cert() {
            how.push("client certificate".into());
        }
        if how.len() == 1 {
            how.push("anonymous".into());
        }
        how.join(", ")
    }
}

#[cfg(test)]
mod tests;
