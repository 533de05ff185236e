//! Running commands: load the aggregate's state from its projection row,
//! decide, append with the expected version, and on a concurrent change decide
//! again against the fresh state (a conflict is retried, never lost).

use crate::reads::MeetingRecord;
use crate::store::{Store, StoreError};
use switchboard_domain::aggregate::Aggregate;
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::{MeetingId, ServerId, TenantId, meeting_stream};
use switchboard_domain::meeting::{EndReason, Meeting, MeetingCommand, MeetingError, MeetingEvent};
use switchboard_domain::ports::{Clock, SystemClock};
use switchboard_domain::server::{Server, ServerCommand, ServerError, ServerEvent, ServerState};
use switchboard_domain::tenant::{Tenant, TenantCommand, TenantError, TenantEvent, tenant_stream};
use switchboard_domain::token::{Token, TokenCommand, TokenError, TokenEvent, token_stream};
use thiserror::Error;

/// How often a command is decided again after a concurrent change.
const ATTEMPTS: usize = 5;

/// What a command recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed<E> {
    /// The events appended (none when the command changed nothing).
    pub events: Vec<E>,
    /// Position of the last appended event (0 when none).
    pub position: i64,
}

/// Why a command did not go through.
#[derive(Debug, Error)]
pub enum CommandError<E> {
    /// The aggregate refused it.
    #[error(transparent)]
    Rejected(E),
    /// The store failed (or conflicts kept happening).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one attempt of a command ended with.
enum Attempt<E> {
    /// Appended (or nothing to append).
    Done(Executed<E>),
    /// Another writer came first: load and decide again.
    Retry,
}

impl Store {
    /// Runs a server command; returns the events it recorded (possibly none).
    pub async fn execute_server(
        &self,
        id: ServerId,
        command: &ServerCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<ServerEvent>, CommandError<ServerError>> {
        let stream = id.stream();
        for attempt in 1.. {
            let (state, version) = match self.server(id).await? {
                Some(record) => (record.aggregate(), record.version),
                None => (
                    self.removed_or_new_server(&stream).await?,
                    self.stream_version(&stream).await?,
                ),
            };
            let last = attempt == ATTEMPTS;
            if let Attempt::Done(executed) = self
                .attempt(&stream, state, version, command, metadata, last)
                .await?
            {
                return Ok(executed);
            }
        }
        unreachable!("the last attempt never retries")
    }

    /// Runs a meeting command; returns the events it recorded (possibly none).
    pub async fn execute_meeting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
        command: &MeetingCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<MeetingEvent>, CommandError<MeetingError>> {
        let stream = meeting_stream(tenant, meeting_id);
        for attempt in 1.. {
            let (state, version) = match self.meeting(tenant, meeting_id).await? {
                Some(record) => (record.aggregate(), record.version),
                None => (Meeting::default(), 0),
            };
            let last = attempt == ATTEMPTS;
            if let Attempt::Done(executed) = self
                .attempt(&stream, state, version, command, metadata, last)
                .await?
            {
                return Ok(executed);
            }
        }
        unreachable!("the last attempt never retries")
    }

    /// Records the end of the run a record names (a newer run of the same
    /// meetingID is left alone), now.
    pub async fn end_run(
        &self,
        record: &MeetingRecord,
        reason: EndReason,
        metadata: &EventMetadata,
    ) -> Result<Executed<MeetingEvent>, CommandError<MeetingError>> {
        let command = MeetingCommand::RecordEnded {
            reason,
            at_ms: SystemClock.now_ms(),
            only_run: Some(record.run.internal_id.clone()),
        };
        self.execute_meeting(&record.tenant, &record.meeting_id, &command, metadata)
            .await
    }

    /// Runs a token command; returns the events it recorded.
    pub async fn execute_token(
        &self,
        name: &str,
        command: &TokenCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<TokenEvent>, CommandError<TokenError>> {
        let stream = token_stream(name);
        for attempt in 1.. {
            let stored = self.stream_events(&stream).await?;
            let version = stored.last().map(|event| event.version).unwrap_or(0);
            let events: Vec<TokenEvent> = stored
                .into_iter()
                .filter_map(|stored| match stored.event {
                    DomainEvent::Token(event) => Some(event),
                    _ => None,
                })
                .collect();
            let mut state = Token::fold(&events);
            state.name.get_or_insert_with(|| name.to_owned());
            let last = attempt == ATTEMPTS;
            if let Attempt::Done(executed) = self
                .attempt(&stream, state, version, command, metadata, last)
                .await?
            {
                return Ok(executed);
            }
        }
        unreachable!("the last attempt never retries")
    }

    /// Runs a tenant command; returns the events it recorded.
    pub async fn execute_tenant(
        &self,
        name: &str,
        command: &TenantCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<TenantEvent>, CommandError<TenantError>> {
        let stream = tenant_stream(name);
        for attempt in 1.. {
            let stored = self.stream_events(&stream).await?;
            let version = stored.last().map(|event| event.version).unwrap_or(0);
            let events: Vec<TenantEvent> = stored
                .into_iter()
                .filter_map(|stored| match stored.event {
                    DomainEvent::Tenant(event) => Some(event),
                    _ => None,
                })
                .collect();
            let state = Tenant::fold(&events);
            let last = attempt == ATTEMPTS;
            match self
                .attempt(&stream, state, version, command, metadata, last)
                .await
            {
                Ok(Attempt::Done(executed)) => return Ok(executed),
                Ok(Attempt::Retry) => {}
                Err(CommandError::Rejected(TenantError::NotFound(_))) => {
                    return Err(CommandError::Rejected(TenantError::NotFound(
                        name.to_owned(),
                    )));
                }
                Err(err) => return Err(err),
            }
        }
        unreachable!("the last attempt never retries")
    }

    /// Disables a cordoned server once no meeting runs on it (drained);
    /// true when it did.
    pub async fn disable_if_drained(
        &self,
        server_id: ServerId,
        metadata: &EventMetadata,
    ) -> Result<bool, StoreError> {
        let Some(server) = self.server(server_id).await? else {
            return Ok(false);
        };
        if server.state != ServerState::Cordoned {
            return Ok(false);
        }
        let running = self.running_meetings_per_server().await?;
        if running.get(&server_id).copied().unwrap_or(0) > 0 {
            return Ok(false);
        }
        match self
            .execute_server(server_id, &ServerCommand::Disable, metadata)
            .await
        {
            Ok(executed) => Ok(!executed.events.is_empty()),
            Err(CommandError::Store(err)) => Err(err),
            Err(CommandError::Rejected(_)) => Ok(false),
        }
    }

    /// Decides against `state` and appends at `version`; a conflict asks for a
    /// retry unless this is the `last` attempt.
    async fn attempt<A>(
        &self,
        stream: &str,
        state: A,
        version: i64,
        command: &A::Command,
        metadata: &EventMetadata,
        last: bool,
    ) -> Result<Attempt<A::Event>, CommandError<A::Error>>
    where
        A: Aggregate,
        A::Event: Into<DomainEvent>,
    {
        let events = state.decide(command).map_err(CommandError::Rejected)?;
        let domain: Vec<DomainEvent> = events.iter().cloned().map(Into::into).collect();
        match self.append(stream, version, &domain, metadata).await {
            Ok(outcome) => Ok(Attempt::Done(Executed {
                events,
                position: outcome.position,
            })),
            Err(StoreError::Conflict { .. }) if !last => Ok(Attempt::Retry),
            Err(err) => Err(err.into()),
        }
    }

    /// State of a server without a projection row: removed (folded from its
    /// stream) or never added.
    async fn removed_or_new_server(&self, stream: &str) -> Result<Server, StoreError> {
        let events = self.stream_events(stream).await?;
        let server_events: Vec<ServerEvent> = events
            .into_iter()
            .filter_map(|stored| match stored.event {
                DomainEvent::Server(event) => Some(event),
                _ => None,
            })
            .collect();
        Ok(Server::fold(&server_events))
    }

    /// The current version of a stream (0 when empty).
    async fn stream_version(&self, stream: &str) -> Result<i64, StoreError> {
        Ok(self
            .stream_events(stream)
            .await?
            .last()
            .map(|stored| stored.version)
            .unwrap_or(0))
    }
}
