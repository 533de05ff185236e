//! Reading BBB's XML answers, which are untrusted: a well-formed `<response>`
//! is required, and anything else is an error, never a panic.

use quick_xml::Reader;
use quick_xml::events::Event;
use std::collections::HashMap;
use thiserror::Error;

/// Why an answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XmlError {
    /// Not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// Well-formed, but not a BBB `<response>` with a `returncode`.
    #[error("not a BBB response: {0}")]
    NotAResponse(&'static str),
}

/// The top-level fields of a `<response>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseSummary {
    /// SUCCESS or FAILED.
    pub returncode: String,
    /// Simple (text-only) children of `<response>`, by name.
    pub fields: HashMap<String, String>,
}

impl ResponseSummary {
    /// True for `SUCCESS`.
    pub fn is_success(&self) -> bool {
        self.returncode == "SUCCESS"
    }

    /// A top-level field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The messageKey, if any and not empty.
    pub fn message_key(&self) -> Option<&str> {
        self.field("messageKey").filter(|key| !key.is_empty())
    }
}

/// One `<meeting>` of a getMeetings answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingEntry<'a> {
    /// The element exactly as the server sent it.
    pub raw: &'a str,
    /// Its meetingID.
    pub meeting_id: String,
    /// Its internalMeetingID.
    pub internal_id: String,
    /// participantCount.
    pub participants: u64,
    /// videoCount.
    pub video: u64,
    /// voiceParticipantCount.
    pub voice: u64,
    /// createTime (ms since the epoch), 0 when absent.
    pub create_time_ms: i64,
    /// A breakout room's parent (its internal meeting id), from
    /// `parentMeetingID`; `None` for other meetings.
    pub parent_id: Option<String>,
    /// Its voiceBridge, if listed.
    pub voice_bridge: Option<String>,
    /// Whether it is being recorded (`<recording>true</recording>`).
    pub recording: bool,
}

/// A parsed getMeetings answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeetingsAnswer<'a> {
    /// The top-level fields.
    pub summary: ResponseSummary,
    /// The meetings listed.
    pub meetings: Vec<MeetingEntry<'a>>,
}

/// Whether text at `depth` (elements open) can be part of a value kept: a
/// top-level field's (inside `<response>`'s child) or, in a `<meeting>`,
/// one of its fields'.
fn text_kept(depth: usize, in_meeting: bool) -> bool {
    depth == 2 || (in_meeting && depth == 4)
}

fn malformed(err: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(err.to_string())
}

/// Resolves an entity or character reference's name (`amp`, `#38`, `#x26`).
fn resolve_reference(name: &str) -> String {
    quick_xml::escape::unescape(&format!("&{name};"))
        .map(|text| text.into_owned())
        .unwrap_or_default()
}

/// Which top-level fields of an answer are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// Every simple child of `<response>`.
    All,
    /// Only `returncode`, `messageKey` and `message`: enough to tell
    /// success from failure, for an answer relayed as it is (the whole
    /// answer is still checked).
    Status,
}

/// The fields [`Fields::Status`] keeps.
const STATUS_FIELDS: [&str; 3] = ["returncode", "messageKey", "message"];

/// Reads the top-level fields of a BBB answer.
pub fn read_response(body: &[u8]) -> Result<ResponseSummary, XmlError> {
    read_response_fields(body, Fields::All)
}

/// Checks a BBB answer whole and reads the top-level fields asked for.
pub fn read_response_fields(body: &[u8], fields: Fields) -> Result<ResponseSummary, XmlError> {
    let text = std::str::from_utf8(body).map_err(malformed)?;
    read_answer(text, fields).map(|answer| answer.summary)
}

/// Reads a BBB answer with its `<meetings>` list (empty for other calls).
///
/// Element names are borrowed from the body, not copied: only the depth
/// and whether the open top-level element is `<meetings>` are kept (the
/// reader checks that every end tag matches its start tag), so reading an
/// answer allocates for the fields and meetings it keeps, not per element.
pub fn read_meetings(body: &str) -> Result<MeetingsAnswer<'_>, XmlError> {
    read_answer(body, Fields::All)
}

/// Reads an answer, its `<meetings>` list and the top-level fields asked for.
fn read_answer(body: &str, fields: Fields) -> Result<MeetingsAnswer<'_>, XmlError> {
    let mut reader = Reader::from_str(body);
    // Every end tag must match its start tag (quick-xml's default, relied
    // on here: an end tag's name stands for the element it closes).
    reader.config_mut().check_end_names = true;
    reader.config_mut().allow_unmatched_ends = false;
    let mut answer = MeetingsAnswer::default();
    // How many elements are open, and whether the top-level one is <meetings>.
    let mut depth = 0usize;
    let mut in_meetings = false;
    let mut text = String::new();
    let mut saw_root = false;
    let mut meeting_start = 0usize;
    let mut current: Option<MeetingEntry<'_>> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(start) => {
                let name = start.name();
                let name = name.as_ref();
                match depth {
                    0 => {
                        if saw_root || name != "response" {
                            return Err(XmlError::NotAResponse(
                                "the root element must be <response>",
                            ));
                        }
                        saw_root = true;
                    }
                    1 => in_meetings = name == "meetings",
                    2 if in_meetings && name == "meeting" => {
                        meeting_start = before;
                        current = Some(MeetingEntry {
                            raw: "",
                            meeting_id: String::new(),
                            internal_id: String::new(),
                            participants: 0,
                            video: 0,
                            voice: 0,
                            create_time_ms: 0,
                            parent_id: None,
                            voice_bridge: None,
                            recording: false,
                        });
                    }
                    _ => {}
                }
                depth += 1;
                text.clear();
            }
            Event::End(end) => {
                let Some(inner) = depth.checked_sub(1) else {
                    return Err(XmlError::Malformed("unbalanced end tag".into()));
                };
                depth = inner;
                let name = end.name();
                let name: &str = name.as_ref();
                if depth == 1 {
                    if fields == Fields::All || STATUS_FIELDS.contains(&name) {
                        answer
                            .summary
                            .fields
                            .insert(name.to_owned(), text.trim().to_owned());
                    }
                    in_meetings = false;
                }
                if depth == 3
                    && let Some(entry) = current.as_mut()
                {
                    match name {
                        "meetingID" => entry.meeting_id = text.clone(),
                        "internalMeetingID" => entry.internal_id = text.trim().to_owned(),
                        "participantCount" => entry.participants = text.trim().parse().unwrap_or(0),
                        "videoCount" => entry.video = text.trim().parse().unwrap_or(0),
                        "voiceParticipantCount" => entry.voice = text.trim().parse().unwrap_or(0),
                        "createTime" => entry.create_time_ms = text.trim().parse().unwrap_or(0),
                        "recording" => entry.recording = text.trim() == "true",
                        "voiceBridge" if !text.trim().is_empty() => {
                            entry.voice_bridge = Some(text.trim().to_owned());
                        }
                        "parentMeetingID" => {
                            let parent = text.trim();
                            if !parent.is_empty() && parent != "bbb-none" {
                                entry.parent_id = Some(parent.to_owned());
                            }
                        }
                        _ => {}
                    }
                }
                if depth == 2 && name == "meeting" {
                    let end = reader.buffer_position() as usize;
                    if let Some(mut entry) = current.take() {
                        entry.raw = body.get(meeting_start..end).unwrap_or("");
                        answer.meetings.push(entry);
                    }
                }
                text.clear();
            }
            Event::Empty(empty) => {
                if depth == 0 {
                    return Err(XmlError::NotAResponse(
                        "the root element must be <response>",
                    ));
                }
                if depth == 1 {
                    let name = empty.name();
                    let name: &str = name.as_ref();
                    if fields == Fields::All || STATUS_FIELDS.contains(&name) {
                        answer.summary.fields.insert(name.to_owned(), String::new());
                    }
                }
            }
            // Text is kept only where a field or a meeting's field can end:
            // the text of deeper elements is let go at their end tags.
            Event::Text(content) if text_kept(depth, current.is_some()) => {
                text.push_str(&content.xml10_content())
            }
            Event::CData(content) if text_kept(depth, current.is_some()) => {
                text.push_str(content.as_ref())
            }
            Event::GeneralRef(reference) if text_kept(depth, current.is_some()) => {
                text.push_str(&resolve_reference(&reference.into_inner()))
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {}
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if depth != 0 {
        return Err(XmlError::Malformed(
            "document ended inside an element".into(),
        ));
    }
    if !saw_root {
        return Err(XmlError::NotAResponse("no <response> element"));
    }
    match answer.summary.fields.get("returncode") {
        Some(code) if !code.is_empty() => answer.summary.returncode = code.clone(),
        _ => return Err(XmlError::NotAResponse("no <returncode>")),
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEETINGS: &str = "<response><returncode>SUCCESS</returncode><meetings>\
        <meeting><meetingName>A &amp; B</meetingName><meetingID>room&amp;1</meetingID>\
        <internalMeetingID>abc-1</internalMeetingID><participantCount>3</participantCount>\
        <videoCount>2</videoCount><voiceParticipantCount>1</voiceParticipantCount><createTime>77</createTime>\
        <attendees><attendee><userID>w_1</userID></attendee></attendees><metadata/></meeting>\
        <meeting><meetingID>room-2</meetingID><internalMeetingID>def-2</internalMeetingID>\
        <participantCount>0</participantCount></meeting></meetings></response>";

    #[test]
    fn reads_meetings_and_keeps_their_raw_xml() {
        let answer = read_meetings(MEETINGS).unwrap();
        assert!(answer.summary.is_success());
        assert_eq!(answer.meetings.len(), 2);
        assert_eq!(answer.meetings[0].meeting_id, "room&1");
        assert_eq!(answer.meetings[0].participants, 3);
        assert_eq!(
            (
                answer.meetings[0].video,
                answer.meetings[0].voice,
                answer.meetings[0].create_time_ms
            ),
            (2, 1, 77)
        );
        assert!(
            answer.meetings[0]
                .raw
                .starts_with("<meeting><meetingName>A &amp; B")
        );
        assert!(answer.meetings[0].raw.ends_with("<metadata/></meeting>"));
        assert_eq!(answer.meetings[1].internal_id, "def-2");
    }

    #[test]
    fn reads_top_level_fields() {
        let summary = read_response(
            b"<?xml version=\"1.0\"?><response><returncode>FAILED</returncode>\
              <messageKey>notFound</messageKey><message>gone</message></response>",
        )
        .unwrap();
        assert!(!summary.is_success());
        assert_eq!(summary.message_key(), Some("notFound"));
        assert_eq!(summary.field("message"), Some("gone"));
    }

    #[test]
    fn deeper_text_never_reaches_a_field() {
        let body = b"<response><returncode>SUCCESS</returncode>\
            <attendees><attendee><fullName>A &amp; B</fullName></attendee></attendees>\
            <meetingName>x &amp; y<![CDATA[ z]]></meetingName><metadata/></response>";
        let summary = read_response(body).unwrap();
        assert_eq!(summary.field("meetingName"), Some("x & y z"));
        assert_eq!(summary.field("attendees"), Some(""));
        assert_eq!(summary.field("metadata"), Some(""));
    }

    #[test]
    fn status_fields_are_read_from_an_answer_checked_whole() {
        let body = b"<response><returncode>FAILED</returncode><meetingName>m</meetingName>\
            <messageKey>notFound</messageKey><message>gone</message><metadata/></response>";
        let summary = read_response_fields(body, Fields::Status).unwrap();
        assert!(!summary.is_success());
        assert_eq!(summary.message_key(), Some("notFound"));
        assert_eq!(summary.field("message"), Some("gone"));
        assert_eq!(summary.field("meetingName"), None);
        assert_eq!(summary.field("metadata"), None);
        for garbage in [
            &b"<response><returncode>SUCCESS</returncode><a><b></a></b></response>"[..],
            b"<response><returncode>SUCCESS</returncode><meetingName>open",
            b"<response><meetingName>no code</meetingName></response>",
        ] {
            assert!(
                read_response_fields(garbage, Fields::Status).is_err(),
                "{}",
                String::from_utf8_lossy(garbage)
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [
            "<<garbage",
            "",
            "<html><body>502</body></html>",
            "<response><returncode>SUCCESS</returncode>",
            "<response><message>no code</message></response>",
            "<response><returncode>SUCCESS</returncode></response><response/>",
            "<response><meetings><meeting><a></b></meeting></meetings></response>",
        ] {
            assert!(read_meetings(body).is_err(), "{body:?}");
        }
        assert!(read_response(&[0xff, 0xfe]).is_err());
    }
}
