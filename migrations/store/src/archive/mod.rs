//! `switchboard events archive --before DATE --to FILE`: the events
//! recorded before a date move out of the log into a file. Before any is
//! removed, what replaces them is stored: each stream's state at its last
//! archived event (the executor starts there), the projections folded up
//! to the last archived position (`replay` starts there) and a snapshot of
//! the pool there (`events at` starts there); the file is written, made
//! durable and read back through its checksum first. The removal and the
//! stored states are one transaction.

mod file;
mod streams;

use crate::rebuild::insert_rows;
use crate::store::{SqlError, Store};
pub use file::{ArchiveHeader, ArchiveSummary, verify_archive};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use std::collections::HashMap;
use std::path::Path;
use streams::Folded;
use switchboard_app::admin::History;
use switchboard_domain::ids::StreamId;
use switchboard_migrations::entities::{archive, event, log_snapshot, stream_snapshot};

/// Rows read per page while writing the file.
const PAGE: u64 = 5_000;

/// What an archive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Position of the first archived event.
    pub first_position: i64,
    /// Position of the last archived event.
    pub last_position: i64,
    /// Events moved to the file.
    pub events: u64,
    /// Streams whose state was kept.
    pub streams: u64,
    /// SHA-256 (hex) of the file's event lines.
    pub sha256: String,
}

/// Why an archive was not made.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The database failed (nothing was removed).
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// The file could not be written (nothing was removed).
    #[error("cannot write {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file did not read back as written (nothing was removed).
    #[error("{path} did not verify after writing: {reason}")]
    Unverified {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// There is nothing to archive.
    #[error("no event of the log was recorded before {0}")]
    Nothing(chrono::DateTime<chrono::Utc>),
    /// A stream's state could not be kept.
    #[error("the state of `{stream}` cannot be kept: {reason}")]
    State {
        /// The stream.
        stream: String,
        /// Why.
        reason: String,
    },
}

impl Store {
    /// Moves the events recorded before `before` (up to the last settled
    /// one) into the new file `path`; see the module.
    pub async fn archive_events(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        path: &Path,
    ) -> Result<ArchiveReport, ArchiveError> {
        let lock = self.maintenance_lock().await?;
        let outcome = self.archive_locked(before, path).await;
        lock.release().await;
        outcome
    }

    /// [`archive_events`](Self::archive_events), with the maintenance lock
    /// held.
    async fn archive_locked(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        path: &Path,
    ) -> Result<ArchiveReport, ArchiveError> {
        let (first, last) = self.archive_range(before).await?;
        let file_err = |source| ArchiveError::File {
            path: path.display().to_string(),
            source,
        };
        if path.exists() {
            return Err(file_err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists; archives never overwrite one",
            )));
        }
        // What replaces the events: the projections and each stream's state.
        let mut states = self.kept_stream_states().await?;
        let mut stream_error = None;
        let (image, _) = self
            .fold_log(last, &mut |_| {}, &mut |stored| {
                let name = stored.stream.to_string();
                let entry = states.entry(name).or_insert_with(|| {
                    (
                        Folded::initial(&stored.stream),
                        stored.version,
                        stored.position,
                    )
                });
                entry.0.evolve(&stored.event);
                entry.1 = stored.version;
                entry.2 = stored.position;
                Ok(())
            })
            .await?;
        let projections = image.to_bytes().map_err(|err| SqlError::Corrupt {
            position: last,
            reason: err.0,
        })?;
        let mut snapshots = Vec::with_capacity(states.len());
        for (stream, (folded, version, position)) in &states {
            match folded.to_json() {
                Ok(state) => snapshots.push(stream_snapshot::Model {
                    stream: stream.clone(),
                    version: *version,
                    position: *position,
                    state,
                }),
                Err(err) => {
                    stream_error = Some(ArchiveError::State {
                        stream: stream.clone(),
                        reason: err.to_string(),
                    });
                    break;
                }
            }
        }
        if let Some(err) = stream_error {
            return Err(err);
        }
        // The file, durable and checked before anything is removed.
        let header = ArchiveHeader {
            switchboard_archive: 1,
            before,
            first_position: first,
            last_position: last,
        };
        let partial = path.with_extension("partial");
        let written = self.write_file(&partial, &header, first, last).await;
        let (events, sha256) = match written {
            Ok(done) => done,
            Err(err) => {
                // Only a partial file this run made is removed.
                if !matches!(&err, ArchiveError::File { source, .. }
                    if source.kind() == std::io::ErrorKind::AlreadyExists)
                {
                    let _ = std::fs::remove_file(&partial);
                }
                return Err(err);
            }
        };
        // Published without replacing anything, and made durable.
        let published = std::fs::hard_link(&partial, path);
        let _ = std::fs::remove_file(&partial);
        published.map_err(file_err)?;
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(file_err)?;
        }
        let summary = verify_archive(path).map_err(|reason| ArchiveError::Unverified {
            path: path.display().to_string(),
            reason,
        })?;
        if summary.sha256 != sha256 || summary.events != events {
            return Err(ArchiveError::Unverified {
                path: path.display().to_string(),
                reason: "it reads back other events than were written".into(),
            });
        }
        // The pool's snapshot at the boundary, for `events at`.
        let boundary = event::Entity::find_by_id(last)
            .one(&self.db)
            .await
            .map_err(SqlError::from)?
            .map(|row| row.recorded_at)
            .unwrap_or(before);
        History::default()
            .keep_snapshot_at(self, last, boundary)
            .await
            .map_err(|err| SqlError::Corrupt {
                position: last,
                reason: format!("the pool's snapshot cannot be kept: {err}"),
            })?;
        let streams = snapshots.len() as u64;
        // The states and the archive's record first; then the events go,
        // in batches (each stream's last archived event stays: its version
        // keeps a stale writer from appending that version again).
        let txn = self.db.begin().await.map_err(SqlError::from)?;
        stream_snapshot::Entity::delete_many()
            .exec(&txn)
            .await
            .map_err(SqlError::from)?;
        insert_rows::<stream_snapshot::Entity, _>(&txn, "stream_snapshots", snapshots)
            .await
            .map_err(SqlError::from)?;
        archive::Entity::insert(archive::ActiveModel {
            last_position: Set(last),
            first_position: Set(first),
            events: Set(i64::try_from(events).unwrap_or(i64::MAX)),
            before: Set(before),
            archived_at: Set(chrono::Utc::now()),
            sha256: Set(sha256.clone()),
            file: Set(path.display().to_string()),
            projections: Set(projections),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(SqlError::from)?;
        txn.commit().await.map_err(SqlError::from)?;
        self.delete_archived(last).await?;
        Ok(ArchiveReport {
            first_position: first,
            last_position: last,
            events,
            streams,
            sha256,
        })
    }

    /// Whether events were ever archived from this log.
    pub async fn has_archives(&self) -> Result<bool, SqlError> {
        Ok(archive::Entity::find().one(&self.db).await?.is_some())
    }

    /// The first and last positions to archive: every event after the
    /// last archive, up to the last settled one recorded before `before`.
    async fn archive_range(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<(i64, i64), ArchiveError> {
        let settled = self.settled_position().await?;
        let archived: Option<i64> = archive::Entity::find()
            .select_only()
            .column_as(archive::Column::LastPosition.max(), "last")
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await
            .map_err(SqlError::from)?
            .flatten();
        let archived = archived.unwrap_or(0);
        let position_of = |last: bool| {
            let column = if last {
                event::Column::Position.max()
            } else {
                event::Column::Position.min()
            };
            let query = event::Entity::find()
                .select_only()
                .column_as(column, "position")
                .filter(event::Column::Position.gt(archived))
                .filter(event::Column::Position.lte(settled));
            if last {
                query.filter(event::Column::RecordedAt.lt(before))
            } else {
                query
            }
        };
        let last: Option<i64> = position_of(true)
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await
            .map_err(SqlError::from)?
            .flatten();
        let first: Option<i64> = position_of(false)
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await
            .map_err(SqlError::from)?
            .flatten();
        match (first, last) {
            (Some(first), Some(last)) => Ok((first, last)),
            _ => Err(ArchiveError::Nothing(before)),
        }
    }

    /// Removes the archived events up to `last`, a batch per transaction,
    /// but each stream's event its snapshot was taken at; pool snapshots
    /// past `last` (a fold that ran during the removal may have skipped
    /// events) are dropped to be made again.
    async fn delete_archived(&self, last: i64) -> Result<(), ArchiveError> {
        const BATCH: i64 = 50_000;
        let mut from: i64 = event::Entity::find()
            .select_only()
            .column_as(event::Column::Position.min(), "position")
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await
            .map_err(SqlError::from)?
            .flatten()
            .unwrap_or(last + 1)
            - 1;
        let (lower, upper) = if self.is_postgres() {
            ("$1", "$2")
        } else {
            ("?", "?")
        };
        while from < last {
            let to = (from + BATCH).min(last);
            self.db
                .execute_raw(sea_orm::Statement::from_sql_and_values(
                    self.db.get_database_backend(),
                    format!(
                        "DELETE FROM events WHERE position > {lower} AND position <= {upper} \
                         AND NOT EXISTS (SELECT 1 FROM stream_snapshots s \
                         WHERE s.stream = events.stream AND s.version = events.version)"
                    ),
                    [from.into(), to.into()],
                ))
                .await
                .map_err(SqlError::from)?;
            from = to;
        }
        log_snapshot::Entity::delete_many()
            .filter(log_snapshot::Column::Position.gt(last))
            .exec(&self.db)
            .await
            .map_err(SqlError::from)?;
        Ok(())
    }

    /// The stream states kept by earlier archives.
    async fn kept_stream_states(
        &self,
    ) -> Result<HashMap<String, (Folded, i64, i64)>, ArchiveError> {
        let rows = stream_snapshot::Entity::find()
            .all(&self.db)
            .await
            .map_err(SqlError::from)?;
        let mut states = HashMap::with_capacity(rows.len());
        for row in rows {
            let state_err = |reason: String| ArchiveError::State {
                stream: row.stream.clone(),
                reason,
            };
            let stream: StreamId =
                row.stream
                    .parse()
                    .map_err(|err: switchboard_domain::ids::UnknownStream| {
                        state_err(err.to_string())
                    })?;
            let folded =
                Folded::from_json(&stream, &row.state).map_err(|err| state_err(err.to_string()))?;
            states.insert(row.stream.clone(), (folded, row.version, row.position));
        }
        Ok(states)
    }

    /// Writes the events `first..=last` to `path`.
    async fn write_file(
        &self,
        path: &Path,
        header: &ArchiveHeader,
        first: i64,
        last: i64,
    ) -> Result<(u64, String), ArchiveError> {
        let file_err = |source| ArchiveError::File {
            path: path.display().to_string(),
            source,
        };
        let mut writer = file::ArchiveWriter::create(path, header).map_err(file_err)?;
        let mut after = first - 1;
        loop {
            let rows = event::Entity::find()
                .filter(event::Column::Position.gt(after))
                .filter(event::Column::Position.lte(last))
                .order_by_asc(event::Column::Position)
                .limit(PAGE)
                .all(&self.db)
                .await
                .map_err(SqlError::from)?;
            let Some(end) = rows.last().map(|row| row.position) else {
                break;
            };
            for row in &rows {
                writer.event(row).map_err(file_err)?;
            }
            after = end;
        }
        writer.finish().map_err(file_err)
    }
}
