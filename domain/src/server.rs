//! The server aggregate: a BBB server of the pool, its settings and its state.

use crate::aggregate::Aggregate;
use crate::bbb::checksum::ChecksumAlgorithm;
use crate::ids::ServerId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Whether a server takes new meetings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    /// Takes new meetings and joins.
    Enabled,
    /// Takes joins for its meetings, but no new meetings (draining).
    Cordoned,
    /// Takes nothing. New servers start here, as in Scalelite.
    #[default]
    Disabled,
}

impl ServerState {
    /// Lower-case name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Cordoned => "cordoned",
            Self::Disabled => "disabled",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "enabled" => Some(Self::Enabled),
            "cordoned" => Some(Self::Cordoned),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// The settings an operator gives a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSettings {
    /// Base URL, e.g. `https://bbb1.example.org/bigbluebutton/`.
    pub url: String,
    /// The server's shared secret.
    pub secret: String,
    /// Optional tag for `meta_server-tag` placement.
    pub tag: Option<String>,
    /// Load weight: 2.0 makes the server look twice as loaded (a smaller machine).
    pub load_multiplier: f64,
    /// Checksum algorithm for calls to this server; `None` uses the configured
    /// default (old servers may accept sha1 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ChecksumAlgorithm>,
    /// Prometheus text endpoint with the server's CPU and memory (e.g.
    /// node_exporter's `http://host:9100/metrics`); may carry credentials,
    /// so show it only through [`crate::server_metrics::redact_credentials`].
    /// Events written before it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
}

/// A server as its events describe it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Server {
    /// Set once added.
    pub id: Option<ServerId>,
    /// Current settings.
    pub settings: Option<ServerSettings>,
    /// Enabled, cordoned or disabled.
    pub state: ServerState,
    /// Whether health checks reach it. New servers count as online until a
    /// health check says otherwise.
    pub online: bool,
    /// Removed servers keep their stream but are gone from the pool.
    pub removed: bool,
    /// The node agent that reports for it, once one has.
    pub agent: Option<ServerAgent>,
}

/// What a server's node agent said of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAgent {
    /// BBB's version as the server reports it (empty when unknown).
    pub version: String,
    /// How often it sends heartbeats (ms).
    pub interval_ms: u64,
    /// The agent said it is going away: no new meetings until it is back,
    /// and missing heartbeats do not make the server offline.
    pub away: bool,
}

/// A change to some settings; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerChanges {
    /// New base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// New secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// New tag; `Some(None)` clears it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub tag: Option<Option<String>>,
    /// New load multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_multiplier: Option<f64>,
    /// New checksum algorithm; `Some(None)` returns to the default.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub checksum: Option<Option<ChecksumAlgorithm>>,
    /// New metrics URL; `Some(None)` removes it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub metrics_url: Option<Option<String>>,
}

/// A field that is present (even as `null`) is a change: `null` clears.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// What an operator or a worker can ask of a server.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerCommand {
    /// Add a new server (disabled unless `enabled`).
    Add {
        /// The new server's id.
        id: ServerId,
        /// Its settings.
        settings: ServerSettings,
        /// Start enabled instead of disabled.
        enabled: bool,
    },
    /// Change settings.
    Update(ServerChanges),
    /// Take new meetings.
    Enable,
    /// Take no new meetings; existing ones go on.
    Cordon,
    /// Take nothing.
    Disable,
    /// Leave the pool.
    Remove,
    /// A health check decided the server is reachable.
    MarkOnline,
    /// A health check decided the server is unreachable.
    MarkOffline,
    /// Its node agent reported (a heartbeat): recorded only when the agent
    /// is new, back, or its version or interval changed.
    ReportAgent {
        /// BBB's version.
        version: String,
        /// Heartbeat interval (ms).
        interval_ms: u64,
    },
    /// Its node agent is going away (stopped cleanly).
    AgentLeave,
}

/// What happened to a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerEvent {
    /// A server joined the pool (disabled).
    ServerAdded {
        /// Its id.
        id: ServerId,
        /// Its settings.
        settings: ServerSettings,
    },
    /// Settings changed.
    ServerUpdated {
        /// The fields that changed.
        changes: ServerChanges,
    },
    /// Takes new meetings.
    ServerEnabled,
    /// Takes joins but no new meetings.
    ServerCordoned,
    /// Takes nothing.
    ServerDisabled,
    /// Left the pool.
    ServerRemoved,
    /// Reachable again.
    ServerWentOnline,
    /// No longer reachable.
    ServerWentOffline,
    /// A node agent reports for it: new, back, or with a new version or
    /// interval.
    AgentReported {
        /// BBB's version.
        version: String,
        /// Heartbeat interval (ms).
        interval_ms: u64,
    },
    /// Its node agent went away cleanly: no new meetings until it is back.
    AgentLeft,
}

impl ServerEvent {
    /// The event's type name, as stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ServerAdded { .. } => "ServerAdded",
            Self::ServerUpdated { .. } => "ServerUpdated",
            Self::ServerEnabled => "ServerEnabled",
            Self::ServerCordoned => "ServerCordoned",
            Self::ServerDisabled => "ServerDisabled",
            Self::ServerRemoved => "ServerRemoved",
            Self::ServerWentOnline => "ServerWentOnline",
            Self::ServerWentOffline => "ServerWentOffline",
            Self::AgentReported { .. } => "AgentReported",
            Self::AgentLeft => "AgentLeft",
        }
    }
}

/// Why a server command was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ServerError {
    /// Add on an existing server.
    #[error("server {0} already exists")]
    AlreadyExists(ServerId),
    /// Any command but add on a server that was never added.
    #[error("no such server")]
    NotFound,
    /// Any command on a removed server.
    #[error("server {0} was removed")]
    Removed(ServerId),
    /// URL is not http(s).
    #[error("invalid server URL `{0}`: it must start with http:// or https://")]
    InvalidUrl(String),
    /// Empty secret.
    #[error("the server secret must not be empty")]
    EmptySecret,
    /// Zero, negative or not a number.
    #[error("load multiplier must be a positive number, got {0}")]
    InvalidLoadMultiplier(f64),
    /// Empty tag.
    #[error("a tag must not be empty; leave it out for an untagged server")]
    EmptyTag,
    /// A metrics URL that is not http(s); not echoed, it may carry credentials.
    #[error("invalid metrics URL: it must start with http:// or https:// and name a host")]
    InvalidMetricsUrl,
    /// A tag `meta_server-tag` could never select.
    #[error(
        "invalid tag `{0}`: no surrounding blanks, no `;` and no trailing `!` (those have a meaning in meta_server-tag)"
    )]
    InvalidTag(String),
}

/// Checks settings an operator gave, normalising the URL to end with `/`.
pub fn validate_settings(mut settings: ServerSettings) -> Result<ServerSettings, ServerError> {
    settings.url = normalise_url(&settings.url)?;
    validate_secret(&settings.secret)?;
    validate_multiplier(settings.load_multiplier)?;
    if let Some(tag) = &settings.tag {
        validate_tag(tag)?;
    }
    if let Some(url) = &settings.metrics_url {
        settings.metrics_url = Some(validate_metrics_url(url)?);
    }
    Ok(settings)
}

fn validate_metrics_url(url: &str) -> Result<String, ServerError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !url.contains(' ') => {
            Ok(url.to_owned())
        }
        _ => Err(ServerError::InvalidMetricsUrl),
    }
}

fn normalise_url(url: &str) -> Result<String, ServerError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !url.contains(' ') => {
            // Scalelite-style URLs name the API endpoint; keep the base.
            let base = url.trim_end_matches('/');
            let base = base.strip_suffix("/api").unwrap_or(base);
            Ok(format!("{base}/"))
        }
        _ => Err(ServerError::InvalidUrl(url.to_owned())),
    }
}

fn validate_secret(secret: &str) -> Result<(), ServerError> {
    if secret.trim().is_empty() {
        Err(ServerError::EmptySecret)
    } else {
        Ok(())
    }
}

fn validate_multiplier(value: f64) -> Result<(), ServerError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ServerError::InvalidLoadMultiplier(value))
    }
}

fn validate_tag(tag: &str) -> Result<(), ServerError> {
    if tag.trim().is_empty() {
        Err(ServerError::EmptyTag)
    } else if tag.trim() != tag || tag.contains(';') || tag.ends_with('!') {
        Err(ServerError::InvalidTag(tag.to_owned()))
    } else {
        Ok(())
    }
}

impl Server {
    fn existing(&self) -> Result<ServerId, ServerError> {
        match self.id {
            None => Err(ServerError::NotFound),
            Some(id) if self.removed => Err(ServerError::Removed(id)),
            Some(id) => Ok(id),
        }
    }

    fn transition(&self, target: ServerState, event: ServerEvent) -> Vec<ServerEvent> {
        if self.state == target {
            Vec::new()
        } else {
            vec![event]
        }
    }
}

impl Aggregate for Server {
    type Command = ServerCommand;
    type Event = ServerEvent;
    type Error = ServerError;

    fn decide(&self, command: &ServerCommand) -> Result<Vec<ServerEvent>, ServerError> {
        if let ServerCommand::Add {
            id,
            settings,
            enabled,
        } = command
        {
            if let Some(existing) = self.id {
                return Err(ServerError::AlreadyExists(existing));
            }
            let settings = validate_settings(settings.clone())?;
            let mut events = vec![ServerEvent::ServerAdded { id: *id, settings }];
            if *enabled {
                events.push(ServerEvent::ServerEnabled);
            }
            return Ok(events);
        }
        self.existing()?;
        Ok(match command {
            ServerCommand::Add { .. } => unreachable!("handled above"),
            ServerCommand::Update(changes) => {
                let mut changes = changes.clone();
                if let Some(url) = &changes.url {
                    changes.url = Some(normalise_url(url)?);
                }
                if let Some(secret) = &changes.secret {
                    validate_secret(secret)?;
                }
                if let Some(value) = changes.load_multiplier {
                    validate_multiplier(value)?;
                }
                if let Some(Some(tag)) = &changes.tag {
                    validate_tag(tag)?;
                }
                if let Some(Some(url)) = &changes.metrics_url {
                    changes.metrics_url = Some(Some(validate_metrics_url(url)?));
                }
                let current = self.settings.as_ref().ok_or(ServerError::NotFound)?;
                // Keep only real changes so the log stays meaningful.
                if changes.url.as_ref() == Some(&current.url) {
                    changes.url = None;
                }
                if changes.secret.as_ref() == Some(&current.secret) {
                    changes.secret = None;
                }
                if changes.tag.as_ref() == Some(&current.tag) {
                    changes.tag = None;
                }
                if changes.load_multiplier == Some(current.load_multiplier) {
                    changes.load_multiplier = None;
                }
                if changes.checksum == Some(current.checksum) {
                    changes.checksum = None;
                }
                if changes.metrics_url.as_ref() == Some(&current.metrics_url) {
                    changes.metrics_url = None;
                }
                if changes == ServerChanges::default() {
                    Vec::new()
                } else {
                    vec![ServerEvent::ServerUpdated { changes }]
                }
            }
            ServerCommand::Enable => {
                self.transition(ServerState::Enabled, ServerEvent::ServerEnabled)
            }
            ServerCommand::Cordon => {
                self.transition(ServerState::Cordoned, ServerEvent::ServerCordoned)
            }
            ServerCommand::Disable => {
                self.transition(ServerState::Disabled, ServerEvent::ServerDisabled)
            }
            ServerCommand::Remove => vec![ServerEvent::ServerRemoved],
            ServerCommand::MarkOnline if !self.online => vec![ServerEvent::ServerWentOnline],
            ServerCommand::MarkOffline if self.online => vec![ServerEvent::ServerWentOffline],
            ServerCommand::MarkOnline | ServerCommand::MarkOffline => Vec::new(),
            ServerCommand::ReportAgent {
                version,
                interval_ms,
            } => {
                let reported = ServerAgent {
                    version: version.clone(),
                    interval_ms: *interval_ms,
                    away: false,
                };
                if self.agent.as_ref() == Some(&reported) {
                    Vec::new()
                } else {
                    vec![ServerEvent::AgentReported {
                        version: version.clone(),
                        interval_ms: *interval_ms,
                    }]
                }
            }
            ServerCommand::AgentLeave => match &self.agent {
                Some(agent) if !agent.away => vec![ServerEvent::AgentLeft],
                _ => Vec::new(),
            },
        })
    }

    fn evolve(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::ServerAdded { id, settings } => {
                self.id = Some(*id);
                self.settings = Some(settings.clone());
                self.state = ServerState::Disabled;
                self.online = true;
            }
            ServerEvent::ServerUpdated { changes } => {
                if let Some(settings) = &mut self.settings {
                    apply_changes(settings, changes);
                }
            }
            ServerEvent::ServerEnabled => self.state = ServerState::Enabled,
            ServerEvent::ServerCordoned => self.state = ServerState::Cordoned,
            ServerEvent::ServerDisabled => self.state = ServerState::Disabled,
            ServerEvent::ServerRemoved => self.removed = true,
            ServerEvent::ServerWentOnline => self.online = true,
            ServerEvent::ServerWentOffline => self.online = false,
            ServerEvent::AgentReported {
                version,
                interval_ms,
            } => {
                self.agent = Some(ServerAgent {
                    version: version.clone(),
                    interval_ms: *interval_ms,
                    away: false,
                })
            }
            ServerEvent::AgentLeft => {
                if let Some(agent) = &mut self.agent {
                    agent.away = true;
                }
            }
        }
    }
}

/// Applies a settings change (shared by the aggregate and the projections).
pub fn apply_changes(settings: &mut ServerSettings, changes: &ServerChanges) {
    if let Some(url) = &changes.url {
        settings.url = url.clone();
    }
    if let Some(secret) = &changes.secret {
        settings.secret = secret.clone();
    }
    if let Some(tag) = &changes.tag {
        settings.tag = tag.clone();
    }
    if let Some(value) = changes.load_multiplier {
        settings.load_multiplier = value;
    }
    if let Some(checksum) = changes.checksum {
        settings.checksum = checksum;
    }
    if let Some(url) = &changes.metrics_url {
        settings.metrics_url = url.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ServerSettings {
        ServerSettings {
            url: "https://bbb1.example.org/bigbluebutton".into(),
            secret: "s3cret".into(),
            tag: None,
            load_multiplier: 1.0,
            checksum: None,
            metrics_url: None,
        }
    }

    #[test]
    fn scalelite_style_api_urls_keep_their_base() {
        for url in [
            "https://bbb1.example.org/bigbluebutton/api",
            "https://bbb1.example.org/bigbluebutton/api/",
            "https://bbb1.example.org/bigbluebutton",
        ] {
            assert_eq!(
                normalise_url(url).unwrap(),
                "https://bbb1.example.org/bigbluebutton/"
            );
        }
    }

    fn given(events: &[ServerEvent]) -> Server {
        Server::fold(events)
    }

    fn added() -> Vec<ServerEvent> {
        let id = ServerId::new();
        Server::default()
            .decide(&ServerCommand::Add {
                id,
                settings: settings(),
                enabled: false,
            })
            .unwrap()
    }

    #[test]
    fn add_starts_disabled_and_normalises_the_url() {
        let events = added();
        assert_eq!(events.len(), 1);
        let server = given(&events);
        assert_eq!(server.state, ServerState::Disabled);
        assert!(server.online);
        assert_eq!(
            server.settings.unwrap().url,
            "https://bbb1.example.org/bigbluebutton/"
        );
    }

    #[test]
    fn add_enabled_records_both_facts() {
        let events = Server::default()
            .decide(&ServerCommand::Add {
                id: ServerId::new(),
                settings: settings(),
                enabled: true,
            })
            .unwrap();
        assert_eq!(events[1], ServerEvent::ServerEnabled);
        assert_eq!(given(&events).state, ServerState::Enabled);
    }

    #[test]
    fn bad_settings_are_refused_with_reasons() {
        let cases = [
            (
                ServerSettings {
                    url: "ftp://x".into(),
                    ..settings()
                },
                ServerError::InvalidUrl("ftp://x".into()),
            ),
            (
                ServerSettings {
                    secret: " ".into(),
                    ..settings()
                },
                ServerError::EmptySecret,
            ),
            (
                ServerSettings {
                    load_multiplier: 0.0,
                    ..settings()
                },
                ServerError::InvalidLoadMultiplier(0.0),
            ),
            (
                ServerSettings {
                    tag: Some(String::new()),
                    ..settings()
                },
                ServerError::EmptyTag,
            ),
        ];
        for (bad, expected) in cases {
            let result = Server::default().decide(&ServerCommand::Add {
                id: ServerId::new(),
                settings: bad,
                enabled: false,
            });
            assert_eq!(result, Err(expected));
        }
    }

    #[test]
    fn tags_must_be_selectable_by_meta_server_tag() {
        for tag in ["gpu ", "a;b", "x!"] {
            let result = Server::default().decide(&ServerCommand::Add {
                id: ServerId::new(),
                settings: ServerSettings {
                    tag: Some(tag.into()),
                    ..settings()
                },
                enabled: false,
            });
            assert_eq!(result, Err(ServerError::InvalidTag(tag.into())));
        }
    }

    #[test]
    fn state_changes_are_idempotent() {
        let server = given(&added());
        assert_eq!(server.decide(&ServerCommand::Disable).unwrap(), vec![]);
        let enabled = server.decide(&ServerCommand::Enable).unwrap();
        assert_eq!(enabled, vec![ServerEvent::ServerEnabled]);
        let mut events = added();
        events.extend(enabled);
        let server = given(&events);
        assert_eq!(server.decide(&ServerCommand::Enable).unwrap(), vec![]);
        assert_eq!(
            server.decide(&ServerCommand::Cordon).unwrap(),
            vec![ServerEvent::ServerCordoned]
        );
    }

    #[test]
    fn health_flips_only_record_changes() {
        let mut events = added();
        let server = given(&events);
        assert_eq!(server.decide(&ServerCommand::MarkOnline).unwrap(), vec![]);
        events.extend(server.decide(&ServerCommand::MarkOffline).unwrap());
        let server = given(&events);
        assert!(!server.online);
        assert_eq!(server.decide(&ServerCommand::MarkOffline).unwrap(), vec![]);
    }

    #[test]
    fn removed_and_unknown_servers_refuse_commands() {
        let mut events = added();
        events.push(ServerEvent::ServerRemoved);
        let server = given(&events);
        assert!(matches!(
            server.decide(&ServerCommand::Enable),
            Err(ServerError::Removed(_))
        ));
        assert_eq!(
            Server::default().decide(&ServerCommand::Enable),
            Err(ServerError::NotFound)
        );
    }

    #[test]
    fn a_cleared_tag_survives_the_log() {
        let changes = ServerChanges {
            tag: Some(None),
            checksum: Some(None),
            ..Default::default()
        };
        let json = serde_json::to_string(&ServerEvent::ServerUpdated {
            changes: changes.clone(),
        })
        .unwrap();
        let back: ServerEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ServerEvent::ServerUpdated { changes });
        let untouched: ServerChanges = serde_json::from_str("{}").unwrap();
        assert_eq!(untouched, ServerChanges::default());
    }

    #[test]
    fn update_records_only_what_changed() {
        let server = given(&added());
        let unchanged = ServerChanges {
            secret: Some("s3cret".into()),
            ..Default::default()
        };
        assert_eq!(
            server.decide(&ServerCommand::Update(unchanged)).unwrap(),
            vec![]
        );
        let changes = ServerChanges {
            secret: Some("new".into()),
            tag: Some(Some("big".into())),
            ..Default::default()
        };
        let events = server
            .decide(&ServerCommand::Update(changes.clone()))
            .unwrap();
        assert_eq!(events, vec![ServerEvent::ServerUpdated { changes }]);
        let mut all = added();
        all.extend(events);
        let settings = given(&all).settings.unwrap();
        assert_eq!(settings.secret, "new");
        assert_eq!(settings.tag.as_deref(), Some("big"));
    }

    #[test]
    fn metrics_urls_are_checked_set_and_cleared() {
        let refused = Server::default().decide(&ServerCommand::Add {
            id: ServerId::new(),
            settings: ServerSettings {
                metrics_url: Some("bbb1:9100/metrics".into()),
                ..settings()
            },
            enabled: false,
        });
        assert_eq!(refused, Err(ServerError::InvalidMetricsUrl));
        let mut events = added();
        let set = ServerChanges {
            metrics_url: Some(Some(" http://u:p@bbb1:9100/metrics ".into())),
            ..Default::default()
        };
        events.extend(given(&events).decide(&ServerCommand::Update(set)).unwrap());
        assert_eq!(
            given(&events).settings.unwrap().metrics_url.as_deref(),
            Some("http://u:p@bbb1:9100/metrics")
        );
        let same = ServerChanges {
            metrics_url: Some(Some("http://u:p@bbb1:9100/metrics".into())),
            ..Default::default()
        };
        assert_eq!(
            given(&events).decide(&ServerCommand::Update(same)).unwrap(),
            vec![]
        );
        let clear = ServerChanges {
            metrics_url: Some(None),
            ..Default::default()
        };
        let cleared = given(&events)
            .decide(&ServerCommand::Update(clear.clone()))
            .unwrap();
        assert_eq!(cleared, vec![ServerEvent::ServerUpdated { changes: clear }]);
        events.extend(cleared);
        assert_eq!(given(&events).settings.unwrap().metrics_url, None);
    }
}
