//! The health poll as a job: a scheduler pushes one [`PollTick`] per
//! wall-clock-aligned interval with the idempotency key `poll:{tick_ms}`, so
//! any number of processes running it queue ONE job per tick; the poll worker
//! skips ticks that are older than an interval (left over from downtime).

use super::JobError;
use super::queue::{JobQueue, PushOptions, PushOutcome};
use super::runner::{JobHandler, WorkerOptions, run_worker};
use super::storage::JobBackend;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The queue poll ticks go to.
pub const POLL_QUEUE: &str = "switchboard.poll";

/// "Poll all servers now": the tick's wall-clock time in Unix milliseconds,
/// a multiple of the poll interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollTick {
    /// Unix time of the tick, in milliseconds.
    pub tick_ms: i64,
}

impl PollTick {
    /// `poll:{tick_ms}`: the same for every process that schedules the tick.
    pub fn idempotency_key(&self) -> String {
        format!("poll:{}", self.tick_ms)
    }
}

/// Unix time now, in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn interval_ms(interval: Duration) -> i64 {
    i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// The first tick (multiple of `interval`) strictly after `now_ms`.
pub fn next_tick_after(now_ms: i64, interval: Duration) -> i64 {
    let step = interval_ms(interval);
    (now_ms.div_euclid(step) + 1) * step
}

/// Whether a tick is too old to be worth running: more than one interval
/// has passed since it (a newer tick exists or is about to).
pub fn is_stale(tick_ms: i64, now_ms: i64, interval: Duration) -> bool {
    now_ms - tick_ms > interval_ms(interval)
}

/// Pushes one [`PollTick`] per interval, at wall-clock multiples of it.
#[derive(Debug, Clone)]
pub struct PollScheduler {
    queue: JobQueue<PollTick>,
    interval: Duration,
    max_attempts: u32,
}

impl PollScheduler {
    /// Ticks every `interval` (at least 1 ms) onto `queue`; each tick job
    /// gets 2 attempts (the stale rule ends retries once the next tick is due).
    pub fn new(queue: JobQueue<PollTick>, interval: Duration) -> Self {
        Self {
            queue,
            interval: interval.max(Duration::from_millis(1)),
            max_attempts: 2,
        }
    }

    /// Sets the attempts per tick job.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Pushes the tick at `tick_ms`; another process's push of the same tick
    /// makes this one [`PushOutcome::AlreadyQueued`].
    pub async fn push_tick(&self, tick_ms: i64) -> Result<PushOutcome, JobError> {
        let tick = PollTick { tick_ms };
        let options = PushOptions::default()
            .idempotency_key(tick.idempotency_key())
            .max_attempts(self.max_attempts);
        self.queue.push_with(tick, &options).await
    }

    /// Pushes a tick at every interval boundary until `shutdown` completes.
    /// Push errors are logged and the next tick is tried.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = pin!(shutdown);
        tracing::info!(queue = self.queue.name(), interval = ?self.interval, "poll scheduler started");
        loop {
            let now = now_ms();
            let tick_ms = next_tick_after(now, self.interval);
            let wait = Duration::from_millis(u64::try_from(tick_ms - now).unwrap_or(0));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => break,
            }
            match self.push_tick(tick_ms).await {
                Ok(PushOutcome::Queued) => tracing::debug!(tick_ms, "poll tick queued"),
                Ok(PushOutcome::AlreadyQueued) => {
                    tracing::debug!(tick_ms, "poll tick already queued by another process");
                }
                Err(error) => tracing::warn!(tick_ms, %error, "cannot queue poll tick"),
            }
        }
        tracing::info!(queue = self.queue.name(), "poll scheduler stopped");
    }
}

/// Worker options for the poll job: one tick at a time, short backoff, and
/// an attempt may take [`POLL_JOB_TIMEOUT`] (or ten intervals, if longer):
/// the first cycle of a large pool records every server coming online, and
/// cutting it short would only make the next tick start over. Ticks that
/// wait meanwhile go stale and are skipped.
pub fn poll_worker_options(interval: Duration) -> WorkerOptions {
    WorkerOptions::new("switchboard-poll")
        .concurrency(1)
        .job_timeout(POLL_JOB_TIMEOUT.max(interval.saturating_mul(10)))
        .backoff(Duration::from_millis(200), Duration::from_secs(2))
}

/// The least time one poll cycle may take before it is cut short.
pub const POLL_JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the poll worker: like [`run_worker`], but ticks older than one
/// `interval` are skipped (counted as done) instead of handled.
pub async fn run_poll_worker<H, S>(
    backend: &JobBackend,
    queue: &str,
    interval: Duration,
    options: WorkerOptions,
    handler: H,
    shutdown: S,
) -> Result<(), JobError>
where
    H: JobHandler<PollTick>,
    S: Future<Output = ()> + Send,
{
    let handler = Arc::new(handler);
    let fresh_only = move |tick: PollTick| {
        let handler = handler.clone();
        async move {
            let now = now_ms();
            if is_stale(tick.tick_ms, now, interval) {
                tracing::info!(
                    tick_ms = tick.tick_ms,
                    late_ms = now - tick.tick_ms,
                    "skipping stale poll tick"
                );
                return Ok(());
            }
            handler.handle(tick).await
        }
    };
    run_worker(backend, queue, options, fresh_only, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_align_to_wall_clock_multiples() {
        let ten = Duration::from_secs(10);
        assert_eq!(next_tick_after(0, ten), 10_000);
        assert_eq!(next_tick_after(9_999, ten), 10_000);
        assert_eq!(next_tick_after(10_000, ten), 20_000);
        assert_eq!(next_tick_after(1_700_000_003_456, ten), 1_700_000_010_000);
        // Two processes a few ms apart pick the same tick.
        assert_eq!(
            next_tick_after(1_700_000_001_000, ten),
            next_tick_after(1_700_000_009_990, ten)
        );
    }

    #[test]
    fn key_names_the_tick() {
        assert_eq!(PollTick { tick_ms: 42 }.idempotency_key(), "poll:42");
    }

    #[test]
    fn ticks_older_than_an_interval_are_stale() {
        let ten = Duration::from_secs(10);
        assert!(!is_stale(100_000, 100_000, ten));
        assert!(!is_stale(100_000, 110_000, ten));
        assert!(is_stale(100_000, 110_001, ten));
        assert!(is_stale(100_000, 200_000, ten));
    }

    #[test]
    fn poll_jobs_run_one_at_a_time() {
        let options = poll_worker_options(Duration::from_secs(10));
        assert_eq!(options.concurrency, 1);
        assert_eq!(
            options.job_timeout, POLL_JOB_TIMEOUT,
            "a slow cycle is not cut at one interval"
        );
        let slow = poll_worker_options(Duration::from_secs(60));
        assert_eq!(slow.job_timeout, Duration::from_secs(600));
    }
}
