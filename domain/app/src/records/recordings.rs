//! Recordings and meeting runs as the projections hold them, and
//! getRecordings' query.

use std::collections::BTreeMap;
use switchboard_domain::ids::{ServerId, TenantId};
use switchboard_domain::recording::RecordingFormat;

/// A recording as the projection holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRecord {
    /// The record id.
    pub record_id: String,
    /// Owner.
    pub tenant: TenantId,
    /// The front-end's meetingID.
    pub meeting_id: String,
    /// BBB's internal meeting id.
    pub internal_meeting_id: String,
    /// Meeting name.
    pub name: String,
    /// A breakout room's recording.
    pub is_breakout: bool,
    /// For a breakout room's recording: its parent and number.
    pub breakout: Option<switchboard_domain::recording::BreakoutOf>,
    /// The breakout rooms the meeting opened (internal meeting ids).
    pub breakout_rooms: Vec<String>,
    /// Published or not.
    pub published: bool,
    /// `published`, `unpublished` or `deleted`.
    pub state: String,
    /// Start, ms.
    pub start_time_ms: i64,
    /// End, ms.
    pub end_time_ms: i64,
    /// Participants.
    pub participants: u32,
    /// Playback only through one-time links.
    pub protected: bool,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Playback formats.
    pub formats: Vec<RecordingFormat>,
    /// Stream version.
    pub version: i64,
}

/// getRecordings' filters, for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingQuery {
    /// Only this tenant's recordings.
    pub tenant: TenantId,
    /// Any of these meetingIDs (exact); empty: all.
    pub meeting_ids: Vec<String>,
    /// Record ids starting with any of these; empty: all.
    pub record_id_prefixes: Vec<String>,
    /// Any of these states; `None`: any state.
    pub states: Option<Vec<String>>,
    /// Every one of these metadata key/value pairs.
    pub meta: Vec<(String, String)>,
    /// Skip this many.
    pub offset: u64,
    /// At most this many; `Some` also counts the total.
    pub limit: Option<u64>,
}

impl RecordingQuery {
    /// Every published or unpublished recording of a tenant (BBB's default).
    pub fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            meeting_ids: Vec::new(),
            record_id_prefixes: Vec::new(),
            states: Some(vec!["published".into(), "unpublished".into()]),
            meta: Vec::new(),
            offset: 0,
            limit: None,
        }
    }
}

/// One page of getRecordings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingPage {
    /// The recordings, oldest first.
    pub recordings: Vec<RecordingRecord>,
    /// All matches, when a limit was asked for.
    pub total: Option<u64>,
}

/// A meeting run as `meeting_runs` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingRunRecord {
    /// BBB's internal meeting id.
    pub internal_id: String,
    /// Owner.
    pub tenant: TenantId,
    /// The front-end's meetingID.
    pub meeting_id: String,
    /// Its server.
    pub server_id: Option<ServerId>,
    /// createTime, ms.
    pub create_time_ms: i64,
    /// Where to announce its recording.
    pub recording_ready_url: Option<String>,
    /// The end-of-meeting callbacks the front-end asked for.
    pub callbacks: Option<switchboard_domain::meeting::RunCallbacks>,
}
