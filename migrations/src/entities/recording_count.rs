//! Recordings per tenant and state, for getRecordings' `totalElements`.

use sea_orm::entity::prelude::*;

/// How many of a tenant's recordings are in one state.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recording_counts")]
pub struct Model {
    /// Owning tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant: String,
    /// `published`, `unpublished` or `deleted`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub state: String,
    /// Recordings of the tenant in that state.
    pub count: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
