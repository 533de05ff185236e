//! Snapshots of the log's folds (`log_snapshots`) and of archived streams
//! (`stream_snapshots`, read with the stream's events in one query).

use crate::store::{SqlError, Store};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sea_orm::{FromQueryResult, Statement};
use switchboard_app::records::{LogSnapshot, StreamHistory, StreamSnapshot};
use switchboard_domain::ids::StreamId;
use switchboard_migrations::entities::{event, log_snapshot};

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

/// A row of a stream's history: an event, or (`snapshot` = 1) the stream's
/// snapshot with its state in `payload`.
#[derive(Debug, FromQueryResult)]
struct HistoryRow {
    snapshot: i32,
    position: i64,
    stream: String,
    version: i64,
    event_type: String,
    schema_version: i32,
    payload: String,
    metadata: String,
    recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    actor: Option<String>,
}

impl Store {
    /// A stream's snapshot (if its older events were archived) and its
    /// events, in one round trip.
    pub(crate) async fn stream_history_sql(
        &self,
        stream: &StreamId,
    ) -> Result<StreamHistory, SqlError> {
        let (first, second) = if self.is_postgres() {
            ("$1", "$1")
        } else {
            ("?", "?")
        };
        let sql = format!(
            "SELECT 0 AS snapshot, position, stream, version, event_type, schema_version, \
             payload, metadata, recorded_at, actor FROM events WHERE stream = {first} \
             UNION ALL \
             SELECT 1, position, stream, version, '', 0, state, '', NULL, NULL \
             FROM stream_snapshots WHERE stream = {second} \
             ORDER BY version"
        );
        let name = stream.to_string();
        let values: Vec<sea_orm::Value> = if self.is_postgres() {
            vec![name.into()]
        } else {
            vec![name.clone().into(), name.into()]
        };
        let rows = HistoryRow::find_by_statement(Statement::from_sql_and_values(
            self.db.get_database_backend(),
            sql,
            values,
        ))
        .all(&self.db)
        .await?;
        let mut history = StreamHistory::default();
        for row in rows {
            if row.snapshot == 1 {
                history.snapshot = Some(StreamSnapshot {
                    version: row.version,
                    state: row.payload,
                });
                continue;
            }
            let Some(recorded_at) = row.recorded_at else {
                continue;
            };
            history.events.push(crate::store::decode(event::Model {
                position: row.position,
                stream: row.stream,
                version: row.version,
                event_type: row.event_type,
                schema_version: row.schema_version,
                payload: row.payload,
                metadata: row.metadata,
                recorded_at,
                actor: row.actor,
            })?);
        }
        // Each stream's last archived event stays in the log (its version
        // keeps a stale writer from appending that version again): the
        // snapshot already holds it.
        if let Some(snapshot) = &history.snapshot {
            history
                .events
                .retain(|stored| stored.version > snapshot.version);
        }
        Ok(history)
    }
}
