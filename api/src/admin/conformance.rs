//! HTTP niceties the admin API's clients (and its spec fuzzer) rely on:
//!
//! - a request with a body method (POST, PUT, PATCH) and no `Content-Type`
//!   is read as JSON (an empty body as `{}`), instead of a 415 for what
//!   `curl -X POST` sends;
//! - a `405 Method Not Allowed` carries the `Allow` header RFC 9110 asks
//!   for, listing the methods the spec gives the path;
//! - a JSON body giving a number or `true`/`false` where the spec says
//!   string is refused (400), where poem-openapi would turn it into a
//!   string (`{"name": false}` made a token named `false`).

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

/// The largest body read here to see whether it is empty.
const MAX_BODY: usize = 1024 * 1024;

/// The middleware; `spec` is the admin API's OpenAPI document (JSON).
#[derive(Debug, Clone)]
pub struct Conformance {
    paths: Vec<(Vec<String>, String)>,
    /// Per path template and method, the request body's JSON schema.
    bodies: Vec<(Vec<String>, String, serde_json::Value)>,
    /// `components.schemas`, for `$ref`s.
    schemas: serde_json::Value,
}

impl Conformance {
    /// Reads the paths and their methods from the spec.
    pub fn from_spec(spec: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let mut paths = Vec::new();
        let mut bodies = Vec::new();
        if let Some(map) = spec.get("paths").and_then(|paths| paths.as_object()) {
            for (template, operations) in map {
                for (method, operation) in operations.as_object().into_iter().flatten() {
                    let json_schema = operation
                        .pointer("/requestBody/content")
                        .and_then(|content| content.as_object())
                        .and_then(|content| {
                            content
                                .iter()
                                .find(|(kind, _)| kind.starts_with("application/json"))
                        })
                        .and_then(|(_, media)| media.get("schema"));
                    if let Some(schema) = json_schema {
                        bodies.push((
                            segments_of(template),
                            method.to_ascii_uppercase(),
                            schema.clone(),
                        ));
                    }
                }
                let mut methods: Vec<String> = operations
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                methods.sort();
                paths.push((segments_of(template), methods.join(", ")));
            }
        }
        let schemas = spec
            .pointer("/components/schemas")
            .cloned()
            .unwrap_or_default();
        Self {
            paths,
            bodies,
            schemas,
        }
    }

    /// The `Allow` value of a request path (with or without the API's base).
    fn allow(&self, path: &str) -> Option<&str> {
        self.paths
            .iter()
            .find(|(template, _)| path_matches(template, path))
            .map(|(_, allow)| allow.as_str())
    }

    /// Where a JSON body gives a number or boolean for a string, the
    /// property's path.
    fn coerced_string(&self, method: &Method, path: &str, body: &[u8]) -> Option<String> {
        let (_, _, schema) = self.bodies.iter().find(|(template, wanted, _)| {
            wanted == method.as_str() && path_matches(template, path)
        })?;
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        self.find_coerced(schema, &value, "", 0)
    }

    fn find_coerced(
        &self,
        schema: &serde_json::Value,
        value: &serde_json::Value,
        at: &str,
        depth: usize,
    ) -> Option<String> {
        use serde_json::Value;
        if depth > 16 {
            return None;
        }
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => self
                .schemas
                .get(reference.rsplit('/').next().unwrap_or_default())?,
            None => schema,
        };
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            return all
                .iter()
                .find_map(|part| self.find_coerced(part, value, at, depth + 1));
        }
        match (schema.get("type").and_then(Value::as_str), value) {
            (Some("string"), Value::Number(_) | Value::Bool(_)) => Some(at.to_owned()),
            (_, Value::Object(fields)) => {
                let properties = schema.get("properties")?;
                fields.iter().find_map(|(name, field)| {
                    self.find_coerced(
                        properties.get(name)?,
                        field,
                        &format!("{at}/{name}"),
                        depth + 1,
                    )
                })
            }
            (_, Value::Array(items)) => {
                let item_schema = schema.get("items")?;
                items.iter().enumerate().find_map(|(index, item)| {
                    self.find_coerced(item_schema, item, &format!("{at}/{index}"), depth + 1)
                })
            }
            _ => None,
        }
    }
}

fn segments_of(template: &str) -> Vec<String> {
    template
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

/// Whether a request path (with or without the API's base) is an instance
/// of a path template.
fn path_matches(template: &[String], path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let Some(tail) = segments.len().checked_sub(template.len()) else {
        return false;
    };
    template
        .iter()
        .zip(&segments[tail..])
        .all(|(want, got)| want.starts_with('{') || want == got)
        && (tail == 0 || segments[..tail] == ["api", "v1"])
}

impl<E: Endpoint> Middleware<E> for Conformance {
    type Output = ConformanceEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ConformanceEndpoint {
            inner,
            conformance: self.clone(),
        }
    }
}

/// An endpoint wrapped by [`Conformance`].
#[derive(Debug)]
pub struct ConformanceEndpoint<E> {
    inner: E,
    conformance: Conformance,
}

impl<E: Endpoint> Endpoint for ConformanceEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let has_body_method = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
        if has_body_method {
            let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
            let json = content_type
                .as_ref()
                .and_then(|value| value.to_str().ok())
                .is_none_or(|value| value.trim_start().starts_with("application/json"));
            if json {
                let body = match req.take_body().into_bytes_limit(MAX_BODY).await {
                    Ok(bytes)
                        if content_type.is_none() && bytes.iter().all(u8::is_ascii_whitespace) =>
                    {
                        bytes::Bytes::from_static(b"{}")
                    }
                    Ok(bytes) => bytes,
                    Err(_) => {
                        return Ok(super::problem_from_error(poem::Error::from_string(
                            format!("the body is larger than {MAX_BODY} bytes"),
                            StatusCode::PAYLOAD_TOO_LARGE,
                        ))
                        .await);
                    }
                };
                if let Some(at) = self.conformance.coerced_string(req.method(), &path, &body) {
                    return Ok(super::problem_from_error(poem::Error::from_string(
                        format!("`{at}` must be a JSON string, not a number or true/false"),
                        StatusCode::BAD_REQUEST,
                    ))
                    .await);
                }
                if content_type.is_none() {
                    req.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
                req.set_body(body);
            }
        }
        let result = self.inner.call(req).await.map(IntoResponse::into_response);
        let allow = |status: StatusCode| {
            (status == StatusCode::METHOD_NOT_ALLOWED)
                .then(|| self.conformance.allow(&path))
                .flatten()
                .and_then(|allow| HeaderValue::from_str(allow).ok())
        };
        match result {
            Ok(mut response) => {
                if let Some(value) = allow(response.status()) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                Ok(response)
            }
            Err(err) => match allow(err.status()) {
                Some(value) => {
                    let mut response = err.into_response();
                    response.headers_mut().insert(header::ALLOW, value);
                    Ok(response)
                }
                None => Err(err),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_methods_of_the_matching_path() {
        let conformance = Conformance::from_spec(
            r#"{"paths":{"/servers":{"get":{},"post":{}},"/servers/{id}":{"get":{},"patch":{},"delete":{}}}}"#,
        );
        assert_eq!(
            conformance.allow("/api/v1/servers"),
            Some("GET, HEAD, POST")
        );
        assert_eq!(
            conformance.allow("/servers/42"),
            Some("DELETE, GET, HEAD, PATCH")
        );
        assert_eq!(conformance.allow("/api/v1/nothing"), None);
    }

    #[test]
    fn numbers_and_booleans_for_strings_are_found() {
        let conformance = Conformance::from_spec(
            r##"{"paths":{"/tokens":{"post":{"requestBody":{"content":{"application/json; charset=utf-8":
                {"schema":{"$ref":"#/components/schemas/NewToken"}}}}}}},
               "components":{"schemas":{"NewToken":{"type":"object","properties":{
                 "name":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}},
                 "limit":{"type":"integer"}}}}}}"##,
        );
        let found = |body: &str| {
            conformance.coerced_string(&Method::POST, "/api/v1/tokens", body.as_bytes())
        };
        assert_eq!(found(r#"{"name": false}"#).as_deref(), Some("/name"));
        assert_eq!(
            found(r#"{"name": "x", "tags": ["a", 1]}"#).as_deref(),
            Some("/tags/1")
        );
        assert_eq!(found(r#"{"name": "x", "limit": 3}"#), None);
        assert_eq!(found(r#"{"name": "x"}"#), None);
    }
}
