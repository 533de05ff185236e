//! The meeting aggregate: one stream per tenant and meetingID, holding its runs
//! one after another (a meetingID can be created again after it ended).

use crate::aggregate::Aggregate;
use crate::ids::{MeetingId, ServerId, TenantId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The run of a meeting that is going on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingRun {
    /// BBB's internal meeting id of this run.
    pub internal_id: String,
    /// The server it runs on.
    pub server_id: ServerId,
    /// BBB's createTime, milliseconds since the epoch.
    pub create_time_ms: i64,
    /// `meta_bbb-recording-ready-url` of the create: Switchboard (not the
    /// server) calls it once the run's recording is imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_ready_url: Option<String>,
    /// The end-of-meeting callbacks the front-end asked for; the server was
    /// given Switchboard's own URLs (made from the run's nonce) instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callbacks: Option<Box<RunCallbacks>>,
}

/// What a front-end asked to hear of a run's end, kept by Switchboard. The
/// server calls Switchboard's URLs for the run (they carry `nonce`), and
/// Switchboard calls these, re-signed with the secret the front-end used.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunCallbacks {
    /// The run's random token in Switchboard's callback URLs.
    pub nonce: String,
    /// `meta_endCallbackUrl`: a GET with `recordingmarks` and `meetingID` appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_callback_url: Option<String>,
    /// `meetingEndedURL`: a GET to the URL as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_ended_url: Option<String>,
    /// `meta_analytics-callback-url`: a POST of the meeting's analytics JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytics_url: Option<String>,
    /// Fingerprint of the secret that signed the create, so callbacks are
    /// signed with that secret among several (`None`: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_with: Option<String>,
}

impl MeetingRun {
    /// Whether two runs are the same run (same internal id on the same
    /// server), whatever else was recorded about them.
    pub fn same_run(&self, other: &MeetingRun) -> bool {
        self.internal_id == other.internal_id
            && self.server_id == other.server_id
            && self.create_time_ms == other.create_time_ms
    }
}

/// A meeting as its events describe it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Meeting {
    /// Set by the first creation.
    pub identity: Option<(TenantId, MeetingId)>,
    /// The meeting's name from the last create.
    pub name: String,
    /// The current run, if the meeting is running.
    pub current: Option<MeetingRun>,
    /// The last run's end time, if it ended.
    pub ended_at_ms: Option<i64>,
}

/// Why a meeting run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The front-end called `end`.
    EndCalled,
    /// The server no longer knows the meeting.
    GoneFromServer,
    /// A new run on another server replaced it (its server was unavailable).
    Replaced,
    /// An operator ended it.
    Operator,
    /// The server reported the end (its `meetingEndedURL` callback).
    ServerReported,
    /// An operator panicked its server: forgotten so the next create places it anew.
    ServerPanic,
    /// Its server stayed offline: forgotten so the next create places it anew.
    ServerOffline,
}

/// What can be asked of a meeting.
#[derive(Debug, Clone, PartialEq)]
pub enum MeetingCommand {
    /// A server accepted a create: record the run (idempotent for the same run).
    RecordCreated {
        /// Owner.
        tenant: TenantId,
        /// Front-end id.
        meeting_id: MeetingId,
        /// Name given at create.
        name: String,
        /// The run the server reported.
        run: MeetingRun,
    },
    /// The run ended.
    RecordEnded {
        /// Why.
        reason: EndReason,
        /// When, milliseconds since the epoch.
        at_ms: i64,
        /// Only end this run (by internal id); a newer run is left alone.
        only_run: Option<String>,
    },
    /// An ended run's usage was added up: record it (for accounting).
    SummarizeUsage(RunUsage),
}

/// What one run of a meeting used, added up when it ended: the figures
/// tenants are billed by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunUsage {
    /// The run (BBB's internal meeting id).
    pub internal_id: String,
    /// The server it ran on.
    pub server_id: ServerId,
    /// When it started (ms since the epoch).
    pub started_ms: i64,
    /// When it ended (ms since the epoch).
    pub ended_ms: i64,
    /// Most attendees a poll saw.
    pub peak_attendees: u64,
    /// Attendees integrated over time (attendee-seconds), from the polls.
    pub attendee_seconds: u64,
    /// Most video streams a poll saw.
    pub peak_video: u64,
    /// Whether it was created to be recorded (BBB's `<recording>` in
    /// getMeetings: `record=true`), not whether a recording was made.
    pub recordable: bool,
}

impl RunUsage {
    /// How long it ran, in seconds.
    pub fn duration_seconds(&self) -> u64 {
        u64::try_from((self.ended_ms - self.started_ms).max(0) / 1000).unwrap_or(0)
    }
}

/// What happened to a meeting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MeetingEvent {
    /// A run started on a server.
    MeetingCreated {
        /// Owner.
        tenant: TenantId,
        /// Front-end id.
        meeting_id: MeetingId,
        /// Name given at create.
        name: String,
        /// The run.
        run: MeetingRun,
    },
    /// The current run ended.
    MeetingEnded {
        /// The run that ended.
        internal_id: String,
        /// Why.
        reason: EndReason,
        /// When, milliseconds since the epoch.
        at_ms: i64,
    },
    /// An ended run's usage, added up.
    MeetingUsageSummarized {
        /// The figures.
        usage: RunUsage,
    },
}

impl MeetingEvent {
    /// The event's type name, as stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::MeetingCreated { .. } => "MeetingCreated",
            Self::MeetingEnded { .. } => "MeetingEnded",
            Self::MeetingUsageSummarized { .. } => "MeetingUsageSummarized",
        }
    }
}

/// Why a meeting command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MeetingError {
    /// The command names another tenant or meetingID than the stream's.
    #[error("command for {0} sent to the stream of another meeting")]
    WrongStream(String),
}

impl Aggregate for Meeting {
    type Command = MeetingCommand;
    type Event = MeetingEvent;
    type Error = MeetingError;

    fn decide(&self, command: &MeetingCommand) -> Result<Vec<MeetingEvent>, MeetingError> {
        match command {
            MeetingCommand::RecordCreated {
                tenant,
                meeting_id,
                name,
                run,
            } => {
                if let Some((own_tenant, own_id)) = &self.identity
                    && (own_tenant != tenant || own_id != meeting_id)
                {
                    return Err(MeetingError::WrongStream(meeting_id.to_string()));
                }
                let mut events = Vec::new();
                if let Some(current) = &self.current {
                    if current.same_run(run) {
                        return Ok(events);
                    }
                    events.push(MeetingEvent::MeetingEnded {
                        internal_id: current.internal_id.clone(),
                        reason: EndReason::Replaced,
                        at_ms: run.create_time_ms,
                    });
                }
                events.push(MeetingEvent::MeetingCreated {
                    tenant: tenant.clone(),
                    meeting_id: meeting_id.clone(),
                    name: name.clone(),
                    run: run.clone(),
                });
                Ok(events)
            }
            MeetingCommand::RecordEnded {
                reason,
                at_ms,
                only_run,
            } => Ok(self
                .current
                .as_ref()
                .filter(|current| {
                    only_run
                        .as_ref()
                        .is_none_or(|run| *run == current.internal_id)
                })
                .map(|current| MeetingEvent::MeetingEnded {
                    internal_id: current.internal_id.clone(),
                    reason: *reason,
                    at_ms: *at_ms,
                })
                .into_iter()
                .collect()),
            // Only for a run that is over: a running one has no end yet.
            MeetingCommand::SummarizeUsage(usage) => Ok(self
                .current
                .as_ref()
                .is_none_or(|current| current.internal_id != usage.internal_id)
                .then(|| MeetingEvent::MeetingUsageSummarized {
                    usage: usage.clone(),
                })
                .into_iter()
                .collect()),
        }
    }

    fn evolve(&mut self, event: &MeetingEvent) {
        match event {
            MeetingEvent::MeetingCreated {
                tenant,
                meeting_id,
                name,
                run,
            } => {
                self.identity = Some((tenant.clone(), meeting_id.clone()));
                self.name = name.clone();
                self.current = Some(run.clone());
                self.ended_at_ms = None;
            }
            MeetingEvent::MeetingEnded { at_ms, .. } => {
                self.current = None;
                self.ended_at_ms = Some(*at_ms);
            }
            MeetingEvent::MeetingUsageSummarized { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(internal: &str, server: ServerId) -> MeetingRun {
        MeetingRun {
            internal_id: internal.into(),
            server_id: server,
            create_time_ms: 1000,
            recording_ready_url: None,
            callbacks: None,
        }
    }

    fn create(run: MeetingRun) -> MeetingCommand {
        MeetingCommand::RecordCreated {
            tenant: TenantId::default_tenant(),
            meeting_id: MeetingId::parse("room-1").unwrap(),
            name: "Room".into(),
            run,
        }
    }

    #[test]
    fn first_create_records_a_run() {
        let server = ServerId::new();
        let events = Meeting::default()
            .decide(&create(run("a-1", server)))
            .unwrap();
        assert_eq!(events.len(), 1);
        let meeting = Meeting::fold(&events);
        assert_eq!(meeting.current, Some(run("a-1", server)));
    }

    #[test]
    fn same_run_again_changes_nothing() {
        let server = ServerId::new();
        let given = Meeting::default()
            .decide(&create(run("a-1", server)))
            .unwrap();
        let meeting = Meeting::fold(&given);
        assert_eq!(meeting.decide(&create(run("a-1", server))).unwrap(), vec![]);
    }

    #[test]
    fn a_new_run_ends_the_old_one_first() {
        let given = Meeting::default()
            .decide(&create(run("a-1", ServerId::new())))
            .unwrap();
        let meeting = Meeting::fold(&given);
        let other = ServerId::new();
        let events = meeting.decide(&create(run("a-2", other))).unwrap();
        assert!(matches!(
            &events[0],
            MeetingEvent::MeetingEnded {
                reason: EndReason::Replaced,
                ..
            }
        ));
        let mut all = given;
        all.extend(events);
        assert_eq!(Meeting::fold(&all).current.unwrap().server_id, other);
    }

    #[test]
    fn end_is_recorded_once() {
        let given = Meeting::default()
            .decide(&create(run("a-1", ServerId::new())))
            .unwrap();
        let end = MeetingCommand::RecordEnded {
            reason: EndReason::EndCalled,
            at_ms: 5,
            only_run: None,
        };
        let events = Meeting::fold(&given).decide(&end).unwrap();
        assert_eq!(events.len(), 1);
        let mut all = given;
        all.extend(events);
        let ended = Meeting::fold(&all);
        assert_eq!(ended.current, None);
        assert_eq!(ended.decide(&end).unwrap(), vec![]);
    }

    #[test]
    fn ending_a_named_run_leaves_a_newer_run_alone() {
        let given = Meeting::default()
            .decide(&create(run("a-2", ServerId::new())))
            .unwrap();
        let stale = MeetingCommand::RecordEnded {
            reason: EndReason::GoneFromServer,
            at_ms: 5,
            only_run: Some("a-1".into()),
        };
        assert_eq!(Meeting::fold(&given).decide(&stale).unwrap(), vec![]);
    }

    #[test]
    fn a_command_for_another_meeting_is_refused() {
        let given = Meeting::default()
            .decide(&create(run("a-1", ServerId::new())))
            .unwrap();
        let other = MeetingCommand::RecordCreated {
            tenant: TenantId::default_tenant(),
            meeting_id: MeetingId::parse("room-2").unwrap(),
            name: "x".into(),
            run: run("b-1", ServerId::new()),
        };
        assert!(Meeting::fold(&given).decide(&other).is_err());
    }
}
