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
        "held" => "Recording held: no retention rule expires it.",
        "released" => "Hold released: retention applies again.",
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

mod charts;
mod events;
mod meetings;
mod recordings;
mod servers;
mod sign_in;
mod tenants;

pub use charts::*;
pub use events::*;
pub use meetings::*;
pub use recordings::*;
pub use servers::*;
pub use sign_in::*;
pub use tenants::*;

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

/// The tenants to filter by: the default one first, then every other one
/// (each once).
async fn tenant_names(state: &ConsoleState) -> Vec<String> {
    let default = TenantId::default_tenant().to_string();
    let mut names = vec![default.clone()];
    names.extend(
        state
            .admin
            .tenants()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|tenant| tenant.name)
            .filter(|name| *name != default),
    );
    names
}

/// Whether a browser says the request came from another site.
fn cross_site(req: &Request) -> bool {
    req.header("sec-fetch-site")
        .is_some_and(|site| site.eq_ignore_ascii_case("cross-site"))
}

/// The form every action posts: the CSRF token (also accepted as the
/// `X-CSRF-Token` header htmx sends) and the page it was posted from.
#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    back: String,
}

/// Where an action goes back to: the page it was posted from (with its
/// filters) when that is a console page, else `fallback`. Never another
/// site: only a path under the console's root, without `//` or `\`.
fn back_to(root: &str, back: &str, fallback: String) -> String {
    let inside = back.starts_with(&format!("{root}/"))
        && !back.contains("//")
        && !back.contains('\\')
        && !back.chars().any(char::is_control);
    if inside { back.to_owned() } else { fallback }
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
    form: Option<Form<ActionForm>>,
) -> Result<(Signed, String, ActionForm), Response> {
    let form = form.map(|Form(form)| form).unwrap_or_default();
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
    Ok((signed, root, form))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_go_back_only_to_console_pages() {
        let fallback = || "/console/servers/x".to_owned();
        assert_eq!(
            back_to(
                "/console",
                "/console/recordings?tenant=a&state=any",
                fallback()
            ),
            "/console/recordings?tenant=a&state=any"
        );
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/console/",
            "/console//evil.example",
            "/consolex/",
            "/console/\\evil",
            "/other",
        ] {
            assert_eq!(back_to("/console", bad, fallback()), fallback(), "{bad}");
        }
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
