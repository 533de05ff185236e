//! The `switchboard` command line: `serve`, `migrate`, `replay`, `openapi`
//! and the operator's commands (`servers`, `meetings`, `events`, `tokens`, `tenants`, `callbacks`,
//! `status`), which act on the local database or, with `--url` and
//! `--token`, on a remote instance through its admin API; and
//! `import-scalelite-env`, which needs neither.

pub mod agent;
pub mod callbacks;
mod ops;
mod replay;
pub mod scalelite;
pub mod scalelite_env;
pub mod table;
pub mod target;
pub mod tenants;
pub mod usage;

use crate::app::{self, AppState, Background};
use crate::config::{Overrides, ProcessEnv, Settings};
use crate::demo;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use switchboard_app::records::RecordingRecord;
use target::Target;

pub use scalelite::SyncMode;

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
    /// Act on a remote instance through its admin API instead of the local
    /// database, e.g. https://lb.example.org (give it before the command).
    #[arg(long = "url", env = "SWITCHBOARD_URL", value_name = "URL")]
    pub remote: Option<String>,
    /// Bearer token for --url (`switchboard tokens create NAME --scope admin|read`).
    #[arg(
        long,
        env = "SWITCHBOARD_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the BBB API and the admin API (and run the health poller).
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
    /// Run only the background workers (health polling, reconciliation),
    /// for scale-out beside `serve --no-workers` instances; serves /health,
    /// /ready and /metrics on --listen.
    Worker {
        /// Address for /health, /ready and /metrics (default 127.0.0.1:8091).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Run on a BBB server: register it with Switchboard and push its
    /// state (meetings, CPU, memory) every interval.
    Agent(agent::AgentArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Rebuild every projection from the event log (a running `serve`
    /// keeps answering; appends wait only for the final swap).
    Replay {
        /// Compare the rebuilt projections with the live ones and report
        /// the differences; change nothing.
        #[arg(long)]
        check: bool,
        /// Benchmark: write a generated log of EVENTS events into the
        /// configured database (which must hold no events: use a scratch
        /// one) and time replay, `--check`, `events at` and event queries
        /// beside plain scans of the table.
        #[arg(long, value_name = "EVENTS", conflicts_with = "check")]
        bench: Option<usize>,
    },
    /// Print the BBB API secret front-ends sign with (the configured one, or
    /// the one generated at first start), for a `serve` whose output goes to
    /// a journal.
    Secret,
    /// Manage the pool of BBB servers.
    Servers {
        /// What to do with servers.
        #[command(subcommand)]
        command: ServersCommand,
    },
    /// Meetings Switchboard placed.
    Meetings {
        /// What to do with meetings.
        #[command(subcommand)]
        command: MeetingsCommand,
    },
    /// The append-only event log: every change, who made it, when.
    Events {
        /// What to read.
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Bearer tokens of the admin API.
    Tokens {
        /// What to do with tokens.
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Tenants: front-ends with their own secrets, policy, limits and server pool.
    Tenants {
        /// What to do with tenants.
        #[command(subcommand)]
        command: tenants::TenantsCommand,
    },
    /// Callbacks owed to front-ends (end of meeting, analytics, recording
    /// ready, webhooks): list, retry, drop.
    Callbacks {
        /// What to do with deliveries.
        #[command(subcommand)]
        command: callbacks::CallbacksCommand,
    },
    /// Usage per tenant and period, for billing: meetings, meeting-minutes,
    /// attendee-minutes, peak concurrent attendees, recorded meetings.
    Usage {
        /// Only this tenant (`default`: the global secrets' front-ends).
        #[arg(long)]
        tenant: Option<String>,
        /// First day, YYYY-MM-DD (UTC), included.
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (UTC), included.
        #[arg(long)]
        to: Option<String>,
        /// One row per `day` or `month`.
        #[arg(long, value_enum, default_value = "day")]
        by: usage::By,
        /// Print JSON.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV.
        #[arg(long)]
        csv: bool,
    },
    /// Every server at a glance: state, meetings, users, load (as Scalelite's `rake status`).
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Recordings on this machine.
    Recordings {
        /// What to do with recordings.
        #[command(subcommand)]
        command: RecordingsCommand,
    },
    /// Print the admin API's OpenAPI spec (JSON).
    Openapi,
    /// Translate a Scalelite `.env` file (e.g. /etc/default/scalelite) into
    /// the equivalent switchboard.toml, printed on standard output; every
    /// variable it cannot map is listed on standard error with the reason.
    /// The output holds the load balancer's secrets: keep it private.
    ImportScaleliteEnv {
        /// The Scalelite `.env` file.
        file: PathBuf,
        /// Write the TOML to this file (owner-only permissions) instead of
        /// standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `recordings` subcommands (local: they work on this machine's recording
/// tree and database).
#[derive(Debug, Subcommand)]
pub enum RecordingsCommand {
    /// Import an existing published tree (`<PATH>/<format>/<recordID>/`,
    /// e.g. a BBB server's /var/bigbluebutton/published): copies it into
    /// Switchboard's recording tree and records the recordings.
    ImportDir {
        /// The tree to import.
        path: std::path::PathBuf,
    },
    /// Expire the recordings their tenant's retention (or the global
    /// `[recordings] retention_days`) says are due: recorded as
    /// `RecordingExpired` with the rule, files removed. Protected recordings
    /// and those with `keep=true` metadata are never expired. A running
    /// instance does this every hour by itself.
    Expire {
        /// Only list what would be expired.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy the recordings of a store (by default the deployment's) to
    /// another, verifying every object by SHA-256 and size; run it again
    /// after an interruption and it continues. Then point
    /// SWITCHBOARD_RECORDINGS_STORE (or the tenant's store) at the target.
    MigrateStore {
        /// The target: a directory or `s3://BUCKET/PREFIX`.
        #[arg(long)]
        to: String,
        /// The source (default: this deployment's store).
        #[arg(long)]
        from: Option<String>,
        /// Only this tenant's recordings.
        #[arg(long)]
        tenant: Option<String>,
        /// Remove each recording from the source once its copy is verified.
        #[arg(long)]
        delete_source: bool,
    },
    /// Measure import throughput with realistic archives (a presentation
    /// with webcam and screen-share video) of the given sizes into this
    /// deployment's store, beside a plain copy or upload of the same bytes,
    /// with the process's memory. Run it on a throwaway database: the
    /// recordings it imports stay.
    BenchImport {
        /// Archive sizes in MB, comma-separated.
        #[arg(long, default_value = "50,200,500", value_delimiter = ',')]
        sizes: Vec<u64>,
        /// Archives per size (the median is reported).
        #[arg(long, default_value_t = 3)]
        each: usize,
    },
    /// Measure getRecordings and spool import: seeds COUNT recordings
    /// (skipped when already there), times a `SELECT 1` baseline and
    /// getRecordings for one meetingID, the first page of 100 and a page of
    /// 100 at a random offset, and imports IMPORTS archives from a spool.
    Bench {
        /// Recordings in the database to measure against.
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        /// Archives to import for the throughput figure.
        #[arg(long, default_value_t = 200)]
        imports: usize,
        /// Queries timed per figure.
        #[arg(long, default_value_t = 200)]
        samples: usize,
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
        /// Prometheus text endpoint with its CPU and memory (node_exporter),
        /// e.g. https://user:password@bbb1.example.org:9100/metrics.
        #[arg(long)]
        metrics_url: Option<String>,
    },
    /// List servers.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one server.
    Show {
        /// Server id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a server's URL, secret, tag, load multiplier, checksum algorithm or metrics URL.
    Update {
        /// Server id.
        id: String,
        /// New URL.
        #[arg(long)]
        url: Option<String>,
        /// New shared secret.
        #[arg(long)]
        secret: Option<String>,
        /// New tag; an empty string removes the tag.
        #[arg(long)]
        tag: Option<String>,
        /// New load weight.
        #[arg(long, allow_negative_numbers = true)]
        load_multiplier: Option<f64>,
        /// New checksum algorithm; an empty string returns to the configured default.
        #[arg(long)]
        checksum: Option<String>,
        /// New metrics URL; an empty string removes it.
        #[arg(long)]
        metrics_url: Option<String>,
        /// Print the server as JSON.
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
    /// Stop new meetings on a server; running meetings stay joinable. It
    /// becomes disabled once its last meeting ends (at once if it has none).
    Cordon {
        /// Server id.
        id: String,
    },
    /// For a crashed server: disable it and forget its meetings, so the next
    /// create of each meeting places it on another server.
    Panic {
        /// Server id.
        id: String,
        /// Also send `end` for each meeting to the server first.
        #[arg(long)]
        end_meetings: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a server from the pool.
    Remove {
        /// Server id.
        id: String,
        /// Remove it even though meetings run on it (they are forgotten).
        #[arg(long)]
        force: bool,
    },
    /// Make the pool match a Scalelite `servers:sync` YAML file (`-` reads
    /// standard input): servers of the file are added or updated (matched
    /// by id, else by URL) and enabled or cordoned as it says; the others
    /// are handled by --mode.
    Sync {
        /// The YAML file (`servers:` mapping ids to url, secret, enabled, load_multiplier, tag).
        file: PathBuf,
        /// Servers not in the file: keep them; cordon (remove the empty ones,
        /// cordon the others and remove them by a later sync); force (end
        /// their meetings and remove them all).
        #[arg(long, value_enum, default_value = "cordon")]
        mode: SyncMode,
        /// Print what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the pool in Scalelite's `servers:sync` YAML format, to FILE or
    /// standard output. The output holds the servers' SECRETS, as
    /// Scalelite's does: keep it private. Needs the local database (the
    /// admin API never hands out secrets).
    Export {
        /// File to write (created with owner-only permissions); standard output if absent.
        file: Option<PathBuf>,
    },
}

/// `meetings` subcommands.
#[derive(Debug, Subcommand)]
pub enum MeetingsCommand {
    /// List meetings, newest runs included.
    List {
        /// Only meetings on this server (id).
        #[arg(long, value_name = "ID")]
        server: Option<String>,
        /// Only running or ended meetings.
        #[arg(long, value_enum)]
        state: Option<StateFilter>,
        /// Only this tenant's meetings.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one meeting.
    Show {
        /// Tenant (`default` for a single-tenant setup).
        tenant: String,
        /// The front-end's meetingID.
        meeting_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a running meeting on its server.
    End {
        /// Tenant (`default` for a single-tenant setup).
        tenant: String,
        /// The front-end's meetingID.
        meeting_id: String,
    },
}

/// Meeting state filter of `meetings list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    /// Running meetings.
    Running,
    /// Ended meetings.
    Ended,
}

/// `events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Read the log, oldest first.
    List {
        /// Only this stream (e.g. `server-<id>`).
        #[arg(long)]
        stream: Option<String>,
        /// Only this event type (e.g. `ServerEnabled`).
        #[arg(long = "type", value_name = "TYPE")]
        event_type: Option<String>,
        /// Only events by this actor (`cli`, a token's name, `health`, ...).
        #[arg(long)]
        actor: Option<String>,
        /// Recorded at or after (RFC 3339, e.g. 2025-03-01T12:00:00Z).
        #[arg(long, value_parser = parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Recorded at or before (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        /// Only events after this log position (the next page).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Servers and meetings as they were at a moment, replayed from the log.
    At {
        /// The moment (RFC 3339, e.g. 2025-03-01T12:00:00Z).
        #[arg(value_parser = parse_time)]
        time: chrono::DateTime<chrono::Utc>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Move the events recorded before a date out of the log into a
    /// compressed JSON-lines file (on this machine's database). The states
    /// that replace them are stored first; `replay`, `events at` and every
    /// command keep working.
    Archive {
        /// Archive the events recorded before this moment (RFC 3339, or a
        /// date such as 2025-01-01).
        #[arg(long, value_parser = parse_moment)]
        before: chrono::DateTime<chrono::Utc>,
        /// The file to write (`.jsonl.gz`); it must not exist.
        #[arg(long = "to", value_name = "FILE")]
        to: std::path::PathBuf,
    },
    /// Check an archive file: its header, every event and its checksum.
    VerifyArchive {
        /// The archive file.
        file: std::path::PathBuf,
    },
}

/// `tokens` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (only its hash is kept: it is shown this once).
    Create {
        /// Name (letters, digits, `-`, `_`, `.`); it becomes the actor of the token's changes.
        name: String,
        /// `admin` (read and change everything), `read` (read only) or
        /// `node` (a BBB server's agent: registers its server and pushes
        /// heartbeats, nothing else).
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// For a node token: the server it speaks for (by default, the one
        /// its agent registers).
        #[arg(long)]
        server: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tokens in force (never their secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token.
    Revoke {
        /// Its name.
        name: String,
    },
}

/// Token scope argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    /// Read and change everything.
    Admin,
    /// Read only.
    Read,
    /// A node agent.
    Node,
}

fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&chrono::Utc))
        .map_err(|_| format!("`{text}` is not an RFC 3339 time such as 2025-03-01T12:00:00Z"))
}

/// Parses an RFC 3339 time, or a date (its midnight, UTC).
fn parse_moment(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    parse_time(text).map_err(|_| {
        format!("`{text}` is neither a date such as 2025-01-01 nor an RFC 3339 time such as 2025-03-01T12:00:00Z")
    })
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
    if let Command::Openapi = cli.command {
        out!("{}", crate::admin::spec_json());
        return Ok(());
    }
    if let Command::ImportScaleliteEnv { file, out } = &cli.command {
        return scalelite_env::run(file, out.as_deref());
    }
    if let Command::Agent(args) = cli.command {
        init_tracing(&Settings::default());
        let mut args = args;
        // `switchboard --url URL --token T agent` works too.
        args.url = args.url.or(cli.remote);
        args.token = args.token.or(cli.token);
        return agent::run(args).await;
    }
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
    let remote = cli
        .remote
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let local_only = |name: &str| -> anyhow::Result<()> {
        if remote.is_some() {
            bail!("`{name}` works on this machine's database; drop --url (and SWITCHBOARD_URL)");
        }
        Ok(())
    };
    match cli.command {
        Command::Serve {
            demo, no_workers, ..
        } => {
            local_only("serve")?;
            serve(settings, demo, !no_workers).await
        }
        Command::Worker { listen } => {
            local_only("worker")?;
            worker(settings, listen).await
        }
        Command::Migrate => {
            local_only("migrate")?;
            app::open_store(&settings).await?;
            out!("database is up to date");
            Ok(())
        }
        Command::Secret => {
            local_only("secret")?;
            let store = app::open_store(&settings).await?;
            let secrets = app::resolve_secrets(&settings, &store).await?;
            out!("{}", secrets.accepted[0]);
            Ok(())
        }
        Command::Replay { check, bench } => {
            local_only("replay")?;
            let store = app::open_store(&settings).await?;
            match bench {
                Some(events) => switchboard_bench::replay::run(&store, events).await,
                None => replay::run(&store, check).await,
            }
        }
        Command::Recordings { command } => {
            local_only("recordings")?;
            let store = app::open_store(&settings).await?;
            // A recording-ready callback of an import done here is written to
            // the outbox; a running instance's workers deliver it.
            let (db, executor) = app::ports_of(&store, Default::default());
            let service = app::open_recordings(&settings, db, executor).await?;
            match command {
                RecordingsCommand::ImportDir { path } => {
                    let report =
                        switchboard_app::recordings::import::import_tree(&service, &path).await?;
                    for (path, reason) in &report.problems {
                        out!("skipped {}: {reason}", path.display());
                    }
                    out!(
                        "imported {} recordings, {} unchanged, {} skipped",
                        report.imported,
                        report.unchanged,
                        report.problems.len()
                    );
                    Ok(())
                }
                RecordingsCommand::Expire { dry_run } => {
                    // Tenants' days come from the database; the global
                    // default from this command's own settings, so say it.
                    out!(
                        "global default: {} (this command's [recordings] retention_days / SWITCHBOARD_RECORDINGS_RETENTION_DAYS; tenants' own days come from the database)",
                        settings
                            .recordings
                            .retention_days
                            .map_or("none".to_owned(), |days| format!("{days} days"))
                    );
                    let now_ms = chrono::Utc::now().timestamp_millis();
                    let expired = service.expire(now_ms, dry_run).await?;
                    let mut table = crate::cli::table::Table::new(&[
                        "RECORD ID",
                        "TENANT",
                        "MEETING",
                        "ENDED",
                        "BYTES",
                        "RULE",
                    ])
                    .right(&[4]);
                    for expiry in &expired {
                        table.row(vec![
                            expiry.record_id.clone(),
                            expiry.tenant.to_string(),
                            expiry.meeting_id.clone(),
                            chrono::DateTime::from_timestamp_millis(expiry.end_time_ms)
                                .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                                .unwrap_or_default(),
                            expiry.bytes.to_string(),
                            format!("{} {} days", expiry.rule.source, expiry.rule.days),
                        ]);
                    }
                    table.print_or("");
                    let bytes: u64 = expired.iter().map(|e| e.bytes).sum();
                    out!(
                        "{} {} recordings ({bytes} bytes)",
                        if dry_run { "would expire" } else { "expired" },
                        expired.len()
                    );
                    Ok(())
                }
                RecordingsCommand::MigrateStore {
                    to,
                    from,
                    tenant,
                    delete_source,
                } => {
                    let source = match &from {
                        Some(url) => service.stores.open(url)?,
                        None => service.files().clone(),
                    };
                    let target = service.stores.open(&to)?;
                    if source.describe() == target.describe() {
                        anyhow::bail!(
                            "the source and the target are the same store ({})",
                            target.describe()
                        );
                    }
                    out!("migrating {} -> {}", source.describe(), target.describe());
                    let tenant = tenant.map(switchboard_domain::ids::TenantId);
                    let report = service
                        .migrate_store(&source, &target, tenant.as_ref(), delete_source, |step| {
                            match &step.outcome {
                                Ok(copied) => out!(
                                    "[{}/{}] {}: {} objects ({} bytes) copied and verified, {} already there{}",
                                    step.index,
                                    step.total,
                                    step.record_id,
                                    copied.objects,
                                    copied.bytes,
                                    copied.present,
                                    if step.source_removed { "; source removed" } else { "" }
                                ),
                                Err(reason) => out!(
                                    "[{}/{}] {}: FAILED: {reason}",
                                    step.index,
                                    step.total,
                                    step.record_id
                                ),
                            }
                        })
                        .await?;
                    out!(
                        "migrated {} recordings ({} objects, {} bytes copied; {} objects already there), {} failed, {} skipped",
                        report.migrated,
                        report.copied.objects,
                        report.copied.bytes,
                        report.copied.present,
                        report.failed,
                        report.skipped
                    );
                    if report.failed > 0 {
                        anyhow::bail!(
                            "{} recordings were not migrated; run the command again",
                            report.failed
                        );
                    }
                    Ok(())
                }
                RecordingsCommand::BenchImport { sizes, each } => {
                    switchboard_bench::imports::run(&service, &sizes, each.max(1)).await
                }
                RecordingsCommand::Bench {
                    count,
                    imports,
                    samples,
                } => {
                    let render = |out: &mut String, recording: &RecordingRecord| {
                        crate::recordings::listing::recording_xml(out, recording, &service)
                    };
                    switchboard_bench::run(&service, &store, &render, count, imports, samples).await
                }
            }
        }
        Command::Events {
            command: EventsCommand::Archive { before, to },
        } => {
            local_only("events archive")?;
            let store = app::open_store(&settings).await?;
            let report = store.archive_events(before, &to).await?;
            out!(
                "archived {} events (positions {}..={}, recorded before {before}) to {}; \
                 SHA-256 of the events {}; states of {} streams kept",
                report.events,
                report.first_position,
                report.last_position,
                to.display(),
                report.sha256,
                report.streams
            );
            Ok(())
        }
        Command::Events {
            command: EventsCommand::VerifyArchive { file },
        } => {
            let summary = switchboard_store::verify_archive(&file)
                .map_err(|reason| anyhow::anyhow!("{}: {reason}", file.display()))?;
            out!(
                "{}: {} events, positions {}..={}, recorded before {}; SHA-256 {}",
                file.display(),
                summary.events,
                summary.header.first_position,
                summary.header.last_position,
                summary.header.before,
                summary.sha256
            );
            Ok(())
        }
        Command::Openapi | Command::Agent(_) | Command::ImportScaleliteEnv { .. } => {
            unreachable!("handled above")
        }
        command => {
            let target = match remote {
                Some(url) => {
                    let token = cli.token.as_deref().unwrap_or("");
                    if token.trim().is_empty() {
                        bail!(
                            "--url needs a token: pass --token TOKEN or set SWITCHBOARD_TOKEN (create one with `switchboard tokens create NAME --scope admin` on the instance)"
                        );
                    }
                    Target::remote(url, token)?
                }
                None => Target::local(&settings).await?,
            };
            match command {
                Command::Servers { command } => ops::servers(&target, command).await,
                Command::Meetings { command } => ops::meetings(&target, command).await,
                Command::Events { command } => ops::events(&target, command).await,
                Command::Tokens { command } => ops::tokens(&target, command).await,
                Command::Tenants { command } => tenants::run(&target, command).await,
                Command::Callbacks { command } => callbacks::run(&target, command).await,
                Command::Status { json } => ops::status(&target, json).await,
                Command::Usage {
                    tenant,
                    from,
                    to,
                    by,
                    json,
                    csv,
                } => {
                    let args = usage::UsageArgs {
                        tenant,
                        from,
                        to,
                        by,
                        json,
                        csv,
                    };
                    usage::run(&target, args).await
                }
                _ => unreachable!("local commands handled above"),
            }
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

/// Stops gracefully on SIGINT (Ctrl-C) or SIGTERM (systemd, containers).
/// The handlers are installed before this returns, so a signal sent right
/// after the banner is printed is not missed.
fn stop_on_signal(stop: Option<tokio::sync::oneshot::Sender<()>>) {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    tokio::spawn(async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("stopping");
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
    });
}

async fn worker(settings: Settings, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8091)));
    let store = app::open_store(&settings).await?;
    // The secrets sign the default tenant's callbacks delivered here.
    let secrets = app::resolve_secrets(&settings, &store).await?;
    let state = AppState::build(settings, store, secrets.accepted).await?;
    let mut running = app::start_worker(state, listen).await?;
    stop_on_signal(running.take_stop());
    out!(
        "Switchboard worker is polling servers; health and metrics at http://{}/health",
        running.addr
    );
    running.wait().await
}

async fn serve(
    settings: Settings,
    demo_servers: Option<usize>,
    workers: bool,
) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    crate::secrets::refuse_weak_tenant_secrets(&store).await?;
    let secrets = app::resolve_secrets(&settings, &store).await?;
    if let Some(secret) = &secrets.generated {
        // Shown once to a person at a terminal (and in the demo's banner);
        // never written to a journal or a log file.
        use std::io::IsTerminal;
        if demo_servers.is_some() || std::io::stdout().is_terminal() {
            out!("Generated a BBB API secret and stored it in the database: {secret}");
        } else {
            out!(
                "Generated a BBB API secret and stored it in the database; print it with `switchboard secret`"
            );
        }
        out!("(set SWITCHBOARD_SECRET to choose your own)");
    }
    let primary = secrets.accepted[0].clone();
    let pool = match demo_servers {
        Some(count) => Some(demo::start_pool(&store, &settings, count).await?),
        None => None,
    };
    let console_token = match (&pool, settings.console.enabled) {
        (Some(_), true) => Some(demo::console_token(&store, &settings).await?),
        _ => None,
    };
    let console_path = settings.console.public_path.clone();
    let listen = settings.listen;
    let state = AppState::build(settings, store, secrets.accepted).await?;
    let mut running = app::start(state, listen, Background { health: workers }).await?;
    stop_on_signal(running.take_stop());
    let api_url = running.api_url();
    out!("Switchboard is serving the BBB API at {api_url}");
    if let Some(pool) = &pool {
        let console_url = format!(
            "http://{}{}/",
            running.addr,
            console_path.trim_end_matches('/')
        );
        demo::print_instructions(
            &api_url,
            &primary,
            pool.len(),
            console_token
                .as_deref()
                .map(|token| (console_url.as_str(), token)),
        );
    } else if secrets.generated.is_none() {
        tracing::info!("using the configured or stored BBB API secret");
    }
    running.wait().await?;
    if let Some(pool) = pool {
        for simulator in pool {
            simulator.shutdown().await;
        }
    }
    Ok(())
}
