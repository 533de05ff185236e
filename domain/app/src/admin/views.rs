//! What the administration use cases answer with (read models) and take
//! (requests). The admin transport renders them in its own OpenAPI shapes.

use serde::{Deserialize, Serialize};
use switchboard_domain::token::TokenScope;

/// A server of the pool as operators see it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerView {
    /// Server id (UUID).
    pub id: String,
    /// Base URL, ending in `/`.
    pub url: String,
    /// Tag for `meta_server-tag` placement.
    pub tag: Option<String>,
    /// Load weight.
    pub load_multiplier: f64,
    /// Checksum algorithm for calls to it (`null`: the configured default).
    pub checksum: Option<String>,
    /// `enabled`, `cordoned` or `disabled`.
    pub state: String,
    /// Whether health checks reach it.
    pub online: bool,
    /// Meetings Switchboard placed there that still run.
    pub meetings: u64,
    /// Attendees the last health poll saw there (0 when not polled here).
    pub attendees: u64,
    /// Effective load used for placement.
    pub load: f64,
    /// Metrics URL with any password replaced by `***` (absent: none set).
    pub metrics_url: Option<String>,
    /// Whether its CPU and memory can be read: `ok`, `stale` (the last read
    /// failed; values read within the window are used), `unreadable` (placed
    /// by meeting counts alone) or `not_configured`.
    #[serde(default)]
    pub metrics_state: String,
    /// Windowed CPU utilisation, percent (absent: not known).
    pub cpu_percent: Option<f64>,
    /// Windowed used memory, percent (absent: not known).
    pub memory_percent: Option<f64>,
    /// Why the last metrics read failed.
    pub metrics_error: Option<String>,
    /// When the metrics were last read well (ms since the epoch).
    pub metrics_read_at_ms: Option<i64>,
    /// True while its CPU or memory is over the configured limit: it takes
    /// no new meetings (joins still go there).
    #[serde(default)]
    pub over_limit: bool,
    /// Whether a node agent reports for it (then its health, load, CPU and
    /// memory come from the agent's heartbeats, not from polls).
    #[serde(default)]
    pub agent: bool,
    /// BBB's version as its agent reported it.
    #[serde(default)]
    pub agent_version: Option<String>,
    /// The agent's heartbeat interval (ms).
    #[serde(default)]
    pub agent_interval_ms: Option<u64>,
    /// The agent went away cleanly: no new meetings until it is back.
    #[serde(default)]
    pub agent_away: bool,
    /// When its agent was last heard (ms since the epoch).
    #[serde(default)]
    pub heard_at_ms: Option<i64>,
}

/// A new server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewServer {
    /// Base URL (`https://host/bigbluebutton/`; a Scalelite-style `.../api` URL works too).
    pub url: String,
    /// Shared secret (`bbb-conf --secret`).
    pub secret: String,
    /// Optional tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Load weight, default 1.0; must be positive.
    #[serde(default)]
    pub load_multiplier: Option<f64>,
    /// Checksum algorithm for calls to it: sha1, sha256, sha384 or sha512.
    #[serde(default)]
    pub checksum: Option<String>,
    /// Prometheus text endpoint with its CPU and memory, e.g. node_exporter's
    /// `https://user:password@bbb1.example.org:9100/metrics`.
    #[serde(default)]
    pub metrics_url: Option<String>,
    /// Start enabled (default: disabled until enabled, as in Scalelite).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Changes to a server; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerUpdate {
    /// New base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// New secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// New tag; an empty string removes the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// New load multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_multiplier: Option<f64>,
    /// New checksum algorithm; an empty string returns to the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// New metrics URL; an empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
}

/// Options of a panic.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PanicOptions {
    /// Also send `end` for each meeting to the server (default false).
    #[serde(default)]
    pub end_meetings: Option<bool>,
}

/// What a panic did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanicReport {
    /// The server after the panic.
    pub server: ServerView,
    /// Meetings forgotten (meetingIDs).
    pub forgotten: Vec<String>,
    /// Meetings whose end call the server accepted.
    pub ended: u64,
}

/// A meeting Switchboard knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeetingView {
    /// Owning tenant.
    pub tenant: String,
    /// The front-end's meetingID.
    pub meeting_id: String,
    /// Name given at create.
    pub name: String,
    /// BBB's internal id of the last run.
    pub internal_id: String,
    /// Server of the last run.
    pub server_id: String,
    /// Whether the last run goes on.
    pub running: bool,
    /// createTime (ms since the epoch).
    pub create_time_ms: i64,
    /// When it ended (ms since the epoch).
    pub ended_at_ms: Option<i64>,
}

/// Meeting state filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeetingState {
    /// Running meetings.
    Running,
    /// Ended meetings.
    Ended,
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    /// Global position.
    pub position: i64,
    /// Stream.
    pub stream: String,
    /// Version in the stream.
    pub version: i64,
    /// Type, e.g. `ServerEnabled`.
    pub event_type: String,
    /// The payload (secrets removed).
    pub payload: serde_json::Value,
    /// Who caused it.
    pub actor: String,
    /// Request id, if any.
    pub request_id: Option<String>,
    /// When (RFC 3339).
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// A page of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// The events, oldest first.
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// A server as it was at a moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerAt {
    /// Server id.
    pub id: String,
    /// URL then.
    pub url: String,
    /// State then.
    pub state: String,
    /// Online then.
    pub online: bool,
    /// Removed by then.
    pub removed: bool,
}

/// A meeting as it was at a moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeetingAt {
    /// Tenant.
    pub tenant: String,
    /// meetingID.
    pub meeting_id: String,
    /// Server of its run then (if running).
    pub server_id: Option<String>,
    /// Running then (always: meetings that had ended are not listed).
    pub running: bool,
}

/// The cluster replayed from the log up to a moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterAt {
    /// The moment.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Log position of the last event included.
    pub position: i64,
    /// Servers then.
    pub servers: Vec<ServerAt>,
    /// Meetings running then.
    pub meetings: Vec<MeetingAt>,
}

/// One line of the cluster status (Scalelite's `rake status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Server id.
    pub id: String,
    /// URL.
    pub url: String,
    /// State.
    pub state: String,
    /// Online.
    pub online: bool,
    /// Meetings running there (Switchboard's count).
    pub meetings: u64,
    /// Users seen by the last poll.
    pub users: u64,
    /// Participants of its largest meeting in the last poll.
    pub largest_meeting: u64,
    /// Effective load.
    pub load: f64,
    /// Tag.
    pub tag: Option<String>,
    /// `ok`, `stale`, `unreadable` or `not_configured` (see `ServerView`).
    #[serde(default)]
    pub metrics_state: String,
    /// Windowed CPU utilisation, percent.
    pub cpu_percent: Option<f64>,
    /// Windowed used memory, percent.
    pub memory_percent: Option<f64>,
    /// Why the last metrics read failed.
    pub metrics_error: Option<String>,
    /// Over its CPU or memory limit: takes no new meetings.
    #[serde(default)]
    pub over_limit: bool,
}

/// The whole cluster at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// One entry per server.
    pub servers: Vec<ServerStatus>,
    /// Running meetings in all.
    pub meetings: u64,
    /// Users in all.
    pub users: u64,
    /// Log position.
    pub position: i64,
}

/// A token in force (without the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenView {
    /// Name.
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// For a node token: the server it speaks for.
    pub server: Option<String>,
    /// Created at.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A token just created: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// Name.
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// For a node token: the server it speaks for.
    pub server: Option<String>,
    /// The bearer token. Store it now: only its hash is kept.
    pub token: String,
}
