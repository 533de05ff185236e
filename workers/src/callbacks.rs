//! The HTTP client that implements the application's callback port
//! ([`CallbackClient`]): callbacks sent to the URLs front-ends gave, never
//! following a redirect somewhere else, reading at most a small answer.

use crate::outbound::{AddressPolicy, GuardedResolver, check_literal};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use switchboard_app::callbacks::{CallbackClient, CallbackError, OutboundCall};

/// The most of a receiver's answer that is read (the status is what counts).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How long one callback may take.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// [`CallbackClient`] over reqwest: a 10 s timeout, no redirects followed,
/// only to addresses the [`AddressPolicy`] allows.
#[derive(Debug, Clone)]
pub struct HttpCallbackClient {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl HttpCallbackClient {
    /// A client that never follows redirects and reaches only public
    /// addresses and those `policy` allows.
    pub fn new(policy: AddressPolicy) -> Self {
        crate::backend::install_crypto_provider();
        let policy = Arc::new(policy);
        Self {
            // Callback URLs come from front-ends: never follow a redirect
            // somewhere else, and resolve each name once, through the policy.
            client: reqwest::Client::builder()
                .timeout(CALLBACK_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .dns_resolver(GuardedResolver::new(policy.clone()))
                .no_proxy()
                .build()
                .unwrap_or_default(),
            policy,
        }
    }
}

#[async_trait]
impl CallbackClient for HttpCallbackClient {
    async fn send(&self, call: &OutboundCall) -> Result<u16, CallbackError> {
        check_literal(&self.policy, &call.url)
            .map_err(|refused| CallbackError(refused.to_string()))?;
        let mut request = if call.method.eq_ignore_ascii_case("POST") {
            self.client.post(&call.url)
        } else {
            self.client.get(&call.url)
        };
        if let Some(content_type) = &call.content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        if let Some(token) = &call.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|err| CallbackError(describe(&err)))?;
        let status = response.status().as_u16();
        // The answer is read (so the connection can be reused) up to a cap.
        let _ = crate::capped::read_capped(response, MAX_ANSWER_BYTES).await;
        Ok(status)
    }
}

/// The error with its causes (a refused address is a cause of reqwest's
/// connect error).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
