//! Reading what a server feels from its Prometheus text endpoint (e.g.
//! node_exporter): `node_cpu_seconds_total` counters and
//! `node_memory_MemAvailable_bytes` / `node_memory_MemTotal_bytes`.
//!
//! The scraper in `switchboard-workers` fetches an endpoint and
//! [`parse_node_metrics`] reads it; [`MetricsTracker`]
//! keeps each server's readings of the window in memory and says what
//! placement may use (see [`crate::server_metrics`]). Metrics
//! URLs may carry credentials (`http://user:pass@host:9100/metrics`, sent as
//! basic auth): they are never logged and errors never contain them.

use crate::server_metrics::{CpuCounters, MetricsState, ResourceUsage, memory_used_percent};
use std::time::Duration;
use thiserror::Error;

/// Bodies larger than this are refused (node_exporter's are well below).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Why a server's metrics could not be read.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connection refused, DNS, TLS...
    #[error("connection failed: {0}")]
    Connect(String),
    /// An HTTP status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is too large or not UTF-8.
    #[error("unreadable body: {0}")]
    Body(String),
    /// A line of the text format could not be read.
    #[error("malformed metrics text at line {0}")]
    Malformed(usize),
    /// The endpoint does not report CPU counters.
    #[error("no node_cpu_seconds_total in the answer (is it node_exporter?)")]
    NoCpu,
}

/// What one read of an endpoint gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeMetrics {
    /// CPU counters summed over all CPUs.
    pub cpu: CpuCounters,
    /// Used memory in percent, when both memory gauges are present.
    pub memory_percent: Option<f64>,
}

/// One sample line: name, labels and value.
struct Line<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

/// Reads one sample line of the Prometheus text format; `None` when malformed.
fn parse_line(line: &str) -> Option<Line<'_>> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = rest.split_once('=')?;
            let after = after.trim_start().strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((label.trim(), value));
            rest = &after[end + 1..];
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Line {
        name,
        labels,
        value,
    })
}

/// Reads CPU counters and memory from the Prometheus text format. CPU time in
/// mode `idle` is idle; every other mode (`iowait` included) is busy.
pub fn parse_node_metrics(text: &str) -> Result<NodeMetrics, MetricsError> {
    let mut cpu = CpuCounters::default();
    let mut cpu_lines = 0;
    let (mut available, mut total) = (None, None);
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with("node_cpu_seconds_total")
            && !line.starts_with("node_memory_MemAvailable_bytes")
            && !line.starts_with("node_memory_MemTotal_bytes")
        {
            continue;
        }
        let sample = parse_line(line).ok_or(MetricsError::Malformed(index + 1))?;
        if !sample.value.is_finite() {
            continue;
        }
        match sample.name {
            "node_cpu_seconds_total" => {
                let idle = sample
                    .labels
                    .iter()
                    .any(|(name, value)| *name == "mode" && value == "idle");
                if !idle {
                    cpu.busy_seconds += sample.value;
                }
                cpu.total_seconds += sample.value;
                cpu_lines += 1;
            }
            "node_memory_MemAvailable_bytes" => available = Some(sample.value),
            "node_memory_MemTotal_bytes" => total = Some(sample.value),
            _ => {}
        }
    }
    if cpu_lines == 0 {
        return Err(MetricsError::NoCpu);
    }
    let memory_percent = match (available, total) {
        (Some(available), Some(total)) => memory_used_percent(available, total),
        _ => None,
    };
    Ok(NodeMetrics {
        cpu,
        memory_percent,
    })
}

/// What placement may use of one server's metrics, after a poll.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsStatus {
    /// Whether the values can be used.
    pub state: MetricsState,
    /// The windowed values (`None` where not known).
    pub usage: ResourceUsage,
    /// Why the last read failed.
    pub error: Option<String>,
    /// When the metrics were last read well (ms).
    pub read_at_ms: Option<i64>,
}

impl MetricsStatus {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real node_exporter 1.5 answer.
    const NODE_EXPORTER: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 9000.5
node_cpu_seconds_total{cpu="0",mode="iowait"} 10
node_cpu_seconds_total{cpu="0",mode="system"} 200.25
node_cpu_seconds_total{cpu="0",mode="user"} 700
node_cpu_seconds_total{cpu="1",mode="idle"} 9100
node_cpu_seconds_total{cpu="1",mode="user"} 600.25
# HELP node_cpu_guest_seconds_total Seconds the CPUs spent in guests.
node_cpu_guest_seconds_total{cpu="0",mode="nice"} 5
# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 2.5e+09
node_memory_MemFree_bytes 1e+09
node_memory_MemTotal_bytes 1e+10
node_load1 0.5
"#;

    #[test]
    fn node_exporter_text_gives_cpu_counters_and_memory() {
        let metrics = parse_node_metrics(NODE_EXPORTER).unwrap();
        assert_eq!(
            metrics.cpu,
            CpuCounters {
                busy_seconds: 10.0 + 200.25 + 700.0 + 600.25,
                total_seconds: 9000.5 + 10.0 + 200.25 + 700.0 + 9100.0 + 600.25,
            }
        );
        assert!((metrics.memory_percent.unwrap() - 75.0).abs() < 1e-9);
    }

    #[test]
    fn labels_with_quotes_and_timestamps_are_read() {
        let text = "node_cpu_seconds_total{mode=\"idle\",note=\"a \\\"}\\\" b\",cpu=\"0\"} 3 1700000000000\n\
                    node_cpu_seconds_total{cpu=\"0\",mode=\"user\",} 1\n";
        let metrics = parse_node_metrics(text).unwrap();
        assert_eq!(metrics.cpu.busy_seconds, 1.0);
        assert_eq!(metrics.cpu.total_seconds, 4.0);
        assert_eq!(metrics.memory_percent, None, "no memory gauges");
    }

    #[test]
    fn answers_without_cpu_or_with_broken_lines_are_errors() {
        assert_eq!(
            parse_node_metrics("node_load1 0.5\n"),
            Err(MetricsError::NoCpu)
        );
        assert_eq!(parse_node_metrics("<html>"), Err(MetricsError::NoCpu));
        assert_eq!(
            parse_node_metrics("# c\nnode_cpu_seconds_total{mode=\"idle} 1\n"),
            Err(MetricsError::Malformed(2))
        );
        assert_eq!(
            parse_node_metrics("node_cpu_seconds_total{mode=\"idle\"} many\n"),
            Err(MetricsError::Malformed(1))
        );
    }
}
