//! Each server's CPU and memory readings over the window, in the poller's
//! memory, and what placement may use of them after each poll.

use std::collections::HashMap;
use std::time::Duration;
use switchboard_domain::ids::ServerId;
use switchboard_domain::node_metrics::{MetricsError, MetricsStatus, NodeMetrics};
use switchboard_domain::server_metrics::{
    MetricsReading, MetricsState, MetricsWindow, ScrapeOutcome, redact_credentials, track,
};

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
    use switchboard_domain::server_metrics::{CpuCounters, ResourceUsage};

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
}
