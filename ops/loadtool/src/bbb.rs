//! Signed BBB API request paths, as a front-end sends them.

use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};

/// `/bigbluebutton/api/{call}?{query}&checksum=...`, signed with sha1 like
/// every client library does.
pub fn signed(call: &str, query: &str, secret: &str) -> String {
    let checksum = sign(ChecksumAlgorithm::Sha1, call, query, secret);
    if query.is_empty() {
        format!("/bigbluebutton/api/{call}?checksum={checksum}")
    } else {
        format!("/bigbluebutton/api/{call}?{query}&checksum={checksum}")
    }
}

/// A create of the new meeting `meeting_id`.
pub fn create(meeting_id: &str, secret: &str) -> String {
    signed(
        "create",
        &format!("meetingID={meeting_id}&name=Bench+{meeting_id}"),
        secret,
    )
}

/// A viewer's join to `meeting_id`, redirected (no `redirect=false`).
pub fn join(meeting_id: &str, user: u64, secret: &str) -> String {
    signed(
        "join",
        &format!("fullName=User+{user}&meetingID={meeting_id}&role=VIEWER"),
        secret,
    )
}

/// getMeetings.
pub fn get_meetings(secret: &str) -> String {
    signed("getMeetings", "", secret)
}

/// getMeetingInfo of `meeting_id`.
pub fn get_meeting_info(meeting_id: &str, secret: &str) -> String {
    signed("getMeetingInfo", &format!("meetingID={meeting_id}"), secret)
}

/// isMeetingRunning of `meeting_id`.
pub fn is_meeting_running(meeting_id: &str, secret: &str) -> String {
    signed(
        "isMeetingRunning",
        &format!("meetingID={meeting_id}"),
        secret,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::bbb::checksum::{split_checksum, verify};

    #[test]
    fn paths_verify_like_bbb_does() {
        for path in [
            create("m-1", "s"),
            join("m-1", 7, "s"),
            get_meetings("s"),
            get_meeting_info("m-1", "s"),
            is_meeting_running("m-1", "s"),
        ] {
            let (call_path, query) = path.split_once('?').unwrap();
            let call = call_path.rsplit('/').next().unwrap();
            let (rest, checksum) = split_checksum(query);
            assert!(verify(
                call,
                &rest,
                checksum.unwrap(),
                &["s".to_owned()],
                &ChecksumAlgorithm::ALL
            ));
        }
    }
}
