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

#[tokio::test]
async fn recordings_are_found_and_published_unpublished_and_protected() {
    use std::collections::BTreeMap;
    use switchboard_app::ports::prelude::*;
    use switchboard_domain::events::EventMetadata;
    use switchboard_domain::ids::{MeetingId, TenantId};
    use switchboard_domain::recording::{RecordingCommand, RecordingDetails, RecordingFormat};
    use switchboard_store::test_support::StoreCommands as _;
    let harness = Harness::start(Db::Sqlite, 1).await;
    let record_id = MeetingId::parse("lecture")
        .unwrap()
        .internal_id(1_796_083_200_000);
    harness
        .store()
        .execute_recording(
            &record_id,
            &RecordingCommand::Import {
                details: RecordingDetails {
                    tenant: TenantId::default_tenant(),
                    meeting_id: "lecture".into(),
                    internal_meeting_id: record_id.clone(),
                    name: "Lecture one".into(),
                    is_breakout: false,
                    published: true,
                    start_time_ms: 1_796_083_200_000,
                    end_time_ms: 1_796_083_200_000 + 3_723_000,
                    participants: 2,
                    metadata: BTreeMap::new(),
                    breakout: None,
                    breakout_rooms: Vec::new(),
                },
                formats: vec![RecordingFormat {
                    format: "presentation".into(),
                    url: "https://bbb/playback/presentation/2.3/x".into(),
                    processing_time_ms: 1,
                    length_ms: 3_723_000,
                    bytes: 0,
                    images: vec![],
                }],
            },
            &EventMetadata::actor("test"),
        )
        .await
        .unwrap();
    let cookie = sign_in(&harness, &token(&harness, "ops", Scope::Admin).await).await;
    let page = get(&harness, "/recordings?meeting=lecture", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&record_id) && page.contains("1:02:03"),
        "{page}"
    );
    assert!(page.contains(">Unpublish</button>") && page.contains(">Protect</button>"));
    let other = get(&harness, "/recordings?meeting=seminar", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(!other.contains(&record_id), "filtered by meeting");
    let csrf = csrf_of(&page);
    for action in ["unpublish", "protect"] {
        let done = harness
            .client
            .post(console(
                &harness,
                &format!("/recordings/default/{record_id}/{action}"),
            ))
            .header("cookie", &cookie)
            .header("hx-request", "true")
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200, "{action}");
        assert!(
            done.headers()["hx-redirect"]
                .to_str()
                .unwrap()
                .ends_with(&format!("done={action}ed")),
            "{action}"
        );
    }
    let recording = harness
        .store()
        .recording(&record_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recording.state, "unpublished");
    assert!(recording.protected);
    let held = harness
        .client
        .post(console(
            &harness,
            &format!("/recordings/default/{record_id}/hold"),
        ))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 303);
    let recording = harness
        .store()
        .recording(&record_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        recording.metadata.get("keep").map(String::as_str),
        Some("true")
    );
    let page = get(&harness, "/recordings?meeting=lecture", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(">Release</button>"), "{page}");
    let unknown = harness
        .client
        .post(console(
            &harness,
            &format!("/recordings/default/{record_id}/delete"),
        ))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404, "no delete from the console");
}

#[tokio::test]
async fn a_worker_serves_the_console_only_when_asked() {
    for on_worker in [false, true] {
        let database_url = database_url(Db::Sqlite).await;
        let mut settings = settings(&database_url);
        settings.console.on_worker = on_worker;
        let store = switchboard_api::app::open_store(&settings).await.unwrap();
        let secrets = switchboard_api::app::resolve_secrets(&settings, &store)
            .await
            .unwrap()
            .accepted;
        let state = switchboard_api::app::AppState::build(settings, store, secrets)
            .await
            .unwrap();
        let worker = switchboard_api::app::start_worker(state, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let response = client()
            .get(format!("http://{}/console/sign-in", worker.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status() == 200,
            on_worker,
            "on_worker = {on_worker}"
        );
        worker.stop().await;
    }
}

#[tokio::test]
async fn a_meeting_is_shown_with_its_events_and_ended_from_its_page() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let created = harness
        .client
        .get(harness.url("create", "meetingID=room+%C3%A9%2F1&name=Room"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(created.contains("SUCCESS"), "{created}");
    let cookie = sign_in(&harness, &token(&harness, "ops", Scope::Admin).await).await;
    let list = get(&harness, "/meetings?q=ROOM", &cookie)
        .await
        .text()
        .await
        .unwrap();
    // Ids with spaces, slashes and accents are linked percent-encoded.
    let href = "/console/meetings/default/room%20%C3%A9%2F1";
    assert!(list.contains(&format!("href=\"{href}\"")), "{list}");
    let none = get(&harness, "/meetings?q=nothing-like-it", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(!none.contains(href), "filtered by text");
    let page = get(&harness, "/meetings/default/room%20%C3%A9%2F1", &cookie).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("MeetingCreated") && page.contains(">End</button>"),
        "{page}"
    );
    let ended = harness
        .client
        .post(console(
            &harness,
            &format!("{}/end", &href["/console".len()..]),
        ))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 303);
    assert_eq!(
        ended.headers()["location"],
        format!("{href}?done=ended").as_str()
    );
    let view = harness
        .state()
        .admin
        .meeting("default", "room é/1")
        .await
        .unwrap();
    assert!(!view.running);
    assert_eq!(harness.sims[0].request_count("end"), 1);
    let events = get(&harness, "/events?type=MeetingEnded&actor=ops", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(events.contains("<td>MeetingEnded</td>"), "{events}");
    assert!(
        !events.contains("<td>MeetingCreated</td>"),
        "filtered by type"
    );
    let bad = get(&harness, "/events?from=yesterday", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(bad.contains("is not a time"), "{bad}");
}

#[tokio::test]
async fn what_front_ends_send_is_shown_escaped() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let created = harness
        .client
        .get(harness.url(
            "create",
            "meetingID=%3Cb%3Ex%22%27&name=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(created.contains("SUCCESS"), "{created}");
    let cookie = sign_in(&harness, &token(&harness, "ops", Scope::Admin).await).await;
    for path in ["/meetings", "/meetings/default/%3Cb%3Ex%22%27", "/events"] {
        let page = get(&harness, path, &cookie).await.text().await.unwrap();
        assert!(!page.contains("<script>alert"), "{path}: {page}");
        assert!(!page.contains("<b>x"), "{path}: {page}");
        assert!(
            page.contains("&lt;") || page.contains("&#60;"),
            "{path}: shown, escaped: {page}"
        );
    }
}

#[tokio::test]
async fn signing_out_needs_the_sessions_csrf_token() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let cookie = sign_in(&harness, &token(&harness, "ops", Scope::Admin).await).await;
    let page = get(&harness, "/", &cookie).await.text().await.unwrap();
    let post = |csrf: &str| {
        harness
            .client
            .post(console(&harness, "/sign-out"))
            .header("cookie", &cookie)
            .form(&[("_csrf", csrf)])
            .send()
    };
    assert_eq!(post("").await.unwrap().status(), 403, "another site's form");
    let out = post(&csrf_of(&page)).await.unwrap();
    assert_eq!(out.status(), 303);
    let set = out.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.starts_with("switchboard_console=;") && set.contains("Max-Age=0"),
        "{set}"
    );
}
