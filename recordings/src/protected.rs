//! Protected recordings: playback only through short-lived signed links.
//!
//! A front-end asks for a link (getRecordings with protection on); the link
//! carries a one-time token `<recordID>.<expiry>.<nonce>.<mac>`, where the
//! MAC is HMAC-SHA256 under the server's [`PlaybackKey`] over the record id,
//! expiry (unix seconds) and a random nonce. Redeeming the token (once; see
//! [`UsedTokens`]) lets the playback route set a cookie scoped to that one
//! recording ([`mint_cookie`]), which the player's many asset requests then
//! carry. Link tokens and cookies are signed under different labels, so one
//! can never stand in for the other. Verification is constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use switchboard_domain::recording_ids::RecordId;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

const LINK_LABEL: &[u8] = b"switchboard-playback-link";
const COOKIE_LABEL: &[u8] = b"switchboard-playback-cookie";
/// Longest token or cookie value looked at.
const MAX_TOKEN_LEN: usize = 256;

/// Why a token or cookie was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtectedError {
    /// The configured key is too short.
    #[error(
        "the playback key has {len} bytes; at least {min} random bytes are needed",
        min = PlaybackKey::MIN_LEN
    )]
    WeakKey {
        /// Its length.
        len: usize,
    },
    /// Not of the form `<recordID>.<expiry>.<nonce>.<mac>`.
    #[error("the playback token is malformed")]
    Malformed,
    /// The MAC does not match: forged, altered, or signed with another key.
    #[error("the playback token's signature is not valid (altered, or signed with another key)")]
    BadSignature,
    /// Past its expiry.
    #[error("the playback token expired at {expired_at} (unix time); ask for a new link")]
    Expired {
        /// The expiry, unix seconds.
        expired_at: u64,
    },
    /// A one-time link token seen before.
    #[error("the playback link was already used; ask for a new link")]
    AlreadyUsed,
    /// A cookie for another recording.
    #[error("the playback cookie is for recording {0}, not this one")]
    WrongRecording(RecordId),
    /// The used-token store failed.
    #[error(transparent)]
    Store(#[from] UsedTokensError),
}

/// The used-token store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the used-token store failed: {0}")]
pub struct UsedTokensError(pub String);

/// The server's secret for playback tokens and cookies (at least
/// [`PlaybackKey::MIN_LEN`] bytes). Its `Debug` output hides the bytes.
#[derive(Clone)]
pub struct PlaybackKey(Vec<u8>);

impl PlaybackKey {
    /// Fewest key bytes accepted.
    pub const MIN_LEN: usize = 32;

    /// A key from secret bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, ProtectedError> {
        if bytes.len() < Self::MIN_LEN {
            return Err(ProtectedError::WeakKey { len: bytes.len() });
        }
        Ok(Self(bytes.to_vec()))
    }

    /// A fresh random 32-byte key.
    pub fn generate() -> Self {
        Self(rand::random::<[u8; 32]>().to_vec())
    }

    fn mac(&self, label: &[u8], record_id: &str, expires_at: u64, nonce: &str) -> HmacSha256 {
        // HMAC takes keys of any length; new_from_slice cannot fail for it.
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts every key length"),
        };
        for part in [
            label,
            record_id.as_bytes(),
            expires_at.to_string().as_bytes(),
            nonce.as_bytes(),
        ] {
            mac.update(part);
            mac.update(b"\0");
        }
        mac
    }
}

impl fmt::Debug for PlaybackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaybackKey(<redacted>)")
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a verified link token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    /// The recording it opens.
    pub record_id: RecordId,
    /// Expiry, unix seconds.
    pub expires_at: u64,
    /// Its one-time nonce (32 hex digits).
    pub nonce: String,
}

fn sign(key: &PlaybackKey, label: &[u8], record_id: &RecordId, expires_at: u64) -> String {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let tag = key
        .mac(label, record_id.as_str(), expires_at, &nonce)
        .finalize()
        .into_bytes();
    format!("{record_id}.{expires_at}.{nonce}.{}", hex::encode(tag))
}

fn check(
    key: &PlaybackKey,
    label: &[u8],
    text: &str,
    now: u64,
) -> Result<LinkToken, ProtectedError> {
    if text.len() > MAX_TOKEN_LEN {
        return Err(ProtectedError::Malformed);
    }
    let mut parts = text.split('.');
    let (Some(id), Some(expiry), Some(nonce), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(ProtectedError::Malformed);
    };
    let record_id = RecordId::parse(id).map_err(|_| ProtectedError::Malformed)?;
    if expiry.is_empty() || expiry.len() > 20 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtectedError::Malformed);
    }
    let expires_at: u64 = expiry.parse().map_err(|_| ProtectedError::Malformed)?;
    if nonce.len() != 32
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ProtectedError::Malformed);
    }
    let tag = hex::decode(tag).map_err(|_| ProtectedError::Malformed)?;
    key.mac(label, record_id.as_str(), expires_at, nonce)
        .verify_slice(&tag)
        .map_err(|_| ProtectedError::BadSignature)?;
    if now >= expires_at {
        return Err(ProtectedError::Expired {
            expired_at: expires_at,
        });
    }
    Ok(LinkToken {
        record_id,
        expires_at,
        nonce: nonce.to_owned(),
    })
}

/// Mints a one-time link token for `record_id`, valid until `expires_at`
/// (unix seconds). URL-safe as it stands.
pub fn mint_link_token(key: &PlaybackKey, record_id: &RecordId, expires_at: u64) -> String {
    sign(key, LINK_LABEL, record_id, expires_at)
}

/// Checks a link token's signature and expiry at `now` (unix seconds)
/// without using it up; see [`redeem_link_token`].
pub fn verify_link_token(
    key: &PlaybackKey,
    token: &str,
    now: u64,
) -> Result<LinkToken, ProtectedError> {
    check(key, LINK_LABEL, token, now)
}

/// Verifies a link token and marks it used: the first call succeeds with
/// the record id, later ones fail with [`ProtectedError::AlreadyUsed`].
pub async fn redeem_link_token<U: UsedTokens + ?Sized>(
    key: &PlaybackKey,
    token: &str,
    now: u64,
    used: &U,
) -> Result<RecordId, ProtectedError> {
    let token = verify_link_token(key, token, now)?;
    if used.claim(&token.nonce, token.expires_at, now).await? {
        Ok(token.record_id)
    } else {
        Err(ProtectedError::AlreadyUsed)
    }
}

/// Mints a cookie value that admits to `record_id` until `expires_at`
/// (unix seconds). Reusable until it expires.
pub fn mint_cookie(key: &PlaybackKey, record_id: &RecordId, expires_at: u64) -> String {
    sign(key, COOKIE_LABEL, record_id, expires_at)
}

/// Checks a cookie value for a request to `record_id` at `now`; returns its
/// expiry.
pub fn verify_cookie(
    key: &PlaybackKey,
    value: &str,
    record_id: &RecordId,
    now: u64,
) -> Result<u64, ProtectedError> {
    let cookie = check(key, COOKIE_LABEL, value, now)?;
    if cookie.record_id != *record_id {
        return Err(ProtectedError::WrongRecording(cookie.record_id));
    }
    Ok(cookie.expires_at)
}

/// Remembers the nonces of redeemed link tokens until they expire, so each
/// link works once. A database-backed implementation shares this across
/// instances; [`InMemoryUsedTokens`] serves one process.
pub trait UsedTokens: Send + Sync {
    /// Records `nonce` as used until `expires_at`; true if it was not used
    /// before (the caller may proceed), false if it was. May forget nonces
    /// whose expiry is at or before `now`.
    fn claim(
        &self,
        nonce: &str,
        expires_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<bool, UsedTokensError>> + Send;
}

/// [`UsedTokens`] in a map, for one process and for tests.
#[derive(Debug, Default)]
pub struct InMemoryUsedTokens {
    nonces: Mutex<HashMap<String, u64>>,
}

impl InMemoryUsedTokens {
    /// Nonces held before expired ones are swept.
    const SWEEP_AT: usize = 1024;

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.nonces.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl UsedTokens for InMemoryUsedTokens {
    fn claim(
        &self,
        nonce: &str,
        expires_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<bool, UsedTokensError>> + Send {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        if nonces.len() >= Self::SWEEP_AT {
            nonces.retain(|_, expiry| *expiry > now);
        }
        let fresh = !nonces.contains_key(nonce);
        if fresh {
            nonces.insert(nonce.to_owned(), expires_at);
        }
        std::future::ready(Ok(fresh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "834c2bfbc2e5c8eb1ad9ac3d4cda2b7bf0e5c1a2-1741369843904";
    const OTHER: &str = "1111111111111111111111111111111111111111-1741369843904";
    const NOW: u64 = 1_750_000_000;

    fn key() -> PlaybackKey {
        PlaybackKey::new(&[7u8; 32]).unwrap()
    }

    fn id(text: &str) -> RecordId {
        RecordId::parse(text).unwrap()
    }

    #[test]
    fn keys() {
        assert_eq!(
            PlaybackKey::new(&[1u8; 31]).unwrap_err(),
            ProtectedError::WeakKey { len: 31 }
        );
        assert_eq!(format!("{:?}", key()), "PlaybackKey(<redacted>)");
        let (a, b) = (PlaybackKey::generate(), PlaybackKey::generate());
        let token = mint_link_token(&a, &id(ID), NOW + 60);
        assert!(verify_link_token(&a, &token, NOW).is_ok());
        assert_eq!(
            verify_link_token(&b, &token, NOW),
            Err(ProtectedError::BadSignature)
        );
    }

    #[test]
    fn link_round_trip_and_expiry() {
        let token = mint_link_token(&key(), &id(ID), NOW + 60);
        assert!(token.starts_with(ID));
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        );
        let verified = verify_link_token(&key(), &token, NOW).unwrap();
        assert_eq!(verified.record_id, id(ID));
        assert_eq!(verified.expires_at, NOW + 60);
        assert_eq!(
            verify_link_token(&key(), &token, NOW + 60),
            Err(ProtectedError::Expired {
                expired_at: NOW + 60
            })
        );
        assert_ne!(
            token,
            mint_link_token(&key(), &id(ID), NOW + 60),
            "nonces differ"
        );
    }

    #[test]
    fn altered_tokens_are_refused() {
        let token = mint_link_token(&key(), &id(ID), NOW + 60);
        let parts: Vec<&str> = token.split('.').collect();
        let altered = [
            format!("{OTHER}.{}.{}.{}", parts[1], parts[2], parts[3]),
            format!("{}.{}.{}.{}", parts[0], NOW + 6000, parts[2], parts[3]),
            format!("{}.{}.{}.{}", parts[0], parts[1], "0".repeat(32), parts[3]),
            format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], "0".repeat(64)),
            format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], &parts[3][..62]),
        ];
        for bad in altered {
            assert_eq!(
                verify_link_token(&key(), &bad, NOW),
                Err(ProtectedError::BadSignature),
                "{bad}"
            );
        }
        let long = "a".repeat(1000);
        let malformed = [
            "",
            ".",
            "...",
            &format!("{}.{}.{}", parts[0], parts[1], parts[2]),
            &format!("{token}.x"),
            &format!("{}.-1.{}.{}", parts[0], parts[2], parts[3]),
            &format!("{}.{}.{}.{}", parts[0], "9".repeat(30), parts[2], parts[3]),
            &format!("{}.{}.{}.zz", parts[0], parts[1], parts[2]),
            &format!(
                "{}.{}.{}.{}",
                parts[0],
                parts[1],
                parts[2].to_uppercase(),
                parts[3]
            ),
            &long,
        ];
        for bad in malformed {
            assert_eq!(
                verify_link_token(&key(), bad, NOW),
                Err(ProtectedError::Malformed),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn links_work_once() {
        let store = InMemoryUsedTokens::new();
        let token = mint_link_token(&key(), &id(ID), NOW + 60);
        assert_eq!(
            redeem_link_token(&key(), &token, NOW, &store).await,
            Ok(id(ID))
        );
        assert_eq!(
            redeem_link_token(&key(), &token, NOW + 1, &store).await,
            Err(ProtectedError::AlreadyUsed)
        );
        let other = mint_link_token(&key(), &id(ID), NOW + 60);
        assert!(redeem_link_token(&key(), &other, NOW, &store).await.is_ok());
        // A failed verification uses nothing up.
        let forged = format!("{}0", &token[..token.len() - 1]);
        assert!(
            redeem_link_token(&key(), &forged, NOW, &store)
                .await
                .is_err()
        );
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn store_forgets_only_expired_nonces() {
        let store = InMemoryUsedTokens::new();
        for n in 0..InMemoryUsedTokens::SWEEP_AT {
            assert!(store.claim(&format!("old{n}"), NOW, NOW).await.unwrap());
        }
        assert!(store.claim("live", NOW + 10, NOW).await.unwrap());
        assert!(store.claim("x", NOW + 10, NOW + 1).await.unwrap());
        assert_eq!(store.len(), 2, "expired nonces swept");
        assert!(!store.claim("live", NOW + 10, NOW + 2).await.unwrap());
    }

    #[test]
    fn cookies_are_scoped_and_distinct_from_links() {
        let cookie = mint_cookie(&key(), &id(ID), NOW + 3600);
        assert_eq!(verify_cookie(&key(), &cookie, &id(ID), NOW), Ok(NOW + 3600));
        assert_eq!(
            verify_cookie(&key(), &cookie, &id(ID), NOW + 1),
            Ok(NOW + 3600),
            "reusable"
        );
        assert_eq!(
            verify_cookie(&key(), &cookie, &id(OTHER), NOW),
            Err(ProtectedError::WrongRecording(id(ID)))
        );
        assert!(matches!(
            verify_cookie(&key(), &cookie, &id(ID), NOW + 3600),
            Err(ProtectedError::Expired { .. })
        ));
        let link = mint_link_token(&key(), &id(ID), NOW + 60);
        assert_eq!(
            verify_cookie(&key(), &link, &id(ID), NOW),
            Err(ProtectedError::BadSignature)
        );
        assert_eq!(
            verify_link_token(&key(), &cookie, NOW),
            Err(ProtectedError::BadSignature)
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        let token = mint_link_token(&key(), &id(ID), NOW + 60);
        for cut in 0..token.len() {
            let _ = verify_link_token(&key(), &token[..cut], NOW);
            for c in ['.', 'é', '\0', 'g'] {
                let mut s: String = token.chars().take(cut).collect();
                s.push(c);
                s.extend(token.chars().skip(cut + 1));
                let _ = verify_link_token(&key(), &s, NOW);
                let _ = verify_cookie(&key(), &s, &id(ID), NOW);
            }
        }
    }
}
