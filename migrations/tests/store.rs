//! The event store against real SQLite and PostgreSQL.

use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_domain::meeting::{EndReason, MeetingCommand, MeetingRun};
use switchboard_domain::server::{ServerChanges, ServerCommand, ServerSettings, ServerState};
use switchboard_store::test_support::{fresh_postgres, fresh_sqlite};
use switchboard_store::{Store, StoreError};

async fn stores() -> Vec<(&'static str, Store)> {
    let mut stores = Vec::new();
    for (kind, url) in [
        ("sqlite", fresh_sqlite()),
        ("postgres", fresh_postgres().await),
    ] {
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        stores.push((kind, store));
    }
    stores
}

fn meta() -> EventMetadata {
    EventMetadata::actor("test")
}

async fn server_command(store: &Store, id: ServerId, command: ServerCommand) {
    store.execute_server(id, &command, &meta()).await.unwrap();
}

async fn add_server(store: &Store, n: usize) -> ServerId {
    let id = ServerId::new();
    let settings = ServerSettings {
        url: format!("http://bbb{n}.example.org/bigbluebutton/"),
        secret: format!("secret{n}"),
        tag: None,
        load_multiplier: 1.0,
        checksum: None,
        metrics_url: (n == 2).then(|| format!("http://bbb{n}.example.org:9100/metrics")),
    };
    server_command(
        store,
        id,
        ServerCommand::Add {
            id,
            settings,
            enabled: false,
        },
    )
    .await;
    id
}

async fn meeting_command(store: &Store, name: &str, command: MeetingCommand) {
    let meeting_id = MeetingId::parse(name).unwrap();
    store
        .execute_meeting(&TenantId::default_tenant(), &meeting_id, &command, &meta())
        .await
        .unwrap();
}

fn created(name: &str, server: ServerId, at: i64) -> MeetingCommand {
    let meeting_id = MeetingId::parse(name).unwrap();
    MeetingCommand::RecordCreated {
        tenant: TenantId::default_tenant(),
        name: format!("Meeting {name}"),
        run: MeetingRun {
            internal_id: meeting_id.internal_id(at),
            server_id: server,
            create_time_ms: at,
        },
        meeting_id,
    }
}

#[tokio::test]
async fn append_checks_the_expected_version() {
    for (kind, store) in stores().await {
        let id = add_server(&store, 1).await;
        let events = vec![DomainEvent::Server(
            switchboard_domain::server::ServerEvent::ServerEnabled,
        )];
        let stale = store.append(&id.stream(), 0, &events, &meta()).await;
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{kind}: {stale:?}"
        );
        // The failed append left nothing behind: log and projection agree.
        assert_eq!(store.event_count().await.unwrap(), 1, "{kind}");
        assert_eq!(
            store.server(id).await.unwrap().unwrap().state,
            ServerState::Disabled
        );
        let ok = store
            .append(&id.stream(), 1, &events, &meta())
            .await
            .unwrap();
        assert_eq!(ok.version, 2, "{kind}");
        assert_eq!(
            store.server(id).await.unwrap().unwrap().state,
            ServerState::Enabled
        );
        let stored = store.stream_events(&id.stream()).await.unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[1].metadata.actor, "test");
    }
}

#[tokio::test]
async fn concurrent_appends_to_one_stream_keep_exactly_one() {
    for (kind, store) in stores().await {
        let id = add_server(&store, 1).await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let events = vec![DomainEvent::Server(
                    switchboard_domain::server::ServerEvent::ServerEnabled,
                )];
                store.append(&id.stream(), 1, &events, &meta()).await
            }));
        }
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(other) => panic!("{kind}: {other}"),
            }
        }
        assert_eq!(won, 1, "{kind}");
        assert_eq!(store.event_count().await.unwrap(), 2, "{kind}");
    }
}

#[tokio::test]
async fn replay_rebuilds_projections_equal_to_the_live_ones() {
    for (kind, store) in stores().await {
        let a = add_server(&store, 1).await;
        let b = add_server(&store, 2).await;
        let c = add_server(&store, 3).await;
        server_command(&store, a, ServerCommand::Enable).await;
        server_command(&store, b, ServerCommand::Enable).await;
        server_command(&store, b, ServerCommand::Cordon).await;
        server_command(&store, a, ServerCommand::MarkOffline).await;
        server_command(
            &store,
            a,
            ServerCommand::Update(ServerChanges {
                secret: Some("rotated".into()),
                tag: Some(Some("big".into())),
                load_multiplier: Some(2.5),
                metrics_url: Some(Some("https://u:p@bbb1.example.org/metrics".into())),
                ..Default::default()
            }),
        )
        .await;
        server_command(&store, c, ServerCommand::Remove).await;
        meeting_command(&store, "room-1", created("room-1", a, 1)).await;
        meeting_command(&store, "room-2", created("room-2", b, 2)).await;
        meeting_command(
            &store,
            "room-1",
            MeetingCommand::RecordEnded {
                reason: EndReason::EndCalled,
                at_ms: 3,
                only_run: None,
            },
        )
        .await;
        meeting_command(&store, "room-1", created("room-1", b, 4)).await;
        meeting_command(&store, "room-2", created("room-2", a, 5)).await;

        let live_servers = store.servers().await.unwrap();
        let metrics_urls: Vec<Option<&str>> = [a, b]
            .iter()
            .map(|id| {
                live_servers
                    .iter()
                    .find(|s| s.id == *id)
                    .and_then(|s| s.settings.metrics_url.as_deref())
            })
            .collect();
        assert_eq!(
            metrics_urls,
            [
                Some("https://u:p@bbb1.example.org/metrics"),
                Some("http://bbb2.example.org:9100/metrics")
            ],
            "{kind}"
        );
        let live_meetings = store.meetings().await.unwrap();
        assert_eq!(live_servers.len(), 2, "{kind}: removed server is gone");
        assert_eq!(live_meetings.len(), 2);
        let applied = store.replay().await.unwrap();
        assert_eq!(applied, store.event_count().await.unwrap());
        assert_eq!(store.servers().await.unwrap(), live_servers, "{kind}");
        assert_eq!(store.meetings().await.unwrap(), live_meetings, "{kind}");
        let counts = store.running_meetings_per_server().await.unwrap();
        assert_eq!(counts.get(&a), Some(&1));
        assert_eq!(counts.get(&b), Some(&1));
    }
}

#[tokio::test]
async fn settings_keep_the_first_value() {
    for (kind, store) in stores().await {
        assert_eq!(
            store.setting_or_insert("secret", "one").await.unwrap(),
            "one",
            "{kind}"
        );
        assert_eq!(
            store.setting_or_insert("secret", "two").await.unwrap(),
            "one",
            "{kind}"
        );
        assert_eq!(
            store.setting("secret").await.unwrap().as_deref(),
            Some("one")
        );
    }
}

#[tokio::test]
async fn tokens_and_the_event_filter() {
    use switchboard_domain::token::{TokenCommand, TokenScope, hash_token};
    use switchboard_store::EventFilter;
    for (kind, store) in stores().await {
        let create = TokenCommand::Create {
            name: "ops".into(),
            scope: TokenScope::Admin,
            hash: hash_token("secret-1"),
        };
        store
            .execute_token("ops", &create, &EventMetadata::actor("cli"))
            .await
            .unwrap();
        assert!(
            store.execute_token("ops", &create, &meta()).await.is_err(),
            "{kind}: exists"
        );
        let tokens = store.tokens().await.unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].hash, hash_token("secret-1"));
        store
            .execute_token("ops", &TokenCommand::Revoke, &meta())
            .await
            .unwrap();
        assert!(store.tokens().await.unwrap().is_empty(), "{kind}");
        store.execute_token("ops", &create, &meta()).await.unwrap();
        add_server(&store, 1).await;

        let by_actor = store
            .query_events(&EventFilter {
                actor: Some("cli".into()),
                ..EventFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(by_actor.len(), 1, "{kind}");
        let tokens_only = store
            .query_events(&EventFilter {
                stream: Some("token:ops".into()),
                ..EventFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(tokens_only.len(), 3);
        let page = store
            .query_events(&EventFilter {
                after: tokens_only[0].position,
                limit: 1,
                ..EventFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].position, tokens_only[1].position);
        let typed = store
            .query_events(&EventFilter {
                event_type: Some("ServerAdded".into()),
                ..EventFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(typed.len(), 1);
        let future = store
            .query_events(&EventFilter {
                from: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
                ..EventFilter::default()
            })
            .await
            .unwrap();
        assert!(future.is_empty());
        let tokens_before = store.tokens().await.unwrap();
        store.replay().await.unwrap();
        assert_eq!(store.tokens().await.unwrap(), tokens_before, "{kind}");
    }
}

#[tokio::test]
async fn samples_keep_the_windowed_metrics() {
    use switchboard_domain::server_metrics::MetricsState;
    use switchboard_store::ServerSample;
    for (kind, store) in stores().await {
        let a = add_server(&store, 1).await;
        let b = add_server(&store, 2).await;
        let hot = ServerSample {
            changed_at_ms: 10,
            polled_at_ms: 10,
            cpu_percent: Some(91.5),
            memory_percent: Some(40.25),
            metrics_state: MetricsState::Stale,
            metrics_error: Some("HTTP status 500".into()),
            metrics_read_at_ms: Some(7),
            ..ServerSample::new(a)
        };
        let plain = ServerSample {
            changed_at_ms: 10,
            ..ServerSample::new(b)
        };
        store
            .put_server_samples(&[hot.clone(), plain.clone()])
            .await
            .unwrap();
        let mut read = store.server_samples().await.unwrap();
        read.sort_by_key(|s| s.server_id != a);
        assert_eq!(read, vec![hot.clone(), plain], "{kind}");
        let cooled = ServerSample {
            changed_at_ms: 20,
            cpu_percent: None,
            metrics_state: MetricsState::Unreadable,
            ..hot
        };
        store
            .put_server_samples(std::slice::from_ref(&cooled))
            .await
            .unwrap();
        assert_eq!(
            store.server_samples_of(&[a]).await.unwrap(),
            vec![cooled],
            "{kind}: overwritten in place"
        );
    }
}
