//! The admin API's JSON shapes (OpenAPI objects), shared by the HTTP handlers
//! and the CLI's remote mode.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};

/// A server of the pool as operators see it (never its secret).
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
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
    pub agent_version: Option<String>,
    /// The agent's heartbeat interval (ms).
    pub agent_interval_ms: Option<u64>,
    /// The agent went away cleanly: no new meetings until it is back.
    #[serde(default)]
    pub agent_away: bool,
    /// When its agent was last heard (ms since the epoch).
    pub heard_at_ms: Option<i64>,
}

/// What a node agent asks when it registers its server.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AgentRegistration {
    /// The server's URL (BBB's `bigbluebutton.web.serverURL` with
    /// `/bigbluebutton/api/`).
    pub url: String,
    /// BBB's `securitySalt`.
    pub secret: String,
    /// Tag, applied only when the server is added.
    #[oai(nullable)]
    pub tag: Option<String>,
    /// Load multiplier, applied only when the server is added.
    #[oai(nullable)]
    pub load_multiplier: Option<f64>,
    /// Start enabled (applied only when the server is added).
    #[serde(default)]
    #[oai(default)]
    pub enable: bool,
    /// Add the server when its URL is unknown (default true); false only
    /// finds it (404 when unknown).
    #[oai(nullable)]
    pub add: Option<bool>,
    /// BBB's version, recorded now with `interval_secs` (then the first
    /// heartbeats append nothing).
    #[oai(nullable)]
    pub version: Option<String>,
    /// Seconds between the agent's heartbeats (0.5 to 3600).
    #[oai(nullable)]
    pub interval_secs: Option<f64>,
}

/// The server an agent reports for.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
pub struct AgentRegistered {
    /// Its id.
    pub server: String,
    /// Whether it was added now (false: known by its URL).
    pub added: bool,
}

/// CPU time counters summed over all CPUs (from `/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Object, Serialize, Deserialize)]
pub struct AgentCpu {
    /// Seconds in any mode but idle and iowait.
    pub busy_seconds: f64,
    /// Seconds in any mode.
    pub total_seconds: f64,
}

/// One heartbeat of a node agent.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AgentHeartbeat {
    /// The server it reports for.
    pub server: String,
    /// BBB's version (`bbb-conf --version`'s, or the API's `<version>`).
    #[serde(default)]
    #[oai(default)]
    pub version: String,
    /// Seconds between heartbeats (0.5 to 3600).
    pub interval_secs: f64,
    /// The server's own getMeetings answer (XML), signed with its secret by
    /// the agent. Absent when the call failed: then `api_error` says why.
    #[oai(validator(max_length = 16777216))]
    #[oai(nullable)]
    pub meetings_xml: Option<String>,
    /// Why the agent could not get the server's meetings.
    #[oai(nullable)]
    pub api_error: Option<String>,
    /// Milliseconds between asking the server for `meetings_xml` and
    /// sending this heartbeat (absent: taken as one interval); the listing
    /// counts as of then.
    #[oai(nullable)]
    pub listed_ago_ms: Option<u64>,
    // CPU counters. (No doc comment: see `PanicReport::server`.)
    #[allow(missing_docs)]
    #[oai(nullable)]
    pub cpu: Option<AgentCpu>,
    /// Used memory, percent (`/proc/meminfo`).
    #[oai(nullable)]
    pub memory_percent: Option<f64>,
    /// Meetings running (informational; the XML is what counts).
    #[oai(nullable)]
    pub meetings: Option<u64>,
    /// Attendees (informational).
    #[oai(nullable)]
    pub attendees: Option<u64>,
    /// Video streams (informational).
    #[oai(nullable)]
    pub video_streams: Option<u64>,
    /// Voice participants (informational).
    #[oai(nullable)]
    pub voice_streams: Option<u64>,
    /// The running meetings' ids (informational).
    #[oai(nullable)]
    pub meeting_ids: Option<Vec<String>>,
}

/// What a heartbeat changed.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
pub struct AgentAck {
    /// Whether the server counts as online now.
    pub online: bool,
    /// Events this heartbeat appended (0 when nothing changed).
    pub events: u64,
}

/// An agent going away.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
pub struct AgentLeave {
    /// The server it reports for.
    pub server: String,
}

/// A new server.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct NewServer {
    /// Base URL (`https://host/bigbluebutton/`; a Scalelite-style `.../api` URL works too).
    pub url: String,
    /// Shared secret (`bbb-conf --secret`).
    pub secret: String,
    /// Optional tag.
    #[serde(default)]
    #[oai(nullable)]
    pub tag: Option<String>,
    /// Load weight, default 1.0; must be positive.
    #[serde(default)]
    #[oai(nullable)]
    pub load_multiplier: Option<f64>,
    /// Checksum algorithm for calls to it: sha1, sha256, sha384 or sha512.
    #[serde(default)]
    #[oai(nullable)]
    pub checksum: Option<String>,
    /// Prometheus text endpoint with its CPU and memory, e.g. node_exporter's
    /// `https://user:password@bbb1.example.org:9100/metrics`.
    #[serde(default)]
    #[oai(nullable)]
    pub metrics_url: Option<String>,
    /// Start enabled (default: disabled until enabled, as in Scalelite).
    #[serde(default)]
    #[oai(nullable)]
    pub enabled: Option<bool>,
}

/// Changes to a server; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ServerUpdate {
    /// New base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub url: Option<String>,
    /// New secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub secret: Option<String>,
    /// New tag; an empty string removes the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub tag: Option<String>,
    /// New load multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub load_multiplier: Option<f64>,
    /// New checksum algorithm; an empty string returns to the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub checksum: Option<String>,
    /// New metrics URL; an empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub metrics_url: Option<String>,
}

/// Options of a panic.
#[derive(Debug, Clone, PartialEq, Default, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PanicOptions {
    /// Also send `end` for each meeting to the server (default false).
    #[serde(default)]
    #[oai(nullable)]
    pub end_meetings: Option<bool>,
}

/// What a panic did.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PanicReport {
    // The server after the panic. (A doc comment here would make the spec wrap
    // the reference in `allOf`, which client generators reject.)
    #[allow(missing_docs)]
    pub server: ServerView,
    /// Meetings forgotten (meetingIDs).
    pub forgotten: Vec<String>,
    /// Meetings whose end call the server accepted.
    pub ended: u64,
}

/// A meeting Switchboard knows.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum MeetingState {
    /// Running meetings.
    Running,
    /// Ended meetings.
    Ended,
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
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
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct EventPage {
    /// The events, oldest first.
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

/// A server as it was at a moment.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
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
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
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
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
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
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
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
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
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

/// Token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything.
    Admin,
    /// Read only.
    Read,
    /// A node agent: registers its own server and pushes its heartbeats.
    Node,
}

/// A new token.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct NewToken {
    /// Name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    // Scope. (No doc comment: see `PanicReport::server`.)
    #[allow(missing_docs)]
    pub scope: Scope,
    /// For a node token: the id of the server it speaks for (otherwise it
    /// is bound to the server its agent registers).
    #[serde(default)]
    #[oai(nullable)]
    pub server: Option<String>,
}

/// A token in force (without the secret).
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenView {
    /// Name.
    pub name: String,
    // Scope. (No doc comment: see `PanicReport::server`.)
    #[allow(missing_docs)]
    pub scope: Scope,
    /// For a node token: the server it speaks for.
    pub server: Option<String>,
    /// Created at.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A token just created: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedToken {
    /// Name.
    pub name: String,
    // Scope. (No doc comment: see `PanicReport::server`.)
    #[allow(missing_docs)]
    pub scope: Scope,
    /// For a node token: the server it speaks for.
    pub server: Option<String>,
    /// The bearer token. Store it now: only its hash is kept.
    pub token: String,
}

/// An RFC 7807 problem: what went wrong, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Problem {
    /// A URI reference naming the problem kind.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened and what to do.
    pub detail: String,
}
