//! The recordings projection: one row per record id.

use sea_orm::entity::prelude::*;

/// A recording as getRecordings reads it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "recordings")]
pub struct Model {
    /// The record id (BBB's internal meeting id of the run).
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_id: String,
    /// Owning tenant.
    pub tenant: String,
    /// The front-end's meetingID.
    pub meeting_id: String,
    /// BBB's internal meeting id.
    pub internal_meeting_id: String,
    /// Meeting name.
    #[sea_orm(column_type = "Text")]
    pub name: String,
    /// A breakout room's recording.
    pub is_breakout: bool,
    /// Its breakout parent and rooms (JSON `{"parent_id", "sequence",
    /// "rooms"}`), null when it has neither.
    pub breakout: Option<String>,
    /// Published (served) or not.
    pub published: bool,
    /// `published`, `unpublished` or `deleted`.
    pub state: String,
    /// Start, ms.
    pub start_time_ms: i64,
    /// End, ms.
    pub end_time_ms: i64,
    /// Participants.
    pub participants: i32,
    /// Playback only through one-time links.
    pub protected: bool,
    /// Metadata as a JSON object.
    #[sea_orm(column_type = "Text")]
    pub metadata: String,
    /// Formats as a JSON array (`RecordingFormat`).
    #[sea_orm(column_type = "Text")]
    pub formats: String,
    /// Stream version this row reflects.
    pub version: i64,
    /// Log position of the last event applied.
    pub position: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
