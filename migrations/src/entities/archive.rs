//! The archives `events archive` made: which events went to which file,
//! and the projections as they stood at the last one (where `replay`
//! starts once those events are gone).

use sea_orm::entity::prelude::*;

/// One archive.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "archives")]
pub struct Model {
    /// Position of the last archived event.
    #[sea_orm(primary_key, auto_increment = false)]
    pub last_position: i64,
    /// Position of the first archived event.
    pub first_position: i64,
    /// How many events were archived.
    pub events: i64,
    /// The `--before` asked.
    pub before: DateTimeUtc,
    /// When the archive was made.
    pub archived_at: DateTimeUtc,
    /// SHA-256 (hex) of the archive's event lines.
    pub sha256: String,
    /// The file written (as given).
    #[sea_orm(column_type = "Text")]
    pub file: String,
    /// The projections folded up to `last_position`: gzip'd JSON.
    pub projections: Vec<u8>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
