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
    pub fn stream(&self) -> StreamId {
        StreamId::Server(*self)
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

    /// The name held by what belongs to no tenant yet (a recording of a run
    /// Switchboard does not know, in a pool with tenants). Not a DNS label,
    /// so no tenant can be created with it and no front-end sees it.
    pub const UNASSIGNED: &'static str = "-unassigned";

    /// The owner of something of a run the log does not know: nobody
    /// ([`TenantId::UNASSIGNED`]) when tenants other than the default exist
    /// (it may be any of theirs), else the default tenant (every front-end
    /// is the default tenant's).
    pub fn owner_of_unknown_run(other_tenants_exist: bool) -> Self {
        if other_tenants_exist {
            Self(Self::UNASSIGNED.to_owned())
        } else {
            Self::default_tenant()
        }
    }

    /// Whether this is the [`TenantId::UNASSIGNED`] owner.
    pub fn is_unassigned(&self) -> bool {
        self.0 == Self::UNASSIGNED
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
pub fn meeting_stream(tenant: &TenantId, meeting: &MeetingId) -> StreamId {
    StreamId::Meeting(tenant.clone(), meeting.clone())
}

/// The aggregate kinds, each with its own kind of stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// `server:<uuid>`
    Server,
    /// `meeting:<tenant>:<meetingID>`
    Meeting,
    /// `token:<name>`
    Token,
    /// `tenant:<name>`
    Tenant,
    /// `recording:<recordID>`
    Recording,
    /// `hook:<uuid>`
    Hook,
}

impl StreamKind {
    /// The prefix its streams are written with (before the first `:`).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Meeting => "meeting",
            Self::Token => "token",
            Self::Tenant => "tenant",
            Self::Recording => "recording",
            Self::Hook => "hook",
        }
    }
}

/// The event stream of one aggregate. Stored as text (`server:<uuid>`,
/// `meeting:<tenant>:<meetingID>`, `token:<name>`, `tenant:<name>`,
/// `recording:<recordID>`); [`Display`](fmt::Display) writes that form and
/// [`FromStr`](std::str::FromStr) reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamId {
    /// A server.
    Server(ServerId),
    /// A tenant's meetingID (all of its runs).
    Meeting(TenantId, MeetingId),
    /// An admin token, by name.
    Token(String),
    /// A tenant, by name.
    Tenant(String),
    /// A recording, by record id.
    Recording(String),
    /// A webhook, by its id.
    Hook(String),
}

impl StreamId {
    /// Which aggregate the stream belongs to.
    pub fn kind(&self) -> StreamKind {
        match self {
            Self::Server(_) => StreamKind::Server,
            Self::Meeting(..) => StreamKind::Meeting,
            Self::Token(_) => StreamKind::Token,
            Self::Tenant(_) => StreamKind::Tenant,
            Self::Recording(_) => StreamKind::Recording,
            Self::Hook(_) => StreamKind::Hook,
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server(id) => write!(f, "server:{id}"),
            Self::Meeting(tenant, meeting) => write!(f, "meeting:{tenant}:{meeting}"),
            Self::Token(name) => write!(f, "token:{name}"),
            Self::Tenant(name) => write!(f, "tenant:{name}"),
            Self::Recording(id) => write!(f, "recording:{id}"),
            Self::Hook(id) => write!(f, "hook:{id}"),
        }
    }
}

/// A stream name that is not one of Switchboard's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not a Switchboard event stream")]
pub struct UnknownStream(pub String);

impl std::str::FromStr for StreamId {
    type Err = UnknownStream;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownStream(s.to_owned());
        let (kind, rest) = s.split_once(':').ok_or_else(unknown)?;
        if rest.is_empty() {
            return Err(unknown());
        }
        Ok(match kind {
            "server" => Self::Server(rest.parse().map_err(|_| unknown())?),
            "meeting" => {
                // Tenant names are DNS labels (no `:`); meetingIDs may hold one.
                let (tenant, meeting) = rest.split_once(':').ok_or_else(unknown)?;
                Self::Meeting(
                    TenantId(tenant.to_owned()),
                    MeetingId::parse(meeting).map_err(|_| unknown())?,
                )
            }
            "token" => Self::Token(rest.to_owned()),
            "tenant" => Self::Tenant(rest.to_owned()),
            "recording" => Self::Recording(rest.to_owned()),
            "hook" => Self::Hook(rest.to_owned()),
            _ => return Err(unknown()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_written_and_read_back() {
        let server = ServerId::new();
        let streams = [
            StreamId::Server(server),
            StreamId::Meeting(
                TenantId("acme".into()),
                MeetingId::parse("room:1:a").unwrap(),
            ),
            StreamId::Token("ci".into()),
            StreamId::Tenant("acme".into()),
            StreamId::Recording("abc-1".into()),
        ];
        for stream in streams {
            let text = stream.to_string();
            assert_eq!(text.parse::<StreamId>().unwrap(), stream, "{text}");
        }
        assert_eq!(
            StreamId::Meeting(TenantId("t".into()), MeetingId::parse("m:x").unwrap()).to_string(),
            "meeting:t:m:x"
        );
        assert_eq!(format!("{}", server.stream()), format!("server:{server}"));
        for bad in [
            "",
            "server",
            "server:",
            "server:nope",
            "bogus:x",
            "meeting:t",
        ] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad}");
        }
    }

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
