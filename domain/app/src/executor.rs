//! The one command executor: load an aggregate's state, decide, append with
//! the expected version, and on a concurrent change decide again against the
//! fresh state. Every command of every aggregate runs through it, and every
//! append is published to the in-process subscribers (the routing view).

use crate::error::StoreError;
use crate::ports::EventStore;
use crate::records::{AppendExtras, MeetingListing, NewCallback};
use std::sync::{Arc, RwLock};
use switchboard_domain::aggregate::Aggregate;
use switchboard_domain::events::{AggregateEvent, DomainEvent, EventMetadata};
use switchboard_domain::ids::StreamId;
use switchboard_domain::meeting::Meeting;
use switchboard_domain::recording::{Recording, RecordingCommand, RecordingError, RecordingEvent};
use switchboard_domain::server::Server;
use switchboard_domain::tenant::{Tenant, TenantCommand, TenantError, TenantEvent};
use switchboard_domain::token::Token;
use thiserror::Error;

/// Makes the callbacks owed for the events a command decided.
pub type CallbacksFor<'a, E> = dyn Fn(&[E]) -> Vec<NewCallback> + Send + Sync + 'a;

/// How often a command is decided again after a concurrent change.
pub const ATTEMPTS: usize = 5;

/// What a command recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed<E> {
    /// The events appended (none when the command changed nothing).
    pub events: Vec<E>,
    /// Position of the last appended event (0 when none).
    pub position: i64,
    /// The stream's version after the command.
    pub version: i64,
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

impl<E> CommandError<E> {
    /// Whether another writer came first (the last attempt's conflict).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::Conflict { .. }))
    }
}

/// An aggregate with a stream: how a new one starts and how it decides,
/// given the stream it lives in.
pub trait StreamAggregate:
    Aggregate + Send + Sync + serde::Serialize + serde::de::DeserializeOwned
where
    Self::Event: AggregateEvent + Send + Sync,
    Self::Command: Sync,
    Self::Error: Send,
{
    /// The state of a stream without events.
    fn initial(_stream: &StreamId) -> Self {
        Self::default()
    }

    /// Decides a command for the aggregate of `stream`.
    fn decide_in(
        &self,
        _stream: &StreamId,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        self.decide(command)
    }
}

impl StreamAggregate for Server {}
impl StreamAggregate for Meeting {}
impl StreamAggregate for switchboard_domain::hook::Hook {}

impl StreamAggregate for Token {
    fn initial(stream: &StreamId) -> Self {
        let mut token = Self::default();
        if let StreamId::Token(name) = stream {
            token.name = Some(name.clone());
        }
        token
    }
}

impl StreamAggregate for Tenant {
    fn decide_in(
        &self,
        stream: &StreamId,
        command: &TenantCommand,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        self.decide(command).map_err(|err| match (err, stream) {
            (TenantError::NotFound(_), StreamId::Tenant(name)) => {
                TenantError::NotFound(name.clone())
            }
            (err, _) => err,
        })
    }
}

impl StreamAggregate for Recording {
    fn decide_in(
        &self,
        stream: &StreamId,
        command: &RecordingCommand,
    ) -> Result<Vec<RecordingEvent>, RecordingError> {
        match stream {
            StreamId::Recording(record_id) => self.decide_for(record_id, command),
            _ => self.decide(command),
        }
    }
}

/// One event as appended: where it went in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendedEvent {
    /// Its stream.
    pub stream: StreamId,
    /// Its version within the stream.
    pub version: i64,
    /// The position of the append that wrote it (its batch's last).
    pub position: i64,
    /// The event.
    pub event: DomainEvent,
}

/// Hears of every append this process makes, right after it committed.
pub trait Subscriber: Send + Sync {
    /// Called once per committed append, with its events in order.
    fn on_appended(&self, events: &[AppendedEvent]);
}

/// The in-process subscribers of appended events.
#[derive(Clone, Default)]
pub struct EventBus(Arc<RwLock<Vec<Arc<dyn Subscriber>>>>);

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus").finish_non_exhaustive()
    }
}

impl EventBus {
    /// Adds a subscriber.
    pub fn subscribe(&self, subscriber: Arc<dyn Subscriber>) {
        self.0.write().expect("bus lock").push(subscriber);
    }

    /// Tells every subscriber of an append.
    pub fn publish(&self, events: &[AppendedEvent]) {
        if events.is_empty() {
            return;
        }
        let subscribers = self.0.read().expect("bus lock").clone();
        for subscriber in subscribers {
            subscriber.on_appended(events);
        }
    }
}

/// Runs commands against the event store.
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    store: Arc<dyn EventStore>,
    bus: EventBus,
}

impl CommandExecutor {
    /// An executor appending to `store` and publishing to `bus`.
    pub fn new(store: Arc<dyn EventStore>, bus: EventBus) -> Self {
        Self { store, bus }
    }

    /// The subscribers appends are published to.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// The log behind the executor.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Runs a command on the aggregate of `stream`, folded from its events;
    /// returns the events it recorded (possibly none).
    pub async fn execute<A>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        metadata: &EventMetadata,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A: StreamAggregate,
        A::Event: AggregateEvent + Send + Sync,
        A::Command: Sync,
        A::Error: Send,
    {
        let (state, version) = self.load::<A>(stream).await?;
        self.execute_from(stream, state, version, command, metadata)
            .await
    }

    /// As [`execute`](Self::execute), with a state already at hand (a
    /// projection row, the routing view) for the first attempt; a conflict
    /// folds the stream afresh.
    pub async fn execute_from<A>(
        &self,
        stream: &StreamId,
        state: A,
        version: i64,
        command: &A::Command,
        metadata: &EventMetadata,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A: StreamAggregate,
        A::Event: AggregateEvent + Send + Sync,
        A::Command: Sync,
        A::Error: Send,
    {
        self.execute_from_with(stream, state, version, command, metadata, &|_| Vec::new())
            .await
    }

    /// [`execute_from`](Self::execute_from) writing the callbacks
    /// `callbacks_for` makes of the decided events in the same transaction.
    pub async fn execute_from_with<A>(
        &self,
        stream: &StreamId,
        state: A,
        version: i64,
        command: &A::Command,
        metadata: &EventMetadata,
        callbacks_for: &CallbacksFor<'_, A::Event>,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A: StreamAggregate,
        A::Event: AggregateEvent + Send + Sync,
        A::Command: Sync,
        A::Error: Send,
    {
        let (mut state, mut version) = (state, version);
        for attempt in 1..=ATTEMPTS {
            match self
                .try_once_with(
                    stream,
                    &state,
                    version,
                    command,
                    metadata,
                    callbacks_for,
                    None,
                )
                .await
            {
                Err(err) if err.is_conflict() && attempt < ATTEMPTS => {
                    (state, version) = self.load::<A>(stream).await?;
                }
                result => return result,
            }
        }
        unreachable!("the last attempt returns")
    }

    /// As [`execute`](Self::execute), writing the callbacks `callbacks_for`
    /// makes of the decided events (possibly none) in the same transaction
    /// as the events: a callback is never lost nor sent for an event that
    /// was not recorded.
    pub async fn execute_with_callbacks<A>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        metadata: &EventMetadata,
        callbacks_for: &CallbacksFor<'_, A::Event>,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A: StreamAggregate,
        A::Event: AggregateEvent + Send + Sync,
        A::Command: Sync,
        A::Error: Send,
    {
        let (state, version) = self.load::<A>(stream).await?;
        self.execute_from_with(stream, state, version, command, metadata, callbacks_for)
            .await
    }

    /// One attempt: decide against `state` and append at `version`. A
    /// conflict is returned as [`CommandError::Store`] with
    /// [`StoreError::Conflict`], for callers that must act on a lost race.
    pub async fn try_once<A>(
        &self,
        stream: &StreamId,
        state: &A,
        version: i64,
        command: &A::Command,
        metadata: &EventMetadata,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A: StreamAggregate,
        A::Event: AggregateEvent + Send + Sync,
        A::Command: Sync,
        A::Error: Send,
    {
        self.try_once_with(
            stream,
            state,
            version,
            command,
            metadata,
            &|_| Vec::new(),
            None,
        )
        .await
    }

    /// [`try_once`](Self::try_once) writing a created run's `listing` in
    /// the same transaction as the events: one commit, and no instance
    /// sees the run without its `<meeting>` element.
    pub async fn try_once_listed<A>(
        &self,
        stream: &StreamId,
        state: &A,
        version: i64,
        command: &A::Command,
        metadata: &EventMetadata,
        listing: &MeetingListing,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A: StreamAggregate,
        A::Event: AggregateEvent + Send + Sync,
        A::Command: Sync,
        A::Error: Send,
    {
        self.try_once_with(
            stream,
            state,
            version,
            command,
            metadata,
            &|_| Vec::new(),
            Some(listing),
        )
        .await
    }

    /// [`try_once`](Self::try_once) with callbacks (and a listing) written
    /// beside the events.
    #[allow(clippy::too_many_arguments)]
    async fn try_once_with<A>(
        &self,
        stream: &StreamId,
        state: &A,
        version: i64,
        command: &A::Command,
        metadata: &EventMetadata,
        callbacks_for: &CallbacksFor<'_, A::Event>,
        listing: Option<&MeetingListing>,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A: StreamAggregate,
        A::Event: AggregateEvent + Send + Sync,
        A::Command: Sync,
        A::Error: Send,
    {
        let events = state
            .decide_in(stream, command)
            .map_err(CommandError::Rejected)?;
        let callbacks = callbacks_for(&events);
        let extras = AppendExtras {
            callbacks: &callbacks,
            listing,
        };
        if events.is_empty() {
            if !callbacks.is_empty() || listing.is_some() {
                self.store
                    .append_with(stream, version, &[], metadata, extras)
                    .await?;
            }
            return Ok(Executed {
                events,
                position: 0,
                version,
            });
        }
        let domain: Vec<DomainEvent> = events.iter().cloned().map(Into::into).collect();
        let outcome = self
            .store
            .append_with(stream, version, &domain, metadata, extras)
            .await?;
        let appended: Vec<AppendedEvent> = domain
            .into_iter()
            .enumerate()
            .map(|(index, event)| AppendedEvent {
                stream: stream.clone(),
                version: version + index as i64 + 1,
                position: outcome.position,
                event,
            })
            .collect();
        self.bus.publish(&appended);
        Ok(Executed {
            events,
            position: outcome.position,
            version: outcome.version,
        })
    }

    /// The aggregate of `stream` folded from its events, and its version.
    pub async fn load<A>(&self, stream: &StreamId) -> Result<(A, i64), StoreError>
    where
        A: StreamAggregate,
        A::Event: AggregateEvent + Send + Sync,
        A::Command: Sync,
        A::Error: Send,
    {
        let history = self.store.stream_history(stream).await?;
        let (mut state, mut version) = match history.snapshot {
            // The stream's older events were archived: its state then.
            Some(snapshot) => (
                serde_json::from_str::<A>(&snapshot.state).map_err(|err| StoreError::Corrupt {
                    position: 0,
                    reason: format!("snapshot of `{stream}` cannot be read: {err}"),
                })?,
                snapshot.version,
            ),
            None => (A::initial(stream), 0),
        };
        for stored in history.events {
            version = stored.version;
            if let Some(event) = A::Event::from_domain(stored.event) {
                state.evolve(&event);
            }
        }
        Ok((state, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{World, asked, secret, url};
    use std::sync::Mutex;
    use switchboard_domain::ids::ServerId;
    use switchboard_domain::server::{
        ServerChanges, ServerCommand, ServerError, ServerEvent, ServerSettings,
    };

    /// A subscriber that keeps what it heard, one entry per append.
    #[derive(Default)]
    struct Heard(Mutex<Vec<Vec<AppendedEvent>>>);

    impl Subscriber for Heard {
        fn on_appended(&self, events: &[AppendedEvent]) {
            self.0.lock().unwrap().push(events.to_vec());
        }
    }

    impl Heard {
        fn appends(&self) -> Vec<Vec<AppendedEvent>> {
            self.0.lock().unwrap().clone()
        }
    }

    fn listening(world: &World) -> Arc<Heard> {
        let heard = Arc::new(Heard::default());
        world.executor.bus().subscribe(heard.clone());
        heard
    }

    fn server_events(world: &World, id: ServerId) -> Vec<DomainEvent> {
        world
            .store
            .events()
            .into_iter()
            .filter(|stored| stored.stream == id.stream())
            .map(|stored| stored.event)
            .collect()
    }

    #[tokio::test]
    async fn appended_events_reach_a_subscriber_with_their_place_in_the_log() {
        let world = World::new();
        world.server("first").await;
        let heard = listening(&world);
        let id = ServerId::new();
        let settings = ServerSettings {
            url: url("second"),
            secret: secret("second"),
            tag: None,
            load_multiplier: 1.0,
            checksum: None,
            metrics_url: None,
        };

        let executed = world
            .executor
            .execute::<Server>(
                &id.stream(),
                &ServerCommand::Add {
                    id,
                    settings: settings.clone(),
                    enabled: true,
                },
                &asked(),
            )
            .await
            .unwrap();

        let added = ServerEvent::ServerAdded { id, settings };
        assert_eq!(
            executed,
            Executed {
                events: vec![added.clone(), ServerEvent::ServerEnabled],
                position: 4,
                version: 2,
            }
        );
        let appended = |version, event: ServerEvent| AppendedEvent {
            stream: id.stream(),
            version,
            position: 4,
            event: event.into(),
        };
        assert_eq!(
            heard.appends(),
            vec![vec![
                appended(1, added),
                appended(2, ServerEvent::ServerEnabled)
            ]],
            "one delivery per append, every event with the append's last position"
        );
    }

    #[tokio::test]
    async fn a_rejected_command_appends_and_publishes_nothing() {
        let world = World::new();
        let known = world.server("known").await;
        let heard = listening(&world);
        let before = world.store.position();

        let unknown = world
            .executor
            .execute::<Server>(&ServerId::new().stream(), &ServerCommand::Enable, &asked())
            .await;
        let invalid = world
            .executor
            .execute::<Server>(
                &known.stream(),
                &ServerCommand::Update(ServerChanges {
                    secret: Some(" ".into()),
                    ..ServerChanges::default()
                }),
                &asked(),
            )
            .await;

        assert!(
            matches!(unknown, Err(CommandError::Rejected(ServerError::NotFound))),
            "{unknown:?}"
        );
        assert!(
            matches!(
                invalid,
                Err(CommandError::Rejected(ServerError::EmptySecret))
            ),
            "{invalid:?}"
        );
        assert_eq!(world.store.events_after_position(before), vec![]);
        assert_eq!(heard.appends(), Vec::<Vec<AppendedEvent>>::new());
    }

    #[tokio::test]
    async fn a_conflict_is_decided_again_against_the_fresh_state() {
        let world = World::new();
        let id = world.server("a").await;
        let (stale, version) = world.executor.load::<Server>(&id.stream()).await.unwrap();
        assert_eq!(version, 2);
        // Meanwhile another writer cordons the server.
        world
            .store
            .append_raw(
                &id.stream(),
                version,
                &[ServerEvent::ServerCordoned.into()],
                &EventMetadata::actor("another-instance"),
            )
            .unwrap();
        let heard = listening(&world);

        // Cordoning from the stale state: decided again, nothing left to record.
        let cordon = world
            .executor
            .execute_from(
                &id.stream(),
                stale.clone(),
                version,
                &ServerCommand::Cordon,
                &asked(),
            )
            .await
            .unwrap();
        assert_eq!(
            cordon,
            Executed {
                events: vec![],
                position: 0,
                version: 3,
            }
        );

        // Disabling from the stale state: decided again and appended after theirs.
        let disable = world
            .executor
            .execute_from(
                &id.stream(),
                stale,
                version,
                &ServerCommand::Disable,
                &asked(),
            )
            .await
            .unwrap();
        assert_eq!(
            disable,
            Executed {
                events: vec![ServerEvent::ServerDisabled],
                position: 4,
                version: 4,
            }
        );
        assert_eq!(
            server_events(&world, id)[2..],
            [
                ServerEvent::ServerCordoned.into(),
                ServerEvent::ServerDisabled.into()
            ]
        );
        assert_eq!(heard.appends().len(), 1, "only our append is published");
    }

    #[tokio::test]
    async fn one_attempt_reports_a_lost_race_and_writes_nothing() {
        let world = World::new();
        let id = world.server("a").await;
        let (stale, version) = world.executor.load::<Server>(&id.stream()).await.unwrap();
        world
            .store
            .append_raw(
                &id.stream(),
                version,
                &[ServerEvent::ServerCordoned.into()],
                &EventMetadata::actor("another-instance"),
            )
            .unwrap();
        let before = world.store.position();

        let result = world
            .executor
            .try_once(
                &id.stream(),
                &stale,
                version,
                &ServerCommand::Disable,
                &asked(),
            )
            .await;

        assert!(
            result.as_ref().is_err_and(CommandError::is_conflict),
            "{result:?}"
        );
        assert_eq!(world.store.events_after_position(before), vec![]);
    }
}
