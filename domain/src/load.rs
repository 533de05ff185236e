//! The load of a server, as placement sees it (see `docs/load.md`).
//!
//! Each meeting a poll saw weighs
//!
//! `meeting + attendee × max(attendees, young_size if younger than young_seconds)
//!  + video × video streams + voice × voice participants`
//!
//! and a server's load is the sum over its meetings, times its load
//! multiplier. Meetings placed since the last poll (and creates in flight)
//! have not been seen yet; they count as young meetings with no attendees,
//! so a burst of creates spreads at once and a meeting that just started
//! counts as what it is about to become.

use serde::{Deserialize, Serialize};

/// Weights of the load formula.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadWeights {
    /// Weight of one running meeting.
    pub meeting: f64,
    /// Weight of one attendee.
    pub attendee: f64,
    /// Weight of one video stream.
    pub video: f64,
    /// Weight of one participant in the voice conference.
    pub voice: f64,
    /// A meeting younger than this (seconds) counts as having at least
    /// `young_size` attendees.
    pub young_seconds: f64,
    /// The attendees a young meeting counts as at least.
    pub young_size: u64,
}

impl Default for LoadWeights {
    fn default() -> Self {
        Self {
            meeting: 1.0,
            attendee: 0.1,
            video: 0.1,
            voice: 0.05,
            young_seconds: 300.0,
            young_size: 10,
        }
    }
}

/// What a poll saw of one meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MeetingSample {
    /// participantCount.
    pub attendees: u64,
    /// videoCount.
    pub video: u64,
    /// voiceParticipantCount.
    pub voice: u64,
    /// Seconds since it was created.
    pub age_seconds: u64,
}

/// What is known about a server's work.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServerLoad {
    /// Weighted load of the meetings the last poll saw.
    pub polled: f64,
    /// Of the meetings the last poll saw, those Switchboard records there.
    pub polled_meetings: u64,
    /// Meetings Switchboard records as running there, plus creates in flight.
    pub meetings: u64,
}

impl LoadWeights {
    /// The weight of one meeting as a poll saw it.
    pub fn meeting_load(&self, sample: MeetingSample) -> f64 {
        let attendees = if (sample.age_seconds as f64) < self.young_seconds {
            sample.attendees.max(self.young_size)
        } else {
            sample.attendees
        };
        self.meeting
            + self.attendee * attendees as f64
            + self.video * sample.video as f64
            + self.voice * sample.voice as f64
    }

    /// The weight of a meeting placed since the last poll.
    pub fn unseen_meeting_load(&self) -> f64 {
        self.meeting_load(MeetingSample::default())
    }

    /// The effective load of a server.
    pub fn load(&self, load: ServerLoad, multiplier: f64) -> f64 {
        let unseen = load.meetings.saturating_sub(load.polled_meetings);
        (load.polled + unseen as f64 * self.unseen_meeting_load()) * multiplier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights() -> LoadWeights {
        LoadWeights::default()
    }

    #[test]
    fn a_meeting_weighs_its_attendees_and_streams() {
        let sample = MeetingSample {
            attendees: 30,
            video: 4,
            voice: 10,
            age_seconds: 3600,
        };
        let expected = 1.0 + 30.0 * 0.1 + 4.0 * 0.1 + 10.0 * 0.05;
        assert!((weights().meeting_load(sample) - expected).abs() < 1e-9);
    }

    #[test]
    fn a_young_meeting_counts_as_what_it_will_become() {
        let young = MeetingSample {
            attendees: 1,
            age_seconds: 10,
            ..Default::default()
        };
        let old = MeetingSample {
            age_seconds: 1000,
            ..young
        };
        assert!((weights().meeting_load(young) - 2.0).abs() < 1e-9);
        assert!((weights().meeting_load(old) - 1.1).abs() < 1e-9);
    }

    #[test]
    fn unseen_meetings_and_the_multiplier_count() {
        let load = ServerLoad {
            polled: 5.0,
            polled_meetings: 2,
            meetings: 3,
        };
        assert!((weights().load(load, 1.0) - 7.0).abs() < 1e-9);
        assert!((weights().load(load, 2.0) - 14.0).abs() < 1e-9);
        let stale = ServerLoad {
            polled: 5.0,
            polled_meetings: 4,
            meetings: 1,
        };
        assert!(
            (weights().load(stale, 1.0) - 5.0).abs() < 1e-9,
            "ended since the poll: no negative load"
        );
        assert_eq!(weights().load(ServerLoad::default(), 3.0), 0.0);
    }
}
