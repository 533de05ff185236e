//! The BBB API facade: `/bigbluebutton/api` and `/bigbluebutton/api/{call}`,
//! answering every front-end exactly as one BBB server would.

pub(crate) mod body;
pub mod error;
mod hooks;
mod meetings;
pub mod recordings;
pub mod request;
pub mod tenancy;
pub mod xml;

use error::BbbError;
use poem::http::Method;
use poem::web::{Data, Path};
use poem::{Body, IntoResponse, Request, Response, handler};
use request::{RawRequest, Verifier, verify_request};
use std::sync::Arc;
use std::time::Instant;
use switchboard_app::meetings::ApiRequest;
use switchboard_domain::events::EventMetadata;

/// What the BBB API facade works with.
#[derive(Debug)]
pub struct BbbState {
    /// The meeting use cases.
    pub meetings: Arc<switchboard_app::meetings::MeetingService>,
    /// Recordings: the tree, the store, callbacks.
    pub recordings: Arc<switchboard_app::recordings::RecordingService>,
    /// Callbacks and webhooks.
    pub callbacks: Arc<switchboard_app::callbacks::CallbackService>,
    /// Secrets the default tenant's front-ends sign with.
    pub secrets: Vec<String>,
    /// Accepted checksum algorithms.
    pub checksum_algorithms: Vec<switchboard_domain::bbb::checksum::ChecksumAlgorithm>,
    /// Largest query plus body.
    pub max_request_bytes: usize,
    /// Largest putRecordingTextTrack upload.
    pub text_track_max_bytes: usize,
    /// getMeetings answers (false: always no meetings).
    pub get_meetings: bool,
    /// getRecordings needs meetingID or recordID.
    pub get_recordings_filtered: bool,
}

/// The version Switchboard reports, like a BBB server's index answer.
const BBB_VERSION: &str = "3.0";

/// `GET /bigbluebutton/api`: no checksum, version information.
#[handler]
pub fn index() -> Response {
    index_response()
}

fn index_response() -> Response {
    let started = Instant::now();
    let mut xml = xml::XmlWriter::response("SUCCESS");
    xml.text_element("version", "2.0")
        .text_element("apiVersion", "2.0")
        .text_element("bbbVersion", BBB_VERSION);
    let response = xml::xml_response(xml.finish());
    crate::metrics::record_bbb_request("index", "success", started.elapsed());
    response
}

/// The routes, with `/bigbluebutton/api/{call}` answered before them: the
/// call front-ends make most (join, isMeetingRunning, getMeetingInfo) skips
/// the router's match, the shared state put in the request's extensions
/// and the boxed endpoints between them (issue 22). A call name with a
/// percent sign (the router decodes it) and every other path go to `rest`.
pub struct BbbFirst<E> {
    /// The API's state.
    pub state: Arc<BbbState>,
    /// Every other route.
    pub rest: E,
}

impl<E: poem::Endpoint> poem::Endpoint for BbbFirst<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let call = req
            .uri()
            .path()
            .strip_prefix("/bigbluebutton/api/")
            .filter(|call| !call.is_empty() && !call.contains(['/', '%']))
            .map(str::to_owned);
        match call {
            Some(call) => {
                let body = req.take_body();
                Ok(answer(&req, None, &call, body, &self.state).await)
            }
            None => self.rest.call(req).await.map(IntoResponse::into_response),
        }
    }
}

/// `/bigbluebutton/api/{call}`: verifies and dispatches one call, counting
/// it and timing it by call and outcome (see [`crate::metrics::BBB_REQUESTS`]).
#[handler]
pub async fn api_call(
    req: &Request,
    Path(call): Path<String>,
    body: Body,
    Data(state): Data<&Arc<BbbState>>,
) -> Response {
    answer(req, None, &call, body, state).await
}

/// `/bigbluebutton/api/hooks/{action}`: bbb-webhooks' calls.
#[handler]
pub async fn hooks_call(
    req: &Request,
    Path(action): Path<String>,
    body: Body,
    Data(state): Data<&Arc<BbbState>>,
) -> Response {
    answer(req, None, &format!("hooks/{action}"), body, state).await
}

/// `/t/{tenant}/bigbluebutton/api/hooks/{action}`: bbb-webhooks' calls of
/// the tenant named in the path.
#[handler]
pub async fn tenant_hooks_call(
    req: &Request,
    Path((tenant, action)): Path<(String, String)>,
    body: Body,
    Data(state): Data<&Arc<BbbState>>,
) -> Response {
    answer(req, Some(&tenant), &format!("hooks/{action}"), body, state).await
}

/// `/t/{tenant}/bigbluebutton/api`: the index, for a tenant's front-end.
#[handler]
pub fn tenant_index(Path(_tenant): Path<String>) -> Response {
    index_response()
}

/// `/t/{tenant}/bigbluebutton/api/{call}`: a call of the tenant named in the path.
#[handler]
pub async fn tenant_api_call(
    req: &Request,
    Path((tenant, call)): Path<(String, String)>,
    body: Body,
    Data(state): Data<&Arc<BbbState>>,
) -> Response {
    answer(req, Some(&tenant), &call, body, state).await
}

async fn answer(
    req: &Request,
    tenant: Option<&str>,
    call: &str,
    body: Body,
    state: &BbbState,
) -> Response {
    let started = Instant::now();
    let (outcome, response) = match handle(req, tenant, call, body, state).await {
        Ok(response) if response.status() == poem::http::StatusCode::FOUND => {
            ("redirect", response)
        }
        Ok(response) => ("success", response),
        Err(err) => (err.key, err.into_response()),
    };
    crate::metrics::record_bbb_request(
        crate::metrics::bbb_call_label(call),
        outcome,
        started.elapsed(),
    );
    response
}

async fn handle(
    req: &Request,
    path_tenant: Option<&str>,
    call: &str,
    body: Body,
    state: &BbbState,
) -> Result<Response, BbbError> {
    let is_post = match *req.method() {
        Method::GET => false,
        Method::POST => true,
        _ => return Err(BbbError::unsupported_request()),
    };
    let max = if call == "putRecordingTextTrack" {
        state.text_track_max_bytes.max(state.max_request_bytes)
    } else {
        state.max_request_bytes
    };
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(0);
    if declared > max {
        body::discard_rest(body).await;
        return Err(BbbError::too_large(max));
    }
    let body = if is_post {
        body::read_limited(body, max)
            .await
            .map_err(|error| match error {
                body::BodyError::TooLarge => BbbError::too_large(max),
                body::BodyError::Broken => {
                    BbbError::validation("The request body could not be read.")
                }
            })?
    } else {
        body::discard_rest(body).await;
        bytes::Bytes::new()
    };
    let content_type = req
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let raw = RawRequest {
        call,
        is_post,
        query: req.uri().query().unwrap_or(""),
        content_type,
        body: &body,
    };
    let host = req
        .headers()
        .get(poem::http::header::HOST)
        .and_then(|value| value.to_str().ok());
    let tenant = tenancy::resolve(state, path_tenant, host)?;
    let verifier = Verifier {
        secrets: tenant.secrets(state),
        algorithms: &state.checksum_algorithms,
        max_bytes: max,
    };
    let mut request = verify_request(raw, verifier)?;
    request.tenant = tenant.id;
    request.tenant_config = tenant.config;
    let request = request;
    let metadata = || EventMetadata {
        actor: format!("bbb-api:{}", request.tenant),
        request_id: Some(request_id(req)),
        tenant: Some(request.tenant.to_string()),
    };
    let meetings = &state.meetings;
    // The calls that run most (join, isMeetingRunning, getMeetingInfo,
    // getMeetings) are awaited in place; the others on the heap, so this
    // future (moved and boxed on its way through the endpoint) is the size
    // of the small ones, not of create's (issue 22: the copies of it were
    // about a tenth of a join's instructions).
    match call {
        "create" => Box::pin(meetings::create(meetings, &request, &metadata())).await,
        "join" => meetings::join(meetings, &request).await,
        "end" => Box::pin(meetings::end(meetings, &request, &metadata())).await,
        "isMeetingRunning" => meetings::is_meeting_running(meetings, &request).await,
        "getMeetingInfo" | "sendChatMessage" | "insertDocument" => {
            meetings::relay(meetings, &request).await
        }
        "getMeetings" if !state.get_meetings => Ok(xml::xml_response(
            switchboard_app::meetings::get_meetings::no_meetings(),
        )),
        "getMeetings" => meetings::get_meetings(meetings, &request.tenant).await,
        _ => Box::pin(other_call(req, call, state, &request, &metadata)).await,
    }
}

/// The recordings' and hooks' calls (see [`handle`]).
async fn other_call(
    req: &Request,
    call: &str,
    state: &BbbState,
    request: &ApiRequest,
    metadata: &(dyn Fn() -> EventMetadata + Sync),
) -> Result<Response, BbbError> {
    match call {
        "getRecordings" => recordings::get_recordings(state, request).await,
        "publishRecordings" => recordings::publish_recordings(state, request, &metadata()).await,
        "deleteRecordings" => recordings::delete_recordings(state, request, &metadata()).await,
        "updateRecordings" => recordings::update_recordings(state, request, &metadata()).await,
        "getRecordingTextTracks" => Ok(recordings::get_recording_text_tracks(state, request).await),
        "putRecordingTextTrack" => Ok(recordings::put_recording_text_track(state, request).await),
        "hooks/create" => {
            let raw_query = req.uri().query().unwrap_or("");
            hooks::create(&state.callbacks, request, raw_query, &metadata()).await
        }
        "hooks/destroy" => hooks::destroy(&state.callbacks, request, &metadata()).await,
        "hooks/list" => hooks::list(&state.callbacks, request).await,
        _ => Err(BbbError::unsupported_request()),
    }
}

/// The request id from `X-Request-Id`, or a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
