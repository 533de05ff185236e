//! getMeetings, answered from the polled picture without asking any server
//! on the request path: each serving server's `<meeting>` elements as its last
//! poll listed them, minus the runs Switchboard recorded as ended since, plus
//! the listings of its running runs that no serving server's poll lists yet,
//! oldest first (see [`super::listing`]); only those listings are read.
//!
//! Each tenant sees its own runs only, and the breakout rooms BBB opened
//! from them; meetings running on servers without Switchboard having
//! created them belong to no tenant and are listed to none.
//!
//! The answer is built once per tenant and change of what it could show (the
//! routing view's generation) and shared by every request until the next change;
//! callers that arrive while it is being rebuilt wait for that build (single
//! flight). An answer is kept as its pieces (see [`MeetingsAnswer`]), never
//! copied into one buffer: the polled elements are slices of the picture
//! and the listings are moved in, so an answer of thousands of meetings costs
//! little more than the listings it holds.

use super::calls::serving;
use super::{CallError, MeetingService};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use switchboard_domain::bbb::xml_write::XmlWriter;
use switchboard_domain::ids::{ServerId, TenantId};

/// A whole getMeetings answer as the pieces it is made of, in order:
/// sharing them (each a cheap [`Bytes`] handle) is what keeps an answer of
/// thousands of meetings from being held twice, once in its sources and
/// once in a copy.
#[derive(Debug, Clone)]
pub struct MeetingsAnswer {
    pieces: Arc<[Bytes]>,
    len: usize,
}

impl MeetingsAnswer {
    /// An answer made of these pieces, in order.
    pub fn of(pieces: Vec<Bytes>) -> Self {
        let len = pieces.iter().map(Bytes::len).sum();
        Self {
            pieces: pieces.into(),
            len,
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its pieces, in order.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }
}

impl From<Bytes> for MeetingsAnswer {
    fn from(body: Bytes) -> Self {
        Self::of(vec![body])
    }
}

/// The answers last built, per tenant, by the generation they reflect.
#[derive(Debug, Default)]
pub struct MergedMeetings {
    last: Mutex<HashMap<TenantId, (u64, MeetingsAnswer)>>,
    building: tokio::sync::Mutex<()>,
}

impl MergedMeetings {
    /// The answer built for `tenant` at `generation` or later.
    fn cached(&self, tenant: &TenantId, generation: u64) -> Option<MeetingsAnswer> {
        let last = self.last.lock().expect("getMeetings cache lock");
        last.get(tenant)
            .filter(|(built_for, _)| *built_for >= generation)
            .map(|(_, body)| body.clone())
    }
}

impl MeetingService {
    /// `getMeetings`: the tenant's whole answer, shared until it changes.
    pub async fn get_meetings(&self, tenant: &TenantId) -> Result<MeetingsAnswer, CallError> {
        let generation = self.routing.generation();
        if let Some(body) = self.merged.cached(tenant, generation) {
            return Ok(body);
        }
        let _building = self.merged.building.lock().await;
        // Whoever built while this request waited may have built what it needs.
        if let Some(body) = self.merged.cached(tenant, generation) {
            return Ok(body);
        }
        let generation = self.routing.generation();
        // An answer of an older generation is rebuilt anyway: let it go
        // before the new one is built, not after (requests still sending
        // it keep their own handle).
        self.merged
            .last
            .lock()
            .expect("getMeetings cache lock")
            .retain(|_, (built_for, _)| *built_for >= generation);
        let body = build(self, tenant).await?;
        let mut last = self.merged.last.lock().expect("getMeetings cache lock");
        // Answers of other generations are dropped: they would be rebuilt anyway.
        last.retain(|_, (built_for, _)| *built_for == generation);
        last.insert(tenant.clone(), (generation, body.clone()));
        Ok(body)
    }
}

/// Builds a tenant's whole answer.
async fn build(state: &MeetingService, tenant: &TenantId) -> Result<MeetingsAnswer, CallError> {
    // The running runs only (bounded by what runs, not by the churn of
    // the last hour): a run ended since the last poll, or never recorded,
    // is not in it and is not shown.
    let runs: HashMap<String, TenantId> = state.store.running_run_owners().await?;
    let picture = state.routing.picture();
    // A breakout room BBB opened belongs to its parent's run.
    let parent_of = |internal_id: &str| {
        picture
            .values()
            .find_map(|server| server.parents.get(internal_id))
            .cloned()
    };
    // Its own running runs only: a run Switchboard does not know (created
    // on a server directly, or left from before) belongs to no tenant, and
    // a breakout room to the tenant whose run opened it.
    let owned = |internal_id: &str| runs.get(internal_id) == Some(tenant);
    let shown = |internal_id: &str| {
        owned(internal_id)
            || (!runs.contains_key(internal_id)
                && parent_of(internal_id).is_some_and(|parent| owned(&parent)))
    };
    let servers = state.routing.servers();
    let mut serving_ids: Vec<ServerId> = servers
        .values()
        .filter(|server| serving(server))
        .map(|server| server.id)
        .collect();
    serving_ids.sort();
    const HEAD: &[u8] = b"<response><returncode>SUCCESS</returncode><meetings>";
    const TAIL: &[u8] = b"</meetings></response>";
    let mut elements: Vec<Bytes> = vec![Bytes::from_static(HEAD)];
    let mut listed: HashSet<&str> = HashSet::new();
    for id in &serving_ids {
        let Some(polled) = picture.get(id) else {
            continue;
        };
        for (internal_id, element) in &polled.meetings {
            // Recorded as ended since the poll, or another tenant's: not shown.
            if !shown(internal_id) {
                continue;
            }
            listed.insert(internal_id);
            elements.push(element.clone());
        }
    }
    // Only the listings of the runs no poll lists yet are read (with
    // thousands of meetings, reading every listing to skip all but a few
    // was most of the memory an answer needed); each element is moved.
    let unlisted: Vec<&str> = runs
        .keys()
        .map(String::as_str)
        .filter(|internal_id| !listed.contains(internal_id) && shown(internal_id))
        .collect();
    let mut listings = state.store.meeting_listings_of(&unlisted).await?;
    listings
        .sort_by(|a, b| (a.created_at_ms, &a.internal_id).cmp(&(b.created_at_ms, &b.internal_id)));
    for listing in listings {
        if serving_ids.contains(&listing.server_id) {
            elements.push(Bytes::from(listing.xml));
        }
    }
    if elements.len() == 1 {
        return Ok(no_meetings().into());
    }
    elements.push(Bytes::from_static(TAIL));
    Ok(MeetingsAnswer::of(elements))
}

/// BBB's answer when there are no meetings (also what a switched-off
/// getMeetings answers, as Scalelite's `GET_MEETINGS_API_DISABLED`).
pub fn no_meetings() -> Bytes {
    let mut xml = XmlWriter::response("SUCCESS");
    xml.raw("<meetings/>")
        .text_element("messageKey", "noMeetings")
        .text_element("message", "no meetings were found on this server");
    Bytes::from(xml.finish())
}
