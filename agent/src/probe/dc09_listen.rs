//! DC-09 supervision listener: for alarm panels configured to poll the gateway. The
//! agent receives their `NULL` supervision frames (and `SIA-DCS` / `ADM-CID` events),
//! answers `ACK` (or `DUH` for a frame it cannot read), and judges a panel up while a
//! valid frame from its account arrived within the supervision window.
//!
//! A panel with an AES key configured must encrypt: its `*` frames are opened with the
//! key, checked against the gateway's clock (40 s behind to 20 s ahead, as DC-09 asks of
//! receivers) and answered with an encrypted `*ACK`. A frame that does not open, or is
//! out of that window, is answered `NAK` (in clear, with the gateway's time); an
//! encrypted frame from a panel with no key, or a clear one from a panel with a key,
//! gets `DUH`. None of these counts as a poll, and the probe's cause says why.
//!
//! One listener serves every panel on the same address and transport; it is started by
//! the first probe that needs it and lives as long as the process (on the runtime that
//! started it: the agent has one).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use campuswatch_protocol::CauseCode;
use campuswatch_service::{Invalid, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::settings::{ProbedDevice, Transport};
use super::{Cause, Probe, ProbeFuture, ProbeResult};
use crate::dc09::{within_window, AesKey, Frame, MAX_FRAME_BYTES};
use crate::supervision::Category;

/// A running listener: when each account last sent a valid frame.
pub struct Listener {
    addr: SocketAddr,
    last_seen: Mutex<HashMap<String, Instant>>,
    /// The AES key of each panel that encrypts, registered by its probe.
    keys: Mutex<HashMap<String, AesKey>>,
    /// The last frame of an account that was refused, and why.
    refused: Mutex<HashMap<String, (Instant, &'static str)>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Listener {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            last_seen: Mutex::default(),
            keys: Mutex::default(),
            refused: Mutex::default(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, frames of `account` must be encrypted with `key` (`None`: in clear).
    pub fn set_key(&self, account: &str, key: Option<AesKey>) {
        let mut keys = locked(&self.keys);
        match key {
            Some(k) => keys.insert(account.to_string(), k),
            None => keys.remove(account),
        };
    }

    fn seen(&self, account: &str) {
        locked(&self.last_seen).insert(account.to_string(), Instant::now());
    }

    pub(crate) fn last(&self, account: &str) -> Option<Instant> {
        locked(&self.last_seen).get(account).copied()
    }

    fn refuse(&self, account: &str, why: &'static str) {
        tracing::warn!(account, "DC-09 frame from a panel refused: {why}.");
        locked(&self.refused).insert(account.to_string(), (Instant::now(), why));
    }

    /// Why the last frame of `account` was refused, if that came after its last good one.
    fn refused_since_last_poll(&self, account: &str) -> Option<&'static str> {
        let (at, why) = *locked(&self.refused).get(account)?;
        match self.last(account) {
            Some(good) if good > at => None,
            _ => Some(why),
        }
    }

    /// The answer to one received frame, recording its account when valid.
    pub(crate) fn answer(&self, bytes: &[u8]) -> Vec<u8> {
        let now = chrono::Utc::now().naive_utc();
        let frame = match Frame::decode(bytes) {
            Ok(f) if !f.account.is_empty() => f,
            Ok(_) => {
                tracing::warn!("DC-09 frame from a panel names no account; answered DUH.");
                return unreadable();
            }
            Err(e) => {
                tracing::warn!(error = %e, "DC-09 frame from a panel could not be read; answered DUH.");
                return unreadable();
            }
        };
        let duh = |f: &Frame| {
            Frame {
                id: "DUH".into(),
                ..f.ack(now)
            }
            .encode()
        };
        let key = locked(&self.keys).get(&frame.account).cloned();
        match (key, frame.encrypted) {
            (None, false) => {
                self.seen(&frame.account);
                frame.ack(now).encode()
            }
            (None, true) => {
                self.refuse(
                    &frame.account,
                    "it is encrypted but no AES key is configured for this panel (DUH)",
                );
                duh(&frame)
            }
            (Some(_), false) => {
                self.refuse(
                    &frame.account,
                    "it came in clear but an AES key is configured for this panel (DUH)",
                );
                duh(&frame)
            }
            (Some(key), true) => match frame.decrypt(&key) {
                Err(_) => {
                    self.refuse(
                        &frame.account,
                        "it does not decrypt with the configured AES key: check the key (NAK)",
                    );
                    Frame::nak(now).encode()
                }
                Ok(clear) if !clear.timestamp.is_some_and(|at| within_window(at, now)) => {
                    self.refuse(&frame.account, "its time is off the gateway's clock by more than DC-09 allows: check the panel's clock (NAK)");
                    Frame::nak(now).encode()
                }
                Ok(clear) => match clear.ack(now).encrypt(&key, &mut rand::rng()) {
                    Ok(ack) => {
                        self.seen(&clear.account);
                        ack.encode()
                    }
                    // Not reached: an ACK carries its time. Refuse rather than guess.
                    Err(_) => duh(&frame),
                },
            },
        }
    }
}

/// The answer to a frame that cannot be read at all.
fn unreadable() -> Vec<u8> {
    Frame {
        id: "DUH".into(),
        ..Frame::null(0, None, "0", "0")
    }
    .encode()
}

type Registry = Mutex<HashMap<(String, Transport), Arc<Listener>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// The listener on `listen`, started on first use.
pub async fn listener_for(listen: &str, transport: Transport) -> Result<Arc<Listener>, String> {
    let key = (listen.to_string(), transport);
    if let Some(l) = registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return Ok(l.clone());
    }
    let bind_err = |e: std::io::Error| format!("cannot listen for panels on {listen}: {e}");
    let listener = match transport {
        Transport::Tcp => {
            let socket = TcpListener::bind(listen).await.map_err(bind_err)?;
            let l = Arc::new(Listener::new(socket.local_addr().map_err(bind_err)?));
            tokio::spawn(serve_tcp(socket, l.clone()));
            l
        }
        Transport::Udp => {
            let socket = UdpSocket::bind(listen).await.map_err(bind_err)?;
            let l = Arc::new(Listener::new(socket.local_addr().map_err(bind_err)?));
            tokio::spawn(serve_udp(socket, l.clone()));
            l
        }
    };
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    // Another probe may have won the race; keep the first.
    Ok(reg.entry(key).or_insert(listener).clone())
}

async fn serve_tcp(socket: TcpListener, l: Arc<Listener>) {
    loop {
        let Ok((mut conn, peer)) = socket.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let l = l.clone();
        tokio::spawn(async move {
            let mut data = Vec::with_capacity(256);
            let mut buf = [0u8; 512];
            loop {
                let n = match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                data.extend_from_slice(&buf[..n]);
                while let Some(frame) = next_frame(&mut data) {
                    if conn.write_all(&l.answer(&frame)).await.is_err() {
                        return;
                    }
                }
                if data.len() > MAX_FRAME_BYTES {
                    tracing::warn!(%peer, "A panel sent more than a frame without CR; closing.");
                    return;
                }
            }
        });
    }
}

/// The next frame a panel sent on a stream, taken out of `data`: frames end in CR (a
/// panel may send several on one connection) and start at their LF, anything before it
/// is dropped. `None` until a CR has arrived.
pub(crate) fn next_frame(data: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = data.iter().position(|&b| b == b'\r')?;
    let mut frame: Vec<u8> = data.drain(..=end).collect();
    let start = frame.iter().position(|&b| b == b'\n').unwrap_or(0);
    frame.drain(..start);
    Some(frame)
}

async fn serve_udp(socket: UdpSocket, l: Arc<Listener>) {
    let mut buf = vec![0u8; MAX_FRAME_BYTES];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let _ = socket.send_to(&l.answer(&buf[..n]), peer).await;
    }
}

/// Up while the panel with `account` polled within `window`.
pub struct Dc09ListenProbe {
    listen: String,
    transport: Transport,
    account: String,
    window: Duration,
    key: Option<AesKey>,
}

impl Dc09ListenProbe {
    pub fn new(listen: String, transport: Transport, account: String, window: Duration) -> Self {
        Self {
            listen,
            transport,
            account,
            window,
            key: None,
        }
    }

    /// The same probe for a panel that encrypts its frames with `key`.
    pub fn with_key(self, key: AesKey) -> Self {
        Self {
            key: Some(key),
            ..self
        }
    }
}

impl Probe for Dc09ListenProbe {
    fn kind(&self) -> &'static str {
        "dc09_listen"
    }

    fn target(&self) -> &str {
        &self.listen
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let l = match listener_for(&self.listen, self.transport).await {
                Ok(l) => l,
                Err(cause) => return ProbeResult::fail(Duration::ZERO, cause),
            };
            l.set_key(&self.account, self.key.clone());
            let refused = l
                .refused_since_last_poll(&self.account)
                .map(|why| format!("; its last frame was refused: {why}"))
                .unwrap_or_default();
            match l.last(&self.account) {
                Some(at) if at.elapsed() <= self.window => {
                    let mut r = ProbeResult::ok(Duration::ZERO);
                    r.measurements.clear();
                    r.measurements
                        .insert("since_last_poll_s".into(), at.elapsed().as_secs_f64());
                    r
                }
                Some(at) => ProbeResult::fail(
                    Duration::ZERO,
                    Cause::new(
                        CauseCode::new("dc09.silent")
                            .with("account", self.account.as_str())
                            .with("seconds", at.elapsed().as_secs())
                            .with("window", self.window.as_secs()),
                        format!(
                            "DC-09: no supervision frame from panel {} for {}s (window {}s): check the panel's link{refused}",
                            self.account,
                            at.elapsed().as_secs(),
                            self.window.as_secs()
                        ),
                    ),
                ),
                None => ProbeResult::fail(
                    Duration::ZERO,
                    Cause::new(
                        CauseCode::new("dc09.never_polled")
                            .with("account", self.account.as_str()),
                        format!(
                            "DC-09: no supervision frame from panel {} yet: check the panel polls {}{refused}",
                            self.account,
                            l.local_addr()
                        ),
                    ),
                ),
            }
        })
    }
}

/// A dc09_listen probe's keys: where it listens, the panel's key and account, and its
/// supervision window (set, or the category's reporting time, and never longer).
pub(crate) fn check_settings(
    listen: &str,
    account: &str,
    window: Option<Duration>,
    key: Option<&Secret>,
    supervision: Option<Category>,
    device: &ProbedDevice<'_>,
) -> Result<(), Invalid> {
    super::tcp::check_target(listen)?;
    super::dc09::check_key(key, device)?;
    if !super::dc09::valid_account(account) {
        return Err(Invalid::new(
            "probe.account",
            format!("{account:?}: 1 to 16 printable characters, the panel's account id"),
        ));
    }
    match (window, supervision) {
        (None, None) => Err(Invalid::new(
            "probe.window",
            "set the panel's supervision window (for example \"3m\") or its \
             supervision category (supervision = \"SP4\")",
        )),
        (Some(w), _) if w.is_zero() => {
            Err(Invalid::new("probe.window", "must be longer than zero"))
        }
        (Some(w), Some(c)) if w > c.reporting_time() => Err(Invalid::new(
            "probe.window",
            format!(
                "{} is longer than the {} reporting time of {}: a silent panel \
                 would be reported late",
                humantime::format_duration(w),
                c,
                humantime::format_duration(c.reporting_time())
            ),
        )),
        _ => Ok(()),
    }
}
