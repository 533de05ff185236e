//! `switchboard-loadtool poll`: one `switchboard worker` polling many
//! simulated BBB servers, as the issue's polling benchmark asks: the cycle
//! time, the CPU share and memory of the worker process, and how much the
//! event log grows while nothing changes.
//!
//! The simulators run in this process, each with a few meetings created on it
//! directly (so getMeetings answers carry meetings, as real ones do; they are
//! unknown to Switchboard, and with `adopt_unknown` off reconciliation only
//! logs them). They are registered with one `switchboard servers sync FILE`
//! (Scalelite's YAML format), then the worker runs as a child process with a
//! configuration file setting `[health] interval_secs` and `timeout_ms`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bbb_simulator::{Simulator, SimulatorConfig};
use tokio::process::Command;

use crate::load;
use crate::target::{self, CpuTime, Database, Memory, random_hex};

/// The worker's log filter: the default one, plus the poller's debug line
/// after every cycle (`health cycle polled=.. healthy=.. elapsed_ms=..`),
/// which gives each cycle's exact duration.
const LOG_FILTER: &str = "info,sqlx=warn,sea_orm=warn,switchboard_app::health=debug";

/// The warning reconciliation logs for every meeting a server lists that
/// Switchboard did not place.
const UNKNOWN_MEETING_WARNING: &str = "unknown to Switchboard";

/// How long the worker may take to finish its first cycle, on top of one
/// interval.
const FIRST_CYCLE_SLACK: Duration = Duration::from_secs(60);

/// Open files the load tool needs besides two per simulator (its listener
/// and the worker's connection to it).
const FD_MARGIN: u64 = 128;

/// Settings of one polling run.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// The `switchboard` binary.
    pub binary: PathBuf,
    /// Simulated BBB servers, all registered and enabled.
    pub servers: usize,
    /// Meetings created directly on each simulated server.
    pub meetings_per_server: usize,
    /// `[health] interval_secs`.
    pub interval_secs: f64,
    /// `[health] timeout_ms`.
    pub timeout_ms: u64,
    /// How long the worker runs, seconds.
    pub duration_secs: f64,
    /// Admin URL of a PostgreSQL server to create a fresh database on; SQLite
    /// when `None`.
    pub postgres: Option<String>,
}

/// One health cycle, from the worker's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Cycle {
    /// When it started, seconds after the worker was started.
    pub started_secs: f64,
    /// How long it took, milliseconds.
    pub elapsed_ms: u64,
    /// Servers asked.
    pub polled: u64,
    /// Servers that answered well.
    pub healthy: u64,
}

/// The worker's cycle-duration histogram, from `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Cycles recorded.
    pub count: u64,
    /// Their summed duration, seconds.
    pub sum_secs: f64,
    /// Finite bucket bounds (seconds) with their cumulative counts, ascending.
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// Mean cycle duration, milliseconds.
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_secs / self.count as f64 * 1000.0
        }
    }

    /// The smallest bucket bound at or below which `share` of the cycles
    /// finished; `None` when that is beyond the largest finite bucket.
    pub fn bound(&self, share: f64) -> Option<f64> {
        let wanted = (share * self.count as f64).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= wanted)
            .map(|(bound, _)| *bound)
    }
}

/// Warnings and errors the worker logged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogSummary {
    /// Lines written.
    pub lines: usize,
    /// Bytes written.
    pub bytes: usize,
    /// Warnings about meetings unknown to Switchboard.
    pub unknown_meeting_warnings: usize,
    /// Other WARN and ERROR lines.
    pub other_problems: usize,
    /// A few of them.
    pub samples: Vec<String>,
}

/// What one polling run measured.
#[derive(Debug, Clone)]
pub struct PollResult {
    /// `PostgreSQL` or `SQLite`.
    pub database: &'static str,
    /// The settings of the run.
    pub config: PollConfig,
    /// How long `switchboard servers sync` took to register the servers.
    pub register_secs: f64,
    /// Events in the log before the worker started (the registration).
    pub events_before: u64,
    /// Events appended while the worker ran, by type.
    pub appended: BTreeMap<String, u64>,
    /// Every cycle, from the worker's log.
    pub cycles: Vec<Cycle>,
    /// The cycle-duration histogram at the end.
    pub histogram: Option<Histogram>,
    /// Start of the measurement window (the end of the first cycle),
    /// seconds after the worker was started.
    pub window_from_secs: f64,
    /// Length of the window, seconds: whole intervals.
    pub window_secs: f64,
    /// Intervals in the window.
    pub window_intervals: u64,
    /// CPU the worker used in the window.
    pub window_cpu: CpuTime,
    /// CPU the load tool (the simulators) used in the window.
    pub loadtool_window_cpu: CpuTime,
    /// Wall time from starting the worker to the end of the window, seconds.
    pub run_secs: f64,
    /// CPU the worker used over that time, start-up included.
    pub run_cpu: CpuTime,
    /// Clock ticks per second.
    pub ticks_per_sec: u64,
    /// The worker's memory at the end.
    pub memory: Memory,
    /// The worker's threads at the end.
    pub threads: u64,
    /// The worker's open file descriptors at the end.
    pub open_fds: usize,
    /// Its soft and hard limit on open files (`None`: unlimited).
    pub fd_limits: (Option<u64>, Option<u64>),
    /// Probes that succeeded and failed, by `switchboard_worker_jobs_total`.
    pub probes_ok: u64,
    /// See `probes_ok`.
    pub probes_failed: u64,
    /// Cycles that failed as a whole.
    pub failed_cycles: u64,
    /// `switchboard_event_log_position` after the first cycle and at the end.
    pub position_gauge: (Option<f64>, Option<f64>),
    /// What the worker logged.
    pub log: LogSummary,
}

impl PollResult {
    /// Share of one core the worker used in the window.
    pub fn cpu_share(&self) -> f64 {
        share(self.window_cpu, self.ticks_per_sec, self.window_secs)
    }

    /// Share of one core the worker used from its start to the end.
    pub fn run_cpu_share(&self) -> f64 {
        share(self.run_cpu, self.ticks_per_sec, self.run_secs)
    }

    /// Share of one core the load tool used in the window.
    pub fn loadtool_cpu_share(&self) -> f64 {
        share(
            self.loadtool_window_cpu,
            self.ticks_per_sec,
            self.window_secs,
        )
    }

    /// Events appended while the worker ran.
    pub fn appended_total(&self) -> u64 {
        self.appended.values().sum()
    }

    /// The cycles after the first (which opens every connection).
    pub fn later_cycles(&self) -> &[Cycle] {
        self.cycles.get(1..).unwrap_or_default()
    }

    /// The longest cycle, milliseconds.
    pub fn max_cycle_ms(&self) -> Option<u64> {
        self.cycles.iter().map(|cycle| cycle.elapsed_ms).max()
    }
}

/// `ticks` of CPU over `seconds` of wall time, as a share of one core.
fn share(cpu: CpuTime, ticks_per_sec: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    cpu.total() as f64 / ticks_per_sec.max(1) as f64 / seconds
}

/// Runs the benchmark; whatever happens, the worker, the simulators, the
/// database and the data folder are cleaned up.
pub async fn run(config: &PollConfig) -> anyhow::Result<PollResult> {
    check_open_file_limit(config.servers)?;
    let data_dir = std::env::temp_dir().join(format!("switchboard-poll-{}", random_hex(4)));
    std::fs::create_dir_all(&data_dir)?;
    let database = match &config.postgres {
        Some(admin_url) => Database::postgres(admin_url).await?,
        None => Database::sqlite(&data_dir),
    };
    let mut simulators = Vec::with_capacity(config.servers);
    let result = measure(config, &database, &data_dir, &mut simulators).await;
    let mut stopping = tokio::task::JoinSet::new();
    for simulator in simulators {
        stopping.spawn(async move { simulator.shutdown().await });
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), stopping.join_all()).await;
    if let Err(err) = database.drop_created().await {
        eprintln!("[poll] could not drop the benchmark database: {err:#}");
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

/// Fails early when the open-file limit cannot hold a listener and a
/// connection per simulator (the worker inherits the same limit and needs
/// one connection per server).
fn check_open_file_limit(servers: usize) -> anyhow::Result<()> {
    let needed = servers as u64 * 2 + FD_MARGIN;
    if let (Some(soft), hard) = target::open_file_limits(std::process::id())?
        && soft < needed
    {
        let hint = match hard {
            Some(hard) if hard < needed => {
                format!("the hard limit is {hard}: ask for a higher one, or use fewer --servers")
            }
            _ => format!("raise it first, e.g. `ulimit -n {needed}`"),
        };
        bail!(
            "the open-file limit is {soft}, {servers} simulated servers need about {needed} \
             (a listener and a connection each, in this process): {hint}"
        );
    }
    Ok(())
}

/// Starts everything, lets the worker poll, and reads the figures.
async fn measure(
    config: &PollConfig,
    database: &Database,
    data_dir: &Path,
    simulators: &mut Vec<Simulator>,
) -> anyhow::Result<PollResult> {
    let started = Instant::now();
    for server in 0..config.servers {
        let simulator = Simulator::start(SimulatorConfig {
            secret: random_hex(20),
            ..SimulatorConfig::default()
        })
        .await?;
        for meeting in 0..config.meetings_per_server {
            simulator.create_meeting_directly(
                &format!("poll-{server}-{meeting}"),
                &format!("Poll {server} {meeting}"),
            );
        }
        simulators.push(simulator);
    }
    eprintln!(
        "[poll] {} simulated servers with {} meetings each started in {:.1} s",
        config.servers,
        config.meetings_per_server,
        started.elapsed().as_secs_f64()
    );

    let cli = Cli {
        binary: &config.binary,
        database,
        data_dir,
    };
    let sync_file = data_dir.join("servers.yml");
    std::fs::write(&sync_file, sync_yaml(simulators))?;
    let started = Instant::now();
    cli.run(&[
        OsStr::new("servers"),
        OsStr::new("sync"),
        sync_file.as_os_str(),
    ])
    .await?;
    let register_secs = started.elapsed().as_secs_f64();
    let before = cli.events_after(0).await?;
    let events_before = before.types.values().sum();
    eprintln!(
        "[poll] {} servers registered with one `servers sync` in {register_secs:.1} s \
         ({events_before} events); database {}",
        config.servers, database.label
    );

    let config_file = data_dir.join("switchboard.toml");
    std::fs::write(
        &config_file,
        format!(
            "[health]\ninterval_secs = {}\ntimeout_ms = {}\n",
            config.interval_secs, config.timeout_ms
        ),
    )?;
    let addr = target::free_port()?;
    let log = data_dir.join("worker.log");
    let log_file = std::fs::File::create(&log)?;
    let mut command = cli.command();
    let mut child = command
        .arg("--config")
        .arg(&config_file)
        .args(["worker", "--listen", &addr.to_string()])
        .env("SWITCHBOARD_LOG", LOG_FILTER)
        .env("NO_COLOR", "1")
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", config.binary.display()))?;
    let spawned = Instant::now();
    let spawned_at = chrono::Utc::now();
    let pid = child.id().context("the worker exited at once")?;
    eprintln!("[poll] worker pid {pid}, /metrics at http://{addr}/metrics");

    let interval = Duration::from_secs_f64(config.interval_secs);
    let log_tail = || tail(&std::fs::read_to_string(&log).unwrap_or_default(), 20);
    // The first cycle starts as the worker starts; the window opens once it
    // is over, so start-up and the first connections stay out of it.
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if !parse_cycles(&text, spawned_at).is_empty() {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("the worker exited ({status}):\n{}", log_tail());
        }
        if spawned.elapsed() > interval + FIRST_CYCLE_SLACK {
            bail!(
                "the worker did not finish a health cycle within {:?}:\n{}",
                interval + FIRST_CYCLE_SLACK,
                log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gauge_start = match scrape(addr).await {
        Ok(metrics) => metric(&metrics, "switchboard_event_log_position", &[]),
        Err(err) => {
            eprintln!("[poll] /metrics after the first cycle: {err:#}");
            None
        }
    };
    let window_from = spawned.elapsed();
    let window_intervals = ((config.duration_secs - window_from.as_secs_f64())
        / config.interval_secs)
        .round()
        .max(1.0) as u64;
    let window = interval * window_intervals as u32;
    let window_start = Instant::now();
    let cpu_start = CpuTime::of(pid)?;
    let own_start = CpuTime::of(std::process::id())?;
    eprintln!(
        "[poll] first cycle done {:.1} s after start; measuring {} interval(s), {:.0} s",
        window_from.as_secs_f64(),
        window_intervals,
        window.as_secs_f64()
    );
    while window_start.elapsed() < window {
        if let Some(status) = child.try_wait()? {
            bail!("the worker exited ({status}):\n{}", log_tail());
        }
        let left = window.saturating_sub(window_start.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
    let cpu_end = CpuTime::of(pid)?;
    let window_secs = window_start.elapsed().as_secs_f64();
    let own_end = CpuTime::of(std::process::id())?;
    let run_secs = spawned.elapsed().as_secs_f64();
    let memory = Memory::of(pid)?;
    let threads = target::threads(pid)?;
    let open_fds = target::open_fds(pid)?;
    let fd_limits = target::open_file_limits(pid)?;
    let metrics = scrape(addr)
        .await
        .context("cannot read the worker's /metrics")?;
    let _ = child.kill().await;

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let cycles = parse_cycles(&text, spawned_at);
    let after = cli.events_after(before.last).await?;
    let cycle_labels = [("task", "health_poll")];
    let result = PollResult {
        database: database.label,
        config: config.clone(),
        register_secs,
        events_before,
        appended: after.types,
        cycles,
        histogram: histogram(&metrics, "switchboard_worker_cycle_duration_seconds"),
        window_from_secs: window_from.as_secs_f64(),
        window_secs,
        window_intervals,
        window_cpu: cpu_end.since(cpu_start),
        loadtool_window_cpu: own_end.since(own_start),
        run_secs,
        run_cpu: cpu_end,
        ticks_per_sec: target::clock_ticks(),
        memory,
        threads,
        open_fds,
        fd_limits,
        probes_ok: metric(
            &metrics,
            "switchboard_worker_jobs_total",
            &[("task", "health_poll"), ("outcome", "success")],
        )
        .unwrap_or(0.0) as u64,
        probes_failed: metric(
            &metrics,
            "switchboard_worker_jobs_total",
            &[("task", "health_poll"), ("outcome", "failure")],
        )
        .unwrap_or(0.0) as u64,
        failed_cycles: metric(&metrics, "switchboard_worker_failures_total", &cycle_labels)
            .unwrap_or(0.0) as u64,
        position_gauge: (
            gauge_start,
            metric(&metrics, "switchboard_event_log_position", &[]),
        ),
        log: summarise_log(&text),
    };
    eprintln!(
        "[poll] {} cycles, longest {} ms; worker {:.2}% of a core; {} events appended",
        result.cycles.len(),
        result.max_cycle_ms().unwrap_or(0),
        result.cpu_share() * 100.0,
        result.appended_total()
    );
    Ok(result)
}

/// Runs `switchboard` commands on the benchmark's database.
struct Cli<'a> {
    binary: &'a Path,
    database: &'a Database,
    data_dir: &'a Path,
}

/// What a walk through the event log found.
#[derive(Debug, Default)]
struct EventsSeen {
    /// Events by type.
    types: BTreeMap<String, u64>,
    /// The last position seen (the `after` given when none was).
    last: i64,
}

impl Cli<'_> {
    /// `switchboard --database URL --data-dir DIR`, without any
    /// `SWITCHBOARD_*` variable of this environment (`SWITCHBOARD_URL` would
    /// send the commands elsewhere, `SWITCHBOARD_HEALTH_INTERVAL_SECS` would
    /// override the configuration file).
    fn command(&self) -> Command {
        let mut command = Command::new(self.binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SWITCHBOARD_") {
                command.env_remove(key);
            }
        }
        command
            .arg("--database")
            .arg(&self.database.url)
            .arg("--data-dir")
            .arg(self.data_dir)
            .stdin(Stdio::null());
        command
    }

    /// Runs a command to its end and returns its standard output.
    async fn run(&self, args: &[&OsStr]) -> anyhow::Result<String> {
        let output = self
            .command()
            .args(args)
            .output()
            .await
            .with_context(|| format!("cannot run {}", self.binary.display()))?;
        if !output.status.success() {
            bail!(
                "`switchboard {}` failed: {}",
                args.iter()
                    .map(|arg| arg.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Every event after log position `after`, with
    /// `switchboard events list --json --limit 1000 --after N`, page by page.
    async fn events_after(&self, after: i64) -> anyhow::Result<EventsSeen> {
        let mut seen = EventsSeen {
            last: after,
            ..EventsSeen::default()
        };
        loop {
            let after = seen.last.to_string();
            let json = self
                .run(
                    &[
                        "events", "list", "--json", "--limit", "1000", "--after", &after,
                    ]
                    .map(OsStr::new),
                )
                .await?;
            let page = parse_event_page(&json)?;
            for (position, event_type) in &page.events {
                seen.last = seen.last.max(*position);
                *seen.types.entry(event_type.clone()).or_default() += 1;
            }
            if page.next_after.is_none() || page.events.is_empty() {
                return Ok(seen);
            }
        }
    }
}

/// The servers as a Scalelite `servers:sync` file, every one enabled.
fn sync_yaml(simulators: &[Simulator]) -> String {
    let mut out = String::from("servers:\n");
    for (index, simulator) in simulators.iter().enumerate() {
        let _ = write!(
            out,
            "  sim-{index:05}:\n    url: \"{}\"\n    secret: \"{}\"\n    enabled: true\n",
            simulator.url(),
            simulator.secret()
        );
    }
    out
}

/// `GET /metrics` of the worker.
pub(crate) async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let (status, body) = load::get(addr, "/metrics").await?;
    if !status.is_success() {
        bail!("/metrics answered HTTP {}", status.as_u16());
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `text` without ANSI escape sequences (colours), in case the log has them.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `key=value` among the whitespace-separated words of a line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// The cycles the poller logged (`health cycle ... elapsed_ms=N`), with
/// their start relative to `spawned_at`.
fn parse_cycles(log: &str, spawned_at: chrono::DateTime<chrono::Utc>) -> Vec<Cycle> {
    strip_ansi(log)
        .lines()
        .filter(|line| line.contains("health cycle "))
        .filter_map(|line| {
            let elapsed_ms: u64 = field(line, "elapsed_ms")?.parse().ok()?;
            let logged_at = line
                .split_whitespace()
                .next()
                .and_then(|stamp| chrono::DateTime::parse_from_rfc3339(stamp).ok())?;
            let ended_ms = (logged_at.with_timezone(&chrono::Utc) - spawned_at).num_milliseconds();
            Some(Cycle {
                started_secs: (ended_ms - elapsed_ms as i64) as f64 / 1000.0,
                elapsed_ms,
                polled: field(line, "polled")?.parse().ok()?,
                healthy: field(line, "healthy")?.parse().ok()?,
            })
        })
        .collect()
}

/// Counts the worker's lines, its warnings about unknown meetings and its
/// other warnings and errors.
fn summarise_log(log: &str) -> LogSummary {
    let mut summary = LogSummary {
        bytes: log.len(),
        ..LogSummary::default()
    };
    for line in strip_ansi(log).lines() {
        summary.lines += 1;
        let level = line.split_whitespace().nth(1).unwrap_or_default();
        if level != "WARN" && level != "ERROR" {
            continue;
        }
        if line.contains(UNKNOWN_MEETING_WARNING) {
            summary.unknown_meeting_warnings += 1;
        } else {
            summary.other_problems += 1;
            if summary.samples.len() < 5 {
                summary.samples.push(line.chars().take(300).collect());
            }
        }
    }
    summary
}

/// The labels and value of a Prometheus text-format sample line, if it is a
/// sample of `name`.
fn sample<'a>(line: &'a str, name: &str) -> Option<(Vec<(&'a str, &'a str)>, f64)> {
    let rest = line.strip_prefix(name)?;
    let (labels, value) = match rest.strip_prefix('{') {
        Some(rest) => {
            let (labels, value) = rest.split_once('}')?;
            let pairs = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((key.trim(), value.trim().trim_matches('"')))
                })
                .collect();
            (pairs, value)
        }
        None if rest.starts_with(' ') => (Vec::new(), rest),
        None => return None,
    };
    let value = value.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number => number.parse().ok()?,
    };
    Some((labels, value))
}

/// The value of the first sample of `name` carrying every label of `wanted`.
pub(crate) fn metric(text: &str, name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (labels, value) = sample(line, name)?;
        wanted
            .iter()
            .all(|want| labels.contains(want))
            .then_some(value)
    })
}

/// The `health_poll` histogram `name` (`_bucket`, `_sum`, `_count`).
fn histogram(text: &str, name: &str) -> Option<Histogram> {
    let wanted = [("task", "health_poll")];
    let count = metric(text, &format!("{name}_count"), &wanted)? as u64;
    let sum_secs = metric(text, &format!("{name}_sum"), &wanted)?;
    let bucket = format!("{name}_bucket");
    let mut buckets: Vec<(f64, u64)> = text
        .lines()
        .filter_map(|line| {
            let (labels, value) = sample(line, &bucket)?;
            if !labels.contains(&wanted[0]) {
                return None;
            }
            let (_, bound) = labels.iter().find(|(key, _)| *key == "le")?;
            let bound: f64 = bound.parse().ok()?;
            bound.is_finite().then_some((bound, value as u64))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(Histogram {
        count,
        sum_secs,
        buckets,
    })
}

/// One page of `switchboard events list --json`.
#[derive(Debug, Default, PartialEq)]
struct EventPage {
    /// Position and type of every event, in order.
    events: Vec<(i64, String)>,
    /// The position to continue after, when there are more.
    next_after: Option<i64>,
}

/// A token of JSON text.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// `{` or `[`.
    Open,
    /// `}` or `]`.
    Close,
    /// A string, without its quotes (escapes left as they are).
    Text(String),
    /// A number, `true`, `false` or `null`.
    Scalar(String),
    /// `:`.
    Colon,
    /// `,`.
    Comma,
}

/// Splits JSON text into tokens.
fn tokens(json: &str) -> anyhow::Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' => out.push(Token::Open),
            '}' | ']' => out.push(Token::Close),
            ':' => out.push(Token::Colon),
            ',' => out.push(Token::Comma),
            '"' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            text.push('\\');
                            text.push(chars.next().context("JSON ends inside a string")?);
                        }
                        Some(c) => text.push(c),
                        None => bail!("JSON ends inside a string"),
                    }
                }
                out.push(Token::Text(text));
            }
            c if c.is_whitespace() => {}
            c => {
                let mut scalar = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || matches!(next, ',' | ':' | '}' | ']') {
                        break;
                    }
                    scalar.push(next);
                    chars.next();
                }
                out.push(Token::Scalar(scalar));
            }
        }
    }
    Ok(out)
}

/// Reads `{"events": [{"position": N, "event_type": "T", ...}, ...],
/// "next_after": N}`: the keys are taken only at their own depth, so a
/// payload holding the same names changes nothing.
fn parse_event_page(json: &str) -> anyhow::Result<EventPage> {
    const EVENT_DEPTH: usize = 3;
    let tokens = tokens(json)?;
    let mut page = EventPage::default();
    let mut depth = 0usize;
    let mut position: Option<i64> = None;
    let mut event_type: Option<String> = None;
    for (index, token) in tokens.iter().enumerate() {
        match token {
            Token::Open => depth += 1,
            Token::Close => {
                if depth == EVENT_DEPTH {
                    let (Some(position), Some(event_type)) = (position.take(), event_type.take())
                    else {
                        bail!("an event without position or event_type in:\n{json}");
                    };
                    page.events.push((position, event_type));
                }
                depth = depth.checked_sub(1).context("unbalanced JSON")?;
            }
            Token::Text(key) if tokens.get(index + 1) == Some(&Token::Colon) => {
                let value = tokens.get(index + 2);
                match (depth, key.as_str(), value) {
                    (EVENT_DEPTH, "position", Some(Token::Scalar(number))) => {
                        position = Some(number.parse().context("a position is not a number")?);
                    }
                    (EVENT_DEPTH, "event_type", Some(Token::Text(text))) => {
                        event_type = Some(text.clone());
                    }
                    (1, "next_after", Some(Token::Scalar(number))) => {
                        page.next_after = number.parse().ok();
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        bail!("unbalanced JSON");
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_pages_are_read_at_their_depth() {
        let json = r#"{
  "events": [
    {
      "position": 7,
      "stream": "server:1",
      "event_type": "ServerAdded",
      "payload": {"position": 99, "event_type": "Nope", "settings": {"url": "x\"}"}},
      "actor": "cli"
    },
    {"position": 8, "event_type": "ServerEnabled", "payload": {"type": "ServerEnabled"}}
  ],
  "next_after": 8
}"#;
        assert_eq!(
            parse_event_page(json).unwrap(),
            EventPage {
                events: vec![
                    (7, "ServerAdded".to_owned()),
                    (8, "ServerEnabled".to_owned())
                ],
                next_after: Some(8),
            }
        );
        assert_eq!(
            parse_event_page("{\n  \"events\": []\n}\n").unwrap(),
            EventPage::default()
        );
        assert!(parse_event_page("{\"events\": [").is_err());
    }

    #[test]
    fn metrics_are_read() {
        let text = "\
# TYPE switchboard_worker_cycle_duration_seconds histogram
switchboard_worker_cycle_duration_seconds_bucket{task=\"health_poll\",le=\"0.25\"} 4
switchboard_worker_cycle_duration_seconds_bucket{task=\"health_poll\",le=\"0.1\"} 1
switchboard_worker_cycle_duration_seconds_bucket{task=\"health_poll\",le=\"0.5\"} 6
switchboard_worker_cycle_duration_seconds_bucket{task=\"health_poll\",le=\"+Inf\"} 6
switchboard_worker_cycle_duration_seconds_sum{task=\"health_poll\"} 1.2
switchboard_worker_cycle_duration_seconds_count{task=\"health_poll\"} 6
switchboard_worker_jobs_total{task=\"health_poll\",outcome=\"success\"} 6000
switchboard_event_log_position 2000
switchboard_event_log_position_other 3
";
        assert_eq!(
            metric(text, "switchboard_event_log_position", &[]),
            Some(2000.0)
        );
        assert_eq!(
            metric(
                text,
                "switchboard_worker_jobs_total",
                &[("outcome", "success")]
            ),
            Some(6000.0)
        );
        assert_eq!(
            metric(
                text,
                "switchboard_worker_jobs_total",
                &[("outcome", "failure")]
            ),
            None
        );
        let histogram = histogram(text, "switchboard_worker_cycle_duration_seconds").unwrap();
        assert_eq!(histogram.count, 6);
        assert_eq!(histogram.buckets, vec![(0.1, 1), (0.25, 4), (0.5, 6)]);
        assert!((histogram.mean_ms() - 200.0).abs() < 1e-9);
        assert_eq!(histogram.bound(1.0), Some(0.5));
        assert_eq!(histogram.bound(0.5), Some(0.25));
        assert_eq!(
            Histogram {
                count: 2,
                sum_secs: 30.0,
                buckets: vec![(10.0, 1)]
            }
            .bound(1.0),
            None
        );
    }

    #[test]
    fn cycles_and_warnings_are_read_from_the_log() {
        let spawned = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let log = "\
2026-01-01T00:00:00.100000Z  INFO switchboard_api::cli: Switchboard worker is polling
2026-01-01T00:00:00.900000Z  WARN switchboard_app::health: meeting runs on a server but is unknown to Switchboard server=1 meeting=poll-0-0
\u{1b}[2m2026-01-01T00:00:01.500000Z\u{1b}[0m \u{1b}[34mDEBUG\u{1b}[0m switchboard_app::health: health cycle \u{1b}[3mpolled\u{1b}[0m\u{1b}[2m=\u{1b}[0m1000 healthy=999 elapsed_ms=1300
2026-01-01T00:00:11.300000Z DEBUG switchboard_app::health: health cycle polled=1000 healthy=1000 elapsed_ms=200
2026-01-01T00:00:21.300000Z  WARN switchboard_app::health: health cycle failed error=database
";
        assert_eq!(
            parse_cycles(log, spawned),
            vec![
                Cycle {
                    started_secs: 0.2,
                    elapsed_ms: 1300,
                    polled: 1000,
                    healthy: 999
                },
                Cycle {
                    started_secs: 11.1,
                    elapsed_ms: 200,
                    polled: 1000,
                    healthy: 1000
                },
            ]
        );
        let summary = summarise_log(log);
        assert_eq!(summary.lines, 5);
        assert_eq!(summary.unknown_meeting_warnings, 1);
        assert_eq!(summary.other_problems, 1);
        assert!(summary.samples[0].contains("health cycle failed"));
    }

    #[tokio::test]
    async fn sync_file_lists_every_server_enabled() {
        assert_eq!(sync_yaml(&[]), "servers:\n");
        let simulator = Simulator::start(SimulatorConfig::default()).await.unwrap();
        let yaml = sync_yaml(std::slice::from_ref(&simulator));
        assert_eq!(
            yaml,
            format!(
                "servers:\n  sim-00000:\n    url: \"{}\"\n    secret: \"simulator-secret\"\n    enabled: true\n",
                simulator.url()
            )
        );
        simulator.shutdown().await;
    }
}
