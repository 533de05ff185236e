//! The figures of a run as a console table and as `docs/benchmarks.md`, with
//! the targets judged PASS or MISS.

use std::fmt::Write as _;

use crate::bench::PassResult;
use crate::stats::Summary;
use crate::target::kib_to_mb;

/// Join throughput Switchboard must reach, as a share of the baseline's
/// (issue 22).
const JOIN_SHARE: f64 = 0.80;
/// Join p99 latency limit, milliseconds (issue 22).
const JOIN_P99_MS: f64 = 2.0;
/// Connections the join targets are stated for.
const TARGET_CONNECTIONS: usize = 32;
/// Creates per second on PostgreSQL (issue 22: half of a minimal server
/// forwarding creates to the same simulated servers, 2,000/s on its machine).
const CREATES_PER_SEC: f64 = 2000.0;
/// Creates per second on PostgreSQL as a share of the forwarding baseline's
/// on the same simulated servers (issue 22).
const CREATE_SHARE: f64 = 0.50;
/// getMeetingInfo and isMeetingRunning requests/s as a share of the
/// forwarding baseline's (issue 22).
const INFO_SHARE: f64 = 0.80;
/// Create p99 latency limit on PostgreSQL, milliseconds (issue 22).
const CREATE_P99_MS: f64 = 50.0;
/// Peak resident memory limit, MB (10^6 bytes).
const RSS_MB: f64 = 100.0;
/// Running meetings the memory target is stated for.
const RSS_MEETINGS: usize = 10_000;

/// The machine the run happened on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical CPUs available.
    pub cpus: usize,
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory from `/proc/meminfo`, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// The 1, 5 and 15 minute load averages when the run started: other work
    /// on the machine skews the figures.
    pub load_average: String,
}

impl Machine {
    /// The line reports show: CPUs, memory, kernel and load average.
    pub fn describe(&self) -> String {
        format!(
            "{} CPUs ({}), {:.1} GiB memory, Linux {}; load average {} at the start",
            self.cpus, self.cpu_model, self.memory_gib, self.kernel, self.load_average
        )
    }

    /// Reads the machine's description from `/proc`.
    pub fn detect() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let meminfo = read("/proc/meminfo");
        let field = |text: &str, key: &str| {
            text.lines()
                .find(|line| line.starts_with(key))
                .and_then(|line| line.split_once(':'))
                .map(|(_, value)| value.trim().to_owned())
        };
        let memory_kib: f64 = field(&meminfo, "MemTotal")
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".to_owned()),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct Report {
    /// When the run started (UTC).
    pub date: String,
    /// Where it ran.
    pub machine: Machine,
    /// Build profiles of the load tool and the switchboard binary.
    pub profile: String,
    /// The command line of the run.
    pub command: String,
    /// Simulated BBB servers per pass.
    pub servers: usize,
    /// Meetings wanted before join, getMeetings and memory are measured.
    pub meetings: usize,
    /// Meetings created before the timed creates.
    pub preload: usize,
    /// The poller's interval inside `serve` (`None`: `--no-workers`).
    pub health_interval_secs: Option<f64>,
    /// Seconds per measured scenario.
    pub duration_secs: f64,
    /// Seconds of uncounted warm-up before each measured scenario.
    pub warmup_secs: f64,
    /// The baseline join, measured before and after the passes, with labels.
    pub baselines: Vec<(String, Summary)>,
    /// One pass per database, PostgreSQL first.
    pub passes: Vec<PassResult>,
}

/// One target of the issue and how the run did.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// What is wanted.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Whether it was met.
    pub pass: bool,
}

impl Verdict {
    /// `PASS` or `MISS`.
    pub fn label(&self) -> &'static str {
        if self.pass { "PASS" } else { "MISS" }
    }

    /// The console line: `PASS goal: measured`.
    pub fn console_line(&self) -> String {
        format!("{} {}: {}", self.label(), self.goal, self.measured)
    }
}

/// `part` as a share of `whole` (0 when there is no whole).
fn share_of(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

/// Writes the `## Targets` table of a report.
pub fn write_targets_table(out: &mut String, measured_header: &str, verdicts: &[Verdict]) {
    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(out, "| target | {measured_header} | result |");
    let _ = writeln!(out, "|---|---|---|");
    for verdict in verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            verdict.goal,
            verdict.measured,
            verdict.label()
        );
    }
    let _ = writeln!(out);
}

impl Report {
    /// The PostgreSQL pass, which the targets are judged on.
    fn postgres(&self) -> Option<&PassResult> {
        self.passes
            .iter()
            .find(|pass| pass.database == "PostgreSQL")
    }

    /// The faster baseline run's requests/s: the comparison is the harder one.
    fn baseline_rate(&self) -> f64 {
        self.baselines
            .iter()
            .map(|(_, summary)| summary.rate)
            .fold(0.0, f64::max)
    }

    /// Switchboard's join rate as a share of the baseline's.
    fn join_share(&self, pass: &PassResult) -> f64 {
        let baseline = self.baseline_rate();
        if baseline > 0.0 {
            pass.join.rate / baseline
        } else {
            0.0
        }
    }

    /// The targets, judged on the PostgreSQL pass (memory on every
    /// database's).
    pub fn verdicts(&self) -> Vec<Verdict> {
        let Some(pg) = self.postgres() else {
            return Vec::new();
        };
        let at = |connections: usize| {
            if connections == TARGET_CONNECTIONS {
                String::new()
            } else {
                format!(" (measured at {connections} connections)")
            }
        };
        let share = self.join_share(pg);
        let mut verdicts = vec![
            Verdict {
                goal: format!(
                    "join ≥ {:.0}% of the baseline's requests/s at {TARGET_CONNECTIONS} connections",
                    JOIN_SHARE * 100.0
                ),
                measured: format!(
                    "{:.0}% ({:.0} / {:.0} req/s, the faster baseline run){}",
                    share * 100.0,
                    pg.join.rate,
                    self.baseline_rate(),
                    at(pg.join.connections)
                ),
                pass: share >= JOIN_SHARE,
            },
            Verdict {
                goal: format!("join p99 < {JOIN_P99_MS} ms at {TARGET_CONNECTIONS} connections"),
                measured: format!("{:.2} ms{}", pg.join.p99_ms, at(pg.join.connections)),
                pass: pg.join.p99_ms < JOIN_P99_MS,
            },
            Verdict {
                goal: format!(
                    "create on PostgreSQL ≥ {:.0}% of the forwarding baseline's creates/s on the same simulated servers",
                    CREATE_SHARE * 100.0
                ),
                measured: format!(
                    "{:.0}% ({:.0} / {:.0} creates/s)",
                    share_of(pg.create.rate, pg.baseline.create.rate) * 100.0,
                    pg.create.rate,
                    pg.baseline.create.rate
                ),
                pass: share_of(pg.create.rate, pg.baseline.create.rate) >= CREATE_SHARE,
            },
            Verdict {
                goal: format!("≥ {CREATES_PER_SEC:.0} creates/s on PostgreSQL"),
                measured: format!("{:.0} creates/s", pg.create.rate),
                pass: pg.create.rate >= CREATES_PER_SEC,
            },
            Verdict {
                goal: format!("create p99 < {CREATE_P99_MS:.0} ms on PostgreSQL"),
                measured: format!("{:.2} ms", pg.create.p99_ms),
                pass: pg.create.p99_ms < CREATE_P99_MS,
            },
            Verdict {
                goal: format!(
                    "getMeetingInfo and isMeetingRunning ≥ {:.0}% of the forwarding baseline's requests/s",
                    INFO_SHARE * 100.0
                ),
                measured: format!(
                    "{:.0}% ({:.0} / {:.0} req/s){}",
                    share_of(pg.info.rate, pg.baseline.info.rate) * 100.0,
                    pg.info.rate,
                    pg.baseline.info.rate,
                    at(pg.info.connections)
                ),
                pass: share_of(pg.info.rate, pg.baseline.info.rate) >= INFO_SHARE,
            },
        ];
        // Memory is judged on every database the run used.
        for pass in &self.passes {
            verdicts.extend(memory_verdicts(pass));
        }
        verdicts
    }

    /// The console table.
    pub fn console(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {:>5} {:>10} {:>8} {:>8} {:>8} {:>7}",
            "scenario", "conns", "req/s", "p50 ms", "p99 ms", "max ms", "errors"
        );
        let mut row = |name: String, summary: &Summary| {
            let _ = writeln!(
                out,
                "{:<28} {:>5} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>7}",
                name,
                summary.connections,
                summary.rate,
                summary.p50_ms,
                summary.p99_ms,
                summary.max_ms,
                summary.errors
            );
        };
        for (when, summary) in &self.baselines {
            row(format!("join, baseline {when}"), summary);
        }
        for pass in &self.passes {
            row(
                format!("create, baseline ({})", pass.database),
                &pass.baseline.create,
            );
            row(format!("create, {}", pass.database), &pass.create);
            row(format!("join, {}", pass.database), &pass.join);
            row(
                format!("info, baseline ({})", pass.database),
                &pass.baseline.info,
            );
            row(format!("info, {}", pass.database), &pass.info);
            row(
                format!("getMeetings, {}", pass.database),
                &pass.get_meetings,
            );
        }
        for pass in &self.passes {
            let _ = writeln!(
                out,
                "{}: {} meetings, join {:.0}% of baseline, RSS {:.1} MB after loading, peak {:.1} MB",
                pass.database,
                pass.meetings,
                self.join_share(pass) * 100.0,
                kib_to_mb(pass.memory_loaded.rss_kib),
                kib_to_mb(pass.memory_end.hwm_kib)
            );
        }
        for verdict in self.verdicts() {
            let _ = writeln!(out, "{}", verdict.console_line());
        }
        out
    }

    /// `docs/benchmarks.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        self.write_header(&mut out);
        self.write_targets(&mut out);
        self.write_join(&mut out);
        self.write_create(&mut out);
        self.write_info(&mut out);
        self.write_get_meetings(&mut out);
        self.write_memory(&mut out);
        self.write_errors(&mut out);
        out
    }

    fn write_header(&self, out: &mut String) {
        let machine = &self.machine;
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "Written by `switchboard-loadtool run` from the figures of that run; do not edit by \
             hand, run the tool again (see `ops/loadtool/README.md`). The health-polling figures \
             are in `benchmarks-polling.md` (`switchboard-loadtool poll`).\n"
        );
        let _ = writeln!(out, "- Date: {}", self.date);
        let _ = writeln!(out, "- Machine: {}", machine.describe());
        let _ = writeln!(out, "- Build: {}", self.profile);
        let _ = writeln!(out, "- Command: `{}`", self.command);
        let _ = writeln!(
            out,
            "- Setup: {} simulated BBB servers (`bbb_simulator`, in the load tool's process); \
             `switchboard serve` as a child process on a fresh database, {}; {} meetings \
             created before the timed creates; closed-loop HTTP/1.1 keep-alive clients, one request in flight per connection, \
             {} s per scenario after {} s of uncounted warm-up (failures during the warm-up \
             are counted as errors); creates go on (untimed) until {} meetings run before join, \
             getMeetings and memory are measured. Load generator, simulators and Switchboard \
             share the same {} CPUs, and other work on the machine is not controlled: compare \
             with the baseline of the same run rather than across runs.",
            self.servers,
            match self.health_interval_secs {
                Some(secs) => format!("its health poller running every {secs} s"),
                None => "`--no-workers` (no poller)".to_owned(),
            },
            self.preload,
            self.duration_secs,
            self.warmup_secs,
            self.meetings,
            machine.cpus
        );
        let _ = writeln!(
            out,
            "- req/s counts answers as expected (302 for join, SUCCESS for create, \
             getMeetingInfo, isMeetingRunning and getMeetings); latencies cover every answer, from sending the request to reading the \
             whole body.\n"
        );
    }

    fn write_targets(&self, out: &mut String) {
        write_targets_table(
            out,
            "measured (PostgreSQL; memory on each database)",
            &self.verdicts(),
        );
    }

    fn write_join(&self, out: &mut String) {
        let _ = writeln!(out, "## Join\n");
        let _ = writeln!(
            out,
            "A viewer's join to a random running meeting, answered with a 302 (not followed). \
             The baseline is a minimal hyper server on its own runtime that verifies the sha1 \
             checksum and answers 302, measured before and after Switchboard; the ratio is to \
             the faster of the two.\n"
        );
        let _ = writeln!(
            out,
            "| server | connections | req/s | p50 ms | p99 ms | max ms | errors | ratio to baseline |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        let best = self.baseline_rate();
        for (when, summary) in &self.baselines {
            let _ = writeln!(
                out,
                "{} {:.0}% |",
                table_row(&format!("baseline (hyper), {when}"), summary),
                if best > 0.0 {
                    summary.rate / best * 100.0
                } else {
                    0.0
                }
            );
        }
        for pass in &self.passes {
            let _ = writeln!(
                out,
                "{} {:.0}% |",
                table_row(&format!("Switchboard, {}", pass.database), &pass.join),
                self.join_share(pass) * 100.0
            );
        }
        let _ = writeln!(out);
    }

    fn write_create(&self, out: &mut String) {
        let _ = writeln!(out, "## Create\n");
        let _ = writeln!(
            out,
            "Creates of new, unique meetings; each is placed on a simulated server and recorded \
             in the database. The baseline of each pass is a minimal hyper server without state \
             that verifies the checksum, re-signs the create for the simulated server its \
             meetingID hashes to and relays the answer, measured on that pass's simulated \
             servers (with as many meetings preloaded through it) before Switchboard starts; \
             its meetings are ended before Switchboard starts.\n"
        );
        self.write_against_forwarding_baseline(out, "creates/s", |pass| {
            (&pass.baseline.create, &pass.create)
        });
        let _ = writeln!(out);
        for pass in &self.passes {
            let made: u64 = pass.top_up.iter().map(|round| round.ok).sum();
            let errors: u64 = pass.top_up.iter().map(|round| round.errors).sum();
            let seconds: f64 = pass.top_up.iter().map(|r| r.elapsed.as_secs_f64()).sum();
            if pass.top_up.is_empty() {
                let _ = writeln!(
                    out,
                    "- {}: the timed phase left {} meetings running.",
                    pass.database, pass.meetings
                );
            } else {
                let _ = writeln!(
                    out,
                    "- {}: topped up untimed with {made} more creates ({:.0}/s, {errors} errors) \
                     to {} running meetings.",
                    pass.database,
                    made as f64 / seconds.max(f64::EPSILON),
                    pass.meetings
                );
            }
        }
        let _ = writeln!(out);
        let counted: Vec<_> = self
            .passes
            .iter()
            .filter_map(|pass| pass.sql.map(|sql| (pass.database, sql)))
            .collect();
        if !counted.is_empty() {
            let poller = match self.health_interval_secs {
                Some(secs) => format!(
                    "its poller's work every {secs} s is counted in as well, so these are upper \
                     bounds"
                ),
                None => "`serve --no-workers`, so no poller writes".to_owned(),
            };
            let _ = writeln!(
                out,
                "SQL work per create in the timed phase (warm-up included): statements from \
                 Switchboard's `switchboard_db_statements_total` (BEGIN and COMMIT not counted), \
                 committed transactions and rows from PostgreSQL's `pg_stat_database` (the \
                 database is Switchboard's alone; {poller}). Round trips add BEGIN and COMMIT \
                 of explicit transactions and the ping sqlx sends each time a connection goes \
                 back to its pool (one per transaction).\n"
            );
            let _ = writeln!(
                out,
                "| database | creates | statements | transactions (explicit and single-statement) | round trips, at most (statements + 3 x transactions) | rows inserted | rows updated | rows deleted |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
            for (database, sql) in counted {
                let _ = writeln!(
                    out,
                    "| {database} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                    sql.creates,
                    sql.per_create(sql.statements),
                    sql.per_create(sql.stats.transactions),
                    sql.per_create(sql.statements + 3 * sql.stats.transactions),
                    sql.per_create(sql.stats.inserted),
                    sql.per_create(sql.stats.updated),
                    sql.per_create(sql.stats.deleted),
                );
            }
            let _ = writeln!(out);
        }
    }

    /// A table of each pass's forwarding baseline and Switchboard, side by
    /// side, for the figures `pick` takes from a pass.
    fn write_against_forwarding_baseline(
        &self,
        out: &mut String,
        unit: &str,
        pick: impl Fn(&PassResult) -> (&Summary, &Summary),
    ) {
        let _ = writeln!(
            out,
            "| server | connections | {unit} | p50 ms | p99 ms | max ms | errors | ratio to baseline |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for pass in &self.passes {
            let (baseline, measured) = pick(pass);
            let _ = writeln!(
                out,
                "{} 100% |",
                table_row(
                    &format!("baseline (hyper), {} pass", pass.database),
                    baseline
                )
            );
            let _ = writeln!(
                out,
                "{} {:.0}% |",
                table_row(&format!("Switchboard, {}", pass.database), measured),
                share_of(measured.rate, baseline.rate) * 100.0
            );
        }
    }

    fn write_info(&self, out: &mut String) {
        let _ = writeln!(out, "## getMeetingInfo and isMeetingRunning\n");
        let _ = writeln!(
            out,
            "getMeetingInfo and isMeetingRunning of random running meetings, alternating; each \
             is one call to the meeting's simulated server. Switchboard is measured with the \
             meetings above running; the baseline (the forwarding server of the Create section) \
             on its own meetings, on the same simulated servers.\n"
        );
        self.write_against_forwarding_baseline(out, "req/s", |pass| {
            (&pass.baseline.info, &pass.info)
        });
        let _ = writeln!(out);
    }

    fn write_get_meetings(&self, out: &mut String) {
        let _ = writeln!(out, "## getMeetings\n");
        let _ = writeln!(
            out,
            "With the meetings above running on {} servers. Today getMeetings asks every server \
             live and merges the answers (a later issue serves it from a projection).\n",
            self.servers
        );
        let _ = writeln!(
            out,
            "| database | connections | req/s | p50 ms | p99 ms | max ms | errors | meetings listed |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for pass in &self.passes {
            let _ = writeln!(
                out,
                "{} {} of {} |",
                table_row(pass.database, &pass.get_meetings),
                pass.listed,
                pass.meetings
            );
        }
        let _ = writeln!(out);
    }

    fn write_memory(&self, out: &mut String) {
        let _ = writeln!(out, "## Memory of the switchboard process\n");
        let _ = writeln!(
            out,
            "From `/proc/PID/status`: VmRSS (resident now) and VmHWM (peak resident), MB of 10^6 \
             bytes.\n"
        );
        let _ = writeln!(
            out,
            "| database | running meetings | VmRSS after creating | VmHWM after creating | VmRSS at end | VmHWM at end |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for pass in &self.passes {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                pass.database,
                pass.meetings,
                kib_to_mb(pass.memory_loaded.rss_kib),
                kib_to_mb(pass.memory_loaded.hwm_kib),
                kib_to_mb(pass.memory_end.rss_kib),
                kib_to_mb(pass.memory_end.hwm_kib)
            );
        }
        let _ = writeln!(out);
    }

    fn write_errors(&self, out: &mut String) {
        let mut scenarios: Vec<(String, &Summary)> = self
            .baselines
            .iter()
            .map(|(when, summary)| (format!("join, baseline {when}"), summary))
            .collect();
        for pass in &self.passes {
            scenarios.push((format!("create, {}", pass.database), &pass.create));
            for (round, summary) in pass.top_up.iter().enumerate() {
                scenarios.push((
                    format!("create top-up {}, {}", round + 1, pass.database),
                    summary,
                ));
            }
            scenarios.push((format!("join, {}", pass.database), &pass.join));
            scenarios.push((
                format!("getMeetings, {}", pass.database),
                &pass.get_meetings,
            ));
        }
        let failing: Vec<_> = scenarios
            .iter()
            .filter(|(_, summary)| summary.errors > 0)
            .collect();
        let _ = writeln!(out, "## Errors\n");
        if failing.is_empty() {
            let _ = writeln!(out, "None.");
            return;
        }
        for (name, summary) in failing {
            let _ = writeln!(out, "- {name}: {} errors, for example:", summary.errors);
            for sample in &summary.error_samples {
                let _ = writeln!(out, "  - `{}`", sample.replace('`', "'"));
            }
        }
    }
}

/// `| name | connections | rate | p50 | p99 | max | errors |`
fn table_row(name: &str, summary: &Summary) -> String {
    format!(
        "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
        summary.connections,
        summary.rate,
        summary.p50_ms,
        summary.p99_ms,
        summary.max_ms,
        summary.errors
    )
}

/// The memory targets, judged on one database's pass.
fn memory_verdicts(pass: &PassResult) -> [Verdict; 2] {
    let database = &pass.database;
    [
        Verdict {
            goal: format!(
                "RSS < {RSS_MB:.0} MB with {RSS_MEETINGS} running meetings on {database} \
                 (peak once created)"
            ),
            measured: format!(
                "{:.1} MB (VmHWM after creating {} meetings)",
                kib_to_mb(pass.memory_loaded.hwm_kib),
                pass.meetings
            ),
            pass: kib_to_mb(pass.memory_loaded.hwm_kib) < RSS_MB && pass.meetings >= RSS_MEETINGS,
        },
        Verdict {
            goal: format!(
                "RSS < {RSS_MB:.0} MB with {RSS_MEETINGS} running meetings on {database} \
                 (peak over the whole run, getMeetings included)"
            ),
            measured: format!(
                "{:.1} MB (VmHWM at the end, after getMeetings at {} connections)",
                kib_to_mb(pass.memory_end.hwm_kib),
                pass.get_meetings.connections
            ),
            pass: kib_to_mb(pass.memory_end.hwm_kib) < RSS_MB && pass.meetings >= RSS_MEETINGS,
        },
    ]
}
