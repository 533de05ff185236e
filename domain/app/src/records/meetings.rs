//! Meetings and their runs as the projections hold them.

use crate::records::servers::ServerRecord;
use std::collections::HashMap;
use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_domain::meeting::{Meeting, MeetingRun};

/// A meeting as the projection holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingRecord {
    /// Owner.
    pub tenant: TenantId,
    /// Front-end id.
    pub meeting_id: MeetingId,
    /// Name from the last create.
    pub name: String,
    /// The last run.
    pub run: MeetingRun,
    /// Whether that run goes on.
    pub running: bool,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
    /// Stream version.
    pub version: i64,
}

impl MeetingRecord {
    /// The aggregate state this row stands for.
    pub fn aggregate(&self) -> Meeting {
        Meeting {
            identity: Some((self.tenant.clone(), self.meeting_id.clone())),
            name: self.name.clone(),
            current: self.running.then(|| self.run.clone()),
            ended_at_ms: self.ended_at_ms,
        }
    }
}

/// What routing needs from the database, as of one position.
#[derive(Debug, Clone)]
pub struct RoutingSnapshot {
    /// The log position the rest belongs to.
    pub position: i64,
    /// Every server.
    pub servers: Vec<ServerRecord>,
    /// Running meetings per server.
    pub running: HashMap<ServerId, u64>,
}

/// A voiceBridge held by a meeting, unique across the pool (a shared
/// dial-in gateway routes callers by it). Kept while the meeting runs and
/// until another meeting claims the number after it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceBridgeClaim {
    /// The number (digits).
    pub number: String,
    /// The holder's tenant.
    pub tenant: TenantId,
    /// The holder's meetingID.
    pub meeting_id: MeetingId,
    /// When it was claimed or last renewed (ms).
    pub at_ms: i64,
}

/// What a create reads of a meeting before it decides where to send it:
/// the meeting, the create of it left pending, and the voice bridge it
/// holds, read together by the store in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeetingForCreate {
    /// The meeting, if it was ever recorded.
    pub meeting: Option<MeetingRecord>,
    /// The create of it left pending, if any.
    pub pending: Option<PendingPlacement>,
    /// The voice bridge it holds, if any.
    pub held_voice_bridge: Option<String>,
}

/// Where a create was about to go: written before the server's create, and
/// removed when the run is recorded. One left behind means the create may
/// have run on that server without being recorded (a crash in between): a
/// retried create goes there first, and reconcile records the run it finds
/// there for this tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPlacement {
    /// The front-end's tenant.
    pub tenant: TenantId,
    /// The front-end's meetingID (what the server knows the meeting by).
    pub meeting_id: MeetingId,
    /// The server the create was sent to.
    pub server_id: ServerId,
    /// When (ms).
    pub at_ms: i64,
    /// The create's recording-ready URL.
    pub recording_ready_url: Option<String>,
    /// The run's callbacks as given to this server (its nonce).
    pub callbacks: Option<switchboard_domain::meeting::RunCallbacks>,
}
