//! Recording imports as apalis jobs: the spool scanner (at start, on every
//! change the watcher reports, and at the rescan interval) queues one
//! `ImportArchive` job per settled archive, and a worker runs the
//! application's import use case ([`import_spooled`]) for each, with retries
//! and backoff. Jobs live where the poll jobs live (Redis, or the SQL
//! database).
//!
//! A job names an archive of the spool by file name only, never by path. The
//! queue belongs to one spool on one host, so no process without the file
//! takes the job.

use super::{JobBackend, JobQueue, PushOptions, PushOutcome, WorkerOptions, run_worker};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use switchboard_app::recordings::RecordingService;
use switchboard_app::recordings::import::{has_archives, import_spooled};
use switchboard_recordings::spool::{self, Spool};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the spool's kept archives and leftovers are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// One archive of the spool to import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportArchive {
    /// Its file name in the spool.
    pub name: String,
    /// Its size when queued (part of the idempotency key).
    pub size: u64,
    /// Its modification time when queued, ms (part of the idempotency key).
    pub modified_ms: i64,
    /// The file's identity (inode and change time), so an archive dropped
    /// into the spool again is a new job even with the same name, size and
    /// modification time.
    #[serde(default)]
    pub file_id: String,
}

impl ImportArchive {
    /// The key that makes queueing the same archive twice a no-op (while
    /// the job is kept: an archive whose job failed for good stays in the
    /// spool and is queued again once finished jobs are cleaned up, or when
    /// it is touched).
    pub fn idempotency_key(&self) -> String {
        format!(
            "import:{}:{}:{}:{}",
            self.name, self.size, self.modified_ms, self.file_id
        )
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// The queue of one spool directory on this host.
pub fn import_queue(namespace: &str, spool_dir: &Path) -> String {
    let dir = spool_dir
        .canonicalize()
        .unwrap_or_else(|_| spool_dir.to_path_buf());
    let digest = Sha256::digest(format!("{}\n{}", host_name(), dir.display()).as_bytes());
    format!("{namespace}.import.{}", &hex::encode(digest)[..16])
}

/// Queues every settled archive of the spool; returns how many were new.
pub async fn queue_ready(
    queue: &JobQueue<ImportArchive>,
    spool: &mut Spool,
    attempts: u32,
) -> usize {
    let now = SystemTime::now();
    let ready = match spool.scan(now) {
        Ok(ready) => ready,
        Err(err) => {
            tracing::warn!(error = %err, "cannot scan the recording spool");
            return 0;
        }
    };
    let mut queued = 0;
    for archive in ready {
        let job = ImportArchive {
            name: archive.name.clone(),
            size: archive.size,
            modified_ms: archive
                .modified
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            file_id: file_id(&archive.path),
        };
        let options = PushOptions {
            idempotency_key: Some(job.idempotency_key()),
            max_attempts: attempts,
        };
        match queue.push_with(job, &options).await {
            Ok(PushOutcome::Queued) => queued += 1,
            Ok(PushOutcome::AlreadyQueued) => {}
            Err(err) => {
                tracing::warn!(archive = %archive.name, error = %err, "cannot queue a recording import")
            }
        }
    }
    queued
}

/// Inode and change time of a file (empty when it cannot be read).
fn file_id(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| format!("{}.{}.{}", m.ino(), m.ctime(), m.ctime_nsec()))
        .unwrap_or_default()
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Starts the spool scanner and the import worker; they end when `stop`
/// turns true.
pub fn spawn_imports(
    service: Arc<RecordingService>,
    backend: &JobBackend,
    namespace: &str,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let queue_name = import_queue(namespace, &service.spool_dir);
    let queue = JobQueue::<ImportArchive>::new(backend, queue_name.clone());
    let attempts = service.settings.import_attempts.max(1);
    tracing::info!(queue = %queue_name, spool = %service.spool_dir.display(), "recording imports as jobs");
    let scanner = {
        let service = service.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut spool = service.spool();
            let (_watcher, mut changes) = match spool::watch(&service.spool_dir) {
                Ok((watcher, changes)) => (Some(watcher), Some(changes)),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot watch the spool; rescanning at the interval only");
                    (None, None)
                }
            };
            let interval = Duration::from_secs_f64(service.settings.rescan_interval_secs.max(0.05));
            let settle = Duration::from_secs_f64(service.settings.spool_settle_secs.max(0.0));
            // A file seen but not yet settled is looked at again soon.
            let recheck = settle.max(Duration::from_millis(50)) + Duration::from_millis(20);
            switchboard_app::recordings::import::reconcile_tree(&service).await;
            let mut pruned_at: Option<std::time::Instant> = None;
            loop {
                if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL) {
                    let service = service.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        switchboard_app::recordings::import::prune_spool(&service)
                    })
                    .await;
                    pruned_at = Some(std::time::Instant::now());
                }
                queue_ready(&queue, &mut spool, attempts).await;
                let wait = if has_archives(&service.spool_dir) {
                    recheck.min(interval)
                } else {
                    interval
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    Some(()) = async {
                        match changes.as_mut() {
                            Some(changes) => changes.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {}
                }
            }
        })
    };
    let worker = {
        let backend = backend.clone();
        let retry_base = Duration::from_millis(service.settings.retry_base_ms.max(1));
        let handler = move |job: ImportArchive| {
            let service = service.clone();
            async move {
                import_spooled(&service, &job.name)
                    .await
                    .map_err(anyhow::Error::from)
            }
        };
        let options = WorkerOptions::new("switchboard-import")
            .concurrency(2)
            .max_attempts(attempts)
            .backoff(retry_base, Duration::from_secs(60))
            .job_timeout(Duration::from_secs(30 * 60));
        tokio::spawn(async move {
            if let Err(err) =
                run_worker(&backend, &queue_name, options, handler, stopped(stop)).await
            {
                tracing::error!(error = %err, "the recording import worker stopped");
            }
        })
    };
    vec![scanner, worker]
}
