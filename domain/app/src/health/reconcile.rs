//! Reconciliation: what a server's meeting list says against what Switchboard
//! recorded. A meeting recorded as running there but no longer listed has
//! ended; a listed meeting Switchboard does not know is reported (and adopted
//! when configured). Deciding is pure; the poller applies the plan.

use crate::records::MeetingRecord;
use std::collections::HashSet;
use switchboard_domain::ids::{MeetingId, ServerId};

/// A meeting a server listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMeeting {
    /// Its meetingID.
    pub meeting_id: String,
    /// Its internalMeetingID.
    pub internal_id: String,
    /// Its voiceBridge, if listed.
    pub voice_bridge: Option<String>,
    /// Its attendees.
    pub attendees: u64,
    /// Its video streams.
    pub video: u64,
    /// Whether it is being recorded.
    pub recording: bool,
}

/// What to do about one server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Recorded as running there, gone from its list: record as ended.
    pub ended: Vec<MeetingRecord>,
    /// Listed there, unknown to Switchboard.
    pub unknown: Vec<ListedMeeting>,
}

/// Compares a server's list with the meetings recorded as running on it.
/// Only runs `recorded_before_poll` says were recorded before the list was
/// requested can have ended; the others are left alone (the list cannot
/// know them yet).
pub fn plan(
    server: ServerId,
    recorded: &[MeetingRecord],
    listed: &[ListedMeeting],
    recorded_before_poll: &dyn Fn(&MeetingRecord) -> bool,
) -> Plan {
    let listed_ids: HashSet<&str> = listed.iter().map(|m| m.internal_id.as_str()).collect();
    let mine: Vec<&MeetingRecord> = recorded
        .iter()
        .filter(|m| m.running && m.run.server_id == server)
        .collect();
    let known: HashSet<&str> = recorded
        .iter()
        .map(|m| m.run.internal_id.as_str())
        .collect();
    Plan {
        ended: mine
            .into_iter()
            .filter(|m| recorded_before_poll(m))
            .filter(|m| !listed_ids.contains(m.run.internal_id.as_str()))
            .cloned()
            .collect(),
        unknown: listed
            .iter()
            .filter(|m| !known.contains(m.internal_id.as_str()))
            .filter(|m| MeetingId::parse(&m.meeting_id).is_ok())
            .cloned()
            .collect(),
    }
}

/// The createTime encoded in an internal meeting id (`sha1-createTime`).
pub fn create_time_of(internal_id: &str) -> Option<i64> {
    internal_id.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::ids::TenantId;
    use switchboard_domain::meeting::MeetingRun;

    fn record(id: &str, server: ServerId, created: i64) -> MeetingRecord {
        let meeting_id = MeetingId::parse(id).unwrap();
        MeetingRecord {
            tenant: TenantId::default_tenant(),
            name: id.into(),
            run: MeetingRun {
                internal_id: meeting_id.internal_id(created),
                server_id: server,
                create_time_ms: created,
                recording_ready_url: None,
                callbacks: None,
            },
            meeting_id,
            running: true,
            ended_at_ms: None,
            version: 1,
        }
    }

    fn listed(record: &MeetingRecord) -> ListedMeeting {
        ListedMeeting {
            meeting_id: record.meeting_id.to_string(),
            internal_id: record.run.internal_id.clone(),
            voice_bridge: None,
            attendees: 0,
            video: 0,
            recording: false,
        }
    }

    #[test]
    fn a_meeting_gone_from_the_list_has_ended() {
        let server = ServerId::new();
        let gone = record("gone", server, 100);
        let here = record("here", server, 100);
        let plan = plan(
            server,
            &[gone.clone(), here.clone()],
            &[listed(&here)],
            &|m| m.run.create_time_ms < 1000,
        );
        assert_eq!(plan.ended, vec![gone]);
        assert!(plan.unknown.is_empty());
    }

    #[test]
    fn fresh_meetings_and_other_servers_are_left_alone() {
        let server = ServerId::new();
        let fresh = record("fresh", server, 2000);
        let elsewhere = record("elsewhere", ServerId::new(), 100);
        let plan = plan(server, &[fresh, elsewhere], &[], &|m| {
            m.run.create_time_ms < 1000
        });
        assert!(plan.ended.is_empty());
    }

    #[test]
    fn unknown_meetings_are_reported() {
        let server = ServerId::new();
        let stranger = ListedMeeting {
            meeting_id: "direct".into(),
            internal_id: "abc-123".into(),
            voice_bridge: None,
            attendees: 0,
            video: 0,
            recording: false,
        };
        let plan = plan(server, &[], std::slice::from_ref(&stranger), &|_| true);
        assert_eq!(plan.unknown, vec![stranger]);
        assert_eq!(create_time_of("abc-123"), Some(123));
    }
}
