//! Identifiers, parsed at the edge into newtypes.

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::fmt;
use thiserror::Error;
use uuid::Uuid;

/// A BBB server in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerId(pub Uuid);

impl ServerId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The event stream of this server.
    pub fn stream(&self) -> String {
        format!("server:{}", self.0)
    }
}

impl Default for ServerId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for ServerId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim()).map(Self)
    }
}

/// The front-end a meeting belongs to. One default tenant for now.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub String);

impl TenantId {
    /// The name of the tenant used when no tenant is recognised.
    pub const DEFAULT: &'static str = "default";

    /// The tenant used when no tenants are configured.
    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    /// Whether this is the default tenant.
    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a meeting id was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MeetingIdError {
    /// Shorter than 2 or longer than 256 characters.
    #[error("meetingID must be 2 to 256 characters long")]
    Length,
    /// Contains a comma (reserved for lists in getRecordings).
    #[error("meetingID must not contain a comma")]
    Comma,
}

/// A front-end's meeting id (BBB's `meetingID`), validated as BBB does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MeetingId(String);

impl MeetingId {
    /// Validates a meetingID: 2-256 characters, no comma.
    pub fn parse(raw: &str) -> Result<Self, MeetingIdError> {
        let len = raw.chars().count();
        if !(2..=256).contains(&len) {
            return Err(MeetingIdError::Length);
        }
        if raw.contains(',') {
            return Err(MeetingIdError::Comma);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as the front-end sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// BBB's internal meeting id for a meeting created at `create_time_ms`.
    pub fn internal_id(&self, create_time_ms: i64) -> String {
        format!(
            "{}-{create_time_ms}",
            hex::encode(Sha1::digest(self.0.as_bytes()))
        )
    }
}

impl fmt::Display for MeetingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The event stream of a tenant's meeting id (all of its runs, one after another).
pub fn meeting_stream(tenant: &TenantId, meeting: &MeetingId) -> String {
    format!("meeting:{tenant}:{meeting}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meeting_ids_follow_bbb_rules() {
        assert!(MeetingId::parse("a").is_err());
        assert!(MeetingId::parse(&"x".repeat(257)).is_err());
        assert_eq!(MeetingId::parse("a,b"), Err(MeetingIdError::Comma));
        assert!(MeetingId::parse("Raum für Physik").is_ok());
    }

    #[test]
    fn internal_id_is_sha1_of_meeting_id_and_create_time() {
        let id = MeetingId::parse("room-42").unwrap();
        assert_eq!(
            id.internal_id(1741369843904),
            "6fea8cf5c91f71a844862ead37a54d70198c664e-1741369843904"
        );
    }
}
