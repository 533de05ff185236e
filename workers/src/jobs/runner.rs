//! Running an apalis worker for one queue: a handler called per job, bounded
//! concurrency, retries with backoff inside the job, a timeout per attempt,
//! restarts after storage errors, and a graceful stop.
//!
//! Retries happen here, not in apalis's retry layer or the storage: the
//! storages would otherwise re-run failed jobs on their own (SQL up to the
//! job's `max_attempts` without backoff, Redis up to a hard-coded 25). A job
//! either succeeds (`Done`) or, after its last attempt, ends with an
//! [`AbortError`] (`Killed`), which no storage re-runs.

use super::JobError;
use super::queue::DEFAULT_MAX_ATTEMPTS;
use super::storage::{BackendKind, JobBackend};
use apalis::prelude::{
    AbortError, BackendExt, BoxDynError, PollSnapshot, PollStrategy, Service, Task, WorkerBuilder,
    WorkerBuilderExt, WorkerError,
};
use apalis_postgres::PostgresStorage;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Handles one job. Implemented for every `Fn(T) -> impl Future<Output =
/// anyhow::Result<()>>`; an `Err` (or a panic, or running past the timeout)
/// fails the attempt.
pub trait JobHandler<T>: Send + Sync + 'static {
    /// Runs the job once.
    fn handle(&self, job: T) -> BoxFuture<'static, anyhow::Result<()>>;
}

impl<T, F, Fut> JobHandler<T> for F
where
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    fn handle(&self, job: T) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin((self)(job))
    }
}

/// How a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOptions {
    /// Base of the worker name; the worker registers as
    /// `{name}-{host}-{pid}-{random}` (a new random part after each restart).
    pub name: String,
    /// Jobs run at once (at least 1).
    pub concurrency: usize,
    /// How often the storage is asked for new jobs.
    pub poll_interval: Duration,
    /// Upper bound on attempts, whatever the job asks for (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Time one attempt may take before it counts as failed.
    pub job_timeout: Duration,
    /// Time running jobs get to finish after the stop signal.
    pub shutdown_timeout: Duration,
    /// First wait before restarting a worker that failed (storage errors);
    /// doubled up to 30 s while it keeps failing.
    pub restart_delay: Duration,
}

impl WorkerOptions {
    /// Defaults: 1 job at a time, polled every 150 ms, up to
    /// [`DEFAULT_MAX_ATTEMPTS`] attempts with 200 ms backoff (max 5 s), 60 s
    /// per attempt, 30 s to stop.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            concurrency: 1,
            poll_interval: Duration::from_millis(150),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            job_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            restart_delay: Duration::from_secs(1),
        }
    }

    /// Sets [`WorkerOptions::concurrency`].
    pub fn concurrency(mut self, jobs: usize) -> Self {
        self.concurrency = jobs.max(1);
        self
    }

    /// Sets [`WorkerOptions::poll_interval`].
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets [`WorkerOptions::max_attempts`].
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets [`WorkerOptions::backoff`] and [`WorkerOptions::max_backoff`].
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// Sets [`WorkerOptions::job_timeout`].
    pub fn job_timeout(mut self, timeout: Duration) -> Self {
        self.job_timeout = timeout;
        self
    }

    /// Sets [`WorkerOptions::shutdown_timeout`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Runs a worker for `queue` until `shutdown` completes, then stops taking
/// jobs and gives running ones [`WorkerOptions::shutdown_timeout`] to finish.
/// A worker that fails (e.g. the database is away) is restarted after a
/// growing delay; only a stop that times out is an error.
pub async fn run_worker<T, H, S>(
    backend: &JobBackend,
    queue: &str,
    options: WorkerOptions,
    handler: H,
    shutdown: S,
) -> Result<(), JobError>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static,
    H: JobHandler<T>,
    S: Future<Output = ()> + Send,
{
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let service = JobService {
        inner: Arc::new(ServiceInner {
            handler: Arc::new(handler),
            queue: Arc::from(queue),
            options: options.clone(),
            stopping: stopping_rx,
        }),
    };
    let mut shutdown = pin!(shutdown);
    let mut delay = options.restart_delay;
    loop {
        let name = unique_worker_name(&options.name);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let started = Instant::now();
        let mut run = start_worker(backend, queue, &options, service.clone(), &name, stop_rx);
        tracing::info!(worker = %name, queue, storage = backend.name(), "job worker started");
        tokio::select! {
            result = &mut run => {
                match result {
                    Ok(()) => tracing::warn!(worker = %name, queue, "job worker ended by itself; restarting"),
                    Err(error) => tracing::warn!(worker = %name, queue, %error, "job worker failed; restarting"),
                }
                if started.elapsed() > Duration::from_secs(60) {
                    delay = options.restart_delay;
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = &mut shutdown => return Ok(()),
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            () = &mut shutdown => {
                tracing::info!(worker = %name, queue, "stopping job worker");
                let _ = stopping_tx.send(true);
                let _ = stop_tx.send(());
                return match tokio::time::timeout(options.shutdown_timeout, run).await {
                    Ok(Ok(())) => {
                        tracing::info!(worker = %name, queue, "job worker stopped");
                        Ok(())
                    }
                    Ok(Err(source)) => Err(JobError::Worker { name, source }),
                    Err(_) => Err(JobError::ShutdownTimeout {
                        name,
                        timeout: options.shutdown_timeout,
                    }),
                };
            }
        }
    }
}

/// Builds the apalis worker on the right storage and runs it until `stop`.
fn start_worker<T>(
    backend: &JobBackend,
    queue: &str,
    options: &WorkerOptions,
    service: JobService<T>,
    name: &str,
    stop: oneshot::Receiver<()>,
) -> BoxFuture<'static, Result<(), WorkerError>>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static,
{
    let signal = async move {
        let _ = stop.await;
        Ok::<(), std::io::Error>(())
    };
    macro_rules! run {
        ($storage:expr) => {
            WorkerBuilder::new(name)
                .backend($storage.poll_with_strategy(WakeEvery::new(options.poll_interval)))
                .concurrency(options.concurrency.max(1))
                .build(service)
                .run_until(signal)
                .boxed()
        };
    }
    match &backend.kind {
        BackendKind::Sqlite(pool) => {
            let config = apalis_sqlite::Config::default().queue(queue);
            run!(SqliteStorage::<T>::new(pool).with_config(config))
        }
        BackendKind::Postgres(pool) => {
            let config = apalis_postgres::Config::default().queue(queue);
            run!(PostgresStorage::<T>::new(pool).with_config(config))
        }
        BackendKind::Redis(conn) => {
            let config = apalis_redis::Config::default().queue(queue);
            run!(RedisStorage::<T>::new(conn.clone()).with_config(config))
        }
    }
}

/// Wakes the worker every period so it asks the storage for jobs.
///
/// Replaces apalis's `poll_with_interval`: its `IntervalStrategy` (and
/// `BackoffStrategy`) make a new timer after one fires without polling it, so
/// no waker is registered; when the storage's fetch then completes within the
/// same poll (seen with PostgreSQL), nothing wakes the worker again until the
/// 30 s heartbeat. Here the timer is polled until it is pending, which always
/// leaves a waker behind.
struct WakeEvery {
    interval: tokio::time::Interval,
}

impl WakeEvery {
    fn new(period: Duration) -> Self {
        let period = period.max(Duration::from_millis(1));
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { interval }
    }
}

impl PollStrategy for WakeEvery {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let mut fired = false;
        while self.interval.poll_tick(cx).is_ready() {
            fired = true;
        }
        if fired {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

/// `{base}-{host}-{pid}-{random}`: the worker's id in the storage, unique per
/// process and per (re)start.
pub fn unique_worker_name(base: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!(
        "{base}-{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The apalis service: runs the handler with timeout, retries and backoff.
struct JobService<T> {
    inner: Arc<ServiceInner<T>>,
}

impl<T> Clone for JobService<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct ServiceInner<T> {
    handler: Arc<dyn JobHandler<T>>,
    queue: Arc<str>,
    options: WorkerOptions,
    stopping: watch::Receiver<bool>,
}

impl<T> Service<Task<T>> for JobService<T>
where
    T: Clone + Send + Sync + 'static,
{
    type Response = ();
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<(), BoxDynError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<T>) -> Self::Future {
        let inner = self.inner.clone();
        let (job, ctx) = task.take();
        // Attempts already made by earlier runs of this job (e.g. before a
        // shutdown); apalis counts this run only after `call`.
        let earlier = u32::try_from(ctx.attempt()).unwrap_or(u32::MAX);
        let asked = ctx.max_attempts().map_or(DEFAULT_MAX_ATTEMPTS, |n| {
            u32::try_from(n).unwrap_or(u32::MAX)
        });
        let task_id = ctx.task_id().map(ToString::to_string).unwrap_or_default();
        Box::pin(async move { inner.run(job, earlier, asked, task_id).await })
    }
}

impl<T> ServiceInner<T>
where
    T: Clone + Send + Sync + 'static,
{
    async fn run(
        &self,
        job: T,
        earlier: u32,
        asked: u32,
        task_id: String,
    ) -> Result<(), BoxDynError> {
        let max = asked.min(self.options.max_attempts).max(1);
        let queue: &str = &self.queue;
        let mut attempt = earlier;
        loop {
            attempt += 1;
            let started = Instant::now();
            match self.attempt(job.clone()).await {
                Ok(()) => {
                    tracing::debug!(queue, task_id, attempt, took = ?started.elapsed(), "job done");
                    return Ok(());
                }
                Err(error) if attempt >= max => {
                    tracing::warn!(queue, task_id, attempt, max, error = %format!("{error:#}"), "job failed for the last time; giving up");
                    return Err(Box::new(AbortError::new(error)));
                }
                Err(error) => {
                    let wait = self.options.backoff_after(attempt);
                    tracing::warn!(queue, task_id, attempt, max, error = %format!("{error:#}"), retry_in = ?wait, "job failed; retrying");
                    let mut stopping = self.stopping.clone();
                    if *stopping.borrow() {
                        // Left to the storage, which hands it out again later.
                        return Err(error.into());
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stopping.wait_for(|s| *s) => return Err(error.into()),
                    }
                }
            }
        }
    }

    /// One attempt on its own task (a panic fails the attempt, not the
    /// worker), cut off after the job timeout.
    async fn attempt(&self, job: T) -> anyhow::Result<()> {
        let handle = tokio::spawn(self.handler.handle(job));
        let abort = handle.abort_handle();
        match tokio::time::timeout(self.options.job_timeout, handle).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) if join.is_panic() => Err(anyhow::anyhow!("job handler panicked")),
            Ok(Err(join)) => Err(anyhow::anyhow!("job handler cancelled: {join}")),
            Err(_) => {
                abort.abort();
                Err(anyhow::anyhow!(
                    "job timed out after {:?}",
                    self.options.job_timeout
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let options =
            WorkerOptions::new("t").backoff(Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(options.backoff_after(1), Duration::from_millis(100));
        assert_eq!(options.backoff_after(2), Duration::from_millis(200));
        assert_eq!(options.backoff_after(3), Duration::from_millis(350));
        assert_eq!(options.backoff_after(40), Duration::from_millis(350));
    }

    #[test]
    fn worker_names_are_unique_and_carry_the_pid() {
        let a = unique_worker_name("switchboard-poll");
        let b = unique_worker_name("switchboard-poll");
        assert_ne!(a, b);
        assert!(a.starts_with("switchboard-poll-"), "{a}");
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
    }

    struct CountWakes(std::sync::atomic::AtomicUsize);

    impl futures::task::ArcWake for CountWakes {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Polls `strategy` until it fires, then NOT again, and says whether the
    /// next period still woke the task.
    async fn wakes_again_unpolled(strategy: &mut impl PollStrategy) -> bool {
        let count = Arc::new(CountWakes(Default::default()));
        let waker = futures::task::waker(count.clone());
        let mut cx = Context::from_waker(&waker);
        let snapshot = PollSnapshot::new();
        let until = Instant::now() + Duration::from_secs(1);
        while strategy.poll_drive(&mut cx, &snapshot).is_pending() {
            assert!(Instant::now() < until, "never fired");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let fired_at = count.0.load(std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        count.0.load(std::sync::atomic::Ordering::SeqCst) > fired_at
    }

    #[tokio::test]
    async fn wake_every_keeps_waking_without_being_polled() {
        let mut strategy = WakeEvery::new(Duration::from_millis(20));
        assert!(wakes_again_unpolled(&mut strategy).await);
    }

    /// The apalis 1.0 trap `WakeEvery` works around; when this fails,
    /// apalis fixed it and `poll_with_interval` is usable again.
    #[tokio::test]
    async fn apalis_interval_strategy_loses_its_waker() {
        let mut strategy = apalis::prelude::IntervalStrategy::new(Duration::from_millis(20));
        assert!(!wakes_again_unpolled(&mut strategy).await);
    }

    #[test]
    fn options_are_bounded() {
        let options = WorkerOptions::new("t").concurrency(0).max_attempts(0);
        assert_eq!(options.concurrency, 1);
        assert_eq!(options.max_attempts, 1);
    }
}
