//! Who may upload a recording: a BBB server of the pool, identified by the
//! host of its URL and signing with its own secret, and only recordings of
//! meetings it ran. The signature covers the archive's SHA-256:
//! `hex(HMAC-SHA256(key = server secret,
//! "switchboard-upload\n<host>\n<recordID>\n<ts>\n<sha256 hex>"))`, and a
//! signature is accepted once. (The first form, without the digest, is still
//! accepted, once, for uploaders not yet updated; it is logged as outdated.)

use super::RecordingService;
use crate::StoreError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_domain::recording_ids::RecordId;
use thiserror::Error;

/// How old a signature's time may be, seconds.
pub const MAX_SKEW_SECS: u64 = 300;

/// How far into the future a signature's time may be (clock skew), seconds.
pub const MAX_FUTURE_SKEW_SECS: u64 = 30;

/// What an upload request claims, to be checked.
#[derive(Debug, Clone, Copy)]
pub struct SignedUpload<'a> {
    /// The host of the sending server's URL.
    pub host: &'a str,
    /// The recording.
    pub record_id: &'a RecordId,
    /// Unix seconds when it was signed.
    pub ts: u64,
    /// The archive's SHA-256, hex (absent in the outdated form).
    pub sha256: Option<&'a str>,
    /// The HMAC, hex.
    pub signature: &'a str,
}

/// Why an upload is refused.
#[derive(Debug, Error)]
pub enum UploadRefused {
    /// The signature's time is too far from now.
    #[error("the signature's time is too far from now")]
    Stale,
    /// The signature was used before.
    #[error("this signature was used before; sign each upload afresh")]
    Replayed,
    /// The digest is not 64 hex digits.
    #[error("sha256 must be the archive's SHA-256 as 64 hex digits")]
    BadDigest,
    /// No server of that host signs it so.
    #[error("the signature is not valid")]
    BadSignature,
    /// The recording's meeting ran on another server.
    #[error("this recording's meeting ran on another server")]
    OtherServer,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The message an upload signature covers (`sha256`: the archive's digest,
/// hex; `None` gives the outdated form).
pub fn signed_message(server: &str, record_id: &str, ts: u64, sha256: Option<&str>) -> String {
    match sha256 {
        Some(digest) => format!(
            "switchboard-upload\n{server}\n{record_id}\n{ts}\n{}",
            digest.to_ascii_lowercase()
        ),
        None => format!("switchboard-upload\n{server}\n{record_id}\n{ts}"),
    }
}

/// The signature a server with `secret` computes.
pub fn sign(secret: &str, server: &str, record_id: &str, ts: u64, sha256: Option<&str>) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(signed_message(server, record_id, ts, sha256).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` is `secret`'s, in constant time.
pub fn verify(secret: &str, message: &str, signature: &str) -> bool {
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
pub fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .host_str()
        .map(|host| host.to_ascii_lowercase())
}

impl RecordingService {
    /// Checks an upload's signature (`now`: unix seconds), that the
    /// recording's meeting, when known, ran on the signing server, and
    /// claims the signature so it is accepted once. The archive's digest is
    /// checked by the caller once it has the archive.
    pub async fn authorize_upload(
        &self,
        upload: SignedUpload<'_>,
        now: u64,
    ) -> Result<(), UploadRefused> {
        if upload.ts + MAX_SKEW_SECS < now || upload.ts > now + MAX_FUTURE_SKEW_SECS {
            return Err(UploadRefused::Stale);
        }
        if upload
            .sha256
            .is_some_and(|digest| digest.len() != 64 || hex::decode(digest).is_err())
        {
            return Err(UploadRefused::BadDigest);
        }
        let record_id = upload.record_id;
        let servers = self.store.servers().await?;
        let message = signed_message(upload.host, record_id.as_str(), upload.ts, upload.sha256);
        let host = upload.host.trim().to_ascii_lowercase();
        let mut signers = Vec::new();
        for server in &servers {
            if host_of(&server.settings.url).as_deref() == Some(host.as_str()) {
                // Every candidate is checked, so timing says nothing about which.
                if verify(&server.settings.secret, &message, upload.signature) {
                    signers.push(server.id);
                }
            }
        }
        if signers.is_empty() {
            tracing::warn!(server = %host, record_id = %record_id, "recording upload refused: bad signature");
            return Err(UploadRefused::BadSignature);
        }
        if let Some(run) = self.store.meeting_run(record_id.as_str()).await?
            && run.server_id.is_some_and(|ran| !signers.contains(&ran))
        {
            tracing::warn!(server = %host, record_id = %record_id, "recording upload refused: the meeting ran on another server");
            return Err(UploadRefused::OtherServer);
        }
        let nonce = format!("upload:{}", upload.signature.trim().to_ascii_lowercase());
        if !self
            .store
            .claim_token(&nonce, upload.ts + MAX_SKEW_SECS, now)
            .await?
        {
            tracing::warn!(server = %host, record_id = %record_id, "recording upload refused: signature used before");
            return Err(UploadRefused::Replayed);
        }
        if upload.sha256.is_none() {
            tracing::warn!(server = %host, record_id = %record_id, "recording upload signed in the outdated form without the archive's SHA-256; update the uploader (ops/bbb/switchboard-post-publish.sh)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_right_secret_only() {
        let digest = "ab".repeat(32);
        let signature = sign(
            "server-secret",
            "bbb1.example.org",
            "abc",
            100,
            Some(&digest),
        );
        let message = signed_message("bbb1.example.org", "abc", 100, Some(&digest));
        assert!(verify("server-secret", &message, &signature));
        assert!(!verify("other-secret", &message, &signature));
        assert!(!verify(
            "server-secret",
            &signed_message("bbb1.example.org", "abc", 101, Some(&digest)),
            &signature
        ));
        assert!(!verify(
            "server-secret",
            &signed_message("bbb1.example.org", "abc", 100, Some(&"cd".repeat(32))),
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
