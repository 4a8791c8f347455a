//! Why a connection to the broker failed, in an installer's words: which certificate was
//! refused and why, whether the broker refused the user name and password or the client
//! certificate, or whether nothing answers at all — and which key to look at.
//!
//! TLS failures are I/O errors wrapping a `rustls::Error`, at the handshake (the broker's
//! certificate) or at the first read after it (with TLS 1.3 the broker judges the client
//! certificate after the client finished the handshake, so its refusal arrives as an
//! alert while the client waits for the CONNACK). The TLS carrier ([`crate::tunnel`])
//! keeps the last one of a login; otherwise the error's whole chain is searched, through
//! the `io::Error`s' inner errors.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use rumqttc::{ConnectReturnCode, ConnectionError, StateError};
use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError};

use crate::BrokerLogin;

/// A failed connection explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    /// What went wrong and what to do, naming the configuration key to look at.
    pub reason: String,
    /// Someone must change something (a key, the credentials, a certificate, the clock)
    /// before a retry can succeed; `false` for outages that may pass by themselves.
    pub needs_action: bool,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

fn action(reason: String) -> Diagnosis {
    Diagnosis {
        reason,
        needs_action: true,
    }
}

fn outage(reason: String) -> Diagnosis {
    Diagnosis {
        reason,
        needs_action: false,
    }
}

/// The first error of `kind` in the chain of `e`, looking inside `io::Error`s too.
fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        // io::Error::source() skips the error it wraps (its Display shows it), so look
        // at the wrapped one explicitly.
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(found) = find::<T>(inner) {
                return Some(found);
            }
        }
        current = err.source();
    }
    None
}

fn utc(t: UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{} s after 1970", t.as_secs()))
}

/// The host names and addresses of a certificate, from webpki's `DnsName("…")` and
/// `IpAddress(…)` renderings.
fn names(presented: &[String]) -> Vec<String> {
    presented
        .iter()
        .filter_map(|p| {
            if let Some(dns) = p.strip_prefix("DnsName(\"") {
                Some(dns.trim_end_matches("\")").to_string())
            } else if let Some(ip) = p.strip_prefix("IpAddress(") {
                Some(ip.trim_end_matches(')').to_string())
            } else if p == "DirectoryName" {
                None
            } else {
                Some(p.clone())
            }
        })
        .collect()
}

fn alert_words(a: AlertDescription) -> String {
    match a {
        AlertDescription::UnknownCA => "it was not issued by a CA the broker trusts".into(),
        AlertDescription::CertificateExpired => "it has expired or is not valid yet".into(),
        AlertDescription::CertificateRevoked => "it was revoked".into(),
        AlertDescription::BadCertificate => "the broker calls it a bad certificate".into(),
        AlertDescription::UnsupportedCertificate => "the broker does not support its type".into(),
        AlertDescription::AccessDenied => "access denied".into(),
        other => format!("TLS alert {other:?}"),
    }
}

impl BrokerLogin {
    /// Explains why connecting to the broker failed. Meant for failures before the
    /// CONNACK; a connection lost later is better told as such, with the error itself.
    pub fn diagnose(&self, e: &ConnectionError) -> Diagnosis {
        // With TLS rumqttc only sees its socket close; how the connection to the broker
        // failed is known to the carrier. A refusal by the broker in MQTT is rumqttc's.
        let carried;
        let e = match crate::tunnel::failure(self) {
            Some(f) if !matches!(e, ConnectionError::ConnectionRefused(_)) => {
                carried = ConnectionError::Io(f.to_io());
                &carried
            }
            _ => e,
        };
        let at = self
            .endpoint()
            .map(|e| e.to_string())
            .unwrap_or_else(|_| self.redacted_url());
        if let ConnectionError::ConnectionRefused(code) = e {
            return self.refused(*code);
        }
        if matches!(e, ConnectionError::NetworkTimeout) {
            return outage(format!(
                "no answer from {at} in time: check mqtt.url, the network and firewalls between here and the broker"
            ));
        }
        if let Some(tls) = find::<rustls::Error>(e) {
            return self.tls(tls, &at);
        }
        if let Some(io) = find::<io::Error>(e) {
            return self.io(io, &at);
        }
        if let Some(StateError::ConnectionAborted) = find::<StateError>(e) {
            return self.closed(&at);
        }
        outage(format!("connecting to {at} failed: {e}"))
    }

    fn refused(&self, code: ConnectReturnCode) -> Diagnosis {
        let credentials = self.credentials().is_some();
        match code {
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
                if credentials =>
            {
                action(
                    "the broker refused the user name or password: check mqtt.username and mqtt.password (or the user info in mqtt.url) against the broker's password file"
                        .into(),
                )
            }
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
                if self.has_client_cert() =>
            {
                action(
                    "the broker accepted the client certificate but refused the client (not authorised): it must take the certificate's name as the user name (Mosquitto: use_identity_as_username true on this listener) and allow it"
                        .into(),
                )
            }
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => action(
                "the broker refused a connection without credentials: set mqtt.username and mqtt.password, or a client certificate (mqtt.client_cert_file, mqtt.client_key_file)"
                    .into(),
            ),
            ConnectReturnCode::BadClientId => action(
                "the broker refused the client id (cw-{campus} for a gateway, cw-server-{id} for a server): its configuration must allow it".into(),
            ),
            ConnectReturnCode::RefusedProtocolVersion => action(
                "the broker does not accept MQTT 3.1.1: use a broker that does (Mosquitto, EMQX, VerneMQ)".into(),
            ),
            ConnectReturnCode::ServiceUnavailable => {
                outage("the broker answered that it is unavailable; trying again later".into())
            }
            ConnectReturnCode::Success => outage("the broker accepted the connection".into()),
        }
    }

    fn tls(&self, e: &rustls::Error, at: &str) -> Diagnosis {
        let ca = if self.ca_file.is_empty() {
            "mqtt.ca_file (unset: only this system's CA certificates are trusted)".to_string()
        } else {
            format!("mqtt.ca_file ({:?})", self.ca_file)
        };
        let now = utc(UnixTime::now());
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => action(format!(
                    "the broker's certificate is not trusted (unknown issuer): check {ca}, it must hold the CA that signed the certificate of {at}"
                )),
                CertificateError::ExpiredContext { time, not_after } => action(format!(
                    "the broker's certificate expired on {} (this machine's clock reads {}): the broker's operator must renew it, or the clock is wrong",
                    utc(*not_after),
                    utc(*time)
                )),
                CertificateError::Expired => action(format!(
                    "the broker's certificate has expired (this machine's clock reads {now}): the broker's operator must renew it, or the clock is wrong"
                )),
                CertificateError::NotValidYetContext { time, not_before } => action(format!(
                    "the broker's certificate is not valid before {} and this machine's clock reads {}: set the clock right (NTP)",
                    utc(*not_before),
                    utc(*time)
                )),
                CertificateError::NotValidYet => action(format!(
                    "the broker's certificate is not valid yet (this machine's clock reads {now}): set the clock right (NTP)"
                )),
                CertificateError::NotValidForNameContext { presented, .. } => {
                    let names = names(presented);
                    action(if names.is_empty() {
                        format!("the broker's certificate is not valid for the host in mqtt.url ({at}) and names no host at all: the broker's operator must issue one with subject alternative names")
                    } else {
                        format!(
                            "the broker's certificate is not valid for the host in mqtt.url ({at}); it names {}: use one of those in mqtt.url",
                            names.join(", ")
                        )
                    })
                }
                CertificateError::NotValidForName => action(format!(
                    "the broker's certificate is not valid for the host in mqtt.url ({at}): use a name the certificate lists"
                )),
                CertificateError::Revoked => {
                    action("the broker's certificate has been revoked: the broker's operator must replace it".into())
                }
                other => action(format!(
                    "the broker's certificate was refused ({other:?}): check {ca}"
                )),
            },
            rustls::Error::AlertReceived(alert) => self.alert(*alert, at),
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                action(format!(
                    "{at} does not answer TLS: if it is a plain MQTT port, write mqtt:// in mqtt.url, else use the broker's TLS port (usually 8883)"
                ))
            }
            other => action(format!("TLS with the broker at {at} failed: {other}")),
        }
    }

    fn alert(&self, alert: AlertDescription, at: &str) -> Diagnosis {
        let about_certificate = matches!(
            alert,
            AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::AccessDenied
                | AlertDescription::CertificateRequired
        );
        if self.has_client_cert() && about_certificate {
            return action(format!(
                "the broker refused the client certificate ({}): check mqtt.client_cert_file ({:?}); it must be issued by the CA the broker trusts for clients, be within its validity period and name this client",
                alert_words(alert),
                self.client_cert_file
            ));
        }
        if matches!(
            alert,
            AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure
        ) && !self.has_client_cert()
        {
            return action(format!(
                "the broker at {at} requires a client certificate: set mqtt.client_cert_file and mqtt.client_key_file"
            ));
        }
        action(format!(
            "the broker at {at} ended the TLS handshake ({alert:?}); its log says why"
        ))
    }

    fn closed(&self, at: &str) -> Diagnosis {
        let hint = match self.endpoint() {
            Ok(e) if !e.tls => {
                "if that port expects TLS, write mqtts:// in mqtt.url; otherwise the broker's log says why"
            }
            _ if self.has_client_cert() => {
                "the broker may have refused the client certificate (check mqtt.client_cert_file); its log says why"
            }
            _ => "the broker's log says why",
        };
        action(format!(
            "the broker at {at} closed the connection before accepting it: {hint}"
        ))
    }

    fn io(&self, e: &io::Error, at: &str) -> Diagnosis {
        let text = e.to_string();
        match e.kind() {
            io::ErrorKind::ConnectionRefused => outage(format!(
                "nothing accepts connections at {at} (connection refused): check mqtt.url and that the broker is running"
            )),
            io::ErrorKind::TimedOut => outage(format!(
                "no answer from {at} in time: check mqtt.url, the network and firewalls"
            )),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => outage(format!(
                "no route to {at} ({text}): check the gateway's network"
            )),
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => self.closed(at),
            _ if text.contains("lookup") || text.contains("resolve") => outage(format!(
                "cannot resolve the broker's host name ({at}: {text}): check mqtt.url and the gateway's DNS"
            )),
            _ => outage(format!("connecting to {at} failed: {text}")),
        }
    }
}
