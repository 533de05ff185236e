//! A `<meeting>` element for a run Switchboard created, shown by getMeetings
//! until a poll of its server lists the run.

use sea_orm::entity::prelude::*;

/// One run's listing.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "meeting_listings")]
pub struct Model {
    /// BBB's internal meeting id of the run.
    #[sea_orm(primary_key, auto_increment = false)]
    pub internal_id: String,
    /// Its server.
    pub server_id: String,
    /// When it was created (ms).
    pub created_at_ms: i64,
    /// The `<meeting>` element.
    #[sea_orm(column_type = "Text")]
    pub xml: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
