//! Scale-out: two `serve` instances and one `worker` on one PostgreSQL and
//! one Redis (the worker's job queue) behave as one. The instances' periodic refresh is switched off (an hour), so what
//! B learns of A's changes it learns from LISTEN/NOTIFY announcements and the
//! shared samples.

use crate::support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_api::app::{self, AppState, Background, RunningApp};
use switchboard_app::admin::Principal;
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_domain::server::{ServerCommand, ServerState};
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

const NO_PERIODIC_REFRESH_MS: u64 = 3_600_000;

async fn instance(database_url: &str, namespace: &str, worker: bool) -> RunningApp {
    let mut settings = settings(database_url);
    settings.job_namespace = namespace.to_owned();
    settings.refresh_interval_ms = NO_PERIODIC_REFRESH_MS;
    settings.health.interval_secs = 0.2;
    settings.health.reconcile_grace_secs = 0.0;
    if let Ok(url) = std::env::var("SWITCHBOARD_TEST_REDIS_URL") {
        settings.redis_url = Some(url);
    } else {
        settings.redis_url = Some("redis://127.0.0.1:6379".to_owned());
    }
    let store = app::open_store(&settings).await.unwrap();
    let state: Arc<AppState> = AppState::build(settings, store, vec![SECRET.to_owned()])
        .await
        .unwrap();
    let listen = "127.0.0.1:0".parse().unwrap();
    if worker {
        app::start_worker(state, listen).await.unwrap()
    } else {
        app::start(state, listen, Background { health: false })
            .await
            .unwrap()
    }
}

fn url_of(app: &RunningApp, call: &str, query: &str) -> String {
    signed_url(&app.api_url(), call, query, SECRET, ChecksumAlgorithm::Sha1)
}

async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serves_and_one_worker_on_postgres_act_as_one() {
    let a = Harness::with_tags(Db::Postgres, &[None, None], |settings| {
        settings.refresh_interval_ms = NO_PERIODIC_REFRESH_MS;
    })
    .await;
    // Jobs go through Redis, in a namespace of this test's own.
    let namespace = format!("switchboard-test-{}", uuid::Uuid::new_v4());
    let b = instance(&a.database_url, &namespace, false).await;
    let worker = instance(&a.database_url, &namespace, true).await;

    // A meeting created through A is joinable through B at once.
    a.create("scale-1").await.assert_success();
    let join = a
        .get_raw(&url_of(
            &b,
            "join",
            "meetingID=scale-1&fullName=Bea&role=VIEWER",
        ))
        .await;
    assert_eq!(join.status, 302, "{}", join.body);
    let host = a.sim_with("scale-1").unwrap();
    assert!(
        join.location
            .as_deref()
            .unwrap()
            .starts_with(&a.sims[host].url())
    );
    // ... and listed by B's getMeetings at once.
    let listed = a.get_raw(&url_of(&b, "getMeetings", "")).await;
    assert!(
        listed.body.contains("<meetingID>scale-1</meetingID>"),
        "{}",
        listed.body
    );

    // The attendee who follows the join reaches B's placement figures through
    // the worker's polls (samples shared through the database).
    let attended = a.get_raw(join.location.as_deref().unwrap()).await;
    assert_eq!(attended.status, 302);
    let server = a.servers[host];
    eventually("B sees the attendee", Duration::from_secs(3), async || {
        b.state.routing.attendees_of(server) == 1
    })
    .await;

    // A server disabled through A is respected by B within a second.
    let other = a.servers[1 - host];
    let principal = Principal::admin("scale-test".into());
    a.state()
        .admin
        .set_state(&other.to_string(), ServerCommand::Disable, &principal)
        .await
        .unwrap();
    eventually(
        "B sees the server disabled",
        Duration::from_secs(1),
        async || {
            b.state
                .routing
                .server(other)
                .is_some_and(|s| s.state == ServerState::Disabled)
        },
    )
    .await;
    for n in 0..4 {
        let reply = a
            .get_raw(&url_of(
                &b,
                "create",
                &format!("name=B&meetingID=via-b-{n}"),
            ))
            .await;
        reply.assert_success();
    }
    assert_eq!(
        a.sims[1 - host].meeting_count(),
        0,
        "the disabled server got meetings"
    );
    a.state()
        .admin
        .set_state(&other.to_string(), ServerCommand::Enable, &principal)
        .await
        .unwrap();

    // Concurrent creates of one meetingID through A and B give one meeting.
    let query = "name=Race&meetingID=raced-ab";
    let creates = (0..10).map(|n| {
        let url = if n % 2 == 0 {
            a.url("create", query)
        } else {
            url_of(&b, "create", query)
        };
        let a = &a;
        async move { a.get_raw(&url).await }
    });
    let replies = futures::future::join_all(creates).await;
    let internal: std::collections::HashSet<String> = replies
        .iter()
        .map(|reply| {
            reply.assert_success();
            reply.field("internalMeetingID").unwrap()
        })
        .collect();
    assert_eq!(internal.len(), 1, "one run: {internal:?}");
    assert_eq!(a.sim_with_all("raced-ab").len(), 1);

    // A meeting ended through B is gone from A's answers at once.
    a.get_raw(&url_of(&b, "end", "meetingID=scale-1"))
        .await
        .assert_success();
    eventually("A sees the end", Duration::from_secs(3), async || {
        a.get("isMeetingRunning", "meetingID=scale-1")
            .await
            .field("running")
            .as_deref()
            == Some("false")
    })
    .await;
    let after = a.get("getMeetings", "").await;
    assert!(
        !after.body.contains("<meetingID>scale-1</meetingID>"),
        "{}",
        after.body
    );

    worker.stop().await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_pruned_from_the_sql_job_tables() {
    for db in BOTH {
        let harness = Harness::polled(db, 1).await;
        let store = harness.store().clone();
        // Poll ticks every 200 ms: some jobs finish.
        let mut pruned = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while pruned == 0 {
            assert!(
                Instant::now() < deadline,
                "{db:?}: no finished job to prune"
            );
            tokio::time::sleep(Duration::from_millis(1100)).await;
            pruned = store.prune_finished_jobs(Duration::ZERO).await.unwrap();
        }
        // Jobs finished within the kept time stay.
        assert_eq!(
            store
                .prune_finished_jobs(Duration::from_secs(3600))
                .await
                .unwrap(),
            0,
            "{db:?}"
        );
        harness.stop().await;
    }
}
