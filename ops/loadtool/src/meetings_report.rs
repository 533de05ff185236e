//! The figures of `switchboard-loadtool meetings` as a console summary and
//! as `docs/benchmarks-get-meetings.md`, with the target judged PASS
//! or MISS. Like the polling report, a file of its own: each command owns
//! one whole generated file.

use std::fmt::Write as _;

use crate::meetings::{CHECK_EVERY, MeetingsResult, Phase};
use crate::report::{Machine, Verdict, write_targets_table};
use crate::stats::Summary;
use crate::target::kib_to_mb;

/// getMeetings answers per second the target asks for.
const TARGET_RATE: f64 = 1000.0;
/// Meetings the target is stated for.
const TARGET_MEETINGS: usize = 1000;
/// Servers the target is stated for.
const TARGET_SERVERS: usize = 10;

/// Everything the getMeetings report shows.
#[derive(Debug, Clone)]
pub struct MeetingsReport {
    /// When the run started (UTC).
    pub date: String,
    /// Where it ran.
    pub machine: Machine,
    /// Source revision and build profiles.
    pub profile: String,
    /// The command line of the run.
    pub command: String,
    /// One result per database, in the order run.
    pub results: Vec<MeetingsResult>,
}

impl MeetingsReport {
    /// ` (measured with N meetings on S servers)` when a run differs from
    /// the setting the target is stated for, else nothing.
    fn setting_note(result: &MeetingsResult) -> String {
        if result.meetings_running == TARGET_MEETINGS && result.config.servers == TARGET_SERVERS {
            String::new()
        } else {
            format!(
                " (measured with {} meetings on {} servers)",
                result.meetings_running, result.config.servers
            )
        }
    }

    /// The phase with the best rate among those without errors.
    fn best(result: &MeetingsResult) -> Option<&Phase> {
        result
            .phases
            .iter()
            .filter(|phase| phase.summary.errors == 0)
            .max_by(|a, b| a.summary.rate.total_cmp(&b.summary.rate))
    }

    /// The targets, for every database run.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for result in &self.results {
            let note = Self::setting_note(result);
            let at_scale = result.meetings_running >= TARGET_MEETINGS
                && result.config.servers >= TARGET_SERVERS
                && result.listed == result.meetings_running;
            let rates = result
                .phases
                .iter()
                .map(|phase| {
                    format!(
                        "{:.0} at {} connections{}",
                        phase.summary.rate,
                        phase.summary.connections,
                        if phase.summary.errors == 0 {
                            String::new()
                        } else {
                            format!(" ({} errors)", phase.summary.errors)
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let best = Self::best(result);
            verdicts.push(Verdict {
                goal: format!(
                    "≥ {TARGET_RATE:.0} getMeetings answers/s with {TARGET_MEETINGS} meetings on \
                     {TARGET_SERVERS} servers ({})",
                    result.database
                ),
                measured: format!(
                    "{rates} answers/s; each answer {:.2} MB, lists {} meetings and {} \
                     attendees{note}",
                    result.answer_bytes as f64 / 1e6,
                    result.listed,
                    result.attendees_listed
                ),
                pass: at_scale && best.is_some_and(|phase| phase.summary.rate >= TARGET_RATE),
            });
            let asked: u64 = result.phases.iter().map(|phase| phase.servers_asked).sum();
            let answers: u64 = result.phases.iter().map(|phase| phase.summary.ok).sum();
            let cycles: u64 = result.phases.iter().map(|phase| phase.cycles).sum();
            verdicts.push(Verdict {
                goal: format!(
                    "no server asked on the request path, only by polls ({})",
                    result.database
                ),
                measured: format!(
                    "{asked} getMeetings requests at the servers while Switchboard answered \
                     {answers} (measured) getMeetings, during {cycles} poll cycles of {} \
                     servers",
                    result.config.servers
                ),
                pass: result.servers_not_asked(),
            });
            if let Some(verdict) = Self::idle_verdict(result) {
                verdicts.push(verdict);
            }
        }
        verdicts
    }

    /// Idle connections cost nothing to others (issue 14.8): getMeetings
    /// with the idle connections open is as fast as without, at the same
    /// connection count: p99 at most twice, no errors.
    fn idle_verdict(result: &MeetingsResult) -> Option<Verdict> {
        let idle = result
            .phases
            .iter()
            .find(|phase| phase.idle_connections > 0)?;
        let without = result.phases.iter().find(|phase| {
            phase.idle_connections == 0 && phase.summary.connections == idle.summary.connections
        })?;
        Some(Verdict {
            goal: format!(
                "{} idle, half-sent connections do not slow getMeetings (p99 ≤ 2x without, \
                 no errors; {})",
                idle.idle_connections, result.database
            ),
            measured: format!(
                "at {} connections: p50 {:.2} ms, p99 {:.2} ms, {:.0}/s, {} errors with them \
                 open; p50 {:.2} ms, p99 {:.2} ms, {:.0}/s without",
                idle.summary.connections,
                idle.summary.p50_ms,
                idle.summary.p99_ms,
                idle.summary.rate,
                idle.summary.errors,
                without.summary.p50_ms,
                without.summary.p99_ms,
                without.summary.rate
            ),
            pass: idle.summary.errors == 0 && idle.summary.p99_ms <= 2.0 * without.summary.p99_ms,
        })
    }

    /// The console summary.
    pub fn console(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<34} {:>5} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>6}",
            "getMeetings",
            "conns",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "checked",
            "ratio"
        );
        for result in &self.results {
            let mut row = |name: String, summary: &Summary, ratio: Option<f64>| {
                let _ = writeln!(
                    out,
                    "{:<34} {:>5} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>7} {:>6}",
                    name,
                    summary.connections,
                    summary.rate,
                    summary.p50_ms,
                    summary.p99_ms,
                    summary.max_ms,
                    summary.errors,
                    summary.checked,
                    ratio.map_or(String::new(), |ratio| format!("{:.0}%", ratio * 100.0))
                );
            };
            for summary in &result.baseline_before {
                row(
                    format!("baseline before ({})", result.database),
                    summary,
                    None,
                );
            }
            for phase in &result.phases {
                row(
                    format!(
                        "Switchboard, {}{}",
                        result.database,
                        idle_note(phase.idle_connections)
                    ),
                    &phase.summary,
                    Some(result.ratio(phase)),
                );
            }
            for summary in &result.baseline_after {
                row(
                    format!("baseline after ({})", result.database),
                    summary,
                    None,
                );
            }
            for phase in &result.phases {
                let _ = writeln!(
                    out,
                    "{} at {} connections: servers asked {} times during {} poll cycles (≤ {} \
                     from polls)",
                    result.database,
                    phase.summary.connections,
                    phase.servers_asked,
                    phase.cycles,
                    phase.allowed(result.config.servers)
                );
            }
            let _ = writeln!(
                out,
                "{}: answer {} bytes; switchboard VmRSS {:.1} MB / VmHWM {:.1} MB at the end",
                result.database,
                result.answer_bytes,
                kib_to_mb(result.memory_end.rss_kib),
                kib_to_mb(result.memory_end.hwm_kib)
            );
        }
        for verdict in self.verdicts() {
            let _ = writeln!(out, "{}", verdict.console_line());
        }
        out
    }

    /// `docs/benchmarks-get-meetings.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        self.write_header(&mut out);
        write_targets_table(&mut out, "measured", &self.verdicts());
        self.write_runs(&mut out);
        self.write_servers_asked(&mut out);
        self.write_memory(&mut out);
        self.write_errors(&mut out);
        out
    }

    fn write_header(&self, out: &mut String) {
        let machine = &self.machine;
        let _ = writeln!(out, "# Benchmarks: getMeetings from the polled picture\n");
        let _ = writeln!(
            out,
            "Written by `switchboard-loadtool meetings` from the figures of that run; do not \
             edit by hand, run the tool again (see `ops/loadtool/README.md`). The other \
             request-path figures are in `benchmarks.md`, the polling figures in \
             `benchmarks-polling.md`.\n"
        );
        let _ = writeln!(out, "- Date: {}", self.date);
        let _ = writeln!(out, "- Machine: {}", machine.describe());
        let _ = writeln!(out, "- Build: {}", self.profile);
        let _ = writeln!(out, "- Command: `{}`", self.command);
        let Some(first) = self.results.first() else {
            return;
        };
        let config = &first.config;
        let connections = config
            .connections
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" and ");
        let _ = writeln!(
            out,
            "- Setup: {} simulated BBB servers (`bbb_simulator`, in the load tool's process), \
             registered and enabled with `switchboard servers add`; `switchboard serve` as a \
             child process on a fresh database, *with* its workers (health polling as apalis \
             jobs on that database) every {} s (`SWITCHBOARD_HEALTH_INTERVAL_SECS`). {} \
             meetings were created through Switchboard and {} viewers joined through it, \
             round-robin over the meetings, each join's redirect followed to the simulator so \
             the servers' getMeetings answers carry attendees. Measuring started once a \
             getMeetings answer listed every meeting and attendee and a poll cycle had finished \
             since the last join.",
            config.servers, config.interval_secs, config.meetings, config.attendees
        );
        let _ = writeln!(
            out,
            "- Measured: getMeetings (signed, default tenant) with closed-loop HTTP/1.1 \
             keep-alive clients, one request in flight per connection, at {connections} \
             connections, {} s each after {} s of uncounted warm-up. Every answer must be HTTP \
             200 with SUCCESS, and every {CHECK_EVERY}th must list all the meetings; anything \
             else counts as an error. Latencies run from sending the request to reading the \
             whole body. The poller keeps polling during the phases.",
            config.duration.as_secs_f64(),
            config.warmup.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "- Baseline: a minimal hyper server on its own runtime ({} workers) that verifies \
             the sha1 checksum of getMeetings and answers the same bytes as Switchboard's \
             answer (one shared buffer), measured at the same connection counts before and \
             after Switchboard, under the same checks; the ratio is to the faster of its two \
             runs. Load generator, simulators, poller and Switchboard share the same {} CPUs, \
             and other work on the machine is not controlled: compare with the baseline of the \
             same run rather than across runs.\n",
            config.baseline_threads, machine.cpus
        );
    }

    fn write_runs(&self, out: &mut String) {
        let _ = writeln!(out, "## Runs\n");
        let _ = writeln!(
            out,
            "req/s counts answers as expected; MB/s is that times the answer's size; \"checked\" \
             is how many measured answers were also checked to list every meeting.\n"
        );
        let _ = writeln!(
            out,
            "| server | connections | req/s | MB/s | p50 ms | p99 ms | max ms | errors | checked | ratio to baseline |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        for result in &self.results {
            let row = |name: &str, summary: &Summary, ratio: f64| {
                format!(
                    "| {name} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {:.0}% |",
                    summary.connections,
                    summary.rate,
                    summary.rate * result.answer_bytes as f64 / 1e6,
                    summary.p50_ms,
                    summary.p99_ms,
                    summary.max_ms,
                    summary.errors,
                    summary.checked,
                    ratio * 100.0
                )
            };
            let baseline_ratio = |summary: &Summary| {
                let best = result.baseline_rate(summary.connections);
                if best > 0.0 { summary.rate / best } else { 0.0 }
            };
            for summary in &result.baseline_before {
                let name = format!("baseline (hyper), before ({})", result.database);
                let _ = writeln!(out, "{}", row(&name, summary, baseline_ratio(summary)));
            }
            for phase in &result.phases {
                let name = format!(
                    "**Switchboard, {}**{}",
                    result.database,
                    idle_note(phase.idle_connections)
                );
                let _ = writeln!(out, "{}", row(&name, &phase.summary, result.ratio(phase)));
            }
            for summary in &result.baseline_after {
                let name = format!("baseline (hyper), after ({})", result.database);
                let _ = writeln!(out, "{}", row(&name, summary, baseline_ratio(summary)));
            }
        }
        let _ = writeln!(out);
        for result in &self.results {
            let created: u64 = result.creates.iter().map(|round| round.ok).sum();
            let create_errors: u64 = result.creates.iter().map(|round| round.errors).sum();
            let _ = writeln!(
                out,
                "- {}: {} meetings running after {} create round(s) ({created} created, \
                 {create_errors} errors, {:.0} creates/s in the first round); {} attendees \
                 joined ({} join errors); the answer listed them all {:.1} s after the last \
                 join: {} meetings, {} attendees, {} bytes ({:.0} bytes per meeting); the \
                 poller had finished {} cycles by the end of the last phase.",
                result.database,
                result.meetings_running,
                result.creates.len(),
                result.creates.first().map_or(0.0, |round| round.rate),
                result.attendees_joined,
                result.join_errors,
                result.picture_secs,
                result.listed,
                result.attendees_listed,
                result.answer_bytes,
                result.answer_bytes as f64 / result.listed.max(1) as f64,
                result.cycles_total
            );
        }
        let _ = writeln!(out);
    }

    fn write_servers_asked(&self, out: &mut String) {
        let _ = writeln!(out, "## Servers asked during the phases\n");
        let _ = writeln!(
            out,
            "The simulators' getMeetings request counts (over all servers) and the poller's \
             `switchboard_worker_cycles_total{{task=\"health_poll\"}}` on Switchboard's \
             `/metrics`, read before and after each measured phase (warm-up included). A cycle \
             asks every server once, so polls explain at most (cycles + 2) × servers requests: \
             the cycles finished in the phase plus one in flight at either edge. Asking the \
             servers on the request path would add one request per server per answer.\n"
        );
        let _ = writeln!(
            out,
            "| database | connections | answers (measured) | poll cycles | getMeetings at the servers | at most from polls | request path asked |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for result in &self.results {
            for phase in &result.phases {
                let allowed = phase.allowed(result.config.servers);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    result.database,
                    phase.summary.connections,
                    phase.summary.ok,
                    phase.cycles,
                    phase.servers_asked,
                    allowed,
                    if phase.servers_asked <= allowed {
                        "no"
                    } else {
                        "**yes**"
                    }
                );
            }
        }
        let _ = writeln!(out);
    }

    fn write_memory(&self, out: &mut String) {
        let _ = writeln!(out, "## Memory of the switchboard process\n");
        let _ = writeln!(
            out,
            "From `/proc/PID/status`: VmRSS (resident now) and VmHWM (peak resident), MB of 10^6 \
             bytes; the process also runs the poller.\n"
        );
        let _ = writeln!(
            out,
            "| database | meetings | VmRSS, picture complete | VmHWM, picture complete | VmRSS at end | VmHWM at end |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for result in &self.results {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                result.database,
                result.meetings_running,
                kib_to_mb(result.memory_loaded.rss_kib),
                kib_to_mb(result.memory_loaded.hwm_kib),
                kib_to_mb(result.memory_end.rss_kib),
                kib_to_mb(result.memory_end.hwm_kib)
            );
        }
        let _ = writeln!(out);
    }

    fn write_errors(&self, out: &mut String) {
        let mut scenarios: Vec<(String, &Summary)> = Vec::new();
        let mut joins = Vec::new();
        for result in &self.results {
            for (round, summary) in result.creates.iter().enumerate() {
                scenarios.push((
                    format!("create round {}, {}", round + 1, result.database),
                    summary,
                ));
            }
            for summary in result.baseline_before.iter().chain(&result.baseline_after) {
                scenarios.push((
                    format!(
                        "baseline at {} connections ({})",
                        summary.connections, result.database
                    ),
                    summary,
                ));
            }
            for phase in &result.phases {
                scenarios.push((
                    format!(
                        "Switchboard at {} connections, {}",
                        phase.summary.connections, result.database
                    ),
                    &phase.summary,
                ));
            }
            if result.join_errors > 0 {
                joins.push(result);
            }
        }
        let failing: Vec<_> = scenarios
            .iter()
            .filter(|(_, summary)| summary.errors > 0)
            .collect();
        let _ = writeln!(out, "## Errors\n");
        if failing.is_empty() && joins.is_empty() {
            let _ = writeln!(out, "None.");
            return;
        }
        for (name, summary) in failing {
            let _ = writeln!(out, "- {name}: {} errors, for example:", summary.errors);
            for sample in &summary.error_samples {
                let _ = writeln!(out, "  - `{}`", sample.replace('`', "'"));
            }
        }
        for result in joins {
            let _ = writeln!(
                out,
                "- joins, {}: {} errors, for example:",
                result.database, result.join_errors
            );
            for sample in &result.join_error_samples {
                let _ = writeln!(out, "  - `{}`", sample.replace('`', "'"));
            }
        }
    }
}

/// ", with N idle connections open" for a phase that held them.
fn idle_note(idle_connections: usize) -> String {
    if idle_connections == 0 {
        String::new()
    } else {
        format!(", with {idle_connections} idle connections open")
    }
}
