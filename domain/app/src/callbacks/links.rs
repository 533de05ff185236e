//! Switchboard's own callback URLs, given to a server in place of the
//! front-end's: `<base>/switchboard/callbacks/<kind>/<nonce>/<signature>`,
//! one random nonce per run and an HMAC-SHA256 over kind and nonce, so a
//! URL cannot be guessed, made for another run or turned into another kind.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

/// The path every callback URL starts with.
pub const CALLBACK_PATH: &str = "/switchboard/callbacks";

/// Hex digits of the signature in a URL (128 bits).
const SIGNATURE_HEX: usize = 32;

/// Which callback of a run a server is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCallback {
    /// `meetingEndedURL`: the run ended.
    Ended,
    /// `meta_endCallbackUrl`: the run ended (with `recordingmarks`).
    EndCallback,
    /// `meta_analytics-callback-url`: the run's analytics.
    Analytics,
    /// bbb-webhooks' events of one server (the nonce is the server's id).
    Webhook,
}

impl ServerCallback {
    /// The kind's path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ended => "ended",
            Self::EndCallback => "end",
            Self::Analytics => "analytics",
            Self::Webhook => "webhook",
        }
    }

    /// The kind named by a path segment.
    pub fn parse(segment: &str) -> Option<Self> {
        [
            Self::Ended,
            Self::EndCallback,
            Self::Analytics,
            Self::Webhook,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == segment)
    }
}

/// Makes and checks callback URLs with one key.
pub struct CallbackLinks {
    key: Vec<u8>,
    base: OnceLock<String>,
}

impl std::fmt::Debug for CallbackLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackLinks")
            .field("base", &self.base.get())
            .finish_non_exhaustive()
    }
}

impl CallbackLinks {
    /// Links signed with `key`, on `base` (Switchboard's URL as servers reach
    /// it) when known now; else set later with [`bind_base`](Self::bind_base).
    pub fn new(key: &[u8], base: Option<&str>) -> Self {
        let links = Self {
            key: key.to_vec(),
            base: OnceLock::new(),
        };
        if let Some(base) = base {
            links.bind_base(base);
        }
        links
    }

    /// Sets the base URL unless one is set.
    pub fn bind_base(&self, base: &str) {
        let _ = self.base.set(base.trim_end_matches('/').to_owned());
    }

    /// The host (and port) of the base URL, as bbb-webhooks names its
    /// server in `domain`.
    pub fn host(&self) -> String {
        self.base
            .get()
            .and_then(|base| url::Url::parse(base).ok())
            .and_then(|url| {
                url.host_str().map(|host| match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                })
            })
            .unwrap_or_default()
    }

    /// A fresh random nonce for a run.
    pub fn new_nonce() -> String {
        hex::encode(rand::random::<[u8; 16]>())
    }

    /// The URL a server calls for `kind` of the run with `nonce`.
    pub fn url(&self, kind: ServerCallback, nonce: &str) -> String {
        let base = self
            .base
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1:8090");
        format!(
            "{base}{CALLBACK_PATH}/{}/{nonce}/{}",
            kind.as_str(),
            self.signature(kind, nonce)
        )
    }

    /// Whether `signature` is the one made for `kind` and `nonce`
    /// (compared in constant time).
    pub fn verify(&self, kind: ServerCallback, nonce: &str, signature: &str) -> bool {
        let expected = self.signature(kind, nonce);
        signature.len() == expected.len()
            && bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    }

    fn signature(&self, kind: ServerCallback, nonce: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(kind.as_str().as_bytes());
        mac.update(b":");
        mac.update(nonce.as_bytes());
        let mut text = hex::encode(mac.finalize().into_bytes());
        text.truncate(SIGNATURE_HEX);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_verifies_for_its_kind_and_nonce_only() {
        let links = CallbackLinks::new(b"key", Some("https://lb.example/"));
        let nonce = CallbackLinks::new_nonce();
        let url = links.url(ServerCallback::Ended, &nonce);
        let prefix = format!("https://lb.example/switchboard/callbacks/ended/{nonce}/");
        let signature = url.strip_prefix(&prefix).unwrap();
        assert!(links.verify(ServerCallback::Ended, &nonce, signature));
        assert!(!links.verify(ServerCallback::Analytics, &nonce, signature));
        assert!(!links.verify(ServerCallback::Ended, "other", signature));
        assert!(!links.verify(ServerCallback::Ended, &nonce, &signature[1..]));
        let other_key = CallbackLinks::new(b"other", None);
        assert!(!other_key.verify(ServerCallback::Ended, &nonce, signature));
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(CallbackLinks::new_nonce(), CallbackLinks::new_nonce());
        assert_eq!(CallbackLinks::new_nonce().len(), 32);
    }
}
