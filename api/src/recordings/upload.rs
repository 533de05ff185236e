//! `POST /recordings/upload`: BBB servers send a recording archive over
//! HTTP instead of rsync into the spool.
//!
//! The request names the sending server by the host of its URL in
//! Switchboard (`server=bbb1.example.org`), the recording (`recordID`) and
//! the time (`ts`, unix seconds), and signs them with that server's own BBB
//! secret:
//!
//! ```text
//! POST /recordings/upload?server=<host>&recordID=<id>&ts=<unix>&signature=<hex>
//! signature = hex(HMAC-SHA256(key = server secret,
//!                             "switchboard-upload\n<host>\n<recordID>\n<ts>"))
//! body: <recordID>.tar or .tar.gz
//! ```
//!
//! A signature older or newer than five minutes is refused (401), as is one
//! no registered server's secret produces (checked in constant time). The
//! archive is streamed to `<spool>/.uploads/` (size-capped), extracted with
//! the importer's safety checks and imported at once: 200 with a JSON
//! summary; 422 with the reason for a bad archive (moved to
//! `<spool>/failed/`); 202 when the import must be retried (the archive
//! waits in the spool for the importer).

use super::RecordingRoutes;
use hmac::{Hmac, Mac};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Response, handler};
use serde::Deserialize;
use sha2::Sha256;
use std::path::Path;
use std::sync::Arc;
use switchboard_app::recordings::import::{UploadError, import_upload};
use switchboard_domain::recording_ids::RecordId;
use tokio::io::AsyncWriteExt;

/// How far a signature's time may be from now, seconds.
pub const MAX_SKEW_SECS: u64 = 300;

/// The upload's query.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// Host of the sending server's URL.
    pub server: String,
    /// The recording.
    #[serde(rename = "recordID")]
    pub record_id: String,
    /// Unix seconds when it was signed.
    pub ts: u64,
    /// The HMAC, hex.
    pub signature: String,
}

/// The message an upload signature covers.
pub fn signed_message(server: &str, record_id: &str, ts: u64) -> String {
    format!("switchboard-upload\n{server}\n{record_id}\n{ts}")
}

/// The signature a server with `secret` computes.
pub fn sign(secret: &str, server: &str, record_id: &str, ts: u64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(signed_message(server, record_id, ts).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` is `secret`'s, in constant time.
fn verify(secret: &str, message: &str, signature: &str) -> bool {
    let Ok(tag) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(message.as_bytes());
    mac.verify_slice(&tag).is_ok()
}

/// The host of a server URL, lower-case, without port.
fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .host_str()
        .map(|host| host.to_ascii_lowercase())
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

fn refuse(status: StatusCode, message: &str) -> Response {
    reply(status, serde_json::json!({"error": message}))
}

/// Handles an upload.
#[handler]
pub async fn upload(
    Query(query): Query<UploadQuery>,
    body: Body,
    Data(routes): Data<&Arc<RecordingRoutes>>,
) -> Response {
    let service = &routes.service;
    let Ok(record_id) = RecordId::parse(&query.record_id) else {
        return refuse(StatusCode::BAD_REQUEST, "recordID is not a BBB record id");
    };
    let now = switchboard_recordings::protected::unix_now();
    if now.abs_diff(query.ts) > MAX_SKEW_SECS {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the signature's time is too far from now",
        );
    }
    let servers = match service.store.servers().await {
        Ok(servers) => servers,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read servers for an upload");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let host = query.server.trim().to_ascii_lowercase();
    let message = signed_message(&query.server, record_id.as_str(), query.ts);
    let mut signers = Vec::new();
    for server in &servers {
        if host_of(&server.settings.url).as_deref() == Some(host.as_str()) {
            // Every candidate is checked, so timing says nothing about which.
            if verify(&server.settings.secret, &message, &query.signature) {
                signers.push(server.id);
            }
        }
    }
    if signers.is_empty() {
        tracing::warn!(server = %host, record_id = %record_id, "recording upload refused: bad signature");
        return refuse(StatusCode::UNAUTHORIZED, "the signature is not valid");
    }
    // A server may send only recordings of meetings it ran (when the run is known).
    match service.store.meeting_run(record_id.as_str()).await {
        Ok(Some(run)) if run.server_id.is_some_and(|ran| !signers.contains(&ran)) => {
            tracing::warn!(server = %host, record_id = %record_id, "recording upload refused: the meeting ran on another server");
            return refuse(
                StatusCode::FORBIDDEN,
                "this recording's meeting ran on another server",
            );
        }
        Ok(_) => {}
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the meeting run of an upload");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    }
    let uploads = service.spool_dir.join(".uploads");
    if let Err(err) = tokio::fs::create_dir_all(&uploads).await {
        tracing::error!(error = %err, "cannot create the upload directory");
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "cannot store the upload");
    }
    let temp = uploads.join(format!(
        "{record_id}.{}.tar",
        hex::encode(rand::random::<[u8; 6]>())
    ));
    match receive(body, &temp, routes.settings.upload_max_bytes).await {
        Ok(true) => {}
        Ok(false) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the archive is larger than allowed",
            );
        }
        Err(err) => {
            let _ = tokio::fs::remove_file(&temp).await;
            tracing::warn!(error = %err, "recording upload interrupted");
            return refuse(StatusCode::BAD_REQUEST, "the upload was interrupted");
        }
    }
    match import_upload(service, &temp, &record_id).await {
        Ok(outcome) => reply(
            StatusCode::OK,
            serde_json::json!({
                "recordID": outcome.record_id,
                "created": outcome.created(),
                "events": outcome.events.iter().map(|e| e.type_name()).collect::<Vec<_>>(),
            }),
        ),
        Err(UploadError::Refused(reason)) => refuse(StatusCode::UNPROCESSABLE_ENTITY, &reason),
        Err(UploadError::Queued) => reply(
            StatusCode::ACCEPTED,
            serde_json::json!({"recordID": record_id.as_str(), "queued": true}),
        ),
        Err(UploadError::NotQueued) => refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later"),
    }
}

/// Streams the body to `path`; false when it exceeds `limit` bytes.
async fn receive(body: Body, path: &Path, limit: u64) -> std::io::Result<bool> {
    let mut reader = body.into_async_read();
    let mut file = tokio::fs::File::create(path).await?;
    let mut limited = tokio::io::AsyncReadExt::take(&mut reader, limit + 1);
    let written = tokio::io::copy(&mut limited, &mut file).await?;
    file.flush().await?;
    Ok(written <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_right_secret_only() {
        let signature = sign("server-secret", "bbb1.example.org", "abc", 100);
        let message = signed_message("bbb1.example.org", "abc", 100);
        assert!(verify("server-secret", &message, &signature));
        assert!(!verify("other-secret", &message, &signature));
        assert!(!verify(
            "server-secret",
            &signed_message("bbb1.example.org", "abc", 101),
            &signature
        ));
        assert!(!verify("server-secret", &message, "zz"));
    }

    #[test]
    fn hosts_come_from_server_urls() {
        assert_eq!(
            host_of("https://BBB1.example.org:8443/bigbluebutton/").as_deref(),
            Some("bbb1.example.org")
        );
        assert_eq!(host_of("not a url"), None);
    }
}
