//! The servers projection: one row per server in the pool.

use sea_orm::entity::prelude::*;

/// A server as routing reads it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "servers")]
pub struct Model {
    /// Server id (UUID text).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Base URL ending in `/`.
    pub url: String,
    /// Shared secret.
    pub secret: String,
    /// Optional tag.
    pub tag: Option<String>,
    /// Load multiplier.
    pub load_multiplier: f64,
    /// Checksum algorithm for calls to it (`None`: the default).
    pub checksum_algorithm: Option<String>,
    /// Prometheus text endpoint with its CPU and memory (may carry credentials).
    #[sea_orm(column_type = "Text", nullable)]
    pub metrics_url: Option<String>,
    /// enabled, cordoned or disabled.
    pub state: String,
    /// Whether health checks reach it.
    pub online: bool,
    /// What its node agent said of itself (JSON), once one has reported.
    #[sea_orm(column_type = "Text", nullable)]
    pub agent: Option<String>,
    /// Version of the server's stream this row reflects.
    pub version: i64,
    /// Log position of the last event applied.
    pub position: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
