//! Servers and tokens as the projections hold them.

use switchboard_domain::ids::ServerId;
use switchboard_domain::server::{Server, ServerAgent, ServerSettings, ServerState};
use switchboard_domain::token::TokenScope;

/// A server as the projection holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    /// Its id.
    pub id: ServerId,
    /// Its settings.
    pub settings: ServerSettings,
    /// Enabled, cordoned or disabled.
    pub state: ServerState,
    /// Reachable by health checks.
    pub online: bool,
    /// Its node agent, once one has reported.
    pub agent: Option<ServerAgent>,
    /// Stream version.
    pub version: i64,
}

impl ServerRecord {
    /// The aggregate state this row stands for.
    pub fn aggregate(&self) -> Server {
        Server {
            id: Some(self.id),
            settings: Some(self.settings.clone()),
            state: self.state,
            online: self.online,
            removed: false,
            agent: self.agent.clone(),
        }
    }

    /// Whether new meetings may be placed here: enabled, online, and its
    /// agent (if any) not gone away.
    pub fn takes_new_meetings(&self) -> bool {
        self.state == ServerState::Enabled && self.online && !self.agent_away()
    }

    /// Whether a node agent reports for it (and has not gone away): its
    /// heartbeats, not polls, then say whether it is online.
    pub fn has_live_agent(&self) -> bool {
        self.agent.as_ref().is_some_and(|agent| !agent.away)
    }

    /// Whether its agent said it is going away.
    pub fn agent_away(&self) -> bool {
        self.agent.as_ref().is_some_and(|agent| agent.away)
    }
}

/// An admin token in force (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Name.
    pub name: String,
    /// Scope.
    pub scope: TokenScope,
    /// SHA-256 of the token.
    pub hash: String,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// For a node token: the server it speaks for.
    pub server: Option<ServerId>,
}
