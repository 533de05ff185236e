//! Health polling as apalis jobs: a scheduler pushes one `PollTick` per
//! interval (deduplicated across processes by an idempotency key) and a
//! worker runs a poll cycle for each. Jobs live in Redis when
//! `SWITCHBOARD_REDIS_URL` is set, else in the SQL database.
//!
//! Health streaks live in the shared samples, so whichever process takes a
//! tick continues where the last one left off.

use crate::config::Settings;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use switchboard_app::health::HealthPoller;
use switchboard_workers::jobs::{
    JobBackend, JobQueue, JobStorage, PollScheduler, PollTick, poll_worker_options, run_poll_worker,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A future that completes once `stop` says so.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// How long preparing the job storage is retried before the process gives
/// up: a database or Redis that blinks while Switchboard starts (a restart,
/// a failover) does not stop it; one that is wrongly named still does.
const JOB_STORAGE_PATIENCE: Duration = Duration::from_secs(60);

/// Connects to the job storage the settings name (Redis, else the SQL
/// database) and prepares it, retrying for up to [`JOB_STORAGE_PATIENCE`].
pub async fn connect_jobs(
    store: &switchboard_store::Store,
    settings: &Settings,
) -> anyhow::Result<JobBackend> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        match try_connect_jobs(store, settings).await {
            Ok(backend) => return Ok(backend),
            Err(err) if started.elapsed() + pause < JOB_STORAGE_PATIENCE => {
                tracing::warn!(error = format!("{err:#}"), retry_in = ?pause, "job storage not ready; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(8));
            }
            Err(err) => return Err(err),
        }
    }
}

async fn try_connect_jobs(
    store: &switchboard_store::Store,
    settings: &Settings,
) -> anyhow::Result<JobBackend> {
    let storage = JobStorage::from_store(store, settings.redis_url.as_deref());
    let described = storage.describe();
    let backend = storage
        .connect()
        .await
        .with_context(|| format!("cannot reach the job storage ({described})"))?;
    backend
        .setup()
        .await
        .with_context(|| format!("cannot prepare the job storage ({described})"))?;
    tracing::info!(storage = %described, "job storage ready");
    Ok(backend)
}

/// Starts the poll scheduler and a worker running `poller` for each tick;
/// they end when `stop` turns true.
pub fn spawn(
    poller: HealthPoller,
    store: &switchboard_store::Store,
    settings: &Settings,
    backend: &JobBackend,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let interval = Duration::from_secs_f64(settings.health.interval_secs);
    let queue_name = format!("{}.poll", settings.job_namespace);
    tracing::info!(queue = %queue_name, ?interval, "health polling as jobs");
    let scheduler = PollScheduler::new(
        JobQueue::<PollTick>::new(backend, queue_name.clone()),
        interval,
    );
    let poller = Arc::new(tokio::sync::Mutex::new(poller));
    let handler = move |_tick: PollTick| {
        let poller = poller.clone();
        async move {
            poller.lock().await.run_cycle().await?;
            Ok(())
        }
    };
    let scheduled = tokio::spawn(scheduler.run(stopped(stop.clone())));
    let backend = backend.clone();
    let worker = tokio::spawn(async move {
        let options = poll_worker_options(interval);
        if let Err(err) = run_poll_worker(
            &backend,
            &queue_name,
            interval,
            options,
            handler,
            stopped(stop),
        )
        .await
        {
            tracing::error!(error = %err, "the poll worker stopped");
        }
    });
    let mut tasks = vec![scheduled, worker];
    if settings.redis_url.is_none() {
        tasks.push(spawn_job_pruning(store.clone()));
    }
    tasks
}

/// Finished jobs are kept this long in the SQL job tables, then deleted.
pub const FINISHED_JOBS_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

fn spawn_job_pruning(store: switchboard_store::Store) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(3600));
        loop {
            ticker.tick().await;
            match store.prune_finished_jobs(FINISHED_JOBS_KEPT).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "finished jobs deleted"),
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), "cannot delete finished jobs")
                }
            }
        }
    })
}
