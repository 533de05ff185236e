//! Each run's usage as the polls add it up (see `m0015_usage`).

use sea_orm::entity::prelude::*;

/// One run's usage so far.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "run_usage")]
pub struct Model {
    /// The run.
    #[sea_orm(primary_key, auto_increment = false)]
    pub internal_id: String,
    /// Its tenant.
    pub tenant: String,
    /// Its meetingID.
    pub meeting_id: String,
    /// Its server (UUID text).
    pub server_id: String,
    /// When it started (ms).
    pub started_ms: i64,
    /// The last sample's time.
    pub last_sample_ms: Option<i64>,
    /// The last sample's attendees.
    pub last_attendees: i64,
    /// Attendee-milliseconds up to the last sample.
    pub attendee_ms: i64,
    /// Most attendees sampled.
    pub peak_attendees: i64,
    /// Most video streams sampled.
    pub peak_video: i64,
    /// Seen recording.
    pub recording: bool,
    /// When it ended.
    pub ended_ms: Option<i64>,
    /// Its summary is in the log.
    pub summarized: bool,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
