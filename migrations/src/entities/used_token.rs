//! Nonces of redeemed one-time playback links.

use sea_orm::entity::prelude::*;

/// A used nonce, kept until its link expires.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "used_tokens")]
pub struct Model {
    /// The nonce.
    #[sea_orm(primary_key, auto_increment = false)]
    pub nonce: String,
    /// Expiry of its link, unix seconds.
    pub expires_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
