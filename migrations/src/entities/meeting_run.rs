//! Every meeting run (the meetings projection keeps only the last one).

use sea_orm::entity::prelude::*;

/// A run of a meeting, by internal id.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "meeting_runs")]
pub struct Model {
    /// BBB's internal meeting id (the record id of its recording).
    #[sea_orm(primary_key, auto_increment = false)]
    pub internal_id: String,
    /// Owning tenant.
    pub tenant: String,
    /// The front-end's meetingID.
    pub meeting_id: String,
    /// The server it ran on.
    pub server_id: String,
    /// createTime, ms.
    pub create_time_ms: i64,
    /// `meta_bbb-recording-ready-url` of its create.
    #[sea_orm(column_type = "Text", nullable)]
    pub recording_ready_url: Option<String>,
    /// The nonce its callback URLs carry.
    #[sea_orm(nullable)]
    pub callback_nonce: Option<String>,
    /// The callbacks its front-end asked for (JSON of `RunCallbacks`).
    #[sea_orm(column_type = "Text", nullable)]
    pub callbacks: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
