//! The log as the use cases read it: stored events, filters, append outcomes.

use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::StreamId;

/// Where an append left the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the append.
    pub version: i64,
    /// Position of the last appended event (0 when nothing was appended).
    pub position: i64,
}

/// Rows written in the same transaction as an append's events: what must
/// never exist without them, nor they without it. With no event to append
/// they are written alone (each row on its own, not as one transaction).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppendExtras<'a> {
    /// Callbacks for the outbox.
    pub callbacks: &'a [super::NewCallback],
    /// The `<meeting>` element of a created run, for getMeetings.
    pub listing: Option<&'a super::MeetingListing>,
}

/// An event as read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Global position.
    pub position: i64,
    /// Stream.
    pub stream: StreamId,
    /// Version within the stream.
    pub version: i64,
    /// The event.
    pub event: DomainEvent,
    /// Who and why.
    pub metadata: EventMetadata,
    /// When.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// A fold of the log kept at a position, so a later fold starts there
/// instead of at the log's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSnapshot {
    /// What it folds (each reader names its own kind).
    pub kind: String,
    /// The position of the last event it includes.
    pub position: i64,
    /// When that event was recorded.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// The fold, in the reader's own form (the pool's history: JSON,
    /// gzip-compressed, in base64 behind a marker).
    pub state: String,
}

/// A stream's state at a version, kept when the events up to it were
/// archived out of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSnapshot {
    /// The stream's version at the snapshot.
    pub version: i64,
    /// The aggregate's state, as JSON.
    pub state: String,
}

/// What the log holds of one stream: a snapshot (once older events were
/// archived) and the events after it, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamHistory {
    /// The state the events start from (`None`: the stream's start).
    pub snapshot: Option<StreamSnapshot>,
    /// The events after the snapshot.
    pub events: Vec<StoredEvent>,
}

/// Which events to read.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    /// Only this stream.
    pub stream: Option<String>,
    /// Only this type.
    pub event_type: Option<String>,
    /// Only events caused by this actor.
    pub actor: Option<String>,
    /// Recorded at or after.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Recorded at or before.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only positions after this one (pagination).
    pub after: i64,
    /// At most this many.
    pub limit: u64,
    /// Newest first (the last `limit` matches, before `after` is not
    /// used): what a log view shows first.
    pub newest_first: bool,
}

impl Default for EventFilter {
    fn default() -> Self {
        Self {
            stream: None,
            event_type: None,
            actor: None,
            from: None,
            to: None,
            after: 0,
            limit: 100,
            newest_first: false,
        }
    }
}
