//! Simulated GB/T 28181 devices, for the demo, the benchmark and tests: each a real SIP
//! user agent on its own UDP socket that speaks to a platform as a campus NVR does
//! (GB/T 28181-2016): it registers with digest authentication and refreshes its
//! registration before it ends, sends keepalives at its interval, answers the platform's
//! catalog query with `200 OK` and then its catalog in as many `Response` `MESSAGE`s as
//! it needs (GB2312, Chinese names, `ON`/`OFF` per channel), and sends alarms when told.
//! Requests are retransmitted as RFC 3261 asks over UDP (from 500 ms, doubling to 4 s,
//! given up after 32 s), so a device that starts among thousands still gets through.
//!
//! A [`SimulatedDevice`] is one task and one socket, and is controlled through its
//! handle: a channel ON or OFF (the next catalog answer says so), an alarm, keepalives
//! stopped (the device goes silent, registered), unregistration (`Expires: 0`),
//! registration again, or gone without a word ([`SimulatedDevice::stop`], or dropping the
//! handle). What it did is in its [`DeviceStatus`].
//!
//! The bodies a device writes (keepalive, catalog answer, alarm) are built here; the
//! platform side only reads them ([`super::manscdp`]), and the catalog query a device
//! reads is recognised with the same reader.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta, Utc};
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use super::digest::{Challenge, Credentials};
use super::manscdp::{self, Body};
use super::sip::{self, Message, StartLine};
use super::{ChannelStatus, GbCode};

/// RFC 3261's T1: the first retransmission of a request over UDP.
const T1: Duration = Duration::from_millis(500);
/// RFC 3261's T2: retransmissions are at most this far apart.
const T2: Duration = Duration::from_secs(4);
/// A request unanswered this long is given up (64 × T1).
const GIVE_UP: Duration = Duration::from_secs(32);
/// After a refused or unanswered registration, the device tries again this much later.
const REGISTER_RETRY: Duration = Duration::from_secs(30);
/// The most datagram read: the platform's requests and answers are far smaller.
const RECEIVE_BUFFER: usize = 8 * 1024;
/// Answers to a challenge in a row before the device takes the platform as refusing it.
const MAX_CHALLENGES: u32 = 3;
/// What the device says it is, in `User-Agent`.
const USER_AGENT: &str = "campuswatch simulated device";

/// The platform a device registers to.
#[derive(Debug, Clone)]
pub struct PlatformAddress {
    /// Where the platform listens (UDP).
    pub addr: SocketAddr,
    /// The platform's code: the user of the `Request-URI` and the `To` of messages.
    pub id: GbCode,
    /// The SIP domain (the digest realm).
    pub realm: String,
}

/// One channel of a device's catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SimChannel {
    pub id: GbCode,
    pub name: String,
    pub status: ChannelStatus,
}

/// What a simulated device is and how it behaves.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub id: GbCode,
    /// Its digest password.
    pub password: String,
    pub channels: Vec<SimChannel>,
    /// How often it sends keepalives (GB/T 28181's default: 60 s). The first comes at a
    /// random point of the first interval, as devices that start together spread theirs.
    pub keepalive: Duration,
    /// The `Expires` it asks for; it registers again when three quarters have passed.
    pub expires: u32,
    /// Catalog items per `MESSAGE` of its answer.
    pub items_per_message: usize,
    /// The local address of its socket (port 0: any). Devices on their own addresses
    /// (`127.1.0.1`, … on Linux's loopback) are as many NVRs on a network are.
    pub bind: SocketAddr,
}

/// Places on a campus, for the cameras' names (GB2312 characters).
const PLACES: [&str; 10] = [
    "校门口",
    "操场",
    "教学楼走廊",
    "食堂",
    "宿舍楼",
    "围墙",
    "停车场",
    "图书馆",
    "实验楼",
    "门卫室",
];

impl DeviceSpec {
    /// An NVR `id` with `cameras` camera channels (type 131), all ON, named in Chinese
    /// after places on a campus. The channels' codes are the NVR's first 10 digits, type
    /// 131, its network digit, and a serial of the NVR's serial (its last 4 digits) and
    /// the channel's number, so NVRs whose serials differ in their last 4 digits have
    /// channels of their own (up to 99 each). Keepalives every 60 s, registrations of an
    /// hour, 10 items per message, bound to 127.0.0.1.
    pub fn nvr(id: GbCode, password: &str, cameras: usize) -> Self {
        let channels = (0..cameras.min(99))
            .map(|k| SimChannel {
                id: channel_code(&id, 131, k),
                name: format!("{}摄像机{}", PLACES[k % PLACES.len()], k + 1),
                status: ChannelStatus::On,
            })
            .collect();
        DeviceSpec {
            id,
            password: password.into(),
            channels,
            keepalive: Duration::from_secs(60),
            expires: 3600,
            items_per_message: 10,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// Adds a one-button alarm input channel (type 134), after the cameras; its code.
    pub fn with_alarm_input(mut self) -> (Self, GbCode) {
        let code = channel_code(&self.id, 134, self.channels.len());
        self.channels.push(SimChannel {
            id: code,
            name: "一键报警".into(),
            status: ChannelStatus::On,
        });
        (self, code)
    }
}

/// The code of channel `k` of type `type_code` under `device` (see [`DeviceSpec::nvr`]).
pub fn channel_code(device: &GbCode, type_code: u16, k: usize) -> GbCode {
    let d = device.as_str();
    let serial: usize = d[16..].parse().unwrap_or(0);
    let text = format!(
        "{}{type_code:03}{}{:04}{:02}",
        &d[..10],
        &d[13..14],
        serial,
        (k + 1) % 100
    );
    GbCode::parse(&text).unwrap_or(*device)
}

/// What a device has done, as its handle sees it.
#[derive(Debug, Clone, Default)]
pub struct DeviceStatus {
    /// The platform accepted its registration and it has not ended.
    pub registered: bool,
    /// Registrations (and refreshes) the platform accepted.
    pub registrations: u64,
    /// When the last was accepted.
    pub registered_at: Option<std::time::Instant>,
    /// Registrations refused (`403`, …), and the last refusal's status code.
    pub refused: u64,
    pub last_refusal: Option<u16>,
    pub keepalives: u64,
    /// When the last keepalive was sent.
    pub last_keepalive: Option<std::time::Instant>,
    /// Catalog queries answered, and when the last part of the last answer was sent.
    pub catalogs: u64,
    pub catalog_sent_at: Option<std::time::Instant>,
    pub alarms: u64,
    /// Requests the platform never answered (given up after 32 s).
    pub unanswered: u64,
}

enum Control {
    Channel(GbCode, ChannelStatus),
    Alarm { source: GbCode, description: String },
    Keepalives(bool),
    Register,
    Unregister,
}

/// A running simulated device. Dropping it ends the device without a word, as a device
/// that loses power.
pub struct SimulatedDevice {
    id: GbCode,
    local: SocketAddr,
    control: mpsc::UnboundedSender<Control>,
    status: watch::Receiver<DeviceStatus>,
    task: JoinHandle<()>,
}

impl SimulatedDevice {
    /// Binds the device's socket and starts it: it registers at once.
    pub async fn start(
        spec: DeviceSpec,
        platform: PlatformAddress,
    ) -> std::io::Result<SimulatedDevice> {
        let socket = UdpSocket::bind(spec.bind).await?;
        let mut local = socket.local_addr()?;
        if local.ip().is_unspecified() {
            local.set_ip(super::route_to(platform.addr)?);
        }
        let (control, rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(DeviceStatus::default());
        let id = spec.id;
        let mut rng = rand::rng();
        let agent = Agent {
            tag: format!("{:08x}", rng.random::<u32>()),
            register_call: format!("{:016x}@{}", rng.random::<u64>(), local.ip()),
            spec,
            platform,
            socket: Arc::new(socket),
            local,
            cseq: 0,
            sn: 0,
            pending: Vec::new(),
            registered: false,
            keepalives_on: true,
            keepalive_at: None,
            register_at: Some(Instant::now()),
            clock_offset: TimeDelta::zero(),
            challenges: 0,
            status: status_tx,
        };
        let task = tokio::spawn(agent.run(rx));
        Ok(SimulatedDevice {
            id,
            local,
            control,
            status,
            task,
        })
    }

    pub fn id(&self) -> GbCode {
        self.id
    }

    /// The address it sends from (the platform sees this).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// What it has done so far.
    pub fn status(&self) -> DeviceStatus {
        self.status.borrow().clone()
    }

    /// Waits until its status satisfies `f`, at most `within`; the status then.
    pub async fn wait_for(
        &self,
        within: Duration,
        f: impl FnMut(&DeviceStatus) -> bool,
    ) -> Option<DeviceStatus> {
        let mut rx = self.status.clone();
        let seen = match tokio::time::timeout(within, rx.wait_for(f)).await {
            Ok(Ok(s)) => Some(s.clone()),
            _ => None,
        };
        seen
    }

    fn send(&self, c: Control) {
        // The device's task ends only with its handle.
        let _ = self.control.send(c);
    }

    /// Sets a channel ON or OFF: its next catalog answer says so.
    pub fn set_channel(&self, channel: GbCode, status: ChannelStatus) {
        self.send(Control::Channel(channel, status));
    }

    /// Sends an alarm of `source` (the device or one of its channels), priority 1, by
    /// device (a one-button alarm).
    pub fn alarm(&self, source: GbCode, description: &str) {
        self.send(Control::Alarm {
            source,
            description: description.into(),
        });
    }

    /// Stops (false) or resumes (true) keepalives; its registration is left as it is.
    pub fn set_keepalives(&self, on: bool) {
        self.send(Control::Keepalives(on));
    }

    /// Unregisters (`Expires: 0`) and stays quiet until told to register.
    pub fn unregister(&self) {
        self.send(Control::Unregister);
    }

    /// Registers again (after [`unregister`](Self::unregister), say), keepalives on.
    pub fn register(&self) {
        self.send(Control::Register);
    }

    /// Ends the device without a word: no unregistration, the socket closed.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimulatedDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What an outstanding request was for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Purpose {
    Register { expires: u32, authorized: bool },
    Message,
}

/// A request sent and not answered yet, retransmitted until it is.
struct Pending {
    branch: String,
    bytes: Vec<u8>,
    purpose: Purpose,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// The device's task: one socket, its registration, its outstanding requests.
struct Agent {
    spec: DeviceSpec,
    platform: PlatformAddress,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    tag: String,
    /// The Call-ID of its registrations (the same for every refresh, RFC 3261 §10.2.4).
    register_call: String,
    cseq: u32,
    sn: u32,
    pending: Vec<Pending>,
    registered: bool,
    keepalives_on: bool,
    keepalive_at: Option<Instant>,
    /// When to register (first, refresh or retry); None while unregistered on purpose.
    register_at: Option<Instant>,
    /// The platform's local time minus UTC, from the `Date` of its 200 OK: devices set
    /// their clocks from it and write local times (`AlarmTime`) in it.
    clock_offset: TimeDelta,
    /// 401s answered in a row.
    challenges: u32,
    status: watch::Sender<DeviceStatus>,
}

impl Agent {
    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        let far = Duration::from_secs(86_400);
        loop {
            let wake = [
                self.pending.iter().map(|p| p.next).min(),
                self.keepalive_at
                    .filter(|_| self.registered && self.keepalives_on),
                self.register_at,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + far);
            tokio::select! {
                c = control.recv() => match c {
                    Some(c) => self.control(c).await,
                    None => return,
                },
                r = self.socket.readable() => {
                    if r.is_err() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    let mut buf = [0u8; RECEIVE_BUFFER];
                    match self.socket.try_recv_from(&mut buf) {
                        Ok((n, _)) => {
                            if let Ok(msg) = sip::parse_datagram(&buf[..n]) {
                                self.received(msg).await;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => debug!(device = %self.spec.id, error = %e, "Simulated device: receive failed."),
                    }
                }
                _ = tokio::time::sleep_until(wake) => self.due(Instant::now()).await,
            }
        }
    }

    async fn control(&mut self, c: Control) {
        match c {
            Control::Channel(id, status) => {
                if let Some(ch) = self.spec.channels.iter_mut().find(|ch| ch.id == id) {
                    ch.status = status;
                }
            }
            Control::Alarm {
                source,
                description,
            } => {
                let body = self.alarm_body(&source, &description);
                self.message(body).await;
                self.status.send_modify(|s| s.alarms += 1);
            }
            Control::Keepalives(on) => {
                self.keepalives_on = on;
                if on {
                    self.keepalive_at = Some(Instant::now());
                }
            }
            Control::Register => {
                self.keepalives_on = true;
                self.register_at = Some(Instant::now());
            }
            Control::Unregister => {
                self.register_at = None;
                self.pending
                    .retain(|p| !matches!(p.purpose, Purpose::Register { .. }));
                self.register(0, None).await;
            }
        }
    }

    /// Timers: retransmissions, keepalives, registrations.
    async fn due(&mut self, now: Instant) {
        let mut resend = Vec::new();
        let mut lost = Vec::new();
        for p in &mut self.pending {
            if p.next > now {
                continue;
            }
            if now >= p.give_up {
                lost.push(p.branch.clone());
                continue;
            }
            resend.push(p.bytes.clone());
            p.interval = (p.interval * 2).min(T2);
            p.next = now + p.interval;
        }
        for bytes in resend {
            self.transmit(&bytes).await;
        }
        for branch in lost {
            if let Some(p) = self.take_pending(&branch) {
                self.status.send_modify(|s| s.unanswered += 1);
                if matches!(p.purpose, Purpose::Register { expires, .. } if expires > 0) {
                    self.set_registered(false);
                    self.register_at = Some(now + REGISTER_RETRY);
                }
            }
        }
        if self.register_at.is_some_and(|at| at <= now) {
            self.register_at = None;
            self.challenges = 0;
            self.register(self.spec.expires, None).await;
        }
        if self.registered && self.keepalives_on && self.keepalive_at.is_some_and(|at| at <= now) {
            self.keepalive_at = Some(now + self.spec.keepalive);
            let body = self.keepalive_body();
            self.message(body).await;
            self.status.send_modify(|s| {
                s.keepalives += 1;
                s.last_keepalive = Some(std::time::Instant::now());
            });
        }
    }

    fn take_pending(&mut self, branch: &str) -> Option<Pending> {
        let i = self.pending.iter().position(|p| p.branch == branch)?;
        Some(self.pending.swap_remove(i))
    }

    fn set_registered(&mut self, on: bool) {
        self.registered = on;
        self.status.send_modify(|s| s.registered = on);
    }

    async fn transmit(&self, bytes: &[u8]) {
        if let Err(e) = self.socket.send_to(bytes, self.platform.addr).await {
            debug!(device = %self.spec.id, error = %e, "Simulated device: send failed.");
        }
    }

    /// A new request of this device: its Via (with a new branch), From, To, Call-ID,
    /// CSeq and the headers every request carries.
    fn request(&mut self, method: &str, to: &GbCode, call_id: &str) -> (String, Message) {
        self.cseq += 1;
        let branch = format!("z9hG4bK{:016x}", rand::rng().random::<u64>());
        let (id, realm, local) = (self.spec.id, &self.platform.realm, self.local);
        let msg = Message::request(method, &format!("sip:{}@{realm}", self.platform.id))
            .with("Via", format!("SIP/2.0/UDP {local};rport;branch={branch}"))
            .with("From", format!("<sip:{id}@{realm}>;tag={}", self.tag))
            .with("To", format!("<sip:{to}@{realm}>"))
            .with("Call-ID", call_id)
            .with("CSeq", format!("{} {method}", self.cseq))
            .with("Max-Forwards", "70")
            .with("User-Agent", USER_AGENT);
        (branch, msg)
    }

    async fn send_request(&mut self, branch: String, msg: Message, purpose: Purpose) {
        let bytes = msg.to_bytes();
        self.transmit(&bytes).await;
        let now = Instant::now();
        self.pending.push(Pending {
            branch,
            bytes,
            purpose,
            next: now + T1,
            interval: T1,
            give_up: now + GIVE_UP,
        });
    }

    /// REGISTER (GB/T 28181-2016 §9.1.2), with credentials when answering a challenge.
    async fn register(&mut self, expires: u32, challenge: Option<&Challenge>) {
        let call = self.register_call.clone();
        let id = self.spec.id;
        let (branch, mut msg) = self.request("REGISTER", &id, &call);
        msg = msg
            .with("Contact", format!("<sip:{id}@{}>", self.local))
            .with("Expires", expires.to_string());
        if let Some(challenge) = challenge {
            let uri = format!("sip:{}@{}", self.platform.id, self.platform.realm);
            let credentials = Credentials::answer(
                challenge,
                id.as_str(),
                &self.spec.password,
                "REGISTER",
                &uri,
            );
            msg = msg.with("Authorization", credentials.header());
        }
        let purpose = Purpose::Register {
            expires,
            authorized: challenge.is_some(),
        };
        self.send_request(branch, msg, purpose).await;
    }

    /// A MESSAGE with a MANSCDP body to the platform.
    async fn message(&mut self, body: Vec<u8>) {
        let call = format!("{:016x}@{}", rand::rng().random::<u64>(), self.local.ip());
        let platform = self.platform.id;
        let (branch, mut msg) = self.request("MESSAGE", &platform, &call);
        msg = msg.with("Content-Type", "Application/MANSCDP+xml");
        msg.body = body;
        self.send_request(branch, msg, Purpose::Message).await;
    }

    async fn received(&mut self, msg: Message) {
        match &msg.start {
            StartLine::Response { code, .. } => {
                let code = *code;
                let Some(branch) = msg.header("Via").and_then(branch_of) else {
                    return;
                };
                if code < 200 {
                    return;
                }
                let Some(p) = self.take_pending(branch) else {
                    // An answer to a retransmission already answered.
                    return;
                };
                match p.purpose {
                    Purpose::Register {
                        expires,
                        authorized,
                    } => {
                        self.register_answered(&msg, code, expires, authorized)
                            .await
                    }
                    Purpose::Message if code == 404 => {
                        // The platform no longer knows it: register again, as devices do.
                        self.set_registered(false);
                        if self.register_at.is_none() && !self.registering() {
                            self.register_at = Some(Instant::now());
                        }
                    }
                    Purpose::Message => {}
                }
            }
            StartLine::Request { method, .. } => {
                let method = method.to_ascii_uppercase();
                match method.as_str() {
                    "MESSAGE" => self.platform_message(&msg).await,
                    "OPTIONS" => self.answer(&msg, 200, "OK").await,
                    "ACK" => {}
                    _ => self.answer(&msg, 405, "Method Not Allowed").await,
                }
            }
        }
    }

    fn registering(&self) -> bool {
        self.pending
            .iter()
            .any(|p| matches!(p.purpose, Purpose::Register { .. }))
    }

    async fn register_answered(
        &mut self,
        msg: &Message,
        code: u16,
        expires: u32,
        authorized: bool,
    ) {
        let now = Instant::now();
        match code {
            401 if self.challenges < MAX_CHALLENGES => {
                // A first challenge, or a stale nonce: answer it.
                let challenge = msg.header("WWW-Authenticate").map(Challenge::parse);
                if let Some(Ok(challenge)) = challenge {
                    self.challenges += 1;
                    self.register(expires, Some(&challenge)).await;
                    return;
                }
                self.refused(401, now);
            }
            200..=299 if expires == 0 => {
                self.set_registered(false);
                self.keepalive_at = None;
            }
            200..=299 => {
                self.challenges = 0;
                let granted = msg
                    .header("Expires")
                    .and_then(|e| e.trim().parse::<u32>().ok())
                    .unwrap_or(expires)
                    .max(1);
                if let Some(date) = msg.header("Date").and_then(platform_time) {
                    self.clock_offset = date - Utc::now().naive_utc();
                }
                let first = !self.registered;
                self.set_registered(true);
                self.register_at = Some(now + Duration::from_secs(u64::from(granted)) * 3 / 4);
                if first {
                    let phase = rand::rng().random_range(0.0..1.0);
                    self.keepalive_at = Some(now + self.spec.keepalive.mul_f64(phase));
                }
                self.status.send_modify(|s| {
                    s.registrations += 1;
                    s.registered_at = Some(std::time::Instant::now());
                });
            }
            423 => {
                // Interval too brief: ask for what the platform allows.
                let min = msg
                    .header("Min-Expires")
                    .and_then(|e| e.trim().parse::<u32>().ok())
                    .unwrap_or(3600);
                self.spec.expires = min.max(expires);
                let challenge = None;
                self.register(self.spec.expires, challenge).await;
            }
            _ => {
                debug!(device = %self.spec.id, code, authorized, "Simulated device: registration refused.");
                self.refused(code, now);
            }
        }
    }

    fn refused(&mut self, code: u16, now: Instant) {
        self.set_registered(false);
        self.challenges = 0;
        self.register_at = Some(now + REGISTER_RETRY);
        self.status.send_modify(|s| {
            s.refused += 1;
            s.last_refusal = Some(code);
        });
    }

    async fn answer(&self, msg: &Message, code: u16, reason: &str) {
        let answer = msg
            .response(code, reason, &self.tag)
            .with("User-Agent", USER_AGENT);
        self.transmit(&answer.to_bytes()).await;
    }

    /// A MESSAGE from the platform: a catalog query is answered `200 OK`, then with the
    /// catalog (§9.5.1); other commands only `200 OK`.
    async fn platform_message(&mut self, msg: &Message) {
        let body = manscdp::parse(&msg.body, chrono_tz::UTC);
        let catalog_query = matches!(
            &body,
            Ok(Body::Other { root, cmd_type, .. }) if root == "Query" && cmd_type.eq_ignore_ascii_case("Catalog")
        );
        if body.is_err() {
            self.answer(msg, 400, "Bad Request").await;
            return;
        }
        self.answer(msg, 200, "OK").await;
        if !catalog_query {
            return;
        }
        // The query's SN, which every part of the answer repeats; its text is ASCII.
        let text = String::from_utf8_lossy(&msg.body);
        let sn = campuswatch_wire::xml::element(&text, "SN")
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0);
        for body in self.catalog_bodies(sn) {
            self.message(body).await;
        }
        self.status.send_modify(|s| {
            s.catalogs += 1;
            s.catalog_sent_at = Some(std::time::Instant::now());
        });
    }

    fn next_sn(&mut self) -> u32 {
        self.sn = self.sn.wrapping_add(1);
        self.sn
    }

    fn keepalive_body(&mut self) -> Vec<u8> {
        let sn = self.next_sn();
        keepalive_body(&self.spec.id, sn)
    }

    fn alarm_body(&mut self, source: &GbCode, description: &str) -> Vec<u8> {
        let sn = self.next_sn();
        let local = Utc::now().naive_utc() + self.clock_offset;
        alarm_body(source, sn, local, description)
    }

    fn catalog_bodies(&self, sn: u32) -> Vec<Vec<u8>> {
        catalog_bodies(&self.spec, sn)
    }
}

/// The `branch` of a Via header value.
fn branch_of(via: &str) -> Option<&str> {
    via.split(';')
        .find_map(|p| p.trim().strip_prefix("branch="))
        .map(str::trim)
}

/// The platform's `Date` (`2026-12-06T08:00:00.000`, local time).
fn platform_time(date: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(date.trim(), "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// Text for an XML element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A body in GB2312, as devices write them (GBK, its superset, writes GB2312's
/// characters the same).
fn gb2312(xml: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(xml).0.into_owned()
}

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n";

/// A keepalive notification (GB/T 28181-2016 §9.6, A.2.5).
pub fn keepalive_body(device: &GbCode, sn: u32) -> Vec<u8> {
    gb2312(&format!(
        "{DECLARATION}<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{device}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
    ))
}

/// An alarm notification of `source` (§9.4, A.2.5): priority 1, by device (method 2),
/// at the device's local time `at`.
pub fn alarm_body(source: &GbCode, sn: u32, at: NaiveDateTime, description: &str) -> Vec<u8> {
    gb2312(&format!(
        "{DECLARATION}<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{source}</DeviceID>\r\n\
         <AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>2</AlarmMethod>\r\n<AlarmTime>{}</AlarmTime>\r\n\
         <AlarmDescription>{}</AlarmDescription>\r\n<Info>\r\n<AlarmType>1</AlarmType>\r\n</Info>\r\n</Notify>\r\n",
        at.format("%Y-%m-%dT%H:%M:%S"),
        escape(description)
    ))
}

/// The catalog answer to query `sn` (§9.5.1, A.2.6): `items_per_message` channels a
/// body, each body with the total (`SumNum`); one body with none for a device without
/// channels.
pub fn catalog_bodies(spec: &DeviceSpec, sn: u32) -> Vec<Vec<u8>> {
    let device = spec.id;
    let division = &device.as_str()[..6];
    let total = spec.channels.len();
    let per = spec.items_per_message.max(1);
    let mut parts: Vec<&[SimChannel]> = spec.channels.chunks(per).collect();
    if parts.is_empty() {
        parts.push(&[]);
    }
    parts
        .into_iter()
        .map(|part| {
            let items: String = part
                .iter()
                .map(|ch| {
                    let status = match ch.status {
                        ChannelStatus::On => "ON",
                        ChannelStatus::Off => "OFF",
                    };
                    format!(
                        "<Item>\r\n<DeviceID>{}</DeviceID>\r\n<Name>{}</Name>\r\n<Manufacturer>campuswatch</Manufacturer>\r\n\
                         <Model>simulated NVR</Model>\r\n<Owner>Owner</Owner>\r\n<CivilCode>{division}</CivilCode>\r\n\
                         <Address>Address</Address>\r\n<Parental>0</Parental>\r\n<ParentID>{device}</ParentID>\r\n\
                         <SafetyWay>0</SafetyWay>\r\n<RegisterWay>1</RegisterWay>\r\n<Secrecy>0</Secrecy>\r\n\
                         <Status>{status}</Status>\r\n</Item>\r\n",
                        ch.id,
                        escape(&ch.name)
                    )
                })
                .collect();
            gb2312(&format!(
                "{DECLARATION}<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{device}</DeviceID>\r\n\
                 <SumNum>{total}</SumNum>\r\n<DeviceList Num=\"{}\">\r\n{items}</DeviceList>\r\n</Response>\r\n",
                part.len()
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
