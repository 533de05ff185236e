//! The recording calls: getRecordings, publishRecordings, deleteRecordings,
//! updateRecordings. Each sees and changes only the requesting tenant's
//! recordings; another tenant's record id is as unknown as a made-up one.

use super::BbbState;
use super::error::BbbError;
use super::request::ApiRequest;
use super::xml::{XmlWriter, xml_response};
use crate::recordings::listing::recording_xml;
use poem::Response;
use switchboard_app::recordings::calls::{RecordingCallError, RecordingUpdate};
use switchboard_app::records::{RecordingQuery, RecordingRecord};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::recording_ids::RecordId;

/// Most recordings one page holds.
pub const MAX_PAGE: u64 = 100;

fn store_failure(err: impl std::fmt::Display) -> BbbError {
    tracing::warn!(error = %err, "recording store failed");
    BbbError::internal("The recordings could not be read; please retry.")
}

/// A comma list's non-empty items.
fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The getRecordings query a request asks for.
pub fn query_from(request: &ApiRequest) -> RecordingQuery {
    let params = &request.params;
    let mut query = RecordingQuery::new(request.tenant.clone());
    query.record_id_prefixes = list(params.get("recordID"));
    // As BBB does: with recordIDs given, meetingID is ignored.
    if query.record_id_prefixes.is_empty() {
        query.meeting_ids = list(params.get("meetingID"));
    }
    let states = list(params.get("state"));
    if states.iter().any(|state| state.eq_ignore_ascii_case("any")) {
        query.states = None;
    } else if !states.is_empty() {
        query.states = Some(states.iter().map(|s| s.to_ascii_lowercase()).collect());
    }
    for (key, value) in params.iter() {
        if let Some(name) = key.strip_prefix("meta_").filter(|name| !name.is_empty()) {
            query
                .meta
                .push((name.to_ascii_lowercase(), value.to_owned()));
        }
    }
    let number = |key: &str| params.get(key).and_then(|v| v.trim().parse::<i64>().ok());
    let offset = number("offset");
    let limit = number("limit");
    if params.get("offset").is_some() || params.get("limit").is_some() {
        query.offset = offset.unwrap_or(0).max(0) as u64;
        query.limit = Some(limit.unwrap_or(MAX_PAGE as i64).clamp(1, MAX_PAGE as i64) as u64);
    }
    query
}

/// `getRecordings`.
pub async fn get_recordings(state: &BbbState, request: &ApiRequest) -> Result<Response, BbbError> {
    if state.get_recordings_filtered
        && request.params.non_empty("meetingID").is_none()
        && request.params.non_empty("recordID").is_none()
    {
        return Err(BbbError::missing_parameters());
    }
    let query = query_from(request);
    let page = state.recordings.find(&query).await.map_err(store_failure)?;
    let mut body = String::with_capacity(512 + page.recordings.len() * 1024);
    for recording in &page.recordings {
        recording_xml(&mut body, recording, &state.recordings);
    }
    let mut xml = XmlWriter::response("SUCCESS");
    xml.raw("<recordings>").raw(&body).raw("</recordings>");
    if let Some(total) = page.total {
        xml.text_element("totalElements", &total.to_string());
    }
    if page.recordings.is_empty() {
        xml.text_element("messageKey", "noRecordings")
            .text_element("message", "There are no recordings for the meeting(s).");
    }
    Ok(xml_response(xml.finish()))
}

fn missing_record_id() -> BbbError {
    BbbError::missing_param("missingParamRecordID", "You must specify a recordID.")
}

impl From<RecordingCallError> for BbbError {
    fn from(err: RecordingCallError) -> Self {
        match err {
            RecordingCallError::MissingRecordId => missing_record_id(),
            RecordingCallError::NotFound => BbbError::recordings_not_found(),
            RecordingCallError::Rejected(message) => BbbError::validation(message),
            err @ RecordingCallError::Files => BbbError::internal(err.to_string()),
            RecordingCallError::Store(err) => store_failure(err),
        }
    }
}

/// `<response><returncode>SUCCESS</returncode><ELEMENT>VALUE</ELEMENT></response>`.
fn answer(element: &str, value: bool) -> Response {
    let mut xml = XmlWriter::response("SUCCESS");
    xml.text_element(element, if value { "true" } else { "false" });
    xml_response(xml.finish())
}

/// `publishRecordings`: answers the state it was asked for, as BBB does.
pub async fn publish_recordings(
    state: &BbbState,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    let ids = list(request.params.get("recordID"));
    if ids.is_empty() {
        return Err(missing_record_id());
    }
    let publish = match request.params.get("publish").map(str::trim) {
        Some(value) if value.eq_ignore_ascii_case("true") => true,
        Some(value) if value.eq_ignore_ascii_case("false") => false,
        _ => {
            return Err(BbbError::missing_param(
                "missingParamPublish",
                "You must specify a publish value true or false.",
            ));
        }
    };
    state
        .recordings
        .set_published(&request.tenant, &ids, publish, metadata)
        .await?;
    Ok(answer("published", publish))
}

/// `deleteRecordings`.
pub async fn delete_recordings(
    state: &BbbState,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    let ids = list(request.params.get("recordID"));
    state
        .recordings
        .delete(&request.tenant, &ids, metadata)
        .await?;
    Ok(answer("deleted", true))
}

/// `updateRecordings`: `meta_k=v` sets, `meta_k=` removes, `protect=true|false`.
pub async fn update_recordings(
    state: &BbbState,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    let ids = list(request.params.get("recordID"));
    let mut update = RecordingUpdate::default();
    for (key, value) in request.params.iter() {
        if let Some(name) = key.strip_prefix("meta_").filter(|name| !name.is_empty()) {
            let name = name.to_ascii_lowercase();
            if value.is_empty() {
                update.remove.push(name);
            } else {
                update.set.insert(name, value.to_owned());
            }
        }
    }
    update.protect = match request.params.get("protect").map(str::trim) {
        Some(value) if value.eq_ignore_ascii_case("true") => Some(true),
        Some(value) if value.eq_ignore_ascii_case("false") => Some(false),
        Some(_) => {
            return Err(BbbError::validation(
                "The protect parameter must be true or false.",
            ));
        }
        None => None,
    };
    state
        .recordings
        .update(&request.tenant, &ids, &update, metadata)
        .await?;
    Ok(answer("updated", true))
}

fn json_response(value: &serde_json::Value) -> Response {
    Response::builder()
        .content_type("application/json")
        .body(value.to_string())
}

fn json_failure(key: &str, message: &str) -> Response {
    json_response(&serde_json::json!({
        "response": {"returncode": "FAILED", "messageKey": key, "message": message}
    }))
}

/// The tenant's live recording named by `recordID` (a single id).
async fn own_recording(
    state: &BbbState,
    request: &ApiRequest,
) -> Result<(RecordId, RecordingRecord), Response> {
    let Some(raw) = request.params.non_empty("recordID") else {
        return Err(json_failure(
            "missingParamRecordID",
            "You must specify a recordID.",
        ));
    };
    match state.recordings.own_recording(&request.tenant, raw).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(json_failure(
            "noRecordings",
            &format!("No recording was found for {raw}"),
        )),
        Err(err) => {
            tracing::warn!(error = %err, "recording store failed");
            Err(json_failure(
                "internalError",
                "The recording could not be read; please retry.",
            ))
        }
    }
}

/// `getRecordingTextTracks` (JSON, as BBB answers it).
pub async fn get_recording_text_tracks(state: &BbbState, request: &ApiRequest) -> Response {
    let (id, _) = match own_recording(state, request).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let service = &state.recordings;
    let tracks: Vec<serde_json::Value> =
        switchboard_app::recordings::text_tracks::list(service, &id)
            .await
            .into_iter()
            .map(|track| {
                serde_json::json!({
                    "href": format!("{}/captions/{id}/{}", service.public_url(), track.file_name()),
                    "kind": track.kind,
                    "label": track.label,
                    "lang": track.lang,
                    "source": track.source,
                })
            })
            .collect();
    json_response(&serde_json::json!({
        "response": {"returncode": "SUCCESS", "tracks": tracks}
    }))
}

/// The `file` part of a multipart body.
async fn uploaded_file(request: &ApiRequest) -> Option<Vec<u8>> {
    let body = request.multipart.as_ref()?;
    let boundary = multer::parse_boundary(&body.content_type).ok()?;
    let bytes = body.body.clone();
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some("file") {
            return field.bytes().await.ok().map(|b| b.to_vec());
        }
    }
    None
}

/// `putRecordingTextTrack`: multipart upload of a caption file; `recordID`,
/// `kind`, `lang` and `label` in the signed query.
pub async fn put_recording_text_track(state: &BbbState, request: &ApiRequest) -> Response {
    use switchboard_app::recordings::text_tracks::{TextTrack, TrackError, put};
    let (id, _) = match own_recording(state, request).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let param = |key: &str| request.params.non_empty(key).map(str::to_owned);
    let (Some(kind), Some(lang)) = (param("kind"), param("lang")) else {
        return json_failure("paramError", "You must specify kind and lang.");
    };
    let label = param("label").unwrap_or_else(|| lang.clone());
    let Some(file) = uploaded_file(request).await else {
        return json_failure("empty_uploaded_text_track", "Empty uploaded text track.");
    };
    let track = TextTrack {
        kind,
        lang,
        label,
        source: "upload".to_owned(),
    };
    match put(&state.recordings, &id, track, &file).await {
        Ok(()) => json_response(&serde_json::json!({
            "response": {
                "messageKey": "upload_text_track_success",
                "message": "Text track uploaded successfully",
                "recordId": id.as_str(),
                "returncode": "SUCCESS"
            }
        })),
        Err(TrackError::InvalidKind) => json_failure(
            "invalidKind",
            "Invalid kind parameter, expected='subtitles|captions'",
        ),
        Err(TrackError::InvalidLang) => json_failure("invalidLang", "Malformed lang param"),
        Err(TrackError::Empty) => {
            json_failure("empty_uploaded_text_track", "Empty uploaded text track.")
        }
        Err(TrackError::Io(reason)) => {
            tracing::error!(record_id = %id, %reason, "cannot store a text track");
            json_failure("upload_text_track_failed", "Text track upload failed.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_drop_empty_items() {
        assert_eq!(list(Some(" a, ,b,")), vec!["a", "b"]);
        assert!(list(None).is_empty());
    }
}
