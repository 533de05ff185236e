//! Installation settings kept in the database (e.g. a generated API secret).

use sea_orm::entity::prelude::*;

/// One key/value setting.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings")]
pub struct Model {
    /// Setting name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Its value.
    #[sea_orm(column_type = "Text")]
    pub value: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
