//! The GB/T 28181 SIP listener: UDP and TCP on one port, where campus NVRs and cameras
//! (or a lower platform in cascade) register and send keepalives, catalog answers and
//! alarms. It reads and writes SIP; what to answer is decided by [`core`], which owns
//! the registrations, and what devices said goes to the engine as [`GbInput`]s through
//! a channel. Nothing a device sends can end it: a message that cannot be read is
//! counted ([`Counters`], `cw_gb_refused_total` in `/metrics`), logged once per source
//! and reason, and dropped.

mod catalog;
mod core;
mod counters;
mod flood;
mod nonces;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::core::{Core, Out, Peer};
pub use self::counters::{Counters, MESSAGE_KINDS, REFUSALS};
use super::sip::{self, SipError};
use super::{GbCode, GbInput, Registration, Transport};

/// How often registrations, catalog waits and due catalog queries are looked at.
const TICK: Duration = Duration::from_millis(250);
/// The largest UDP datagram (IPv4's limit).
const MAX_DATAGRAM: usize = 65_535;
/// Messages waiting to be handled; beyond, datagrams are dropped (counted as overload)
/// and TCP connections wait.
const QUEUE: usize = 4096;
/// Messages waiting to be written to one TCP connection; beyond, the connection is
/// closed (its device does not read).
const WRITE_QUEUE: usize = 256;

/// How the listener runs. [`ListenerSettings::new`] gives the documented defaults.
#[derive(Clone)]
pub struct ListenerSettings {
    /// UDP and TCP on this address; port 0 picks a port free for both.
    pub listen: SocketAddr,
    /// The platform's own code: the From of its requests.
    pub platform_id: GbCode,
    /// The SIP domain of digest challenges (GB/T 28181's custom: the first 10 digits of
    /// the platform's code).
    pub realm: String,
    /// The password of devices without one of their own.
    pub password: Option<String>,
    /// Per-device passwords, which win over the shared one.
    pub device_passwords: HashMap<GbCode, String>,
    /// How often devices send keepalives (GB/T 28181's default: 60 s).
    pub keepalive_secs: u32,
    /// Per-device keepalive intervals, which win over `keepalive_secs`.
    pub device_keepalive_secs: HashMap<GbCode, u32>,
    /// A REGISTER asking for less than this is answered 423 Interval Too Brief with
    /// `Min-Expires` (RFC 3261 §10.3), and the device asks again for more.
    pub register_expires_min: u32,
    /// A REGISTER asking for more than this is granted this (the 200 OK says so).
    pub register_expires_max: u32,
    /// How often each registered device's catalog is queried (and right after it
    /// registers).
    pub catalog_interval: Duration,
    /// How long the parts of a catalog answer are gathered before what came is handed
    /// on as incomplete.
    pub catalog_wait: Duration,
    /// REGISTERs per second per source IP address, and the burst; beyond, dropped
    /// unanswered and counted (`flood`). 0 per second: no limit.
    pub register_rate: (u32, u32),
    /// Most TCP connections at once; beyond, new ones are closed (`connection_limit`).
    pub max_connections: usize,
    /// A TCP connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// The zone of the `Date` of registration answers and of times in MANSCDP bodies
    /// (devices write local time without an offset).
    pub zone: chrono_tz::Tz,
}

impl std::fmt::Debug for ListenerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        f.debug_struct("ListenerSettings")
            .field("listen", &self.listen)
            .field("platform_id", &self.platform_id)
            .field("realm", &self.realm)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("device_passwords", &self.device_passwords.len())
            .field("keepalive_secs", &self.keepalive_secs)
            .field(
                "register_expires",
                &(self.register_expires_min..=self.register_expires_max),
            )
            .field("catalog_interval", &self.catalog_interval)
            .field("catalog_wait", &self.catalog_wait)
            .field("register_rate", &self.register_rate)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("zone", &self.zone)
            .finish()
    }
}

impl ListenerSettings {
    /// The defaults: realm from the platform's code, no passwords (every device is
    /// refused until some are given), keepalives every 60 s, registrations of 60 s to
    /// 24 h, catalogs queried every 10 min and gathered for 30 s, 10 REGISTERs per second
    /// per address with bursts of 50, 10,000 TCP connections idle at most 5 min.
    pub fn new(listen: SocketAddr, platform_id: GbCode, zone: chrono_tz::Tz) -> Self {
        Self {
            listen,
            realm: platform_id.as_str()[..10].to_owned(),
            platform_id,
            password: None,
            device_passwords: HashMap::new(),
            keepalive_secs: 60,
            device_keepalive_secs: HashMap::new(),
            register_expires_min: 60,
            register_expires_max: 86_400,
            catalog_interval: Duration::from_secs(600),
            catalog_wait: Duration::from_secs(30),
            register_rate: (10, 50),
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(300),
            zone,
        }
    }
}

/// The bound sockets, ready to [`run`](Listener::run).
pub struct Listener {
    settings: Arc<ListenerSettings>,
    counters: Arc<Counters>,
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
}

/// What the reading tasks hand to the task that owns the registrations.
enum Event {
    Message(sip::Message, Peer),
    Opened(u64, mpsc::Sender<Vec<u8>>),
    Closed(u64),
}

impl Listener {
    /// Binds UDP and TCP on the same port (with port 0, one free for both).
    pub async fn bind(settings: ListenerSettings, counters: Arc<Counters>) -> io::Result<Listener> {
        let mut tries = 0;
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind(settings.listen).await?;
            let port = udp.local_addr()?.port();
            match TcpListener::bind(SocketAddr::new(settings.listen.ip(), port)).await {
                Ok(tcp) => break (udp, tcp),
                // The port UDP got is taken for TCP: try another.
                Err(e) if settings.listen.port() == 0 && tries < 20 => {
                    tries += 1;
                    debug!(port, error = %e, "TCP port taken; binding another.");
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Listener {
            settings: Arc::new(settings),
            counters,
            udp: Arc::new(udp),
            tcp,
        })
    }

    /// The address devices register to, UDP and TCP alike.
    pub fn local_addr(&self) -> SocketAddr {
        self.udp.local_addr().unwrap_or(self.settings.listen)
    }

    /// Runs until `shutdown`: takes `restored` registrations as registered, then
    /// answers devices and hands what they said to `out`. Ends early only when `out`
    /// is closed (the engine is gone).
    pub async fn run(
        self,
        restored: Vec<Registration>,
        out: mpsc::Sender<GbInput>,
        shutdown: CancellationToken,
    ) {
        let local = self.local_addr();
        info!(address = %local, restored = restored.len(), "GB/T 28181 listener running (UDP and TCP).");
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let stop = shutdown.child_token();
        tokio::spawn(read_datagrams(
            self.udp.clone(),
            tx.clone(),
            self.counters.clone(),
            stop.clone(),
        ));
        tokio::spawn(accept(
            self.tcp,
            tx,
            self.settings.clone(),
            self.counters.clone(),
            stop.clone(),
        ));
        let mut core = Core::new(
            self.settings.clone(),
            self.counters.clone(),
            local,
            restored,
            Instant::now(),
        );
        let mut writers: HashMap<u64, mpsc::Sender<Vec<u8>>> = HashMap::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let done = tokio::select! {
                _ = shutdown.cancelled() => break,
                event = rx.recv() => match event {
                    Some(Event::Message(msg, peer)) => core.handle(msg, peer, Instant::now()),
                    Some(Event::Opened(id, writer)) => {
                        writers.insert(id, writer);
                        continue;
                    }
                    Some(Event::Closed(id)) => {
                        writers.remove(&id);
                        core.connection_closed(id);
                        continue;
                    }
                    None => break,
                },
                _ = tick.tick() => core.tick(Instant::now()),
            };
            if !deliver(done, &self.udp, &mut writers, &out).await {
                warn!("The engine no longer takes GB/T 28181 input; the listener stops.");
                break;
            }
        }
        stop.cancel();
        info!(
            registered = core.registered(),
            "GB/T 28181 listener stopped."
        );
    }
}

/// Sends what the core answered and hands on its inputs; false when the engine is gone.
async fn deliver(
    out: Out,
    udp: &UdpSocket,
    writers: &mut HashMap<u64, mpsc::Sender<Vec<u8>>>,
    engine: &mpsc::Sender<GbInput>,
) -> bool {
    for (peer, bytes) in out.sends {
        match peer.conn {
            None => {
                if let Err(e) = udp.send_to(&bytes, peer.addr).await {
                    debug!(peer = %peer.addr, error = %e, "SIP datagram not sent.");
                }
            }
            Some(id) => {
                let full = writers.get(&id).is_some_and(|w| w.try_send(bytes).is_err());
                if full {
                    // Dropping its writer closes the connection.
                    debug!(peer = %peer.addr, "A TCP peer does not read its answers; closing.");
                    writers.remove(&id);
                }
            }
        }
    }
    for input in out.inputs {
        if engine.send(input).await.is_err() {
            return false;
        }
    }
    true
}

/// Counts a refusal and logs it once per source address and reason.
pub(super) fn refused(counters: &Counters, peer: &SocketAddr, reason: &'static str, detail: &str) {
    if counters.refused(&peer.ip().to_string(), reason) {
        warn!(
            peer = %peer,
            reason,
            detail,
            "GB/T 28181 listener refused a message (logged once per source and reason; counted in cw_gb_refused_total)."
        );
    } else {
        debug!(peer = %peer, reason, detail, "GB/T 28181 listener refused a message.");
    }
}

/// The reason a message that could not be read counts under.
fn unreadable(e: &SipError) -> &'static str {
    match e {
        SipError::TooLarge => "too_large",
        _ => "malformed",
    }
}

async fn read_datagrams(
    udp: Arc<UdpSocket>,
    tx: mpsc::Sender<Event>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    // One byte more than a datagram may hold, to tell one that was cut.
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let (n, from) = tokio::select! {
            _ = stop.cancelled() => return,
            r = udp.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors of earlier sends surface here on some systems; the
                    // socket itself goes on.
                    debug!(error = %e, "SIP datagram not received.");
                    continue;
                }
            },
        };
        let bytes = &buf[..n];
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            // Keep-alive CRLFs (RFC 5626) and empty datagrams.
            continue;
        }
        if n > MAX_DATAGRAM {
            refused(&counters, &from, "too_large", "a datagram over 64 KiB");
            continue;
        }
        let msg = match sip::parse_datagram(bytes) {
            Ok(m) => m,
            Err(e) => {
                refused(&counters, &from, unreadable(&e), &e.to_string());
                continue;
            }
        };
        let peer = Peer {
            addr: from,
            transport: Transport::Udp,
            conn: None,
        };
        match tx.try_send(Event::Message(msg, peer)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                refused(
                    &counters,
                    &from,
                    "overload",
                    "the listener is behind; datagram dropped",
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

async fn accept(
    tcp: TcpListener,
    tx: mpsc::Sender<Event>,
    settings: Arc<ListenerSettings>,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let mut next_id = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = tcp.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    warn!(error = %e, "GB/T 28181 listener could not accept a TCP connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused(
                &counters,
                &peer,
                "connection_limit",
                "a TCP connection beyond the limit",
            );
            continue;
        };
        next_id += 1;
        let (tx, counters, stop, idle) = (
            tx.clone(),
            counters.clone(),
            stop.clone(),
            settings.idle_timeout,
        );
        tokio::spawn(async move {
            connection(stream, peer, next_id, tx, counters, idle, stop).await;
            drop(slot);
        });
    }
}

/// One TCP connection: messages framed by `Content-Length` in, answers out.
async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    id: u64,
    tx: mpsc::Sender<Event>,
    counters: Arc<Counters>,
    idle: Duration,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (writer, mut to_write) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    if tx.send(Event::Opened(id, writer)).await.is_err() {
        return;
    }
    let writing = tokio::spawn(async move {
        while let Some(bytes) = to_write.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let peer = Peer {
        addr,
        transport: Transport::Tcp,
        conn: Some(id),
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = tokio::select! {
            _ = stop.cancelled() => break,
            r = tokio::time::timeout(idle, rd.read(&mut chunk)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
                Err(_) => {
                    debug!(peer = %addr, "Idle TCP connection closed.");
                    break;
                }
            },
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match sip::next_in_stream(&mut buf) {
                Ok(Some(msg)) => {
                    if tx.send(Event::Message(msg, peer)).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The stream cannot be framed any further.
                    refused(&counters, &addr, unreadable(&e), &e.to_string());
                    break 'read;
                }
            }
        }
    }
    let _ = tx.send(Event::Closed(id)).await;
    // The writer ends when the listener drops its sender (on Closed).
    let _ = writing.await;
}
