//! BBB-shaped answers for [`ScriptedBackend`](super::ScriptedBackend)
//! scripts: create (new or duplicate), getMeetings lists, end, failures,
//! garbage, HTTP errors and timeouts.

use crate::backend::{BackendError, BackendResponse};
use std::time::Duration;
use switchboard_domain::bbb::params::Params;
use switchboard_domain::bbb::xml_write::escape;

/// The moderator password every scripted create answers with.
pub const MODERATOR_PW: &str = "mp";
/// The attendee password every scripted create answers with.
pub const ATTENDEE_PW: &str = "ap";

/// What a scripted call answers.
pub type Reply = Result<BackendResponse, BackendError>;

/// An HTTP 200 answer with this body.
pub fn body(xml: impl Into<String>) -> Reply {
    Ok(BackendResponse {
        status: 200,
        body: bytes::Bytes::from(xml.into()),
    })
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// The body of a create answer as BBB sends it.
pub fn create_xml(
    meeting_id: &str,
    internal_id: &str,
    create_time_ms: i64,
    message_key: &str,
    message: &str,
) -> String {
    let mut out = String::from("<response><returncode>SUCCESS</returncode>");
    element(&mut out, "meetingID", meeting_id);
    element(&mut out, "internalMeetingID", internal_id);
    element(&mut out, "parentMeetingID", "bbb-none");
    element(&mut out, "attendeePW", ATTENDEE_PW);
    element(&mut out, "moderatorPW", MODERATOR_PW);
    element(&mut out, "createTime", &create_time_ms.to_string());
    element(&mut out, "voiceBridge", "70001");
    element(&mut out, "dialNumber", "613-555-1234");
    element(&mut out, "createDate", "Tue Nov 14 22:13:20 UTC 2023");
    element(&mut out, "hasUserJoined", "false");
    element(&mut out, "duration", "0");
    element(&mut out, "hasBeenForciblyEnded", "false");
    element(&mut out, "messageKey", message_key);
    element(&mut out, "message", message);
    out.push_str("</response>");
    out
}

/// A create that started a new meeting.
pub fn create_success(meeting_id: &str, internal_id: &str, create_time_ms: i64) -> Reply {
    body(create_xml(meeting_id, internal_id, create_time_ms, "", ""))
}

/// A create of a meeting that runs there already (`duplicateWarning`).
pub fn create_duplicate(meeting_id: &str, internal_id: &str, create_time_ms: i64) -> Reply {
    body(create_xml(
        meeting_id,
        internal_id,
        create_time_ms,
        "duplicateWarning",
        "This conference was already in existence and may currently be in progress.",
    ))
}

/// A refusal (`FAILED` with a messageKey).
pub fn failed(message_key: &str, message: &str) -> Reply {
    let mut out = String::from("<response><returncode>FAILED</returncode>");
    element(&mut out, "messageKey", message_key);
    element(&mut out, "message", message);
    out.push_str("</response>");
    body(out)
}

/// One `<meeting>` of a getMeetings answer.
pub fn meeting_element(
    meeting_id: &str,
    internal_id: &str,
    create_time_ms: i64,
    participants: u64,
) -> String {
    let mut out = String::from("<meeting>");
    element(&mut out, "meetingName", meeting_id);
    element(&mut out, "meetingID", meeting_id);
    element(&mut out, "internalMeetingID", internal_id);
    element(&mut out, "createTime", &create_time_ms.to_string());
    element(&mut out, "running", "true");
    element(&mut out, "participantCount", &participants.to_string());
    element(&mut out, "listenerCount", "0");
    element(&mut out, "voiceParticipantCount", "0");
    element(&mut out, "videoCount", "0");
    element(&mut out, "moderatorCount", "0");
    out.push_str("<attendees/><metadata/></meeting>");
    out
}

/// A getMeetings answer listing these `<meeting>` elements (see
/// [`meeting_element`]); BBB's `noMeetings` answer when there are none.
pub fn meetings(elements: &[String]) -> Reply {
    if elements.is_empty() {
        return body(
            "<response><returncode>SUCCESS</returncode><meetings/>\
             <messageKey>noMeetings</messageKey>\
             <message>no meetings were found on this server</message></response>",
        );
    }
    body(format!(
        "<response><returncode>SUCCESS</returncode><meetings>{}</meetings></response>",
        elements.concat()
    ))
}

/// An end that BBB accepted.
pub fn end_sent() -> Reply {
    body(
        "<response><returncode>SUCCESS</returncode>\
         <messageKey>sentEndMeetingRequest</messageKey>\
         <message>A request to end the meeting was sent.</message></response>",
    )
}

/// An answer that is no BBB answer (a proxy's error page).
pub fn garbage() -> Reply {
    body("<html><body>502 Bad Gateway</body></html>")
}

/// An HTTP error status.
pub fn status(code: u16) -> Reply {
    Err(BackendError::Status(code))
}

/// No answer in time (answered at once: scripts never sleep).
pub fn timeout() -> Reply {
    Err(BackendError::Timeout(Duration::from_secs(3)))
}

/// A parameter of a query a script received.
pub fn param(query: &str, key: &str) -> Option<String> {
    Params::parse(query).ok()?.get(key).map(str::to_owned)
}
