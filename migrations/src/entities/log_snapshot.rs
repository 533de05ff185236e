//! Folds of the log kept at a position (not a projection: each is made
//! from the log and can be made again).

use sea_orm::entity::prelude::*;

/// One snapshot.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "log_snapshots")]
pub struct Model {
    /// What it folds (`history`: servers and running meetings).
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    /// The position of the last event it includes.
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i64,
    /// When that event was recorded.
    pub recorded_at: DateTimeUtc,
    /// The fold as its reader wrote it (the pool's history: `gz64:` and
    /// base64 of gzip-compressed JSON; plain JSON before issue 22).
    #[sea_orm(column_type = "Text")]
    pub state: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
