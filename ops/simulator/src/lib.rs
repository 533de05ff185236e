//! A BigBlueButton server simulator over real HTTP.
//!
//! [`Simulator::start`] binds `127.0.0.1` on a free port and serves the BBB API
//! (`/bigbluebutton/api/...`) from memory: create, join, end, isMeetingRunning,
//! getMeetingInfo, getMeetings, insertDocument, sendChatMessage and an empty
//! getRecordings. Checksums are verified like BBB does (raw query, sha1 to
//! sha512). Failures ([`FailureMode`]) and latency can be switched on at any
//! time, and the handle exposes what the server saw (meetings, attendees,
//! request counts, the last join's parameters). `/metrics` answers like
//! node_exporter with the CPU utilisation and used memory set on the handle.
//!
//! Used by integration tests, by `switchboard serve --demo N` and by the load
//! tool.

mod api;
mod callbacks;
mod node;
mod routes;
mod state;
mod webhooks;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use poem::Server;
use poem::listener::TcpAcceptor;
use switchboard_domain::bbb::params::Params;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::state::Shared;

/// How long [`Simulator::shutdown`] lets requests in flight finish before
/// their connections are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

/// How a simulated server is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatorConfig {
    /// The shared secret checksums must be made with.
    pub secret: String,
    /// Added to every API answer (see [`Simulator::set_latency`]).
    pub latency: Duration,
    /// Reported as `<bbbVersion>` by the index call.
    pub bbb_version: String,
}

impl Default for SimulatorConfig {
    /// Secret `simulator-secret`, no latency, BBB version `3.0.0`.
    fn default() -> Self {
        SimulatorConfig {
            secret: "simulator-secret".to_owned(),
            latency: Duration::ZERO,
            bbb_version: "3.0.0".to_owned(),
        }
    }
}

/// How the simulated server misbehaves. Applies to every
/// `/bigbluebutton/api/{call}` request (not to the index); requests are counted
/// and delayed by the latency first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// Behave like BBB.
    #[default]
    None,
    /// Answer a FAILED document with messageKey `simulatedError`.
    ErrorResponse,
    /// Never answer (the request hangs for an hour).
    Timeout,
    /// Answer HTTP 200 with the non-XML body `<<garbage`.
    Garbage,
    /// Answer HTTP 500.
    Http500,
    /// Only `create` answers FAILED (messageKey `simulatedError`); every other
    /// call behaves normally.
    RefuseCreate,
}

impl FailureMode {
    /// Compact form for an atomic.
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            FailureMode::None => 0,
            FailureMode::ErrorResponse => 1,
            FailureMode::Timeout => 2,
            FailureMode::Garbage => 3,
            FailureMode::Http500 => 4,
            FailureMode::RefuseCreate => 5,
        }
    }

    /// Inverse of [`FailureMode::to_u8`].
    pub(crate) fn from_u8(value: u8) -> Self {
        match value {
            1 => FailureMode::ErrorResponse,
            2 => FailureMode::Timeout,
            3 => FailureMode::Garbage,
            4 => FailureMode::Http500,
            5 => FailureMode::RefuseCreate,
            _ => FailureMode::None,
        }
    }
}

/// Lifecycle of the server task.
struct Control {
    addr: SocketAddr,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A running simulated BBB server. Cloning is cheap and every clone controls
/// the same server.
///
/// The server runs until [`Simulator::shutdown`] is called or the Tokio runtime
/// it was started on stops; dropping the handles does not stop it.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
    control: Arc<Control>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Binds `127.0.0.1` on a free port and serves the BBB API there from a
    /// spawned task (needs a Tokio runtime).
    pub async fn start(config: SimulatorConfig) -> anyhow::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let shared = Arc::new(Shared::new(
            config.secret,
            config.bbb_version,
            format!("http://{addr}"),
            config.latency,
        ));
        let endpoint_state = Arc::clone(&shared);
        let endpoint = poem::endpoint::make(move |req| {
            let shared = Arc::clone(&endpoint_state);
            async move { routes::handle(shared, req).await }
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let signal = async move {
                // A dropped sender (every handle gone) keeps the server running.
                if stop_rx.await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let result = Server::new_with_acceptor(acceptor)
                .name("bbb-simulator")
                .run_with_graceful_shutdown(endpoint, signal, Some(SHUTDOWN_GRACE))
                .await;
            if let Err(err) = result {
                tracing::warn!(%addr, error = %err, "BBB simulator stopped with an error");
            }
        });
        tracing::debug!(%addr, "BBB simulator started");
        Ok(Simulator {
            shared,
            control: Arc::new(Control {
                addr,
                stop: Mutex::new(Some(stop_tx)),
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// The BBB server URL, as a load balancer stores it:
    /// `http://127.0.0.1:PORT/bigbluebutton/` (with the trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}/bigbluebutton/", self.control.addr)
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.control.addr
    }

    /// The shared secret checksums must be made with.
    pub fn secret(&self) -> &str {
        self.shared.secret()
    }

    /// Switches how the server misbehaves, effective for the next request.
    pub fn set_failure(&self, mode: FailureMode) {
        self.shared.set_failure(mode);
    }

    /// The current failure mode.
    pub fn failure(&self) -> FailureMode {
        self.shared.failure()
    }

    /// Sets the latency added to every API answer.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.set_latency(latency);
    }

    /// Number of meetings on the server (created and not ended).
    pub fn meeting_count(&self) -> usize {
        self.shared.meetings().len()
    }

    /// Number of users who joined the meeting, `None` for an unknown meeting.
    pub fn attendee_count(&self, meeting_id: &str) -> Option<usize> {
        self.shared
            .meetings()
            .get(meeting_id)
            .map(|meeting| meeting.attendees.len())
    }

    /// The external IDs of every meeting on the server, in no particular order.
    pub fn meeting_ids(&self) -> Vec<String> {
        self.shared.meetings().ids()
    }

    /// How many requests for `/bigbluebutton/api/{call}` arrived, whatever
    /// their outcome (failure modes, checksum errors and unknown calls
    /// included). The index call is not counted.
    pub fn request_count(&self, call: &str) -> usize {
        self.shared.request_count(call)
    }

    /// The decoded parameters of the last successful join to the meeting, in
    /// the order they were sent, without the checksum. `None` for an unknown
    /// meeting or one nobody joined.
    pub fn last_join_params(&self, meeting_id: &str) -> Option<Vec<(String, String)>> {
        self.shared
            .meetings()
            .get(meeting_id)
            .and_then(|meeting| meeting.last_join_params.clone())
    }

    /// The decoded parameters of the create that made the meeting (without
    /// the checksum). `None` for an unknown meeting.
    pub fn create_params(&self, meeting_id: &str) -> Option<Vec<(String, String)>> {
        self.shared
            .meetings()
            .get(meeting_id)
            .map(|meeting| meeting.create_params.clone())
    }

    /// Creates a meeting on the server directly, bypassing any load balancer
    /// (passwords are generated). Does nothing if the meeting exists.
    pub fn create_meeting_directly(&self, meeting_id: &str, name: &str) {
        self.shared
            .meetings()
            .create(meeting_id, name, &Params::default());
    }

    /// Starts a breakout room of `parent_internal_id` on the server directly,
    /// as BBB does when a moderator opens breakout rooms.
    pub fn create_breakout_directly(&self, meeting_id: &str, parent_internal_id: &str) {
        let mut params = Params::default();
        params.set("isBreakout", "true");
        params.set("parentMeetingID", parent_internal_id);
        self.shared
            .meetings()
            .create(meeting_id, &format!("{meeting_id} (breakout)"), &params);
    }

    /// Ends a meeting on the server directly, as if it ended by itself
    /// (its end-of-meeting callbacks fire, as BBB's do). Returns whether it
    /// existed.
    pub fn end_meeting_directly(&self, meeting_id: &str) -> bool {
        let ended = self.shared.meetings().remove(meeting_id);
        match ended {
            Some(meeting) => {
                webhooks::fire_ended(&self.shared, &meeting);
                callbacks::fire_end_callbacks(&self.shared, meeting);
                true
            }
            None => false,
        }
    }

    /// Whether ended meetings fire BBB's end-of-meeting callbacks
    /// (`meetingEndedURL`, `meta_endCallbackUrl`, the analytics callback);
    /// on by default.
    pub fn set_callbacks_enabled(&self, enabled: bool) {
        self.shared
            .fire_callbacks
            .store(enabled, std::sync::atomic::Ordering::Relaxed);
    }

    /// The callback URLs of the hooks registered on the server.
    pub fn hook_urls(&self) -> Vec<String> {
        self.shared
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|hook| hook.callback_url.clone())
            .collect()
    }

    /// The callbacks fired so far: each URL with the HTTP status it got (0
    /// when the request failed).
    pub fn fired_callbacks(&self) -> Vec<(String, u16)> {
        self.shared
            .fired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The node_exporter-like metrics URL: `http://127.0.0.1:PORT/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.control.addr)
    }

    /// Sets the CPU utilisation (percent, default 10) `/metrics` reports
    /// from now on: its counters advance consistently with it.
    pub fn set_cpu_percent(&self, percent: f64) {
        self.shared.node().set_cpu_percent(percent);
    }

    /// Sets the used memory (percent, default 30) `/metrics` reports.
    pub fn set_memory_percent(&self, percent: f64) {
        self.shared.node().set_memory_percent(percent);
    }

    /// Makes `/metrics` answer HTTP 500 (`true`) or metrics again (`false`).
    pub fn set_metrics_failing(&self, failing: bool) {
        self.shared.node().failing = failing;
    }

    /// Requires basic auth with these credentials on `/metrics` (`None`: open).
    pub fn set_metrics_credentials(&self, credentials: Option<(&str, &str)>) {
        self.shared.node().authorization =
            credentials.map(|(user, password)| node::basic_authorization(user, password));
    }

    /// Requests for `/metrics` so far, whatever their outcome.
    pub fn metrics_request_count(&self) -> usize {
        self.shared.node().requests
    }

    /// Stops listening: new connections are refused once this returns. Requests
    /// in flight get a short grace period, then their connections are closed.
    /// The state (meetings, counters) stays readable. Calling it again does
    /// nothing.
    pub async fn shutdown(&self) {
        let stop = self
            .control
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let task = self
            .control
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE * 8, task).await;
        }
    }
}
