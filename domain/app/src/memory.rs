//! In-memory ports for unit tests: [`InMemoryStore`] (every storage port),
//! [`ScriptedBackend`] (BBB servers answering from a script, with
//! [`answers`] in BBB's shapes) and [`NoMetrics`].
//!
//! A use case is tested as given / when / then: given events appended to
//! the store (through a `CommandExecutor`
//! or [`InMemoryStore::append_raw`]), when the use case runs against a
//! scripted backend, then the events appended and the calls the servers got
//! are exactly the expected ones.

pub mod answers;
mod backend;
mod store;

pub use backend::{BackendCall, Script, ScriptedBackend};
pub use store::InMemoryStore;

use crate::ports::MetricsSource;
use async_trait::async_trait;
use switchboard_domain::node_metrics::{MetricsError, NodeMetrics};

/// A metrics source for pools without metrics URLs: every read fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

#[async_trait]
impl MetricsSource for NoMetrics {
    async fn scrape(
        &self,
        _url: &str,
        _timeout: std::time::Duration,
    ) -> Result<NodeMetrics, MetricsError> {
        Err(MetricsError::Connect("no metrics in tests".into()))
    }
}
