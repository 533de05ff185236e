//! HTTP plumbing: path dispatch, failure modes, latency, request bodies,
//! checksum verification and parameter decoding.

use std::sync::Arc;
use std::time::Duration;

use poem::http::{Method, StatusCode, header};
use poem::{Request, Response};
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, split_checksum, verify};
use switchboard_domain::bbb::params::Params;

use crate::FailureMode;
use crate::api::{self, KNOWN_CALLS, Reply};
use crate::state::Shared;
use switchboard_domain::bbb::xml_write as xml;

/// Request bodies beyond this size are refused (slides arrive as URLs, so
/// real bodies are small).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long a "timing out" request hangs.
const TIMEOUT_HANG: Duration = Duration::from_secs(3600);

/// The page served at `/html5client/join`, so following a join redirect works.
const CLIENT_PAGE: &str = "<!DOCTYPE html><html><head><title>BigBlueButton</title></head>\
<body><p>Simulated BigBlueButton HTML5 client.</p></body></html>";

/// Answers one HTTP request.
pub(crate) async fn handle(shared: Arc<Shared>, mut req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/html5client/join" {
        return Response::builder()
            .status(StatusCode::OK)
            .content_type("text/html; charset=utf-8")
            .body(CLIENT_PAGE);
    }
    if path == "/metrics" {
        return node_metrics(&shared, &req);
    }
    let Some(rest) = path.strip_prefix("/bigbluebutton/api") else {
        return not_found();
    };
    if rest.is_empty() || rest == "/" {
        apply_latency(&shared).await;
        return xml_response(api::index(&shared));
    }
    let Some(call) = rest.strip_prefix('/') else {
        return not_found();
    };
    shared.count_request(call);
    apply_latency(&shared).await;
    match shared.failure() {
        FailureMode::None => {}
        FailureMode::RefuseCreate => {
            if call == "create" {
                return xml_response(xml::error(
                    "simulatedError",
                    "The simulator refuses to create meetings.",
                ));
            }
        }
        FailureMode::ErrorResponse => {
            return xml_response(xml::error("simulatedError", "A simulated error."));
        }
        FailureMode::Timeout => {
            tokio::time::sleep(TIMEOUT_HANG).await;
            return xml_response(xml::error("simulatedError", "A simulated timeout."));
        }
        FailureMode::Garbage => {
            return Response::builder()
                .status(StatusCode::OK)
                .content_type("text/xml")
                .body("<<garbage");
        }
        FailureMode::Http500 => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain")
                .body("Internal Server Error");
        }
    }
    match api_call(&shared, call, &mut req).await {
        Reply::Xml(body) => xml_response(body),
        Reply::Redirect(url) => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, url)
            .body(""),
    }
}

/// `/metrics`: node_exporter's answer, or 401 without the required basic
/// auth, or 500 while failing.
fn node_metrics(shared: &Shared, req: &Request) -> Response {
    let mut node = shared.node();
    node.requests += 1;
    if let Some(required) = &node.authorization {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if given != Some(required.as_str()) {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::WWW_AUTHENTICATE, "Basic realm=\"node_exporter\"")
                .body("Unauthorized");
        }
    }
    if node.failing {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .content_type("text/plain")
            .body("Internal Server Error");
    }
    Response::builder()
        .status(StatusCode::OK)
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(node.render())
}

/// Sleeps for the configured latency.
async fn apply_latency(shared: &Shared) {
    let latency = shared.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// HTTP 200 `text/xml`.
fn xml_response(body: String) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type("text/xml")
        .body(body)
}

/// HTTP 404 for paths outside the API.
fn not_found() -> Response {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .content_type("text/plain")
        .body("Not Found")
}

/// A request body as far as the API cares.
enum Body {
    /// GET, or POST without a body.
    None,
    /// `application/x-www-form-urlencoded`: more parameters.
    Form(String),
    /// `text/xml` / `application/xml`: slides, accepted and ignored.
    Xml,
}

/// The kind of a `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContentKind {
    Missing,
    Form,
    Xml,
    Other,
}

fn content_kind(content_type: Option<&str>) -> ContentKind {
    let Some(content_type) = content_type else {
        return ContentKind::Missing;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "" => ContentKind::Missing,
        "application/x-www-form-urlencoded" => ContentKind::Form,
        "text/xml" | "application/xml" => ContentKind::Xml,
        _ => ContentKind::Other,
    }
}

/// Whether `call` accepts `method`.
fn method_allowed(call: &str, method: &Method) -> bool {
    match call {
        "join" | "sendChatMessage" => method == Method::GET,
        "insertDocument" => method == Method::POST,
        _ => method == Method::GET || method == Method::POST,
    }
}

fn unsupported_content_type() -> Reply {
    Reply::Xml(xml::error(
        "unsupportedContentType",
        "POST request Content-Type is missing or unsupported",
    ))
}

/// Reads the body of a POST as the call allows it.
async fn read_body(call: &str, req: &mut Request) -> Result<Body, Reply> {
    if req.method() != Method::POST {
        return Ok(Body::None);
    }
    let kind = content_kind(req.content_type());
    let takes_xml = matches!(call, "create" | "insertDocument");
    if call == "insertDocument" && kind != ContentKind::Xml {
        return Err(unsupported_content_type());
    }
    let bytes = req
        .take_body()
        .into_bytes_limit(MAX_BODY)
        .await
        .map_err(|_| Reply::Xml(xml::error("invalidRequestBody", "Invalid request body")))?;
    match kind {
        ContentKind::Form => String::from_utf8(bytes.to_vec())
            .map(Body::Form)
            .map_err(|_| {
                Reply::Xml(xml::error(
                    "validationError",
                    "The request body is not valid UTF-8",
                ))
            }),
        ContentKind::Xml if takes_xml => Ok(Body::Xml),
        ContentKind::Missing | ContentKind::Other if bytes.is_empty() => Ok(Body::None),
        _ => Err(unsupported_content_type()),
    }
}

/// Verifies, decodes and runs one API call.
async fn api_call(shared: &Shared, call: &str, req: &mut Request) -> Reply {
    if !KNOWN_CALLS.contains(&call) || !method_allowed(call, req.method()) {
        return Reply::Xml(xml::error(
            "unsupportedRequest",
            "This request is not supported.",
        ));
    }
    let raw_query = req.uri().query().unwrap_or_default().to_owned();
    let body = match read_body(call, req).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let form = match &body {
        Body::Form(text) => Some(text.as_str()),
        Body::None | Body::Xml => None,
    };
    let (query_rest, query_sum) = split_checksum(&raw_query);
    let (form_rest, form_sum) = match form {
        Some(text) => {
            let (rest, sum) = split_checksum(text);
            (Some(rest), sum)
        }
        None => (None, None),
    };
    let checksum_ok = query_sum.or(form_sum).is_some_and(|sum| {
        let check =
            |signed: &str| verify(call, signed, sum, &shared.secrets, &ChecksumAlgorithm::ALL);
        check(&query_rest) || form_rest.as_deref().is_some_and(check)
    });
    if !checksum_ok {
        return Reply::Xml(xml::error(
            "checksumError",
            "You did not pass the checksum security check",
        ));
    }
    let params = match decode_params(&query_rest, form_rest.as_deref()) {
        Ok(params) => params,
        Err(message) => return Reply::Xml(xml::error("validationError", &message)),
    };
    api::dispatch(shared, call, &params)
}

/// Decodes the query's and the form body's parameters (checksums removed);
/// a parameter in both is an error.
fn decode_params(query: &str, form: Option<&str>) -> Result<Params, String> {
    let mut params = Params::parse(query).map_err(|err| err.to_string())?;
    if let Some(form) = form {
        let body = Params::parse(form).map_err(|err| err.to_string())?;
        params.merge(body).map_err(|err| err.to_string())?;
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_classified() {
        assert_eq!(content_kind(None), ContentKind::Missing);
        assert_eq!(
            content_kind(Some("application/x-www-form-urlencoded; charset=UTF-8")),
            ContentKind::Form
        );
        assert_eq!(content_kind(Some("Text/XML")), ContentKind::Xml);
        assert_eq!(content_kind(Some("application/xml")), ContentKind::Xml);
        assert_eq!(content_kind(Some("application/json")), ContentKind::Other);
    }

    #[test]
    fn methods_per_call() {
        assert!(method_allowed("create", &Method::POST));
        assert!(method_allowed("create", &Method::GET));
        assert!(!method_allowed("join", &Method::POST));
        assert!(!method_allowed("insertDocument", &Method::GET));
        assert!(!method_allowed("end", &Method::DELETE));
    }

    #[test]
    fn duplicate_between_query_and_body_is_an_error() {
        assert!(decode_params("a=1", Some("a=2")).is_err());
        let params = decode_params("a=1", Some("b=2")).unwrap();
        assert_eq!(params.get("b"), Some("2"));
        assert!(decode_params("a=%zz", None).is_err());
    }
}
