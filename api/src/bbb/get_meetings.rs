//! getMeetings: every serving server is asked at once, each with its own
//! timeout; the `<meeting>` elements of those that answer are merged. A slow or
//! dead server costs at most its timeout and never fails the answer.

use super::error::BbbError;
use super::forward::{self, serving};
use super::xml::{XmlWriter, xml_response};
use crate::app::AppState;
use bytes::Bytes;
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
    // The answer is assembled from slices of the servers' bodies (no copy of
    // the meetings), so memory stays near the size of what the servers sent.
    let mut chunks: Vec<Bytes> = Vec::new();
    for body in bodies.iter().flatten() {
        let Ok(text) = std::str::from_utf8(body) else {
            continue;
        };
        match read_meetings(text) {
            Ok(answer) if answer.summary.is_success() => {
                for meeting in answer.meetings {
                    let start = meeting.raw.as_ptr() as usize - text.as_ptr() as usize;
                    chunks.push(body.slice(start..start + meeting.raw.len()));
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "getMeetings: unreadable answer"),
        }
    }
    if chunks.is_empty() {
        let mut xml = XmlWriter::response("SUCCESS");
        xml.raw("<meetings/>")
            .text_element("messageKey", "noMeetings")
            .text_element("message", "no meetings were found on this server");
        return Ok(xml_response(xml.finish()));
    }
    let head = Bytes::from_static(b"<response><returncode>SUCCESS</returncode><meetings>");
    let tail = Bytes::from_static(b"</meetings></response>");
    let parts = std::iter::once(head)
        .chain(chunks)
        .chain(std::iter::once(tail))
        .map(Ok::<_, std::io::Error>);
    Ok(xml_response(poem::Body::from_bytes_stream(
        futures::stream::iter(parts),
    )))
}
