//! `HttpBackendClient`: the backend port over HTTP (hyper's pooling client,
//! rustls with the platform's certificate verifier), calling a BBB server's
//! API signed with its own secret.
//!
//! hyper directly rather than reqwest: on the request path (getMeetingInfo,
//! isMeetingRunning, end, join without redirect) reqwest parsed each signed
//! URL twice with the `url` crate and ran its redirect layer even with
//! redirects off, about a quarter of the instructions of a relayed call
//! (callgrind, issue 22). reqwest still calls the servers that a proxy
//! covers or whose URL carries credentials.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use switchboard_app::backend::BackendClient;
pub use switchboard_app::backend::{BackendError, BackendResponse, BackendTarget, RequestBody};

/// The `User-Agent` of every call.
const USER_AGENT: &str = concat!("switchboard/", env!("CARGO_PKG_VERSION"));

/// How long connecting to a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle keep-alive connections kept per server.
const IDLE_PER_SERVER: usize = 64;

/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// TCP keepalive: first probe after this much silence, then this often.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Each HTTP/1 connection's read buffer, fixed: hyper's adaptive buffer
/// grows to about 400 KB while a getMeetings listing of 1 MB is read and
/// keeps that size while the connection idles in the pool (with 10 servers,
/// about 7 MB held between polls). An answer's head (status line and
/// headers) must fit in it; 64 KiB leaves room for what proxies add.
/// HTTP/2 connections and the proxy fallback keep their own buffers.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The HTTP client for BBB servers (HTTP/1.1 and, over TLS when the server
/// offers it, HTTP/2; connections pooled per server; redirects are never
/// followed: a 3xx is an HTTP status error like any other than 200).
///
/// A server whose URL carries credentials (`https://user:pass@host/...`,
/// sent as Basic authentication) or that a proxy setting covers is called
/// through reqwest, which handles both; every other call goes straight
/// through hyper.
#[derive(Debug, Clone)]
pub struct HttpBackendClient {
    direct: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// For the servers behind a proxy or with credentials in their URL.
    fallback: reqwest::Client,
    /// Which URLs a proxy covers.
    proxies: Arc<Matcher>,
}

/// Installs the process-wide rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpBackendClient {
    /// A client that never follows redirects, using the proxies the
    /// environment names (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`,
    /// `NO_PROXY`, also in lower case).
    pub fn new() -> Self {
        Self::build(Matcher::from_env(), None)
    }

    /// A client that sends every call through the HTTP proxy at `proxy`
    /// (`http://host:port`), whatever the environment says.
    pub fn with_proxy(proxy: &str) -> Result<Self, BackendError> {
        let fallback = reqwest::Proxy::all(proxy)
            .map_err(|_| BackendError::Connect("the proxy URL is not valid".into()))?;
        Ok(Self::build(
            Matcher::builder().all(proxy.to_owned()).build(),
            Some(fallback),
        ))
    }

    fn build(proxies: Matcher, proxy: Option<reqwest::Proxy>) -> Self {
        install_crypto_provider();
        let mut http = HttpConnector::new();
        // https:// URLs reach the TLS layer through this connector.
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        // A server gone without closing its connections is noticed by TCP
        // rather than at the next call's timeout (reqwest's settings).
        http.set_keepalive(Some(KEEPALIVE));
        http.set_keepalive_interval(Some(KEEPALIVE));
        http.set_keepalive_retries(Some(3));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .try_with_platform_verifier()
            .expect("rustls with the platform's certificate verifier")
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let direct = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_SERVER)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .http1_read_buf_exact_size(READ_BUFFER_BYTES)
            .build(https);
        let mut fallback = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(IDLE_PER_SERVER)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(USER_AGENT);
        if let Some(proxy) = proxy {
            fallback = fallback.proxy(proxy);
        }
        Self {
            direct,
            fallback: fallback.build().expect("reqwest client with rustls"),
            proxies: Arc::new(proxies),
        }
    }

    /// GET a signed API call.
    pub async fn get(
        &self,
        target: BackendTarget<'_>,
        call: &str,
        query: &str,
        timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        self.send(target, call, query, None, timeout).await
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
        self.send(target, call, query, Some((content_type, body)), timeout)
            .await
    }

    /// Sends the call and reads the answer (at most
    /// [`MAX_ANSWER_BYTES`](switchboard_app::backend::MAX_ANSWER_BYTES)),
    /// all within `timeout`.
    async fn send(
        &self,
        target: BackendTarget<'_>,
        call: &str,
        query: &str,
        body: Option<(&str, Bytes)>,
        timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        // The URL carries a checksum: neither it nor a parse error quoting
        // it is ever part of an error.
        let url = target.signed_url(call, query);
        let uri: hyper::Uri = url.parse().map_err(|_| {
            BackendError::Connect(
                "the signed call is not a valid URL (malformed or too long)".into(),
            )
        })?;
        if uri
            .authority()
            .is_some_and(|authority| authority.as_str().contains('@'))
            || self.proxies.intercept(&uri).is_some()
        {
            return self.send_through_reqwest(url, body, timeout).await;
        }
        let mut request = hyper::Request::builder()
            .uri(uri)
            .header(hyper::header::USER_AGENT, USER_AGENT);
        let content = match body {
            Some((content_type, bytes)) => {
                request = request
                    .method(hyper::Method::POST)
                    .header(hyper::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(content))
            .map_err(|err| BackendError::Connect(err.to_string()))?;
        let exchange = async {
            let response = self
                .direct
                .request(request)
                .await
                .map_err(|err| connect_failure(&err))?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(BackendError::Status(status));
            }
            let body = read_body(response).await?;
            Ok(BackendResponse { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| BackendError::Timeout(timeout))?
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

impl HttpBackendClient {
    /// The call through reqwest (a proxy, or credentials in the URL).
    async fn send_through_reqwest(
        &self,
        url: String,
        body: Option<(&str, Bytes)>,
        timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        let request = match body {
            Some((content_type, bytes)) => self
                .fallback
                .post(url)
                .header("content-type", content_type)
                .body(bytes),
            None => self.fallback.get(url),
        };
        let classify = |err: reqwest::Error| {
            if err.is_timeout() {
                BackendError::Timeout(timeout)
            } else {
                BackendError::Connect(with_causes(&err.without_url()))
            }
        };
        let response = request.timeout(timeout).send().await.map_err(classify)?;
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

/// A failed exchange: a connection that could not be made in
/// [`CONNECT_TIMEOUT`] is a timeout, anything else a connection failure.
fn connect_failure(err: &hyper_util::client::legacy::Error) -> BackendError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(inner) = cause {
        if inner
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return BackendError::Timeout(CONNECT_TIMEOUT);
        }
        cause = inner.source();
    }
    BackendError::Connect(with_causes(err))
}

/// The answer's body, at most
/// [`MAX_ANSWER_BYTES`](switchboard_app::backend::MAX_ANSWER_BYTES).
async fn read_body(response: hyper::Response<Incoming>) -> Result<Bytes, BackendError> {
    let max = switchboard_app::backend::MAX_ANSWER_BYTES;
    crate::capped::read_capped_body(response, max)
        .await
        .map_err(|err| match err {
            crate::capped::CappedError::TooLarge => BackendError::TooLarge(max),
            crate::capped::CappedError::Transfer(err) => BackendError::Connect(with_causes(&err)),
        })
}

/// An error's text with its causes ("client error (Connect): tcp connect
/// error: Connection refused"): hyper's own text alone names only the
/// stage that failed. No URL is part of it.
fn with_causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}
