//! Pushing jobs of one serde type onto a named queue, on any storage, with an
//! optional idempotency key and a bound on attempts.

use super::JobError;
use super::storage::{BackendKind, JobBackend};
use apalis::prelude::{TaskBuilder, TaskId, TaskSink, TaskSinkError};
use apalis_postgres::PostgresStorage;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Attempts a job gets when the pusher does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// How long Redis keeps an idempotency key by default. Never "forever":
/// apalis-redis 1.0 sends TTL 0 for "no TTL" and its push script then runs
/// `EXPIRE key 0`, which deletes the key at once, so duplicates get through.
pub const DEFAULT_REDIS_KEY_TTL: Duration = Duration::from_secs(24 * 3600);

/// How one job is pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOptions {
    /// Pushing the same key twice on one queue stores one job (as long as
    /// the first job's record lives).
    pub idempotency_key: Option<String>,
    /// Attempts before the job is given up (at least 1).
    pub max_attempts: u32,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            idempotency_key: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

impl PushOptions {
    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the attempts bound (0 counts as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// A new job was stored.
    Queued,
    /// A job with the same idempotency key was already stored; nothing new.
    AlreadyQueued,
}

/// Pushes jobs of type `T` onto one named queue. Cheap to clone.
pub struct JobQueue<T> {
    backend: JobBackend,
    queue: Arc<str>,
    redis_key_ttl: Duration,
    _job: PhantomData<fn(T)>,
}

impl<T> Clone for JobQueue<T> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            queue: self.queue.clone(),
            redis_key_ttl: self.redis_key_ttl,
            _job: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for JobQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("storage", &self.backend.name())
            .field("queue", &self.queue)
            .finish()
    }
}

impl<T> JobQueue<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static,
{
    /// A handle on queue `queue` (e.g. `switchboard.poll`); always name the
    /// queue, apalis would otherwise use the Rust type name.
    pub fn new(backend: &JobBackend, queue: impl Into<String>) -> Self {
        Self {
            backend: backend.clone(),
            queue: Arc::from(queue.into()),
            redis_key_ttl: DEFAULT_REDIS_KEY_TTL,
            _job: PhantomData,
        }
    }

    /// Redis only: how long idempotency keys are kept (default
    /// [`DEFAULT_REDIS_KEY_TTL`], at least one second). The SQL storages keep
    /// a key as long as its job row.
    pub fn with_redis_key_ttl(mut self, ttl: Duration) -> Self {
        self.redis_key_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.queue
    }

    /// The storage this queue is on.
    pub fn backend(&self) -> &JobBackend {
        &self.backend
    }

    /// Pushes one job with default options.
    pub async fn push(&self, job: T) -> Result<PushOutcome, JobError> {
        self.push_with(job, &PushOptions::default()).await
    }

    /// Pushes one job. A duplicate idempotency key is
    /// [`PushOutcome::AlreadyQueued`], not an error, on every storage.
    pub async fn push_with(&self, job: T, options: &PushOptions) -> Result<PushOutcome, JobError> {
        let id = ulid::Ulid::generate().to_string();
        let task_id = TaskId::from_str(&id).map_err(|e| self.push_error(e))?;
        let mut builder = TaskBuilder::new(job)
            .task_id(task_id)
            .max_attempts(options.max_attempts.max(1) as usize);
        if let Some(key) = &options.idempotency_key {
            builder = builder.idempotency_key(key);
        }
        let task = builder.build();
        let queue: &str = &self.queue;
        match &self.backend.kind {
            BackendKind::Sqlite(pool) => {
                let config = apalis_sqlite::Config::default().queue(queue);
                let mut storage = SqliteStorage::<T>::new(pool).with_config(config);
                storage
                    .push_task(task)
                    .await
                    .map_err(|e| self.push_error(e))?;
                let Some(key) = &options.idempotency_key else {
                    return Ok(PushOutcome::Queued);
                };
                // The insert is `ON CONFLICT DO NOTHING`: see whose job holds the key.
                let holder: Option<String> = sea_orm::sqlx::query_scalar(
                    "SELECT id FROM Jobs WHERE job_type = ?1 AND idempotency_key = ?2",
                )
                .bind(queue)
                .bind(key)
                .fetch_optional(pool)
                .await?;
                Ok(outcome(holder.as_deref(), &id))
            }
            BackendKind::Postgres(pool) => {
                let config = apalis_postgres::Config::default().queue(queue);
                let mut storage = PostgresStorage::<T>::new(pool).with_config(config);
                match storage.push_task(task).await {
                    Ok(()) => Ok(PushOutcome::Queued),
                    Err(TaskSinkError::PushError(apalis_postgres::Error::Database(
                        sea_orm::sqlx::Error::Database(db),
                    ))) if db.code().as_deref() == Some("23505") => Ok(PushOutcome::AlreadyQueued),
                    Err(e) => Err(self.push_error(e)),
                }
            }
            BackendKind::Redis(conn) => {
                let config = apalis_redis::Config::default()
                    .queue(queue)
                    .idempotency_ttl(Some(self.redis_key_ttl));
                let key_field = options
                    .idempotency_key
                    .as_ref()
                    .map(|key| format!("{}:{key}", config.idempotency_key_set()));
                let mut storage = RedisStorage::<T>::new(conn.clone()).with_config(config);
                storage
                    .push_task(task)
                    .await
                    .map_err(|e| self.push_error(e))?;
                let Some(field) = key_field else {
                    return Ok(PushOutcome::Queued);
                };
                // The push script claims the key with SETNX(key, task id).
                let mut conn = conn.clone();
                let holder: Option<String> = redis::cmd("GET")
                    .arg(&field)
                    .query_async(&mut conn)
                    .await
                    .map_err(JobError::Redis)?;
                Ok(outcome(holder.as_deref(), &id))
            }
        }
    }

    fn push_error(&self, source: impl std::error::Error + Send + Sync + 'static) -> JobError {
        JobError::Push {
            queue: self.queue.to_string(),
            source: Box::new(source),
        }
    }
}

/// `Queued` when the key's holder is our task (or the key is gone, e.g. an
/// expired Redis key after a fast run: then nobody else holds it either).
fn outcome(holder: Option<&str>, ours: &str) -> PushOutcome {
    match holder {
        Some(id) if id != ours => PushOutcome::AlreadyQueued,
        _ => PushOutcome::Queued,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_bound_attempts() {
        assert_eq!(PushOptions::default().max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert_eq!(PushOptions::default().max_attempts(0).max_attempts, 1);
        let options = PushOptions::default()
            .idempotency_key("poll:1")
            .max_attempts(5);
        assert_eq!(options.idempotency_key.as_deref(), Some("poll:1"));
        assert_eq!(options.max_attempts, 5);
    }

    #[test]
    fn outcome_compares_the_key_holder() {
        assert_eq!(outcome(Some("A"), "A"), PushOutcome::Queued);
        assert_eq!(outcome(Some("B"), "A"), PushOutcome::AlreadyQueued);
        assert_eq!(outcome(None, "A"), PushOutcome::Queued);
    }
}
