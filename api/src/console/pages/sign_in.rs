//! Sign-in and sign-out: a token opens a session bound to it.

use super::*;

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
            let lifetime = state.session_secs();
            let session = session::Session {
                token_hash: hash,
                expires_at: state.clock.now_ms() / 1000 + lifetime,
            };
            tracing::info!(token = %principal.name, "console sign-in");
            Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, format!("{root}/"))
                .header(
                    header::SET_COOKIE,
                    session::set_cookie(&state.key.issue(&session), &root, lifetime),
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

/// `POST /console/sign-out`: removes the cookie (a signed-in request
/// only with its session's CSRF token, so no other site signs one out).
#[handler]
pub async fn sign_out(
    req: &Request,
    Data(state): State<'_>,
    form: Option<Form<ActionForm>>,
) -> Response {
    let root = public_root(req, &state.settings);
    if let Ok(signed) = state.signed(req).await {
        let form = form.map(|Form(form)| form).unwrap_or_default();
        if cross_site(req) || !state.key.csrf_matches(&signed.session, &form.csrf) {
            return action_failed(
                req,
                StatusCode::FORBIDDEN,
                "Sign out from a console page of this session (CSRF check failed).",
            );
        }
    }
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, format!("{root}/sign-in"))
        .header(header::SET_COOKIE, session::set_cookie("", &root, 0))
        .finish()
}
