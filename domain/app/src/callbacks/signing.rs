//! The signatures callbacks carry, made as BBB makes them: the analytics
//! callback's bearer JWT (HS512 with `exp`), the recording-ready
//! `signed_parameters` JWT (HS256), and bbb-webhooks' checksum over URL,
//! body and secret.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};

/// How long a bearer token BBB makes for the analytics callback is valid.
pub const ANALYTICS_TOKEN_TTL_SECS: i64 = 24 * 3600;

/// The claims of the analytics callback's token.
#[derive(Debug, Serialize, Deserialize)]
struct ExpiryClaims {
    exp: i64,
}

/// The recording-ready token's claims.
#[derive(Debug, Serialize)]
struct RecordingClaims<'a> {
    meeting_id: &'a str,
    record_id: &'a str,
}

/// A bearer token as BBB makes it for the analytics callback: HS512,
/// `exp` 24 h after `now_secs`, signed with `secret`.
pub fn analytics_token(secret: &str, now_secs: i64) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &ExpiryClaims {
            exp: now_secs + ANALYTICS_TOKEN_TTL_SECS,
        },
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Whether a server's analytics token is HS512, signed with `secret` and
/// not expired (as Moodle checks it: HS512 only).
pub fn verify_analytics_token(token: &str, secret: &str) -> bool {
    let mut validation = Validation::new(Algorithm::HS512);
    validation.required_spec_claims.clear();
    validation.required_spec_claims.insert("exp".to_owned());
    validation.leeway = 60;
    jsonwebtoken::decode::<ExpiryClaims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .is_ok()
}

/// The `signed_parameters` value of a recording-ready callback (HS256, as
/// BBB and Scalelite sign it).
pub fn signed_parameters(
    secret: &str,
    meeting_id: &str,
    record_id: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &RecordingClaims {
            meeting_id,
            record_id,
        },
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// bbb-webhooks' checksum of a callback: `hash(url + body + secret)`.
pub fn webhook_checksum(
    algorithm: ChecksumAlgorithm,
    url: &str,
    body: &str,
    secret: &str,
) -> String {
    sign(algorithm, url, body, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_analytics_token_is_hs512_with_an_expiry_and_verifies_with_its_secret_only() {
        let now = chrono::Utc::now().timestamp();
        let token = analytics_token("front-secret", now).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS512);
        assert!(verify_analytics_token(&token, "front-secret"));
        assert!(!verify_analytics_token(&token, "server-secret"));
        let expired = analytics_token("front-secret", now - 2 * ANALYTICS_TOKEN_TTL_SECS).unwrap();
        assert!(!verify_analytics_token(&expired, "front-secret"));
    }

    #[test]
    fn an_hs256_token_is_not_an_analytics_token() {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &ExpiryClaims {
                exp: chrono::Utc::now().timestamp() + 60,
            },
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert!(!verify_analytics_token(&token, "s"));
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

    #[test]
    fn the_webhook_checksum_covers_url_body_and_secret() {
        let sum = webhook_checksum(ChecksumAlgorithm::Sha1, "http://f/h", "event=x", "s");
        assert_eq!(
            sum,
            sign(ChecksumAlgorithm::Sha1, "http://f/hevent=x", "", "s")
        );
        assert_eq!(sum.len(), 40);
    }
}
