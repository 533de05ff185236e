//! A row of the append-only event log.

use sea_orm::entity::prelude::*;

/// One stored event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// Global, monotonic position.
    #[sea_orm(primary_key)]
    pub position: i64,
    /// Stream (aggregate) the event belongs to.
    pub stream: String,
    /// Version within the stream, starting at 1; unique per stream.
    pub version: i64,
    /// Type name, e.g. `ServerAdded`.
    pub event_type: String,
    /// Shape version of the payload.
    pub schema_version: i32,
    /// JSON payload.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// JSON metadata: actor, request id, tenant.
    #[sea_orm(column_type = "Text")]
    pub metadata: String,
    /// When it was appended.
    pub recorded_at: DateTimeUtc,
    /// Who caused it (copied from the metadata, for filtering).
    pub actor: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
