//! Summaries of ended runs (the projection of `MeetingUsageSummarized`).

use sea_orm::entity::prelude::*;

/// One summarized run.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "usage_runs")]
pub struct Model {
    /// The run.
    #[sea_orm(primary_key, auto_increment = false)]
    pub internal_id: String,
    /// Its tenant.
    pub tenant: String,
    /// Its meetingID.
    pub meeting_id: String,
    /// The summary (`RunUsage` JSON).
    pub usage: String,
    /// When it started (ms), for filtering.
    pub started_ms: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
