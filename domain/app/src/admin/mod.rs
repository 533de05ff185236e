//! The administration use cases behind the admin API and the CLI's local
//! mode: each reads projections, runs commands through the executor (every
//! change an event with the caller as actor) and answers with read models
//! ([`views`]); the transports render them.

mod history;
mod packed;
pub use history::History;
pub mod scalelite;
pub mod tenants;
pub mod token_cache;
pub mod views;

use crate::StoreError;
use crate::backend::Backends;
use crate::clock::SharedClock;
use crate::executor::{CommandError, CommandExecutor, Executed};
use crate::lifecycle::{disable_if_drained, end_run};
use crate::ports::Database;
use crate::records::{EventFilter, MeetingRecord, ServerRecord, StoredEvent};
use crate::routing::RoutingView;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_domain::bbb::params::Params;
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_domain::load::{LoadWeights, ServerLoad};
use switchboard_domain::meeting::{EndReason, MeetingError};
use switchboard_domain::node_metrics::MetricsStatus;
use switchboard_domain::server::{
    Server, ServerChanges, ServerCommand, ServerError, ServerEvent, ServerSettings,
};
use switchboard_domain::server_metrics::redact_credentials;
use switchboard_domain::token::Token;
use switchboard_domain::token::{TokenCommand, TokenError, TokenScope, hash_token};
use thiserror::Error;
use views::*;

/// Why an admin operation failed, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Failure {
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or a value is not allowed.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The caller's token does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// A BBB server failed.
    #[error("{0}")]
    Upstream(String),
    /// The database failed.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "admin: database failure");
        Failure::Internal(format!("database failure: {err}"))
    }
}

impl From<CommandError<ServerError>> for Failure {
    fn from(err: CommandError<ServerError>) -> Self {
        match err {
            CommandError::Store(err) => err.into(),
            CommandError::Rejected(ServerError::NotFound) => {
                Failure::NotFound("no such server".into())
            }
            CommandError::Rejected(err @ ServerError::Removed(_)) => {
                Failure::NotFound(err.to_string())
            }
            CommandError::Rejected(err @ ServerError::AlreadyExists(_)) => {
                Failure::Conflict(err.to_string())
            }
            CommandError::Rejected(err) => Failure::Invalid(err.to_string()),
        }
    }
}

impl From<CommandError<TokenError>> for Failure {
    fn from(err: CommandError<TokenError>) -> Self {
        match err {
            CommandError::Store(err) => err.into(),
            CommandError::Rejected(err @ TokenError::NotFound(_)) => {
                Failure::NotFound(err.to_string())
            }
            CommandError::Rejected(err @ TokenError::Exists(_)) => {
                Failure::Conflict(err.to_string())
            }
            CommandError::Rejected(err) => Failure::Invalid(err.to_string()),
        }
    }
}

impl From<CommandError<MeetingError>> for Failure {
    fn from(err: CommandError<MeetingError>) -> Self {
        match err {
            CommandError::Store(err) => err.into(),
            CommandError::Rejected(err) => Failure::Conflict(err.to_string()),
        }
    }
}

/// What a server said to an `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EndOutcome {
    /// It ended the meeting.
    Ended,
    /// It no longer had the meeting.
    Gone,
    /// It failed; why.
    Failed(String),
}

/// Who is calling: the actor recorded in events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name (or `cli`).
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// For a node token: the server it speaks for (once bound).
    pub server: Option<ServerId>,
}

impl Principal {
    /// An operator with the admin scope (the CLI, set-up code, tests).
    pub fn admin(name: String) -> Self {
        Self {
            name,
            scope: TokenScope::Admin,
            server: None,
        }
    }
}

/// The admin operations over one database.
#[derive(Debug, Clone)]
pub struct AdminService {
    store: Arc<dyn Database>,
    executor: CommandExecutor,
    backends: Backends,
    clock: SharedClock,
    weights: LoadWeights,
    routing: Option<Arc<RoutingView>>,
    history: history::History,
    tokens: Arc<token_cache::TokenCache>,
}

fn parse_server_id(id: &str) -> Result<ServerId, Failure> {
    id.parse().map_err(|_| {
        Failure::Invalid(format!(
            "`{id}` is not a server id (a UUID as the server list shows)"
        ))
    })
}

fn parse_checksum(name: &str) -> Result<ChecksumAlgorithm, Failure> {
    ChecksumAlgorithm::parse(name).ok_or_else(|| {
        Failure::Invalid(format!(
            "unknown checksum algorithm `{name}`: use sha1, sha256, sha384 or sha512"
        ))
    })
}

fn meeting_view(record: &MeetingRecord) -> MeetingView {
    MeetingView {
        tenant: record.tenant.to_string(),
        meeting_id: record.meeting_id.to_string(),
        name: record.name.clone(),
        internal_id: record.run.internal_id.clone(),
        server_id: record.run.server_id.to_string(),
        running: record.running,
        create_time_ms: record.run.create_time_ms,
        ended_at_ms: record.ended_at_ms,
    }
}

/// A payload as operators may see it: secrets replaced, passwords in
/// metrics URLs too.
fn redacted_payload(event: &DomainEvent) -> serde_json::Value {
    let mut payload = event.to_payload().unwrap_or_default();
    for pointer in ["/settings/secret", "/changes/secret", "/hash", "/secret"] {
        if let Some(value) = payload.pointer_mut(pointer) {
            *value = serde_json::Value::String("***".into());
        }
    }
    for pointer in [
        "/settings/metrics_url",
        "/changes/metrics_url",
        "/settings/url",
        "/changes/url",
    ] {
        if let Some(serde_json::Value::String(url)) = payload.pointer_mut(pointer) {
            *url = redact_credentials(url);
        }
    }
    payload
}

fn event_view(stored: StoredEvent) -> EventView {
    EventView {
        position: stored.position,
        stream: stored.stream.to_string(),
        version: stored.version,
        event_type: stored.event.type_name().to_owned(),
        payload: redacted_payload(&stored.event),
        actor: stored.metadata.actor,
        request_id: stored.metadata.request_id,
        recorded_at: stored.recorded_at,
    }
}

/// Generates a 40-character hex secret, as `bbb-conf --secret` shows them.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Generates an admin token: `sbt_` and 40 hex characters.
pub fn generate_token() -> String {
    format!("sbt_{}", generate_secret())
}

impl AdminService {
    /// Operations on `store`, recorded through `executor`; `routing` (when
    /// serving) adds live load data.
    pub fn new(
        store: Arc<dyn Database>,
        executor: CommandExecutor,
        backends: Backends,
        clock: SharedClock,
        weights: LoadWeights,
        routing: Option<Arc<RoutingView>>,
    ) -> Self {
        Self {
            store,
            executor,
            backends,
            clock,
            weights,
            routing,
            history: history::History::default(),
            tokens: Arc::default(),
        }
    }

    /// The cache of tokens in force, to subscribe to the executor's appends
    /// (token changes made in this process then count at once).
    pub fn token_cache(&self) -> Arc<token_cache::TokenCache> {
        self.tokens.clone()
    }

    /// Runs a server command.
    async fn execute_server(
        &self,
        id: ServerId,
        command: &ServerCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<ServerEvent>, CommandError<ServerError>> {
        self.executor
            .execute::<Server>(&id.stream(), command, metadata)
            .await
    }

    fn metadata(principal: &Principal) -> EventMetadata {
        EventMetadata {
            actor: principal.name.clone(),
            request_id: Some(generate_secret()),
            tenant: None,
        }
    }

    /// The principal of a bearer token, if it is in force.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, Failure> {
        self.principal_of_hash(&hash_token(token)).await
    }

    /// The principal of the token with this hash (as [`hash_token`] makes
    /// it), if it is in force: how a console session, which keeps the hash
    /// and never the token, finds its token still valid.
    pub async fn principal_of_hash(&self, hash: &str) -> Result<Option<Principal>, Failure> {
        Ok(self
            .tokens
            .find(self.store.as_ref(), hash)
            .await?
            .map(|record| Principal {
                name: record.name,
                scope: record.scope,
                server: record.server,
            }))
    }

    /// When the agents of these servers (those with one) were last heard
    /// (empty when it cannot be read).
    async fn heard(&self, servers: &[ServerRecord]) -> HashMap<ServerId, i64> {
        let with_agent: Vec<ServerId> = servers
            .iter()
            .filter(|server| server.agent.is_some())
            .map(|server| server.id)
            .collect();
        if with_agent.is_empty() {
            return HashMap::new();
        }
        match self.store.heartbeats_of(&with_agent).await {
            Ok(heard) => heard.into_iter().collect(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the agents' heartbeats");
                HashMap::new()
            }
        }
    }

    async fn server_view(
        &self,
        record: &ServerRecord,
        meetings: u64,
        heard: &HashMap<ServerId, i64>,
    ) -> ServerView {
        let (attendees, load, metrics) = match &self.routing {
            Some(routing) => (
                routing.attendees_of(record.id),
                routing.load_of(record),
                routing.metrics_of(record.id).unwrap_or_default(),
            ),
            None => {
                // No routing view here (the CLI on the database): the
                // shared sample has what the poller last read.
                let metrics = match self.store.server_samples_of(&[record.id]).await {
                    Ok(samples) => samples
                        .first()
                        .map(|sample| sample.metrics_status())
                        .unwrap_or_default(),
                    Err(err) => {
                        tracing::warn!(server = %record.id, error = %err, "cannot read the server's sample");
                        MetricsStatus::default()
                    }
                };
                let load = self.weights.effective_load(
                    ServerLoad {
                        meetings,
                        ..ServerLoad::default()
                    },
                    record.settings.load_multiplier,
                    metrics.usage,
                );
                (0, load, metrics)
            }
        };
        // A URL removed since the last poll: nothing is read any more (an
        // agent reports them itself).
        let metrics = if record.settings.metrics_url.is_some() || record.agent.is_some() {
            metrics
        } else {
            MetricsStatus::default()
        };
        ServerView {
            id: record.id.to_string(),
            url: redact_credentials(&record.settings.url),
            tag: record.settings.tag.clone(),
            load_multiplier: record.settings.load_multiplier,
            checksum: record.settings.checksum.map(|c| c.name().to_owned()),
            state: record.state.as_str().to_owned(),
            online: record.online,
            meetings,
            attendees,
            load,
            metrics_url: record
                .settings
                .metrics_url
                .as_deref()
                .map(redact_credentials),
            metrics_state: metrics.state.as_str().to_owned(),
            cpu_percent: metrics.usage.cpu_percent,
            memory_percent: metrics.usage.memory_percent,
            metrics_error: metrics.error,
            metrics_read_at_ms: metrics.read_at_ms,
            agent: record.agent.is_some(),
            agent_version: record
                .agent
                .as_ref()
                .map(|agent| agent.version.clone())
                .filter(|version| !version.is_empty()),
            agent_interval_ms: record.agent.as_ref().map(|agent| agent.interval_ms),
            agent_away: record.agent_away(),
            heard_at_ms: heard.get(&record.id).copied(),
            over_limit: self.weights.over_limit(metrics.usage),
        }
    }

    async fn running_on(&self, id: ServerId) -> Result<u64, Failure> {
        Ok(self
            .store
            .running_meetings_per_server()
            .await?
            .get(&id)
            .copied()
            .unwrap_or(0))
    }

    async fn record(&self, id: ServerId) -> Result<ServerRecord, Failure> {
        self.store
            .server(id)
            .await?
            .ok_or_else(|| Failure::NotFound(format!("no server with id {id}")))
    }

    /// Every server.
    pub async fn servers(&self) -> Result<Vec<ServerView>, Failure> {
        let counts = self.store.running_meetings_per_server().await?;
        let records = self.store.servers().await?;
        let heard = self.heard(&records).await;
        let mut views = Vec::new();
        for record in records {
            let meetings = counts.get(&record.id).copied().unwrap_or(0);
            views.push(self.server_view(&record, meetings, &heard).await);
        }
        Ok(views)
    }

    /// One server.
    pub async fn server(&self, id: &str) -> Result<ServerView, Failure> {
        let id = parse_server_id(id)?;
        let record = self.record(id).await?;
        let meetings = self.running_on(id).await?;
        let heard = self.heard(std::slice::from_ref(&record)).await;
        Ok(self.server_view(&record, meetings, &heard).await)
    }

    /// Adds a server (disabled unless `enabled`).
    pub async fn add_server(
        &self,
        new: NewServer,
        principal: &Principal,
    ) -> Result<ServerView, Failure> {
        let checksum = new.checksum.as_deref().map(parse_checksum).transpose()?;
        let id = ServerId::new();
        let command = ServerCommand::Add {
            id,
            settings: ServerSettings {
                url: new.url,
                secret: new.secret,
                tag: new.tag.filter(|tag| !tag.is_empty()),
                load_multiplier: new.load_multiplier.unwrap_or(1.0),
                checksum,
                metrics_url: new.metrics_url.filter(|url| !url.trim().is_empty()),
            },
            enabled: new.enabled.unwrap_or(false),
        };
        self.execute_server(id, &command, &Self::metadata(principal))
            .await?;
        self.server(&id.to_string()).await
    }

    /// Changes settings.
    pub async fn update_server(
        &self,
        id: &str,
        update: ServerUpdate,
        principal: &Principal,
    ) -> Result<ServerView, Failure> {
        let server_id = parse_server_id(id)?;
        let changes = ServerChanges {
            url: update.url,
            secret: update.secret,
            tag: update
                .tag
                .map(|tag| Some(tag).filter(|tag| !tag.is_empty())),
            load_multiplier: update.load_multiplier,
            checksum: match update.checksum.as_deref() {
                None => None,
                Some("") => Some(None),
                Some(name) => Some(Some(parse_checksum(name)?)),
            },
            metrics_url: update
                .metrics_url
                .map(|url| Some(url).filter(|url| !url.trim().is_empty())),
        };
        self.execute_server(
            server_id,
            &ServerCommand::Update(changes),
            &Self::metadata(principal),
        )
        .await?;
        self.server(id).await
    }

    /// Enables, cordons or disables a server. A cordoned server without
    /// meetings is drained at once and becomes disabled.
    pub async fn set_state(
        &self,
        id: &str,
        command: ServerCommand,
        principal: &Principal,
    ) -> Result<ServerView, Failure> {
        let server_id = parse_server_id(id)?;
        let metadata = Self::metadata(principal);
        self.execute_server(server_id, &command, &metadata).await?;
        if command == ServerCommand::Cordon {
            disable_if_drained(self.store.as_ref(), &self.executor, server_id, &metadata).await?;
        }
        self.server(id).await
    }

    /// Disables a server and forgets its meetings so the next create places
    /// them elsewhere; optionally sends `end` for each first.
    pub async fn panic(
        &self,
        id: &str,
        options: PanicOptions,
        principal: &Principal,
    ) -> Result<PanicReport, Failure> {
        let server_id = parse_server_id(id)?;
        let record = self.record(server_id).await?;
        let metadata = Self::metadata(principal);
        self.execute_server(server_id, &ServerCommand::Disable, &metadata)
            .await?;
        let meetings = self.meetings_on(server_id).await?;
        let mut ended = 0;
        let mut forgotten = Vec::new();
        for meeting in meetings {
            if options.end_meetings.unwrap_or(false)
                && self.send_end(&record, &meeting).await == EndOutcome::Ended
            {
                ended += 1;
            }
            self.forget(&meeting, EndReason::ServerPanic, &metadata)
                .await?;
            forgotten.push(meeting.meeting_id.to_string());
        }
        Ok(PanicReport {
            server: self.server(id).await?,
            forgotten,
            ended,
        })
    }

    /// Removes a server; refused while meetings run unless `force`.
    pub async fn remove(
        &self,
        id: &str,
        force: bool,
        principal: &Principal,
    ) -> Result<(), Failure> {
        let server_id = parse_server_id(id)?;
        self.record(server_id).await?;
        let metadata = Self::metadata(principal);
        if force {
            // No create may place a meeting there between the look at its
            // meetings and the removal.
            self.execute_server(server_id, &ServerCommand::Disable, &metadata)
                .await?;
        }
        let meetings = self.meetings_on(server_id).await?;
        if !meetings.is_empty() && !force {
            return Err(Failure::Conflict(format!(
                "{} meeting(s) still run on server {server_id}: cordon it and wait until they end, or remove it with force",
                meetings.len()
            )));
        }
        for meeting in meetings {
            self.forget(&meeting, EndReason::GoneFromServer, &metadata)
                .await?;
        }
        self.execute_server(server_id, &ServerCommand::Remove, &metadata)
            .await?;
        Ok(())
    }

    async fn meetings_on(&self, server_id: ServerId) -> Result<Vec<MeetingRecord>, Failure> {
        Ok(self
            .store
            .meetings()
            .await?
            .into_iter()
            .filter(|meeting| meeting.running && meeting.run.server_id == server_id)
            .collect())
    }

    async fn forget(
        &self,
        meeting: &MeetingRecord,
        reason: EndReason,
        metadata: &EventMetadata,
    ) -> Result<(), Failure> {
        end_run(
            &self.executor,
            meeting,
            reason,
            self.clock.now_ms(),
            metadata,
        )
        .await?;
        Ok(())
    }

    /// Sends `end` for a meeting to its server, with the moderator password
    /// its getMeetingInfo gives (BBB before 3.0 wants it). The server's
    /// answer: ended (SUCCESS), already gone (`notFound`) or failed.
    async fn send_end(&self, server: &ServerRecord, meeting: &MeetingRecord) -> EndOutcome {
        let mut params = Params::default();
        params.set("meetingID", meeting.meeting_id.as_str());
        if let Ok(info) = self
            .backends
            .call(server, "getMeetingInfo", &params.to_query(), None)
            .await
        {
            if info.summary.message_key() == Some("notFound") {
                return EndOutcome::Gone;
            }
            if let Some(password) = info.summary.field("moderatorPW") {
                params.set("password", password);
            }
        }
        match self
            .backends
            .call(server, "end", &params.to_query(), None)
            .await
        {
            Ok(answer) if answer.summary.is_success() => EndOutcome::Ended,
            Ok(answer) if answer.summary.message_key() == Some("notFound") => EndOutcome::Gone,
            Ok(answer) => EndOutcome::Failed(format!(
                "the server refused to end it: {}",
                answer.summary.field("message").unwrap_or("no message")
            )),
            Err(crate::backend::CallFailure::Garbage(err)) => {
                EndOutcome::Failed(format!("unreadable answer: {err}"))
            }
            Err(err) => {
                tracing::warn!(server = %server.id, error = %err, "admin: end call failed");
                EndOutcome::Failed(err.to_string())
            }
        }
    }

    /// Meetings, filtered.
    pub async fn meetings(
        &self,
        server: Option<&str>,
        state: Option<MeetingState>,
        tenant: Option<&str>,
    ) -> Result<Vec<MeetingView>, Failure> {
        let server = server.map(parse_server_id).transpose()?;
        Ok(self
            .store
            .meetings()
            .await?
            .iter()
            .filter(|m| server.is_none_or(|id| m.run.server_id == id))
            .filter(|m| match state {
                Some(MeetingState::Running) => m.running,
                Some(MeetingState::Ended) => !m.running,
                None => true,
            })
            .filter(|m| tenant.is_none_or(|t| m.tenant.0 == t))
            .map(meeting_view)
            .collect())
    }

    async fn meeting_record(
        &self,
        tenant: &str,
        meeting_id: &str,
    ) -> Result<MeetingRecord, Failure> {
        let parsed = MeetingId::parse(meeting_id)
            .map_err(|err| Failure::Invalid(format!("invalid meetingID: {err}")))?;
        self.store
            .meeting(&TenantId(tenant.to_owned()), &parsed)
            .await?
            .ok_or_else(|| {
                Failure::NotFound(format!("no meeting `{meeting_id}` for tenant `{tenant}`"))
            })
    }

    /// One meeting.
    pub async fn meeting(&self, tenant: &str, meeting_id: &str) -> Result<MeetingView, Failure> {
        Ok(meeting_view(
            &self.meeting_record(tenant, meeting_id).await?,
        ))
    }

    /// Ends a running meeting on its server and records the end.
    pub async fn end_meeting(
        &self,
        tenant: &str,
        meeting_id: &str,
        principal: &Principal,
    ) -> Result<MeetingView, Failure> {
        let record = self.meeting_record(tenant, meeting_id).await?;
        if !record.running {
            return Err(Failure::Conflict(format!(
                "meeting `{meeting_id}` is not running"
            )));
        }
        // Recorded as ended only once its server ended it or no longer has
        // it (or the server left the pool).
        if let Some(server) = self.store.server(record.run.server_id).await?
            && let EndOutcome::Failed(reason) = self.send_end(&server, &record).await
        {
            return Err(Failure::Upstream(format!(
                "meeting `{meeting_id}` was not ended: {reason}; it is still recorded as running"
            )));
        }
        let metadata = Self::metadata(principal);
        self.forget(&record, EndReason::Operator, &metadata).await?;
        disable_if_drained(
            self.store.as_ref(),
            &self.executor,
            record.run.server_id,
            &metadata,
        )
        .await?;
        self.meeting(tenant, meeting_id).await
    }

    /// A page of the log.
    pub async fn events(&self, filter: EventFilter) -> Result<EventPage, Failure> {
        if filter.limit == 0 || filter.limit > 1000 {
            return Err(Failure::Invalid("limit must be between 1 and 1000".into()));
        }
        let limit = filter.limit as usize;
        let events: Vec<EventView> = self
            .store
            .query_events(&filter)
            .await?
            .into_iter()
            .map(event_view)
            .collect();
        // Newest first pages have no `after` cursor (it counts upwards).
        let next_after = (events.len() == limit && !filter.newest_first)
            .then(|| events.last().map(|e| e.position))
            .flatten();
        Ok(EventPage { events, next_after })
    }

    /// Servers and meetings as they were at `at`, replayed from the log
    /// (see [`history`]: one replay at a time, continued from the latest
    /// moment asked rather than from the start).
    pub async fn history(&self, at: chrono::DateTime<chrono::Utc>) -> Result<ClusterAt, Failure> {
        let now = chrono::DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_default();
        self.history.at(self.store.as_ref(), at, now).await
    }

    /// Keeps the pool's snapshots up with the settled log (see
    /// [`History::keep_snapshots`]), so `events at` folds little.
    pub async fn keep_history_snapshots(&self) -> Result<(), Failure> {
        let now = chrono::DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_default();
        self.history.keep_snapshots(self.store.as_ref(), now).await
    }

    /// What Scalelite's `rake status` prints, per server.
    pub async fn status(&self) -> Result<ClusterStatus, Failure> {
        let counts = self.store.running_meetings_per_server().await?;
        let records = self.store.servers().await?;
        let heard = self.heard(&records).await;
        let mut servers = Vec::new();
        for record in records {
            let meetings = counts.get(&record.id).copied().unwrap_or(0);
            let view = self.server_view(&record, meetings, &heard).await;
            let largest_meeting = self
                .routing
                .as_ref()
                .map(|routing| routing.largest_meeting_of(record.id))
                .unwrap_or(0);
            servers.push(ServerStatus {
                id: view.id,
                url: view.url,
                state: view.state,
                online: view.online,
                meetings,
                users: view.attendees,
                largest_meeting,
                load: view.load,
                tag: view.tag,
                metrics_state: view.metrics_state,
                cpu_percent: view.cpu_percent,
                memory_percent: view.memory_percent,
                metrics_error: view.metrics_error,
                over_limit: view.over_limit,
            });
        }
        Ok(ClusterStatus {
            meetings: servers.iter().map(|s| s.meetings).sum(),
            users: servers.iter().map(|s| s.users).sum(),
            position: self.store.last_position().await?,
            servers,
        })
    }

    /// Creates a token; its secret is returned this once.
    /// A node token may be bound to `server` from the start; otherwise it
    /// is bound to the server its agent registers.
    pub async fn create_token(
        &self,
        name: &str,
        scope: TokenScope,
        server: Option<ServerId>,
        principal: &Principal,
    ) -> Result<CreatedToken, Failure> {
        if let Some(id) = server {
            if scope != TokenScope::Node {
                return Err(Failure::Invalid(
                    "only node tokens are bound to a server: use --scope node with --server".into(),
                ));
            }
            if self.store.server(id).await?.is_none() {
                return Err(Failure::NotFound(format!(
                    "no server {id}: `switchboard servers list` shows their ids"
                )));
            }
        }
        let token = generate_token();
        let command = TokenCommand::Create {
            name: name.to_owned(),
            scope,
            hash: hash_token(&token),
            server,
        };
        let executed = self
            .executor
            .execute::<Token>(
                &switchboard_domain::token::token_stream(name),
                &command,
                &Self::metadata(principal),
            )
            .await?;
        self.tokens.note_all(name, &executed.events);
        Ok(CreatedToken {
            name: name.to_owned(),
            scope,
            server: server.map(|id| id.to_string()),
            token,
        })
    }

    /// Tokens in force.
    pub async fn tokens(&self) -> Result<Vec<TokenView>, Failure> {
        Ok(self
            .store
            .tokens()
            .await?
            .into_iter()
            .map(|record| TokenView {
                name: record.name,
                scope: record.scope,
                server: record.server.map(|id| id.to_string()),
                created_at: record.created_at,
            })
            .collect())
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, name: &str, principal: &Principal) -> Result<(), Failure> {
        let executed = self
            .executor
            .execute::<Token>(
                &switchboard_domain::token::token_stream(name),
                &TokenCommand::Revoke,
                &Self::metadata(principal),
            )
            .await?;
        self.tokens.note_all(name, &executed.events);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::answers::{self, Reply};
    use crate::memory::{BackendCall, ScriptedBackend};
    use crate::ports::prelude::*;
    use crate::testing::{NOW_MS, World, ended, meeting_id, url};

    fn ops() -> Principal {
        Principal::admin("ops".into())
    }

    fn admin(world: &World, backend: &Arc<ScriptedBackend>) -> AdminService {
        AdminService::new(
            world.store.clone(),
            world.executor.clone(),
            world.backends(backend),
            world.shared_clock(),
            LoadWeights::default(),
            None,
        )
    }

    /// A backend no test expects to be called.
    fn silent() -> Arc<ScriptedBackend> {
        Arc::new(ScriptedBackend::new(|target, call, _| {
            panic!("unexpected call {call} to {}", target.url)
        }))
    }

    /// getMeetingInfo of a running meeting, with BBB's passwords.
    fn meeting_info(id: &str) -> Reply {
        answers::body(format!(
            "<response><returncode>SUCCESS</returncode><meetingName>{id}</meetingName>\
             <meetingID>{id}</meetingID><attendeePW>ap</attendeePW>\
             <moderatorPW>mp</moderatorPW><running>true</running></response>"
        ))
    }

    fn not_found() -> Reply {
        answers::failed(
            "notFound",
            "We could not find a meeting with that meeting ID",
        )
    }

    fn info_call(server: &str, id: &str) -> BackendCall {
        BackendCall::new(url(server), "getMeetingInfo", format!("meetingID={id}"))
    }

    fn end_call(server: &str, id: &str) -> BackendCall {
        BackendCall::new(url(server), "end", format!("meetingID={id}&password=mp"))
    }

    /// The actors of the events appended after `position`.
    fn actors_after(world: &World, position: i64) -> Vec<String> {
        world
            .store
            .events()
            .into_iter()
            .filter(|stored| stored.position > position)
            .map(|stored| stored.metadata.actor)
            .collect()
    }

    async fn running(world: &World, id: &str) -> bool {
        world
            .store
            .meeting(&TenantId::default_tenant(), &meeting_id(id))
            .await
            .unwrap()
            .is_some_and(|record| record.running)
    }

    #[tokio::test]
    async fn cordoning_an_idle_server_drains_it_at_once() {
        let world = World::new();
        let id = world.server("idle").await;
        let backend = silent();
        let admin = admin(&world, &backend);
        let before = world.store.position();

        let view = admin
            .set_state(&id.to_string(), ServerCommand::Cordon, &ops())
            .await
            .unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![
                ServerEvent::ServerCordoned.into(),
                ServerEvent::ServerDisabled.into()
            ]
        );
        assert_eq!(actors_after(&world, before), vec!["ops", "ops"]);
        assert_eq!((view.state.as_str(), view.meetings), ("disabled", 0));
        assert_eq!(backend.calls(), vec![]);
    }

    #[tokio::test]
    async fn cordoning_a_busy_server_keeps_it_cordoned() {
        let world = World::new();
        let id = world.server("busy").await;
        world.meeting("room", "room-1", id, NOW_MS).await;
        let backend = silent();
        let admin = admin(&world, &backend);
        let before = world.store.position();

        let view = admin
            .set_state(&id.to_string(), ServerCommand::Cordon, &ops())
            .await
            .unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![ServerEvent::ServerCordoned.into()]
        );
        assert_eq!((view.state.as_str(), view.meetings), ("cordoned", 1));
        assert!(running(&world, "room").await);
    }

    #[tokio::test]
    async fn panic_disables_the_server_and_forgets_its_meetings_ending_those_it_still_has() {
        let world = World::new();
        let doomed = world.server("doomed").await;
        let other = world.server("other").await;
        world
            .meeting("alpha", "alpha-1", doomed, NOW_MS - 60_000)
            .await;
        world
            .meeting("beta", "beta-1", doomed, NOW_MS - 60_000)
            .await;
        world
            .meeting("gone", "gone-1", doomed, NOW_MS - 60_000)
            .await;
        world
            .meeting("elsewhere", "elsewhere-1", other, NOW_MS)
            .await;
        let backend = Arc::new(ScriptedBackend::new(|target, call, query| {
            assert_eq!(target.url, url("doomed"));
            let id = answers::param(query, "meetingID").unwrap();
            match (call, id.as_str()) {
                ("getMeetingInfo", "gone") => not_found(),
                ("getMeetingInfo", _) => meeting_info(&id),
                ("end", "alpha" | "beta") => answers::end_sent(),
                _ => panic!("unexpected {call} {query}"),
            }
        }));
        let admin = admin(&world, &backend);
        world.clock.advance_ms(1_000);
        let before = world.store.position();

        let report = admin
            .panic(
                &doomed.to_string(),
                PanicOptions {
                    end_meetings: Some(true),
                },
                &ops(),
            )
            .await
            .unwrap();

        let at = NOW_MS + 1_000;
        assert_eq!(
            world.store.events_after_position(before),
            vec![
                ServerEvent::ServerDisabled.into(),
                ended("alpha-1", EndReason::ServerPanic, at),
                ended("beta-1", EndReason::ServerPanic, at),
                ended("gone-1", EndReason::ServerPanic, at),
            ]
        );
        assert_eq!(
            backend.calls(),
            vec![
                info_call("doomed", "alpha"),
                end_call("doomed", "alpha"),
                info_call("doomed", "beta"),
                end_call("doomed", "beta"),
                info_call("doomed", "gone"),
            ],
            "no end for a meeting the server no longer has"
        );
        assert_eq!(report.forgotten, vec!["alpha", "beta", "gone"]);
        assert_eq!(report.ended, 2);
        assert_eq!(
            (report.server.state.as_str(), report.server.meetings),
            ("disabled", 0)
        );
        assert!(
            running(&world, "elsewhere").await,
            "other servers' meetings stay"
        );
    }

    #[tokio::test]
    async fn panic_without_end_meetings_asks_no_server() {
        let world = World::new();
        let doomed = world.server("doomed").await;
        world.meeting("alpha", "alpha-1", doomed, NOW_MS).await;
        let backend = silent();
        let admin = admin(&world, &backend);
        let before = world.store.position();

        let report = admin
            .panic(&doomed.to_string(), PanicOptions::default(), &ops())
            .await
            .unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![
                ServerEvent::ServerDisabled.into(),
                ended("alpha-1", EndReason::ServerPanic, NOW_MS),
            ]
        );
        assert_eq!(
            (report.forgotten, report.ended),
            (vec!["alpha".to_owned()], 0)
        );
        assert_eq!(backend.calls(), vec![]);
    }

    #[tokio::test]
    async fn remove_is_refused_while_meetings_run_and_records_nothing() {
        let world = World::new();
        let id = world.server("busy").await;
        world.meeting("room", "room-1", id, NOW_MS).await;
        let backend = silent();
        let admin = admin(&world, &backend);
        let before = world.store.position();

        let refused = admin.remove(&id.to_string(), false, &ops()).await;

        let Err(Failure::Conflict(message)) = &refused else {
            panic!("a conflict: {refused:?}");
        };
        assert!(message.contains("1 meeting(s) still run"), "{message}");
        assert_eq!(world.store.events_after_position(before), vec![]);
        assert!(world.store.server(id).await.unwrap().is_some());
        assert!(running(&world, "room").await);
    }

    #[tokio::test]
    async fn remove_with_force_forgets_the_meetings_and_removes_the_server() {
        let world = World::new();
        let id = world.server("busy").await;
        world.meeting("room", "room-1", id, NOW_MS).await;
        let backend = silent();
        let admin = admin(&world, &backend);
        let before = world.store.position();

        admin.remove(&id.to_string(), true, &ops()).await.unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![
                ServerEvent::ServerDisabled.into(),
                ended("room-1", EndReason::GoneFromServer, NOW_MS),
                ServerEvent::ServerRemoved.into(),
            ]
        );
        assert_eq!(world.store.server(id).await.unwrap(), None);
        assert!(!running(&world, "room").await);
        assert_eq!(backend.calls(), vec![]);
        let again = admin.remove(&id.to_string(), true, &ops()).await;
        assert!(matches!(again, Err(Failure::NotFound(_))), "{again:?}");
    }

    #[tokio::test]
    async fn end_meeting_ends_it_on_its_server_and_records_the_operators_end() {
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS - 60_000).await;
        let backend = Arc::new(ScriptedBackend::new(|target, call, _| {
            assert_eq!(target.url, url("a"));
            match call {
                "getMeetingInfo" => meeting_info("room"),
                "end" => answers::end_sent(),
                _ => panic!("unexpected {call}"),
            }
        }));
        let admin = admin(&world, &backend);
        world.clock.advance_ms(1_000);
        let before = world.store.position();

        let view = admin.end_meeting("default", "room", &ops()).await.unwrap();

        assert_eq!(
            backend.calls(),
            vec![info_call("a", "room"), end_call("a", "room")]
        );
        assert_eq!(
            world.store.events_after_position(before),
            vec![ended("room-1", EndReason::Operator, NOW_MS + 1_000)],
            "an enabled server stays enabled"
        );
        assert_eq!(actors_after(&world, before), vec!["ops"]);
        assert_eq!(
            view,
            MeetingView {
                tenant: "default".into(),
                meeting_id: "room".into(),
                name: "room".into(),
                internal_id: "room-1".into(),
                server_id: id.to_string(),
                running: false,
                create_time_ms: NOW_MS - 60_000,
                ended_at_ms: Some(NOW_MS + 1_000),
            }
        );
        let again = admin.end_meeting("default", "room", &ops()).await;
        assert!(matches!(again, Err(Failure::Conflict(_))), "{again:?}");
    }

    #[tokio::test]
    async fn end_meeting_of_the_last_meeting_of_a_cordoned_server_disables_it() {
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS).await;
        world.on_server(id, ServerCommand::Cordon).await;
        let backend = Arc::new(ScriptedBackend::new(|_, call, _| match call {
            "getMeetingInfo" => meeting_info("room"),
            "end" => answers::end_sent(),
            _ => panic!("unexpected {call}"),
        }));
        let admin = admin(&world, &backend);
        let before = world.store.position();

        admin.end_meeting("default", "room", &ops()).await.unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![
                ended("room-1", EndReason::Operator, NOW_MS),
                ServerEvent::ServerDisabled.into(),
            ]
        );
    }

    #[tokio::test]
    async fn end_meeting_that_its_server_fails_answers_upstream_and_records_nothing() {
        type Failing = fn() -> Reply;
        let failures: [(&str, Failing); 4] = [
            ("HTTP 500", || answers::status(500)),
            ("timeout", answers::timeout),
            ("garbage", answers::garbage),
            ("FAILED", || answers::failed("internalError", "boom")),
        ];
        for (failure, end_answer) in failures {
            let world = World::new();
            let id = world.server("a").await;
            world.meeting("room", "room-1", id, NOW_MS).await;
            let backend = Arc::new(ScriptedBackend::new(move |_, call, _| match call {
                "getMeetingInfo" => meeting_info("room"),
                "end" => end_answer(),
                _ => panic!("unexpected {call}"),
            }));
            let admin = admin(&world, &backend);
            let before = world.store.position();

            let result = admin.end_meeting("default", "room", &ops()).await;

            let Err(Failure::Upstream(message)) = &result else {
                panic!("{failure}: {result:?}");
            };
            assert!(
                message.contains("was not ended") && message.contains("still recorded as running"),
                "{failure}: {message}"
            );
            assert_eq!(
                backend.calls(),
                vec![info_call("a", "room"), end_call("a", "room")],
                "{failure}"
            );
            assert_eq!(
                world.store.events_after_position(before),
                vec![],
                "{failure}"
            );
            assert!(running(&world, "room").await, "{failure}");
        }
    }

    #[tokio::test]
    async fn authenticate_knows_a_token_by_its_hash_only() {
        let world = World::new();
        let admin = admin(&world, &silent());
        let created = admin
            .create_token("ci", TokenScope::Read, None, &ops())
            .await
            .unwrap();
        admin
            .create_token("deploy", TokenScope::Admin, None, &ops())
            .await
            .unwrap();
        assert!(created.token.starts_with("sbt_"), "{}", created.token);
        let stored: Vec<String> = world
            .store
            .tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|record| record.hash)
            .collect();
        assert!(
            !stored.contains(&created.token),
            "only the hash is kept: {stored:?}"
        );

        assert_eq!(
            admin.authenticate(&created.token).await.unwrap(),
            Some(Principal {
                name: "ci".into(),
                scope: TokenScope::Read,
                server: None,
            })
        );
        for wrong in [
            hash_token(&created.token),
            format!("{} ", created.token),
            created.token[..created.token.len() - 1].to_owned(),
            String::new(),
        ] {
            assert_eq!(admin.authenticate(&wrong).await.unwrap(), None, "{wrong:?}");
        }

        admin.revoke_token("ci", &ops()).await.unwrap();
        assert_eq!(admin.authenticate(&created.token).await.unwrap(), None);
    }
}
