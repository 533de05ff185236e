//! Node agents: a BBB server's own agent registers the server and pushes
//! heartbeats (its getMeetings answer, CPU counters and memory) instead of
//! being polled. A heartbeat is a health sample like a poll: the same
//! picture, the same load formula, the same CPU and memory window. Only
//! changes are recorded as events (online/offline, the agent's version or
//! interval, registration, going away); samples and heartbeat times are
//! written in batches by [`AgentService::flush`].
//!
//! [`watch::AgentWatch`] marks a server offline once its agent has missed
//! `missed_heartbeats` intervals.

pub mod watch;

use crate::admin::{Failure, Principal};
use crate::clock::SharedClock;
use crate::executor::CommandExecutor;
use crate::health::metrics_window::MetricsTracker;
use crate::health::picture_of;
use crate::ports::Database;
use crate::records::{ServerRecord, ServerSample};
use crate::routing::{ObservedLoads, RoutingView};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::ServerId;
use switchboard_domain::load::{LoadWeights, Observed};
use switchboard_domain::node_metrics::{MetricsError, NodeMetrics};
use switchboard_domain::server::{Server, ServerCommand, ServerSettings, validate_settings};
use switchboard_domain::server_metrics::CpuCounters;
use switchboard_domain::token::{Token, TokenCommand, TokenScope, token_stream};

/// How heartbeats are judged.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Intervals without a heartbeat before a server counts as offline;
    /// heartbeats whose BBB API call failed count the same.
    pub missed_heartbeats: u32,
    /// Whether servers with an agent are still polled (for reconciling
    /// their meetings only: health, load and CPU come from the agent).
    pub poll: bool,
    /// The load formula's weights (as the poller's).
    pub weights: LoadWeights,
    /// The CPU and memory window (as the poller's).
    pub metrics_window: Duration,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            missed_heartbeats: 3,
            poll: false,
            weights: LoadWeights::default(),
            metrics_window: Duration::from_secs(300),
        }
    }
}

/// The shortest heartbeat interval an agent may claim.
pub const MIN_INTERVAL_MS: u64 = 500;
/// The longest heartbeat interval an agent may claim.
pub const MAX_INTERVAL_MS: u64 = 3_600_000;

/// What an agent asks when it registers its server.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The server's API URL as BBB's `serverURL` gives it.
    pub url: String,
    /// BBB's `securitySalt`.
    pub secret: String,
    /// Tag, applied when the server is added only.
    pub tag: Option<String>,
    /// Load multiplier, applied when the server is added only.
    pub load_multiplier: Option<f64>,
    /// Start enabled (added servers are disabled otherwise).
    pub enable: bool,
    /// Add the server when its URL is unknown; false: only find it.
    pub add: bool,
    /// BBB's version and the heartbeat interval (ms), when the agent knows
    /// them: recorded now, so its first heartbeats append nothing.
    pub report: Option<(String, u64)>,
}

/// What registration did.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// The server the agent reports for.
    pub server: ServerId,
    /// Whether it was added now (false: it was known by its URL).
    pub added: bool,
}

/// One heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// The server it reports for.
    pub server: ServerId,
    /// BBB's version (empty when unknown).
    pub version: String,
    /// How often the agent sends them (ms).
    pub interval_ms: u64,
    /// The server's getMeetings answer, or why the agent could not get one.
    pub meetings: Result<String, String>,
    /// How long before sending the agent asked for that answer (ms; `None`:
    /// not said, taken as one interval). The listing counts as of then.
    pub listed_ago_ms: Option<u64>,
    /// CPU counters from `/proc/stat` (`None`: not read).
    pub cpu: Option<CpuCounters>,
    /// Used memory in percent from `/proc/meminfo`.
    pub memory_percent: Option<f64>,
}

/// What a heartbeat changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatOutcome {
    /// The server is online now.
    pub online: bool,
    /// Events appended (0 when nothing changed).
    pub events: usize,
}

/// Writes not yet flushed.
#[derive(Debug, Default)]
struct Pending {
    samples: HashMap<ServerId, ServerSample>,
    heard: HashMap<ServerId, i64>,
}

/// What the service keeps per server between heartbeats.
#[derive(Debug, Default)]
struct Memory {
    tracker: MetricsTracker,
    samples: HashMap<ServerId, ServerSample>,
    /// (fingerprint of the listed runs and the runs recorded there, known).
    known: HashMap<ServerId, (u64, u64)>,
}

/// The agents' use cases: register, heartbeat, leave.
#[derive(Debug)]
pub struct AgentService {
    store: Arc<dyn Database>,
    executor: CommandExecutor,
    clock: SharedClock,
    loads: ObservedLoads,
    routing: Option<Arc<RoutingView>>,
    settings: AgentSettings,
    memory: Mutex<Memory>,
    pending: Mutex<Pending>,
}

fn metadata(principal: &Principal) -> EventMetadata {
    EventMetadata::actor(format!("agent:{}", principal.name))
}

/// Whether a principal may speak for `server`: an admin token, or the node
/// token bound to it.
fn authorize(principal: &Principal, server: ServerId) -> Result<(), Failure> {
    match (principal.scope, principal.server) {
        (TokenScope::Admin, _) => Ok(()),
        (TokenScope::Node, Some(bound)) if bound == server => Ok(()),
        (TokenScope::Node, Some(bound)) => Err(Failure::Forbidden(format!(
            "node token `{}` speaks for server {bound} only",
            principal.name
        ))),
        (TokenScope::Node, None) => Err(Failure::Forbidden(format!(
            "node token `{}` is not bound to a server yet: register first (`switchboard agent --register`)",
            principal.name
        ))),
        (TokenScope::Read, _) => Err(Failure::Forbidden(format!(
            "token `{}` has the read scope; agent calls need a node token",
            principal.name
        ))),
    }
}

/// Checks what an agent says of itself: its interval and BBB's version.
fn check_report(version: &str, interval_ms: u64) -> Result<(), Failure> {
    if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval_ms) {
        return Err(Failure::Invalid(format!(
            "interval must be between {MIN_INTERVAL_MS} ms and {MAX_INTERVAL_MS} ms"
        )));
    }
    if version.len() > 64 || version.chars().any(char::is_control) {
        return Err(Failure::Invalid(
            "version must be at most 64 printable characters".into(),
        ));
    }
    Ok(())
}

fn secrets_match(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A fingerprint of the runs a server listed and of how many Switchboard
/// records there, to skip recounting them while neither changes.
fn listed_fingerprint(listed: &[crate::health::reconcile::ListedMeeting], recorded: u64) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for meeting in listed {
        meeting.internal_id.hash(&mut hasher);
    }
    recorded.hash(&mut hasher);
    hasher.finish()
}

impl AgentService {
    /// Agents' calls over `store`, recording through `executor`, sharing
    /// what heartbeats show in `loads` (the routing view's).
    pub fn new(
        store: Arc<dyn Database>,
        executor: CommandExecutor,
        clock: SharedClock,
        loads: ObservedLoads,
        routing: Option<Arc<RoutingView>>,
        settings: AgentSettings,
    ) -> Self {
        Self {
            store,
            executor,
            clock,
            loads,
            routing,
            settings,
            memory: Mutex::default(),
            pending: Mutex::default(),
        }
    }

    /// Registers the agent's server: added when its URL is new (with the
    /// tag, multiplier and enabled state asked), found by URL otherwise. A
    /// node token is bound to it; a node token bound to another server, or
    /// an unbound one giving a known server's URL with another secret, is
    /// refused. The bound agent's secret replaces a changed one (BBB's own
    /// settings are the truth); other settings are the operator's.
    pub async fn register(
        &self,
        principal: &Principal,
        registration: Registration,
    ) -> Result<Registered, Failure> {
        if !principal.scope.allows(TokenScope::Node) {
            return Err(authorize(principal, ServerId::new()).unwrap_err());
        }
        let settings = validate_settings(ServerSettings {
            url: registration.url.clone(),
            secret: registration.secret.trim().to_owned(),
            tag: registration.tag.clone(),
            load_multiplier: registration.load_multiplier.unwrap_or(1.0),
            checksum: None,
            metrics_url: None,
        })
        .map_err(|err| Failure::Invalid(err.to_string()))?;
        if let Some((version, interval_ms)) = &registration.report {
            check_report(version, *interval_ms)?;
        }
        let metadata = metadata(principal);
        let known = self.routing.as_ref().and_then(|routing| {
            routing
                .servers()
                .values()
                .find(|server| server.settings.url == settings.url)
                .map(|server| (**server).clone())
        });
        let existing = match known {
            Some(server) => Some(server),
            None => self.store.server_by_url(&settings.url).await?,
        };
        if let (Some(bound), TokenScope::Node) = (principal.server, principal.scope)
            && existing.as_ref().map(|server| server.id) != Some(bound)
        {
            return Err(Failure::Forbidden(format!(
                "node token `{}` speaks for server {bound}, not for {}",
                principal.name, settings.url
            )));
        }
        let bind = principal.scope == TokenScope::Node && principal.server.is_none();
        let registered = match existing {
            Some(server) => {
                let same_secret = secrets_match(&server.settings.secret, &settings.secret);
                if bind && !same_secret {
                    return Err(Failure::Forbidden(format!(
                        "server {} ({}) is registered with another secret: bind the token to it with `switchboard tokens create NAME --scope node --server {}`, or correct the secret",
                        server.id, settings.url, server.id
                    )));
                }
                if bind {
                    self.bind(principal, server.id, &metadata).await?;
                }
                if !same_secret {
                    let changes = switchboard_domain::server::ServerChanges {
                        secret: Some(settings.secret.clone()),
                        ..Default::default()
                    };
                    self.executor
                        .execute::<Server>(
                            &server.id.stream(),
                            &ServerCommand::Update(changes),
                            &metadata,
                        )
                        .await?;
                    tracing::info!(server = %server.id, "agent updated the server's secret");
                }
                Registered {
                    server: server.id,
                    added: false,
                }
            }
            None if !registration.add => {
                return Err(Failure::NotFound(format!(
                    "no server has the URL {}: run the agent with --register, or add it with `switchboard servers add`",
                    settings.url
                )));
            }
            None => {
                // Bound first: a token racing itself (two registrations at
                // once) adds one server, not two.
                let id = ServerId::new();
                if bind {
                    self.bind(principal, id, &metadata).await?;
                }
                self.executor
                    .execute::<Server>(
                        &id.stream(),
                        &ServerCommand::Add {
                            id,
                            settings,
                            enabled: registration.enable,
                        },
                        &metadata,
                    )
                    .await?;
                tracing::info!(server = %id, "agent registered a new server");
                Registered {
                    server: id,
                    added: true,
                }
            }
        };
        if let Some((version, interval_ms)) = registration.report {
            // Heard now: an agent that never sends a heartbeat is noticed.
            self.store
                .put_agent_heartbeats(&[], &[(registered.server, self.clock.now_ms())])
                .await?;
            self.execute(
                registered.server,
                &ServerCommand::ReportAgent {
                    version,
                    interval_ms,
                },
                &metadata,
            )
            .await?;
        }
        Ok(registered)
    }

    /// Binds a node token to the server it registers.
    async fn bind(
        &self,
        principal: &Principal,
        server: ServerId,
        metadata: &EventMetadata,
    ) -> Result<(), Failure> {
        self.executor
            .execute::<Token>(
                &token_stream(&principal.name),
                &TokenCommand::Bind(server),
                metadata,
            )
            .await
            .map_err(|err| match err {
                crate::CommandError::Rejected(refused) => Failure::Forbidden(refused.to_string()),
                other => other.into(),
            })?;
        Ok(())
    }

    /// As [`authorize`], with the token's binding read afresh before a
    /// node token is refused (it may have been bound through another
    /// instance since it was read).
    async fn authorized(&self, principal: &Principal, server: ServerId) -> Result<(), Failure> {
        match authorize(principal, server) {
            Err(refused) if principal.scope == TokenScope::Node => {
                let bound = self
                    .store
                    .tokens()
                    .await?
                    .into_iter()
                    .find(|token| token.name == principal.name)
                    .and_then(|token| token.server);
                if bound == Some(server) {
                    Ok(())
                } else {
                    Err(refused)
                }
            }
            other => other,
        }
    }

    async fn server(&self, id: ServerId) -> Result<ServerRecord, Failure> {
        let record = match &self.routing {
            Some(routing) => routing.server(id).map(|record| (*record).clone()),
            None => None,
        };
        let record = match record {
            Some(record) => Some(record),
            None => self.store.server(id).await?,
        };
        record.ok_or_else(|| {
            Failure::NotFound(format!(
                "no server {id}: it was removed from the pool; this node token stays bound to it, so give the agent a new node token to register the server again"
            ))
        })
    }

    /// Takes one heartbeat: the server's picture and CPU/memory for
    /// placement at once, its sample and heartbeat time for the next flush,
    /// and an event only when something changed.
    pub async fn heartbeat(
        &self,
        principal: &Principal,
        beat: Heartbeat,
    ) -> Result<HeartbeatOutcome, Failure> {
        self.authorized(principal, beat.server).await?;
        check_report(&beat.version, beat.interval_ms)?;
        let server = self.server(beat.server).await?;
        let now_ms = self.clock.now_ms();
        let picture = match &beat.meetings {
            Ok(body) => picture_of(body, now_ms, &self.settings.weights),
            Err(_) => None,
        };
        let known = match &picture {
            Some((_, listed, _)) => Some(self.known_meetings(server.id, listed).await?),
            None => None,
        };
        let previous = self.previous_sample(server.id).await?;
        let missed = self.settings.missed_heartbeats.max(1);
        let (sample, observed, write) = {
            let mut memory = self.memory.lock().expect("agent memory");
            let read = match beat.cpu {
                Some(cpu) => Some(Ok(NodeMetrics {
                    cpu,
                    memory_percent: beat.memory_percent,
                })),
                None => Some(Err(MetricsError::NoCpu)),
            };
            let metrics = memory.tracker.record(
                server.id,
                Some("agent"),
                read,
                now_ms,
                self.settings.metrics_window,
            );
            let mut sample = previous.clone();
            sample.cpu_percent = metrics.usage.cpu_percent;
            sample.memory_percent = metrics.usage.memory_percent;
            sample.metrics_state = metrics.state;
            sample.metrics_error = metrics.error.clone();
            sample.metrics_read_at_ms = metrics.read_at_ms;
            let observed = match (picture, known) {
                (Some((observed, _, meetings_xml)), Some(known)) => {
                    let observed = Observed {
                        known_meetings: known,
                        metrics,
                        ..observed
                    };
                    sample.successes = 1;
                    sample.record_picture(&observed, meetings_xml);
                    observed
                }
                _ => {
                    sample.successes = 0;
                    sample.failures = (sample.failures + 1).min(missed);
                    // The last good picture stays, as a failed poll leaves it.
                    sample.observed_with(metrics)
                }
            };
            // The listing is as of when the agent asked for it (the
            // reconcile from it must not end runs recorded after that); a
            // failed heartbeat leaves the last listing's time as it was.
            let listed_at_ms = now_ms
                - beat
                    .listed_ago_ms
                    .unwrap_or(beat.interval_ms)
                    .min(beat.interval_ms.max(MAX_LISTING_AGE_MS)) as i64;
            let listed = sample.successes > 0;
            let write = if sample.content_differs(&previous) {
                sample.changed_at_ms = now_ms;
                true
            } else {
                now_ms - previous.polled_at_ms >= SAMPLE_REFRESH_MS
            };
            if write && listed {
                sample.polled_at_ms = listed_at_ms.max(previous.polled_at_ms);
            }
            memory.samples.insert(server.id, sample.clone());
            (sample, observed, write)
        };
        self.loads.set(server.id, observed, sample.polled_at_ms);
        let online_changes = sample.successes > 0 && !server.online;
        let reported = server.agent.as_ref().is_some_and(|agent| {
            !agent.away && agent.version == beat.version && agent.interval_ms == beat.interval_ms
        });
        if online_changes || !reported {
            // Written before the events, so the watch never sees the server
            // back with the time of its last heartbeat before the outage.
            self.store
                .put_agent_heartbeats(&[], &[(server.id, now_ms)])
                .await?;
        }
        {
            let mut pending = self.pending.lock().expect("agent pending");
            if write {
                pending.samples.insert(server.id, sample.clone());
            }
            pending.heard.insert(server.id, now_ms);
        }
        let metadata = metadata(principal);
        let mut events = 0;
        if !reported {
            events += self
                .execute(
                    server.id,
                    &ServerCommand::ReportAgent {
                        version: beat.version.clone(),
                        interval_ms: beat.interval_ms,
                    },
                    &metadata,
                )
                .await?;
        }
        let online = if sample.successes > 0 {
            if !server.online {
                events += self
                    .execute(server.id, &ServerCommand::MarkOnline, &metadata)
                    .await?;
                tracing::info!(server = %server.id, "server back online (agent heartbeat)");
            }
            true
        } else {
            if server.online && sample.failures >= missed {
                events += self
                    .execute(server.id, &ServerCommand::MarkOffline, &metadata)
                    .await?;
                tracing::warn!(server = %server.id, "server went offline: its agent cannot reach BBB's API");
                false
            } else {
                server.online
            }
        };
        Ok(HeartbeatOutcome { online, events })
    }

    /// The agent is going away cleanly: the server takes no new meetings
    /// until it is back (its meetings go on; it is not marked offline).
    pub async fn leave(&self, principal: &Principal, server: ServerId) -> Result<(), Failure> {
        self.authorized(principal, server).await?;
        self.server(server).await?;
        self.execute(server, &ServerCommand::AgentLeave, &metadata(principal))
            .await?;
        tracing::info!(%server, "agent went away: the server takes no new meetings until it is back");
        Ok(())
    }

    /// Writes the samples and heartbeat times taken since the last flush.
    pub async fn flush(&self) -> Result<(), crate::StoreError> {
        let pending = std::mem::take(&mut *self.pending.lock().expect("agent pending"));
        if pending.samples.is_empty() && pending.heard.is_empty() {
            return Ok(());
        }
        let samples: Vec<ServerSample> = pending.samples.into_values().collect();
        let heard: Vec<(ServerId, i64)> = pending.heard.into_iter().collect();
        let result = self.store.put_agent_heartbeats(&samples, &heard).await;
        if result.is_err() {
            // Kept for the next flush unless newer ones came in meanwhile.
            let mut pending = self.pending.lock().expect("agent pending");
            for sample in samples {
                pending.samples.entry(sample.server_id).or_insert(sample);
            }
            for (server, at_ms) in heard {
                pending.heard.entry(server).or_insert(at_ms);
            }
        }
        result
    }

    /// Flushes every `every`, forever.
    pub async fn run_flusher(self: Arc<Self>, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(err) = self.flush().await {
                tracing::warn!(error = %err, "agent heartbeats could not be written");
            }
        }
    }

    async fn execute(
        &self,
        server: ServerId,
        command: &ServerCommand,
        metadata: &EventMetadata,
    ) -> Result<usize, Failure> {
        Ok(self
            .executor
            .execute::<Server>(&server.stream(), command, metadata)
            .await?
            .events
            .len())
    }

    async fn previous_sample(&self, server: ServerId) -> Result<ServerSample, Failure> {
        if let Some(sample) = self
            .memory
            .lock()
            .expect("agent memory")
            .samples
            .get(&server)
        {
            return Ok(sample.clone());
        }
        Ok(self
            .store
            .server_samples_of(&[server])
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| ServerSample::new(server)))
    }

    /// Of the runs a server listed, those Switchboard records there;
    /// recounted only when the listing or the recorded runs changed.
    async fn known_meetings(
        &self,
        server: ServerId,
        listed: &[crate::health::reconcile::ListedMeeting],
    ) -> Result<u64, Failure> {
        let recorded = self
            .routing
            .as_ref()
            .map(|routing| routing.meetings_on(server));
        let fingerprint = listed_fingerprint(listed, recorded.unwrap_or_default());
        if recorded.is_some() {
            let memory = self.memory.lock().expect("agent memory");
            if let Some((seen, known)) = memory.known.get(&server)
                && *seen == fingerprint
            {
                return Ok(*known);
            }
        }
        let known = if listed.is_empty() {
            0
        } else {
            let recorded: std::collections::HashSet<String> = self
                .store
                .running_runs_on(server)
                .await?
                .into_iter()
                .collect();
            listed
                .iter()
                .filter(|meeting| recorded.contains(&meeting.internal_id))
                .count() as u64
        };
        self.memory
            .lock()
            .expect("agent memory")
            .known
            .insert(server, (fingerprint, known));
        Ok(known)
    }
}

/// A heartbeat's sample whose content did not change is still written this
/// often (as the poller's).
const SAMPLE_REFRESH_MS: i64 = 60_000;

/// The oldest a heartbeat's listing is taken to be (beyond its interval).
const MAX_LISTING_AGE_MS: u64 = 30_000;

#[cfg(test)]
mod tests;
