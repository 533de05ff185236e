//! Callback deliveries as the outbox (`callbacks` table) holds them: one row
//! per call Switchboard owes a front-end, written in the transaction of the
//! event that caused it, then attempted until it is delivered, refused for
//! good, out of time, or dropped by an operator.

use serde::{Deserialize, Serialize};
use switchboard_domain::ids::TenantId;

/// What a delivery relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallbackKind {
    /// `meta_endCallbackUrl`: GET, `recordingmarks` and `meetingID` appended.
    EndCallback,
    /// `meetingEndedURL`: GET to the URL as given.
    MeetingEnded,
    /// `meta_analytics-callback-url`: POST JSON with a bearer JWT (HS512).
    Analytics,
    /// `meta_bbb-recording-ready-url` (and aliases): POST `signed_parameters`.
    RecordingReady,
    /// A bbb-webhooks event for a hook a front-end registered.
    Webhook,
}

impl CallbackKind {
    /// Every kind, for metrics and filters.
    pub const ALL: [CallbackKind; 5] = [
        Self::EndCallback,
        Self::MeetingEnded,
        Self::Analytics,
        Self::RecordingReady,
        Self::Webhook,
    ];

    /// The kind's name as stored and shown (`end-callback`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndCallback => "end-callback",
            Self::MeetingEnded => "meeting-ended",
            Self::Analytics => "analytics",
            Self::RecordingReady => "recording-ready",
            Self::Webhook => "webhook",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackState {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer came.
    Delivered,
    /// Refused for good (BBB's rules) or out of time.
    Failed,
    /// An operator dropped it.
    Dropped,
}

impl CallbackState {
    /// Every state.
    pub const ALL: [CallbackState; 4] =
        [Self::Pending, Self::Delivered, Self::Failed, Self::Dropped];

    /// The state's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dropped => "dropped",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// How a delivery is signed when it is sent (signatures are made per
/// attempt, with the tenant's secrets as they are then; no secret is kept in
/// the row, only which one to use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case")]
pub enum CallbackSigning {
    /// Nothing to sign (a plain GET).
    None,
    /// `Authorization: Bearer <JWT HS512 {exp}>`, as BBB's analytics callback.
    BearerHs512 {
        /// Fingerprint of the front-end's secret (`None`: its first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// Form field `signed_parameters=<JWT HS256 {meeting_id, record_id}>`.
    RecordingReady {
        /// Fingerprint of the front-end's secret (`None`: its first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// The front-end's meetingID.
        meeting_id: String,
        /// The recording.
        record_id: String,
    },
    /// bbb-webhooks: `?checksum=<hash(url + body + secret)>` added to the URL.
    WebhookChecksum {
        /// `sha1`, `sha256`, `sha384` or `sha512`.
        algorithm: String,
        /// Fingerprint of the secret that registered the hook (`None`: the
        /// tenant's first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
}

/// A delivery to write (with the event that causes it). Written again with
/// the same id, it is kept once; while it is still pending and unattempted,
/// the later write's URL and due time replace the earlier's (a server's own
/// end call over polling's fallback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCallback {
    /// Its id (a UUID).
    pub id: String,
    /// What it relays.
    pub kind: CallbackKind,
    /// Whose it is.
    pub tenant: TenantId,
    /// The front-end's meetingID it is about (empty when none).
    pub meeting_id: String,
    /// `GET` or `POST`.
    pub method: String,
    /// The front-end's URL.
    pub url: String,
    /// The body's media type, when there is a body.
    pub content_type: Option<String>,
    /// The body (JSON, a form).
    pub body: Option<String>,
    /// How it is signed when sent.
    pub signing: CallbackSigning,
    /// When it was written, ms.
    pub created_at_ms: i64,
    /// When its first attempt is due, ms (usually when it was written).
    pub due_ms: i64,
    /// No attempt after this, ms.
    pub deadline_ms: i64,
}

/// A delivery as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRecord {
    /// What was written.
    pub callback: NewCallback,
    /// Where it stands.
    pub state: CallbackState,
    /// Attempts started so far.
    pub attempts: u32,
    /// When the next attempt is due (while pending), ms.
    pub next_attempt_ms: i64,
    /// The last answer's HTTP status.
    pub last_status: Option<u16>,
    /// The last failure, for operators.
    pub last_error: Option<String>,
    /// When it left the pending state, ms.
    pub finished_at_ms: Option<i64>,
}

/// How an attempt ended, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered (2xx).
    Delivered {
        /// The status.
        status: u16,
    },
    /// Try again at `at_ms`.
    RetryAt {
        /// When, ms.
        at_ms: i64,
        /// The answer's status, if one came.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
    /// Refused for good or out of time.
    Failed {
        /// The answer's status, if one came.
        status: Option<u16>,
        /// Why.
        error: String,
    },
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackFilter {
    /// Only in this state.
    pub state: Option<CallbackState>,
    /// Only this tenant's.
    pub tenant: Option<TenantId>,
    /// Only of this kind.
    pub kind: Option<CallbackKind>,
    /// At most this many, newest first.
    pub limit: u64,
}

/// A webhook in force, as the `hooks` projection holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRecord {
    /// The hookID front-ends see.
    pub id: String,
    /// What it asks for.
    pub settings: switchboard_domain::hook::HookSettings,
}
