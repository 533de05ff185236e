//! The projections folded in memory: what replay writes in bulk. Each
//! `apply_*` here does to its rows what the same function of `projection`
//! does to the tables (the incremental path of an append); `--check` and
//! the store tests compare the two on the same log.

use std::collections::{BTreeMap, HashMap, HashSet};
use switchboard_app::records::{RunUsageState, StoredEvent};
use switchboard_domain::aggregate::Aggregate;
use switchboard_domain::events::DomainEvent;
use switchboard_domain::hook::HookEvent;
use switchboard_domain::ids::StreamId;
use switchboard_domain::meeting::{MeetingEvent, RunUsage};
use switchboard_domain::recording::{RecordingEvent, RecordingFormat};
use switchboard_domain::server::{ServerAgent, ServerEvent, ServerState, apply_changes};
use switchboard_domain::tenant::{Tenant, TenantConfig, TenantEvent};
use switchboard_domain::token::TokenEvent;
use switchboard_migrations::entities::{
    hook, meeting, meeting_run, recording, recording_count, recording_meta, server, tenant, token,
    usage_run,
};

/// An event that cannot be folded (its stream and kind disagree, or a value
/// cannot be written).
#[derive(Debug)]
pub(crate) struct FoldError(pub(crate) String);

/// A recording's row with its metadata and formats kept unserialized
/// until the rows are written.
#[derive(Debug, Clone)]
pub(crate) struct RecordingImage {
    pub(crate) row: recording::Model,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) formats: Vec<RecordingFormat>,
}

/// What the log did to one run's `run_usage` row, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum RunStep {
    /// `MeetingCreated` of the run (the first one opens the row).
    Started,
    /// `MeetingEnded` at this time.
    Ended(i64),
    /// `MeetingUsageSummarized`.
    Summarized,
}

/// A run's usage as the log opened it, and what happened to it after.
#[derive(Debug, Clone)]
pub(crate) struct RunHistory {
    pub(crate) opened: RunUsageState,
    pub(crate) steps: Vec<RunStep>,
}

/// Recordings' rows, their metadata rows and their counts.
pub(crate) type RecordingRows = (
    Vec<recording::Model>,
    Vec<recording_meta::Model>,
    Vec<recording_count::Model>,
);

/// Every projection the log defines, in memory.
#[derive(Debug, Default)]
pub(crate) struct ProjectionImage {
    pub(crate) servers: BTreeMap<String, server::Model>,
    pub(crate) tokens: BTreeMap<String, token::Model>,
    pub(crate) tenants: BTreeMap<String, (TenantConfig, i64)>,
    pub(crate) meetings: HashMap<(String, String), meeting::Model>,
    pub(crate) meeting_runs: HashMap<String, meeting_run::Model>,
    pub(crate) recordings: HashMap<String, RecordingImage>,
    pub(crate) hooks: BTreeMap<String, hook::Model>,
    pub(crate) usage_runs: HashMap<String, usage_run::Model>,
    /// Runs' usage rows, by internal id, in the order first seen.
    pub(crate) runs: HashMap<String, RunHistory>,
    /// Runs that ended (their listings are dropped).
    pub(crate) ended_runs: HashSet<String>,
    /// Events folded.
    pub(crate) applied: u64,
    /// Position of the last event folded.
    pub(crate) position: i64,
}

impl ProjectionImage {
    /// Folds one event into the image.
    pub(crate) fn apply(&mut self, stored: &StoredEvent) -> Result<(), FoldError> {
        let version = stored.version;
        let position = stored.position;
        match (&stored.stream, &stored.event) {
            (StreamId::Server(id), DomainEvent::Server(event)) => {
                self.apply_server(&id.to_string(), event, version, position);
            }
            (StreamId::Meeting(tenant, meeting_id), DomainEvent::Meeting(event)) => {
                self.apply_meeting(&tenant.0, meeting_id.as_str(), event, version, position)?;
            }
            (StreamId::Token(name), DomainEvent::Token(event)) => {
                self.apply_token(name, event, stored.recorded_at);
            }
            (StreamId::Tenant(name), DomainEvent::Tenant(event)) => {
                self.apply_tenant(name, event, version);
            }
            (StreamId::Recording(id), DomainEvent::Recording(event)) => {
                self.apply_recording(id, event, version, position);
            }
            (StreamId::Hook(id), DomainEvent::Hook(event)) => {
                self.apply_hook(id, event, position)?;
            }
            (stream, event) => {
                return Err(FoldError(format!(
                    "event {} in unexpected stream `{stream}`",
                    event.type_name()
                )));
            }
        }
        self.applied += 1;
        self.position = position;
        Ok(())
    }

    fn apply_server(&mut self, server_id: &str, event: &ServerEvent, version: i64, position: i64) {
        if let ServerEvent::ServerAdded { id, settings } = event {
            self.servers.insert(
                id.to_string(),
                crate::rows::added_server(id, settings, version, position),
            );
            return;
        }
        if matches!(event, ServerEvent::ServerRemoved) {
            self.servers.remove(server_id);
            return;
        }
        let Some(row) = self.servers.get_mut(server_id) else {
            return;
        };
        match event {
            ServerEvent::ServerAdded { .. } | ServerEvent::ServerRemoved => return,
            ServerEvent::ServerUpdated { changes } => {
                let mut settings = crate::rows::settings_of(row);
                apply_changes(&mut settings, changes);
                row.url = settings.url;
                row.secret = settings.secret;
                row.tag = settings.tag;
                row.load_multiplier = settings.load_multiplier;
                row.checksum_algorithm = settings.checksum.map(|c| c.name().to_owned());
                row.metrics_url = settings.metrics_url;
            }
            ServerEvent::ServerEnabled => row.state = ServerState::Enabled.as_str().to_owned(),
            ServerEvent::ServerCordoned => row.state = ServerState::Cordoned.as_str().to_owned(),
            ServerEvent::ServerDisabled => row.state = ServerState::Disabled.as_str().to_owned(),
            ServerEvent::ServerWentOnline => row.online = true,
            ServerEvent::ServerWentOffline => row.online = false,
            ServerEvent::AgentReported {
                version: bbb_version,
                interval_ms,
            } => {
                let agent = ServerAgent {
                    version: bbb_version.clone(),
                    interval_ms: *interval_ms,
                    away: false,
                };
                row.agent = Some(crate::projection::agent_json(&agent));
            }
            ServerEvent::AgentLeft => {
                let Some(mut agent) = crate::rows::agent_of(row) else {
                    return;
                };
                agent.away = true;
                row.agent = Some(crate::projection::agent_json(&agent));
            }
        }
        row.version = version;
        row.position = position;
    }

    fn apply_meeting(
        &mut self,
        tenant_name: &str,
        meeting_key: &str,
        event: &MeetingEvent,
        version: i64,
        position: i64,
    ) -> Result<(), FoldError> {
        match event {
            MeetingEvent::MeetingCreated {
                tenant,
                meeting_id,
                name,
                run,
            } => {
                let key = (tenant.0.clone(), meeting_id.as_str().to_owned());
                self.meetings.insert(
                    key,
                    crate::rows::created_meeting(tenant, meeting_id, name, run, version, position),
                );
                // The first record of a run owns it (as in `projection`).
                self.meeting_runs
                    .entry(run.internal_id.clone())
                    .or_insert_with(|| crate::rows::created_run(tenant, meeting_id, run));
                // A run recorded again is not ended (its listing, which a
                // poll made again, stays).
                self.ended_runs.remove(&run.internal_id);
                self.runs
                    .entry(run.internal_id.clone())
                    .or_insert_with(|| RunHistory {
                        opened: RunUsageState::started(tenant, meeting_id, run),
                        steps: Vec::new(),
                    })
                    .steps
                    .push(RunStep::Started);
            }
            MeetingEvent::MeetingEnded {
                internal_id, at_ms, ..
            } => {
                self.ended_runs.insert(internal_id.clone());
                let key = (tenant_name.to_owned(), meeting_key.to_owned());
                if let Some(row) = self.meetings.get_mut(&key) {
                    row.running = false;
                    row.ended_at_ms = Some(*at_ms);
                    row.version = version;
                    row.position = position;
                }
                if let Some(run) = self.runs.get_mut(internal_id) {
                    run.steps.push(RunStep::Ended(*at_ms));
                }
            }
            MeetingEvent::MeetingUsageSummarized { usage } => {
                let key = (tenant_name.to_owned(), meeting_key.to_owned());
                if let Some(row) = self.meetings.get_mut(&key) {
                    row.version = version;
                    row.position = position;
                }
                self.summarized(tenant_name, meeting_key, usage)?;
            }
        }
        Ok(())
    }

    fn summarized(
        &mut self,
        tenant_name: &str,
        meeting_key: &str,
        usage: &RunUsage,
    ) -> Result<(), FoldError> {
        if !self.usage_runs.contains_key(&usage.internal_id) {
            let text = serde_json::to_string(usage).map_err(|err| FoldError(err.to_string()))?;
            self.usage_runs.insert(
                usage.internal_id.clone(),
                usage_run::Model {
                    internal_id: usage.internal_id.clone(),
                    tenant: tenant_name.to_owned(),
                    meeting_id: meeting_key.to_owned(),
                    usage: text,
                    started_ms: usage.started_ms,
                },
            );
        }
        if let Some(run) = self.runs.get_mut(&usage.internal_id) {
            run.steps.push(RunStep::Summarized);
        }
        Ok(())
    }

    fn apply_token(&mut self, name: &str, event: &TokenEvent, at: chrono::DateTime<chrono::Utc>) {
        match event {
            TokenEvent::TokenCreated {
                scope,
                hash,
                server,
                ..
            } => {
                self.tokens.insert(
                    name.to_owned(),
                    token::Model {
                        name: name.to_owned(),
                        scope: scope.as_str().to_owned(),
                        hash: hash.clone(),
                        created_at: at,
                        server_id: server.map(|id| id.to_string()),
                    },
                );
            }
            TokenEvent::TokenBound { server } => {
                if let Some(row) = self.tokens.get_mut(name) {
                    row.server_id = Some(server.to_string());
                }
            }
            TokenEvent::TokenRevoked => {
                self.tokens.remove(name);
            }
        }
    }

    fn apply_tenant(&mut self, name: &str, event: &TenantEvent, version: i64) {
        let mut state = Tenant {
            config: self.tenants.remove(name).map(|(config, _)| config),
            ..Tenant::default()
        };
        state.evolve(event);
        if let Some(config) = state.config {
            self.tenants.insert(name.to_owned(), (config, version));
        }
    }

    fn apply_recording(
        &mut self,
        record_id: &str,
        event: &RecordingEvent,
        version: i64,
        position: i64,
    ) {
        if let RecordingEvent::RecordingImported {
            details, formats, ..
        } = event
        {
            let row = recording::Model {
                record_id: record_id.to_owned(),
                tenant: details.tenant.0.clone(),
                meeting_id: details.meeting_id.clone(),
                internal_meeting_id: details.internal_meeting_id.clone(),
                name: details.name.clone(),
                is_breakout: details.is_breakout,
                breakout: crate::breakout_column::BreakoutColumn::of(details),
                published: details.published,
                state: crate::projection::state_name(details.published).to_owned(),
                start_time_ms: details.start_time_ms,
                end_time_ms: details.end_time_ms,
                participants: i32::try_from(details.participants).unwrap_or(i32::MAX),
                protected: false,
                metadata: String::new(),
                formats: String::new(),
                version,
                position,
            };
            self.recordings.insert(
                record_id.to_owned(),
                RecordingImage {
                    row,
                    metadata: details.metadata.clone(),
                    formats: formats.clone(),
                },
            );
            return;
        }
        let Some(image) = self.recordings.get_mut(record_id) else {
            return;
        };
        match event {
            RecordingEvent::RecordingImported { .. } => return,
            RecordingEvent::RecordingFormatAdded { format } => image.formats.push(format.clone()),
            RecordingEvent::RecordingPublished | RecordingEvent::RecordingUnpublished => {
                let published = matches!(event, RecordingEvent::RecordingPublished);
                image.row.published = published;
                image.row.state = crate::projection::state_name(published).to_owned();
            }
            RecordingEvent::RecordingMetadataUpdated { set, removed } => {
                for key in removed {
                    image.metadata.remove(key);
                }
                for (key, value) in set {
                    image.metadata.insert(key.clone(), value.clone());
                }
            }
            RecordingEvent::RecordingProtected { protected } => image.row.protected = *protected,
            RecordingEvent::RecordingDeleted | RecordingEvent::RecordingExpired { .. } => {
                image.row.published = false;
                image.row.state = "deleted".to_owned();
            }
        }
        image.row.version = version;
        image.row.position = position;
    }

    fn apply_hook(&mut self, id: &str, event: &HookEvent, position: i64) -> Result<(), FoldError> {
        match event {
            HookEvent::HookRegistered { hook: settings } => {
                let text =
                    serde_json::to_string(settings).map_err(|err| FoldError(err.to_string()))?;
                self.hooks.insert(
                    id.to_owned(),
                    hook::Model {
                        id: id.to_owned(),
                        tenant: settings.tenant.0.clone(),
                        settings: text,
                        position,
                    },
                );
            }
            HookEvent::HookRemoved => {
                self.hooks.remove(id);
            }
        }
        Ok(())
    }

    /// The tenants' rows.
    pub(crate) fn tenant_rows(&self) -> Result<Vec<tenant::Model>, FoldError> {
        self.tenants
            .iter()
            .map(|(name, (config, version))| {
                Ok(tenant::Model {
                    name: name.clone(),
                    config: serde_json::to_string(config)
                        .map_err(|err| FoldError(err.to_string()))?,
                    version: *version,
                })
            })
            .collect()
    }

    /// The recordings' rows, their metadata rows and their counts by
    /// tenant and state (the counts an append keeps, without rows at 0).
    pub(crate) fn recording_rows(&self) -> Result<RecordingRows, FoldError> {
        let mut rows = Vec::with_capacity(self.recordings.len());
        let mut meta = Vec::new();
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for image in self.recordings.values() {
            let mut row = image.row.clone();
            row.metadata =
                serde_json::to_string(&image.metadata).map_err(|err| FoldError(err.to_string()))?;
            row.formats =
                serde_json::to_string(&image.formats).map_err(|err| FoldError(err.to_string()))?;
            *counts
                .entry((row.tenant.clone(), row.state.clone()))
                .or_default() += 1;
            meta.extend(
                image
                    .metadata
                    .iter()
                    .map(|(key, value)| recording_meta::Model {
                        record_id: row.record_id.clone(),
                        key: key.clone(),
                        value: value.clone(),
                    }),
            );
            rows.push(row);
        }
        let counts = counts
            .into_iter()
            .map(|((tenant, state), count)| recording_count::Model {
                tenant,
                state,
                count,
            })
            .collect();
        Ok((rows, meta, counts))
    }
}

/// The image as an archive keeps it (rows as lists, keys within them).
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptImage {
    servers: Vec<server::Model>,
    tokens: Vec<token::Model>,
    tenants: Vec<(String, TenantConfig, i64)>,
    meetings: Vec<meeting::Model>,
    meeting_runs: Vec<meeting_run::Model>,
    recordings: Vec<(
        recording::Model,
        BTreeMap<String, String>,
        Vec<RecordingFormat>,
    )>,
    hooks: Vec<hook::Model>,
    usage_runs: Vec<usage_run::Model>,
    runs: Vec<(String, RunUsageState, Vec<RunStep>)>,
    ended_runs: Vec<String>,
    applied: u64,
    position: i64,
}

impl ProjectionImage {
    /// The image as gzip'd JSON (what an archive keeps).
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, FoldError> {
        let kept = KeptImage {
            servers: self.servers.values().cloned().collect(),
            tokens: self.tokens.values().cloned().collect(),
            tenants: self
                .tenants
                .iter()
                .map(|(name, (config, version))| (name.clone(), config.clone(), *version))
                .collect(),
            meetings: self.meetings.values().cloned().collect(),
            meeting_runs: self.meeting_runs.values().cloned().collect(),
            recordings: self
                .recordings
                .values()
                .map(|image| {
                    (
                        image.row.clone(),
                        image.metadata.clone(),
                        image.formats.clone(),
                    )
                })
                .collect(),
            hooks: self.hooks.values().cloned().collect(),
            usage_runs: self.usage_runs.values().cloned().collect(),
            runs: self
                .runs
                .iter()
                .map(|(id, run)| (id.clone(), run.opened.clone(), run.steps.clone()))
                .collect(),
            ended_runs: self.ended_runs.iter().cloned().collect(),
            applied: self.applied,
            position: self.position,
        };
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        serde_json::to_writer(&mut gzip, &kept).map_err(|err| FoldError(err.to_string()))?;
        gzip.finish().map_err(|err| FoldError(err.to_string()))
    }

    /// An image kept by [`to_bytes`](Self::to_bytes).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, FoldError> {
        let kept: KeptImage = serde_json::from_reader(flate2::read::GzDecoder::new(bytes))
            .map_err(|err| FoldError(format!("the archived projections cannot be read: {err}")))?;
        Ok(Self {
            servers: kept
                .servers
                .into_iter()
                .map(|row| (row.id.clone(), row))
                .collect(),
            tokens: kept
                .tokens
                .into_iter()
                .map(|row| (row.name.clone(), row))
                .collect(),
            tenants: kept
                .tenants
                .into_iter()
                .map(|(name, config, version)| (name, (config, version)))
                .collect(),
            meetings: kept
                .meetings
                .into_iter()
                .map(|row| ((row.tenant.clone(), row.meeting_id.clone()), row))
                .collect(),
            meeting_runs: kept
                .meeting_runs
                .into_iter()
                .map(|row| (row.internal_id.clone(), row))
                .collect(),
            recordings: kept
                .recordings
                .into_iter()
                .map(|(row, metadata, formats)| {
                    (
                        row.record_id.clone(),
                        RecordingImage {
                            row,
                            metadata,
                            formats,
                        },
                    )
                })
                .collect(),
            hooks: kept
                .hooks
                .into_iter()
                .map(|row| (row.id.clone(), row))
                .collect(),
            usage_runs: kept
                .usage_runs
                .into_iter()
                .map(|row| (row.internal_id.clone(), row))
                .collect(),
            runs: kept
                .runs
                .into_iter()
                .map(|(id, opened, steps)| (id, RunHistory { opened, steps }))
                .collect(),
            ended_runs: kept.ended_runs.into_iter().collect(),
            applied: kept.applied,
            position: kept.position,
        })
    }
}

/// A `run_usage` row's (ended, summarized) after the log's steps, from the
/// row as it was (`None`: no row; the first step opens one, and a row the
/// replay makes has nothing sampled, so it is closed: never summarized).
/// The same steps as `usage_rows::{start_run, end_run, summarized}`.
pub(crate) fn run_after(
    before: Option<(Option<i64>, bool)>,
    steps: &[RunStep],
) -> (Option<i64>, bool) {
    let made = before.is_none();
    let (mut ended, mut summarized) = before.unwrap_or((None, false));
    for (index, step) in steps.iter().enumerate() {
        match step {
            RunStep::Started if made && index == 0 => {}
            RunStep::Started => {
                if !summarized {
                    ended = None;
                }
            }
            RunStep::Ended(at) => {
                if ended.is_none() {
                    ended = Some(*at);
                }
            }
            RunStep::Summarized => summarized = true,
        }
    }
    (ended, summarized || made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_the_replay_makes_is_closed_and_keeps_its_last_end() {
        let steps = [
            RunStep::Started,
            RunStep::Ended(10),
            RunStep::Started,
            RunStep::Ended(20),
        ];
        assert_eq!(run_after(None, &steps), (Some(20), true));
    }

    #[test]
    fn a_summarized_row_is_never_reopened() {
        let steps = [RunStep::Started, RunStep::Ended(30)];
        assert_eq!(run_after(Some((Some(10), true)), &steps), (Some(10), true));
    }

    #[test]
    fn an_open_sampled_row_is_reopened_then_ended_once() {
        let steps = [RunStep::Started, RunStep::Ended(30), RunStep::Ended(40)];
        assert_eq!(
            run_after(Some((Some(10), false)), &steps),
            (Some(30), false)
        );
        assert_eq!(
            run_after(Some((None, false)), &[RunStep::Started]),
            (None, false)
        );
    }
}
