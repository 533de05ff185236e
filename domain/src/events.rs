//! The log's vocabulary: every domain event with its stored type name and
//! schema version, and the metadata recorded beside it.

use crate::hook::HookEvent;
use crate::ids::StreamKind;
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
    /// About a webhook.
    Hook(HookEvent),
}

/// The schema version of every event type written today. A changed shape gets a
/// new version and an upcaster in [`UPCASTERS`].
pub const CURRENT_SCHEMA_VERSION: i32 = 1;

/// Rewrites a stored payload of one (type, schema version) into the shape of
/// the next schema version.
pub type Upcaster = fn(serde_json::Value) -> serde_json::Value;

/// The upcasters in force, keyed by (event type, the schema version they
/// read). Empty while every type is still at version 1; a shape change adds
/// its entry here and bumps [`CURRENT_SCHEMA_VERSION`].
pub const UPCASTERS: &[(&str, i32, Upcaster)] = &[];

/// Why a stored event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Written by a newer Switchboard than this one.
    #[error(
        "event `{event_type}` has schema version {version}, newer than this build's {CURRENT_SCHEMA_VERSION}"
    )]
    TooNew {
        /// The event type.
        event_type: String,
        /// Its stored schema version.
        version: i32,
    },
    /// An older version without an upcaster to the next.
    #[error("no upcaster for event `{event_type}` at schema version {version}")]
    NoUpcaster {
        /// The event type.
        event_type: String,
        /// Its stored schema version.
        version: i32,
    },
    /// The payload does not have the type's shape.
    #[error("payload of `{event_type}` does not match its type: {source}")]
    Shape {
        /// The event type.
        event_type: String,
        /// What serde said.
        source: serde_json::Error,
    },
    /// The stored type does not belong to the stream's aggregate.
    #[error("event `{event_type}` does not belong to a {kind:?} stream")]
    WrongStream {
        /// The event type.
        event_type: String,
        /// The stream's kind.
        kind: StreamKind,
    },
}

/// Brings a stored payload from `version` up to [`CURRENT_SCHEMA_VERSION`]
/// with the upcasters of `table` (production: [`UPCASTERS`]).
pub fn upcast(
    table: &[(&str, i32, Upcaster)],
    event_type: &str,
    mut version: i32,
    mut payload: serde_json::Value,
) -> Result<serde_json::Value, DecodeError> {
    if version > CURRENT_SCHEMA_VERSION {
        return Err(DecodeError::TooNew {
            event_type: event_type.to_owned(),
            version,
        });
    }
    while version < CURRENT_SCHEMA_VERSION {
        let (_, _, step) = table
            .iter()
            .find(|(name, from, _)| *name == event_type && *from == version)
            .ok_or_else(|| DecodeError::NoUpcaster {
                event_type: event_type.to_owned(),
                version,
            })?;
        payload = step(payload);
        version += 1;
    }
    Ok(payload)
}

impl DomainEvent {
    /// The type name stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Server(event) => event.type_name(),
            Self::Meeting(event) => event.type_name(),
            Self::Token(event) => event.type_name(),
            Self::Tenant(event) => event.type_name(),
            Self::Recording(event) => event.type_name(),
            Self::Hook(event) => event.type_name(),
        }
    }

    /// The aggregate (stream kind) the event belongs to.
    pub fn kind(&self) -> StreamKind {
        match self {
            Self::Server(_) => StreamKind::Server,
            Self::Meeting(_) => StreamKind::Meeting,
            Self::Token(_) => StreamKind::Token,
            Self::Tenant(_) => StreamKind::Tenant,
            Self::Recording(_) => StreamKind::Recording,
            Self::Hook(_) => StreamKind::Hook,
        }
    }

    /// The JSON payload stored in the log (includes the `type` tag).
    pub fn to_payload(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    /// Reads a stored event back: the stream's kind says which aggregate's
    /// event it is; older schema versions go through [`UPCASTERS`] first.
    pub fn from_stored(
        kind: StreamKind,
        event_type: &str,
        schema_version: i32,
        payload: serde_json::Value,
    ) -> Result<Self, DecodeError> {
        Self::from_stored_with(UPCASTERS, kind, event_type, schema_version, payload)
    }

    /// As [`from_stored`](Self::from_stored), with the given upcasters.
    pub fn from_stored_with(
        upcasters: &[(&str, i32, Upcaster)],
        kind: StreamKind,
        event_type: &str,
        schema_version: i32,
        payload: serde_json::Value,
    ) -> Result<Self, DecodeError> {
        let payload = upcast(upcasters, event_type, schema_version, payload)?;
        let shape = |source| DecodeError::Shape {
            event_type: event_type.to_owned(),
            source,
        };
        let event = match kind {
            StreamKind::Server => serde_json::from_value(payload).map(Self::Server),
            StreamKind::Meeting => serde_json::from_value(payload).map(Self::Meeting),
            StreamKind::Token => serde_json::from_value(payload).map(Self::Token),
            StreamKind::Tenant => serde_json::from_value(payload).map(Self::Tenant),
            StreamKind::Recording => serde_json::from_value(payload).map(Self::Recording),
            StreamKind::Hook => serde_json::from_value(payload).map(Self::Hook),
        }
        .map_err(shape)?;
        if event.type_name() != event_type {
            return Err(DecodeError::WrongStream {
                event_type: event_type.to_owned(),
                kind,
            });
        }
        Ok(event)
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

impl From<HookEvent> for DomainEvent {
    fn from(event: HookEvent) -> Self {
        Self::Hook(event)
    }
}

impl From<MeetingEvent> for DomainEvent {
    fn from(event: MeetingEvent) -> Self {
        Self::Meeting(event)
    }
}

/// An aggregate's own event type: wrapped into and read back out of
/// [`DomainEvent`].
pub trait AggregateEvent: Into<DomainEvent> + Clone {
    /// This aggregate's event inside `event`, if it is one.
    fn from_domain(event: DomainEvent) -> Option<Self>;
}

macro_rules! aggregate_event {
    ($event:ty, $variant:ident) => {
        impl AggregateEvent for $event {
            fn from_domain(event: DomainEvent) -> Option<Self> {
                match event {
                    DomainEvent::$variant(event) => Some(event),
                    _ => None,
                }
            }
        }
    };
}

aggregate_event!(ServerEvent, Server);
aggregate_event!(MeetingEvent, Meeting);
aggregate_event!(TokenEvent, Token);
aggregate_event!(TenantEvent, Tenant);
aggregate_event!(RecordingEvent, Recording);
aggregate_event!(HookEvent, Hook);

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
        let event = DomainEvent::from_stored(StreamKind::Server, "ServerAdded", 1, added).unwrap();
        assert_eq!(event.type_name(), "ServerAdded");
        let DomainEvent::Server(ServerEvent::ServerAdded { settings, .. }) = &event else {
            panic!("{event:?}");
        };
        assert_eq!(settings.metrics_url, None, "added before metrics URLs");
        let updated = serde_json::json!({"type": "ServerUpdated", "changes": {"tag": "big"}});
        let DomainEvent::Server(ServerEvent::ServerUpdated { changes }) =
            DomainEvent::from_stored(StreamKind::Server, "ServerUpdated", 1, updated).unwrap()
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
            DomainEvent::from_stored(StreamKind::Meeting, "MeetingCreated", 1, created)
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
                checksum: Some(crate::bbb::checksum::ChecksumAlgorithm::Sha1),
                metrics_url: Some("https://u:p@a:9100/metrics".into()),
            },
        });
        let back = DomainEvent::from_stored(
            event.kind(),
            event.type_name(),
            CURRENT_SCHEMA_VERSION,
            event.to_payload().unwrap(),
        )
        .unwrap();
        assert_eq!(back, event);
    }

    /// A stored version-0 sample of `ServerCordoned` that carried a `reason`
    /// field the type no longer has: the hook's step rewrites it before the
    /// payload is read.
    #[test]
    fn older_schema_versions_are_upcast_before_reading() {
        fn drop_reason(mut payload: serde_json::Value) -> serde_json::Value {
            if let Some(object) = payload.as_object_mut() {
                object.remove("reason");
                object.insert("type".into(), "ServerCordoned".into());
            }
            payload
        }
        let stored: serde_json::Value =
            serde_json::from_str(r#"{"type":"ServerDrained","reason":"maintenance"}"#).unwrap();
        let table: &[(&str, i32, Upcaster)] = &[("ServerCordoned", 0, drop_reason)];
        let event = DomainEvent::from_stored_with(
            table,
            StreamKind::Server,
            "ServerCordoned",
            0,
            stored.clone(),
        )
        .unwrap();
        assert_eq!(event, DomainEvent::Server(ServerEvent::ServerCordoned));
        assert!(matches!(
            DomainEvent::from_stored(StreamKind::Server, "ServerCordoned", 0, stored),
            Err(DecodeError::NoUpcaster { version: 0, .. })
        ));
        assert!(matches!(
            DomainEvent::from_stored(
                StreamKind::Server,
                "ServerCordoned",
                2,
                serde_json::json!({})
            ),
            Err(DecodeError::TooNew { version: 2, .. })
        ));
    }

    #[test]
    fn an_event_read_from_another_aggregates_stream_is_refused() {
        let created =
            serde_json::json!({"type": "TokenCreated", "name": "x", "scope": "admin", "hash": "h"});
        assert!(DomainEvent::from_stored(StreamKind::Server, "TokenCreated", 1, created).is_err());
    }
}
