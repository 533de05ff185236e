//! When each server's node agent was last heard (overwritten in place, not
//! a projection of the log).

use sea_orm::entity::prelude::*;

/// The last heartbeat of one server's agent.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_heartbeats")]
pub struct Model {
    /// Server id (UUID text).
    #[sea_orm(primary_key, auto_increment = false)]
    pub server_id: String,
    /// When its last heartbeat arrived (ms since the epoch).
    pub heard_at_ms: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
