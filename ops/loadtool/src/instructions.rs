//! Instructions per request, counted by callgrind: `switchboard serve` runs
//! under `valgrind --tool=callgrind`, requests go to it one at a time on one
//! keep-alive connection, and the counters are zeroed before and dumped
//! after each measured batch. What the process spends meanwhile on its own
//! (timers, the routing refresh) is measured over an idle stretch and
//! taken off. Unlike requests per second, the figure does not move with
//! the machine's other work, so two builds compare exactly.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bbb_simulator::{Simulator, SimulatorConfig};
use tokio::process::Command;

use crate::bbb;
use crate::bench::creates;
use crate::load::{Expect, Load, MakeRequest};
use crate::target::{Database, ServeOptions, Switchboard, random_hex};

/// Meetings created before the measured calls (joins pick among them).
const MEETINGS: u64 = 50;

/// How long `serve` may take to start under valgrind.
const START_UNDER_VALGRIND: Duration = Duration::from_secs(300);

/// The idle stretch measured to take the background work off.
const IDLE: Duration = Duration::from_secs(2);

/// What to measure.
#[derive(Debug, Clone)]
pub struct InstructionsConfig {
    /// The `switchboard` binary.
    pub binary: PathBuf,
    /// Requests counted per call.
    pub requests: u64,
    /// Uncounted requests per call before the first round (caches fill,
    /// code is loaded).
    pub warmup: u64,
    /// Counted batches per call; the median is reported.
    pub rounds: u64,
    /// Keep callgrind's dumps (one per round and call, labelled, and the
    /// idle ones, for `callgrind_annotate`) in this folder; `None`: they go
    /// with the run's temporary folder.
    pub keep_dumps: Option<PathBuf>,
}

/// The instructions one call cost.
#[derive(Debug, Clone)]
pub struct CallCost {
    /// The BBB call.
    pub call: &'static str,
    /// Requests counted.
    pub requests: u64,
    /// Instructions of the `serve` process per request, background taken off.
    pub per_request: f64,
    /// The share of the batch's instructions that was background work.
    pub background_share: f64,
}

/// Starts `serve` (SQLite, one simulated server, no workers) under
/// callgrind and counts the instructions of join, getMeetingInfo,
/// isMeetingRunning and create.
pub async fn measure(config: &InstructionsConfig) -> anyhow::Result<Vec<CallCost>> {
    let data_dir = std::env::temp_dir().join(format!("switchboard-instructions-{}", random_hex(4)));
    std::fs::create_dir_all(&data_dir)?;
    let database = Database::sqlite(&data_dir);
    let secret = random_hex(20);
    let simulator = Simulator::start(SimulatorConfig {
        secret: random_hex(20),
        ..SimulatorConfig::default()
    })
    .await?;
    let dumps = config
        .keep_dumps
        .clone()
        .unwrap_or_else(|| data_dir.join("callgrind"));
    std::fs::create_dir_all(&dumps)?;
    // The routing refresh and the callback outbox would read SQLite four
    // times a second each: background work that blurs the counts. Once an
    // hour is enough here (this process alone writes the database).
    let quiet = data_dir.join("quiet.toml");
    std::fs::write(
        &quiet,
        "refresh_interval_ms = 3600000\n[callbacks]\npoll_interval_ms = 3600000\n",
    )?;
    let options = ServeOptions {
        serve_prefix: vec![
            "env".into(),
            format!("SWITCHBOARD_CONFIG={}", quiet.display()),
            // Set, so `serve` does not start itself again with it: the
            // second program would run outside callgrind, which would then
            // write no dumps.
            "MIMALLOC_PURGE_DELAY=0".into(),
            "valgrind".into(),
            "--tool=callgrind".into(),
            "--quiet".into(),
            // A name of this run's own: a kept folder may hold an earlier
            // run's dumps, and new dumps are found by their new names.
            format!(
                "--callgrind-out-file={}",
                dumps.join(format!("callgrind.{}", random_hex(3))).display()
            ),
        ],
        start_timeout: Some(START_UNDER_VALGRIND),
        ..ServeOptions::default()
    };
    let result = async {
        let switchboard = Switchboard::start_with(
            &config.binary,
            &database,
            &data_dir,
            &secret,
            std::slice::from_ref(&simulator),
            &options,
        )
        .await?;
        let measured = calls(config, &switchboard, &dumps, &secret).await;
        if measured.is_err() {
            eprintln!("switchboard log:\n{}", switchboard.log_tail());
        }
        switchboard.stop().await;
        measured
    }
    .await;
    simulator.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    result
}

/// The measured calls, in order.
async fn calls(
    config: &InstructionsConfig,
    switchboard: &Switchboard,
    dumps: &Path,
    secret: &str,
) -> anyhow::Result<Vec<CallCost>> {
    let counter = Counter {
        pid: switchboard.pid,
        dumps: dumps.to_owned(),
    };
    let prefix = format!("ir-{}", random_hex(3));
    let setup = sequential(switchboard, MEETINGS, Expect::Success)
        .run(creates(format!("{prefix}-m"), secret))
        .await;
    anyhow::ensure!(
        setup.errors == 0,
        "the meetings could not be created: {:?}",
        setup.error_samples
    );
    let ids: Arc<Vec<String>> = Arc::new(
        (0..MEETINGS)
            .map(|seq| format!("{prefix}-m-{seq}"))
            .collect(),
    );
    let pick = |make: fn(&str, u64, &str) -> String| -> MakeRequest {
        let ids = ids.clone();
        let secret = secret.to_owned();
        Arc::new(move |seq| make(&ids[(seq % ids.len() as u64) as usize], seq, &secret))
    };
    let scenarios: Vec<(&'static str, MakeRequest, Expect)> = vec![
        ("join", pick(bbb::join), Expect::Redirect),
        (
            "getMeetingInfo",
            pick(|id, _, secret| bbb::get_meeting_info(id, secret)),
            Expect::Success,
        ),
        (
            "isMeetingRunning",
            pick(|id, _, secret| bbb::is_meeting_running(id, secret)),
            Expect::Success,
        ),
        (
            "create",
            creates(format!("{prefix}-c"), secret),
            Expect::Success,
        ),
    ];
    let mut rounds: Vec<Vec<CallCost>> = Vec::new();
    for round in 0..config.rounds {
        // The background's rate drifts: measured again for every round.
        let idle_per_second = counter.idle_rate().await?;
        let mut costs = Vec::new();
        for (call, make, expect) in &scenarios {
            let (call, expect) = (*call, *expect);
            // Each round takes new sequence numbers (creates need new
            // meetingIDs): the warm-up's first, then the counted ones.
            let start = round * (config.warmup + config.requests);
            if round == 0 {
                let make = make.clone();
                let warm = sequential(switchboard, config.warmup, expect)
                    .run(Arc::new(move |seq| make(seq + start)))
                    .await;
                anyhow::ensure!(warm.errors == 0, "{call}: {:?}", warm.error_samples);
            }
            let offset = start + config.warmup;
            let make = make.clone();
            let counted: MakeRequest = Arc::new(move |seq| make(seq + offset));
            counter.zero().await?;
            let started = Instant::now();
            let batch = sequential(switchboard, config.requests, expect)
                .run(counted)
                .await;
            let elapsed = started.elapsed();
            let total = counter.dump(call).await?;
            anyhow::ensure!(batch.errors == 0, "{call}: {:?}", batch.error_samples);
            let background = (idle_per_second * elapsed.as_secs_f64()).min(total as f64);
            let cost = CallCost {
                call,
                requests: batch.ok,
                per_request: (total as f64 - background) / batch.ok.max(1) as f64,
                background_share: background / (total as f64).max(1.0),
            };
            eprintln!(
                "round {}: {call}: {:.0} instructions per request ({} requests, {:.1}% background)",
                round + 1,
                cost.per_request,
                cost.requests,
                cost.background_share * 100.0
            );
            costs.push(cost);
        }
        rounds.push(costs);
    }
    Ok(median_per_call(&rounds))
}

/// Per call, the round with the median instructions per request.
fn median_per_call(rounds: &[Vec<CallCost>]) -> Vec<CallCost> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|cost| {
            let mut of_call: Vec<&CallCost> = rounds
                .iter()
                .filter_map(|round| round.iter().find(|other| other.call == cost.call))
                .collect();
            of_call.sort_by(|a, b| a.per_request.total_cmp(&b.per_request));
            of_call[of_call.len() / 2].clone()
        })
        .collect()
}

/// `requests` requests, one at a time on one keep-alive connection.
fn sequential(switchboard: &Switchboard, requests: u64, expect: Expect) -> Load {
    Load {
        limit: requests,
        timeout: Duration::from_secs(60),
        ..Load::timed(switchboard.addr, 1, Duration::from_secs(3600), expect)
    }
}

/// Talks to the callgrind of one process with `callgrind_control`.
struct Counter {
    pid: u32,
    dumps: PathBuf,
}

impl Counter {
    /// Instructions per second while no request comes.
    async fn idle_rate(&self) -> anyhow::Result<f64> {
        self.zero().await?;
        let started = Instant::now();
        tokio::time::sleep(IDLE).await;
        let total = self.dump("idle").await?;
        Ok(total as f64 / started.elapsed().as_secs_f64())
    }

    /// Zeroes the counters.
    async fn zero(&self) -> anyhow::Result<()> {
        self.control(&["--zero"]).await
    }

    /// Dumps the counters and reads the instructions counted since the last zero.
    async fn dump(&self, label: &str) -> anyhow::Result<u64> {
        let before = self.files()?;
        self.control(&[&format!("--dump={label}")]).await?;
        let started = Instant::now();
        loop {
            let new: Vec<PathBuf> = self.files()?.difference(&before).cloned().collect();
            if let Some(file) = new.first() {
                // The file is written before the control command returns;
                // a partly written one has no totals yet.
                if let Some(total) = totals(&std::fs::read_to_string(file).unwrap_or_default()) {
                    return Ok(total);
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("callgrind wrote no dump for {label}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn files(&self) -> anyhow::Result<HashSet<PathBuf>> {
        Ok(std::fs::read_dir(&self.dumps)?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect())
    }

    async fn control(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = Command::new("callgrind_control")
            .args(args)
            .arg(self.pid.to_string())
            .output()
            .await
            .context("cannot run callgrind_control (install valgrind)")?;
        if !output.status.success() {
            bail!(
                "callgrind_control {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

/// The instruction total of a callgrind dump (`totals:` or `summary:`).
fn totals(dump: &str) -> Option<u64> {
    dump.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// The report: one table, the compared build beside this one when given.
pub fn report(
    command: &str,
    machine: &str,
    build: &str,
    config: &InstructionsConfig,
    measured: &[CallCost],
    compared: Option<(&Path, &[CallCost])>,
) -> String {
    let mut out = String::new();
    out.push_str("# Instructions per request\n\n");
    out.push_str(
        "Written by `switchboard-loadtool instructions`; do not edit by hand, run the tool again.\n\n",
    );
    out.push_str(&format!(
        "- Command: `{command}`\n- Machine: {machine}\n- Build: {build}\n"
    ));
    out.push_str(&format!(
        "- Setup: `switchboard serve --no-workers` on SQLite under `valgrind --tool=callgrind`, one simulated BBB server (in the load tool's process, not counted), {MEETINGS} running meetings; per call {} uncounted requests, then {} rounds of {} counted requests, one at a time on one keep-alive connection; the median round is shown. Instructions are those of the whole `serve` process between zeroing and dumping the counters, less its idle rate (measured over {} s with no requests before each round) times the batch's duration. The routing refresh and the callback outbox run once an hour instead of every 250 ms (`refresh_interval_ms`, `[callbacks] poll_interval_ms`), so little background work blurs the counts. SHA-1 and SHA-256 run without the CPU's SHA instructions under valgrind, so checksums weigh more here than natively. Compare builds with these figures rather than with requests per second on a shared machine.\n\n",
        config.warmup,
        config.rounds,
        config.requests,
        IDLE.as_secs()
    ));
    match compared {
        Some((other, theirs)) => {
            out.push_str(&format!(
                "| call | instructions per request, `{}` | this build | ratio | background share |\n|---|---|---|---|---|\n",
                other.display()
            ));
            for cost in measured {
                let before = theirs.iter().find(|then| then.call == cost.call);
                out.push_str(&format!(
                    "| {} | {} | {:.0} | {} | {:.1}% |\n",
                    cost.call,
                    before.map_or("-".to_owned(), |then| format!("{:.0}", then.per_request)),
                    cost.per_request,
                    before.map_or("-".to_owned(), |then| format!(
                        "{:.2}",
                        cost.per_request / then.per_request.max(1.0)
                    )),
                    cost.background_share * 100.0
                ));
            }
        }
        None => {
            out.push_str("| call | instructions per request | background share |\n|---|---|---|\n");
            for cost in measured {
                out.push_str(&format!(
                    "| {} | {:.0} | {:.1}% |\n",
                    cost.call,
                    cost.per_request,
                    cost.background_share * 100.0
                ));
            }
        }
    }
    out
}

/// Whether `valgrind` and `callgrind_control` can be run.
pub fn check_tools() -> anyhow::Result<()> {
    for tool in ["valgrind", "callgrind_control"] {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .with_context(|| format!("`{tool}` is needed (apt-get install valgrind)"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_totals_of_a_dump() {
        assert_eq!(
            totals("version: 1\nevents: Ir\nfn=main\n1 5\ntotals: 123456\n"),
            Some(123456)
        );
        assert_eq!(totals("events: Ir\nsummary: 42\n"), Some(42));
        assert_eq!(totals("events: Ir\nfn=main\n"), None);
    }
}
