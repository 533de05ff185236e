//! Who may upload a recording: a BBB server of the pool, identified by the
//! host of its URL and signing with its own secret, and only recordings of
//! meetings it ran. The signature is
//! `hex(HMAC-SHA256(key = server secret, "switchboard-upload\n<host>\n<recordID>\n<ts>"))`.

use super::RecordingService;
use crate::StoreError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_domain::recording_ids::RecordId;
use thiserror::Error;

/// How far a signature's time may be from now, seconds.
pub const MAX_SKEW_SECS: u64 = 300;

/// Why an upload is refused.
#[derive(Debug, Error)]
pub enum UploadRefused {
    /// The signature's time is too far from now.
    #[error("the signature's time is too far from now")]
    Stale,
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
    /// Checks an upload's signature (`host` names the server, `ts` is unix
    /// seconds, `now` the time now) and that the recording's meeting, when
    /// known, ran on the signing server.
    pub async fn authorize_upload(
        &self,
        host: &str,
        record_id: &RecordId,
        ts: u64,
        signature: &str,
        now: u64,
    ) -> Result<(), UploadRefused> {
        if now.abs_diff(ts) > MAX_SKEW_SECS {
            return Err(UploadRefused::Stale);
        }
        let servers = self.store.servers().await?;
        let message = signed_message(host, record_id.as_str(), ts);
        let host = host.trim().to_ascii_lowercase();
        let mut signers = Vec::new();
        for server in &servers {
            if host_of(&server.settings.url).as_deref() == Some(host.as_str()) {
                // Every candidate is checked, so timing says nothing about which.
                if verify(&server.settings.secret, &message, signature) {
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
        Ok(())
    }
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
