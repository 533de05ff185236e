//! [`InMemoryStore`]: the log and every projection in memory, folded from
//! the appended events as the SQL projections fold them.

use crate::clock::SharedClock;
use crate::error::StoreError;
use crate::ports::{
    CallbackOutbox, ChangeFeed, EventStore, MeetingReads, Placements, PolledPicture,
    RecordingReads, ServerReads, ServerSeries, SettingsStore, StreamChange, TenantReads,
    UsageLedger,
};
use crate::records::{
    AppendExtras, AppendOutcome, AttemptOutcome, CallbackFilter, CallbackKind, CallbackRecord,
    CallbackState, EventFilter, HookRecord, LogSnapshot, MeetingForCreate, MeetingListing,
    MeetingRecord, MeetingRunRecord, NewCallback, PendingPlacement, RecordingPage, RecordingQuery,
    RecordingRecord, RecordingUsage, RoutingSnapshot, RunUsageState, SeriesPoint, ServerRecord,
    ServerSample, StoredEvent, TokenRecord, UsageFilter, UsageRunRecord, UsageSample,
    VoiceBridgeClaim, digest_written_ahead,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use switchboard_domain::aggregate::Aggregate;
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::{MeetingId, ServerId, StreamId, StreamKind, TenantId};
use switchboard_domain::meeting::{MeetingEvent, MeetingRun};
use switchboard_domain::recording::RecordingEvent;
use switchboard_domain::server::{Server, ServerEvent};
use switchboard_domain::tenant::{Tenant, TenantConfig, TenantEvent};
use switchboard_domain::token::TokenEvent;

/// Every storage port in memory (it is a [`Database`](crate::ports::Database)).
///
/// Appends check the expected version strictly (any other version is a
/// [`StoreError::Conflict`]), give each event the next global position and
/// update the projections in the same step: an append that a projection
/// refuses (an event in another aggregate's stream, a second `ServerAdded`)
/// leaves nothing behind. Samples, listings, nonces and settings are
/// overwritten in place, never logged. [`changes`](EventStore::changes) is
/// `None`: there is no other instance to hear from.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
    /// Stamps `recorded_at` (the system clock when `None`).
    clock: Option<SharedClock>,
}

#[derive(Debug, Default)]
struct State {
    log: Vec<StoredEvent>,
    versions: HashMap<StreamId, i64>,
    views: Views,
    polled: Polled,
    /// Snapshots of the log by kind and position.
    snapshots: BTreeMap<(String, i64), LogSnapshot>,
    /// Positions the next append skips (see
    /// [`InMemoryStore::leave_position_gap`]).
    position_gap: i64,
}

/// The projections the log feeds.
#[derive(Debug, Clone, Default)]
struct Views {
    servers: BTreeMap<ServerId, ServerRecord>,
    meetings: BTreeMap<(TenantId, MeetingId), MeetingRecord>,
    runs: HashMap<String, MeetingRunRecord>,
    tenants: BTreeMap<String, TenantConfig>,
    tokens: BTreeMap<String, TokenRecord>,
    recordings: BTreeMap<String, RecordingRecord>,
    placements: BTreeMap<(TenantId, MeetingId), PendingPlacement>,
    /// Webhooks in force by id, with the position that registered them.
    hooks: BTreeMap<String, (i64, switchboard_domain::hook::HookSettings)>,
    /// Runs' usage as the polls add it up, by internal id.
    run_usage: BTreeMap<String, RunUsageState>,
    /// Summarized runs, by internal id.
    usage_runs: BTreeMap<String, UsageRunRecord>,
    /// Tenants' peak concurrent attendees per day.
    tenant_peaks: BTreeMap<(TenantId, String), u64>,
}

/// What is overwritten in place, never logged.
#[derive(Debug, Default)]
struct Polled {
    samples: BTreeMap<ServerId, ServerSample>,
    /// Stored digests that are not their listing's: a listing written ahead
    /// of its figures, or one another writer replaced before them (0).
    digests_apart: BTreeMap<ServerId, u64>,
    heartbeats: BTreeMap<ServerId, i64>,
    listings: BTreeMap<String, MeetingListing>,
    /// The console's time series by server and minute.
    series: BTreeMap<(ServerId, i64), SeriesPoint>,
    used_nonces: HashMap<String, u64>,
    settings: BTreeMap<String, String>,
    /// Voice bridges by number.
    voice_bridges: BTreeMap<String, VoiceBridgeClaim>,
    /// The callback outbox, by id.
    callbacks: BTreeMap<String, CallbackRecord>,
}

impl InMemoryStore {
    /// An empty store stamping events with the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store stamping events with `clock`'s time.
    pub fn with_clock(clock: SharedClock) -> Self {
        Self {
            state: Mutex::default(),
            clock: Some(clock),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("in-memory store lock")
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        match &self.clock {
            Some(clock) => chrono::DateTime::from_timestamp_millis(clock.now_ms())
                .unwrap_or_else(chrono::Utc::now),
            None => chrono::Utc::now(),
        }
    }

    /// Appends as another writer would (another instance, the CLI): into
    /// the log and the projections, published to no
    /// `EventBus`. Synchronous, so a
    /// [`ScriptedBackend`](super::ScriptedBackend) script can call it to act
    /// between two steps of a use case (another instance winning a race).
    /// [`EventStore::append`] is this same step.
    pub fn append_raw(
        &self,
        stream: &StreamId,
        expected: i64,
        events: &[DomainEvent],
        metadata: &EventMetadata,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_raw_with(stream, expected, events, metadata, AppendExtras::default())
    }

    /// [`append_raw`](Self::append_raw) with `extras` (callbacks, a
    /// listing) written in the same step ([`EventStore::append_with`]).
    pub fn append_raw_with(
        &self,
        stream: &StreamId,
        expected: i64,
        events: &[DomainEvent],
        metadata: &EventMetadata,
        extras: AppendExtras<'_>,
    ) -> Result<AppendOutcome, StoreError> {
        let mut state = self.lock();
        if events.is_empty() {
            add_extras(&mut state.polled, extras);
            return Ok(AppendOutcome {
                version: expected,
                position: 0,
            });
        }
        let recorded_at = self.now();
        let current = state.versions.get(stream).copied().unwrap_or(0);
        if current != expected {
            return Err(StoreError::Conflict {
                stream: stream.to_string(),
                expected,
            });
        }
        // Applied to a copy first, so a refused event leaves nothing behind.
        let mut views = state.views.clone();
        let mut stored = Vec::with_capacity(events.len());
        let mut position = state.log.last().map_or(0, |event| event.position);
        position += std::mem::take(&mut state.position_gap);
        let mut version = expected;
        for event in events {
            version += 1;
            position += 1;
            apply(&mut views, stream, event, version, recorded_at)?;
            stored.push(StoredEvent {
                position,
                stream: stream.clone(),
                version,
                event: event.clone(),
                metadata: metadata.clone(),
                recorded_at,
            });
        }
        state.views = views;
        state.log.extend(stored);
        state.versions.insert(stream.clone(), version);
        add_extras(&mut state.polled, extras);
        Ok(AppendOutcome { version, position })
    }

    /// The whole log, oldest first.
    pub fn events(&self) -> Vec<StoredEvent> {
        self.lock().log.clone()
    }

    /// The events appended after `position`, oldest first, without their
    /// stream and metadata (what a "then" of a test compares).
    pub fn events_after_position(&self, position: i64) -> Vec<DomainEvent> {
        self.lock()
            .log
            .iter()
            .filter(|stored| stored.position > position)
            .map(|stored| stored.event.clone())
            .collect()
    }

    /// Makes the next append skip `count` positions, as a database's
    /// sequence leaves them to appends still in flight or rolled back.
    pub fn leave_position_gap(&self, count: i64) {
        self.lock().position_gap += count;
    }

    /// The highest position in the log (0 when empty).
    pub fn position(&self) -> i64 {
        self.lock().log.last().map_or(0, |event| event.position)
    }

    /// The listings kept for getMeetings, by internal id.
    pub fn listings(&self) -> Vec<MeetingListing> {
        self.lock().polled.listings.values().cloned().collect()
    }
}

/// Folds one event of `stream` into the projections.
fn apply(
    views: &mut Views,
    stream: &StreamId,
    event: &DomainEvent,
    version: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    match (stream, event) {
        (StreamId::Server(id), DomainEvent::Server(event)) => {
            apply_server(views, *id, event, version)
        }
        (StreamId::Meeting(tenant, meeting_id), DomainEvent::Meeting(event)) => {
            apply_meeting(views, tenant, meeting_id, event, version);
            Ok(())
        }
        (StreamId::Token(name), DomainEvent::Token(event)) => apply_token(views, name, event, at),
        (StreamId::Tenant(name), DomainEvent::Tenant(event)) => {
            apply_tenant(views, name, event);
            Ok(())
        }
        (StreamId::Recording(id), DomainEvent::Recording(event)) => {
            apply_recording(views, id, event, version);
            Ok(())
        }
        (StreamId::Hook(id), DomainEvent::Hook(event)) => {
            match event {
                switchboard_domain::hook::HookEvent::HookRegistered { hook } => {
                    let order = views.hooks.values().map(|(order, _)| *order).max();
                    views
                        .hooks
                        .insert(id.clone(), (order.unwrap_or(0) + 1, hook.clone()));
                }
                switchboard_domain::hook::HookEvent::HookRemoved => {
                    views.hooks.remove(id);
                }
            }
            Ok(())
        }
        _ => Err(StoreError::Database(format!(
            "event {} in unexpected stream `{stream}`",
            event.type_name()
        ))),
    }
}

/// Servers: a row from `ServerAdded` (keyed by the event's id), changed by
/// the later events, gone once removed; events for a missing row change
/// nothing.
fn apply_server(
    views: &mut Views,
    stream_id: ServerId,
    event: &ServerEvent,
    version: i64,
) -> Result<(), StoreError> {
    let id = match event {
        ServerEvent::ServerAdded { id, .. } => *id,
        _ => stream_id,
    };
    let mut state = match (event, views.servers.get(&id)) {
        (ServerEvent::ServerAdded { .. }, Some(_)) => {
            return Err(StoreError::Database(format!("server {id} exists")));
        }
        (ServerEvent::ServerAdded { .. }, None) => Server::default(),
        (_, Some(record)) => record.aggregate(),
        (_, None) => return Ok(()),
    };
    state.evolve(event);
    match state.settings {
        Some(settings) if !state.removed => {
            views.servers.insert(
                id,
                ServerRecord {
                    id,
                    settings,
                    state: state.state,
                    online: state.online,
                    agent: state.agent,
                    version,
                },
            );
        }
        _ => {
            views.servers.remove(&id);
        }
    }
    Ok(())
}

/// Meetings: one row per tenant and meetingID holding the last run (read
/// back without its recording-ready URL, as the SQL row has none), and the
/// runs by internal id.
fn apply_meeting(
    views: &mut Views,
    stream_tenant: &TenantId,
    stream_meeting: &MeetingId,
    event: &MeetingEvent,
    version: i64,
) {
    match event {
        MeetingEvent::MeetingCreated {
            tenant,
            meeting_id,
            name,
            run,
        } => {
            views.meetings.insert(
                (tenant.clone(), meeting_id.clone()),
                MeetingRecord {
                    tenant: tenant.clone(),
                    meeting_id: meeting_id.clone(),
                    name: name.clone(),
                    run: MeetingRun {
                        recording_ready_url: None,
                        callbacks: None,
                        ..run.clone()
                    },
                    running: true,
                    ended_at_ms: None,
                    version,
                },
            );
            views
                .placements
                .remove(&(tenant.clone(), meeting_id.clone()));
            views
                .run_usage
                .entry(run.internal_id.clone())
                .or_insert_with(|| RunUsageState::started(tenant, meeting_id, run));
            // The first record of a run keeps its owner and callback.
            views
                .runs
                .entry(run.internal_id.clone())
                .or_insert_with(|| MeetingRunRecord {
                    internal_id: run.internal_id.clone(),
                    tenant: tenant.clone(),
                    meeting_id: meeting_id.to_string(),
                    server_id: Some(run.server_id),
                    create_time_ms: run.create_time_ms,
                    recording_ready_url: run.recording_ready_url.clone(),
                    callbacks: run.callbacks.as_deref().cloned(),
                });
        }
        MeetingEvent::MeetingEnded {
            internal_id, at_ms, ..
        } => {
            let key = (stream_tenant.clone(), stream_meeting.clone());
            if let Some(record) = views.meetings.get_mut(&key) {
                record.running = false;
                record.ended_at_ms = Some(*at_ms);
                record.version = version;
            }
            if let Some(usage) = views.run_usage.get_mut(internal_id)
                && usage.ended_ms.is_none()
            {
                usage.ended_ms = Some(*at_ms);
            }
        }
        MeetingEvent::MeetingUsageSummarized { usage } => {
            let key = (stream_tenant.clone(), stream_meeting.clone());
            if let Some(record) = views.meetings.get_mut(&key) {
                record.version = version;
            }
            if let Some(state) = views.run_usage.get_mut(&usage.internal_id) {
                state.summarized = true;
            }
            views
                .usage_runs
                .entry(usage.internal_id.clone())
                .or_insert_with(|| UsageRunRecord {
                    tenant: stream_tenant.clone(),
                    meeting_id: stream_meeting.to_string(),
                    usage: usage.clone(),
                });
        }
    }
}

/// Tokens in force: created, then gone once revoked.
fn apply_token(
    views: &mut Views,
    name: &str,
    event: &TokenEvent,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    match event {
        TokenEvent::TokenCreated {
            scope,
            hash,
            server,
            ..
        } => {
            if views.tokens.contains_key(name) {
                return Err(StoreError::Database(format!("token `{name}` exists")));
            }
            views.tokens.insert(
                name.to_owned(),
                TokenRecord {
                    name: name.to_owned(),
                    scope: *scope,
                    hash: hash.clone(),
                    created_at: at,
                    server: *server,
                },
            );
        }
        TokenEvent::TokenBound { server } => {
            if let Some(record) = views.tokens.get_mut(name) {
                record.server = Some(*server);
            }
        }
        TokenEvent::TokenRevoked => {
            views.tokens.remove(name);
        }
    }
    Ok(())
}

/// Tenants in force, folded from the row's configuration.
fn apply_tenant(views: &mut Views, name: &str, event: &TenantEvent) {
    let mut state = Tenant {
        config: views.tenants.get(name).cloned(),
        retired: false,
    };
    state.evolve(event);
    match state.config {
        Some(config) => {
            views.tenants.insert(name.to_owned(), config);
        }
        None => {
            views.tenants.remove(name);
        }
    }
}

fn state_name(published: bool) -> &'static str {
    if published {
        "published"
    } else {
        "unpublished"
    }
}

/// Recordings: a row from the import, changed by the later events; events
/// for a missing row change nothing.
fn apply_recording(views: &mut Views, record_id: &str, event: &RecordingEvent, version: i64) {
    if let RecordingEvent::RecordingImported {
        details, formats, ..
    } = event
    {
        views.recordings.insert(
            record_id.to_owned(),
            RecordingRecord {
                record_id: record_id.to_owned(),
                tenant: details.tenant.clone(),
                meeting_id: details.meeting_id.clone(),
                internal_meeting_id: details.internal_meeting_id.clone(),
                name: details.name.clone(),
                is_breakout: details.is_breakout,
                breakout: details.breakout.clone(),
                breakout_rooms: details.breakout_rooms.clone(),
                published: details.published,
                state: state_name(details.published).to_owned(),
                start_time_ms: details.start_time_ms,
                end_time_ms: details.end_time_ms,
                participants: details.participants,
                protected: false,
                metadata: details.metadata.clone(),
                formats: formats.clone(),
                version,
            },
        );
        return;
    }
    let Some(row) = views.recordings.get_mut(record_id) else {
        return;
    };
    row.version = version;
    match event {
        RecordingEvent::RecordingImported { .. } => {}
        RecordingEvent::RecordingFormatAdded { format } => row.formats.push(format.clone()),
        RecordingEvent::RecordingPublished | RecordingEvent::RecordingUnpublished => {
            row.published = matches!(event, RecordingEvent::RecordingPublished);
            row.state = state_name(row.published).to_owned();
        }
        RecordingEvent::RecordingMetadataUpdated { set, removed } => {
            for key in removed {
                row.metadata.remove(key);
            }
            for (key, value) in set {
                row.metadata.insert(key.clone(), value.clone());
            }
        }
        RecordingEvent::RecordingProtected { protected } => row.protected = *protected,
        RecordingEvent::RecordingDeleted | RecordingEvent::RecordingExpired { .. } => {
            row.published = false;
            row.state = "deleted".to_owned();
        }
    }
}

fn running_per_server(views: &Views) -> HashMap<ServerId, u64> {
    let mut counts = HashMap::new();
    for record in views.meetings.values().filter(|record| record.running) {
        *counts.entry(record.run.server_id).or_default() += 1;
    }
    counts
}

#[async_trait]
impl EventStore for InMemoryStore {
    async fn append_with(
        &self,
        stream: &StreamId,
        expected: i64,
        events: &[DomainEvent],
        metadata: &EventMetadata,
        extras: AppendExtras<'_>,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_raw_with(stream, expected, events, metadata, extras)
    }

    async fn stream_events(&self, stream: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .lock()
            .log
            .iter()
            .filter(|stored| stored.stream == *stream)
            .cloned()
            .collect())
    }

    async fn events_after(
        &self,
        position: i64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .lock()
            .log
            .iter()
            .filter(|stored| stored.position > position)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn query_events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let state = self.lock();
        let ordered: Box<dyn Iterator<Item = &StoredEvent>> = if filter.newest_first {
            Box::new(state.log.iter().rev())
        } else {
            Box::new(state.log.iter())
        };
        Ok(ordered
            .filter(|stored| stored.position > filter.after)
            .filter(|stored| {
                filter
                    .stream
                    .as_ref()
                    .is_none_or(|stream| *stream == stored.stream.to_string())
            })
            .filter(|stored| {
                filter
                    .event_type
                    .as_ref()
                    .is_none_or(|name| name == stored.event.type_name())
            })
            .filter(|stored| {
                filter
                    .actor
                    .as_ref()
                    .is_none_or(|actor| *actor == stored.metadata.actor)
            })
            .filter(|stored| filter.from.is_none_or(|from| stored.recorded_at >= from))
            .filter(|stored| filter.to.is_none_or(|to| stored.recorded_at <= to))
            .take(usize::try_from(filter.limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn last_position(&self) -> Result<i64, StoreError> {
        Ok(self.position())
    }

    async fn positions_between(&self, after: i64, upto: i64) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .lock()
            .log
            .iter()
            .map(|stored| stored.position)
            .filter(|position| *position > after && *position <= upto)
            .collect())
    }

    async fn snapshot_before(
        &self,
        kind: &str,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<LogSnapshot>, StoreError> {
        Ok(self
            .lock()
            .snapshots
            .range((kind.to_owned(), i64::MIN)..=(kind.to_owned(), i64::MAX))
            .rev()
            .map(|(_, snapshot)| snapshot)
            .find(|snapshot| at.is_none_or(|at| snapshot.recorded_at <= at))
            .cloned())
    }

    async fn put_snapshot(&self, snapshot: &LogSnapshot) -> Result<(), StoreError> {
        self.lock()
            .snapshots
            .entry((snapshot.kind.clone(), snapshot.position))
            .or_insert_with(|| snapshot.clone());
        Ok(())
    }

    async fn streams_changed_after(
        &self,
        position: i64,
        kind: StreamKind,
    ) -> Result<Vec<StreamChange>, StoreError> {
        let mut newest: BTreeMap<StreamId, i64> = BTreeMap::new();
        for stored in self
            .lock()
            .log
            .iter()
            .filter(|stored| stored.position > position && stored.stream.kind() == kind)
        {
            let version = newest.entry(stored.stream.clone()).or_default();
            *version = (*version).max(stored.version);
        }
        Ok(newest
            .into_iter()
            .map(|(stream, version)| StreamChange { stream, version })
            .collect())
    }

    async fn changes(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError> {
        Ok(None)
    }
}

#[async_trait]
impl ServerReads for InMemoryStore {
    async fn servers(&self) -> Result<Vec<ServerRecord>, StoreError> {
        Ok(self.lock().views.servers.values().cloned().collect())
    }

    async fn server(&self, id: ServerId) -> Result<Option<ServerRecord>, StoreError> {
        Ok(self.lock().views.servers.get(&id).cloned())
    }

    async fn server_by_url(&self, url: &str) -> Result<Option<ServerRecord>, StoreError> {
        Ok(self
            .lock()
            .views
            .servers
            .values()
            .find(|server| server.settings.url == url)
            .cloned())
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(self.lock().views.tokens.values().cloned().collect())
    }
}

#[async_trait]
impl MeetingReads for InMemoryStore {
    async fn meeting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<MeetingRecord>, StoreError> {
        let key = (tenant.clone(), meeting_id.clone());
        Ok(self.lock().views.meetings.get(&key).cloned())
    }

    async fn meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        Ok(self.lock().views.meetings.values().cloned().collect())
    }

    async fn running_meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        Ok(self
            .lock()
            .views
            .meetings
            .values()
            .filter(|record| record.running)
            .cloned()
            .collect())
    }

    async fn running_meetings_per_server(&self) -> Result<HashMap<ServerId, u64>, StoreError> {
        Ok(running_per_server(&self.lock().views))
    }

    async fn running_meetings_of(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .views
            .meetings
            .values()
            .filter(|record| record.running && record.tenant == *tenant)
            .count() as u64)
    }

    async fn running_runs_of(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .views
            .meetings
            .values()
            .filter(|record| record.running && record.tenant == *tenant)
            .map(|record| record.run.internal_id.clone())
            .collect())
    }

    async fn running_runs_on(&self, server: ServerId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .views
            .meetings
            .values()
            .filter(|record| record.running && record.run.server_id == server)
            .map(|record| record.run.internal_id.clone())
            .collect())
    }

    async fn servers_running_elsewhere(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Vec<ServerId>, StoreError> {
        Ok(self
            .lock()
            .views
            .meetings
            .values()
            .filter(|record| {
                record.running && record.meeting_id == *meeting_id && record.tenant != *tenant
            })
            .map(|record| record.run.server_id)
            .collect())
    }

    async fn running_run_owners(&self) -> Result<HashMap<String, TenantId>, StoreError> {
        Ok(self
            .lock()
            .views
            .meetings
            .values()
            .filter(|record| record.running)
            .map(|record| (record.run.internal_id.clone(), record.tenant.clone()))
            .collect())
    }

    async fn routing_snapshot(&self) -> Result<RoutingSnapshot, StoreError> {
        let state = self.lock();
        Ok(RoutingSnapshot {
            position: state.log.last().map_or(0, |event| event.position),
            servers: state.views.servers.values().cloned().collect(),
            running: running_per_server(&state.views),
        })
    }

    async fn meeting_run(&self, internal_id: &str) -> Result<Option<MeetingRunRecord>, StoreError> {
        Ok(self.lock().views.runs.get(internal_id).cloned())
    }

    async fn meeting_run_by_nonce(
        &self,
        nonce: &str,
    ) -> Result<Option<MeetingRunRecord>, StoreError> {
        Ok(self
            .lock()
            .views
            .runs
            .values()
            .find(|run| {
                run.callbacks
                    .as_ref()
                    .is_some_and(|callbacks| callbacks.nonce == nonce)
            })
            .cloned())
    }
}

/// Writes an append's extras (see [`AppendExtras`]).
fn add_extras(polled: &mut Polled, extras: AppendExtras<'_>) {
    if let Some(listing) = extras.listing {
        polled
            .listings
            .insert(listing.internal_id.clone(), listing.clone());
    }
    add_callbacks(polled, extras.callbacks);
}

/// Writes deliveries to the outbox: an id written before is kept, taking
/// the later URL and due time while pending and unattempted.
fn add_callbacks(polled: &mut Polled, callbacks: &[NewCallback]) {
    for callback in callbacks {
        match polled.callbacks.get_mut(&callback.id) {
            Some(record) => {
                if record.state == CallbackState::Pending && record.attempts == 0 {
                    record.callback.url = callback.url.clone();
                    record.next_attempt_ms = callback.due_ms;
                }
            }
            None => {
                polled.callbacks.insert(
                    callback.id.clone(),
                    CallbackRecord {
                        callback: callback.clone(),
                        state: CallbackState::Pending,
                        attempts: 0,
                        next_attempt_ms: callback.due_ms,
                        last_status: None,
                        last_error: None,
                        finished_at_ms: None,
                    },
                );
            }
        }
    }
}

#[async_trait]
impl CallbackOutbox for InMemoryStore {
    async fn claim_due_callbacks(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u64,
    ) -> Result<Vec<(String, u32)>, StoreError> {
        let mut state = self.lock();
        let mut due: Vec<&mut CallbackRecord> = state
            .polled
            .callbacks
            .values_mut()
            .filter(|record| {
                record.state == CallbackState::Pending && record.next_attempt_ms <= now_ms
            })
            .collect();
        due.sort_by_key(|record| record.next_attempt_ms);
        Ok(due
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|record| {
                record.attempts += 1;
                record.next_attempt_ms = lease_until_ms;
                (record.callback.id.clone(), record.attempts)
            })
            .collect())
    }

    async fn callback(&self, id: &str) -> Result<Option<CallbackRecord>, StoreError> {
        Ok(self.lock().polled.callbacks.get(id).cloned())
    }

    async fn finish_callback_attempt(
        &self,
        id: &str,
        attempt: u32,
        outcome: &AttemptOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(record) =
            state.polled.callbacks.get_mut(id).filter(|record| {
                record.state == CallbackState::Pending && record.attempts == attempt
            })
        else {
            return Ok(false);
        };
        match outcome {
            AttemptOutcome::Delivered { status } => {
                record.state = CallbackState::Delivered;
                record.last_status = Some(*status);
                record.last_error = None;
                record.finished_at_ms = Some(now_ms);
            }
            AttemptOutcome::RetryAt {
                at_ms,
                status,
                error,
            } => {
                record.next_attempt_ms = *at_ms;
                record.last_status = *status;
                record.last_error = Some(error.clone());
            }
            AttemptOutcome::Failed { status, error } => {
                record.state = CallbackState::Failed;
                record.last_status = *status;
                record.last_error = Some(error.clone());
                record.finished_at_ms = Some(now_ms);
            }
        }
        Ok(true)
    }

    async fn callbacks(&self, filter: &CallbackFilter) -> Result<Vec<CallbackRecord>, StoreError> {
        let state = self.lock();
        let mut found: Vec<CallbackRecord> = state
            .polled
            .callbacks
            .values()
            .filter(|record| filter.state.is_none_or(|wanted| record.state == wanted))
            .filter(|record| {
                filter
                    .kind
                    .is_none_or(|wanted| record.callback.kind == wanted)
            })
            .filter(|record| {
                filter
                    .tenant
                    .as_ref()
                    .is_none_or(|wanted| record.callback.tenant == *wanted)
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            (b.callback.created_at_ms, &b.callback.id)
                .cmp(&(a.callback.created_at_ms, &a.callback.id))
        });
        found.truncate(usize::try_from(filter.limit).unwrap_or(usize::MAX));
        Ok(found)
    }

    async fn retry_callback(
        &self,
        id: &str,
        now_ms: i64,
        deadline_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(record) = state
            .polled
            .callbacks
            .get_mut(id)
            .filter(|record| record.state != CallbackState::Delivered)
        else {
            return Ok(false);
        };
        record.state = CallbackState::Pending;
        record.next_attempt_ms = now_ms;
        record.callback.deadline_ms = deadline_ms;
        record.finished_at_ms = None;
        Ok(true)
    }

    async fn drop_callback(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(record) = state.polled.callbacks.get_mut(id).filter(|record| {
            matches!(record.state, CallbackState::Pending | CallbackState::Failed)
        }) else {
            return Ok(false);
        };
        record.state = CallbackState::Dropped;
        record.finished_at_ms = Some(now_ms);
        Ok(true)
    }

    async fn prune_callbacks(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let before = state.polled.callbacks.len();
        state
            .polled
            .callbacks
            .retain(|_, record| record.finished_at_ms.is_none_or(|at| at >= before_ms));
        Ok((before - state.polled.callbacks.len()) as u64)
    }

    async fn hooks(&self) -> Result<Vec<HookRecord>, StoreError> {
        let state = self.lock();
        let mut hooks: Vec<(&String, &(i64, switchboard_domain::hook::HookSettings))> =
            state.views.hooks.iter().collect();
        hooks.sort_by_key(|(id, (order, _))| (*order, (*id).clone()));
        Ok(hooks
            .into_iter()
            .map(|(id, (_, settings))| HookRecord {
                id: id.clone(),
                settings: settings.clone(),
            })
            .collect())
    }

    async fn callback_counts(&self) -> Result<Vec<(CallbackKind, CallbackState, u64)>, StoreError> {
        let state = self.lock();
        let mut counts: BTreeMap<(&str, &str), (CallbackKind, CallbackState, u64)> =
            BTreeMap::new();
        for record in state.polled.callbacks.values() {
            let kind = record.callback.kind;
            counts
                .entry((kind.as_str(), record.state.as_str()))
                .or_insert((kind, record.state, 0))
                .2 += 1;
        }
        Ok(counts.into_values().collect())
    }
}

#[async_trait]
impl TenantReads for InMemoryStore {
    async fn tenants(&self) -> Result<Vec<TenantConfig>, StoreError> {
        Ok(self.lock().views.tenants.values().cloned().collect())
    }

    async fn tenant(&self, name: &str) -> Result<Option<TenantConfig>, StoreError> {
        Ok(self.lock().views.tenants.get(name).cloned())
    }
}

#[async_trait]
impl Placements for InMemoryStore {
    async fn pending_placement(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<PendingPlacement>, StoreError> {
        let key = (tenant.clone(), meeting_id.clone());
        Ok(self.lock().views.placements.get(&key).cloned())
    }

    async fn meeting_for_create(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<MeetingForCreate, StoreError> {
        Ok(MeetingForCreate {
            meeting: self.meeting(tenant, meeting_id).await?,
            pending: self.pending_placement(tenant, meeting_id).await?,
            held_voice_bridge: self.voice_bridge_of(tenant, meeting_id).await?,
        })
    }

    async fn put_pending_placement(&self, placement: &PendingPlacement) -> Result<(), StoreError> {
        let key = (placement.tenant.clone(), placement.meeting_id.clone());
        self.lock().views.placements.insert(key, placement.clone());
        Ok(())
    }

    async fn pending_placements_on(
        &self,
        server: ServerId,
    ) -> Result<Vec<PendingPlacement>, StoreError> {
        Ok(self
            .lock()
            .views
            .placements
            .values()
            .filter(|placement| placement.server_id == server)
            .cloned()
            .collect())
    }

    async fn claim_voice_bridge(
        &self,
        claim: &VoiceBridgeClaim,
        stale_before_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let free = match state.polled.voice_bridges.get(&claim.number) {
            None => true,
            Some(held) if held.tenant == claim.tenant && held.meeting_id == claim.meeting_id => {
                true
            }
            Some(held) => {
                let key = (held.tenant.clone(), held.meeting_id.clone());
                let running = state
                    .views
                    .meetings
                    .get(&key)
                    .is_some_and(|meeting| meeting.running);
                !running && held.at_ms < stale_before_ms
            }
        };
        if free {
            state
                .polled
                .voice_bridges
                .insert(claim.number.clone(), claim.clone());
        }
        Ok(free)
    }

    async fn voice_bridge_of(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .polled
            .voice_bridges
            .values()
            .filter(|claim| &claim.tenant == tenant && &claim.meeting_id == meeting_id)
            .max_by_key(|claim| claim.at_ms)
            .map(|claim| claim.number.clone()))
    }

    async fn voice_bridge_holder(
        &self,
        number: &str,
    ) -> Result<Option<VoiceBridgeClaim>, StoreError> {
        Ok(self.lock().polled.voice_bridges.get(number).cloned())
    }
}

#[async_trait]
impl UsageLedger for InMemoryStore {
    async fn record_usage(&self, samples: &[UsageSample<'_>], day: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        let views = &mut state.views;
        for sample in samples {
            if let Some(run) = views.run_usage.get_mut(sample.internal_id) {
                run.add(sample);
            }
        }
        let mut sums: BTreeMap<TenantId, u64> = BTreeMap::new();
        for run in views.run_usage.values() {
            if run.ended_ms.is_none() && run.last_sample_ms.is_some() {
                *sums.entry(run.tenant.clone()).or_default() += run.last_attendees;
            }
        }
        for (tenant, sum) in sums {
            let peak = views
                .tenant_peaks
                .entry((tenant, day.to_owned()))
                .or_default();
            *peak = (*peak).max(sum);
        }
        Ok(())
    }

    async fn runs_to_summarize(&self, limit: u64) -> Result<Vec<RunUsageState>, StoreError> {
        let mut due: Vec<RunUsageState> = self
            .lock()
            .views
            .run_usage
            .values()
            .filter(|run| run.ended_ms.is_some() && !run.summarized)
            .cloned()
            .collect();
        due.sort_by_key(|run| run.ended_ms);
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(due)
    }

    async fn close_usage(&self, internal_id: &str) -> Result<(), StoreError> {
        if let Some(run) = self.lock().views.run_usage.get_mut(internal_id) {
            run.summarized = true;
        }
        Ok(())
    }

    async fn prune_usage(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let before = state.views.run_usage.len();
        state
            .views
            .run_usage
            .retain(|_, run| !(run.summarized && run.ended_ms.is_some_and(|end| end < before_ms)));
        Ok((before - state.views.run_usage.len()) as u64)
    }

    async fn recording_usage(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<RecordingUsage>, StoreError> {
        Ok(self
            .lock()
            .views
            .recordings
            .values()
            .filter(|recording| {
                filter
                    .tenant
                    .as_ref()
                    .is_none_or(|t| *t == recording.tenant)
            })
            .filter(|recording| {
                filter
                    .from_ms
                    .is_none_or(|from| recording.start_time_ms >= from)
            })
            .filter(|recording| filter.to_ms.is_none_or(|to| recording.start_time_ms < to))
            .map(|recording| RecordingUsage {
                tenant: recording.tenant.clone(),
                started_ms: recording.start_time_ms,
                bytes: recording.formats.iter().map(|format| format.bytes).sum(),
            })
            .collect())
    }

    async fn usage_runs(&self, filter: &UsageFilter) -> Result<Vec<UsageRunRecord>, StoreError> {
        let mut runs: Vec<UsageRunRecord> = self
            .lock()
            .views
            .usage_runs
            .values()
            .filter(|run| filter.tenant.as_ref().is_none_or(|t| *t == run.tenant))
            .filter(|run| {
                filter
                    .from_ms
                    .is_none_or(|from| run.usage.started_ms >= from)
            })
            .filter(|run| filter.to_ms.is_none_or(|to| run.usage.started_ms < to))
            .cloned()
            .collect();
        runs.sort_by_key(|run| run.usage.started_ms);
        Ok(runs)
    }

    async fn tenant_peaks(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<(TenantId, String, u64)>, StoreError> {
        let from = filter.from_ms.map(crate::records::day_of);
        let to = filter.to_ms.map(|to| crate::records::day_of(to - 1));
        Ok(self
            .lock()
            .views
            .tenant_peaks
            .iter()
            .filter(|((tenant, _), _)| filter.tenant.as_ref().is_none_or(|t| t == tenant))
            .filter(|((_, day), _)| from.as_ref().is_none_or(|from| day >= from))
            .filter(|((_, day), _)| to.as_ref().is_none_or(|to| day <= to))
            .map(|((tenant, day), peak)| (tenant.clone(), day.clone(), *peak))
            .collect())
    }
}

#[async_trait]
impl PolledPicture for InMemoryStore {
    async fn server_samples(&self) -> Result<Vec<ServerSample>, StoreError> {
        Ok(self.lock().polled.samples.values().cloned().collect())
    }

    async fn samples_changed_after(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(ServerId, i64)>, StoreError> {
        Ok(self
            .lock()
            .polled
            .samples
            .values()
            .filter(|sample| sample.changed_at_ms > since_ms)
            .map(|sample| (sample.server_id, sample.changed_at_ms))
            .collect())
    }

    async fn server_samples_of(
        &self,
        servers: &[ServerId],
    ) -> Result<Vec<ServerSample>, StoreError> {
        Ok(self
            .lock()
            .polled
            .samples
            .values()
            .filter(|sample| servers.contains(&sample.server_id))
            .cloned()
            .collect())
    }

    async fn put_agent_heartbeats(
        &self,
        samples: &[ServerSample],
        heard: &[(ServerId, i64)],
    ) -> Result<(), StoreError> {
        self.put_server_samples(samples).await?;
        let mut state = self.lock();
        for (server, at_ms) in heard {
            state.polled.heartbeats.insert(*server, *at_ms);
        }
        Ok(())
    }

    async fn heartbeats_of(
        &self,
        servers: &[ServerId],
    ) -> Result<Vec<(ServerId, i64)>, StoreError> {
        let mut heard = self.heartbeats().await?;
        heard.retain(|(server, _)| servers.contains(server));
        Ok(heard)
    }

    async fn heartbeats_before(&self, before_ms: i64) -> Result<Vec<(ServerId, i64)>, StoreError> {
        let mut heard = self.heartbeats().await?;
        heard.retain(|(_, at_ms)| *at_ms < before_ms);
        Ok(heard)
    }

    async fn heartbeats(&self) -> Result<Vec<(ServerId, i64)>, StoreError> {
        Ok(self
            .lock()
            .polled
            .heartbeats
            .iter()
            .map(|(server, at_ms)| (*server, *at_ms))
            .collect())
    }

    async fn put_server_samples(&self, samples: &[ServerSample]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for sample in samples {
            state.polled.digests_apart.remove(&sample.server_id);
            state
                .polled
                .samples
                .insert(sample.server_id, sample.clone());
        }
        Ok(())
    }

    async fn server_sample_figures(&self) -> Result<Vec<(ServerSample, u64)>, StoreError> {
        let state = self.lock();
        Ok(state
            .polled
            .samples
            .values()
            .map(|sample| {
                let digest = match state.polled.digests_apart.get(&sample.server_id) {
                    Some(digest) => *digest,
                    None => sample.listing_digest(),
                };
                let figures = ServerSample {
                    meetings_xml: Default::default(),
                    ..sample.clone()
                };
                (figures, digest)
            })
            .collect())
    }

    async fn put_sample_listing(
        &self,
        server: ServerId,
        meetings_xml: &str,
        digest: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state
            .polled
            .samples
            .entry(server)
            .or_insert_with(|| ServerSample::new(server))
            .meetings_xml = meetings_xml.into();
        state
            .polled
            .digests_apart
            .insert(server, digest_written_ahead(digest));
        Ok(())
    }

    async fn put_polled_samples(
        &self,
        with_listings: &[ServerSample],
        keeping_listings: &[ServerSample],
        listed_ahead: &[(ServerSample, u64)],
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        for sample in with_listings {
            state.polled.digests_apart.remove(&sample.server_id);
            state
                .polled
                .samples
                .insert(sample.server_id, sample.clone());
        }
        for (sample, digest) in listed_ahead {
            let apart = &mut state.polled.digests_apart;
            if apart.get(&sample.server_id) == Some(&digest_written_ahead(*digest)) {
                apart.remove(&sample.server_id);
            } else {
                apart.insert(sample.server_id, 0);
            }
        }
        let kept = keeping_listings
            .iter()
            .chain(listed_ahead.iter().map(|(sample, _)| sample));
        for sample in kept {
            let listing = state
                .polled
                .samples
                .get(&sample.server_id)
                .map(|stored| stored.meetings_xml.clone())
                .unwrap_or_default();
            state.polled.samples.insert(
                sample.server_id,
                ServerSample {
                    meetings_xml: listing,
                    ..sample.clone()
                },
            );
        }
        Ok(())
    }

    async fn put_meeting_listing(&self, listing: &MeetingListing) -> Result<(), StoreError> {
        self.lock()
            .polled
            .listings
            .insert(listing.internal_id.clone(), listing.clone());
        Ok(())
    }

    async fn meeting_listings_of(
        &self,
        internal_ids: &[&str],
    ) -> Result<Vec<MeetingListing>, StoreError> {
        let state = self.lock();
        Ok(internal_ids
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|id| state.polled.listings.get(*id).cloned())
            .collect())
    }

    async fn running_listing_times(&self) -> Result<HashMap<String, i64>, StoreError> {
        let state = self.lock();
        Ok(state
            .views
            .meetings
            .values()
            .filter(|record| record.running)
            .filter_map(|record| state.polled.listings.get(&record.run.internal_id))
            .map(|listing| (listing.internal_id.clone(), listing.created_at_ms))
            .collect())
    }

    async fn prune_meeting_listings(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let before = state.polled.listings.len();
        state
            .polled
            .listings
            .retain(|_, listing| listing.created_at_ms >= before_ms);
        Ok((before - state.polled.listings.len()) as u64)
    }
}

#[async_trait]
impl ServerSeries for InMemoryStore {
    async fn record_series(&self, points: &[SeriesPoint]) -> Result<(), StoreError> {
        let mut state = self.lock();
        for point in points {
            state
                .polled
                .series
                .insert((point.server_id, point.at_ms), point.clone());
        }
        Ok(())
    }

    async fn series_since(
        &self,
        since_ms: i64,
        server: Option<ServerId>,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        let state = self.lock();
        let mut points: Vec<SeriesPoint> = state
            .polled
            .series
            .values()
            .filter(|point| point.at_ms >= since_ms)
            .filter(|point| server.is_none_or(|id| point.server_id == id))
            .cloned()
            .collect();
        points.sort_by_key(|point| (point.at_ms, point.server_id));
        Ok(points)
    }

    async fn prune_series(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let before = state.polled.series.len();
        state
            .polled
            .series
            .retain(|_, point| point.at_ms >= before_ms);
        Ok((before - state.polled.series.len()) as u64)
    }
}

/// Whether a recording matches getRecordings' filters.
fn matches(query: &RecordingQuery, recording: &RecordingRecord) -> bool {
    recording.tenant == query.tenant
        && (query.meeting_ids.is_empty() || query.meeting_ids.contains(&recording.meeting_id))
        && (query.record_id_prefixes.is_empty()
            || query
                .record_id_prefixes
                .iter()
                .any(|prefix| recording.record_id.starts_with(prefix.as_str())))
        && query
            .states
            .as_ref()
            .is_none_or(|states| states.contains(&recording.state))
        && query
            .meta
            .iter()
            .all(|(key, value)| recording.metadata.get(key) == Some(value))
}

#[async_trait]
impl RecordingReads for InMemoryStore {
    async fn find_recordings(&self, query: &RecordingQuery) -> Result<RecordingPage, StoreError> {
        let mut found: Vec<RecordingRecord> = self
            .lock()
            .views
            .recordings
            .values()
            .filter(|recording| matches(query, recording))
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.start_time_ms, &a.record_id).cmp(&(b.start_time_ms, &b.record_id)));
        let total = found.len() as u64;
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let page = found.into_iter().skip(offset);
        Ok(match query.limit {
            None => RecordingPage {
                recordings: page.collect(),
                total: None,
            },
            Some(limit) => RecordingPage {
                recordings: page
                    .take(usize::try_from(limit).unwrap_or(usize::MAX))
                    .collect(),
                total: Some(total),
            },
        })
    }

    async fn recording(&self, record_id: &str) -> Result<Option<RecordingRecord>, StoreError> {
        Ok(self.lock().views.recordings.get(record_id).cloned())
    }

    async fn recording_count(&self) -> Result<u64, StoreError> {
        Ok(self.lock().views.recordings.len() as u64)
    }

    async fn claim_token(
        &self,
        nonce: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let used = &mut state.polled.used_nonces;
        used.retain(|_, expires| *expires > now);
        if used.contains_key(nonce) {
            return Ok(false);
        }
        used.insert(nonce.to_owned(), expires_at);
        Ok(true)
    }
}

#[async_trait]
impl SettingsStore for InMemoryStore {
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().polled.settings.get(key).cloned())
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock()
            .polled
            .settings
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        Ok(self
            .lock()
            .polled
            .settings
            .entry(key.to_owned())
            .or_insert_with(|| value.to_owned())
            .clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NOW_MS, created, ended, given, meeting_id};
    use switchboard_domain::meeting::EndReason;
    use switchboard_domain::server::ServerSettings;
    use switchboard_domain::token::TokenScope;

    fn server_added(id: ServerId) -> DomainEvent {
        ServerEvent::ServerAdded {
            id,
            settings: ServerSettings {
                url: "https://bbb/bigbluebutton/".into(),
                secret: "s".into(),
                tag: None,
                load_multiplier: 1.0,
                checksum: None,
                metrics_url: None,
            },
        }
        .into()
    }

    fn room() -> StreamId {
        StreamId::Meeting(TenantId::default_tenant(), meeting_id("room"))
    }

    #[tokio::test]
    async fn an_append_at_another_version_is_a_conflict_and_writes_nothing() {
        let store = InMemoryStore::new();
        let id = ServerId::new();
        let first = store
            .append(&id.stream(), 0, &[server_added(id)], &given())
            .await
            .unwrap();
        assert_eq!(
            first,
            AppendOutcome {
                version: 1,
                position: 1
            }
        );
        for stale in [0, 2] {
            let result = store
                .append(
                    &id.stream(),
                    stale,
                    &[ServerEvent::ServerEnabled.into()],
                    &given(),
                )
                .await;
            assert!(
                matches!(&result, Err(StoreError::Conflict { expected, .. }) if *expected == stale),
                "{result:?}"
            );
        }
        assert_eq!(store.last_position().await.unwrap(), 1);
        assert_eq!(store.server(id).await.unwrap().unwrap().version, 1);
        let none = store.append(&id.stream(), 1, &[], &given()).await.unwrap();
        assert_eq!(
            none,
            AppendOutcome {
                version: 1,
                position: 0
            }
        );
    }

    #[tokio::test]
    async fn an_append_a_projection_refuses_leaves_nothing_behind() {
        let store = InMemoryStore::new();
        let id = ServerId::new();
        let result = store
            .append(
                &id.stream(),
                0,
                &[server_added(id), created("room", "r-1", id, NOW_MS)],
                &given(),
            )
            .await;
        assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        assert_eq!(store.events(), vec![]);
        assert_eq!(store.servers().await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn servers_follow_their_events_and_disappear_once_removed() {
        let store = InMemoryStore::new();
        let id = ServerId::new();
        store
            .append(
                &id.stream(),
                0,
                &[
                    server_added(id),
                    ServerEvent::ServerCordoned.into(),
                    ServerEvent::ServerWentOffline.into(),
                ],
                &given(),
            )
            .await
            .unwrap();
        let record = store.server(id).await.unwrap().unwrap();
        assert_eq!(
            (record.state, record.online, record.version),
            (switchboard_domain::server::ServerState::Cordoned, false, 3)
        );
        store
            .append(
                &id.stream(),
                3,
                &[ServerEvent::ServerRemoved.into()],
                &given(),
            )
            .await
            .unwrap();
        assert_eq!(store.servers().await.unwrap(), vec![]);
        assert_eq!(store.routing_snapshot().await.unwrap().position, 4);
    }

    #[tokio::test]
    async fn a_meeting_row_holds_its_last_run() {
        let store = InMemoryStore::new();
        let server = ServerId::new();
        let tenant = TenantId::default_tenant();
        store
            .append(
                &room(),
                0,
                &[
                    created("room", "r-1", server, NOW_MS),
                    ended("r-1", EndReason::EndCalled, NOW_MS + 10),
                ],
                &given(),
            )
            .await
            .unwrap();
        let record = store.meeting(&tenant, &meeting_id("room")).await.unwrap();
        let record = record.unwrap();
        assert_eq!(
            (record.running, record.ended_at_ms, record.version),
            (false, Some(NOW_MS + 10), 2)
        );
        assert_eq!(store.running_meetings_per_server().await.unwrap().len(), 0);

        store
            .append(
                &room(),
                2,
                &[created("room", "r-2", server, NOW_MS + 20)],
                &given(),
            )
            .await
            .unwrap();
        let meetings = store.meetings().await.unwrap();
        assert_eq!(meetings.len(), 1, "one row per tenant and meetingID");
        assert_eq!(
            (
                meetings[0].run.internal_id.as_str(),
                meetings[0].running,
                meetings[0].ended_at_ms,
                meetings[0].version
            ),
            ("r-2", true, None, 3)
        );
        assert_eq!(
            store.running_meetings_per_server().await.unwrap(),
            HashMap::from([(server, 1)])
        );
        assert_eq!(store.running_runs_of(&tenant).await.unwrap(), vec!["r-2"]);
        assert!(
            store.meeting_run("r-1").await.unwrap().is_some(),
            "runs are kept"
        );
        assert_eq!(
            store.running_run_owners().await.unwrap(),
            HashMap::from([("r-2".to_owned(), tenant.clone())])
        );
    }

    #[tokio::test]
    async fn tokens_are_in_force_until_revoked() {
        let store = InMemoryStore::new();
        let stream = StreamId::Token("ci".into());
        let created = TokenEvent::TokenCreated {
            name: "ci".into(),
            scope: TokenScope::Read,
            hash: "h".into(),
            server: None,
        };
        store
            .append(&stream, 0, &[created.clone().into()], &given())
            .await
            .unwrap();
        assert_eq!(store.tokens().await.unwrap()[0].scope, TokenScope::Read);
        store
            .append(&stream, 1, &[TokenEvent::TokenRevoked.into()], &given())
            .await
            .unwrap();
        assert_eq!(store.tokens().await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn the_polled_picture_and_settings_are_overwritten_in_place() {
        let store = InMemoryStore::new();
        let id = ServerId::new();
        let mut sample = ServerSample::new(id);
        sample.changed_at_ms = 10;
        store.put_server_samples(&[sample.clone()]).await.unwrap();
        sample.changed_at_ms = 20;
        sample.failures = 2;
        store.put_server_samples(&[sample.clone()]).await.unwrap();
        assert_eq!(store.server_samples().await.unwrap(), vec![sample]);
        assert_eq!(
            store.samples_changed_after(10).await.unwrap(),
            vec![(id, 20)]
        );
        assert_eq!(store.samples_changed_after(20).await.unwrap(), vec![]);

        let listing = |internal: &str, at| MeetingListing {
            internal_id: internal.into(),
            server_id: id,
            created_at_ms: at,
            xml: "<meeting/>".into(),
        };
        store.put_meeting_listing(&listing("r-1", 5)).await.unwrap();
        store
            .put_meeting_listing(&listing("gone", 1))
            .await
            .unwrap();
        assert_eq!(store.running_listing_times().await.unwrap(), HashMap::new());
        store
            .append(&room(), 0, &[created("room", "r-1", id, NOW_MS)], &given())
            .await
            .unwrap();
        assert_eq!(
            store
                .meeting_listings_of(&["r-1", "unknown", "r-1"])
                .await
                .unwrap(),
            vec![listing("r-1", 5)]
        );
        assert_eq!(
            store.running_listing_times().await.unwrap(),
            HashMap::from([("r-1".to_owned(), 5)])
        );
        assert_eq!(store.prune_meeting_listings(5).await.unwrap(), 1);
        assert_eq!(store.listings(), vec![listing("r-1", 5)]);

        assert_eq!(store.setting_or_insert("k", "a").await.unwrap(), "a");
        assert_eq!(store.setting_or_insert("k", "b").await.unwrap(), "a");
        store.put_setting("k", "c").await.unwrap();
        assert_eq!(store.setting("k").await.unwrap().as_deref(), Some("c"));

        assert!(store.claim_token("n", 100, 50).await.unwrap());
        assert!(!store.claim_token("n", 100, 60).await.unwrap(), "used once");
    }
}
