//! Calls that go to the server of one meeting: end, isMeetingRunning,
//! getMeetingInfo, sendChatMessage and insertDocument.

use super::error::BbbError;
use super::forward::{
    self, meeting_and_server, meeting_param, running_meeting, serving, store_failure,
};
use super::request::ApiRequest;
use super::xml::{XmlWriter, xml_response};
use crate::app::AppState;
use poem::Response;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::meeting::{EndReason, MeetingEvent};
use switchboard_store::MeetingRecord;

/// Forwards the call unchanged to the meeting's server and relays the answer.
async fn relay_to_meeting_server(
    state: &AppState,
    request: &ApiRequest,
) -> Result<Response, BbbError> {
    let (_, server) = meeting_and_server(state, &request.tenant, &meeting_param(request)?).await?;
    let answer = forward::call(
        state,
        &server,
        &request.call,
        &request.raw_query,
        request.xml_body.as_ref(),
    )
    .await
    .map_err(|err| err.to_bbb())?;
    Ok(forward::relay(answer))
}

/// `getMeetingInfo`: unknown meeting -> `notFound`.
pub async fn get_meeting_info(
    state: &AppState,
    request: &ApiRequest,
) -> Result<Response, BbbError> {
    relay_to_meeting_server(state, request).await
}

/// `sendChatMessage` (BBB 3.0).
pub async fn send_chat_message(
    state: &AppState,
    request: &ApiRequest,
) -> Result<Response, BbbError> {
    relay_to_meeting_server(state, request).await
}

/// `insertDocument`: the XML body goes along.
pub async fn insert_document(state: &AppState, request: &ApiRequest) -> Result<Response, BbbError> {
    relay_to_meeting_server(state, request).await
}

fn not_running() -> Response {
    let mut xml = XmlWriter::response("SUCCESS");
    xml.text_element("running", "false");
    xml_response(xml.finish())
}

/// `isMeetingRunning`: an unknown meeting or an unreachable server is simply
/// not running, never an error.
pub async fn is_meeting_running(
    state: &AppState,
    request: &ApiRequest,
) -> Result<Response, BbbError> {
    let meeting_id = meeting_param(request)?;
    let Some(record) = running_meeting(state, &request.tenant, &meeting_id).await? else {
        return Ok(not_running());
    };
    let Some(server) = state.directory.server(record.run.server_id).filter(serving) else {
        return Ok(not_running());
    };
    match forward::call(state, &server, "isMeetingRunning", &request.raw_query, None).await {
        Ok(answer) => Ok(forward::relay(answer)),
        Err(err) => {
            tracing::warn!(server = %server.id, error = %err, "isMeetingRunning: server failed");
            Ok(not_running())
        }
    }
}

/// `end`: forwarded; once the server has ended it (or no longer knows it),
/// the meeting is recorded as ended.
pub async fn end(
    state: &AppState,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    let meeting_id = meeting_param(request)?;
    let record = running_meeting(state, &request.tenant, &meeting_id)
        .await?
        .ok_or_else(BbbError::meeting_not_found)?;
    let Some(server) = state.directory.server(record.run.server_id) else {
        // The server left the pool: the meeting is gone with it.
        record_ended(state, &record, EndReason::GoneFromServer, metadata).await?;
        return Err(BbbError::meeting_not_found());
    };
    let answer = forward::call(state, &server, "end", &request.raw_query, None)
        .await
        .map_err(|err| err.to_bbb())?;
    let gone = answer.summary.is_success() || answer.summary.message_key() == Some("notFound");
    if gone {
        let reason = if answer.summary.is_success() {
            EndReason::EndCalled
        } else {
            EndReason::GoneFromServer
        };
        record_ended(state, &record, reason, metadata).await?;
    }
    Ok(forward::relay(answer))
}

/// Records the end of a meeting's current run and updates the routing view.
async fn record_ended(
    state: &AppState,
    record: &MeetingRecord,
    reason: EndReason,
    metadata: &EventMetadata,
) -> Result<(), BbbError> {
    let executed = state
        .store
        .end_run(record, reason, metadata)
        .await
        .map_err(|err| match err {
            switchboard_store::CommandError::Store(err) => store_failure(err),
            switchboard_store::CommandError::Rejected(err) => BbbError::internal(err.to_string()),
        })?;
    if executed
        .events
        .iter()
        .any(|event| matches!(event, MeetingEvent::MeetingEnded { .. }))
    {
        // The next refresh counts it from the projection; until then, here.
        state
            .directory
            .adjust(record.run.server_id, executed.position, -1);
    }
    state.directory.forget(&record.tenant, &record.meeting_id);
    state
        .store
        .disable_if_drained(record.run.server_id, metadata)
        .await
        .map_err(store_failure)?;
    Ok(())
}
