//! What one measured scenario produced: counts, rate and latency percentiles.

use std::time::Duration;

/// The raw results of one load run, merged over every connection.
#[derive(Debug, Default)]
pub struct Samples {
    /// Latency of every answered request, microseconds.
    pub latencies_us: Vec<u32>,
    /// Requests answered as expected.
    pub ok: u64,
    /// Requests that failed: transport errors, timeouts, unexpected status or body.
    pub errors: u64,
    /// Measured answers whose body was also checked in depth (see
    /// `load::BodyCheck`) and passed.
    pub checked: u64,
    /// A few distinct error descriptions, for the report.
    pub error_samples: Vec<String>,
}

/// How many distinct error descriptions are kept.
const MAX_ERROR_SAMPLES: usize = 5;

impl Samples {
    /// Records one error, keeping its description if it is new and there is room.
    pub fn error(&mut self, description: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES
            && !self.error_samples.contains(&description)
        {
            self.error_samples.push(description);
        }
    }

    /// Adds another connection's samples to these.
    pub fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.ok += other.ok;
        self.checked += other.checked;
        for description in other.error_samples {
            if self.error_samples.len() < MAX_ERROR_SAMPLES
                && !self.error_samples.contains(&description)
            {
                self.error_samples.push(description);
            }
        }
        self.errors += other.errors;
    }
}

/// The figures of one scenario, as reported.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Concurrent connections used.
    pub connections: usize,
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// Requests answered as expected.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Measured answers checked in depth that passed.
    pub checked: u64,
    /// Successful requests per second.
    pub rate: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Largest latency, milliseconds.
    pub max_ms: f64,
    /// A few distinct error descriptions.
    pub error_samples: Vec<String>,
}

impl Summary {
    /// Summarises samples collected over `elapsed` with `connections` connections.
    pub fn new(mut samples: Samples, connections: usize, elapsed: Duration) -> Summary {
        samples.latencies_us.sort_unstable();
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        Summary {
            connections,
            elapsed,
            ok: samples.ok,
            errors: samples.errors,
            checked: samples.checked,
            rate: samples.ok as f64 / seconds,
            p50_ms: percentile_ms(&samples.latencies_us, 50.0),
            p99_ms: percentile_ms(&samples.latencies_us, 99.0),
            max_ms: samples.latencies_us.last().map_or(0.0, |&us| us_to_ms(us)),
            error_samples: samples.error_samples,
        }
    }
}

/// The nearest-rank percentile of sorted microsecond latencies, in
/// milliseconds; 0 when there are none.
pub fn percentile_ms(sorted_us: &[u32], percent: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = (percent / 100.0 * sorted_us.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted_us.len()) - 1;
    us_to_ms(sorted_us[index])
}

fn us_to_ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&sorted, 50.0), 50.0);
        assert_eq!(percentile_ms(&sorted, 99.0), 99.0);
        assert_eq!(percentile_ms(&[7000], 99.0), 7.0);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
    }

    #[test]
    fn summary_counts_only_successes_in_the_rate() {
        let mut samples = Samples {
            latencies_us: vec![3000, 1000, 2000],
            ok: 2,
            ..Samples::default()
        };
        samples.error("HTTP 500".to_owned());
        samples.error("HTTP 500".to_owned());
        let summary = Summary::new(samples, 4, Duration::from_secs(2));
        assert_eq!(summary.rate, 1.0);
        assert_eq!(summary.errors, 2);
        assert_eq!(summary.error_samples, vec!["HTTP 500".to_owned()]);
        assert_eq!(summary.p50_ms, 2.0);
        assert_eq!(summary.max_ms, 3.0);
    }
}
