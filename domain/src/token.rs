//! The admin token aggregate: a named bearer token with a scope. Only the
//! token's SHA-256 hash is ever recorded; the token itself is shown once.

use crate::aggregate::Aggregate;
use crate::ids::ServerId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Read and change everything.
    Admin,
    /// Read only.
    Read,
    /// A node agent: registers its own server and pushes its heartbeats,
    /// reads and changes nothing else.
    Node,
}

impl TokenScope {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Read => "read",
            Self::Node => "node",
        }
    }

    /// Parses `admin`, `read` or `node`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Self::Admin),
            "read" => Some(Self::Read),
            "node" => Some(Self::Node),
            _ => None,
        }
    }

    /// Whether this scope covers `needed`: admin covers everything, read
    /// covers reads, a node token covers only the agent's own calls.
    pub fn allows(self, needed: TokenScope) -> bool {
        match self {
            Self::Admin => true,
            Self::Read => needed == Self::Read,
            Self::Node => needed == Self::Node,
        }
    }
}

/// The hex SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Token {
    /// Name, set when created.
    pub name: Option<String>,
    /// Scope.
    pub scope: Option<TokenScope>,
    /// SHA-256 of the secret token.
    pub hash: String,
    /// Whether it is in force.
    pub active: bool,
    /// For a node token: the one server it speaks for.
    pub server: Option<ServerId>,
}

/// What can be asked of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCommand {
    /// Create it with the hash of a fresh secret.
    Create {
        /// Its name.
        name: String,
        /// Its scope.
        scope: TokenScope,
        /// SHA-256 of the secret.
        hash: String,
        /// For a node token: the server it is bound to from the start.
        server: Option<ServerId>,
    },
    /// Bind a node token to the server it registered.
    Bind(ServerId),
    /// Revoke it.
    Revoke,
}

/// What happened to a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TokenEvent {
    /// A token was created.
    TokenCreated {
        /// Its name.
        name: String,
        /// Its scope.
        scope: TokenScope,
        /// SHA-256 of the secret.
        hash: String,
        /// For a node token: the server it is bound to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<ServerId>,
    },
    /// A node token was bound to the server it registered.
    TokenBound {
        /// The server.
        server: ServerId,
    },
    /// It was revoked.
    TokenRevoked,
}

impl TokenEvent {
    /// The event's type name, as stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::TokenCreated { .. } => "TokenCreated",
            Self::TokenBound { .. } => "TokenBound",
            Self::TokenRevoked => "TokenRevoked",
        }
    }
}

/// Why a token command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// A token of that name is in force.
    #[error("a token named `{0}` exists; revoke it first")]
    Exists(String),
    /// No token of that name is in force.
    #[error("no token named `{0}`")]
    NotFound(String),
    /// Empty name, or characters other than letters, digits, `-`, `_`, `.`.
    #[error("token names are 1-64 letters, digits, `-`, `_` or `.`")]
    InvalidName,
    /// A server binding on a token that is not a node token.
    #[error("only node tokens are bound to a server")]
    NotNode,
    /// A node token already speaks for another server.
    #[error("node token `{0}` is bound to server {1}")]
    BoundElsewhere(String, ServerId),
}

/// Checks a token name.
pub fn validate_name(name: &str) -> Result<(), TokenError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(TokenError::InvalidName)
    }
}

/// The event stream of a token name.
pub fn token_stream(name: &str) -> crate::ids::StreamId {
    crate::ids::StreamId::Token(name.to_owned())
}

impl Aggregate for Token {
    type Command = TokenCommand;
    type Event = TokenEvent;
    type Error = TokenError;

    fn decide(&self, command: &TokenCommand) -> Result<Vec<TokenEvent>, TokenError> {
        match command {
            TokenCommand::Create {
                name,
                scope,
                hash,
                server,
            } => {
                validate_name(name)?;
                if self.active {
                    return Err(TokenError::Exists(name.clone()));
                }
                if server.is_some() && *scope != TokenScope::Node {
                    return Err(TokenError::NotNode);
                }
                Ok(vec![TokenEvent::TokenCreated {
                    name: name.clone(),
                    scope: *scope,
                    hash: hash.clone(),
                    server: *server,
                }])
            }
            TokenCommand::Bind(server) => {
                let name = self.name.clone().unwrap_or_default();
                if !self.active {
                    return Err(TokenError::NotFound(name));
                }
                if self.scope != Some(TokenScope::Node) {
                    return Err(TokenError::NotNode);
                }
                match self.server {
                    Some(bound) if bound == *server => Ok(Vec::new()),
                    Some(bound) => Err(TokenError::BoundElsewhere(name, bound)),
                    None => Ok(vec![TokenEvent::TokenBound { server: *server }]),
                }
            }
            TokenCommand::Revoke if self.active => Ok(vec![TokenEvent::TokenRevoked]),
            TokenCommand::Revoke => {
                Err(TokenError::NotFound(self.name.clone().unwrap_or_default()))
            }
        }
    }

    fn evolve(&mut self, event: &TokenEvent) {
        match event {
            TokenEvent::TokenCreated {
                name,
                scope,
                hash,
                server,
            } => {
                self.name = Some(name.clone());
                self.scope = Some(*scope);
                self.hash = hash.clone();
                self.active = true;
                self.server = *server;
            }
            TokenEvent::TokenBound { server } => self.server = Some(*server),
            TokenEvent::TokenRevoked => self.active = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str) -> TokenCommand {
        TokenCommand::Create {
            name: name.into(),
            scope: TokenScope::Read,
            hash: hash_token("secret"),
            server: None,
        }
    }

    #[test]
    fn create_revoke_and_create_again() {
        let events = Token::default().decide(&create("ops")).unwrap();
        let token = Token::fold(&events);
        assert!(token.active);
        assert_eq!(
            token.decide(&create("ops")),
            Err(TokenError::Exists("ops".into()))
        );
        let mut all = events;
        all.extend(token.decide(&TokenCommand::Revoke).unwrap());
        let revoked = Token::fold(&all);
        assert!(!revoked.active);
        assert!(revoked.decide(&TokenCommand::Revoke).is_err());
        assert_eq!(revoked.decide(&create("ops")).unwrap().len(), 1);
    }

    #[test]
    fn names_and_scopes_are_checked() {
        assert_eq!(
            Token::default().decide(&create("a b")),
            Err(TokenError::InvalidName)
        );
        assert!(TokenScope::Admin.allows(TokenScope::Read));
        assert!(!TokenScope::Read.allows(TokenScope::Admin));
        assert_eq!(TokenScope::parse("ADMIN"), Some(TokenScope::Admin));
        assert_eq!(hash_token("x").len(), 64);
    }

    #[test]
    fn a_node_token_covers_only_the_agent_calls() {
        assert!(TokenScope::Node.allows(TokenScope::Node));
        assert!(!TokenScope::Node.allows(TokenScope::Read));
        assert!(!TokenScope::Node.allows(TokenScope::Admin));
        assert!(!TokenScope::Read.allows(TokenScope::Node));
        assert!(TokenScope::Admin.allows(TokenScope::Node));
        assert_eq!(TokenScope::parse("node"), Some(TokenScope::Node));
    }

    #[test]
    fn a_node_token_is_bound_once() {
        let node = TokenCommand::Create {
            name: "bbb1".into(),
            scope: TokenScope::Node,
            hash: hash_token("secret"),
            server: None,
        };
        let token = Token::fold(&Token::default().decide(&node).unwrap());
        let (one, two) = (ServerId::new(), ServerId::new());
        let bound = token.decide(&TokenCommand::Bind(one)).unwrap();
        assert_eq!(bound, vec![TokenEvent::TokenBound { server: one }]);
        let mut token = token;
        token.evolve(&bound[0]);
        assert!(token.decide(&TokenCommand::Bind(one)).unwrap().is_empty());
        assert_eq!(
            token.decide(&TokenCommand::Bind(two)),
            Err(TokenError::BoundElsewhere("bbb1".into(), one))
        );
        let read = Token::fold(&Token::default().decide(&create("ro")).unwrap());
        assert_eq!(
            read.decide(&TokenCommand::Bind(one)),
            Err(TokenError::NotNode)
        );
    }
}
