//! The console's time series: one point per server and minute of what its
//! polls saw, kept for a bounded number of hours. Not changes, so never
//! logged; overwritten within its minute.

use switchboard_domain::ids::ServerId;

/// How long one point stands for (ms): a minute.
pub const SERIES_STEP_MS: i64 = 60_000;

/// What one server's polls saw in one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// The server.
    pub server_id: ServerId,
    /// The start of the point's minute (ms since the epoch).
    pub at_ms: i64,
    /// Whether it was online.
    pub online: bool,
    /// Meetings it ran.
    pub meetings: u64,
    /// Attendees over its meetings.
    pub attendees: u64,
    /// Video streams over its meetings.
    pub video: u64,
    /// Effective load used for placement.
    pub load: f64,
    /// Windowed CPU utilisation, percent (`None`: not known).
    pub cpu_percent: Option<f64>,
    /// Windowed used memory, percent (`None`: not known).
    pub memory_percent: Option<f64>,
}

/// The start of the minute `at_ms` falls in.
pub fn minute_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(SERIES_STEP_MS) * SERIES_STEP_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_falls_in_the_minute_that_starts_at_or_before_it() {
        assert_eq!(minute_of(0), 0);
        assert_eq!(minute_of(59_999), 0);
        assert_eq!(minute_of(60_000), 60_000);
        assert_eq!(minute_of(1_700_000_061_234), 1_700_000_040_000);
        assert_eq!(minute_of(-1), -60_000);
    }
}
