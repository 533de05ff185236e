//! The callback URLs Switchboard gives BBB servers on create
//! (`/switchboard/callbacks/<kind>/<nonce>/<signature>`, GET or POST): the
//! transport of the application's [`CallbackService::receive`]. Answers are
//! plain text: `200 ok` once the end is recorded and what the front-end is
//! owed is in the outbox; `404` for a URL no run has; `401` for an analytics
//! token that is not the server's; `400` for a body that cannot be read;
//! `503` when the database failed (BBB calls again).

use crate::bbb::body::{BodyError, read_limited};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use std::sync::Arc;
use switchboard_app::callbacks::receive::{ReceiveError, ServerCall};
use switchboard_app::callbacks::{CallbackService, ServerCallback};

/// The largest body a server's callback may have (an analytics JSON of a
/// large meeting).
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024 * 1024;

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/plain; charset=utf-8")
        .body(body.into())
}

/// `GET|POST /switchboard/callbacks/:kind/:nonce/:signature`.
#[handler]
pub async fn server_callback(
    req: &Request,
    body: poem::Body,
    Path((kind, nonce, signature)): Path<(String, String, String)>,
    Data(service): Data<&Arc<CallbackService>>,
) -> Response {
    let Some(kind) = ServerCallback::parse(&kind) else {
        return text(StatusCode::NOT_FOUND, "no such callback");
    };
    // Nothing is read for a URL Switchboard did not make, and only the
    // analytics callback has a body worth reading (the others are GETs).
    if !service.links().verify(kind, &nonce, &signature) {
        return text(StatusCode::NOT_FOUND, "no run has this callback URL");
    }
    let limit = if matches!(kind, ServerCallback::Analytics | ServerCallback::Webhook) {
        MAX_CALLBACK_BYTES
    } else {
        64 * 1024
    };
    let body = match read_limited(body, limit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        Err(BodyError::Broken) => return text(StatusCode::BAD_REQUEST, "the body was cut off"),
    };
    let bearer = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(|token| token.trim().to_owned());
    let call = ServerCall {
        query: req.uri().query().unwrap_or("").to_owned(),
        body,
        bearer,
    };
    match service.receive(kind, &nonce, &signature, &call).await {
        Ok(_) => text(StatusCode::OK, "ok"),
        Err(ReceiveError::Unknown) => text(StatusCode::NOT_FOUND, "no run has this callback URL"),
        Err(ReceiveError::Unauthorized(reason)) => text(StatusCode::UNAUTHORIZED, reason),
        // bbb-webhooks removes a hook whose posts keep failing: a post that
        // can never be read is logged and taken, not refused.
        Err(ReceiveError::Invalid(reason)) if kind == ServerCallback::Webhook => {
            tracing::warn!(%reason, "a server's webhook post could not be read");
            text(StatusCode::OK, "ignored")
        }
        Err(ReceiveError::Invalid(reason)) => text(StatusCode::BAD_REQUEST, reason),
        Err(ReceiveError::StillRunning) => text(
            StatusCode::CONFLICT,
            "the meeting still runs on its server; nothing was recorded",
        ),
        Err(ReceiveError::Store(err)) => {
            tracing::error!(error = %err, "cannot record a server's callback");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the callback could not be recorded; call again",
            )
        }
    }
}
