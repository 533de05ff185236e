//! The `<recording>` element of getRecordings, with playback URLs on
//! Switchboard's public URL (one-time links for protected recordings).

use std::fmt::Write as _;
use switchboard_app::recordings::RecordingService;
use switchboard_app::records::RecordingRecord;
use switchboard_domain::bbb::xml_write::escape;
use switchboard_domain::recording_ids::RecordId;
use switchboard_recordings::metadata::{playback_url, rebase_url};

/// Whether `name` can stand as an XML element name as it is.
fn xml_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.to_ascii_lowercase().starts_with("xml")
}

/// Writes one `<recording>` element.
pub fn recording_xml(out: &mut String, recording: &RecordingRecord, service: &RecordingService) {
    let base = service.public_url();
    let _ = write!(
        out,
        "<recording><recordID>{}</recordID><meetingID>{}</meetingID>\
         <internalMeetingID>{}</internalMeetingID><name>{}</name>\
         <isBreakout>{}</isBreakout><published>{}</published><state>{}</state>\
         <startTime>{}</startTime><endTime>{}</endTime><participants>{}</participants>\
         <protected>{}</protected>",
        escape(&recording.record_id),
        escape(&recording.meeting_id),
        escape(&recording.internal_meeting_id),
        escape(&recording.name),
        recording.is_breakout,
        recording.published,
        escape(&recording.state),
        recording.start_time_ms,
        recording.end_time_ms,
        recording.participants,
        recording.protected,
    );
    out.push_str("<metadata>");
    for (key, value) in &recording.metadata {
        if xml_name_ok(key) {
            let _ = write!(out, "<{key}>{}</{key}>", escape(value));
        }
    }
    out.push_str("</metadata>");
    // As BBB: a breakout room's recording names its parent and number, a
    // parent's names its rooms.
    if let Some(breakout) = &recording.breakout {
        let _ = write!(
            out,
            "<breakout><parentId>{}</parentId><sequence>{}</sequence></breakout>",
            escape(&breakout.parent_id),
            breakout.sequence
        );
    }
    if !recording.breakout_rooms.is_empty() {
        out.push_str("<breakoutRooms>");
        for room in &recording.breakout_rooms {
            let _ = write!(out, "<breakoutRoom>{}</breakoutRoom>", escape(room));
        }
        out.push_str("</breakoutRooms>");
    }
    out.push_str("<playback>");
    let id = RecordId::parse(&recording.record_id).ok();
    for format in &recording.formats {
        let url = match (&id, recording.protected) {
            (Some(id), true) => service.protected_link(id, &format.format),
            _ => playback_url(&format.url, base, &format.format, &recording.record_id),
        };
        let minutes = (format.length_ms + 30_000) / 60_000;
        let _ = write!(
            out,
            "<format><type>{}</type><url>{}</url><processingTime>{}</processingTime><length>{}</length>",
            escape(&format.format),
            escape(&url),
            format.processing_time_ms,
            minutes,
        );
        if !format.images.is_empty() {
            out.push_str("<preview><images>");
            // An image whose URL is not an http(s) URL or a path is left out.
            for (image, url) in format
                .images
                .iter()
                .filter_map(|image| Some((image, rebase_url(&image.url, base).ok()?)))
            {
                out.push_str("<image");
                if let Some(width) = image.width {
                    let _ = write!(out, " width=\"{width}\"");
                }
                if let Some(height) = image.height {
                    let _ = write!(out, " height=\"{height}\"");
                }
                if let Some(alt) = &image.alt {
                    let _ = write!(out, " alt=\"{}\"", escape(alt));
                }
                let _ = write!(out, ">{}</image>", escape(&url));
            }
            out.push_str("</images></preview>");
        }
        out.push_str("</format>");
    }
    out.push_str("</playback></recording>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_names_are_checked() {
        assert!(xml_name_ok("bbb-origin"));
        assert!(xml_name_ok("gl_listed"));
        assert!(!xml_name_ok("1a"));
        assert!(!xml_name_ok("a\"b"));
        assert!(!xml_name_ok("xmlns"));
        assert!(!xml_name_ok(""));
    }
}
