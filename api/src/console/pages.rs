//! The console's pages and actions: each handler checks the session,
//! calls the admin (or recording) use cases, and renders a template with
//! the view models of [`super::views`].

use super::views::{self, Attendee, ChartData, PoolTotals, ServerCard, TenantGauge};
use super::{ConsoleState, Signed, public_root, session, to_sign_in};
use askama::Template;
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_app::admin::Failure;
use switchboard_app::admin::views::{EventView, MeetingState, MeetingView, PanicOptions};
use switchboard_app::recordings::calls::RecordingUpdate;
use switchboard_app::records::{EventFilter, RecordingQuery};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::TenantId;
use switchboard_domain::server::ServerCommand;

type State<'a> = Data<&'a Arc<ConsoleState>>;

/// Either answer: pages return their error pages through `Err`.
type Answer = Result<Response, Response>;

fn answer(result: Answer) -> Response {
    result.unwrap_or_else(|response| response)
}

/// One link of the navigation.
pub struct NavItem {
    path: &'static str,
    label: &'static str,
    current: bool,
}

const NAV: &[(&str, &str, &str)] = &[
    ("overview", "/", "Overview"),
    ("servers", "/servers", "Servers"),
    ("meetings", "/meetings", "Meetings"),
    ("tenants", "/tenants", "Tenants"),
    ("recordings", "/recordings", "Recordings"),
    ("events", "/events", "Events"),
    ("charts", "/charts", "Charts"),
];

/// What every page around its content shows.
pub struct Chrome {
    root: String,
    csrf: String,
    who: String,
    scope: &'static str,
    admin: bool,
    nav: Vec<NavItem>,
    title: String,
    flash: Option<String>,
    here: String,
    version: &'static str,
    refresh_secs: u32,
}

/// A signed-in page in the making.
struct Page {
    chrome: Chrome,
}

/// What an action did, as its flash message says it (only these words
/// are ever shown from a query string).
fn done_message(key: &str) -> Option<&'static str> {
    Some(match key {
        "enabled" => "Server enabled: it takes new meetings.",
        "cordoned" => {
            "Server cordoned: its meetings go on, new ones go elsewhere; once it runs none it is disabled."
        }
        "disabled" => "Server disabled: it takes no meetings and is not polled.",
        "panicked" => "Server panicked: disabled and its meetings moved off it.",
        "ended" => "Meeting ended.",
        "published" => "Recording published.",
        "unpublished" => "Recording unpublished.",
        "protected" => "Recording protected.",
        "unprotected" => "Recording no longer protected.",
        "signed-in" => "Signed in.",
        _ => return None,
    })
}

impl Page {
    async fn open(
        req: &Request,
        state: &ConsoleState,
        nav: &str,
        title: String,
    ) -> Result<Self, Response> {
        let root = public_root(req, &state.settings);
        let signed = state
            .signed(req)
            .await
            .map_err(|why| to_sign_in(req, &root, why))?;
        let query: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let flash = query
            .get("done")
            .and_then(|key| done_message(key))
            .map(str::to_owned);
        let here = {
            let path = req.uri().path();
            let path = if path == "/" {
                "/"
            } else {
                path.trim_end_matches('/')
            };
            let kept: Vec<(String, String)> =
                query.into_iter().filter(|(key, _)| key != "done").collect();
            let mut sorted = kept;
            sorted.sort();
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(sorted)
                .finish();
            if query.is_empty() {
                format!("{root}{path}")
            } else {
                format!("{root}{path}?{query}")
            }
        };
        let chrome = Chrome {
            csrf: signed.csrf.clone(),
            who: signed.principal.name.clone(),
            scope: signed.principal.scope.as_str(),
            admin: signed.may_act(),
            nav: NAV
                .iter()
                .map(|(key, path, label)| NavItem {
                    path,
                    label,
                    current: *key == nav,
                })
                .collect(),
            title,
            flash,
            here,
            version: env!("CARGO_PKG_VERSION"),
            refresh_secs: 5,
            root,
        };
        Ok(Self { chrome })
    }

    fn problem(self, failure: &Failure) -> Response {
        let status = status_of(failure);
        let mut response = html(ProblemPage {
            chrome: Chrome {
                title: "Not possible".to_owned(),
                ..self.chrome
            },
            message: failure.to_string(),
        });
        response.set_status(status);
        response
    }
}

fn status_of(failure: &Failure) -> StatusCode {
    match failure {
        Failure::NotFound(_) => StatusCode::NOT_FOUND,
        Failure::Invalid(_) => StatusCode::BAD_REQUEST,
        Failure::Conflict(_) => StatusCode::CONFLICT,
        Failure::Forbidden(_) => StatusCode::FORBIDDEN,
        Failure::Upstream(_) => StatusCode::BAD_GATEWAY,
        Failure::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A rendered page (a template error is a 500 with its message).
fn html(template: impl Template) -> Response {
    match template.render() {
        Ok(body) => Response::builder()
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(err) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .content_type("text/plain; charset=utf-8")
            .body(format!("the console could not render this page: {err}")),
    }
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage {
    chrome: Chrome,
    message: String,
}

// ---- sign-in -------------------------------------------------------------

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    root: String,
    version: &'static str,
    message: Option<&'static str>,
}

/// `GET /console/sign-in`.
#[handler]
pub async fn sign_in_page(req: &Request, Data(state): State<'_>) -> Response {
    let ended = req.uri().query().is_some_and(|q| q.contains("ended=1"));
    html(SignInPage {
        root: public_root(req, &state.settings),
        version: env!("CARGO_PKG_VERSION"),
        message: ended
            .then_some("Your session ended (it expired or its token was revoked). Sign in again."),
    })
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
}

/// Whether a browser says the request came from another site.
fn cross_site(req: &Request) -> bool {
    req.header("sec-fetch-site")
        .is_some_and(|site| site.eq_ignore_ascii_case("cross-site"))
}

/// `POST /console/sign-in`: a token with the read or admin scope opens a
/// session bound to it.
#[handler]
pub async fn sign_in(
    req: &Request,
    Data(state): State<'_>,
    Form(form): Form<SignInForm>,
) -> Response {
    let root = public_root(req, &state.settings);
    let again = |status: StatusCode, message: &'static str| {
        let mut response = html(SignInPage {
            root: root.clone(),
            version: env!("CARGO_PKG_VERSION"),
            message: Some(message),
        });
        response.set_status(status);
        response
    };
    if cross_site(req) {
        return again(
            StatusCode::FORBIDDEN,
            "Sign in from this page, not from another site.",
        );
    }
    let hash = switchboard_domain::token::hash_token(form.token.trim());
    match state.admin.principal_of_hash(&hash).await {
        Ok(Some(principal))
            if principal
                .scope
                .allows(switchboard_domain::token::TokenScope::Read) =>
        {
            let hours = state.settings.session_hours.clamp(1, 24 * 30) as i64;
            let session = session::Session {
                token_hash: hash,
                expires_at: state.clock.now_ms() / 1000 + hours * 3600,
            };
            tracing::info!(token = %principal.name, "console sign-in");
            Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, format!("{root}/"))
                .header(
                    header::SET_COOKIE,
                    session::set_cookie(&state.key.issue(&session), &root, hours * 3600),
                )
                .finish()
        }
        Ok(_) => again(
            StatusCode::UNAUTHORIZED,
            "That token is unknown, revoked, or a node token. Use an admin or read token.",
        ),
        Err(failure) => {
            tracing::warn!(error = %failure, "console sign-in could not check a token");
            again(
                StatusCode::SERVICE_UNAVAILABLE,
                "Tokens cannot be checked right now (the database failed). Try again.",
            )
        }
    }
}

/// `POST /console/sign-out`: removes the cookie.
#[handler]
pub async fn sign_out(req: &Request, Data(state): State<'_>) -> Response {
    let root = public_root(req, &state.settings);
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, format!("{root}/sign-in"))
        .header(header::SET_COOKIE, session::set_cookie("", &root, 0))
        .finish()
}

// ---- overview and servers --------------------------------------------------

/// Since when each server's health is what it is: the time of its last
/// online or offline event (or its addition).
async fn health_since(state: &ConsoleState, ids: &[String]) -> HashMap<String, i64> {
    let reads = ids.iter().map(|id| async move {
        let page = state
            .admin
            .events(EventFilter {
                stream: Some(format!("server:{id}")),
                limit: 50,
                newest_first: true,
                ..EventFilter::default()
            })
            .await
            .ok()?;
        page.events
            .iter()
            .find(|event| {
                matches!(
                    event.event_type.as_str(),
                    "ServerWentOnline" | "ServerWentOffline" | "ServerAdded"
                )
            })
            .map(|event| (id.clone(), event.recorded_at.timestamp_millis()))
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn cards(state: &ConsoleState) -> Result<Vec<ServerCard>, Failure> {
    let servers = state.admin.servers().await?;
    let samples = state
        .db
        .server_samples()
        .await
        .map_err(|err| Failure::Internal(err.to_string()))?;
    let ids: Vec<String> = servers.iter().map(|s| s.id.clone()).collect();
    let since = health_since(state, &ids).await;
    Ok(views::server_cards(
        &servers,
        &samples,
        &since,
        state.clock.now_ms(),
    ))
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    totals: PoolTotals,
    cards: Vec<ServerCard>,
    near: Vec<TenantGauge>,
    near_percent: u64,
    updated: String,
}

/// `GET /console/`: the pool at a glance.
#[handler]
pub async fn overview_page(req: &Request, Data(state): State<'_>) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "overview", "Overview".into()).await?;
            let cards = match cards(state).await {
                Ok(cards) => cards,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let tenants = match state.admin.tenants().await {
                Ok(tenants) => tenants,
                Err(failure) => return Err(page.problem(&failure)),
            };
            Ok(html(OverviewPage {
                totals: views::totals(&cards),
                cards,
                near: views::tenant_gauges(&tenants)
                    .into_iter()
                    .filter(|gauge| gauge.near)
                    .collect(),
                near_percent: views::NEAR_LIMIT_PERCENT,
                updated: views::moment(state.clock.now_ms()),
                chrome: page.chrome,
            }))
        }
        .await,
    )
}

#[derive(Template)]
#[template(path = "servers.html")]
struct ServersPage {
    chrome: Chrome,
    cards: Vec<ServerCard>,
}

/// `GET /console/servers`.
#[handler]
pub async fn servers_page(req: &Request, Data(state): State<'_>) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "servers", "Servers".into()).await?;
            match cards(state).await {
                Ok(cards) => Ok(html(ServersPage {
                    chrome: page.chrome,
                    cards,
                })),
                Err(failure) => Err(page.problem(&failure)),
            }
        }
        .await,
    )
}

/// A button that posts an action after a confirmation.
pub struct Action {
    href: String,
    label: &'static str,
    confirm: String,
    class: &'static str,
}

/// A meeting as a row.
pub struct MeetingRow {
    href: String,
    meeting_id: String,
    name: String,
    tenant: String,
    server_id: String,
    server: String,
    state: &'static str,
    created: String,
}

fn meeting_href(root: &str, meeting: &MeetingView) -> String {
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "{root}/meetings/{}/{}",
        encode(&meeting.tenant),
        encode(&meeting.meeting_id)
    )
}

fn meeting_rows(
    root: &str,
    meetings: &[MeetingView],
    hosts: &HashMap<String, String>,
) -> Vec<MeetingRow> {
    meetings
        .iter()
        .map(|meeting| MeetingRow {
            href: meeting_href(root, meeting),
            meeting_id: meeting.meeting_id.clone(),
            name: meeting.name.clone(),
            tenant: meeting.tenant.clone(),
            server_id: meeting.server_id.clone(),
            server: hosts
                .get(&meeting.server_id)
                .cloned()
                .unwrap_or_else(|| meeting.server_id.clone()),
            state: if meeting.running { "running" } else { "ended" },
            created: views::moment(meeting.create_time_ms),
        })
        .collect()
}

/// An event as a row.
pub struct EventRow {
    position: i64,
    when: String,
    stream: String,
    event_type: String,
    actor: String,
    payload: String,
}

fn event_rows(events: &[EventView]) -> Vec<EventRow> {
    events
        .iter()
        .map(|event| {
            let mut payload = event.payload.to_string();
            if payload.len() > 400 {
                let cut = (0..=400)
                    .rev()
                    .find(|i| payload.is_char_boundary(*i))
                    .unwrap_or(0);
                payload.truncate(cut);
                payload.push('…');
            }
            EventRow {
                position: event.position,
                when: views::moment(event.recorded_at.timestamp_millis()),
                stream: event.stream.clone(),
                event_type: event.event_type.clone(),
                actor: event.actor.clone(),
                payload,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "server.html")]
struct ServerPage {
    chrome: Chrome,
    cards: Vec<ServerCard>,
    url: String,
    tag: Option<String>,
    metrics_error: Option<String>,
    actions: Vec<Action>,
    meetings: Vec<MeetingRow>,
    events: Vec<EventRow>,
}

/// `GET /console/servers/:id`: one server with its meetings, recent
/// events and actions.
#[handler]
pub async fn server_page(
    req: &Request,
    Path(id): Path<String>,
    Data(state): State<'_>,
) -> Response {
    answer(async {
        let page = Page::open(req, state, "servers", "Server".into()).await?;
        let view = match state.admin.server(&id).await {
            Ok(view) => view,
            Err(failure) => return Err(page.problem(&failure)),
        };
        let mut all = match cards(state).await {
            Ok(cards) => cards,
            Err(failure) => return Err(page.problem(&failure)),
        };
        all.retain(|card| card.id == view.id);
        let meetings = state
            .admin
            .meetings(Some(&view.id), Some(MeetingState::Running), None)
            .await
            .unwrap_or_default();
        let events = state
            .admin
            .events(EventFilter {
                stream: Some(format!("server:{}", view.id)),
                limit: 25,
                newest_first: true,
                ..EventFilter::default()
            })
            .await
            .map(|page| page.events)
            .unwrap_or_default();
        let root = page.chrome.root.clone();
        let host = all.first().map(|card| card.host.clone()).unwrap_or_default();
        let hosts = HashMap::from([(view.id.clone(), host.clone())]);
        let href = |action: &str| format!("{root}/servers/{}/{action}", view.id);
        let actions = vec![
            Action {
                href: href("enable"),
                label: "Enable",
                confirm: format!("Enable {host}? It takes new meetings again."),
                class: "",
            },
            Action {
                href: href("cordon"),
                label: "Cordon",
                confirm: format!(
                    "Cordon {host}? Its running meetings go on and joins still reach them; new meetings go to other servers. Once it runs no meeting it is disabled."
                ),
                class: "",
            },
            Action {
                href: href("disable"),
                label: "Disable",
                confirm: format!(
                    "Disable {host}? It takes no meetings and is no longer polled; meetings recorded there stay recorded until they end."
                ),
                class: "",
            },
            Action {
                href: href("panic"),
                label: "Panic",
                confirm: format!(
                    "Panic {host}? It is disabled at once and every meeting recorded there is forgotten, so the next create of each starts it on another server. Use it when the server is lost. Its meetings are not ended on it."
                ),
                class: "danger",
            },
        ];
        Ok(html(ServerPage {
            chrome: Chrome {
                title: format!("Server {host}"),
                ..page.chrome
            },
            cards: all,
            url: view.url.clone(),
            tag: view.tag.clone(),
            metrics_error: view.metrics_error.clone(),
            actions,
            meetings: meeting_rows(&root, &meetings, &hosts),
            events: event_rows(&events),
        }))
    }
    .await)
}

/// The form every action posts: the CSRF token (also accepted as the
/// `X-CSRF-Token` header htmx sends).
#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

/// An action's answer: to `target` with `done` as its flash message (htmx
/// requests by `HX-Redirect`).
fn after_action(req: &Request, target: &str, done: &str) -> Response {
    let sep = if target.contains('?') { '&' } else { '?' };
    let location = format!("{target}{sep}done={done}");
    if req.header("hx-request").is_some() {
        Response::builder().header("HX-Redirect", location).finish()
    } else {
        Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, location)
            .finish()
    }
}

/// An action refused or failed: the message, in the page's flash area
/// for htmx requests, else as plain text.
fn action_failed(req: &Request, status: StatusCode, message: &str) -> Response {
    if req.header("hx-request").is_some() {
        let escaped = message
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        Response::builder()
            .status(status)
            .header("HX-Retarget", "#flash")
            .header("HX-Reswap", "innerHTML")
            .content_type("text/html; charset=utf-8")
            .body(format!(
                "<p class=\"flash error\" role=\"alert\">{escaped}</p>"
            ))
    } else {
        Response::builder()
            .status(status)
            .content_type("text/plain; charset=utf-8")
            .body(message.to_owned())
    }
}

/// Checks an action's session, CSRF token and scope.
async fn actor(
    req: &Request,
    state: &ConsoleState,
    form: &ActionForm,
) -> Result<(Signed, String), Response> {
    let root = public_root(req, &state.settings);
    let signed = state
        .signed(req)
        .await
        .map_err(|why| to_sign_in(req, &root, why))?;
    let given = req
        .header("x-csrf-token")
        .filter(|token| !token.is_empty())
        .unwrap_or(&form.csrf);
    if cross_site(req) || !state.key.csrf_matches(&signed.session, given) {
        return Err(action_failed(
            req,
            StatusCode::FORBIDDEN,
            "This action did not come from a console page of this session (CSRF check failed). Reload the page and try again.",
        ));
    }
    if !signed.may_act() {
        return Err(action_failed(
            req,
            StatusCode::FORBIDDEN,
            &format!(
                "Token `{}` has the {} scope: actions need an admin token. Sign in with one (`switchboard tokens create NAME --scope admin`).",
                signed.principal.name,
                signed.principal.scope.as_str()
            ),
        ));
    }
    Ok((signed, root))
}

/// `POST /console/servers/:id/:action`: enable, cordon, disable or panic.
#[handler]
pub async fn server_action(
    req: &Request,
    Path((id, action)): Path<(String, String)>,
    Data(state): State<'_>,
    form: Option<Form<ActionForm>>,
) -> Response {
    answer(
        async {
            let form = form.map(|Form(form)| form).unwrap_or_default();
            let (signed, root) = actor(req, state, &form).await?;
            let principal = &signed.principal;
            let result = match action.as_str() {
                "enable" => state
                    .admin
                    .set_state(&id, ServerCommand::Enable, principal)
                    .await
                    .map(|_| "enabled"),
                "cordon" => state
                    .admin
                    .set_state(&id, ServerCommand::Cordon, principal)
                    .await
                    .map(|_| "cordoned"),
                "disable" => state
                    .admin
                    .set_state(&id, ServerCommand::Disable, principal)
                    .await
                    .map(|_| "disabled"),
                "panic" => state
                    .admin
                    .panic(&id, PanicOptions { end_meetings: None }, principal)
                    .await
                    .map(|_| "panicked"),
                _ => Err(Failure::NotFound(format!(
                    "no server action `{action}`: use enable, cordon, disable or panic"
                ))),
            };
            match result {
                Ok(done) => Ok(after_action(req, &format!("{root}/servers/{id}"), done)),
                Err(failure) => Err(action_failed(
                    req,
                    status_of(&failure),
                    &failure.to_string(),
                )),
            }
        }
        .await,
    )
}

// ---- meetings ---------------------------------------------------------------

/// The meetings page's filters.
#[derive(Deserialize, Default)]
pub struct MeetingFilter {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    server: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    q: String,
}

/// At most this many meetings on one page.
const MEETINGS_SHOWN: usize = 500;

#[derive(Template)]
#[template(path = "meetings.html")]
struct MeetingsPage {
    chrome: Chrome,
    filter: MeetingFilter,
    tenants: Vec<String>,
    servers: Vec<(String, String)>,
    meetings: Vec<MeetingRow>,
    truncated: bool,
}

/// `GET /console/meetings`: filtered by tenant, server, state and text.
#[handler]
pub async fn meetings_page(
    req: &Request,
    Query(mut filter): Query<MeetingFilter>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "meetings", "Meetings".into()).await?;
            if filter.state.is_empty() {
                filter.state = "running".into();
            }
            let wanted = match filter.state.as_str() {
                "ended" => Some(MeetingState::Ended),
                "all" => None,
                _ => Some(MeetingState::Running),
            };
            let servers = state.admin.servers().await.unwrap_or_default();
            let hosts: HashMap<String, String> =
                views::server_cards(&servers, &[], &HashMap::new(), 0)
                    .into_iter()
                    .map(|card| (card.id, card.host))
                    .collect();
            let found = state
                .admin
                .meetings(
                    Some(filter.server.as_str()).filter(|s| !s.is_empty()),
                    wanted,
                    Some(filter.tenant.as_str()).filter(|t| !t.is_empty()),
                )
                .await;
            let mut found = match found {
                Ok(found) => found,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let text = filter.q.trim().to_lowercase();
            if !text.is_empty() {
                found.retain(|m| {
                    m.meeting_id.to_lowercase().contains(&text)
                        || m.name.to_lowercase().contains(&text)
                });
            }
            found.sort_by_key(|m| std::cmp::Reverse(m.create_time_ms));
            let truncated = found.len() > MEETINGS_SHOWN;
            found.truncate(MEETINGS_SHOWN);
            let mut tenants: Vec<String> = state
                .admin
                .tenants()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.name)
                .collect();
            tenants.insert(0, TenantId::default_tenant().to_string());
            tenants.dedup();
            let mut servers: Vec<(String, String)> = hosts.clone().into_iter().collect();
            servers.sort_by(|a, b| a.1.cmp(&b.1));
            let root = page.chrome.root.clone();
            Ok(html(MeetingsPage {
                meetings: meeting_rows(&root, &found, &hosts),
                chrome: page.chrome,
                filter,
                tenants,
                servers,
                truncated,
            }))
        }
        .await,
    )
}

#[derive(Template)]
#[template(path = "meeting.html")]
struct MeetingPage {
    chrome: Chrome,
    actions: Vec<Action>,
    meeting_id: String,
    name: String,
    tenant: String,
    server_id: String,
    server: String,
    state: &'static str,
    running: bool,
    created: String,
    ended: Option<String>,
    internal_id: String,
    attendees: Vec<Attendee>,
    events: Vec<EventRow>,
}

/// `GET /console/meetings/:tenant/:meeting_id`: one meeting with its
/// attendees (as its server last listed them) and its events.
#[handler]
pub async fn meeting_page(
    req: &Request,
    Path((tenant, meeting_id)): Path<(String, String)>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "meetings", "Meeting".into()).await?;
            let view = match state.admin.meeting(&tenant, &meeting_id).await {
                Ok(view) => view,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let attendees = match view.server_id.parse() {
                Ok(server) if view.running => state
                    .db
                    .server_samples_of(&[server])
                    .await
                    .ok()
                    .and_then(|samples| samples.into_iter().next())
                    .map(|sample| views::attendees_in(&sample.meetings_xml, &view.internal_id))
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let events = state
                .admin
                .events(EventFilter {
                    stream: Some(format!("meeting:{}:{}", view.tenant, view.meeting_id)),
                    limit: 50,
                    newest_first: true,
                    ..EventFilter::default()
                })
                .await
                .map(|page| page.events)
                .unwrap_or_default();
            let server = state
                .admin
                .server(&view.server_id)
                .await
                .map(|s| {
                    views::server_cards(&[s], &[], &HashMap::new(), 0)
                        .remove(0)
                        .host
                })
                .unwrap_or_else(|_| view.server_id.clone());
            let root = page.chrome.root.clone();
            let actions = vec![Action {
                href: format!("{}/end", meeting_href(&root, &view)),
                label: "End",
                confirm: format!(
                    "End meeting {}? Everyone in it is disconnected on its server.",
                    view.meeting_id
                ),
                class: "danger",
            }];
            Ok(html(MeetingPage {
                chrome: Chrome {
                    title: format!("Meeting {}", view.meeting_id),
                    ..page.chrome
                },
                actions,
                meeting_id: view.meeting_id.clone(),
                name: view.name.clone(),
                tenant: view.tenant.clone(),
                server_id: view.server_id.clone(),
                server,
                state: if view.running { "running" } else { "ended" },
                running: view.running,
                created: views::moment(view.create_time_ms),
                ended: view.ended_at_ms.map(views::moment),
                internal_id: view.internal_id.clone(),
                attendees,
                events: event_rows(&events),
            }))
        }
        .await,
    )
}

/// `POST /console/meetings/:tenant/:meeting_id/end`.
#[handler]
pub async fn end_meeting(
    req: &Request,
    Path((tenant, meeting_id)): Path<(String, String)>,
    Data(state): State<'_>,
    form: Option<Form<ActionForm>>,
) -> Response {
    answer(
        async {
            let form = form.map(|Form(form)| form).unwrap_or_default();
            let (signed, root) = actor(req, state, &form).await?;
            match state
                .admin
                .end_meeting(&tenant, &meeting_id, &signed.principal)
                .await
            {
                Ok(view) => Ok(after_action(req, &meeting_href(&root, &view), "ended")),
                Err(failure) => Err(action_failed(
                    req,
                    status_of(&failure),
                    &failure.to_string(),
                )),
            }
        }
        .await,
    )
}

// ---- tenants ----------------------------------------------------------------

/// A tenant as the tenants page shows it.
pub struct TenantCard {
    name: String,
    api_path: String,
    running: u64,
    max_meetings: Option<u64>,
    percent: Option<u64>,
    near: bool,
    max_attendees: Option<u64>,
    month_meetings: u64,
    month_attendee_minutes: u64,
    required_tags: String,
    policy: String,
    secrets: Vec<String>,
    stats_token: bool,
}

#[derive(Template)]
#[template(path = "tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    tenants: Vec<TenantCard>,
}

/// `GET /console/tenants`: limits, use against them, this month's usage,
/// policies, secrets as fingerprints.
#[handler]
pub async fn tenants_page(req: &Request, Data(state): State<'_>) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "tenants", "Tenants".into()).await?;
            let tenants = match state.admin.tenants().await {
                Ok(tenants) => tenants,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let now =
                chrono::DateTime::from_timestamp_millis(state.clock.now_ms()).unwrap_or_default();
            let month_start = now
                .date_naive()
                .with_day(1)
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .map(|at| at.and_utc().timestamp_millis());
            let usage = state
                .admin
                .usage(
                    &switchboard_app::records::UsageFilter {
                        tenant: None,
                        from_ms: month_start,
                        to_ms: None,
                    },
                    switchboard_app::usage::Period::Month,
                )
                .await
                .unwrap_or_default();
            let gauges: HashMap<String, TenantGauge> = views::tenant_gauges(&tenants)
                .into_iter()
                .map(|gauge| (gauge.name.clone(), gauge))
                .collect();
            let cards = tenants
                .iter()
                .map(|tenant| {
                    let gauge = gauges.get(&tenant.name);
                    let used: Vec<_> = usage
                        .iter()
                        .filter(|row| row.tenant == tenant.name)
                        .collect();
                    TenantCard {
                        name: tenant.name.clone(),
                        api_path: tenant.api_path.clone(),
                        running: tenant.running_meetings,
                        max_meetings: tenant.limits.max_meetings,
                        percent: gauge.and_then(|g| g.percent),
                        near: gauge.is_some_and(|g| g.near),
                        max_attendees: tenant.limits.max_attendees,
                        month_meetings: used.iter().map(|row| row.meetings).sum(),
                        month_attendee_minutes: used
                            .iter()
                            .map(|row| row.attendee_seconds)
                            .sum::<u64>()
                            / 60,
                        required_tags: tenant.required_tags.join(", "),
                        policy: serde_json::to_string(&tenant.policy).unwrap_or_default(),
                        secrets: tenant.secrets.clone(),
                        stats_token: tenant.stats_token,
                    }
                })
                .collect();
            Ok(html(TenantsPage {
                chrome: page.chrome,
                tenants: cards,
            }))
        }
        .await,
    )
}

// ---- recordings -------------------------------------------------------------

/// The recordings page's search.
#[derive(Deserialize, Default)]
pub struct RecordingFilter {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    meeting: String,
    #[serde(default)]
    state: String,
}

/// A recording as a row.
pub struct RecordingRow {
    record_id: String,
    meeting_id: String,
    name: String,
    state: String,
    protected: bool,
    started: String,
    length: String,
    actions: Vec<Action>,
}

/// At most this many recordings on one page.
const RECORDINGS_SHOWN: u64 = 200;

#[derive(Template)]
#[template(path = "recordings.html")]
struct RecordingsPage {
    chrome: Chrome,
    filter: RecordingFilter,
    tenants: Vec<String>,
    recordings: Vec<RecordingRow>,
    total: usize,
}

/// `GET /console/recordings`: search by tenant, meeting and state; publish,
/// unpublish, protect.
#[handler]
pub async fn recordings_page(
    req: &Request,
    Query(mut filter): Query<RecordingFilter>,
    Data(state): State<'_>,
) -> Response {
    answer(async {
        let page = Page::open(req, state, "recordings", "Recordings".into()).await?;
        let mut tenants: Vec<String> = vec![TenantId::default_tenant().to_string()];
        tenants.extend(
            state
                .admin
                .tenants()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.name),
        );
        tenants.dedup();
        if filter.tenant.is_empty() {
            filter.tenant = tenants[0].clone();
        }
        if filter.state.is_empty() {
            filter.state = "any".into();
        }
        let mut query = RecordingQuery::new(TenantId(filter.tenant.clone()));
        let meeting = filter.meeting.trim();
        if !meeting.is_empty() {
            query.meeting_ids = vec![meeting.to_owned()];
        }
        query.states = match filter.state.as_str() {
            "any" => Some(vec![
                "published".into(),
                "unpublished".into(),
                "processing".into(),
            ]),
            other => Some(vec![other.to_owned()]),
        };
        query.limit = Some(RECORDINGS_SHOWN);
        let found = match state.recordings.find(&query).await {
            Ok(found) => found,
            Err(err) => return Err(page.problem(&Failure::Internal(err.to_string()))),
        };
        let root = page.chrome.root.clone();
        let encode = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let rows = found
            .recordings
            .iter()
            .map(|r| {
                let href = |action: &str| {
                    format!(
                        "{root}/recordings/{}/{}/{action}",
                        encode(&r.tenant.0),
                        encode(&r.record_id)
                    )
                };
                let mut actions = Vec::new();
                if r.state == "published" {
                    actions.push(Action {
                        href: href("unpublish"),
                        label: "Unpublish",
                        confirm: format!("Unpublish {}? Its playback links stop working until it is published again.", r.record_id),
                        class: "",
                    });
                } else if r.state == "unpublished" {
                    actions.push(Action {
                        href: href("publish"),
                        label: "Publish",
                        confirm: format!("Publish {}? Its playback links work again.", r.record_id),
                        class: "",
                    });
                }
                if r.state != "deleted" {
                    actions.push(if r.protected {
                        Action {
                            href: href("unprotect"),
                            label: "Unprotect",
                            confirm: format!("Stop protecting {}? Its playback URL then works without a one-time link.", r.record_id),
                            class: "",
                        }
                    } else {
                        Action {
                            href: href("protect"),
                            label: "Protect",
                            confirm: format!("Protect {}? Playback then needs a one-time link from getRecordings.", r.record_id),
                            class: "",
                        }
                    });
                }
                let seconds = ((r.end_time_ms - r.start_time_ms).max(0) / 1000) as u64;
                RecordingRow {
                    record_id: r.record_id.clone(),
                    meeting_id: r.meeting_id.clone(),
                    name: r.name.clone(),
                    state: r.state.clone(),
                    protected: r.protected,
                    started: views::moment(r.start_time_ms),
                    length: format!("{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60),
                    actions,
                }
            })
            .collect();
        Ok(html(RecordingsPage {
            chrome: page.chrome,
            filter,
            tenants,
            recordings: rows,
            total: found.total.map_or(found.recordings.len(), |total| total as usize),
        }))
    }
    .await)
}

/// `POST /console/recordings/:tenant/:record_id/:action`: publish,
/// unpublish, protect or unprotect.
#[handler]
pub async fn recording_action(
    req: &Request,
    Path((tenant, record_id, action)): Path<(String, String, String)>,
    Data(state): State<'_>,
    form: Option<Form<ActionForm>>,
) -> Response {
    answer(async {
        let form = form.map(|Form(form)| form).unwrap_or_default();
        let (signed, root) = actor(req, state, &form).await?;
        let metadata = EventMetadata {
            actor: signed.principal.name.clone(),
            request_id: None,
            tenant: Some(tenant.clone()),
        };
        let tenant_id = TenantId(tenant.clone());
        let ids = vec![record_id.clone()];
        let result = match action.as_str() {
            "publish" | "unpublish" => state
                .recordings
                .set_published(&tenant_id, &ids, action == "publish", &metadata)
                .await
                .map(|_| if action == "publish" { "published" } else { "unpublished" }),
            "protect" | "unprotect" => state
                .recordings
                .update(
                    &tenant_id,
                    &ids,
                    &RecordingUpdate {
                        protect: Some(action == "protect"),
                        ..RecordingUpdate::default()
                    },
                    &metadata,
                )
                .await
                .map(|_| if action == "protect" { "protected" } else { "unprotected" }),
            _ => {
                return Err(action_failed(
                    req,
                    StatusCode::NOT_FOUND,
                    &format!("no recording action `{action}`: use publish, unpublish, protect or unprotect"),
                ));
            }
        };
        match result {
            Ok(done) => Ok(after_action(
                req,
                &format!("{root}/recordings?tenant={}", url::form_urlencoded::byte_serialize(tenant.as_bytes()).collect::<String>()),
                done,
            )),
            Err(err) => Err(action_failed(req, StatusCode::CONFLICT, &err.to_string())),
        }
    }
    .await)
}

// ---- events and the pool at a moment ----------------------------------------

/// The events page's filters (times as `datetime-local` sends them, UTC).
#[derive(Deserialize, Default)]
pub struct EventsFilter {
    #[serde(default)]
    stream: String,
    #[serde(rename = "type", default)]
    event_type: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// A UTC moment as `datetime-local` sends it (`2026-12-06T12:03` or with
/// seconds) or RFC 3339; empty is `None`.
pub fn parse_local(text: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&chrono::Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(Some(at.and_utc()));
        }
    }
    Err(format!(
        "`{text}` is not a time: use YYYY-MM-DDTHH:MM[:SS] (UTC)"
    ))
}

fn local_input(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    chrome: Chrome,
    filter: EventsFilter,
    events: Vec<EventRow>,
    error: Option<String>,
    pool_at_default: String,
}

/// `GET /console/events`: the log, newest first, filtered.
#[handler]
pub async fn events_page(
    req: &Request,
    Query(filter): Query<EventsFilter>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "events", "Events".into()).await?;
            let now =
                chrono::DateTime::from_timestamp_millis(state.clock.now_ms()).unwrap_or_default();
            let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
            let times =
                parse_local(&filter.from).and_then(|from| Ok((from, parse_local(&filter.to)?)));
            let (events, error) = match times {
                Ok((from, to)) => match state
                    .admin
                    .events(EventFilter {
                        stream: nonempty(&filter.stream),
                        event_type: nonempty(&filter.event_type),
                        actor: nonempty(&filter.actor),
                        from,
                        to,
                        after: 0,
                        limit: 200,
                        newest_first: true,
                    })
                    .await
                {
                    Ok(page) => (page.events, None),
                    Err(failure) => (Vec::new(), Some(failure.to_string())),
                },
                Err(message) => (Vec::new(), Some(message)),
            };
            Ok(html(EventsPage {
                chrome: page.chrome,
                filter,
                events: event_rows(&events),
                error,
                pool_at_default: local_input(now - chrono::Duration::hours(1)),
            }))
        }
        .await,
    )
}

/// The pool-at form.
#[derive(Deserialize, Default)]
pub struct PoolAtQuery {
    #[serde(default)]
    at: String,
}

#[derive(Template)]
#[template(path = "pool_at.html")]
struct PoolAtPage {
    chrome: Chrome,
    at: String,
    at_input: String,
    position: i64,
    totals: PoolTotals,
    cards: Vec<ServerCard>,
    running: Vec<(String, String, String)>,
}

/// `GET /console/pool-at?at=…`: the pool as the log had it at a moment,
/// shown as the overview shows the pool now.
#[handler]
pub async fn pool_at_page(
    req: &Request,
    Query(query): Query<PoolAtQuery>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "events", "The pool at a moment".into()).await?;
            let at = match parse_local(&query.at) {
                Ok(Some(at)) => at,
                Ok(None) => {
                    return Err(page.problem(&Failure::Invalid(
                        "choose a moment (UTC) to show the pool at".into(),
                    )));
                }
                Err(message) => return Err(page.problem(&Failure::Invalid(message))),
            };
            let cluster = match state.admin.history(at).await {
                Ok(cluster) => cluster,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let cards = views::cards_at(&cluster);
            let hosts: HashMap<&str, &str> = cards
                .iter()
                .map(|c| (c.id.as_str(), c.host.as_str()))
                .collect();
            let running = cluster
                .meetings
                .iter()
                .filter(|m| m.running)
                .map(|m| {
                    let server = m
                        .server_id
                        .as_deref()
                        .map(|id| hosts.get(id).copied().unwrap_or(id).to_owned())
                        .unwrap_or_default();
                    (m.tenant.clone(), m.meeting_id.clone(), server)
                })
                .collect();
            Ok(html(PoolAtPage {
                chrome: Chrome {
                    title: format!("The pool at {}", views::moment(at.timestamp_millis())),
                    ..page.chrome
                },
                at: views::moment(at.timestamp_millis()),
                at_input: local_input(at),
                position: cluster.position,
                totals: views::totals(&cards),
                cards,
                running,
            }))
        }
        .await,
    )
}

// ---- charts -------------------------------------------------------------------

/// The charts' span.
#[derive(Deserialize, Default)]
pub struct ChartQuery {
    hours: Option<u64>,
}

#[derive(Template)]
#[template(path = "charts.html")]
struct ChartsPage {
    chrome: Chrome,
    hours: u64,
    kept_hours: u64,
}

fn chart_hours(query: &ChartQuery) -> u64 {
    query.hours.unwrap_or(3).clamp(1, 24 * 7)
}

/// `GET /console/charts`: meetings, attendees and load per server.
#[handler]
pub async fn charts_page(
    req: &Request,
    Query(query): Query<ChartQuery>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "charts", "Charts".into()).await?;
            Ok(html(ChartsPage {
                chrome: page.chrome,
                hours: chart_hours(&query),
                kept_hours: state.settings.history_hours,
            }))
        }
        .await,
    )
}

/// `GET /console/series.json?hours=N`: the charts' data (signed in only).
#[handler]
pub async fn series_json(
    req: &Request,
    Query(query): Query<ChartQuery>,
    Data(state): State<'_>,
) -> Response {
    let root = public_root(req, &state.settings);
    if let Err(why) = state.signed(req).await {
        return to_sign_in(req, &root, why);
    }
    let since = state.clock.now_ms() - chart_hours(&query) as i64 * 3_600_000;
    let points = match state.db.series_since(since, None).await {
        Ok(points) => points,
        Err(err) => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain; charset=utf-8")
                .body(format!("cannot read the series: {err}"));
        }
    };
    let labels: HashMap<String, String> = state
        .admin
        .servers()
        .await
        .map(|servers| {
            views::server_cards(&servers, &[], &HashMap::new(), 0)
                .into_iter()
                .map(|card| (card.id, card.host))
                .collect()
        })
        .unwrap_or_default();
    let data: ChartData = views::chart_data(&points, &labels);
    Response::builder()
        .content_type("application/json")
        .body(serde_json::to_string(&data).unwrap_or_else(|_| "{}".into()))
}

use chrono::Datelike as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_a_browser_sends_them_in_utc() {
        let at = parse_local("2026-12-06T12:03").unwrap().unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-06T12:03:00+00:00");
        let at = parse_local("2026-12-06T12:03:04").unwrap().unwrap();
        assert_eq!(local_input(at), "2026-12-06T12:03:04");
        assert_eq!(parse_local(" ").unwrap(), None);
        assert!(parse_local("yesterday").unwrap_err().contains("YYYY-MM-DD"));
        assert!(parse_local("2026-12-06T12:03:04+01:00").unwrap().is_some());
    }

    #[test]
    fn only_known_flash_words_are_shown() {
        assert!(done_message("cordoned").is_some());
        assert_eq!(done_message("<script>"), None);
    }

    #[test]
    fn long_payloads_are_cut_on_a_character_boundary() {
        let event = EventView {
            position: 1,
            stream: "server:x".into(),
            version: 1,
            event_type: "ServerAdded".into(),
            payload: serde_json::json!({ "name": "é".repeat(300) }),
            actor: "cli".into(),
            request_id: None,
            recorded_at: chrono::DateTime::from_timestamp_millis(0).unwrap(),
        };
        let rows = event_rows(&[event]);
        assert!(rows[0].payload.ends_with('…'));
        assert!(rows[0].payload.len() <= 404);
    }
}
