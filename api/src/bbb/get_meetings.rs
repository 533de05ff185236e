//! getMeetings: every serving server is asked at once, each with its own
//! timeout; the `<meeting>` elements of those that answer are merged. A slow or
//! dead server costs at most its timeout and never fails the answer.
//!
//! Requests that arrive while a merge is under way wait for the next one and
//! share it (single flight): the answer is never older than the request, and
//! with many callers the servers are asked once per merge, not once per
//! caller, which also bounds the memory held for their answers.

use super::error::BbbError;
use super::forward::{self, serving};
use super::xml::{XmlWriter, xml_response};
use crate::app::AppState;
use bytes::Bytes;
use poem::Response;
use std::sync::Arc;
use std::time::Instant;
use switchboard_workers::bbb_xml::read_meetings;

/// The last merged list and when its merge started.
#[derive(Debug, Default)]
pub struct MergedMeetings {
    last: tokio::sync::Mutex<Option<(Instant, Arc<Vec<Bytes>>)>>,
}

/// Handles `getMeetings`.
pub async fn get_meetings(state: &AppState) -> Result<Response, BbbError> {
    let arrived = Instant::now();
    let mut last = state.merged_meetings.last.lock().await;
    let chunks = match last.as_ref() {
        Some((started, chunks)) if *started >= arrived => chunks.clone(),
        _ => {
            // Let the previous answer go before asking for the next one.
            *last = None;
            let started = Instant::now();
            let chunks = Arc::new(merge(state).await);
            *last = Some((started, chunks.clone()));
            chunks
        }
    };
    drop(last);
    if chunks.is_empty() {
        let mut xml = XmlWriter::response("SUCCESS");
        xml.raw("<meetings/>")
            .text_element("messageKey", "noMeetings")
            .text_element("message", "no meetings were found on this server");
        return Ok(xml_response(xml.finish()));
    }
    let head = Bytes::from_static(b"<response><returncode>SUCCESS</returncode><meetings>");
    let tail = Bytes::from_static(b"</meetings></response>");
    let meetings: Vec<Bytes> = chunks.iter().cloned().collect();
    let parts = std::iter::once(head)
        .chain(meetings)
        .chain(std::iter::once(tail))
        .map(Ok::<_, std::io::Error>);
    Ok(xml_response(poem::Body::from_bytes_stream(
        futures::stream::iter(parts),
    )))
}

/// Asks every serving server and returns its `<meeting>` elements, as slices
/// of the bodies the servers sent (no copies).
async fn merge(state: &AppState) -> Vec<Bytes> {
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
    chunks
}
