//! Recordings: one stream per record id (`recording:<recordID>`), owned by the
//! tenant whose meeting run produced it.
//!
//! A recording comes into being when its first format is imported; further
//! formats of the same record id are merged in; importing what is already
//! there records nothing. Publishing, metadata changes, protection and
//! deletion are recorded only when they change something.

use crate::aggregate::Aggregate;
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// The event stream of a recording.
pub fn recording_stream(record_id: &str) -> crate::ids::StreamId {
    crate::ids::StreamId::Recording(record_id.to_owned())
}

/// A preview image of a playback format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewImage {
    /// The image URL as the backend wrote it (rebased on Switchboard's URL when shown).
    pub url: String,
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Alternative text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

/// One playback format of a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFormat {
    /// Format name (`presentation`, `video`, ...).
    pub format: String,
    /// Playback URL as the backend wrote it (rebased when shown).
    pub url: String,
    /// Processing time, milliseconds.
    #[serde(default)]
    pub processing_time_ms: u64,
    /// Length of the recording, milliseconds.
    #[serde(default)]
    pub length_ms: u64,
    /// Preview images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<PreviewImage>,
    /// Size of the format's files, bytes (0: imported before sizes were
    /// kept).
    #[serde(default)]
    pub bytes: u64,
}

/// What an import learned about a recording (from its metadata.xml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingDetails {
    /// Owner (found from the meeting run; the default tenant when unknown).
    pub tenant: TenantId,
    /// The front-end's meetingID.
    pub meeting_id: String,
    /// BBB's internal meeting id.
    pub internal_meeting_id: String,
    /// Meeting name.
    pub name: String,
    /// Whether the meeting was a breakout room.
    #[serde(default)]
    pub is_breakout: bool,
    /// Whether it is published (the tree it was installed in).
    pub published: bool,
    /// Start, ms since the epoch.
    pub start_time_ms: i64,
    /// End, ms since the epoch.
    pub end_time_ms: i64,
    /// Participants.
    #[serde(default)]
    pub participants: u32,
    /// The recording's metadata (`meta_*` of create, without the prefix).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// For a breakout room's recording: its parent meeting and its number
    /// among the rooms (listed by getRecordings as `<breakout>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakout: Option<BreakoutOf>,
    /// The breakout rooms the meeting opened, by internal meeting id
    /// (listed as `<breakoutRooms>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakout_rooms: Vec<String>,
}

/// Which meeting a breakout room was opened from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakoutOf {
    /// The parent's internal meeting id.
    pub parent_id: String,
    /// The room's number among the parent's rooms (from 1; 0 unknown).
    #[serde(default)]
    pub sequence: u32,
}

/// A recording as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Recording {
    /// Set once imported.
    pub details: Option<RecordingDetails>,
    /// Its formats, in import order.
    pub formats: Vec<RecordingFormat>,
    /// Whether playback needs a one-time link.
    pub protected: bool,
    /// Whether it was deleted.
    pub deleted: bool,
}

impl Recording {
    /// Whether it exists and is not deleted.
    pub fn is_live(&self) -> bool {
        self.details.is_some() && !self.deleted
    }
}

/// What can be asked of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingCommand {
    /// Record an import: new recording, or new formats of a known one.
    Import {
        /// What the metadata says.
        details: RecordingDetails,
        /// The formats in the archive.
        formats: Vec<RecordingFormat>,
    },
    /// Publish (true) or unpublish (false).
    SetPublished(bool),
    /// Set and remove metadata keys.
    UpdateMetadata {
        /// Keys to set.
        set: BTreeMap<String, String>,
        /// Keys to remove.
        remove: Vec<String>,
    },
    /// Turn protection on or off.
    SetProtected(bool),
    /// Delete it.
    Delete,
    /// Expire it under a retention rule: it goes as a deletion does, unless
    /// it is protected, kept (`keep` metadata, `meta_keep=true`), or ended
    /// at or after `ended_before_ms` (then nothing happens).
    Expire {
        /// The rule that expires it.
        rule: RetentionRule,
        /// Recordings that ended before this (ms) expire.
        ended_before_ms: i64,
    },
}

/// A retention rule: where it comes from and how many days it keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRule {
    /// `tenant` (the tenant's own setting) or `global`
    /// (`[recordings] retention_days`).
    pub source: String,
    /// Days a recording is kept after it ends.
    pub days: u32,
}

/// The metadata key that keeps a recording from expiring (`meta_keep=true`
/// on create, or set with updateRecordings): an operator's hold.
pub const KEEP_KEY: &str = "keep";

impl Recording {
    /// Whether no retention rule may expire it: protected, or held by its
    /// `keep` metadata.
    pub fn is_kept(&self) -> bool {
        self.protected
            || self.details.as_ref().is_some_and(|details| {
                details
                    .metadata
                    .get(KEEP_KEY)
                    .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
            })
    }
}

/// What happened to a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RecordingEvent {
    /// A recording was imported with its first formats.
    RecordingImported {
        /// The record id.
        record_id: String,
        /// What its metadata says.
        details: RecordingDetails,
        /// Its formats.
        formats: Vec<RecordingFormat>,
    },
    /// Another format of a known recording was imported.
    RecordingFormatAdded {
        /// The format.
        format: RecordingFormat,
    },
    /// It was published.
    RecordingPublished,
    /// It was unpublished.
    RecordingUnpublished,
    /// Its metadata changed.
    RecordingMetadataUpdated {
        /// Keys set.
        #[serde(default)]
        set: BTreeMap<String, String>,
        /// Keys removed.
        #[serde(default)]
        removed: Vec<String>,
    },
    /// Protection was turned on or off.
    RecordingProtected {
        /// Whether it is protected now.
        protected: bool,
    },
    /// It was deleted (files removed).
    RecordingDeleted,
    /// A retention rule expired it (files removed, as for a deletion).
    RecordingExpired {
        /// The rule.
        rule: RetentionRule,
    },
}

impl RecordingEvent {
    /// The event's type name, as stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RecordingImported { .. } => "RecordingImported",
            Self::RecordingFormatAdded { .. } => "RecordingFormatAdded",
            Self::RecordingPublished => "RecordingPublished",
            Self::RecordingUnpublished => "RecordingUnpublished",
            Self::RecordingMetadataUpdated { .. } => "RecordingMetadataUpdated",
            Self::RecordingProtected { .. } => "RecordingProtected",
            Self::RecordingDeleted => "RecordingDeleted",
            Self::RecordingExpired { .. } => "RecordingExpired",
        }
    }
}

/// Why a recording command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordingError {
    /// No such recording (never imported, or deleted).
    #[error("no recording {0}")]
    NotFound(String),
    /// A metadata key is not usable.
    #[error("invalid metadata key `{0}`")]
    InvalidMetaKey(String),
}

/// Checks a metadata key: 1-128 characters, no whitespace, `<`, `>`, `&`.
pub fn valid_meta_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && !key
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '&' | '/'))
}

impl Recording {
    /// Decides a command for the recording with this record id.
    pub fn decide_for(
        &self,
        record_id: &str,
        command: &RecordingCommand,
    ) -> Result<Vec<RecordingEvent>, RecordingError> {
        if let RecordingCommand::Import { details, formats } = command {
            if !self.is_live() {
                let mut unique: Vec<RecordingFormat> = Vec::new();
                for format in formats {
                    if !unique.iter().any(|f| f.format == format.format) {
                        unique.push(format.clone());
                    }
                }
                let mut events = vec![RecordingEvent::RecordingImported {
                    record_id: record_id.to_owned(),
                    details: details.clone(),
                    formats: unique,
                }];
                // A protected recording deleted and imported again stays
                // protected (issue 15.A7).
                if self.protected {
                    events.push(RecordingEvent::RecordingProtected { protected: true });
                }
                return Ok(events);
            }
            let mut events = Vec::new();
            let mut known: Vec<&str> = self.formats.iter().map(|f| f.format.as_str()).collect();
            for format in formats {
                if !known.contains(&format.format.as_str()) {
                    known.push(&format.format);
                    events.push(RecordingEvent::RecordingFormatAdded {
                        format: format.clone(),
                    });
                }
            }
            return Ok(events);
        }
        let Some(details) = self.details.as_ref().filter(|_| !self.deleted) else {
            return Err(RecordingError::NotFound(record_id.to_owned()));
        };
        Ok(match command {
            RecordingCommand::Import { .. } => unreachable!("handled above"),
            RecordingCommand::SetPublished(true) if !details.published => {
                vec![RecordingEvent::RecordingPublished]
            }
            RecordingCommand::SetPublished(false) if details.published => {
                vec![RecordingEvent::RecordingUnpublished]
            }
            RecordingCommand::SetPublished(_) => vec![],
            RecordingCommand::UpdateMetadata { set, remove } => {
                if let Some(bad) = set.keys().chain(remove).find(|key| !valid_meta_key(key)) {
                    return Err(RecordingError::InvalidMetaKey(bad.clone()));
                }
                let set: BTreeMap<String, String> = set
                    .iter()
                    .filter(|(key, value)| details.metadata.get(*key) != Some(*value))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                let removed: Vec<String> = remove
                    .iter()
                    .filter(|key| details.metadata.contains_key(*key) && !set.contains_key(*key))
                    .cloned()
                    .collect();
                if set.is_empty() && removed.is_empty() {
                    vec![]
                } else {
                    vec![RecordingEvent::RecordingMetadataUpdated { set, removed }]
                }
            }
            RecordingCommand::SetProtected(protected) if *protected != self.protected => {
                vec![RecordingEvent::RecordingProtected {
                    protected: *protected,
                }]
            }
            RecordingCommand::SetProtected(_) => vec![],
            RecordingCommand::Delete => vec![RecordingEvent::RecordingDeleted],
            RecordingCommand::Expire {
                rule,
                ended_before_ms,
            } => {
                if self.is_kept() || details.end_time_ms >= *ended_before_ms {
                    vec![]
                } else {
                    vec![RecordingEvent::RecordingExpired { rule: rule.clone() }]
                }
            }
        })
    }
}

impl Aggregate for Recording {
    type Command = RecordingCommand;
    type Event = RecordingEvent;
    type Error = RecordingError;

    /// Decides without knowing the record id (errors name none); prefer
    /// [`Recording::decide_for`].
    fn decide(&self, command: &RecordingCommand) -> Result<Vec<RecordingEvent>, RecordingError> {
        self.decide_for("", command)
    }

    fn evolve(&mut self, event: &RecordingEvent) {
        match event {
            RecordingEvent::RecordingImported {
                details, formats, ..
            } => {
                *self = Recording {
                    details: Some(details.clone()),
                    formats: formats.clone(),
                    protected: false,
                    deleted: false,
                };
            }
            RecordingEvent::RecordingFormatAdded { format } => self.formats.push(format.clone()),
            RecordingEvent::RecordingPublished => {
                if let Some(details) = &mut self.details {
                    details.published = true;
                }
            }
            RecordingEvent::RecordingUnpublished => {
                if let Some(details) = &mut self.details {
                    details.published = false;
                }
            }
            RecordingEvent::RecordingMetadataUpdated { set, removed } => {
                if let Some(details) = &mut self.details {
                    for key in removed {
                        details.metadata.remove(key);
                    }
                    for (key, value) in set {
                        details.metadata.insert(key.clone(), value.clone());
                    }
                }
            }
            RecordingEvent::RecordingProtected { protected } => self.protected = *protected,
            RecordingEvent::RecordingDeleted | RecordingEvent::RecordingExpired { .. } => {
                self.deleted = true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "834c2bfbc2e5c8eb1ad9ac3d4cda2b7bf0e5c1a2-1741369843904";

    #[test]
    fn a_protected_recording_imported_again_after_deletion_stays_protected() {
        let import = RecordingCommand::Import {
            details: details(),
            formats: vec![],
        };
        let mut state = Recording::default();
        for command in [
            import.clone(),
            RecordingCommand::SetProtected(true),
            RecordingCommand::Delete,
            import,
        ] {
            for event in state.decide_for(ID, &command).unwrap() {
                state.evolve(&event);
            }
        }
        assert!(state.is_live() && state.protected);
    }

    fn details() -> RecordingDetails {
        RecordingDetails {
            tenant: TenantId::default_tenant(),
            meeting_id: "room-42".into(),
            internal_meeting_id: ID.into(),
            name: "Physics".into(),
            is_breakout: false,
            published: true,
            start_time_ms: 1,
            end_time_ms: 2,
            participants: 3,
            metadata: BTreeMap::from([("bbb-origin".into(), "Moodle".into())]),
            breakout: None,
            breakout_rooms: Vec::new(),
        }
    }

    fn format(name: &str) -> RecordingFormat {
        RecordingFormat {
            format: name.into(),
            url: format!("https://bbb1/playback/{name}/2.3/{ID}"),
            processing_time_ms: 10,
            length_ms: 60_000,
            bytes: 0,
            images: vec![],
        }
    }

    fn import(formats: &[&str]) -> RecordingCommand {
        RecordingCommand::Import {
            details: details(),
            formats: formats.iter().map(|f| format(f)).collect(),
        }
    }

    #[test]
    fn a_rule_expires_an_ended_recording_unless_it_is_protected_or_kept() {
        let rule = RetentionRule {
            source: "global".into(),
            days: 30,
        };
        let expire = |before| RecordingCommand::Expire {
            rule: rule.clone(),
            ended_before_ms: before,
        };
        let mut state = Recording::default();
        run(&mut state, &import(&["presentation"]));
        assert_eq!(run(&mut state, &expire(2)), vec![], "ended at the bound");
        let mut held = state.clone();
        run(
            &mut held,
            &RecordingCommand::UpdateMetadata {
                set: BTreeMap::from([(KEEP_KEY.into(), "true".into())]),
                remove: vec![],
            },
        );
        assert_eq!(run(&mut held, &expire(3)), vec![], "held by keep=true");
        let mut protected = state.clone();
        run(&mut protected, &RecordingCommand::SetProtected(true));
        assert_eq!(run(&mut protected, &expire(3)), vec![], "protected");
        assert_eq!(
            run(&mut state, &expire(3)),
            vec![RecordingEvent::RecordingExpired { rule: rule.clone() }]
        );
        assert!(!state.is_live(), "gone as a deletion");
        assert!(state.decide_for(ID, &expire(3)).is_err(), "once");
        let stored = serde_json::to_value(RecordingEvent::RecordingExpired { rule }).unwrap();
        assert_eq!(stored["type"], "RecordingExpired");
        assert_eq!(stored["rule"]["source"], "global");
        assert_eq!(stored["rule"]["days"], 30);
    }

    fn run(state: &mut Recording, command: &RecordingCommand) -> Vec<RecordingEvent> {
        let events = state.decide_for(ID, command).unwrap();
        for event in &events {
            state.evolve(event);
        }
        events
    }

    #[test]
    fn import_twice_changes_nothing_and_a_second_format_merges() {
        let mut state = Recording::default();
        let first = run(&mut state, &import(&["presentation"]));
        assert!(matches!(
            &first[..],
            [RecordingEvent::RecordingImported { .. }]
        ));
        assert_eq!(run(&mut state, &import(&["presentation"])), vec![]);
        let second = run(&mut state, &import(&["presentation", "video"]));
        assert_eq!(
            second,
            vec![RecordingEvent::RecordingFormatAdded {
                format: format("video")
            }]
        );
        assert_eq!(state.formats.len(), 2);
    }

    #[test]
    fn publish_meta_protect_only_record_changes() {
        let mut state = Recording::default();
        run(&mut state, &import(&["presentation"]));
        assert_eq!(
            run(&mut state, &RecordingCommand::SetPublished(true)),
            vec![]
        );
        assert_eq!(
            run(&mut state, &RecordingCommand::SetPublished(false)),
            vec![RecordingEvent::RecordingUnpublished]
        );
        let update = RecordingCommand::UpdateMetadata {
            set: BTreeMap::from([("a".into(), "1".into())]),
            remove: vec!["bbb-origin".into(), "missing".into()],
        };
        assert_eq!(
            run(&mut state, &update),
            vec![RecordingEvent::RecordingMetadataUpdated {
                set: BTreeMap::from([("a".into(), "1".into())]),
                removed: vec!["bbb-origin".into()],
            }]
        );
        assert_eq!(run(&mut state, &update), vec![]);
        assert_eq!(
            run(&mut state, &RecordingCommand::SetProtected(true)).len(),
            1
        );
        assert_eq!(
            run(&mut state, &RecordingCommand::SetProtected(true)),
            vec![]
        );
        let bad = RecordingCommand::UpdateMetadata {
            set: BTreeMap::from([("a b".into(), "1".into())]),
            remove: vec![],
        };
        assert!(matches!(
            state.decide_for(ID, &bad),
            Err(RecordingError::InvalidMetaKey(_))
        ));
    }

    #[test]
    fn deleted_recordings_refuse_changes_but_can_be_imported_again() {
        let mut state = Recording::default();
        assert_eq!(
            state.decide_for(ID, &RecordingCommand::Delete),
            Err(RecordingError::NotFound(ID.into()))
        );
        run(&mut state, &import(&["presentation"]));
        run(&mut state, &RecordingCommand::Delete);
        assert!(state.decide_for(ID, &RecordingCommand::Delete).is_err());
        assert!(matches!(
            &run(&mut state, &import(&["presentation"]))[..],
            [RecordingEvent::RecordingImported { .. }]
        ));
        assert!(state.is_live());
    }

    #[test]
    fn stored_payloads_read_back() {
        let stored = serde_json::json!({"type": "RecordingProtected", "protected": true});
        let event: RecordingEvent = serde_json::from_value(stored).unwrap();
        assert_eq!(event.type_name(), "RecordingProtected");
    }
}
