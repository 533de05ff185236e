//! The BBB API calls, on already verified and decoded parameters.

use switchboard_domain::bbb::params::Params;

use crate::state::{Attendee, CreateOutcome, Meeting, Role, Shared, random_token};
use switchboard_domain::bbb::xml_write::{self as xml, XmlWriter};

/// `notFound` message for unknown meetings (Scalelite's wording).
pub(crate) const NOT_FOUND_MESSAGE: &str =
    "We could not find a meeting with that meeting ID - perhaps the meeting is not yet running?";

/// What a call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// HTTP 200, `text/xml`.
    Xml(String),
    /// HTTP 302 to this URL.
    Redirect(String),
}

impl Reply {
    /// A FAILED answer.
    fn error(key: &str, message: &str) -> Reply {
        Reply::Xml(xml::error(key, message))
    }
}

/// The calls the simulator implements.
pub(crate) const KNOWN_CALLS: &[&str] = &[
    "create",
    "join",
    "end",
    "isMeetingRunning",
    "getMeetingInfo",
    "getMeetings",
    "insertDocument",
    "sendChatMessage",
    "getRecordings",
    "hooks/create",
    "hooks/destroy",
    "hooks/list",
];

/// Runs one API call. `call` must be one of [`KNOWN_CALLS`].
pub(crate) fn dispatch(shared: &Shared, call: &str, params: &Params) -> Reply {
    match call {
        "create" => create(shared, params),
        "join" => join(shared, params),
        "end" => end(shared, params),
        "isMeetingRunning" => is_meeting_running(shared, params),
        "getMeetingInfo" => get_meeting_info(shared, params),
        "getMeetings" => get_meetings(shared),
        "insertDocument" => insert_document(shared, params),
        "sendChatMessage" => send_chat_message(shared, params),
        "getRecordings" => get_recordings(),
        "hooks/create" => Reply::Xml(crate::webhooks::create(shared, params)),
        "hooks/destroy" => Reply::Xml(crate::webhooks::destroy(shared, params)),
        "hooks/list" => Reply::Xml(crate::webhooks::list(shared)),
        _ => Reply::error("unsupportedRequest", "This request is not supported."),
    }
}

/// The index answer (`GET /bigbluebutton/api`).
pub(crate) fn index(shared: &Shared) -> String {
    let mut writer = XmlWriter::response("SUCCESS");
    writer.text("version", "2.0");
    writer.text("apiVersion", "2.0");
    writer.text("bbbVersion", &shared.bbb_version);
    writer.finish()
}

/// The `meetingID` parameter without control characters (as BBB strips
/// them), or the FAILED answer for a missing one.
fn required_meeting_id(params: &Params) -> Result<std::borrow::Cow<'_, str>, Reply> {
    params
        .non_empty("meetingID")
        .map(switchboard_domain::bbb::params::strip_control_chars)
        .ok_or_else(|| {
            Reply::error(
                "missingParamMeetingID",
                "You must specify a meeting ID for the meeting.",
            )
        })
}

fn create(shared: &Shared, params: &Params) -> Reply {
    let meeting_id = match required_meeting_id(params) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let meeting_id: &str = &meeting_id;
    let id_len = meeting_id.chars().count();
    if !(2..=256).contains(&id_len) {
        return Reply::error(
            "validationError",
            "Meeting ID must be between 2 and 256 characters",
        );
    }
    if meeting_id.contains(',') {
        return Reply::error("validationError", "Meeting ID cannot contain ','");
    }
    let Some(name) = params.non_empty("name") else {
        return Reply::error(
            "missingParamName",
            "You must specify a name for the meeting.",
        );
    };
    let mut meetings = shared.meetings();
    let outcome = meetings.create(meeting_id, name, params);
    let Some(meeting) = meetings.get(meeting_id) else {
        return Reply::error("createFailed", "Failed to create meeting");
    };
    match outcome {
        CreateOutcome::Created => {
            crate::webhooks::fire(shared, "meeting-created", meeting, None);
            Reply::Xml(create_answer(meeting, "", ""))
        }
        CreateOutcome::Duplicate => Reply::Xml(create_answer(
            meeting,
            "duplicateWarning",
            "This conference was already in existence and may currently be in progress.",
        )),
        CreateOutcome::IdNotUnique => Reply::error(
            "idNotUnique",
            "A meeting already exists with that meeting ID.  Please use a different meeting ID.",
        ),
    }
}

/// The create answer for a meeting.
fn create_answer(meeting: &Meeting, key: &str, message: &str) -> String {
    let mut w = XmlWriter::response("SUCCESS");
    w.text("meetingID", &meeting.meeting_id);
    w.text("internalMeetingID", &meeting.internal_id);
    w.text("parentMeetingID", &meeting.parent_meeting_id);
    w.text("attendeePW", &meeting.attendee_pw);
    w.text("moderatorPW", &meeting.moderator_pw);
    w.value("createTime", meeting.create_time);
    w.text("voiceBridge", &meeting.voice_bridge);
    w.text("dialNumber", &meeting.dial_number);
    w.text("createDate", &meeting.create_date);
    w.value("hasUserJoined", meeting.has_user_joined);
    w.value("duration", meeting.duration);
    w.value("hasBeenForciblyEnded", false);
    w.text("messageKey", key);
    w.text("message", message);
    w.finish()
}

fn join(shared: &Shared, params: &Params) -> Reply {
    let meeting_id = match required_meeting_id(params) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let meeting_id: &str = &meeting_id;
    let Some(full_name) = params.non_empty("fullName") else {
        return Reply::error(
            "missingParamFullName",
            "You must specify a name for the attendee who will be joining the meeting.",
        );
    };
    let mut meetings = shared.meetings();
    let Some(meeting) = meetings.get_mut(meeting_id) else {
        return Reply::error("notFound", NOT_FOUND_MESSAGE);
    };
    // Like BBB: a valid role wins, otherwise the password decides.
    let role = match params.non_empty("role").and_then(Role::parse) {
        Some(role) => role,
        None => match params.non_empty("password") {
            Some(pw) if pw == meeting.moderator_pw => Role::Moderator,
            Some(pw) if pw == meeting.attendee_pw => Role::Viewer,
            Some(_) => {
                return Reply::error("invalidPassword", "You must enter a valid password.");
            }
            None => {
                return Reply::error(
                    "invalidPassword",
                    "You must either send the valid role of the user, or the password.",
                );
            }
        },
    };
    if meeting.max_users > 0 && meeting.attendees.len() as u64 >= meeting.max_users {
        return Reply::error(
            "maxParticipantsReached",
            "The number of participants allowed for this meeting has been reached.",
        );
    }
    let customdata = params
        .iter()
        .filter_map(|(key, value)| {
            let rest = key.strip_prefix("userdata-")?;
            Some((rest.to_owned(), value.to_owned()))
        })
        .collect();
    let is_presenter = role == Role::Moderator && !meeting.has_presenter;
    meeting.has_presenter |= is_presenter;
    let user_id = format!("w_{}", random_token(12));
    meeting.attendees.push(Attendee {
        user_id: user_id.clone(),
        full_name: full_name.to_owned(),
        role,
        is_presenter,
        customdata,
    });
    meeting.has_user_joined = true;
    if let Some(user) = meeting.attendees.last() {
        crate::webhooks::fire(shared, "user-joined", meeting, Some(user));
    }
    meeting.last_join_params = Some(
        params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let internal_id = meeting.internal_id.clone();
    drop(meetings);

    let session_token = random_token(16);
    let url = format!(
        "{}/html5client/join?sessionToken={session_token}",
        shared.origin
    );
    // Java's Boolean.parseBoolean: only "true" (any case) is true.
    let redirect = params
        .non_empty("redirect")
        .is_none_or(|v| v.eq_ignore_ascii_case("true"));
    if redirect {
        return Reply::Redirect(url);
    }
    let mut w = XmlWriter::response("SUCCESS");
    w.text("messageKey", "successfullyJoined");
    w.text("message", "You have joined successfully.");
    w.text("meeting_id", &internal_id);
    w.text("user_id", &user_id);
    w.text("auth_token", &random_token(12));
    w.text("session_token", &session_token);
    w.text("guestStatus", "ALLOW");
    w.text("url", &url);
    Reply::Xml(w.finish())
}

fn end(shared: &Shared, params: &Params) -> Reply {
    let meeting_id = match required_meeting_id(params) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let meeting_id: &str = &meeting_id;
    let Some(ended) = shared.meetings().remove(meeting_id) else {
        return Reply::error("notFound", NOT_FOUND_MESSAGE);
    };
    crate::webhooks::fire_ended(shared, &ended);
    crate::callbacks::fire_end_callbacks(shared, ended);
    Reply::Xml(xml::success(
        "sentEndMeetingRequest",
        "A request to end the meeting was sent.  Please wait a few seconds, and then use the \
         getMeetingInfo or isMeetingRunning API calls to verify that it was ended.",
    ))
}

fn is_meeting_running(shared: &Shared, params: &Params) -> Reply {
    let meeting_id = match required_meeting_id(params) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let meeting_id: &str = &meeting_id;
    let running = shared
        .meetings()
        .get(meeting_id)
        .is_some_and(Meeting::running);
    let mut w = XmlWriter::response("SUCCESS");
    w.value("running", running);
    Reply::Xml(w.finish())
}

fn get_meeting_info(shared: &Shared, params: &Params) -> Reply {
    let meeting_id = match required_meeting_id(params) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let meeting_id: &str = &meeting_id;
    let meetings = shared.meetings();
    let Some(meeting) = meetings.get(meeting_id) else {
        return Reply::error("notFound", NOT_FOUND_MESSAGE);
    };
    let mut w = XmlWriter::response("SUCCESS");
    meeting_fields(&mut w, meeting);
    Reply::Xml(w.finish())
}

fn get_meetings(shared: &Shared) -> Reply {
    let meetings = shared.meetings();
    if meetings.len() == 0 {
        drop(meetings);
        let mut w = XmlWriter::response("SUCCESS");
        w.empty("meetings");
        w.text("messageKey", "noMeetings");
        w.text("message", "no meetings were found on this server");
        return Reply::Xml(w.finish());
    }
    let mut w = XmlWriter::response("SUCCESS");
    w.open("meetings");
    for meeting in meetings.sorted() {
        w.open("meeting");
        meeting_fields(&mut w, meeting);
        w.close("meeting");
    }
    w.close("meetings");
    Reply::Xml(w.finish())
}

/// The children getMeetingInfo and getMeetings' `<meeting>` share.
fn meeting_fields(w: &mut XmlWriter, m: &Meeting) {
    w.text("meetingName", &m.name);
    w.text("meetingID", &m.meeting_id);
    w.text("internalMeetingID", &m.internal_id);
    w.value("createTime", m.create_time);
    w.text("createDate", &m.create_date);
    w.text("voiceBridge", &m.voice_bridge);
    w.text("dialNumber", &m.dial_number);
    w.text("attendeePW", &m.attendee_pw);
    w.text("moderatorPW", &m.moderator_pw);
    w.value("running", m.running());
    w.value("duration", m.duration);
    w.value("hasUserJoined", m.has_user_joined);
    w.value("recording", false);
    w.value("hasBeenForciblyEnded", false);
    w.value("startTime", m.create_time);
    w.value("endTime", 0);
    w.value("participantCount", m.attendees.len());
    w.value("listenerCount", 0);
    w.value("voiceParticipantCount", 0);
    w.value("videoCount", 0);
    w.value("maxUsers", m.max_users);
    w.value("moderatorCount", m.moderator_count());
    w.open("attendees");
    for a in &m.attendees {
        w.open("attendee");
        w.text("userID", &a.user_id);
        w.text("fullName", &a.full_name);
        w.text("role", a.role.as_str());
        w.value("isPresenter", a.is_presenter);
        w.value("isListeningOnly", false);
        w.value("hasJoinedVoice", false);
        w.value("hasVideo", false);
        w.text("clientType", "HTML5");
        w.map("customdata", &a.customdata);
        w.close("attendee");
    }
    w.close("attendees");
    w.map("metadata", &m.metadata);
    w.value("isBreakout", m.is_breakout);
    if m.is_breakout {
        w.text("parentMeetingID", &m.parent_meeting_id);
        w.value("sequence", 1);
        w.value("freeJoin", false);
    }
}

fn insert_document(shared: &Shared, params: &Params) -> Reply {
    let meeting_id = match required_meeting_id(params) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let meeting_id: &str = &meeting_id;
    if shared.meetings().get(meeting_id).is_none() {
        return Reply::error("notFound", NOT_FOUND_MESSAGE);
    }
    Reply::Xml(xml::success("", "Presentation is being uploaded"))
}

fn send_chat_message(shared: &Shared, params: &Params) -> Reply {
    let meeting_id = match required_meeting_id(params) {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let meeting_id: &str = &meeting_id;
    if params.non_empty("message").is_none() {
        return Reply::error("missingParamMessage", "You must provide a message.");
    }
    if shared.meetings().get(meeting_id).is_none() {
        return Reply::error("notFound", NOT_FOUND_MESSAGE);
    }
    Reply::Xml(xml::success("", ""))
}

/// The simulator keeps no recordings.
fn get_recordings() -> Reply {
    let mut w = XmlWriter::response("SUCCESS");
    w.empty("recordings");
    w.text("messageKey", "noRecordings");
    w.text("message", "There are no recordings for the meeting(s).");
    Reply::Xml(w.finish())
}
