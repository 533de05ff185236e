//! The meetings projection: one row per tenant and meetingID, its last run.

use sea_orm::entity::prelude::*;

/// A meeting as routing reads it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "meetings")]
pub struct Model {
    /// Owning tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant: String,
    /// The front-end's meetingID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub meeting_id: String,
    /// Name from the last create.
    pub name: String,
    /// Internal id of the last run.
    pub internal_id: String,
    /// Server of the last run.
    pub server_id: String,
    /// createTime of the last run (ms).
    pub create_time_ms: i64,
    /// When the last run ended (ms), if it did.
    pub ended_at_ms: Option<i64>,
    /// Whether the last run is going on.
    pub running: bool,
    /// Version of the meeting's stream this row reflects.
    pub version: i64,
    /// Log position of the last event applied.
    pub position: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
