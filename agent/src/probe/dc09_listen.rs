//! DC-09 supervision listener: for alarm panels configured to poll the gateway. The
//! agent receives their `NULL` supervision frames (and `SIA-DCS` / `ADM-CID` events),
//! answers `ACK` (or `DUH` for a frame it cannot read), and judges a panel up while a
//! valid frame from its account arrived within the supervision window.
//!
//! One listener serves every panel on the same address and transport; it is started by
//! the first probe that needs it and lives as long as the process (on the runtime that
//! started it: the agent has one).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::{Probe, ProbeFuture, ProbeResult};
use crate::config::Transport;
use crate::dc09::{Frame, MAX_FRAME_BYTES};

/// A running listener: when each account last sent a valid frame.
pub struct Listener {
    addr: SocketAddr,
    last_seen: Mutex<HashMap<String, Instant>>,
}

impl Listener {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn seen(&self, account: &str) {
        self.last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account.to_string(), Instant::now());
    }

    fn last(&self, account: &str) -> Option<Instant> {
        self.last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            .copied()
    }

    /// The answer to one received frame, recording its account when valid.
    fn answer(&self, bytes: &[u8]) -> Vec<u8> {
        let now = chrono::Utc::now().naive_utc();
        match Frame::decode(bytes) {
            Ok(frame) => {
                self.seen(&frame.account);
                frame.ack(now).encode()
            }
            Err(e) => {
                tracing::warn!(error = %e, "DC-09 frame from a panel could not be read; answered DUH.");
                Frame {
                    id: "DUH".into(),
                    ..Frame::null(0, None, "0", "0")
                }
                .encode()
            }
        }
    }
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
            let l = Arc::new(Listener {
                addr: socket.local_addr().map_err(bind_err)?,
                last_seen: Mutex::default(),
            });
            tokio::spawn(serve_tcp(socket, l.clone()));
            l
        }
        Transport::Udp => {
            let socket = UdpSocket::bind(listen).await.map_err(bind_err)?;
            let l = Arc::new(Listener {
                addr: socket.local_addr().map_err(bind_err)?,
                last_seen: Mutex::default(),
            });
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
                // Frames end in CR; a panel may send several on one connection.
                while let Some(end) = data.iter().position(|&b| b == b'\r') {
                    let frame: Vec<u8> = data.drain(..=end).collect();
                    let start = frame.iter().position(|&b| b == b'\n').unwrap_or(0);
                    if conn.write_all(&l.answer(&frame[start..])).await.is_err() {
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
}

impl Dc09ListenProbe {
    pub fn new(listen: String, transport: Transport, account: String, window: Duration) -> Self {
        Self {
            listen,
            transport,
            account,
            window,
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
                    format!(
                        "DC-09: no supervision frame from panel {} for {}s (window {}s): check the panel's link",
                        self.account,
                        at.elapsed().as_secs(),
                        self.window.as_secs()
                    ),
                ),
                None => ProbeResult::fail(
                    Duration::ZERO,
                    format!(
                        "DC-09: no supervision frame from panel {} yet: check the panel polls {}",
                        self.account,
                        l.local_addr()
                    ),
                ),
            }
        })
    }
}
