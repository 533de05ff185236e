//! Reading what a server feels from its Prometheus text endpoint (e.g.
//! node_exporter): `node_cpu_seconds_total` counters and
//! `node_memory_MemAvailable_bytes` / `node_memory_MemTotal_bytes`.
//!
//! [`MetricsScraper`] fetches and parses one endpoint; [`MetricsTracker`]
//! keeps each server's readings of the window in memory and says what
//! placement may use (see [`switchboard_domain::server_metrics`]). Metrics
//! URLs may carry credentials (`http://user:pass@host:9100/metrics`, sent as
//! basic auth): they are never logged and errors never contain them.

use std::collections::HashMap;
use std::time::Duration;
use switchboard_domain::ids::ServerId;
use switchboard_domain::server_metrics::{
    CpuCounters, MetricsReading, MetricsState, MetricsWindow, ResourceUsage, ScrapeOutcome,
    memory_used_percent, redact_credentials, track,
};
use thiserror::Error;

/// Bodies larger than this are refused (node_exporter's are well below).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

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

/// Fetches metrics endpoints.
#[derive(Debug, Clone)]
pub struct MetricsScraper {
    client: reqwest::Client,
}

impl Default for MetricsScraper {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsScraper {
    /// A scraper that never follows redirects.
    pub fn new() -> Self {
        crate::backend::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("reqwest client with rustls");
        Self { client }
    }

    /// Reads one endpoint within `timeout`. Credentials in the URL are sent
    /// as basic auth.
    pub async fn scrape(&self, url: &str, timeout: Duration) -> Result<NodeMetrics, MetricsError> {
        let classify = |err: reqwest::Error| {
            if err.is_timeout() {
                MetricsError::Timeout(timeout)
            } else {
                MetricsError::Connect(err.without_url().to_string())
            }
        };
        let response = self
            .client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(MetricsError::Status(status));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(MetricsError::Body("too large".into()));
        }
        let body = response.bytes().await.map_err(classify)?;
        if body.len() > MAX_BODY_BYTES {
            return Err(MetricsError::Body("too large".into()));
        }
        let text =
            std::str::from_utf8(&body).map_err(|_| MetricsError::Body("not UTF-8".into()))?;
        parse_node_metrics(text)
    }
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

impl MetricsStatus {
    /// The status a poll left in a server's shared sample.
    pub fn of_sample(sample: &switchboard_store::ServerSample) -> Self {
        Self {
            state: sample.metrics_state,
            usage: sample.usage(),
            error: sample.metrics_error.clone(),
            read_at_ms: sample.metrics_read_at_ms,
        }
    }
}

/// One server's readings in the window.
#[derive(Debug, Default)]
struct Tracked {
    window: MetricsWindow,
    read_at_ms: Option<i64>,
    state: MetricsState,
}

/// Every server's readings in the window, in the poller's memory.
#[derive(Debug, Default)]
pub struct MetricsTracker {
    servers: HashMap<ServerId, Tracked>,
}

impl MetricsTracker {
    /// Feeds one read (`None`: the server has no metrics URL) and returns
    /// what placement may use now. `url` only names the endpoint in logs,
    /// redacted.
    pub fn record(
        &mut self,
        server: ServerId,
        url: Option<&str>,
        read: Option<Result<NodeMetrics, MetricsError>>,
        now_ms: i64,
        window: Duration,
    ) -> MetricsStatus {
        let tracked = self.servers.entry(server).or_default();
        let window_ms = window.as_millis().min(i64::MAX as u128) as i64;
        let (outcome, error) = match read {
            None => (ScrapeOutcome::NotConfigured, None),
            Some(Ok(metrics)) => {
                tracked.read_at_ms = Some(now_ms);
                (
                    ScrapeOutcome::Read(MetricsReading {
                        at_ms: now_ms,
                        cpu: metrics.cpu,
                        memory_percent: metrics.memory_percent,
                    }),
                    None,
                )
            }
            Some(Err(err)) => (ScrapeOutcome::Failed, Some(err.to_string())),
        };
        let (state, usage) = track(&mut tracked.window, outcome, now_ms, window_ms);
        if state != tracked.state {
            let endpoint = url.map(redact_credentials).unwrap_or_default();
            match state {
                MetricsState::Ok | MetricsState::NotConfigured => {
                    tracing::info!(server = %server, endpoint, state = state.as_str(), "server metrics")
                }
                MetricsState::Stale | MetricsState::Unreadable => tracing::warn!(
                    server = %server,
                    endpoint,
                    state = state.as_str(),
                    error = error.as_deref().unwrap_or_default(),
                    "server metrics cannot be read"
                ),
            }
            tracked.state = state;
        }
        if state == MetricsState::NotConfigured {
            tracked.read_at_ms = None;
        }
        MetricsStatus {
            state,
            usage,
            error,
            read_at_ms: tracked.read_at_ms,
        }
    }

    /// Forgets servers no longer polled.
    pub fn retain(&mut self, polled: &std::collections::HashSet<ServerId>) {
        self.servers.retain(|id, _| polled.contains(id));
    }
}

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

    #[test]
    fn the_tracker_keeps_the_last_read_time_and_error() {
        let mut tracker = MetricsTracker::default();
        let id = ServerId::new();
        let window = Duration::from_secs(30);
        let read = |busy: f64, total: f64| {
            Some(Ok(NodeMetrics {
                cpu: CpuCounters {
                    busy_seconds: busy,
                    total_seconds: total,
                },
                memory_percent: Some(30.0),
            }))
        };
        tracker.record(id, Some("http://h/m"), read(0.0, 0.0), 0, window);
        let ok = tracker.record(id, Some("http://h/m"), read(8.0, 10.0), 10_000, window);
        assert_eq!(ok.state, MetricsState::Ok);
        assert_eq!(ok.usage.cpu_percent, Some(80.0));
        assert_eq!(ok.read_at_ms, Some(10_000));
        let failed = Some(Err(MetricsError::Status(401)));
        let stale = tracker.record(id, Some("http://h/m"), failed.clone(), 20_000, window);
        assert_eq!(stale.state, MetricsState::Stale);
        assert_eq!(stale.error.as_deref(), Some("HTTP status 401"));
        assert_eq!(stale.usage.cpu_percent, Some(80.0));
        let gone = tracker.record(id, Some("http://h/m"), failed, 50_000, window);
        assert_eq!(gone.state, MetricsState::Unreadable);
        assert_eq!(gone.usage, ResourceUsage::default());
        assert_eq!(
            gone.read_at_ms,
            Some(10_000),
            "the last good read stays shown"
        );
        let off = tracker.record(id, None, None, 60_000, window);
        assert_eq!(off, MetricsStatus::default());
    }

    #[tokio::test]
    async fn unreachable_endpoints_fail_without_their_credentials() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://user:hunter2@127.0.0.1:{port}/metrics");
        let err = MetricsScraper::new()
            .scrape(&url, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(err, MetricsError::Connect(_)), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn the_simulator_is_read_over_http_with_basic_auth() {
        use bbb_simulator::{Simulator, SimulatorConfig};
        let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
        sim.set_cpu_percent(60.0);
        sim.set_memory_percent(80.0);
        sim.set_metrics_credentials(Some(("prom", "s3cret")));
        let scraper = MetricsScraper::new();
        let timeout = Duration::from_secs(2);
        assert_eq!(
            scraper.scrape(&sim.metrics_url(), timeout).await,
            Err(MetricsError::Status(401))
        );
        let url = sim.metrics_url().replace("http://", "http://prom:s3cret@");
        let first = scraper.scrape(&url, timeout).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = scraper.scrape(&url, timeout).await.unwrap();
        let cpu =
            switchboard_domain::server_metrics::cpu_percent_between(first.cpu, second.cpu).unwrap();
        assert!((cpu - 60.0).abs() < 1.0, "{cpu}");
        assert!((second.memory_percent.unwrap() - 80.0).abs() < 1e-6);
        sim.set_metrics_failing(true);
        assert_eq!(
            scraper.scrape(&url, timeout).await,
            Err(MetricsError::Status(500))
        );
        assert_eq!(sim.metrics_request_count(), 4);
        sim.shutdown().await;
    }
}
