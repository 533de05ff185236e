//! The operator console over HTTP (api/src/console): sign-in, sessions
//! bound to their token, CSRF, scopes and headers, without a browser. The
//! browser tests (Chromium with Playwright) are in `console_browser`.

use crate::support::*;
use switchboard_api::admin::model::{NewToken, Scope};
use switchboard_app::admin::Principal;

pub async fn token(harness: &Harness, name: &str, scope: Scope) -> String {
    harness
        .state()
        .admin
        .create_token(
            NewToken {
                name: name.into(),
                scope,
                server: None,
            },
            &Principal::admin("test-setup".into()),
        )
        .await
        .unwrap()
        .token
}

fn console(harness: &Harness, path: &str) -> String {
    format!("http://{}/console{path}", harness.app.addr)
}

/// Signs in and returns the session cookie (`name=value`).
async fn sign_in(harness: &Harness, token: &str) -> String {
    let response = harness
        .client
        .post(console(harness, "/sign-in"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for part in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains(token), "the cookie never holds the token");
    set.split(';').next().unwrap().to_owned()
}

async fn get(harness: &Harness, path: &str, cookie: &str) -> reqwest::Response {
    harness
        .client
        .get(console(harness, path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The CSRF token a page carries.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"_csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 20;
    page[at..at + 64].to_owned()
}

#[tokio::test]
async fn pages_need_a_session_and_keep_a_strict_policy() {
    let harness = Harness::start(Db::Sqlite, 2).await;
    let response = get(&harness, "/servers", "").await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/console/sign-in");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    // A page's live refresh is told where to go, not given the sign-in page.
    let refresh = harness
        .client
        .get(console(&harness, "/"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 401);
    assert_eq!(refresh.headers()["hx-redirect"], "/console/sign-in");

    let admin = token(&harness, "ops", Scope::Admin).await;
    let cookie = sign_in(&harness, &admin).await;
    for path in [
        "/",
        "/servers",
        "/meetings?state=all",
        "/tenants",
        "/recordings",
        "/events",
        "/charts",
        "/pool-at?at=2026-01-01T00:00",
    ] {
        let response = get(&harness, path, &cookie).await;
        assert_eq!(response.status(), 200, "{path}");
        let page = response.text().await.unwrap();
        assert!(!page.contains(&admin), "{path} never shows the token");
        assert!(!page.contains("<script>"), "{path}: no inline script");
    }
    let overview = get(&harness, "/", &cookie).await.text().await.unwrap();
    assert_eq!(overview.matches("class=\"card ").count(), 2, "{overview}");
    let asset = get(&harness, "/assets/htmx.min.js", "").await;
    assert_eq!(asset.status(), 200, "assets need no session");
    assert_eq!(
        get(&harness, "/assets/..%2FCargo.toml", "").await.status(),
        404
    );
    // A changed cookie is no session.
    let forged = cookie.replace(&cookie[cookie.len() - 4..], "0000");
    assert_eq!(get(&harness, "/", &forged).await.status(), 303);
}

#[tokio::test]
async fn actions_need_the_admin_scope_and_the_sessions_csrf_token() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let server = harness.servers[0].to_string();
    let reader = sign_in(&harness, &token(&harness, "viewer", Scope::Read).await).await;
    let admin = sign_in(&harness, &token(&harness, "ops", Scope::Admin).await).await;
    let page = get(&harness, &format!("/servers/{server}"), &reader)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("disabled aria-describedby=\"needs-admin\""),
        "{page}"
    );
    let post = |cookie: &str, csrf: &str| {
        harness
            .client
            .post(console(&harness, &format!("/servers/{server}/cordon")))
            .header("cookie", cookie)
            .form(&[("_csrf", csrf)])
            .send()
    };
    let refused = post(&reader, &csrf_of(&page)).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("admin token"));
    let admin_page = get(&harness, &format!("/servers/{server}"), &admin)
        .await
        .text()
        .await
        .unwrap();
    let admin_csrf = csrf_of(&admin_page);
    assert_eq!(
        post(&admin, &csrf_of(&page)).await.unwrap().status(),
        403,
        "another session's CSRF token"
    );
    assert_eq!(post(&admin, "").await.unwrap().status(), 403, "none");
    let cross = harness
        .client
        .post(console(&harness, &format!("/servers/{server}/cordon")))
        .header("cookie", &admin)
        .header("sec-fetch-site", "cross-site")
        .form(&[("_csrf", admin_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "from another site");
    let done = post(&admin, &admin_csrf).await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(
        done.headers()["location"],
        format!("/console/servers/{server}?done=cordoned").as_str()
    );
    let view = harness.state().admin.server(&server).await.unwrap();
    assert_eq!(
        view.state, "disabled",
        "cordoned, and drained at once: it ran nothing"
    );
    let events = harness
        .state()
        .admin
        .events(switchboard_app::records::EventFilter {
            stream: Some(format!("server:{server}")),
            event_type: Some("ServerCordoned".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.events[0].actor, "ops", "the event names the token");
}

#[tokio::test]
async fn revoking_the_token_ends_its_session() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let admin = token(&harness, "leaver", Scope::Admin).await;
    let cookie = sign_in(&harness, &admin).await;
    assert_eq!(get(&harness, "/", &cookie).await.status(), 200);
    harness
        .state()
        .admin
        .revoke_token("leaver", &Principal::admin("test".into()))
        .await
        .unwrap();
    let response = get(&harness, "/", &cookie).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/console/sign-in?ended=1");
    // A node token does not sign in.
    let node = token(&harness, "agent", Scope::Node).await;
    let refused = harness
        .client
        .post(console(&harness, "/sign-in"))
        .form(&[("token", node.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn behind_a_proxy_links_and_the_cookie_use_the_public_path() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let admin = token(&harness, "ops", Scope::Admin).await;
    let response = harness
        .client
        .post(console(&harness, "/sign-in"))
        .header("x-forwarded-prefix", "/lb")
        .form(&[("token", admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/lb/console/");
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set.contains("Path=/lb/console;"), "{set}");
    let cookie = set.split(';').next().unwrap();
    let page = harness
        .client
        .get(console(&harness, "/servers"))
        .header("cookie", cookie)
        .header("x-forwarded-prefix", "/lb")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("href=\"/lb/console/assets/console.css"),
        "{page}"
    );
    assert!(page.contains("href=\"/lb/console/servers/"), "{page}");
}
