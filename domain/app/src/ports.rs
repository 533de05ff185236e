//! The ports the use cases need from the outside world. The SQL adapter
//! (`switchboard-store`) implements the storage ports, the HTTP client in
//! `switchboard-workers` the backend port (and the callback port the
//! recording use cases declare, `CallbackClient`); the in-memory adapter
//! (the `memory` module) implements the storage ports for unit tests.

use crate::error::StoreError;
use crate::records::HookRecord;
use crate::records::{
    AppendExtras, AppendOutcome, AttemptOutcome, CallbackFilter, CallbackKind, CallbackRecord,
    CallbackState, EventFilter, LogSnapshot, MeetingForCreate, MeetingListing, MeetingRecord,
    MeetingRunRecord, NewCallback, PendingPlacement, RecordingPage, RecordingQuery,
    RecordingRecord, RecordingUsage, RoutingSnapshot, RunUsageState, SeriesPoint, ServerRecord,
    ServerSample, StoredEvent, StreamHistory, TokenRecord, UsageFilter, UsageRunRecord,
    UsageSample, VoiceBridgeClaim,
};
use async_trait::async_trait;
use std::collections::HashMap;
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::{MeetingId, ServerId, StreamId, StreamKind, TenantId};
use switchboard_domain::tenant::TenantConfig;

/// The append-only log: append with an expected version, read a stream or
/// from a position, and hear of other instances' appends.
#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug {
    /// Appends events to a stream whose current version must be `expected`,
    /// updating the projections in the same transaction. Nothing is written
    /// when `events` is empty. [`StoreError::Conflict`] when another writer
    /// came first.
    async fn append(
        &self,
        stream: &StreamId,
        expected: i64,
        events: &[DomainEvent],
        metadata: &EventMetadata,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_with_callbacks(stream, expected, events, metadata, &[])
            .await
    }

    /// As [`append`](Self::append), writing `callbacks` to the outbox in the
    /// same transaction (also when there is no event: the callbacks alone).
    async fn append_with_callbacks(
        &self,
        stream: &StreamId,
        expected: i64,
        events: &[DomainEvent],
        metadata: &EventMetadata,
        callbacks: &[NewCallback],
    ) -> Result<AppendOutcome, StoreError> {
        let extras = AppendExtras {
            callbacks,
            listing: None,
        };
        self.append_with(stream, expected, events, metadata, extras)
            .await
    }

    /// As [`append`](Self::append), writing `extras` in the same
    /// transaction (with no event, the extras alone: see [`AppendExtras`]).
    async fn append_with(
        &self,
        stream: &StreamId,
        expected: i64,
        events: &[DomainEvent],
        metadata: &EventMetadata,
        extras: AppendExtras<'_>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Every event of one stream, oldest first.
    async fn stream_events(&self, stream: &StreamId) -> Result<Vec<StoredEvent>, StoreError>;

    /// What the log holds of one stream: its snapshot, if its older events
    /// were archived, and the events after it (by default, no snapshot and
    /// every event).
    async fn stream_history(&self, stream: &StreamId) -> Result<StreamHistory, StoreError> {
        Ok(StreamHistory {
            snapshot: None,
            events: self.stream_events(stream).await?,
        })
    }

    /// Events after `position`, oldest first, at most `limit`.
    async fn events_after(&self, position: i64, limit: u64)
    -> Result<Vec<StoredEvent>, StoreError>;

    /// Events matching a filter, oldest first.
    async fn query_events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError>;

    /// The highest position in the log (0 when empty).
    async fn last_position(&self) -> Result<i64, StoreError>;

    /// The positions of the events in `(after, upto]`, oldest first. A
    /// position missing from them belongs to an append that has not
    /// committed (yet): a database's sequence hands positions out before
    /// appends commit, and one that fails leaves its position unused.
    async fn positions_between(&self, after: i64, upto: i64) -> Result<Vec<i64>, StoreError>;

    /// The newest snapshot of `kind` whose last event was recorded at or
    /// before `at` (`None`: the newest of all).
    async fn snapshot_before(
        &self,
        kind: &str,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<LogSnapshot>, StoreError>;

    /// Keeps a snapshot (one of the same kind and position stays as it is).
    async fn put_snapshot(&self, snapshot: &LogSnapshot) -> Result<(), StoreError>;

    /// Streams of one kind with events after `position`, each with its
    /// newest version.
    async fn streams_changed_after(
        &self,
        position: i64,
        kind: StreamKind,
    ) -> Result<Vec<StreamChange>, StoreError>;

    /// Announcements of changes made by other instances (`None`: this
    /// store has no such channel; views then refresh on a timer).
    async fn changes(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError>;
}

/// A stream that changed, and its newest version: a cache holding that
/// version (or a newer one) of it is up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChange {
    /// The stream.
    pub stream: StreamId,
    /// Its newest version.
    pub version: i64,
}

/// A stream of change announcements from other instances.
#[async_trait]
pub trait ChangeFeed: Send {
    /// Waits for the next announcement (its payload names what changed).
    async fn next(&mut self) -> Result<String, StoreError>;
}

/// Servers and admin tokens, as the projections hold them.
#[async_trait]
pub trait ServerReads: Send + Sync {
    /// Every server of the pool, oldest first.
    async fn servers(&self) -> Result<Vec<ServerRecord>, StoreError>;
    /// One server.
    async fn server(&self, id: ServerId) -> Result<Option<ServerRecord>, StoreError>;
    /// The server with this base URL (ending in `/`), if any.
    async fn server_by_url(&self, url: &str) -> Result<Option<ServerRecord>, StoreError>;
    /// Admin tokens in force, by name.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
}

/// Meetings and their runs, as the projections hold them.
#[async_trait]
pub trait MeetingReads: Send + Sync {
    /// The meeting of a tenant.
    async fn meeting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<MeetingRecord>, StoreError>;
    /// Every meeting, running or ended.
    async fn meetings(&self) -> Result<Vec<MeetingRecord>, StoreError>;
    /// Every running meeting.
    async fn running_meetings(&self) -> Result<Vec<MeetingRecord>, StoreError>;
    /// Running meetings per server.
    async fn running_meetings_per_server(&self) -> Result<HashMap<ServerId, u64>, StoreError>;
    /// Running meetings of a tenant.
    async fn running_meetings_of(&self, tenant: &TenantId) -> Result<u64, StoreError>;
    /// Internal ids of a tenant's running runs.
    async fn running_runs_of(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError>;
    /// Internal ids of the runs recorded as running on a server.
    async fn running_runs_on(&self, server: ServerId) -> Result<Vec<String>, StoreError>;
    /// Servers running this meetingID for another tenant.
    async fn servers_running_elsewhere(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Vec<ServerId>, StoreError>;
    /// The running runs, by internal id, with their tenant.
    async fn running_run_owners(&self) -> Result<HashMap<String, TenantId>, StoreError>;
    /// Position, servers and running meetings per server, read together.
    async fn routing_snapshot(&self) -> Result<RoutingSnapshot, StoreError>;
    /// A meeting run by internal id.
    async fn meeting_run(&self, internal_id: &str) -> Result<Option<MeetingRunRecord>, StoreError>;
    /// The run whose callback URLs carry `nonce`.
    async fn meeting_run_by_nonce(
        &self,
        nonce: &str,
    ) -> Result<Option<MeetingRunRecord>, StoreError>;
}

/// Tenants in force.
#[async_trait]
pub trait TenantReads: Send + Sync {
    /// Every tenant in force.
    async fn tenants(&self) -> Result<Vec<TenantConfig>, StoreError>;
    /// One tenant in force.
    async fn tenant(&self, name: &str) -> Result<Option<TenantConfig>, StoreError>;
}

/// The console's time series of polled figures, bounded in time.
#[async_trait]
pub trait ServerSeries: Send + Sync {
    /// Writes points, each replacing one of the same server and minute.
    async fn record_series(&self, points: &[SeriesPoint]) -> Result<(), StoreError>;
    /// The points at or after `since_ms` (of one server, or of all), oldest first.
    async fn series_since(
        &self,
        since_ms: i64,
        server: Option<ServerId>,
    ) -> Result<Vec<SeriesPoint>, StoreError>;
    /// Removes the points before `before_ms`; how many went.
    async fn prune_series(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// The polled picture: samples and listings, overwritten in place.
#[async_trait]
pub trait PolledPicture: Send + Sync {
    /// Every server's sample.
    async fn server_samples(&self) -> Result<Vec<ServerSample>, StoreError>;
    /// Servers whose sample changed after `since_ms`, with the change time.
    async fn samples_changed_after(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(ServerId, i64)>, StoreError>;
    /// The samples of some servers.
    async fn server_samples_of(
        &self,
        servers: &[ServerId],
    ) -> Result<Vec<ServerSample>, StoreError>;
    /// Writes samples (replacing earlier ones) and announces the change.
    async fn put_server_samples(&self, samples: &[ServerSample]) -> Result<(), StoreError>;
    /// Every server's sample without its listing (`meetings_xml` empty),
    /// with the listing's [`listing_digest`] as written with it: no listing
    /// is read, so a poll never holds every server's last listing.
    ///
    /// [`listing_digest`]: crate::records::listing_digest
    async fn server_sample_figures(&self) -> Result<Vec<(ServerSample, u64)>, StoreError>;
    /// Writes one server's new listing ahead of its sample's figures, so a
    /// poll writes each listing as its answer arrives and never holds every
    /// server's at once. Only the listing is written (a server never
    /// sampled gets an empty sample with it), `digest` being its
    /// [`listing_digest`]; the stored digest reads as
    /// [`digest_written_ahead`] until
    /// [`put_polled_samples`](Self::put_polled_samples) writes the figures.
    /// Announces nothing: readers look again when the figures come.
    ///
    /// [`listing_digest`]: crate::records::listing_digest
    /// [`digest_written_ahead`]: crate::records::digest_written_ahead
    async fn put_sample_listing(
        &self,
        server: ServerId,
        meetings_xml: &str,
        digest: u64,
    ) -> Result<(), StoreError>;
    /// Writes a poll's samples in one transaction and announces the change:
    /// `with_listings` whole (replacing earlier ones), `keeping_listings`
    /// all but their listing, which stays as stored (empty for a server
    /// never sampled), and `listed_ahead` all but the listing
    /// [`put_sample_listing`](Self::put_sample_listing) wrote, with that
    /// listing's digest, stored only while that listing is still the one
    /// stored (0 otherwise, so the next poll writes its listing again).
    async fn put_polled_samples(
        &self,
        with_listings: &[ServerSample],
        keeping_listings: &[ServerSample],
        listed_ahead: &[(ServerSample, u64)],
    ) -> Result<(), StoreError>;
    /// Writes samples and when servers' agents were last heard (replacing
    /// earlier ones) in one transaction; announces changed samples.
    async fn put_agent_heartbeats(
        &self,
        samples: &[ServerSample],
        heard: &[(ServerId, i64)],
    ) -> Result<(), StoreError>;
    /// When each server's agent was last heard (ms).
    async fn heartbeats(&self) -> Result<Vec<(ServerId, i64)>, StoreError>;
    /// When these servers' agents were last heard (those ever heard).
    async fn heartbeats_of(&self, servers: &[ServerId])
    -> Result<Vec<(ServerId, i64)>, StoreError>;
    /// The agents last heard before `before_ms`, with when.
    async fn heartbeats_before(&self, before_ms: i64) -> Result<Vec<(ServerId, i64)>, StoreError>;
    /// Keeps the `<meeting>` element of a run Switchboard created.
    async fn put_meeting_listing(&self, listing: &MeetingListing) -> Result<(), StoreError>;
    /// The listings of these runs (by internal id), for those that have one;
    /// the ids are expected to be distinct (a repeated id may be answered
    /// twice).
    async fn meeting_listings_of(
        &self,
        internal_ids: &[&str],
    ) -> Result<Vec<MeetingListing>, StoreError>;
    /// When each listing of a run that still runs was created (ms), by
    /// internal id: the listings without their elements.
    async fn running_listing_times(&self) -> Result<HashMap<String, i64>, StoreError>;
    /// Drops listings created before `before_ms`.
    async fn prune_meeting_listings(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// Recordings and the one-time link nonces.
#[async_trait]
pub trait RecordingReads: Send + Sync {
    /// Recordings matching a query.
    async fn find_recordings(&self, query: &RecordingQuery) -> Result<RecordingPage, StoreError>;
    /// One recording.
    async fn recording(&self, record_id: &str) -> Result<Option<RecordingRecord>, StoreError>;
    /// Number of recordings.
    async fn recording_count(&self) -> Result<u64, StoreError>;
    /// Uses a one-time nonce; false when it was used before.
    async fn claim_token(&self, nonce: &str, expires_at: u64, now: u64)
    -> Result<bool, StoreError>;
}

/// Stored settings (a generated secret, ...).
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// A stored setting.
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Stores a setting, replacing an earlier value.
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Stores a setting unless it exists; returns the value stored now.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;
}

/// Reads servers' metrics endpoints (node_exporter).
#[async_trait]
pub trait MetricsSource: Send + Sync + std::fmt::Debug {
    /// Reads one endpoint within `timeout`.
    async fn scrape(
        &self,
        url: &str,
        timeout: std::time::Duration,
    ) -> Result<
        switchboard_domain::node_metrics::NodeMetrics,
        switchboard_domain::node_metrics::MetricsError,
    >;
}

/// Creates on their way to a server ([`PendingPlacement`]): written before
/// the server's create, removed by the projection of the run's
/// `MeetingCreated` in the append's transaction.
#[async_trait]
pub trait Placements: Send + Sync {
    /// The create of a tenant's meeting left pending, if any.
    async fn pending_placement(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<PendingPlacement>, StoreError>;
    /// The create of the meeting left pending and the voice bridge it holds
    /// (see [`voice_bridge_of`](Self::voice_bridge_of)), read together: a
    /// create of a new meeting needs both (one round trip in the SQL store).
    async fn pending_placement_and_voice_bridge(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<(Option<PendingPlacement>, Option<String>), StoreError> {
        Ok((
            self.pending_placement(tenant, meeting_id).await?,
            self.voice_bridge_of(tenant, meeting_id).await?,
        ))
    }
    /// The meeting, the create of it left pending and the voice bridge it
    /// holds, read together: a create of a meeting this process has not
    /// cached needs all three before it decides (one round trip in the SQL
    /// store).
    async fn meeting_for_create(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<MeetingForCreate, StoreError>;
    /// Notes (replacing an earlier one) where a create is about to go.
    async fn put_pending_placement(&self, placement: &PendingPlacement) -> Result<(), StoreError>;
    /// Creates left pending on `server`, any tenant's.
    async fn pending_placements_on(
        &self,
        server: ServerId,
    ) -> Result<Vec<PendingPlacement>, StoreError>;
    /// Claims a voice bridge for a meeting across the pool: true when the
    /// number is the meeting's now: it was free, the meeting's already
    /// (the claim is renewed), or its holder no longer runs and claimed it
    /// before `stale_before_ms` (a create in flight keeps its number). One
    /// atomic statement, so two instances never both win a number.
    async fn claim_voice_bridge(
        &self,
        claim: &VoiceBridgeClaim,
        stale_before_ms: i64,
    ) -> Result<bool, StoreError>;
    /// [`put_pending_placement`](Self::put_pending_placement) and
    /// [`claim_voice_bridge`](Self::claim_voice_bridge) together, as a new
    /// run's create needs both before it is sent (on PostgreSQL one
    /// statement and one commit). The placement is noted whether or not the
    /// claim wins.
    async fn claim_voice_bridge_noting(
        &self,
        claim: &VoiceBridgeClaim,
        stale_before_ms: i64,
        placement: &PendingPlacement,
    ) -> Result<bool, StoreError> {
        self.put_pending_placement(placement).await?;
        self.claim_voice_bridge(claim, stale_before_ms).await
    }
    /// The number a meeting claimed last, if any.
    async fn voice_bridge_of(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<String>, StoreError>;
    /// The meeting holding a number, if any (running or not).
    async fn voice_bridge_holder(
        &self,
        number: &str,
    ) -> Result<Option<VoiceBridgeClaim>, StoreError>;
    /// The claims on these numbers (the numbers held at all), read
    /// together: the health poll checks every run it finds listed with its
    /// number in one read (the SQL store: one statement per few hundred).
    async fn voice_bridge_holders(
        &self,
        numbers: &[&str],
    ) -> Result<Vec<VoiceBridgeClaim>, StoreError> {
        let mut held = Vec::new();
        for number in numbers {
            held.extend(self.voice_bridge_holder(number).await?);
        }
        Ok(held)
    }
}

/// The callback outbox: deliveries written with their events, claimed when
/// due (by any instance: a claim is a conditional update), and finished.
#[async_trait]
pub trait CallbackOutbox: Send + Sync {
    /// Claims up to `limit` pending deliveries due at `now_ms`: each gets
    /// its next attempt number and is not due again before `lease_until_ms`
    /// (so one that a crashed worker held is tried again then). Returns the
    /// ids with their attempt numbers.
    async fn claim_due_callbacks(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u64,
    ) -> Result<Vec<(String, u32)>, StoreError>;
    /// One delivery.
    async fn callback(&self, id: &str) -> Result<Option<CallbackRecord>, StoreError>;
    /// Records how attempt `attempt` ended; false when the delivery has moved
    /// on since (another attempt, an operator), and nothing was written.
    async fn finish_callback_attempt(
        &self,
        id: &str,
        attempt: u32,
        outcome: &AttemptOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Deliveries matching a filter, newest first.
    async fn callbacks(&self, filter: &CallbackFilter) -> Result<Vec<CallbackRecord>, StoreError>;
    /// Makes a delivery that is not delivered due now again, attempts
    /// allowed until `deadline_ms`; false when there is none such.
    async fn retry_callback(
        &self,
        id: &str,
        now_ms: i64,
        deadline_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Drops a pending or failed delivery; false when there is none such.
    async fn drop_callback(&self, id: &str, now_ms: i64) -> Result<bool, StoreError>;
    /// Deliveries per kind and state.
    async fn callback_counts(&self) -> Result<Vec<(CallbackKind, CallbackState, u64)>, StoreError>;
    /// Every webhook in force, oldest first.
    async fn hooks(&self) -> Result<Vec<HookRecord>, StoreError>;
    /// Deletes deliveries that left the pending state before `before_ms`;
    /// returns how many.
    async fn prune_callbacks(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// Usage accounting: runs' usage as the polls add it up (overwritten in
/// place; each run's row is made by the projection of its `MeetingCreated`
/// and closed by its `MeetingEnded`), tenants' daily peaks, and the
/// summaries of ended runs (the projection of `MeetingUsageSummarized`).
#[async_trait]
pub trait UsageLedger: Send + Sync {
    /// Adds the samples of one poll cycle to their runs (runs not recorded
    /// or already ended are left alone), then raises each tenant's peak of
    /// concurrent attendees on `day` (`YYYY-MM-DD`) to the sum over its
    /// running runs' last samples.
    async fn record_usage(&self, samples: &[UsageSample<'_>], day: &str) -> Result<(), StoreError>;
    /// Ended runs whose summary is not in the log yet, oldest first.
    async fn runs_to_summarize(&self, limit: u64) -> Result<Vec<RunUsageState>, StoreError>;
    /// Marks a run as summarized without a summary (its stream took none),
    /// so it never blocks the ones after it.
    async fn close_usage(&self, internal_id: &str) -> Result<(), StoreError>;
    /// Deletes summarized runs' rows that ended before `before_ms`
    /// (their summaries stay in the log); returns how many.
    async fn prune_usage(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// Summarized runs, by start time.
    async fn usage_runs(&self, filter: &UsageFilter) -> Result<Vec<UsageRunRecord>, StoreError>;
    /// Recordings of meetings started in the filter's range (deleted ones
    /// too: a closed period's figures never change), with their sizes.
    async fn recording_usage(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<RecordingUsage>, StoreError>;
    /// Tenants' daily peaks of concurrent attendees (`(tenant, day, peak)`)
    /// on the days the filter's range touches.
    async fn tenant_peaks(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<(TenantId, String, u64)>, StoreError>;
}

/// Every storage port at once, as one adapter (SQL, in memory) provides them.
pub trait Database:
    EventStore
    + ServerReads
    + MeetingReads
    + TenantReads
    + PolledPicture
    + ServerSeries
    + RecordingReads
    + SettingsStore
    + Placements
    + CallbackOutbox
    + UsageLedger
{
}

impl<T> Database for T where
    T: EventStore
        + ServerReads
        + MeetingReads
        + TenantReads
        + PolledPicture
        + ServerSeries
        + RecordingReads
        + SettingsStore
        + Placements
        + CallbackOutbox
        + UsageLedger
{
}

/// The storage ports' methods in scope, for code holding an adapter.
pub mod prelude {
    pub use super::{
        CallbackOutbox as _, EventStore as _, MeetingReads as _, Placements as _,
        PolledPicture as _, RecordingReads as _, ServerReads as _, ServerSeries as _,
        SettingsStore as _, TenantReads as _, UsageLedger as _,
    };
}
