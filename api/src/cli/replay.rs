//! `switchboard replay [--check]`: every projection rebuilt from the log,
//! with its progress on a terminal.

use std::io::{IsTerminal, Write};
use switchboard_store::{RebuildMode, RebuildPhase, RebuildProgress, Store};

/// One line of progress (`\r`-overwritten on a terminal).
fn progress_line(progress: &RebuildProgress) -> String {
    let percent = (progress.done * 100)
        .checked_div(progress.total)
        .unwrap_or(100);
    match progress.phase {
        RebuildPhase::Reading => format!(
            "reading the log: {} of {} events ({percent}%)",
            progress.done, progress.total
        ),
        RebuildPhase::Writing => format!(
            "writing the rebuilt tables: {} of {} ({percent}%)",
            progress.done, progress.total
        ),
        RebuildPhase::Swapping => "swapping in (appends wait)".to_owned(),
    }
}

/// Rebuilds (or with `check`, compares) and prints what it did.
pub async fn run(store: &Store, check: bool) -> anyhow::Result<()> {
    let terminal = std::io::stderr().is_terminal();
    let mut show = |progress: RebuildProgress| {
        if terminal {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K{}", progress_line(&progress));
            let _ = err.flush();
        }
    };
    let mode = if check {
        RebuildMode::Check
    } else {
        RebuildMode::Swap
    };
    let started = std::time::Instant::now();
    let report = store.rebuild(mode, &mut show).await;
    if terminal {
        eprint!("\r\x1b[2K");
    }
    let report = report?;
    let seconds = started.elapsed().as_secs_f64();
    let events = report.applied + report.caught_up;
    if !check {
        out!("rebuilt projections from {events} events in {seconds:.1} s");
        return Ok(());
    }
    if report.differences.is_empty() {
        out!("the live projections agree with the log ({events} events, {seconds:.1} s)");
        return Ok(());
    }
    for difference in &report.differences {
        out!(
            "{}: {} rows only in the live table, {} only in the rebuilt one (e.g. {})",
            difference.table,
            difference.only_live,
            difference.only_rebuilt,
            difference.examples.join(", ")
        );
    }
    anyhow::bail!(
        "{} tables differ from the log; `switchboard replay` rebuilds them",
        report.differences.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_a_fraction() {
        let line = progress_line(&RebuildProgress {
            phase: RebuildPhase::Reading,
            done: 250,
            total: 1000,
        });
        assert_eq!(line, "reading the log: 250 of 1000 events (25%)");
    }
}
