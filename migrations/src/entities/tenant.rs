//! The tenants projection.

use sea_orm::entity::prelude::*;

/// A tenant in force.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    /// Its name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Its configuration, as JSON (`TenantConfig`).
    #[sea_orm(column_type = "Text")]
    pub config: String,
    /// Version of its stream this row reflects.
    pub version: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
