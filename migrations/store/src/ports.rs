//! The application's storage ports, implemented on the SQL store.

use crate::store::{SqlError, Store};
use async_trait::async_trait;
use std::collections::HashMap;
use switchboard_app::StoreError;
use switchboard_app::ports::{
    CallbackOutbox, ChangeFeed, EventStore, MeetingReads, PolledPicture, RecordingReads,
    ServerReads, ServerSeries, SettingsStore, StreamChange, TenantReads,
};
use switchboard_app::records::HookRecord;
use switchboard_app::records::{
    AppendExtras, AppendOutcome, AttemptOutcome, CallbackFilter, CallbackKind, CallbackRecord,
    CallbackState, EventFilter, LogSnapshot, MeetingListing, MeetingRecord, MeetingRunRecord,
    RecordingPage, RecordingQuery, RecordingRecord, RoutingSnapshot, SeriesPoint, ServerRecord,
    ServerSample, StoredEvent, StreamHistory, TokenRecord,
};
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::{MeetingId, ServerId, StreamId, StreamKind, TenantId};
use switchboard_domain::tenant::TenantConfig;

impl From<SqlError> for StoreError {
    fn from(err: SqlError) -> Self {
        match err {
            SqlError::Conflict { stream, expected } => Self::Conflict { stream, expected },
            SqlError::Database(err) => Self::Database(err.to_string()),
            SqlError::Listen(reason) => Self::Listen(reason),
            SqlError::Corrupt { position, reason } => Self::Corrupt { position, reason },
        }
    }
}

#[async_trait]
impl EventStore for Store {
    async fn append_with(
        &self,
        stream: &StreamId,
        expected: i64,
        events: &[DomainEvent],
        metadata: &EventMetadata,
        extras: AppendExtras<'_>,
    ) -> Result<AppendOutcome, StoreError> {
        Ok(Store::append_sql(self, stream, expected, events, metadata, extras).await?)
    }

    async fn stream_events(&self, stream: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Store::stream_events_sql(self, stream).await?)
    }

    async fn stream_history(&self, stream: &StreamId) -> Result<StreamHistory, StoreError> {
        Ok(Store::stream_history_sql(self, stream).await?)
    }

    async fn events_after(
        &self,
        position: i64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Store::events_after_sql(self, position, limit).await?)
    }

    async fn query_events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Store::query_events_sql(self, filter).await?)
    }

    async fn last_position(&self) -> Result<i64, StoreError> {
        Ok(Store::last_position_sql(self).await?)
    }

    async fn positions_between(&self, after: i64, upto: i64) -> Result<Vec<i64>, StoreError> {
        Ok(Store::positions_between_sql(self, after, upto).await?)
    }

    async fn snapshot_before(
        &self,
        kind: &str,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<LogSnapshot>, StoreError> {
        Ok(Store::snapshot_before_sql(self, kind, at).await?)
    }

    async fn put_snapshot(&self, snapshot: &LogSnapshot) -> Result<(), StoreError> {
        Ok(Store::put_snapshot_sql(self, snapshot).await?)
    }

    async fn streams_changed_after(
        &self,
        position: i64,
        kind: StreamKind,
    ) -> Result<Vec<StreamChange>, StoreError> {
        Ok(Store::streams_changed_after_sql(self, position, kind).await?)
    }

    async fn changes(&self) -> Result<Option<Box<dyn ChangeFeed>>, StoreError> {
        Ok(self
            .listen_for_changes()
            .await?
            .map(|listener| Box::new(listener) as Box<dyn ChangeFeed>))
    }
}

#[async_trait]
impl ChangeFeed for crate::ChangeListener {
    async fn next(&mut self) -> Result<String, StoreError> {
        Ok(crate::ChangeListener::next(self).await?)
    }
}

#[async_trait]
impl ServerReads for Store {
    async fn servers(&self) -> Result<Vec<ServerRecord>, StoreError> {
        Ok(Store::servers_sql(self).await?)
    }

    async fn server(&self, id: ServerId) -> Result<Option<ServerRecord>, StoreError> {
        Ok(Store::server_sql(self, id).await?)
    }

    async fn server_by_url(&self, url: &str) -> Result<Option<ServerRecord>, StoreError> {
        Ok(Store::server_by_url_sql(self, url).await?)
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(Store::tokens_sql(self).await?)
    }
}

#[async_trait]
impl MeetingReads for Store {
    async fn meeting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<MeetingRecord>, StoreError> {
        Ok(Store::meeting_sql(self, tenant, meeting_id).await?)
    }

    async fn meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        Ok(Store::meetings_sql(self).await?)
    }

    async fn running_meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        Ok(Store::running_meetings_sql(self).await?)
    }

    async fn running_meetings_per_server(&self) -> Result<HashMap<ServerId, u64>, StoreError> {
        Ok(Store::running_meetings_per_server_sql(self).await?)
    }

    async fn running_meetings_of(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        Ok(Store::running_meetings_of_sql(self, tenant).await?)
    }

    async fn running_runs_of(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        Ok(Store::running_runs_of_sql(self, tenant).await?)
    }

    async fn running_runs_on(&self, server: ServerId) -> Result<Vec<String>, StoreError> {
        Ok(Store::running_runs_on_sql(self, server).await?)
    }

    async fn servers_running_elsewhere(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Vec<ServerId>, StoreError> {
        Ok(Store::servers_running_elsewhere_sql(self, tenant, meeting_id).await?)
    }

    async fn running_run_owners(&self) -> Result<HashMap<String, TenantId>, StoreError> {
        Ok(Store::running_run_owners_sql(self).await?)
    }

    async fn routing_snapshot(&self) -> Result<RoutingSnapshot, StoreError> {
        Ok(Store::routing_snapshot_sql(self).await?)
    }

    async fn meeting_run(&self, internal_id: &str) -> Result<Option<MeetingRunRecord>, StoreError> {
        Ok(Store::meeting_run_sql(self, internal_id).await?)
    }

    async fn meeting_run_by_nonce(
        &self,
        nonce: &str,
    ) -> Result<Option<MeetingRunRecord>, StoreError> {
        Ok(Store::meeting_run_by_nonce_sql(self, nonce).await?)
    }
}

#[async_trait]
impl TenantReads for Store {
    async fn tenants(&self) -> Result<Vec<TenantConfig>, StoreError> {
        Ok(Store::tenants_sql(self).await?)
    }

    async fn tenant(&self, name: &str) -> Result<Option<TenantConfig>, StoreError> {
        Ok(Store::tenant_sql(self, name).await?)
    }
}

#[async_trait]
impl PolledPicture for Store {
    async fn server_samples(&self) -> Result<Vec<ServerSample>, StoreError> {
        Ok(Store::server_samples_sql(self).await?)
    }

    async fn samples_changed_after(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(ServerId, i64)>, StoreError> {
        Ok(Store::samples_changed_after_sql(self, since_ms).await?)
    }

    async fn server_samples_of(
        &self,
        servers: &[ServerId],
    ) -> Result<Vec<ServerSample>, StoreError> {
        Ok(Store::server_samples_of_sql(self, servers).await?)
    }

    async fn put_server_samples(&self, samples: &[ServerSample]) -> Result<(), StoreError> {
        Ok(Store::put_server_samples_sql(self, samples).await?)
    }

    async fn server_sample_figures(&self) -> Result<Vec<(ServerSample, u64)>, StoreError> {
        Ok(Store::server_sample_figures_sql(self).await?)
    }

    async fn put_sample_listing(
        &self,
        server: ServerId,
        meetings_xml: &str,
        digest: u64,
    ) -> Result<(), StoreError> {
        Ok(Store::put_sample_listing_sql(self, server, meetings_xml, digest).await?)
    }

    async fn put_polled_samples(
        &self,
        with_listings: &[ServerSample],
        keeping_listings: &[ServerSample],
        listed_ahead: &[(ServerSample, u64)],
    ) -> Result<(), StoreError> {
        Ok(
            Store::put_polled_samples_sql(self, with_listings, keeping_listings, listed_ahead)
                .await?,
        )
    }

    async fn put_agent_heartbeats(
        &self,
        samples: &[ServerSample],
        heard: &[(ServerId, i64)],
    ) -> Result<(), StoreError> {
        Ok(Store::put_agent_heartbeats_sql(self, samples, heard).await?)
    }

    async fn heartbeats(&self) -> Result<Vec<(ServerId, i64)>, StoreError> {
        Ok(Store::heartbeats_sql(self, None).await?)
    }

    async fn heartbeats_of(
        &self,
        servers: &[ServerId],
    ) -> Result<Vec<(ServerId, i64)>, StoreError> {
        Ok(Store::heartbeats_of_sql(self, servers).await?)
    }

    async fn heartbeats_before(&self, before_ms: i64) -> Result<Vec<(ServerId, i64)>, StoreError> {
        Ok(Store::heartbeats_sql(self, Some(before_ms)).await?)
    }

    async fn put_meeting_listing(&self, listing: &MeetingListing) -> Result<(), StoreError> {
        Ok(Store::put_meeting_listing_sql(self, listing).await?)
    }

    async fn meeting_listings_of(
        &self,
        internal_ids: &[&str],
    ) -> Result<Vec<MeetingListing>, StoreError> {
        Ok(Store::meeting_listings_of_sql(self, internal_ids).await?)
    }

    async fn running_listing_times(&self) -> Result<HashMap<String, i64>, StoreError> {
        Ok(Store::running_listing_times_sql(self).await?)
    }

    async fn prune_meeting_listings(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(Store::prune_meeting_listings_sql(self, before_ms).await?)
    }
}

#[async_trait]
impl ServerSeries for Store {
    async fn record_series(&self, points: &[SeriesPoint]) -> Result<(), StoreError> {
        Ok(Store::record_series_sql(self, points).await?)
    }

    async fn series_since(
        &self,
        since_ms: i64,
        server: Option<ServerId>,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        Ok(Store::series_since_sql(self, since_ms, server).await?)
    }

    async fn prune_series(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(Store::prune_series_sql(self, before_ms).await?)
    }
}

#[async_trait]
impl RecordingReads for Store {
    async fn find_recordings(&self, query: &RecordingQuery) -> Result<RecordingPage, StoreError> {
        Ok(Store::find_recordings_sql(self, query).await?)
    }

    async fn recording(&self, record_id: &str) -> Result<Option<RecordingRecord>, StoreError> {
        Ok(Store::recording_sql(self, record_id).await?)
    }

    async fn recording_count(&self) -> Result<u64, StoreError> {
        Ok(Store::recording_count_sql(self).await?)
    }

    async fn claim_token(
        &self,
        nonce: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        Ok(Store::claim_token_sql(self, nonce, expires_at, now).await?)
    }
}

#[async_trait]
impl SettingsStore for Store {
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(Store::setting_sql(self, key).await?)
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        Ok(Store::put_setting_sql(self, key, value).await?)
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        Ok(Store::setting_or_insert_sql(self, key, value).await?)
    }
}

#[async_trait]
impl CallbackOutbox for Store {
    async fn claim_due_callbacks(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u64,
    ) -> Result<Vec<(String, u32)>, StoreError> {
        Ok(Store::claim_due_callbacks_sql(self, now_ms, lease_until_ms, limit).await?)
    }

    async fn callback(&self, id: &str) -> Result<Option<CallbackRecord>, StoreError> {
        Ok(Store::callback_sql(self, id).await?)
    }

    async fn finish_callback_attempt(
        &self,
        id: &str,
        attempt: u32,
        outcome: &AttemptOutcome,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(Store::finish_callback_attempt_sql(self, id, attempt, outcome, now_ms).await?)
    }

    async fn callbacks(&self, filter: &CallbackFilter) -> Result<Vec<CallbackRecord>, StoreError> {
        Ok(Store::callbacks_sql(self, filter).await?)
    }

    async fn retry_callback(
        &self,
        id: &str,
        now_ms: i64,
        deadline_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(Store::retry_callback_sql(self, id, now_ms, deadline_ms).await?)
    }

    async fn drop_callback(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        Ok(Store::drop_callback_sql(self, id, now_ms).await?)
    }

    async fn callback_counts(&self) -> Result<Vec<(CallbackKind, CallbackState, u64)>, StoreError> {
        Ok(Store::callback_counts_sql(self).await?)
    }

    async fn hooks(&self) -> Result<Vec<HookRecord>, StoreError> {
        Ok(Store::hooks_sql(self).await?)
    }

    async fn prune_callbacks(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(Store::prune_callbacks_sql(self, before_ms).await?)
    }
}
