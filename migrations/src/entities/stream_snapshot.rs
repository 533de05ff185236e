//! Streams' states at their last archived event (what `events archive`
//! leaves of a stream's archived events).

use sea_orm::entity::prelude::*;

/// One stream's state.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stream_snapshots")]
pub struct Model {
    /// The stream.
    #[sea_orm(primary_key, auto_increment = false)]
    pub stream: String,
    /// Its version at the snapshot (its last archived event's).
    pub version: i64,
    /// That event's position.
    pub position: i64,
    /// The aggregate's state, as JSON.
    #[sea_orm(column_type = "Text")]
    pub state: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
