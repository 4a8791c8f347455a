//! Simulated campus devices for the demo: real listeners on loopback that the demo
//! switches off and on. Alarm devices are TCP listeners (a faulted one stops listening,
//! so a probe gets "connection refused"); cameras answer HTTP on one shared server (a
//! faulted camera answers 503), so the agents' real TCP and HTTP probes judge them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

/// One alarm device: a TCP listener that can be taken down and brought back on the
/// same port.
pub struct AlarmDevice {
    pub addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Rebinding the same port right after closing it must work.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

fn serve(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Accept and close: a connect probe only needs the handshake.
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    })
}

impl AlarmDevice {
    pub async fn start() -> std::io::Result<AlarmDevice> {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        Ok(AlarmDevice {
            addr,
            task: Some(serve(listener)),
        })
    }

    pub fn is_up(&self) -> bool {
        self.task.is_some()
    }

    /// Stops listening: probes are refused.
    pub fn fail(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub fn recover(&mut self) {
        if self.task.is_none() {
            match listen(self.addr) {
                Ok(l) => self.task = Some(serve(l)),
                Err(e) => {
                    tracing::debug!(addr = %self.addr, error = %e, "Demo alarm device could not listen again yet.")
                }
            }
        }
    }
}

/// The cameras of every simulated campus, behind one HTTP server:
/// `GET /cam/{campus}/{camera}` answers 200, or 503 while the camera is faulted.
#[derive(Clone, Default)]
pub struct CameraFarm {
    faulted: Arc<Mutex<HashSet<String>>>,
}

impl CameraFarm {
    pub async fn start(self) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/cam/{campus}/{camera}", get(camera))
            .with_state(self);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((addr, task))
    }

    fn key(campus: &str, camera: &str) -> String {
        format!("{campus}/{camera}")
    }

    pub fn set_faulted(&self, campus: &str, camera: &str, faulted: bool) {
        let mut f = self.faulted.lock().unwrap_or_else(|p| p.into_inner());
        if faulted {
            f.insert(Self::key(campus, camera));
        } else {
            f.remove(&Self::key(campus, camera));
        }
    }
}

async fn camera(
    State(farm): State<CameraFarm>,
    Path((campus, camera)): Path<(String, String)>,
) -> (StatusCode, &'static str) {
    let faulted = farm
        .faulted
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&CameraFarm::key(&campus, &camera));
    if faulted {
        (StatusCode::SERVICE_UNAVAILABLE, "no video")
    } else {
        (StatusCode::OK, "ok")
    }
}
