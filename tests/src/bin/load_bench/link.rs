//! A gateway's MQTT 3.1.1 connection, as lean as a generator of 100,000 gateways needs:
//! one socket owned by the gateway's own task, packets encoded and decoded with rumqttc's
//! codec, and nothing else: no event loop, channel or request queue per connection (with
//! those, the generator used more CPU than the server it measures). What an agent does
//! on the wire is kept: a persistent session, its death as the Last Will, the rebirth
//! requests subscribed at QoS 1 and acknowledged, QoS 1 births and events, QoS 0
//! heartbeats, a PINGREQ when nothing was sent for a keepalive.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{
    ConnectReturnCode, Error as CodecError, LastWill, Packet, PubAck, Publish, QoS, Subscribe,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Large enough for a birth of many devices.
const MAX_PACKET: usize = 1 << 20;

/// What the broker sent that the gateway acts on.
pub enum Incoming {
    /// The session is up (CONNACK accepted).
    Up,
    /// A message on a subscribed topic.
    Publish(Publish),
}

pub struct Link {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    next_pkid: u16,
    /// When a packet was last written: a PINGREQ is due a keepalive after it.
    pub last_sent: tokio::time::Instant,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Link {
    /// Connects from `source` (any port) to the broker at `broker` and sends CONNECT;
    /// [`Link::next`] says when the broker accepted it.
    pub async fn connect(
        source: Option<std::net::IpAddr>,
        broker: SocketAddr,
        client_id: String,
        keepalive: Duration,
        will: LastWill,
    ) -> io::Result<Link> {
        let socket = TcpSocket::new_v4()?;
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = socket.connect(broker).await?;
        stream.set_nodelay(true)?;
        let mut link = Link {
            stream,
            rbuf: BytesMut::with_capacity(256),
            wbuf: BytesMut::with_capacity(256),
            next_pkid: 0,
            last_sent: tokio::time::Instant::now(),
        };
        let mut connect = rumqttc::Connect::new(client_id);
        connect.keep_alive = keepalive.as_secs().clamp(1, u16::MAX as u64) as u16;
        connect.clean_session = false;
        connect.last_will = Some(will);
        link.send(Packet::Connect(connect)).await?;
        Ok(link)
    }

    async fn send(&mut self, packet: Packet) -> io::Result<()> {
        self.wbuf.clear();
        packet.write(&mut self.wbuf, MAX_PACKET).map_err(invalid)?;
        self.stream.write_all(&self.wbuf).await?;
        self.last_sent = tokio::time::Instant::now();
        // A birth's buffer is not kept for the heartbeats that follow.
        if self.wbuf.capacity() > 4096 {
            self.wbuf = BytesMut::with_capacity(256);
        }
        Ok(())
    }

    fn pkid(&mut self) -> u16 {
        self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
        self.next_pkid
    }

    pub async fn publish(&mut self, topic: String, qos: QoS, payload: Vec<u8>) -> io::Result<()> {
        let mut p = Publish::new(topic, qos, payload);
        if qos != QoS::AtMostOnce {
            p.pkid = self.pkid();
        }
        self.send(Packet::Publish(p)).await
    }

    pub async fn subscribe(&mut self, filter: String, qos: QoS) -> io::Result<()> {
        let mut s = Subscribe::new(filter, qos);
        s.pkid = self.pkid();
        self.send(Packet::Subscribe(s)).await
    }

    pub async fn ping(&mut self) -> io::Result<()> {
        self.send(Packet::PingReq).await
    }

    /// A clean end: DISCONNECT (the broker discards the Last Will), then the socket.
    pub async fn disconnect(mut self) {
        let _ = self.send(Packet::Disconnect).await;
        let _ = self.stream.shutdown().await;
    }

    /// The next packet the gateway acts on; acknowledges QoS 1 messages and skips the
    /// broker's acknowledgements and ping answers. Cancel-safe: bytes read stay in the
    /// buffer for the next call.
    pub async fn next(&mut self) -> io::Result<Incoming> {
        loop {
            match Packet::read(&mut self.rbuf, MAX_PACKET) {
                Ok(Packet::ConnAck(ack)) => {
                    if ack.code != ConnectReturnCode::Success {
                        return Err(invalid(format!("connection refused: {:?}", ack.code)));
                    }
                    return Ok(Incoming::Up);
                }
                Ok(Packet::Publish(p)) => {
                    if p.qos == QoS::AtLeastOnce {
                        self.send(Packet::PubAck(PubAck::new(p.pkid))).await?;
                    }
                    return Ok(Incoming::Publish(p));
                }
                Ok(_) => continue,
                Err(CodecError::InsufficientBytes(_)) => {}
                Err(e) => return Err(invalid(e)),
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the broker closed the connection",
                ));
            }
        }
    }
}
