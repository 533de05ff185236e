//! Regression tests for the findings of a code review (split meetings,
//! unsigned parameters, draining, load accounting, refresh order, tags,
//! checksum stripping), against the facade with simulated servers.

use crate::support::*;
use bbb_simulator::FailureMode;
use std::time::{Duration, Instant};
use switchboard_api::admin::model::NewServer;
use switchboard_app::admin::Principal;
use switchboard_app::health::{HealthConfig, HealthPoller};
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign, split_checksum};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::server::ServerCommand;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

/// Waits until the routing view has caught up with the log.
async fn caught_up(harness: &Harness) {
    let target = harness.store().last_position().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while harness.state().routing.position() < target {
        assert!(Instant::now() < deadline, "routing view did not refresh");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Finding 1: a create of a meeting that runs on a healthy (online, enabled)
/// server whose create call fails once (HTTP 500 / timeout) is placed anew on
/// another server, while the meeting goes on at the first one: split meeting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_create_on_the_meetings_server_splits_the_meeting() {
    let harness = Harness::start(Db::Sqlite, 2).await;
    harness.create("split-me").await.assert_success();
    let first = harness.sim_with("split-me").unwrap();
    harness.sims[first].set_failure(FailureMode::Http500);
    let again = harness.create("split-me").await;
    harness.sims[first].set_failure(FailureMode::None);
    assert_eq!(
        harness.sim_with_all("split-me"),
        vec![first],
        "the meeting now runs on two servers; second create answered {}",
        again.body
    );
    harness.stop().await;
}

/// Finding 2: a cordoned server gets new meeting runs: when a meeting that
/// ran there has ended but reconciliation has not noticed yet, the next create
/// goes to the cordoned server and starts a new run there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cordoned_server_takes_a_new_run_of_an_ended_meeting() {
    let harness = Harness::start(Db::Sqlite, 2).await;
    harness.create("cordon-me").await.assert_success();
    let first = harness.sim_with("cordon-me").unwrap();
    harness
        .store()
        .execute_server(
            harness.servers[first],
            &ServerCommand::Cordon,
            &EventMetadata::actor("test"),
        )
        .await
        .unwrap();
    caught_up(&harness).await;
    assert!(harness.sims[first].end_meeting_directly("cordon-me"));
    harness.create("cordon-me").await.assert_success();
    assert_ne!(
        harness.sim_with("cordon-me"),
        Some(first),
        "a new meeting run was started on the cordoned server"
    );
    harness.stop().await;
}

/// Finding 3: BBB answers XML for any non-empty `redirect` other than `true`
/// (`Boolean.parseBoolean`); the facade only for `false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_redirect_zero_answers_xml_like_bbb() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    harness.create("redir").await.assert_success();
    let reply = harness
        .get(
            "join",
            "meetingID=redir&fullName=Bob&role=VIEWER&redirect=0",
        )
        .await;
    assert_eq!(reply.status, 200, "BBB answers XML, got {reply:?}");
    harness.stop().await;
}

/// Finding 4: when the checksum verifies against the form body, parameters in
/// the URL query are merged without being covered by any checksum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_query_parameters_ride_along_a_body_signed_form() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let signed_body = "name=Form&meetingID=body-signed";
    let body = format!(
        "{signed_body}&checksum={}",
        sign(ChecksumAlgorithm::Sha1, "create", signed_body, SECRET)
    );
    // An attacker who saw this body adds a moderator password of their own.
    let url = format!("{}create?moderatorPW=attacker", harness.app.api_url());
    let reply = harness
        .post(url, "application/x-www-form-urlencoded", body)
        .await;
    assert_eq!(
        reply.message_key(),
        "checksumError",
        "unsigned parameter accepted: {}",
        reply.body
    );
    harness.stop().await;
}

/// Finding 5: BBB strips the checksum with Java's `String.replace`, which
/// replaces every occurrence, and applies all three replacements in turn.
#[test]
fn checksum_stripping_matches_java_replace_all() {
    // Java: "checksum=ab&x=1&checksum=abc"
    //   .replace("&checksum=ab", "")  -> "checksum=ab&x=1c"
    //   .replace("checksum=ab&", "")  -> "x=1c"
    assert_eq!(split_checksum("checksum=ab&x=1&checksum=abc").0, "x=1c");
    // Java: .replace("checksum=ff", "") also hits the text inside b's value.
    assert_eq!(split_checksum("a=1&checksum=ff&b=checksum=ff").0, "a=1&b=");
}

/// Finding 6: meetings a poll saw that Switchboard does not count (not its
/// own) hide the meetings placed since the poll: `unseen` is
/// `recorded - polled` in totals, so a server with N foreign meetings takes N
/// creates before its load moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_meetings_hide_new_placements_from_the_load() {
    let harness = Harness::start(Db::Sqlite, 2).await;
    for sim in &harness.sims {
        for n in 0..3 {
            sim.create_meeting_directly(&format!("foreign-{n}"), "F");
        }
    }
    let state = harness.state();
    let mut poller = HealthPoller::new(
        state.health_ports(),
        HealthConfig {
            ..HealthConfig::default()
        },
        state.observed.clone(),
    );
    let report = poller.poll_once().await.unwrap();
    assert_eq!(report.healthy, 2);
    for n in 0..4 {
        harness.create(&format!("burst-{n}")).await.assert_success();
    }
    let per_sim: Vec<usize> = harness
        .sims
        .iter()
        .map(|sim| {
            sim.meeting_ids()
                .iter()
                .filter(|id| id.starts_with("burst-"))
                .count()
        })
        .collect();
    assert_eq!(
        per_sim,
        vec![2, 2],
        "equal servers, four creates: all went to one server"
    );
    harness.stop().await;
}

/// Finding 7: a create that finds its meeting ended and started again on the
/// same server records `MeetingEnded` + `MeetingCreated`, but the routing view
/// only subtracts one meeting (no reservation, so no +1): the server looks
/// empty until the next refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_run_on_the_same_server_is_not_counted() {
    let harness = Harness::with_tags(Db::Sqlite, &[None], |settings| {
        settings.refresh_interval_ms = 3_600_000;
    })
    .await;
    harness.create("rerun").await.assert_success();
    let server = harness.state().routing.server(harness.servers[0]).unwrap();
    let before = harness.state().routing.load_of(&server);
    assert!(before > 0.0);
    assert!(harness.sims[0].end_meeting_directly("rerun"));
    harness.create("rerun").await.assert_success();
    let after = harness.state().routing.load_of(&server);
    harness.state().routing.refresh().await.unwrap();
    let refreshed = harness.state().routing.load_of(&server);
    assert_eq!(refreshed, before, "the database counts one meeting");
    assert_eq!(after, before, "the live view lost the meeting");
    harness.stop().await;
}

/// Finding 8: the admin API accepts tags that no `meta_server-tag` can ever
/// select (surrounding blanks, `;`, a trailing `!`): TagRequest trims and
/// splits, the stored tag is compared untrimmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_accepts_tags_no_create_can_select() {
    let harness = Harness::start(Db::Sqlite, 0).await;
    let sim = bbb_simulator::Simulator::start(bbb_simulator::SimulatorConfig::default())
        .await
        .unwrap();
    let principal = Principal::admin("review".into());
    let added = harness
        .state()
        .admin
        .add_server(
            NewServer {
                url: sim.url(),
                secret: sim.secret().to_owned(),
                tag: Some("gpu ".into()),
                load_multiplier: None,
                checksum: None,
                metrics_url: None,
                enabled: Some(true),
            },
            &principal,
        )
        .await;
    match added {
        Err(switchboard_app::admin::Failure::Invalid(detail)) => {
            assert!(detail.contains("invalid tag"), "{detail}")
        }
        other => panic!("a tag no meta_server-tag can select must be refused: {other:?}"),
    }
    sim.shutdown().await;
    harness.stop().await;
}

/// Finding 10 (PostgreSQL): an append that commits after a later position was
/// already seen is never picked up by `Directory::refresh` until some other
/// event arrives (`position == seen` returns early), so its meeting is not
/// counted (and its stream not invalidated) for as long as the log is quiet.
/// Positions come from a sequence and concurrent appends commit out of order.
/// The in-flight append is imitated by a `psql` session holding a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_below_the_seen_position_is_never_counted() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let harness = Harness::with_tags(Db::Postgres, &[None], |settings| {
        settings.refresh_interval_ms = 3_600_000;
    })
    .await;
    let server_id = harness.servers[0];
    let directory = &harness.state().routing;
    directory.refresh().await.unwrap();
    let mut psql = Command::new("psql")
        .arg(&harness.database_url)
        .args(["-q", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql");
    let mut stdin = psql.stdin.take().unwrap();
    let payload = serde_json::json!({
        "type": "MeetingCreated", "tenant": "default", "meeting_id": "late-1", "name": "Late",
        "run": {"internal_id": "x-1", "server_id": server_id.to_string(), "create_time_ms": 1}
    });
    // A create's append, still in flight: it has taken its position.
    writeln!(
        stdin,
        "BEGIN;\n\
         INSERT INTO events (stream, version, event_type, schema_version, payload, metadata, recorded_at, actor) \
         VALUES ('meeting:default:late-1', 1, 'MeetingCreated', 1, '{payload}', '{{}}', now(), 'test');\n\
         INSERT INTO meetings (tenant, meeting_id, name, internal_id, server_id, create_time_ms, ended_at_ms, running, version, position) \
         VALUES ('default', 'late-1', 'Late', 'x-1', '{server_id}', 1, NULL, true, 1, 0);\n\
         SELECT pg_sleep(0);"
    )
    .unwrap();
    stdin.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Another append commits first, at a higher position; the view sees it.
    let meta = EventMetadata::actor("test");
    for command in [ServerCommand::MarkOffline, ServerCommand::MarkOnline] {
        harness
            .store()
            .execute_server(server_id, &command, &meta)
            .await
            .unwrap();
    }
    // (An announcement may have refreshed it already.)
    directory.refresh().await.unwrap();
    assert_eq!(
        directory.position(),
        harness.store().last_position().await.unwrap()
    );
    writeln!(stdin, "COMMIT;").unwrap();
    drop(stdin);
    assert!(psql.wait().unwrap().success());
    let counted = harness
        .store()
        .running_meetings_per_server()
        .await
        .unwrap()
        .get(&server_id)
        .copied();
    assert_eq!(counted, Some(1), "the database has the meeting");
    let events = harness.store().events_after(0, 100).await.unwrap();
    let late = events
        .iter()
        .find(|e| e.stream.to_string() == "meeting:default:late-1")
        .unwrap();
    assert!(
        late.position < harness.store().last_position().await.unwrap(),
        "the late commit sits below the last position"
    );
    // The view reloads at least every 2 s, even when the last position did
    // not move: the late commit is counted by then.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let refreshed = directory.refresh().await.unwrap();
    let server = directory.server(server_id).unwrap();
    assert!(
        directory.load_of(&server) > 0.0,
        "refresh found nothing new ({refreshed}); the meeting is not counted"
    );
    harness.stop().await;
}
