//! Where jobs live: Redis when a Redis URL is configured, else the SQL
//! database Switchboard already uses (SQLite or PostgreSQL, on sea-orm's own
//! sqlx pool).

use super::JobError;
use apalis_postgres::PostgresStorage;
use apalis_redis::ConnectionManager;
use apalis_sqlite::SqliteStorage;
use sea_orm::sqlx::{PgPool, SqlitePool};
use sea_orm::{DatabaseConnection, DbBackend};
use std::fmt;
use switchboard_store::Store;

/// The configured job storage, before connecting.
#[derive(Clone)]
pub enum JobStorage {
    /// Redis (scale-out); the URL may carry a password and is never logged.
    Redis {
        /// `redis://[user:password@]host:port[/db]`.
        url: String,
    },
    /// The SQL database of the [`Store`]: SQLite or PostgreSQL.
    Sql(DatabaseConnection),
}

impl JobStorage {
    /// Redis when `redis_url` is set, else the store's own database.
    pub fn from_store(store: &Store, redis_url: Option<&str>) -> Self {
        match redis_url {
            Some(url) if !url.trim().is_empty() => Self::Redis {
                url: url.trim().to_owned(),
            },
            _ => Self::Sql(store.connection().clone()),
        }
    }

    /// Safe to log: `redis://host:port/db` without credentials, `sqlite` or
    /// `postgres`.
    pub fn describe(&self) -> String {
        match self {
            Self::Redis { url } => redact_redis_url(url),
            Self::Sql(db) => match db.get_database_backend() {
                DbBackend::Postgres => "postgres".to_owned(),
                DbBackend::Sqlite => "sqlite".to_owned(),
                other => format!("{other:?}").to_lowercase(),
            },
        }
    }

    /// Connects (Redis) or takes the pool out of the sea-orm connection (SQL).
    /// Run [`JobBackend::setup`] once at startup before pushing or working.
    pub async fn connect(&self) -> Result<JobBackend, JobError> {
        let kind = match self {
            Self::Redis { url } => {
                let conn = apalis_redis::connect(url.as_str())
                    .await
                    .map_err(|source| JobError::RedisConnect {
                        target: redact_redis_url(url),
                        source,
                    })?;
                BackendKind::Redis(conn)
            }
            Self::Sql(db) => match db.get_database_backend() {
                DbBackend::Sqlite => BackendKind::Sqlite(db.get_sqlite_connection_pool().clone()),
                DbBackend::Postgres => {
                    BackendKind::Postgres(db.get_postgres_connection_pool().clone())
                }
                _ => return Err(JobError::UnsupportedDatabase),
            },
        };
        Ok(JobBackend { kind })
    }
}

impl fmt::Debug for JobStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JobStorage").field(&self.describe()).finish()
    }
}

/// A connected job storage; cheap to clone (pools and a multiplexed Redis
/// connection inside).
#[derive(Clone)]
pub struct JobBackend {
    pub(crate) kind: BackendKind,
}

#[derive(Clone)]
pub(crate) enum BackendKind {
    Redis(ConnectionManager),
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl JobBackend {
    /// `redis`, `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            BackendKind::Redis(_) => "redis",
            BackendKind::Sqlite(_) => "sqlite",
            BackendKind::Postgres(_) => "postgres",
        }
    }

    /// Runs the storage's migrations (idempotent). SQLite: only apalis's
    /// migrations, not `SqliteStorage::setup`, which would change the
    /// connection's PRAGMAs (`synchronous=OFF`). PostgreSQL: `setup` (schema
    /// `apalis`, needs the `pgcrypto` and `hstore` extensions). Redis: a PING.
    pub async fn setup(&self) -> Result<(), JobError> {
        match &self.kind {
            BackendKind::Redis(conn) => {
                let mut conn = conn.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .map_err(JobError::Redis)?;
            }
            BackendKind::Sqlite(pool) => {
                let mut migrator = SqliteStorage::migrations();
                // Tolerate versions from another sqlx migrator in the same file.
                migrator.set_ignore_missing(true);
                migrator
                    .run(pool)
                    .await
                    .map_err(|e| JobError::Migrate(Box::new(e)))?;
            }
            BackendKind::Postgres(pool) => PostgresStorage::setup(pool)
                .await
                .map_err(|e| JobError::Migrate(Box::new(e)))?,
        }
        tracing::debug!(storage = self.name(), "job storage ready");
        Ok(())
    }
}

impl fmt::Debug for JobBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JobBackend").field(&self.name()).finish()
    }
}

/// `redis://host:port/db` without user and password; never the raw URL.
pub fn redact_redis_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("");
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let path = match parsed.path() {
                "" | "/" => String::new(),
                p => p.to_owned(),
            };
            format!("{}://{host}{port}{path}", parsed.scheme())
        }
        Err(_) => "redis://<unparseable>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_url_loses_credentials() {
        assert_eq!(
            redact_redis_url("redis://user:s3cret@cache.internal:6380/2"),
            "redis://cache.internal:6380/2"
        );
        assert_eq!(redact_redis_url("rediss://:s3cret@cache"), "rediss://cache");
        assert_eq!(
            redact_redis_url("not a url s3cret"),
            "redis://<unparseable>"
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let storage = JobStorage::Redis {
            url: "redis://:hunter2@127.0.0.1:6379".to_owned(),
        };
        let shown = format!("{storage:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1:6379"), "{shown}");
    }
}
