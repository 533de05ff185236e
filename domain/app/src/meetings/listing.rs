//! The `<meeting>` element getMeetings shows for a run Switchboard just
//! created, until a poll of its server lists the run with live figures. It is
//! built from the server's create answer and the create's parameters, with the
//! fields a freshly created BBB meeting has.

use switchboard_domain::bbb::params::Params;
use switchboard_domain::bbb::xml::ResponseSummary;
use switchboard_domain::bbb::xml_write::{escape, is_valid_name};

fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// A BBB-shaped `<meeting>` element for a run just created.
pub fn created_meeting_xml(
    meeting_id: &str,
    name: &str,
    internal_id: &str,
    create_time_ms: i64,
    answer: &ResponseSummary,
    params: &Params,
) -> String {
    let field = |key: &str| answer.field(key).unwrap_or_default();
    let create_time = create_time_ms.to_string();
    let mut out = String::with_capacity(768);
    out.push_str("<meeting>");
    element(&mut out, "meetingName", name);
    element(&mut out, "meetingID", meeting_id);
    element(&mut out, "internalMeetingID", internal_id);
    element(&mut out, "createTime", &create_time);
    element(&mut out, "createDate", field("createDate"));
    element(&mut out, "voiceBridge", field("voiceBridge"));
    element(&mut out, "dialNumber", field("dialNumber"));
    element(&mut out, "attendeePW", field("attendeePW"));
    element(&mut out, "moderatorPW", field("moderatorPW"));
    element(&mut out, "running", "false");
    element(
        &mut out,
        "duration",
        answer.field("duration").unwrap_or("0"),
    );
    element(&mut out, "hasUserJoined", "false");
    element(&mut out, "recording", "false");
    element(&mut out, "hasBeenForciblyEnded", "false");
    element(&mut out, "startTime", &create_time);
    element(&mut out, "endTime", "0");
    for count in [
        "participantCount",
        "listenerCount",
        "voiceParticipantCount",
        "videoCount",
    ] {
        element(&mut out, count, "0");
    }
    element(
        &mut out,
        "maxUsers",
        params.non_empty("maxParticipants").unwrap_or("0"),
    );
    element(&mut out, "moderatorCount", "0");
    out.push_str("<attendees/><metadata>");
    for (key, value) in params.iter() {
        let Some(meta) = key.strip_prefix("meta_") else {
            continue;
        };
        // BBB stores meta keys lower-cased; a key that is no XML name is left out.
        let meta = meta.to_ascii_lowercase();
        if is_valid_name(&meta) {
            element(&mut out, &meta, value);
        }
    }
    out.push_str("</metadata>");
    element(
        &mut out,
        "isBreakout",
        if params.get("isBreakout") == Some("true") {
            "true"
        } else {
            "false"
        },
    );
    out.push_str("</meeting>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::bbb::xml::{read_meetings, read_response};

    fn answer() -> ResponseSummary {
        read_response(
            b"<response><returncode>SUCCESS</returncode><meetingID>room</meetingID>\
              <internalMeetingID>abc-1</internalMeetingID><attendeePW>ap</attendeePW>\
              <moderatorPW>mp</moderatorPW><createTime>1700000000000</createTime>\
              <voiceBridge>70001</voiceBridge><dialNumber>613-555-1234</dialNumber>\
              <createDate>Tue Nov 14 22:13:20 UTC 2023</createDate><duration>0</duration>\
              </response>",
        )
        .unwrap()
    }

    #[test]
    fn a_created_meeting_reads_back_like_a_listed_one() {
        let params =
            Params::parse("meetingID=room&name=R%26D&meta_Origin=moodle&meta_bad%20key=x").unwrap();
        let xml = created_meeting_xml(
            "room",
            "R&D",
            "abc-1",
            1_700_000_000_000,
            &answer(),
            &params,
        );
        assert_eq!(
            xml,
            "<meeting><meetingName>R&amp;D</meetingName><meetingID>room</meetingID>\
             <internalMeetingID>abc-1</internalMeetingID><createTime>1700000000000</createTime>\
             <createDate>Tue Nov 14 22:13:20 UTC 2023</createDate><voiceBridge>70001</voiceBridge>\
             <dialNumber>613-555-1234</dialNumber><attendeePW>ap</attendeePW><moderatorPW>mp</moderatorPW>\
             <running>false</running><duration>0</duration><hasUserJoined>false</hasUserJoined>\
             <recording>false</recording><hasBeenForciblyEnded>false</hasBeenForciblyEnded>\
             <startTime>1700000000000</startTime><endTime>0</endTime><participantCount>0</participantCount>\
             <listenerCount>0</listenerCount><voiceParticipantCount>0</voiceParticipantCount>\
             <videoCount>0</videoCount><maxUsers>0</maxUsers><moderatorCount>0</moderatorCount>\
             <attendees/><metadata><origin>moodle</origin></metadata><isBreakout>false</isBreakout></meeting>"
        );
        let wrapped = format!(
            "<response><returncode>SUCCESS</returncode><meetings>{xml}</meetings></response>"
        );
        let read = read_meetings(&wrapped).unwrap();
        assert_eq!(read.meetings.len(), 1);
        assert_eq!(read.meetings[0].meeting_id, "room");
        assert_eq!(read.meetings[0].internal_id, "abc-1");
    }
}
