//! `switchboard-loadtool`: benchmarks Switchboard against simulated BBB servers
//! and a minimal hyper baseline, and writes the figures to
//! `docs/benchmarks.md`.
//!
//! `switchboard-loadtool run` measures, in this order: join against the
//! baseline, then for each database (PostgreSQL, and SQLite with `--sqlite`)
//! create, join and getMeetings against the `switchboard` binary and the
//! memory of its process once the meetings run, then the baseline again (the
//! machine's other load moves the figures; the faster baseline run is the
//! one Switchboard is compared with).
//!
//! `switchboard-loadtool poll` runs one `switchboard worker` against many
//! simulated servers and writes the polling figures (cycle time, CPU share,
//! memory, event-log growth) to `docs/benchmarks-polling.md`.
//!
//! `switchboard-loadtool meetings` runs `switchboard serve` with its poller
//! against simulated servers running meetings created through it, measures
//! getMeetings answered from the polled picture (and checks no server is
//! asked on the request path) against a hyper baseline serving the same
//! bytes, and writes `docs/benchmarks-get-meetings.md`.

mod agents;
mod baseline;
mod bbb;
mod bench;
mod instructions;
mod load;
mod meetings;
mod meetings_report;
mod poll;
mod poll_report;
mod report;
mod soak;
mod stats;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::baseline::Baseline;
use crate::bench::{DatabaseChoice, PassConfig};
use crate::load::{Expect, Load};
use crate::meetings::MeetingsConfig;
use crate::meetings_report::MeetingsReport;
use crate::poll::PollConfig;
use crate::poll_report::PollReport;
use crate::report::{Machine, Report};
use crate::stats::Summary;

/// Load tool for Switchboard.
#[derive(Debug, Parser)]
#[command(name = "switchboard-loadtool", version, about)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run every scenario and write the report.
    Run(RunArgs),
    /// Poll many simulated servers with one `switchboard worker` and write
    /// the polling report.
    Poll(PollArgs),
    /// Measure getMeetings answered from the polled picture, with
    /// `switchboard serve` polling simulated servers, and write the
    /// getMeetings report.
    Meetings(MeetingsArgs),
    /// Run a long mixed load, sample memory and descriptors, and write the
    /// soak report.
    Soak(SoakArgs),
    /// Many simulated node agents heartbeating into one `switchboard serve`
    /// on PostgreSQL, beside an HTTP echo baseline; writes the agent report.
    Agents(AgentsArgs),
    /// Count the instructions `serve` spends per join, getMeetingInfo,
    /// isMeetingRunning and create under callgrind (exact, unlike
    /// requests per second), optionally beside another build's.
    Instructions(InstructionsArgs),
    /// The plain HTTP echo server the agents benchmark compares with.
    #[command(hide = true)]
    Echo {
        /// Address to listen on.
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
}

/// Settings of `instructions`.
#[derive(Debug, clap::Args)]
struct InstructionsArgs {
    /// The switchboard binary (default: `switchboard` next to this executable).
    #[arg(long, value_name = "PATH")]
    switchboard: Option<PathBuf>,
    /// Another build to count the same way (e.g. the code before a change).
    #[arg(long, value_name = "PATH")]
    compare: Option<PathBuf>,
    /// Requests counted per call.
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// Uncounted requests per call before the counted ones.
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    /// Counted batches per call (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: u64,
    /// Keep callgrind's dumps of this build in this folder (one per round
    /// and call, labelled, and the idle ones, for `callgrind_annotate`).
    #[arg(long, value_name = "DIR")]
    keep_dumps: Option<PathBuf>,
    /// Where to write the report.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "docs/benchmarks-instructions.md"
    )]
    output: PathBuf,
}

/// Settings of `agents`.
#[derive(Debug, clap::Args)]
struct AgentsArgs {
    /// The switchboard binary (default: `switchboard` next to this executable).
    #[arg(long, value_name = "PATH")]
    switchboard: Option<PathBuf>,
    /// Simulated agents.
    #[arg(long, default_value_t = 10_000)]
    agents: usize,
    /// Seconds between one agent's heartbeats.
    #[arg(long, default_value_t = 5.0)]
    interval_secs: f64,
    /// Seconds measured (after one interval of warm-up).
    #[arg(long, default_value_t = 30.0)]
    duration_secs: f64,
    /// Keep-alive connections the heartbeats share.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Admin URL of the PostgreSQL server (a fresh database is created).
    #[arg(long, value_name = "URL", default_value = DEFAULT_POSTGRES)]
    postgres: String,
    /// Where to write the report.
    #[arg(long, value_name = "FILE", default_value = "docs/benchmarks-agent.md")]
    output: PathBuf,
}

/// Settings of `soak`.
#[derive(Debug, clap::Args)]
struct SoakArgs {
    /// The switchboard binary (default: `switchboard` next to this executable).
    #[arg(long, value_name = "PATH")]
    switchboard: Option<PathBuf>,
    /// Simulated BBB servers.
    #[arg(long, default_value_t = 10)]
    servers: usize,
    /// Meetings kept running.
    #[arg(long, default_value_t = 10_000)]
    meetings: usize,
    /// Minutes of mixed load per database.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 60.0)]
    sample_secs: f64,
    /// Minutes of warm-up left out of the slope.
    #[arg(long, default_value_t = 5.0)]
    warmup_minutes: f64,
    /// Connections of light calls.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds between health cycles.
    #[arg(long, default_value_t = 5.0)]
    interval_secs: f64,
    /// Run on PostgreSQL (admin URL) instead of SQLite.
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = DEFAULT_POSTGRES
    )]
    postgres: Option<String>,
    /// With `--postgres`, also run on SQLite (after PostgreSQL).
    #[arg(long)]
    sqlite: bool,
    /// Where to write the report.
    #[arg(long, value_name = "FILE", default_value = "docs/benchmarks-soak.md")]
    output: PathBuf,
}

/// The PostgreSQL admin URL used when none is given.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Settings of `run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The switchboard binary (default: `switchboard` next to this executable).
    #[arg(long, value_name = "PATH")]
    switchboard: Option<PathBuf>,
    /// Concurrent connections for join and create.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Concurrent connections for getMeetings (each answer is large).
    #[arg(long, default_value_t = 8)]
    get_meetings_connections: usize,
    /// Seconds per measured scenario.
    #[arg(long, default_value_t = 5.0)]
    duration_secs: f64,
    /// Seconds of uncounted warm-up before each measured scenario.
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
    /// Simulated BBB servers.
    #[arg(long, default_value_t = 4)]
    servers: usize,
    /// Meetings to have running before join, getMeetings and memory are measured.
    #[arg(long, default_value_t = 10_000)]
    meetings: usize,
    /// Meetings created before the timed creates (issue 22 measured creates
    /// beside 1,000 running meetings).
    #[arg(long, default_value_t = 0)]
    preload: usize,
    /// Run the health poller inside `serve` every this many seconds, as a
    /// deployment does (default: `serve --no-workers`, no poller).
    #[arg(long, value_name = "SECS")]
    health_interval_secs: Option<f64>,
    /// Admin URL of the PostgreSQL server; a fresh database is created on it
    /// with `psql` and dropped afterwards.
    #[arg(
        long,
        value_name = "URL",
        default_value = DEFAULT_POSTGRES
    )]
    postgres: String,
    /// Also run every Switchboard scenario on SQLite.
    #[arg(long)]
    sqlite: bool,
    /// Where to write the report.
    #[arg(long, value_name = "FILE", default_value = "docs/benchmarks.md")]
    output: PathBuf,
}

/// Settings of `poll`.
#[derive(Debug, clap::Args)]
struct PollArgs {
    /// The switchboard binary (default: `switchboard` next to this executable).
    #[arg(long, value_name = "PATH")]
    switchboard: Option<PathBuf>,
    /// Simulated BBB servers, all registered and enabled.
    #[arg(long, default_value_t = 1000)]
    servers: usize,
    /// Meetings running on each simulated server, created on it directly
    /// (unknown to Switchboard).
    #[arg(long, default_value_t = 2)]
    meetings_per_server: usize,
    /// Seconds between health cycles (`[health] interval_secs`).
    #[arg(long, default_value_t = 10.0)]
    interval_secs: f64,
    /// Timeout of one server's answer, milliseconds (`[health] timeout_ms`).
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// About how long the worker runs, seconds: the measurement covers the
    /// whole intervals after its first cycle that come nearest (at least one).
    #[arg(long, default_value_t = 60.0)]
    duration_secs: f64,
    /// Use a fresh database on this PostgreSQL server (admin URL; created
    /// with `psql`, dropped afterwards) instead of a fresh SQLite file.
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = DEFAULT_POSTGRES
    )]
    postgres: Option<String>,
    /// Where to write the report.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "docs/benchmarks-polling.md"
    )]
    output: PathBuf,
}

/// Settings of `meetings`.
#[derive(Debug, clap::Args)]
struct MeetingsArgs {
    /// The switchboard binary (default: `switchboard` next to this executable).
    #[arg(long, value_name = "PATH")]
    switchboard: Option<PathBuf>,
    /// Simulated BBB servers, all registered and enabled.
    #[arg(long, default_value_t = 10)]
    servers: usize,
    /// Meetings created through Switchboard.
    #[arg(long, default_value_t = 1000)]
    meetings: usize,
    /// Viewers joined through Switchboard, round-robin over the meetings.
    #[arg(long, default_value_t = 1000)]
    attendees: usize,
    /// Connection counts getMeetings is measured at (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "8,32")]
    connections: Vec<usize>,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 5.0)]
    duration_secs: f64,
    /// Seconds of uncounted warm-up before each measured phase.
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
    /// Seconds between health cycles of Switchboard's poller.
    #[arg(long, default_value_t = 1.0)]
    interval_secs: f64,
    /// Idle, half-sent connections held open during one more phase at the
    /// first connection count (0: no such phase).
    #[arg(long, default_value_t = 1000)]
    idle_connections: usize,
    /// Run on a fresh database on this PostgreSQL server (admin URL; created
    /// with `psql`, dropped afterwards) instead of a fresh SQLite file.
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = DEFAULT_POSTGRES
    )]
    postgres: Option<String>,
    /// With `--postgres`, also run on SQLite (after PostgreSQL), in the same
    /// report.
    #[arg(long)]
    sqlite: bool,
    /// Where to write the report.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "docs/benchmarks-get-meetings.md"
    )]
    output: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args).await,
        Command::Poll(args) => poll(args).await,
        Command::Meetings(args) => get_meetings(args).await,
        Command::Soak(args) => soak(args).await,
        Command::Agents(args) => {
            agents::run(agents::AgentsConfig {
                binary: switchboard_binary(args.switchboard)?,
                agents: args.agents,
                interval_secs: args.interval_secs,
                duration_secs: args.duration_secs,
                connections: args.connections,
                postgres: args.postgres,
                output: args.output,
            })
            .await
        }
        Command::Instructions(args) => instructions(args).await,
        Command::Echo { listen } => agents::echo(listen).await,
    }
}

/// `instructions`: callgrind counts of this build, and of `--compare`.
async fn instructions(args: InstructionsArgs) -> anyhow::Result<()> {
    instructions::check_tools()?;
    let binary = switchboard_binary(args.switchboard.clone())?;
    let config = instructions::InstructionsConfig {
        binary: binary.clone(),
        requests: args.requests.max(1),
        warmup: args.warmup,
        rounds: args.rounds.max(1),
        keep_dumps: args.keep_dumps.clone(),
    };
    let compared = match &args.compare {
        Some(other) => {
            let other = switchboard_binary(Some(other.clone()))?;
            eprintln!("counting {}", other.display());
            let costs = instructions::measure(&instructions::InstructionsConfig {
                binary: other.clone(),
                keep_dumps: None,
                ..config.clone()
            })
            .await?;
            Some((other, costs))
        }
        None => None,
    };
    eprintln!("counting {}", binary.display());
    let measured = instructions::measure(&config).await?;
    let report = instructions::report(
        &std::env::args().collect::<Vec<_>>().join(" "),
        &Machine::detect().describe(),
        &build_profile(&binary),
        &config,
        &measured,
        compared
            .as_ref()
            .map(|(path, costs)| (path.as_path(), costs.as_slice())),
    );
    print!("{report}");
    write_report(&args.output, &report)
}

/// `soak`: one run per database, one report.
async fn soak(args: SoakArgs) -> anyhow::Result<()> {
    let binary = switchboard_binary(args.switchboard.clone())?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let machine = Machine::detect();
    let config = soak::SoakConfig {
        binary: binary.clone(),
        servers: args.servers,
        meetings: args.meetings,
        duration: Duration::from_secs_f64(args.minutes * 60.0),
        sample_every: Duration::from_secs_f64(args.sample_secs),
        warmup: Duration::from_secs_f64(args.warmup_minutes * 60.0),
        connections: args.connections,
        interval_secs: args.interval_secs,
        postgres: None,
    };
    let mut databases = vec![args.postgres.clone()];
    if args.postgres.is_some() && args.sqlite {
        databases.push(None);
    }
    let mut results = Vec::new();
    for postgres in databases {
        let config = soak::SoakConfig {
            postgres,
            ..config.clone()
        };
        results.push(soak::run(&config).await?);
    }
    let report = soak::SoakReport {
        date,
        machine,
        profile: build_profile(&binary),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        results,
    };
    for verdict in report.verdicts() {
        println!("{}", verdict.console_line());
    }
    write_report(&args.output, &report.markdown())
}

/// The switchboard binary: the one given, else `switchboard` next to the
/// load tool; it must exist.
fn switchboard_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let binary = match given {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("the load tool's executable has no folder")?
            .join("switchboard"),
    };
    if !binary.is_file() {
        bail!(
            "no switchboard binary at {} (build it with `cargo build --release -p switchboard-api`, or pass --switchboard)",
            binary.display()
        );
    }
    Ok(binary)
}

/// Source revision and build profiles, for the reports.
fn build_profile(binary: &std::path::Path) -> String {
    format!(
        "{}; load tool {}, switchboard `{}`",
        source_revision(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        binary.display()
    )
}

/// Writes a report, creating its folder.
fn write_report(output: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(folder) = output.parent()
        && !folder.as_os_str().is_empty()
    {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(output, text).with_context(|| format!("cannot write {}", output.display()))?;
    println!("wrote {}", output.display());
    Ok(())
}

/// The workspace's git commit, and whether it had uncommitted changes.
fn source_revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => match git(&["status", "--porcelain"]) {
            Some(changes) if !changes.is_empty() => {
                format!("commit {commit} with uncommitted changes")
            }
            _ => format!("commit {commit}"),
        },
        None => "unknown commit".to_owned(),
    }
}

/// Measures join against the baseline server, started for this and stopped
/// after; `when` labels the progress line.
async fn measure_baseline(
    args: &RunArgs,
    machine: &Machine,
    warmup: Duration,
    duration: Duration,
    when: &str,
) -> anyhow::Result<Summary> {
    let secret = target::random_hex(20);
    let server = Baseline::start(secret.clone(), machine.cpus)?;
    let summary = Load::timed(server.addr, args.connections, duration, Expect::Redirect)
        .warmed(warmup)
        .run(Arc::new(move |seq| {
            bbb::join("bench-meeting", seq, &secret)
        }))
        .await;
    tokio::task::spawn_blocking(move || server.stop()).await?;
    eprintln!(
        "[baseline {when}] join: {:.0} ok/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
        summary.rate, summary.p50_ms, summary.p99_ms, summary.errors
    );
    Ok(summary)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.get_meetings_connections == 0 || args.servers == 0 {
        bail!("--connections, --get-meetings-connections and --servers must be at least 1");
    }
    if !(args.duration_secs > 0.0 && args.duration_secs <= 60.0) {
        bail!("--duration-secs must be above 0 and at most 60");
    }
    if !(0.0..=10.0).contains(&args.warmup_secs) {
        bail!("--warmup-secs must be between 0 and 10");
    }
    let binary = switchboard_binary(args.switchboard.clone())?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let machine = Machine::detect();
    let duration = Duration::from_secs_f64(args.duration_secs);
    let warmup = Duration::from_secs_f64(args.warmup_secs);

    let baseline_before = measure_baseline(&args, &machine, warmup, duration, "before").await?;

    let config = PassConfig {
        binary: binary.clone(),
        connections: args.connections,
        get_meetings_connections: args.get_meetings_connections,
        duration,
        warmup,
        servers: args.servers,
        meetings: args.meetings,
        preload: args.preload,
        health_interval_secs: args.health_interval_secs,
        baseline_threads: machine.cpus,
    };
    let mut choices = vec![DatabaseChoice::Postgres(args.postgres.clone())];
    if args.sqlite {
        choices.push(DatabaseChoice::Sqlite);
    }
    let mut passes = Vec::new();
    for choice in &choices {
        passes.push(bench::run_pass(&config, choice).await?);
    }

    let baseline_after = measure_baseline(&args, &machine, warmup, duration, "after").await?;

    let report = Report {
        date,
        profile: build_profile(&binary),
        machine,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        servers: args.servers,
        meetings: args.meetings,
        preload: args.preload,
        health_interval_secs: args.health_interval_secs,
        duration_secs: args.duration_secs,
        warmup_secs: args.warmup_secs,
        baselines: vec![
            ("before".to_owned(), baseline_before),
            ("after".to_owned(), baseline_after),
        ],
        passes,
    };
    println!("{}", report.console());
    write_report(&args.output, &report.markdown())
}

async fn poll(args: PollArgs) -> anyhow::Result<()> {
    if args.servers == 0 {
        bail!("--servers must be at least 1");
    }
    if !(args.interval_secs >= 0.1 && args.interval_secs <= 600.0) {
        bail!("--interval-secs must be between 0.1 and 600");
    }
    if !(args.duration_secs >= args.interval_secs && args.duration_secs <= 3600.0) {
        bail!("--duration-secs must be at least --interval-secs and at most 3600");
    }
    if args.timeout_ms == 0 {
        bail!("--timeout-ms must be at least 1");
    }
    let binary = switchboard_binary(args.switchboard.clone())?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let machine = Machine::detect();
    let config = PollConfig {
        binary: binary.clone(),
        servers: args.servers,
        meetings_per_server: args.meetings_per_server,
        interval_secs: args.interval_secs,
        timeout_ms: args.timeout_ms,
        duration_secs: args.duration_secs,
        postgres: args.postgres.clone(),
    };
    let result = poll::run(&config).await?;
    let report = PollReport {
        date,
        machine,
        profile: build_profile(&binary),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        result,
    };
    println!("{}", report.console());
    write_report(&args.output, &report.markdown())
}

async fn get_meetings(args: MeetingsArgs) -> anyhow::Result<()> {
    if args.servers == 0 || args.meetings == 0 {
        bail!("--servers and --meetings must be at least 1");
    }
    if args.connections.is_empty() || args.connections.contains(&0) {
        bail!("--connections must list connection counts of at least 1");
    }
    if !(args.duration_secs > 0.0 && args.duration_secs <= 60.0) {
        bail!("--duration-secs must be above 0 and at most 60");
    }
    if !(0.0..=10.0).contains(&args.warmup_secs) {
        bail!("--warmup-secs must be between 0 and 10");
    }
    if !(args.interval_secs >= 0.1 && args.interval_secs <= 60.0) {
        bail!("--interval-secs must be between 0.1 and 60");
    }
    let binary = switchboard_binary(args.switchboard.clone())?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let machine = Machine::detect();
    let config = MeetingsConfig {
        binary: binary.clone(),
        servers: args.servers,
        meetings: args.meetings,
        attendees: args.attendees,
        connections: args.connections.clone(),
        create_connections: 16,
        duration: Duration::from_secs_f64(args.duration_secs),
        warmup: Duration::from_secs_f64(args.warmup_secs),
        interval_secs: args.interval_secs,
        postgres: None,
        baseline_threads: machine.cpus,
        idle_connections: args.idle_connections,
    };
    let mut databases = Vec::new();
    match &args.postgres {
        Some(url) => {
            databases.push(Some(url.clone()));
            if args.sqlite {
                databases.push(None);
            }
        }
        None => databases.push(None),
    }
    let mut results = Vec::new();
    for postgres in databases {
        let config = MeetingsConfig {
            postgres,
            ..config.clone()
        };
        results.push(meetings::run(&config).await?);
    }
    let report = MeetingsReport {
        date,
        machine,
        profile: build_profile(&binary),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        results,
    };
    println!("{}", report.console());
    write_report(&args.output, &report.markdown())
}
