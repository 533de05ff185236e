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
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Response, handler};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use switchboard_app::recordings::import::{UploadError, import_upload};
use switchboard_app::recordings::uploads::UploadRefused;
use switchboard_domain::recording_ids::RecordId;
use tokio::io::AsyncWriteExt;

pub use switchboard_app::recordings::uploads::{MAX_SKEW_SECS, sign, signed_message};

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
    match service
        .authorize_upload(&query.server, &record_id, query.ts, &query.signature, now)
        .await
    {
        Ok(()) => {}
        Err(refused @ (UploadRefused::Stale | UploadRefused::BadSignature)) => {
            return refuse(StatusCode::UNAUTHORIZED, &refused.to_string());
        }
        Err(refused @ UploadRefused::OtherServer) => {
            return refuse(StatusCode::FORBIDDEN, &refused.to_string());
        }
        Err(UploadRefused::Store(err)) => {
            tracing::warn!(error = %err, "cannot check an upload");
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
