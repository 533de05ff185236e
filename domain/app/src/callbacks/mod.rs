//! Callbacks: what a BBB server would call on a front-end, relayed by
//! Switchboard as durable, retried, re-signed deliveries.
//!
//! - [`links`]: the URLs Switchboard gives a server in place of the
//!   front-end's (one nonce per run, signed).
//! - [`receive`]: a server calling one of them: the run is recorded as ended
//!   at once, and what the front-end asked for is written to the outbox in
//!   the same transaction.
//! - [`deliver`]: one attempt of a delivery (signed as BBB signs it, with the
//!   secret the front-end used), and BBB's rules for what comes back.
//! - [`hooks`]: bbb-webhooks for the whole pool: front-ends' hooks
//!   registered on Switchboard, one hook of Switchboard's on every server,
//!   and the servers' events fanned out to the matching hooks.
//! - [`signing`]: the JWTs and checksums.
//!
//! The outbox is the [`CallbackOutbox`](crate::ports::CallbackOutbox) port;
//! `switchboard-workers` claims due deliveries as apalis jobs and implements
//! the [`CallbackClient`] port over HTTP.

pub mod deliver;
pub mod hooks;
pub mod links;
pub mod receive;
pub mod signing;

use crate::clock::SharedClock;
use crate::error::StoreError;
use crate::executor::CommandExecutor;
use crate::ports::Database;
use crate::records::{CallbackKind, CallbackSigning, NewCallback};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::ids::TenantId;
use thiserror::Error;

pub use links::{CallbackLinks, ServerCallback};

/// Why a callback could not be sent (connection refused, timeout, DNS, an
/// address the outbound rules refuse...).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct CallbackError(pub String);

/// One HTTP request of a delivery, signed and ready to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundCall {
    /// `GET` or `POST`.
    pub method: String,
    /// The URL, query included.
    pub url: String,
    /// The body's media type.
    pub content_type: Option<String>,
    /// The body.
    pub body: Option<String>,
    /// `Authorization: Bearer <token>`.
    pub bearer: Option<String>,
}

/// Sends callbacks to the URLs front-ends gave.
#[async_trait]
pub trait CallbackClient: Send + Sync + std::fmt::Debug {
    /// Sends one request, following no redirect (callback URLs come from
    /// front-ends); the answer's HTTP status.
    async fn send(&self, call: &OutboundCall) -> Result<u16, CallbackError>;
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallbackSettings {
    /// How long a delivery is attempted after it was written.
    pub retry_for: Duration,
    /// The wait after the first failed attempt (doubled for each further one).
    pub first_retry: Duration,
    /// The longest wait between attempts.
    pub max_retry: Duration,
    /// How long a claimed attempt may run before the delivery is due again
    /// (a worker that died mid-attempt).
    pub lease: Duration,
}

impl Default for CallbackSettings {
    /// Attempts for 24 h: after 30 s, then doubling up to 1 h between
    /// attempts; a claim is held 2 min.
    fn default() -> Self {
        Self {
            retry_for: Duration::from_secs(24 * 3600),
            first_retry: Duration::from_secs(30),
            max_retry: Duration::from_secs(3600),
            lease: Duration::from_secs(120),
        }
    }
}

impl CallbackSettings {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.first_retry.saturating_mul(factor).min(self.max_retry)
    }
}

/// What a delivery sends, before its id and times are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// What it relays.
    pub kind: CallbackKind,
    /// Whose it is.
    pub tenant: TenantId,
    /// The front-end's meetingID (empty when none).
    pub meeting_id: String,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The front-end's URL.
    pub url: String,
    /// The body's media type.
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: Option<String>,
    /// How it is signed when sent.
    pub signing: CallbackSigning,
}

impl Delivery {
    /// The outbox entry: id `id` (a repeated id is written once), due now,
    /// attempted until `retry_for` has passed.
    pub fn into_outbox(self, id: String, now_ms: i64, retry_for: Duration) -> NewCallback {
        NewCallback {
            id,
            kind: self.kind,
            tenant: self.tenant,
            meeting_id: self.meeting_id,
            method: self.method.to_owned(),
            url: self.url,
            content_type: self.content_type.map(str::to_owned),
            body: self.body,
            signing: self.signing,
            created_at_ms: now_ms,
            due_ms: now_ms,
            deadline_ms: now_ms.saturating_add(duration_ms(retry_for)),
        }
    }
}

/// A duration in whole milliseconds (saturating).
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The callback use cases: receiving servers' callbacks, delivering to
/// front-ends, and the operators' view of the outbox.
#[derive(Debug)]
pub struct CallbackService {
    store: Arc<dyn Database>,
    executor: CommandExecutor,
    client: Arc<dyn CallbackClient>,
    clock: SharedClock,
    links: Arc<CallbackLinks>,
    /// The default tenant's secrets (the global ones).
    default_secrets: Vec<String>,
    settings: CallbackSettings,
    /// Calls to servers (registering Switchboard's hook on each).
    backends: Option<crate::backend::Backends>,
}

impl CallbackService {
    /// The use cases over these ports.
    pub fn new(
        store: Arc<dyn Database>,
        executor: CommandExecutor,
        client: Arc<dyn CallbackClient>,
        clock: SharedClock,
        links: Arc<CallbackLinks>,
        default_secrets: Vec<String>,
        settings: CallbackSettings,
    ) -> Self {
        Self {
            store,
            executor,
            client,
            clock,
            links,
            default_secrets,
            settings,
            backends: None,
        }
    }

    /// Registers Switchboard's webhook on servers through `backends`.
    pub fn with_backends(mut self, backends: crate::backend::Backends) -> Self {
        self.backends = Some(backends);
        self
    }

    /// The retry settings.
    pub fn settings(&self) -> &CallbackSettings {
        &self.settings
    }

    /// The callback URLs servers are given.
    pub fn links(&self) -> &Arc<CallbackLinks> {
        &self.links
    }

    /// The secret of `tenant` whose fingerprint is `fingerprint` (its first
    /// when `None` or when that secret was since removed); `None` when the
    /// tenant has no secret (it was deleted).
    pub async fn secret_for(
        &self,
        tenant: &TenantId,
        fingerprint: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let secrets = if tenant.is_default() {
            self.default_secrets.clone()
        } else {
            self.store
                .tenant(&tenant.0)
                .await?
                .map(|config| config.secrets)
                .unwrap_or_default()
        };
        let chosen = fingerprint
            .and_then(|wanted| {
                secrets
                    .iter()
                    .find(|secret| crate::admin::tenants::fingerprint(secret) == wanted)
            })
            .or_else(|| secrets.first());
        Ok(chosen.cloned())
    }
}
