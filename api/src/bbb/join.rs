//! join: a 302 to the meeting's server with every client parameter forwarded
//! byte for byte and re-signed, or the server's XML with `redirect=false`.

use super::error::BbbError;
use super::forward::{self, meeting_and_server, meeting_param};
use super::request::ApiRequest;
use crate::app::AppState;
use poem::Response;
use poem::http::{StatusCode, header};

/// Handles `join`.
pub async fn join(state: &AppState, request: &ApiRequest) -> Result<Response, BbbError> {
    let meeting_id = meeting_param(request)?;
    if request.params.non_empty("fullName").is_none() {
        return Err(BbbError::missing_param(
            "missingParamFullName",
            "You must specify a name for the attendee who will be joining the meeting.",
        ));
    }
    let (_, server) = meeting_and_server(state, &request.tenant, &meeting_id).await?;
    // BBB reads `redirect` with Java's Boolean.parseBoolean: any value but
    // `true` asks for the XML answer.
    let wants_xml = request
        .params
        .non_empty("redirect")
        .is_some_and(|value| !value.eq_ignore_ascii_case("true"));
    if wants_xml {
        let answer = forward::call(state, &server, "join", &request.raw_query, None)
            .await
            .map_err(|err| err.to_bbb())?;
        return Ok(forward::relay(answer));
    }
    let location = forward::target(state, &server).signed_url("join", &request.raw_query);
    Ok(Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .finish())
}
