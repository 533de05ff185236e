//! Callback deliveries in the admin API: the outbox, filtered; retry and
//! drop one delivery. URLs are shown without credentials.

use super::api::{AdminError, Answer, Done, Tag, TokenAuth};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_app::admin::Failure;
use switchboard_app::callbacks::CallbackService;
use switchboard_app::records::{CallbackFilter, CallbackKind, CallbackRecord, CallbackState};
use switchboard_domain::ids::TenantId;
use switchboard_domain::token::TokenScope;

/// The most deliveries one list answers.
const MAX_LIST: u64 = 1000;

/// One delivery owed to a front-end.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct CallbackView {
    /// Its id.
    pub id: String,
    /// `end-callback`, `meeting-ended`, `analytics`, `recording-ready` or `webhook`.
    pub kind: String,
    /// Whose it is.
    pub tenant: String,
    /// The front-end's meetingID.
    pub meeting_id: String,
    /// `GET` or `POST`.
    pub method: String,
    /// The front-end's URL (credentials hidden).
    pub url: String,
    /// `pending`, `delivered`, `failed` or `dropped`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was written (ms since the epoch).
    pub created_at_ms: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_ms: Option<i64>,
    /// No attempt after this.
    pub deadline_ms: i64,
    /// The last answer's HTTP status.
    pub last_status: Option<u16>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was delivered, failed or dropped.
    pub finished_at_ms: Option<i64>,
}

impl From<CallbackRecord> for CallbackView {
    fn from(record: CallbackRecord) -> Self {
        let callback = record.callback;
        Self {
            id: callback.id,
            kind: callback.kind.as_str().to_owned(),
            tenant: callback.tenant.0,
            meeting_id: callback.meeting_id,
            method: callback.method,
            url: switchboard_domain::server_metrics::redact_credentials(&callback.url),
            state: record.state.as_str().to_owned(),
            attempts: record.attempts,
            created_at_ms: callback.created_at_ms,
            next_attempt_ms: (record.state == CallbackState::Pending)
                .then_some(record.next_attempt_ms),
            deadline_ms: callback.deadline_ms,
            last_status: record.last_status,
            last_error: record.last_error,
            finished_at_ms: record.finished_at_ms,
        }
    }
}

/// The filter of a list, parsed (a person's message when a value is unknown).
pub fn callback_filter(
    state: Option<&str>,
    tenant: Option<&str>,
    kind: Option<&str>,
    limit: Option<u64>,
) -> Result<CallbackFilter, String> {
    let state = state
        .map(|name| {
            CallbackState::parse(name).ok_or_else(|| {
                format!("unknown state `{name}`: use pending, delivered, failed or dropped")
            })
        })
        .transpose()?;
    let kind = kind
        .map(|name| {
            CallbackKind::parse(name).ok_or_else(|| {
                format!(
                    "unknown kind `{name}`: use end-callback, meeting-ended, analytics, \
                     recording-ready or webhook"
                )
            })
        })
        .transpose()?;
    Ok(CallbackFilter {
        state,
        tenant: tenant.map(|name| TenantId(name.to_owned())),
        kind,
        limit: limit.unwrap_or(100).clamp(1, MAX_LIST),
    })
}

fn store_failure(err: switchboard_app::StoreError) -> AdminError {
    Failure::from(err).into()
}

fn not_found(id: &str, what: &str) -> AdminError {
    Failure::NotFound(format!("no {what} callback delivery `{id}`")).into()
}

/// The callbacks part of the admin API.
pub struct CallbacksApi;

#[OpenApi]
impl CallbacksApi {
    /// List callback deliveries, newest first.
    #[oai(
        path = "/callbacks",
        method = "get",
        tag = "Tag::Callbacks",
        operation_id = "list_callbacks"
    )]
    async fn list_callbacks(
        &self,
        auth: TokenAuth,
        service: poem::web::Data<&Arc<CallbackService>>,
        /// Only in this state: pending, delivered, failed or dropped.
        state: Query<Option<String>>,
        /// Only this tenant's (`default` for the default tenant).
        tenant: Query<Option<String>>,
        /// Only this kind: end-callback, meeting-ended, analytics, recording-ready or webhook.
        kind: Query<Option<String>>,
        /// At most this many (default 100, at most 1000).
        limit: Query<Option<u64>>,
    ) -> Answer<Vec<CallbackView>> {
        auth.require(TokenScope::Read)?;
        let filter = callback_filter(state.as_deref(), tenant.as_deref(), kind.as_deref(), *limit)
            .map_err(|message| AdminError::from(Failure::Invalid(message)))?;
        let found = service.list(&filter).await.map_err(store_failure)?;
        Ok(Json(found.into_iter().map(CallbackView::from).collect()))
    }

    /// Get one callback delivery.
    #[oai(
        path = "/callbacks/:id",
        method = "get",
        tag = "Tag::Callbacks",
        operation_id = "get_callback"
    )]
    async fn get_callback(
        &self,
        auth: TokenAuth,
        service: poem::web::Data<&Arc<CallbackService>>,
        id: Path<String>,
    ) -> Answer<CallbackView> {
        auth.require(TokenScope::Read)?;
        match service.get(&id).await.map_err(store_failure)? {
            Some(record) => Ok(Json(record.into())),
            None => Err(not_found(&id, "such")),
        }
    }

    /// Attempt a failed or pending delivery now, with a fresh time window.
    #[oai(
        path = "/callbacks/:id/retry",
        method = "post",
        tag = "Tag::Callbacks",
        operation_id = "retry_callback"
    )]
    async fn retry_callback(
        &self,
        auth: TokenAuth,
        service: poem::web::Data<&Arc<CallbackService>>,
        id: Path<String>,
    ) -> Result<Done, AdminError> {
        let principal = auth.require(TokenScope::Admin)?;
        if !service.retry(&id).await.map_err(store_failure)? {
            return Err(not_found(&id, "undelivered"));
        }
        tracing::info!(id = %id.0, actor = %principal.name, "callback delivery retried by an operator");
        Ok(Done::NoContent)
    }

    /// Drop a pending or failed delivery: it is never attempted again.
    #[oai(
        path = "/callbacks/:id/drop",
        method = "post",
        tag = "Tag::Callbacks",
        operation_id = "drop_callback"
    )]
    async fn drop_callback(
        &self,
        auth: TokenAuth,
        service: poem::web::Data<&Arc<CallbackService>>,
        id: Path<String>,
    ) -> Result<Done, AdminError> {
        let principal = auth.require(TokenScope::Admin)?;
        if !service.drop_delivery(&id).await.map_err(store_failure)? {
            return Err(not_found(&id, "pending or failed"));
        }
        tracing::info!(id = %id.0, actor = %principal.name, "callback delivery dropped by an operator");
        Ok(Done::NoContent)
    }
}
