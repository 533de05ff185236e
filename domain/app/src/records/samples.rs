//! The polled picture: what the last polls saw on each server, and the
//! listings of runs created since. Overwritten in place, never logged.

use std::sync::Arc;
use switchboard_domain::ids::ServerId;
use switchboard_domain::load::Observed;
use switchboard_domain::node_metrics::MetricsStatus;
use switchboard_domain::server_metrics::{MetricsState, ResourceUsage};

/// What the last polls saw on one server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSample {
    /// The server.
    pub server_id: ServerId,
    /// When the content (not only the poll time) last changed (ms).
    pub changed_at_ms: i64,
    /// When it was last polled (ms).
    pub polled_at_ms: i64,
    /// Consecutive failed polls.
    pub failures: u32,
    /// Consecutive good polls.
    pub successes: u32,
    /// Meetings it runs.
    pub meetings: u64,
    /// Attendees over its meetings.
    pub attendees: u64,
    /// Video streams over its meetings.
    pub video: u64,
    /// Participants of its largest meeting.
    pub largest_meeting: u64,
    /// Of its meetings, those Switchboard records there.
    pub known_meetings: u64,
    /// Weighted load of its meetings (before the server's multiplier).
    pub load: f64,
    /// The `<meeting>` elements of its last good getMeetings answer, as sent
    /// (shared: a sample is copied while a poll compares it with the last
    /// one, and with 1,000 meetings its listing is about 1 MB).
    pub meetings_xml: Arc<str>,
    /// Windowed CPU utilisation, percent (`None`: not known).
    pub cpu_percent: Option<f64>,
    /// Windowed used memory, percent (`None`: not known).
    pub memory_percent: Option<f64>,
    /// Whether its metrics can be used.
    pub metrics_state: MetricsState,
    /// Why the last metrics read failed (never with credentials).
    pub metrics_error: Option<String>,
    /// When its metrics were last read well (ms).
    pub metrics_read_at_ms: Option<i64>,
}

impl ServerSample {
    /// An empty sample of a server never polled.
    pub fn new(server_id: ServerId) -> Self {
        Self {
            server_id,
            changed_at_ms: 0,
            polled_at_ms: 0,
            failures: 0,
            successes: 0,
            meetings: 0,
            attendees: 0,
            video: 0,
            largest_meeting: 0,
            known_meetings: 0,
            load: 0.0,
            meetings_xml: Arc::default(),
            cpu_percent: None,
            memory_percent: None,
            metrics_state: MetricsState::NotConfigured,
            metrics_error: None,
            metrics_read_at_ms: None,
        }
    }

    /// Takes a good listing's picture (a successful poll or heartbeat):
    /// its figures and `<meeting>` elements, and no failure streak.
    pub fn record_picture(&mut self, observed: &Observed, meetings_xml: String) {
        self.failures = 0;
        self.meetings = observed.meetings;
        self.attendees = observed.attendees;
        self.video = observed.video;
        self.largest_meeting = observed.largest_meeting;
        self.known_meetings = observed.known_meetings;
        self.load = observed.load;
        self.meetings_xml = meetings_xml.into();
    }

    /// What this sample shows placement, with `metrics` as its CPU and memory.
    pub fn observed_with(&self, metrics: MetricsStatus) -> Observed {
        Observed {
            meetings: self.meetings,
            attendees: self.attendees,
            video: self.video,
            largest_meeting: self.largest_meeting,
            load: self.load,
            known_meetings: self.known_meetings,
            metrics,
        }
    }

    /// The metrics status the poll that wrote this sample left.
    pub fn metrics_status(&self) -> MetricsStatus {
        MetricsStatus {
            state: self.metrics_state,
            usage: self.usage(),
            error: self.metrics_error.clone(),
            read_at_ms: self.metrics_read_at_ms,
        }
    }

    /// The windowed CPU and memory placement may use.
    pub fn usage(&self) -> ResourceUsage {
        ResourceUsage {
            cpu_percent: self.cpu_percent,
            memory_percent: self.memory_percent,
        }
    }

    /// Whether anything but the poll and read times differs from `other`
    /// (CPU and memory: by at least [`METRICS_STEP_PERCENT`]).
    pub fn content_differs(&self, other: &ServerSample) -> bool {
        self.figures_differ(other)
            || (!Arc::ptr_eq(&self.meetings_xml, &other.meetings_xml)
                && self.meetings_xml != other.meetings_xml)
    }

    /// Whether anything but the poll and read times and the listing
    /// (`meetings_xml`) differs from `other` (CPU and memory: by at least
    /// [`METRICS_STEP_PERCENT`]).
    pub fn figures_differ(&self, other: &ServerSample) -> bool {
        self.failures != other.failures
            || self.successes != other.successes
            || self.meetings != other.meetings
            || self.attendees != other.attendees
            || self.video != other.video
            || self.largest_meeting != other.largest_meeting
            || self.known_meetings != other.known_meetings
            || self.load.to_bits() != other.load.to_bits()
            || differs_by(self.cpu_percent, other.cpu_percent, METRICS_STEP_PERCENT)
            || differs_by(
                self.memory_percent,
                other.memory_percent,
                METRICS_STEP_PERCENT,
            )
            || self.metrics_state != other.metrics_state
            || self.metrics_error != other.metrics_error
    }

    /// The digest of its listing (see [`listing_digest`]).
    pub fn listing_digest(&self) -> u64 {
        listing_digest(&self.meetings_xml)
    }
}

/// CPU and memory changes smaller than this (percentage points) are not a
/// change of the sample: they would rewrite it, and wake every instance, on
/// every poll.
pub const METRICS_STEP_PERCENT: f64 = 0.5;

fn differs_by(a: Option<f64>, b: Option<f64>, step: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() >= step,
        (None, None) => false,
        _ => true,
    }
}

/// A digest of a listing (a sample's `meetings_xml`), stored beside it, to
/// tell whether a new listing differs from the stored one without reading
/// it: XXH3 (64 bits), the same in every build and on every instance. A
/// collision (or a listing crafted to collide) leaves a changed listing
/// unwritten until the listing changes again.
pub fn listing_digest(meetings_xml: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(meetings_xml.as_bytes())
}

/// What a sample's stored digest reads while a listing written ahead of its
/// figures waits for them: the complement of the listing's digest. No
/// poll's digest of that listing equals it (a cycle that stops in between
/// leaves the listing to be written again), and the figures' write turns
/// it into the digest only while that listing is still the one stored
/// (another writer's listing in between is left with 0: written again).
pub fn digest_written_ahead(digest: u64) -> u64 {
    !digest
}

/// A `<meeting>` element for a run Switchboard created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingListing {
    /// BBB's internal meeting id of the run.
    pub internal_id: String,
    /// Its server.
    pub server_id: ServerId,
    /// When it was created (ms).
    pub created_at_ms: i64,
    /// The `<meeting>` element.
    pub xml: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest is stored beside the listing: it must not change with
    /// the build or the instance (XXH3-64 with its default seed).
    #[test]
    fn the_listing_digest_is_the_same_in_every_build() {
        assert_eq!(listing_digest(""), 0x2d06_8005_38d3_94c2);
        assert_eq!(
            listing_digest("<meeting><meetingID>m</meetingID></meeting>"),
            0xe0e7_4f6f_125d_dd9f
        );
    }

    #[test]
    fn small_metric_moves_and_read_times_are_no_change() {
        let before = ServerSample {
            cpu_percent: Some(40.0),
            memory_percent: Some(60.0),
            metrics_read_at_ms: Some(1),
            ..ServerSample::new(ServerId::new())
        };
        let mut after = before.clone();
        after.cpu_percent = Some(40.3);
        after.metrics_read_at_ms = Some(2);
        after.polled_at_ms = 5;
        assert!(!after.content_differs(&before));
        after.cpu_percent = Some(41.0);
        assert!(after.content_differs(&before));
        after.cpu_percent = None;
        assert!(after.content_differs(&before));
    }
}
