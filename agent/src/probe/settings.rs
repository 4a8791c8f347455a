//! The `probe` table of a `[[devices]]` entry: which kind of probe checks the device,
//! and that kind's keys. The configuration loader ([`crate::config`]) re-exports
//! [`ProbeConfig`] and [`Transport`] and calls [`ProbeConfig::validate`] for each device;
//! each kind's checks live in that kind's module, next to the probe that uses the keys.

use std::time::Duration;

use campuswatch_service::redact;
use campuswatch_service::{Invalid, Secret};
use serde::{Deserialize, Serialize};

use super::{dc09, dc09_listen, http, icmp, rtsp, tcp};
use crate::supervision::Category;

/// How a device is probed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProbeConfig {
    /// A TCP connect to `target` (`host:port`).
    Tcp {
        /// `host:port`, for example `192.168.10.20:5000`.
        target: String,
    },
    /// An HTTP(S) GET of `url`.
    Http {
        /// `http://` or `https://` URL.
        url: String,
        /// Acceptable status codes; empty = any 200 to 399.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        expect_status: Vec<u16>,
        /// Text the response body must contain; unset = not checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body_contains: Option<String>,
        /// Accept any TLS certificate (cameras with self-signed certificates).
        #[serde(default)]
        insecure_tls: bool,
    },
    /// A SIA DC-09 link test towards the alarm receiving centre at `target`: a `NULL`
    /// supervision frame must be acknowledged (`ACK`). Set the device's `interval` to the
    /// supervision category agreed with the centre.
    Dc09 {
        /// The receiver's `host:port`.
        target: String,
        /// `tcp` (default) or `udp`.
        #[serde(default = "Transport::tcp")]
        transport: Transport,
        /// The account the centre knows this campus by (panels' ids need not be hex).
        account: String,
        /// Account prefix, 1 to 6 hex digits.
        #[serde(default = "default_dc09_prefix")]
        prefix: String,
        /// Receiver number, 1 to 6 hex digits; unset = not sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receiver: Option<String>,
        /// AES key agreed with the centre, as 32, 48 or 64 hex digits (AES-128/192/256);
        /// set = frames are sent encrypted (`*NULL`) and only an encrypted `ACK` counts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Secret>,
        /// The supervision category agreed with the centre (`SP1`–`SP6`, `DP1`–`DP4`):
        /// unless the device sets `interval`, the link test runs often enough to report a
        /// failed path within the category's reporting time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        supervision: Option<Category>,
    },
    /// Listens for the DC-09 supervision frames of a panel that polls the gateway: up
    /// while a valid frame from `account` arrived within `window`. Every panel on the same
    /// `listen` address shares one listener, which answers each frame with `ACK`.
    Dc09Listen {
        /// Where panels send their frames, `host:port` (e.g. `0.0.0.0:12128`).
        listen: String,
        /// `tcp` (default) or `udp`.
        #[serde(default = "Transport::tcp")]
        transport: Transport,
        /// The panel's account id.
        account: String,
        /// The supervision window: longest silence before the panel counts as down.
        /// Default: the reporting time of `supervision`; one of the two is required.
        #[serde(
            default,
            with = "humantime_serde",
            skip_serializing_if = "Option::is_none"
        )]
        window: Option<Duration>,
        /// The panel's AES key, as 32, 48 or 64 hex digits; set = only its encrypted
        /// frames count as polls, and they are answered with an encrypted `ACK`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Secret>,
        /// The panel's supervision category (`SP1`–`SP6`, `DP1`–`DP4`); its reporting
        /// time is the default `window`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        supervision: Option<Category>,
    },
    /// ONVIF device service of a camera: its clock and identity must answer.
    Onvif {
        /// The device service URL, e.g. `http://10.0.0.4/onvif/device_service`.
        url: String,
        /// ONVIF user (sent as a WS-Security password digest, never in clear).
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        /// Largest tolerated difference between the camera's clock and the gateway's;
        /// beyond it the camera is degraded.
        #[serde(default = "default_max_clock_drift", with = "humantime_serde")]
        max_clock_drift: Duration,
    },
    /// ICMP echo to `host`, for devices with no better check.
    Icmp {
        /// An IP address or host name.
        host: String,
    },
    /// A camera's JPEG snapshot URL: up when it answers 200 with a JPEG of non-zero size.
    Snapshot {
        /// `http://` or `https://` URL (credentials may be in it).
        url: String,
        /// Accept any TLS certificate (cameras with self-signed certificates).
        #[serde(default)]
        insecure_tls: bool,
    },
    /// SIP OPTIONS to an alarm intercom or help point at `target`: any final response
    /// (even 4xx/5xx) means its SIP stack is reachable.
    Sip {
        /// The device's `host:port` (port 5060 usually).
        target: String,
        /// `udp` (default) or `tcp`.
        #[serde(default = "Transport::udp")]
        transport: Transport,
    },
    /// A camera's RTSP stream: `DESCRIBE` on every probe, and every `stream_interval` a
    /// stream check that plays the stream for `stream_window` and counts frames.
    Rtsp {
        /// `rtsp://host:554/path`; credentials may be in it or given below.
        url: String,
        /// RTSP user (Basic or Digest authentication, as the camera asks); empty = take it
        /// from the URL, or none.
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        /// How RTP travels during stream checks: `tcp` (default, interleaved on the RTSP
        /// connection, passes NAT and firewalls) or `udp`.
        #[serde(default = "Transport::tcp")]
        transport: Transport,
        /// Whether to check the stream itself; false = `DESCRIBE` only.
        #[serde(default = "default_true")]
        stream_check: bool,
        /// Time between stream checks while the stream is good. Default `5m`.
        #[serde(default = "default_stream_interval", with = "humantime_serde")]
        stream_interval: Duration,
        /// How long a stream check counts frames. Default `4s`.
        #[serde(default = "default_stream_window", with = "humantime_serde")]
        stream_window: Duration,
        /// Below this frame rate (frames per second) the camera is degraded; unset = any
        /// rate with keyframes is fine.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_frame_rate: Option<f64>,
    },
}

/// How a probe's messages travel (DC-09 frames, SIP requests).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    fn tcp() -> Self {
        Transport::Tcp
    }

    fn udp() -> Self {
        Transport::Udp
    }
}

fn default_true() -> bool {
    true
}

fn default_stream_interval() -> Duration {
    Duration::from_secs(300)
}

fn default_stream_window() -> Duration {
    Duration::from_secs(4)
}

fn default_max_clock_drift() -> Duration {
    Duration::from_secs(60)
}

fn default_dc09_prefix() -> String {
    "0".into()
}

impl ProbeConfig {
    /// The probe's name as reported in the birth (`tcp`, `http`).
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeConfig::Tcp { .. } => "tcp",
            ProbeConfig::Http { .. } => "http",
            ProbeConfig::Dc09 { .. } => "dc09",
            ProbeConfig::Sip { .. } => "sip",
            ProbeConfig::Snapshot { .. } => "snapshot",
            ProbeConfig::Dc09Listen { .. } => "dc09_listen",
            ProbeConfig::Icmp { .. } => "icmp",
            ProbeConfig::Onvif { .. } => "onvif",
            ProbeConfig::Rtsp { .. } => "rtsp",
        }
    }

    /// Clears passwords and masks them in URLs.
    pub(crate) fn forget_secrets(&mut self) {
        match self {
            ProbeConfig::Onvif { url, password, .. } | ProbeConfig::Rtsp { url, password, .. } => {
                password.clear();
                *url = redact::url(url);
            }
            ProbeConfig::Http { url, .. } | ProbeConfig::Snapshot { url, .. } => {
                *url = redact::url(url);
            }
            ProbeConfig::Dc09 { key, .. } | ProbeConfig::Dc09Listen { key, .. } => {
                // Whether a key is set stays visible; the key does not.
                if let Some(k) = key {
                    *k = Secret::new("");
                }
            }
            ProbeConfig::Tcp { .. } | ProbeConfig::Icmp { .. } | ProbeConfig::Sip { .. } => {}
        }
    }

    /// What the probe reaches, as shown to people: a password in a URL is masked.
    pub fn target(&self) -> String {
        match self {
            ProbeConfig::Tcp { target } => target.clone(),
            ProbeConfig::Http { url, .. }
            | ProbeConfig::Snapshot { url, .. }
            | ProbeConfig::Onvif { url, .. }
            | ProbeConfig::Rtsp { url, .. } => redact::device_url(url),
            ProbeConfig::Dc09 { target, .. } | ProbeConfig::Sip { target, .. } => target.clone(),
            ProbeConfig::Dc09Listen { listen, .. } => listen.clone(),
            ProbeConfig::Icmp { host } => host.clone(),
        }
    }

    /// Checks what the types cannot, for the probe of `device`: each kind's own checks,
    /// in its module. The key of an error is the device's (`probe.url`, `interval`).
    pub fn validate(&self, device: &ProbedDevice<'_>) -> Result<(), Invalid> {
        match self {
            ProbeConfig::Tcp { target } | ProbeConfig::Sip { target, .. } => {
                tcp::check_target(target)
            }
            ProbeConfig::Http {
                url, expect_status, ..
            } => http::check_settings(url, expect_status),
            ProbeConfig::Snapshot { url, .. } | ProbeConfig::Onvif { url, .. } => {
                http::check_url(url)
            }
            ProbeConfig::Icmp { host } => icmp::check_host(host),
            ProbeConfig::Rtsp {
                url,
                stream_interval,
                stream_window,
                min_frame_rate,
                ..
            } => rtsp::check_settings(url, *stream_interval, *stream_window, *min_frame_rate),
            ProbeConfig::Dc09 {
                target,
                account,
                prefix,
                receiver,
                key,
                supervision,
                ..
            } => dc09::check_settings(
                target,
                account,
                prefix,
                receiver.as_deref(),
                key.as_ref(),
                *supervision,
                device,
            ),
            ProbeConfig::Dc09Listen {
                listen,
                account,
                window,
                key,
                supervision,
                ..
            } => dc09_listen::check_settings(
                listen,
                account,
                *window,
                key.as_ref(),
                *supervision,
                device,
            ),
        }
    }
}

/// What a probe's checks need of the device it probes.
#[derive(Debug, Clone, Copy)]
pub struct ProbedDevice<'a> {
    /// The device's id, for messages that cannot show the value they refuse (a key).
    pub id: &'a str,
    /// The probe interval as the configuration sets it (unset: derived).
    pub interval: Option<Duration>,
    /// The probe timeout in effect.
    pub timeout: Duration,
    /// Failed probes before the device is down, in effect.
    pub down_after: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cameras_password_never_shows_in_its_target_in_the_user_info_or_the_query() {
        let snapshot = ProbeConfig::Snapshot {
            url: "http://admin:pw1@10.0.0.4/cgi-bin/snapshot.cgi?channel=1&pwd=12345".into(),
            insecure_tls: false,
        };
        assert_eq!(
            snapshot.target(),
            "http://admin:***@10.0.0.4/cgi-bin/snapshot.cgi?channel=1&pwd=***"
        );
    }
}
