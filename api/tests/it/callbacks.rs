//! Callbacks through Switchboard (issue 16), over real HTTP: the simulated
//! servers fire BBB's end-of-meeting callbacks at the URLs Switchboard gave
//! them, and a local receiver stands for the front-end.

use crate::support::*;
use poem::web::Data;
use poem::{EndpointExt, Request, Route, handler};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_api::app::{self, AppState, Background};
use switchboard_app::ports::prelude::*;
use switchboard_app::records::{CallbackFilter, CallbackState};
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_domain::ids::{MeetingId, TenantId};

/// A second global secret a front-end may sign with.
const SECOND_SECRET: &str = "second-front-end-secret";

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path_and_query: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// A front-end's callback receiver: records every request, answers from a
/// script of statuses (200 once it runs out).
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<Vec<u16>>>,
    base: String,
}

impl Receiver {
    async fn start(script: Vec<u16>) -> Self {
        #[handler]
        async fn receive(
            req: &Request,
            body: String,
            Data(receiver): Data<&Receiver>,
        ) -> poem::Response {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            };
            receiver.seen.lock().unwrap().push(Seen {
                method: req.method().to_string(),
                path_and_query: req
                    .uri()
                    .path_and_query()
                    .map(|pq| pq.to_string())
                    .unwrap_or_default(),
                authorization: header("authorization"),
                content_type: header("content-type"),
                body,
            });
            let mut script = receiver.script.lock().unwrap();
            let status = if script.is_empty() {
                200
            } else {
                script.remove(0)
            };
            poem::Response::builder()
                .status(poem::http::StatusCode::from_u16(status).unwrap())
                .body("")
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut receiver = Receiver {
            script: Arc::new(Mutex::new(script)),
            ..Receiver::default()
        };
        receiver.base = format!("http://{addr}");
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let app = Route::new()
            .at("/*path", poem::get(receive).post(receive))
            .data(receiver.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.path_and_query.starts_with(path))
            .collect()
    }
}

async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether Switchboard's projection holds the meeting as running.
async fn running(harness: &Harness, meeting_id: &str) -> bool {
    harness
        .store()
        .meeting(
            &TenantId::default_tenant(),
            &MeetingId::parse(meeting_id).unwrap(),
        )
        .await
        .unwrap()
        .is_some_and(|meeting| meeting.running)
}

/// The parameter `key` of the create the first server got for `meeting_id`
/// (Switchboard's own callback URLs).
fn given_param(harness: &Harness, meeting_id: &str, key: &str) -> String {
    harness.sims[0]
        .create_params(meeting_id)
        .unwrap()
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("the server got no {key}"))
}

/// Creates a meeting and joins one moderator, so it runs.
async fn start_meeting(harness: &Harness, meeting_id: &str, extra: &str) {
    harness
        .get(
            "create",
            &format!("name=Room&meetingID={meeting_id}&moderatorPW=mp&attendeePW=ap{extra}"),
        )
        .await
        .assert_success();
    let joined = harness
        .get(
            "join",
            &format!("meetingID={meeting_id}&fullName=Ann&password=mp&redirect=false"),
        )
        .await;
    joined.assert_success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_ended_on_its_server_is_reported_ended_within_a_second() {
    for db in BOTH {
        // No polling: only the server's callback can tell.
        let harness = Harness::start(db, 1).await;
        start_meeting(&harness, "room-1", "").await;
        assert!(running(&harness, "room-1").await);
        let ended_url = given_param(&harness, "room-1", "meetingEndedURL");
        assert!(
            ended_url.starts_with(&format!(
                "http://{}/switchboard/callbacks/ended/",
                harness.app.addr
            )),
            "{ended_url}"
        );
        let ended_at = Instant::now();
        assert!(harness.sims[0].end_meeting_directly("room-1"));
        eventually(
            "the end to be recorded",
            Duration::from_secs(1),
            async || !running(&harness, "room-1").await,
        )
        .await;
        eventually("getMeetings to agree", Duration::from_secs(1), async || {
            !harness.get("getMeetings", "").await.body.contains("room-1")
        })
        .await;
        let running_answer = harness.get("isMeetingRunning", "meetingID=room-1").await;
        assert!(running_answer.body.contains("<running>false</running>"));
        harness
            .get("getMeetingInfo", "meetingID=room-1")
            .await
            .assert_failed("notFound");
        assert!(
            ended_at.elapsed() < Duration::from_secs(1),
            "{:?}",
            ended_at.elapsed()
        );
        let fired = harness.sims[0].fired_callbacks();
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].1, 200);
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_and_analytics_callbacks_are_relayed_as_bbb_makes_them_and_signed_with_the_front_ends_secret()
 {
    for db in BOTH {
        let harness = Harness::with_tags(db, &[None], |settings| {
            settings.secrets = vec![SECOND_SECRET.to_owned()];
        })
        .await;
        let receiver = Receiver::start(Vec::new()).await;
        let extra = format!(
            "&meta_endCallbackUrl={}&meetingEndedURL={}&meta_analytics-callback-url={}",
            enc(&receiver.url("/end?id=4&x=a%20b")),
            enc(&receiver.url("/ended?k=1")),
            enc(&receiver.url("/analytics?c=9")),
        );
        // Signed with the second secret: callbacks must be signed with it.
        let query = format!("name=Room&meetingID=room+2&moderatorPW=mp{extra}");
        let url = signed_url(
            &harness.app.api_url(),
            "create",
            &query,
            SECOND_SECRET,
            ChecksumAlgorithm::Sha256,
        );
        harness.get_raw(&url).await.assert_success();
        // The server sees none of the front-end's URLs.
        let given = harness.sims[0].create_params("room 2").unwrap();
        for (key, value) in &given {
            assert!(
                !value.contains(&receiver.base),
                "{key}={value} reached the server"
            );
        }
        let end = harness.get("end", "meetingID=room+2&password=mp").await;
        end.assert_success();
        eventually("three deliveries", Duration::from_secs(10), async || {
            receiver.seen().len() >= 3
        })
        .await;
        let ended = receiver.seen_at("/ended");
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].method, "GET");
        assert_eq!(ended[0].path_and_query, "/ended?k=1");
        let end_callback = receiver.seen_at("/end?");
        assert_eq!(end_callback.len(), 1);
        assert_eq!(end_callback[0].method, "GET");
        assert_eq!(
            end_callback[0].path_and_query,
            "/end?id=4&x=a%20b&recordingmarks=false&meetingID=room+2"
        );
        let analytics = receiver.seen_at("/analytics");
        assert_eq!(analytics.len(), 1);
        let posted = &analytics[0];
        assert_eq!(posted.method, "POST");
        assert_eq!(posted.path_and_query, "/analytics?c=9");
        assert_eq!(posted.content_type.as_deref(), Some("application/json"));
        let token = posted
            .authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Bearer "))
            .expect("a bearer token");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS512);
        validation.required_spec_claims.clear();
        validation.required_spec_claims.insert("exp".to_owned());
        let decode = |secret: &str| {
            jsonwebtoken::decode::<serde_json::Value>(
                token,
                &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
                &validation,
            )
        };
        assert!(
            decode(SECOND_SECRET).is_ok(),
            "signed with the secret the create used"
        );
        assert!(decode(SECRET).is_err());
        assert!(decode(harness.sims[0].secret()).is_err());
        let body: serde_json::Value = serde_json::from_str(&posted.body).unwrap();
        assert_eq!(body["meeting_id"], "room 2");
        assert_eq!(body["version"], "1.0");
        assert!(body["data"]["attendees"].is_array());
        // Delivered once each.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.seen().len(), 3);
        let delivered = harness
            .state()
            .callbacks
            .list(&CallbackFilter {
                state: Some(CallbackState::Delivered),
                limit: 10,
                ..CallbackFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(delivered.len(), 3);
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_is_still_served() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let receiver = Receiver::start(vec![500, 503]).await;
    start_meeting(
        &harness,
        "room-3",
        &format!("&meetingEndedURL={}", enc(&receiver.url("/ended"))),
    )
    .await;
    harness.sims[0].end_meeting_directly("room-3");
    eventually("the third attempt", Duration::from_secs(10), async || {
        receiver.seen().len() >= 3
    })
    .await;
    let all = harness
        .state()
        .callbacks
        .list(&CallbackFilter {
            limit: 10,
            ..CallbackFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    eventually(
        "the delivery to be recorded",
        Duration::from_secs(2),
        async || {
            let record = harness
                .state()
                .callbacks
                .get(&all[0].callback.id)
                .await
                .unwrap()
                .unwrap();
            record.state == CallbackState::Delivered && record.attempts == 3
        },
    )
    .await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_the_retries_loses_nothing() {
    let harness = Harness::with_tags(Db::Postgres, &[None], |settings| {
        settings.callbacks.first_retry_secs = 1.0;
        settings.callbacks.max_retry_secs = 1.0;
    })
    .await;
    let receiver = Receiver::start(vec![500, 500, 500, 500, 500, 500, 500, 500]).await;
    start_meeting(
        &harness,
        "room-4",
        &format!("&meetingEndedURL={}", enc(&receiver.url("/ended"))),
    )
    .await;
    harness.sims[0].end_meeting_directly("room-4");
    eventually("a failed attempt", Duration::from_secs(5), async || {
        !receiver.seen().is_empty()
    })
    .await;
    // Stop Switchboard while the delivery waits for its next attempt.
    let settings = harness.state().settings.clone();
    let Harness { app, sims, .. } = harness;
    app.stop().await;
    receiver.script.lock().unwrap().clear();
    let before = receiver.seen().len();
    let store = app::open_store(&settings).await.unwrap();
    let secrets = app::resolve_secrets(&settings, &store)
        .await
        .unwrap()
        .accepted;
    let state = AppState::build(settings, store, secrets).await.unwrap();
    let restarted = app::start(
        state,
        "127.0.0.1:0".parse().unwrap(),
        Background { health: false },
    )
    .await
    .unwrap();
    eventually(
        "the delivery after the restart",
        Duration::from_secs(10),
        async || receiver.seen().len() > before,
    )
    .await;
    eventually(
        "it to be recorded delivered",
        Duration::from_secs(5),
        async || {
            restarted
                .state
                .callbacks
                .list(&CallbackFilter {
                    state: Some(CallbackState::Delivered),
                    limit: 10,
                    ..CallbackFilter::default()
                })
                .await
                .unwrap()
                .len()
                == 1
        },
    )
    .await;
    restarted.stop().await;
    for sim in sims {
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_with_a_token_not_of_the_servers_secret_are_refused() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let receiver = Receiver::start(Vec::new()).await;
    start_meeting(
        &harness,
        "room-5",
        &format!("&meta_analytics-callback-url={}", enc(&receiver.url("/a"))),
    )
    .await;
    let ours = given_param(&harness, "room-5", "meta_analytics-callback-url");
    let token = |secret: &str, algorithm| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(algorithm),
            &serde_json::json!({"exp": chrono::Utc::now().timestamp() + 60}),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let post = |token: Option<String>, url: String| {
        let client = harness.client.clone();
        async move {
            let mut request = client.post(url).body(r#"{"meeting_id":"x","data":{}}"#);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    let hs512 = jsonwebtoken::Algorithm::HS512;
    assert_eq!(post(None, ours.clone()).await, 401);
    assert_eq!(post(Some(token(SECRET, hs512)), ours.clone()).await, 401);
    assert_eq!(
        post(
            Some(token(
                harness.sims[0].secret(),
                jsonwebtoken::Algorithm::HS256
            )),
            ours.clone()
        )
        .await,
        401
    );
    // A URL made for another kind, or tampered with, is unknown.
    let tampered = ours.replace("/analytics/", "/ended/");
    assert_eq!(
        post(Some(token(harness.sims[0].secret(), hs512)), tampered).await,
        404
    );
    assert_eq!(
        post(Some(token(harness.sims[0].secret(), hs512)), ours.clone()).await,
        200
    );
    eventually(
        "the analytics delivery",
        Duration::from_secs(5),
        async || receiver.seen().len() == 1,
    )
    .await;
    let body: serde_json::Value = serde_json::from_str(&receiver.seen()[0].body).unwrap();
    assert_eq!(body["meeting_id"], "room-5", "the front-end's meetingID");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_retry_and_drop_deliveries_in_the_admin_api_and_the_cli() {
    let harness = Harness::start(Db::Postgres, 1).await;
    // Gone: failed for good at the first answer.
    let receiver = Receiver::start(vec![410]).await;
    start_meeting(
        &harness,
        "room-6",
        &format!("&meetingEndedURL={}", enc(&receiver.url("/gone?user=x"))),
    )
    .await;
    harness.sims[0].end_meeting_directly("room-6");
    let admin = crate::admin::admin(&harness).await;
    let mut failed = serde_json::Value::Null;
    eventually("the delivery to fail", Duration::from_secs(5), async || {
        let (status, body) = admin.get("/callbacks?state=failed").await;
        assert_eq!(status, 200, "{body}");
        failed = body;
        failed.as_array().is_some_and(|list| list.len() == 1)
    })
    .await;
    let entry = &failed[0];
    assert_eq!(entry["kind"], "meeting-ended");
    assert_eq!(entry["meeting_id"], "room-6");
    assert_eq!(entry["last_status"], 410);
    assert_eq!(entry["attempts"], 1);
    let id = entry["id"].as_str().unwrap().to_owned();
    let (status, body) = admin.get("/callbacks?state=sideways").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("pending, delivered")
    );
    // Retried by an operator: delivered (the receiver answers 200 now).
    let (status, _) = admin
        .post(&format!("/callbacks/{id}/retry"), serde_json::json!({}))
        .await;
    assert_eq!(status, 204);
    eventually("the retried delivery", Duration::from_secs(5), async || {
        let (_, body) = admin.get(&format!("/callbacks/{id}")).await;
        body["state"] == "delivered"
    })
    .await;
    assert_eq!(receiver.seen_at("/gone").len(), 2);
    let (status, _) = admin
        .post(&format!("/callbacks/{id}/drop"), serde_json::json!({}))
        .await;
    assert_eq!(status, 404, "a delivered one cannot be dropped");
    // The CLI, through the admin API.
    let token = admin.token.clone();
    let url = format!("http://{}", harness.app.addr);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "--url",
                &url,
                "--token",
                &token,
                "callbacks",
                "list",
                "--json",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "delivered");
    harness.stop().await;
}

/// The events a receiver got at `path`: (event id, external meeting id).
fn webhook_events(receiver: &Receiver, path: &str) -> Vec<(String, String)> {
    let mut events = Vec::new();
    for seen in receiver.seen_at(path) {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(seen.body.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        let event = &form.iter().find(|(key, _)| key == "event").unwrap().1;
        let parsed: serde_json::Value = serde_json::from_str(event).unwrap();
        for event in parsed.as_array().unwrap() {
            events.push((
                event["data"]["id"].as_str().unwrap().to_owned(),
                event["data"]["attributes"]["meeting"]["external-meeting-id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_of_the_whole_pool_reach_each_tenants_own_hooks_only() {
    use crate::tenants::{add_tenant, tenant_get};
    const ACME: &str = "acme-tenant-secret-1";
    const GLOBEX: &str = "globex-tenant-secret-1";
    let harness = Harness::start(Db::Sqlite, 2).await;
    add_tenant(&harness, "acme", ACME).await;
    add_tenant(&harness, "globex", GLOBEX).await;
    wait_for_refresh(&harness).await;
    let receiver = Receiver::start(Vec::new()).await;
    let hook = |name: &str, secret: &str, query: String| {
        let harness = &harness;
        let (name, secret) = (name.to_owned(), secret.to_owned());
        async move { tenant_get(harness, &name, &secret, "hooks/create", &query).await }
    };
    let acme_url = receiver.url("/acme?src=lb");
    let created = hook("acme", ACME, format!("callbackURL={}", enc(&acme_url))).await;
    created.assert_success();
    let acme_hook = created.field("hookID").unwrap();
    let again = hook("acme", ACME, format!("callbackURL={}", enc(&acme_url))).await;
    assert_eq!(again.message_key(), "duplicateWarning");
    assert_eq!(again.field("hookID").unwrap(), acme_hook);
    hook(
        "globex",
        GLOBEX,
        format!("callbackURL={}", enc(&receiver.url("/globex"))),
    )
    .await
    .assert_success();
    hook(
        "globex",
        GLOBEX,
        format!(
            "callbackURL={}&meetingID=g-room-2",
            enc(&receiver.url("/globex-room-2"))
        ),
    )
    .await
    .assert_success();
    let listed = tenant_get(&harness, "acme", ACME, "hooks/list", "").await;
    listed.assert_success();
    assert_eq!(listed.body.matches("<hook>").count(), 1, "{}", listed.body);
    assert!(listed.body.contains(&acme_hook));
    let listed = tenant_get(
        &harness,
        "globex",
        GLOBEX,
        "hooks/list",
        "meetingID=g-room-1",
    )
    .await;
    assert_eq!(
        listed.body.matches("<hook>").count(),
        1,
        "only the global one: {}",
        listed.body
    );
    // Switchboard's own hook reaches every server.
    eventually(
        "Switchboard's hook on every server",
        Duration::from_secs(10),
        async || {
            harness.sims.iter().all(|sim| {
                sim.hook_urls()
                    .iter()
                    .any(|url| url.contains("/switchboard/callbacks/webhook/"))
            })
        },
    )
    .await;
    for (tenant, secret, room) in [
        ("acme", ACME, "a-room"),
        ("globex", GLOBEX, "g-room-1"),
        ("globex", GLOBEX, "g-room-2"),
    ] {
        tenant_get(
            &harness,
            tenant,
            secret,
            "create",
            &format!("name=R&meetingID={room}&moderatorPW=mp"),
        )
        .await
        .assert_success();
        tenant_get(
            &harness,
            tenant,
            secret,
            "join",
            &format!("meetingID={room}&fullName=Ann&password=mp&redirect=false"),
        )
        .await
        .assert_success();
        tenant_get(
            &harness,
            tenant,
            secret,
            "end",
            &format!("meetingID={room}&password=mp"),
        )
        .await
        .assert_success();
    }
    let expected = |room: &str| {
        [
            "meeting-created",
            "user-joined",
            "user-left",
            "meeting-ended",
        ]
        .map(|id| (id.to_owned(), room.to_owned()))
    };
    eventually(
        "every event delivered",
        Duration::from_secs(10),
        async || {
            // `/globex` is a prefix of `/globex-room-2`: 8 + 4 there.
            webhook_events(&receiver, "/acme").len() >= 4
                && webhook_events(&receiver, "/globex").len() >= 12
                && webhook_events(&receiver, "/globex-room-2").len() >= 4
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut acme = webhook_events(&receiver, "/acme");
    acme.sort();
    let mut want = expected("a-room").to_vec();
    want.sort();
    assert_eq!(acme, want, "acme sees its own meeting only");
    let globex = webhook_events(&receiver, "/globex");
    let globex_rooms: std::collections::BTreeSet<String> =
        globex.iter().map(|(_, room)| room.clone()).collect();
    assert_eq!(
        globex_rooms.into_iter().collect::<Vec<_>>(),
        vec!["g-room-1".to_owned(), "g-room-2".to_owned()]
    );
    let mut scoped = webhook_events(&receiver, "/globex-room-2");
    scoped.sort();
    let mut want = expected("g-room-2").to_vec();
    want.sort();
    assert_eq!(scoped, want, "a meeting-scoped hook gets that meeting only");
    // Signed as bbb-webhooks signs, with the tenant's secret.
    let first = &receiver.seen_at("/acme")[0];
    let (path, checksum) = first.path_and_query.rsplit_once("&checksum=").unwrap();
    assert_eq!(path, "/acme?src=lb");
    let expected_sum = switchboard_domain::bbb::checksum::sign(
        ChecksumAlgorithm::Sha1,
        &acme_url,
        &first.body,
        ACME,
    );
    assert_eq!(checksum, expected_sum);
    // Destroyed by its tenant only.
    let other = tenant_get(
        &harness,
        "globex",
        GLOBEX,
        "hooks/destroy",
        &format!("hookID={acme_hook}"),
    )
    .await;
    assert_eq!(other.message_key(), "destroyMissingHook");
    let removed = tenant_get(
        &harness,
        "acme",
        ACME,
        "hooks/destroy",
        &format!("hookID={acme_hook}"),
    )
    .await;
    removed.assert_success();
    assert!(removed.body.contains("<removed>true</removed>"));
    let listed = tenant_get(&harness, "acme", ACME, "hooks/list", "").await;
    assert_eq!(listed.body.matches("<hook>").count(), 0);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_server_cannot_call_back_polling_still_owes_the_front_end_its_end_callbacks() {
    let harness = Harness::polled(Db::Sqlite, 1).await;
    // The server never calls Switchboard (a firewall between them).
    harness.sims[0].set_callbacks_enabled(false);
    let receiver = Receiver::start(Vec::new()).await;
    start_meeting(
        &harness,
        "room-7",
        &format!(
            "&meetingEndedURL={}&meta_endCallbackUrl={}",
            enc(&receiver.url("/ended")),
            enc(&receiver.url("/end?x=1"))
        ),
    )
    .await;
    harness.sims[0].end_meeting_directly("room-7");
    eventually("both end callbacks", Duration::from_secs(10), async || {
        receiver.seen().len() >= 2
    })
    .await;
    assert_eq!(receiver.seen_at("/ended")[0].path_and_query, "/ended");
    assert_eq!(
        receiver.seen_at("/end?")[0].path_and_query,
        "/end?x=1&recordingmarks=false&meetingID=room-7"
    );
    assert!(!running(&harness, "room-7").await);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_url_called_while_its_server_still_runs_the_meeting_ends_nothing() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let receiver = Receiver::start(Vec::new()).await;
    start_meeting(
        &harness,
        "room-8",
        &format!("&meetingEndedURL={}", enc(&receiver.url("/ended"))),
    )
    .await;
    let ours = given_param(&harness, "room-8", "meetingEndedURL");
    // Someone who read the URL (it shows in getMeetingInfo's metadata of
    // other calls) replays it: the server still runs the meeting.
    let status = harness
        .client
        .get(&ours)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 409);
    assert!(running(&harness, "room-8").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.seen().is_empty(), "nothing relayed");
    // Once the meeting really ended there, the same URL records the end.
    harness.sims[0].set_callbacks_enabled(false);
    harness.sims[0].end_meeting_directly("room-8");
    let status = harness
        .client
        .get(&ours)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 200);
    assert!(!running(&harness, "room-8").await);
    harness.stop().await;
}
