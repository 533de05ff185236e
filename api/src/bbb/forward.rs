//! Calling the server of a meeting and relaying its answer, plus the lookups
//! every meeting call shares.

use super::error::BbbError;
use super::request::{ApiRequest, XmlBody};
use crate::app::AppState;
use bytes::Bytes;
use poem::Response;
use std::sync::Arc;
use switchboard_domain::ids::{MeetingId, TenantId};
use switchboard_domain::server::ServerState;
use switchboard_store::{MeetingRecord, ServerRecord, StoreError};
use switchboard_workers::backend::{BackendError, BackendTarget};
use switchboard_workers::bbb_xml::{ResponseSummary, read_response};

/// A server's answer that was read successfully.
#[derive(Debug)]
pub struct Answer {
    /// The body as the server sent it.
    pub body: Bytes,
    /// Its top-level fields.
    pub summary: ResponseSummary,
}

/// Why a server's answer is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Transport failure or HTTP error.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Not a BBB answer.
    #[error("unreadable answer: {0}")]
    Garbage(String),
}

impl ForwardError {
    /// The error a front-end sees.
    pub fn to_bbb(&self) -> BbbError {
        BbbError::internal(format!("The meeting's server could not be used: {self}."))
    }
}

/// The target of calls to a server.
pub fn target<'a>(state: &AppState, server: &'a ServerRecord) -> BackendTarget<'a> {
    BackendTarget {
        url: &server.settings.url,
        secret: &server.settings.secret,
        algorithm: server
            .settings
            .checksum
            .unwrap_or(state.settings.backend_checksum),
    }
}

/// Calls a server (GET, or POST when a body goes along) and reads its answer.
pub async fn call(
    state: &AppState,
    server: &ServerRecord,
    call: &str,
    query: &str,
    xml_body: Option<&XmlBody>,
) -> Result<Answer, ForwardError> {
    let target = target(state, server);
    let timeout = state.settings.backend_timeout();
    let response = match xml_body {
        Some(xml) => {
            state
                .backend
                .post(
                    target,
                    call,
                    query,
                    &xml.content_type,
                    xml.body.clone(),
                    timeout,
                )
                .await?
        }
        None => state.backend.get(target, call, query, timeout).await?,
    };
    let summary =
        read_response(&response.body).map_err(|err| ForwardError::Garbage(err.to_string()))?;
    Ok(Answer {
        body: response.body,
        summary,
    })
}

/// Relays a server's answer unchanged.
pub fn relay(answer: Answer) -> Response {
    super::xml::xml_response(answer.body)
}

/// The `meetingID` parameter, validated.
pub fn meeting_param(request: &ApiRequest) -> Result<MeetingId, BbbError> {
    let raw = request.params.non_empty("meetingID").ok_or_else(|| {
        BbbError::missing_param(
            "missingParamMeetingID",
            "You must specify a meeting ID for the meeting.",
        )
    })?;
    MeetingId::parse(raw).map_err(|err| BbbError::validation(format!("Invalid meetingID: {err}.")))
}

/// A database failure, logged, as a front-end sees it.
pub fn store_failure(err: StoreError) -> BbbError {
    tracing::error!(error = %err, "database failure on the BBB API");
    BbbError::internal("Switchboard's database is unavailable; please retry.")
}

/// The running meeting of this request's tenant, if any.
pub async fn running_meeting(
    state: &AppState,
    tenant: &TenantId,
    meeting_id: &MeetingId,
) -> Result<Option<Arc<MeetingRecord>>, BbbError> {
    let record = state
        .directory
        .meeting(tenant, meeting_id)
        .await
        .map_err(store_failure)?;
    Ok(record.filter(|record| record.running))
}

/// Whether a server may serve its existing meetings (joins, end, info):
/// known, online and not disabled. Cordoned servers still serve them.
pub fn serving(server: &Arc<ServerRecord>) -> bool {
    server.online && server.state != ServerState::Disabled
}

/// The running meeting and its server, or the BBB error for a missing one.
pub async fn meeting_and_server(
    state: &AppState,
    tenant: &TenantId,
    meeting_id: &MeetingId,
) -> Result<(Arc<MeetingRecord>, Arc<ServerRecord>), BbbError> {
    let record = running_meeting(state, tenant, meeting_id)
        .await?
        .ok_or_else(BbbError::meeting_not_found)?;
    let server = state
        .directory
        .server(record.run.server_id)
        .filter(serving)
        .ok_or_else(BbbError::server_unavailable)?;
    Ok((record, server))
}
