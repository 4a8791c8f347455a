//! Gateways in worker processes, for more connections than one process may open (its
//! hard open-files limit, 20,000 on this machine). Each worker is this program again with
//! `--worker K`: it plays the gateways whose index is K modulo the number of workers,
//! reads orders on its standard input and writes answers and its counters on its
//! standard output, one line each:
//!
//! - order `{request} {down DEVICE|kill|freeze|resume|reconnect|disconnect} {gateway}`;
//! - answer `R {request} {unix time in ns|-}` (when the failure happened, or `-`);
//! - counters `S {connected} {births} {heartbeats} {events} {rebirths asked} {lost}`
//!   every half second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, oneshot};

use super::{Control, Fleet};
use campuswatch_tests::bench::progress;

/// How the benchmark reaches one gateway: in this process, or in a worker.
pub enum Gate {
    Local(mpsc::UnboundedSender<Control>),
    Remote {
        workers: Arc<Workers>,
        worker: usize,
        gateway: usize,
    },
}

impl Gate {
    pub fn send(&self, control: Control) -> Result<(), ()> {
        match self {
            Gate::Local(tx) => tx.send(control).map_err(|_| ()),
            Gate::Remote {
                workers,
                worker,
                gateway,
            } => workers.order(*worker, *gateway, control),
        }
    }
}

/// Where an answer goes.
enum Reply {
    At(oneshot::Sender<Instant>),
    MaybeAt(oneshot::Sender<Option<Instant>>),
    Done(oneshot::Sender<()>),
}

pub struct Workers {
    inputs: Vec<mpsc::UnboundedSender<String>>,
    pending: Mutex<HashMap<u64, Reply>>,
    next: AtomicU64,
    pids: Vec<u32>,
    _children: Mutex<Vec<Child>>,
}

fn unix_ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()
}

/// The instant of this process's clock that was `ns` since 1970 by the wall clock.
fn instant_of(ns: u128) -> Instant {
    let now_ns = unix_ns(SystemTime::now());
    let ago = Duration::from_nanos(now_ns.saturating_sub(ns) as u64);
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

impl Workers {
    /// Starts `count` workers with `args` (this program's own, plus `--worker K`),
    /// adding their counters into `fleet`.
    pub fn start(count: usize, args: &[String], fleet: Arc<Fleet>) -> anyhow::Result<Arc<Workers>> {
        let exe = std::env::current_exe()?;
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut pids = Vec::new();
        let mut children = Vec::new();
        for k in 0..count {
            let mut child = tokio::process::Command::new(&exe)
                .args(args)
                .arg("--worker")
                .arg(k.to_string())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("starting a worker")?;
            pids.push(child.id().context("worker pid")?);
            let stdin = child.stdin.take().context("worker stdin")?;
            outputs.push(child.stdout.take().context("worker stdout")?);
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_orders(stdin, rx));
            inputs.push(tx);
            children.push(child);
        }
        let workers = Arc::new(Workers {
            inputs,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            pids,
            _children: Mutex::new(children),
        });
        for out in outputs {
            tokio::spawn(read_answers(workers.clone(), out, fleet.clone()));
        }
        Ok(workers)
    }

    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    fn order(&self, worker: usize, gateway: usize, control: Control) -> Result<(), ()> {
        let request = self.next.fetch_add(1, Ordering::Relaxed);
        let (what, reply) = match control {
            Control::DeviceDown { device, reply } => {
                (format!("down {device}"), Some(Reply::MaybeAt(reply)))
            }
            Control::Kill { reply } => ("kill".into(), Some(Reply::At(reply))),
            Control::Freeze { reply } => ("freeze".into(), Some(Reply::At(reply))),
            Control::Resume => ("resume".into(), None),
            Control::Reconnect => ("reconnect".into(), None),
            Control::Disconnect { done } => ("disconnect".into(), Some(Reply::Done(done))),
        };
        if let Some(r) = reply {
            super::lock(&self.pending).insert(request, r);
        }
        self.inputs[worker]
            .send(format!("{request} {what} {gateway}\n"))
            .map_err(|_| ())
    }

    fn answer(&self, request: u64, at: Option<u128>) {
        let Some(reply) = super::lock(&self.pending).remove(&request) else {
            return;
        };
        match reply {
            Reply::At(tx) => {
                if let Some(ns) = at {
                    let _ = tx.send(instant_of(ns));
                }
            }
            Reply::MaybeAt(tx) => {
                let _ = tx.send(at.map(instant_of));
            }
            Reply::Done(tx) => {
                let _ = tx.send(());
            }
        }
    }
}

async fn write_orders(mut stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<String>) {
    while let Some(line) = rx.recv().await {
        if stdin.write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_answers(workers: Arc<Workers>, out: tokio::process::ChildStdout, fleet: Arc<Fleet>) {
    let mut lines = BufReader::new(out).lines();
    let mut last = [0u64; 6];
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("R") => {
                let request = words.next().and_then(|w| w.parse().ok());
                let at = words.next().and_then(|w| w.parse::<u128>().ok());
                if let Some(r) = request {
                    workers.answer(r, at);
                }
            }
            Some("S") => {
                let now: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
                if now.len() != 6 {
                    continue;
                }
                for (k, counter) in fleet.counters().into_iter().enumerate() {
                    if now[k] >= last[k] {
                        counter.fetch_add(now[k] - last[k], Ordering::Relaxed);
                    } else {
                        counter.fetch_sub(last[k] - now[k], Ordering::Relaxed);
                    }
                    last[k] = now[k];
                }
            }
            _ => {}
        }
    }
    progress("a worker ended (its error, if any, is above)");
}

/// The worker's side: gateways already started, by index, and their counters.
pub async fn serve(controls: HashMap<usize, mpsc::UnboundedSender<Control>>, fleet: Arc<Fleet>) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = out_rx.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
        }
    });
    let status = out_tx.clone();
    let counters = fleet.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let v: Vec<String> = counters
                .counters()
                .iter()
                .map(|c| c.load(Ordering::Relaxed).to_string())
                .collect();
            if status.send(format!("S {}\n", v.join(" "))).is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(request), Some(gateway)) = (
            words.first().and_then(|w| w.parse::<u64>().ok()),
            words.last().and_then(|w| w.parse::<usize>().ok()),
        ) else {
            continue;
        };
        let Some(gate) = controls.get(&gateway) else {
            continue;
        };
        let out = out_tx.clone();
        let answer = move |at: Option<Instant>| {
            let text = at.map_or("-".to_string(), |at| {
                unix_ns(SystemTime::now() - at.elapsed()).to_string()
            });
            let _ = out.send(format!("R {request} {text}\n"));
        };
        match words.get(1).copied() {
            Some("down") => {
                let Some(device) = words.get(2).and_then(|w| w.parse().ok()) else {
                    continue;
                };
                let (tx, rx) = oneshot::channel();
                let _ = gate.send(Control::DeviceDown { device, reply: tx });
                tokio::spawn(async move { answer(rx.await.ok().flatten()) });
            }
            Some(w @ ("kill" | "freeze")) => {
                let (tx, rx) = oneshot::channel();
                let _ = gate.send(if w == "kill" {
                    Control::Kill { reply: tx }
                } else {
                    Control::Freeze { reply: tx }
                });
                tokio::spawn(async move { answer(rx.await.ok()) });
            }
            Some("resume") => {
                let _ = gate.send(Control::Resume);
            }
            Some("reconnect") => {
                let _ = gate.send(Control::Reconnect);
            }
            Some("disconnect") => {
                let (tx, rx) = oneshot::channel();
                let _ = gate.send(Control::Disconnect { done: tx });
                tokio::spawn(async move {
                    let _ = rx.await;
                    answer(None)
                });
            }
            _ => {}
        }
    }
    // The benchmark ended (or died): so does the worker, and with it its connections.
}
