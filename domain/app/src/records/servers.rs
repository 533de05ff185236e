//! Servers and tokens as the projections hold them.

use switchboard_domain::ids::ServerId;
use switchboard_domain::server::{Server, ServerSettings, ServerState};
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
        }
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
}
