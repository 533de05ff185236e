//! What the last health polls saw on one server.

use sea_orm::entity::prelude::*;

/// One server's sample.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "server_samples")]
pub struct Model {
    /// The server.
    #[sea_orm(primary_key, auto_increment = false)]
    pub server_id: String,
    /// When the content (not only the poll time) last changed (ms).
    pub changed_at_ms: i64,
    /// When it was last polled (ms).
    pub polled_at_ms: i64,
    /// Consecutive failed polls.
    pub failures: i32,
    /// Consecutive good polls.
    pub successes: i32,
    /// Meetings it runs.
    pub meetings: i64,
    /// Attendees over its meetings.
    pub attendees: i64,
    /// Video streams over its meetings.
    pub video: i64,
    /// Participants of its largest meeting.
    pub largest_meeting: i64,
    /// Of its meetings, those Switchboard records there.
    pub known_meetings: i64,
    /// Weighted load of its meetings.
    pub load: f64,
    /// The `<meeting>` elements of its last good getMeetings answer.
    #[sea_orm(column_type = "Text")]
    pub meetings_xml: String,
    /// `listing_digest` of `meetings_xml` (its bits as a signed integer).
    pub listing_digest: i64,
    /// Windowed CPU utilisation, percent.
    pub cpu_percent: Option<f64>,
    /// Windowed used memory, percent.
    pub memory_percent: Option<f64>,
    /// not_configured, ok, stale or unreadable.
    pub metrics_state: String,
    /// Why the last metrics read failed.
    #[sea_orm(column_type = "Text", nullable)]
    pub metrics_error: Option<String>,
    /// When metrics were last read well (ms).
    pub metrics_read_at_ms: Option<i64>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
