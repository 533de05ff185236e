//! One point of a server's time series: what its polls saw in one minute.

use sea_orm::entity::prelude::*;

/// One server's point.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "server_series")]
pub struct Model {
    /// The server.
    #[sea_orm(primary_key, auto_increment = false)]
    pub server_id: String,
    /// The start of the point's minute (ms since the epoch).
    #[sea_orm(primary_key, auto_increment = false)]
    pub at_ms: i64,
    /// Whether it was online.
    pub online: bool,
    /// Meetings it ran.
    pub meetings: i64,
    /// Attendees over its meetings.
    pub attendees: i64,
    /// Video streams over its meetings.
    pub video: i64,
    /// Effective load used for placement.
    pub load: f64,
    /// Windowed CPU utilisation, percent.
    pub cpu_percent: Option<f64>,
    /// Windowed used memory, percent.
    pub memory_percent: Option<f64>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
