//! One pass against Switchboard on one database: start the simulated
//! servers, measure the forwarding baseline's create and info calls on
//! them (its meetings ended again after), start Switchboard, measure
//! create, top up to the wanted number of meetings, measure join, info
//! calls and getMeetings, read the memory figures, tear everything down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bbb_simulator::{Simulator, SimulatorConfig};
use rand::Rng;

use crate::baseline::Baseline;
use crate::bbb;
use crate::load::{self, Expect, Load, MakeRequest};
use crate::stats::Summary;
use crate::target::{self, Database, Memory, Switchboard, random_hex};

/// Longest a top-up round may take.
const TOP_UP_LIMIT: Duration = Duration::from_secs(90);

/// Top-up rounds before giving up on reaching the wanted number of meetings.
const TOP_UP_ROUNDS: usize = 3;

/// Which database a pass runs on.
#[derive(Debug, Clone)]
pub enum DatabaseChoice {
    /// A fresh database on the PostgreSQL server of this admin URL.
    Postgres(String),
    /// A fresh SQLite file.
    Sqlite,
}

/// Settings shared by every pass.
#[derive(Debug, Clone)]
pub struct PassConfig {
    /// The `switchboard` binary.
    pub binary: PathBuf,
    /// Connections for create and join.
    pub connections: usize,
    /// Connections for getMeetings.
    pub get_meetings_connections: usize,
    /// Length of each measured scenario.
    pub duration: Duration,
    /// Uncounted warm-up before each measured scenario.
    pub warmup: Duration,
    /// Number of simulated BBB servers.
    pub servers: usize,
    /// Meetings to have running before join, getMeetings and memory are measured.
    pub meetings: usize,
    /// Meetings created before the timed creates (issue 22's harder setup:
    /// creates then land beside running meetings, which the poller reads).
    pub preload: usize,
    /// Run the health poller in `serve` every this many seconds (`None`:
    /// `serve --no-workers`).
    pub health_interval_secs: Option<f64>,
    /// Runtime workers of the baseline servers (as many as Switchboard's).
    pub baseline_threads: usize,
}

/// What one pass measured.
#[derive(Debug, Clone)]
pub struct PassResult {
    /// `PostgreSQL` or `SQLite`.
    pub database: &'static str,
    /// The forwarding baseline on this pass's simulated servers, before
    /// Switchboard started.
    pub baseline: ForwardingBaseline,
    /// The timed create phase.
    pub create: Summary,
    /// The SQL work of the timed creates (statements from Switchboard's
    /// /metrics; transactions and rows from PostgreSQL).
    pub sql: Option<SqlWork>,
    /// The rounds of untimed creates made to reach the wanted number of
    /// meetings (none when the timed phase made enough).
    pub top_up: Vec<Summary>,
    /// Meetings running on the simulated servers after the top-up.
    pub meetings: usize,
    /// The join phase.
    pub join: Summary,
    /// getMeetingInfo and isMeetingRunning, alternating.
    pub info: Summary,
    /// The getMeetings phase.
    pub get_meetings: Summary,
    /// Meetings listed by one getMeetings answer after the phase.
    pub listed: usize,
    /// Memory once the meetings were created.
    pub memory_loaded: Memory,
    /// Memory at the end of the pass.
    pub memory_end: Memory,
}

/// What the forwarding baseline (a minimal hyper server relaying to the
/// same simulated servers, without state) measured in a pass.
#[derive(Debug, Clone)]
pub struct ForwardingBaseline {
    /// Creates of new meetings, beside as many preloaded ones as
    /// Switchboard's creates.
    pub create: Summary,
    /// getMeetingInfo and isMeetingRunning, alternating, on its meetings.
    pub info: Summary,
}

/// The SQL work of a phase: totals, and the creates they served.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlWork {
    /// Creates answered in the phase (warm-up included).
    pub creates: u64,
    /// Statements Switchboard ran (`switchboard_db_statements_total`).
    pub statements: u64,
    /// Transactions committed, rows inserted, updated, deleted (PostgreSQL).
    pub stats: target::WriteStats,
}

impl SqlWork {
    /// `total` per create.
    pub fn per_create(&self, total: u64) -> f64 {
        total as f64 / self.creates.max(1) as f64
    }
}

/// Statements run and creates answered so far, from Switchboard's
/// /metrics (`switchboard_db_statements_total`, the create successes of
/// `switchboard_bbb_requests_total`), warm-up included.
async fn statements(addr: std::net::SocketAddr) -> Option<(u64, u64)> {
    let (_, body) = load::get(addr, "/metrics").await.ok()?;
    let text = String::from_utf8_lossy(&body);
    let series = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map(|value| value as u64)
    };
    Some((
        series("switchboard_db_statements_total")?,
        series(r#"switchboard_bbb_requests_total{call="create",outcome="success"}"#).unwrap_or(0),
    ))
}

/// Runs one pass; whatever happens, the child process, the simulators, the
/// database and the data folder are cleaned up.
pub async fn run_pass(config: &PassConfig, choice: &DatabaseChoice) -> anyhow::Result<PassResult> {
    let data_dir = std::env::temp_dir().join(format!("switchboard-bench-{}", random_hex(4)));
    std::fs::create_dir_all(&data_dir)?;
    let database = match choice {
        DatabaseChoice::Postgres(admin_url) => Database::postgres(admin_url).await?,
        DatabaseChoice::Sqlite => Database::sqlite(&data_dir),
    };
    let label = database.label;
    let secret = random_hex(20);
    let backend_secret = random_hex(20);
    let mut simulators = Vec::new();
    let result = async {
        for _ in 0..config.servers {
            simulators.push(
                Simulator::start(SimulatorConfig {
                    secret: backend_secret.clone(),
                    ..SimulatorConfig::default()
                })
                .await?,
            );
        }
        let baseline = measure_forwarding_baseline(config, &simulators, label).await?;
        let options = target::ServeOptions {
            health_interval_secs: config.health_interval_secs,
            ..target::ServeOptions::default()
        };
        let switchboard = Switchboard::start_with(
            &config.binary,
            &database,
            &data_dir,
            &secret,
            &simulators,
            &options,
        )
        .await?;
        eprintln!(
            "[{label}] switchboard pid {} at http://{} with {} simulated servers",
            switchboard.pid, switchboard.addr, config.servers
        );
        let measured = measure(
            config,
            &database,
            &switchboard,
            &simulators,
            &secret,
            baseline,
        )
        .await;
        if measured.is_err() {
            eprintln!("[{label}] switchboard log:\n{}", switchboard.log_tail());
        }
        switchboard.stop().await;
        measured
    }
    .await;
    for simulator in &simulators {
        simulator.shutdown().await;
    }
    if let Err(err) = database.drop_created().await {
        eprintln!("[{label}] could not drop the benchmark database: {err:#}");
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

/// The measured scenarios of one pass.
async fn measure(
    config: &PassConfig,
    database: &target::Database,
    switchboard: &Switchboard,
    simulators: &[Simulator],
    secret: &str,
    baseline: ForwardingBaseline,
) -> anyhow::Result<PassResult> {
    let addr = switchboard.addr;
    let running = || {
        simulators
            .iter()
            .map(Simulator::meeting_count)
            .sum::<usize>()
    };
    let label = database.label;
    let run_id = random_hex(3);

    if config.preload > 0 {
        let load = Load {
            limit: config.preload as u64,
            ..Load::timed(addr, config.connections, TOP_UP_LIMIT, Expect::Success)
        };
        let made = load
            .run(creates(format!("bench-{run_id}-pre"), secret))
            .await;
        eprintln!(
            "[{label}] preload of {}: {}",
            config.preload,
            one_line(&made)
        );
    }
    let statements_before = statements(addr).await;
    let stats_before = match database.write_stats().await {
        Ok(stats) => stats,
        Err(err) => {
            eprintln!("[{label}] PostgreSQL's counters unreadable: {err:#}");
            None
        }
    };
    let create = Load::timed(addr, config.connections, config.duration, Expect::Success)
        .warmed(config.warmup)
        .run(creates(format!("bench-{run_id}"), secret))
        .await;
    eprintln!("[{label}] create: {}", one_line(&create));
    // PostgreSQL's counters lag by up to a second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let counted = (
        statements_before,
        statements(addr).await,
        stats_before,
        database.write_stats().await.ok().flatten(),
    );
    if counted.0.is_none() || counted.1.is_none() {
        eprintln!(
            "[{label}] statements not counted: /metrics has no switchboard_db_statements_total"
        );
    }
    let sql = match counted {
        (Some((s0, c0)), Some((s1, c1)), Some(w0), Some(w1)) => Some(SqlWork {
            creates: c1.saturating_sub(c0),
            statements: s1.saturating_sub(s0),
            stats: target::WriteStats {
                transactions: w1.transactions.saturating_sub(w0.transactions),
                inserted: w1.inserted.saturating_sub(w0.inserted),
                updated: w1.updated.saturating_sub(w0.updated),
                deleted: w1.deleted.saturating_sub(w0.deleted),
            },
        }),
        _ => None,
    };
    if let Some(sql) = &sql {
        eprintln!(
            "[{label}] SQL per create: {:.1} statements, {:.1} transactions, {:.1} rows inserted, {:.1} updated, {:.1} deleted",
            sql.per_create(sql.statements),
            sql.per_create(sql.stats.transactions),
            sql.per_create(sql.stats.inserted),
            sql.per_create(sql.stats.updated),
            sql.per_create(sql.stats.deleted),
        );
    }

    let mut top_up = Vec::new();
    for round in 0..TOP_UP_ROUNDS {
        let missing = config.meetings.saturating_sub(running());
        if missing == 0 {
            break;
        }
        let load = Load {
            limit: missing as u64,
            ..Load::timed(addr, config.connections, TOP_UP_LIMIT, Expect::Success)
        };
        let made = load
            .run(creates(format!("bench-{run_id}-top{round}"), secret))
            .await;
        eprintln!("[{label}] top-up of {missing}: {}", one_line(&made));
        top_up.push(made);
    }
    let meetings = running();
    let memory_loaded = switchboard.memory()?;
    eprintln!("[{label}] {meetings} meetings running; {memory_loaded:?}");

    let ids = meetings_on(simulators, "Switchboard", &create)?;
    let info = Load::timed(addr, config.connections, config.duration, Expect::Success)
        .warmed(config.warmup)
        .run(info_calls(ids.clone(), secret))
        .await;
    let join_secret = secret.to_owned();
    let joins: MakeRequest = Arc::new(move |seq| {
        let meeting = &ids[rand::rng().random_range(0..ids.len())];
        bbb::join(meeting, seq, &join_secret)
    });
    let join = Load::timed(addr, config.connections, config.duration, Expect::Redirect)
        .warmed(config.warmup)
        .run(joins)
        .await;
    eprintln!("[{label}] join: {}", one_line(&join));
    eprintln!(
        "[{label}] getMeetingInfo/isMeetingRunning: {}",
        one_line(&info)
    );

    let path = bbb::get_meetings(secret);
    let listing = Arc::new(path.clone());
    let get_meetings = Load::timed(
        addr,
        config.get_meetings_connections,
        config.duration,
        Expect::Success,
    )
    .warmed(config.warmup)
    .run(Arc::new(move |_| listing.as_ref().clone()))
    .await;
    eprintln!("[{label}] getMeetings: {}", one_line(&get_meetings));
    let listed = match load::get(addr, &path).await {
        Ok((_, body)) => count(&body, b"<meeting>"),
        Err(err) => {
            eprintln!("[{label}] getMeetings count failed: {err:#}");
            0
        }
    };
    let memory_end = switchboard.memory()?;
    eprintln!("[{label}] getMeetings lists {listed} meetings; {memory_end:?}");

    Ok(PassResult {
        database: label,
        baseline,
        create,
        sql,
        top_up,
        meetings,
        join,
        info,
        get_meetings,
        listed,
        memory_loaded,
        memory_end,
    })
}

/// The forwarding baseline on `simulators` before Switchboard starts: as
/// many meetings preloaded through it as Switchboard's pass preloads, timed
/// creates, then getMeetingInfo and isMeetingRunning on its meetings; its
/// meetings are ended on the simulators after, so Switchboard starts on
/// empty servers.
async fn measure_forwarding_baseline(
    config: &PassConfig,
    simulators: &[Simulator],
    label: &str,
) -> anyhow::Result<ForwardingBaseline> {
    let secret = random_hex(20);
    let servers = simulators
        .iter()
        .map(|simulator| (simulator.url(), simulator.secret().to_owned()))
        .collect();
    let server = Baseline::start_forwarding(servers, secret.clone(), config.baseline_threads)?;
    let addr = server.addr;
    let run_id = random_hex(3);
    let measured = async {
        if config.preload > 0 {
            let load = Load {
                limit: config.preload as u64,
                ..Load::timed(addr, config.connections, TOP_UP_LIMIT, Expect::Success)
            };
            load.run(creates(format!("base-{run_id}-pre"), &secret))
                .await;
        }
        let create = Load::timed(addr, config.connections, config.duration, Expect::Success)
            .warmed(config.warmup)
            .run(creates(format!("base-{run_id}"), &secret))
            .await;
        eprintln!("[{label}] baseline create: {}", one_line(&create));
        let ids = meetings_on(simulators, "the baseline", &create)?;
        let info = Load::timed(addr, config.connections, config.duration, Expect::Success)
            .warmed(config.warmup)
            .run(info_calls(ids, &secret))
            .await;
        eprintln!(
            "[{label}] baseline getMeetingInfo/isMeetingRunning: {}",
            one_line(&info)
        );
        Ok(ForwardingBaseline { create, info })
    }
    .await;
    tokio::task::spawn_blocking(move || server.stop()).await?;
    for simulator in simulators {
        for id in simulator.meeting_ids() {
            simulator.end_meeting_directly(&id);
        }
    }
    measured
}

/// The meetings running on the simulators; an error naming `who` and the
/// create errors when there are none.
fn meetings_on(
    simulators: &[Simulator],
    who: &str,
    create: &Summary,
) -> anyhow::Result<Arc<Vec<String>>> {
    let ids: Vec<String> = simulators.iter().flat_map(Simulator::meeting_ids).collect();
    anyhow::ensure!(
        !ids.is_empty(),
        "{who} created no meeting, nothing to join or ask about (create errors: {:?})",
        create.error_samples
    );
    Ok(Arc::new(ids))
}

/// getMeetingInfo (even sequence numbers) and isMeetingRunning (odd) of
/// random meetings among `ids`.
fn info_calls(ids: Arc<Vec<String>>, secret: &str) -> MakeRequest {
    let secret = secret.to_owned();
    Arc::new(move |seq| {
        let meeting = &ids[rand::rng().random_range(0..ids.len())];
        if seq % 2 == 0 {
            bbb::get_meeting_info(meeting, &secret)
        } else {
            bbb::is_meeting_running(meeting, &secret)
        }
    })
}

/// Creates of new meetings `{prefix}-{seq}`.
pub(crate) fn creates(prefix: String, secret: &str) -> MakeRequest {
    let secret = secret.to_owned();
    Arc::new(move |seq| bbb::create(&format!("{prefix}-{seq}"), &secret))
}

/// A progress line.
fn one_line(summary: &Summary) -> String {
    format!(
        "{:.0} ok/s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {} errors{}",
        summary.rate,
        summary.p50_ms,
        summary.p99_ms,
        summary.ok,
        summary.errors,
        summary
            .error_samples
            .first()
            .map(|sample| format!(" (e.g. {sample})"))
            .unwrap_or_default()
    )
}

/// Non-overlapping occurrences of `needle` in `haystack`.
pub(crate) fn count(haystack: &[u8], needle: &[u8]) -> usize {
    let mut found = 0;
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        if &haystack[at..at + needle.len()] == needle {
            found += 1;
            at += needle.len();
        } else {
            at += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_elements() {
        assert_eq!(
            count(b"<meeting>a</meeting><meeting>b</meeting>", b"<meeting>"),
            2
        );
        assert_eq!(count(b"<meetings/>", b"<meeting>"), 0);
    }
}
