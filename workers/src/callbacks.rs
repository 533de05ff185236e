//! The HTTP client that implements the application's callback port
//! ([`CallbackClient`]): recording-ready callbacks POSTed to the URLs
//! front-ends gave, never following a redirect somewhere else.

use async_trait::async_trait;
use std::time::Duration;
use switchboard_app::recordings::{CallbackClient, CallbackError};

/// How long one callback may take.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// [`CallbackClient`] over reqwest: a 10 s timeout, no redirects followed.
#[derive(Debug, Clone)]
pub struct HttpCallbackClient {
    client: reqwest::Client,
}

impl HttpCallbackClient {
    /// A client that never follows redirects.
    pub fn new() -> Self {
        crate::backend::install_crypto_provider();
        Self {
            // Callback URLs come from front-ends: never follow a redirect
            // somewhere else.
            client: reqwest::Client::builder()
                .timeout(CALLBACK_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }
}

impl Default for HttpCallbackClient {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl CallbackClient for HttpCallbackClient {
    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<u16, CallbackError> {
        self.client
            .post(url)
            .form(form)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|err| CallbackError(err.to_string()))
    }
}
