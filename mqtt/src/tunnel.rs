//! TLS to the broker, carried by this crate rather than by the MQTT client.
//!
//! rumqttc's own TLS links rustls-webpki 0.102 (for an error type) and rustls-pemfile (for
//! its PEM configuration), both out of maintenance, into every binary. So rumqttc is built
//! without TLS and speaks MQTT over a Unix socket in a directory only this process's user
//! may enter (mode 0700); each connection made there is carried to the broker over TCP and
//! TLS by tokio-rustls, with the rustls configuration of [`crate::tls`] (ring, the broker's
//! chain and host name verified by rustls-webpki 0.103).
//!
//! One socket per login (URL, credentials, files) serves every client of the process that
//! uses that login, on a thread of its own, so a client's runtime may come and go (tests
//! run one per test) without taking the carrier with it. How the last attempt of a login
//! failed (TCP refused, certificate refused, TLS alert) is kept for
//! [`crate::BrokerLogin::diagnose`]: rumqttc only sees its socket close.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::runtime::Handle;
use tokio_rustls::TlsConnector;

use crate::{BrokerLogin, Endpoint};

/// How long the TCP connection and the TLS handshake may take together.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Prefix of the per-process socket directories in the temporary directory.
const DIR_PREFIX: &str = "campuswatch-mqtt-";

/// How the last connection attempt of a login ended before MQTT could begin, or while
/// TLS carried it.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// TLS refused something (a certificate, an alert from the broker).
    Tls(rustls::Error),
    /// The network: refused, unreachable, timed out, closed.
    Io(io::ErrorKind, String),
}

impl Failure {
    fn from_io(e: io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Failure::Tls(tls.clone()),
            None => Failure::Io(e.kind(), e.to_string()),
        }
    }

    /// The failure as the I/O error rumqttc itself would have reported.
    pub(crate) fn to_io(&self) -> io::Error {
        match self {
            Failure::Tls(e) => io::Error::new(io::ErrorKind::InvalidData, e.clone()),
            Failure::Io(kind, text) => io::Error::new(*kind, text.clone()),
        }
    }
}

/// One login's socket: where rumqttc connects, and what the carrier needs.
struct Route {
    socket: PathBuf,
    endpoint: Endpoint,
    /// Replaced when the login's files are read again (a reload).
    config: Mutex<Arc<rustls::ClientConfig>>,
    /// `None` after an attempt whose TLS handshake succeeded.
    failure: Mutex<Option<Failure>>,
}

impl Route {
    fn set_failure(&self, f: Option<Failure>) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = f;
    }
}

struct Carrier {
    dir: PathBuf,
    runtime: Handle,
    routes: Mutex<HashMap<BrokerLogin, Arc<Route>>>,
}

fn carrier() -> io::Result<&'static Carrier> {
    static CARRIER: OnceLock<Result<Carrier, String>> = OnceLock::new();
    CARRIER
        .get_or_init(|| start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

fn start() -> io::Result<Carrier> {
    let dir = private_dir()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("cw-mqtt-tls".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(Carrier {
        dir,
        runtime: handle,
        routes: Mutex::new(HashMap::new()),
    })
}

/// A new directory that only this user may enter, in the temporary directory. Those left
/// by processes that are gone are removed first.
fn private_dir() -> io::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    remove_stale(&tmp);
    let pid = std::process::id();
    let mut last = None;
    for attempt in 0..16u32 {
        let salt = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(attempt);
            h.finish()
        };
        let dir = tmp.join(format!("{DIR_PREFIX}{pid}-{salt:016x}"));
        // create, not create_all: a name someone else made first is never used.
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no directory")))
}

fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            // Someone else's directory is not ours to remove, and the call fails.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The socket rumqttc connects to for `login`, whose TLS configuration is `config`.
pub(crate) fn socket(
    login: &BrokerLogin,
    endpoint: Endpoint,
    config: rustls::ClientConfig,
) -> io::Result<PathBuf> {
    let carrier = carrier()?;
    let mut routes = carrier
        .routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(route) = routes.get(login) {
        *route.config.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        return Ok(route.socket.clone());
    }
    let socket = carrier.dir.join(format!("{}.sock", routes.len()));
    let listener = std::os::unix::net::UnixListener::bind(&socket)?;
    listener.set_nonblocking(true)?;
    let route = Arc::new(Route {
        socket: socket.clone(),
        endpoint,
        config: Mutex::new(Arc::new(config)),
        failure: Mutex::new(None),
    });
    routes.insert(login.clone(), route.clone());
    carrier.runtime.spawn(async move {
        match UnixListener::from_std(listener) {
            Ok(listener) => serve(listener, route).await,
            Err(e) => route.set_failure(Some(Failure::from_io(e))),
        }
    });
    Ok(socket)
}

/// How the last attempt with `login` failed, if it did before or during TLS.
pub(crate) fn failure(login: &BrokerLogin) -> Option<Failure> {
    let carrier = carrier().ok()?;
    let routes = carrier
        .routes
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let route = routes.get(login)?;
    let failure = route
        .failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    failure
}

async fn serve(listener: UnixListener, route: Arc<Route>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(carry(client, route.clone()));
            }
            // Out of descriptors, say: rumqttc's attempt fails and it tries again.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn carry(mut client: UnixStream, route: Arc<Route>) {
    let config = route
        .config
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut broker = match tokio::time::timeout(OPEN_TIMEOUT, open(&route.endpoint, config)).await {
        Ok(Ok(stream)) => {
            route.set_failure(None);
            stream
        }
        Ok(Err(e)) => return route.set_failure(Some(Failure::from_io(e))),
        Err(_) => {
            return route.set_failure(Some(Failure::Io(
                io::ErrorKind::TimedOut,
                "no TLS connection within 10 s".into(),
            )))
        }
    };
    // A TLS alert after the handshake (TLS 1.3 judges client certificates then) ends the
    // copy with the error; it is kept before rumqttc sees its socket close.
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut broker).await {
        route.set_failure(Some(Failure::from_io(e)));
    }
}

async fn open(
    endpoint: &Endpoint,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    TlsConnector::from(config).connect(name, tcp).await
}
