//! Wiring: the shared state, the HTTP routes, background tasks, and a running
//! instance that tests and `serve` start the same way.

use crate::admin::facade::AdminFacade;
use crate::bbb;
use crate::config::Settings;
use crate::recordings::RecordingRoutes;
use anyhow::Context;
use poem::{EndpointExt, Route, get, handler, web::Data};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_app::admin::AdminService;
use switchboard_app::agent::AgentService;
use switchboard_app::agent::watch::AgentWatch;
use switchboard_app::backend::Backends;
use switchboard_app::callbacks::{CallbackLinks, CallbackService};
use switchboard_app::clock::{SharedClock, SystemClock};
use switchboard_app::executor::{CommandExecutor, EventBus};
use switchboard_app::health::{HealthConfig, HealthPoller, HealthPorts, OfflinePolicy};
use switchboard_app::meetings::MeetingService;
use switchboard_app::ports::Database;
use switchboard_app::recordings::{RecordingService, RecordingSetupError};
use switchboard_app::routing::{ObservedLoads, RoutingView};
use switchboard_store::Store;
use switchboard_workers::backend::HttpBackendClient;
use switchboard_workers::callbacks::HttpCallbackClient;
use switchboard_workers::metrics_scraper::MetricsScraper;
use tokio::task::JoinHandle;

/// The wired application: adapters plugged into the use cases, shared by
/// the routers and background tasks of one process.
#[derive(Debug)]
pub struct AppState {
    /// The settings in force.
    pub settings: Settings,
    /// The SQL adapter itself (readiness, job storage, replay).
    pub store: Store,
    /// The same database as the application's ports.
    pub db: Arc<dyn Database>,
    /// Runs every command; publishes appends to the routing view.
    pub executor: CommandExecutor,
    /// The routing view.
    pub routing: Arc<RoutingView>,
    /// Calls to BBB servers.
    pub backends: Backends,
    /// The time.
    pub clock: SharedClock,
    /// Secrets front-ends may sign with.
    pub secrets: Vec<String>,
    /// What health polls saw on each server.
    pub observed: ObservedLoads,
    /// The meeting use cases of the BBB API.
    pub meetings: Arc<MeetingService>,
    /// The admin operations, in the admin API's shapes.
    pub admin: Arc<AdminFacade>,
    /// The BBB API facade's state.
    pub bbb: Arc<bbb::BbbState>,
    /// Recordings: tree, importer, caption tracks.
    pub recordings: Arc<RecordingService>,
    /// Callbacks: servers' calls received, deliveries to front-ends.
    pub callbacks: Arc<CallbackService>,
    /// Node agents: registration and heartbeats.
    pub agents: Arc<AgentService>,
}

/// The database as the application's ports, and an executor over it that
/// publishes to `bus`.
pub fn ports_of(store: &Store, bus: EventBus) -> (Arc<dyn Database>, CommandExecutor) {
    let db: Arc<dyn Database> = Arc::new(store.clone());
    let executor = CommandExecutor::new(db.clone(), bus);
    (db, executor)
}

/// Calls to BBB servers over HTTP, as the settings say.
pub fn backends_of(settings: &Settings) -> Backends {
    Backends::new(
        Arc::new(HttpBackendClient::new()),
        settings.backend_checksum,
        settings.backend_timeout(),
    )
}

/// The recording use cases on the database's ports, as the settings say.
pub async fn open_recordings(
    settings: &Settings,
    db: Arc<dyn Database>,
    executor: CommandExecutor,
) -> Result<RecordingService, RecordingSetupError> {
    RecordingService::open(settings.recording_settings(), db, executor).await
}

/// The settings key of the key that signs Switchboard's callback URLs
/// (generated at first start, shared by every instance on the database).
const CALLBACK_KEY_SETTING: &str = "callback_url_key";

/// The callback use cases: Switchboard's callback URLs signed with the
/// stored key, deliveries over HTTP under the outbound address rules,
/// signed with `secrets` for the default tenant.
pub async fn open_callbacks(
    settings: &Settings,
    db: Arc<dyn Database>,
    executor: CommandExecutor,
    clock: SharedClock,
    secrets: Vec<String>,
) -> anyhow::Result<CallbackService> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    let key = db
        .setting_or_insert(CALLBACK_KEY_SETTING, &fresh)
        .await
        .context("cannot read or store the callback URL key")?;
    let base = settings
        .callbacks
        .url
        .as_ref()
        .or(settings.public_url.as_ref());
    let links = Arc::new(CallbackLinks::new(
        key.trim().as_bytes(),
        base.map(String::as_str),
    ));
    Ok(CallbackService::new(
        db,
        executor,
        Arc::new(HttpCallbackClient::new(settings.address_policy())),
        clock,
        links,
        secrets,
        settings.callback_settings(),
    )
    .with_backends(backends_of(settings)))
}

pub use crate::secrets::{Secrets, generate_secret, resolve_secrets};

/// Opens the database named by the settings (creating the data folder for the
/// embedded default) and applies migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.uses_embedded_database() {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!("cannot create data folder {}", settings.data_dir.display())
        })?;
    }
    let store = Store::connect(&settings.database_url())
        .await
        .with_context(|| {
            format!(
                "cannot open database {}",
                crate::config::redact_url(&settings.database_url())
            )
        })?;
    store.migrate().await.context("database migration failed")?;
    Ok(store)
}

impl AppState {
    /// Builds the state: ports, executor, routing view (subscribed to the
    /// executor's appends), use cases.
    pub async fn build(
        settings: Settings,
        store: Store,
        secrets: Vec<String>,
    ) -> anyhow::Result<Arc<Self>> {
        let clock: SharedClock = Arc::new(SystemClock);
        let bus = EventBus::default();
        let (db, executor) = ports_of(&store, bus.clone());
        let observed = ObservedLoads::default();
        let routing =
            RoutingView::load(db.clone(), clock.clone(), settings.load, observed.clone()).await?;
        bus.subscribe(routing.clone());
        let backends = backends_of(&settings);
        let recordings = Arc::new(
            open_recordings(&settings, db.clone(), executor.clone())
                .await
                .context("cannot set up recordings")?,
        );
        let callbacks = Arc::new(
            open_callbacks(
                &settings,
                db.clone(),
                executor.clone(),
                clock.clone(),
                secrets.clone(),
            )
            .await?,
        );
        let admin_service = AdminService::new(
            db.clone(),
            executor.clone(),
            backends.clone(),
            clock.clone(),
            settings.load,
            Some(routing.clone()),
        );
        bus.subscribe(admin_service.token_cache());
        let admin = Arc::new(AdminFacade::new(Arc::new(admin_service)));
        let meetings = Arc::new(
            MeetingService::new(
                db.clone(),
                executor.clone(),
                routing.clone(),
                backends.clone(),
                clock.clone(),
                settings.meeting_settings(),
            )
            .with_policy(switchboard_domain::tenant::TenantPolicy {
                create: settings.policy.create.clone(),
                join: settings.policy.join.clone(),
                ..Default::default()
            })
            .with_callback_links(callbacks.links().clone()),
        );
        let agents = Arc::new(AgentService::new(
            db.clone(),
            executor.clone(),
            clock.clone(),
            observed.clone(),
            Some(routing.clone()),
            settings.agent_settings(),
        ));
        let bbb = Arc::new(bbb::BbbState {
            meetings: meetings.clone(),
            recordings: recordings.clone(),
            callbacks: callbacks.clone(),
            secrets: secrets.clone(),
            checksum_algorithms: settings.checksum_algorithms.clone(),
            max_request_bytes: settings.max_request_bytes,
            text_track_max_bytes: settings.recordings.text_track_max_bytes,
            get_meetings: settings.meetings.get_meetings,
            get_recordings_filtered: settings.meetings.get_recordings_filtered,
        });
        Ok(Arc::new(Self {
            bbb,
            settings,
            store,
            db,
            executor,
            routing,
            backends,
            clock,
            secrets,
            observed,
            meetings,
            admin,
            recordings,
            callbacks,
            agents,
        }))
    }

    /// What the `/metrics` gauges are read from.
    pub fn gauge_sources(&self) -> crate::metrics::GaugeSources {
        crate::metrics::GaugeSources {
            routing: self.routing.clone(),
            observed: self.observed.clone(),
            db: self.db.clone(),
        }
    }

    /// What the health poller works with.
    pub fn health_ports(&self) -> HealthPorts {
        HealthPorts {
            store: self.db.clone(),
            executor: self.executor.clone(),
            backends: self.backends.clone(),
            scraper: Arc::new(MetricsScraper::new()),
            clock: self.clock.clone(),
        }
    }

    /// The health poller's settings.
    pub fn health_config(&self) -> HealthConfig {
        let polling = &self.settings.health;
        HealthConfig {
            interval: Duration::from_secs_f64(polling.interval_secs),
            timeout: Duration::from_millis(polling.timeout_ms),
            offline_after: polling.offline_after,
            online_after: polling.online_after,
            concurrency: polling.concurrency.max(1),
            reconcile_grace: Duration::from_secs_f64(polling.reconcile_grace_secs.max(0.0)),
            adopt_unknown: polling.adopt_unknown,
            weights: self.settings.load,
            metrics_window: Duration::from_secs_f64(polling.metrics_window_secs),
            callback_retry_for: self.settings.callback_settings().retry_for,
            callback_fallback_grace: Duration::from_secs_f64(
                self.settings.callbacks.fallback_grace_secs.max(0.0),
            ),
            agent_poll: self.settings.agent.poll,
            agent_missed_heartbeats: self.settings.agent.missed_heartbeats.max(1),
            offline_meetings: if polling.offline_meetings == "forget" {
                OfflinePolicy::Forget
            } else {
                OfflinePolicy::KeepFor(Duration::from_secs_f64(polling.offline_grace_secs))
            },
            series_for: Duration::from_secs(self.settings.console.history_hours * 3600),
        }
    }
}

#[handler]
fn health() -> &'static str {
    "ok"
}

#[handler]
async fn ready(Data(store): Data<&Store>) -> poem::Response {
    match store.ping().await {
        Ok(()) => poem::Response::builder().body("ready"),
        Err(_) => poem::Response::builder()
            .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
            .body("database unreachable"),
    }
}

/// The operator console's state: sessions signed with the configured
/// console key (shared by a pool's instances) or a random key of this
/// process.
pub fn console_state(state: &AppState) -> Arc<crate::console::ConsoleState> {
    let key = match state.settings.console.session_key.as_deref() {
        Some(key) => crate::console::session::SessionKey::derive(key),
        None => crate::console::session::SessionKey::random(),
    };
    Arc::new(crate::console::ConsoleState {
        admin: state.admin.service().clone(),
        recordings: state.recordings.clone(),
        db: state.db.clone(),
        key,
        settings: state.settings.console.clone(),
        clock: state.clock.clone(),
    })
}

/// The HTTP routes.
pub fn routes(state: Arc<AppState>) -> impl poem::Endpoint {
    let stats = Arc::new(switchboard_app::stats::StatsService::new(
        state.db.clone(),
        state.routing.clone(),
        state.clock.clone(),
    ));
    let route = Route::new();
    let route = if state.settings.console.enabled {
        route.nest("/console", crate::console::endpoint(console_state(&state)))
    } else {
        route
    };
    let rest = route
        .at("/bigbluebutton/api", get(bbb::index).post(bbb::index))
        .at("/bigbluebutton/api/", get(bbb::index).post(bbb::index))
        .at(
            "/bigbluebutton/api/:call",
            bbb::api_call.data(state.bbb.clone()),
        )
        .at(
            "/bigbluebutton/api/hooks/:action",
            bbb::hooks_call.data(state.bbb.clone()),
        )
        .at(
            "/t/:tenant/bigbluebutton/api/hooks/:action",
            bbb::tenant_hooks_call.data(state.bbb.clone()),
        )
        .at(
            "/t/:tenant/bigbluebutton/api",
            get(bbb::tenant_index).post(bbb::tenant_index),
        )
        .at(
            "/t/:tenant/bigbluebutton/api/",
            get(bbb::tenant_index).post(bbb::tenant_index),
        )
        .at(
            "/t/:tenant/bigbluebutton/api/:call",
            bbb::tenant_api_call.data(state.bbb.clone()),
        )
        .nest(
            crate::admin::BASE_PATH,
            crate::admin::endpoint()
                .data(state.admin.clone())
                .data(state.callbacks.clone())
                .data(state.agents.clone()),
        )
        .nest("/api/docs", crate::admin::swagger_ui())
        .at(
            "/t/:tenant/stats",
            get(crate::tenant_stats::path_stats).data(stats.clone()),
        )
        .at(
            "/t/:tenant/metrics",
            get(crate::tenant_stats::path_metrics).data(stats.clone()),
        )
        .at("/stats", get(crate::tenant_stats::host_stats).data(stats))
        .at(
            "/scalelite/api/:call",
            crate::scalelite::scalelite_call.data(Arc::new(crate::scalelite::ScaleliteApi {
                enabled: state.settings.scalelite.admin_api,
                admin: state.admin.service().clone(),
                secrets: state.secrets.clone(),
                algorithms: state.settings.checksum_algorithms.clone(),
                max_body_bytes: state.settings.max_request_bytes,
            })),
        )
        .at(
            "/fsapi",
            poem::post(crate::scalelite::fsapi).data(Arc::new(crate::scalelite::FsapiState {
                enabled: state.settings.fsapi.enabled,
                max_body_bytes: state.settings.max_request_bytes,
                password: state
                    .settings
                    .fsapi
                    .password
                    .clone()
                    .filter(|password| !password.is_empty())
                    .or_else(|| state.secrets.first().cloned()),
                max_duration_secs: state.settings.fsapi.max_duration_minutes * 60,
                pin_digits: {
                    let length = state.settings.meetings.voice_bridge_length;
                    (length.min(5), (length + 1).max(9))
                },
                store: state.db.clone(),
                routing: state.routing.clone(),
            })),
        )
        .at("/health", get(health))
        .at("/ready", get(ready).data(state.store.clone()))
        .at("/metrics", get(crate::metrics::metrics_endpoint))
        .at(
            format!(
                "{}/:kind/:nonce/:signature",
                switchboard_app::callbacks::links::CALLBACK_PATH
            ),
            get(crate::server_callbacks::server_callback)
                .post(crate::server_callbacks::server_callback)
                .data(state.callbacks.clone()),
        )
        .nest(
            "/",
            recording_routes(Arc::new(RecordingRoutes {
                service: state.recordings.clone(),
                settings: state.settings.recordings.clone(),
            })),
        );
    bbb::BbbFirst {
        state: state.bbb.clone(),
        rest,
    }
}

/// Playback, protected links, captions and uploads of recordings.
fn recording_routes(recordings: Arc<RecordingRoutes>) -> impl poem::Endpoint {
    Route::new()
        .at(
            "/recording-link/:format/:token",
            get(crate::recordings::playback::redeem_link),
        )
        .at("/playback/*path", get(crate::recordings::playback::player))
        .at(
            "/captions/:record_id/:file",
            get(crate::recordings::playback::caption),
        )
        .at(
            "/recordings/upload",
            poem::post(crate::recordings::upload::upload),
        )
        .at(
            "/:format/:record_id/*rest",
            get(crate::recordings::playback::asset),
        )
        .data(recordings)
}

/// A running instance.
#[derive(Debug)]
pub struct RunningApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state.
    pub state: Arc<AppState>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    /// Job scheduler and worker: told to stop, then given a grace time.
    jobs: Vec<JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stop_background: tokio::sync::watch::Sender<bool>,
}

impl RunningApp {
    /// The BBB API base URL, e.g. `http://127.0.0.1:8090/bigbluebutton/api/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/bigbluebutton/api/", self.addr)
    }

    /// Stops serving and the background tasks.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.stop_background().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
    }

    /// Asks the background tasks to stop (a running poll cycle finishes),
    /// then aborts what is left after a grace time.
    async fn stop_background(&mut self) {
        let _ = self.stop_background.send(true);
        for task in self.background.drain(..) {
            task.abort();
        }
        let tasks = std::mem::take(&mut self.jobs);
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(BACKGROUND_GRACE, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            for task in aborts {
                task.abort();
            }
        }
    }

    /// Waits until the server ends (after `stop` or an error).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let result = (&mut self.server).await;
        self.stop_background().await;
        result??;
        Ok(())
    }

    /// A handle that stops the server when sent to.
    pub fn take_stop(&mut self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.stop.take()
    }
}

/// How long background tasks get to finish when stopping.
const BACKGROUND_GRACE: Duration = Duration::from_secs(2);

/// What runs beside the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Background {
    /// Poll server health.
    pub health: bool,
}

/// Starts serving on `listen` (port 0 picks a free port).
pub async fn start(
    state: Arc<AppState>,
    listen: SocketAddr,
    background: Background,
) -> anyhow::Result<RunningApp> {
    let endpoint = routes(state.clone()).map_to_response().boxed();
    start_with(state, listen, endpoint, background).await
}

/// The routes of a worker process: health, readiness and metrics (and
/// the console when `console.on_worker` asks for it).
pub fn worker_routes(state: Arc<AppState>) -> impl poem::Endpoint {
    let route = Route::new();
    let route = if state.settings.console.on_worker {
        route.nest("/console", crate::console::endpoint(console_state(&state)))
    } else {
        route
    };
    route
        .at("/health", get(health))
        .at("/ready", get(ready).data(state.store.clone()))
        .at("/metrics", get(crate::metrics::metrics_endpoint))
}

/// Starts a worker: the health poller (with reconciliation) and a small
/// listener for `/health`, `/ready` and `/metrics`; no BBB or admin API.
pub async fn start_worker(state: Arc<AppState>, listen: SocketAddr) -> anyhow::Result<RunningApp> {
    let endpoint = worker_routes(state.clone()).map_to_response().boxed();
    start_with(state, listen, endpoint, Background { health: true }).await
}

async fn start_with(
    state: Arc<AppState>,
    listen: SocketAddr,
    endpoint: poem::endpoint::BoxEndpoint<'static>,
    background: Background,
) -> anyhow::Result<RunningApp> {
    crate::metrics::install();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = crate::http_server::ServeOptions {
        idle_timeout: Duration::from_secs_f64(state.settings.idle_timeout_secs.max(0.1)),
        max_connections: state.settings.max_connections,
        grace: Duration::from_secs(5),
    };
    let server = tokio::spawn(crate::http_server::serve(
        listener,
        endpoint,
        options,
        async move {
            let _ = stop_rx.await;
        },
    ));
    state
        .recordings
        .bind_public_url(state.settings.public_url_for(addr));
    let callback_base = state.settings.public_url_for(addr);
    if state.settings.callbacks.url.is_none() && state.settings.public_url.is_none() {
        tracing::warn!(
            base = %callback_base,
            "BBB servers are told to send their end-of-meeting callbacks to this address; \
             set SWITCHBOARD_PUBLIC_URL or SWITCHBOARD_CALLBACK_URL to one they can reach"
        );
    }
    state.callbacks.links().bind_base(&callback_base);
    let (stop_background, background_stopped) = tokio::sync::watch::channel(false);
    let mut tasks = vec![
        spawn_refresh(state.clone()),
        crate::metrics::spawn_gauge_refresh(state.gauge_sources()),
        tokio::spawn(state.agents.clone().run_flusher(Duration::from_millis(
            state.settings.agent.flush_interval_ms.max(1),
        ))),
    ];
    if background.health {
        // Every instance that polls also watches for silent agents.
        let watch = AgentWatch::new(
            state.db.clone(),
            Some(state.routing.clone()),
            state.executor.clone(),
            state.clock.clone(),
            state.settings.agent_settings(),
        );
        tasks.push(tokio::spawn(watch.run(Duration::from_millis(
            state.settings.agent.watch_interval_ms.max(1),
        ))));
        tasks.push(spawn_history_snapshots(state.admin.service().clone()));
        tasks.push(spawn_recording_expiry(
            state.recordings.clone(),
            state.clock.clone(),
        ));
    }
    let mut jobs = Vec::new();
    // Polling runs where workers run (`serve` without --no-workers, and
    // `worker`); spool imports and callback deliveries wherever
    // `[recordings] import` is on too. A
    // `--no-workers` instance whose job storage cannot be prepared serves on
    // without spool imports.
    let backend = if background.health || state.settings.recordings.import {
        match crate::polling::connect_jobs(&state.store, &state.settings).await {
            Ok(backend) => Some(backend),
            Err(err) if !background.health => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "spool imports are off in this instance: the job storage is not usable"
                );
                None
            }
            Err(err) => return Err(err),
        }
    } else {
        None
    };
    if let Some(backend) = backend {
        if background.health {
            let poller = HealthPoller::new(
                state.health_ports(),
                state.health_config(),
                state.observed.clone(),
            );
            jobs.extend(crate::polling::spawn(
                poller,
                &state.store,
                &state.settings,
                &backend,
                background_stopped.clone(),
            ));
        }
        // Deliveries run wherever jobs run: claims keep instances from
        // sending one attempt twice.
        jobs.extend(switchboard_workers::jobs::spawn_callbacks(
            state.callbacks.clone(),
            &backend,
            &state.settings.job_namespace,
            switchboard_workers::jobs::CallbackJobOptions {
                poll_interval: Duration::from_millis(
                    state.settings.callbacks.poll_interval_ms.max(10),
                ),
                concurrency: state.settings.callbacks.concurrency.max(1),
            },
            background_stopped.clone(),
        ));
        if state.settings.recordings.import {
            jobs.extend(switchboard_workers::jobs::spawn_imports(
                state.recordings.clone(),
                &backend,
                &state.settings.job_namespace,
                background_stopped,
            ));
        }
    }
    Ok(RunningApp {
        addr,
        state,
        server,
        background: tasks,
        jobs,
        stop: Some(stop_tx),
        stop_background,
    })
}

/// Keeps the routing view current with changes made elsewhere: at once when
/// another instance announces a change (PostgreSQL LISTEN/NOTIFY), and at the
/// refresh interval in any case (announcements can be lost with a connection).
fn spawn_refresh(state: Arc<AppState>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let announced = Arc::new(tokio::sync::Notify::new());
        let listener = spawn_change_listener(state.clone(), announced.clone());
        let mut ticker = tokio::time::interval(Duration::from_millis(
            state.settings.refresh_interval_ms.max(10),
        ));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let _listener = AbortOnDrop(listener);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = announced.notified() => {}
            }
            if let Err(err) = state.routing.refresh().await {
                tracing::warn!(error = %err, "routing view refresh failed");
            }
            // Announcements that arrive meanwhile coalesce into one refresh.
            tokio::time::sleep(Duration::from_millis(ANNOUNCED_REFRESH_GAP_MS)).await;
        }
    })
}

/// How often the pool's snapshots for `events at` catch up with the log.
const HISTORY_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(60);

/// Keeps a snapshot of the pool every few thousand events of the log, so
/// `events at` (and the console's "pool at") starts near any moment.
fn spawn_history_snapshots(admin: Arc<AdminService>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(HISTORY_SNAPSHOT_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(err) = admin.keep_history_snapshots().await {
                tracing::warn!(error = %err, "keeping the pool's history snapshots failed");
            }
        }
    })
}

/// How often recordings are checked against their retention rules.
const RECORDING_EXPIRY_INTERVAL: Duration = Duration::from_secs(3600);

/// Expires recordings past their retention every hour (the first check a
/// minute after the start). Every polling instance checks; the log takes
/// each expiry once, the others find it already done.
fn spawn_recording_expiry(recordings: Arc<RecordingService>, clock: SharedClock) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let mut ticker = tokio::time::interval(RECORDING_EXPIRY_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match recordings.expire(clock.now_ms(), false).await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::info!(expired = expired.len(), "recordings expired by retention");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "expiring recordings failed"),
            }
        }
    })
}

/// The least time between two refreshes, so a burst of announcements costs
/// one refresh rather than one each.
const ANNOUNCED_REFRESH_GAP_MS: u64 = 5;

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens for other instances' announcements and wakes the refresher.
fn spawn_change_listener(
    state: Arc<AppState>,
    announced: Arc<tokio::sync::Notify>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match state.db.changes().await {
                Ok(None) => return,
                Ok(Some(mut listener)) => loop {
                    match listener.next().await {
                        Ok(_) => announced.notify_one(),
                        Err(err) => {
                            tracing::warn!(error = %err, "change announcements interrupted");
                            break;
                        }
                    }
                },
                Err(err) => tracing::warn!(error = %err, "cannot listen for change announcements"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}
