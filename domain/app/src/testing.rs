//! The world unit tests set up: an in-memory store on a manual clock, the
//! executor over it, servers and meetings given as events, and the use
//! cases wired as `switchboard-api` wires them.

use crate::backend::Backends;
use crate::clock::{ManualClock, SharedClock};
use crate::executor::{CommandExecutor, EventBus};
use crate::meetings::{ApiRequest, MeetingService, MeetingSettings};
use crate::memory::{InMemoryStore, ScriptedBackend};
use crate::routing::{ObservedLoads, RoutingView};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_domain::bbb::params::Params;
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::{MeetingId, ServerId, TenantId, meeting_stream};
use switchboard_domain::load::LoadWeights;
use switchboard_domain::meeting::{EndReason, Meeting, MeetingCommand, MeetingEvent, MeetingRun};
use switchboard_domain::server::{Server, ServerCommand, ServerSettings};

/// Where every test's clock starts (2023-11-14T22:13:20Z).
pub const NOW_MS: i64 = 1_700_000_000_000;

/// The base URL of the server called `name`.
pub fn url(name: &str) -> String {
    format!("https://{name}.example/bigbluebutton/")
}

/// The secret of the server called `name`.
pub fn secret(name: &str) -> String {
    format!("{name}-secret")
}

/// The metadata of given events.
pub fn given() -> EventMetadata {
    EventMetadata::actor("test:given")
}

/// The metadata of the use case's own events.
pub fn asked() -> EventMetadata {
    EventMetadata::actor("test:when")
}

/// A verified request of the default tenant.
pub fn request(call: &str, query: &str) -> ApiRequest {
    ApiRequest {
        call: call.to_owned(),
        params: Params::parse(query).expect("test query"),
        raw_query: query.to_owned(),
        has_form_params: false,
        xml_body: None,
        multipart: None,
        tenant: TenantId::default_tenant(),
        tenant_config: None,
        signed_with: None,
    }
}

/// A meetingID.
pub fn meeting_id(id: &str) -> MeetingId {
    MeetingId::parse(id).expect("test meetingID")
}

/// `MeetingCreated` of the default tenant, named as its meetingID.
pub fn created(id: &str, internal_id: &str, server: ServerId, create_time_ms: i64) -> DomainEvent {
    DomainEvent::Meeting(MeetingEvent::MeetingCreated {
        tenant: TenantId::default_tenant(),
        meeting_id: meeting_id(id),
        name: id.to_owned(),
        run: MeetingRun {
            internal_id: internal_id.to_owned(),
            server_id: server,
            create_time_ms,
            recording_ready_url: None,
            callbacks: None,
        },
    })
}

/// `MeetingEnded`.
pub fn ended(internal_id: &str, reason: EndReason, at_ms: i64) -> DomainEvent {
    DomainEvent::Meeting(MeetingEvent::MeetingEnded {
        internal_id: internal_id.to_owned(),
        reason,
        at_ms,
    })
}

/// The store, the clock and the executor every test starts from.
pub struct World {
    /// Log and projections.
    pub store: Arc<InMemoryStore>,
    /// The time, moved by hand.
    pub clock: ManualClock,
    /// The executor, publishing to the bus the routing view hears.
    pub executor: CommandExecutor,
    /// Servers added so far (their ids ascend in the order they are added,
    /// so a server added earlier wins a tie on load).
    servers: AtomicU64,
}

impl World {
    /// An empty world at [`NOW_MS`].
    pub fn new() -> Self {
        let clock = ManualClock::at(NOW_MS);
        let store = Arc::new(InMemoryStore::with_clock(Arc::new(clock.clone())));
        let executor = CommandExecutor::new(store.clone(), EventBus::default());
        Self {
            store,
            clock,
            executor,
            servers: AtomicU64::new(0),
        }
    }

    /// The clock as use cases hold it.
    pub fn shared_clock(&self) -> SharedClock {
        Arc::new(self.clock.clone())
    }

    /// Given: a server called `name` added and enabled (online); servers
    /// added later have higher ids.
    pub async fn server(&self, name: &str) -> ServerId {
        let n = self.servers.fetch_add(1, Ordering::SeqCst) + 1;
        let id: ServerId = format!("00000000-0000-7000-8000-{n:012x}")
            .parse()
            .expect("server id");
        let settings = ServerSettings {
            url: url(name),
            secret: secret(name),
            tag: None,
            load_multiplier: 1.0,
            checksum: None,
            metrics_url: None,
        };
        self.on_server(
            id,
            ServerCommand::Add {
                id,
                settings,
                enabled: true,
            },
        )
        .await;
        id
    }

    /// Given: a command done to a server.
    pub async fn on_server(&self, id: ServerId, command: ServerCommand) {
        self.executor
            .execute::<Server>(&id.stream(), &command, &given())
            .await
            .expect("given server command");
    }

    /// Given: a meeting of the default tenant running on `server`.
    pub async fn meeting(
        &self,
        id: &str,
        internal_id: &str,
        server: ServerId,
        create_time_ms: i64,
    ) {
        self.tenant_meeting(
            &TenantId::default_tenant(),
            id,
            internal_id,
            server,
            create_time_ms,
        )
        .await;
    }

    /// Given: a meeting of `tenant` (named as its meetingID) running on
    /// `server`.
    pub async fn tenant_meeting(
        &self,
        tenant: &TenantId,
        id: &str,
        internal_id: &str,
        server: ServerId,
        create_time_ms: i64,
    ) {
        let meeting_id = meeting_id(id);
        let command = MeetingCommand::RecordCreated {
            tenant: tenant.clone(),
            meeting_id: meeting_id.clone(),
            name: id.to_owned(),
            run: MeetingRun {
                internal_id: internal_id.to_owned(),
                server_id: server,
                create_time_ms,
                recording_ready_url: None,
                callbacks: None,
            },
        };
        self.executor
            .execute::<Meeting>(&meeting_stream(tenant, &meeting_id), &command, &given())
            .await
            .expect("given meeting");
    }

    /// Calls to servers through `backend`, SHA-1 signed, 3 s timeout.
    pub fn backends(&self, backend: &Arc<ScriptedBackend>) -> Backends {
        Backends::new(
            backend.clone(),
            ChecksumAlgorithm::Sha1,
            Duration::from_secs(3),
        )
    }

    /// The meeting use cases over this world, with a routing view loaded
    /// now and subscribed to the executor's appends; 3 create attempts.
    pub async fn meetings(&self, backend: &Arc<ScriptedBackend>) -> MeetingService {
        self.meetings_with(backend, MeetingSettings::new(3)).await
    }

    /// The meeting use cases over this world with `settings`.
    pub async fn meetings_with(
        &self,
        backend: &Arc<ScriptedBackend>,
        settings: MeetingSettings,
    ) -> MeetingService {
        let routing = RoutingView::load(
            self.store.clone(),
            self.shared_clock(),
            LoadWeights::default(),
            ObservedLoads::default(),
        )
        .await
        .expect("routing view");
        self.executor.bus().subscribe(routing.clone());
        MeetingService::new(
            self.store.clone(),
            self.executor.clone(),
            routing,
            self.backends(backend),
            self.shared_clock(),
            settings,
        )
    }
}
