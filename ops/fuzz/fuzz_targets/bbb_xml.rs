//! A BBB server's answer, as the poller and the facade read it: any bytes
//! are an error or a summary, never a panic, and every meeting read is a
//! slice of the answer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_domain::bbb::xml::{read_meetings, read_response};

fuzz_target!(|data: &[u8]| {
    if let Ok(summary) = read_response(data) {
        let _ = summary.is_success();
        let _ = summary.message_key();
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(answer) = read_meetings(text)
    {
        for meeting in &answer.meetings {
            assert!(text.contains(meeting.raw));
        }
    }
});
