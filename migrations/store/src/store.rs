//! The event store: connect, migrate, append, read, replay.

use crate::projection;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use switchboard_app::ports::StreamChange;
use switchboard_app::records::{AppendExtras, AppendOutcome, EventFilter, StoredEvent};
use switchboard_domain::events::{CURRENT_SCHEMA_VERSION, DomainEvent, EventMetadata};
use switchboard_domain::ids::{StreamId, StreamKind};
use switchboard_migrations::Migrator;
use switchboard_migrations::entities::{event, setting};
use thiserror::Error;

/// What went wrong in the SQL store; the ports answer it as
/// [`switchboard_app::StoreError`].
#[derive(Debug, Error)]
pub enum SqlError {
    /// Another writer appended to the stream first (optimistic concurrency).
    #[error("stream `{stream}` changed concurrently: expected version {expected}")]
    Conflict {
        /// The stream.
        stream: String,
        /// The version the writer expected.
        expected: i64,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// Listening for other instances' changes failed.
    #[error("cannot listen for changes: {0}")]
    Listen(String),
    /// A stored payload could not be read.
    #[error("event at position {position} could not be read: {reason}")]
    Corrupt {
        /// Its position.
        position: i64,
        /// Why.
        reason: String,
    },
}

/// How far apart the clocks of instances appending to one log may be: the
/// event queries' time bounds reach this far past the range asked.
const CLOCK_MARGIN_SECS: i64 = 60;

/// Connections to PostgreSQL.
const POSTGRES_CONNECTIONS: u32 = 16;

/// Connections to an SQLite file. It takes one writer at a time, and each
/// connection keeps its own page cache on its own thread inside this
/// process: more cost memory without adding throughput. With 8, the load
/// tool's run at 10,000 meetings peaked at 172 MB; with 4, at 134 MB, with
/// creates, joins and getMeetingInfo within the run-to-run noise (issue 22).
const SQLITE_CONNECTIONS: u32 = 4;

/// Each SQLite connection's page cache, KiB (SQLite's default is 2,000).
/// The file's pages stay in the operating system's cache, outside the
/// process; the connections' own caches held about 10 MB of a 75 MB heap
/// peak at 10,000 meetings (heaptrack, issue 22).
pub const SQLITE_CACHE_KIB: u32 = 512;

/// How long a pooled connection may have been idle and still be handed out
/// without a ping first.
const IDLE_BEFORE_TEST: std::time::Duration = std::time::Duration::from_secs(1);

/// Counter of the SQL statements the store ran (without BEGIN and COMMIT).
pub const METRIC_STATEMENTS: &str = "switchboard_db_statements_total";

/// The database behind Switchboard: log and projections.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    /// SQLite: the database file (its maintenance lock file sits beside it).
    pub(crate) sqlite_file: Option<std::path::PathBuf>,
    /// Announces committed changes to other instances (PostgreSQL).
    announcer: std::sync::Arc<crate::announce::Announcer>,
}

impl Store {
    /// Connects to `sqlite://PATH?mode=rwc` or `postgres://...` (to a
    /// PostgreSQL on this machine without TLS unless the URL names an
    /// `sslmode`: [`crate::connect_url`]).
    pub async fn connect(url: &str) -> Result<Self, SqlError> {
        let mut options = ConnectOptions::new(crate::connect_url::without_loopback_tls(url));
        let sqlite = url.starts_with("sqlite:");
        options
            .sqlx_logging(false)
            .max_connections(if sqlite {
                SQLITE_CONNECTIONS
            } else {
                POSTGRES_CONNECTIONS
            })
            // Every SQLite connection of the pool gets these, not only the
            // first one (a PRAGMA run once reaches one connection).
            .map_sqlx_sqlite_opts(|sqlite| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(std::time::Duration::from_secs(10))
                    .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
            })
            // sqlx pings a pooled connection (a round trip) each time it is
            // handed out, on top of the ping when it is given back: a second
            // round trip per statement outside a transaction. A connection
            // given back healthy within the last second is handed out
            // untested; one idle for longer is still tested first. After a
            // database restart, a connection given back in its last second
            // fails its next statement once (and is then dropped).
            .test_before_acquire_if_idle_for(IDLE_BEFORE_TEST)
            // A PostgreSQL connection's buffers grow to the largest message
            // it sent or read (a sample carries a listing of about 1 MB
            // with 1,000 meetings) and stay that size while it idles in the
            // pool: given back, each is cut to its usual size again.
            .map_sqlx_postgres_pool_opts(|pool| {
                pool.after_release(|connection, _| {
                    Box::pin(async move {
                        sea_orm::sqlx::Connection::shrink_buffers(connection);
                        Ok(true)
                    })
                })
            });
        let mut db = Database::connect(options).await?;
        // Every statement counted (BEGIN and COMMIT are not statements
        // here): the SQL work of a call is read off /metrics.
        // With `SWITCHBOARD_LOG=switchboard_store::sql=trace` each one is
        // logged with its time (the text only: values are never logged).
        db.set_metric_callback(|info| {
            metrics::counter!(METRIC_STATEMENTS).increment(1);
            tracing::trace!(
                target: "switchboard_store::sql",
                micros = info.elapsed.as_micros() as u64,
                failed = info.failed,
                "{}",
                info.statement.sql
            );
        });
        let sqlite_file = url
            .strip_prefix("sqlite://")
            .map(|rest| rest.split('?').next().unwrap_or(rest))
            .filter(|path| !path.is_empty() && !path.contains(":memory:"))
            .map(std::path::PathBuf::from);
        Ok(Self {
            db,
            sqlite_file,
            announcer: Default::default(),
        })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), SqlError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// The underlying connection (for adapters such as job storages).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Whether this is PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// Runs `SELECT 1` as a prepared statement: one round trip with nothing
    /// to read, the baseline benchmarks compare their queries against.
    pub async fn select_one(&self) -> Result<(), SqlError> {
        let backend = self.db.get_database_backend();
        self.db
            .query_one_raw(sea_orm::Statement::from_string(backend, "SELECT 1"))
            .await?;
        Ok(())
    }

    /// Refreshes the planner statistics of the recordings tables (on
    /// PostgreSQL with `VACUUM (ANALYZE)`, which also marks pages all-visible
    /// for index-only scans), as autovacuum does in a running deployment;
    /// for benchmarks on freshly seeded data.
    pub async fn analyze_recordings(&self) -> Result<(), SqlError> {
        let sql = if self.is_postgres() {
            "VACUUM (ANALYZE) recordings, recording_meta, recording_counts, recording_buckets"
        } else {
            "ANALYZE"
        };
        self.db.execute_unprepared(sql).await?;
        Ok(())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), SqlError> {
        self.db.ping().await?;
        Ok(())
    }

    /// Appends events to a stream whose current version must be `expected`,
    /// updating the projections and writing `extras` in the same
    /// transaction. Only the extras are written when `events` is empty.
    pub(crate) async fn append_sql(
        &self,
        stream: &StreamId,
        expected: i64,
        events: &[DomainEvent],
        metadata: &EventMetadata,
        extras: AppendExtras<'_>,
    ) -> Result<AppendOutcome, SqlError> {
        if events.is_empty() {
            if let Some(listing) = extras.listing {
                crate::listing_rows::put_meeting_listing_on(&self.db, listing).await?;
            }
            crate::outbox::insert_callbacks(&self.db, extras.callbacks).await?;
            return Ok(AppendOutcome {
                version: expected,
                position: 0,
            });
        }
        let metadata_json = serde_json::to_string(metadata).map_err(|err| SqlError::Corrupt {
            position: 0,
            reason: format!("event metadata cannot be written: {err}"),
        })?;
        if let Some(outcome) = self
            .append_in_one_statement(stream, expected, events, &metadata_json, metadata, &extras)
            .await?
        {
            return Ok(outcome);
        }
        let stream_text = stream.to_string();
        let txn = self.db.begin().await?;
        let mut version = expected;
        let mut position = 0;
        let now = chrono::Utc::now();
        let mut counts = projection::CountChanges::default();
        for domain_event in events {
            version += 1;
            let row = event::ActiveModel {
                stream: Set(stream_text.clone()),
                version: Set(version),
                event_type: Set(domain_event.type_name().to_owned()),
                schema_version: Set(CURRENT_SCHEMA_VERSION),
                payload: Set(domain_event
                    .to_payload()
                    .map_err(|err| SqlError::Corrupt {
                        position: 0,
                        reason: format!("{} cannot be written: {err}", domain_event.type_name()),
                    })?
                    .to_string()),
                metadata: Set(metadata_json.clone()),
                recorded_at: Set(now),
                actor: Set(Some(metadata.actor.clone())),
                ..Default::default()
            };
            let inserted = event::Entity::insert(row).exec(&txn).await;
            position = match inserted {
                Ok(result) => result.last_insert_id,
                Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    return Err(SqlError::Conflict {
                        stream: stream_text,
                        expected,
                    });
                }
                Err(err) => return Err(err.into()),
            };
            projection::apply(
                &txn,
                stream,
                domain_event,
                version,
                position,
                now,
                &mut counts,
            )
            .await?;
        }
        if let Some(listing) = extras.listing {
            crate::listing_rows::put_meeting_listing_on(&txn, listing).await?;
        }
        crate::outbox::insert_callbacks(&txn, extras.callbacks).await?;
        // Last, so the shared counter rows stay locked only until the commit.
        counts.write(&txn).await?;
        match txn.commit().await {
            Ok(()) => {
                self.announce(crate::announce::Change::Events).await;
                Ok(AppendOutcome { version, position })
            }
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(SqlError::Conflict {
                    stream: stream_text,
                    expected,
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Tells other instances that `what` changed (PostgreSQL NOTIFY; nothing
    /// on SQLite, which one process owns). Called after the change
    /// committed: a failure is logged, never the change's failure, and
    /// listeners refresh periodically anyway.
    pub(crate) async fn announce(&self, what: crate::announce::Change) {
        if !self.is_postgres() {
            return;
        }
        if let Err(err) = self.announcer.announce(&self.db, what).await {
            tracing::warn!(error = %err, change = ?what, "could not announce a committed change");
        }
    }

    /// The highest position in the log (0 when empty).
    pub(crate) async fn last_position_sql(&self) -> Result<i64, SqlError> {
        last_position_on(&self.db).await
    }

    /// The positions of the events in `(after, upto]`, oldest first.
    pub(crate) async fn positions_between_sql(
        &self,
        after: i64,
        upto: i64,
    ) -> Result<Vec<i64>, SqlError> {
        Ok(event::Entity::find()
            .select_only()
            .column(event::Column::Position)
            .filter(event::Column::Position.gt(after))
            .filter(event::Column::Position.lte(upto))
            .order_by_asc(event::Column::Position)
            .into_tuple::<i64>()
            .all(&self.db)
            .await?)
    }

    /// Number of events in the log.
    pub async fn event_count(&self) -> Result<u64, SqlError> {
        Ok(event::Entity::find().count(&self.db).await?)
    }

    /// Events after `position`, oldest first, at most `limit`.
    pub(crate) async fn events_after_sql(
        &self,
        position: i64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, SqlError> {
        let rows = event::Entity::find()
            .filter(event::Column::Position.gt(position))
            .order_by_asc(event::Column::Position)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// Every event of one stream, oldest first.
    pub(crate) async fn stream_events_sql(
        &self,
        stream: &StreamId,
    ) -> Result<Vec<StoredEvent>, SqlError> {
        let rows = event::Entity::find()
            .filter(event::Column::Stream.eq(stream.to_string()))
            .order_by_asc(event::Column::Version)
            .all(&self.db)
            .await?;
        rows.into_iter().map(decode).collect()
    }

    /// Events matching a filter after `filter.after`, oldest first (or
    /// newest first).
    pub(crate) async fn query_events_sql(
        &self,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent>, SqlError> {
        let mut query = event::Entity::find()
            .filter(event::Column::Position.gt(filter.after))
            .limit(filter.limit);
        query = if filter.newest_first {
            query.order_by_desc(event::Column::Position)
        } else {
            query.order_by_asc(event::Column::Position)
        };
        if let Some(stream) = &filter.stream {
            query = query.filter(event::Column::Stream.eq(stream.to_string()));
        }
        if let Some(event_type) = &filter.event_type {
            query = query.filter(event::Column::EventType.eq(event_type.as_str()));
        }
        if let Some(actor) = &filter.actor {
            query = query.filter(event::Column::Actor.eq(actor.as_str()));
        }
        // Times are filtered as asked; the positions are bounded too, by
        // the events recorded well outside the range (found through the
        // time index), so a range that matches little is not scanned to the
        // log's end or from its start. The margin covers clocks of
        // instances that disagree.
        let margin = chrono::Duration::seconds(CLOCK_MARGIN_SECS);
        // sea-query's custom expressions take `$1` on PostgreSQL, `?` on SQLite.
        let bound = if self.is_postgres() { "$1" } else { "?" };
        if let Some(from) = filter.from {
            query = query.filter(event::Column::RecordedAt.gte(from)).filter(
                Expr::cust_with_values(
                    format!(
                        "\"events\".\"position\" > COALESCE((SELECT e.\"position\" FROM events e \
                         WHERE e.recorded_at < {bound} ORDER BY e.recorded_at DESC LIMIT 1), 0)"
                    ),
                    [from - margin],
                ),
            );
        }
        if let Some(to) = filter.to {
            query = query
                .filter(event::Column::RecordedAt.lte(to))
                .filter(Expr::cust_with_values(
                    format!(
                        "\"events\".\"position\" < COALESCE((SELECT e.\"position\" FROM events e \
                         WHERE e.recorded_at > {bound} ORDER BY e.recorded_at LIMIT 1), \
                         9223372036854775807)"
                    ),
                    [to + margin],
                ));
        }
        let rows = query.all(&self.db).await?;
        rows.into_iter().map(decode).collect()
    }

    /// Streams of one kind with events after `position`, each with its
    /// newest version (for cache invalidation).
    pub(crate) async fn streams_changed_after_sql(
        &self,
        position: i64,
        kind: StreamKind,
    ) -> Result<Vec<StreamChange>, SqlError> {
        let streams = event::Entity::find()
            .select_only()
            .column(event::Column::Stream)
            .column_as(event::Column::Version.max(), "version")
            .filter(event::Column::Position.gt(position))
            .filter(event::Column::Stream.starts_with(format!("{}:", kind.prefix())))
            .group_by(event::Column::Stream)
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await?;
        Ok(streams
            .into_iter()
            .filter_map(|(stream, version)| {
                Some(StreamChange {
                    stream: stream.parse().ok()?,
                    version,
                })
            })
            .collect())
    }

    /// A stored setting.
    pub(crate) async fn setting_sql(&self, key: &str) -> Result<Option<String>, SqlError> {
        Ok(setting::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
            .map(|row| row.value))
    }

    /// Stores a setting, replacing an earlier value.
    pub(crate) async fn put_setting_sql(&self, key: &str, value: &str) -> Result<(), SqlError> {
        let row = setting::ActiveModel {
            key: Set(key.to_owned()),
            value: Set(value.to_owned()),
        };
        setting::Entity::insert(row)
            .on_conflict(
                OnConflict::column(setting::Column::Key)
                    .update_column(setting::Column::Value)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Stores a setting unless it exists; returns the value that is stored now.
    pub(crate) async fn setting_or_insert_sql(
        &self,
        key: &str,
        value: &str,
    ) -> Result<String, SqlError> {
        let row = setting::ActiveModel {
            key: Set(key.to_owned()),
            value: Set(value.to_owned()),
        };
        setting::Entity::insert(row)
            .on_conflict(
                OnConflict::column(setting::Column::Key)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(self
            .setting_sql(key)
            .await?
            .unwrap_or_else(|| value.to_owned()))
    }
}

/// The highest position in the log as `db` sees it.
pub(crate) async fn last_position_on<C: sea_orm::ConnectionTrait>(db: &C) -> Result<i64, SqlError> {
    let last = event::Entity::find()
        .select_only()
        .column_as(event::Column::Position.max(), "max")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?;
    Ok(last.flatten().unwrap_or(0))
}

/// Reads a log row into a domain event.
pub(crate) fn decode(row: event::Model) -> Result<StoredEvent, SqlError> {
    let corrupt = |reason: String| SqlError::Corrupt {
        position: row.position,
        reason,
    };
    let stream: StreamId = row
        .stream
        .parse()
        .map_err(|err: switchboard_domain::ids::UnknownStream| corrupt(err.to_string()))?;
    let payload: serde_json::Value =
        serde_json::from_str(&row.payload).map_err(|err| corrupt(err.to_string()))?;
    let event =
        DomainEvent::from_stored(stream.kind(), &row.event_type, row.schema_version, payload)
            .map_err(|err| corrupt(err.to_string()))?;
    let metadata = serde_json::from_str(&row.metadata).unwrap_or_default();
    Ok(StoredEvent {
        position: row.position,
        stream,
        version: row.version,
        event,
        metadata,
        recorded_at: row.recorded_at,
    })
}
