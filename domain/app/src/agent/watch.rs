//! Marks a server offline once its node agent has missed its heartbeats:
//! `missed_heartbeats` times the interval it announced, measured from the
//! last heartbeat written by any instance.

use super::AgentSettings;
use crate::StoreError;
use crate::clock::SharedClock;
use crate::executor::CommandExecutor;
use crate::ports::Database;
use crate::records::ServerRecord;
use crate::routing::RoutingView;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::ServerId;
use switchboard_domain::server::{Server, ServerCommand, ServerState};

/// Whether a server is judged by its agent's heartbeats now.
fn watched(server: &ServerRecord) -> bool {
    server.has_live_agent() && server.online && server.state != ServerState::Disabled
}

/// Watches agents' heartbeats.
#[derive(Debug, Clone)]
pub struct AgentWatch {
    store: Arc<dyn Database>,
    routing: Option<Arc<RoutingView>>,
    executor: CommandExecutor,
    clock: SharedClock,
    settings: AgentSettings,
}

impl AgentWatch {
    /// A watch over `store`, recording through `executor`; the servers are
    /// read from `routing` when given (no database read while every agent
    /// is heard).
    pub fn new(
        store: Arc<dyn Database>,
        routing: Option<Arc<RoutingView>>,
        executor: CommandExecutor,
        clock: SharedClock,
        settings: AgentSettings,
    ) -> Self {
        Self {
            store,
            routing,
            executor,
            clock,
            settings,
        }
    }

    /// Marks offline every online server whose live agent was last heard
    /// more than `missed_heartbeats` intervals ago; returns them. A server
    /// whose agent went away cleanly, or was never heard, is left alone.
    pub async fn check_once(&self) -> Result<Vec<ServerId>, StoreError> {
        let servers: Vec<ServerRecord> = match &self.routing {
            Some(routing) => routing
                .servers()
                .values()
                .filter(|server| watched(server))
                .map(|server| (**server).clone())
                .collect(),
            None => self
                .store
                .servers()
                .await?
                .into_iter()
                .filter(watched)
                .collect(),
        };
        let missed = i64::from(self.settings.missed_heartbeats.max(1));
        let Some(shortest) = servers
            .iter()
            .filter_map(|server| server.agent.as_ref().map(|agent| agent.interval_ms))
            .min()
        else {
            return Ok(Vec::new());
        };
        let now_ms = self.clock.now_ms();
        // Only agents silent longer than the shortest bound are read.
        let heard: HashMap<ServerId, i64> = self
            .store
            .heartbeats_before(now_ms - missed * shortest as i64)
            .await?
            .into_iter()
            .collect();
        if heard.is_empty() {
            return Ok(Vec::new());
        }
        let metadata = EventMetadata::actor("worker:agent-watch");
        let mut offline = Vec::new();
        for server in servers {
            let (Some(agent), Some(at_ms)) = (&server.agent, heard.get(&server.id)) else {
                continue;
            };
            let bound_ms = missed * agent.interval_ms as i64;
            if now_ms - at_ms <= bound_ms {
                continue;
            }
            let recorded = self
                .executor
                .execute_from::<Server>(
                    &server.id.stream(),
                    server.aggregate(),
                    server.version,
                    &ServerCommand::MarkOffline,
                    &metadata,
                )
                .await;
            match recorded {
                Ok(recorded) if !recorded.events.is_empty() => {
                    tracing::warn!(server = %server.id, silent_ms = now_ms - at_ms, "server went offline: its agent missed its heartbeats");
                    offline.push(server.id);
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(server = %server.id, error = %err, "could not mark a silent agent's server offline")
                }
            }
        }
        Ok(offline)
    }

    /// Checks every `every`, forever.
    pub async fn run(self, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(err) = self.check_once().await {
                tracing::warn!(error = %err, "agent watch failed");
            }
        }
    }
}
