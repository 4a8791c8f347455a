//! `campuswatch-server`: parses arguments, sets up logging, and calls the library.

#[cfg(feature = "demo")]
mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use campuswatch_server::config::ServerConfig;
use campuswatch_server::registry;
use campuswatch_server::store::Store;
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
    /// Run the server.
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
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let mut filter = level.to_string();
        if !level.contains("rumqttd") {
            // rumqttd logs every connection, and benign races at ERROR.
            filter.push_str(",rumqttd=off");
        }
        if !level.contains("campuswatch_agent") {
            filter.push_str(",campuswatch_agent=warn");
        }
        tracing_subscriber::EnvFilter::new(filter)
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Cancels the token on Ctrl-C or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
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

async fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    match cli.command {
        Command::Run { config } => {
            let cfg = ServerConfig::load(config.as_deref())?;
            let listener = bind(cfg.http.listen).await?;
            campuswatch_server::run(cfg, listener, shutdown_on_signal()).await?;
        }
        Command::Registry {
            command:
                RegistryCommand::Import {
                    file,
                    replace,
                    config,
                },
        } => {
            let cfg = ServerConfig::load(config.as_deref())?;
            import(&cfg, &file, replace).await?;
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
            store
                .put_user(&name, &hash, role, scope, chrono::Utc::now())
                .await?;
            println!(
                "User {name} is {} of {}.",
                role.as_str(),
                scope.map_or_else(|| "every region".to_string(), |s| format!("region {s}"))
            );
        }
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

pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (http.listen)"))
}

/// Imports through the running server's API when it answers (so its coverage updates at
/// once), else straight into the store it would read at start.
async fn import(cfg: &ServerConfig, file: &std::path::Path, replace: bool) -> anyhow::Result<()> {
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
    match client.post(&url).body(bytes).send().await {
        Ok(resp) if resp.status().is_success() => {
            println!(
                "Imported {} campuses through the running server at {}.",
                entries.len(),
                cfg.http.listen
            );
            Ok(())
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
                cfg.database_url(),
                cfg.http.listen
            );
            Ok(())
        }
        Err(e) => Err(e).context(format!("cannot reach the server at {url}")),
    }
}
