//! The agent use cases through in-memory ports.

use super::watch::AgentWatch;
use super::*;
use crate::clock::Clock;
use crate::ports::{EventStore, PolledPicture, ServerReads};
use crate::routing::ObservedLoads;
use crate::testing::{World, url};
use switchboard_domain::server::ServerState;

fn node(name: &str, server: Option<ServerId>) -> Principal {
    Principal {
        name: name.into(),
        scope: TokenScope::Node,
        server,
    }
}

/// Given: a node token called `name` (unbound).
async fn node_token(world: &World, name: &str) -> Principal {
    world
        .executor
        .execute::<Token>(
            &token_stream(name),
            &TokenCommand::Create {
                name: name.into(),
                scope: TokenScope::Node,
                hash: switchboard_domain::token::hash_token(name),
                server: None,
            },
            &crate::testing::given(),
        )
        .await
        .unwrap();
    node(name, None)
}

fn service(world: &World, loads: &ObservedLoads) -> AgentService {
    AgentService::new(
        world.store.clone(),
        world.executor.clone(),
        world.shared_clock(),
        loads.clone(),
        None,
        AgentSettings::default(),
    )
}

fn watch(world: &World) -> AgentWatch {
    AgentWatch::new(
        world.store.clone(),
        None,
        world.executor.clone(),
        world.shared_clock(),
        AgentSettings::default(),
    )
}

fn registration(name: &str, secret: &str) -> Registration {
    Registration {
        url: format!("{}api", url(name)),
        secret: secret.into(),
        tag: Some("big".into()),
        load_multiplier: Some(2.0),
        enable: true,
        add: true,
        report: None,
    }
}

const MEETINGS: &str = "<response><returncode>SUCCESS</returncode><meetings><meeting><meetingID>m1</meetingID><internalMeetingID>i1-1700000000000</internalMeetingID><createTime>1700000000000</createTime><participantCount>7</participantCount><videoCount>2</videoCount><voiceParticipantCount>1</voiceParticipantCount></meeting></meetings></response>";

fn beat(server: ServerId, busy: f64, total: f64) -> Heartbeat {
    Heartbeat {
        server,
        version: "3.0.4".into(),
        interval_ms: 5_000,
        meetings: Ok(MEETINGS.into()),
        listed_ago_ms: Some(100),
        cpu: Some(CpuCounters {
            busy_seconds: busy,
            total_seconds: total,
        }),
        memory_percent: Some(40.0),
    }
}

#[tokio::test]
async fn an_agent_registers_its_server_once_and_its_token_is_bound_to_it() {
    let world = World::new();
    let agents = service(&world, &ObservedLoads::default());
    let token = node_token(&world, "bbb1").await;
    let first = agents
        .register(&token, registration("bbb1", "s1"))
        .await
        .unwrap();
    assert!(first.added);
    let server = world.store.server(first.server).await.unwrap().unwrap();
    assert_eq!(server.settings.url, url("bbb1"));
    assert_eq!(server.settings.tag.as_deref(), Some("big"));
    assert_eq!(server.settings.load_multiplier, 2.0);
    assert_eq!(server.state, ServerState::Enabled);
    let tokens = world.store.tokens().await.unwrap();
    assert_eq!(tokens[0].server, Some(first.server), "the token is bound");

    // Registering again (the bound token) finds it by URL; the operator's
    // later changes stay.
    world.on_server(first.server, ServerCommand::Cordon).await;
    let mut again = registration("bbb1", "s1");
    again.tag = None;
    let second = agents
        .register(&node("bbb1", Some(first.server)), again)
        .await
        .unwrap();
    assert_eq!(second.server, first.server);
    assert!(!second.added);
    let server = world.store.server(first.server).await.unwrap().unwrap();
    assert_eq!(server.state, ServerState::Cordoned);
    assert_eq!(server.settings.tag.as_deref(), Some("big"));
}

#[tokio::test]
async fn a_node_token_cannot_take_another_server() {
    let world = World::new();
    let agents = service(&world, &ObservedLoads::default());
    let one = agents
        .register(&node_token(&world, "a").await, registration("bbb1", "s1"))
        .await
        .unwrap();
    let err = agents
        .register(&node("a", Some(one.server)), registration("bbb2", "s2"))
        .await
        .unwrap_err();
    assert!(matches!(err, Failure::Forbidden(_)), "{err:?}");
    // An unbound token giving a known URL with another secret.
    let err = agents
        .register(
            &node_token(&world, "b").await,
            registration("bbb1", "wrong"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Failure::Forbidden(_)), "{err:?}");
    // Heartbeats for a server it is not bound to.
    let other = world.server("bbb3").await;
    let err = agents
        .heartbeat(&node("a", Some(one.server)), beat(other, 0.0, 0.0))
        .await
        .unwrap_err();
    assert!(matches!(err, Failure::Forbidden(_)), "{err:?}");
    let read = Principal {
        name: "ro".into(),
        scope: TokenScope::Read,
        server: None,
    };
    assert!(matches!(
        agents.heartbeat(&read, beat(other, 0.0, 0.0)).await,
        Err(Failure::Forbidden(_))
    ));
}

#[tokio::test]
async fn heartbeats_give_placement_the_picture_and_append_only_changes() {
    let world = World::new();
    let loads = ObservedLoads::default();
    let agents = service(&world, &loads);
    let id = world.server("bbb1").await;
    world
        .meeting("m1", "i1-1700000000000", id, 1_700_000_000_000)
        .await;
    let principal = node("bbb1", Some(id));
    let before = world.store.last_position().await.unwrap();
    let first = agents
        .heartbeat(&principal, beat(id, 0.0, 0.0))
        .await
        .unwrap();
    assert_eq!(first.events, 1, "AgentReported");
    world.clock.advance_ms(5_000);
    let second = agents
        .heartbeat(&principal, beat(id, 2.5, 10.0))
        .await
        .unwrap();
    assert_eq!(second.events, 0, "nothing changed");
    assert_eq!(world.store.last_position().await.unwrap(), before + 1);
    let observed = loads.get(id).unwrap();
    assert_eq!(observed.meetings, 1);
    assert_eq!(observed.attendees, 7);
    assert_eq!(observed.known_meetings, 1);
    assert_eq!(observed.metrics.usage.cpu_percent, Some(25.0));
    assert_eq!(observed.metrics.usage.memory_percent, Some(40.0));
    let server = world.store.server(id).await.unwrap().unwrap();
    assert_eq!(server.agent.as_ref().unwrap().version, "3.0.4");

    agents.flush().await.unwrap();
    let heard = world.store.heartbeats().await.unwrap();
    assert_eq!(heard, vec![(id, world.clock.now_ms())]);
    let sample = world.store.server_samples_of(&[id]).await.unwrap();
    assert_eq!(sample[0].attendees, 7);
    assert_eq!(sample[0].cpu_percent, Some(25.0));

    let mut upgraded = beat(id, 5.0, 20.0);
    upgraded.version = "3.0.5".into();
    assert_eq!(
        agents.heartbeat(&principal, upgraded).await.unwrap().events,
        1
    );
}

#[tokio::test]
async fn a_silent_agent_makes_its_server_offline_and_the_next_heartbeat_online() {
    let world = World::new();
    let agents = service(&world, &ObservedLoads::default());
    let watch = watch(&world);
    let id = world.server("bbb1").await;
    let principal = node("bbb1", Some(id));
    agents
        .heartbeat(&principal, beat(id, 0.0, 0.0))
        .await
        .unwrap();
    agents.flush().await.unwrap();
    world.clock.advance_ms(15_000);
    assert!(
        watch.check_once().await.unwrap().is_empty(),
        "3 x 5 s not over"
    );
    world.clock.advance_ms(1);
    assert_eq!(watch.check_once().await.unwrap(), vec![id]);
    assert!(!world.store.server(id).await.unwrap().unwrap().online);
    let back = agents
        .heartbeat(&principal, beat(id, 1.0, 2.0))
        .await
        .unwrap();
    assert!(back.online);
    assert!(world.store.server(id).await.unwrap().unwrap().online);
}

#[tokio::test]
async fn an_agent_going_away_drains_its_server_instead_of_failing_it() {
    let world = World::new();
    let agents = service(&world, &ObservedLoads::default());
    let watch = watch(&world);
    let id = world.server("bbb1").await;
    let principal = node("bbb1", Some(id));
    agents
        .heartbeat(&principal, beat(id, 0.0, 0.0))
        .await
        .unwrap();
    agents.flush().await.unwrap();
    agents.leave(&principal, id).await.unwrap();
    let server = world.store.server(id).await.unwrap().unwrap();
    assert!(server.agent_away() && !server.takes_new_meetings());
    world.clock.advance_ms(60_000);
    assert!(watch.check_once().await.unwrap().is_empty());
    assert!(world.store.server(id).await.unwrap().unwrap().online);
    agents
        .heartbeat(&principal, beat(id, 1.0, 2.0))
        .await
        .unwrap();
    assert!(
        world
            .store
            .server(id)
            .await
            .unwrap()
            .unwrap()
            .takes_new_meetings()
    );
}

#[tokio::test]
async fn heartbeats_without_bbb_api_count_as_failed_polls() {
    let world = World::new();
    let agents = service(&world, &ObservedLoads::default());
    let id = world.server("bbb1").await;
    let principal = node("bbb1", Some(id));
    let mut failing = beat(id, 0.0, 0.0);
    failing.meetings = Err("connection refused".into());
    for _ in 0..2 {
        assert!(
            agents
                .heartbeat(&principal, failing.clone())
                .await
                .unwrap()
                .online
        );
    }
    assert!(!agents.heartbeat(&principal, failing).await.unwrap().online);
    assert!(!world.store.server(id).await.unwrap().unwrap().online);
}

#[tokio::test]
async fn an_agent_server_is_not_polled_but_reconciled_from_its_heartbeat() {
    use crate::ports::MeetingReads;
    let world = World::new();
    let agents = service(&world, &ObservedLoads::default());
    let id = world.server("bbb1").await;
    world
        .meeting("m1", "i1-1700000000000", id, 1_700_000_000_000)
        .await;
    world
        .meeting("gone", "g-1700000000000", id, 1_700_000_000_000)
        .await;
    let principal = node("bbb1", Some(id));
    world.clock.advance_ms(60_000);
    agents
        .heartbeat(&principal, beat(id, 0.0, 0.0))
        .await
        .unwrap();
    agents.flush().await.unwrap();
    let (mut poller, backend) = poller(&world);
    let report = poller.poll_once().await.unwrap();
    assert!(backend.calls().is_empty(), "agent servers are not polled");
    assert_eq!(report.ended, vec!["gone".to_owned()]);
    assert!(report.went_offline.is_empty());
    let running: Vec<String> = world
        .store
        .running_meetings()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.meeting_id.to_string())
        .collect();
    assert_eq!(running, vec!["m1".to_owned()]);
}

#[tokio::test]
async fn a_run_recorded_after_the_agent_listed_is_not_ended_by_that_listing() {
    use crate::records::MeetingListing;
    for (listed_ago_ms, ended) in [(5_000, false), (100, true)] {
        let world = World::new();
        let agents = service(&world, &ObservedLoads::default());
        let id = world.server("bbb1").await;
        world.clock.advance_ms(60_000);
        let now = world.clock.now_ms();
        // Recorded 2 s ago; the server's listing does not have it.
        world.meeting("late", "late-1", id, now - 2_000).await;
        world
            .store
            .put_meeting_listing(&MeetingListing {
                internal_id: "late-1".into(),
                server_id: id,
                created_at_ms: now - 2_000,
                xml: String::new(),
            })
            .await
            .unwrap();
        let mut listing = beat(id, 0.0, 0.0);
        listing.listed_ago_ms = Some(listed_ago_ms);
        agents
            .heartbeat(&node("bbb1", Some(id)), listing)
            .await
            .unwrap();
        agents.flush().await.unwrap();
        let report = poller(&world).0.poll_once().await.unwrap();
        assert_eq!(
            report.ended.contains(&"late".to_owned()),
            ended,
            "listed {listed_ago_ms} ms before the heartbeat: {report:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_heartbeat_reconciles_nothing() {
    let world = World::new();
    let agents = service(&world, &ObservedLoads::default());
    let id = world.server("bbb1").await;
    world.clock.advance_ms(60_000);
    let now = world.clock.now_ms();
    world.meeting("kept", "kept-1", id, now - 40_000).await;
    let mut failing = beat(id, 0.0, 0.0);
    failing.meetings = Err("connection refused".into());
    agents
        .heartbeat(&node("bbb1", Some(id)), failing)
        .await
        .unwrap();
    agents.flush().await.unwrap();
    let report = poller(&world).0.poll_once().await.unwrap();
    assert!(report.ended.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_server_back_online_is_not_taken_offline_by_its_old_heartbeat_time() {
    let world = World::new();
    let agents = service(&world, &ObservedLoads::default());
    let watch = watch(&world);
    let id = world.server("bbb1").await;
    let principal = node("bbb1", Some(id));
    agents
        .heartbeat(&principal, beat(id, 0.0, 0.0))
        .await
        .unwrap();
    agents.flush().await.unwrap();
    world.clock.advance_ms(20_000);
    assert_eq!(watch.check_once().await.unwrap(), vec![id]);
    // Back, and the watch looks before the next flush.
    assert!(
        agents
            .heartbeat(&principal, beat(id, 1.0, 2.0))
            .await
            .unwrap()
            .online
    );
    assert!(watch.check_once().await.unwrap().is_empty());
    assert!(world.store.server(id).await.unwrap().unwrap().online);
}

#[tokio::test]
async fn an_agent_that_registers_but_never_beats_is_noticed() {
    let world = World::new();
    let agents = service(&world, &ObservedLoads::default());
    let watch = watch(&world);
    let token = node_token(&world, "bbb1").await;
    let mut registration = registration("bbb1", "s1");
    registration.report = Some(("3.0.4".into(), 5_000));
    let registered = agents.register(&token, registration).await.unwrap();
    world.clock.advance_ms(15_001);
    assert_eq!(watch.check_once().await.unwrap(), vec![registered.server]);
}

/// A poller over `world` whose backend never answers, and that backend.
fn poller(
    world: &World,
) -> (
    crate::health::HealthPoller,
    Arc<crate::memory::ScriptedBackend>,
) {
    use crate::health::{HealthConfig, HealthPoller, HealthPorts};
    use crate::memory::{NoMetrics, ScriptedBackend};
    let backend = Arc::new(ScriptedBackend::new(|_, _, _| {
        Err(crate::backend::BackendError::Timeout(
            std::time::Duration::from_secs(3),
        ))
    }));
    let ports = HealthPorts {
        store: world.store.clone(),
        executor: world.executor.clone(),
        backends: world.backends(&backend),
        scraper: Arc::new(NoMetrics),
        clock: world.shared_clock(),
    };
    let poller = HealthPoller::new(ports, HealthConfig::default(), ObservedLoads::default());
    (poller, backend)
}
