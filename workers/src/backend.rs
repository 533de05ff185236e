//! `HttpBackendClient`: the backend port over HTTP (reqwest, rustls),
//! calling a BBB server's API signed with its own secret.

use bytes::Bytes;
use std::time::Duration;
use switchboard_app::backend::BackendClient;
pub use switchboard_app::backend::{BackendError, BackendResponse, BackendTarget, RequestBody};

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
        let max = switchboard_app::backend::MAX_ANSWER_BYTES;
        let body = crate::capped::read_capped(response, max)
            .await
            .map_err(|err| match err {
                crate::capped::CappedError::TooLarge => BackendError::TooLarge(max),
                crate::capped::CappedError::Transfer(err) => classify(err),
            })?;
        Ok(BackendResponse { status, body })
    }
}

#[async_trait::async_trait]
impl BackendClient for HttpBackendClient {
    async fn call(
        &self,
        target: BackendTarget<'_>,
        call: &str,
        query: &str,
        body: Option<&RequestBody>,
        timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        match body {
            Some(body) => {
                self.post(
                    target,
                    call,
                    query,
                    &body.content_type,
                    body.body.clone(),
                    timeout,
                )
                .await
            }
            None => self.get(target, call, query, timeout).await,
        }
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
