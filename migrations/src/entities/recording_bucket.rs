//! Recordings per tenant, state and start-time bucket, at three widths:
//! how a getRecordings page finds its place without walking to it.

use sea_orm::entity::prelude::*;

/// How many of a tenant's recordings in one state start in one bucket.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recording_buckets")]
pub struct Model {
    /// Owning tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant: String,
    /// 1, 2 or 3: buckets of 2^12, 2^22 or 2^32 ms.
    #[sea_orm(primary_key, auto_increment = false)]
    pub level: i16,
    /// start_time_ms divided by the level's width.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket: i64,
    /// `published`, `unpublished` or `deleted`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub state: String,
    /// Recordings of the tenant in that state starting in the bucket.
    pub count: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
