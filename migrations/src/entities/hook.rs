//! A registered webhook (see the migration `m0010_hooks`).

use sea_orm::entity::prelude::*;

/// One hook in force.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "hooks")]
pub struct Model {
    /// The hookID front-ends see.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Whose it is.
    pub tenant: String,
    /// What it asks for (JSON of `HookSettings`).
    #[sea_orm(column_type = "Text")]
    pub settings: String,
    /// Position of the event that registered it (hooks are listed in that
    /// order).
    pub position: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
