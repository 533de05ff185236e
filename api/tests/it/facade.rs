//! The BBB facade over real HTTP against simulated servers, on SQLite and
//! PostgreSQL.

use crate::support::*;
use bbb_simulator::FailureMode;
use std::time::{Duration, Instant};
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::server::ServerCommand;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_answers_without_checksum() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    for path in ["bigbluebutton/api", "bigbluebutton/api/"] {
        let url = format!("http://{}/{path}", harness.app.addr);
        let reply = harness.get_raw(&url).await;
        reply.assert_success();
        assert_eq!(reply.field("version").as_deref(), Some("2.0"));
        assert!(reply.field("apiVersion").is_some() && reply.field("bbbVersion").is_some());
    }
    harness.stop().await;
}

/// `/bigbluebutton/api/{call}` is answered before the router (issue 22);
/// what the router answered before still answers the same: a call name
/// written with percent escapes, the hooks' paths, a path beyond a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_answered_before_the_router_answer_as_the_router_did() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    harness.create("routed").await.assert_success();
    let plain = harness.get("isMeetingRunning", "meetingID=routed").await;
    plain.assert_success();
    assert!(plain.field("running").is_some(), "{}", plain.body);
    // The router decodes the call's path segment.
    let escaped = harness
        .url("isMeetingRunning", "meetingID=routed")
        .replace("/api/isMeetingRunning", "/api/%69sMeetingRunning");
    let reply = harness.get_raw(&escaped).await;
    assert_eq!(reply.body, plain.body);
    let hooks = harness.get("hooks/list", "").await;
    hooks.assert_success();
    let beyond = harness
        .url("isMeetingRunning", "meetingID=routed")
        .replace("/api/isMeetingRunning", "/api/isMeetingRunning/more");
    assert_eq!(harness.get_raw(&beyond).await.status, 404);
    let unknown = harness.get("noSuchCall", "meetingID=routed").await;
    assert_eq!(
        unknown.field("messageKey").as_deref(),
        Some("unsupportedRequest")
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_join_end_round_trip_on_both_databases() {
    for db in BOTH {
        let harness = Harness::start(db, 2).await;
        let created = harness.create("room-1").await;
        created.assert_success();
        assert!(created.field("moderatorPW").is_some() && created.field("attendeePW").is_some());
        assert_eq!(harness.meetings_on_sims(), 1, "{db:?}");

        // Join: every parameter forwarded intact and re-signed for the server.
        let query = format!(
            "meetingID=room-1&fullName={}&role=MODERATOR&userdata-bbb_hide_nav_bar=true&meta_x={}",
            enc("Jürgen Müller & Co"),
            enc("ü/ö?=&")
        );
        let join = harness.get("join", &query).await;
        assert_eq!(join.status, 302, "{db:?}: {}", join.body);
        let location = join.location.clone().unwrap();
        let sim = harness.sim_with("room-1").unwrap();
        assert!(
            location.starts_with(&format!("{}api/join?", harness.sims[sim].url())),
            "{location}"
        );
        assert!(
            location.contains(&query),
            "parameters forwarded byte for byte: {location}"
        );
        // The simulated server accepts its checksum and adds the attendee.
        let followed = harness.client.get(&location).send().await.unwrap();
        assert_eq!(
            followed.status().as_u16(),
            302,
            "server accepted the re-signed join"
        );
        assert_eq!(harness.sims[sim].attendee_count("room-1"), Some(1));
        let params = harness.sims[sim].last_join_params("room-1").unwrap();
        assert!(params.contains(&("fullName".into(), "Jürgen Müller & Co".into())));
        assert!(params.contains(&("userdata-bbb_hide_nav_bar".into(), "true".into())));

        harness
            .get("isMeetingRunning", "meetingID=room-1")
            .await
            .assert_success();
        let info = harness.get("getMeetingInfo", "meetingID=room-1").await;
        info.assert_success();
        assert_eq!(info.field("participantCount").as_deref(), Some("1"));

        let end = harness.get("end", "meetingID=room-1").await;
        end.assert_success();
        assert_eq!(end.message_key(), "sentEndMeetingRequest");
        assert_eq!(harness.meetings_on_sims(), 0);
        harness
            .get("getMeetingInfo", "meetingID=room-1")
            .await
            .assert_failed("notFound");
        harness
            .get("join", "meetingID=room-1&fullName=A&role=VIEWER")
            .await
            .assert_failed("notFound");
        let running = harness.get("isMeetingRunning", "meetingID=room-1").await;
        running.assert_success();
        assert_eq!(running.field("running").as_deref(), Some("false"));
        let record = harness
            .store()
            .meetings()
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.meeting_id.as_str() == "room-1")
            .unwrap();
        assert!(!record.running, "{db:?}: end recorded");
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_redirect_false_relays_the_servers_xml() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    harness.create("room-x").await.assert_success();
    let reply = harness
        .get(
            "join",
            "meetingID=room-x&fullName=Bob&role=VIEWER&redirect=false",
        )
        .await;
    reply.assert_success();
    assert!(reply.field("session_token").is_some() && reply.field("url").is_some());
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_follow_bbb_rules() {
    let harness = Harness::with_tags(Db::Sqlite, &[None], |settings| {
        settings.secrets = vec!["previous-secret".into()];
    })
    .await;
    let api = harness.app.api_url();
    for algorithm in ChecksumAlgorithm::ALL {
        let url = signed_url(&api, "getMeetings", "", SECRET, algorithm);
        harness.get_raw(&url).await.assert_success();
    }
    // Upper-case hex, checksum first, empty rest, rotated secret.
    let url = harness.url("isMeetingRunning", "meetingID=abc");
    let (base, sum) = url.rsplit_once("checksum=").unwrap();
    harness
        .get_raw(&format!("{base}checksum={}", sum.to_uppercase()))
        .await
        .assert_success();
    let sum = switchboard_domain::bbb::checksum::sign(
        ChecksumAlgorithm::Sha1,
        "isMeetingRunning",
        "meetingID=abc",
        SECRET,
    );
    harness
        .get_raw(&format!(
            "{api}isMeetingRunning?checksum={sum}&meetingID=abc"
        ))
        .await
        .assert_success();
    let sum =
        switchboard_domain::bbb::checksum::sign(ChecksumAlgorithm::Sha1, "getMeetings", "", SECRET);
    harness
        .get_raw(&format!("{api}getMeetings?&checksum={sum}"))
        .await
        .assert_success();
    let rotated = signed_url(
        &api,
        "getMeetings",
        "",
        "previous-secret",
        ChecksumAlgorithm::Sha1,
    );
    harness.get_raw(&rotated).await.assert_success();
    // Wrong secret, wrong call, missing, tampered query.
    for url in [
        signed_url(&api, "getMeetings", "", "wrong", ChecksumAlgorithm::Sha1),
        signed_url(&api, "create", "", SECRET, ChecksumAlgorithm::Sha1)
            .replace("/create?", "/getMeetings?"),
        format!("{api}getMeetings"),
        harness
            .url("isMeetingRunning", "meetingID=abc")
            .replace("abc", "abd"),
    ] {
        harness.get_raw(&url).await.assert_failed("checksumError");
    }
    harness.stop().await;

    // The allowed set is configurable.
    let harness = Harness::with_tags(Db::Sqlite, &[None], |settings| {
        settings.checksum_algorithms = vec![ChecksumAlgorithm::Sha256];
    })
    .await;
    let api = harness.app.api_url();
    harness
        .get_raw(&signed_url(
            &api,
            "getMeetings",
            "",
            SECRET,
            ChecksumAlgorithm::Sha1,
        ))
        .await
        .assert_failed("checksumError");
    harness
        .get_raw(&signed_url(
            &api,
            "getMeetings",
            "",
            SECRET,
            ChecksumAlgorithm::Sha256,
        ))
        .await
        .assert_success();
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_is_idempotent_and_sticks_to_its_server() {
    for db in BOTH {
        let harness = Harness::start(db, 3).await;
        harness.create("same").await.assert_success();
        let first = harness.sim_with("same").unwrap();
        let again = harness.create("same").await;
        again.assert_success();
        assert_eq!(again.message_key(), "duplicateWarning", "{db:?}");
        assert_eq!(harness.sim_with("same"), Some(first));
        assert_eq!(harness.meetings_on_sims(), 1);
        let events = harness
            .store()
            .stream_events(&"meeting:default:same".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(
            events.len(),
            1,
            "{db:?}: a duplicate create records nothing"
        );
        assert!(events[0].metadata.actor.starts_with("bbb-api"));
        assert!(events[0].metadata.request_id.is_some());
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_creates_spreads_over_the_pool() {
    let harness = Harness::start(Db::Sqlite, 4).await;
    let creates = (0..20).map(|n| {
        let harness = &harness;
        async move { harness.create(&format!("burst-{n}")).await }
    });
    for reply in futures::future::join_all(creates).await {
        reply.assert_success();
    }
    let counts: Vec<usize> = harness.sims.iter().map(|s| s.meeting_count()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 20);
    assert!(counts.iter().all(|&c| c == 5), "even spread: {counts:?}");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_meeting_give_one_meeting() {
    for db in BOTH {
        let harness = Harness::start(db, 3).await;
        let creates = (0..16).map(|_| {
            let harness = &harness;
            async move { harness.create("contested").await }
        });
        for reply in futures::future::join_all(creates).await {
            reply.assert_success();
        }
        assert_eq!(harness.meetings_on_sims(), 1, "{db:?}");
        let events = harness
            .store()
            .stream_events(&"meeting:default:contested".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{db:?}");
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tags_follow_scalelite_rules() {
    let harness = Harness::with_tags(Db::Sqlite, &[None, Some("gpu"), Some("big")], |_| {}).await;
    let create =
        |id: &str, tag: &str| format!("name=T&meetingID={id}&meta_server-tag={}", enc(tag));
    harness
        .get("create", &create("t-gpu", "gpu"))
        .await
        .assert_success();
    assert_eq!(harness.sim_with("t-gpu"), Some(1));
    harness
        .get("create", "name=T&meetingID=t-none")
        .await
        .assert_success();
    assert_eq!(
        harness.sim_with("t-none"),
        Some(0),
        "untagged meetings avoid tagged servers"
    );
    harness
        .get("create", &create("t-alt", "nope;big!"))
        .await
        .assert_success();
    assert_eq!(harness.sim_with("t-alt"), Some(2));
    harness
        .get("create", &create("t-fallback", "nope"))
        .await
        .assert_success();
    assert_eq!(
        harness.sim_with("t-fallback"),
        Some(0),
        "optional tag falls back to untagged"
    );
    let refused = harness.get("create", &create("t-req", "nope!")).await;
    refused.assert_failed("serverTagUnavailable");
    assert!(refused.field("message").unwrap().contains("nope"));
    assert_eq!(harness.sim_with("t-req"), None);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_server_is_skipped_and_never_recorded() {
    for mode in [
        FailureMode::RefuseCreate,
        FailureMode::Garbage,
        FailureMode::Http500,
        FailureMode::Timeout,
    ] {
        let harness = Harness::start(Db::Sqlite, 2).await;
        // Make server 0 the first choice by loading server 1.
        harness.sims[1].create_meeting_directly("placeholder", "x");
        harness.sims[0].set_failure(mode);
        let reply = harness.create("failover").await;
        reply.assert_success();
        assert_eq!(harness.sim_with("failover"), Some(1), "{mode:?}");
        let record = harness
            .store()
            .meetings()
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.meeting_id.as_str() == "failover")
            .unwrap();
        assert_eq!(record.run.server_id, harness.servers[1], "{mode:?}");
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_server_refuses_nothing_is_recorded() {
    let harness = Harness::start(Db::Sqlite, 2).await;
    for sim in &harness.sims {
        sim.set_failure(FailureMode::RefuseCreate);
    }
    let reply = harness.create("nowhere").await;
    reply.assert_xml();
    assert_eq!(reply.returncode(), "FAILED");
    assert!(harness.store().meetings().await.unwrap().is_empty());
    for sim in &harness.sims {
        sim.set_failure(FailureMode::Http500);
    }
    harness
        .create("nowhere")
        .await
        .assert_failed("internalError");
    assert!(harness.store().meetings().await.unwrap().is_empty());
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_respect_server_state() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    harness.create("stateful").await.assert_success();
    let join = "meetingID=stateful&fullName=A&role=VIEWER";
    let meta = EventMetadata::actor("test");
    let id = harness.servers[0];
    harness
        .store()
        .execute_server(id, &ServerCommand::Cordon, &meta)
        .await
        .unwrap();
    wait_for_refresh(&harness).await;
    assert_eq!(
        harness.get("join", join).await.status,
        302,
        "cordoned: still joinable"
    );
    harness
        .create("elsewhere")
        .await
        .assert_failed("serverUnavailable");
    harness
        .store()
        .execute_server(id, &ServerCommand::Disable, &meta)
        .await
        .unwrap();
    wait_for_refresh(&harness).await;
    harness
        .get("join", join)
        .await
        .assert_failed("serverUnavailable");
    harness
        .store()
        .execute_server(id, &ServerCommand::Enable, &meta)
        .await
        .unwrap();
    harness
        .store()
        .execute_server(id, &ServerCommand::MarkOffline, &meta)
        .await
        .unwrap();
    wait_for_refresh(&harness).await;
    harness
        .get("join", join)
        .await
        .assert_failed("serverUnavailable");
    harness
        .get("join", "meetingID=unknown&fullName=A&role=VIEWER")
        .await
        .assert_failed("notFound");
    harness
        .get("join", "meetingID=stateful&role=VIEWER")
        .await
        .assert_failed("missingParamFullName");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_added_elsewhere_is_used_within_a_second() {
    let harness = Harness::start(Db::Sqlite, 0).await;
    harness
        .create("early")
        .await
        .assert_failed("serverUnavailable");
    // Another process (the CLI) adds a server to the same database.
    let sim = bbb_simulator::Simulator::start(bbb_simulator::SimulatorConfig::default())
        .await
        .unwrap();
    let other = switchboard_store::Store::connect(&harness.database_url)
        .await
        .unwrap();
    add_server(&other, &sim, None, true).await;
    let started = Instant::now();
    loop {
        let reply = harness.create("late").await;
        if reply.returncode() == "SUCCESS" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not used within a second: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.meeting_count(), 1);
    harness.stop().await;
}

fn listed_ids(reply: &Reply) -> Vec<String> {
    let mut ids: Vec<String> = reply
        .body
        .split("<meetingID>")
        .skip(1)
        .filter_map(|rest| rest.split("</meetingID>").next())
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_meetings_answers_from_the_polled_picture_without_asking_servers() {
    let harness = Harness::start(Db::Sqlite, 3).await;
    let empty = harness.get("getMeetings", "").await;
    empty.assert_success();
    assert_eq!(empty.message_key(), "noMeetings");
    assert!(empty.body.contains("<meetings/>"));
    for n in 0..6 {
        harness.create(&format!("list-{n}")).await.assert_success();
    }
    // Created through Switchboard: listed at once, before any poll.
    let all = harness.get("getMeetings", "").await;
    all.assert_success();
    assert_eq!(listed_ids(&all).len(), 6, "{}", all.body);
    assert!(all.body.contains("<attendeePW>") && all.body.contains("<moderatorPW>"));
    // The shared answer goes out in pieces, with its length (no chunking).
    let raw = harness
        .client
        .get(harness.url("getMeetings", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers().get("transfer-encoding"), None);
    let length = raw.content_length();
    assert_eq!(length, Some(raw.bytes().await.unwrap().len() as u64));
    let asked: usize = harness
        .sims
        .iter()
        .map(|s| s.request_count("getMeetings"))
        .sum();
    assert_eq!(asked, 0, "getMeetings must not ask servers");

    let with_foreign = harness.sim_with("list-0").unwrap();
    harness.sims[with_foreign].create_meeting_directly("foreign", "Made elsewhere");
    let mut poller = switchboard_app::health::HealthPoller::new(
        harness.state().health_ports(),
        switchboard_app::health::HealthConfig {
            timeout: Duration::from_millis(300),
            offline_after: 1,
            online_after: 1,
            reconcile_grace: Duration::ZERO,
            ..Default::default()
        },
        harness.state().observed.clone(),
    );
    poller.poll_once().await.unwrap();
    harness.state().routing.refresh().await.unwrap();
    let polled = harness.get("getMeetings", "").await;
    // A meeting Switchboard did not create belongs to no tenant (issue 14.9,
    // the default-tenant leak of issue 15): it is not listed.
    assert!(
        !listed_ids(&polled).contains(&"foreign".to_owned()),
        "{}",
        polled.body
    );
    assert_eq!(listed_ids(&polled).len(), 6);

    // Ended through Switchboard: gone at once. Ended on its server: gone
    // after the next poll.
    harness
        .get("end", "meetingID=list-0")
        .await
        .assert_success();
    let ended = harness.get("getMeetings", "").await;
    assert!(
        !listed_ids(&ended).contains(&"list-0".to_owned()),
        "{}",
        ended.body
    );
    let holder = harness.sim_with("list-1").unwrap();
    assert!(harness.sims[holder].end_meeting_directly("list-1"));
    poller.poll_once().await.unwrap();
    harness.state().routing.refresh().await.unwrap();
    let after = listed_ids(&harness.get("getMeetings", "").await);
    assert!(!after.contains(&"list-1".to_owned()), "{after:?}");

    // Failing servers cost nothing on the request path; once polls mark them
    // offline their meetings are no longer listed.
    harness.sims[0].set_failure(FailureMode::Timeout);
    harness.sims[1].set_failure(FailureMode::Garbage);
    let started = Instant::now();
    let unchanged = harness.get("getMeetings", "").await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(listed_ids(&unchanged), after);
    poller.poll_once().await.unwrap();
    wait_for_refresh(&harness).await;
    let healthy_only = listed_ids(&harness.get("getMeetings", "").await);
    let mut expected = harness.sims[2].meeting_ids();
    expected.sort();
    assert_eq!(healthy_only, expected);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_bbb_errors_never_a_500() {
    let harness = Harness::with_tags(Db::Sqlite, &[None], |settings| {
        settings.max_request_bytes = 32 * 1024;
    })
    .await;
    harness.create("room-b").await.assert_success();
    let cases = [
        (
            "join",
            "meetingID=room-b&fullName=%zz&role=VIEWER",
            "validationError",
        ),
        (
            "join",
            "meetingID=room-b&meetingID=x&fullName=A",
            "validationError",
        ),
        ("create", "name=x&meetingID=a,b", "validationError"),
        ("create", "meetingID=nameless", "missingParamName"),
        ("end", "", "missingParamMeetingID"),
        ("getRecordingsX", "", "unsupportedRequest"),
    ];
    for (call, query, key) in cases {
        harness.get(call, query).await.assert_failed(key);
    }
    let long = format!("meetingID={}", "a".repeat(40 * 1024));
    harness
        .get("isMeetingRunning", &long)
        .await
        .assert_failed("requestTooLarge");
    harness
        .post(
            harness.url("create", ""),
            "application/x-www-form-urlencoded",
            format!("name=x&meetingID=big&welcome={}", "w".repeat(40 * 1024)),
        )
        .await
        .assert_failed("requestTooLarge");
    let api = harness.app.api_url();
    let post_join = harness
        .client
        .post(harness.url("join", "meetingID=room-b&fullName=A&role=VIEWER"))
        .send()
        .await
        .unwrap();
    Reply::read(post_join)
        .await
        .assert_failed("unsupportedRequest");
    let put = harness
        .client
        .put(format!("{api}getMeetings"))
        .send()
        .await
        .unwrap();
    Reply::read(put).await.assert_failed("unsupportedRequest");
    let json = harness
        .client
        .post(harness.url("create", "name=x&meetingID=json"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    Reply::read(json)
        .await
        .assert_failed("unsupportedContentType");
    // Garbage from the server is an XML error, not a crash.
    harness.sims[0].set_failure(FailureMode::Garbage);
    harness
        .get("getMeetingInfo", "meetingID=room-b")
        .await
        .assert_failed("internalError");
    harness.sims[0].set_failure(FailureMode::None);
    harness
        .get("getMeetingInfo", "meetingID=room-b")
        .await
        .assert_success();
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_bodies_are_accepted_as_bbb_does() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    // Form body, signed via the URL query (empty signed string).
    harness
        .post(
            harness.url("create", ""),
            "application/x-www-form-urlencoded",
            "name=Form&meetingID=form-1",
        )
        .await
        .assert_success();
    // Form body signed itself.
    let body = signed_url(
        "",
        "create",
        "name=Form&meetingID=form-2",
        SECRET,
        ChecksumAlgorithm::Sha1,
    );
    let body = body.trim_start_matches("create?").to_owned();
    harness
        .post(
            format!("{}create", harness.app.api_url()),
            "application/x-www-form-urlencoded",
            body,
        )
        .await
        .assert_success();
    // XML body with slides goes along to the server.
    let slides = "<modules><module name=\"presentation\"><document url=\"https://example.org/a.pdf\"/></module></modules>";
    harness
        .post(
            harness.url("create", "name=Slides&meetingID=slides-1"),
            "text/xml",
            slides,
        )
        .await
        .assert_success();
    harness
        .post(
            harness.url("insertDocument", "meetingID=slides-1"),
            "application/xml",
            slides,
        )
        .await
        .assert_success();
    harness
        .get("sendChatMessage", "meetingID=slides-1&message=hello")
        .await
        .assert_success();
    assert_eq!(harness.meetings_on_sims(), 3);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_polling_flips_servers_and_placement_follows() {
    let harness = Harness::start(Db::Sqlite, 2).await;
    let config = switchboard_app::health::HealthConfig {
        timeout: Duration::from_millis(300),
        offline_after: 2,
        online_after: 1,
        ..Default::default()
    };
    let mut poller = switchboard_app::health::HealthPoller::new(
        harness.state().health_ports(),
        config,
        harness.state().observed.clone(),
    );
    harness.sims[0].set_failure(FailureMode::Http500);
    assert!(
        poller.poll_once().await.unwrap().went_offline.is_empty(),
        "one failure is not enough"
    );
    let report = poller.poll_once().await.unwrap();
    assert_eq!(report.went_offline, vec![harness.servers[0]]);
    wait_for_refresh(&harness).await;
    for n in 0..3 {
        harness.create(&format!("h-{n}")).await.assert_success();
    }
    assert_eq!(
        harness.sims[1].meeting_count(),
        3,
        "offline server gets nothing"
    );
    // Nothing changes, nothing is appended.
    let before = harness.store().event_count().await.unwrap();
    poller.poll_once().await.unwrap();
    assert_eq!(harness.store().event_count().await.unwrap(), before);
    harness.sims[0].set_failure(FailureMode::None);
    let report = poller.poll_once().await.unwrap();
    assert_eq!(report.went_online, vec![harness.servers[0]]);
    let events = harness
        .store()
        .stream_events(&harness.servers[0].stream())
        .await
        .unwrap();
    assert_eq!(events.last().unwrap().metadata.actor, "worker:health");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_after_a_mixed_workload_rebuilds_identical_projections() {
    for db in BOTH {
        let harness = Harness::start(db, 3).await;
        for n in 0..8 {
            harness.create(&format!("mix-{n}")).await.assert_success();
        }
        for n in 0..3 {
            harness
                .get("end", &format!("meetingID=mix-{n}"))
                .await
                .assert_success();
        }
        harness.create("mix-0").await.assert_success();
        let meta = EventMetadata::actor("test");
        harness
            .store()
            .execute_server(harness.servers[1], &ServerCommand::Cordon, &meta)
            .await
            .unwrap();
        harness
            .store()
            .execute_server(harness.servers[2], &ServerCommand::MarkOffline, &meta)
            .await
            .unwrap();
        let servers = harness.store().servers().await.unwrap();
        let meetings = harness.store().meetings().await.unwrap();
        let check = harness
            .store()
            .rebuild(switchboard_store::RebuildMode::Check, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(check.differences, [], "{db:?}: the live projections agree");
        harness.store().replay().await.unwrap();
        assert_eq!(harness.store().servers().await.unwrap(), servers, "{db:?}");
        assert_eq!(
            harness.store().meetings().await.unwrap(),
            meetings,
            "{db:?}"
        );
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_act_as_one() {
    let harness = Harness::start(Db::Postgres, 3).await;
    let settings = settings(&harness.database_url);
    let store = switchboard_api::app::open_store(&settings).await.unwrap();
    let state = switchboard_api::app::AppState::build(settings, store, vec![SECRET.to_owned()])
        .await
        .unwrap();
    let other = switchboard_api::app::start(
        state,
        "127.0.0.1:0".parse().unwrap(),
        switchboard_api::app::Background { health: false },
    )
    .await
    .unwrap();
    let other_api = other.api_url();
    // Load one server through A so the two instances' views differ.
    harness.create("warm-up").await.assert_success();
    let query = "name=Race&meetingID=raced";
    let creates = (0..12).map(|n| {
        let harness = &harness;
        let url = if n % 2 == 0 {
            harness.url("create", query)
        } else {
            signed_url(&other_api, "create", query, SECRET, ChecksumAlgorithm::Sha1)
        };
        async move { harness.get_raw(&url).await }
    });
    for reply in futures::future::join_all(creates).await {
        reply.assert_success();
    }
    let holders: Vec<usize> = (0..3)
        .filter(|&n| harness.sims[n].meeting_ids().iter().any(|id| id == "raced"))
        .collect();
    assert_eq!(holders.len(), 1, "one meeting on one server: {holders:?}");
    let created = harness
        .store()
        .stream_events(&"meeting:default:raced".parse().unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.type_name() == "MeetingCreated")
        .count();
    assert_eq!(created, 1);
    // A meeting created through A is joinable through B at once.
    let join = signed_url(
        &other_api,
        "join",
        "meetingID=warm-up&fullName=B&role=VIEWER",
        SECRET,
        ChecksumAlgorithm::Sha1,
    );
    assert_eq!(harness.get_raw(&join).await.status, 302);
    other.stop().await;
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_reconciles_meetings_with_their_servers() {
    for db in BOTH {
        let harness = Harness::start(db, 2).await;
        let config = switchboard_app::health::HealthConfig {
            reconcile_grace: Duration::ZERO,
            ..Default::default()
        };
        let mut poller = switchboard_app::health::HealthPoller::new(
            harness.state().health_ports(),
            config.clone(),
            harness.state().observed.clone(),
        );
        harness.create("ends-by-itself").await.assert_success();
        harness.create("stays").await.assert_success();
        let holders = harness.sim_with_all("ends-by-itself");
        assert_eq!(holders.len(), 1, "{db:?}: copies on {holders:?}");
        let host = holders[0];
        // A server that cannot call Switchboard's end URLs: the poll alone
        // finds the end. (With the simulator's end callbacks on, the
        // callback raced the poll and, when it won, the poll had nothing
        // left to end: this test's flakes in CI.)
        harness.sims[host].set_callbacks_enabled(false);
        assert!(harness.sims[host].end_meeting_directly("ends-by-itself"));
        harness.sims[0].create_meeting_directly("stranger", "Direct");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let report = poller.poll_once().await.unwrap();
        // The whole report on failure: whether both servers answered
        // (`healthy`) tells a failed probe from a missed reconcile.
        assert_eq!(
            report.ended,
            vec!["ends-by-itself".to_owned()],
            "{db:?}: {report:?}"
        );
        assert_eq!(report.unknown, vec!["stranger".to_owned()]);
        wait_for_refresh(&harness).await;
        let running = harness
            .get("isMeetingRunning", "meetingID=ends-by-itself")
            .await;
        assert_eq!(running.field("running").as_deref(), Some("false"));
        let record = harness
            .store()
            .meetings()
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.meeting_id.as_str() == "ends-by-itself")
            .unwrap();
        assert!(!record.running);
        // Nothing changed since: a second poll records nothing.
        let before = harness.store().event_count().await.unwrap();
        poller.poll_once().await.unwrap();
        assert_eq!(
            harness.store().event_count().await.unwrap(),
            before,
            "{db:?}"
        );

        // With tenants, a stranger may be any tenant's: nobody adopts it
        // (issue 15.A1).
        let adopting_config = switchboard_app::health::HealthConfig {
            adopt_unknown: true,
            ..config.clone()
        };
        let tenant = switchboard_domain::tenant::TenantCommand::Create {
            name: "acme".into(),
            secret: "acme-secret-1".into(),
        };
        harness
            .store()
            .execute_tenant("acme", &tenant, &EventMetadata::actor("test"))
            .await
            .unwrap();
        let mut with_tenants = switchboard_app::health::HealthPoller::new(
            harness.state().health_ports(),
            adopting_config,
            harness.state().observed.clone(),
        );
        with_tenants.poll_once().await.unwrap();
        wait_for_refresh(&harness).await;
        let join = harness
            .get("join", "meetingID=stranger&fullName=A&role=VIEWER")
            .await;
        join.assert_failed("notFound");
        harness
            .store()
            .execute_tenant(
                "acme",
                &switchboard_domain::tenant::TenantCommand::Delete,
                &EventMetadata::actor("test"),
            )
            .await
            .unwrap();

        // Without tenants, adoption makes the stranger joinable through
        // Switchboard.
        let mut adopting = switchboard_app::health::HealthPoller::new(
            harness.state().health_ports(),
            switchboard_app::health::HealthConfig {
                adopt_unknown: true,
                ..config
            },
            harness.state().observed.clone(),
        );
        adopting.poll_once().await.unwrap();
        wait_for_refresh(&harness).await;
        let join = harness
            .get("join", "meetingID=stranger&fullName=A&role=VIEWER")
            .await;
        assert_eq!(join.status, 302, "{db:?}: {}", join.body);

        // A cordoned server is disabled once its last meeting ended by itself.
        let stays_on = harness.sim_with("stays").unwrap();
        let meta = EventMetadata::actor("test");
        harness
            .store()
            .execute_server(harness.servers[stays_on], &ServerCommand::Cordon, &meta)
            .await
            .unwrap();
        harness.sims[stays_on].end_meeting_directly("stays");
        harness.sims[stays_on].end_meeting_directly("stranger");
        let report = poller.poll_once().await.unwrap();
        assert_eq!(
            report.drained,
            vec![harness.servers[stays_on]],
            "{db:?}: {report:?}"
        );
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_of_an_offline_server_follow_the_policy() {
    use switchboard_app::health::{HealthConfig, HealthPoller, OfflinePolicy};
    for (policy, forgotten) in [
        (OfflinePolicy::Forget, true),
        (OfflinePolicy::KeepFor(Duration::from_secs(3600)), false),
    ] {
        let harness = Harness::start(Db::Sqlite, 2).await;
        harness.create("on-dying").await.assert_success();
        let dying = harness.sim_with("on-dying").unwrap();
        let mut poller = HealthPoller::new(
            harness.state().health_ports(),
            HealthConfig {
                offline_after: 1,
                timeout: Duration::from_millis(300),
                offline_meetings: policy,
                ..Default::default()
            },
            harness.state().observed.clone(),
        );
        harness.sims[dying].set_failure(FailureMode::Http500);
        let report = poller.poll_once().await.unwrap();
        assert_eq!(report.went_offline, vec![harness.servers[dying]]);
        assert_eq!(
            !report.forgotten.is_empty(),
            forgotten,
            "{policy:?}: {report:?}"
        );
        wait_for_refresh(&harness).await;
        if forgotten {
            harness.create("on-dying").await.assert_success();
            let now_on = harness.sim_with_all("on-dying");
            assert!(
                now_on.contains(&(1 - dying)),
                "re-placed on the healthy server: {now_on:?}"
            );
        } else {
            // Kept: not split over two servers while its server may come back.
            harness
                .create("on-dying")
                .await
                .assert_failed("serverUnavailable");
            let join = harness
                .get("join", "meetingID=on-dying&fullName=A&role=VIEWER")
                .await;
            join.assert_failed("serverUnavailable");
        }
        // Polls while it stays offline forget nothing more.
        let report = poller.poll_once().await.unwrap();
        assert!(report.forgotten.is_empty());
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_get_meetings_ask_no_server() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    harness.create("shared-1").await.assert_success();
    harness.sims[0].set_latency(Duration::from_millis(200));
    let before = harness.sims[0].request_count("getMeetings");
    let calls = (0..6).map(|_| {
        let harness = &harness;
        async move { harness.get("getMeetings", "").await }
    });
    for reply in futures::future::join_all(calls).await {
        reply.assert_success();
        assert_eq!(reply.body.matches("<meeting>").count(), 1);
    }
    let asked = harness.sims[0].request_count("getMeetings") - before;
    assert_eq!(asked, 0, "six callers, {asked} asks");
    // Never older than the request: a meeting created just before is listed.
    harness.sims[0].set_latency(Duration::ZERO);
    harness.create("shared-2").await.assert_success();
    let reply = harness.get("getMeetings", "").await;
    assert_eq!(reply.body.matches("<meeting>").count(), 2);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_create_reaches_the_server_as_a_form() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    // Larger than any URL may be (64 KiB): only a form body carries it.
    let welcome = "w".repeat(70 * 1024);
    let reply = harness
        .post(
            harness.url("create", ""),
            "application/x-www-form-urlencoded",
            format!("name=Form&meetingID=long-form&welcome={welcome}&meta_origin=portal"),
        )
        .await;
    reply.assert_success();
    assert_eq!(harness.sim_with("long-form"), Some(0));
    let info = harness.get("getMeetingInfo", "meetingID=long-form").await;
    info.assert_success();
    assert!(
        info.body.contains("<origin>portal</origin>"),
        "{}",
        info.body
    );
    harness.stop().await;
}
