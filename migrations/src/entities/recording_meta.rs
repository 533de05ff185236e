//! One metadata key of a recording, for `meta_*` filters.

use sea_orm::entity::prelude::*;

/// A metadata key and value.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recording_meta")]
pub struct Model {
    /// The recording.
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_id: String,
    /// The key (as stored, lower-case for keys from create).
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The value.
    #[sea_orm(column_type = "Text")]
    pub value: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
