//! `switchboard-loadtool meetings`: getMeetings answered from the polled
//! picture, as the target states it: with 1,000 meetings on 10
//! servers, at least 1,000 answers/s, without asking any server on the
//! request path.
//!
//! The simulators run in this process; `switchboard serve` runs as a child
//! process on a fresh database *with* its workers, polling every server at a
//! short interval so the picture fills. The meetings are created through
//! Switchboard and some attendees join through it (the redirect is followed
//! to the simulator, which counts the attendee), so the polled `<meeting>`
//! elements carry attendees. Once a getMeetings answer lists every meeting
//! and attendee, getMeetings is measured at each connection count, with the
//! simulators' getMeetings request counts and the poller's cycle counter
//! read before and after every phase: only polls may have asked the
//! servers. The baseline is the minimal hyper server answering the same
//! bytes, measured before and after Switchboard in the same run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bbb_simulator::Simulator;
use bytes::Bytes;

use crate::baseline::Baseline;
use crate::bbb;
use crate::bench::count;
use crate::load::{self, BodyCheck, Expect, Load, MakeRequest};
use crate::poll::{metric, scrape};
use crate::stats::Summary;
use crate::target::{Memory, PoolRun, Switchboard, random_hex, with_pool};

/// The poller's cycle counter.
const CYCLES_METRIC: &str = "switchboard_worker_cycles_total";

/// Longest the creates may take.
const CREATE_LIMIT: Duration = Duration::from_secs(120);

/// Rounds of creates before giving up on reaching the wanted number.
const CREATE_ROUNDS: usize = 3;

/// Concurrent joins while attendees are added.
const JOIN_CONCURRENCY: usize = 16;

/// How long the picture may take to show every meeting and attendee.
const PICTURE_LIMIT: Duration = Duration::from_secs(90);

/// One answer in this many (by request number) is checked to list every
/// meeting; the others are only checked for SUCCESS.
pub const CHECK_EVERY: u64 = 100;

/// Settings of one getMeetings run.
#[derive(Debug, Clone)]
pub struct MeetingsConfig {
    /// The `switchboard` binary.
    pub binary: PathBuf,
    /// Simulated BBB servers, all registered and enabled.
    pub servers: usize,
    /// Meetings created through Switchboard.
    pub meetings: usize,
    /// Attendees joined through Switchboard, spread round-robin over the
    /// meetings.
    pub attendees: usize,
    /// Connection counts getMeetings is measured at, in order.
    pub connections: Vec<usize>,
    /// Connections for the creates.
    pub create_connections: usize,
    /// Length of each measured phase.
    pub duration: Duration,
    /// Uncounted warm-up before each measured phase.
    pub warmup: Duration,
    /// Seconds between health cycles (`SWITCHBOARD_HEALTH_INTERVAL_SECS`).
    pub interval_secs: f64,
    /// Admin URL of a PostgreSQL server to create a fresh database on; SQLite
    /// when `None`.
    pub postgres: Option<String>,
    /// Runtime workers of the baseline server.
    pub baseline_threads: usize,
    /// Idle, half-sent connections held open during one more phase (at the
    /// first connection count); 0 skips that phase.
    pub idle_connections: usize,
}

/// One measured getMeetings phase against Switchboard.
#[derive(Debug, Clone)]
pub struct Phase {
    /// The load's figures.
    pub summary: Summary,
    /// getMeetings requests the simulators received during the phase, over
    /// every server.
    pub servers_asked: u64,
    /// Health cycles the poller finished during the phase.
    pub cycles: u64,
    /// Idle, half-sent connections held open during the phase.
    pub idle_connections: usize,
}

impl Phase {
    /// The most getMeetings requests polls can explain: one per server for
    /// every cycle finished in the phase, plus a cycle in flight at each
    /// edge.
    pub fn allowed(&self, servers: usize) -> u64 {
        (self.cycles + 2) * servers as u64
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct MeetingsResult {
    /// `PostgreSQL` or `SQLite`.
    pub database: &'static str,
    /// The settings of the run.
    pub config: MeetingsConfig,
    /// The create rounds.
    pub creates: Vec<Summary>,
    /// Meetings running on the simulators before the measurement.
    pub meetings_running: usize,
    /// Attendees the simulators counted before the measurement.
    pub attendees_joined: usize,
    /// Joins that failed (through Switchboard or at the simulator).
    pub join_errors: usize,
    /// A few of their descriptions.
    pub join_error_samples: Vec<String>,
    /// How long, after the last join, an answer took to list every meeting
    /// and attendee, seconds.
    pub picture_secs: f64,
    /// Meetings listed by the answer the baseline serves.
    pub listed: usize,
    /// Attendees listed by it.
    pub attendees_listed: usize,
    /// Its size, bytes.
    pub answer_bytes: usize,
    /// Switchboard's phases, one per connection count.
    pub phases: Vec<Phase>,
    /// The baseline's phases before Switchboard's, one per connection count.
    pub baseline_before: Vec<Summary>,
    /// The baseline's phases after Switchboard's.
    pub baseline_after: Vec<Summary>,
    /// Switchboard's memory once the picture was complete.
    pub memory_loaded: Memory,
    /// Switchboard's memory after the last phase.
    pub memory_end: Memory,
    /// Health cycles the poller finished from its start to the end.
    pub cycles_total: u64,
}

impl MeetingsResult {
    /// The faster baseline run at `connections`, req/s.
    pub fn baseline_rate(&self, connections: usize) -> f64 {
        self.baseline_before
            .iter()
            .chain(&self.baseline_after)
            .filter(|summary| summary.connections == connections)
            .map(|summary| summary.rate)
            .fold(0.0, f64::max)
    }

    /// Switchboard's rate as a share of the faster baseline run at the same
    /// connection count.
    pub fn ratio(&self, phase: &Phase) -> f64 {
        let baseline = self.baseline_rate(phase.summary.connections);
        if baseline > 0.0 {
            phase.summary.rate / baseline
        } else {
            0.0
        }
    }

    /// Whether no phase saw more getMeetings requests at the servers than
    /// polls explain.
    pub fn servers_not_asked(&self) -> bool {
        !self.phases.is_empty()
            && self
                .phases
                .iter()
                .all(|phase| phase.servers_asked <= phase.allowed(self.config.servers))
    }
}

/// Runs the benchmark; whatever happens, Switchboard, the simulators, the
/// database and the data folder are cleaned up.
pub async fn run(config: &MeetingsConfig) -> anyhow::Result<MeetingsResult> {
    with_pool(
        "meetings",
        &config.binary,
        config.postgres.as_deref(),
        config.servers,
        config.interval_secs,
        async |pool: PoolRun<'_>| {
            measure(
                config,
                pool.label,
                pool.switchboard,
                pool.simulators,
                pool.secret,
            )
            .await
        },
    )
    .await
}

/// Fills the picture, then measures.
async fn measure(
    config: &MeetingsConfig,
    label: &'static str,
    switchboard: &Switchboard,
    simulators: &[Simulator],
    secret: &str,
) -> anyhow::Result<MeetingsResult> {
    let addr = switchboard.addr;
    let running = || {
        simulators
            .iter()
            .map(Simulator::meeting_count)
            .sum::<usize>()
    };

    // Meetings, through Switchboard.
    let run_id = random_hex(3);
    let mut creates = Vec::new();
    for round in 0..CREATE_ROUNDS {
        let missing = config.meetings.saturating_sub(running());
        if missing == 0 {
            break;
        }
        let load = Load {
            limit: missing as u64,
            ..Load::timed(
                addr,
                config.create_connections,
                CREATE_LIMIT,
                Expect::Success,
            )
        };
        let prefix = format!("gm-{run_id}-{round}");
        let secret = secret.to_owned();
        let made = load
            .run(Arc::new(move |seq| {
                bbb::create(&format!("{prefix}-{seq}"), &secret)
            }))
            .await;
        eprintln!(
            "[{label}] {missing} creates: {:.0}/s, {} ok, {} errors{}",
            made.rate,
            made.ok,
            made.errors,
            first_sample(&made.error_samples)
        );
        creates.push(made);
    }
    let meetings_running = running();
    if meetings_running != config.meetings {
        bail!(
            "{meetings_running} meetings run on the simulators, {} wanted",
            config.meetings
        );
    }

    // Attendees, through Switchboard, the redirect followed to the simulator.
    let ids: Arc<Vec<String>> =
        Arc::new(simulators.iter().flat_map(Simulator::meeting_ids).collect());
    let simulator_addrs: Arc<Vec<SocketAddr>> =
        Arc::new(simulators.iter().map(Simulator::addr).collect());
    let started = Instant::now();
    let (join_errors, join_error_samples) =
        join_attendees(addr, secret, &ids, &simulator_addrs, config.attendees).await;
    let attendees_joined: usize = ids
        .iter()
        .map(|id| {
            simulators
                .iter()
                .find_map(|simulator| simulator.attendee_count(id))
                .unwrap_or(0)
        })
        .sum();
    eprintln!(
        "[{label}] {attendees_joined} attendees joined in {:.1} s, {join_errors} errors{}",
        started.elapsed().as_secs_f64(),
        first_sample(&join_error_samples)
    );

    // Wait for a poll cycle that saw them all.
    let path = bbb::get_meetings(secret);
    let joined_at = Instant::now();
    let cycles_after_joins = cycles(addr).await?;
    let answer = loop {
        let (status, body) = load::get(addr, &path).await?;
        let listed = count(&body, b"<meeting>");
        let attendees = count(&body, b"<attendee>");
        let polled = cycles(addr).await? > cycles_after_joins;
        if status.is_success()
            && polled
            && listed == meetings_running
            && attendees == attendees_joined
        {
            break body;
        }
        if joined_at.elapsed() > PICTURE_LIMIT {
            bail!(
                "after {PICTURE_LIMIT:?}, getMeetings lists {listed} of {meetings_running} \
                 meetings and {attendees} of {attendees_joined} attendees (HTTP {}, a cycle \
                 since the joins: {polled})",
                status.as_u16()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let picture_secs = joined_at.elapsed().as_secs_f64();
    let listed = count(&answer, b"<meeting>");
    let attendees_listed = count(&answer, b"<attendee>");
    let memory_loaded = switchboard.memory()?;
    eprintln!(
        "[{label}] getMeetings lists {listed} meetings and {attendees_listed} attendees \
         ({} bytes) {picture_secs:.1} s after the joins; {memory_loaded:?}",
        answer.len()
    );

    let check = listing_check(listed);
    let baseline_before = measure_baseline(config, &answer, &check, "before").await?;

    let mut phases = Vec::new();
    let idle_phase = (config.idle_connections > 0)
        .then(|| config.connections.first().copied())
        .flatten();
    for (connections, idle_connections) in config
        .connections
        .iter()
        .map(|&connections| (connections, 0))
        .chain(idle_phase.map(|connections| (connections, config.idle_connections)))
    {
        let idle = hold_idle_connections(addr, idle_connections).await?;
        let asked_before = asked(simulators);
        let cycles_before = cycles(addr).await?;
        let listing = Arc::new(path.clone());
        let summary = Load::timed(addr, connections, config.duration, Expect::Success)
            .warmed(config.warmup)
            .checked(check.clone())
            .run(Arc::new(move |_| listing.as_ref().clone()))
            .await;
        let cycles_after = cycles(addr).await?;
        let asked_after = asked(simulators);
        let phase = Phase {
            summary,
            servers_asked: asked_after - asked_before,
            cycles: cycles_after.saturating_sub(cycles_before),
            idle_connections,
        };
        drop(idle);
        eprintln!(
            "[{label}] getMeetings at {connections} connections ({idle_connections} idle): {}; \
             servers asked {} times during {} poll cycles (at most {} from polls)",
            one_line(&phase.summary),
            phase.servers_asked,
            phase.cycles,
            phase.allowed(config.servers)
        );
        phases.push(phase);
    }
    let memory_end = switchboard.memory()?;
    let cycles_total = cycles(addr).await?;
    eprintln!("[{label}] after the phases: {memory_end:?}");

    let baseline_after = measure_baseline(config, &answer, &check, "after").await?;

    Ok(MeetingsResult {
        database: label,
        config: config.clone(),
        creates,
        meetings_running,
        attendees_joined,
        join_errors,
        join_error_samples,
        picture_secs,
        listed,
        attendees_listed,
        answer_bytes: answer.len(),
        phases,
        baseline_before,
        baseline_after,
        memory_loaded,
        memory_end,
        cycles_total,
    })
}

/// Opens `count` connections to `addr` that each send half a request line
/// and then nothing, as slow or hostile clients do; they stay open (until
/// Switchboard's idle timeout closes them) while the result is held.
async fn hold_idle_connections(
    addr: SocketAddr,
    count: usize,
) -> anyhow::Result<Vec<tokio::net::TcpStream>> {
    use tokio::io::AsyncWriteExt;
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut socket = tokio::net::TcpStream::connect(addr)
            .await
            .context("cannot open an idle connection")?;
        socket
            .write_all(b"GET /bigbluebutton/api/getMeetings HTTP/1.1\r\nHost: loa")
            .await?;
        held.push(socket);
    }
    Ok(held)
}

/// Joins `attendees` viewers through Switchboard, round-robin over `ids`,
/// following each redirect to the simulator it points at; the number of
/// failures and a few of their descriptions.
async fn join_attendees(
    addr: SocketAddr,
    secret: &str,
    ids: &Arc<Vec<String>>,
    simulators: &Arc<Vec<SocketAddr>>,
    attendees: usize,
) -> (usize, Vec<String>) {
    if ids.is_empty() {
        return (0, Vec::new());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..JOIN_CONCURRENCY {
        let next = Arc::clone(&next);
        let ids = Arc::clone(ids);
        let simulators = Arc::clone(simulators);
        let secret = secret.to_owned();
        workers.spawn(async move {
            let mut failures = Vec::new();
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= attendees {
                    return failures;
                }
                let meeting = &ids[seq % ids.len()];
                if let Err(err) = join_one(addr, meeting, seq as u64, &secret, &simulators).await {
                    failures.push(format!("{err:#}"));
                }
            }
        });
    }
    let mut errors = 0;
    let mut samples: Vec<String> = Vec::new();
    while let Some(joined) = workers.join_next().await {
        let failures = joined.unwrap_or_else(|err| vec![format!("join worker failed: {err}")]);
        errors += failures.len();
        for failure in failures {
            if samples.len() < 5 && !samples.contains(&failure) {
                samples.push(failure);
            }
        }
    }
    (errors, samples)
}

/// One viewer's join through Switchboard, its redirect followed to the
/// simulator (which answers with its own redirect to the client).
async fn join_one(
    addr: SocketAddr,
    meeting: &str,
    user: u64,
    secret: &str,
    simulators: &[SocketAddr],
) -> anyhow::Result<()> {
    let location = load::redirect_target(addr, &bbb::join(meeting, user, secret))
        .await
        .context("join at Switchboard")?;
    let (backend, path) = split_url(&location)?;
    if !simulators.contains(&backend) {
        bail!("the join was sent to {backend}, not a simulator");
    }
    load::redirect_target(backend, path)
        .await
        .context("join at the simulator")?;
    Ok(())
}

/// `http://HOST:PORT/path?query` as the address and the path with query.
fn split_url(url: &str) -> anyhow::Result<(SocketAddr, &str)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("not an http:// URL: {url}"))?;
    let slash = rest.find('/').unwrap_or(rest.len());
    let addr = rest[..slash]
        .parse()
        .with_context(|| format!("not an IP address and port: {url}"))?;
    let path = if slash == rest.len() {
        "/"
    } else {
        &rest[slash..]
    };
    Ok((addr, path))
}

/// Every sampled answer must list `meetings` meetings.
fn listing_check(meetings: usize) -> BodyCheck {
    BodyCheck {
        every: CHECK_EVERY,
        check: Arc::new(move |body| {
            let listed = count(body, b"<meeting>");
            if listed == meetings {
                Ok(())
            } else {
                Err(format!("an answer lists {listed} meetings, not {meetings}"))
            }
        }),
    }
}

/// getMeetings against the baseline serving `answer`, at each connection
/// count; `when` labels the progress lines.
async fn measure_baseline(
    config: &MeetingsConfig,
    answer: &Bytes,
    check: &BodyCheck,
    when: &str,
) -> anyhow::Result<Vec<Summary>> {
    let secret = random_hex(20);
    let server = Baseline::start_static(
        "getMeetings",
        answer.clone(),
        secret.clone(),
        config.baseline_threads,
    )?;
    let path: MakeRequest = {
        let path = bbb::get_meetings(&secret);
        Arc::new(move |_| path.clone())
    };
    let mut summaries = Vec::new();
    for &connections in &config.connections {
        let summary = Load::timed(server.addr, connections, config.duration, Expect::Success)
            .warmed(config.warmup)
            .checked(check.clone())
            .run(Arc::clone(&path))
            .await;
        eprintln!(
            "[baseline {when}] getMeetings at {connections} connections: {}",
            one_line(&summary)
        );
        summaries.push(summary);
    }
    tokio::task::spawn_blocking(move || server.stop()).await?;
    Ok(summaries)
}

/// getMeetings requests the simulators have received so far.
fn asked(simulators: &[Simulator]) -> u64 {
    simulators
        .iter()
        .map(|simulator| simulator.request_count("getMeetings") as u64)
        .sum()
}

/// Health cycles Switchboard's poller has finished, from its `/metrics`.
async fn cycles(addr: SocketAddr) -> anyhow::Result<u64> {
    let text = scrape(addr).await?;
    Ok(metric(&text, CYCLES_METRIC, &[("task", "health_poll")]).unwrap_or(0.0) as u64)
}

/// A progress line.
fn one_line(summary: &Summary) -> String {
    format!(
        "{:.0} ok/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} ok ({} checked in depth), \
         {} errors{}",
        summary.rate,
        summary.p50_ms,
        summary.p99_ms,
        summary.max_ms,
        summary.ok,
        summary.checked,
        summary.errors,
        first_sample(&summary.error_samples)
    )
}

/// ` (e.g. SAMPLE)` for the first sample, if any.
fn first_sample(samples: &[String]) -> String {
    samples
        .first()
        .map(|sample| format!(" (e.g. {sample})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split() {
        let (addr, path) = split_url("http://127.0.0.1:4242/bigbluebutton/api/join?a=1").unwrap();
        assert_eq!(addr, "127.0.0.1:4242".parse().unwrap());
        assert_eq!(path, "/bigbluebutton/api/join?a=1");
        assert_eq!(split_url("http://127.0.0.1:1").unwrap().1, "/");
        assert!(split_url("https://127.0.0.1:1/").is_err());
        assert!(split_url("http://example.org/").is_err());
    }

    #[test]
    fn the_listing_check_counts_meetings() {
        let check = listing_check(2);
        assert!((check.check)(b"<meetings><meeting>a</meeting><meeting>b</meeting>").is_ok());
        assert!((check.check)(b"<meetings><meeting>a</meeting></meetings>").is_err());
    }

    #[test]
    fn polls_explain_a_cycle_per_server_plus_the_edges() {
        let phase = Phase {
            summary: Summary::new(Default::default(), 1, Duration::from_secs(1)),
            servers_asked: 70,
            cycles: 5,
            idle_connections: 0,
        };
        assert_eq!(phase.allowed(10), 70);
    }
}
