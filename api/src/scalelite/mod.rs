//! Scalelite's own HTTP interfaces, so its operators' scripts and dial-in
//! gateways work unchanged: the admin API at `/scalelite/api/` and the
//! FreeSWITCH dial-plan endpoint at `/fsapi`.
//!
//! The admin API is signed as Scalelite signs it: `checksum` over the call
//! name, the query without the checksum and one of the load balancer's
//! secrets (never a tenant's). GET for the `get*` calls with `?id=`, POST
//! with a JSON body for the others. Its failures before the call runs
//! (checksum, content type, unknown call, missing object) are BBB XML, as
//! Scalelite's; the calls' own answers are Scalelite's JSON shapes with its
//! statuses and messages.

mod dial_plan;
mod servers;
mod shapes;
mod tenants;

pub use dial_plan::{FsapiState, fsapi};

use crate::bbb::error::BbbError;
use poem::http::{Method, StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde_json::Value;
use std::sync::Arc;
use switchboard_app::admin::{AdminService, Principal};
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, split_checksum, verify};

/// The actor Scalelite API changes are recorded under.
pub const ACTOR: &str = "scalelite-api";

/// What the Scalelite admin API needs.
pub struct ScaleliteApi {
    /// Whether it is served (`[scalelite] admin_api`).
    pub enabled: bool,
    /// The admin use cases.
    pub admin: Arc<AdminService>,
    /// The load balancer's secrets (global and extra; no tenant's).
    pub secrets: Vec<String>,
    /// Checksum algorithms accepted.
    pub algorithms: Vec<ChecksumAlgorithm>,
    /// Largest JSON body read (only once the checksum passed).
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for ScaleliteApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScaleliteApi")
            .field("enabled", &self.enabled)
            .field("secrets", &format!("<{} redacted>", self.secrets.len()))
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// One call: its name, its parameters (query and JSON body merged, as
/// Rails does) and who makes it.
struct Call {
    params: serde_json::Map<String, Value>,
    principal: Principal,
}

impl Call {
    /// A top-level parameter as text (`id`, ...).
    fn text(&self, key: &str) -> String {
        text_of(self.params.get(key))
    }

    /// The object a call requires (`server`, `tenant`), if given.
    fn object(&self, key: &str) -> Option<&serde_json::Map<String, Value>> {
        match self.params.get(key) {
            Some(Value::Object(object)) if !object.is_empty() => Some(object),
            _ => None,
        }
    }
}

/// Rails' ParameterMissing for a required object, as Scalelite renders it.
fn missing(key: &str) -> Response {
    BbbError::internal(format!("param is missing or the value is empty: {key}")).into_response()
}

/// A JSON value as Rails' params give it as text (`null`: empty).
fn text_of(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// A JSON answer with its status.
fn json(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(body.to_string())
}

/// `/scalelite/api/:call`.
#[handler]
pub async fn scalelite_call(
    request: &Request,
    Path(call): Path<String>,
    body: Body,
    api: Data<&Arc<ScaleliteApi>>,
) -> Response {
    let reads = matches!(
        call.as_str(),
        "getServers" | "getServerInfo" | "getTenants" | "getTenantInfo"
    );
    let writes = matches!(
        call.as_str(),
        "addServer"
            | "updateServer"
            | "deleteServer"
            | "panicServer"
            | "addTenant"
            | "updateTenant"
            | "deleteTenant"
    );
    let method = request.method();
    let served = reads && method == Method::GET || writes && method == Method::POST;
    if !api.enabled || !served {
        return BbbError::unsupported_request().into_response();
    }
    // Scalelite's order: the content type, then the checksum; the body is
    // read only for a signed call.
    // Rails checks the type of a body that is there (no length and no
    // chunks: none).
    let empty = match request.header(header::CONTENT_LENGTH) {
        Some(length) => length.trim() == "0",
        None => request.header(header::TRANSFER_ENCODING).is_none(),
    };
    if method == Method::POST && !empty && !is_json(request) {
        return BbbError::unsupported_content_type().into_response();
    }
    let raw_query = request.uri().query().unwrap_or_default();
    let (signed, checksum) = split_checksum(raw_query);
    let verified = checksum
        .is_some_and(|checksum| verify(&call, &signed, checksum, &api.secrets, &api.algorithms));
    if !verified {
        return BbbError::checksum().into_response();
    }
    let body = match read_body(request, body, api.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    // Rails merges the query over the body: a signed query's `id` is the
    // one acted on, whatever the (unsigned) body says.
    let mut params = query_params(raw_query);
    match body {
        Some(Value::Object(object)) => {
            for (key, value) in object {
                params.entry(key).or_insert(value);
            }
        }
        Some(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": "the JSON body must be an object" }),
            );
        }
        None => {}
    }
    let call_of = Call {
        params,
        principal: Principal::admin(ACTOR.to_owned()),
    };
    let admin = api.admin.as_ref();
    match call.as_str() {
        "getServers" => servers::get_servers(admin).await,
        "getServerInfo" => servers::get_server_info(admin, &call_of).await,
        "addServer" => servers::add_server(admin, &call_of).await,
        "updateServer" => servers::update_server(admin, &call_of).await,
        "deleteServer" => servers::delete_server(admin, &call_of).await,
        "panicServer" => servers::panic_server(admin, &call_of).await,
        "getTenants" => tenants::get_tenants(admin).await,
        "getTenantInfo" => tenants::get_tenant_info(admin, &call_of).await,
        "addTenant" => tenants::add_tenant(admin, &call_of).await,
        "updateTenant" => tenants::update_tenant(admin, &call_of).await,
        _ => tenants::delete_tenant(admin, &call_of).await,
    }
}

/// Whether the request says its body is JSON.
fn is_json(request: &Request) -> bool {
    request
        .content_type()
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The JSON body of a POST, if any, up to `limit` bytes.
async fn read_body(request: &Request, body: Body, limit: usize) -> Result<Option<Value>, Response> {
    let bytes = body.into_bytes_limit(limit).await.map_err(|_| {
        json(
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::json!({ "error": format!("the body is larger than {limit} bytes") }),
        )
    })?;
    if request.method() != Method::POST || bytes.is_empty() {
        return Ok(None);
    }
    if !is_json(request) {
        return Err(BbbError::unsupported_content_type().into_response());
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|err| {
        json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": format!("the body is not JSON: {err}") }),
        )
    })
}

/// The query's parameters (the checksum too; it is never read again).
fn query_params(raw_query: &str) -> serde_json::Map<String, Value> {
    url::form_urlencoded::parse(raw_query.as_bytes())
        .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rails_params_read_as_text() {
        assert_eq!(text_of(None), "");
        assert_eq!(text_of(Some(&Value::Null)), "");
        assert_eq!(text_of(Some(&serde_json::json!("abc"))), "abc");
        assert_eq!(text_of(Some(&serde_json::json!(1.5))), "1.5");
        assert_eq!(text_of(Some(&serde_json::json!(true))), "true");
    }

    #[test]
    fn query_parameters_are_decoded() {
        let params = query_params("id=a%20b&checksum=00");
        assert_eq!(params["id"], "a b");
    }
}
