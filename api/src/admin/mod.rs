//! The operators' side: the admin API (OpenAPI, bearer tokens with scopes,
//! problem-JSON errors), its Swagger UI, and the operations it shares with
//! the CLI.

pub mod agents;
pub mod api;
pub mod callbacks;
mod conformance;
pub mod facade;
pub mod model;
pub mod tenants;
pub mod usage;

use poem::{Endpoint, EndpointExt, IntoResponse};
use poem_openapi::OpenApiService;

/// Where the admin API is mounted.
pub const BASE_PATH: &str = "/api/v1";

/// The OpenAPI service of the admin API.
pub fn openapi() -> OpenApiService<
    (
        api::AdminApi,
        tenants::TenantsApi,
        callbacks::CallbacksApi,
        agents::AgentsApi,
        usage::UsageApi,
    ),
    (),
> {
    OpenApiService::new(
        (
            api::AdminApi,
            tenants::TenantsApi,
            callbacks::CallbacksApi,
            agents::AgentsApi,
            usage::UsageApi,
        ),
        "Switchboard admin API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Operate a Switchboard BigBlueButton load balancer: servers, meetings, the event log, \
             cluster status, tokens, tenants, callback deliveries and node agents. Authenticate with `Authorization: Bearer TOKEN` \
             (`switchboard tokens create NAME --scope admin|read|node`).",
    )
    .server(BASE_PATH)
}

/// The spec as JSON (what `switchboard openapi` prints and `openapi/` holds).
pub fn spec_json() -> String {
    openapi().spec()
}

/// Any error left over (unknown token, unknown route, wrong method) as a
/// problem document.
async fn problem_from_error(err: poem::Error) -> poem::Response {
    let status = err.status();
    let title = status.canonical_reason().unwrap_or("Error");
    let body = api::problem(status.as_u16(), title, err.to_string());
    poem::Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(serde_json::to_string(&body).unwrap_or_default())
        .into_response()
}

/// The admin API endpoint, to nest at [`BASE_PATH`].
pub fn endpoint() -> impl Endpoint {
    let service = openapi();
    let spec = service.spec_endpoint();
    let conformance = conformance::Conformance::from_spec(&service.spec());
    poem::Route::new()
        .at("/openapi.json", spec)
        .nest("/", service)
        .with(crate::metrics::AdminMetrics::default())
        .catch_all_error(problem_from_error)
        .with(conformance)
}

/// The Swagger UI, to nest at `/api/docs`. Its page (3 MB, the UI's
/// scripts inlined) is made when asked for, not held for the life of the
/// process: it is opened rarely.
pub fn swagger_ui() -> impl Endpoint {
    poem::endpoint::make_sync(|_| poem::web::Html(openapi().swagger_ui_html()))
}
