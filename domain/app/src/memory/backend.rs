//! [`ScriptedBackend`]: a BBB backend that answers from a script and
//! records every call, so a test can say what the servers answered and
//! check what was asked of them.

use crate::backend::{BackendClient, BackendError, BackendResponse, BackendTarget, RequestBody};
use async_trait::async_trait;
use std::sync::Mutex;
use std::time::Duration;

/// One call a [`ScriptedBackend`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendCall {
    /// The server's base URL.
    pub url: String,
    /// The API call (`create`, `getMeetings`, `end`, ...).
    pub call: String,
    /// The query as sent, without the checksum.
    pub query: String,
    /// A body sent along, if any.
    pub body: Option<RequestBody>,
}

impl BackendCall {
    /// A call without a body (what most tests expect).
    pub fn new(url: impl Into<String>, call: impl Into<String>, query: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            call: call.into(),
            query: query.into(),
            body: None,
        }
    }
}

/// What a server answers: given the target (its `url` tells servers
/// apart), the call name and the query.
pub type Script =
    dyn Fn(&BackendTarget<'_>, &str, &str) -> Result<BackendResponse, BackendError> + Send + Sync;

/// A [`BackendClient`] answering from a script and recording every call in
/// order (recorded before the script runs, so a script that acts on the
/// store sees its own call recorded).
pub struct ScriptedBackend {
    script: Box<Script>,
    calls: Mutex<Vec<BackendCall>>,
}

impl std::fmt::Debug for ScriptedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedBackend")
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

impl ScriptedBackend {
    /// A backend answering every call with `script`.
    pub fn new(
        script: impl Fn(&BackendTarget<'_>, &str, &str) -> Result<BackendResponse, BackendError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            script: Box::new(script),
            calls: Mutex::default(),
        }
    }

    /// Every call received so far, oldest first.
    pub fn calls(&self) -> Vec<BackendCall> {
        self.calls.lock().expect("calls lock").clone()
    }

    /// Every call received so far, forgetting them (for the next step's "then").
    pub fn take_calls(&self) -> Vec<BackendCall> {
        std::mem::take(&mut *self.calls.lock().expect("calls lock"))
    }
}

#[async_trait]
impl BackendClient for ScriptedBackend {
    async fn call(
        &self,
        target: BackendTarget<'_>,
        call: &str,
        query: &str,
        body: Option<&RequestBody>,
        _timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        self.calls.lock().expect("calls lock").push(BackendCall {
            url: target.url.to_owned(),
            call: call.to_owned(),
            query: query.to_owned(),
            body: body.cloned(),
        });
        (self.script)(&target, call, query)
    }
}
