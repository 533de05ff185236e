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
//!
//! Servers with a metrics URL add what they feel (after the multiplier, as
//! CPU and memory already measure the machine):
//!
//! `cpu × (cpu% / 100)^cpu_exponent + memory × (memory% / 100)`
//!
//! and a server whose windowed CPU or memory is over its limit takes no new
//! meetings (joins still go there). The defaults (weights 0, no limits)
//! change nothing.

use crate::server_metrics::ResourceUsage;
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
    /// Weight of a server's windowed CPU utilisation: a server at 100 % CPU
    /// counts this much more (0: CPU does not count).
    pub cpu: f64,
    /// Exponent of the CPU term: above 1 a server is avoided more steeply
    /// the hotter it runs (2: at 50 % CPU it counts a quarter of `cpu`).
    pub cpu_exponent: f64,
    /// Weight of a server's windowed used memory: a server with all memory
    /// used counts this much more (0: memory does not count).
    pub memory: f64,
    /// A server whose windowed CPU utilisation (percent) is over this takes
    /// no new meetings until it is back under.
    pub cpu_limit: Option<f64>,
    /// A server whose windowed used memory (percent) is over this takes no
    /// new meetings until it is back under.
    pub memory_limit: Option<f64>,
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
            cpu: 0.0,
            cpu_exponent: 1.0,
            memory: 0.0,
            cpu_limit: None,
            memory_limit: None,
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

    /// What a server's CPU and memory add to its load (0 for what is not
    /// known).
    pub fn resource_load(&self, usage: ResourceUsage) -> f64 {
        let share = |percent: f64| (percent / 100.0).clamp(0.0, 1.0);
        let cpu = usage
            .cpu_percent
            .map_or(0.0, |cpu| self.cpu * share(cpu).powf(self.cpu_exponent));
        let memory = usage
            .memory_percent
            .map_or(0.0, |memory| self.memory * share(memory));
        cpu + memory
    }

    /// The effective load of a server: its meetings (times its multiplier)
    /// plus what its CPU and memory add.
    pub fn effective_load(&self, load: ServerLoad, multiplier: f64, usage: ResourceUsage) -> f64 {
        self.load(load, multiplier) + self.resource_load(usage)
    }

    /// Whether a server's windowed CPU or memory is over its limit (so it
    /// takes no new meetings). Values not known are never over.
    pub fn over_limit(&self, usage: ResourceUsage) -> bool {
        let over = |value: Option<f64>, limit: Option<f64>| matches!((value, limit), (Some(value), Some(limit)) if value > limit);
        over(usage.cpu_percent, self.cpu_limit) || over(usage.memory_percent, self.memory_limit)
    }
}

/// What the last poll saw on a server.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Meetings it runs.
    pub meetings: u64,
    /// Attendees over all its meetings.
    pub attendees: u64,
    /// Video streams over all its meetings.
    pub video: u64,
    /// Participants of its largest meeting.
    pub largest_meeting: u64,
    /// Weighted load of its meetings (before the server's multiplier).
    pub load: f64,
    /// Of its meetings, those Switchboard records as running there: the
    /// others (created directly, strays) load it but are not Switchboard's.
    pub known_meetings: u64,
    /// Its windowed CPU and memory and whether they could be read.
    pub metrics: crate::node_metrics::MetricsStatus,
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

    fn usage(cpu: Option<f64>, memory: Option<f64>) -> ResourceUsage {
        ResourceUsage {
            cpu_percent: cpu,
            memory_percent: memory,
        }
    }

    #[test]
    fn by_default_cpu_and_memory_change_nothing() {
        let load = ServerLoad {
            meetings: 2,
            ..ServerLoad::default()
        };
        let hot = usage(Some(99.0), Some(99.0));
        assert_eq!(
            weights().effective_load(load, 1.5, hot),
            weights().load(load, 1.5)
        );
        assert!(!weights().over_limit(hot));
    }

    #[test]
    fn cpu_and_memory_terms_add_to_the_load() {
        let weights = LoadWeights {
            cpu: 10.0,
            memory: 4.0,
            ..LoadWeights::default()
        };
        let load = ServerLoad {
            meetings: 1,
            ..ServerLoad::default()
        };
        let base = weights.load(load, 2.0);
        let got = weights.effective_load(load, 2.0, usage(Some(50.0), Some(25.0)));
        assert!((got - (base + 5.0 + 1.0)).abs() < 1e-9, "{got}");
        let unknown = weights.effective_load(load, 2.0, ResourceUsage::default());
        assert!((unknown - base).abs() < 1e-9, "unknown values add nothing");
    }

    #[test]
    fn a_reinforcing_exponent_avoids_hot_servers_more_steeply() {
        let weights = LoadWeights {
            cpu: 10.0,
            cpu_exponent: 3.0,
            ..LoadWeights::default()
        };
        let at = |cpu| weights.resource_load(usage(Some(cpu), None));
        assert!((at(50.0) - 1.25).abs() < 1e-9);
        assert!((at(100.0) - 10.0).abs() < 1e-9);
        assert!(
            at(90.0) - at(80.0) > at(30.0) - at(20.0),
            "steeper when hot"
        );
    }

    #[test]
    fn limits_stop_new_meetings_while_over() {
        let weights = LoadWeights {
            cpu_limit: Some(80.0),
            memory_limit: Some(90.0),
            ..LoadWeights::default()
        };
        assert!(weights.over_limit(usage(Some(80.5), None)));
        assert!(weights.over_limit(usage(Some(10.0), Some(95.0))));
        assert!(
            !weights.over_limit(usage(Some(80.0), Some(90.0))),
            "at the limit is fine"
        );
        assert!(
            !weights.over_limit(ResourceUsage::default()),
            "unknown is never over"
        );
    }
}
