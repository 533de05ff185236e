//! The job queue against real storages: SQLite (temp file), PostgreSQL
//! (fresh database on 127.0.0.1:5432) and Redis (127.0.0.1:6379, queue names
//! with a per-test prefix). Each scenario runs on all three.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;
use switchboard_store::{Store, test_support};
use switchboard_workers::jobs::{
    JobBackend, JobQueue, JobStorage, PollScheduler, PollTick, PushOptions, PushOutcome,
    WorkerOptions, next_tick_after, now_ms, poll_worker_options, run_poll_worker, run_worker,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
    Redis,
}

/// A connected, set-up storage and a queue-name prefix of its own.
struct Env {
    backend: JobBackend,
    prefix: String,
    _store: Option<Store>,
}

impl Env {
    async fn new(kind: Kind) -> Self {
        // RUST_LOG=switchboard_workers=debug,apalis=debug shows the workers.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (storage, store) = match kind {
            Kind::Sqlite => {
                let store = Store::connect(&test_support::fresh_sqlite()).await.unwrap();
                store.migrate().await.unwrap();
                (JobStorage::from_store(&store, None), Some(store))
            }
            Kind::Postgres => {
                let store = Store::connect(&test_support::fresh_postgres().await)
                    .await
                    .unwrap();
                store.migrate().await.unwrap();
                (JobStorage::from_store(&store, None), Some(store))
            }
            Kind::Redis => {
                let url = std::env::var("SWITCHBOARD_TEST_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
                (JobStorage::Redis { url }, None)
            }
        };
        let backend = storage.connect().await.unwrap();
        backend.setup().await.unwrap();
        // Twice: setup must be idempotent.
        backend.setup().await.unwrap();
        Self {
            backend,
            prefix: format!("sbtest-{}", uuid::Uuid::new_v4().simple()),
            _store: store,
        }
    }

    fn queue_name(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// Redis: drops this test's keys (all start with the queue name).
    async fn cleanup(self) {
        if self.backend.name() != "redis" {
            return;
        }
        let url = std::env::var("SWITCHBOARD_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let client = ::redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = ::redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Echo {
    id: u32,
    /// Attempts that fail before one succeeds (`u32::MAX`: never succeeds).
    fail_first: u32,
    /// How long the handler works.
    work_ms: u64,
}

impl Echo {
    fn ok(id: u32) -> Self {
        Self {
            id,
            fail_first: 0,
            work_ms: 0,
        }
    }
}

/// What the handler saw: calls and successes per job id, and finished runs.
#[derive(Default)]
struct Record {
    calls: HashMap<u32, u32>,
    done: HashMap<u32, u32>,
    first_call: HashMap<u32, Instant>,
}

type Shared = Arc<Mutex<Record>>;

fn echo_handler(
    record: Shared,
) -> impl Fn(Echo) -> futures::future::BoxFuture<'static, anyhow::Result<()>> + Send + Sync + 'static
{
    move |job: Echo| {
        let record = record.clone();
        Box::pin(async move {
            let call = {
                let mut r = record.lock().unwrap();
                r.first_call.entry(job.id).or_insert_with(Instant::now);
                let calls = r.calls.entry(job.id).or_default();
                *calls += 1;
                *calls
            };
            if job.work_ms > 0 {
                tokio::time::sleep(Duration::from_millis(job.work_ms)).await;
            }
            if call <= job.fail_first {
                anyhow::bail!("job {} fails on call {call}", job.id);
            }
            *record.lock().unwrap().done.entry(job.id).or_default() += 1;
            Ok(())
        })
    }
}

fn calls(record: &Shared, id: u32) -> u32 {
    record.lock().unwrap().calls.get(&id).copied().unwrap_or(0)
}

fn done(record: &Shared, id: u32) -> u32 {
    record.lock().unwrap().done.get(&id).copied().unwrap_or(0)
}

async fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ok()
}

fn test_options() -> WorkerOptions {
    WorkerOptions::new("sbtest")
        .concurrency(2)
        .poll_interval(Duration::from_millis(100))
        .max_attempts(5)
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .job_timeout(Duration::from_secs(5))
        .shutdown_timeout(Duration::from_secs(5))
}

/// Starts an Echo worker; the sender stops it.
fn start_echo_worker(
    env: &Env,
    queue: &str,
    record: &Shared,
) -> (
    oneshot::Sender<()>,
    JoinHandle<Result<(), switchboard_workers::jobs::JobError>>,
) {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let backend = env.backend.clone();
    let queue = queue.to_owned();
    let handler = echo_handler(record.clone());
    let worker = tokio::spawn(async move {
        run_worker(&backend, &queue, test_options(), handler, async {
            let _ = stop_rx.await;
        })
        .await
    });
    (stop_tx, worker)
}

async fn stop(
    stop_tx: oneshot::Sender<()>,
    worker: JoinHandle<Result<(), switchboard_workers::jobs::JobError>>,
) -> Duration {
    let started = Instant::now();
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("worker stops")
        .unwrap()
        .expect("clean stop");
    started.elapsed()
}

// (a) a pushed job is handled within about a second.
async fn pushed_job_is_handled_promptly(kind: Kind) {
    let env = Env::new(kind).await;
    let name = env.queue_name("echo");
    let record = Shared::default();
    let (stop_tx, worker) = start_echo_worker(&env, &name, &record);
    tokio::time::sleep(Duration::from_millis(300)).await; // worker registered

    let queue = JobQueue::<Echo>::new(&env.backend, &name);
    let pushed = Instant::now();
    assert_eq!(queue.push(Echo::ok(1)).await.unwrap(), PushOutcome::Queued);
    assert!(
        wait_until(Duration::from_secs(1), || done(&record, 1) == 1).await,
        "{kind:?}: job not handled within 1 s"
    );
    let latency = record.lock().unwrap().first_call[&1] - pushed;
    eprintln!("{kind:?}: push-to-start latency {latency:?}");

    // A second job on the same queue too; and a job on another queue is not ours.
    let other = JobQueue::<Echo>::new(&env.backend, env.queue_name("other"));
    other.push(Echo::ok(99)).await.unwrap();
    queue.push(Echo::ok(2)).await.unwrap();
    assert!(wait_until(Duration::from_secs(1), || done(&record, 2) == 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(calls(&record, 1), 1, "{kind:?}: handled once");
    assert_eq!(calls(&record, 99), 0, "{kind:?}: other queue left alone");

    stop(stop_tx, worker).await;
    env.cleanup().await;
}

// (b) two schedulers pushing the same tick give one handled job.
async fn two_schedulers_give_one_job_per_tick(kind: Kind) {
    let env = Env::new(kind).await;
    let name = env.queue_name("poll");
    let interval = Duration::from_millis(500);
    // Two "processes": separate queue handles and schedulers on one storage.
    let first = PollScheduler::new(JobQueue::<PollTick>::new(&env.backend, &name), interval);
    let second = PollScheduler::new(JobQueue::<PollTick>::new(&env.backend, &name), interval);

    // The same tick pushed twice directly: the second is a duplicate.
    let tick = next_tick_after(now_ms(), interval);
    assert_eq!(first.push_tick(tick).await.unwrap(), PushOutcome::Queued);
    assert_eq!(
        second.push_tick(tick).await.unwrap(),
        PushOutcome::AlreadyQueued,
        "{kind:?}"
    );

    let handled: Arc<Mutex<Vec<i64>>> = Arc::default();
    let seen = handled.clone();
    let (stop_worker, worker_rx) = oneshot::channel::<()>();
    let backend = env.backend.clone();
    let worker_queue = name.clone();
    let worker = tokio::spawn(async move {
        run_poll_worker(
            &backend,
            &worker_queue,
            interval,
            poll_worker_options(interval).poll_interval(Duration::from_millis(100)),
            move |tick: PollTick| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(tick.tick_ms);
                    Ok(())
                }
            },
            async {
                let _ = worker_rx.await;
            },
        )
        .await
    });
    let (stop_first, first_rx) = oneshot::channel::<()>();
    let (stop_second, second_rx) = oneshot::channel::<()>();
    let schedulers = [
        tokio::spawn(first.run(async {
            let _ = first_rx.await;
        })),
        tokio::spawn(second.run(async {
            let _ = second_rx.await;
        })),
    ];
    tokio::time::sleep(Duration::from_millis(1900)).await;
    stop_first.send(()).unwrap();
    stop_second.send(()).unwrap();
    for s in schedulers {
        s.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // last tick handled
    stop(stop_worker, worker).await;

    let mut ticks = handled.lock().unwrap().clone();
    eprintln!("{kind:?}: handled ticks {ticks:?}");
    assert!(
        ticks.contains(&tick),
        "{kind:?}: the first tick was handled"
    );
    assert!(ticks.len() >= 3, "{kind:?}: a tick every 500 ms: {ticks:?}");
    let count = ticks.len();
    ticks.sort_unstable();
    ticks.dedup();
    assert_eq!(ticks.len(), count, "{kind:?}: a tick handled twice");
    assert!(
        ticks.iter().all(|t| t % 500 == 0),
        "{kind:?}: aligned: {ticks:?}"
    );
    env.cleanup().await;
}

// (b') a tick older than an interval is skipped, a fresh one is handled.
async fn stale_tick_is_skipped(kind: Kind) {
    let env = Env::new(kind).await;
    let name = env.queue_name("poll");
    let interval = Duration::from_millis(500);
    let scheduler = PollScheduler::new(JobQueue::<PollTick>::new(&env.backend, &name), interval);
    let stale = next_tick_after(now_ms(), interval) - 10 * 500;
    let fresh = next_tick_after(now_ms(), interval);
    scheduler.push_tick(stale).await.unwrap();
    scheduler.push_tick(fresh).await.unwrap();

    let handled: Arc<Mutex<Vec<i64>>> = Arc::default();
    let seen = handled.clone();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let backend = env.backend.clone();
    let worker = tokio::spawn(async move {
        run_poll_worker(
            &backend,
            &name,
            interval,
            poll_worker_options(interval).poll_interval(Duration::from_millis(100)),
            move |tick: PollTick| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(tick.tick_ms);
                    Ok(())
                }
            },
            async {
                let _ = stop_rx.await;
            },
        )
        .await
    });
    assert!(
        wait_until(Duration::from_secs(2), || handled
            .lock()
            .unwrap()
            .contains(&fresh))
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(stop_tx, worker).await;
    assert_eq!(*handled.lock().unwrap(), vec![fresh], "{kind:?}");
    env.cleanup().await;
}

// (c) a failing job is retried and given up after its max attempts.
async fn failing_job_stops_after_max_attempts(kind: Kind) {
    let env = Env::new(kind).await;
    let name = env.queue_name("echo");
    let queue = JobQueue::<Echo>::new(&env.backend, &name);
    let never = Echo {
        id: 1,
        fail_first: u32::MAX,
        work_ms: 0,
    };
    let flaky = Echo {
        id: 2,
        fail_first: 2,
        work_ms: 0,
    };
    let greedy = Echo {
        id: 3,
        fail_first: u32::MAX,
        work_ms: 0,
    };
    queue
        .push_with(never, &PushOptions::default().max_attempts(3))
        .await
        .unwrap();
    queue
        .push_with(flaky, &PushOptions::default().max_attempts(5))
        .await
        .unwrap();
    // Asks for 50; the worker's bound (5) wins.
    queue
        .push_with(greedy, &PushOptions::default().max_attempts(50))
        .await
        .unwrap();

    let record = Shared::default();
    let started = Instant::now();
    let (stop_tx, worker) = start_echo_worker(&env, &name, &record);
    assert!(
        wait_until(Duration::from_secs(4), || calls(&record, 1) == 3
            && calls(&record, 3) == 5
            && done(&record, 2) == 1)
        .await,
        "{kind:?}: calls {:?}",
        record.lock().unwrap().calls
    );
    eprintln!("{kind:?}: retries settled in {:?}", started.elapsed());
    // Nobody runs them again: not the storage, not apalis (Redis would
    // re-run a merely failed job after ~1-2 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(calls(&record, 1), 3, "{kind:?}: never-succeeding job");
    assert_eq!(done(&record, 1), 0);
    assert_eq!(calls(&record, 2), 3, "{kind:?}: flaky job");
    assert_eq!(done(&record, 2), 1);
    assert_eq!(calls(&record, 3), 5, "{kind:?}: worker bound");
    stop(stop_tx, worker).await;
    env.cleanup().await;
}

// (d) stop lets the running job finish, then takes no more jobs.
async fn stop_is_graceful(kind: Kind) {
    let env = Env::new(kind).await;
    let name = env.queue_name("echo");
    let queue = JobQueue::<Echo>::new(&env.backend, &name);
    let record = Shared::default();
    let (stop_tx, worker) = start_echo_worker(&env, &name, &record);
    queue
        .push(Echo {
            id: 1,
            fail_first: 0,
            work_ms: 800,
        })
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(2), || calls(&record, 1) == 1).await);
    assert_eq!(done(&record, 1), 0, "still running");

    let took = stop(stop_tx, worker).await;
    assert_eq!(done(&record, 1), 1, "{kind:?}: in-flight job finished");
    assert!(
        took < Duration::from_secs(3),
        "{kind:?}: stop took {took:?}"
    );
    eprintln!("{kind:?}: stop took {took:?}");

    queue.push(Echo::ok(2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(calls(&record, 2), 0, "{kind:?}: stopped worker took a job");

    // A new worker (a restarted process) picks the waiting job up.
    let (stop_tx, worker) = start_echo_worker(&env, &name, &record);
    assert!(wait_until(Duration::from_secs(2), || done(&record, 2) == 1).await);
    assert_eq!(calls(&record, 1), 1, "{kind:?}: finished job not run again");
    stop(stop_tx, worker).await;
    env.cleanup().await;
}

macro_rules! per_storage {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Kind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Kind::Postgres).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Kind::Redis).await;
                }
            )*
        }
    };
}

per_storage!(
    pushed_job_is_handled_promptly,
    two_schedulers_give_one_job_per_tick,
    stale_tick_is_skipped,
    failing_job_stops_after_max_attempts,
    stop_is_graceful,
);
