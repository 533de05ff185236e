//! `HttpBackendClient`: calls a BBB server's API, signed with its own secret.

use bytes::Bytes;
use std::time::Duration;
use switchboard_domain::checksum::{ChecksumAlgorithm, sign};
use thiserror::Error;

/// Why a backend call failed.
#[derive(Debug, Error)]
pub enum BackendError {
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connection refused, DNS, TLS...
    #[error("connection failed: {0}")]
    Connect(String),
    /// An HTTP status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
}

/// Where and how to call one server.
#[derive(Debug, Clone, Copy)]
pub struct BackendTarget<'a> {
    /// Base URL ending in `/`, e.g. `https://bbb1/bigbluebutton/`.
    pub url: &'a str,
    /// The server's secret.
    pub secret: &'a str,
    /// The checksum algorithm it accepts.
    pub algorithm: ChecksumAlgorithm,
}

impl BackendTarget<'_> {
    /// The signed URL of an API call with an already encoded query.
    pub fn signed_url(&self, call: &str, query: &str) -> String {
        let checksum = sign(self.algorithm, call, query, self.secret);
        let mut url = String::with_capacity(self.url.len() + call.len() + query.len() + 150);
        url.push_str(self.url);
        url.push_str("api/");
        url.push_str(call);
        url.push('?');
        if !query.is_empty() {
            url.push_str(query);
            url.push('&');
        }
        url.push_str("checksum=");
        url.push_str(&checksum);
        url
    }
}

/// A server's answer.
#[derive(Debug, Clone)]
pub struct BackendResponse {
    /// HTTP status (always 200 here; others are errors).
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// The HTTP client for BBB servers (reqwest over rustls, connection pooling).
#[derive(Debug, Clone)]
pub struct HttpBackendClient {
    client: reqwest::Client,
}

/// Installs the process-wide rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpBackendClient {
    /// A client that never follows redirects.
    pub fn new() -> Self {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("reqwest client with rustls");
        Self { client }
    }

    /// GET a signed API call.
    pub async fn get(
        &self,
        target: BackendTarget<'_>,
        call: &str,
        query: &str,
        timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        let request = self
            .client
            .get(target.signed_url(call, query))
            .timeout(timeout);
        self.send(request, timeout).await
    }

    /// POST a signed API call with a body (e.g. create with slides).
    pub async fn post(
        &self,
        target: BackendTarget<'_>,
        call: &str,
        query: &str,
        content_type: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        let request = self
            .client
            .post(target.signed_url(call, query))
            .header("content-type", content_type)
            .body(body)
            .timeout(timeout);
        self.send(request, timeout).await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        let classify = |err: reqwest::Error| {
            if err.is_timeout() {
                BackendError::Timeout(timeout)
            } else {
                BackendError::Connect(without_url(&err))
            }
        };
        let response = request.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(BackendError::Status(status));
        }
        let body = response.bytes().await.map_err(classify)?;
        Ok(BackendResponse { status, body })
    }
}

impl Default for HttpBackendClient {
    fn default() -> Self {
        Self::new()
    }
}

/// An error's text without its URL: signed URLs carry checksums, and logs must
/// not leak anything derived from secrets.
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "<backend>");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_url_matches_bbb_rules() {
        let target = BackendTarget {
            url: "http://bbb/bigbluebutton/",
            secret: "s",
            algorithm: ChecksumAlgorithm::Sha1,
        };
        let url = target.signed_url("create", "meetingID=a");
        assert_eq!(
            url,
            format!(
                "http://bbb/bigbluebutton/api/create?meetingID=a&checksum={}",
                sign(ChecksumAlgorithm::Sha1, "create", "meetingID=a", "s")
            )
        );
        assert!(
            target
                .signed_url("getMeetings", "")
                .contains("getMeetings?checksum=")
        );
    }
}
