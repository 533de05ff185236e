//! The admin tokens projection: tokens in force, by name.

use sea_orm::entity::prelude::*;

/// A token in force.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    /// Token name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// `admin`, `read` or `node`.
    pub scope: String,
    /// SHA-256 (hex) of the token.
    pub hash: String,
    /// When it was created.
    pub created_at: DateTimeUtc,
    /// For a node token: the server it speaks for.
    pub server_id: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
