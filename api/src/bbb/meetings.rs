//! The meeting calls of the facade: each calls one use case of
//! [`MeetingService`] and renders its outcome as BBB does.

use super::error::BbbError;
use super::request::ApiRequest;
use super::xml::{XmlWriter, xml_response};
use poem::Response;
use poem::http::{StatusCode, header};
use switchboard_app::backend::Answer;
use switchboard_app::meetings::{CallError, JoinOutcome, MeetingService};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::TenantId;

/// Relays a server's answer unchanged.
fn relayed(answer: Answer) -> Response {
    xml_response(answer.body)
}

/// A limit refusal is counted per tenant before it is rendered.
fn refused(tenant: &TenantId, err: CallError) -> BbbError {
    match &err {
        CallError::MaxMeetings(_) => crate::metrics::record_limit_hit(tenant, "meetings"),
        CallError::MaxParticipants(_) => crate::metrics::record_limit_hit(tenant, "attendees"),
        _ => {}
    }
    err.into()
}

/// `create`.
pub async fn create(
    meetings: &MeetingService,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    meetings
        .create(request, metadata)
        .await
        .map(relayed)
        .map_err(|err| refused(&request.tenant, err))
}

/// `join`: a 302 to the meeting's server, or its XML with `redirect=false`.
pub async fn join(meetings: &MeetingService, request: &ApiRequest) -> Result<Response, BbbError> {
    match meetings
        .join(request)
        .await
        .map_err(|err| refused(&request.tenant, err))?
    {
        JoinOutcome::Answer(answer) => Ok(relayed(answer)),
        JoinOutcome::Redirect(location) => Ok(Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, location)
            .finish()),
    }
}

/// `end`.
pub async fn end(
    meetings: &MeetingService,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    Ok(relayed(meetings.end(request, metadata).await?))
}

/// `isMeetingRunning`: an unknown meeting or an unreachable server is simply
/// not running, never an error.
pub async fn is_meeting_running(
    meetings: &MeetingService,
    request: &ApiRequest,
) -> Result<Response, BbbError> {
    match meetings.is_meeting_running(request).await? {
        Some(answer) => Ok(relayed(answer)),
        None => {
            let mut xml = XmlWriter::response("SUCCESS");
            xml.text_element("running", "false");
            Ok(xml_response(xml.finish()))
        }
    }
}

/// getMeetingInfo, sendChatMessage, insertDocument: relayed to the
/// meeting's server.
pub async fn relay(meetings: &MeetingService, request: &ApiRequest) -> Result<Response, BbbError> {
    Ok(relayed(meetings.relay(request).await?))
}

/// `getMeetings`, from the polled picture.
pub async fn get_meetings(
    meetings: &MeetingService,
    tenant: &TenantId,
) -> Result<Response, BbbError> {
    Ok(super::xml::shared_xml_response(
        meetings.get_meetings(tenant).await?,
    ))
}
