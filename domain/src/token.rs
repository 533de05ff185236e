//! The admin token aggregate: a named bearer token with a scope. Only the
//! token's SHA-256 hash is ever recorded; the token itself is shown once.

use crate::aggregate::Aggregate;
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
}

impl TokenScope {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Read => "read",
        }
    }

    /// Parses `admin` or `read`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Self::Admin),
            "read" => Some(Self::Read),
            _ => None,
        }
    }

    /// Whether this scope covers `needed`.
    pub fn allows(self, needed: TokenScope) -> bool {
        self == TokenScope::Admin || needed == TokenScope::Read
    }
}

/// The hex SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Token {
    /// Name, set when created.
    pub name: Option<String>,
    /// Scope.
    pub scope: Option<TokenScope>,
    /// SHA-256 of the secret token.
    pub hash: String,
    /// Whether it is in force.
    pub active: bool,
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
    },
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
    },
    /// It was revoked.
    TokenRevoked,
}

impl TokenEvent {
    /// The event's type name, as stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::TokenCreated { .. } => "TokenCreated",
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
            TokenCommand::Create { name, scope, hash } => {
                validate_name(name)?;
                if self.active {
                    return Err(TokenError::Exists(name.clone()));
                }
                Ok(vec![TokenEvent::TokenCreated {
                    name: name.clone(),
                    scope: *scope,
                    hash: hash.clone(),
                }])
            }
            TokenCommand::Revoke if self.active => Ok(vec![TokenEvent::TokenRevoked]),
            TokenCommand::Revoke => {
                Err(TokenError::NotFound(self.name.clone().unwrap_or_default()))
            }
        }
    }

    fn evolve(&mut self, event: &TokenEvent) {
        match event {
            TokenEvent::TokenCreated { name, scope, hash } => {
                self.name = Some(name.clone());
                self.scope = Some(*scope);
                self.hash = hash.clone();
                self.active = true;
            }
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
}
