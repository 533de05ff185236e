//! join: a 302 to the meeting's server with every client parameter forwarded
//! byte for byte and re-signed, or the server's XML with `redirect=false`.

use super::error::BbbError;
use super::forward::store_failure;
use super::forward::{self, meeting_and_server, meeting_param};
use super::request::ApiRequest;
use crate::app::AppState;
use poem::Response;
use poem::http::{StatusCode, header};
use std::borrow::Cow;
use std::collections::HashSet;

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
    let query = tenant_query(state, request).await?;
    // BBB reads `redirect` with Java's Boolean.parseBoolean: any value but
    // `true` asks for the XML answer.
    let wants_xml = request
        .params
        .non_empty("redirect")
        .is_some_and(|value| !value.eq_ignore_ascii_case("true"));
    if wants_xml {
        let answer = forward::call(state, &server, "join", &query, None)
            .await
            .map_err(|err| err.to_bbb())?;
        return Ok(forward::relay(answer));
    }
    // Counted only where an attendee limit needs it: not on every join.
    if request
        .tenant_config
        .as_ref()
        .is_some_and(|tenant| tenant.limits.max_attendees.is_some())
    {
        state.directory.note_join(&request.tenant, server.id);
    }
    let location = forward::target(state, &server).signed_url("join", &query);
    Ok(Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .finish())
}

/// The query to forward: the client's as it came, or rebuilt after the
/// tenant's join policy changed it; refused when the tenant's meetings hold
/// as many attendees as it may.
async fn tenant_query<'a>(
    state: &AppState,
    request: &'a ApiRequest,
) -> Result<Cow<'a, str>, BbbError> {
    let Some(tenant) = &request.tenant_config else {
        return Ok(Cow::Borrowed(&request.raw_query));
    };
    if let Some(limit) = tenant.limits.max_attendees {
        let runs: HashSet<String> = state
            .store
            .running_runs_of(&request.tenant)
            .await
            .map_err(store_failure)?
            .into_iter()
            .collect();
        if state.directory.attendees_of_tenant(&request.tenant, &runs) >= limit {
            crate::metrics::record_limit_hit(&request.tenant, "attendees");
            return Err(BbbError::max_participants_reached(limit));
        }
    }
    let mut params = request.params.clone();
    if tenant.policy.apply_join(&mut params) {
        Ok(Cow::Owned(params.to_query()))
    } else {
        Ok(Cow::Borrowed(&request.raw_query))
    }
}
