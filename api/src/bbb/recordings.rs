//! The recording calls: getRecordings, publishRecordings, deleteRecordings,
//! updateRecordings. Each sees and changes only the requesting tenant's
//! recordings; another tenant's record id is as unknown as a made-up one.

use super::BbbState;
use super::error::BbbError;
use super::request::ApiRequest;
use super::xml::{XmlWriter, xml_response};
use crate::recordings::listing::recording_xml;
use poem::Response;
use std::collections::BTreeMap;
use switchboard_app::CommandError;
use switchboard_app::records::{RecordingQuery, RecordingRecord};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::recording::RecordingCommand;
use switchboard_recordings::RecordId;

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
    let query = query_from(request);
    let page = state
        .recordings
        .store
        .find_recordings(&query)
        .await
        .map_err(store_failure)?;
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

/// The tenant's live recordings among the request's `recordID` list;
/// `notFound` when none is.
async fn own_recordings(
    state: &BbbState,
    request: &ApiRequest,
) -> Result<Vec<RecordingRecord>, BbbError> {
    let ids = list(request.params.get("recordID"));
    if ids.is_empty() {
        return Err(missing_record_id());
    }
    let mut found = Vec::new();
    for id in ids {
        if RecordId::parse(&id).is_err() {
            continue;
        }
        if let Some(recording) = state
            .recordings
            .store
            .recording(&id)
            .await
            .map_err(store_failure)?
            && recording.tenant == request.tenant
            && recording.state != "deleted"
            && !found
                .iter()
                .any(|r: &RecordingRecord| r.record_id == recording.record_id)
        {
            found.push(recording);
        }
    }
    if found.is_empty() {
        return Err(BbbError::recordings_not_found());
    }
    Ok(found)
}

async fn execute(
    state: &BbbState,
    record_id: &str,
    command: &RecordingCommand,
    metadata: &EventMetadata,
) -> Result<(), BbbError> {
    match state
        .recordings
        .executor
        .execute::<switchboard_domain::recording::Recording>(
            &switchboard_domain::recording::recording_stream(record_id),
            command,
            metadata,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(CommandError::Rejected(err)) => Err(BbbError::validation(err.to_string())),
        Err(CommandError::Store(err)) => Err(store_failure(err)),
    }
}

fn answer(element: &str) -> Response {
    let mut xml = XmlWriter::response("SUCCESS");
    xml.text_element(element, "true");
    xml_response(xml.finish())
}

/// Runs a blocking tree operation; a recording missing from disk is fine
/// (the events still record the intent).
async fn on_disk(
    state: &BbbState,
    record_id: &str,
    op: fn(
        &switchboard_recordings::Layout,
        &RecordId,
    )
        -> Result<Vec<switchboard_recordings::FormatName>, switchboard_recordings::LayoutError>,
) -> Result<(), BbbError> {
    let Ok(id) = RecordId::parse(record_id) else {
        return Ok(());
    };
    let layout = state.recordings.layout.clone();
    let result = tokio::task::spawn_blocking(move || op(&layout, &id))
        .await
        .map_err(|err| BbbError::internal(err.to_string()))?;
    match result {
        Ok(_) | Err(switchboard_recordings::LayoutError::NotFound(_)) => Ok(()),
        Err(err) => {
            tracing::error!(record_id, error = %err, "recording files could not be changed");
            Err(BbbError::internal(
                "The recording files could not be changed; please retry.",
            ))
        }
    }
}

/// `publishRecordings`.
pub async fn publish_recordings(
    state: &BbbState,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    if list(request.params.get("recordID")).is_empty() {
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
    for recording in own_recordings(state, request).await? {
        let op = if publish {
            switchboard_recordings::Layout::publish
        } else {
            switchboard_recordings::Layout::unpublish
        };
        on_disk(state, &recording.record_id, op).await?;
        execute(
            state,
            &recording.record_id,
            &RecordingCommand::SetPublished(publish),
            metadata,
        )
        .await?;
    }
    Ok(answer("published"))
}

/// `deleteRecordings`.
pub async fn delete_recordings(
    state: &BbbState,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    for recording in own_recordings(state, request).await? {
        on_disk(
            state,
            &recording.record_id,
            switchboard_recordings::Layout::delete,
        )
        .await?;
        switchboard_app::recordings::text_tracks::delete_all(
            &state.recordings,
            &recording.record_id,
        )
        .await;
        execute(
            state,
            &recording.record_id,
            &RecordingCommand::Delete,
            metadata,
        )
        .await?;
    }
    Ok(answer("deleted"))
}

/// `updateRecordings`: `meta_k=v` sets, `meta_k=` removes, `protect=true|false`.
pub async fn update_recordings(
    state: &BbbState,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    let recordings = own_recordings(state, request).await?;
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    for (key, value) in request.params.iter() {
        if let Some(name) = key.strip_prefix("meta_").filter(|name| !name.is_empty()) {
            let name = name.to_ascii_lowercase();
            if value.is_empty() {
                remove.push(name);
            } else {
                set.insert(name, value.to_owned());
            }
        }
    }
    let protect = match request.params.get("protect").map(str::trim) {
        Some(value) if value.eq_ignore_ascii_case("true") => Some(true),
        Some(value) if value.eq_ignore_ascii_case("false") => Some(false),
        Some(_) => {
            return Err(BbbError::validation(
                "The protect parameter must be true or false.",
            ));
        }
        None => None,
    };
    for recording in recordings {
        if !set.is_empty() || !remove.is_empty() {
            let command = RecordingCommand::UpdateMetadata {
                set: set.clone(),
                remove: remove.clone(),
            };
            execute(state, &recording.record_id, &command, metadata).await?;
        }
        if let Some(protect) = protect {
            execute(
                state,
                &recording.record_id,
                &RecordingCommand::SetProtected(protect),
                metadata,
            )
            .await?;
        }
    }
    Ok(answer("updated"))
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
    let not_found = || json_failure("noRecordings", &format!("No recording was found for {raw}"));
    let Ok(id) = RecordId::parse(raw.trim()) else {
        return Err(not_found());
    };
    match state.recordings.store.recording(id.as_str()).await {
        Ok(Some(recording))
            if recording.tenant == request.tenant && recording.state != "deleted" =>
        {
            Ok((id, recording))
        }
        Ok(_) => Err(not_found()),
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
