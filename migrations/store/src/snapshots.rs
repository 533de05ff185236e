//! Snapshots of the log's folds (`log_snapshots`).

use crate::store::{SqlError, Store};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use switchboard_app::records::LogSnapshot;
use switchboard_migrations::entities::log_snapshot;

impl Store {
    /// The newest snapshot of `kind` recorded at or before `at`.
    pub(crate) async fn snapshot_before_sql(
        &self,
        kind: &str,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<LogSnapshot>, SqlError> {
        let mut query = log_snapshot::Entity::find().filter(log_snapshot::Column::Kind.eq(kind));
        if let Some(at) = at {
            query = query.filter(log_snapshot::Column::RecordedAt.lte(at));
        }
        let row = query
            .order_by_desc(log_snapshot::Column::Position)
            .one(&self.db)
            .await?;
        Ok(row.map(|row| LogSnapshot {
            kind: row.kind,
            position: row.position,
            recorded_at: row.recorded_at,
            state: row.state,
        }))
    }

    /// Keeps a snapshot unless one of its kind and position is kept.
    pub(crate) async fn put_snapshot_sql(&self, snapshot: &LogSnapshot) -> Result<(), SqlError> {
        let row = log_snapshot::ActiveModel {
            kind: Set(snapshot.kind.clone()),
            position: Set(snapshot.position),
            recorded_at: Set(snapshot.recorded_at),
            state: Set(snapshot.state.clone()),
        };
        log_snapshot::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([log_snapshot::Column::Kind, log_snapshot::Column::Position])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }
}
