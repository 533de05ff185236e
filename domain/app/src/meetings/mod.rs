//! The meeting use cases of the BBB API: create (placement, locks, strays),
//! join, end, the calls relayed to a meeting's server, and getMeetings from
//! the polled picture. The facade parses and verifies a request into an
//! [`ApiRequest`], calls one of these and renders the outcome.

pub mod calls;
pub mod create;
pub mod get_meetings;
pub mod listing;
pub mod voice_bridge;

pub use calls::JoinOutcome;
pub use voice_bridge::VoiceBridgePolicy;

use crate::backend::{Backends, CallFailure, RequestBody};
use crate::clock::SharedClock;
use crate::error::StoreError;
use crate::executor::CommandExecutor;
use crate::locks::StripedLocks;
use crate::ports::Database;
use crate::routing::RoutingView;
use std::sync::Arc;
use switchboard_domain::bbb::params::Params;
use switchboard_domain::ids::{MeetingId, TenantId};
use switchboard_domain::tenant::TenantConfig;
use thiserror::Error;

/// A verified BBB API request.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The call name (`create`, `join`, ...).
    pub call: String,
    /// Decoded parameters from the URL and a form body.
    pub params: Params,
    /// The raw URL query without the checksum, as the client signed it.
    pub raw_query: String,
    /// True when parameters came from a form body (the raw query is not all).
    pub has_form_params: bool,
    /// An XML body, if one came.
    pub xml_body: Option<RequestBody>,
    /// A multipart body (putRecordingTextTrack), if one came.
    pub multipart: Option<RequestBody>,
    /// The tenant whose secret signed the request.
    pub tenant: TenantId,
    /// Its configuration; `None` for the default tenant.
    pub tenant_config: Option<Arc<TenantConfig>>,
    /// Fingerprint of the secret that signed a `create` or `hooks/create`
    /// (callbacks of what it creates are signed with that secret); `None`
    /// for every other call.
    pub signed_with: Option<String>,
}

impl ApiRequest {
    /// The query to send on to a server: the client's signed query byte for
    /// byte, or, when parameters also came in a form body, all of them.
    pub fn forwarded_query(&self) -> std::borrow::Cow<'_, str> {
        if self.has_form_params {
            std::borrow::Cow::Owned(self.params.to_query())
        } else {
            std::borrow::Cow::Borrowed(&self.raw_query)
        }
    }

    /// The `meetingID` parameter without control characters, validated.
    pub fn meeting_id(&self) -> Result<MeetingId, CallError> {
        let raw = self
            .params
            .non_empty("meetingID")
            .ok_or(CallError::MissingParam {
                key: "missingParamMeetingID",
                message: "You must specify a meeting ID for the meeting.",
            })?;
        // As BBB does, control characters are no part of a meetingID.
        let cleaned = switchboard_domain::bbb::params::strip_control_chars(raw);
        MeetingId::parse(&cleaned)
            .map_err(|err| CallError::Invalid(format!("Invalid meetingID: {err}.")))
    }
}

/// Why a meeting call did not go through, as the facade renders it.
#[derive(Debug, Error)]
pub enum CallError {
    /// A required parameter is missing.
    #[error("{message}")]
    MissingParam {
        /// BBB's messageKey.
        key: &'static str,
        /// BBB's message.
        message: &'static str,
    },
    /// A parameter is invalid.
    #[error("{0}")]
    Invalid(String),
    /// No such running meeting.
    #[error("meeting not found")]
    NotFound,
    /// The meeting's server is offline or disabled.
    #[error("the meeting's server is unavailable")]
    ServerUnavailable,
    /// No server takes new meetings.
    #[error("no server available")]
    NoServer,
    /// No server has the required tags.
    #[error("no server with tag {0}")]
    TagUnavailable(String),
    /// The tenant runs as many meetings as it may.
    #[error("the tenant's limit of {0} meetings is reached")]
    MaxMeetings(u64),
    /// The tenant's meetings hold as many attendees as they may.
    #[error("the tenant's limit of {0} attendees is reached")]
    MaxParticipants(u64),
    /// Another meeting holds the voiceBridge the front-end asked for.
    #[error("The selected voice bridge is already in use.")]
    VoiceBridgeInUse,
    /// The meeting's server answered badly or not at all.
    #[error("The meeting's server could not be used: {0}.")]
    ServerFailed(#[from] CallFailure),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else, with a message for the front-end.
    #[error("{0}")]
    Internal(String),
}

/// Settings of the meeting use cases.
#[derive(Debug, Clone, Copy)]
pub struct MeetingSettings {
    /// Servers a new meeting is offered to before giving up.
    pub create_attempts: usize,
    /// Voice bridges unique across the pool (`None`: left to servers).
    pub voice_bridges: Option<VoiceBridgePolicy>,
    /// Fill a new meeting's missing moderatorPW/attendeePW.
    pub fill_passwords: bool,
    /// Add `meta_tenant-id`/`meta_tenant-name` to a tenant's creates.
    pub tenant_metadata: bool,
}

impl MeetingSettings {
    /// `create_attempts` servers per create, nothing else added.
    pub fn new(create_attempts: usize) -> Self {
        Self {
            create_attempts,
            voice_bridges: None,
            fill_passwords: false,
            tenant_metadata: false,
        }
    }
}

/// The meeting use cases, over the ports they need.
#[derive(Debug)]
pub struct MeetingService {
    store: Arc<dyn Database>,
    executor: CommandExecutor,
    routing: Arc<RoutingView>,
    backends: Backends,
    clock: SharedClock,
    settings: MeetingSettings,
    /// Serialises creates of one meetingID in this process.
    create_locks: StripedLocks,
    /// Serialises a tenant's creates while it has a meeting limit (a lock
    /// set of its own: taken while a create lock is held).
    limit_locks: StripedLocks,
    /// getMeetings' shared answers (single flight).
    merged: get_meetings::MergedMeetings,
    /// Switchboard's own callback URLs, given to servers on create (`None`:
    /// the front-end's are passed on as they are).
    callback_links: Option<Arc<crate::callbacks::CallbackLinks>>,
    /// The key generated passwords derive from (read once from the store).
    password_key: tokio::sync::OnceCell<Vec<u8>>,
    /// Parameter rules for every tenant's creates and joins, applied
    /// before the tenant's own.
    policy: switchboard_domain::tenant::TenantPolicy,
}

impl MeetingService {
    /// The use cases over these ports.
    pub fn new(
        store: Arc<dyn Database>,
        executor: CommandExecutor,
        routing: Arc<RoutingView>,
        backends: Backends,
        clock: SharedClock,
        settings: MeetingSettings,
    ) -> Self {
        Self {
            store,
            executor,
            routing,
            backends,
            clock,
            settings,
            create_locks: StripedLocks::default(),
            limit_locks: StripedLocks::default(),
            merged: Default::default(),
            callback_links: None,
            password_key: tokio::sync::OnceCell::new(),
            policy: Default::default(),
        }
    }

    /// Gives servers Switchboard's own end-of-meeting callback URLs made by
    /// `links` (the front-end's are kept and relayed).
    pub fn with_callback_links(mut self, links: Arc<crate::callbacks::CallbackLinks>) -> Self {
        self.callback_links = Some(links);
        self
    }

    /// Applies `policy` to every create and join before a tenant's own
    /// (the operator's defaults, overrides, blocked parameters and caps).
    pub fn with_policy(mut self, policy: switchboard_domain::tenant::TenantPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The routing view the use cases read.
    pub fn routing(&self) -> &Arc<RoutingView> {
        &self.routing
    }

    /// The calls to servers.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }
}
