//! The BBB backend port: calling a server's API, signed with its own secret,
//! and reading its answer. `switchboard-workers` implements
//! [`BackendClient`] over HTTP; tests use scripted clients.

use crate::records::ServerRecord;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};
use switchboard_domain::bbb::xml::{Fields, ResponseSummary, read_response_fields};
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
    /// The answer is larger than Switchboard reads from a server.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// The largest answer read from a server (a getMeetings of a very large
/// server is a few MB); more is refused, chunked or not.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

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

/// A body sent along with a call (a form, or XML such as create's slides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBody {
    /// Its content type.
    pub content_type: String,
    /// The bytes.
    pub body: Bytes,
}

/// A server's answer.
#[derive(Debug, Clone)]
pub struct BackendResponse {
    /// HTTP status (always 200 here; others are errors).
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// Calls BBB servers.
#[async_trait]
pub trait BackendClient: Send + Sync + std::fmt::Debug {
    /// Sends a signed call: GET, or POST when a body goes along.
    async fn call(
        &self,
        target: BackendTarget<'_>,
        call: &str,
        query: &str,
        body: Option<&RequestBody>,
        timeout: Duration,
    ) -> Result<BackendResponse, BackendError>;
}

/// A server's answer that was read successfully.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The body as the server sent it.
    pub body: Bytes,
    /// Its top-level fields: every one, or only the status fields for an
    /// answer read to be relayed ([`Backends::call_to_relay`]).
    pub summary: ResponseSummary,
}

/// Why a server's answer is unusable.
#[derive(Debug, Error)]
pub enum CallFailure {
    /// Transport failure or HTTP error.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Not a BBB answer.
    #[error("unreadable answer: {0}")]
    Garbage(String),
}

/// Calls the pool's servers with their own secrets and algorithms.
#[derive(Debug, Clone)]
pub struct Backends {
    client: Arc<dyn BackendClient>,
    default_algorithm: ChecksumAlgorithm,
    timeout: Duration,
}

impl Backends {
    /// Calls through `client`; servers without their own algorithm get
    /// `default_algorithm`; calls on the request path wait `timeout`.
    pub fn new(
        client: Arc<dyn BackendClient>,
        default_algorithm: ChecksumAlgorithm,
        timeout: Duration,
    ) -> Self {
        Self {
            client,
            default_algorithm,
            timeout,
        }
    }

    /// The client behind.
    pub fn client(&self) -> &Arc<dyn BackendClient> {
        &self.client
    }

    /// The target of calls to a server.
    pub fn target<'a>(&self, server: &'a ServerRecord) -> BackendTarget<'a> {
        BackendTarget {
            url: &server.settings.url,
            secret: &server.settings.secret,
            algorithm: server.settings.checksum.unwrap_or(self.default_algorithm),
        }
    }

    /// Calls a server and reads its answer.
    pub async fn call(
        &self,
        server: &ServerRecord,
        call: &str,
        query: &str,
        body: Option<&RequestBody>,
    ) -> Result<Answer, CallFailure> {
        self.call_reading(server, call, query, body, self.timeout, Fields::All)
            .await
    }

    /// Calls a server for an answer relayed as it is: the answer is checked
    /// whole, and only its status fields (`returncode`, `messageKey`,
    /// `message`) are in its summary.
    pub async fn call_to_relay(
        &self,
        server: &ServerRecord,
        call: &str,
        query: &str,
        body: Option<&RequestBody>,
    ) -> Result<Answer, CallFailure> {
        self.call_reading(server, call, query, body, self.timeout, Fields::Status)
            .await
    }

    /// As [`call`](Self::call), with its own timeout.
    pub async fn call_within(
        &self,
        server: &ServerRecord,
        call: &str,
        query: &str,
        body: Option<&RequestBody>,
        timeout: Duration,
    ) -> Result<Answer, CallFailure> {
        self.call_reading(server, call, query, body, timeout, Fields::All)
            .await
    }

    async fn call_reading(
        &self,
        server: &ServerRecord,
        call: &str,
        query: &str,
        body: Option<&RequestBody>,
        timeout: Duration,
        fields: Fields,
    ) -> Result<Answer, CallFailure> {
        let response = self
            .client
            .call(self.target(server), call, query, body, timeout)
            .await?;
        let summary = read_response_fields(&response.body, fields)
            .map_err(|err| CallFailure::Garbage(err.to_string()))?;
        Ok(Answer {
            body: response.body,
            summary,
        })
    }
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
