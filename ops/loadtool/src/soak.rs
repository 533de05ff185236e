//! The soak benchmark (issue 15.B4): `switchboard serve` under a long mixed
//! load on simulated servers, its resident memory and open file descriptors
//! sampled every interval, and the growth after the warm-up fitted as a
//! slope.
//!
//! The load, in each interval: `connections` connections of light calls
//! (joins, getMeetingInfo, isMeetingRunning, and a churn of creates and
//! ends that keeps the number of meetings steady) and one connection asking
//! getMeetings all the time, with the poller polling every server.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bbb_simulator::Simulator;

use crate::bbb;
use crate::load::{Expect, Load};
use crate::report::{Machine, Verdict};
use crate::stats::Summary;
use crate::target::{PoolRun, Switchboard, kib_to_mb, open_fds, random_hex, threads, with_pool};

/// Settings of one soak run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The switchboard binary.
    pub binary: PathBuf,
    /// Simulated BBB servers.
    pub servers: usize,
    /// Meetings kept running.
    pub meetings: usize,
    /// How long the mixed load runs.
    pub duration: Duration,
    /// Time between samples.
    pub sample_every: Duration,
    /// Samples before this are warm-up (not in the slope).
    pub warmup: Duration,
    /// Connections of light calls.
    pub connections: usize,
    /// Seconds between health cycles.
    pub interval_secs: f64,
    /// PostgreSQL admin URL; SQLite when `None`.
    pub postgres: Option<String>,
}

/// One sample of the process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the mixed load started.
    pub at_secs: f64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Peak resident memory so far, KiB.
    pub hwm_kib: u64,
    /// Open file descriptors.
    pub fds: usize,
    /// Threads.
    pub threads: u64,
    /// Light calls answered in the interval before the sample.
    pub light: u64,
    /// getMeetings answered in the interval before the sample.
    pub get_meetings: u64,
    /// Errors in the interval (light and getMeetings).
    pub errors: u64,
    /// Meetings running on the simulated servers.
    pub meetings: usize,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct SoakResult {
    /// `PostgreSQL` or `SQLite`.
    pub database: &'static str,
    /// The settings.
    pub config: SoakConfig,
    /// Meetings running when the load started.
    pub meetings_running: usize,
    /// Size of one getMeetings answer at the start, bytes.
    pub answer_bytes: usize,
    /// The samples, the first taken before the load.
    pub samples: Vec<Sample>,
    /// Light calls over the whole run.
    pub light: Overall,
    /// getMeetings over the whole run.
    pub get_meetings: Overall,
}

/// A load's figures over every interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overall {
    /// Answers as expected per second.
    pub rate: f64,
    /// The median of the intervals' medians, ms.
    pub p50_ms: f64,
    /// The worst interval's 99th percentile, ms.
    pub p99_ms: f64,
    /// Failed requests.
    pub errors: u64,
}

impl Overall {
    fn of(intervals: &[Summary]) -> Self {
        let ok: u64 = intervals.iter().map(|s| s.ok).sum();
        let seconds: f64 = intervals.iter().map(|s| s.elapsed.as_secs_f64()).sum();
        let mut medians: Vec<f64> = intervals.iter().map(|s| s.p50_ms).collect();
        medians.sort_by(f64::total_cmp);
        Self {
            rate: ok as f64 / seconds.max(f64::EPSILON),
            p50_ms: medians.get(medians.len() / 2).copied().unwrap_or(0.0),
            p99_ms: intervals.iter().map(|s| s.p99_ms).fold(0.0, f64::max),
            errors: intervals.iter().map(|s| s.errors).sum(),
        }
    }
}

impl SoakResult {
    /// Samples after the warm-up.
    fn settled(&self) -> Vec<Sample> {
        let warmup = self.config.warmup.as_secs_f64();
        self.samples
            .iter()
            .copied()
            .filter(|sample| sample.at_secs >= warmup)
            .collect()
    }

    /// Growth of a quantity after the warm-up: the least-squares slope over
    /// the settled samples times their span, relative to the first settled
    /// value (0.05 = 5 %).
    fn growth(&self, value: impl Fn(&Sample) -> f64) -> Option<f64> {
        let settled = self.settled();
        if settled.len() < 2 {
            return None;
        }
        let xs: Vec<f64> = settled.iter().map(|s| s.at_secs).collect();
        let ys: Vec<f64> = settled.iter().map(&value).collect();
        let slope = least_squares_slope(&xs, &ys)?;
        let span = xs.last()? - xs.first()?;
        let base = ys.first().copied().filter(|base| *base > 0.0)?;
        Some(slope * span / base)
    }

    fn peak_rss_mb(&self) -> f64 {
        kib_to_mb(self.samples.iter().map(|s| s.hwm_kib).max().unwrap_or(0))
    }
}

/// The least-squares slope of `ys` over `xs`.
pub fn least_squares_slope(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let n = xs.len() as f64;
    if xs.len() != ys.len() || xs.len() < 2 {
        return None;
    }
    let mean_x = xs.iter().sum::<f64>() / n;
    let mean_y = ys.iter().sum::<f64>() / n;
    let covariance: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let variance: f64 = xs.iter().map(|x| (x - mean_x).powi(2)).sum();
    (variance > 0.0).then(|| covariance / variance)
}

/// Runs one soak; cleans up whatever happens.
pub async fn run(config: &SoakConfig) -> anyhow::Result<SoakResult> {
    with_pool(
        "soak",
        &config.binary,
        config.postgres.as_deref(),
        config.servers,
        config.interval_secs,
        async |pool: PoolRun<'_>| {
            soak(
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

fn sample(switchboard: &Switchboard, at: Duration) -> anyhow::Result<Sample> {
    let memory = switchboard.memory()?;
    Ok(Sample {
        at_secs: at.as_secs_f64(),
        rss_kib: memory.rss_kib,
        hwm_kib: memory.hwm_kib,
        fds: open_fds(switchboard.pid)?,
        threads: threads(switchboard.pid)?,
        light: 0,
        get_meetings: 0,
        errors: 0,
        meetings: 0,
    })
}

async fn soak(
    config: &SoakConfig,
    label: &'static str,
    switchboard: &Switchboard,
    simulators: &[Simulator],
    secret: &str,
) -> anyhow::Result<SoakResult> {
    let addr = switchboard.addr;
    let running = || {
        simulators
            .iter()
            .map(Simulator::meeting_count)
            .sum::<usize>()
    };
    let run_id = random_hex(3);
    for round in 0..5 {
        let missing = config.meetings.saturating_sub(running());
        if missing == 0 {
            break;
        }
        let prefix = format!("soak-{run_id}-{round}");
        let secret = secret.to_owned();
        let made = Load {
            limit: missing as u64,
            ..Load::timed(addr, 16, Duration::from_secs(600), Expect::Success)
        }
        .run(Arc::new(move |seq| {
            bbb::create(&format!("{prefix}-{seq}"), &secret)
        }))
        .await;
        eprintln!(
            "[soak {label}] {missing} creates: {:.0}/s, {} errors",
            made.rate, made.errors
        );
    }
    let meetings_running = running();
    if meetings_running < config.meetings {
        bail!(
            "{meetings_running} meetings run, {} wanted",
            config.meetings
        );
    }
    let ids: Arc<Vec<String>> =
        Arc::new(simulators.iter().flat_map(Simulator::meeting_ids).collect());
    let (_, answer) = crate::load::get(addr, &bbb::get_meetings(secret)).await?;
    let answer_bytes = answer.len();

    let started = Instant::now();
    let mut samples = vec![sample(switchboard, Duration::ZERO)?];
    eprintln!(
        "[soak {label}] {meetings_running} meetings, getMeetings {answer_bytes} bytes; before the load: {:.1} MB, {} fds",
        kib_to_mb(samples[0].rss_kib),
        samples[0].fds
    );
    let mut light_all: Vec<Summary> = Vec::new();
    let mut heavy_all: Vec<Summary> = Vec::new();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    while started.elapsed() < config.duration {
        let light = Load::timed(
            addr,
            config.connections,
            config.sample_every,
            Expect::Answered,
        );
        let heavy = Load::timed(addr, 1, config.sample_every, Expect::Success);
        let make_light = {
            let ids = ids.clone();
            let secret = secret.to_owned();
            let churn = format!("churn-{run_id}");
            let counter = counter.clone();
            // Numbered across intervals, so the churn's ends follow its
            // creates over interval boundaries.
            Arc::new(move |_: u64| {
                let seq = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                mixed_call(&ids, &secret, &churn, seq)
            })
        };
        let make_heavy = {
            let secret = secret.to_owned();
            Arc::new(move |_| bbb::get_meetings(&secret))
        };
        let (light, heavy) = tokio::join!(light.run(make_light), heavy.run(make_heavy));
        let mut now = sample(switchboard, started.elapsed())?;
        now.light = light.ok;
        now.get_meetings = heavy.ok;
        now.errors = light.errors + heavy.errors;
        now.meetings = running();
        eprintln!(
            "[soak {label}] {:>5.0} s: {:.1} MB (peak {:.1}), {} fds, {} threads; {} meetings; {} light calls, {} getMeetings, {} errors",
            now.at_secs,
            kib_to_mb(now.rss_kib),
            kib_to_mb(now.hwm_kib),
            now.fds,
            now.threads,
            now.meetings,
            now.light,
            now.get_meetings,
            now.errors
        );
        samples.push(now);
        light_all.push(light);
        heavy_all.push(heavy);
    }
    Ok(SoakResult {
        database: label,
        config: config.clone(),
        meetings_running,
        answer_bytes,
        samples,
        light: Overall::of(&light_all),
        get_meetings: Overall::of(&heavy_all),
    })
}

/// How many blocks of 20 requests a churn meeting lives before its end.
const CHURN_LAG: u64 = 200;

/// Request `seq` of the light mix: of every 20, 8 joins, 6 getMeetingInfo,
/// 4 isMeetingRunning, a create of a new meeting and the end of the
/// previous one (a steady churn).
fn mixed_call(ids: &[String], secret: &str, churn: &str, seq: u64) -> String {
    let meeting = &ids[(seq.wrapping_mul(2_654_435_761) % ids.len() as u64) as usize];
    match seq % 20 {
        0..=7 => bbb::join(meeting, seq, secret),
        8..=13 => bbb::signed("getMeetingInfo", &format!("meetingID={meeting}"), secret),
        14..=17 => bbb::signed("isMeetingRunning", &format!("meetingID={meeting}"), secret),
        18 => bbb::create(&format!("{churn}-{}", seq / 20), secret),
        // The meeting created CHURN_LAG blocks (of 20 requests) before:
        // long done, so the number of meetings stays steady.
        _ => match (seq / 20).checked_sub(CHURN_LAG) {
            Some(old) => bbb::signed("end", &format!("meetingID={churn}-{old}"), secret),
            None => bbb::signed("isMeetingRunning", &format!("meetingID={meeting}"), secret),
        },
    }
}

/// The soak report: `docs/benchmarks-soak.md`.
#[derive(Debug)]
pub struct SoakReport {
    /// When.
    pub date: String,
    /// Where.
    pub machine: Machine,
    /// Build.
    pub profile: String,
    /// The command line.
    pub command: String,
    /// One result per database.
    pub results: Vec<SoakResult>,
}

/// Growth after the warm-up counted as flat.
const FLAT: f64 = 0.05;
/// Resident memory target, MB.
const RSS_TARGET_MB: f64 = 100.0;

impl SoakReport {
    /// The targets per database.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for result in &self.results {
            let rss = result.growth(|s| s.rss_kib as f64);
            let fds = result.growth(|s| s.fds as f64);
            let percent =
                |g: Option<f64>| g.map_or("n/a".to_owned(), |g| format!("{:+.1} %", g * 100.0));
            verdicts.push(Verdict {
                goal: format!(
                    "flat after warm-up: RSS and open descriptors grow < 5 % ({})",
                    result.database
                ),
                measured: format!(
                    "RSS {}, descriptors {} over {:.0} min after a {:.0} min warm-up",
                    percent(rss),
                    percent(fds),
                    (result.config.duration.as_secs_f64() - result.config.warmup.as_secs_f64())
                        / 60.0,
                    result.config.warmup.as_secs_f64() / 60.0
                ),
                pass: rss.is_some_and(|g| g < FLAT) && fds.is_some_and(|g| g < FLAT),
            });
            verdicts.push(Verdict {
                goal: format!(
                    "RSS < {RSS_TARGET_MB:.0} MB with {} meetings, during getMeetings ({})",
                    result.config.meetings, result.database
                ),
                measured: format!(
                    "peak {:.1} MB with {} meetings ({} bytes per getMeetings answer)",
                    result.peak_rss_mb(),
                    result.meetings_running,
                    result.answer_bytes
                ),
                pass: result.peak_rss_mb() < RSS_TARGET_MB,
            });
        }
        verdicts
    }

    /// The markdown report.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Soak benchmark\n");
        let _ = writeln!(
            out,
            "Written by `switchboard-loadtool soak` (`ops/loadtool/src/soak.rs`). Not a \
             timed test: a record of one run.\n"
        );
        let _ = writeln!(out, "- Date: {}", self.date);
        let machine = &self.machine;
        let _ = writeln!(out, "- Machine: {}", machine.describe());
        let _ = writeln!(out, "- Build: {}", self.profile);
        let _ = writeln!(out, "- Command: `{}`", self.command);
        if let Some(first) = self.results.first() {
            let config = &first.config;
            let _ = writeln!(
                out,
                "- Load: {} simulated servers polled every {} s; {} meetings kept running; \
                 {} connections of light calls (of every 20: 8 joins, 6 getMeetingInfo, 4 \
                 isMeetingRunning, a create and an end) and one connection asking getMeetings \
                 without pause; samples of `/proc/PID` every {:.0} s; the first {:.0} min are \
                 warm-up.\n",
                config.servers,
                config.interval_secs,
                config.meetings,
                config.connections,
                config.sample_every.as_secs_f64(),
                config.warmup.as_secs_f64() / 60.0
            );
        }
        let _ = writeln!(out, "## Verdicts\n");
        for verdict in self.verdicts() {
            let _ = writeln!(out, "- {}", verdict.console_line());
        }
        for result in &self.results {
            let _ = writeln!(out, "\n## {}\n", result.database);
            let _ = writeln!(
                out,
                "Light calls: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors. getMeetings: \
                 {:.1}/s, p50 {:.1} ms, p99 {:.1} ms, {} errors.\n",
                result.light.rate,
                result.light.p50_ms,
                result.light.p99_ms,
                result.light.errors,
                result.get_meetings.rate,
                result.get_meetings.p50_ms,
                result.get_meetings.p99_ms,
                result.get_meetings.errors
            );
            let _ = writeln!(
                out,
                "| s | VmRSS MB | VmHWM MB | fds | threads | meetings | light calls | getMeetings | errors |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
            for s in &result.samples {
                let _ = writeln!(
                    out,
                    "| {:.0} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} |",
                    s.at_secs,
                    kib_to_mb(s.rss_kib),
                    kib_to_mb(s.hwm_kib),
                    s.fds,
                    s.threads,
                    s.meetings,
                    s.light,
                    s.get_meetings,
                    s.errors
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_of_a_line_is_its_gradient() {
        let xs = [0.0, 60.0, 120.0, 180.0];
        let ys = [100.0, 103.0, 106.0, 109.0];
        let slope = least_squares_slope(&xs, &ys).unwrap();
        assert!((slope - 0.05).abs() < 1e-9);
        assert_eq!(least_squares_slope(&[1.0], &[1.0]), None);
    }

    #[test]
    fn the_mix_has_its_shares() {
        let ids = vec!["a".to_owned(), "b".to_owned()];
        let calls: Vec<String> = (0..20).map(|seq| mixed_call(&ids, "s", "c", seq)).collect();
        let count = |call: &str| calls.iter().filter(|p| p.contains(call)).count();
        assert_eq!(count("/join?"), 8);
        assert_eq!(count("/getMeetingInfo?"), 6);
        assert_eq!(count("/create?"), 1);
        assert_eq!(count("/isMeetingRunning?"), 4 + 1, "no end before the lag");
        let late = mixed_call(&ids, "s", "c", 20 * CHURN_LAG + 19);
        assert!(
            late.contains("/end?") && late.contains("meetingID=c-0&"),
            "{late}"
        );
    }
}
