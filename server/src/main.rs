//! `campuswatch-server`: parses arguments, sets up logging, and calls the library.

#[cfg(feature = "demo")]
mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::registry;
use campuswatch_server::store::{AuditAction, NewAudit, Store};
use campuswatch_service::{logs, notify, signals, Watchdog};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "campuswatch-server",
    version,
    about = "The campuswatch central server"
)]
struct Cli {
    /// Log filter, e.g. `info` or `campuswatch_server=debug` (RUST_LOG wins if set).
    /// The embedded broker's own log (target `rumqttd`) and the demo's agents are quiet
    /// unless named here.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server until Ctrl-C or SIGTERM; SIGHUP checks the config file again.
    Run {
        /// TOML config file (see `print-config`); without it, built-in defaults.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage the registry of campuses.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Manage the users of the console and the API.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print the documented default configuration; with `--config`, the configuration
    /// in effect (file and environment over the defaults), secrets shown as `***`.
    PrintConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a complete demo: embedded broker, server, and simulated campuses.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Load or update the registry from a CSV file
    /// (id,name,region,school_type,expected_alarms,expected_cameras).
    Import {
        file: PathBuf,
        /// Remove campuses the file does not list.
        #[arg(long)]
        replace: bool,
        #[arg(long)]
        config: Option<PathBuf>,
        /// An administrator's API token, for a running server with sign-in on (make one
        /// with `POST /api/v1/tokens`). Better given in the environment than on the
        /// command line, where other users of the host can read it.
        #[arg(long, env = "CAMPUSWATCH_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user, or set the password, role and scope of an existing one. The password
    /// is read from the first line of standard input.
    Add {
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// The region subtree the user sees (a county, city or province code); all if
        /// not given.
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List the users.
    List {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Disable a user: they cannot sign in, and their sessions and API tokens end at
    /// once (enabling them again revives none).
    Disable {
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Enable a disabled user again.
    Enable {
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Cancels the token on Ctrl-C or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        signals::stop_requested().await;
        tracing::info!("Stopping.");
        t.cancel();
    });
    token
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match real_main().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The message with its context chain, without a backtrace: it is for users.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// jemalloc keeps allocations of each size class on pages of their own and hands freed
/// pages back from background threads: restoring a province from the store (millions of
/// rows read, parsed and freed between the records kept) leaves the server with the
/// memory it had before the restart, where glibc's allocator kept 15–29 % more
/// (docs/BENCHMARKS.md, "Memory after a restart").
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

async fn real_main() -> anyhow::Result<()> {
    // What still comes from glibc's allocator (SQLite's C code): large blocks get pages
    // of their own, handed back as soon as they are freed.
    campuswatch_service::memory::large_allocations_apart(1 << 20);
    let cli = Cli::parse();
    // rumqttd logs every connection, and benign races at ERROR; the demo's agents are
    // quiet too unless named.
    logs::init(&cli.log_level, &["rumqttd=off", "campuswatch_agent=warn"]);
    match cli.command {
        Command::Run { config } => {
            let cfg = ServerConfig::load(config.as_deref())?;
            let listener = bind(cfg.http.listen).await?;
            serve(cfg, config, listener).await?;
        }
        Command::Registry {
            command:
                RegistryCommand::Import {
                    file,
                    replace,
                    config,
                    token,
                },
        } => {
            let cfg = ServerConfig::load(config.as_deref())?;
            import(&cfg, &file, replace, token.as_deref()).await?;
        }
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    role,
                    scope,
                    config,
                },
        } => {
            let cfg = ServerConfig::load(config.as_deref())?;
            let role = campuswatch_server::auth::Role::parse(&role)
                .with_context(|| format!("role {role:?}: use viewer, operator or admin"))?;
            anyhow::ensure!(
                campuswatch_server::auth::valid_name(&name),
                "user name {name:?}: 1 to 64 letters, digits, '-', '_', '.' or '@'"
            );
            let scope = scope
                .map(|s| campuswatch_protocol::RegionCode::parse(&s))
                .transpose()
                .context("--scope")?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let hash =
                campuswatch_server::auth::hash_password(password.trim_end_matches(['\r', '\n']))
                    .map_err(anyhow::Error::msg)?;
            let store = campuswatch_server::store::Store::open(&cfg.database_url()).await?;
            let existed = store.users().await?.iter().any(|u| u.name == name);
            let now = chrono::Utc::now();
            store.put_user(&name, &hash, role, scope, now).await?;
            let action = if existed {
                AuditAction::UserPassword
            } else {
                AuditAction::UserCreate
            };
            let details = serde_json::json!({"role": role.as_str(), "scope": scope});
            store
                .record_audit(&local_audit(now, action, &name, scope, details))
                .await?;
            println!(
                "User {name} is {} of {}.",
                role.as_str(),
                scope.map_or_else(|| "every region".to_string(), |s| format!("region {s}"))
            );
        }
        Command::User {
            command: UserCommand::Disable { name, config },
        } => set_disabled(config, &name, true).await?,
        Command::User {
            command: UserCommand::Enable { name, config },
        } => set_disabled(config, &name, false).await?,
        Command::User {
            command: UserCommand::List { config },
        } => {
            let cfg = ServerConfig::load(config.as_deref())?;
            let store = campuswatch_server::store::Store::open(&cfg.database_url()).await?;
            for u in store.users().await? {
                println!(
                    "{}\t{}\t{}{}",
                    u.name,
                    u.role.as_str(),
                    u.scope.map_or_else(|| "all".to_string(), |s| s.to_string()),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        Command::PrintConfig { config: None } => print!("{}", ServerConfig::default_toml()),
        Command::PrintConfig { config: Some(file) } => {
            print!("{}", ServerConfig::load(Some(&file))?.to_masked_toml())
        }
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(args, shutdown_on_signal()).await?,
    }
    Ok(())
}

/// The server as a service: runs until SIGTERM or Ctrl-C; SIGHUP checks the config file
/// again. Tells systemd (when it started us with `Type=notify`) when the server is ready
/// and stopping, and feeds its watchdog while the engine loop runs.
async fn serve(
    cfg: ServerConfig,
    path: Option<PathBuf>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    // Before anything else: SIGHUP's default action would end the process.
    #[cfg(unix)]
    let hangups = signals::hangups()?;
    let shutdown = shutdown_on_signal();
    let leadership = if cfg.ha.enabled {
        // A standby is a healthy service: systemd hears it is ready (and its watchdog is
        // fed) while it waits.
        notify::ready("Standby: waiting for the active replica of this partition to stop.");
        let standby = shutdown.child_token();
        if let Some(watchdog) = Watchdog::from_env() {
            tokio::spawn(watchdog.run(Vec::new(), standby.clone(), notify::watchdog_ping));
        }
        let lead = campuswatch_server::ha::Leadership::acquire(
            &cfg.database_url(),
            &cfg.id,
            cfg.ha.check_interval,
            &shutdown,
        )
        .await;
        standby.cancel();
        match lead {
            Some(lead) => Some(lead),
            None => return Ok(()),
        }
    } else {
        None
    };
    let handle = campuswatch_server::start(cfg.clone(), listener).await?;
    notify::ready(&format!(
        "Running; HTTP on {}, broker {}{}.",
        handle.http_addr(),
        campuswatch_service::redact::url(handle.broker_url()),
        if leadership.is_some() {
            ", active replica"
        } else {
            ""
        }
    ));
    let check = cfg.ha.check_interval;
    #[cfg(unix)]
    tokio::spawn(reload_on_hangup(hangups, path, cfg));
    if let Some(watchdog) = Watchdog::from_env() {
        tracing::info!(ping_every = ?watchdog.ping_every, "systemd watchdog on.");
        tokio::spawn(watchdog.run(
            vec![handle.liveness()],
            shutdown.clone(),
            notify::watchdog_ping,
        ));
    }
    let lost = async {
        match leadership {
            Some(lead) => Some(lead.lost(check).await),
            None => std::future::pending().await,
        }
    };
    // The lock lives as long as `lost` (to the end of this function), so that a standby
    // starts only after this replica's last word (its offline state) on the shared MQTT
    // session.
    tokio::pin!(lost);
    tokio::select! {
        _ = shutdown.cancelled() => {}
        Some(why) = &mut lost => {
            notify::stopping("Stopping: the active lock is lost.");
            tracing::error!(reason = %why, "Lost the active lock: stopping, so that a standby takes over (this replica comes back as a standby when restarted).");
            handle.stop().await;
            anyhow::bail!("lost the active lock: {why}");
        }
    }
    notify::stopping("Stopping: publishing the server's offline state.");
    handle.stop().await;
    Ok(())
}

/// On every SIGHUP: reads the config file again and says what differs from the running
/// configuration. Nothing is applied while running (docs/operations.md): a file that
/// does not load is refused with its file, line and reason, and a valid one that differs
/// is reported section by section, to apply with a restart.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    path: Option<PathBuf>,
    running: ServerConfig,
) {
    while hangups.recv().await.is_some() {
        notify::reloading("Checking the configuration.");
        let status = match &path {
            None => {
                tracing::warn!("Reload requested, but the server was started without --config: nothing to read.");
                "Running on the built-in defaults; no --config file to reload.".to_string()
            }
            Some(path) => {
                tracing::info!(file = %path.display(), "Reload requested: reading the configuration.");
                let p = path.clone();
                match tokio::task::spawn_blocking(move || ServerConfig::load(Some(&p))).await {
                    Err(e) => format!("Running; reload failed: {e}"),
                    Ok(Err(e)) => {
                        let reason = e.to_string();
                        let reason = reason.lines().next().unwrap_or_default();
                        tracing::error!(
                            file = %e.source_name(),
                            line = e.line(),
                            "Configuration refused: {reason}; the server keeps running on its configuration."
                        );
                        format!("Running; reload refused: {reason}")
                    }
                    Ok(Ok(new)) => {
                        let changed = changed_sections(&running, &new);
                        if changed.is_empty() {
                            tracing::info!(file = %path.display(), "Configuration unchanged.");
                            "Running; configuration unchanged.".to_string()
                        } else {
                            tracing::warn!(
                                file = %path.display(),
                                changed = %changed.join(", "),
                                "The configuration file differs from the running configuration in [{}]; a running server applies none of it: restart it to apply (systemctl restart campuswatch-server).",
                                changed.join("], [")
                            );
                            format!(
                                "Running; {} changed in the file, applied at the next restart.",
                                changed.join(", ")
                            )
                        }
                    }
                }
            }
        };
        notify::ready(&status);
    }
}

/// The top-level keys and sections whose values differ between two configurations.
fn changed_sections(old: &ServerConfig, new: &ServerConfig) -> Vec<String> {
    let table = |c: &ServerConfig| match toml::Value::try_from(c) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    let (a, b) = (table(old), table(new));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (http.listen)"))
}

/// Imports through the running server's API when it answers (so its coverage updates at
/// once), else straight into the store it would read at start.
async fn import(
    cfg: &ServerConfig,
    file: &std::path::Path,
    replace: bool,
    token: Option<&str>,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let entries = match registry::parse_csv(&bytes) {
        Ok(e) => e,
        Err(lines) => {
            for l in &lines {
                eprintln!(
                    "{}:{}: {}{}",
                    file.display(),
                    l.line,
                    l.column
                        .as_deref()
                        .map(|c| format!("{c}: "))
                        .unwrap_or_default(),
                    l.message
                );
            }
            bail!(
                "{}: {} bad row(s); nothing was imported",
                file.display(),
                lines.len()
            );
        }
    };
    let url = format!(
        "http://{}/api/v1/registry?mode={}",
        cfg.http.listen,
        if replace { "replace" } else { "upsert" }
    );
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let mut request = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .body(bytes);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(resp) if resp.status().is_success() => {
            println!(
                "Imported {} campuses through the running server at {}.",
                entries.len(),
                cfg.http.listen
            );
            Ok(())
        }
        Ok(resp) if resp.status() == reqwest::StatusCode::UNAUTHORIZED && token.is_none() => {
            bail!(
                "the server at {} has sign-in on: give an administrator's API token in \
                 CAMPUSWATCH_TOKEN (or --token); make one with POST /api/v1/tokens \
                 (docs/api.md, \"Signing in and tokens\")",
                cfg.http.listen
            )
        }
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            bail!("the server refused the import ({status}): {body}")
        }
        Err(e) if e.is_connect() => {
            let store = Store::open(&cfg.database_url()).await?;
            store
                .import_registry(&entries, replace, chrono::Utc::now())
                .await?;
            println!(
                "Imported {} campuses into {} (no server running at {}; it will load them at start).",
                entries.len(),
                campuswatch_service::redact::url(&cfg.database_url()),
                cfg.http.listen
            );
            Ok(())
        }
        Err(e) => Err(e).context(format!("cannot reach the server at {url}")),
    }
}

/// An audit entry of the command line: the actor is `local`.
fn local_audit(
    at: campuswatch_protocol::Timestamp,
    action: AuditAction,
    user: &str,
    scope: Option<campuswatch_protocol::RegionCode>,
    details: serde_json::Value,
) -> NewAudit {
    NewAudit {
        at,
        actor: "local".into(),
        token: None,
        action,
        target: user.to_string(),
        region: scope,
        details,
        source: None,
    }
}

/// `user disable` and `user enable`.
async fn set_disabled(config: Option<PathBuf>, name: &str, disabled: bool) -> anyhow::Result<()> {
    let cfg = ServerConfig::load(config.as_deref())?;
    let store = campuswatch_server::store::Store::open(&cfg.database_url()).await?;
    let user = store
        .users()
        .await?
        .into_iter()
        .find(|u| u.name == name)
        .with_context(|| format!("there is no user {name:?} (see `user list`)"))?;
    let now = chrono::Utc::now();
    if user.disabled != disabled {
        store.set_user_disabled(user.id, disabled, now).await?;
        let action = if disabled {
            AuditAction::UserDisable
        } else {
            AuditAction::UserEnable
        };
        let details = serde_json::json!({"user_id": user.id});
        store
            .record_audit(&local_audit(now, action, name, user.scope, details))
            .await?;
    }
    println!(
        "User {name} is {}.",
        if disabled {
            "disabled: their sessions and tokens ended"
        } else {
            "enabled"
        }
    );
    Ok(())
}
