//! Callback deliveries as apalis jobs: a dispatcher claims the outbox's due
//! deliveries (a conditional update, so instances never claim one attempt
//! twice) and queues one `DeliverCallback` job per attempt; the callback
//! worker runs the application's delivery use case for each. The outbox row
//! is the delivery's truth (attempts, next attempt, outcome): a job lost with
//! a crashed process is claimed again when its lease ends, and a stale job
//! (its attempt superseded) sends nothing. Beside them, while front-ends
//! have webhooks, a task keeps Switchboard's own hook on every server.

use super::{JobBackend, JobQueue, PushOptions, WorkerOptions, run_worker};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use switchboard_app::callbacks::CallbackService;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often servers are checked for Switchboard's webhook (a server is
/// listed again only every few minutes, or when it comes back).
const SERVER_HOOKS_INTERVAL: Duration = Duration::from_secs(1);

/// How often finished deliveries are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// How long delivered, failed and dropped deliveries stay listed.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Deliveries claimed per look at the outbox.
const CLAIM_BATCH: u64 = 64;

/// One attempt of one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverCallback {
    /// The delivery's id in the outbox.
    pub id: String,
    /// The attempt number claimed.
    pub attempt: u32,
}

impl DeliverCallback {
    /// One job per attempt, however often it is pushed.
    pub fn idempotency_key(&self) -> String {
        format!("callback:{}:{}", self.id, self.attempt)
    }
}

/// How the callback jobs run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallbackJobOptions {
    /// How often the outbox is looked at for due deliveries.
    pub poll_interval: Duration,
    /// Deliveries attempted at once by this process.
    pub concurrency: usize,
}

impl Default for CallbackJobOptions {
    /// Every 250 ms, 16 at once.
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            concurrency: 16,
        }
    }
}

/// The queue of callback jobs.
pub fn callback_queue(namespace: &str) -> String {
    format!("{namespace}.callbacks")
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Claims up to `limit` due deliveries and queues their jobs; returns how
/// many.
pub async fn dispatch_due(
    service: &CallbackService,
    queue: &JobQueue<DeliverCallback>,
    limit: u64,
) -> usize {
    let claimed = match service.claim_due(limit).await {
        Ok(claimed) => claimed,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the callback outbox");
            return 0;
        }
    };
    let count = claimed.len();
    for (id, attempt) in claimed {
        let job = DeliverCallback { id, attempt };
        let options = PushOptions::default()
            .idempotency_key(job.idempotency_key())
            .max_attempts(1);
        if let Err(err) = queue.push_with(job.clone(), &options).await {
            // Claimed but not queued: due again when the lease ends.
            tracing::warn!(id = %job.id, error = %err, "cannot queue a callback delivery");
        }
    }
    count
}

/// Starts the dispatcher and the callback worker; they end when `stop`
/// turns true.
pub fn spawn_callbacks(
    service: Arc<CallbackService>,
    backend: &JobBackend,
    namespace: &str,
    options: CallbackJobOptions,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let queue_name = callback_queue(namespace);
    let queue = JobQueue::<DeliverCallback>::new(backend, queue_name.clone());
    let dispatcher = {
        let service = service.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            // No more claimed per look than the worker runs at once, so a
            // claim does not run out while its job waits in the queue.
            let batch = CLAIM_BATCH.min(options.concurrency.max(1) as u64);
            loop {
                dispatch_due(&service, &queue, batch).await;
                tokio::select! {
                    () = tokio::time::sleep(options.poll_interval) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
        })
    };
    // While front-ends have hooks, every server gets Switchboard's own; and
    // finished deliveries are forgotten after a week.
    let server_hooks = {
        let service = service.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut ensured = std::collections::HashMap::new();
            let mut pruned_at: Option<std::time::Instant> = None;
            loop {
                if let Err(err) = service.ensure_server_hooks(&mut ensured).await {
                    tracing::warn!(error = %err, "cannot read the webhooks");
                }
                if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL) {
                    match service.prune(KEEP_FINISHED).await {
                        Ok(0) => {}
                        Ok(pruned) => {
                            tracing::info!(pruned, "finished callback deliveries forgotten")
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "cannot prune the callback outbox")
                        }
                    }
                    pruned_at = Some(std::time::Instant::now());
                }
                tokio::select! {
                    () = tokio::time::sleep(SERVER_HOOKS_INTERVAL) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
        })
    };
    let worker = {
        let backend = backend.clone();
        let handler = move |job: DeliverCallback| {
            let service = service.clone();
            async move {
                service
                    .deliver(&job.id, job.attempt)
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from)
            }
        };
        let worker_options = WorkerOptions::new("switchboard-callbacks")
            .concurrency(options.concurrency.max(1))
            .poll_interval(options.poll_interval.min(Duration::from_millis(200)))
            .max_attempts(1)
            .job_timeout(Duration::from_secs(30));
        tokio::spawn(async move {
            if let Err(err) = run_worker(
                &backend,
                &queue_name,
                worker_options,
                handler,
                stopped(stop),
            )
            .await
            {
                tracing::error!(error = %err, "the callback worker stopped");
            }
        })
    };
    vec![dispatcher, server_hooks, worker]
}
