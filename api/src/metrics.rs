//! Prometheus metrics: one process-wide recorder, `GET /metrics`, the BBB API
//! and admin API request metrics, and gauges refreshed from the routing view.
//!
//! Every name starts with `switchboard_`. Label values are bounded: BBB calls
//! outside the known set count as `other`, admin routes are labelled with
//! their route template (never a raw path), servers with their id only (their
//! URLs may carry credentials).

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, handler};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use switchboard_domain::ids::ServerId;
use switchboard_domain::node_metrics::MetricsStatus;
use switchboard_domain::server::ServerState;
use switchboard_domain::server_metrics::MetricsState;
use tokio::task::JoinHandle;

/// Counter: BBB API requests by `call` and `outcome`.
pub const BBB_REQUESTS: &str = "switchboard_bbb_requests_total";
/// Histogram: BBB API request duration in seconds by `call`.
pub const BBB_REQUEST_DURATION: &str = "switchboard_bbb_request_duration_seconds";
/// Counter: admin API requests by `method`, `route` and `status`.
pub const ADMIN_REQUESTS: &str = "switchboard_admin_requests_total";
/// Histogram: admin API request duration in seconds by `method` and `route`.
pub const ADMIN_REQUEST_DURATION: &str = "switchboard_admin_request_duration_seconds";
/// Gauge: servers by `state` and `online`.
pub const SERVERS: &str = "switchboard_servers";
/// Gauge: meetings a server reported at its last health poll, by `server`.
pub const SERVER_MEETINGS: &str = "switchboard_server_meetings";
/// Gauge: attendees a server reported at its last health poll, by `server`.
pub const SERVER_ATTENDEES: &str = "switchboard_server_attendees";
/// Gauge: a server's load as placement sees it, by `server`.
pub const SERVER_LOAD: &str = "switchboard_server_load";
/// Gauge: a server's windowed CPU utilisation in percent, by `server` (NaN
/// when not known).
pub const SERVER_CPU: &str = "switchboard_server_cpu_percent";
/// Gauge: a server's windowed used memory in percent, by `server` (NaN when
/// not known).
pub const SERVER_MEMORY: &str = "switchboard_server_memory_percent";
/// Gauge: 1 for the state of a server's metrics reads, 0 for the others, by
/// `server` and `state` (`ok`, `stale`, `unreadable`, `not_configured`).
pub const SERVER_METRICS_STATE: &str = "switchboard_server_metrics_state";
/// Gauge: 1 while a server is over its CPU or memory limit (takes no new
/// meetings), by `server`.
pub const SERVER_OVER_LIMIT: &str = "switchboard_server_over_limit";
/// Gauge: the event-log position the routing view reflects.
pub const EVENT_LOG_POSITION: &str = "switchboard_event_log_position";

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the gauges are refreshed from the routing view.
pub const GAUGE_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The BBB calls with their own `call` label; anything else is `other`.
const KNOWN_CALLS: &[&str] = &[
    "create",
    "join",
    "end",
    "isMeetingRunning",
    "getMeetingInfo",
    "sendChatMessage",
    "insertDocument",
    "getMeetings",
    "getRecordings",
    "publishRecordings",
    "deleteRecordings",
    "updateRecordings",
    "getRecordingTextTracks",
    "putRecordingTextTrack",
];

/// The Content-Type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder on first use and returns its handle;
/// later calls (many app instances in one test process) reuse it.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".to_owned()),
                LATENCY_BUCKETS,
            )
            .expect("latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if let Err(err) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %err, "another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        handle
    })
}

/// Describes every Switchboard metric to the installed recorder.
fn describe() {
    describe_counter!(
        switchboard_store::METRIC_STATEMENTS,
        "SQL statements run against the database (BEGIN and COMMIT not counted)"
    );
    describe_counter!(
        switchboard_app::recordings::expiry::METRIC_EXPIRED,
        "Recordings expired by a retention rule, by tenant."
    );
    describe_counter!(
        switchboard_app::recordings::expiry::METRIC_EXPIRED_BYTES,
        "Bytes of the formats of recordings expired by a retention rule, by tenant."
    );
    describe_counter!(
        TENANT_LIMIT_HITS,
        "Creates and joins refused by a tenant limit, by tenant and limit (meetings, attendees)."
    );
    describe_gauge!(TENANT_MEETINGS, "Running meetings per tenant.");
    describe_gauge!(
        CALLBACKS,
        "Callback deliveries in the outbox by kind and state (pending, delivered, failed, dropped)."
    );
    describe_counter!(
        CALLBACK_ATTEMPTS,
        "Callback delivery attempts by kind and outcome (delivered, retry, failed)."
    );
    describe_gauge!(
        TENANT_ATTENDEES,
        "Attendees per tenant: the last polls (plus joins sent since, for tenants with an attendee limit)."
    );
    describe_counter!(
        BBB_REQUESTS,
        "BBB API requests by call (index for the version answer; unknown calls: other) and \
         outcome: success (answered; \
         a server's answer relayed verbatim counts as success whatever it says), redirect \
         (join's 302 to a server), or the messageKey of a FAILED answer Switchboard gave itself."
    );
    describe_histogram!(
        BBB_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "BBB API request duration by call."
    );
    describe_counter!(
        ADMIN_REQUESTS,
        "Admin API requests by method, route template and HTTP status."
    );
    describe_histogram!(
        ADMIN_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Admin API request duration by method and route template."
    );
    describe_gauge!(
        SERVERS,
        "Servers in the pool by state (enabled, cordoned, disabled) and online (true, false)."
    );
    describe_gauge!(
        SERVER_MEETINGS,
        "Meetings a server reported at its last successful health poll, by server id."
    );
    describe_gauge!(
        SERVER_ATTENDEES,
        "Attendees a server reported at its last successful health poll, by server id."
    );
    describe_gauge!(
        SERVER_LOAD,
        "A server's load as placement weighs it (meetings, attendees, multiplier), by server id."
    );
    describe_gauge!(
        SERVER_CPU,
        "A server's CPU utilisation averaged over the metrics window, from its metrics URL, by server id (NaN: not known)."
    );
    describe_gauge!(
        SERVER_MEMORY,
        "A server's used memory averaged over the metrics window, from its metrics URL, by server id (NaN: not known)."
    );
    describe_gauge!(
        SERVER_METRICS_STATE,
        "1 for the state of a server's metrics reads (ok, stale, unreadable, not_configured), 0 for the others, by server id."
    );
    describe_gauge!(
        SERVER_OVER_LIMIT,
        "1 while a server's CPU or memory is over its configured limit (it takes no new meetings), by server id."
    );
    describe_gauge!(
        EVENT_LOG_POSITION,
        "The event-log position the routing view reflects; its rate is the event rate."
    );
    switchboard_app::health::describe_metrics();
}

/// `GET /metrics`: the Prometheus text format.
#[handler]
pub fn metrics_endpoint() -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .body(install().render())
}

/// The `call` label of a BBB call name: itself when known, else `other`.
pub fn bbb_call_label(call: &str) -> &'static str {
    KNOWN_CALLS
        .iter()
        .find(|known| **known == call)
        .copied()
        .unwrap_or("other")
}

/// Registered handles of the BBB request metrics, by call and outcome, so
/// the hot path neither builds label sets nor asks the registry again.
type BbbHandles = HashMap<(&'static str, &'static str), (metrics::Counter, metrics::Histogram)>;

static BBB_HANDLES: OnceLock<RwLock<BbbHandles>> = OnceLock::new();

/// Counter: creates and joins refused by a tenant limit, by `tenant` and
/// `limit` (`meetings`, `attendees`).
pub const TENANT_LIMIT_HITS: &str = "switchboard_tenant_limit_hits_total";
/// Gauge: running meetings per tenant.
pub const TENANT_MEETINGS: &str = "switchboard_tenant_meetings";
/// Gauge: callback deliveries by kind and state.
pub const CALLBACKS: &str = "switchboard_callbacks";
/// Counter: callback delivery attempts by kind and outcome (counted by the
/// application's delivery use case).
pub const CALLBACK_ATTEMPTS: &str = "switchboard_callback_attempts_total";
/// Gauge: attendees per tenant, as the last polls saw them.
pub const TENANT_ATTENDEES: &str = "switchboard_tenant_attendees";

/// Counts a create or join refused by a tenant limit.
pub fn record_limit_hit(tenant: &switchboard_domain::ids::TenantId, limit: &'static str) {
    metrics::counter!(TENANT_LIMIT_HITS, "tenant" => tenant.to_string(), "limit" => limit)
        .increment(1);
}

/// Counts one BBB API request and records its duration.
pub fn record_bbb_request(call: &'static str, outcome: &'static str, elapsed: Duration) {
    let handles = BBB_HANDLES.get_or_init(Default::default);
    let cached = handles
        .read()
        .ok()
        .and_then(|map| map.get(&(call, outcome)).cloned());
    let (requests, duration) = match cached {
        Some(pair) => pair,
        None => {
            let pair = (
                counter!(BBB_REQUESTS, "call" => call, "outcome" => outcome),
                histogram!(BBB_REQUEST_DURATION, "call" => call),
            );
            if let Ok(mut map) = handles.write() {
                map.insert((call, outcome), pair.clone());
            }
            pair
        }
    };
    requests.increment(1);
    duration.record(elapsed.as_secs_f64());
}

/// Middleware counting admin API requests and timing them:
/// `switchboard_admin_requests_total{method,route,status}` and
/// `switchboard_admin_request_duration_seconds{method,route}`.
///
/// The route label is the matched route template (e.g. `/servers/:id`), as
/// poem's `Route` reports it, or the fixed name given to [`AdminMetrics::fixed`];
/// requests no route matched count as `unmatched`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AdminMetrics {
    route: Option<&'static str>,
}

impl AdminMetrics {
    /// Labels every request with `route` instead of the matched template.
    pub fn fixed(route: &'static str) -> Self {
        Self { route: Some(route) }
    }
}

impl<E: Endpoint> Middleware<E> for AdminMetrics {
    type Output = AdminMetricsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AdminMetricsEndpoint {
            inner,
            route: self.route,
        }
    }
}

/// An endpoint wrapped by [`AdminMetrics`].
#[derive(Debug)]
pub struct AdminMetricsEndpoint<E> {
    inner: E,
    route: Option<&'static str>,
}

impl<E: Endpoint> Endpoint for AdminMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let method = method_label(req.method());
        let outer_pattern = req.data::<PathPattern>().map(|p| p.0.clone());
        let started = Instant::now();
        let result = self.inner.call(req).await.map(IntoResponse::into_response);
        let elapsed = started.elapsed();
        let (status, pattern) = match &result {
            Ok(response) => (
                response.status(),
                response.data::<PathPattern>().map(|p| p.0.clone()),
            ),
            Err(err) => (err.status(), err.data::<PathPattern>().map(|p| p.0.clone())),
        };
        let route: metrics::SharedString = match (self.route, pattern.or(outer_pattern)) {
            (Some(fixed), _) => fixed.into(),
            (None, Some(pattern)) => pattern.into(),
            (None, None) => "unmatched".into(),
        };
        record_admin_request(method, route, status, elapsed);
        result
    }
}

fn record_admin_request(
    method: &'static str,
    route: metrics::SharedString,
    status: StatusCode,
    elapsed: Duration,
) {
    counter!(
        ADMIN_REQUESTS,
        "method" => method,
        "route" => route.clone(),
        "status" => status.as_str().to_owned()
    )
    .increment(1);
    histogram!(ADMIN_REQUEST_DURATION, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// What the gauges are read from.
#[derive(Debug, Clone)]
pub struct GaugeSources {
    /// The routing view.
    pub routing: Arc<switchboard_app::routing::RoutingView>,
    /// What polls saw.
    pub observed: switchboard_app::routing::ObservedLoads,
    /// The database (tenants' runs).
    pub db: Arc<dyn switchboard_app::ports::Database>,
}

/// Sets the server and event-log gauges from the routing view (in memory, no
/// database round trip).
pub fn refresh_gauges(state: &GaugeSources) {
    refresh_gauges_from(state);
}

/// Sets the gauges and returns the servers it set them for.
fn refresh_gauges_from(state: &GaugeSources) -> HashSet<ServerId> {
    const STATES: [ServerState; 3] = [
        ServerState::Enabled,
        ServerState::Cordoned,
        ServerState::Disabled,
    ];
    let servers = state.routing.servers();
    let mut counts = [[0u32; 2]; STATES.len()];
    for server in servers.values() {
        let index = STATES
            .iter()
            .position(|s| *s == server.state)
            .unwrap_or_default();
        counts[index][usize::from(server.online)] += 1;
        let id = server.id.to_string();
        gauge!(SERVER_LOAD, "server" => id.clone()).set(state.routing.load_of(server));
        let metrics = server
            .settings
            .metrics_url
            .as_ref()
            .and_then(|_| state.routing.metrics_of(server.id))
            .unwrap_or_default();
        set_metrics_gauges(&id, &metrics, state.routing.over_limit(server.id));
        if let Some(observed) = state.observed.get(server.id) {
            gauge!(SERVER_MEETINGS, "server" => id.clone()).set(observed.meetings as f64);
            gauge!(SERVER_ATTENDEES, "server" => id).set(observed.attendees as f64);
        }
    }
    for (index, server_state) in STATES.iter().enumerate() {
        for (online, label) in [(0, "false"), (1, "true")] {
            gauge!(SERVERS, "state" => server_state.as_str(), "online" => label)
                .set(f64::from(counts[index][online]));
        }
    }
    gauge!(EVENT_LOG_POSITION).set(state.routing.position() as f64);
    servers.keys().copied().collect()
}

/// Sets a server's CPU, memory, metrics state and over-limit gauges.
fn set_metrics_gauges(id: &str, metrics: &MetricsStatus, over_limit: bool) {
    let id = id.to_owned();
    gauge!(SERVER_CPU, "server" => id.clone()).set(metrics.usage.cpu_percent.unwrap_or(f64::NAN));
    gauge!(SERVER_MEMORY, "server" => id.clone())
        .set(metrics.usage.memory_percent.unwrap_or(f64::NAN));
    for candidate in MetricsState::ALL {
        gauge!(SERVER_METRICS_STATE, "server" => id.clone(), "state" => candidate.as_str())
            .set(f64::from(u8::from(candidate == metrics.state)));
    }
    gauge!(SERVER_OVER_LIMIT, "server" => id).set(f64::from(u8::from(over_limit)));
}

/// Zeroes the per-server gauges of servers no longer in the pool (the
/// recorder cannot drop a series).
fn zero_server_gauges(id: ServerId) {
    let id = id.to_string();
    set_metrics_gauges(&id, &MetricsStatus::default(), false);
    gauge!(SERVER_METRICS_STATE, "server" => id.clone(), "state" => MetricsState::NotConfigured.as_str()).set(0.0);
    gauge!(SERVER_LOAD, "server" => id.clone()).set(0.0);
    gauge!(SERVER_MEETINGS, "server" => id.clone()).set(0.0);
    gauge!(SERVER_ATTENDEES, "server" => id).set(0.0);
}

/// Sets the per-tenant gauges: running meetings and attendees.
async fn refresh_tenant_gauges(state: &GaugeSources) {
    for name in state.routing.tenants().keys() {
        let tenant = switchboard_domain::ids::TenantId(name.clone());
        let Ok(runs) = state.db.running_runs_of(&tenant).await else {
            continue;
        };
        let meetings = runs.len() as f64;
        let runs: HashSet<String> = runs.into_iter().collect();
        let attendees = state.routing.attendees_of_tenant(&tenant, &runs) as f64;
        metrics::gauge!(TENANT_MEETINGS, "tenant" => name.clone()).set(meetings);
        metrics::gauge!(TENANT_ATTENDEES, "tenant" => name.clone()).set(attendees);
    }
}

/// Sets the outbox gauges: every kind and state, 0 where there is none.
async fn refresh_callback_gauges(state: &GaugeSources) {
    use switchboard_app::records::{CallbackKind, CallbackState};
    let Ok(counts) = state.db.callback_counts().await else {
        return;
    };
    for kind in CallbackKind::ALL {
        for callback_state in CallbackState::ALL {
            let count = counts
                .iter()
                .find(|(k, s, _)| *k == kind && *s == callback_state)
                .map_or(0, |(_, _, count)| *count);
            metrics::gauge!(CALLBACKS, "kind" => kind.as_str(), "state" => callback_state.as_str())
                .set(count as f64);
        }
    }
}

/// Refreshes the gauges every [`GAUGE_REFRESH_INTERVAL`] and runs the
/// recorder's upkeep (draining histogram samples even when nobody scrapes).
pub fn spawn_gauge_refresh(state: GaugeSources) -> JoinHandle<()> {
    let handle = install();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(GAUGE_REFRESH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut known = HashSet::new();
        loop {
            ticker.tick().await;
            let current = refresh_gauges_from(&state);
            for gone in known.difference(&current) {
                zero_server_gauges(*gone);
            }
            known = current;
            refresh_tenant_gauges(&state).await;
            refresh_callback_gauges(&state).await;
            handle.run_upkeep();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::Uri;
    use poem::{EndpointExt, Route, get};

    #[test]
    fn installing_twice_reuses_the_handle() {
        let first: *const PrometheusHandle = install();
        let second: *const PrometheusHandle = install();
        assert_eq!(first, second);
    }

    #[test]
    fn unknown_calls_share_one_label() {
        assert_eq!(bbb_call_label("create"), "create");
        assert_eq!(bbb_call_label("getMeetingInfo"), "getMeetingInfo");
        assert_eq!(bbb_call_label("getRecordings"), "getRecordings");
        assert_eq!(bbb_call_label("getRecordingsX"), "other");
        assert_eq!(bbb_call_label("create2"), "other");
        assert_eq!(bbb_call_label(""), "other");
    }

    #[test]
    fn rendering_has_described_metrics_and_histogram_buckets() {
        let handle = install();
        record_bbb_request("create", "success", Duration::from_millis(3));
        record_bbb_request("other", "unsupportedRequest", Duration::from_micros(100));
        record_admin_request(
            "GET",
            "/servers".into(),
            StatusCode::OK,
            Duration::from_millis(1),
        );
        gauge!(EVENT_LOG_POSITION).set(7.0);
        metrics::counter!(
            switchboard_app::health::METRIC_JOBS,
            "task" => "health_poll",
            "outcome" => "success"
        )
        .increment(1);
        let text = handle.render();
        for name in [
            BBB_REQUESTS,
            BBB_REQUEST_DURATION,
            ADMIN_REQUESTS,
            ADMIN_REQUEST_DURATION,
            EVENT_LOG_POSITION,
            switchboard_app::health::METRIC_JOBS,
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        }
        assert!(text.contains("# TYPE switchboard_bbb_request_duration_seconds histogram"));
        assert!(
            text.contains(
                r#"switchboard_bbb_request_duration_seconds_bucket{call="create",le="0.005"}"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"switchboard_bbb_requests_total{call="create",outcome="success"}"#)
        );
        assert!(text.contains(
            r#"switchboard_bbb_requests_total{call="other",outcome="unsupportedRequest"}"#
        ));
        assert!(text.contains(
            r#"switchboard_admin_requests_total{method="GET",route="/servers",status="200"}"#
        ));
    }

    #[handler]
    fn server_by_id() -> &'static str {
        "ok"
    }

    #[tokio::test]
    async fn admin_metrics_label_route_templates_not_paths() {
        let handle = install();
        let endpoint = Route::new()
            .at("/admin-test/servers/:id", get(server_by_id))
            .with(AdminMetrics::default());
        let request = |uri: &'static str| Request::builder().uri(Uri::from_static(uri)).finish();
        let ok = endpoint
            .call(request("/admin-test/servers/0190-abc"))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(endpoint.call(request("/admin-test/nothing")).await.is_err());
        let fixed = get(server_by_id).with(AdminMetrics::fixed("admin-fixed-test"));
        fixed.call(request("/whatever/123")).await.unwrap();

        let text = handle.render();
        assert!(
            text.contains(
                r#"switchboard_admin_requests_total{method="GET",route="/admin-test/servers/:id",status="200"}"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
        assert!(
            text.contains(r#"route="admin-fixed-test",status="200""#),
            "{text}"
        );
        assert!(!text.contains("0190-abc"), "{text}");
        assert!(text.contains(
            r#"switchboard_admin_request_duration_seconds_bucket{method="GET",route="/admin-test/servers/:id",le="10"}"#
        ));
    }
}
