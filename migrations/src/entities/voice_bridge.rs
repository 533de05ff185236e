//! Voice bridges held across the pool (overwritten in place, not a
//! projection of the log): the number a meeting was given, unique.

use sea_orm::entity::prelude::*;

/// One number and the meeting holding it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "voice_bridges")]
pub struct Model {
    /// The voiceBridge (digits).
    #[sea_orm(primary_key, auto_increment = false)]
    pub number: String,
    /// The holder's tenant.
    pub tenant: String,
    /// The holder's meetingID.
    pub meeting_id: String,
    /// When it was claimed or renewed (ms since the epoch).
    pub claimed_at_ms: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
