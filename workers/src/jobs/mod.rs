//! The job queue on apalis 1.0: storage on Redis when a Redis URL is
//! configured, else on Switchboard's SQL database (SQLite or PostgreSQL);
//! pushing jobs of any serde type with an idempotency key and an attempts
//! bound; a worker runner with retries, timeouts and a graceful stop; the
//! health poll's tick job with its once-per-tick scheduler; and the
//! recording imports (the spool scanner and the import worker); callback
//! deliveries (the outbox dispatcher and the callback worker).
//!
//! Startup: [`JobStorage::from_store`] → [`JobStorage::connect`] →
//! [`JobBackend::setup`]; then [`JobQueue::new`] per queue, workers with
//! [`run_worker`] / [`run_poll_worker`] and the [`PollScheduler`], each given a
//! shutdown future.

mod callbacks;
mod imports;
mod poll;
mod queue;
mod runner;
mod storage;

pub use callbacks::{
    CallbackJobOptions, DeliverCallback, callback_queue, dispatch_due, spawn_callbacks,
};
pub use imports::{ImportArchive, import_queue, queue_ready, spawn_imports};
pub use poll::{
    POLL_QUEUE, PollScheduler, PollTick, is_stale, next_tick_after, now_ms, poll_worker_options,
    run_poll_worker,
};
pub use queue::{DEFAULT_MAX_ATTEMPTS, DEFAULT_REDIS_KEY_TTL, JobQueue, PushOptions, PushOutcome};
pub use runner::{JobHandler, WorkerOptions, run_worker, unique_worker_name};
pub use storage::{JobBackend, JobStorage, redact_redis_url};

use std::time::Duration;

/// Errors of the job queue.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The SQL database is neither SQLite nor PostgreSQL.
    #[error("job storage needs SQLite or PostgreSQL")]
    UnsupportedDatabase,
    /// Redis did not answer the connect (the target is shown without credentials).
    #[error("cannot connect to Redis at {target}: {source}")]
    RedisConnect {
        /// Host, port and database, without user or password.
        target: String,
        /// The client's error.
        source: redis::RedisError,
    },
    /// A Redis command failed.
    #[error("Redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// A SQL query of our own failed.
    #[error("job storage query: {0}")]
    Sql(#[from] sea_orm::sqlx::Error),
    /// The storage's migrations failed.
    #[error("job storage migrations: {0}")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A job could not be stored.
    #[error("cannot push a job to queue {queue}: {source}")]
    Push {
        /// The queue's name.
        queue: String,
        /// What the storage said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The worker ended with an error while stopping.
    #[error("job worker {name}: {source}")]
    Worker {
        /// The worker's name.
        name: String,
        /// apalis's error.
        source: apalis::prelude::WorkerError,
    },
    /// Running jobs did not finish within the shutdown timeout.
    #[error("job worker {name} did not stop within {timeout:?}")]
    ShutdownTimeout {
        /// The worker's name.
        name: String,
        /// The timeout that ran out.
        timeout: Duration,
    },
}
