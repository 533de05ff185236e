//! What a server feels: CPU and memory read from its metrics endpoint (see
//! `docs/load.md`).
//!
//! The poller scrapes each server's Prometheus text endpoint (node_exporter)
//! at every health poll and keeps the readings of the last window per server.
//! CPU utilisation is a rate: the busy seconds a window's counters advanced
//! divided by all the seconds they advanced, over all CPUs. Memory is the
//! mean of the used percentages read in the window. When reads fail, the last
//! good values stay in use until they leave the window; then the server's
//! metrics are unreadable and placement weighs it by its meetings alone.
//!
//! Everything here is pure: times are passed in, nothing is read.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// CPU time counters summed over all CPUs of a server, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuCounters {
    /// Seconds spent in any mode but idle.
    pub busy_seconds: f64,
    /// Seconds spent in any mode, idle included.
    pub total_seconds: f64,
}

/// The CPU utilisation (0–100 %) between two readings of the counters;
/// `None` when no time passed or the counters went back (a reboot).
pub fn cpu_percent_between(earlier: CpuCounters, later: CpuCounters) -> Option<f64> {
    let busy = later.busy_seconds - earlier.busy_seconds;
    let total = later.total_seconds - earlier.total_seconds;
    if total <= 0.0 || busy < 0.0 || !busy.is_finite() || !total.is_finite() {
        return None;
    }
    Some((busy / total * 100.0).clamp(0.0, 100.0))
}

/// Used memory in percent from available and total bytes; `None` when the
/// total is not positive.
pub fn memory_used_percent(available_bytes: f64, total_bytes: f64) -> Option<f64> {
    if total_bytes <= 0.0 || total_bytes.is_nan() || !available_bytes.is_finite() {
        return None;
    }
    Some(((1.0 - available_bytes / total_bytes) * 100.0).clamp(0.0, 100.0))
}

/// One good read of a server's metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricsReading {
    /// When it was read (ms since the epoch).
    pub at_ms: i64,
    /// Its CPU counters.
    pub cpu: CpuCounters,
    /// Its used memory in percent, if it reported memory.
    pub memory_percent: Option<f64>,
}

/// The readings of one server within the window, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsWindow {
    readings: VecDeque<MetricsReading>,
}

impl MetricsWindow {
    /// Adds a good reading and drops those older than `window_ms` before it.
    /// Counters that went back (the server restarted) start the window anew.
    pub fn push(&mut self, reading: MetricsReading, window_ms: i64) {
        if self.readings.back().is_some_and(|last| {
            reading.cpu.total_seconds < last.cpu.total_seconds
                || reading.cpu.busy_seconds < last.cpu.busy_seconds
                || reading.at_ms < last.at_ms
        }) {
            self.readings.clear();
        }
        self.readings.push_back(reading);
        self.age(reading.at_ms, window_ms);
    }

    /// Drops the readings older than `window_ms` before `now_ms`.
    pub fn age(&mut self, now_ms: i64, window_ms: i64) {
        let oldest = now_ms.saturating_sub(window_ms.max(0));
        while self.readings.front().is_some_and(|r| r.at_ms < oldest) {
            self.readings.pop_front();
        }
    }

    /// Forgets every reading.
    pub fn clear(&mut self) {
        self.readings.clear();
    }

    /// Readings held.
    pub fn len(&self) -> usize {
        self.readings.len()
    }

    /// Whether no reading is held.
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }

    /// When the newest reading was taken.
    pub fn last_read_at_ms(&self) -> Option<i64> {
        self.readings.back().map(|r| r.at_ms)
    }

    /// CPU utilisation over the window: counter deltas from its oldest to
    /// its newest reading (`None` with fewer than two readings).
    pub fn cpu_percent(&self) -> Option<f64> {
        let (first, last) = (self.readings.front()?, self.readings.back()?);
        if self.readings.len() < 2 {
            return None;
        }
        cpu_percent_between(first.cpu, last.cpu)
    }

    /// Mean used memory over the window's readings that reported memory.
    pub fn memory_percent(&self) -> Option<f64> {
        let values: Vec<f64> = self
            .readings
            .iter()
            .filter_map(|r| r.memory_percent)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// Whether a server's metrics can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsState {
    /// The server has no metrics URL.
    #[default]
    NotConfigured,
    /// The last read succeeded.
    Ok,
    /// The last read failed; values read within the window are still used.
    Stale,
    /// Reads fail and no good value is left in the window: placement uses
    /// meeting counts alone.
    Unreadable,
}

impl MetricsState {
    /// Every state, for gauges.
    pub const ALL: [MetricsState; 4] = [
        MetricsState::NotConfigured,
        MetricsState::Ok,
        MetricsState::Stale,
        MetricsState::Unreadable,
    ];

    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::Ok => "ok",
            Self::Stale => "stale",
            Self::Unreadable => "unreadable",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

/// A server's windowed CPU and memory as placement uses them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ResourceUsage {
    /// Windowed CPU utilisation, percent (`None`: not known).
    pub cpu_percent: Option<f64>,
    /// Windowed used memory, percent (`None`: not known).
    pub memory_percent: Option<f64>,
}

/// The outcome of one scrape for a server's window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScrapeOutcome {
    /// The server has no metrics URL.
    NotConfigured,
    /// A good reading.
    Read(MetricsReading),
    /// The read failed.
    Failed,
}

/// Feeds one scrape's outcome into a server's window and says what
/// placement may use now.
pub fn track(
    window: &mut MetricsWindow,
    outcome: ScrapeOutcome,
    now_ms: i64,
    window_ms: i64,
) -> (MetricsState, ResourceUsage) {
    let state = match outcome {
        ScrapeOutcome::NotConfigured => {
            window.clear();
            return (MetricsState::NotConfigured, ResourceUsage::default());
        }
        ScrapeOutcome::Read(reading) => {
            window.push(reading, window_ms);
            MetricsState::Ok
        }
        ScrapeOutcome::Failed => {
            window.age(now_ms, window_ms);
            if window.is_empty() {
                return (MetricsState::Unreadable, ResourceUsage::default());
            }
            MetricsState::Stale
        }
    };
    let usage = ResourceUsage {
        cpu_percent: window.cpu_percent(),
        memory_percent: window.memory_percent(),
    };
    (state, usage)
}

/// A URL as it may be shown or logged: a password in it (or a user name
/// without one, which may be a token) replaced by `***`.
pub fn redact_credentials(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    // A user without a password may be a token itself.
    let user = authority[..at]
        .split_once(':')
        .map_or(String::new(), |(user, _)| format!("{user}:"));
    format!(
        "{}{user}***@{}{}",
        &url[..scheme_end],
        &authority[at + 1..],
        &url[authority_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at_s: i64, busy: f64, total: f64, memory: Option<f64>) -> MetricsReading {
        MetricsReading {
            at_ms: at_s * 1000,
            cpu: CpuCounters {
                busy_seconds: busy,
                total_seconds: total,
            },
            memory_percent: memory,
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn cpu_comes_from_counter_deltas() {
        let earlier = CpuCounters {
            busy_seconds: 100.0,
            total_seconds: 400.0,
        };
        let later = CpuCounters {
            busy_seconds: 130.0,
            total_seconds: 440.0,
        };
        assert!(close(cpu_percent_between(earlier, later), 75.0));
        assert_eq!(cpu_percent_between(later, earlier), None, "reboot");
        assert_eq!(cpu_percent_between(earlier, earlier), None, "no time");
    }

    #[test]
    fn memory_is_the_used_share() {
        assert!(close(memory_used_percent(25.0, 100.0), 75.0));
        assert_eq!(memory_used_percent(1.0, 0.0), None);
        assert!(close(memory_used_percent(200.0, 100.0), 0.0));
    }

    #[test]
    fn the_window_averages_and_forgets() {
        let mut window = MetricsWindow::default();
        window.push(reading(0, 0.0, 0.0, Some(40.0)), 60_000);
        assert_eq!(window.cpu_percent(), None, "one reading is no rate");
        window.push(reading(10, 10.0, 40.0, Some(60.0)), 60_000);
        window.push(reading(20, 40.0, 80.0, Some(80.0)), 60_000);
        // 40 busy of 80 seconds: a spike at the end is averaged out.
        assert!(close(window.cpu_percent(), 50.0));
        assert!(close(window.memory_percent(), 60.0));
        window.push(reading(75, 80.0, 120.0, Some(20.0)), 60_000);
        assert_eq!(window.len(), 2, "the reading at 0 s left the window");
        assert!(close(window.cpu_percent(), 100.0));
        assert!(close(window.memory_percent(), 50.0));
    }

    #[test]
    fn counters_that_go_back_start_anew() {
        let mut window = MetricsWindow::default();
        window.push(reading(0, 1000.0, 2000.0, None), 60_000);
        window.push(reading(10, 1010.0, 2040.0, None), 60_000);
        window.push(reading(20, 5.0, 10.0, None), 60_000);
        assert_eq!(window.len(), 1);
        assert_eq!(window.cpu_percent(), None);
    }

    #[test]
    fn failed_reads_are_stale_then_unreadable() {
        let mut window = MetricsWindow::default();
        let window_ms = 30_000;
        track(
            &mut window,
            ScrapeOutcome::Read(reading(0, 0.0, 0.0, Some(50.0))),
            0,
            window_ms,
        );
        let (state, usage) = track(
            &mut window,
            ScrapeOutcome::Read(reading(10, 9.0, 10.0, Some(50.0))),
            10_000,
            window_ms,
        );
        assert_eq!(state, MetricsState::Ok);
        assert!(close(usage.cpu_percent, 90.0));
        let (state, usage) = track(&mut window, ScrapeOutcome::Failed, 25_000, window_ms);
        assert_eq!(state, MetricsState::Stale);
        assert!(close(usage.cpu_percent, 90.0), "the last good value holds");
        let (state, usage) = track(&mut window, ScrapeOutcome::Failed, 35_000, window_ms);
        assert_eq!(state, MetricsState::Stale);
        assert_eq!(usage.cpu_percent, None, "one reading left: no rate");
        assert!(close(usage.memory_percent, 50.0));
        let (state, usage) = track(&mut window, ScrapeOutcome::Failed, 45_000, window_ms);
        assert_eq!(state, MetricsState::Unreadable);
        assert_eq!(usage, ResourceUsage::default());
        let (state, usage) = track(&mut window, ScrapeOutcome::NotConfigured, 50_000, window_ms);
        assert_eq!(state, MetricsState::NotConfigured);
        assert_eq!(usage, ResourceUsage::default());
    }

    #[test]
    fn states_have_stored_names() {
        for state in MetricsState::ALL {
            assert_eq!(MetricsState::parse(state.as_str()), Some(state));
        }
        assert_eq!(MetricsState::parse("fine"), None);
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_credentials("https://prom:s3cret@bbb1.example.org:9100/metrics"),
            "https://prom:***@bbb1.example.org:9100/metrics"
        );
        assert_eq!(
            redact_credentials("http://token@bbb1/metrics?x=a@b"),
            "http://***@bbb1/metrics?x=a@b"
        );
        assert_eq!(
            redact_credentials("http://bbb1:9100/metrics?next=a@b"),
            "http://bbb1:9100/metrics?next=a@b"
        );
        assert_eq!(redact_credentials("not a url"), "not a url");
    }
}
