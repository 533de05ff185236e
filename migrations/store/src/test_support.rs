//! Fresh databases for tests: a temporary SQLite file or a new PostgreSQL
//! database on the server named by `SWITCHBOARD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Tests fail, never skip, when
//! PostgreSQL is unreachable.

use sea_orm::{ConnectionTrait, Database};
use switchboard_app::{CommandError, CommandExecutor, Executed};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::{MeetingId, ServerId, TenantId, meeting_stream};
use switchboard_domain::meeting::{Meeting, MeetingCommand, MeetingError, MeetingEvent};
use switchboard_domain::recording::{
    Recording, RecordingCommand, RecordingError, RecordingEvent, recording_stream,
};
use switchboard_domain::server::{Server, ServerCommand, ServerError, ServerEvent};
use switchboard_domain::tenant::{Tenant, TenantCommand, TenantError, TenantEvent, tenant_stream};
use switchboard_domain::token::{Token, TokenCommand, TokenError, TokenEvent, token_stream};

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty PostgreSQL database and returns its URL.
pub async fn fresh_postgres() -> String {
    let admin = postgres_admin_url();
    let name = format!("switchboard_test_{}", uuid::Uuid::new_v4().simple());
    let db = Database::connect(&admin).await.unwrap_or_else(|err| {
        panic!(
            "PostgreSQL at {admin} is needed for tests (set SWITCHBOARD_TEST_POSTGRES_URL): {err}"
        )
    });
    db.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    db.close().await.ok();
    let base = admin
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(&admin);
    format!("{base}/{name}")
}

/// A SQLite database in a new temporary directory (kept for the process).
pub fn fresh_sqlite() -> String {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    format!("sqlite://{}?mode=rwc", dir.join("switchboard.db").display())
}

/// The commands as tests (and only tests) run them straight on a store:
/// through the one [`CommandExecutor`] over this store, with no subscriber.
#[allow(async_fn_in_trait)]
pub trait StoreCommands {
    /// An executor over this store.
    fn executor(&self) -> CommandExecutor;

    /// Runs a server command.
    async fn execute_server(
        &self,
        id: ServerId,
        command: &ServerCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<ServerEvent>, CommandError<ServerError>> {
        self.executor()
            .execute::<Server>(&id.stream(), command, metadata)
            .await
    }

    /// Runs a meeting command.
    async fn execute_meeting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
        command: &MeetingCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<MeetingEvent>, CommandError<MeetingError>> {
        self.executor()
            .execute::<Meeting>(&meeting_stream(tenant, meeting_id), command, metadata)
            .await
    }

    /// Runs a token command.
    async fn execute_token(
        &self,
        name: &str,
        command: &TokenCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<TokenEvent>, CommandError<TokenError>> {
        self.executor()
            .execute::<Token>(&token_stream(name), command, metadata)
            .await
    }

    /// Runs a tenant command.
    async fn execute_tenant(
        &self,
        name: &str,
        command: &TenantCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<TenantEvent>, CommandError<TenantError>> {
        self.executor()
            .execute::<Tenant>(&tenant_stream(name), command, metadata)
            .await
    }

    /// Runs a recording command.
    async fn execute_recording(
        &self,
        record_id: &str,
        command: &RecordingCommand,
        metadata: &EventMetadata,
    ) -> Result<Executed<RecordingEvent>, CommandError<RecordingError>> {
        self.executor()
            .execute::<Recording>(&recording_stream(record_id), command, metadata)
            .await
    }
}

impl StoreCommands for crate::Store {
    fn executor(&self) -> CommandExecutor {
        CommandExecutor::new(std::sync::Arc::new(self.clone()), Default::default())
    }
}
