//! The log's vocabulary: every domain event with its stored type name and
//! schema version, and the metadata recorded beside it.

use crate::meeting::MeetingEvent;
use crate::recording::RecordingEvent;
use crate::server::ServerEvent;
use crate::tenant::TenantEvent;
use crate::token::TokenEvent;
use serde::{Deserialize, Serialize};

/// Any event Switchboard records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DomainEvent {
    /// About a server.
    Server(ServerEvent),
    /// About a meeting.
    Meeting(MeetingEvent),
    /// About an admin token.
    Token(TokenEvent),
    /// About a tenant.
    Tenant(TenantEvent),
    /// About a recording.
    Recording(RecordingEvent),
}

/// The schema version of every event type written today. A changed shape gets a
/// new version and an upcaster in the store.
pub const CURRENT_SCHEMA_VERSION: i32 = 1;

impl DomainEvent {
    /// The type name stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Server(event) => event.type_name(),
            Self::Meeting(event) => event.type_name(),
            Self::Token(event) => event.type_name(),
            Self::Tenant(event) => event.type_name(),
            Self::Recording(event) => event.type_name(),
        }
    }

    /// The JSON payload stored in the log (includes the `type` tag).
    pub fn to_payload(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Reads a stored payload back.
    pub fn from_payload(
        event_type: &str,
        payload: serde_json::Value,
    ) -> Result<Self, serde_json::Error> {
        if event_type.starts_with("Server") {
            serde_json::from_value(payload).map(Self::Server)
        } else if event_type.starts_with("Tenant") {
            serde_json::from_value(payload).map(Self::Tenant)
        } else if event_type.starts_with("Recording") {
            serde_json::from_value(payload).map(Self::Recording)
        } else if event_type.starts_with("Token") {
            serde_json::from_value(payload).map(Self::Token)
        } else {
            serde_json::from_value(payload).map(Self::Meeting)
        }
    }
}

impl From<ServerEvent> for DomainEvent {
    fn from(event: ServerEvent) -> Self {
        Self::Server(event)
    }
}

impl From<TokenEvent> for DomainEvent {
    fn from(event: TokenEvent) -> Self {
        Self::Token(event)
    }
}

impl From<TenantEvent> for DomainEvent {
    fn from(event: TenantEvent) -> Self {
        Self::Tenant(event)
    }
}

impl From<RecordingEvent> for DomainEvent {
    fn from(event: RecordingEvent) -> Self {
        Self::Recording(event)
    }
}

impl From<MeetingEvent> for DomainEvent {
    fn from(event: MeetingEvent) -> Self {
        Self::Meeting(event)
    }
}

/// Who caused an event and in which request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventMetadata {
    /// `cli`, `bbb-api:<tenant>`, `worker:health`, an admin token's name...
    pub actor: String,
    /// The request that caused it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The tenant it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl EventMetadata {
    /// Metadata with just an actor.
    pub fn actor(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ServerId;
    use crate::server::ServerSettings;

    #[test]
    fn stored_sample_payloads_still_read() {
        // Samples of version 1 as written to the log; they must keep reading.
        let added = serde_json::json!({
            "type": "ServerAdded",
            "id": "0192f0c4-7b1e-7cc0-8000-000000000001",
            "settings": {"url": "http://a/bigbluebutton/", "secret": "s", "tag": null, "load_multiplier": 1.0}
        });
        let event = DomainEvent::from_payload("ServerAdded", added).unwrap();
        assert_eq!(event.type_name(), "ServerAdded");
        let DomainEvent::Server(ServerEvent::ServerAdded { settings, .. }) = &event else {
            panic!("{event:?}");
        };
        assert_eq!(settings.metrics_url, None, "added before metrics URLs");
        let updated = serde_json::json!({"type": "ServerUpdated", "changes": {"tag": "big"}});
        let DomainEvent::Server(ServerEvent::ServerUpdated { changes }) =
            DomainEvent::from_payload("ServerUpdated", updated).unwrap()
        else {
            panic!("not an update");
        };
        assert_eq!(
            changes.metrics_url, None,
            "an old update leaves the URL alone"
        );
        let created = serde_json::json!({
            "type": "MeetingCreated", "tenant": "default", "meeting_id": "room-1", "name": "Room",
            "run": {"internal_id": "x-1", "server_id": "0192f0c4-7b1e-7cc0-8000-000000000001", "create_time_ms": 1}
        });
        assert_eq!(
            DomainEvent::from_payload("MeetingCreated", created)
                .unwrap()
                .type_name(),
            "MeetingCreated"
        );
    }

    #[test]
    fn payload_round_trips() {
        let event = DomainEvent::Server(ServerEvent::ServerAdded {
            id: ServerId::new(),
            settings: ServerSettings {
                url: "http://a/".into(),
                secret: "s".into(),
                tag: Some("t".into()),
                load_multiplier: 2.5,
                checksum: Some(crate::checksum::ChecksumAlgorithm::Sha1),
                metrics_url: Some("https://u:p@a:9100/metrics".into()),
            },
        });
        let back = DomainEvent::from_payload(event.type_name(), event.to_payload()).unwrap();
        assert_eq!(back, event);
    }
}
