//! The in-memory routing view: servers, tenants, known meetings and
//! per-server load, so joins and placement never replay streams on the
//! request path.
//!
//! It has no write path but events: this process's appends reach it through
//! the [`EventBus`](crate::executor::EventBus) (it is a
//! [`Subscriber`](crate::executor::Subscriber)), and changes made elsewhere
//! (the CLI, another instance, a worker) through [`RoutingView::refresh`],
//! which reloads what the projections say once the log moved (woken by the
//! store's change announcements, and on a timer).

use crate::clock::SharedClock;
use crate::error::StoreError;
use crate::executor::{AppendedEvent, Subscriber};
use crate::ports::Database;
use crate::records::{MeetingRecord, ServerRecord, ServerSample};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use switchboard_domain::aggregate::Aggregate;
use switchboard_domain::bbb::xml::read_meetings;
use switchboard_domain::events::DomainEvent;
use switchboard_domain::ids::StreamId;
use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_domain::load::Observed;
use switchboard_domain::load::{LoadWeights, ServerLoad};
use switchboard_domain::meeting::MeetingEvent;
use switchboard_domain::node_metrics::MetricsStatus;
use switchboard_domain::selection::{Candidate, SelectionError, TagRequest, rank_in_pool};
use switchboard_domain::server::Server;
use switchboard_domain::server_metrics::ResourceUsage;
use switchboard_domain::tenant::{Tenant, TenantConfig};

/// Meetings cached at most; past this the cache starts over.
const MEETING_CACHE_LIMIT: usize = 200_000;

/// How far before the last seen position invalidation looks again, so events
/// that commit out of position order (PostgreSQL sequences) are not missed.
const POSITION_OVERLAP: i64 = 256;

/// The view reloads at least this often even when the last position did not
/// move: an append that committed below a position already seen (PostgreSQL
/// sequences commit out of order) is picked up by then.
const FULL_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Samples that changed this long before the newest one seen are looked at
/// again, so a sample written by a worker whose clock lags is not missed.
const SAMPLE_OVERLAP_MS: i64 = 30_000;

/// How long a join counts as an attendee before a poll confirms it.
pub const PENDING_JOIN_MS: i64 = 60_000;

/// About how many bytes of listings one read of changed samples brings in
/// (a larger listing is read alone).
const LISTING_BYTES_PER_READ: usize = 1 << 20;

/// The stale servers in groups to read together: each group's listings, as
/// large as their last pictures, come to at most [`LISTING_BYTES_PER_READ`]
/// (or one server, when its listing alone is larger); a server without a
/// picture yet counts as small.
fn reads_by_listing_size(stale: &[ServerId], current: &Picture) -> Vec<Vec<ServerId>> {
    let mut reads: Vec<Vec<ServerId>> = Vec::new();
    let mut bytes_in_last = 0usize;
    for id in stale {
        let bytes = current.get(id).map_or(0, |polled| polled.listing_bytes());
        match reads.last_mut() {
            Some(read) if bytes_in_last + bytes <= LISTING_BYTES_PER_READ => {
                read.push(*id);
                bytes_in_last += bytes;
            }
            _ => {
                reads.push(vec![*id]);
                bytes_in_last = bytes;
            }
        }
    }
    reads
}

/// One server's meetings as its last poll listed them.
#[derive(Debug, Default)]
pub struct PolledServer {
    /// When the sample last changed (ms).
    pub changed_at_ms: i64,
    /// Each listed meeting: internal id and its `<meeting>` element as sent.
    pub meetings: Vec<(String, Bytes)>,
    /// Participants of each listed meeting, by internal id.
    pub participants: HashMap<String, u64>,
    /// The parent (internal id) of each listed breakout room, by internal id.
    pub parents: HashMap<String, String>,
}

impl PolledServer {
    /// The bytes of its `<meeting>` elements.
    pub fn listing_bytes(&self) -> usize {
        self.meetings.iter().map(|(_, element)| element.len()).sum()
    }

    /// The server's meetings from its sample, whose listing it takes (so
    /// the listing is never held twice).
    fn from_sample(sample: &mut ServerSample) -> Self {
        const HEAD: &str = "<response><returncode>SUCCESS</returncode><meetings>";
        const TAIL: &str = "</meetings></response>";
        let listed = std::mem::take(&mut sample.meetings_xml);
        let mut wrapped = String::with_capacity(HEAD.len() + listed.len() + TAIL.len());
        wrapped.push_str(HEAD);
        wrapped.push_str(&listed);
        drop(listed);
        wrapped.push_str(TAIL);
        let body = Bytes::from(wrapped);
        let text = std::str::from_utf8(&body).unwrap_or_default();
        let mut participants = HashMap::new();
        let mut parents = HashMap::new();
        let meetings = match read_meetings(text) {
            Ok(answer) => answer
                .meetings
                .iter()
                .filter_map(|meeting| {
                    // A server's answer is untrusted: an element holding a
                    // character XML 1.0 cannot carry is never relayed.
                    if meeting.raw.chars().any(|c| {
                        (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                            || c == '\u{FFFE}'
                            || c == '\u{FFFF}'
                    }) {
                        tracing::warn!(server = %sample.server_id, "a meeting element with characters XML cannot carry is not listed");
                        return None;
                    }
                    participants.insert(meeting.internal_id.clone(), meeting.participants);
                    if let Some(parent) = &meeting.parent_id {
                        parents.insert(meeting.internal_id.clone(), parent.clone());
                    }
                    // The element is a slice of `text`; anything else is skipped.
                    let start =
                        (meeting.raw.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
                    let end = start.checked_add(meeting.raw.len())?;
                    (end <= text.len())
                        .then(|| (meeting.internal_id.clone(), body.slice(start..end)))
                })
                .collect(),
            Err(err) => {
                tracing::warn!(server = %sample.server_id, error = %err, "unreadable server sample");
                Vec::new()
            }
        };
        Self {
            changed_at_ms: sample.changed_at_ms,
            meetings,
            participants,
            parents,
        }
    }
}

/// Every server's last polled meetings.
pub type Picture = HashMap<ServerId, Arc<PolledServer>>;

/// Running meeting counts: the database's snapshot plus what this process did
/// since, plus creates in flight.
#[derive(Debug, Default)]
struct LoadBook {
    snapshot: HashMap<ServerId, u64>,
    snapshot_position: i64,
    adjustments: Vec<(i64, ServerId, i64)>,
    in_flight: HashMap<ServerId, u64>,
}

impl LoadBook {
    fn meetings(&self, id: ServerId) -> u64 {
        let base = self.snapshot.get(&id).copied().unwrap_or(0) as i64;
        let adjusted: i64 = self
            .adjustments
            .iter()
            .filter(|(position, server, _)| *server == id && *position > self.snapshot_position)
            .map(|(_, _, delta)| delta)
            .sum();
        let in_flight = self.in_flight.get(&id).copied().unwrap_or(0) as i64;
        (base + adjusted + in_flight).max(0) as u64
    }
}

/// Observed loads shared by the poller and placement, each with the time
/// it was seen.
#[derive(Debug, Clone, Default)]
pub struct ObservedLoads(Arc<RwLock<HashMap<ServerId, (Observed, i64)>>>);

impl ObservedLoads {
    /// What was last seen on a server.
    pub fn get(&self, id: ServerId) -> Option<Observed> {
        Some(self.0.read().ok()?.get(&id)?.0.clone())
    }

    /// Records what this process saw on a server (its poll or an agent's
    /// heartbeat it took), with the time the sample it writes carries.
    pub fn set(&self, id: ServerId, observed: Observed, seen_at_ms: i64) {
        if let Ok(mut map) = self.0.write() {
            map.insert(id, (observed, seen_at_ms));
        }
    }

    /// Records what a stored sample polled at `polled_at_ms` says, unless
    /// something seen later is recorded already. A routing refresh that
    /// read a sample before this process's poll wrote a newer one must not
    /// put the older figures back when it finishes after the poll (issue
    /// 22: a create burst right after a poll went to one server, seen there
    /// with the empty sample a listing written ahead had made). What this
    /// process saw itself always replaces (see [`set`](Self::set)), so a
    /// sample stamped ahead by another instance's clock holds only until
    /// the next local poll.
    pub fn set_from_sample(&self, id: ServerId, observed: Observed, polled_at_ms: i64) {
        if let Ok(mut map) = self.0.write() {
            match map.get(&id) {
                Some((_, seen_ms)) if *seen_ms > polled_at_ms => {}
                _ => {
                    map.insert(id, (observed, polled_at_ms));
                }
            }
        }
    }
}

/// The routing view shared by all requests.
#[derive(Debug)]
pub struct RoutingView {
    store: Arc<dyn Database>,
    clock: SharedClock,
    /// Set when an append could not be applied here in full (a meeting
    /// ended that was not cached): the next refresh reloads at once.
    stale: std::sync::atomic::AtomicBool,
    servers: RwLock<Arc<HashMap<ServerId, Arc<ServerRecord>>>>,
    meetings: RwLock<HashMap<String, Arc<MeetingRecord>>>,
    load: Mutex<LoadBook>,
    seen_position: AtomicI64,
    weights: LoadWeights,
    observed: ObservedLoads,
    /// Serialises refreshes (a slower one must not install an older view);
    /// holds when the last reload happened.
    refreshing: tokio::sync::Mutex<Option<std::time::Instant>>,
    /// Tenants in force, by name.
    tenants: RwLock<Arc<HashMap<String, Arc<TenantConfig>>>>,
    /// What the polls saw, per server.
    picture: RwLock<Arc<Picture>>,
    /// The newest sample change time seen.
    picture_seen_ms: AtomicI64,
    /// Bumped on every change getMeetings could show.
    generation: AtomicU64,
    /// Joins sent by this process and not yet seen by a poll: tenant,
    /// server, when (ms).
    pending_joins: Mutex<Vec<PendingJoin>>,
    /// Bumped by every server or tenant change this process applies, so a
    /// refresh knows its reads may predate one.
    local_changes: AtomicU64,
    /// Servers this process removed, with the removal's version (a refresh
    /// that read them before must not bring them back).
    removed_servers: Mutex<HashMap<ServerId, i64>>,
    /// Log positions of appends this process made and applied here since
    /// the last reload: when the log moved by these alone (and by positions
    /// not committed yet), a refresh has nothing to read (see
    /// [`RoutingView::refresh`]).
    applied_here: Mutex<std::collections::BTreeSet<i64>>,
    /// The log position the last full reload read up to.
    reloaded_position: AtomicI64,
}

/// How long a refresh waits for an append of this process it heard of to be
/// applied here before reading the whole view again.
const APPLY_GRACE: std::time::Duration = std::time::Duration::from_millis(2);

/// Positions of local appends kept for refreshes at most; past this (no
/// refresh for a long while) they are let go and the next refresh reloads.
const APPLIED_HERE_LIMIT: usize = 100_000;

/// The most positions a refresh reads to check that those missing here are
/// appends in flight (beyond, it reloads the view).
const APPLIED_CHECK_SPAN: i64 = 10_000;

/// Who a join is for: the meeting's run and the attendee's `userID`, or,
/// without one, the attendee's name and role (or password). Two joins with
/// the same key are one attendee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinKey(String);

impl JoinKey {
    /// The key of a join to the run `internal_id` with the join's
    /// parameters.
    pub fn of(internal_id: &str, params: &switchboard_domain::bbb::params::Params) -> Self {
        let who = match params.non_empty("userID") {
            Some(user) => format!("user\u{0}{user}"),
            None => format!(
                "name\u{0}{}\u{0}{}\u{0}{}",
                params.get("fullName").unwrap_or_default(),
                params.get("role").unwrap_or_default().to_ascii_lowercase(),
                params.get("password").unwrap_or_default()
            ),
        };
        Self(format!("{internal_id}\u{0}{who}"))
    }
}

/// A join sent, counted toward its tenant's attendees until a poll shows it.
#[derive(Debug)]
struct PendingJoin {
    tenant: TenantId,
    server: ServerId,
    attendee: JoinKey,
    at_ms: i64,
}

fn cache_key(tenant: &TenantId, meeting_id: &MeetingId) -> String {
    format!("{tenant}:{meeting_id}")
}

/// A server chosen for a create; counts as one more meeting there until dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    view: &'a RoutingView,
    /// The chosen server.
    pub server: Arc<ServerRecord>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Ok(mut book) = self.view.load.lock()
            && let Some(count) = book.in_flight.get_mut(&self.server.id)
        {
            *count = count.saturating_sub(1);
        }
    }
}

impl RoutingView {
    /// Loads the view from the store.
    pub async fn load(
        store: Arc<dyn Database>,
        clock: SharedClock,
        weights: LoadWeights,
        observed: ObservedLoads,
    ) -> Result<Arc<Self>, StoreError> {
        let view = Arc::new(Self {
            store,
            clock,
            stale: std::sync::atomic::AtomicBool::new(false),
            servers: RwLock::new(Arc::new(HashMap::new())),
            meetings: RwLock::new(HashMap::new()),
            load: Mutex::new(LoadBook::default()),
            seen_position: AtomicI64::new(-1),
            weights,
            observed,
            refreshing: tokio::sync::Mutex::new(None),
            applied_here: Mutex::new(std::collections::BTreeSet::new()),
            reloaded_position: AtomicI64::new(-1),
            tenants: RwLock::new(Arc::new(HashMap::new())),
            picture: RwLock::new(Arc::new(HashMap::new())),
            picture_seen_ms: AtomicI64::new(0),
            generation: AtomicU64::new(0),
            pending_joins: Mutex::new(Vec::new()),
            local_changes: AtomicU64::new(0),
            removed_servers: Mutex::new(HashMap::new()),
        });
        view.refresh().await?;
        Ok(view)
    }

    /// Reloads what changed since the last look; true when it reloaded.
    ///
    /// When the log moved only by appends this process made (and applied
    /// here already, [`Subscriber::on_appended`]), there is nothing to read:
    /// a busy instance would otherwise reload servers, tenants and every
    /// server's meeting count after each of its own creates. Positions
    /// missing here that have not committed (concurrent appends commit out
    /// of order) are looked at again by the next refresh, which reloads if
    /// another process's event has filled one. The full reload still
    /// happens at least every [`FULL_RELOAD_EVERY`].
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let mut last_reload = self.refreshing.lock().await;
        self.refresh_picture().await?;
        let seen = self.seen_position.load(Ordering::Acquire);
        let recent = last_reload.is_some_and(|at| at.elapsed() < FULL_RELOAD_EVERY);
        let stale = self.stale.swap(false, Ordering::AcqRel);
        if recent && !stale {
            let last = self.store.last_position().await?;
            // An append of this process is announced as it commits, just
            // before this process applies it here: one not noted yet is
            // given a moment before the whole view is read again for it.
            let mut explained = last == seen || self.take_applied_here(seen, last);
            if !explained {
                tokio::time::sleep(APPLY_GRACE).await;
                explained = self.take_applied_here(seen, last);
            }
            let mut upto = last;
            if !explained && self.spans_applied_here(seen, last) {
                // Positions missing here may be appends not committed yet:
                // if every one that committed was applied here, nothing is
                // to be read now. The view moves up to the first position
                // not committed, so the next refresh looks at it again:
                // this process's append is applied here when it commits;
                // another process's makes that refresh reload.
                let committed = self.store.positions_between(seen, last).await?;
                if let Some(before_gap) = self.take_applied_positions(seen, last, &committed) {
                    (explained, upto) = (true, before_gap);
                }
            }
            if explained {
                self.seen_position.fetch_max(upto, Ordering::AcqRel);
                return Ok(false);
            }
        }
        let reason = match (recent, stale) {
            (false, _) => "periodic or first",
            (true, true) => "a change the view could not apply",
            (true, false) => "the log moved beyond what was applied here",
        };
        tracing::debug!(reason, seen, "the routing view reloads");
        *last_reload = Some(std::time::Instant::now());
        let changes_before = self.local_changes.load(Ordering::Acquire);
        let snapshot = self.store.routing_snapshot().await?;
        let position = snapshot.position;
        let servers: HashMap<ServerId, Arc<ServerRecord>> = snapshot
            .servers
            .into_iter()
            .map(|server| (server.id, Arc::new(server)))
            .collect();
        let counts = snapshot.running;
        let changed = if seen < 0 {
            Vec::new()
        } else {
            self.store
                .streams_changed_after(
                    // From the last full reload's position, not only the
                    // last seen one: refreshes that skipped reading (this
                    // process's appends alone) moved `seen` past events of
                    // other instances that committed out of order.
                    (seen.min(self.reloaded_position.load(Ordering::Acquire)) - POSITION_OVERLAP)
                        .max(0),
                    switchboard_domain::ids::StreamKind::Meeting,
                )
                .await?
        };
        let tenants: HashMap<String, Arc<TenantConfig>> = self
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|tenant| (tenant.name.clone(), Arc::new(tenant)))
            .collect();
        self.install(servers, tenants, changes_before);
        {
            // A meeting this process appended to is cached at its newest
            // version already; only those changed elsewhere are read again.
            let mut meetings = self.meetings.write().expect("meetings lock");
            for change in changed {
                if let StreamId::Meeting(tenant, meeting_id) = change.stream {
                    let key = cache_key(&tenant, &meeting_id);
                    if meetings
                        .get(&key)
                        .is_some_and(|cached| cached.version < change.version)
                    {
                        meetings.remove(&key);
                    }
                }
            }
        }
        {
            let mut book = self.load.lock().expect("load lock");
            book.snapshot = counts;
            book.snapshot_position = position;
            book.adjustments.retain(|(at, _, _)| *at > position);
        }
        {
            let mut applied = self.applied_here.lock().expect("applied lock");
            *applied = applied.split_off(&(position + 1));
        }
        self.seen_position.store(position, Ordering::Release);
        self.reloaded_position.store(position, Ordering::Release);
        self.bump();
        Ok(true)
    }

    /// Whether every position after `seen` up to `last` is an append this
    /// process applied here; if so they are let go.
    fn take_applied_here(&self, seen: i64, last: i64) -> bool {
        if seen < 0 || last < seen {
            return false;
        }
        let mut applied = self.applied_here.lock().expect("applied lock");
        let span = (last - seen) as usize;
        if span > applied.len() || !(seen + 1..=last).all(|at| applied.contains(&at)) {
            return false;
        }
        *applied = applied.split_off(&(last + 1));
        true
    }

    /// Whether the positions after `seen` up to `last` are few enough to
    /// be checked one by one against those applied here.
    fn spans_applied_here(&self, seen: i64, last: i64) -> bool {
        let applied = self.applied_here.lock().expect("applied lock");
        seen >= 0 && last > seen && !applied.is_empty() && last - seen <= APPLIED_CHECK_SPAN
    }

    /// When every position of `committed` (the log's after `seen` up to
    /// `last`, oldest first) is an append this process applied here: the
    /// position before the first one missing from them (`last` when none
    /// is), with the applied positions up to it let go. `None` otherwise.
    fn take_applied_positions(&self, seen: i64, last: i64, committed: &[i64]) -> Option<i64> {
        let mut applied = self.applied_here.lock().expect("applied lock");
        if !committed.iter().all(|position| applied.contains(position)) {
            return None;
        }
        let first_gap = (seen + 1..=last)
            .zip(committed.iter().copied().chain(std::iter::repeat(i64::MAX)))
            .find(|(expected, found)| expected != found)
            .map(|(expected, _)| expected);
        let upto = first_gap.map_or(last, |gap| gap - 1);
        *applied = applied.split_off(&(upto + 1));
        Some(upto)
    }

    /// Notes the positions of an append applied here.
    fn note_applied_here(&self, events: &[AppendedEvent]) {
        let mut applied = self.applied_here.lock().expect("applied lock");
        if applied.len() >= APPLIED_HERE_LIMIT {
            applied.clear();
        }
        applied.extend(events.iter().map(|appended| appended.position));
    }

    /// Installs servers and tenants read by a refresh. A change this
    /// process applied while they were read (`local_changes` moved since
    /// `changes_before`) is newer than what was read: each server keeps
    /// its newer version (a server removed here stays removed), the
    /// tenants in force stay, and the next refresh reads again.
    fn install(
        &self,
        mut servers: HashMap<ServerId, Arc<ServerRecord>>,
        tenants: HashMap<String, Arc<TenantConfig>>,
        changes_before: u64,
    ) {
        let mut current_servers = self.servers.write().expect("servers lock");
        let mut current_tenants = self.tenants.write().expect("tenants lock");
        if self.local_changes.load(Ordering::Acquire) == changes_before {
            *current_servers = Arc::new(servers);
            *current_tenants = Arc::new(tenants);
            return;
        }
        for (id, current) in current_servers.iter() {
            if servers
                .get(id)
                .is_none_or(|read| read.version < current.version)
            {
                servers.insert(*id, current.clone());
            }
        }
        let removed = self.removed_servers.lock().expect("removed servers lock");
        servers.retain(|id, read| removed.get(id).is_none_or(|gone| read.version > *gone));
        *current_servers = Arc::new(servers);
        self.stale.store(true, Ordering::Release);
    }

    /// Reads the samples that changed since the last look.
    async fn refresh_picture(&self) -> Result<(), StoreError> {
        let seen = self.picture_seen_ms.load(Ordering::Acquire);
        let changed = self
            .store
            .samples_changed_after(seen.saturating_sub(SAMPLE_OVERLAP_MS))
            .await?;
        let Some(newest) = changed.iter().map(|(_, at)| *at).max() else {
            return Ok(());
        };
        let current = self.picture();
        let stale: Vec<ServerId> = changed
            .iter()
            .filter(|(id, at)| current.get(id).map(|p| p.changed_at_ms) != Some(*at))
            .map(|(id, _)| *id)
            .collect();
        let reads = reads_by_listing_size(&stale, &current);
        let mut next = (*current).clone();
        // Not held past here: each server's old picture goes as its new one
        // is published (unless a getMeetings answer still sends it).
        drop(current);
        // Read a few listings at a time, and publish each group's pictures
        // before the next is read: every server's new listing is never held
        // beside every old one (with 10,000 meetings on 10 servers, ten
        // listings of about 1 MB each, and SQLite keeps a copy of each row
        // it hands out). A server's load is set with its picture: a failed
        // read changes nothing of the servers not yet read (the next
        // refresh reads them again).
        for servers in reads {
            // Each sample is let go once its server's picture is made.
            for mut sample in self.store.server_samples_of(&servers).await? {
                self.observed.set_from_sample(
                    sample.server_id,
                    sample.observed_with(sample.metrics_status()),
                    sample.polled_at_ms,
                );
                next.insert(
                    sample.server_id,
                    Arc::new(PolledServer::from_sample(&mut sample)),
                );
            }
            *self.picture.write().expect("picture lock") = Arc::new(next.clone());
            self.bump();
        }
        self.picture_seen_ms.fetch_max(newest, Ordering::AcqRel);
        Ok(())
    }

    /// What the polls saw, per server.
    pub fn picture(&self) -> Arc<Picture> {
        self.picture.read().expect("picture lock").clone()
    }

    /// Notes a join sent to `server` for `tenant`, counted until a poll of
    /// that server shows a change (or for [`PENDING_JOIN_MS`]). The same
    /// `attendee` (see [`JoinKey`]) is counted once within that window, so a
    /// replayed join URL reserves one place, not one per replay.
    pub fn note_join(&self, tenant: &TenantId, server: ServerId, attendee: &JoinKey) {
        let now = self.clock.now_ms();
        let mut pending = self.pending_joins.lock().expect("pending joins lock");
        pending.retain(|join| join.at_ms > now - PENDING_JOIN_MS);
        if pending.iter().any(|join| {
            join.server == server && &join.tenant == tenant && &join.attendee == attendee
        }) {
            return;
        }
        pending.push(PendingJoin {
            tenant: tenant.clone(),
            server,
            attendee: attendee.clone(),
            at_ms: now,
        });
    }

    /// Whether a join of `attendee` is already counted as pending (a replay
    /// or a rejoin), so it takes no further place.
    pub fn join_pending(&self, tenant: &TenantId, attendee: &JoinKey) -> bool {
        let now = self.clock.now_ms();
        self.pending_joins
            .lock()
            .expect("pending joins lock")
            .iter()
            .any(|join| {
                &join.tenant == tenant
                    && &join.attendee == attendee
                    && join.at_ms > now - PENDING_JOIN_MS
            })
    }

    /// Attendees of a tenant: what the polls saw in its running runs
    /// (`runs`: internal ids) plus joins sent since those polls.
    pub fn attendees_of_tenant(
        &self,
        tenant: &TenantId,
        runs: &std::collections::HashSet<String>,
    ) -> u64 {
        let picture = self.picture();
        let polled: u64 = picture
            .values()
            .flat_map(|server| server.participants.iter())
            .filter(|(internal_id, _)| runs.contains(*internal_id))
            .map(|(_, count)| *count)
            .sum();
        let now = self.clock.now_ms();
        let pending = self
            .pending_joins
            .lock()
            .expect("pending joins lock")
            .iter()
            .filter(|join| {
                &join.tenant == tenant
                    && join.at_ms > now - PENDING_JOIN_MS
                    && picture
                        .get(&join.server)
                        .is_none_or(|polled| join.at_ms > polled.changed_at_ms)
            })
            .count() as u64;
        polled + pending
    }

    /// Changes whenever anything getMeetings shows may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Tenants in force, by name.
    pub fn tenants(&self) -> Arc<HashMap<String, Arc<TenantConfig>>> {
        self.tenants.read().expect("tenants lock").clone()
    }

    /// One tenant in force.
    pub fn tenant(&self, name: &str) -> Option<Arc<TenantConfig>> {
        self.tenants
            .read()
            .expect("tenants lock")
            .get(name)
            .cloned()
    }

    /// The log position the view reflects.
    pub fn position(&self) -> i64 {
        self.seen_position.load(Ordering::Acquire)
    }

    /// One server.
    pub fn server(&self, id: ServerId) -> Option<Arc<ServerRecord>> {
        self.servers.read().expect("servers lock").get(&id).cloned()
    }

    /// Every server.
    pub fn servers(&self) -> Arc<HashMap<ServerId, Arc<ServerRecord>>> {
        self.servers.read().expect("servers lock").clone()
    }

    /// The meeting of a tenant, from the cache or the projection.
    pub async fn meeting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<Arc<MeetingRecord>>, StoreError> {
        if let Some(record) = self.cached_meeting(tenant, meeting_id) {
            return Ok(Some(record));
        }
        let record = self.store.meeting(tenant, meeting_id).await?.map(Arc::new);
        if let Some(record) = &record {
            self.remember(record.clone());
        }
        Ok(record)
    }

    /// The meeting as cached here, without asking the store.
    pub fn cached_meeting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Option<Arc<MeetingRecord>> {
        self.meetings
            .read()
            .expect("meetings lock")
            .get(&cache_key(tenant, meeting_id))
            .cloned()
    }

    /// Whether the meeting is in the cache (no read).
    #[cfg(test)]
    fn holds(&self, tenant: &TenantId, meeting_id: &MeetingId) -> bool {
        self.cached_meeting(tenant, meeting_id).is_some()
    }

    /// Caches a meeting (read from the store, or as an append left it)
    /// unless a newer version of it is cached already (a read that started
    /// before an append may finish after it).
    pub fn remember(&self, record: Arc<MeetingRecord>) {
        let key = cache_key(&record.tenant, &record.meeting_id);
        let mut meetings = self.meetings.write().expect("meetings lock");
        if meetings
            .get(&key)
            .is_some_and(|cached| cached.version >= record.version)
        {
            return;
        }
        if meetings.len() >= MEETING_CACHE_LIMIT {
            meetings.clear();
        }
        meetings.insert(key, record);
        drop(meetings);
        self.bump();
    }

    /// Drops a meeting from the cache (it changed in a way not known here).
    fn forget(&self, tenant: &TenantId, meeting_id: &MeetingId) {
        self.meetings
            .write()
            .expect("meetings lock")
            .remove(&cache_key(tenant, meeting_id));
        self.bump();
    }

    /// Counts a meeting change on a server that this process appended at `position`.
    fn adjust(&self, server: ServerId, position: i64, delta: i64) {
        let mut book = self.load.lock().expect("load lock");
        if position > book.snapshot_position {
            book.adjustments.push((position, server, delta));
        }
        drop(book);
        self.bump();
    }

    /// Meetings recorded as running on a server, plus creates in flight there.
    pub fn meetings_on(&self, server: ServerId) -> u64 {
        self.load.lock().expect("load lock").meetings(server)
    }

    /// Attendees the last health poll saw on a server.
    pub fn attendees_of(&self, server: ServerId) -> u64 {
        self.observed.get(server).map(|o| o.attendees).unwrap_or(0)
    }

    /// Participants of the largest meeting the last health poll saw on a server.
    pub fn largest_meeting_of(&self, server: ServerId) -> u64 {
        self.observed
            .get(server)
            .map(|o| o.largest_meeting)
            .unwrap_or(0)
    }

    /// A server's windowed CPU and memory and the state of their reads, as
    /// the last poll left them (`None`: not polled yet).
    pub fn metrics_of(&self, server: ServerId) -> Option<MetricsStatus> {
        self.observed.get(server).map(|o| o.metrics)
    }

    fn usage_of(&self, server: ServerId) -> ResourceUsage {
        self.observed
            .get(server)
            .map(|o| o.metrics.usage)
            .unwrap_or_default()
    }

    /// Whether a server's windowed CPU or memory is over its limit: it takes
    /// no new meetings until it is back under (joins still go there).
    pub fn over_limit(&self, server: ServerId) -> bool {
        self.weights.over_limit(self.usage_of(server))
    }

    /// The load of a server as placement sees it.
    pub fn load_of(&self, server: &ServerRecord) -> f64 {
        let book = self.load.lock().expect("load lock");
        self.load_with(&book, server)
    }

    fn load_with(&self, book: &LoadBook, server: &ServerRecord) -> f64 {
        let observed = self.observed.get(server.id);
        let load = ServerLoad {
            polled: observed.as_ref().map(|o| o.load).unwrap_or(0.0),
            polled_meetings: observed.as_ref().map(|o| o.known_meetings).unwrap_or(0),
            meetings: book.meetings(server.id),
        };
        let usage = observed.map(|o| o.metrics.usage).unwrap_or_default();
        self.weights
            .effective_load(load, server.settings.load_multiplier, usage)
    }

    /// Picks the least loaded enabled, online server for a create, within
    /// the tenant's `pool` of tags (empty: any), skipping `tried` and servers
    /// over their CPU or memory limit, and counts the new meeting there at once.
    pub fn reserve(
        &self,
        request: &TagRequest,
        pool: &[String],
        tried: &[ServerId],
    ) -> Result<Reservation<'_>, SelectionError> {
        let servers = self.servers();
        let mut book = self.load.lock().expect("load lock");
        let available: Vec<Candidate> = servers
            .values()
            .filter(|s| s.takes_new_meetings() && !tried.contains(&s.id))
            .filter(|s| !self.over_limit(s.id))
            .map(|s| Candidate {
                id: s.id,
                tag: s.settings.tag.clone(),
                load: self.load_with(&book, s),
            })
            .collect();
        let best = rank_in_pool(&available, request, pool)?[0];
        *book.in_flight.entry(best).or_default() += 1;
        let server = servers.get(&best).cloned().expect("ranked from this map");
        Ok(Reservation { view: self, server })
    }

    /// Applies the events of one append to a meeting stream.
    fn apply_meeting(&self, tenant: &TenantId, meeting_id: &MeetingId, events: &[AppendedEvent]) {
        let key = cache_key(tenant, meeting_id);
        let mut current = self
            .meetings
            .read()
            .expect("meetings lock")
            .get(&key)
            .map(|record| (**record).clone());
        for appended in events {
            let DomainEvent::Meeting(event) = &appended.event else {
                continue;
            };
            // Appends of one stream may be published out of order: what the
            // cache already reflects is not applied again.
            if current
                .as_ref()
                .is_some_and(|record| record.version >= appended.version)
            {
                continue;
            }
            // A gap: an event of this stream not seen here (appended
            // elsewhere, or published later) is missing from the cached
            // record. Only a create rebuilds it whole; anything else drops it,
            // to be read again, rather than patch it under a newer version
            // that a refresh would then trust.
            if current
                .as_ref()
                .is_some_and(|record| appended.version > record.version + 1)
                && !matches!(event, MeetingEvent::MeetingCreated { .. })
            {
                current = None;
                self.stale.store(true, Ordering::Release);
            }
            match event {
                MeetingEvent::MeetingCreated {
                    tenant,
                    meeting_id,
                    name,
                    run,
                } => {
                    self.adjust(run.server_id, appended.position, 1);
                    current = Some(MeetingRecord {
                        tenant: tenant.clone(),
                        meeting_id: meeting_id.clone(),
                        name: name.clone(),
                        run: run.clone(),
                        running: true,
                        ended_at_ms: None,
                        version: appended.version,
                    });
                }
                MeetingEvent::MeetingEnded {
                    internal_id, at_ms, ..
                } => match current.as_mut() {
                    Some(record) if record.run.internal_id == *internal_id => {
                        if record.running {
                            self.adjust(record.run.server_id, appended.position, -1);
                        }
                        record.running = false;
                        record.ended_at_ms = Some(*at_ms);
                        record.version = appended.version;
                    }
                    _ => {
                        // Not known here: the projection says where it ran.
                        current = None;
                        self.stale.store(true, Ordering::Release);
                    }
                },
                // Accounting only: the stream moved on, nothing else did.
                MeetingEvent::MeetingUsageSummarized { .. } => {
                    if let Some(record) = current.as_mut() {
                        record.version = appended.version;
                    }
                }
            }
        }
        match current {
            Some(record) => self.remember(Arc::new(record)),
            None => self.forget(tenant, meeting_id),
        }
    }

    /// Applies a server's events to its record.
    fn apply_server(&self, id: ServerId, events: &[AppendedEvent]) {
        let mut servers = self.servers.write().expect("servers lock");
        let mut next = (**servers).clone();
        let mut state = next
            .get(&id)
            .map(|record| record.aggregate())
            .unwrap_or_default();
        let mut version = next.get(&id).map(|record| record.version).unwrap_or(0);
        for appended in events {
            if let DomainEvent::Server(event) = &appended.event {
                state.evolve(event);
                version = appended.version;
            }
        }
        match server_record(id, &state, version) {
            Some(record) => {
                next.insert(id, Arc::new(record));
            }
            None => {
                next.remove(&id);
                self.removed_servers
                    .lock()
                    .expect("removed servers lock")
                    .insert(id, version);
            }
        }
        *servers = Arc::new(next);
        self.local_changes.fetch_add(1, Ordering::AcqRel);
        drop(servers);
        self.bump();
    }

    /// Applies a tenant's events to the tenants in force.
    fn apply_tenant(&self, name: &str, events: &[AppendedEvent]) {
        let mut tenants = self.tenants.write().expect("tenants lock");
        let mut state = Tenant {
            config: tenants.get(name).map(|config| (**config).clone()),
            retired: false,
        };
        for appended in events {
            if let DomainEvent::Tenant(event) = &appended.event {
                state.evolve(event);
            }
        }
        let mut next = (**tenants).clone();
        match state.config {
            Some(config) => {
                next.insert(name.to_owned(), Arc::new(config));
            }
            None => {
                next.remove(name);
            }
        }
        *tenants = Arc::new(next);
        self.local_changes.fetch_add(1, Ordering::AcqRel);
        drop(tenants);
        self.bump();
    }
}

/// The record a server's state stands for (`None`: removed or never added).
fn server_record(id: ServerId, state: &Server, version: i64) -> Option<ServerRecord> {
    if state.removed {
        return None;
    }
    Some(ServerRecord {
        id,
        settings: state.settings.clone()?,
        state: state.state,
        online: state.online,
        agent: state.agent.clone(),
        version,
    })
}

impl Subscriber for RoutingView {
    fn on_appended(&self, events: &[AppendedEvent]) {
        let Some(first) = events.first() else {
            return;
        };
        match &first.stream {
            StreamId::Meeting(tenant, meeting_id) => self.apply_meeting(tenant, meeting_id, events),
            StreamId::Server(id) => self.apply_server(*id, events),
            StreamId::Tenant(name) => self.apply_tenant(name, events),
            StreamId::Token(_) | StreamId::Recording(_) | StreamId::Hook(_) => {}
        }
        // Noted once applied: a refresh that finds the position noted finds
        // its change in the view.
        self.note_applied_here(events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{CommandExecutor, EventBus};
    use crate::ports::prelude::*;
    use crate::testing::{NOW_MS, World, ended, given, meeting_id, secret, url};
    use switchboard_domain::ids::meeting_stream;
    use switchboard_domain::meeting::{EndReason, Meeting, MeetingCommand, MeetingRun};
    use switchboard_domain::server::ServerState;
    use switchboard_domain::server::{ServerCommand, ServerSettings};
    use switchboard_domain::tenant::{TenantCommand, TenantLimits, TenantPolicy, tenant_stream};

    /// The view over the world's store, loaded now and hearing its executor.
    async fn view(world: &World) -> Arc<RoutingView> {
        let view = RoutingView::load(
            world.store.clone(),
            world.shared_clock(),
            LoadWeights::default(),
            ObservedLoads::default(),
        )
        .await
        .unwrap();
        world.executor.bus().subscribe(view.clone());
        view
    }

    /// Issue 22: a poll's first listing, written ahead, makes the server's
    /// sample row before its figures; a refresh reading that row must not
    /// put its empty figures over what the poll in this process saw.
    #[tokio::test]
    async fn a_refresh_never_puts_older_figures_over_a_newer_observation() {
        let world = World::new();
        let a = world.server("a").await;
        let loads = ObservedLoads::default();
        let view = RoutingView::load(
            world.store.clone(),
            world.shared_clock(),
            LoadWeights::default(),
            loads.clone(),
        )
        .await
        .unwrap();
        world
            .store
            .put_sample_listing(a, "<meetings></meetings>", 7)
            .await
            .unwrap();
        let seen = observed_meetings(3);
        loads.set(a, seen.clone(), NOW_MS);
        view.refresh().await.unwrap();
        assert_eq!(loads.get(a), Some(seen.clone()), "kept the poll's");
        // A later sample replaces it.
        let mut sample = ServerSample::new(a);
        sample.record_picture(&observed_meetings(5), String::new());
        sample.polled_at_ms = NOW_MS + 1;
        sample.changed_at_ms = NOW_MS + 1;
        world
            .store
            .put_polled_samples(&[], &[sample], &[])
            .await
            .unwrap();
        view.refresh().await.unwrap();
        assert_eq!(loads.get(a).map(|o| o.meetings), Some(5));
    }

    /// A poll's observation of `meetings` meetings, nobody in them.
    fn observed_meetings(meetings: u64) -> Observed {
        Observed {
            meetings,
            attendees: 0,
            video: 0,
            largest_meeting: 0,
            load: meetings as f64,
            known_meetings: 0,
            metrics: Default::default(),
        }
    }

    /// What this process saw itself always replaces; a stored sample only
    /// when it is not older than what is recorded (another instance's clock
    /// ahead holds until the next local observation).
    #[test]
    fn local_observations_replace_and_samples_only_when_not_older() {
        let loads = ObservedLoads::default();
        let id = ServerId::new();
        let with = observed_meetings;
        let meetings = |loads: &ObservedLoads| loads.get(id).map(|o| o.meetings);
        loads.set_from_sample(id, with(1), NOW_MS + 60_000);
        loads.set_from_sample(id, with(2), NOW_MS);
        assert_eq!(meetings(&loads), Some(1), "an older sample");
        loads.set(id, with(3), NOW_MS);
        assert_eq!(meetings(&loads), Some(3), "seen here");
        loads.set_from_sample(id, with(4), NOW_MS);
        assert_eq!(meetings(&loads), Some(4), "as recent");
    }

    /// An executor over the same store that the view does not hear: another
    /// instance, the CLI.
    fn another_instance(world: &World) -> CommandExecutor {
        CommandExecutor::new(world.store.clone(), EventBus::default())
    }

    /// A picture whose listing holds one element of `bytes` bytes.
    fn polled_with_listing_of(bytes: usize) -> Arc<PolledServer> {
        Arc::new(PolledServer {
            meetings: vec![("int".into(), Bytes::from(vec![b'x'; bytes]))],
            ..PolledServer::default()
        })
    }

    #[test]
    fn changed_samples_are_read_a_few_listings_at_a_time_by_their_last_size() {
        let [big, large_a, large_b, small, new_one, huge] = [(); 6].map(|()| ServerId::new());
        let mut current = Picture::new();
        current.insert(big, polled_with_listing_of(LISTING_BYTES_PER_READ / 2));
        current.insert(large_a, polled_with_listing_of(LISTING_BYTES_PER_READ / 2));
        current.insert(large_b, polled_with_listing_of(LISTING_BYTES_PER_READ / 2));
        current.insert(small, polled_with_listing_of(100));
        current.insert(huge, polled_with_listing_of(3 * LISTING_BYTES_PER_READ));
        let reads = reads_by_listing_size(&[big, large_a, large_b, small, new_one, huge], &current);
        assert_eq!(
            reads,
            vec![
                vec![big, large_a],
                vec![large_b, small, new_one],
                vec![huge]
            ],
            "at most {LISTING_BYTES_PER_READ} bytes of last listings per read, a larger one alone"
        );
        assert!(reads_by_listing_size(&[], &current).is_empty());
    }

    /// The load of a server running `meetings` meetings no poll saw yet.
    fn load(meetings: u64) -> f64 {
        meetings as f64 * LoadWeights::default().unseen_meeting_load()
    }

    fn tenant() -> TenantId {
        TenantId::default_tenant()
    }

    fn settings(name: &str) -> ServerSettings {
        ServerSettings {
            url: url(name),
            secret: secret(name),
            tag: None,
            load_multiplier: 1.0,
            checksum: None,
            metrics_url: None,
        }
    }

    async fn create_with(executor: &CommandExecutor, id: &str, internal_id: &str, on: ServerId) {
        let command = MeetingCommand::RecordCreated {
            tenant: tenant(),
            meeting_id: meeting_id(id),
            name: id.to_owned(),
            run: MeetingRun {
                internal_id: internal_id.to_owned(),
                server_id: on,
                create_time_ms: NOW_MS,
                recording_ready_url: None,
                callbacks: None,
            },
        };
        executor
            .execute::<Meeting>(
                &meeting_stream(&tenant(), &meeting_id(id)),
                &command,
                &given(),
            )
            .await
            .unwrap();
    }

    async fn end_with(executor: &CommandExecutor, id: &str, at_ms: i64) {
        let command = MeetingCommand::RecordEnded {
            reason: EndReason::EndCalled,
            at_ms,
            only_run: None,
        };
        executor
            .execute::<Meeting>(
                &meeting_stream(&tenant(), &meeting_id(id)),
                &command,
                &given(),
            )
            .await
            .unwrap();
    }

    async fn load_of(view: &RoutingView, id: ServerId) -> f64 {
        view.load_of(&view.server(id).expect("server in the view"))
    }

    fn reserved(view: &RoutingView) -> ServerId {
        view.reserve(&TagRequest::parse(None), &[], &[])
            .expect("a server")
            .server
            .id
    }

    async fn cached(view: &RoutingView, id: &str) -> Option<MeetingRecord> {
        view.meeting(&tenant(), &meeting_id(id))
            .await
            .unwrap()
            .map(|record| (*record).clone())
    }

    async fn stored(world: &World, id: &str) -> Option<MeetingRecord> {
        world
            .store
            .meeting(&tenant(), &meeting_id(id))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_meeting_created_through_the_executor_is_known_and_counted_at_once() {
        let world = World::new();
        let a = world.server("a").await;
        let b = world.server("b").await;
        world.meeting("room", "room-0", b, NOW_MS - 60_000).await;
        end_with(&world.executor, "room", NOW_MS - 1_000).await;
        let view = view(&world).await;
        // The ended run is cached now.
        assert_eq!(cached(&view, "room").await.map(|r| r.running), Some(false));
        assert_eq!(reserved(&view), a, "on a tie of load the first added wins");

        world.meeting("room", "room-1", a, NOW_MS).await;

        let expected = MeetingRecord {
            tenant: tenant(),
            meeting_id: meeting_id("room"),
            name: "room".into(),
            run: MeetingRun {
                internal_id: "room-1".into(),
                server_id: a,
                create_time_ms: NOW_MS,
                recording_ready_url: None,
                callbacks: None,
            },
            running: true,
            ended_at_ms: None,
            version: 3,
        };
        assert_eq!(cached(&view, "room").await, Some(expected.clone()));
        assert_eq!(stored(&world, "room").await, Some(expected));
        assert_eq!(load_of(&view, a).await, load(1));
        assert_eq!(load_of(&view, b).await, load(0));
        assert_eq!(reserved(&view), b, "the new meeting counts on a");
    }

    #[tokio::test]
    async fn a_cached_meeting_that_ends_is_not_running_and_no_longer_counted_at_once() {
        let world = World::new();
        let a = world.server("a").await;
        let b = world.server("b").await;
        let view = view(&world).await;
        world.meeting("room", "room-1", a, NOW_MS).await;
        assert_eq!(cached(&view, "room").await.map(|r| r.running), Some(true));
        assert_eq!((load_of(&view, a).await, reserved(&view)), (load(1), b));

        end_with(&world.executor, "room", NOW_MS + 5).await;

        let record = cached(&view, "room").await.unwrap();
        assert_eq!(
            (record.running, record.ended_at_ms, record.version),
            (false, Some(NOW_MS + 5), 2)
        );
        assert_eq!(Some(record), stored(&world, "room").await);
        assert_eq!(load_of(&view, a).await, load(0));
        assert_eq!(reserved(&view), a, "a is free again and wins the tie");
    }

    #[tokio::test]
    async fn the_end_of_a_meeting_the_view_never_cached_is_set_right_by_the_next_refresh() {
        let world = World::new();
        let a = world.server("a").await;
        let b = world.server("b").await;
        // Running before the view loaded: counted by the snapshot, not cached.
        world.meeting("room", "room-1", a, NOW_MS).await;
        let view = view(&world).await;
        assert_eq!(load_of(&view, a).await, load(1));

        end_with(&world.executor, "room", NOW_MS + 5).await;

        assert_eq!(
            cached(&view, "room")
                .await
                .map(|r| (r.running, r.ended_at_ms)),
            Some((false, Some(NOW_MS + 5))),
            "not kept as running: read again from the projection"
        );
        assert!(view.refresh().await.unwrap(), "the next refresh reloads");
        assert_eq!(
            world.store.running_meetings_per_server().await.unwrap(),
            HashMap::new()
        );
        assert_eq!(load_of(&view, a).await, load(0));
        assert_eq!(load_of(&view, b).await, load(0));
        assert_eq!(reserved(&view), a);
    }

    #[tokio::test]
    async fn appends_made_here_need_no_reload_but_one_made_elsewhere_does() {
        let world = World::new();
        let a = world.server("a").await;
        let view = view(&world).await;
        assert!(!view.refresh().await.unwrap(), "nothing new: no reload");

        for n in 0..3 {
            create_with(
                &world.executor,
                &format!("here-{n}"),
                &format!("here-{n}-1"),
                a,
            )
            .await;
        }
        assert!(
            !view.refresh().await.unwrap(),
            "the log moved by this process's appends alone: nothing to read"
        );
        assert_eq!(view.position(), world.store.position());
        assert_eq!(load_of(&view, a).await, load(3));

        create_with(&another_instance(&world), "there", "there-1", a).await;
        create_with(&world.executor, "here-3", "here-3-1", a).await;
        assert!(
            view.refresh().await.unwrap(),
            "an append made elsewhere is read"
        );
        assert_eq!(view.position(), world.store.position());
        assert_eq!(load_of(&view, a).await, load(5));
    }

    #[tokio::test]
    async fn positions_left_to_appends_in_flight_need_no_reload_but_an_append_made_elsewhere_does()
    {
        let world = World::new();
        let a = world.server("a").await;
        let view = view(&world).await;
        assert!(!view.refresh().await.unwrap(), "nothing new: no reload");

        // Two positions drawn by appends that have not committed (or never
        // will), then one of this process's.
        let before_gap = view.position();
        world.store.leave_position_gap(2);
        create_with(&world.executor, "here", "here-1", a).await;
        assert!(
            !view.refresh().await.unwrap(),
            "every committed position was applied here: nothing to read"
        );
        assert_eq!(
            view.position(),
            before_gap,
            "the gap is looked at again by the next refresh"
        );
        assert!(!view.refresh().await.unwrap(), "and still needs no reload");
        assert_eq!(load_of(&view, a).await, load(1));

        world.store.leave_position_gap(1);
        create_with(&another_instance(&world), "there", "there-1", a).await;
        create_with(&world.executor, "here-2", "here-2-1", a).await;
        assert!(
            view.refresh().await.unwrap(),
            "an append made elsewhere among the gaps is read"
        );
        assert_eq!(load_of(&view, a).await, load(3));
    }

    #[tokio::test]
    async fn an_end_the_view_cannot_place_makes_the_next_refresh_reload_though_the_log_did_not_move()
     {
        let world = World::new();
        let a = world.server("a").await;
        world.meeting("room", "room-1", a, NOW_MS).await;
        let view = view(&world).await;
        assert!(!view.refresh().await.unwrap(), "nothing new: no reload");
        let generation = view.generation();

        // An end the view hears of for a meeting it does not hold (as a
        // subscriber may, when the append committed below a position it
        // already saw): it cannot be counted here.
        view.on_appended(&[AppendedEvent {
            stream: meeting_stream(&tenant(), &meeting_id("room")),
            version: 2,
            position: world.store.position(),
            event: ended("room-1", EndReason::EndCalled, NOW_MS + 5),
        }]);

        assert!(view.generation() > generation);
        assert_eq!(world.store.position(), view.position());
        assert!(
            view.refresh().await.unwrap(),
            "stale: reloaded though the log is where it was"
        );
        assert!(!view.refresh().await.unwrap(), "once");
        assert_eq!(
            load_of(&view, a).await,
            load(1),
            "the view agrees with the projection again"
        );
    }

    #[tokio::test]
    async fn server_events_change_the_servers_at_once() {
        let world = World::new();
        let view = view(&world).await;
        assert!(view.servers().is_empty());
        let state = |view: &RoutingView, id| {
            view.server(id)
                .map(|record| (record.state, record.online, record.version))
        };

        let a = world.server("a").await;
        assert_eq!(state(&view, a), Some((ServerState::Enabled, true, 2)));
        assert_eq!(
            view.server(a).as_deref(),
            world.store.server(a).await.unwrap().as_ref()
        );
        assert_eq!(view.server(a).unwrap().settings, settings("a"));
        let b = world.server("b").await;
        let mut ids: Vec<ServerId> = view.servers().keys().copied().collect();
        ids.sort();
        assert_eq!(ids, vec![a, b]);

        let steps = [
            (ServerCommand::Cordon, (ServerState::Cordoned, true, 3)),
            (ServerCommand::Disable, (ServerState::Disabled, true, 4)),
            (ServerCommand::Enable, (ServerState::Enabled, true, 5)),
            (ServerCommand::MarkOffline, (ServerState::Enabled, false, 6)),
        ];
        for (command, expected) in steps {
            world.on_server(a, command.clone()).await;
            assert_eq!(state(&view, a), Some(expected), "{command:?}");
            assert_eq!(
                view.server(a).as_deref(),
                world.store.server(a).await.unwrap().as_ref(),
                "{command:?}"
            );
        }
        assert_eq!(
            view.reserve(&TagRequest::parse(None), &[], &[])
                .unwrap()
                .server
                .id,
            b,
            "an offline server takes no new meeting"
        );

        world.on_server(a, ServerCommand::Remove).await;
        assert_eq!(view.server(a), None);
        assert_eq!(view.servers().keys().copied().collect::<Vec<_>>(), vec![b]);
    }

    #[tokio::test]
    async fn tenant_events_change_the_tenants_at_once() {
        let world = World::new();
        let view = view(&world).await;
        let run = |command: TenantCommand| {
            let executor = world.executor.clone();
            async move {
                executor
                    .execute::<Tenant>(&tenant_stream("acme"), &command, &given())
                    .await
                    .unwrap();
            }
        };

        run(TenantCommand::Create {
            name: "acme".into(),
            secret: "acme-secret-1".into(),
        })
        .await;
        let created = TenantConfig {
            name: "acme".into(),
            secrets: vec!["acme-secret-1".into()],
            policy: TenantPolicy::default(),
            limits: TenantLimits::default(),
            required_tags: vec![],
            stats_token_hash: None,
            retention_days: None,
            recordings_store: None,
        };
        assert_eq!(view.tenant("acme").as_deref(), Some(&created));
        assert_eq!(
            view.tenants().keys().cloned().collect::<Vec<_>>(),
            vec!["acme".to_owned()]
        );

        let limits = TenantLimits {
            max_meetings: Some(3),
            max_attendees: Some(40),
        };
        run(TenantCommand::SetLimits(limits)).await;
        assert_eq!(
            view.tenant("acme").as_deref(),
            Some(&TenantConfig { limits, ..created })
        );
        assert_eq!(
            view.tenant("acme").as_deref(),
            world.store.tenant("acme").await.unwrap().as_ref()
        );

        run(TenantCommand::Delete).await;
        assert_eq!(view.tenant("acme"), None);
        assert!(view.tenants().is_empty());
    }

    #[tokio::test]
    async fn a_reserved_create_is_counted_once_after_its_event_and_the_reservation_are_gone() {
        let world = World::new();
        let a = world.server("a").await;
        let b = world.server("b").await;
        let view = view(&world).await;

        let reservation = view.reserve(&TagRequest::parse(None), &[], &[]).unwrap();
        assert_eq!(reservation.server.id, a);
        assert_eq!(load_of(&view, a).await, load(1), "counted while in flight");
        assert_eq!(reserved(&view), b, "a second create goes elsewhere");
        world.meeting("room", "room-1", a, NOW_MS).await;
        drop(reservation);

        assert_eq!(load_of(&view, a).await, load(1));
        assert_eq!(load_of(&view, b).await, load(0));
        assert!(
            !view.refresh().await.unwrap(),
            "the log moved by this process's append alone: nothing to reload"
        );
        assert_eq!(load_of(&view, a).await, load(1));
        assert_eq!(reserved(&view), b);
        create_with(&another_instance(&world), "elsewhere", "elsewhere-1", b).await;
        assert!(view.refresh().await.unwrap(), "an append made elsewhere");
        assert_eq!(load_of(&view, a).await, load(1), "and once after a reload");
        assert_eq!(load_of(&view, b).await, load(1));
    }

    #[tokio::test]
    async fn a_refresh_keeps_the_meetings_this_process_appended_and_drops_those_changed_elsewhere()
    {
        let world = World::new();
        let a = world.server("a").await;
        let view = view(&world).await;
        create_with(&world.executor, "here", "here-1", a).await;
        create_with(&world.executor, "there", "there-1", a).await;
        assert!(view.holds(&tenant(), &meeting_id("here")));
        assert!(view.holds(&tenant(), &meeting_id("there")));
        end_with(&another_instance(&world), "there", NOW_MS).await;

        assert!(view.refresh().await.unwrap());

        assert!(
            view.holds(&tenant(), &meeting_id("here")),
            "what this process appended is still cached: the next join needs no read"
        );
        assert!(
            !view.holds(&tenant(), &meeting_id("there")),
            "a meeting another instance changed is read again"
        );
        assert_eq!(cached(&view, "there").await.map(|r| r.running), Some(false));
    }

    /// Review of issue 22's cache change: an event this process appends
    /// after one it never heard (another instance ended the run) must not
    /// leave the cached run "running" under the newer version, where a
    /// refresh would keep it.
    #[tokio::test]
    async fn an_event_after_a_gap_drops_the_cached_meeting_instead_of_patching_it() {
        use switchboard_domain::meeting::RunUsage;
        let world = World::new();
        let a = world.server("a").await;
        let view = view(&world).await;
        create_with(&world.executor, "room", "room-1", a).await;
        end_with(&another_instance(&world), "room", NOW_MS + 5).await;
        world
            .executor
            .execute::<Meeting>(
                &meeting_stream(&tenant(), &meeting_id("room")),
                &MeetingCommand::SummarizeUsage(RunUsage {
                    internal_id: "room-1".into(),
                    server_id: a,
                    started_ms: NOW_MS,
                    ended_ms: NOW_MS + 5,
                    peak_attendees: 0,
                    attendee_seconds: 0,
                    peak_video: 0,
                    recordable: false,
                }),
                &given(),
            )
            .await
            .unwrap();

        view.refresh().await.unwrap();

        let record = cached(&view, "room").await.unwrap();
        assert_eq!(
            (record.running, record.version),
            (false, 3),
            "the end appended elsewhere is seen"
        );
    }

    #[tokio::test]
    async fn refresh_picks_up_what_another_instance_appended() {
        let world = World::new();
        let a = world.server("a").await;
        world.meeting("old", "old-1", a, NOW_MS - 60_000).await;
        let view = view(&world).await;
        assert_eq!(cached(&view, "old").await.map(|r| r.running), Some(true));
        let other = another_instance(&world);
        let b = ServerId::new();

        other
            .execute::<Server>(
                &b.stream(),
                &ServerCommand::Add {
                    id: b,
                    settings: settings("b"),
                    enabled: true,
                },
                &given(),
            )
            .await
            .unwrap();
        other
            .execute::<Server>(&a.stream(), &ServerCommand::Cordon, &given())
            .await
            .unwrap();
        create_with(&other, "room", "room-1", b).await;
        end_with(&other, "old", NOW_MS).await;
        other
            .execute::<Tenant>(
                &tenant_stream("acme"),
                &TenantCommand::Create {
                    name: "acme".into(),
                    secret: "acme-secret-1".into(),
                },
                &given(),
            )
            .await
            .unwrap();
        assert_eq!(view.server(b), None, "not heard of before a refresh");

        assert!(view.refresh().await.unwrap());

        assert_eq!(view.position(), world.store.position());
        assert_eq!(
            view.server(b).as_deref(),
            world.store.server(b).await.unwrap().as_ref()
        );
        assert_eq!(view.server(a).unwrap().state, ServerState::Cordoned);
        assert_eq!(
            view.tenant("acme").map(|t| t.secrets.clone()),
            Some(vec!["acme-secret-1".to_owned()])
        );
        assert_eq!(cached(&view, "room").await, stored(&world, "room").await);
        assert_eq!(
            cached(&view, "old")
                .await
                .map(|r| (r.running, r.ended_at_ms)),
            Some((false, Some(NOW_MS))),
            "the cached run is read again"
        );
        assert_eq!(load_of(&view, a).await, load(0));
        assert_eq!(load_of(&view, b).await, load(1));
        assert_eq!(reserved(&view), b, "a is cordoned");
    }

    /// A refresh whose read predates a change this process applied (the
    /// bus, meanwhile) never installs the older state: a disabled server
    /// stays disabled, a removed one stays removed.
    #[tokio::test]
    async fn a_refresh_read_before_a_local_change_never_undoes_it() {
        let world = World::new();
        let a = world.server("a").await;
        let b = world.server("b").await;
        let view = view(&world).await;
        // What a refresh read, then the changes heard before it installs.
        let changes_before = view.local_changes.load(Ordering::Acquire);
        let read_servers = (*view.servers()).clone();
        let read_tenants = (**view.tenants.read().unwrap()).clone();
        world.on_server(a, ServerCommand::Disable).await;
        world.on_server(b, ServerCommand::Disable).await;
        world.on_server(b, ServerCommand::Remove).await;
        view.install(read_servers, read_tenants, changes_before);
        assert_eq!(
            view.server(a).map(|record| record.state),
            Some(ServerState::Disabled)
        );
        assert!(view.server(b).is_none(), "a removed server stays removed");
        assert!(
            view.stale.load(Ordering::Acquire),
            "the next refresh reads again"
        );
        view.refresh().await.unwrap();
        assert_eq!(
            view.server(a).map(|record| record.state),
            Some(ServerState::Disabled)
        );
        assert!(view.server(b).is_none());
    }
}
