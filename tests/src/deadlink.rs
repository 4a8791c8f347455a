//! What the dead-link benchmark (`deadlink-bench`) and the lossy-link test share: a link
//! that loses packets (a network namespace for the peers behind a veth pair, nftables
//! dropping a share of what arrives on either end), the agent program run with its
//! probes logged, and its device events read on MQTT.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use campuswatch_protocol::{decode, CampusTopic, DeviceKind, DeviceState, Message, TOPIC_ROOT};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::broadcast;

use crate::bench::{progress, Running};

/// Something the agent did, when this process learnt of it.
#[derive(Debug, Clone)]
pub enum Seen {
    /// One probe, from the agent's log (written when the probe ended).
    Probe {
        device: String,
        ok: bool,
        latency: Duration,
        at: Instant,
    },
    /// A device event, as it arrived on MQTT.
    Transition {
        device: String,
        to: DeviceState,
        cause: Option<String>,
        at: Instant,
    },
}

/// A `Duration` as `{:?}` prints it (`1.5s`, `2.3ms`, `850µs`, `12ns`).
pub fn parse_debug_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "ms" => n / 1e3,
        "µs" | "us" => n / 1e6,
        "ns" => n / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// `(device, ok, latency)` of a `Probed.` line of the agent's log, e.g.
/// `… DEBUG device{device=cam-1}: campuswatch_agent::scheduler: Probed. status="ok" latency=1.2ms cause=None`.
pub fn parse_probe_line(line: &str) -> Option<(String, bool, Duration)> {
    let rest = line.split_once(" Probed. ")?.1;
    let device = line.split_once("device{device=")?.1.split('}').next()?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim_matches('"'))
    };
    let ok = field("status")? != "fail";
    let latency = field("latency").and_then(parse_debug_duration)?;
    Some((device.to_string(), ok, latency))
}

/// The agent program `exe` running `config`, with its probes logged: each probe, and
/// each line that is not a device's own (the agent's trouble, if any) told on stderr
/// with `progress`, goes to `seen`.
pub fn spawn_agent(
    exe: &Path,
    config: &Path,
    seen: broadcast::Sender<Seen>,
) -> anyhow::Result<Running> {
    let mut child = Command::new(exe)
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn,campuswatch_agent::scheduler=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let stderr = child.stderr.take().context("the agent's stderr")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some((device, ok, latency)) = parse_probe_line(&line) {
                let _ = seen.send(Seen::Probe {
                    device,
                    ok,
                    latency,
                    at: Instant::now(),
                });
            } else if !line.contains("campuswatch_agent::scheduler") {
                progress(format!("agent: {line}"));
            }
        }
    });
    Ok(Running(child))
}

/// One `[[devices]]` block of the agent's config: everything at the kind's defaults but
/// `retry_interval`, if given.
pub struct DeviceBlock {
    pub id: String,
    pub kind: DeviceKind,
    /// The probe as a TOML inline table.
    pub probe: String,
    pub retry_interval: Option<Duration>,
}

impl DeviceBlock {
    /// A device of `kind` whose peer is at `peer`: an alarm link is a DC-09 link test
    /// towards a receiver; a camera is probed over RTSP (DESCRIBE every probe, a stream
    /// check every 5 min).
    pub fn new(
        id: String,
        kind: DeviceKind,
        peer: SocketAddr,
        retry_interval: Option<Duration>,
    ) -> Self {
        let probe = match kind {
            DeviceKind::Alarm => format!(
                "{{ type = \"dc09\", target = \"{peer}\", account = \"{ACCOUNT}\", receiver = \"0\" }}"
            ),
            DeviceKind::Camera => format!("{{ type = \"rtsp\", url = \"rtsp://{peer}/cam1\" }}"),
        };
        Self {
            id,
            kind,
            probe,
            retry_interval,
        }
    }
}

/// The DC-09 account the receivers know.
pub const ACCOUNT: &str = "1234";

/// The county of the campuses here.
pub const COUNTY: &str = "150102";

/// A campus id of its own for this process, so that a broker shared with other tests
/// (Mosquitto in CI) tells its events apart.
pub fn campus() -> String {
    format!("deadlink-{}", std::process::id())
}

/// The agent's config in `dir`: `campus` of [`COUNTY`] reporting to `broker`, with
/// `devices`; its path.
pub fn write_config(
    dir: &Path,
    campus: &str,
    broker: SocketAddr,
    devices: &[DeviceBlock],
) -> anyhow::Result<PathBuf> {
    let mut toml = format!(
        "campus = \"{campus}\"\nregion = \"{COUNTY}\"\nstate_dir = \"{}\"\n\n[mqtt]\nurl = \"mqtt://{broker}\"\n",
        dir.join("state").display()
    );
    for d in devices {
        toml.push_str(&format!(
            "\n[[devices]]\nid = \"{}\"\nkind = \"{}\"\nprobe = {}\n",
            d.id,
            d.kind.as_str(),
            d.probe
        ));
        if let Some(r) = d.retry_interval {
            toml.push_str(&format!("retry_interval = \"{}s\"\n", r.as_secs()));
        }
    }
    let path = dir.join("agent.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// Subscribes to `campus`'s events on the broker; each device event goes to `seen`.
pub async fn watch_events(
    broker: SocketAddr,
    campus: &str,
    seen: broadcast::Sender<Seen>,
) -> anyhow::Result<()> {
    let mut o = MqttOptions::new(
        format!("deadlink-{}", rand::random::<u32>()),
        broker.ip().to_string(),
        broker.port(),
    );
    o.set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 256);
    client
        .subscribe(
            format!("{TOPIC_ROOT}/{COUNTY}/{campus}/event"),
            QoS::AtLeastOnce,
        )
        .await?;
    let (subscribed, ready) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed = Some(subscribed);
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let at = Instant::now();
                    let Ok(topic) = CampusTopic::parse(&p.topic) else {
                        continue;
                    };
                    if let Ok(Message::Event(e)) = decode(&topic, &p.payload) {
                        let _ = seen.send(Seen::Transition {
                            device: e.device.to_string(),
                            to: e.to,
                            cause: e.cause,
                            at,
                        });
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    progress(format!("the event subscriber lost the broker: {e}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .context("no SUBACK from the broker")??;
    Ok(())
}

/// `program`, run in the link's network namespace if there is one (`ip netns exec` execs
/// it, so the child's pid is the program's).
pub fn in_netns(link: Option<&LossyLink>, program: &Path) -> Command {
    match link {
        Some(l) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &l.netns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A network namespace for the peers, reached over a veth pair whose two ends each drop
/// `loss` % of the packets arriving on them. Removed when dropped.
pub struct LossyLink {
    pub loss: u32,
    pub netns: String,
    host_if: String,
    peer_if: String,
    /// The nftables table in the gateway's (this process's) namespace, on `host_if` only.
    host_table: String,
    /// The peers' address, in the namespace.
    pub peer_addr: String,
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{program} (iproute2 and nftables are needed, as root)"))?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(text.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Drops `loss` % of the packets that arrive on `dev`, counting them all and the dropped.
fn ingress_loss_table(table: &str, dev: &str, loss: u32) -> String {
    format!(
        "table netdev {table} {{\n  chain ingress {{\n    type filter hook ingress device \"{dev}\" priority 0; policy accept;\n    counter comment \"seen\"\n    numgen random mod 100 < {loss} counter drop comment \"dropped\"\n  }}\n}}\n"
    )
}

/// `(seen, dropped)` packets of a table made by [`ingress_loss_table`].
fn table_counters(listing: &str) -> (u64, u64) {
    let count = |comment: &str| {
        listing
            .lines()
            .filter(|l| l.contains(comment))
            .filter_map(|l| {
                l.split("counter packets ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    (count("comment \"seen\""), count("comment \"dropped\""))
}

impl LossyLink {
    /// A link that loses `loss` % of the packets each way (none at 0); `index` tells
    /// this process's links apart. Needs root, iproute2 and nftables.
    pub fn new(loss: u32, index: u32) -> anyhow::Result<LossyLink> {
        let tag = format!("{:05x}{index}", std::process::id() & 0xf_ffff);
        // 198.18.0.0/15 is set aside for testing network equipment: a /30 per link, one
        // that no interface here has yet (other links, other runs).
        let taken = run("ip", &["-4", "-o", "addr", "show"], None)?;
        let (a, b) = std::iter::repeat_with(|| (rand::random::<u8>(), rand::random::<u8>() & 0xfc))
            .take(100)
            .find(|(a, b)| !taken.contains(&format!(" 198.18.{a}.{}/", b + 1)))
            .context("no free /30 in 198.18.0.0/16")?;
        let link = LossyLink {
            loss,
            netns: format!("cw-loss-{tag}"),
            host_if: format!("cwlh{tag}"),
            peer_if: format!("cwlp{tag}"),
            host_table: format!("cw_loss_{tag}"),
            peer_addr: format!("198.18.{a}.{}", b + 2),
        };
        let host_addr = format!("198.18.{a}.{}/30", b + 1);
        let peer_cidr = format!("{}/30", link.peer_addr);
        let ns = link.netns.as_str();
        run("ip", &["netns", "add", ns], None)?;
        run(
            "ip",
            &[
                "link",
                "add",
                &link.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &link.peer_if,
            ],
            None,
        )?;
        run("ip", &["link", "set", &link.peer_if, "netns", ns], None)?;
        run(
            "ip",
            &["addr", "add", &host_addr, "dev", &link.host_if],
            None,
        )?;
        // One TCP segment a packet, as on a real link: with segmentation offload a veth
        // carries 64 KB at a time, and one drop would lose dozens of segments.
        run(
            "ip",
            &["link", "set", &link.host_if, "gso_max_segs", "1", "up"],
            None,
        )?;
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", ns, "ip"];
            all.extend(args);
            run("ip", &all, None)
        };
        in_ns(&["addr", "add", &peer_cidr, "dev", &link.peer_if])?;
        in_ns(&["link", "set", &link.peer_if, "gso_max_segs", "1", "up"])?;
        in_ns(&["link", "set", "lo", "up"])?;
        if loss > 0 {
            run(
                "nft",
                &["-f", "-"],
                Some(&ingress_loss_table(&link.host_table, &link.host_if, loss)),
            )?;
            run(
                "ip",
                &["netns", "exec", ns, "nft", "-f", "-"],
                Some(&ingress_loss_table("cw_loss", &link.peer_if, loss)),
            )?;
        }
        Ok(link)
    }

    /// Packets seen and dropped in both directions, and the TCP segments the peers
    /// retransmitted, so far.
    pub fn counters(&self) -> anyhow::Result<LinkCounters> {
        let mut c = LinkCounters::default();
        if self.loss > 0 {
            let (s1, d1) = table_counters(&run(
                "nft",
                &["list", "table", "netdev", &self.host_table],
                None,
            )?);
            let (s2, d2) = table_counters(&run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &self.netns,
                    "nft",
                    "list",
                    "table",
                    "netdev",
                    "cw_loss",
                ],
                None,
            )?);
            (c.seen, c.dropped) = (s1 + s2, d1 + d2);
        }
        let snmp = run(
            "ip",
            &["netns", "exec", &self.netns, "cat", "/proc/net/snmp"],
            None,
        )?;
        let tcp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Tcp:")).collect();
        if let [names, values] = tcp[..] {
            let field = |name: &str| {
                names
                    .split_whitespace()
                    .position(|n| n == name)
                    .and_then(|i| values.split_whitespace().nth(i)?.parse().ok())
                    .unwrap_or(0)
            };
            c.out_segs = field("OutSegs");
            c.retrans_segs = field("RetransSegs");
        }
        Ok(c)
    }
}

impl Drop for LossyLink {
    fn drop(&mut self) {
        let _ = run(
            "nft",
            &["delete", "table", "netdev", &self.host_table],
            None,
        );
        // Deleting the namespace deletes its end of the pair, and with it ours.
        let _ = run("ip", &["netns", "del", &self.netns], None);
        let _ = run("ip", &["link", "del", &self.host_if], None);
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct LinkCounters {
    /// Packets that arrived on either end of the pair.
    pub seen: u64,
    /// Of those, dropped.
    pub dropped: u64,
    /// TCP segments the peers sent, and how many of them were retransmissions.
    pub out_segs: u64,
    pub retrans_segs: u64,
}

impl std::ops::Sub for LinkCounters {
    type Output = LinkCounters;
    fn sub(self, o: LinkCounters) -> LinkCounters {
        LinkCounters {
            seen: self.seen - o.seen,
            dropped: self.dropped - o.dropped,
            out_segs: self.out_segs - o.out_segs,
            retrans_segs: self.retrans_segs - o.retrans_segs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_line_of_the_agents_log_is_read() {
        let line = "2026-12-06T09:40:00.123456Z DEBUG device{device=camera-killed-quick-03}: campuswatch_agent::scheduler: Probed. status=\"fail\" latency=5.001234s cause=Some(\"timed out after 5s\")";
        let (device, ok, latency) = parse_probe_line(line).unwrap();
        assert_eq!(device, "camera-killed-quick-03");
        assert!(!ok);
        assert_eq!(latency, Duration::from_secs_f64(5.001234));
        let ok_line = "… DEBUG device{device=a-1}: campuswatch_agent::scheduler: Probed. status=\"ok\" latency=850µs cause=None";
        assert_eq!(
            parse_probe_line(ok_line).unwrap().2,
            Duration::from_micros(850)
        );
        assert!(
            parse_probe_line("… INFO device{device=a-1}: Device link changed state.").is_none()
        );
    }

    #[test]
    fn nftables_counters_are_summed_by_comment() {
        let listing = "table netdev t {\n\tchain ingress {\n\t\tcounter packets 120 bytes 9000 comment \"seen\"\n\t\tnumgen random mod 100 < 5 counter packets 7 bytes 400 drop comment \"dropped\"\n\t}\n}\n";
        assert_eq!(table_counters(listing), (120, 7));
    }
}
