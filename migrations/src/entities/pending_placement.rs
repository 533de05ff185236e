//! Where a create was about to go (see the migration
//! `m0008_pending_placements`).

use sea_orm::entity::prelude::*;

/// One pending create.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pending_placements")]
pub struct Model {
    /// The front-end's tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant: String,
    /// The front-end's meetingID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub meeting_id: String,
    /// The server the create was sent to.
    pub server_id: String,
    /// When (ms).
    pub at_ms: i64,
    /// The create's recording-ready URL.
    #[sea_orm(column_type = "Text", nullable)]
    pub recording_ready_url: Option<String>,
    /// The run's callbacks as given to this server (JSON of `RunCallbacks`).
    #[sea_orm(column_type = "Text", nullable)]
    pub callbacks: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
