//! A private Mosquitto for the broker security tests: TLS with certificates made at test
//! time, a password file, the ACL of docs/broker-security.md, and a second listener that
//! authenticates clients by certificate. It runs in the foreground on free ports and is
//! killed by its PID when dropped; its log is kept so tests can see what it refused.
//! And a plain one that a test can restart on the same port ([`RestartableMosquitto`]).
//!
//! Outside CI a machine without Mosquitto says the tests were not run; in CI (`CI` set)
//! that is a failure, so `.ci/run` must install it.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The ACL of docs/broker-security.md: a campus (user name = campus id, from the password
/// file or the client certificate's CN) writes only its own topics; the server reads every
/// campus topic and writes its own state.
pub const ACL: &str = "\
# Every campus: only its own topics (birth, death, heartbeat, event), in any region,
# and the server's rebirth requests to it.
pattern write cw/v1/+/%u/birth
pattern write cw/v1/+/%u/death
pattern write cw/v1/+/%u/heartbeat
pattern write cw/v1/+/%u/event
pattern read cw/v1/+/%u/cmd/rebirth

# The server: reads every campus, writes its retained online/offline state and the
# rebirth requests.
user server
topic read cw/v1/#
topic write cw/v1/server/+/state
topic write cw/v1/+/+/cmd/rebirth
";

/// Which CA signs a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The CA the broker and the clients trust (`ca.crt`).
    Trusted,
    /// A CA nobody was told to trust.
    Rogue,
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// 2020 to 2100.
    Current,
    /// During 2020 only: expired.
    Expired,
}

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Two CAs (a trusted one and a rogue one) that issue certificates into a directory.
pub struct Pki {
    dir: PathBuf,
    trusted: Issuer<'static, KeyPair>,
    rogue: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

impl Pki {
    /// Makes both CAs and writes the trusted one to `dir/ca.crt` and the rogue one to
    /// `dir/rogue-ca.crt`.
    pub fn new(dir: &Path) -> Pki {
        let (trusted_pem, trusted) = ca("campuswatch");
        let (rogue_pem, rogue) = ca("rogue");
        std::fs::write(dir.join("ca.crt"), trusted_pem).expect("write ca.crt");
        std::fs::write(dir.join("rogue-ca.crt"), rogue_pem).expect("write rogue-ca.crt");
        Pki {
            dir: dir.to_path_buf(),
            trusted,
            rogue,
        }
    }

    /// The trusted CA's certificate: what `mqtt.ca_file` points at.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The rogue CA's certificate.
    pub fn rogue_ca_file(&self) -> PathBuf {
        self.dir.join("rogue-ca.crt")
    }

    /// A broker certificate naming `names` (DNS names or IP addresses).
    pub fn broker(&self, stem: &str, names: &[&str], by: Signer, validity: Validity) -> CertFiles {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("broker names");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(stem, params, by, validity)
    }

    /// A client certificate whose CN is `cn` (a campus id, or `server`).
    pub fn client(&self, stem: &str, cn: &str, by: Signer, validity: Validity) -> CertFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(stem, params, by, validity)
    }

    fn issue(
        &self,
        stem: &str,
        mut params: CertificateParams,
        by: Signer,
        validity: Validity,
    ) -> CertFiles {
        let (from, to) = match validity {
            Validity::Current => ((2020, 1, 1), (2100, 1, 1)),
            Validity::Expired => ((2020, 1, 1), (2021, 1, 1)),
        };
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let issuer = match by {
            Signer::Trusted => &self.trusted,
            Signer::Rogue => &self.rogue,
        };
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, issuer).expect("certificate");
        let files = CertFiles {
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).expect("write certificate");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        set_mode(&files.key, 0o600);
        files
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The programs a private Mosquitto needs, or `None` (with a message) outside CI.
pub fn programs() -> Option<(PathBuf, PathBuf)> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    // Debian installs the broker in sbin, which a developer's PATH may lack.
    dirs.extend(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    match (find("mosquitto"), find("mosquitto_passwd")) {
        (Some(broker), Some(passwd)) => Some((broker, passwd)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "Mosquitto is not installed: .ci/run must install Debian's mosquitto (broker security tests)"
            );
            eprintln!("Mosquitto not installed: broker security tests not run (see .ci/run)");
            None
        }
    }
}

/// The uid and gid of the `mosquitto` user, which the broker drops to when started as root.
fn mosquitto_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"mosquitto") && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// Hands `dir` and everything in it to the `mosquitto` user, so the broker can still read
/// its files after dropping root. Not being root (then the broker runs as us) is fine.
fn give_to_mosquitto(dir: &Path) {
    let Some((uid, gid)) = mosquitto_user() else {
        return;
    };
    let mut paths = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        paths.extend(entries.flatten().map(|e| e.path()));
    }
    for p in paths {
        if std::os::unix::fs::chown(&p, Some(uid), Some(gid)).is_err() {
            return;
        }
    }
}

fn free_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind port 0")
}

/// A running private Mosquitto. Killed when dropped.
pub struct PrivateMosquitto {
    child: Child,
    /// TLS listener authenticating by user name and password.
    pub password_port: u16,
    /// TLS listener authenticating by client certificate (CN = user name).
    pub cert_port: u16,
    /// Mosquitto's log (`log_dest file`, `log_type all`).
    log_file: PathBuf,
    /// Its standard error.
    early: Arc<Mutex<Vec<String>>>,
}

impl PrivateMosquitto {
    /// Starts Mosquitto with its files in `dir`: the broker certificate `broker`, the
    /// trusted CA of `pki` for client certificates, `users` in the password file and
    /// [`ACL`]. `None` outside CI when Mosquitto is not installed.
    pub fn start(
        dir: &Path,
        pki: &Pki,
        broker: &CertFiles,
        users: &[(&str, &str)],
    ) -> Option<PrivateMosquitto> {
        let (mosquitto, mosquitto_passwd) = programs()?;
        let passwd = dir.join("passwd");
        for (i, (user, password)) in users.iter().enumerate() {
            let mut cmd = Command::new(&mosquitto_passwd);
            cmd.arg("-b");
            if i == 0 {
                cmd.arg("-c");
            }
            let status = cmd
                .arg(&passwd)
                .arg(user)
                .arg(password)
                .stdout(Stdio::null())
                .status()
                .expect("mosquitto_passwd runs");
            assert!(status.success(), "mosquitto_passwd failed for {user}");
        }
        let acl = dir.join("acl");
        std::fs::write(&acl, ACL).expect("write acl");
        for f in [&passwd, &acl] {
            set_mode(f, 0o600);
        }
        // Both ports are taken from the system, then handed to the broker.
        let (a, b) = (free_port(), free_port());
        let password_port = a.local_addr().expect("port").port();
        let cert_port = b.local_addr().expect("port").port();
        drop((a, b));
        let log_file = dir.join("mosquitto.log");
        let tls = |ca: &Path| {
            format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                ca.display(),
                broker.cert.display(),
                broker.key.display()
            )
        };
        let conf = format!(
            "per_listener_settings false\n\
             allow_anonymous false\n\
             password_file {passwd}\n\
             acl_file {acl}\n\
             persistence false\n\
             log_dest file {log_file}\n\
             log_type all\n\
             connection_messages true\n\
             \n\
             listener {password_port} 127.0.0.1\n\
             {tls_password}\
             \n\
             listener {cert_port} 127.0.0.1\n\
             {tls_cert}\
             require_certificate true\n\
             use_identity_as_username true\n",
            passwd = passwd.display(),
            acl = acl.display(),
            log_file = log_file.display(),
            tls_password = tls(&pki.ca_file()),
            tls_cert = tls(&pki.ca_file()),
        );
        let conf_file = dir.join("mosquitto.conf");
        std::fs::write(&conf_file, conf).expect("write mosquitto.conf");
        give_to_mosquitto(dir);
        let mut child = Command::new(&mosquitto)
            .arg("-c")
            .arg(&conf_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto starts");
        // What it says before its log file is open (a configuration it cannot load). Its
        // log goes to a file, not a pipe: Mosquitto flushes the file line by line.
        let early = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let early = early.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    early.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        let mut broker = PrivateMosquitto {
            child,
            password_port,
            cert_port,
            log_file,
            early,
        };
        broker.wait_until_listening();
        Some(broker)
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = [self.password_port, self.cert_port].iter().all(|p| {
                TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], *p)),
                    Duration::from_millis(200),
                )
                .is_ok()
            });
            if up {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Mosquitto exited ({status}) before listening:\n{}",
                    self.log().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "Mosquitto does not listen on {} and {} after 10 s:\n{}",
                self.password_port,
                self.cert_port,
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `mqtts://127.0.0.1:PORT` of the password listener.
    pub fn password_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.password_port)
    }

    /// `mqtts://127.0.0.1:PORT` of the client-certificate listener.
    pub fn cert_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.cert_port)
    }

    /// Every line Mosquitto logged so far (its standard error first).
    pub fn log(&self) -> Vec<String> {
        let mut lines = self.early.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Ok(text) = std::fs::read_to_string(&self.log_file) {
            lines.extend(text.lines().map(str::to_string));
        }
        lines
    }

    /// Waits until a log line contains every one of `parts`; returns it. Panics with the
    /// whole log after 15 s.
    pub async fn wait_for_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let log = self.log();
            if let Some(line) = log.iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "Mosquitto did not log {parts:?} within 15 s; its log:\n{}",
                log.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PrivateMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain (TCP, anonymous) Mosquitto of a test's own, on a free port, that the test can
/// stop and start again on the same port with the same configuration and persistence
/// file: a broker restart as `systemctl restart mosquitto` does it (`persistence true`,
/// as Debian configures it), or a broker crash. `None` outside CI when Mosquitto is not
/// installed. Killed when dropped.
pub struct RestartableMosquitto {
    program: PathBuf,
    conf: PathBuf,
    log_file: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl RestartableMosquitto {
    /// Starts it with its configuration, persistence and log in `dir`.
    pub fn start(dir: &Path) -> Option<RestartableMosquitto> {
        let (program, _) = programs()?;
        let port = free_port().local_addr().expect("port").port();
        let log_file = dir.join("mosquitto.log");
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 persistence true\n\
                 persistence_location {dir}/\n\
                 log_dest file {log}\n\
                 log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
                 connection_messages true\n",
                dir = dir.display(),
                log = log_file.display(),
            ),
        )
        .expect("write mosquitto.conf");
        give_to_mosquitto(dir);
        let mut broker = RestartableMosquitto {
            program,
            conf,
            log_file,
            port,
            child: None,
        };
        broker.start_again();
        Some(broker)
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// A clean stop (SIGTERM): Mosquitto saves its sessions, queued messages and retained
    /// messages to its persistence file and exits. Returns once it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = i32::try_from(child.id()).expect("pid");
            // SAFETY: kill(2) with a pid of a child we started and have not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }

    /// A crash (SIGKILL): nothing is saved since the last save.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, from its persistence file; returns once it
    /// accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "Mosquitto is already running");
        let mut child = Command::new(&self.program)
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "Mosquitto exited ({status}) before listening on {addr}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "Mosquitto does not listen on {addr} after 10 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for RestartableMosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}
