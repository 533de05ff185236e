//! The console's time series (`server_series`): one row per server and
//! minute, replaced within its minute, pruned by age.

use crate::store::{SqlError, Store};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use switchboard_app::records::SeriesPoint;
use switchboard_domain::ids::ServerId;
use switchboard_migrations::entities::server_series;

fn to_point(row: server_series::Model) -> Option<SeriesPoint> {
    Some(SeriesPoint {
        server_id: row.server_id.parse().ok()?,
        at_ms: row.at_ms,
        online: row.online,
        meetings: row.meetings.max(0) as u64,
        attendees: row.attendees.max(0) as u64,
        video: row.video.max(0) as u64,
        load: row.load,
        cpu_percent: row.cpu_percent,
        memory_percent: row.memory_percent,
    })
}

fn to_row(point: &SeriesPoint) -> server_series::ActiveModel {
    let clamp = |n: u64| n.min(i64::MAX as u64) as i64;
    server_series::ActiveModel {
        server_id: Set(point.server_id.to_string()),
        at_ms: Set(point.at_ms),
        online: Set(point.online),
        meetings: Set(clamp(point.meetings)),
        attendees: Set(clamp(point.attendees)),
        video: Set(clamp(point.video)),
        load: Set(if point.load.is_finite() {
            point.load
        } else {
            0.0
        }),
        cpu_percent: Set(point.cpu_percent.filter(|v| v.is_finite())),
        memory_percent: Set(point.memory_percent.filter(|v| v.is_finite())),
    }
}

impl Store {
    /// Writes points, each replacing the one of its server and minute.
    pub(crate) async fn record_series_sql(&self, points: &[SeriesPoint]) -> Result<(), SqlError> {
        if points.is_empty() {
            return Ok(());
        }
        server_series::Entity::insert_many(points.iter().map(to_row))
            .on_conflict(
                OnConflict::columns([server_series::Column::ServerId, server_series::Column::AtMs])
                    .update_columns([
                        server_series::Column::Online,
                        server_series::Column::Meetings,
                        server_series::Column::Attendees,
                        server_series::Column::Video,
                        server_series::Column::Load,
                        server_series::Column::CpuPercent,
                        server_series::Column::MemoryPercent,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The points at or after `since_ms`, oldest first.
    pub(crate) async fn series_since_sql(
        &self,
        since_ms: i64,
        server: Option<ServerId>,
    ) -> Result<Vec<SeriesPoint>, SqlError> {
        let mut query =
            server_series::Entity::find().filter(server_series::Column::AtMs.gte(since_ms));
        if let Some(server) = server {
            query = query.filter(server_series::Column::ServerId.eq(server.to_string()));
        }
        let rows = query
            .order_by_asc(server_series::Column::AtMs)
            .order_by_asc(server_series::Column::ServerId)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(to_point).collect())
    }

    /// Removes the points before `before_ms`.
    pub(crate) async fn prune_series_sql(&self, before_ms: i64) -> Result<u64, SqlError> {
        let done = server_series::Entity::delete_many()
            .filter(server_series::Column::AtMs.lt(before_ms))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }
}
