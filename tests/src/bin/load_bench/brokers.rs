//! The benchmark's own broker tier, for more gateways than one Mosquitto process may hold
//! here: a core Mosquitto, which the server and the bare subscriber use, with the
//! settings docs/scale-out.md gives for a server's broker, and edge Mosquittos that the
//! gateways connect to, each bridged to the core as Mosquitto bridges are deployed: the
//! gateways' births, deaths (their Last Wills, published by the edge that held the
//! connection), events and heartbeats go up at their own QoS, the server's commands to
//! them come down.
//!
//! One process may open at most as many files as its hard limit (20,000 on this machine,
//! and an unprivileged process cannot raise it), and every connection is one: an edge
//! holds at most that many gateways. Each Mosquitto here is started by this program, so
//! it has this program's limit, which `raise_open_files_limit` raised to the hard limit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use campuswatch_tests::bench::Running;

pub struct Mosquitto {
    pub name: String,
    pub addr: SocketAddr,
    pub process: Running,
    log: PathBuf,
}

impl Mosquitto {
    fn start(dir: &Path, name: &str, config: &str) -> anyhow::Result<Mosquitto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = dir.join(format!("{name}.conf"));
        let log = dir.join(format!("{name}.log"));
        std::fs::write(
            &conf,
            format!(
                "# {name}: written by load-bench\nuser root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nmax_connections -1\n{config}"
            ),
        )?;
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("no mosquitto program (Debian's package mosquitto)")?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let m = Mosquitto {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            process: Running(child),
            log,
        };
        m.wait_listening()?;
        Ok(m)
    }

    fn wait_listening(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {} within 10 s: {}",
                    self.name,
                    self.addr,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// A core broker and `edges` edge brokers bridged to it.
pub struct Tier {
    pub core: Mosquitto,
    pub edges: Vec<Mosquitto>,
}

impl Tier {
    pub fn start(dir: &Path, edges: usize) -> anyhow::Result<Tier> {
        // As docs/scale-out.md says for the server's broker: the server's messages in
        // flight and its session's queue large enough for a county's deaths at once.
        let core = Mosquitto::start(
            dir,
            "core",
            "max_inflight_messages 100\nmax_queued_messages 100000\n",
        )?;
        let edges = (0..edges)
            .map(|i| {
                let bridge = format!(
                    "max_inflight_messages 100\nmax_queued_messages 100000\n\
                     connection core\naddress {core}\nremote_clientid cw-edge-{i}\n\
                     cleansession false\nbridge_protocol_version mqttv311\ntry_private true\n\
                     notifications false\nbridge_max_packet_size 1048576\n\
                     topic cw/v1/+/+/birth out 1\ntopic cw/v1/+/+/death out 1\n\
                     topic cw/v1/+/+/event out 1\ntopic cw/v1/+/+/heartbeat out 0\n\
                     topic cw/v1/+/+/cmd/# in 1\n",
                    core = core.addr
                );
                Mosquitto::start(dir, &format!("edge-{i}"), &bridge)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Tier { core, edges })
    }

    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.core.pid())
            .chain(self.edges.iter().map(Mosquitto::pid))
            .collect()
    }
}
