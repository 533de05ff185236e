//! The figures of `switchboard-loadtool poll` as a console summary and as
//! `docs/benchmarks-polling.md`, with the targets judged PASS or MISS.
//!
//! The polling report is a file of its own rather than a section of
//! `docs/benchmarks.md`: each command then owns one whole generated file, so
//! neither has to parse and splice the other's Markdown, and running one
//! never loses or garbles the other's figures.

use std::fmt::Write as _;

use crate::poll::PollResult;
use crate::report::{Machine, Verdict, write_targets_table};
use crate::target::kib_to_mb;

/// Servers the targets are stated for.
const TARGET_SERVERS: usize = 1000;
/// Polling interval the targets are stated for, seconds.
const TARGET_INTERVAL_SECS: f64 = 10.0;
/// A cycle must finish within this, seconds.
const CYCLE_LIMIT_SECS: f64 = 2.0;
/// The worker's CPU share limit, of one core.
const CPU_SHARE_LIMIT: f64 = 0.10;
/// A common default soft limit on open files.
const COMMON_SOFT_LIMIT: usize = 1024;

/// Everything the polling report shows.
#[derive(Debug, Clone)]
pub struct PollReport {
    /// When the run started (UTC).
    pub date: String,
    /// Where it ran.
    pub machine: Machine,
    /// Source revision and build profiles.
    pub profile: String,
    /// The command line of the run.
    pub command: String,
    /// What was measured.
    pub result: PollResult,
}

impl PollReport {
    /// ` (measured with N servers every S s)` when the run differs from the
    /// setting the targets are stated for, else nothing.
    fn setting_note(&self) -> String {
        let config = &self.result.config;
        if config.servers == TARGET_SERVERS && config.interval_secs == TARGET_INTERVAL_SECS {
            String::new()
        } else {
            format!(
                " (measured with {} servers every {} s)",
                config.servers, config.interval_secs
            )
        }
    }

    /// The targets.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let result = &self.result;
        let config = &result.config;
        let note = self.setting_note();
        let at_scale = config.servers >= TARGET_SERVERS;
        let max_ms = result.max_cycle_ms();
        let cycle = Verdict {
            goal: format!(
                "a health cycle over {TARGET_SERVERS} servers finishes in < {CYCLE_LIMIT_SECS} s"
            ),
            measured: match max_ms {
                Some(max_ms) => format!(
                    "longest {max_ms} ms of {} cycles (first {} ms, later ones {:.0} ms on \
                     average){note}",
                    result.cycles.len(),
                    result.cycles[0].elapsed_ms,
                    mean_ms(result.later_cycles())
                ),
                None => "no cycle finished".to_owned(),
            },
            pass: at_scale
                && result.failed_cycles == 0
                && max_ms.is_some_and(|ms| (ms as f64) < CYCLE_LIMIT_SECS * 1000.0),
        };
        let cpu = Verdict {
            goal: format!(
                "the worker uses < {:.0}% of one core polling {TARGET_SERVERS} servers every \
                 {TARGET_INTERVAL_SECS} s",
                CPU_SHARE_LIMIT * 100.0
            ),
            measured: format!(
                "{:.2}% over {:.0} s after the first cycle ({:.2}% from start-up on){note}",
                result.cpu_share() * 100.0,
                result.window_secs,
                result.run_cpu_share() * 100.0
            ),
            pass: at_scale
                && config.interval_secs <= TARGET_INTERVAL_SECS
                && result.cpu_share() < CPU_SHARE_LIMIT,
        };
        let appended = result.appended_total();
        let events = Verdict {
            goal: "no events appended while nothing changes".to_owned(),
            measured: if result.probes_failed == 0 {
                format!(
                    "{appended} events over {} cycles ({} probes, all answered)",
                    result.cycles.len(),
                    result.probes_ok
                )
            } else {
                format!(
                    "{appended} events; but {} of {} probes failed, so servers may really \
                     have changed",
                    result.probes_failed,
                    result.probes_ok + result.probes_failed
                )
            },
            pass: appended == 0 && result.probes_failed == 0 && !result.cycles.is_empty(),
        };
        vec![cycle, cpu, events]
    }

    /// The console summary.
    pub fn console(&self) -> String {
        let result = &self.result;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} servers ({}), every {} s: {} cycles, first {} ms, later mean {:.0} ms, max {} ms",
            result.config.servers,
            result.database,
            result.config.interval_secs,
            result.cycles.len(),
            result.cycles.first().map_or(0, |cycle| cycle.elapsed_ms),
            mean_ms(result.later_cycles()),
            result.max_cycle_ms().unwrap_or(0)
        );
        let _ = writeln!(
            out,
            "worker: {:.2}% of a core over {:.0} s ({:.2}% from start-up), VmHWM {:.1} MB, \
             {} fds, {} threads; load tool (simulators) {:.1}% of a core",
            result.cpu_share() * 100.0,
            result.window_secs,
            result.run_cpu_share() * 100.0,
            kib_to_mb(result.memory.hwm_kib),
            result.open_fds,
            result.threads,
            result.loadtool_cpu_share() * 100.0
        );
        let _ = writeln!(
            out,
            "events appended: {}; worker log: {} lines, {} unknown-meeting warnings, {} other \
             warnings/errors",
            result.appended_total(),
            result.log.lines,
            result.log.unknown_meeting_warnings,
            result.log.other_problems
        );
        for verdict in self.verdicts() {
            let _ = writeln!(out, "{}", verdict.console_line());
        }
        out
    }

    /// `docs/benchmarks-polling.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        self.write_header(&mut out);
        self.write_targets(&mut out);
        self.write_summary(&mut out);
        self.write_cycles(&mut out);
        self.write_process(&mut out);
        self.write_events(&mut out);
        out
    }

    fn write_header(&self, out: &mut String) {
        let result = &self.result;
        let config = &result.config;
        let machine = &self.machine;
        let _ = writeln!(out, "# Benchmarks: health polling\n");
        let _ = writeln!(
            out,
            "Written by `switchboard-loadtool poll` from the figures of that run; do not edit by \
             hand, run the tool again (see `ops/loadtool/README.md`). The request-path figures \
             are in `benchmarks.md` (`switchboard-loadtool run`).\n"
        );
        let _ = writeln!(out, "- Date: {}", self.date);
        let _ = writeln!(out, "- Machine: {}", machine.describe());
        let _ = writeln!(out, "- Build: {}", self.profile);
        let _ = writeln!(out, "- Command: `{}`", self.command);
        let _ = writeln!(
            out,
            "- Setup: {} simulated BBB servers (`bbb_simulator`, in the load tool's process), \
             each running {} meetings created on it directly, so every getMeetings answer lists \
             meetings; Switchboard did not place them and `adopt_unknown` is off, so \
             reconciliation only logs them. The servers were registered, enabled, with one \
             `switchboard servers sync FILE` (Scalelite's YAML) in {:.1} s on a fresh {} \
             database. `switchboard worker` then ran as a child process with `[health] \
             interval_secs = {}` and `timeout_ms = {}` (64 servers asked at once, fixed in the \
             code).",
            config.servers,
            config.meetings_per_server,
            result.register_secs,
            result.database,
            config.interval_secs,
            config.timeout_ms
        );
        let _ = writeln!(
            out,
            "- Measured: each cycle's duration from the poller's own `health cycle ... \
             elapsed_ms=N` debug line (the only debug output switched on), checked against \
             `switchboard_worker_cycle_duration_seconds` on the worker's `/metrics`; the \
             worker's CPU as utime + stime from `/proc/PID/stat` over whole intervals, from \
             the end of the first cycle (which opens every connection) on; its memory from \
             `/proc/PID/status`; the event log with `switchboard events list --json` before \
             and after. The simulators, the load tool and the worker share the same {} CPUs.\n",
            machine.cpus
        );
    }

    fn write_targets(&self, out: &mut String) {
        write_targets_table(out, "measured", &self.verdicts());
    }

    fn write_summary(&self, out: &mut String) {
        let result = &self.result;
        let config = &result.config;
        let _ = writeln!(out, "## Polling\n");
        let _ = writeln!(
            out,
            "CPU is the worker's share of one core over the measured window; RSS is its peak \
             (VmHWM), MB of 10^6 bytes.\n"
        );
        let _ = writeln!(
            out,
            "| database | servers | interval s | cycles | first cycle ms | later cycles: mean ms | max ms | CPU % of a core | peak RSS MB | events appended |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.0} | {} | {:.2} | {:.1} | {} |",
            result.database,
            config.servers,
            config.interval_secs,
            result.cycles.len(),
            result.cycles.first().map_or(0, |cycle| cycle.elapsed_ms),
            mean_ms(result.later_cycles()),
            result.max_cycle_ms().unwrap_or(0),
            result.cpu_share() * 100.0,
            kib_to_mb(result.memory.hwm_kib),
            result.appended_total()
        );
        let _ = writeln!(out);
    }

    fn write_cycles(&self, out: &mut String) {
        let result = &self.result;
        let _ = writeln!(out, "## Cycles\n");
        let _ = writeln!(
            out,
            "From the worker's log; \"started\" counts from the worker's start. The first cycle \
             opens a connection to every server; later ones reuse them (keep-alive).\n"
        );
        let _ = writeln!(
            out,
            "| cycle | started s | duration ms | servers polled | answered |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for (index, cycle) in result.cycles.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {} | {} | {} |",
                index + 1,
                cycle.started_secs,
                cycle.elapsed_ms,
                cycle.polled,
                cycle.healthy
            );
        }
        let _ = writeln!(out);
        match &result.histogram {
            Some(histogram) => {
                let bound = |share: f64| match histogram.bound(share) {
                    Some(bound) => format!("≤ {bound} s"),
                    None => "beyond the largest bucket".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "`/metrics` at the end: {} cycles recorded, {:.0} ms on average; p99 {}, \
                     all {} (bucket bounds); {} cycles failed as a whole.\n",
                    histogram.count,
                    histogram.mean_ms(),
                    bound(0.99),
                    bound(1.0),
                    result.failed_cycles
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "`/metrics` at the end had no cycle-duration histogram.\n"
                );
            }
        }
    }

    fn write_process(&self, out: &mut String) {
        let result = &self.result;
        let ticks = result.ticks_per_sec.max(1) as f64;
        let seconds = |ticks_used: u64| ticks_used as f64 / ticks;
        let _ = writeln!(out, "## The worker process\n");
        let _ = writeln!(
            out,
            "- CPU over the window ({} interval(s), {:.1} s, from {:.1} s after the start): \
             {:.2} s user + {:.2} s system = {:.2}% of one core, {:.0} ms of CPU per interval.",
            result.window_intervals,
            result.window_secs,
            result.window_from_secs,
            seconds(result.window_cpu.user),
            seconds(result.window_cpu.system),
            result.cpu_share() * 100.0,
            seconds(result.window_cpu.total()) * 1000.0 / result.window_intervals.max(1) as f64
        );
        let _ = writeln!(
            out,
            "- CPU from the start (migrations, loading and the first cycle included): {:.2} s \
             over {:.1} s = {:.2}% of one core.",
            seconds(result.run_cpu.total()),
            result.run_secs,
            result.run_cpu_share() * 100.0
        );
        let _ = writeln!(
            out,
            "- Memory at the end: VmRSS {:.1} MB, VmHWM (peak) {:.1} MB; {} threads.",
            kib_to_mb(result.memory.rss_kib),
            kib_to_mb(result.memory.hwm_kib),
            result.threads
        );
        let limit = |value: Option<u64>| value.map_or("unlimited".to_owned(), |v| v.to_string());
        let others = result.open_fds.saturating_sub(result.config.servers);
        let _ = writeln!(
            out,
            "- Open file descriptors at the end: {} for {} servers (limit {} soft, {} hard): the \
             worker keeps an idle keep-alive connection to every server between cycles, so it \
             needs one descriptor per server plus about {others}. A soft limit of {COMMON_SOFT_LIMIT} \
             (a common default; the shipped systemd units set `LimitNOFILE=65536`) leaves room \
             for about {} servers.",
            result.open_fds,
            result.config.servers,
            limit(result.fd_limits.0),
            limit(result.fd_limits.1),
            COMMON_SOFT_LIMIT.saturating_sub(others)
        );
        let _ = writeln!(
            out,
            "- Probes: {} answered, {} failed.",
            result.probes_ok, result.probes_failed
        );
        let cycles = result.cycles.len().max(1);
        let _ = writeln!(
            out,
            "- Log: {} lines, {:.2} MB ({:.0} MB a day at this rate); {} of them warnings that a \
             server runs a meeting unknown to Switchboard ({:.0} per cycle: one per directly \
             created meeting, every cycle); {} other warnings or errors.",
            result.log.lines,
            result.log.bytes as f64 / 1e6,
            result.log.bytes as f64 / 1e6 / result.run_secs.max(f64::EPSILON) * 86_400.0,
            result.log.unknown_meeting_warnings,
            result.log.unknown_meeting_warnings as f64 / cycles as f64,
            result.log.other_problems
        );
        for sample in &result.log.samples {
            let _ = writeln!(out, "  - `{}`", sample.replace('`', "'"));
        }
        let _ = writeln!(
            out,
            "- For comparison, the load tool (its {} simulators answering) used {:.1}% of one \
             core over the window.\n",
            result.config.servers,
            result.loadtool_cpu_share() * 100.0
        );
    }

    fn write_events(&self, out: &mut String) {
        let result = &self.result;
        let _ = writeln!(out, "## Event log\n");
        let (start, end) = result.position_gauge;
        let gauge = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let _ = writeln!(
            out,
            "- Before the worker started: {} events (the registration of {} servers).",
            result.events_before, result.config.servers
        );
        if result.appended.is_empty() {
            let _ = writeln!(
                out,
                "- Appended while it polled: none. `switchboard_event_log_position`: {} after \
                 the first cycle, {} at the end.",
                gauge(start),
                gauge(end)
            );
        } else {
            let by_type = result
                .appended
                .iter()
                .map(|(event_type, count)| format!("{count} {event_type}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "- Appended while it polled: {} ({by_type}). \
                 `switchboard_event_log_position`: {} after the first cycle, {} at the end.",
                result.appended_total(),
                gauge(start),
                gauge(end)
            );
        }
    }
}

/// Mean duration of cycles, milliseconds (0 when there are none).
fn mean_ms(cycles: &[crate::poll::Cycle]) -> f64 {
    if cycles.is_empty() {
        return 0.0;
    }
    cycles
        .iter()
        .map(|cycle| cycle.elapsed_ms as f64)
        .sum::<f64>()
        / cycles.len() as f64
}
