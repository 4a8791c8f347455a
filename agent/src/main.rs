//! `campuswatch-agent`: the gateway agent as a service (`run`), the installer's field
//! check (`check`), camera discovery (`discover`) and the documented default
//! configuration (`print-config`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use campuswatch_agent::{check, config, discover, AgentConfig, Control, Liveness, Reload};
use campuswatch_service::{logs, notify, signals, Watchdog};
use clap::{Parser, Subcommand};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[derive(Parser)]
#[command(
    version,
    about = "campuswatch gateway agent: probes alarm devices and cameras, reports over MQTT"
)]
struct Cli {
    /// Log level (error, warn, info, debug, trace) or a filter such as
    /// "campuswatch_agent=debug"; RUST_LOG takes precedence when set.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent until Ctrl-C or SIGTERM; SIGHUP reloads the configuration file.
    Run {
        /// The agent configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Probe every device once, connect to the broker once, and print a table; exit
    /// status 1 when a required device is down or the broker refuses the gateway.
    Check {
        /// The agent configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Leave the broker out (check the devices only, for example before the
        /// gateway's credentials are issued).
        #[arg(long)]
        no_broker: bool,
    },
    /// Find ONVIF cameras with WS-Discovery and print a [[devices]] entry for each; exit
    /// status 1 when none answered.
    Discover {
        /// How long to wait for answers ("3s", "500ms").
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The gateway's IPv4 address on a camera network to probe from (repeat for
        /// several networks); default: the system's choice.
        #[arg(long = "interface", value_name = "ADDR")]
        interfaces: Vec<std::net::Ipv4Addr>,
        /// Also probe this address directly (IP or IP:PORT, port 3702 by default), for
        /// cameras beyond the local segment; repeatable. Given alone, no multicast is sent.
        #[arg(long, value_name = "ADDR", value_parser = parse_unicast)]
        unicast: Vec<std::net::SocketAddr>,
        /// Send the multicast probe as well when --unicast is given.
        #[arg(long)]
        multicast: bool,
    },
    /// Print a documented example configuration with every key.
    PrintConfig,
}

/// `IP:PORT`, or an IP with the WS-Discovery port.
fn parse_unicast(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse::<std::net::SocketAddr>()
        .or_else(|_| {
            s.parse::<std::net::IpAddr>()
                .map(|ip| (ip, discover::PORT).into())
        })
        .map_err(|_| format!("{s:?} is not an IP address or IP:PORT"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logs::init(&cli.log_level, &[]);
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::PrintConfig => {
            print!("{}", config::EXAMPLE_TOML);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            config,
            json,
            no_broker,
        } => {
            let cfg = AgentConfig::load(&config)?;
            let rt = runtime()?;
            let report = rt.block_on(async {
                let broker = async {
                    if no_broker {
                        None
                    } else {
                        Some(check::check_broker(&cfg).await)
                    }
                };
                let (mut report, broker) = tokio::join!(check::check(&cfg), broker);
                report.broker = broker;
                report
            });
            if json {
                print!("{}", report.render_json());
            } else {
                print!("{}", report.render_table());
            }
            Ok(if report.failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Discover {
            timeout,
            json,
            interfaces,
            unicast,
            multicast,
        } => {
            let options = discover::Options {
                timeout,
                interfaces,
                multicast: unicast.is_empty() || multicast,
                unicast,
            };
            let rt = runtime()?;
            let cameras = rt
                .block_on(discover::discover(&options))
                .context("camera discovery failed")?;
            if json {
                print!("{}", discover::render_json(&cameras));
            } else {
                print!("{}", discover::render_text(&cameras, timeout));
            }
            Ok(if cameras.is_empty() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Run { config: path } => {
            let cfg = AgentConfig::load(&path)?;
            let rt = runtime()?;
            rt.block_on(serve(path, cfg))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Two worker threads whatever the gateway's cores: the agent waits on the network
/// nearly all the time, and every thread adds to its resident memory.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    campuswatch_agent::memory::limit_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The agent as a service: runs until SIGTERM or Ctrl-C; SIGHUP reloads the config
/// file. Tells systemd (when it started us with `Type=notify`) when the agent is ready,
/// reloading and stopping, and feeds its watchdog while the session loop runs.
async fn serve(path: PathBuf, cfg: AgentConfig) -> anyhow::Result<()> {
    // Before anything else: SIGHUP's default action would end the process.
    #[cfg(unix)]
    let hangups = signals::hangups()?;
    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));

    let (reload_tx, reloads) = mpsc::channel(1);
    let (started_tx, started) = oneshot::channel();
    let liveness = Liveness::new("agent session");
    let summary = format!(
        "campus {}: {} devices, broker {}",
        cfg.campus,
        cfg.devices.len(),
        campuswatch_service::redact::url(&cfg.mqtt.url)
    );
    {
        let shutdown = shutdown.clone();
        let liveness = liveness.clone();
        tokio::spawn(async move {
            if started.await.is_err() {
                return;
            }
            campuswatch_agent::memory::release_startup_code();
            notify::ready(&format!("Running; {summary}."));
            #[cfg(unix)]
            tokio::spawn(reload_on_hangup(hangups, path, reload_tx));
            if let Some(watchdog) = Watchdog::from_env() {
                info!(ping_every = ?watchdog.ping_every, "systemd watchdog on.");
                watchdog
                    .run(vec![liveness], shutdown, notify::watchdog_ping)
                    .await;
            }
        });
    }
    let control = Control {
        reloads: Some(reloads),
        liveness,
        started: Some(started_tx),
    };
    campuswatch_agent::run_controlled(
        cfg,
        shutdown,
        Arc::new(campuswatch_agent::health::HealthSampler::new()),
        control,
    )
    .await
    .context("the agent could not start")
}

/// On every SIGHUP: reads the config file again and hands it to the running agent; a
/// file that does not load is refused with its file, line and reason, and the agent
/// keeps the configuration it has.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    path: PathBuf,
    reloads: mpsc::Sender<Reload>,
) {
    while hangups.recv().await.is_some() {
        notify::reloading("Reloading the configuration.");
        info!(file = %path.display(), "Reload requested: reading the configuration.");
        let loaded = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || AgentConfig::load(&path)).await
        };
        let status = match loaded {
            Err(e) => format!("Running; reload failed: {e}"),
            Ok(Err(e)) => {
                error!(
                    file = %e.source_name(),
                    line = e.line(),
                    reason = %e.reason(),
                    "Configuration refused: {e}; the agent keeps running on its previous configuration."
                );
                format!("Running on the previous configuration; reload refused: {e}")
            }
            Ok(Ok(cfg)) => {
                let (reload, outcome) = Reload::new(cfg);
                if reloads.send(reload).await.is_err() {
                    return;
                }
                match outcome.await {
                    Ok(Ok(outcome)) => format!("Running; reloaded: {outcome}."),
                    Ok(Err(e)) => {
                        error!(file = %path.display(), reason = %e, "Configuration not applied; the agent keeps running on its previous configuration.");
                        format!("Running on the previous configuration; reload refused: {e}")
                    }
                    // The agent is stopping.
                    Err(_) => return,
                }
            }
        };
        notify::ready(&status);
    }
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM (what service managers send).
async fn signal_shutdown(shutdown: CancellationToken) {
    signals::stop_requested().await;
    tracing::info!("Shutdown requested.");
    notify::stopping("Stopping: publishing the shutdown death.");
    shutdown.cancel();
}
