//! The admin API over real HTTP: tokens and scopes, servers, meetings, the
//! event log, history, status, and problem documents for bad input.

use crate::support::*;
use serde_json::{Value, json};
use switchboard_api::admin::model::{NewToken, Scope};
use switchboard_app::admin::Principal;
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

pub struct Admin<'a> {
    harness: &'a Harness,
    pub token: String,
}

impl Admin<'_> {
    fn url(&self, path: &str) -> String {
        format!("http://{}/api/v1{path}", self.harness.app.addr)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, String, Value) {
        let response = request.bearer_auth(&self.token).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, content_type, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.send(self.harness.client.get(self.url(path))).await;
        (status, body)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self
            .send(self.harness.client.post(self.url(path)).json(&body))
            .await;
        (status, body)
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self
            .send(self.harness.client.patch(self.url(path)).json(&body))
            .await;
        (status, body)
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.send(self.harness.client.delete(self.url(path))).await;
        (status, body)
    }
}

async fn token(harness: &Harness, name: &str, scope: Scope) -> String {
    let principal = Principal::admin("test-setup".into());
    harness
        .state()
        .admin
        .create_token(
            NewToken {
                name: name.into(),
                scope,
                server: None,
            },
            &principal,
        )
        .await
        .unwrap()
        .token
}

pub async fn admin(harness: &Harness) -> Admin<'_> {
    Admin {
        harness,
        token: token(harness, "ops-admin", Scope::Admin).await,
    }
}

fn assert_problem(status: u16, body: &Value, expected: u16, detail: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
    let text = body["detail"].as_str().unwrap_or_default();
    assert!(
        text.contains(detail),
        "detail {text:?} should mention {detail:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_scopes_guard_the_api() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let admin = admin(&harness).await;
    let reader = Admin {
        harness: &harness,
        token: token(&harness, "dashboard", Scope::Read).await,
    };
    let nobody = Admin {
        harness: &harness,
        token: "sbt_not-a-token".into(),
    };
    let (status, content_type, body) = nobody
        .send(harness.client.get(nobody.url("/servers")))
        .await;
    assert_eq!(status, 401);
    assert!(
        content_type.starts_with("application/problem+json"),
        "{content_type}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("tokens create"),
        "{body}"
    );
    let anonymous = harness
        .client
        .get(admin.url("/servers"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(reader.get("/servers").await.0, 200);
    let (status, body) = reader
        .post(
            "/servers",
            json!({"url": "http://x/bigbluebutton/", "secret": "s"}),
        )
        .await;
    assert_problem(status, &body, 403, "read scope");
    assert_eq!(admin.get("/tokens").await.1.as_array().unwrap().len(), 2);
    assert_eq!(admin.delete("/tokens/dashboard").await.0, 204);
    assert_eq!(reader.get("/servers").await.0, 401, "revoked");
    let (status, body) = admin.delete("/tokens/dashboard").await;
    assert_problem(status, &body, 404, "dashboard");
    let (status, body) = admin
        .post("/tokens", json!({"name": "ci", "scope": "read"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["token"].as_str().unwrap().starts_with("sbt_"));
    let stored = harness.store().tokens().await.unwrap();
    assert!(
        stored.iter().all(|t| !t.hash.contains("sbt_")),
        "only hashes are stored"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_lifecycle_through_the_api() {
    for db in BOTH {
        let harness = Harness::start(db, 1).await;
        let admin = admin(&harness).await;
        let sim = bbb_simulator::Simulator::start(bbb_simulator::SimulatorConfig::default())
            .await
            .unwrap();
        let (status, server) = admin
            .post(
                "/servers",
                json!({"url": sim.url(), "secret": sim.secret(), "tag": "big"}),
            )
            .await;
        assert_eq!(status, 201, "{db:?}: {server}");
        assert_eq!(server["state"], "disabled");
        assert!(server.get("secret").is_none(), "secrets never leave");
        let id = server["id"].as_str().unwrap().to_owned();
        let (status, server) = admin
            .post(&format!("/servers/{id}/enable"), json!({}))
            .await;
        assert_eq!((status, server["state"].as_str()), (200, Some("enabled")));
        let (status, server) = admin
            .patch(
                &format!("/servers/{id}"),
                json!({"load_multiplier": 2.5, "tag": "", "checksum": "sha1"}),
            )
            .await;
        assert_eq!(status, 200, "{server}");
        assert_eq!(server["load_multiplier"], 2.5);
        assert_eq!(server["tag"], Value::Null);
        assert_eq!(server["checksum"], "sha1");
        assert_eq!(
            admin.get(&format!("/servers/{id}")).await.1["id"],
            id.as_str()
        );
        assert_eq!(admin.get("/servers").await.1.as_array().unwrap().len(), 2);

        // The change is used by the facade: creates may land on the new server.
        let events = harness
            .store()
            .stream_events(&format!("server:{id}").parse().unwrap())
            .await
            .unwrap();
        assert!(
            events.iter().all(|e| e.metadata.actor == "ops-admin"),
            "token name is the actor"
        );

        // Cordon with a meeting: stays cordoned until the meeting ends.
        harness.create("cordon-me").await.assert_success();
        let host = harness.servers[0].to_string();
        let holder = if harness.sim_with("cordon-me") == Some(0) {
            host.clone()
        } else {
            id.clone()
        };
        let (_, server) = admin
            .post(&format!("/servers/{holder}/cordon"), json!({}))
            .await;
        assert_eq!(server["state"], "cordoned");
        harness
            .get("end", "meetingID=cordon-me")
            .await
            .assert_success();
        let (_, server) = admin.get(&format!("/servers/{holder}")).await;
        assert_eq!(
            server["state"], "disabled",
            "{db:?}: drained cordoned server is disabled"
        );

        let (status, _) = admin.delete(&format!("/servers/{id}")).await;
        assert_eq!(status, 204);
        let (status, body) = admin.get(&format!("/servers/{id}")).await;
        assert_problem(status, &body, 404, &id);
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_precise_problems_and_changes_nothing() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let admin = admin(&harness).await;
    let before = harness.store().event_count().await.unwrap();
    let cases = [
        (
            json!({"url": "ftp://x", "secret": "s"}),
            "invalid server URL",
        ),
        (
            json!({"url": "http://x/bigbluebutton/", "secret": ""}),
            "secret must not be empty",
        ),
        (
            json!({"url": "http://x/bigbluebutton/", "secret": "s", "load_multiplier": -1}),
            "load multiplier",
        ),
        (
            json!({"url": "http://x/bigbluebutton/", "secret": "s", "load_multiplier": 0}),
            "load multiplier",
        ),
        (
            json!({"url": "http://x/bigbluebutton/", "secret": "s", "checksum": "md5"}),
            "md5",
        ),
        (json!({"secret": "s"}), "NewServer"),
    ];
    for (body, detail) in cases {
        let (status, answer) = admin.post("/servers", body).await;
        assert_problem(status, &answer, 400, detail);
    }
    let raw = harness
        .client
        .post(admin.url("/servers"))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let (status, body) = admin.get("/servers/not-a-uuid").await;
    assert_problem(status, &body, 400, "not a server id");
    let (status, body) = admin
        .post(
            "/servers/0192f0c4-7b1e-7cc0-8000-000000000001/enable",
            json!({}),
        )
        .await;
    assert_problem(status, &body, 404, "no such server");
    let (status, body) = admin.get("/events?limit=0").await;
    assert_problem(status, &body, 400, "limit");
    let (status, body) = admin.get("/meetings/default/a,b").await;
    assert_problem(status, &body, 400, "meetingID");
    let (status, body) = admin
        .post("/meetings/default/nothing-here/end", json!({}))
        .await;
    assert_problem(status, &body, 404, "nothing-here");
    assert_eq!(
        harness.store().event_count().await.unwrap(),
        before,
        "nothing half-applied"
    );
    // Removing a server with a running meeting needs force.
    harness.create("busy").await.assert_success();
    let id = harness.servers[0];
    let (status, body) = admin.delete(&format!("/servers/{id}")).await;
    assert_problem(status, &body, 409, "force");
    assert_eq!(
        admin.delete(&format!("/servers/{id}?force=true")).await.0,
        204
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_panic_events_history_and_status() {
    let harness = Harness::start(Db::Postgres, 2).await;
    let admin = admin(&harness).await;
    let before_create = chrono::Utc::now();
    for n in 0..4 {
        harness.create(&format!("m-{n}")).await.assert_success();
    }
    let (_, meetings) = admin.get("/meetings?state=running").await;
    assert_eq!(meetings.as_array().unwrap().len(), 4);
    let (_, one) = admin.get("/meetings/default/m-0").await;
    assert_eq!(one["running"], true);
    let (status, ended) = admin.post("/meetings/default/m-0/end", json!({})).await;
    assert_eq!((status, &ended["running"]), (200, &json!(false)));
    assert_eq!(harness.sim_with("m-0"), None, "ended on its server");
    let (_, ended_list) = admin.get("/meetings?state=ended").await;
    assert_eq!(ended_list.as_array().unwrap().len(), 1);

    // Panic server 0: its meetings are forgotten and the next create goes elsewhere.
    let panicked = harness.servers[0].to_string();
    let on_panicked: Vec<String> = (1..4)
        .map(|n| format!("m-{n}"))
        .filter(|m| harness.sim_with(m) == Some(0))
        .collect();
    let (status, report) = admin
        .post(
            &format!("/servers/{panicked}/panic"),
            json!({"end_meetings": true}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["server"]["state"], "disabled");
    assert_eq!(
        report["forgotten"].as_array().unwrap().len(),
        on_panicked.len()
    );
    assert_eq!(report["ended"], on_panicked.len());
    let (_, on_server) = admin
        .get(&format!("/meetings?server={panicked}&state=running"))
        .await;
    assert!(on_server.as_array().unwrap().is_empty());
    if let Some(moved) = on_panicked.first() {
        harness.create(moved).await.assert_success();
        assert_eq!(harness.sim_with(moved), Some(1), "re-placed elsewhere");
    }

    // The log: filter by actor and type, paginate by position.
    let (_, page) = admin.get("/events?actor=ops-admin&limit=2").await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["actor"] == "ops-admin"));
    let after = page["next_after"].as_i64().unwrap();
    let (_, next) = admin
        .get(&format!("/events?actor=ops-admin&after={after}&limit=100"))
        .await;
    assert!(
        next["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["position"].as_i64().unwrap() > after)
    );
    let (_, disabled) = admin.get("/events?type=ServerDisabled").await;
    assert_eq!(
        disabled["events"][0]["actor"], "ops-admin",
        "who disabled the server"
    );
    let (_, added) = admin.get("/events?type=ServerAdded").await;
    assert_eq!(
        added["events"][0]["payload"]["settings"]["secret"], "***",
        "secrets redacted"
    );

    // History: before the creates nothing ran; now server 0 is disabled.
    let at = before_create.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (status, then) = admin.get(&format!("/history?at={}", enc(&at))).await;
    assert_eq!(status, 200, "{then}");
    assert!(then["meetings"].as_array().unwrap().is_empty(), "{then}");
    assert!(
        then["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "enabled")
    );
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (_, later) = admin.get(&format!("/history?at={}", enc(&now))).await;
    let server0 = later["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == panicked.as_str())
        .unwrap()
        .clone();
    assert_eq!(server0["state"], "disabled");

    let (status, status_body) = admin.get("/status").await;
    assert_eq!(status, 200);
    assert_eq!(status_body["servers"].as_array().unwrap().len(), 2);
    assert_eq!(
        status_body["meetings"],
        status_body["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["meetings"].as_u64().unwrap())
            .sum::<u64>()
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_and_spec_are_served() {
    let harness = Harness::start(Db::Sqlite, 0).await;
    let base = format!("http://{}", harness.app.addr);
    let ui = harness
        .client
        .get(format!("{base}/api/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status().as_u16(), 200);
    assert!(ui.text().await.unwrap().to_lowercase().contains("swagger"));
    let spec = harness
        .client
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status().as_u16(), 200);
    let spec: Value = spec.json().await.unwrap();
    assert!(spec["paths"]["/servers"].is_object());
    harness.stop().await;
}

/// Issue 15.B3 (found by schemathesis): a POST without `Content-Type` is
/// read as JSON, a body in another media type gets a documented 415
/// problem, a number or boolean where the spec says string is refused, and
/// a 405 says which methods are allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_answers_as_its_spec_says() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let admin = admin(&harness).await;
    let id = harness.servers[0].to_string();
    let request = |method: reqwest::Method, path: &str| {
        harness
            .client
            .request(method, admin.url(path))
            .bearer_auth(&admin.token)
    };
    let no_type = request(reqwest::Method::POST, &format!("/servers/{id}/cordon"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        no_type.status().as_u16(),
        200,
        "{}",
        no_type.text().await.unwrap()
    );
    let text = request(reqwest::Method::POST, "/tokens")
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status().as_u16(), 415);
    assert_eq!(
        text.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let (status, body) = admin
        .post("/tokens", json!({"name": false, "scope": "read"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("/name"), "{body}");
    let (_, tokens) = admin.get("/tokens").await;
    assert!(!tokens.to_string().contains("\"false\""), "{tokens}");
    let wrong = request(reqwest::Method::PUT, "/servers")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 405);
    assert_eq!(
        wrong.headers()["allow"].to_str().unwrap(),
        "GET, HEAD, POST"
    );
    harness.stop().await;
}
