//! What a BBB server feels, read from `/proc` as node_exporter reads it:
//! CPU time counters (`/proc/stat`) and memory (`/proc/meminfo`). The root
//! is a setting so tests can give a folder of their own.

use std::path::Path;
use switchboard_domain::server_metrics::{CpuCounters, memory_used_percent};

/// Kernel clock ticks per second of `/proc/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU counters summed over all CPUs: busy is every mode but idle (as
/// node_exporter's `node_cpu_seconds_total` is summed by the poller).
pub fn cpu(root: &Path) -> Option<CpuCounters> {
    let text = std::fs::read_to_string(root.join("stat")).ok()?;
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|field| field.parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    if ticks.len() < 4 {
        return None;
    }
    let total: f64 = ticks.iter().sum();
    let idle = ticks[3];
    Some(CpuCounters {
        busy_seconds: (total - idle) / TICKS_PER_SECOND,
        total_seconds: total / TICKS_PER_SECOND,
    })
}

/// Used memory in percent: 1 - MemAvailable / MemTotal.
pub fn memory_percent(root: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(root.join("meminfo")).ok()?;
    let field = |name: &str| -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    memory_used_percent(field("MemAvailable")?, field("MemTotal")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_memory_are_read_from_a_proc_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("stat"),
            "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 100 0 50 800 50 0 0 0 0 0\nintr 1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n",
        )
        .unwrap();
        let cpu = cpu(dir.path()).unwrap();
        assert_eq!(cpu.total_seconds, 10.0);
        assert_eq!(cpu.busy_seconds, 2.0);
        assert_eq!(memory_percent(dir.path()), Some(75.0));
        assert_eq!(super::cpu(&dir.path().join("missing")), None);
    }
}
