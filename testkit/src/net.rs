//! Network peers a test controls: a device that goes down and up (on demand or at
//! random), and a TCP proxy standing for a gateway's network link.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::wait::wait_for;

/// A device as a TCP probe sees it: a loopback listener that accepts connections (and
/// closes them), which can be taken down (connections refused) and brought up again at
/// the same address.
pub struct TcpDevice {
    pub addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl TcpDevice {
    /// Listening on a free loopback port.
    pub async fn start() -> TcpDevice {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = l.local_addr().expect("local addr");
        let mut d = TcpDevice { addr, task: None };
        d.serve(l);
        d
    }

    fn serve(&mut self, l: TcpListener) {
        self.task = Some(tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                drop(c);
            }
        }));
    }

    /// Whether it listens.
    pub fn is_up(&self) -> bool {
        self.task.is_some()
    }

    /// Stops listening; once this returns, connections are refused.
    pub async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            // The listener is closed once its task is gone.
            let _ = t.await;
        }
    }

    /// Listens again on the same address.
    pub async fn up(&mut self) {
        if self.task.is_some() {
            return;
        }
        // The port may not be free again at once; retry until it is.
        let addr = self.addr;
        let l = wait_for(
            "the device port to be free again",
            Duration::from_secs(20),
            || async move {
                let s = TcpSocket::new_v4().ok()?;
                s.set_reuseaddr(true).ok()?;
                s.bind(addr).ok()?;
                s.listen(64).ok()
            },
        )
        .await;
        self.serve(l);
    }
}

/// A device whose link drops and comes back at random, each state lasting a time drawn
/// from `phase`, until [`FlappingDevice::settle_up`].
pub struct FlappingDevice {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<TcpDevice>,
}

impl FlappingDevice {
    pub async fn start(phase: Range<Duration>) -> FlappingDevice {
        let mut device = TcpDevice::start().await;
        let addr = device.addr;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                let hold = rand::random_range(phase.clone());
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(hold) => {}
                }
                if device.is_up() {
                    device.down().await;
                } else {
                    device.up().await;
                }
            }
            device.up().await;
            device
        });
        FlappingDevice { addr, stop, task }
    }

    /// Stops the flapping with the device up, and hands it back.
    pub async fn settle_up(self) -> TcpDevice {
        self.stop.cancel();
        self.task.await.expect("flapping device task")
    }
}

/// What a proxied link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// Bytes flow both ways.
    Pass,
    /// Connections stay open but nothing flows (a frozen or silently cut gateway).
    Freeze,
    /// Every connection is closed at once and new ones are refused (a killed gateway,
    /// or a broker that is down as far as the gateway can tell).
    Cut,
}

/// A TCP proxy on a free loopback port in front of `upstream` (a broker), standing for
/// a network link: a gateway's to the broker, or the server's.
pub struct LinkProxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<LinkMode>>,
}

impl LinkProxy {
    /// Passing bytes; [`LinkProxy::set`] changes that.
    pub async fn start(upstream: SocketAddr) -> LinkProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, _) = watch::channel(LinkMode::Pass);
        let mode = Arc::new(tx);
        let m = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *m.borrow() == LinkMode::Cut {
                    drop(client);
                    continue;
                }
                let rx = m.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = pump(cr, sw, rx.clone()) => {}
                        _ = pump(sr, cw, rx) => {}
                    }
                });
            }
        });
        LinkProxy { addr, mode }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients use to reach the MQTT broker through this link.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    pub fn set(&self, mode: LinkMode) {
        self.mode.send_replace(mode);
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut mode: watch::Receiver<LinkMode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let current = *mode.borrow_and_update();
        match current {
            LinkMode::Cut => return,
            LinkMode::Freeze => {
                if mode.changed().await.is_err() {
                    return;
                }
                continue;
            }
            LinkMode::Pass => {}
        }
        tokio::select! {
            changed = mode.changed() => if changed.is_err() { return },
            n = from.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if to.write_all(&buf[..n]).await.is_err() { return },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answers(addr: SocketAddr) -> bool {
        TcpStream::connect(addr).await.is_ok()
    }

    #[tokio::test]
    async fn a_device_refuses_connections_while_down_and_answers_again_when_up() {
        let mut d = TcpDevice::start().await;
        assert!(answers(d.addr).await);
        d.down().await;
        assert!(!d.is_up());
        assert!(!answers(d.addr).await);
        d.up().await;
        assert!(answers(d.addr).await);
    }

    #[tokio::test]
    async fn a_flapping_device_settles_up() {
        let f = FlappingDevice::start(Duration::from_millis(5)..Duration::from_millis(20)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let d = f.settle_up().await;
        assert!(d.is_up());
        assert!(answers(d.addr).await);
    }

    /// An echo server: what comes in goes back out.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = c.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(c: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        c.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn a_link_passes_bytes_and_a_cut_closes_it_and_refuses_new_connections() {
        let link = LinkProxy::start(echo().await).await;
        assert_eq!(link.url(), format!("mqtt://{}", link.addr()));
        let mut c = TcpStream::connect(link.addr()).await.unwrap();
        assert_eq!(round_trip(&mut c).await.unwrap(), b"ping");

        link.set(LinkMode::Freeze);
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        let frozen = tokio::time::timeout(Duration::from_millis(200), c.read_exact(&mut buf)).await;
        assert!(frozen.is_err(), "nothing flows through a frozen link");

        link.set(LinkMode::Cut);
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest))
            .await
            .expect("the cut connection is closed");
        assert!(n.map_or(true, |n| n == 0), "{rest:?}");
        let mut again = TcpStream::connect(link.addr()).await.unwrap();
        assert!(round_trip(&mut again).await.is_err());

        link.set(LinkMode::Pass);
        let mut restored = TcpStream::connect(link.addr()).await.unwrap();
        assert_eq!(round_trip(&mut restored).await.unwrap(), b"ping");
    }
}
