//! getMeetings: every serving server is asked at once, each with its own
//! timeout; the `<meeting>` elements of those that answer are merged. A slow or
//! dead server costs at most its timeout and never fails the answer.

use super::error::BbbError;
use super::forward::{self, serving};
use super::xml::{XmlWriter, xml_response};
use crate::app::AppState;
use poem::Response;
use switchboard_workers::bbb_xml::read_meetings;

/// Handles `getMeetings`.
pub async fn get_meetings(state: &AppState) -> Result<Response, BbbError> {
    let servers = state.directory.servers();
    let timeout = state.settings.get_meetings_timeout();
    let asks = servers
        .values()
        .filter(|server| serving(server))
        .map(|server| async move {
            let target = forward::target(state, server);
            let answer = tokio::time::timeout(
                timeout,
                state.backend.get(target, "getMeetings", "", timeout),
            )
            .await;
            match answer {
                Ok(Ok(response)) => Some(response.body),
                Ok(Err(err)) => {
                    tracing::warn!(server = %server.id, error = %err, "getMeetings: server failed");
                    None
                }
                Err(_) => {
                    tracing::warn!(server = %server.id, "getMeetings: server timed out");
                    None
                }
            }
        });
    let bodies = futures::future::join_all(asks).await;
    let mut meetings = String::new();
    for body in bodies.iter().flatten() {
        let Ok(text) = std::str::from_utf8(body) else {
            continue;
        };
        match read_meetings(text) {
            Ok(answer) if answer.summary.is_success() => {
                for meeting in answer.meetings {
                    meetings.push_str(meeting.raw);
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "getMeetings: unreadable answer"),
        }
    }
    let mut xml = XmlWriter::response("SUCCESS");
    if meetings.is_empty() {
        xml.raw("<meetings/>")
            .text_element("messageKey", "noMeetings")
            .text_element("message", "no meetings were found on this server");
    } else {
        xml.raw("<meetings>").raw(&meetings).raw("</meetings>");
    }
    Ok(xml_response(xml.finish()))
}
