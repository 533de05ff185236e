//! A running Switchboard against simulated BBB servers, on SQLite or PostgreSQL.

use bbb_simulator::{Simulator, SimulatorConfig};
use std::sync::Arc;
use switchboard_api::app::{self, AppState, Background, RunningApp};
use switchboard_api::config::Settings;
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::ServerId;
use switchboard_domain::server::{ServerCommand, ServerSettings};
use switchboard_store::Store;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;
use switchboard_store::test_support::{fresh_postgres, fresh_sqlite};

/// The front-end secret tests sign with.
pub const SECRET: &str = "switchboard-test-secret";

/// Which database a harness runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Both databases, for tests that must hold on each.
pub const BOTH: [Db; 2] = [Db::Sqlite, Db::Postgres];

pub async fn database_url(db: Db) -> String {
    match db {
        Db::Sqlite => fresh_sqlite(),
        Db::Postgres => fresh_postgres().await,
    }
}

/// A Switchboard with simulators.
pub struct Harness {
    pub app: RunningApp,
    pub sims: Vec<Simulator>,
    pub servers: Vec<ServerId>,
    pub client: reqwest::Client,
    pub database_url: String,
}

pub fn client() -> reqwest::Client {
    switchboard_workers::backend::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Test settings: fast timeouts and refreshes.
pub fn settings(database_url: &str) -> Settings {
    Settings {
        database: Some(database_url.to_owned()),
        secret: Some(SECRET.to_owned()),
        backend_timeout_ms: 1500,
        get_meetings_timeout_ms: 500,
        refresh_interval_ms: 50,
        // Tests receive callbacks on loopback, and retry them quickly.
        outbound_allow: vec!["127.0.0.0/8".into()],
        callbacks: switchboard_api::config::CallbackSettings {
            first_retry_secs: 0.2,
            max_retry_secs: 1.0,
            poll_interval_ms: 50,
            fallback_grace_secs: 0.2,
            ..Default::default()
        },
        data_dir: std::env::temp_dir()
            .join(format!("switchboard-it-{}", uuid::Uuid::new_v4().simple())),
        ..Settings::default()
    }
}

pub async fn add_server(
    store: &Store,
    sim: &Simulator,
    tag: Option<&str>,
    enabled: bool,
) -> ServerId {
    let id = ServerId::new();
    let command = ServerCommand::Add {
        id,
        settings: ServerSettings {
            url: sim.url(),
            secret: sim.secret().to_owned(),
            tag: tag.map(str::to_owned),
            load_multiplier: 1.0,
            checksum: None,
            metrics_url: None,
        },
        enabled,
    };
    store
        .execute_server(id, &command, &EventMetadata::actor("test"))
        .await
        .unwrap();
    id
}

impl Harness {
    /// `servers` simulators, all enabled, untagged.
    pub async fn start(db: Db, servers: usize) -> Self {
        let tags = vec![None; servers];
        Self::with_tags(db, &tags, |_| {}).await
    }

    /// `servers` simulators polled by an in-process worker every 200 ms.
    pub async fn polled(db: Db, servers: usize) -> Self {
        let tags = vec![None; servers];
        Self::build(
            db,
            &tags,
            |settings| settings.health.interval_secs = 0.2,
            Background { health: true },
        )
        .await
    }

    /// `servers` simulators polled every 200 ms; `tune` adjusts settings.
    pub async fn polled_with(db: Db, servers: usize, tune: impl FnOnce(&mut Settings)) -> Self {
        let tags = vec![None; servers];
        Self::build(
            db,
            &tags,
            |settings| {
                settings.health.interval_secs = 0.2;
                tune(settings);
            },
            Background { health: true },
        )
        .await
    }

    /// One simulator per entry, tagged as given; `tune` adjusts settings.
    pub async fn with_tags(
        db: Db,
        tags: &[Option<&str>],
        tune: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::build(db, tags, tune, Background { health: false }).await
    }

    async fn build(
        db: Db,
        tags: &[Option<&str>],
        tune: impl FnOnce(&mut Settings),
        background: Background,
    ) -> Self {
        let database_url = database_url(db).await;
        let mut settings = settings(&database_url);
        tune(&mut settings);
        let store = app::open_store(&settings).await.unwrap();
        let mut sims = Vec::new();
        let mut ids = Vec::new();
        for tag in tags {
            let sim = Simulator::start(SimulatorConfig {
                secret: format!("sim-secret-{}", sims.len()),
                ..SimulatorConfig::default()
            })
            .await
            .unwrap();
            ids.push(add_server(&store, &sim, *tag, true).await);
            sims.push(sim);
        }
        let secrets = app::resolve_secrets(&settings, &store)
            .await
            .unwrap()
            .accepted;
        let state = AppState::build(settings, store, secrets).await.unwrap();
        let app = app::start(state, "127.0.0.1:0".parse().unwrap(), background)
            .await
            .unwrap();
        Self {
            app,
            sims,
            servers: ids,
            client: client(),
            database_url,
        }
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.app.state
    }

    pub fn store(&self) -> &Store {
        &self.app.state.store
    }

    /// A facade URL signed with sha1.
    pub fn url(&self, call: &str, query: &str) -> String {
        signed_url(
            &self.app.api_url(),
            call,
            query,
            SECRET,
            ChecksumAlgorithm::Sha1,
        )
    }

    /// GET a signed call; returns status, Location (if any) and body.
    pub async fn get(&self, call: &str, query: &str) -> Reply {
        self.get_raw(&self.url(call, query)).await
    }

    /// POST a body with a content type.
    pub async fn post(
        &self,
        url: impl AsRef<str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let response = self
            .client
            .post(url.as_ref())
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }

    pub async fn get_raw(&self, url: &str) -> Reply {
        let response = self.client.get(url).send().await.unwrap();
        Reply::read(response).await
    }

    /// Total meetings running on all simulators.
    pub fn meetings_on_sims(&self) -> usize {
        self.sims.iter().map(Simulator::meeting_count).sum()
    }

    /// The simulator that runs a meeting.
    pub fn sim_with(&self, meeting_id: &str) -> Option<usize> {
        self.sims
            .iter()
            .position(|sim| sim.meeting_ids().iter().any(|id| id == meeting_id))
    }

    /// Every simulator that runs a meeting.
    pub fn sim_with_all(&self, meeting_id: &str) -> Vec<usize> {
        (0..self.sims.len())
            .filter(|&n| self.sims[n].meeting_ids().iter().any(|id| id == meeting_id))
            .collect()
    }

    pub async fn create(&self, meeting_id: &str) -> Reply {
        let query = format!("name=Test&meetingID={}", enc(meeting_id));
        self.get("create", &query).await
    }

    pub async fn stop(self) {
        let data_dir = self.app.state.settings.data_dir.clone();
        self.app.stop().await;
        for sim in &self.sims {
            sim.shutdown().await;
        }
        // The per-test data folder (recordings, spool) in the temp dir.
        if data_dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(&data_dir);
        }
    }
}

pub fn signed_url(
    api_url: &str,
    call: &str,
    query: &str,
    secret: &str,
    algorithm: ChecksumAlgorithm,
) -> String {
    let checksum = sign(algorithm, call, query, secret);
    if query.is_empty() {
        format!("{api_url}{call}?checksum={checksum}")
    } else {
        format!("{api_url}{call}?{query}&checksum={checksum}")
    }
}

pub fn enc(text: &str) -> String {
    switchboard_domain::bbb::params::encode_component(text)
}

/// An answer of the facade.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub location: Option<String>,
    pub body: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let location = header("location");
        Self {
            status: response.status().as_u16(),
            content_type,
            location,
            body: response.text().await.unwrap(),
        }
    }

    /// The text of the first `<name>` element.
    pub fn field(&self, name: &str) -> Option<String> {
        let open = format!("<{name}>");
        let start = self.body.find(&open)? + open.len();
        let end = self.body[start..].find(&format!("</{name}>"))? + start;
        Some(self.body[start..end].to_owned())
    }

    pub fn returncode(&self) -> String {
        self.field("returncode").unwrap_or_default()
    }

    pub fn message_key(&self) -> String {
        self.field("messageKey").unwrap_or_default()
    }

    /// Asserts a BBB XML answer: 200, text/xml.
    pub fn assert_xml(&self) -> &Self {
        assert_eq!(self.status, 200, "{self:?}");
        assert!(self.content_type.starts_with("text/xml"), "{self:?}");
        self
    }

    pub fn assert_success(&self) -> &Self {
        self.assert_xml();
        assert_eq!(self.returncode(), "SUCCESS", "{}", self.body);
        self
    }

    pub fn assert_failed(&self, key: &str) -> &Self {
        self.assert_xml();
        assert_eq!(self.returncode(), "FAILED", "{}", self.body);
        assert_eq!(self.message_key(), key, "{}", self.body);
        self
    }
}

/// Waits until the routing view has caught up with the log.
pub async fn wait_for_refresh(harness: &Harness) {
    let target = harness.store().last_position().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while harness.state().routing.position() < target {
        assert!(
            std::time::Instant::now() < deadline,
            "routing view did not refresh"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
