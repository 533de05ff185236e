//! The operator console at `/console`: server-rendered pages (askama
//! templates, htmx for live refresh and actions, uPlot for the charts;
//! every asset embedded in the binary) on the same admin use cases as the
//! admin API. Sign-in takes an admin or read token; the session cookie is
//! bound to it (see [`session`]). docs/console.md.

mod assets;
mod pages;
pub mod session;
pub mod views;

use crate::config::ConsoleSection;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, post};
use session::{COOKIE, Session, SessionKey};
use std::sync::Arc;
use switchboard_app::admin::{AdminService, Principal};
use switchboard_app::clock::SharedClock;
use switchboard_app::ports::Database;
use switchboard_app::recordings::RecordingService;
use switchboard_domain::token::TokenScope;

/// What the console's pages work with.
pub struct ConsoleState {
    /// The admin use cases.
    pub admin: Arc<AdminService>,
    /// The recording use cases.
    pub recordings: Arc<RecordingService>,
    /// Samples and the time series.
    pub db: Arc<dyn Database>,
    /// Signs sessions and CSRF tokens.
    pub key: SessionKey,
    /// The console's settings.
    pub settings: ConsoleSection,
    /// Now.
    pub clock: SharedClock,
}

/// The Content-Security-Policy of every console answer: scripts, styles
/// and connections from this origin only, no framing, forms posting here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, to be nested at `/console`.
pub fn endpoint(state: Arc<ConsoleState>) -> impl Endpoint {
    Route::new()
        .at("/", get(pages::overview_page))
        .at("/sign-in", get(pages::sign_in_page).post(pages::sign_in))
        .at("/sign-out", post(pages::sign_out))
        .at("/servers", get(pages::servers_page))
        .at("/servers/:id", get(pages::server_page))
        .at("/servers/:id/:action", post(pages::server_action))
        .at("/meetings", get(pages::meetings_page))
        .at("/meetings/:tenant/:meeting_id", get(pages::meeting_page))
        .at(
            "/meetings/:tenant/:meeting_id/end",
            post(pages::end_meeting),
        )
        .at("/tenants", get(pages::tenants_page))
        .at("/recordings", get(pages::recordings_page))
        .at(
            "/recordings/:tenant/:record_id/:action",
            post(pages::recording_action),
        )
        .at("/events", get(pages::events_page))
        .at("/pool-at", get(pages::pool_at_page))
        .at("/charts", get(pages::charts_page))
        .at("/series.json", get(pages::series_json))
        .at("/assets/:name", get(assets::asset))
        .data(state)
        .around(|ep, req| async move {
            let mut response = ep.call(req).await?.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            if !headers.contains_key(header::CACHE_CONTROL) {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            Ok(response)
        })
}

/// The path browsers reach the console at: an `X-Forwarded-Prefix` (only
/// path characters) in front of the configured public path.
pub fn public_root(req: &Request, settings: &ConsoleSection) -> String {
    let prefix = req
        .header("x-forwarded-prefix")
        .map(str::trim)
        .filter(|prefix| {
            prefix.starts_with('/')
                && !prefix.starts_with("//")
                && !prefix.contains("/../")
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
        })
        .unwrap_or("")
        .trim_end_matches('/');
    let path = settings.public_path.trim().trim_end_matches('/');
    let path = if path.is_empty() { "/console" } else { path };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    format!("{prefix}{path}")
}

/// A signed-in request: its session, principal and CSRF token.
pub struct Signed {
    /// The session.
    pub session: Session,
    /// Whose token.
    pub principal: Principal,
    /// The session's CSRF token.
    pub csrf: String,
}

impl Signed {
    /// Whether its token may act (admin scope).
    pub fn may_act(&self) -> bool {
        self.principal.scope.allows(TokenScope::Admin)
    }
}

/// Why a request is not signed in, with where to send it.
pub enum SignedOut {
    /// No session or a bad one: to the sign-in page (with a message).
    SignIn(Option<&'static str>),
    /// The token store failed.
    Failed(String),
}

impl ConsoleState {
    /// How long a sign-in lasts (1 h to 30 days).
    pub fn session_secs(&self) -> i64 {
        self.settings.session_hours.clamp(1, 24 * 30) as i64 * 3600
    }

    /// The request's session, if its cookie is good and its token still in
    /// force with the read or admin scope.
    pub async fn signed(&self, req: &Request) -> Result<Signed, SignedOut> {
        let now_s = self.clock.now_ms() / 1000;
        let Some(value) = req
            .header(header::COOKIE)
            .and_then(|cookies| session::cookie_value(cookies, COOKIE))
        else {
            return Err(SignedOut::SignIn(None));
        };
        let Some(session) = self.key.verify(value, now_s, self.session_secs()) else {
            return Err(SignedOut::SignIn(Some(
                "Your session ended. Sign in again.",
            )));
        };
        let principal = match self.admin.principal_of_hash(&session.token_hash).await {
            Ok(Some(principal)) if principal.scope.allows(TokenScope::Read) => principal,
            Ok(_) => {
                return Err(SignedOut::SignIn(Some(
                    "The token of your session was revoked. Sign in with another.",
                )));
            }
            Err(failure) => return Err(SignedOut::Failed(failure.to_string())),
        };
        let csrf = self.key.csrf(&session);
        Ok(Signed {
            session,
            principal,
            csrf,
        })
    }
}

/// Sends a request that is not signed in to the sign-in page (htmx
/// requests by `HX-Redirect`, so a live refresh does not swap the page in).
pub fn to_sign_in(req: &Request, root: &str, why: SignedOut) -> Response {
    match why {
        SignedOut::SignIn(message) => {
            let target = match message {
                Some(_) => format!("{root}/sign-in?ended=1"),
                None => format!("{root}/sign-in"),
            };
            if req.header("hx-request").is_some() {
                Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header("HX-Redirect", target)
                    .finish()
            } else {
                Response::builder()
                    .status(StatusCode::SEE_OTHER)
                    .header(header::LOCATION, target)
                    .finish()
            }
        }
        SignedOut::Failed(detail) => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .content_type("text/plain; charset=utf-8")
            .body(format!("the console cannot check its session: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(prefix: Option<&str>, path: &str) -> String {
        let mut req = Request::builder();
        if let Some(prefix) = prefix {
            req = req.header("x-forwarded-prefix", prefix);
        }
        public_root(
            &req.finish(),
            &ConsoleSection {
                public_path: path.to_owned(),
                ..ConsoleSection::default()
            },
        )
    }

    #[test]
    fn the_public_root_follows_the_setting_and_a_clean_forwarded_prefix() {
        assert_eq!(root(None, "/console"), "/console");
        assert_eq!(root(None, "lb/console/"), "/lb/console");
        assert_eq!(root(None, ""), "/console");
        assert_eq!(root(Some("/lb/"), "/console"), "/lb/console");
        assert_eq!(
            root(Some("/x\"><script>"), "/console"),
            "/console",
            "a prefix with other characters is ignored"
        );
        assert_eq!(root(Some("https://evil"), "/console"), "/console");
        assert_eq!(
            root(Some("//evil.example"), "/console"),
            "/console",
            "never another host"
        );
    }
}
