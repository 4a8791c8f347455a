//! The guarded front of the embedded broker: it owns the public MQTT listener and lets
//! through only what the Mosquitto recipe would (docs/broker-security.md).
//!
//! rumqttd 0.20 can check a password (an external handler) and speak TLS only through
//! its `use-rustls` feature, and it has no topic ACLs and no hook on PUBLISH or
//! SUBSCRIBE. So rumqttd listens on a loopback port of its own, where it accepts only
//! connections that carry a password made at start and known to this process, and this
//! front, per connection:
//!
//! 1. completes TLS (rustls, ring provider) when a certificate is configured;
//! 2. reads the first MQTT 3.1.1 frame within the connect timeout; it must be CONNECT;
//! 3. checks the user name and password against the Mosquitto password file
//!    ([`super::passwd`]): none → CONNACK 5 (not authorised), wrong → CONNACK 4 (bad user
//!    name or password); a Will outside the user's ACL → CONNACK 5;
//! 4. connects to rumqttd with the CONNECT it checked, re-encoded with the internal
//!    password instead of the user's and the client id prefixed by the user name (so
//!    one campus cannot take over another's session by its client id);
//! 5. then reads every frame: a PUBLISH to a topic outside the user's ACL, a SUBSCRIBE to
//!    a filter outside it, a second CONNECT, a packet only a broker sends, or a frame
//!    that does not parse or is larger than the payload limit closes the connection;
//!    PUBLISH and SUBSCRIBE are forwarded re-encoded from what was checked (so rumqttd
//!    cannot read them differently), every other frame as it came.
//!
//! What rumqttd sends back is copied to the client unchanged. Every refusal is counted in
//! `cw_broker_refused_total{reason}` and logged once per source (the user, or the
//! address before one is known) and reason, never with a password.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Login, Packet};
use rumqttc::mqttbytes::Protocol;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tracing::{debug, warn};

use super::acl::{self, Role};
use super::passwd::PasswordFile;
use crate::metrics::Metrics;

/// Why the front refused a client (`cw_broker_refused_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// CONNECT without a user name (CONNACK 5).
    Anonymous,
    /// Unknown user or wrong password (CONNACK 4).
    Credentials,
    /// A Last Will on a topic the user may not write (CONNACK 5).
    Will,
    /// A PUBLISH to a topic the user may not write.
    Publish,
    /// A SUBSCRIBE to a filter the user may not read.
    Subscribe,
    /// Bytes that are not MQTT 3.1.1: garbage, a truncated frame, a first packet other
    /// than CONNECT, a second CONNECT, a packet only a broker sends, MQTT 5.
    Malformed,
    /// A frame longer than the payload limit allows.
    TooLarge,
    /// The TLS handshake failed (a plain MQTT client on the TLS port, an untrusted
    /// certificate on the client's side).
    Tls,
    /// No CONNECT within the connect timeout.
    Timeout,
    /// More connections than `max_connections`.
    ConnectionLimit,
}

impl Refusal {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [Refusal; 10] = [
        Refusal::Anonymous,
        Refusal::Credentials,
        Refusal::Will,
        Refusal::Publish,
        Refusal::Subscribe,
        Refusal::Malformed,
        Refusal::TooLarge,
        Refusal::Tls,
        Refusal::Timeout,
        Refusal::ConnectionLimit,
    ];

    /// The `reason` label: [`BROKER_REFUSALS`](crate::metrics::BROKER_REFUSALS), in
    /// the order of the variants.
    pub fn as_str(self) -> &'static str {
        crate::metrics::BROKER_REFUSALS[self as usize]
    }
}

/// The password rumqttd's internal listener accepts, made at start; never shown.
#[derive(Clone)]
pub struct InternalSecret(pub(crate) Arc<str>);

impl std::fmt::Debug for InternalSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl InternalSecret {
    /// 32 random bytes, hex.
    pub fn generate() -> InternalSecret {
        let bytes: [u8; 32] = rand::random();
        InternalSecret(
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into(),
        )
    }

    /// Whether `password` is this secret.
    pub fn admits(&self, password: &str) -> bool {
        super::passwd::same(self.0.as_bytes(), password.as_bytes())
    }

    /// The secret itself, for the server's own in-process connection.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What the front enforces and where it forwards to.
pub struct Guard {
    /// rumqttd's internal listener.
    pub upstream: SocketAddr,
    pub secret: InternalSecret,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// `None`: no authentication (loopback, or `insecure`): every frame is forwarded.
    pub passwords: Option<PasswordFile>,
    /// Users with the server's ACL; everyone else is a campus.
    pub server_users: HashSet<String>,
    /// The largest remaining length accepted.
    pub max_packet: usize,
    /// How long a client may take from TCP connect to CONNECT (TLS included).
    pub connect_timeout: Duration,
    pub connections: Arc<Semaphore>,
    pub metrics: Arc<Metrics>,
}

/// Who the client proved to be.
struct Identity {
    user: String,
    role: Role,
}

/// Why a frame could not be read.
#[derive(Debug)]
enum FrameError {
    /// The peer closed the connection between frames, or the connection failed.
    Closed,
    Refused(Refusal, String),
}

/// Accepts clients on `listener` for as long as the task runs.
pub async fn serve(listener: TcpListener, guard: Arc<Guard>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, say: let connections end before trying again.
                warn!(error = %e, "Embedded broker: cannot accept a connection.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = guard.connections.clone().try_acquire_owned() else {
            guard.refuse(
                &peer,
                None,
                Refusal::ConnectionLimit,
                "too many connections",
            );
            continue;
        };
        let guard = guard.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            match &guard.tls {
                Some(acceptor) => {
                    // Fallible: the socket comes back with the error, so the refusal is
                    // counted before the client sees the connection end.
                    match timeout(
                        guard.connect_timeout,
                        acceptor.accept(stream).into_fallible(),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => guard.client(tls, peer).await,
                        Ok(Err((e, socket))) => {
                            guard.refuse(&peer, None, Refusal::Tls, &e.to_string());
                            drop(socket);
                        }
                        Err(_) => guard.refuse(&peer, None, Refusal::Timeout, "no TLS handshake"),
                    }
                }
                None => guard.client(stream, peer).await,
            }
        });
    }
}

impl Guard {
    /// Counts and (once per source and reason) logs a refusal.
    fn refuse(&self, peer: &SocketAddr, user: Option<&str>, why: Refusal, detail: &str) {
        let source = match user {
            Some(u) => format!("user {u}"),
            None => format!("address {}", peer.ip()),
        };
        if self.metrics.broker_refused(&source, why.as_str()) {
            warn!(
                peer = %peer,
                user = user.unwrap_or(""),
                reason = why.as_str(),
                detail,
                "Embedded broker refused a client and closed its connection (logged once per source and reason; counted in cw_broker_refused_total)."
            );
        } else {
            debug!(peer = %peer, user = user.unwrap_or(""), reason = why.as_str(), detail, "Embedded broker refused a client.");
        }
    }

    async fn client<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut buf = BytesMut::with_capacity(1024);
        let first = match timeout(
            self.connect_timeout,
            read_frame(&mut rd, &mut buf, self.max_packet),
        )
        .await
        {
            Ok(Ok(f)) => f,
            Ok(Err(FrameError::Closed)) => return,
            Ok(Err(FrameError::Refused(why, detail))) => {
                return self.refuse(&peer, None, why, &detail)
            }
            Err(_) => return self.refuse(&peer, None, Refusal::Timeout, "no CONNECT"),
        };
        let connect = match parse(first, self.max_packet) {
            Ok(Packet::Connect(c)) => c,
            Ok(other) => {
                return self.refuse(
                    &peer,
                    None,
                    Refusal::Malformed,
                    &format!("first packet is not CONNECT but {}", name(&other)),
                );
            }
            Err(detail) => return self.refuse(&peer, None, Refusal::Malformed, &detail),
        };
        if connect.protocol != Protocol::V4 {
            // Counted before the client can see the connection end.
            self.refuse(&peer, None, Refusal::Malformed, "not MQTT 3.1.1");
            let _ = connack(&mut wr, ConnectReturnCode::RefusedProtocolVersion).await;
            return;
        }
        let identity = match &self.passwords {
            None => None,
            Some(file) => {
                let Some(login) = connect.login.clone() else {
                    // Counted before the client can see the connection end.
                    self.refuse(
                        &peer,
                        None,
                        Refusal::Anonymous,
                        &format!("client id {:?} gave no user name", connect.client_id),
                    );
                    let _ = connack(&mut wr, ConnectReturnCode::NotAuthorized).await;
                    return;
                };
                let passwords = file.passwords();
                let user = login.username.clone();
                // PBKDF2 on the blocking pool: a burst of logins must not stall forwarding.
                let ok = tokio::task::spawn_blocking(move || {
                    passwords.verify(&login.username, login.password.as_bytes())
                })
                .await
                .unwrap_or(false);
                if !ok {
                    // Counted before the client can see the connection end.
                    self.refuse(
                        &peer,
                        None,
                        Refusal::Credentials,
                        &format!(
                            "user {user:?} (client id {:?}): unknown user or wrong password",
                            connect.client_id
                        ),
                    );
                    let _ = connack(&mut wr, ConnectReturnCode::BadUserNamePassword).await;
                    return;
                }
                let role = if self.server_users.contains(&user) {
                    Role::Server
                } else {
                    Role::Campus
                };
                Some(Identity { user, role })
            }
        };
        if let (Some(id), Some(will)) = (&identity, &connect.last_will) {
            if !acl::may_publish(id.role, &id.user, &will.topic) {
                // Counted before the client can see the connection end.
                self.refuse(
                    &peer,
                    Some(&id.user),
                    Refusal::Will,
                    &format!("Last Will on {:?}", will.topic),
                );
                let _ = connack(&mut wr, ConnectReturnCode::NotAuthorized).await;
                return;
            }
        }

        let upstream = match TcpStream::connect(self.upstream).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "Embedded broker: its front cannot reach rumqttd.");
                let _ = connack(&mut wr, ConnectReturnCode::ServiceUnavailable).await;
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        let (mut up_rd, mut up_wr) = upstream.into_split();
        let mut forwarded = connect;
        if let Some(id) = &identity {
            if !forwarded.client_id.is_empty() {
                forwarded.client_id = format!("{}:{}", id.user, forwarded.client_id);
            }
        }
        forwarded.login = Some(Login {
            // Without a password file nobody logged in; rumqttd wants some user name.
            username: identity
                .as_ref()
                .map_or_else(|| "anonymous".to_string(), |i| i.user.clone()),
            password: self.secret.expose().to_string(),
        });
        if write_packet(&mut up_wr, &Packet::Connect(forwarded), self.max_packet)
            .await
            .is_err()
        {
            return;
        }

        let down = async {
            let _ = tokio::io::copy(&mut up_rd, &mut wr).await;
            let _ = wr.shutdown().await;
        };
        let user = identity.as_ref().map(|i| i.user.as_str());
        let up = async {
            loop {
                let frame = match read_frame(&mut rd, &mut buf, self.max_packet).await {
                    Ok(f) => f,
                    Err(FrameError::Closed) => return,
                    Err(FrameError::Refused(why, detail)) => {
                        return self.refuse(&peer, user, why, &detail)
                    }
                };
                let kind = frame[0] >> 4;
                let raw = frame.clone();
                let packet = match parse(frame, self.max_packet) {
                    Ok(p) => p,
                    Err(detail) => return self.refuse(&peer, user, Refusal::Malformed, &detail),
                };
                let sent = match &packet {
                    Packet::Publish(p) => {
                        if let Some(id) = &identity {
                            if !acl::may_publish(id.role, &id.user, &p.topic) {
                                return self.refuse(
                                    &peer,
                                    user,
                                    Refusal::Publish,
                                    &format!("PUBLISH to {:?}", p.topic),
                                );
                            }
                        }
                        write_packet(&mut up_wr, &packet, self.max_packet).await
                    }
                    Packet::Subscribe(s) => {
                        if let Some(id) = &identity {
                            if let Some(f) = s
                                .filters
                                .iter()
                                .find(|f| !acl::may_subscribe(id.role, &id.user, &f.path))
                            {
                                return self.refuse(
                                    &peer,
                                    user,
                                    Refusal::Subscribe,
                                    &format!("SUBSCRIBE to {:?}", f.path),
                                );
                            }
                        }
                        write_packet(&mut up_wr, &packet, self.max_packet).await
                    }
                    Packet::PubAck(_)
                    | Packet::PubRec(_)
                    | Packet::PubRel(_)
                    | Packet::PubComp(_)
                    | Packet::Unsubscribe(_)
                    | Packet::PingReq
                    | Packet::Disconnect => up_wr.write_all(&raw).await,
                    other => {
                        return self.refuse(
                            &peer,
                            user,
                            Refusal::Malformed,
                            &format!("{} (type {kind}) from a client", name(other)),
                        );
                    }
                };
                if sent.is_err() || matches!(packet, Packet::Disconnect) {
                    return;
                }
            }
        };
        tokio::select! {
            _ = down => {}
            _ = up => {}
        }
    }
}

/// Reads one whole frame into `buf` and splits it off. The remaining length is read
/// first and checked against `max` before any of the body is, so a frame announcing
/// 256 MB costs nothing.
async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<BytesMut, FrameError> {
    loop {
        if let Some(total) = frame_length(buf, max)? {
            if buf.len() >= total {
                return Ok(buf.split_to(total));
            }
            buf.reserve(total - buf.len());
        }
        let read = match rd.read_buf(buf).await {
            Ok(n) => n,
            // A reset or a TLS connection cut without close_notify: the network or the
            // client went away, which is not an attack.
            Err(e) => {
                debug!(error = %e, "Embedded broker: a client's connection failed.");
                return Err(FrameError::Closed);
            }
        };
        if read == 0 {
            return Err(if buf.is_empty() {
                FrameError::Closed
            } else {
                FrameError::Refused(
                    Refusal::Malformed,
                    format!(
                        "connection closed inside a frame ({} bytes of it)",
                        buf.len()
                    ),
                )
            });
        }
    }
}

/// The length of the frame at the start of `buf` (fixed header included), once its
/// header is complete; an error for a remaining length over `max` or longer than MQTT's
/// four bytes.
fn frame_length(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if len > max {
                return Err(FrameError::Refused(
                    Refusal::TooLarge,
                    format!("a frame of {len} bytes (at most {max})"),
                ));
            }
            return Ok(Some(2 + i + len));
        }
    }
    Err(FrameError::Refused(
        Refusal::Malformed,
        "remaining length longer than 4 bytes".into(),
    ))
}

fn parse(mut frame: BytesMut, max: usize) -> Result<Packet, String> {
    let packet = Packet::read(&mut frame, max).map_err(|e| format!("unreadable packet: {e:?}"))?;
    if frame.has_remaining() {
        // Cannot happen with a frame cut at its length; refuse rather than forward.
        return Err("bytes after the packet".into());
    }
    Ok(packet)
}

fn name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

async fn write_packet<W: AsyncWrite + Unpin>(
    w: &mut W,
    p: &Packet,
    max: usize,
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    // The client's frame fit `max`; a re-encoded one is no longer, save a client id
    // grown by the user name.
    p.write(&mut out, max + 2 * 65_535)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{e:?}")))?;
    w.write_all(&out).await
}

async fn connack<W: AsyncWrite + Unpin>(w: &mut W, code: ConnectReturnCode) -> std::io::Result<()> {
    write_packet(w, &Packet::ConnAck(ConnAck::new(code, false)), 16).await?;
    w.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths_are_bounded_before_the_body_is_read() {
        assert!(matches!(frame_length(&[], 10), Ok(None)));
        assert!(matches!(frame_length(&[0x30], 10), Ok(None)));
        assert!(matches!(frame_length(&[0x30, 0x05], 10), Ok(Some(7))));
        assert!(matches!(frame_length(&[0x30, 0x80], 10), Ok(None)));
        // 268,435,455: MQTT's largest, far over the limit.
        assert!(matches!(
            frame_length(&[0x30, 0xff, 0xff, 0xff, 0x7f], 1 << 20),
            Err(FrameError::Refused(Refusal::TooLarge, _))
        ));
        assert!(matches!(
            frame_length(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], usize::MAX),
            Err(FrameError::Refused(Refusal::Malformed, _))
        ));
    }

    #[test]
    fn every_reason_has_its_own_label() {
        assert_eq!(Refusal::ALL.len(), crate::metrics::BROKER_REFUSALS.len());
        for (i, r) in Refusal::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        assert_eq!(Refusal::Publish.as_str(), "publish");
        assert_eq!(Refusal::ConnectionLimit.as_str(), "connection_limit");
    }
}
