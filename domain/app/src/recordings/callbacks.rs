//! Recording-ready callbacks: `meta_bbb-recording-ready-url` of a create is
//! kept by Switchboard (never forwarded to the server) and called once the
//! recording is imported: `POST signed_parameters=<JWT HS256 {meeting_id,
//! record_id}>`, signed with the tenant's first secret (the global primary
//! secret for the default tenant), retried with doubling backoff.
//!
//! The POST goes through the [`CallbackClient`] port (`switchboard-workers`
//! implements it over HTTP).

use super::RecordingService;
use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::time::Duration;
use switchboard_domain::ids::TenantId;
use thiserror::Error;

/// Why a callback could not be sent (connection refused, timeout, DNS...).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct CallbackError(pub String);

/// Posts callbacks to the URLs front-ends gave.
#[async_trait]
pub trait CallbackClient: Send + Sync + std::fmt::Debug {
    /// POSTs `form` (`application/x-www-form-urlencoded`) to `url`, following
    /// no redirect (callback URLs come from front-ends); the answer's HTTP
    /// status.
    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<u16, CallbackError>;
}

/// The JWT claims BBB sends.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    meeting_id: &'a str,
    record_id: &'a str,
}

/// The `signed_parameters` value for a recording.
pub fn signed_parameters(
    secret: &str,
    meeting_id: &str,
    record_id: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &Claims {
            meeting_id,
            record_id,
        },
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Calls the recording-ready URL in the background, with retries.
pub fn spawn_recording_ready(
    service: &RecordingService,
    url: String,
    tenant: TenantId,
    record_id: &str,
) {
    let store = service.store.clone();
    let client = service.callbacks.clone();
    let primary = service.primary_secret().to_owned();
    let attempts = service.settings.callback_attempts.max(1);
    let base = Duration::from_millis(service.settings.retry_base_ms);
    let record_id = record_id.to_owned();
    tokio::spawn(async move {
        let secret = if tenant.is_default() {
            Some(primary)
        } else {
            match store.tenant(&tenant.0).await {
                Ok(config) => config.and_then(|config| config.secrets.first().cloned()),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the tenant for a recording-ready callback");
                    None
                }
            }
        };
        let Some(secret) = secret else {
            tracing::warn!(%record_id, %tenant, "no secret to sign the recording-ready callback with");
            return;
        };
        let meeting_id = match store.recording(&record_id).await {
            Ok(Some(recording)) => recording.meeting_id,
            _ => String::new(),
        };
        let token = match signed_parameters(&secret, &meeting_id, &record_id) {
            Ok(token) => token,
            Err(err) => {
                tracing::warn!(error = %err, "cannot sign a recording-ready callback");
                return;
            }
        };
        deliver(client.as_ref(), &url, &token, &record_id, attempts, base).await;
    });
}

/// POSTs the callback until it succeeds (2xx) or attempts run out.
async fn deliver(
    client: &dyn CallbackClient,
    url: &str,
    token: &str,
    record_id: &str,
    attempts: u32,
    base: Duration,
) -> bool {
    let mut delay = base;
    for attempt in 1..=attempts {
        let result = client.post_form(url, &[("signed_parameters", token)]).await;
        match result {
            Ok(status) if (200..300).contains(&status) => {
                tracing::info!(record_id, attempt, "recording-ready callback delivered");
                return true;
            }
            Ok(status) => {
                tracing::warn!(
                    record_id,
                    attempt,
                    status,
                    "recording-ready callback refused"
                );
            }
            Err(err) => {
                tracing::warn!(record_id, attempt, error = %err, "recording-ready callback failed");
            }
        }
        if attempt < attempts {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
    tracing::error!(record_id, url, "recording-ready callback given up");
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    /// Answers posts from a script of statuses (an error when it runs out)
    /// and keeps what was posted.
    #[derive(Debug, Default)]
    struct ScriptedCallbacks {
        answers: std::sync::Mutex<Vec<Result<u16, CallbackError>>>,
        posted: std::sync::Mutex<Vec<Posted>>,
    }

    /// A URL and the form posted to it.
    type Posted = (String, Vec<(String, String)>);

    #[async_trait]
    impl CallbackClient for ScriptedCallbacks {
        async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<u16, CallbackError> {
            let form = form
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            self.posted.lock().unwrap().push((url.to_owned(), form));
            let mut answers = self.answers.lock().unwrap();
            if answers.is_empty() {
                Err(CallbackError("connection refused".into()))
            } else {
                answers.remove(0)
            }
        }
    }

    #[tokio::test]
    async fn delivery_retries_until_a_success() {
        let client = ScriptedCallbacks {
            answers: std::sync::Mutex::new(vec![
                Err(CallbackError("timeout".into())),
                Ok(500),
                Ok(204),
            ]),
            ..ScriptedCallbacks::default()
        };
        let delivered = deliver(
            &client,
            "https://front.example/ready",
            "jwt",
            "abc-1",
            5,
            Duration::from_millis(1),
        )
        .await;
        assert!(delivered);
        let posted = client.posted.lock().unwrap();
        assert_eq!(posted.len(), 3);
        assert_eq!(posted[0].0, "https://front.example/ready");
        assert_eq!(
            posted[0].1,
            vec![("signed_parameters".to_owned(), "jwt".to_owned())]
        );
    }

    #[tokio::test]
    async fn delivery_gives_up_after_the_attempts() {
        let client = ScriptedCallbacks {
            answers: std::sync::Mutex::new(vec![Ok(302), Ok(404)]),
            ..ScriptedCallbacks::default()
        };
        let delivered = deliver(
            &client,
            "https://front.example/ready",
            "jwt",
            "abc-1",
            3,
            Duration::from_millis(1),
        )
        .await;
        assert!(!delivered);
        assert_eq!(client.posted.lock().unwrap().len(), 3);
    }

    #[test]
    fn signed_parameters_verify_with_the_secret_only() {
        let token = signed_parameters("the-secret", "room-1", "abc-1").unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(b"the-secret"),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims["meeting_id"], "room-1");
        assert_eq!(decoded.claims["record_id"], "abc-1");
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(
                &token,
                &DecodingKey::from_secret(b"other"),
                &validation
            )
            .is_err()
        );
    }
}
