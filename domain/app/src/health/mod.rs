//! The health poller: asks every enabled or cordoned server for its meetings,
//! many at once with a per-request timeout, flips a server offline after N
//! consecutive failures and online after M consecutive successes, and keeps the
//! attendee counts it saw for placement. Only flips are recorded as events.
//! Each successful poll also reconciles the server's meetings (see
//! [`reconcile`]) and disables a cordoned server once it is drained.

pub mod metrics_window;
pub mod reconcile;

use crate::backend::Backends;
use crate::clock::SharedClock;
use crate::executor::CommandExecutor;
use crate::lifecycle::{disable_if_drained, end_run};
use crate::ports::{Database, MetricsSource};
use crate::records::{MeetingRecord, PendingPlacement, SeriesPoint, ServerRecord, ServerSample};
use crate::records::{UsageSample, listing_digest};
use crate::routing::ObservedLoads;
use futures::StreamExt;
use metrics_window::MetricsTracker;
use reconcile::{ListedMeeting, create_time_of, plan};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_domain::bbb::xml::read_meetings;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::ServerId;
use switchboard_domain::ids::{MeetingId, TenantId, meeting_stream};
use switchboard_domain::load::Observed;
use switchboard_domain::load::{LoadWeights, MeetingSample};
use switchboard_domain::meeting::Meeting;
use switchboard_domain::meeting::{EndReason, MeetingCommand, MeetingRun};
use switchboard_domain::node_metrics::{MetricsError, MetricsStatus, NodeMetrics};
use switchboard_domain::server::Server;
use switchboard_domain::server::{ServerCommand, ServerState};

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

/// Why a poll cycle failed as a whole (single servers failing are results,
/// not errors).
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    /// A command was refused or could not be recorded.
    #[error("recording a health change failed: {0}")]
    Command(String),
}

impl<E: std::fmt::Display> From<crate::CommandError<E>> for HealthError {
    fn from(err: crate::CommandError<E>) -> Self {
        match err {
            crate::CommandError::Store(err) => Self::Store(err),
            crate::CommandError::Rejected(err) => Self::Command(err.to_string()),
        }
    }
}

/// What happens to the meetings of a server that went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflinePolicy {
    /// Forget them at once (Scalelite's behaviour), so the next create of
    /// each goes to another server.
    Forget,
    /// Keep them for a grace time (the server may come back with its
    /// meetings), then forget them.
    KeepFor(Duration),
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
    /// A run Switchboard recorded less than this before a poll started (by
    /// its own clocks) is not reconciled away by that poll: the margin for
    /// clock differences between Switchboard's own instances. A run whose
    /// create time Switchboard did not keep falls back to the server's
    /// createTime with [`SERVER_CLOCK_GRACE`].
    pub reconcile_grace: Duration,
    /// Record meetings found on a server but unknown to Switchboard as its own.
    pub adopt_unknown: bool,
    /// What happens to the meetings of an offline server.
    pub offline_meetings: OfflinePolicy,
    /// The load formula's weights.
    pub weights: LoadWeights,
    /// CPU and memory read from servers' metrics URLs are averaged over
    /// this window; a last good value ages out after it.
    pub metrics_window: Duration,
    /// How long the end callbacks owed when a run is found gone (and its
    /// server never called) are attempted.
    pub callback_retry_for: Duration,
    /// How long those wait for the server's own late call first.
    pub callback_fallback_grace: Duration,
    /// Whether servers whose node agent reports are still polled (then only
    /// to reconcile their meetings; their health, load and CPU come from
    /// the agent). Unpolled, they are reconciled from the agent's last
    /// heartbeat.
    pub agent_poll: bool,
    /// Intervals an agent may miss before its server counts as offline (its
    /// last heartbeat is used to reconcile only within this bound).
    pub agent_missed_heartbeats: u32,
    /// How long the console's time series of polled figures is kept
    /// (zero: no series is written).
    pub series_for: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            offline_after: 3,
            online_after: 1,
            concurrency: 64,
            reconcile_grace: Duration::from_millis(250),
            adopt_unknown: false,
            offline_meetings: OfflinePolicy::KeepFor(Duration::from_secs(300)),
            weights: LoadWeights::default(),
            metrics_window: Duration::from_secs(300),
            callback_retry_for: crate::callbacks::CallbackSettings::default().retry_for,
            callback_fallback_grace: Duration::from_millis(
                crate::callbacks::receive::FALLBACK_GRACE_MS as u64,
            ),
            agent_poll: false,
            agent_missed_heartbeats: 3,
            series_for: Duration::from_secs(24 * 3600),
        }
    }
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
    /// Meetings recorded as ended because their server no longer lists them.
    pub ended: Vec<String>,
    /// Meetings found on servers but unknown to Switchboard.
    pub unknown: Vec<String>,
    /// Cordoned servers disabled because no meeting runs on them any more.
    pub drained: Vec<ServerId>,
    /// Meetings forgotten because their server was offline (policy).
    pub forgotten: Vec<String>,
}

/// What the poller works with.
#[derive(Debug, Clone)]
pub struct HealthPorts {
    /// The projections and the polled picture.
    pub store: Arc<dyn Database>,
    /// Records health flips and reconciled meetings.
    pub executor: CommandExecutor,
    /// Asks servers for their meetings.
    pub backends: Backends,
    /// Reads servers' metrics URLs.
    pub scraper: Arc<dyn MetricsSource>,
    /// The time.
    pub clock: SharedClock,
}

/// Polls servers and records health flips.
#[derive(Debug)]
pub struct HealthPoller {
    store: Arc<dyn Database>,
    executor: CommandExecutor,
    backends: Backends,
    clock: SharedClock,
    config: HealthConfig,
    loads: ObservedLoads,
    /// Offline servers: since when, and whether their meetings were forgotten.
    offline: HashMap<ServerId, (i64, bool)>,
    /// Unknown meetings already warned about (internal ids).
    reported_unknown: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Runs whose listed voiceBridge this process has held for them.
    voice_bridges_held: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Reads servers' metrics URLs.
    scraper: Arc<dyn MetricsSource>,
    /// Each server's metrics readings of the window.
    metrics: MetricsTracker,
    /// Agent servers reconciled from their heartbeats: the sample's change
    /// time and the runs recorded there then, and when.
    agent_reconciled: HashMap<ServerId, ((i64, usize), i64)>,
    /// When this poller last pruned the time series (ms).
    series_pruned_at_ms: i64,
}

impl HealthPoller {
    /// A poller reading `store`, recording through `executor`, asking
    /// servers through `backends` and metrics URLs through `scraper`, and
    /// sharing what it saw in `loads`.
    pub fn new(ports: HealthPorts, config: HealthConfig, loads: ObservedLoads) -> Self {
        let HealthPorts {
            store,
            executor,
            backends,
            scraper,
            clock,
        } = ports;
        Self {
            store,
            executor,
            backends,
            clock,
            config,
            loads,
            offline: HashMap::new(),
            reported_unknown: Default::default(),
            voice_bridges_held: Default::default(),
            scraper,
            metrics: MetricsTracker::default(),
            agent_reconciled: HashMap::new(),
            series_pruned_at_ms: 0,
        }
    }

    /// Runs cycles forever at the configured interval (without a job queue).
    pub async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let _ = self.run_cycle().await;
        }
    }

    /// Runs one cycle and logs it (`health cycle` with `polled`, `healthy`
    /// and `elapsed_ms`, at debug level; failures as warnings).
    pub async fn run_cycle(&mut self) -> Result<CycleReport, HealthError> {
        let started = Instant::now();
        let result = self.poll_once().await;
        match &result {
            Ok(report) => tracing::debug!(
                polled = report.polled,
                healthy = report.healthy,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "health cycle"
            ),
            Err(err) => tracing::warn!(error = %err, "health cycle failed"),
        }
        result
    }

    /// Polls every enabled or cordoned server once.
    pub async fn poll_once(&mut self) -> Result<CycleReport, HealthError> {
        let started = Instant::now();
        let result = self.cycle().await;
        metrics::counter!(METRIC_CYCLES, "task" => JOB).increment(1);
        metrics::histogram!(METRIC_CYCLE_DURATION, "task" => JOB)
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!(METRIC_FAILURES, "task" => JOB).increment(1);
        }
        result
    }

    async fn cycle(&mut self) -> Result<CycleReport, HealthError> {
        let servers: Vec<ServerRecord> = self
            .store
            .servers()
            .await?
            .into_iter()
            .filter(|server| server.state != ServerState::Disabled)
            .collect();
        // The last samples without their listings, with the digests stored
        // beside them: a cycle never holds every server's last listing.
        let mut listing_digests: HashMap<ServerId, u64> = HashMap::new();
        let previous_samples: HashMap<ServerId, ServerSample> = self
            .store
            .server_sample_figures()
            .await?
            .into_iter()
            .map(|(sample, digest)| {
                listing_digests.insert(sample.server_id, digest);
                (sample.server_id, sample)
            })
            .collect();
        let backends = &self.backends;
        let scraper = self.scraper.as_ref();
        let config = &self.config;
        let clock = self.clock.as_ref();
        let store = self.store.as_ref();
        let digests = &listing_digests;
        // One listing written ahead at a time (each is copied on its way to
        // the database).
        let writing = &tokio::sync::Mutex::new(());
        // Every probe is sent after this: a run recorded (after its server
        // accepted the create) before it must be in its server's list.
        let poll_started_ms = clock.now_ms();
        let results: Vec<(ServerRecord, Option<Polled>, MetricsRead)> =
            futures::stream::iter(servers)
                .map(|server| async move {
                    if server.has_live_agent() {
                        // Its agent gives health, load and CPU; a poll (if
                        // asked) only reconciles its meetings.
                        let observed = if config.agent_poll {
                            probe(backends, clock, config, &server).await.map(
                                |(observed, listed, _)| (observed, listed, 0, PolledListing::LetGo),
                            )
                        } else {
                            None
                        };
                        return (server, observed, (None, clock.now_ms()));
                    }
                    let (observed, read) = futures::join!(
                        async {
                            let probed = probe(backends, clock, config, &server).await?;
                            Some(write_ahead(store, writing, digests, server.id, probed).await)
                        },
                        read_metrics(scraper, clock, config, &server)
                    );
                    let outcome = if observed.is_some() {
                        "success"
                    } else {
                        "failure"
                    };
                    metrics::counter!(METRIC_JOBS, "task" => JOB, "outcome" => outcome)
                        .increment(1);
                    (server, observed, read)
                })
                .buffer_unordered(self.config.concurrency.max(1))
                .collect()
                .await;
        self.metrics
            .retain(&results.iter().map(|(server, _, _)| server.id).collect());
        let mut report = CycleReport {
            polled: results.len(),
            ..CycleReport::default()
        };
        let metadata = EventMetadata::actor("worker:health");
        let recorded = self.store.running_meetings().await?;
        // Read after the runs, so every run recorded has its listing here
        // (the listing is written before the run is appended).
        let recorded_at: HashMap<String, i64> = self.store.running_listing_times().await?;
        let grace_ms = self.config.reconcile_grace.as_millis() as i64;
        // Whether a run was recorded before a listing taken at `as_of_ms`.
        let recorded_before = |meeting: &MeetingRecord, as_of_ms: i64| match recorded_at
            .get(&meeting.run.internal_id)
        {
            Some(at_ms) => *at_ms < as_of_ms - grace_ms,
            None => meeting.run.create_time_ms < as_of_ms - SERVER_CLOCK_GRACE.as_millis() as i64,
        };
        let recorded_before_poll =
            |meeting: &MeetingRecord| recorded_before(meeting, poll_started_ms);
        // Unpolled agent servers are reconciled from their last heartbeat's
        // listing when it or the runs recorded there changed (or a minute
        // passed): not every server's XML on every cycle.
        let now_ms = self.clock.now_ms();
        let mut recorded_on: HashMap<ServerId, usize> = HashMap::new();
        for meeting in &recorded {
            *recorded_on.entry(meeting.run.server_id).or_default() += 1;
        }
        let agent_keys: HashMap<ServerId, (i64, usize)> = if self.config.agent_poll {
            HashMap::new()
        } else {
            results
                .iter()
                .filter(|(server, _, _)| server.has_live_agent())
                .map(|(server, _, _)| {
                    let changed = previous_samples
                        .get(&server.id)
                        .map_or(0, |sample| sample.changed_at_ms);
                    let runs = recorded_on.get(&server.id).copied().unwrap_or(0);
                    (server.id, (changed, runs))
                })
                .filter(|(id, key)| match self.agent_reconciled.get(id) {
                    Some((seen, at_ms)) => {
                        seen != key || now_ms - at_ms >= AGENT_RECONCILE_EVERY_MS
                    }
                    None => true,
                })
                .collect()
        };
        // The due agents' last heartbeat listings, whole.
        let (heard, agent_listings): (HashMap<ServerId, i64>, HashMap<ServerId, Arc<str>>) =
            if agent_keys.is_empty() {
                (HashMap::new(), HashMap::new())
            } else {
                let due: Vec<ServerId> = agent_keys.keys().copied().collect();
                let heard = self.store.heartbeats_of(&due).await?.into_iter().collect();
                let listings = self
                    .store
                    .server_samples_of(&due)
                    .await?
                    .into_iter()
                    .map(|sample| (sample.server_id, sample.meetings_xml))
                    .collect();
                (heard, listings)
            };
        // Streaks live in the shared samples, so any worker may take any tick.
        let mut previous = previous_samples;
        let mut with_listings = Vec::new();
        let mut keeping_listings = Vec::new();
        let mut listed_ahead = Vec::new();
        let mut usage: Vec<OwnedUsage> = Vec::new();
        let mut series: Vec<SeriesPoint> = Vec::new();
        for (server, probed, (read, read_at_ms)) in results {
            if server.has_live_agent() {
                if let Some(sample) = previous.get(&server.id) {
                    series.push(series_point(&server, sample, server.online, now_ms));
                }
                // The listing to reconcile with: this poll's, or the one
                // the agent's last heartbeat left (taken at its write time).
                let listing = match probed {
                    Some((_, listed, _, _)) => Some((listed, poll_started_ms)),
                    None => match (agent_keys.get(&server.id), previous.get(&server.id)) {
                        (Some(key), Some(sample))
                            if sample.successes > 0
                                && self.heard_lately(&server, heard.get(&server.id), now_ms) =>
                        {
                            self.agent_reconciled.insert(server.id, (*key, now_ms));
                            agent_listings
                                .get(&server.id)
                                .and_then(|listing| listed_in_sample(listing))
                                .map(|listed| (listed, sample.polled_at_ms))
                        }
                        _ => None,
                    },
                };
                if let Some((listed, as_of_ms)) = listing {
                    usage.extend(usage_of(server.id, &recorded, &listed, as_of_ms));
                    let before = |meeting: &MeetingRecord| recorded_before(meeting, as_of_ms);
                    self.reconcile(&server, &recorded, &listed, &before, &mut report)
                        .await?;
                }
                if self.offline_policy_due(server.id, server.online) {
                    self.forget_meetings_of(server.id, &recorded, &mut report)
                        .await?;
                }
                continue;
            }
            let metrics = self.metrics.record(
                server.id,
                server.settings.metrics_url.as_deref(),
                read,
                read_at_ms,
                self.config.metrics_window,
            );
            if let Some((_, listed, _, _)) = &probed {
                usage.extend(usage_of(server.id, &recorded, listed, poll_started_ms));
                self.reconcile(
                    &server,
                    &recorded,
                    listed,
                    &recorded_before_poll,
                    &mut report,
                )
                .await?;
            }
            // Taken, not copied (read without its listing).
            let before = previous
                .remove(&server.id)
                .unwrap_or_else(|| ServerSample::new(server.id));
            let mut sample = before.clone();
            sample.cpu_percent = metrics.usage.cpu_percent;
            sample.memory_percent = metrics.usage.memory_percent;
            sample.metrics_state = metrics.state;
            sample.metrics_error = metrics.error.clone();
            sample.metrics_read_at_ms = metrics.read_at_ms;
            let mut probed_listing: Option<u64> = None;
            // The digest of a listing written ahead, to store with the figures.
            let mut ahead: Option<u64> = None;
            let command = match probed {
                Some((observed, listed, digest, listing)) => {
                    let observed = Observed {
                        known_meetings: known_on(server.id, &recorded, &listed),
                        metrics,
                        ..observed
                    };
                    report.healthy += 1;
                    self.loads.set(server.id, observed.clone(), now_ms);
                    sample.successes = (sample.successes + 1).min(self.config.online_after.max(1));
                    let meetings_xml = match listing {
                        PolledListing::Held(meetings_xml) => meetings_xml,
                        PolledListing::WrittenAhead => {
                            ahead = Some(digest);
                            String::new()
                        }
                        PolledListing::LetGo => String::new(),
                    };
                    sample.record_picture(&observed, meetings_xml);
                    probed_listing = Some(digest);
                    (!server.online && sample.successes >= self.config.online_after)
                        .then_some(ServerCommand::MarkOnline)
                }
                None => {
                    if let Some(observed) = self.loads.get(server.id) {
                        self.loads.set(
                            server.id,
                            Observed {
                                metrics,
                                ..observed
                            },
                            now_ms,
                        );
                    }
                    sample.failures = (sample.failures + 1).min(self.config.offline_after.max(1));
                    sample.successes = 0;
                    (server.online && sample.failures >= self.config.offline_after)
                        .then_some(ServerCommand::MarkOffline)
                }
            };
            let sample_now = sample.clone();
            // The listing is compared by digest (the last one is not held).
            let listing_changed = match &probed_listing {
                Some(digest) => listing_digests.get(&server.id) != Some(digest),
                None => false,
            };
            let changed = sample.figures_differ(&before) || listing_changed;
            let heartbeat_due = now_ms - before.polled_at_ms >= SAMPLE_HEARTBEAT_MS;
            if changed || heartbeat_due {
                sample.polled_at_ms = now_ms;
                if changed {
                    sample.changed_at_ms = now_ms;
                }
                // Only a new listing is written: otherwise the stored one
                // stays (and the heartbeat write carries the figures only, so
                // views show recent times without making instances re-read).
                match (listing_changed, ahead) {
                    (true, Some(digest)) => listed_ahead.push((sample, digest)),
                    (true, None) => with_listings.push(sample),
                    (false, _) => {
                        sample.meetings_xml = Arc::default();
                        keeping_listings.push(sample);
                    }
                }
            }
            let online_now = match &command {
                Some(ServerCommand::MarkOffline) => false,
                Some(ServerCommand::MarkOnline) => true,
                _ => server.online,
            };
            series.push(series_point(&server, &sample_now, online_now, now_ms));
            let forget = self.offline_policy_due(server.id, online_now);
            if forget {
                self.forget_meetings_of(server.id, &recorded, &mut report)
                    .await?;
            }
            let Some(command) = command else { continue };
            // From the row read at the cycle's start; a conflict folds afresh.
            let recorded = self
                .executor
                .execute_from::<Server>(
                    &server.id.stream(),
                    server.aggregate(),
                    server.version,
                    &command,
                    &metadata,
                )
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
        // What the loop read and built is let go before the writes: the
        // routing view, woken by the samples written, reads the new
        // listings while the rest of this cycle runs.
        drop((recorded, recorded_at, agent_listings));
        self.store
            .put_polled_samples(&with_listings, &keeping_listings, &listed_ahead)
            .await?;
        drop((with_listings, keeping_listings, listed_ahead));
        self.store
            .prune_meeting_listings(now_ms - LISTING_LIFETIME_MS)
            .await?;
        if !usage.is_empty() {
            let samples: Vec<UsageSample<'_>> = usage.iter().map(OwnedUsage::sample).collect();
            self.store
                .record_usage(&samples, &crate::records::day_of(now_ms))
                .await?;
        }
        self.summarize_usage().await?;
        // The console's charts only: a failure is logged, never the cycle's.
        if let Err(err) = self.keep_series(&series, now_ms).await {
            tracing::warn!(error = %err, "cannot write the console's time series");
        }
        Ok(report)
    }
}

impl HealthPoller {
    /// Writes this cycle's points of the time series (each replaces its
    /// server's point of the same minute) and, every ten minutes, prunes
    /// the points older than the configured span.
    async fn keep_series(
        &mut self,
        points: &[SeriesPoint],
        now_ms: i64,
    ) -> Result<(), HealthError> {
        let keep_ms = self.config.series_for.as_millis() as i64;
        if keep_ms == 0 {
            return Ok(());
        }
        self.store.record_series(points).await?;
        if now_ms - self.series_pruned_at_ms >= SERIES_PRUNE_EVERY_MS {
            self.store.prune_series(now_ms - keep_ms).await?;
            self.series_pruned_at_ms = now_ms;
        }
        Ok(())
    }
}

/// How often a poller prunes the time series (ms).
const SERIES_PRUNE_EVERY_MS: i64 = 10 * 60_000;

/// A server's point of the time series in the minute of `now_ms`: its
/// sample's figures, the load weighted by its multiplier.
fn series_point(
    server: &ServerRecord,
    sample: &ServerSample,
    online: bool,
    now_ms: i64,
) -> SeriesPoint {
    SeriesPoint {
        server_id: server.id,
        at_ms: crate::records::minute_of(now_ms),
        online,
        meetings: sample.meetings,
        attendees: sample.attendees,
        video: sample.video,
        load: sample.load * server.settings.load_multiplier,
        cpu_percent: sample.cpu_percent,
        memory_percent: sample.memory_percent,
    }
}

/// For a run whose create time Switchboard did not keep (a listing written
/// more than its lifetime ago, or not at all), the server's createTime must
/// be at least this old before a poll may reconcile it away: servers'
/// clocks may differ from Switchboard's.
pub const SERVER_CLOCK_GRACE: Duration = Duration::from_secs(30);

/// An unpolled agent server whose listing and recorded runs did not change
/// is still reconciled from its heartbeats this often.
const AGENT_RECONCILE_EVERY_MS: i64 = 60_000;

/// Ended runs summarized per cycle at most.
const SUMMARIES_PER_CYCLE: u64 = 500;

/// Summarized runs' usage rows are kept this long (their summaries stay in
/// the log).
const USAGE_ROWS_KEPT_MS: i64 = 7 * 24 * 3_600_000;

/// A sample whose content did not change is still written this often.
const SAMPLE_HEARTBEAT_MS: i64 = 60_000;

/// How old a pending placement must be before reconcile records the run it
/// finds for it: older than any create still in flight (attempts times the
/// backend timeout), so reconcile never races a create that will record
/// its run itself.
pub const PENDING_CREATE_GRACE_MS: i64 = 30_000;

/// Listings of created runs are kept this long; polls list the runs by then.
const LISTING_LIFETIME_MS: i64 = 10 * 60 * 1000;

impl HealthPoller {
    /// Whether a server's agent was heard within its missed-heartbeats bound.
    fn heard_lately(&self, server: &ServerRecord, heard: Option<&i64>, now_ms: i64) -> bool {
        let (Some(agent), Some(at_ms)) = (&server.agent, heard) else {
            return false;
        };
        let bound_ms =
            i64::from(self.config.agent_missed_heartbeats.max(1)) * agent.interval_ms as i64;
        now_ms - at_ms <= bound_ms
    }

    /// Tracks how long a server has been offline; true once its meetings
    /// are due to be forgotten under the configured policy.
    fn offline_policy_due(&mut self, server: ServerId, online: bool) -> bool {
        if online {
            self.offline.remove(&server);
            return false;
        }
        let now_ms = self.clock.now_ms();
        let (since_ms, forgotten) = self.offline.entry(server).or_insert((now_ms, false));
        if *forgotten {
            return false;
        }
        let due = match self.config.offline_meetings {
            OfflinePolicy::Forget => true,
            OfflinePolicy::KeepFor(grace) => now_ms - *since_ms >= grace.as_millis() as i64,
        };
        *forgotten = due;
        due
    }

    /// Forgets the running meetings of an offline server.
    async fn forget_meetings_of(
        &self,
        server: ServerId,
        recorded: &[MeetingRecord],
        report: &mut CycleReport,
    ) -> Result<(), HealthError> {
        let metadata = EventMetadata::actor("worker:health");
        for meeting in recorded
            .iter()
            .filter(|m| m.running && m.run.server_id == server)
        {
            end_run(
                &self.executor,
                meeting,
                EndReason::ServerOffline,
                self.clock.now_ms(),
                &metadata,
            )
            .await?;
            tracing::warn!(server = %server, meeting = %meeting.meeting_id, "forgot a meeting of an offline server");
            report.forgotten.push(meeting.meeting_id.to_string());
        }
        Ok(())
    }

    /// Brings the record in line with what a server listed.
    async fn reconcile(
        &self,
        server: &ServerRecord,
        recorded: &[MeetingRecord],
        listed: &[ListedMeeting],
        recorded_before_poll: &(dyn Fn(&MeetingRecord) -> bool + Sync),
        report: &mut CycleReport,
    ) -> Result<(), HealthError> {
        let metadata = EventMetadata::actor("worker:reconcile");
        self.hold_listed_voice_bridges(server.id, recorded, listed)
            .await?;
        let plan = plan(server.id, recorded, listed, recorded_before_poll);
        for meeting in plan.ended {
            // The server should have called Switchboard's end URLs; when it
            // could not, the front-end's end callbacks are owed now (with the
            // ids the server's calls would have had: written once).
            let now = self.clock.now_ms();
            let fallback = match self.store.meeting_run(&meeting.run.internal_id).await? {
                Some(run) => crate::callbacks::receive::fallback_end_deliveries(
                    &run,
                    now,
                    self.config.callback_retry_for,
                    self.config.callback_fallback_grace,
                ),
                None => Vec::new(),
            };
            crate::lifecycle::end_run_with_callbacks(
                &self.executor,
                &meeting,
                EndReason::GoneFromServer,
                now,
                &metadata,
                fallback,
            )
            .await?;
            tracing::info!(server = %server.id, meeting = %meeting.meeting_id, "meeting ended on its server");
            report.ended.push(meeting.meeting_id.to_string());
        }
        // Creates sent here but never recorded, settled past any create
        // still in flight.
        let pending = if plan.unknown.is_empty() {
            Vec::new()
        } else {
            let settled = self.clock.now_ms() - PENDING_CREATE_GRACE_MS;
            let mut pending = self.store.pending_placements_on(server.id).await?;
            pending.retain(|placement| placement.at_ms <= settled);
            pending
        };
        for stranger in plan.unknown {
            if self
                .finish_pending(server.id, &stranger, &pending, &metadata)
                .await?
            {
                continue;
            }
            // Warn once per meeting, not on every cycle it keeps running.
            let first_time = self
                .reported_unknown
                .lock()
                .map(|mut seen| {
                    if seen.len() >= 100_000 {
                        seen.clear();
                    }
                    seen.insert(stranger.internal_id.clone())
                })
                .unwrap_or(true);
            if first_time {
                tracing::warn!(server = %server.id, meeting = %stranger.meeting_id, "meeting runs on a server but is unknown to Switchboard");
            } else {
                tracing::debug!(server = %server.id, meeting = %stranger.meeting_id, "unknown meeting still running");
            }
            report.unknown.push(stranger.meeting_id.clone());
            if self.config.adopt_unknown {
                self.adopt(server.id, &stranger, &metadata).await?;
            }
        }
        if server.state == ServerState::Cordoned
            && disable_if_drained(self.store.as_ref(), &self.executor, server.id, &metadata).await?
        {
            report.drained.push(server.id);
        }
        Ok(())
    }

    /// Records the run of a create that was sent to this server but never
    /// recorded (Switchboard stopped in between): proven the tenant's by
    /// the pending placement it left. True when it was recorded.
    async fn finish_pending(
        &self,
        server: ServerId,
        stranger: &ListedMeeting,
        pending: &[PendingPlacement],
        metadata: &EventMetadata,
    ) -> Result<bool, HealthError> {
        let mut of_meeting = pending
            .iter()
            .filter(|placement| placement.meeting_id.as_str() == stranger.meeting_id);
        let (Some(placement), None) = (of_meeting.next(), of_meeting.next()) else {
            return Ok(false);
        };
        if self
            .store
            .meeting(&placement.tenant, &placement.meeting_id)
            .await?
            .is_some_and(|m| m.running)
        {
            return Ok(false);
        }
        let command = MeetingCommand::RecordCreated {
            tenant: placement.tenant.clone(),
            meeting_id: placement.meeting_id.clone(),
            name: stranger.meeting_id.clone(),
            run: MeetingRun {
                internal_id: stranger.internal_id.clone(),
                server_id: server,
                create_time_ms: create_time_of(&stranger.internal_id)
                    .unwrap_or_else(|| self.clock.now_ms()),
                recording_ready_url: placement.recording_ready_url.clone(),
                callbacks: placement.callbacks.clone().map(Box::new),
            },
        };
        self.executor
            .execute::<Meeting>(
                &meeting_stream(&placement.tenant, &placement.meeting_id),
                &command,
                metadata,
            )
            .await?;
        tracing::info!(%server, tenant = %placement.tenant, meeting = %stranger.meeting_id, "recorded the run of a create that was not recorded before");
        self.hold_voice_bridge(&placement.tenant, &placement.meeting_id, stranger)
            .await?;
        Ok(true)
    }

    /// Records a meeting found on a server as Switchboard's, unless that
    /// meetingID already runs elsewhere. Only where every front-end is the
    /// default tenant's: with tenants, a meeting nobody recorded may be any
    /// tenant's, so it is adopted by none (issue 15.A1).
    async fn adopt(
        &self,
        server: ServerId,
        stranger: &ListedMeeting,
        metadata: &EventMetadata,
    ) -> Result<(), HealthError> {
        let tenants = self.store.tenants().await?;
        let tenant = TenantId::owner_of_unknown_run(!tenants.is_empty());
        if tenant.is_unassigned() {
            tracing::debug!(server = %server, meeting = %stranger.meeting_id, "unknown meeting not adopted: with tenants its owner is unknown");
            return Ok(());
        }
        let Ok(meeting_id) = MeetingId::parse(&stranger.meeting_id) else {
            return Ok(());
        };
        if self
            .store
            .meeting(&tenant, &meeting_id)
            .await?
            .is_some_and(|m| m.running)
        {
            return Ok(());
        }
        let command = MeetingCommand::RecordCreated {
            tenant: tenant.clone(),
            meeting_id: meeting_id.clone(),
            name: stranger.meeting_id.clone(),
            run: MeetingRun {
                internal_id: stranger.internal_id.clone(),
                server_id: server,
                create_time_ms: create_time_of(&stranger.internal_id)
                    .unwrap_or_else(|| self.clock.now_ms()),
                recording_ready_url: None,
                callbacks: None,
            },
        };
        self.executor
            .execute::<Meeting>(&meeting_stream(&tenant, &meeting_id), &command, metadata)
            .await?;
        self.hold_voice_bridge(&tenant, &meeting_id, stranger).await
    }

    /// Appends the usage summary of every run that ended since the last
    /// cycle (`MeetingUsageSummarized`, in the meeting's stream; its
    /// projection marks the run summarized in the same transaction). A
    /// summary that cannot be appended now is tried again next cycle.
    async fn summarize_usage(&self) -> Result<(), HealthError> {
        let metadata = EventMetadata::actor("worker:usage");
        for run in self.store.runs_to_summarize(SUMMARIES_PER_CYCLE).await? {
            let (Some(usage), Ok(meeting_id)) = (run.summary(), MeetingId::parse(&run.meeting_id))
            else {
                self.store.close_usage(&run.internal_id).await?;
                continue;
            };
            let stream = meeting_stream(&run.tenant, &meeting_id);
            let command = MeetingCommand::SummarizeUsage(usage);
            match self
                .executor
                .execute::<Meeting>(&stream, &command, &metadata)
                .await
            {
                // The meeting runs this run again: nothing to summarize.
                Ok(executed) if executed.events.is_empty() => {
                    tracing::warn!(run = %run.internal_id, "a run's usage was not summarized: it runs again");
                    self.store.close_usage(&run.internal_id).await?;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(run = %run.internal_id, error = %err, "could not record a run's usage yet");
                }
            }
        }
        let keep_from = self.clock.now_ms() - USAGE_ROWS_KEPT_MS;
        self.store.prune_usage(keep_from).await?;
        Ok(())
    }

    /// Holds the voiceBridge each recorded meeting runs with on this server
    /// (once per run and process: a meeting running from before voice
    /// bridges were held, or started there by another instance), so no new
    /// meeting gets its number and dial-in finds it.
    async fn hold_listed_voice_bridges(
        &self,
        server: ServerId,
        recorded: &[MeetingRecord],
        listed: &[ListedMeeting],
    ) -> Result<(), HealthError> {
        let due: Vec<(&MeetingRecord, &ListedMeeting, &str)> = {
            let Ok(held) = self.voice_bridges_held.lock() else {
                return Ok(());
            };
            let fresh: Vec<&ListedMeeting> = listed
                .iter()
                .filter(|m| m.voice_bridge.is_some() && !held.contains(&m.internal_id))
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            let running_here: HashMap<&str, &MeetingRecord> = recorded
                .iter()
                .filter(|r| r.running && r.run.server_id == server)
                .map(|r| (r.run.internal_id.as_str(), r))
                .collect();
            fresh
                .into_iter()
                .filter_map(|m| {
                    let record = running_here.get(m.internal_id.as_str())?;
                    Some((*record, m, m.voice_bridge.as_deref()?))
                })
                .collect()
        };
        if due.is_empty() {
            return Ok(());
        }
        // Most runs were created here with their number claimed: one read
        // finds them, and only the others are claimed (before, every run a
        // poll saw first was claimed again, one write each: at 10,000
        // meetings, as many statements and flushes per cycle; issue 22).
        let numbers: Vec<&str> = due.iter().map(|(_, _, number)| *number).collect();
        let holders: HashMap<String, crate::records::VoiceBridgeClaim> = self
            .store
            .voice_bridge_holders(&numbers)
            .await?
            .into_iter()
            .map(|claim| (claim.number.clone(), claim))
            .collect();
        for (record, listed, number) in due {
            let its_own = holders.get(number).is_some_and(|claim| {
                claim.tenant == record.tenant && claim.meeting_id == record.meeting_id
            });
            if !its_own {
                self.hold_voice_bridge(&record.tenant, &record.meeting_id, listed)
                    .await?;
            }
            if let Ok(mut held) = self.voice_bridges_held.lock() {
                if held.len() >= 100_000 {
                    held.clear();
                }
                held.insert(listed.internal_id.clone());
            }
        }
        Ok(())
    }

    /// Holds the voiceBridge a meeting recorded from a server's list runs
    /// with, so no new meeting gets it and dial-in finds the meeting.
    async fn hold_voice_bridge(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
        stranger: &ListedMeeting,
    ) -> Result<(), HealthError> {
        let Some(number) = &stranger.voice_bridge else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let claim = crate::records::VoiceBridgeClaim {
            number: number.clone(),
            tenant: tenant.clone(),
            meeting_id: meeting_id.clone(),
            at_ms: now,
        };
        let stale_before = now - crate::meetings::voice_bridge::CLAIM_GRACE_MS;
        if !self.store.claim_voice_bridge(&claim, stale_before).await? {
            tracing::warn!(meeting = %meeting_id, voice_bridge = %number, "a recorded meeting's voice bridge is held by another running meeting");
        }
        Ok(())
    }
}

/// One run's figures from one listing, owned until the cycle's end.
struct OwnedUsage {
    internal_id: String,
    at_ms: i64,
    attendees: u64,
    video: u64,
    recording: bool,
}

impl OwnedUsage {
    fn sample(&self) -> UsageSample<'_> {
        UsageSample {
            internal_id: &self.internal_id,
            at_ms: self.at_ms,
            attendees: self.attendees,
            video: self.video,
            recording: self.recording,
        }
    }
}

/// The usage a server's listing (taken at `at_ms`) shows of the runs
/// recorded as running there.
fn usage_of(
    server: ServerId,
    recorded: &[MeetingRecord],
    listed: &[ListedMeeting],
    at_ms: i64,
) -> Vec<OwnedUsage> {
    let ours: std::collections::HashSet<&str> = recorded
        .iter()
        .filter(|m| m.running && m.run.server_id == server)
        .map(|m| m.run.internal_id.as_str())
        .collect();
    listed
        .iter()
        .filter(|m| ours.contains(m.internal_id.as_str()))
        .map(|m| OwnedUsage {
            internal_id: m.internal_id.clone(),
            at_ms,
            attendees: m.attendees,
            video: m.video,
            recording: m.recording,
        })
        .collect()
}

/// How many of the meetings a server listed Switchboard records as its own there.
fn known_on(server: ServerId, recorded: &[MeetingRecord], listed: &[ListedMeeting]) -> u64 {
    let listed: std::collections::HashSet<&str> =
        listed.iter().map(|m| m.internal_id.as_str()).collect();
    recorded
        .iter()
        .filter(|m| m.run.server_id == server && listed.contains(m.run.internal_id.as_str()))
        .count() as u64
}

/// A metrics read (`None`: no metrics URL) and when it ended (ms).
type MetricsRead = (Option<Result<NodeMetrics, MetricsError>>, i64);

/// Reads a server's metrics URL, if it has one, within the poll timeout.
async fn read_metrics(
    scraper: &dyn MetricsSource,
    clock: &dyn crate::clock::Clock,
    config: &HealthConfig,
    server: &ServerRecord,
) -> MetricsRead {
    let read = match &server.settings.metrics_url {
        Some(url) => Some(scraper.scrape(url, config.timeout).await),
        None => None,
    };
    (read, clock.now_ms())
}

/// What a successful poll of one server gave: its load, its meetings, and
/// their `<meeting>` elements as the server sent them.
pub(crate) type Probed = (Observed, Vec<ListedMeeting>, String);

/// A polled server's load, its meetings, its listing's digest and what
/// became of the listing.
type Polled = (Observed, Vec<ListedMeeting>, u64, PolledListing);

/// What became of a polled listing by the time the cycle looks at it.
#[derive(Debug)]
enum PolledListing {
    /// It differs from the stored one and was written ahead of the figures.
    WrittenAhead,
    /// The same as the stored one, or not needed: let go.
    LetGo,
    /// To be written with the figures (its write ahead failed).
    Held(String),
}

/// Writes a probed listing that differs from the stored one at once, so a
/// cycle does not hold every server's listing until its end (with 10,000
/// meetings on 10 servers, 10 MB); one that did not change is let go.
async fn write_ahead(
    store: &dyn Database,
    writing: &tokio::sync::Mutex<()>,
    stored_digests: &HashMap<ServerId, u64>,
    server: ServerId,
    (observed, listed, meetings_xml): Probed,
) -> Polled {
    let digest = listing_digest(&meetings_xml);
    if stored_digests.get(&server) == Some(&digest) {
        return (observed, listed, digest, PolledListing::LetGo);
    }
    let _one_at_a_time = writing.lock().await;
    let listing = match store
        .put_sample_listing(server, &meetings_xml, digest)
        .await
    {
        Ok(()) => PolledListing::WrittenAhead,
        Err(err) => {
            tracing::warn!(%server, error = %err, "cannot write a polled listing ahead; it is written with the figures");
            PolledListing::Held(meetings_xml)
        }
    };
    (observed, listed, digest, listing)
}

/// Asks one server for its meetings; `None` when it fails in any way.
async fn probe(
    backends: &Backends,
    clock: &dyn crate::clock::Clock,
    config: &HealthConfig,
    server: &ServerRecord,
) -> Option<Probed> {
    let response = backends
        .client()
        .call(
            backends.target(server),
            "getMeetings",
            "",
            None,
            config.timeout,
        )
        .await
        .ok()?;
    let body = std::str::from_utf8(&response.body).ok()?;
    picture_of(body, clock.now_ms(), &config.weights)
}

/// What a server's getMeetings answer shows: its load as polls and
/// heartbeats alike weigh it, the meetings listed, and their `<meeting>`
/// elements as sent. `None` when the answer is not a successful one.
pub(crate) fn picture_of(body: &str, now_ms: i64, weights: &LoadWeights) -> Option<Probed> {
    let answer = read_meetings(body).ok()?;
    if !answer.summary.is_success() {
        return None;
    }
    let listed = answer
        .meetings
        .iter()
        .map(|m| ListedMeeting {
            meeting_id: m.meeting_id.clone(),
            internal_id: m.internal_id.clone(),
            voice_bridge: m.voice_bridge.clone(),
            attendees: m.participants,
            video: m.video,
            recording: m.recording,
        })
        .collect();
    let observed = Observed {
        meetings: answer.meetings.len() as u64,
        attendees: answer.meetings.iter().map(|m| m.participants).sum(),
        video: answer.meetings.iter().map(|m| m.video).sum(),
        largest_meeting: answer
            .meetings
            .iter()
            .map(|m| m.participants)
            .max()
            .unwrap_or(0),
        load: answer
            .meetings
            .iter()
            .map(|m| {
                weights.meeting_load(MeetingSample {
                    attendees: m.participants,
                    video: m.video,
                    voice: m.voice,
                    age_seconds: (now_ms - m.create_time_ms).max(0) as u64 / 1000,
                })
            })
            .sum(),
        known_meetings: 0,
        metrics: MetricsStatus::default(),
    };
    // Sized once: grown by doubling it would hold up to twice its length.
    let mut meetings_xml = String::with_capacity(answer.meetings.iter().map(|m| m.raw.len()).sum());
    meetings_xml.extend(answer.meetings.iter().map(|m| m.raw));
    Some((observed, listed, meetings_xml))
}

/// The meetings a sample's `<meeting>` elements list (`None`: unreadable).
pub(crate) fn listed_in_sample(meetings_xml: &str) -> Option<Vec<ListedMeeting>> {
    let body = format!(
        "<response><returncode>SUCCESS</returncode><meetings>{meetings_xml}</meetings></response>"
    );
    let answer = read_meetings(&body).ok()?;
    Some(
        answer
            .meetings
            .iter()
            .map(|m| ListedMeeting {
                meeting_id: m.meeting_id.clone(),
                internal_id: m.internal_id.clone(),
                voice_bridge: m.voice_bridge.clone(),
                attendees: m.participants,
                video: m.video,
                recording: m.recording,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{BackendCall, NoMetrics, ScriptedBackend, answers};
    use crate::ports::prelude::*;
    use crate::testing::{NOW_MS, World, ended, meeting_id, url};
    use std::sync::atomic::{AtomicBool, Ordering};
    use switchboard_domain::events::DomainEvent;
    use switchboard_domain::server::ServerEvent;

    fn poller(world: &World, backend: &Arc<ScriptedBackend>, config: HealthConfig) -> HealthPoller {
        let ports = HealthPorts {
            store: world.store.clone(),
            executor: world.executor.clone(),
            backends: world.backends(backend),
            scraper: Arc::new(NoMetrics),
            clock: world.shared_clock(),
        };
        HealthPoller::new(ports, config, ObservedLoads::default())
    }

    /// The events appended since `before`, without usage summaries (an
    /// ended run's summary follows its end in the same cycle).
    fn changes_after(world: &World, before: i64) -> Vec<DomainEvent> {
        world
            .store
            .events_after_position(before)
            .into_iter()
            .filter(|event| event.type_name() != "MeetingUsageSummarized")
            .collect()
    }

    /// 3 failures to go offline, 2 successes to come back, 30 s grace,
    /// meetings of offline servers kept (longer than any test runs).
    fn config() -> HealthConfig {
        HealthConfig {
            offline_after: 3,
            online_after: 2,
            reconcile_grace: Duration::from_millis(250),
            offline_meetings: OfflinePolicy::KeepFor(Duration::from_secs(3600)),
            ..HealthConfig::default()
        }
    }

    #[tokio::test]
    async fn a_recorded_meeting_holds_the_voice_bridge_its_server_lists() {
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS).await;
        let holder = poll_listing_room_with_number(&world).await;
        assert_eq!(holder.unwrap().meeting_id, meeting_id("room"));
    }

    /// Polls once, 10 s on, a server listing "room" (run "room-1") with
    /// voice bridge 70123; returns who holds 70123 then.
    async fn poll_listing_room_with_number(
        world: &World,
    ) -> Option<crate::records::VoiceBridgeClaim> {
        let backend = Arc::new(ScriptedBackend::new(move |_, call, _| {
            assert_eq!(call, "getMeetings");
            let element = answers::meeting_element("room", "room-1", NOW_MS, 3)
                .replace("<running>", "<voiceBridge>70123</voiceBridge><running>");
            answers::meetings(&[element])
        }));
        let mut poller = poller(world, &backend, config());
        world.clock.advance_ms(10_000);
        poller.poll_once().await.unwrap();
        world.store.voice_bridge_holder("70123").await.unwrap()
    }

    /// Issue 22: a run created here holds its number already; the poll
    /// that first lists it reads the claim instead of writing it again.
    #[tokio::test]
    async fn a_number_the_meeting_holds_already_is_not_claimed_again() {
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS).await;
        let claim = crate::records::VoiceBridgeClaim {
            number: "70123".into(),
            tenant: TenantId::default_tenant(),
            meeting_id: meeting_id("room"),
            at_ms: NOW_MS,
        };
        assert!(world.store.claim_voice_bridge(&claim, 0).await.unwrap());
        let holder = poll_listing_room_with_number(&world).await;
        assert_eq!(holder, Some(claim), "held as created, not claimed again");
    }

    #[tokio::test]
    async fn each_poll_writes_its_minute_of_the_series_and_old_minutes_are_pruned() {
        use crate::clock::Clock as _;
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS).await;
        let attendees = Arc::new(std::sync::atomic::AtomicU64::new(3));
        let seen = attendees.clone();
        let backend = Arc::new(ScriptedBackend::new(move |_, _, _| {
            let element =
                answers::meeting_element("room", "room-1", NOW_MS, seen.load(Ordering::SeqCst))
                    .replace("<videoCount>0</videoCount>", "<videoCount>2</videoCount>");
            answers::meetings(&[element])
        }));
        let mut poller = poller(
            &world,
            &backend,
            HealthConfig {
                series_for: Duration::from_secs(3600),
                ..config()
            },
        );
        world.clock.advance_ms(10_000);
        poller.poll_once().await.unwrap();
        let points = world.store.series_since(0, None).await.unwrap();
        assert_eq!(points.len(), 1);
        let first = &points[0];
        assert_eq!(first.at_ms, crate::records::minute_of(world.clock.now_ms()));
        assert_eq!(
            (
                first.server_id,
                first.online,
                first.meetings,
                first.attendees,
                first.video
            ),
            (id, true, 1, 3, 2)
        );
        // Later in the same minute: the minute's point is replaced.
        attendees.store(5, Ordering::SeqCst);
        let to_minute_end = 59_999 - (world.clock.now_ms() - first.at_ms);
        world.clock.advance_ms(to_minute_end);
        poller.poll_once().await.unwrap();
        let points = world.store.series_since(0, None).await.unwrap();
        assert_eq!(
            points.iter().map(|p| p.attendees).collect::<Vec<_>>(),
            vec![5]
        );
        // Two hours on, with a one-hour span: the old minute is pruned.
        world.clock.advance_ms(2 * 3_600_000);
        poller.poll_once().await.unwrap();
        let points = world.store.series_since(0, None).await.unwrap();
        assert_eq!(points.len(), 1);
        assert!(points[0].at_ms > first.at_ms + 3_600_000);
    }

    /// The poll keeps only a digest of each server's last listing: a
    /// failed poll must still write the sample with the listing it had, an
    /// unchanged listing must not count as a change, a changed one must.
    #[tokio::test]
    async fn listings_are_compared_by_digest_and_kept_through_failed_polls() {
        use std::sync::atomic::AtomicU64;
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS).await;
        // 0: timeout; 1: the meeting; 2: the meeting renamed.
        let answer = Arc::new(AtomicU64::new(1));
        let seen = answer.clone();
        let backend = Arc::new(ScriptedBackend::new(move |_, _, _| {
            let element = answers::meeting_element("room", "room-1", NOW_MS, 3);
            match seen.load(Ordering::SeqCst) {
                0 => answers::timeout(),
                1 => answers::meetings(&[element]),
                _ => answers::meetings(&[element.replace(
                    "<meetingName>room</meetingName>",
                    "<meetingName>renamed</meetingName>",
                )]),
            }
        }));
        let mut poller = poller(&world, &backend, config());
        let sample = async || {
            world
                .store
                .server_samples()
                .await
                .unwrap()
                .into_iter()
                .find(|s| s.server_id == id)
                .unwrap()
        };
        // Twice: the success streak stops growing at `online_after`.
        for _ in 0..2 {
            world.clock.advance_ms(5_000);
            poller.poll_once().await.unwrap();
        }
        let first = sample().await;
        assert!(first.meetings_xml.contains("room-1"));

        // The same listing again: no change recorded.
        world.clock.advance_ms(5_000);
        poller.poll_once().await.unwrap();
        assert_eq!(sample().await.changed_at_ms, first.changed_at_ms);

        // A failed poll: the failure is written, the listing stays.
        answer.store(0, Ordering::SeqCst);
        world.clock.advance_ms(5_000);
        poller.poll_once().await.unwrap();
        let failed = sample().await;
        assert_eq!(failed.failures, 1);
        assert!(failed.changed_at_ms > first.changed_at_ms);
        assert_eq!(failed.meetings_xml, first.meetings_xml);

        // Back (twice, for the streak), then only the listing changes: a
        // new name, the same figures.
        answer.store(1, Ordering::SeqCst);
        for _ in 0..2 {
            world.clock.advance_ms(5_000);
            poller.poll_once().await.unwrap();
        }
        let back = sample().await;
        answer.store(2, Ordering::SeqCst);
        world.clock.advance_ms(5_000);
        poller.poll_once().await.unwrap();
        let renamed = sample().await;
        assert!(!renamed.figures_differ(&back));
        assert!(renamed.meetings_xml.contains("renamed"));
        assert!(renamed.changed_at_ms > back.changed_at_ms);
    }

    /// A changed listing is written as its answer arrives and its digest
    /// with the figures; a listing written ahead by a cycle that did not
    /// get to its figures counts as new on the next cycle (a new change
    /// time, so every reader looks again).
    #[tokio::test]
    async fn a_listing_written_ahead_by_an_unfinished_cycle_is_a_change_next_time() {
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS).await;
        let listing = answers::meeting_element("room", "room-1", NOW_MS, 3);
        let backend = Arc::new(ScriptedBackend::new(move |_, _, _| {
            answers::meetings(std::slice::from_ref(&listing))
        }));
        let mut poller = poller(&world, &backend, config());
        let figures = async || {
            world
                .store
                .server_sample_figures()
                .await
                .unwrap()
                .into_iter()
                .find(|(s, _)| s.server_id == id)
                .unwrap()
        };
        for _ in 0..2 {
            world.clock.advance_ms(5_000);
            poller.poll_once().await.unwrap();
        }
        let (first, digest) = figures().await;
        let stored = world.store.server_samples_of(&[id]).await.unwrap();
        assert!(stored[0].meetings_xml.contains("room-1"));
        assert_eq!(digest, listing_digest(&stored[0].meetings_xml));

        // A cycle wrote the same listing ahead and stopped before its figures.
        world
            .store
            .put_sample_listing(id, &stored[0].meetings_xml, digest)
            .await
            .unwrap();
        assert_ne!(figures().await.1, digest);
        world.clock.advance_ms(5_000);
        poller.poll_once().await.unwrap();
        let (after, digest_after) = figures().await;
        assert_eq!(digest_after, digest);
        assert!(after.changed_at_ms > first.changed_at_ms);
        assert!(!after.figures_differ(&first));
    }

    #[tokio::test]
    async fn a_server_flips_offline_after_n_failed_polls_and_online_after_m_good_ones() {
        let world = World::new();
        let id = world.server("a").await;
        let up = Arc::new(AtomicBool::new(false));
        let answering = up.clone();
        let backend = Arc::new(ScriptedBackend::new(move |_, call, _| {
            assert_eq!(call, "getMeetings");
            if answering.load(Ordering::SeqCst) {
                answers::meetings(&[])
            } else {
                answers::timeout()
            }
        }));
        let mut poller = poller(&world, &backend, config());
        let before = world.store.position();
        let mut poll = async || {
            world.clock.advance_ms(10_000);
            let report = poller.poll_once().await.unwrap();
            (
                report.went_offline,
                report.went_online,
                changes_after(&world, before),
            )
        };
        let offline: DomainEvent = ServerEvent::ServerWentOffline.into();
        let online: DomainEvent = ServerEvent::ServerWentOnline.into();

        assert_eq!(poll().await, (vec![], vec![], vec![]), "1st failure");
        assert_eq!(poll().await, (vec![], vec![], vec![]), "2nd failure");
        assert_eq!(
            poll().await,
            (vec![id], vec![], vec![offline.clone()]),
            "3rd failure"
        );
        assert_eq!(
            poll().await,
            (vec![], vec![], vec![offline.clone()]),
            "4th failure: recorded once"
        );
        up.store(true, Ordering::SeqCst);
        assert_eq!(
            poll().await,
            (vec![], vec![], vec![offline.clone()]),
            "1st success"
        );
        assert_eq!(
            poll().await,
            (vec![], vec![id], vec![offline, online]),
            "2nd success"
        );
        assert_eq!(
            backend.calls(),
            vec![BackendCall::new(url("a"), "getMeetings", ""); 6]
        );
        let sample = &world.store.server_samples().await.unwrap()[0];
        assert_eq!((sample.failures, sample.successes), (0, 2));
    }

    /// Issue 15.A1: a meeting a server runs for a create Switchboard never
    /// recorded (a crash in between) is recorded for the tenant whose
    /// pending placement proves it, once that placement is older than any
    /// create in flight; without such proof it stays unknown.
    #[tokio::test]
    async fn reconcile_records_the_run_of_a_create_left_pending() {
        let world = World::new();
        let id = world.server("a").await;
        let acme = TenantId("acme".into());
        for (meeting, age_ms) in [
            ("settled", PENDING_CREATE_GRACE_MS + 1),
            ("in-flight", 1_000),
        ] {
            world
                .store
                .put_pending_placement(&PendingPlacement {
                    tenant: acme.clone(),
                    meeting_id: meeting_id(meeting),
                    server_id: id,
                    at_ms: NOW_MS - age_ms,
                    recording_ready_url: Some(format!("https://lms.example/ready/{meeting}")),
                    callbacks: Some(switchboard_domain::meeting::RunCallbacks {
                        nonce: format!("nonce-{meeting}"),
                        meeting_ended_url: Some("https://lms.example/ended".into()),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap();
        }
        let backend = Arc::new(ScriptedBackend::new(|_, _, _| {
            answers::meetings(&[
                answers::meeting_element("settled", "settled-1", NOW_MS - 20_000, 2),
                answers::meeting_element("in-flight", "in-flight-1", NOW_MS - 500, 0),
                answers::meeting_element("stranger", "stranger-1", NOW_MS - 20_000, 1),
            ])
        }));
        let mut poller = poller(&world, &backend, config());

        let report = poller.poll_once().await.unwrap();

        assert_eq!(
            report.unknown,
            vec!["in-flight".to_owned(), "stranger".to_owned()]
        );
        let recorded = world
            .store
            .meeting(&acme, &meeting_id("settled"))
            .await
            .unwrap()
            .expect("recorded for its tenant");
        assert!(recorded.running);
        assert_eq!(recorded.run.internal_id, "settled-1");
        assert_eq!(recorded.run.server_id, id);
        // The run keeps what the server was given: its end URL's nonce and
        // the front-end's callbacks.
        let run = world
            .store
            .meeting_run_by_nonce("nonce-settled")
            .await
            .unwrap();
        let run = run.expect("the run is found by the nonce its server holds");
        assert_eq!(run.internal_id, "settled-1");
        assert_eq!(
            run.recording_ready_url.as_deref(),
            Some("https://lms.example/ready/settled")
        );
        assert_eq!(
            run.callbacks.unwrap().meeting_ended_url.as_deref(),
            Some("https://lms.example/ended")
        );
        assert!(
            world
                .store
                .meeting(&TenantId::default_tenant(), &meeting_id("stranger"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_meeting_its_server_no_longer_lists_is_ended_after_one_poll_unless_fresh() {
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("gone", "gone-1", id, NOW_MS - 60_000).await;
        world
            .meeting("listed", "listed-1", id, NOW_MS - 60_000)
            .await;
        world.meeting("fresh", "fresh-1", id, NOW_MS - 5_000).await;
        let backend = Arc::new(ScriptedBackend::new(|_, _, _| {
            answers::meetings(&[answers::meeting_element(
                "listed",
                "listed-1",
                NOW_MS - 60_000,
                3,
            )])
        }));
        let mut poller = poller(&world, &backend, config());
        let before = world.store.position();

        let report = poller.poll_once().await.unwrap();

        assert_eq!(report.ended, vec!["gone".to_owned()]);
        assert_eq!(report.unknown, Vec::<String>::new());
        assert_eq!(
            changes_after(&world, before),
            vec![ended("gone-1", EndReason::GoneFromServer, NOW_MS)]
        );
        let tenant = TenantId::default_tenant();
        let running = |id: &'static str| {
            let store = world.store.clone();
            let tenant = tenant.clone();
            async move {
                let record = store.meeting(&tenant, &meeting_id(id)).await.unwrap();
                record.unwrap().running
            }
        };
        assert!(!running("gone").await);
        assert!(running("listed").await);
        assert!(running("fresh").await, "younger than the grace: left alone");
    }

    #[tokio::test]
    async fn under_forget_the_meetings_of_a_server_gone_offline_are_ended_with_it() {
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS - 60_000).await;
        let backend = Arc::new(ScriptedBackend::new(|_, _, _| answers::status(502)));
        let config = HealthConfig {
            offline_after: 1,
            offline_meetings: OfflinePolicy::Forget,
            ..config()
        };
        let mut poller = poller(&world, &backend, config);
        let before = world.store.position();

        let report = poller.poll_once().await.unwrap();

        assert_eq!(report.forgotten, vec!["room".to_owned()]);
        assert_eq!(report.went_offline, vec![id]);
        assert_eq!(
            changes_after(&world, before),
            vec![
                ended("room-1", EndReason::ServerOffline, NOW_MS),
                ServerEvent::ServerWentOffline.into(),
            ]
        );
        let again = poller.poll_once().await.unwrap();
        assert_eq!(again.forgotten, Vec::<String>::new(), "forgotten once");
    }

    #[tokio::test]
    async fn under_keep_for_the_meetings_of_an_offline_server_are_ended_once_the_grace_is_over() {
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS - 60_000).await;
        let backend = Arc::new(ScriptedBackend::new(|_, _, _| answers::status(502)));
        let config = HealthConfig {
            offline_after: 1,
            offline_meetings: OfflinePolicy::KeepFor(Duration::from_secs(300)),
            ..config()
        };
        let mut poller = poller(&world, &backend, config);

        let first = poller.poll_once().await.unwrap();
        assert_eq!(first.went_offline, vec![id]);
        assert!(first.forgotten.is_empty(), "kept during the grace");
        world.clock.advance_ms(299_000);
        assert!(poller.poll_once().await.unwrap().forgotten.is_empty());
        world.clock.advance_ms(1_000);
        let due = poller.poll_once().await.unwrap();
        assert_eq!(
            due.forgotten,
            vec!["room".to_owned()],
            "forgotten once the grace is over"
        );
        assert!(poller.poll_once().await.unwrap().forgotten.is_empty());
    }
}
