//! The load of a server, as placement sees it.
//!
//! `load = (meetings * meeting_weight + attendees * attendee_weight) * load_multiplier`
//!
//! `meetings` counts the meetings Switchboard placed there that still run plus
//! creates in flight, so a burst of creates spreads at once; `attendees` is what
//! the last health poll saw on the server.

use serde::{Deserialize, Serialize};

/// Weights of the load formula.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadWeights {
    /// Weight of one running meeting.
    pub meeting: f64,
    /// Weight of one attendee.
    pub attendee: f64,
}

impl Default for LoadWeights {
    fn default() -> Self {
        Self {
            meeting: 1.0,
            attendee: 0.1,
        }
    }
}

/// What is known about a server's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerLoad {
    /// Running meetings, including creates in flight.
    pub meetings: u64,
    /// Attendees seen by the last poll.
    pub attendees: u64,
}

impl LoadWeights {
    /// The effective load of a server.
    pub fn load(&self, load: ServerLoad, multiplier: f64) -> f64 {
        (load.meetings as f64 * self.meeting + load.attendees as f64 * self.attendee) * multiplier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplier_scales_the_weighted_sum() {
        let weights = LoadWeights::default();
        let load = ServerLoad {
            meetings: 2,
            attendees: 30,
        };
        assert!((weights.load(load, 1.0) - 5.0).abs() < 1e-9);
        assert!((weights.load(load, 2.0) - 10.0).abs() < 1e-9);
        assert_eq!(weights.load(ServerLoad::default(), 3.0), 0.0);
    }
}
