//! The `switchboard` command line: `serve`, `migrate`, `replay` and the
//! operator's `servers` commands, all on the same database settings.

use crate::app::{self, AppState, Background};
use crate::config::{Overrides, ProcessEnv, Settings};
use crate::demo;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use switchboard_domain::checksum::ChecksumAlgorithm;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::ServerId;
use switchboard_domain::server::{ServerCommand, ServerSettings};
use switchboard_store::{CommandError, Store};

/// Switchboard: a load balancer for BigBlueButton.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    /// TOML configuration file (also SWITCHBOARD_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH?mode=rwc or postgres://... (default: SQLite in the data folder).
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    /// Folder for the embedded database (default ./data).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the BBB API (and run the health poller).
    Serve {
        /// Address to listen on (default 127.0.0.1:8090).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Start N simulated BBB servers in this process and use them.
        #[arg(long, value_name = "N")]
        demo: Option<usize>,
        /// Do not poll server health from this process.
        #[arg(long)]
        no_workers: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Rebuild every projection from the event log.
    Replay,
    /// Manage the pool of BBB servers.
    Servers {
        /// What to do with servers.
        #[command(subcommand)]
        command: ServersCommand,
    },
}

/// `servers` subcommands.
#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// Add a server (disabled until enabled, unless --enable); prints its id.
    Add {
        /// The server's URL, e.g. https://bbb1.example.org/bigbluebutton/ (a Scalelite-style .../api URL works too).
        url: String,
        /// The server's shared secret (`bbb-conf --secret`).
        secret: String,
        /// Tag for meta_server-tag placement.
        #[arg(long)]
        tag: Option<String>,
        /// Load weight (2.0 = counts twice as loaded).
        #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
        load_multiplier: f64,
        /// Enable it at once.
        #[arg(long)]
        enable: bool,
        /// Checksum algorithm for calls to it (sha1, sha256, sha384, sha512).
        #[arg(long)]
        checksum: Option<String>,
    },
    /// List servers.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Let a server take new meetings.
    Enable {
        /// Server id.
        id: String,
    },
    /// Take a server out of use entirely.
    Disable {
        /// Server id.
        id: String,
    },
    /// Stop new meetings on a server; running meetings stay joinable.
    Cordon {
        /// Server id.
        id: String,
    },
    /// Remove a server from the pool.
    Remove {
        /// Server id.
        id: String,
        /// Remove it even though meetings run on it.
        #[arg(long)]
        force: bool,
    },
}

/// Runs the binary: parses arguments and dispatches.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(run(cli));
    if let Err(err) = &result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
    result
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let listen = match &cli.command {
        Command::Serve { listen, .. } => *listen,
        _ => None,
    };
    let overrides = Overrides {
        listen,
        database: cli.database.clone(),
        data_dir: cli.data_dir.clone(),
    };
    let settings = Settings::load(cli.config.as_deref(), &ProcessEnv, &overrides)?;
    init_tracing(&settings);
    match cli.command {
        Command::Serve {
            demo, no_workers, ..
        } => serve(settings, demo, !no_workers).await,
        Command::Migrate => {
            app::open_store(&settings).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Replay => {
            let store = app::open_store(&settings).await?;
            let applied = store.replay().await?;
            println!("rebuilt projections from {applied} events");
            Ok(())
        }
        Command::Servers { command } => {
            let store = app::open_store(&settings).await?;
            servers(&store, command).await
        }
    }
}

fn init_tracing(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn serve(
    settings: Settings,
    demo_servers: Option<usize>,
    workers: bool,
) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    let secrets = app::resolve_secrets(&settings, &store).await?;
    if let Some(secret) = &secrets.generated {
        println!("Generated a BBB API secret and stored it in the database: {secret}");
        println!("(set SWITCHBOARD_SECRET to choose your own)");
    }
    let primary = secrets.accepted[0].clone();
    let pool = match demo_servers {
        Some(count) => Some(demo::start_pool(&store, count).await?),
        None => None,
    };
    let listen = settings.listen;
    let state = AppState::build(settings, store, secrets.accepted).await?;
    let mut running = app::start(state, listen, Background { health: workers }).await?;
    let api_url = running.api_url();
    println!("Switchboard is serving the BBB API at {api_url}");
    if let Some(pool) = &pool {
        demo::print_instructions(&api_url, &primary, pool.len());
    } else if secrets.generated.is_none() {
        tracing::info!("using the configured or stored BBB API secret");
    }
    let stop = running.take_stop();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    });
    running.wait().await?;
    if let Some(pool) = pool {
        for simulator in pool {
            simulator.shutdown().await;
        }
    }
    Ok(())
}

fn parse_id(id: &str) -> anyhow::Result<ServerId> {
    id.parse()
        .with_context(|| format!("`{id}` is not a server id (a UUID as `servers list` shows)"))
}

fn describe<E: std::fmt::Display>(err: CommandError<E>) -> anyhow::Error {
    match err {
        CommandError::Rejected(reason) => anyhow::anyhow!("{reason}"),
        CommandError::Store(err) => anyhow::anyhow!("database error: {err}"),
    }
}

async fn servers(store: &Store, command: ServersCommand) -> anyhow::Result<()> {
    let metadata = EventMetadata::actor("cli");
    let (id, command) = match command {
        ServersCommand::Add {
            url,
            secret,
            tag,
            load_multiplier,
            enable,
            checksum,
        } => {
            let checksum = match checksum {
                Some(name) => Some(ChecksumAlgorithm::parse(&name).with_context(|| {
                    format!(
                        "unknown checksum algorithm `{name}`: use sha1, sha256, sha384 or sha512"
                    )
                })?),
                None => None,
            };
            let id = ServerId::new();
            let command = ServerCommand::Add {
                id,
                settings: ServerSettings {
                    url,
                    secret,
                    tag,
                    load_multiplier,
                    checksum,
                },
                enabled: enable,
            };
            store
                .execute_server(id, &command, &metadata)
                .await
                .map_err(describe)?;
            println!("{id}");
            return Ok(());
        }
        ServersCommand::List { json } => return list_servers(store, json).await,
        ServersCommand::Enable { id } => (parse_id(&id)?, ServerCommand::Enable),
        ServersCommand::Disable { id } => (parse_id(&id)?, ServerCommand::Disable),
        ServersCommand::Cordon { id } => (parse_id(&id)?, ServerCommand::Cordon),
        ServersCommand::Remove { id, force } => {
            let id = parse_id(&id)?;
            let running = store
                .running_meetings_per_server()
                .await?
                .get(&id)
                .copied()
                .unwrap_or(0);
            if running > 0 && !force {
                bail!(
                    "{running} meeting(s) still run on server {id}: cordon it and wait, or remove with --force"
                );
            }
            (id, ServerCommand::Remove)
        }
    };
    let executed = store
        .execute_server(id, &command, &metadata)
        .await
        .map_err(describe)?;
    if executed.events.is_empty() {
        println!("server {id}: nothing to change");
    } else {
        let names: Vec<&str> = executed.events.iter().map(|e| e.type_name()).collect();
        println!("server {id}: {}", names.join(", "));
    }
    Ok(())
}

async fn list_servers(store: &Store, json: bool) -> anyhow::Result<()> {
    let servers = store.servers().await?;
    let counts = store.running_meetings_per_server().await?;
    if json {
        let rows: Vec<serde_json::Value> = servers
            .iter()
            .map(|server| {
                serde_json::json!({
                    "id": server.id.to_string(),
                    "url": server.settings.url,
                    "tag": server.settings.tag,
                    "load_multiplier": server.settings.load_multiplier,
                    "state": server.state.as_str(),
                    "online": server.online,
                    "meetings": counts.get(&server.id).copied().unwrap_or(0),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<36}  {:<9}  {:<7}  {:>8}  {:>10}  {:<10}  URL",
        "ID", "STATE", "ONLINE", "MEETINGS", "MULTIPLIER", "TAG"
    );
    for server in &servers {
        println!(
            "{:<36}  {:<9}  {:<7}  {:>8}  {:>10}  {:<10}  {}",
            server.id,
            server.state.as_str(),
            if server.online { "online" } else { "offline" },
            counts.get(&server.id).copied().unwrap_or(0),
            server.settings.load_multiplier,
            server.settings.tag.as_deref().unwrap_or("-"),
            server.settings.url
        );
    }
    Ok(())
}
