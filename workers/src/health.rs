//! The health poller: asks every enabled or cordoned server for its meetings,
//! many at once with a per-request timeout, flips a server offline after N
//! consecutive failures and online after M consecutive successes, and keeps the
//! attendee counts it saw for placement. Only flips are recorded as events.

use crate::backend::{BackendTarget, HttpBackendClient};
use crate::bbb_xml::read_meetings;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use switchboard_domain::checksum::ChecksumAlgorithm;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::ServerId;
use switchboard_domain::server::{ServerCommand, ServerState};
use switchboard_store::{ServerRecord, Store};

/// The `job` label of the health poller's metrics.
const JOB: &str = "health_poll";
/// Counter: one per server probe, by `job` and `outcome` (`success`/`failure`).
pub const METRIC_JOBS: &str = "switchboard_worker_jobs_total";
/// Counter: cycles run, by `job`.
pub const METRIC_CYCLES: &str = "switchboard_worker_cycles_total";
/// Histogram: cycle duration in seconds, by `job`.
pub const METRIC_CYCLE_DURATION: &str = "switchboard_worker_cycle_duration_seconds";
/// Counter: cycles that failed as a whole (e.g. the database), by `job`.
pub const METRIC_FAILURES: &str = "switchboard_worker_failures_total";

/// Describes the worker metrics to the installed `metrics` recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        METRIC_JOBS,
        "Worker jobs done, by job and outcome; for health_poll one per server probe (success or failure)."
    );
    metrics::describe_counter!(METRIC_CYCLES, "Worker cycles run, by job.");
    metrics::describe_histogram!(
        METRIC_CYCLE_DURATION,
        metrics::Unit::Seconds,
        "Duration of one worker cycle, by job."
    );
    metrics::describe_counter!(
        METRIC_FAILURES,
        "Worker cycles that failed as a whole (not single probes), by job."
    );
}

/// Settings of the health poller.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Time between cycles.
    pub interval: Duration,
    /// Timeout of one server's answer.
    pub timeout: Duration,
    /// Consecutive failures before a server counts as offline.
    pub offline_after: u32,
    /// Consecutive successes before an offline server counts as online.
    pub online_after: u32,
    /// Servers asked at once.
    pub concurrency: usize,
    /// Checksum algorithm for servers without their own setting.
    pub default_algorithm: ChecksumAlgorithm,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            offline_after: 3,
            online_after: 1,
            concurrency: 64,
            default_algorithm: ChecksumAlgorithm::Sha256,
        }
    }
}

/// What the last poll saw on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Meetings it runs.
    pub meetings: u64,
    /// Attendees over all its meetings.
    pub attendees: u64,
    /// Participants of its largest meeting.
    pub largest_meeting: u64,
}

/// Observed loads shared with the placement code.
#[derive(Debug, Clone, Default)]
pub struct ObservedLoads(Arc<RwLock<HashMap<ServerId, Observed>>>);

impl ObservedLoads {
    /// What was last seen on a server.
    pub fn get(&self, id: ServerId) -> Option<Observed> {
        self.0.read().ok()?.get(&id).copied()
    }

    fn set(&self, id: ServerId, observed: Observed) {
        if let Ok(mut map) = self.0.write() {
            map.insert(id, observed);
        }
    }
}

/// Consecutive results of one server.
#[derive(Debug, Clone, Copy, Default)]
struct Streak {
    failures: u32,
    successes: u32,
}

/// One cycle's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Servers asked.
    pub polled: usize,
    /// Servers that answered well.
    pub healthy: usize,
    /// Servers recorded as gone offline in this cycle.
    pub went_offline: Vec<ServerId>,
    /// Servers recorded as back online in this cycle.
    pub went_online: Vec<ServerId>,
}

/// Polls servers and records health flips.
#[derive(Debug)]
pub struct HealthPoller {
    store: Store,
    client: HttpBackendClient,
    config: HealthConfig,
    loads: ObservedLoads,
    streaks: HashMap<ServerId, Streak>,
}

impl HealthPoller {
    /// A poller writing to `store` and `loads`.
    pub fn new(
        store: Store,
        client: HttpBackendClient,
        config: HealthConfig,
        loads: ObservedLoads,
    ) -> Self {
        Self {
            store,
            client,
            config,
            loads,
            streaks: HashMap::new(),
        }
    }

    /// Runs cycles forever at the configured interval.
    pub async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let started = Instant::now();
            match self.poll_once().await {
                Ok(report) => tracing::debug!(
                    polled = report.polled,
                    healthy = report.healthy,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "health cycle"
                ),
                Err(err) => tracing::warn!(error = %err, "health cycle failed"),
            }
        }
    }

    /// Polls every enabled or cordoned server once.
    pub async fn poll_once(&mut self) -> anyhow::Result<CycleReport> {
        let started = Instant::now();
        let result = self.cycle().await;
        metrics::counter!(METRIC_CYCLES, "job" => JOB).increment(1);
        metrics::histogram!(METRIC_CYCLE_DURATION, "job" => JOB)
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!(METRIC_FAILURES, "job" => JOB).increment(1);
        }
        result
    }

    async fn cycle(&mut self) -> anyhow::Result<CycleReport> {
        let servers: Vec<ServerRecord> = self
            .store
            .servers()
            .await?
            .into_iter()
            .filter(|server| server.state != ServerState::Disabled)
            .collect();
        let client = &self.client;
        let config = &self.config;
        let results: Vec<(ServerRecord, Option<Observed>)> = futures::stream::iter(servers)
            .map(|server| async move {
                let observed = probe(client, config, &server).await;
                let outcome = if observed.is_some() {
                    "success"
                } else {
                    "failure"
                };
                metrics::counter!(METRIC_JOBS, "job" => JOB, "outcome" => outcome).increment(1);
                (server, observed)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut report = CycleReport {
            polled: results.len(),
            ..CycleReport::default()
        };
        let metadata = EventMetadata::actor("worker:health");
        for (server, observed) in results {
            let streak = self.streaks.entry(server.id).or_default();
            let command = match observed {
                Some(observed) => {
                    report.healthy += 1;
                    self.loads.set(server.id, observed);
                    streak.successes += 1;
                    streak.failures = 0;
                    (!server.online && streak.successes >= self.config.online_after)
                        .then_some(ServerCommand::MarkOnline)
                }
                None => {
                    streak.failures += 1;
                    streak.successes = 0;
                    (server.online && streak.failures >= self.config.offline_after)
                        .then_some(ServerCommand::MarkOffline)
                }
            };
            let Some(command) = command else { continue };
            let recorded = self
                .store
                .execute_server(server.id, &command, &metadata)
                .await?;
            if !recorded.events.is_empty() {
                if command == ServerCommand::MarkOnline {
                    tracing::info!(server = %server.id, "server back online");
                    report.went_online.push(server.id);
                } else {
                    tracing::warn!(server = %server.id, "server went offline");
                    report.went_offline.push(server.id);
                }
            }
        }
        Ok(report)
    }
}

/// Asks one server for its meetings; `None` when it fails in any way.
async fn probe(
    client: &HttpBackendClient,
    config: &HealthConfig,
    server: &ServerRecord,
) -> Option<Observed> {
    let target = BackendTarget {
        url: &server.settings.url,
        secret: &server.settings.secret,
        algorithm: server.settings.checksum.unwrap_or(config.default_algorithm),
    };
    let response = client
        .get(target, "getMeetings", "", config.timeout)
        .await
        .ok()?;
    let body = std::str::from_utf8(&response.body).ok()?;
    let answer = read_meetings(body).ok()?;
    if !answer.summary.is_success() {
        return None;
    }
    Some(Observed {
        meetings: answer.meetings.len() as u64,
        attendees: answer.meetings.iter().map(|m| m.participants).sum(),
        largest_meeting: answer
            .meetings
            .iter()
            .map(|m| m.participants)
            .max()
            .unwrap_or(0),
    })
}
