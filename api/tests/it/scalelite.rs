//! Switchboard as a drop-in for Scalelite, tried as Scalelite's users would:
//! its admin API with a Scalelite-style client (plain HTTP, Scalelite's
//! signing), dial-in through `/fsapi`, voice bridges unique across two
//! instances on PostgreSQL, Scalelite's switches, and `import-scalelite-env`.

use crate::support::*;
use serde_json::{Value, json};
use std::sync::Arc;
use switchboard_api::app::{self, AppState, Background};
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};

/// A Switchboard with `servers` simulators and Scalelite's admin API on.
async fn with_scalelite_api(db: Db, servers: usize) -> Harness {
    let tags = vec![None; servers];
    Harness::with_tags(db, &tags, |settings| settings.scalelite.admin_api = true).await
}

/// A Scalelite API client as an operator's script is written: the checksum
/// is `sha256(call + query + secret)`, GET with `?id=`, POST with JSON.
struct ScaleliteClient {
    base: String,
    client: reqwest::Client,
    algorithm: ChecksumAlgorithm,
    secret: String,
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }

    fn xml_key(&self) -> String {
        assert!(self.content_type.contains("xml"), "{}", self.content_type);
        let start = self.body.find("<messageKey>").expect("messageKey") + 12;
        let end = self.body.find("</messageKey>").unwrap();
        self.body[start..end].to_owned()
    }
}

impl ScaleliteClient {
    fn new(harness: &Harness) -> Self {
        Self {
            base: format!("http://{}/scalelite/api/", harness.app.addr),
            client: harness.client.clone(),
            algorithm: ChecksumAlgorithm::Sha256,
            secret: SECRET.to_owned(),
        }
    }

    fn url(&self, call: &str, query: &str) -> String {
        let checksum = sign(self.algorithm, call, query, &self.secret);
        let sep = if query.is_empty() { "" } else { "&" };
        format!("{}{call}?{query}{sep}checksum={checksum}", self.base)
    }

    async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Answer {
            status,
            content_type,
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&self, call: &str, query: &str) -> Answer {
        Self::read(self.client.get(self.url(call, query)).send().await.unwrap()).await
    }

    async fn post(&self, call: &str, body: Value) -> Answer {
        let response = self
            .client
            .post(self.url(call, ""))
            .json(&body)
            .send()
            .await
            .unwrap();
        Self::read(response).await
    }
}

fn actors(events: &[switchboard_app::records::StoredEvent]) -> Vec<String> {
    events.iter().map(|e| e.metadata.actor.clone()).collect()
}

#[tokio::test]
async fn scalelites_server_calls_answer_a_scalelite_script_with_its_shapes_and_messages() {
    for db in BOTH {
        let harness = with_scalelite_api(db, 1).await;
        let api = ScaleliteClient::new(&harness);
        let servers = api.get("getServers", "").await;
        assert_eq!(servers.status, 200, "{db:?}: {}", servers.body);
        let list = servers.json();
        let first = &list[0];
        assert_eq!(first["id"], harness.servers[0].to_string());
        assert!(
            first["url"]
                .as_str()
                .unwrap()
                .ends_with("/bigbluebutton/api")
        );
        assert_eq!(first["secret"], "sim-secret-0");
        assert_eq!(first["state"], "enabled");
        assert_eq!(first["load_multiplier"], "1.0");
        assert_eq!(first["tag"], "");
        for key in ["bbb_version", "load", "online"] {
            assert!(first.get(key).is_some(), "{key} missing");
        }

        let added = api
            .post(
                "addServer",
                json!({"server": {"url": "https://bbb9.example.org/bigbluebutton/api",
                    "secret": "supersecret", "load_multiplier": 1.5, "tag": "test-tag"}}),
            )
            .await;
        assert_eq!(added.status, 201, "{}", added.body);
        let added = added.json();
        assert_eq!(
            added["state"], "disabled",
            "Scalelite adds servers disabled"
        );
        assert_eq!(added["load_multiplier"], "1.5");
        assert_eq!(added["tag"], "test-tag");
        assert_eq!(added["load"], "unavailable");
        assert_eq!(added["url"], "https://bbb9.example.org/bigbluebutton/api");
        let id = added["id"].as_str().unwrap().to_owned();

        let info = api.get("getServerInfo", &format!("id={id}")).await;
        assert_eq!(info.status, 200);
        assert_eq!(info.json()["secret"], "supersecret");
        let missing = api.get("getServerInfo", "id=nonexistent-id").await;
        assert_eq!(missing.status, 404);
        assert_eq!(
            missing.json()["error"],
            "Couldn't find server with id=nonexistent-id"
        );

        let no_secret = api
            .post(
                "addServer",
                json!({"server": {"url": "https://x.example.org"}}),
            )
            .await;
        assert_eq!(no_secret.status, 400);
        assert_eq!(no_secret.json()["error"], "Server needs a URL and a secret");
        let no_object = api.post("addServer", json!({"url": "x"})).await;
        assert_eq!(no_object.xml_key(), "internalError");
        let no_update = api.post("updateServer", json!({"id": id})).await;
        assert_eq!(no_update.status, 400);
        assert_eq!(
            no_update.json()["error"],
            "param is missing or the value is empty: server"
        );
        // The signed query's id is the one acted on, not the body's.
        let signed_id = api
            .client
            .post(api.url("updateServer", &format!("id={id}")))
            .json(&json!({"id": "nonexistent-id", "server": {"tag": "from-query"}}))
            .send()
            .await
            .unwrap();
        let signed_id = ScaleliteClient::read(signed_id).await;
        assert_eq!(signed_id.status, 200, "{}", signed_id.body);
        assert_eq!(signed_id.json()["tag"], "from-query");

        let enabled = api
            .post(
                "updateServer",
                json!({"id": id, "server": {"state": "enable", "load_multiplier": "2", "tag": ""}}),
            )
            .await;
        assert_eq!(enabled.status, 200, "{}", enabled.body);
        let enabled = enabled.json();
        assert_eq!(enabled["state"], "enabled");
        assert_eq!(enabled["load_multiplier"], "2.0");
        assert_eq!(enabled["tag"], "");
        let invalid = api
            .post(
                "updateServer",
                json!({"id": id, "server": {"state": "invalid_state"}}),
            )
            .await;
        assert_eq!(invalid.status, 400);
        assert_eq!(
            invalid.json()["error"],
            "Invalid state parameter: invalid_state"
        );
        let zero = api
            .post(
                "updateServer",
                json!({"id": id, "server": {"load_multiplier": 0}}),
            )
            .await;
        assert_eq!(zero.status, 400);
        assert_eq!(
            zero.json()["error"],
            "Load-multiplier must be a non-zero number"
        );

        // panicServer keeping the state: the meeting is ended and forgotten.
        harness.create("panic-room").await.assert_success();
        let sim = &harness.servers[0].to_string();
        let panicked = api
            .post("panicServer", json!({"id": sim, "keep_state": true}))
            .await;
        assert_eq!(panicked.status, 200, "{}", panicked.body);
        assert_eq!(
            panicked.json()["success"],
            format!("Server id={sim} has been disabled and the meetings have been destroyed")
        );
        assert_eq!(harness.meetings_on_sims(), 0, "end was sent to the server");
        assert_eq!(
            api.get("getServerInfo", &format!("id={sim}")).await.json()["state"],
            "enabled"
        );
        let panicked = api.post("panicServer", json!({"id": sim})).await;
        assert_eq!(panicked.status, 200);
        assert_eq!(
            api.get("getServerInfo", &format!("id={sim}")).await.json()["state"],
            "disabled"
        );

        let deleted = api.post("deleteServer", json!({"id": id})).await;
        assert_eq!(deleted.status, 200);
        assert_eq!(
            deleted.json()["success"],
            format!("Server id={id} was destroyed")
        );
        assert_eq!(
            api.get("getServerInfo", &format!("id={id}")).await.status,
            404
        );
        let gone = api
            .post("deleteServer", json!({"id": "nonexistent-id"}))
            .await;
        assert_eq!(gone.status, 404);

        // Every change is an event recorded as the Scalelite API's.
        let events = harness.state().db.events_after(0, 10_000).await.unwrap();
        let by_api = actors(&events)
            .iter()
            .filter(|actor| *actor == "scalelite-api")
            .count();
        assert!(by_api >= 6, "{db:?}: {:?}", actors(&events));
        harness.stop().await;
    }
}

#[tokio::test]
async fn scalelites_admin_api_is_off_unless_switched_on() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let answer = ScaleliteClient::new(&harness).get("getServers", "").await;
    assert_eq!(answer.xml_key(), "unsupportedRequest");
    assert!(!answer.body.contains("sim-secret"));
    harness.stop().await;
}

#[tokio::test]
async fn scalelites_signing_content_type_and_methods_are_enforced_as_scalelite_does() {
    let harness = with_scalelite_api(Db::Sqlite, 1).await;
    let mut api = ScaleliteClient::new(&harness);
    api.algorithm = ChecksumAlgorithm::Sha1;
    assert_eq!(
        api.get("getServers", "").await.status,
        200,
        "SHA-1 is accepted"
    );
    api.secret = "wrong-secret-0123456".into();
    let refused = api.get("getServers", "").await;
    assert_eq!(refused.status, 200);
    assert_eq!(refused.xml_key(), "checksumError");
    let unsigned = harness
        .client
        .get(format!("{}getServers", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ScaleliteClient::read(unsigned).await.xml_key(),
        "checksumError"
    );
    // A checksum over another call does not pass.
    api.secret = SECRET.into();
    let other = api.url("getTenants", "");
    let swapped = other.replace("getTenants?", "getServers?");
    let swapped = harness.client.get(swapped).send().await.unwrap();
    assert_eq!(
        ScaleliteClient::read(swapped).await.xml_key(),
        "checksumError"
    );
    let form = harness
        .client
        .post(api.url("addServer", ""))
        .form(&[
            ("server[url]", "https://x.example.org"),
            ("server[secret]", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        ScaleliteClient::read(form).await.xml_key(),
        "unsupportedContentType"
    );
    let wrong_method = harness
        .client
        .get(api.url("addServer", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ScaleliteClient::read(wrong_method).await.xml_key(),
        "unsupportedRequest"
    );
    let unknown = api.get("getEverything", "").await;
    assert_eq!(unknown.xml_key(), "unsupportedRequest");
    // A body larger than max_request_bytes is refused, and an unsigned one
    // is never read.
    let huge = json!({"server": {"url": "x".repeat(300 * 1024), "secret": "s"}});
    assert_eq!(api.post("addServer", huge.clone()).await.status, 413);
    let unsigned = harness
        .client
        .post(format!("{}addServer", api.base))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ScaleliteClient::read(unsigned).await.xml_key(),
        "checksumError"
    );
    harness.stop().await;
}

#[tokio::test]
async fn scalelites_tenant_calls_manage_tenants_whose_front_ends_then_sign_with_the_new_secrets() {
    let harness = with_scalelite_api(Db::Postgres, 1).await;
    let api = ScaleliteClient::new(&harness);
    let none = api.get("getTenants", "").await;
    assert_eq!(none.status, 200);
    assert_eq!(none.json(), json!({"message": "No tenants exist"}));
    let incomplete = api
        .post("addTenant", json!({"tenant": {"name": "school"}}))
        .await;
    assert_eq!(incomplete.status, 400);
    assert_eq!(
        incomplete.json()["message"],
        "Error: both name and secrets are required to create a Tenant"
    );
    let added = api
        .post(
            "addTenant",
            json!({"tenant": {"name": "school", "secrets": "school-secret-0001:school-secret-0002"}}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let tenant = added.json()["tenant"].clone();
    let id = tenant["id"].as_str().unwrap().to_owned();
    assert_eq!(tenant["name"], "school");
    assert_eq!(tenant["secrets"], "school-secret-0001:school-secret-0002");
    let list = api.get("getTenants", "").await.json();
    assert_eq!(list[0]["id"], id.as_str());
    let info = api.get("getTenantInfo", &format!("id={id}")).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["name"], "school");
    let missing = api.get("getTenantInfo", "id=nonexistent-id").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["error"],
        "Couldn't find Tenant with id=nonexistent-id"
    );

    let updated = api
        .post(
            "updateTenant",
            json!({"id": id, "tenant": {"secrets": "school-secret-0003"}}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()["tenant"]["secrets"], "school-secret-0003");
    // The tenant's front-end signs with the new secret at once, not the old.
    let base = format!("http://{}/t/school/bigbluebutton/api/", harness.app.addr);
    let query = "meetingID=t-room&name=t-room";
    for (secret, key) in [
        ("school-secret-0003", "SUCCESS"),
        ("school-secret-0001", "FAILED"),
    ] {
        let url = signed_url(&base, "create", query, secret, ChecksumAlgorithm::Sha256);
        let reply = harness.get_raw(&url).await;
        assert_eq!(reply.returncode(), key, "{secret}: {}", reply.body);
    }
    let renamed = api
        .post(
            "updateTenant",
            json!({"id": id, "tenant": {"name": "college"}}),
        )
        .await;
    assert_eq!(renamed.status, 422);
    assert!(renamed.json()["error"].as_str().unwrap().contains("rename"));

    let deleted = api.post("deleteTenant", json!({"id": id})).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(
        deleted.json()["success"],
        format!("Tenant id={id} was destroyed")
    );
    assert_eq!(
        api.get("getTenantInfo", &format!("id={id}")).await.status,
        404
    );
    harness.stop().await;
}

/// The voiceBridge getMeetingInfo shows for a meeting.
async fn voice_bridge_of(harness: &Harness, meeting_id: &str) -> String {
    let info = harness
        .get("getMeetingInfo", &format!("meetingID={meeting_id}"))
        .await;
    info.field("voiceBridge").expect("voiceBridge")
}

async fn fsapi(harness: &Harness, password: Option<&str>, form: &[(&str, &str)]) -> (u16, String) {
    let mut request = harness
        .client
        .post(format!("http://{}/fsapi", harness.app.addr))
        .form(form);
    if let Some(password) = password {
        request = request.basic_auth("fsapi", Some(password));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_dial_in_caller_is_bridged_to_the_server_running_the_meeting_of_the_pin() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    // A second server reached by another host name, so the bridge target
    // tells the two apart.
    let sim = bbb_simulator::Simulator::start(bbb_simulator::SimulatorConfig {
        secret: "sim-secret-1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let store = harness.state().store.clone();
    let id = switchboard_domain::ids::ServerId::new();
    let command = switchboard_domain::server::ServerCommand::Add {
        id,
        settings: switchboard_domain::server::ServerSettings {
            url: sim.url().replace("127.0.0.1", "localhost"),
            secret: "sim-secret-1".into(),
            tag: None,
            load_multiplier: 1.0,
            checksum: None,
            metrics_url: None,
        },
        enabled: true,
    };
    use switchboard_store::test_support::StoreCommands as _;
    store
        .execute_server(
            id,
            &command,
            &switchboard_domain::events::EventMetadata::actor("test"),
        )
        .await
        .unwrap();
    wait_for_refresh(&harness).await;
    harness.create("first-room").await.assert_success();
    harness.create("second-room").await.assert_success();
    let pins = [
        voice_bridge_of(&harness, "first-room").await,
        voice_bridge_of(&harness, "second-room").await,
    ];
    assert_ne!(pins[0], pins[1]);
    let call = |pin: &'static str| {
        vec![
            ("section", "dialplan"),
            ("Caller-Destination-Number", "6135550000"),
            ("Caller-Caller-ID-Name", "6135551234"),
            ("variable_pin", pin),
        ]
    };
    let (status, _) = fsapi(&harness, None, &call("")).await;
    assert_eq!(status, 401, "the secret is the default password");
    let (status, _) = fsapi(&harness, Some("wrong"), &call("")).await;
    assert_eq!(status, 401);
    let (status, prompt) = fsapi(&harness, Some(SECRET), &call("")).await;
    assert_eq!(status, 200);
    assert!(prompt.contains("play_and_get_digits"), "{prompt}");
    assert!(prompt.contains(r#"expression="^6135550000$""#), "{prompt}");
    let mut hosts = Vec::new();
    for (meeting, pin) in ["first-room", "second-room"].iter().zip(&pins) {
        let pin: &'static str = Box::leak(pin.clone().into_boxed_str());
        let (_, bridge) = fsapi(&harness, Some(SECRET), &call(pin)).await;
        assert!(
            bridge.contains(&format!("meeting_id={meeting}")),
            "{bridge}"
        );
        assert!(
            bridge.contains("effective_caller_id_name=613555XXXX"),
            "{bridge}"
        );
        let host = bridge
            .split(&format!("sofia/external/{pin}@"))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no bridge in {bridge}"))
            .to_owned();
        // A breakout room's PIN (one more digit) reaches its parent.
        let breakout: &'static str = Box::leak(format!("{pin}1").into_boxed_str());
        let (_, via_breakout) = fsapi(&harness, Some(SECRET), &call(breakout)).await;
        assert!(
            via_breakout.contains(&format!("meeting_id={meeting}")),
            "{via_breakout}"
        );
        hosts.push(host);
    }
    let mut sorted = hosts.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["127.0.0.1", "localhost"],
        "each call went to its meeting's server"
    );
    // The simulator that runs the first meeting is the one behind its host.
    let first_on_harness_sim = harness.sim_with("first-room").is_some();
    assert_eq!(hosts[0] == "127.0.0.1", first_on_harness_sim);

    let (_, unknown) = fsapi(&harness, Some(SECRET), &call("12345")).await;
    assert!(unknown.contains("reprompt_for_pin"), "{unknown}");
    let (_, rejected) = fsapi(&harness, Some(SECRET), &[("section", "directory")]).await;
    assert!(
        rejected.contains(r#"<result status="not found"/>"#),
        "{rejected}"
    );
    // An ended meeting's PIN routes nowhere.
    harness
        .get("end", "meetingID=first-room")
        .await
        .assert_success();
    let pin: &'static str = Box::leak(pins[0].clone().into_boxed_str());
    let (_, after_end) = fsapi(&harness, Some(SECRET), &call(pin)).await;
    assert!(after_end.contains("reprompt_for_pin"), "{after_end}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_postgres_never_hand_out_one_voice_bridge_twice() {
    let a = Harness::start(Db::Postgres, 2).await;
    let store = app::open_store(&settings(&a.database_url)).await.unwrap();
    let state = AppState::build(settings(&a.database_url), store, vec![SECRET.to_owned()])
        .await
        .unwrap();
    let b = app::start(
        state,
        "127.0.0.1:0".parse().unwrap(),
        Background { health: false },
    )
    .await
    .unwrap();
    let apis = Arc::new([a.app.api_url(), b.api_url()]);
    let client = a.client.clone();
    let create = |n: usize, query: String| {
        let apis = apis.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let url = signed_url(
                &apis[n % 2],
                "create",
                &query,
                SECRET,
                ChecksumAlgorithm::Sha1,
            );
            Reply::read(client.get(url).send().await.unwrap()).await
        })
    };
    // Pairs of creates of different meetings asking for one number: one
    // wins, the other is refused with BBB's error.
    let mut pairs = Vec::new();
    for pair in 0..10 {
        let number = 72_000 + pair;
        for side in 0..2 {
            let query = format!("meetingID=pair-{pair}-{side}&name=p&voiceBridge={number}");
            pairs.push(create(side, query));
        }
    }
    let mut won = 0;
    for (n, task) in pairs.into_iter().enumerate() {
        let reply = task.await.unwrap();
        if reply.returncode() == "SUCCESS" {
            won += 1;
        } else {
            assert_eq!(
                reply.message_key(),
                "nonUniqueVoiceBridge",
                "{n}: {}",
                reply.body
            );
            assert!(
                reply
                    .body
                    .contains("The selected voice bridge is already in use.")
            );
        }
    }
    assert_eq!(won, 10, "exactly one create of each pair won");
    // Creates without a number all get different ones.
    let tasks: Vec<_> = (0..40)
        .map(|n| create(n, format!("meetingID=free-{n}&name=f")))
        .collect();
    let mut numbers = std::collections::HashSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        reply.assert_success();
        let number = reply.field("voiceBridge").unwrap();
        assert_eq!(number.len(), 5);
        assert!(numbers.insert(number.clone()), "{number} given twice");
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn scalelites_switches_cap_durations_hide_meetings_filter_recordings_and_fill_passwords() {
    let harness = Harness::with_tags(Db::Sqlite, &[None], |settings| {
        settings.meetings.get_meetings = false;
        settings.meetings.get_recordings_filtered = true;
        settings.policy.create = vec![
            switchboard_domain::tenant::ParamRule::Max {
                param: "duration".into(),
                value: 60,
            },
            switchboard_domain::tenant::ParamRule::Block {
                param: "logo".into(),
            },
        ];
    })
    .await;
    harness
        .get(
            "create",
            "meetingID=capped&name=c&duration=600&logo=https%3A%2F%2Fx.example%2Fl.png",
        )
        .await
        .assert_success();
    let info = harness.get("getMeetingInfo", "meetingID=capped").await;
    assert_eq!(
        info.field("duration").as_deref(),
        Some("60"),
        "{}",
        info.body
    );
    let moderator = info.field("moderatorPW").unwrap();
    let attendee = info.field("attendeePW").unwrap();
    assert_eq!(moderator.len(), 8);
    assert_ne!(moderator, attendee);
    let sim = &harness.sims[harness.sim_with("capped").unwrap()];
    let sent = sim.create_params("capped").unwrap();
    assert!(
        !sent.iter().any(|(key, _)| key == "logo"),
        "a blocked parameter never reaches the server"
    );
    let meetings = harness.get("getMeetings", "").await;
    meetings.assert_success();
    assert_eq!(meetings.message_key(), "noMeetings");
    harness
        .get("getRecordings", "")
        .await
        .assert_failed("missingParameters");
    harness
        .get("getRecordings", "meetingID=capped")
        .await
        .assert_success();
    harness.stop().await;
}

#[test]
fn a_scalelite_env_becomes_a_config_switchboard_starts_with() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        "LOADBALANCER_SECRET=0123456789abcdef0123\nURL_HOST=sl.example.org\n\
         MAX_MEETING_DURATION=120\nCREATE_EXCLUDE_PARAMS=logo,record\n\
         GET_MEETINGS_API_DISABLED=true\nVOICE_BRIDGE_LEN=9\nFSAPI_PASSWORD=dialin-pass\n\
         DATABASE_URL=postgres://scalelite@db/scalelite\nWEIRD_THING=1\n",
    )
    .unwrap();
    let out = dir.path().join("switchboard.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["import-scalelite-env"])
        .arg(&env)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(stderr.contains("WEIRD_THING"), "{stderr}");
    assert!(
        !stderr.contains("0123456789abcdef0123"),
        "secrets never on stderr"
    );
    let settings = switchboard_api::config::Settings::load(
        Some(&out),
        &switchboard_api::config::ProcessEnv,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(settings.secret.as_deref(), Some("0123456789abcdef0123"));
    assert_eq!(settings.meetings.voice_bridge_length, 9);
    assert!(!settings.meetings.get_meetings);
    assert!(
        settings.scalelite.admin_api,
        "Scalelite's API is on after an import"
    );
    assert_eq!(settings.fsapi.password.as_deref(), Some("dialin-pass"));
    assert_eq!(settings.fsapi.max_duration_minutes, 120);
    assert!(
        settings
            .policy
            .create
            .contains(&switchboard_domain::tenant::ParamRule::Max {
                param: "duration".into(),
                value: 120,
            })
    );
    assert!(
        settings
            .policy
            .create
            .contains(&switchboard_domain::tenant::ParamRule::Block {
                param: "record".into(),
            })
    );
}

#[tokio::test]
async fn a_meeting_adopted_from_a_server_keeps_its_voice_bridge_and_dial_in_finds_it() {
    let harness = Harness::polled_with(Db::Sqlite, 1, |settings| {
        settings.health.adopt_unknown = true;
    })
    .await;
    harness.sims[0].create_meeting_directly("direct", "Direct");
    let tenant = switchboard_domain::ids::TenantId::default_tenant();
    let id = switchboard_domain::ids::MeetingId::parse("direct").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !harness
        .state()
        .db
        .meeting(&tenant, &id)
        .await
        .unwrap()
        .is_some_and(|meeting| meeting.running)
    {
        assert!(std::time::Instant::now() < deadline, "not adopted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let pin = voice_bridge_of(&harness, "direct").await;
    let form = [
        ("section", "dialplan"),
        ("Caller-Destination-Number", "100"),
        ("variable_pin", pin.as_str()),
    ];
    // The number is held in the cycle that adopts the meeting, just after
    // the meeting is recorded.
    let bridge = loop {
        let (_, bridge) = fsapi(&harness, Some(SECRET), &form).await;
        if bridge.contains("meeting_id=direct") || std::time::Instant::now() > deadline {
            break bridge;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(bridge.contains("meeting_id=direct"), "{bridge}");
    harness
        .get(
            "create",
            &format!("meetingID=newcomer&name=n&voiceBridge={pin}"),
        )
        .await
        .assert_failed("nonUniqueVoiceBridge");
    harness.stop().await;
}
