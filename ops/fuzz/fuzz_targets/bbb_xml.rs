//! A BBB server's answer, as the poller and the facade read it: any bytes
//! are an error or a summary, never a panic, and every meeting read is a
//! slice of the answer. An answer read for relaying (status fields only)
//! is accepted exactly when the whole read accepts it, with the same status.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_domain::bbb::xml::{Fields, read_meetings, read_response, read_response_fields};

fuzz_target!(|data: &[u8]| {
    let whole = read_response(data);
    let status = read_response_fields(data, Fields::Status);
    assert_eq!(whole.is_ok(), status.is_ok());
    if let (Ok(whole), Ok(status)) = (&whole, &status) {
        assert_eq!(whole.returncode, status.returncode);
        assert_eq!(whole.message_key(), status.message_key());
        assert_eq!(whole.field("message"), status.field("message"));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(answer) = read_meetings(text)
    {
        for meeting in &answer.meetings {
            assert!(text.contains(meeting.raw));
        }
    }
});
