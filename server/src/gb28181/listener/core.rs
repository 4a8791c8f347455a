//! What the platform answers and what it hands on, for each SIP message a device sends:
//! registration with digest authentication, keepalives, catalog answers and alarms from
//! registered devices, and the catalog queries it sends itself. No sockets: the listener
//! reads messages and writes what this returns, so every rule is tested without a
//! network. The time is an argument.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tracing::{debug, info};

use super::catalog::Gatherer;
use super::flood::Flood;
use super::nonces::{NonceState, Nonces};
use super::{refused, Counters, ListenerSettings};
use crate::gb28181::digest::{Challenge, Credentials};
use crate::gb28181::manscdp::{self, Body};
use crate::gb28181::sip::{Message, StartLine};
use crate::gb28181::{GbCode, GbInput, Registration, Transport};

/// How soon after a registration its catalog is queried: the device reads the 200 OK
/// first.
const CATALOG_AFTER_REGISTER: Duration = Duration::from_millis(500);
/// How long an answer is kept to answer a retransmitted request again (RFC 3261's
/// Timer J, 64 × T1) instead of handling it twice.
const ANSWER_KEPT: Duration = Duration::from_secs(32);
/// Most answers kept for retransmissions.
const MAX_ANSWERS_KEPT: usize = 10_000;
/// The `Expires` of a REGISTER that gives none (RFC 3261 §10.2.1.1 suggests 3600).
const DEFAULT_EXPIRES: u32 = 3600;
/// The methods answered, for `Allow`.
const ALLOW: &str = "REGISTER, MESSAGE, OPTIONS";
/// Methods a SIP peer may send that the platform does not take (405); others are not
/// known at all (501).
const NOT_TAKEN: [&str; 10] = [
    "INVITE",
    "BYE",
    "CANCEL",
    "SUBSCRIBE",
    "NOTIFY",
    "INFO",
    "UPDATE",
    "PRACK",
    "REFER",
    "PUBLISH",
];

/// Where a message came from, and how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
    /// The TCP connection it came on.
    pub conn: Option<u64>,
}

/// What handling a message or the passing of time produced.
#[derive(Debug, Default)]
pub(super) struct Out {
    /// Messages to send, and to whom.
    pub sends: Vec<(Peer, Vec<u8>)>,
    /// What to hand to the engine.
    pub inputs: Vec<GbInput>,
}

#[derive(Debug)]
struct Device {
    peer: Peer,
    expires_at: Instant,
    /// When its catalog is to be queried next.
    catalog_at: Instant,
}

pub(super) struct Core {
    settings: Arc<ListenerSettings>,
    counters: Arc<Counters>,
    /// The listener's own address, for the `Via` of its requests.
    local: SocketAddr,
    devices: HashMap<GbCode, Device>,
    nonces: Nonces,
    flood: Flood,
    catalogs: Gatherer,
    /// Answers given, by request, for retransmissions.
    answers: HashMap<String, Vec<u8>>,
    answered: VecDeque<(Instant, String)>,
    /// The `SN` of the next catalog query.
    sn: u32,
    /// The `CSeq` of the platform's next request.
    cseq: u32,
}

impl Core {
    pub(super) fn new(
        settings: Arc<ListenerSettings>,
        counters: Arc<Counters>,
        local: SocketAddr,
        restored: Vec<Registration>,
        now: Instant,
    ) -> Self {
        let wall = chrono::Utc::now();
        // A registration from before a restart holds at least one keepalive window
        // (three intervals), so a device that keeps sending keepalives is not refused
        // while its registration's end, reckoned by the wall clock, is near.
        let window = Duration::from_secs(u64::from(settings.keepalive_secs) * 3);
        let devices = restored
            .into_iter()
            .map(|r| {
                let left = (r.expires_at - wall)
                    .to_std()
                    .unwrap_or_default()
                    .max(window);
                let device = Device {
                    peer: Peer {
                        addr: r.address,
                        transport: r.transport,
                        conn: None,
                    },
                    expires_at: now + left,
                    catalog_at: now + CATALOG_AFTER_REGISTER,
                };
                (r.device, device)
            })
            .collect();
        Self {
            flood: Flood::new(settings.register_rate),
            catalogs: Gatherer::new(settings.catalog_wait),
            settings,
            counters,
            local,
            devices,
            nonces: Nonces::default(),
            answers: HashMap::new(),
            answered: VecDeque::new(),
            sn: 1,
            cseq: 1,
        }
    }

    /// How many devices are registered.
    pub(super) fn registered(&self) -> usize {
        self.devices.len()
    }

    /// Handles one message from `peer`.
    pub(super) fn handle(&mut self, msg: Message, peer: Peer, now: Instant) -> Out {
        let mut out = Out::default();
        let method = match &msg.start {
            StartLine::Response { code, .. } => {
                // Answers to the platform's own catalog queries: a 200 says nothing the
                // catalog answer will not; anything else is worth a line.
                if *code >= 300 {
                    debug!(peer = %peer.addr, code, "A device refused the platform's request.");
                }
                return out;
            }
            StartLine::Request { method, .. } => method.to_ascii_uppercase(),
        };
        if method == "ACK" {
            // Never answered (RFC 3261 §17.2.1); nothing here sends what it acknowledges.
            return out;
        }
        let key = transaction_key(&msg, &peer);
        if let Some(answer) = key.as_ref().and_then(|k| self.answers.get(k)) {
            out.sends.push((peer, answer.clone()));
            return out;
        }
        let answer = match method.as_str() {
            "REGISTER" => self.register(&msg, peer, now, &mut out),
            "MESSAGE" => Some(self.message(&msg, peer, now, &mut out)),
            "OPTIONS" => Some(answer(&msg, 200, "OK").with("Allow", ALLOW)),
            m if NOT_TAKEN.contains(&m) => {
                refused(
                    &self.counters,
                    &peer.addr,
                    "method",
                    &format!("{m} is not taken"),
                );
                Some(answer(&msg, 405, "Method Not Allowed").with("Allow", ALLOW))
            }
            _ => {
                refused(&self.counters, &peer.addr, "method", "an unknown method");
                Some(answer(&msg, 501, "Not Implemented").with("Allow", ALLOW))
            }
        };
        if let Some(answer) = answer {
            let bytes = answer.to_bytes();
            if let Some(key) = key {
                self.keep_answer(key, bytes.clone(), now);
            }
            out.sends.push((peer, bytes));
        }
        out
    }

    /// The passing of time: catalogs whose wait ran out, registrations that ended,
    /// catalog queries that are due.
    pub(super) fn tick(&mut self, now: Instant) -> Out {
        let mut out = Out {
            inputs: self.catalogs.expire(now),
            ..Out::default()
        };
        self.devices.retain(|device, d| {
            let live = d.expires_at > now;
            if !live {
                debug!(device = %device, "A registration ended without a refresh.");
            }
            live
        });
        while let Some((at, _)) = self.answered.front() {
            if now.saturating_duration_since(*at) < ANSWER_KEPT {
                break;
            }
            if let Some((_, key)) = self.answered.pop_front() {
                self.answers.remove(&key);
            }
        }
        let due: Vec<GbCode> = self
            .devices
            .iter()
            // A TCP device is reached on a connection it opened; until it has one
            // (after a restart) its query waits.
            .filter(|(_, d)| {
                d.catalog_at <= now && (d.peer.transport == Transport::Udp || d.peer.conn.is_some())
            })
            .map(|(code, _)| *code)
            .collect();
        for code in due {
            if let Some(send) = self.catalog_query(code, now) {
                out.sends.push(send);
            }
        }
        out
    }

    /// A TCP connection closed: devices registered on it are reached on the next one
    /// they open.
    pub(super) fn connection_closed(&mut self, conn: u64) {
        for d in self.devices.values_mut() {
            if d.peer.conn == Some(conn) {
                d.peer.conn = None;
            }
        }
    }

    fn keep_answer(&mut self, key: String, bytes: Vec<u8>, now: Instant) {
        if self.answered.len() >= MAX_ANSWERS_KEPT {
            if let Some((_, old)) = self.answered.pop_front() {
                self.answers.remove(&old);
            }
        }
        self.answered.push_back((now, key.clone()));
        self.answers.insert(key, bytes);
    }

    fn password(&self, device: &GbCode) -> Option<&str> {
        self.settings
            .device_passwords
            .get(device)
            .or(self.settings.password.as_ref())
            .map(String::as_str)
    }

    /// REGISTER (GB/T 28181-2016 §9.1): None when dropped unanswered (a flood).
    fn register(
        &mut self,
        msg: &Message,
        peer: Peer,
        now: Instant,
        out: &mut Out,
    ) -> Option<Message> {
        if !self.flood.allow(peer.addr.ip(), now) {
            refused(
                &self.counters,
                &peer.addr,
                "flood",
                "REGISTERs beyond the rate of one address",
            );
            return None;
        }
        let Some(device) = device_of(msg) else {
            refused(
                &self.counters,
                &peer.addr,
                "malformed",
                "a REGISTER without a 20-digit device code in From",
            );
            return Some(answer(msg, 400, "Bad Request"));
        };
        let Some(password) = self.password(&device).map(str::to_owned) else {
            refused(
                &self.counters,
                &peer.addr,
                "unknown_device",
                &format!("device {device} has no password"),
            );
            return Some(answer(msg, 403, "Forbidden"));
        };
        let Some(authorization) = msg.header("Authorization") else {
            return Some(self.challenge(msg, false, now));
        };
        let Ok(credentials) = Credentials::parse(authorization) else {
            refused(
                &self.counters,
                &peer.addr,
                "malformed",
                "an unreadable Authorization",
            );
            return Some(answer(msg, 400, "Bad Request"));
        };
        if credentials.username != device.as_str() || credentials.realm != self.settings.realm {
            refused(
                &self.counters,
                &peer.addr,
                "auth",
                &format!("device {device}'s digest names another user or realm"),
            );
            return Some(answer(msg, 403, "Forbidden"));
        }
        if !credentials.verify("REGISTER", &password) {
            // The nonce is spent too: each guess costs a new challenge.
            let _ = self.nonces.take(&credentials.nonce, now);
            refused(
                &self.counters,
                &peer.addr,
                "auth",
                &format!("device {device}: wrong password"),
            );
            return Some(answer(msg, 403, "Forbidden"));
        }
        if self.nonces.take(&credentials.nonce, now) == NonceState::Stale {
            return Some(self.challenge(msg, true, now));
        }
        let asked = expires_of(msg);
        if asked == 0 {
            self.devices.remove(&device);
            self.counters.message("unregister");
            info!(device = %device, peer = %peer.addr, "GB/T 28181 device unregistered.");
            out.inputs.push(GbInput::Unregistered { device });
            return Some(self.registered_answer(msg, 0));
        }
        if asked < self.settings.register_expires_min {
            refused(
                &self.counters,
                &peer.addr,
                "interval_too_brief",
                &format!("device {device} asked for {asked} s"),
            );
            return Some(answer(msg, 423, "Interval Too Brief").with(
                "Min-Expires",
                self.settings.register_expires_min.to_string(),
            ));
        }
        let expires = asked.min(self.settings.register_expires_max);
        let keepalive_secs = self
            .settings
            .device_keepalive_secs
            .get(&device)
            .copied()
            .unwrap_or(self.settings.keepalive_secs);
        let refresh = self.devices.get(&device).is_some_and(|d| d.peer == peer);
        let catalog_at = match self.devices.get(&device) {
            Some(d) if refresh => d.catalog_at,
            _ => now + CATALOG_AFTER_REGISTER,
        };
        self.devices.insert(
            device,
            Device {
                peer,
                expires_at: now + Duration::from_secs(u64::from(expires)),
                catalog_at,
            },
        );
        self.counters.message("register");
        if refresh {
            debug!(device = %device, peer = %peer.addr, expires, "GB/T 28181 device refreshed its registration.");
        } else {
            info!(device = %device, peer = %peer.addr, transport = peer.transport.as_str(), expires, "GB/T 28181 device registered.");
        }
        out.inputs.push(GbInput::Registered {
            device,
            address: peer.addr,
            transport: peer.transport,
            expires_secs: expires,
            keepalive_secs,
        });
        let mut ok = self.registered_answer(msg, expires);
        if let Some(contact) = msg.header("Contact") {
            ok = ok.with("Contact", format!("{contact};expires={expires}"));
        }
        Some(ok)
    }

    fn challenge(&mut self, msg: &Message, stale: bool, now: Instant) -> Message {
        let challenge = Challenge {
            realm: self.settings.realm.clone(),
            nonce: self.nonces.issue(now),
        }
        .header();
        let value = if stale {
            format!("{challenge}, stale=true")
        } else {
            challenge
        };
        answer(msg, 401, "Unauthorized").with("WWW-Authenticate", value)
    }

    /// The 200 OK of a registration, with its `Expires` and the `Date` devices set their
    /// clocks from (GB/T 28181-2016 §9.1.2.1: local time, `YYYY-MM-DDTHH:MM:SS.sss`).
    fn registered_answer(&self, msg: &Message, expires: u32) -> Message {
        let date = chrono::Utc::now()
            .with_timezone(&self.settings.zone)
            .format("%Y-%m-%dT%H:%M:%S%.3f")
            .to_string();
        answer(msg, 200, "OK")
            .with("Expires", expires.to_string())
            .with("Date", date)
    }

    /// MESSAGE with a MANSCDP body (§9.4 alarm, §9.5 catalog, §9.6 keepalive), taken only
    /// from a device registered from where it comes.
    fn message(&mut self, msg: &Message, peer: Peer, now: Instant, out: &mut Out) -> Message {
        let Some(device) = device_of(msg) else {
            refused(
                &self.counters,
                &peer.addr,
                "malformed",
                "a MESSAGE without a 20-digit device code in From",
            );
            return answer(msg, 400, "Bad Request");
        };
        let Some(d) = self.devices.get_mut(&device).filter(|d| d.expires_at > now) else {
            // 404: the registrar does not know it, which makes a device register again.
            refused(
                &self.counters,
                &peer.addr,
                "not_registered",
                &format!("device {device} is not registered"),
            );
            return answer(msg, 404, "Not Found");
        };
        let same_place = d.peer.transport == peer.transport
            && match peer.transport {
                Transport::Udp => d.peer.addr == peer.addr,
                // A device opens a new connection when one breaks, from a new port.
                Transport::Tcp => d.peer.addr.ip() == peer.addr.ip(),
            };
        if !same_place {
            refused(
                &self.counters,
                &peer.addr,
                "wrong_address",
                &format!("device {device} registered from {}", d.peer.addr),
            );
            return answer(msg, 403, "Forbidden");
        }
        if peer.transport == Transport::Tcp {
            d.peer = peer;
        }
        let manscdp = msg.header("Content-Type").is_some_and(|t| {
            t.trim()
                .to_ascii_lowercase()
                .starts_with("application/manscdp+xml")
        });
        if !manscdp {
            refused(
                &self.counters,
                &peer.addr,
                "media_type",
                "a MESSAGE that is not Application/MANSCDP+xml",
            );
            return answer(msg, 415, "Unsupported Media Type")
                .with("Accept", "Application/MANSCDP+xml");
        }
        match manscdp::parse(&msg.body, self.settings.zone) {
            Err(e) => {
                refused(
                    &self.counters,
                    &peer.addr,
                    "malformed",
                    &format!("device {device}: {e}"),
                );
                return answer(msg, 400, "Bad Request");
            }
            Ok(Body::Keepalive { ok, .. }) => {
                self.counters.message("keepalive");
                out.inputs.push(GbInput::Keepalive { device, ok });
            }
            Ok(Body::Catalog(part)) => {
                self.counters.message("catalog");
                out.inputs.extend(self.catalogs.add(
                    device,
                    u64::from(part.sn),
                    part.sum_num as usize,
                    part.items,
                    part.skipped as usize,
                    now,
                ));
            }
            Ok(Body::Alarm { alarm, .. }) => {
                self.counters.message("alarm");
                info!(device = %device, source = %alarm.source, "GB/T 28181 alarm.");
                out.inputs.push(GbInput::Alarm { device, alarm });
            }
            Ok(Body::Other { root, cmd_type, .. }) => {
                self.counters.message("other");
                debug!(device = %device, root, cmd_type, "A MANSCDP message the platform does not use.");
            }
        }
        answer(msg, 200, "OK")
    }

    /// The `Catalog` query to `code` (§9.5.1), and when the next is due.
    fn catalog_query(&mut self, code: GbCode, now: Instant) -> Option<(Peer, Vec<u8>)> {
        let interval = self.settings.catalog_interval;
        let d = self.devices.get_mut(&code)?;
        d.catalog_at = now + interval;
        let peer = d.peer;
        let sn = self.sn;
        self.sn = self.sn.wrapping_add(1).max(1);
        let cseq = self.cseq;
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let host = via_host(self.local, peer.addr);
        let mut rng = rand::rng();
        let transport = match peer.transport {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        };
        let platform = &self.settings.platform_id;
        let mut query = Message::request("MESSAGE", &format!("sip:{code}@{}", peer.addr))
            .with(
                "Via",
                format!(
                    "SIP/2.0/{transport} {host};rport;branch=z9hG4bK{:016x}",
                    rng.random::<u64>()
                ),
            )
            .with(
                "From",
                format!(
                    "<sip:{platform}@{}>;tag={:08x}",
                    self.settings.realm,
                    rng.random::<u32>()
                ),
            )
            .with("To", format!("<sip:{code}@{}>", &code.as_str()[..10]))
            .with(
                "Call-ID",
                format!("{:016x}@{}", rng.random::<u64>(), host.ip()),
            )
            .with("CSeq", format!("{cseq} MESSAGE"))
            .with("Max-Forwards", "70")
            .with("User-Agent", "campuswatch")
            .with("Content-Type", "Application/MANSCDP+xml");
        query.body = manscdp::catalog_query(sn, &code).into_bytes();
        debug!(device = %code, peer = %peer.addr, sn, "Catalog query sent.");
        Some((peer, query.to_bytes()))
    }
}

/// The answer to `msg`, with a To tag of the platform's.
fn answer(msg: &Message, code: u16, reason: &str) -> Message {
    let tag = format!("{:08x}", rand::rng().random::<u32>());
    msg.response(code, reason, &tag)
        .with("User-Agent", "campuswatch")
}

/// A request told apart from others for retransmissions: its Call-ID, CSeq, the branch
/// of its top Via and where it came from. None without a Call-ID or CSeq.
fn transaction_key(msg: &Message, peer: &Peer) -> Option<String> {
    let call = msg.header("Call-ID")?;
    let cseq = msg.header("CSeq")?;
    let via = msg.header("Via").unwrap_or("");
    Some(format!("{}|{call}|{cseq}|{via}", peer.addr))
}

/// The user part of a SIP URI in a From or To header: `<sip:USER@host>;tag=…`.
fn uri_user(value: &str) -> Option<&str> {
    let at = value.find("sip:").or_else(|| value.find("sips:"))?;
    let rest = &value[at..];
    let rest = &rest[rest.find(':')? + 1..];
    let end = rest.find(['@', '>', ';'])?;
    Some(&rest[..end])
}

/// The device a request is from: the user of its From, else its To (GB/T 28181 devices
/// put their code in both of a REGISTER).
fn device_of(msg: &Message) -> Option<GbCode> {
    ["From", "To"]
        .iter()
        .filter_map(|h| msg.header(h).and_then(uri_user))
        .find_map(|u| GbCode::parse(u).ok())
}

/// The `Expires` a REGISTER asks for: its header, else its Contact's parameter, else
/// [`DEFAULT_EXPIRES`]. An unreadable value reads as the default.
fn expires_of(msg: &Message) -> u32 {
    let from_contact = || {
        msg.header("Contact")?
            .split(';')
            .find_map(|p| p.trim().strip_prefix("expires="))
            .map(str::to_owned)
    };
    msg.header("Expires")
        .map(str::to_owned)
        .or_else(from_contact)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_EXPIRES, |v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// The address the platform names in its requests' Via: the listener's, or, when it
/// listens on every address, the local address that reaches `peer`.
fn via_host(local: SocketAddr, peer: SocketAddr) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    let ip = crate::gb28181::route_to(peer).unwrap_or(local.ip());
    SocketAddr::new(ip, local.port())
}

#[cfg(test)]
mod tests;
