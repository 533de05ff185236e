//! `POST /recordings/upload`: BBB servers send a recording archive over
//! HTTP instead of rsync into the spool.
//!
//! The request names the sending server by the host of its URL in
//! Switchboard (`server=bbb1.example.org`), the recording (`recordID`), the
//! time (`ts`, unix seconds) and the archive's SHA-256 (`sha256`, hex), and
//! signs them with that server's own BBB secret:
//!
//! ```text
//! POST /recordings/upload?server=<host>&recordID=<id>&ts=<unix>&sha256=<hex>&signature=<hex>
//! signature = hex(HMAC-SHA256(key = server secret,
//!                             "switchboard-upload\n<host>\n<recordID>\n<ts>\n<sha256>"))
//! body: <recordID>.tar or .tar.gz
//! ```
//!
//! A signature older than five minutes or more than 30 s in the future is
//! refused (401), as is one no registered server's secret produces (checked
//! in constant time) and one used before (each is accepted once). The
//! archive is streamed to `<spool>/.uploads/` (size-capped) while its
//! SHA-256 is computed; an archive whose digest is not the signed one is
//! refused (401) and removed. Then it is extracted with the importer's
//! safety checks and imported at once: 200 with a JSON summary; 422 with the
//! reason for a bad archive (moved to `<spool>/failed/`); 202 when the
//! import must be retried (the archive waits in the spool for the importer).
//! The outdated form without `sha256` is still accepted, once per
//! signature, and logged as outdated.

use super::RecordingRoutes;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Body, Response, handler};
use serde::Deserialize;
use sha2::Digest;
use std::path::Path;
use std::sync::Arc;
use switchboard_app::recordings::import::{UploadError, import_upload};
use switchboard_app::recordings::uploads::{SignedUpload, UploadRefused};
use switchboard_domain::recording_ids::RecordId;
use tokio::io::AsyncWriteExt;

pub use switchboard_app::recordings::uploads::{
    MAX_FUTURE_SKEW_SECS, MAX_SKEW_SECS, sign, signed_message,
};

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
    /// The archive's SHA-256, hex (signed).
    pub sha256: Option<String>,
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
    let signed = SignedUpload {
        host: &query.server,
        record_id: &record_id,
        ts: query.ts,
        sha256: query.sha256.as_deref(),
        signature: &query.signature,
    };
    match service.authorize_upload(signed, now).await {
        Ok(()) => {}
        Err(refused @ UploadRefused::BadDigest) => {
            return refuse(StatusCode::BAD_REQUEST, &refused.to_string());
        }
        Err(
            refused
            @ (UploadRefused::Stale | UploadRefused::BadSignature | UploadRefused::Replayed),
        ) => {
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
        Ok(Some(digest)) => {
            if let Some(signed) = &query.sha256
                && !signed.eq_ignore_ascii_case(&digest)
            {
                let _ = tokio::fs::remove_file(&temp).await;
                tracing::warn!(server = %query.server, record_id = %record_id, "recording upload refused: the archive is not the signed one");
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "the archive's SHA-256 is not the signed one",
                );
            }
        }
        Ok(None) => {
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

/// Streams the body to `path`, computing its SHA-256 (hex); `None` when it
/// exceeds `limit` bytes.
async fn receive(body: Body, path: &Path, limit: u64) -> std::io::Result<Option<String>> {
    use tokio::io::AsyncReadExt;
    let reader = body.into_async_read();
    let mut limited = reader.take(limit + 1);
    let mut file = tokio::fs::File::create(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        let read = limited.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        file.write_all(&buffer[..read]).await?;
        written += read as u64;
    }
    file.flush().await?;
    Ok((written <= limit).then(|| hex::encode(hasher.finalize())))
}
