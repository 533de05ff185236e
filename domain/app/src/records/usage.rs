//! What accounting reads and writes: each run's usage as the polls add it
//! up (overwritten in place), and the summaries of ended runs (a projection
//! of `MeetingUsageSummarized`).

use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_domain::meeting::{MeetingRun, RunUsage};

/// The longest the last sample's attendees count after it, up to the end.
pub const MAX_TAIL_MS: i64 = 120_000;

/// What one poll saw of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageSample<'a> {
    /// The run.
    pub internal_id: &'a str,
    /// When the server was asked (ms).
    pub at_ms: i64,
    /// Its attendees then.
    pub attendees: u64,
    /// Its video streams then.
    pub video: u64,
    /// Whether it was recording.
    pub recording: bool,
}

/// A run's usage so far: attendee-milliseconds integrated from one sample
/// to the next (each sample's count holds until the next one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunUsageState {
    /// The run.
    pub internal_id: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its meetingID.
    pub meeting_id: String,
    /// Its server.
    pub server_id: ServerId,
    /// When it started (ms).
    pub started_ms: i64,
    /// The last sample's time, once sampled.
    pub last_sample_ms: Option<i64>,
    /// The last sample's attendees.
    pub last_attendees: u64,
    /// Attendee-milliseconds up to the last sample.
    pub attendee_ms: i64,
    /// Most attendees sampled.
    pub peak_attendees: u64,
    /// Most video streams sampled.
    pub peak_video: u64,
    /// Seen recording.
    pub recording: bool,
    /// When it ended, once it did.
    pub ended_ms: Option<i64>,
    /// Its summary is in the log.
    pub summarized: bool,
}

impl RunUsageState {
    /// A run that was just recorded, not sampled yet.
    pub fn started(tenant: &TenantId, meeting_id: &MeetingId, run: &MeetingRun) -> Self {
        Self {
            internal_id: run.internal_id.clone(),
            tenant: tenant.clone(),
            meeting_id: meeting_id.to_string(),
            server_id: run.server_id,
            started_ms: run.create_time_ms,
            last_sample_ms: None,
            last_attendees: 0,
            attendee_ms: 0,
            peak_attendees: 0,
            peak_video: 0,
            recording: false,
            ended_ms: None,
            summarized: false,
        }
    }

    /// Adds a sample: the last count held until now, then this one holds.
    /// Older samples (out of order) only raise the peaks.
    pub fn add(&mut self, sample: &UsageSample<'_>) {
        if self.ended_ms.is_some() {
            return;
        }
        match self.last_sample_ms {
            Some(last) if sample.at_ms <= last => {}
            Some(last) => {
                self.attendee_ms += self.last_attendees as i64 * (sample.at_ms - last);
                self.last_sample_ms = Some(sample.at_ms);
                self.last_attendees = sample.attendees;
            }
            None => {
                self.last_sample_ms = Some(sample.at_ms);
                self.last_attendees = sample.attendees;
            }
        }
        self.peak_attendees = self.peak_attendees.max(sample.attendees);
        self.peak_video = self.peak_video.max(sample.video);
        self.recording |= sample.recording;
    }

    /// The summary of an ended run: the last count held until the end, at
    /// most [`MAX_TAIL_MS`] (an end found late, after an outage, does not
    /// bill the outage's attendees).
    pub fn summary(&self) -> Option<RunUsage> {
        let ended_ms = self.ended_ms?;
        let tail = match self.last_sample_ms {
            Some(last) if ended_ms > last => {
                self.last_attendees as i64 * (ended_ms - last).min(MAX_TAIL_MS)
            }
            _ => 0,
        };
        Some(RunUsage {
            internal_id: self.internal_id.clone(),
            server_id: self.server_id,
            started_ms: self.started_ms,
            ended_ms,
            peak_attendees: self.peak_attendees,
            attendee_seconds: u64::try_from((self.attendee_ms + tail) / 1000).unwrap_or(0),
            peak_video: self.peak_video,
            recordable: self.recording,
        })
    }
}

/// A summarized run with its owner.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRunRecord {
    /// Its tenant.
    pub tenant: TenantId,
    /// Its meetingID.
    pub meeting_id: String,
    /// The figures.
    pub usage: RunUsage,
}

/// Which summarized runs and peaks to read: a tenant's (or all), started
/// in `[from_ms, to_ms)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// Only this tenant's.
    pub tenant: Option<TenantId>,
    /// Started at or after (ms).
    pub from_ms: Option<i64>,
    /// Started before (ms).
    pub to_ms: Option<i64>,
}

/// A recording as usage counts it: its tenant, when it started and the
/// size of its formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingUsage {
    /// The tenant.
    pub tenant: TenantId,
    /// When the recorded meeting started (ms).
    pub started_ms: i64,
    /// Bytes of its formats.
    pub bytes: u64,
}

/// The UTC day (`YYYY-MM-DD`) of an instant, as peaks are kept by.
pub fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RunUsageState {
        RunUsageState::started(
            &TenantId::default_tenant(),
            &MeetingId::parse("room").unwrap(),
            &MeetingRun {
                internal_id: "run".into(),
                server_id: ServerId::new(),
                create_time_ms: 0,
                recording_ready_url: None,
                callbacks: None,
            },
        )
    }

    fn sample(at_ms: i64, attendees: u64) -> UsageSample<'static> {
        UsageSample {
            internal_id: "run",
            at_ms,
            attendees,
            video: attendees / 2,
            recording: attendees > 5,
        }
    }

    #[test]
    fn each_count_holds_until_the_next_sample_and_the_last_until_the_end() {
        let mut run = state();
        run.add(&sample(60_000, 2)); // 2 from 1:00
        run.add(&sample(120_000, 10)); // 10 from 2:00
        run.add(&sample(90_000, 50)); // late: only the peak
        run.add(&sample(180_000, 4)); // 4 from 3:00
        assert!(run.summary().is_none(), "not ended");
        run.ended_ms = Some(300_000); // ends at 5:00, 2 minutes after 3:00
        let usage = run.summary().unwrap();
        // 2 x 60 s + 10 x 60 s + 4 x 120 s
        assert_eq!(usage.attendee_seconds, 120 + 600 + 480);
        assert_eq!(usage.peak_attendees, 50);
        assert_eq!(usage.peak_video, 25);
        assert!(usage.recordable);
        assert_eq!(usage.duration_seconds(), 300);
        // An end found long after the last sample bills at most 2 minutes.
        let mut late = run.clone();
        late.ended_ms = Some(3_600_000);
        assert_eq!(late.summary().unwrap().attendee_seconds, 1200);
        assert_eq!(late.summary().unwrap().duration_seconds(), 3600);
        run.add(&sample(400_000, 99));
        assert_eq!(
            run.summary().unwrap().attendee_seconds,
            1200,
            "ended runs take no samples"
        );
    }

    #[test]
    fn days_are_utc() {
        assert_eq!(day_of(1_700_000_000_000), "2023-11-14");
    }
}
