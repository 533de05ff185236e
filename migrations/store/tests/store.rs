//! The event store against real SQLite and PostgreSQL.

use sea_orm::ConnectionTrait as _;
use switchboard_app::StoreError;
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_domain::meeting::{EndReason, MeetingCommand, MeetingRun, RunCallbacks};
use switchboard_domain::server::{ServerChanges, ServerCommand, ServerSettings, ServerState};
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;
use switchboard_store::test_support::{fresh_postgres, fresh_sqlite};
use switchboard_store::{RebuildMode, RebuildPhase, Store};

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
            recording_ready_url: None,
            callbacks: None,
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
async fn positions_between_are_the_committed_ones_in_the_range() {
    use switchboard_domain::meeting::MeetingEvent;
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        meeting_command(&store, "room-a", created("room-a", server, 1)).await;
        // A losing create of the same meeting: on PostgreSQL its position
        // was drawn from the log's sequence and stays unused.
        let meeting_id = MeetingId::parse("room-a").unwrap();
        let stream =
            switchboard_domain::ids::meeting_stream(&TenantId::default_tenant(), &meeting_id);
        let again = DomainEvent::Meeting(MeetingEvent::MeetingCreated {
            tenant: TenantId::default_tenant(),
            meeting_id: meeting_id.clone(),
            name: "again".into(),
            run: MeetingRun {
                internal_id: meeting_id.internal_id(2),
                server_id: server,
                create_time_ms: 2,
                recording_ready_url: None,
                callbacks: None,
            },
        });
        let lost = store.append(&stream, 0, &[again], &meta()).await;
        assert!(
            matches!(lost, Err(StoreError::Conflict { .. })),
            "{kind}: {lost:?}"
        );
        meeting_command(&store, "room-b", created("room-b", server, 3)).await;
        let last = store.last_position().await.unwrap();
        let all = store.positions_between(0, last).await.unwrap();
        assert_eq!(all.len(), 3, "{kind}: {all:?}");
        if kind == "postgres" {
            assert!(
                all[2] - all[1] > 1,
                "the lost create's position is unused: {all:?}"
            );
        }
        assert_eq!(all.last(), Some(&last), "{kind}");
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{kind}: oldest first");
        assert_eq!(
            store.positions_between(all[0], all[2] - 1).await.unwrap(),
            vec![all[1]],
            "{kind}: after the first, up to the last one excluded"
        );
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
async fn concurrent_creations_of_one_meeting_keep_exactly_one_with_its_rows() {
    use switchboard_domain::meeting::MeetingEvent;
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        let meeting_id = MeetingId::parse("contested").unwrap();
        let stream =
            switchboard_domain::ids::meeting_stream(&TenantId::default_tenant(), &meeting_id);
        let mut tasks = Vec::new();
        for n in 0..8 {
            let (store, stream, meeting_id) = (store.clone(), stream.clone(), meeting_id.clone());
            tasks.push(tokio::spawn(async move {
                let events = vec![DomainEvent::Meeting(MeetingEvent::MeetingCreated {
                    tenant: TenantId::default_tenant(),
                    meeting_id: meeting_id.clone(),
                    name: format!("attempt {n}"),
                    run: MeetingRun {
                        internal_id: meeting_id.internal_id(n),
                        server_id: server,
                        create_time_ms: n,
                        recording_ready_url: None,
                        callbacks: None,
                    },
                })];
                store
                    .append(&stream, 0, &events, &meta())
                    .await
                    .map(|outcome| (n, outcome))
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(won) => winners.push(won),
                Err(StoreError::Conflict { .. }) => {}
                Err(other) => panic!("{kind}: {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "{kind}");
        let (n, outcome) = winners[0];
        assert_eq!(outcome.version, 1, "{kind}");
        let record = store
            .meeting(&TenantId::default_tenant(), &meeting_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record.name,
            format!("attempt {n}"),
            "{kind}: the winner's row"
        );
        assert_eq!(record.run.internal_id, meeting_id.internal_id(n), "{kind}");
        assert_eq!(
            store.last_position().await.unwrap(),
            outcome.position,
            "{kind}"
        );
        let runs = store.meeting_run(&meeting_id.internal_id(n)).await.unwrap();
        assert!(runs.is_some(), "{kind}: the winner's run");
        for loser in (0..8).filter(|m| *m != n) {
            assert!(
                store
                    .meeting_run(&meeting_id.internal_id(loser))
                    .await
                    .unwrap()
                    .is_none(),
                "{kind}: nothing of a losing append is kept"
            );
        }
        let check = store
            .rebuild(RebuildMode::Check, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(
            check.differences,
            [],
            "{kind}: the log and projections agree"
        );
    }
}

#[tokio::test]
async fn a_creation_racing_another_append_to_its_meeting_loses_cleanly_never_deadlocks() {
    use switchboard_domain::meeting::{MeetingEvent, RunUsage};
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        for round in 0..20 {
            let name = format!("raced-{round}");
            let meeting_id = MeetingId::parse(&name).unwrap();
            let stream =
                switchboard_domain::ids::meeting_stream(&TenantId::default_tenant(), &meeting_id);
            meeting_command(&store, &name, created(&name, server, 0)).await;
            let ended = MeetingCommand::RecordEnded {
                reason: EndReason::EndCalled,
                at_ms: 10,
                only_run: None,
            };
            meeting_command(&store, &name, ended).await;
            // At version 2: the usage summary (an append in a transaction
            // that updates the meeting's row) and a new run's creation race.
            let summary = vec![DomainEvent::Meeting(MeetingEvent::MeetingUsageSummarized {
                usage: RunUsage {
                    internal_id: meeting_id.internal_id(0),
                    server_id: server,
                    started_ms: 0,
                    ended_ms: 10,
                    peak_attendees: 1,
                    attendee_seconds: 1,
                    peak_video: 0,
                    recordable: false,
                },
            })];
            let again = vec![DomainEvent::Meeting(MeetingEvent::MeetingCreated {
                tenant: TenantId::default_tenant(),
                meeting_id: meeting_id.clone(),
                name: name.clone(),
                run: MeetingRun {
                    internal_id: meeting_id.internal_id(20),
                    server_id: server,
                    create_time_ms: 20,
                    recording_ready_url: None,
                    callbacks: None,
                },
            })];
            let metadata = meta();
            let (first, second) = tokio::join!(
                store.append(&stream, 2, &summary, &metadata),
                store.append(&stream, 2, &again, &metadata)
            );
            let outcomes = [first, second];
            let won = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
            assert_eq!(won, 1, "{kind} round {round}: {outcomes:?}");
            assert!(
                outcomes
                    .iter()
                    .all(|outcome| matches!(outcome, Ok(_) | Err(StoreError::Conflict { .. }))),
                "{kind} round {round}: {outcomes:?}"
            );
        }
        let check = store
            .rebuild(RebuildMode::Check, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(check.differences, [], "{kind}");
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
        let check = store
            .rebuild(RebuildMode::Check, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(check.differences, [], "{kind}: the live projections agree");
        // A projection row changed behind the log's back is reported, and
        // nothing is changed by the check.
        store
            .connection()
            .execute_unprepared(&format!(
                "UPDATE servers SET state = 'enabled' WHERE id = '{b}'"
            ))
            .await
            .unwrap();
        let check = store
            .rebuild(RebuildMode::Check, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(
            check.differences.len(),
            1,
            "{kind}: {:?}",
            check.differences
        );
        let difference = &check.differences[0];
        assert_eq!(
            (
                difference.table.as_str(),
                difference.only_live,
                difference.only_rebuilt
            ),
            ("servers", 1, 1),
            "{kind}"
        );
        assert_eq!(difference.examples, [b.to_string()], "{kind}");
        assert_ne!(store.servers().await.unwrap(), live_servers, "{kind}");
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
    use switchboard_app::records::EventFilter;
    use switchboard_domain::token::{TokenCommand, TokenScope, hash_token};
    for (kind, store) in stores().await {
        let create = TokenCommand::Create {
            name: "ops".into(),
            scope: TokenScope::Admin,
            hash: hash_token("secret-1"),
            server: None,
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
        let newest = store
            .query_events(&EventFilter {
                stream: Some("token:ops".into()),
                limit: 2,
                newest_first: true,
                ..EventFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(
            newest.iter().map(|e| e.position).collect::<Vec<_>>(),
            vec![tokens_only[2].position, tokens_only[1].position],
            "{kind}: the last two, newest first"
        );
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
    use switchboard_app::records::ServerSample;
    use switchboard_domain::server_metrics::MetricsState;
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
            video: 12,
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

/// A poll writes new listings whole and leaves the stored listing of a
/// sample whose listing did not change; its figures are read with each
/// listing's digest instead of the listing.
#[tokio::test]
async fn polled_samples_keep_their_stored_listing_unless_given_a_new_one() {
    use switchboard_app::records::{ServerSample, listing_digest};
    for (kind, store) in stores().await {
        let a = add_server(&store, 1).await;
        let b = add_server(&store, 2).await;
        let listed = ServerSample {
            changed_at_ms: 10,
            meetings: 1,
            meetings_xml: "<meeting><meetingID>m</meetingID></meeting>".into(),
            ..ServerSample::new(a)
        };
        store
            .put_polled_samples(std::slice::from_ref(&listed), &[], &[])
            .await
            .unwrap();
        // Figures only: a's listing stays; b, never sampled, gets none.
        let failed = ServerSample {
            changed_at_ms: 20,
            failures: 1,
            meetings_xml: Default::default(),
            ..listed.clone()
        };
        let fresh = ServerSample {
            changed_at_ms: 20,
            meetings_xml: "<meeting>ignored</meeting>".into(),
            ..ServerSample::new(b)
        };
        store
            .put_polled_samples(&[], &[failed.clone(), fresh.clone()], &[])
            .await
            .unwrap();
        let stored_a = store.server_samples_of(&[a]).await.unwrap();
        assert_eq!(
            stored_a,
            vec![ServerSample {
                meetings_xml: listed.meetings_xml.clone(),
                ..failed.clone()
            }],
            "{kind}: figures written, listing kept"
        );
        let stored_b = store.server_samples_of(&[b]).await.unwrap();
        assert_eq!(stored_b[0].meetings_xml.as_ref(), "", "{kind}");
        assert_eq!(stored_b[0].changed_at_ms, 20, "{kind}");
        let mut figures = store.server_sample_figures().await.unwrap();
        figures.sort_by_key(|(sample, _)| sample.server_id != a);
        assert_eq!(
            figures,
            vec![
                (failed, listing_digest(&listed.meetings_xml)),
                (
                    ServerSample {
                        meetings_xml: Default::default(),
                        ..fresh
                    },
                    listing_digest("")
                ),
            ],
            "{kind}"
        );
    }
}

/// A listing written ahead of its figures: stored at once (a server
/// never sampled gets a row), its digest marked until the figures come with
/// it, and left 0 when another writer replaced the listing in between.
#[tokio::test]
async fn a_listing_written_ahead_gets_its_digest_with_the_figures() {
    use switchboard_app::records::{ServerSample, digest_written_ahead, listing_digest};
    for (kind, store) in stores().await {
        let a = add_server(&store, 1).await;
        let xml = "<meeting><meetingID>m</meetingID></meeting>";
        store
            .put_sample_listing(a, xml, listing_digest(xml))
            .await
            .unwrap();
        let stored = store.server_samples_of(&[a]).await.unwrap();
        assert_eq!(stored[0].meetings_xml.as_ref(), xml, "{kind}");
        assert_eq!(stored[0].changed_at_ms, 0, "{kind}");
        let figures = store.server_sample_figures().await.unwrap();
        assert_eq!(
            figures[0].1,
            digest_written_ahead(listing_digest(xml)),
            "{kind}: marked before the figures"
        );

        let sample = ServerSample {
            changed_at_ms: 30,
            meetings: 1,
            ..ServerSample::new(a)
        };
        store
            .put_polled_samples(&[], &[], &[(sample.clone(), listing_digest(xml))])
            .await
            .unwrap();
        let figures = store.server_sample_figures().await.unwrap();
        assert_eq!(
            figures,
            vec![(sample.clone(), listing_digest(xml))],
            "{kind}"
        );
        let stored = store.server_samples_of(&[a]).await.unwrap();
        assert_eq!(stored[0].meetings_xml.as_ref(), xml, "{kind}: listing kept");

        // Written ahead, then replaced by another writer before the figures:
        // the digest is not the stored listing's, so it is left 0.
        let other = "<meeting><meetingID>other</meetingID></meeting>";
        store
            .put_sample_listing(a, xml, listing_digest(xml))
            .await
            .unwrap();
        store
            .put_sample_listing(a, other, listing_digest(other))
            .await
            .unwrap();
        store
            .put_polled_samples(&[], &[], &[(sample.clone(), listing_digest(xml))])
            .await
            .unwrap();
        let figures = store.server_sample_figures().await.unwrap();
        assert_eq!(figures, vec![(sample, 0)], "{kind}: digest left 0");
    }
}

#[tokio::test]
async fn the_series_keeps_one_point_per_server_and_minute_and_prunes_by_age() {
    use switchboard_app::records::SeriesPoint;
    for (kind, store) in stores().await {
        let a = add_server(&store, 1).await;
        let b = add_server(&store, 2).await;
        let point = |server, at_ms, meetings| SeriesPoint {
            server_id: server,
            at_ms,
            online: true,
            meetings,
            attendees: meetings * 10,
            video: meetings * 2,
            load: meetings as f64 * 1.5,
            cpu_percent: (server == a).then_some(42.5),
            memory_percent: None,
        };
        store
            .record_series(&[point(a, 60_000, 1), point(b, 60_000, 2)])
            .await
            .unwrap();
        // The same minute again: replaced, not added.
        store
            .record_series(&[point(a, 60_000, 3), point(a, 120_000, 4)])
            .await
            .unwrap();
        assert_eq!(
            store.series_since(0, None).await.unwrap(),
            vec![
                point(a, 60_000, 3),
                point(b, 60_000, 2),
                point(a, 120_000, 4)
            ],
            "{kind}"
        );
        assert_eq!(
            store.series_since(0, Some(b)).await.unwrap(),
            vec![point(b, 60_000, 2)],
            "{kind}"
        );
        assert_eq!(store.prune_series(120_000).await.unwrap(), 2, "{kind}");
        assert_eq!(
            store.series_since(0, None).await.unwrap(),
            vec![point(a, 120_000, 4)],
            "{kind}"
        );
    }
}

mod recordings {
    use super::*;
    use std::collections::BTreeMap;
    use switchboard_app::records::RecordingQuery;
    use switchboard_domain::recording::{RecordingCommand, RecordingDetails, RecordingFormat};

    fn record_id(meeting: &str, at: i64) -> String {
        MeetingId::parse(meeting).unwrap().internal_id(at)
    }

    fn import(
        tenant: &str,
        meeting: &str,
        at: i64,
        format: &str,
        origin: &str,
    ) -> RecordingCommand {
        RecordingCommand::Import {
            details: RecordingDetails {
                tenant: TenantId(tenant.into()),
                meeting_id: meeting.into(),
                internal_meeting_id: record_id(meeting, at),
                name: format!("Name {meeting}"),
                is_breakout: false,
                published: true,
                start_time_ms: at,
                end_time_ms: at + 1000,
                participants: 2,
                metadata: BTreeMap::from([("bbb-origin".into(), origin.into())]),
                breakout: None,
                breakout_rooms: Vec::new(),
            },
            formats: vec![RecordingFormat {
                format: format.into(),
                url: format!("https://bbb/playback/{format}/2.3/x"),
                processing_time_ms: 1,
                length_ms: 120_000,
                bytes: 0,
                images: vec![],
            }],
        }
    }

    /// Issue 19.3: pages deep in a tenant's recordings find their start
    /// through the bucket counts; every page is the slice of the full
    /// ordered list, across bucket edges at every level, bursts of equal
    /// start times, other tenants and states, changes, and a replay.
    #[tokio::test]
    async fn deep_pages_are_exact_slices_of_the_ordered_recordings() {
        for (kind, store) in stores().await {
            // Just before a level-3 (2^32 ms) edge; 37 s apart, with bursts
            // of 20 at one instant, crossing level-1 and level-2 edges.
            let base = (413_i64 << 32) - 10 * 3_600_000;
            let mut at = base;
            let mut ids = Vec::new();
            for i in 0..2_600 {
                if i % 100 != 0 || i == 0 {
                    at += 37_000;
                }
                let meeting = format!("m{i}");
                let tenant = if i % 13 == 0 { "other" } else { "school" };
                let id = record_id(&meeting, at);
                store
                    .execute_recording(
                        &id,
                        &import(tenant, &meeting, at, "presentation", "x"),
                        &meta(),
                    )
                    .await
                    .unwrap();
                ids.push((id, tenant));
            }
            for (n, (id, _)) in ids.iter().enumerate().filter(|(n, _)| n % 7 == 0) {
                let command = if n % 2 == 0 {
                    RecordingCommand::SetPublished(false)
                } else {
                    RecordingCommand::Delete
                };
                store
                    .execute_recording(id, &command, &meta())
                    .await
                    .unwrap();
            }
            for round in ["live", "replayed"] {
                for states in [
                    Some(vec!["published".to_owned(), "unpublished".to_owned()]),
                    None,
                ] {
                    let mut all = RecordingQuery::new(TenantId("school".into()));
                    all.states = states;
                    let full: Vec<String> = store
                        .find_recordings(&all)
                        .await
                        .unwrap()
                        .recordings
                        .into_iter()
                        .map(|r| r.record_id)
                        .collect();
                    let total = full.len() as u64;
                    assert!(total > 2_000, "{kind}: {total}");
                    for offset in [
                        0,
                        999,
                        1_001,
                        1_100,
                        1_234,
                        1_500,
                        1_777,
                        total - 1_001,
                        total - 100,
                        total - 1,
                    ] {
                        let mut page = all.clone();
                        page.offset = offset;
                        page.limit = Some(100);
                        let found = store.find_recordings(&page).await.unwrap();
                        assert_eq!(found.total, Some(total), "{kind} {round}");
                        let got: Vec<&str> = found
                            .recordings
                            .iter()
                            .map(|r| r.record_id.as_str())
                            .collect();
                        let end = (offset + 100).min(total) as usize;
                        let want: Vec<&str> = full[offset as usize..end]
                            .iter()
                            .map(String::as_str)
                            .collect();
                        assert_eq!(got, want, "{kind} {round}: page at {offset}");
                    }
                }
                let check = store
                    .rebuild(RebuildMode::Check, &mut |_| {})
                    .await
                    .unwrap();
                assert!(
                    check.differences.is_empty(),
                    "{kind} {round}: {:?}",
                    check.differences
                );
                store.replay().await.unwrap();
            }
            // Counts left stale (an older binary appending after the
            // upgrade) are never trusted: the page walks and stays exact.
            store
                .connection()
                .execute_unprepared(
                    "UPDATE recording_buckets SET count = count + 3 WHERE level = 1",
                )
                .await
                .unwrap();
            let mut all = RecordingQuery::new(TenantId("school".into()));
            let full: Vec<String> = store
                .find_recordings(&all)
                .await
                .unwrap()
                .recordings
                .into_iter()
                .map(|r| r.record_id)
                .collect();
            all.offset = 1_200;
            all.limit = Some(50);
            let got: Vec<String> = store
                .find_recordings(&all)
                .await
                .unwrap()
                .recordings
                .into_iter()
                .map(|r| r.record_id)
                .collect();
            assert_eq!(got, full[1_200..1_250], "{kind}: stale buckets");
        }
    }

    #[tokio::test]
    async fn recordings_count_in_their_tenants_usage_with_their_sizes() {
        use switchboard_app::records::UsageFilter;
        for (kind, store) in stores().await {
            let day = 1_796_083_200_000; // 2026-12-01T00:00:00Z
            for (tenant, meeting, at, bytes) in [
                ("school", "lecture", day + 1, 1_000_u64),
                ("school", "lab", day + 2, 250),
                ("college", "seminar", day + 3, 40),
                ("school", "late", day + 86_400_000, 7),
            ] {
                let id = record_id(meeting, at);
                let mut command = import(tenant, meeting, at, "presentation", "Moodle");
                if let RecordingCommand::Import { formats, .. } = &mut command {
                    formats[0].bytes = bytes;
                }
                store
                    .execute_recording(&id, &command, &meta())
                    .await
                    .unwrap();
            }
            // A deleted recording still counts in the period it was made in.
            store
                .execute_recording(
                    &record_id("lab", day + 2),
                    &RecordingCommand::Delete,
                    &meta(),
                )
                .await
                .unwrap();
            let filter = UsageFilter {
                tenant: Some(TenantId("school".into())),
                from_ms: Some(day),
                to_ms: Some(day + 86_400_000),
            };
            let mut found: Vec<(String, u64)> = store
                .recording_usage(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|usage| (usage.tenant.0, usage.bytes))
                .collect();
            found.sort();
            assert_eq!(
                found,
                [("school".to_owned(), 250), ("school".to_owned(), 1_000)],
                "{kind}"
            );
        }
    }

    #[tokio::test]
    async fn recordings_project_filter_page_and_replay() {
        for (kind, store) in stores().await {
            let a1 = record_id("room-a", 1_700_000_000_001);
            let a2 = record_id("room-a", 1_700_000_000_002);
            let b1 = record_id("room-b", 1_700_000_000_003);
            for (id, meeting, at, origin) in [
                (&a1, "room-a", 1_700_000_000_001, "Moodle"),
                (&a2, "room-a", 1_700_000_000_002, "Greenlight"),
                (&b1, "room-b", 1_700_000_000_003, "Moodle"),
            ] {
                let done = store
                    .execute_recording(
                        id,
                        &import("default", meeting, at, "presentation", origin),
                        &meta(),
                    )
                    .await
                    .unwrap();
                assert_eq!(done.events.len(), 1, "{kind}");
            }
            // Another tenant's recording never shows.
            let other = record_id("room-a", 1_700_000_000_009);
            store
                .execute_recording(
                    &other,
                    &import("t2", "room-a", 1_700_000_000_009, "presentation", "Moodle"),
                    &meta(),
                )
                .await
                .unwrap();
            // The same archive again: nothing; a second format merges.
            let again = store
                .execute_recording(
                    &a1,
                    &import(
                        "default",
                        "room-a",
                        1_700_000_000_001,
                        "presentation",
                        "Moodle",
                    ),
                    &meta(),
                )
                .await
                .unwrap();
            assert!(again.events.is_empty(), "{kind}");
            store
                .execute_recording(
                    &a1,
                    &import("default", "room-a", 1_700_000_000_001, "video", "Moodle"),
                    &meta(),
                )
                .await
                .unwrap();
            assert_eq!(
                store.recording(&a1).await.unwrap().unwrap().formats.len(),
                2
            );

            let default = TenantId::default_tenant();
            let mut query = RecordingQuery::new(default.clone());
            query.meeting_ids = vec!["room-a".into()];
            let page = store.find_recordings(&query).await.unwrap();
            let ids: Vec<_> = page
                .recordings
                .iter()
                .map(|r| r.record_id.clone())
                .collect();
            assert_eq!(ids, vec![a1.clone(), a2.clone()], "{kind}");
            assert_eq!(page.total, None);

            let mut query = RecordingQuery::new(default.clone());
            query.record_id_prefixes = vec![b1[..45].to_owned()];
            assert_eq!(
                store
                    .find_recordings(&query)
                    .await
                    .unwrap()
                    .recordings
                    .len(),
                1,
                "{kind}"
            );

            let mut query = RecordingQuery::new(default.clone());
            query.meta = vec![("bbb-origin".into(), "Moodle".into())];
            query.limit = Some(1);
            query.offset = 1;
            let page = store.find_recordings(&query).await.unwrap();
            assert_eq!(page.total, Some(2), "{kind}");
            assert_eq!(page.recordings[0].record_id, b1, "{kind}");

            store
                .execute_recording(&a2, &RecordingCommand::SetPublished(false), &meta())
                .await
                .unwrap();
            store
                .execute_recording(&a1, &RecordingCommand::Delete, &meta())
                .await
                .unwrap();
            let mut query = RecordingQuery::new(default.clone());
            query.states = Some(vec!["unpublished".into()]);
            let page = store.find_recordings(&query).await.unwrap();
            assert_eq!(page.recordings.len(), 1, "{kind}");
            assert_eq!(page.recordings[0].record_id, a2);
            let all = RecordingQuery::new(default.clone());
            assert_eq!(
                store.find_recordings(&all).await.unwrap().recordings.len(),
                2,
                "{kind}"
            );
            store
                .execute_recording(
                    &b1,
                    &RecordingCommand::UpdateMetadata {
                        set: BTreeMap::from([("k".into(), "v".into())]),
                        remove: vec!["bbb-origin".into()],
                    },
                    &meta(),
                )
                .await
                .unwrap();

            let before: Vec<_> = store
                .find_recordings(&RecordingQuery {
                    states: None,
                    ..RecordingQuery::new(default.clone())
                })
                .await
                .unwrap()
                .recordings;
            store.replay().await.unwrap();
            let after: Vec<_> = store
                .find_recordings(&RecordingQuery {
                    states: None,
                    ..RecordingQuery::new(default.clone())
                })
                .await
                .unwrap()
                .recordings;
            assert_eq!(before, after, "{kind}: replay rebuilds the same rows");
            let mut query = RecordingQuery::new(default.clone());
            query.meta = vec![("k".into(), "v".into())];
            assert_eq!(
                store
                    .find_recordings(&query)
                    .await
                    .unwrap()
                    .recordings
                    .len(),
                1,
                "{kind}"
            );
        }
    }

    /// Every page (`limit` with offsets across the range, from either end)
    /// and `totalElements` of a query against the full unpaged listing.
    async fn check_pages(store: &Store, kind: &str, query: &RecordingQuery) {
        let mut all_query = query.clone();
        all_query.offset = 0;
        all_query.limit = None;
        let all: Vec<String> = store
            .find_recordings(&all_query)
            .await
            .unwrap()
            .recordings
            .into_iter()
            .map(|r| r.record_id)
            .collect();
        for limit in [1u64, 2, 3, 100] {
            for offset in 0..=all.len() as u64 + 1 {
                let mut paged = query.clone();
                paged.offset = offset;
                paged.limit = Some(limit);
                let page = store.find_recordings(&paged).await.unwrap();
                assert_eq!(
                    page.total,
                    Some(all.len() as u64),
                    "{kind}: total of {query:?}"
                );
                let ids: Vec<String> = page.recordings.into_iter().map(|r| r.record_id).collect();
                let expected: Vec<String> = all
                    .iter()
                    .skip(offset as usize)
                    .take(limit as usize)
                    .cloned()
                    .collect();
                assert_eq!(ids, expected, "{kind}: offset {offset} limit {limit}");
            }
        }
    }

    /// The queries whose totals come from `recording_counts`, and one that
    /// counts rows, for one tenant.
    fn count_queries(tenant: &str) -> Vec<RecordingQuery> {
        let base = RecordingQuery::new(TenantId(tenant.into()));
        let states = |list: &[&str]| RecordingQuery {
            states: Some(list.iter().map(|s| s.to_string()).collect()),
            ..base.clone()
        };
        vec![
            base.clone(),
            RecordingQuery {
                states: None,
                ..base.clone()
            },
            states(&["published"]),
            states(&["unpublished"]),
            states(&["deleted"]),
            states(&[]),
            RecordingQuery {
                meeting_ids: vec!["room-c".into()],
                ..base.clone()
            },
        ]
    }

    #[tokio::test]
    async fn total_elements_stay_exact_through_changes_and_replay() {
        for (kind, store) in stores().await {
            let mut ids = Vec::new();
            // Out of start-time order, two tenants, equal start times.
            for (n, at) in [5i64, 1, 4, 1, 3, 2, 6].into_iter().enumerate() {
                let meeting = if n % 2 == 0 { "room-c" } else { "room-d" };
                let created = 1_700_000_000_000 + n as i64;
                let id = record_id(meeting, created);
                let mut command = import("default", meeting, created, "presentation", "Moodle");
                if let RecordingCommand::Import { details, .. } = &mut command {
                    details.start_time_ms = 1_700_000_000_000 + at;
                }
                store
                    .execute_recording(&id, &command, &meta())
                    .await
                    .unwrap();
                ids.push(id);
            }
            let other = record_id("room-c", 1_700_000_000_100);
            store
                .execute_recording(
                    &other,
                    &import("t2", "room-c", 1_700_000_000_100, "presentation", "Moodle"),
                    &meta(),
                )
                .await
                .unwrap();
            let check = async |stage: &str| {
                for query in count_queries("default").iter().chain(&count_queries("t2")) {
                    check_pages(&store, &format!("{kind} {stage}"), query).await;
                }
                for query in count_queries("nobody") {
                    let mut paged = query.clone();
                    paged.limit = Some(10);
                    assert_eq!(
                        store.find_recordings(&paged).await.unwrap().total,
                        Some(0),
                        "{kind} {stage}"
                    );
                }
            };
            check("imported").await;
            let published = |on: bool| RecordingCommand::SetPublished(on);
            for (id, command) in [
                (&ids[0], published(false)),
                (&ids[1], published(false)),
                (&ids[1], published(true)),
                (&ids[2], published(false)),
                (&ids[2], RecordingCommand::Delete),
                (&ids[3], RecordingCommand::Delete),
                (&other, published(false)),
            ] {
                store
                    .execute_recording(id, &command, &meta())
                    .await
                    .unwrap();
            }
            check("changed").await;
            let unpublished = RecordingQuery {
                states: Some(vec!["unpublished".into()]),
                limit: Some(10),
                ..RecordingQuery::new(TenantId::default_tenant())
            };
            assert_eq!(
                store.find_recordings(&unpublished).await.unwrap().total,
                Some(1),
                "{kind}"
            );
            let deleted = RecordingQuery {
                states: Some(vec!["deleted".into()]),
                ..unpublished.clone()
            };
            assert_eq!(
                store.find_recordings(&deleted).await.unwrap().total,
                Some(2),
                "{kind}"
            );
            let live = RecordingQuery {
                limit: Some(10),
                ..RecordingQuery::new(TenantId::default_tenant())
            };
            assert_eq!(
                store.find_recordings(&live).await.unwrap().total,
                Some(5),
                "{kind}"
            );
            store.replay().await.unwrap();
            check("replayed").await;
            assert_eq!(
                store.find_recordings(&live).await.unwrap().total,
                Some(5),
                "{kind}"
            );
        }
    }

    #[tokio::test]
    async fn meeting_runs_keep_every_run_and_replay_rebuilds_them() {
        for (kind, store) in stores().await {
            let server = add_server(&store, 1).await;
            let first = 1_700_000_000_000;
            let mut command = created("room-r", server, first);
            if let MeetingCommand::RecordCreated { run, .. } = &mut command {
                run.recording_ready_url = Some("https://fe/ready".into());
            }
            meeting_command(&store, "room-r", command).await;
            meeting_command(&store, "room-r", created("room-r", server, first + 5)).await;
            let id = MeetingId::parse("room-r").unwrap();
            let old = store
                .meeting_run(&id.internal_id(first))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                old.recording_ready_url.as_deref(),
                Some("https://fe/ready"),
                "{kind}"
            );
            assert_eq!(old.tenant, TenantId::default_tenant());
            store.replay().await.unwrap();
            assert!(
                store
                    .meeting_run(&id.internal_id(first))
                    .await
                    .unwrap()
                    .is_some(),
                "{kind}"
            );
            assert!(
                store
                    .meeting_run(&id.internal_id(first + 5))
                    .await
                    .unwrap()
                    .is_some(),
                "{kind}"
            );
        }
    }

    #[tokio::test]
    async fn used_tokens_are_claimed_once() {
        for (kind, store) in stores().await {
            assert!(store.claim_token("n1", 200, 100).await.unwrap(), "{kind}");
            assert!(!store.claim_token("n1", 200, 100).await.unwrap(), "{kind}");
            assert!(store.claim_token("n2", 200, 100).await.unwrap(), "{kind}");
        }
    }
}

/// Issue 15.A1: a second record of a run (an adoption under another
/// tenant) neither takes the run over nor clears its callback URL, on both
/// databases, live and after a replay.
#[tokio::test]
async fn a_runs_first_owner_and_callback_are_kept() {
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        let run = MeetingRun {
            internal_id: "run-1".into(),
            server_id: server,
            create_time_ms: 1000,
            recording_ready_url: Some("https://app.example.org/ready".into()),
            callbacks: Some(Box::new(RunCallbacks {
                nonce: "nonce-1".into(),
                end_callback_url: Some("https://app.example.org/end?x=1".into()),
                signed_with: Some("sha256:01234567".into()),
                ..RunCallbacks::default()
            })),
        };
        let acme = TenantId("acme".into());
        let room = MeetingId::parse("room-1").unwrap();
        store
            .execute_meeting(
                &acme,
                &room,
                &MeetingCommand::RecordCreated {
                    tenant: acme.clone(),
                    meeting_id: room.clone(),
                    name: "Room".into(),
                    run: run.clone(),
                },
                &meta(),
            )
            .await
            .unwrap();
        let default = TenantId::default_tenant();
        store
            .execute_meeting(
                &default,
                &room,
                &MeetingCommand::RecordCreated {
                    tenant: default.clone(),
                    meeting_id: room.clone(),
                    name: "room-1".into(),
                    run: MeetingRun {
                        recording_ready_url: None,
                        callbacks: None,
                        ..run.clone()
                    },
                },
                &meta(),
            )
            .await
            .unwrap();
        for when in ["live", "after replay"] {
            if when == "after replay" {
                store.replay().await.unwrap();
            }
            let kept = store.meeting_run("run-1").await.unwrap().unwrap();
            assert_eq!(kept.tenant, acme, "{kind} {when}");
            assert_eq!(
                kept.recording_ready_url.as_deref(),
                Some("https://app.example.org/ready"),
                "{kind} {when}"
            );
            assert_eq!(
                kept.callbacks.as_ref(),
                run.callbacks.as_deref(),
                "{kind} {when}"
            );
            let by_nonce = store.meeting_run_by_nonce("nonce-1").await.unwrap();
            assert_eq!(
                by_nonce.map(|run| run.internal_id).as_deref(),
                Some("run-1")
            );
        }
    }
}

/// The callback outbox on both databases: written with an event in one
/// transaction (nothing when the append conflicts), claimed once per attempt,
/// finished only by the attempt that holds it, listed, retried and dropped.
#[tokio::test]
async fn the_callback_outbox_claims_each_attempt_once() {
    use switchboard_app::records::{
        AttemptOutcome, CallbackFilter, CallbackKind, CallbackSigning, CallbackState, NewCallback,
    };
    use switchboard_domain::aggregate::Aggregate;
    use switchboard_domain::ids::StreamId;
    let delivery = |id: &str| NewCallback {
        id: id.into(),
        kind: CallbackKind::Analytics,
        tenant: TenantId("acme".into()),
        meeting_id: "room-1".into(),
        method: "POST".into(),
        url: "https://lms.example/a?b=1".into(),
        content_type: Some("application/json".into()),
        body: Some("{}".into()),
        signing: CallbackSigning::BearerHs512 {
            secret: Some("sha256:01234567".into()),
        },
        created_at_ms: 1_000,
        due_ms: 1_000,
        deadline_ms: 100_000,
    };
    for (kind, store) in stores().await {
        let server = ServerId::new();
        let added = ServerCommand::Add {
            id: server,
            settings: ServerSettings {
                url: "https://bbb.example/bigbluebutton/".into(),
                secret: "s".repeat(20),
                tag: None,
                load_multiplier: 1.0,
                checksum: None,
                metrics_url: None,
            },
            enabled: true,
        };
        let events: Vec<DomainEvent> = switchboard_domain::server::Server::default()
            .decide(&added)
            .unwrap()
            .into_iter()
            .map(Into::into)
            .collect();
        let stream = StreamId::Server(server);
        store
            .append_with_callbacks(&stream, 0, &events, &meta(), &[delivery("c1")])
            .await
            .unwrap();
        // A conflicting append writes neither its events nor its callbacks.
        let lost = store
            .append_with_callbacks(&stream, 0, &events, &meta(), &[delivery("c2")])
            .await;
        assert!(matches!(lost, Err(StoreError::Conflict { .. })), "{kind}");
        assert!(store.callback("c2").await.unwrap().is_none(), "{kind}");
        // Written again with the same id: kept once.
        store
            .append_with_callbacks(&stream, 1, &[], &meta(), &[delivery("c1")])
            .await
            .unwrap();
        let record = store.callback("c1").await.unwrap().unwrap();
        assert_eq!(record.callback, delivery("c1"), "{kind}");
        assert_eq!(record.state, CallbackState::Pending);
        assert!(
            store
                .claim_due_callbacks(999, 5_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{kind}: not due yet"
        );
        assert_eq!(
            store.claim_due_callbacks(1_000, 5_000, 10).await.unwrap(),
            vec![("c1".to_owned(), 1)],
            "{kind}"
        );
        assert!(
            store
                .claim_due_callbacks(4_999, 9_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{kind}: leased"
        );
        let retry = AttemptOutcome::RetryAt {
            at_ms: 6_000,
            status: Some(503),
            error: "HTTP 503".into(),
        };
        assert!(
            !store
                .finish_callback_attempt("c1", 2, &retry, 1_100)
                .await
                .unwrap(),
            "{kind}: not its attempt"
        );
        assert!(
            store
                .finish_callback_attempt("c1", 1, &retry, 1_100)
                .await
                .unwrap(),
            "{kind}"
        );
        assert_eq!(
            store.claim_due_callbacks(6_000, 9_000, 10).await.unwrap(),
            vec![("c1".to_owned(), 2)],
            "{kind}"
        );
        let failed = AttemptOutcome::Failed {
            status: Some(410),
            error: "gone".into(),
        };
        assert!(
            store
                .finish_callback_attempt("c1", 2, &failed, 6_100)
                .await
                .unwrap()
        );
        let record = store.callback("c1").await.unwrap().unwrap();
        assert_eq!(
            (record.state, record.last_status, record.attempts),
            (CallbackState::Failed, Some(410), 2),
            "{kind}"
        );
        let counts = store.callback_counts().await.unwrap();
        assert_eq!(
            counts,
            vec![(CallbackKind::Analytics, CallbackState::Failed, 1)],
            "{kind}"
        );
        let failed_list = store
            .callbacks(&CallbackFilter {
                state: Some(CallbackState::Failed),
                tenant: Some(TenantId("acme".into())),
                kind: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(failed_list.len(), 1, "{kind}");
        assert!(
            store.retry_callback("c1", 7_000, 50_000).await.unwrap(),
            "{kind}"
        );
        assert_eq!(
            store.claim_due_callbacks(7_000, 9_000, 10).await.unwrap(),
            vec![("c1".to_owned(), 3)],
            "{kind}"
        );
        let delivered = AttemptOutcome::Delivered { status: 204 };
        assert!(
            store
                .finish_callback_attempt("c1", 3, &delivered, 7_100)
                .await
                .unwrap()
        );
        assert!(
            !store.drop_callback("c1", 8_000).await.unwrap(),
            "{kind}: delivered stays"
        );
        assert!(
            !store.retry_callback("c1", 8_000, 9_000).await.unwrap(),
            "{kind}: delivered stays"
        );
        let record = store.callback("c1").await.unwrap().unwrap();
        assert_eq!(record.state, CallbackState::Delivered, "{kind}");
        assert_eq!(record.finished_at_ms, Some(7_100), "{kind}");
        // A later write of a pending, unattempted delivery replaces its URL
        // and due time (the server's own call over polling's fallback)...
        let mut fallback = delivery("c4");
        fallback.url = "https://lms.example/end?recordingmarks=false".into();
        fallback.due_ms = 60_000;
        store
            .append_with_callbacks(&stream, 1, &[], &meta(), &[fallback])
            .await
            .unwrap();
        let mut server_call = delivery("c4");
        server_call.url = "https://lms.example/end?recordingmarks=true".into();
        server_call.due_ms = 8_000;
        store
            .append_with_callbacks(&stream, 1, &[], &meta(), &[server_call.clone()])
            .await
            .unwrap();
        let record = store.callback("c4").await.unwrap().unwrap();
        assert_eq!(record.callback.url, server_call.url, "{kind}");
        assert_eq!(record.next_attempt_ms, 8_000, "{kind}");
        // ...but never one that was attempted.
        store.claim_due_callbacks(8_000, 9_000, 10).await.unwrap();
        let mut late = delivery("c4");
        late.url = "https://lms.example/other".into();
        store
            .append_with_callbacks(&stream, 1, &[], &meta(), &[late])
            .await
            .unwrap();
        let record = store.callback("c4").await.unwrap().unwrap();
        assert_eq!(record.callback.url, server_call.url, "{kind}");
        assert_eq!(record.attempts, 1, "{kind}");
    }
}

/// Webhooks are a projection of their streams on both databases: listed in
/// registration order, gone once removed, the same after a replay.
#[tokio::test]
async fn hooks_are_projected_and_replayed() {
    use switchboard_domain::hook::{HookEvent, HookSettings};
    use switchboard_domain::ids::StreamId;
    let settings = |url: &str| HookSettings {
        tenant: TenantId("acme".into()),
        callback_url: url.into(),
        meeting_id: Some("room-1".into()),
        event_ids: None,
        get_raw: false,
        algorithm: "sha1".into(),
        signed_with: None,
    };
    for (kind, store) in stores().await {
        for (id, url) in [
            ("h-2", "https://a.example/2"),
            ("h-1", "https://a.example/1"),
        ] {
            let registered = HookEvent::HookRegistered {
                hook: settings(url),
            };
            store
                .append(&StreamId::Hook(id.into()), 0, &[registered.into()], &meta())
                .await
                .unwrap();
        }
        store
            .append(
                &StreamId::Hook("h-2".into()),
                1,
                &[HookEvent::HookRemoved.into()],
                &meta(),
            )
            .await
            .unwrap();
        for when in ["live", "after replay"] {
            if when == "after replay" {
                store.replay().await.unwrap();
            }
            let hooks = store.hooks().await.unwrap();
            assert_eq!(hooks.len(), 1, "{kind} {when}");
            assert_eq!(hooks[0].id, "h-1", "{kind} {when}");
            assert_eq!(
                hooks[0].settings,
                settings("https://a.example/1"),
                "{kind} {when}"
            );
        }
    }
}

/// A pending placement keeps the run's callbacks and recording-ready URL
/// on both databases, and a later placement of the meeting replaces them.
#[tokio::test]
async fn pending_placements_keep_the_runs_callbacks() {
    use switchboard_app::records::PendingPlacement;
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        let placement = |nonce: &str| PendingPlacement {
            tenant: TenantId("acme".into()),
            meeting_id: MeetingId::parse("room-1").unwrap(),
            server_id: server,
            at_ms: 1_000,
            recording_ready_url: Some("https://lms.example/ready".into()),
            callbacks: Some(RunCallbacks {
                nonce: nonce.into(),
                analytics_url: Some("https://lms.example/a".into()),
                signed_with: Some("sha256:01234567".into()),
                ..RunCallbacks::default()
            }),
        };
        store
            .put_pending_placement(&placement("n-1"))
            .await
            .unwrap();
        store
            .put_pending_placement(&placement("n-2"))
            .await
            .unwrap();
        let kept = store
            .pending_placement(
                &TenantId("acme".into()),
                &MeetingId::parse("room-1").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(kept, Some(placement("n-2")), "{kind}");
        assert_eq!(
            store.pending_placements_on(server).await.unwrap(),
            vec![placement("n-2")],
            "{kind}"
        );
        // Read with the voice bridge the meeting holds, in one statement:
        // the same answers as the two reads, with and without either.
        let acme = TenantId("acme".into());
        let both = |meeting: &'static str| {
            let (store, acme) = (&store, acme.clone());
            async move {
                let meeting = MeetingId::parse(meeting).unwrap();
                let together = store
                    .pending_placement_and_voice_bridge(&acme, &meeting)
                    .await
                    .unwrap();
                let apart = (
                    store.pending_placement(&acme, &meeting).await.unwrap(),
                    store.voice_bridge_of(&acme, &meeting).await.unwrap(),
                );
                assert_eq!(together, apart, "{kind} {meeting}");
                // And with the meeting, as a create reads them.
                let for_create = store.meeting_for_create(&acme, &meeting).await.unwrap();
                assert_eq!(
                    for_create.meeting,
                    store.meeting(&acme, &meeting).await.unwrap(),
                    "{kind} {meeting}"
                );
                assert_eq!(
                    (for_create.pending, for_create.held_voice_bridge),
                    together,
                    "{kind} {meeting}"
                );
                together
            }
        };
        assert_eq!(both("room-1").await, (Some(placement("n-2")), None));
        assert_eq!(both("room-2").await, (None, None));
        let held =
            |number: &str, meeting: &str, at_ms| switchboard_app::records::VoiceBridgeClaim {
                number: number.into(),
                tenant: acme.clone(),
                meeting_id: MeetingId::parse(meeting).unwrap(),
                at_ms,
            };
        for (number, meeting, at_ms) in [
            ("71001", "room-1", 1),
            ("71002", "room-1", 2),
            ("71003", "room-2", 3),
        ] {
            assert!(
                store
                    .claim_voice_bridge(&held(number, meeting, at_ms), 0)
                    .await
                    .unwrap()
            );
        }
        assert_eq!(
            both("room-1").await,
            (Some(placement("n-2")), Some("71002".to_owned()))
        );
        assert_eq!(both("room-2").await, (None, Some("71003".to_owned())));
        // Recorded (its pending placement goes with the record), then ended.
        let room_2 = MeetingId::parse("room-2").unwrap();
        let created = MeetingCommand::RecordCreated {
            tenant: acme.clone(),
            meeting_id: room_2.clone(),
            name: "Room 2".into(),
            run: MeetingRun {
                internal_id: room_2.internal_id(7),
                server_id: server,
                create_time_ms: 7,
                recording_ready_url: None,
                callbacks: None,
            },
        };
        store
            .execute_meeting(&acme, &room_2, &created, &meta())
            .await
            .unwrap();
        let read = store.meeting_for_create(&acme, &room_2).await.unwrap();
        let meeting = read.meeting.clone().expect("recorded");
        assert!(meeting.running, "{kind}");
        assert_eq!(meeting.run.internal_id, room_2.internal_id(7), "{kind}");
        assert_eq!(both("room-2").await, (None, Some("71003".to_owned())));
        let ended = MeetingCommand::RecordEnded {
            reason: EndReason::EndCalled,
            at_ms: 9,
            only_run: None,
        };
        store
            .execute_meeting(&acme, &room_2, &ended, &meta())
            .await
            .unwrap();
        let read = store.meeting_for_create(&acme, &room_2).await.unwrap();
        let meeting = read.meeting.expect("kept once ended");
        assert!(!meeting.running, "{kind}");
        assert_eq!(meeting.ended_at_ms, Some(9), "{kind}");
        assert_eq!(meeting.version, 2, "{kind}");
    }
}

#[tokio::test]
async fn agents_bindings_and_heartbeats_are_kept() {
    use switchboard_app::records::ServerSample;
    use switchboard_domain::server::{ServerAgent, ServerCommand};
    use switchboard_domain::token::{TokenCommand, TokenScope, hash_token};
    for (kind, store) in stores().await {
        let id = ServerId::new();
        let add = ServerCommand::Add {
            id,
            settings: switchboard_domain::server::ServerSettings {
                url: "https://bbb-agent.example/bigbluebutton/".into(),
                secret: "s".into(),
                tag: None,
                load_multiplier: 1.0,
                checksum: None,
                metrics_url: None,
            },
            enabled: true,
        };
        let meta = EventMetadata::actor("agent:bbb1");
        store.execute_server(id, &add, &meta).await.unwrap();
        let report = ServerCommand::ReportAgent {
            version: "3.0.4".into(),
            interval_ms: 5000,
        };
        store.execute_server(id, &report, &meta).await.unwrap();
        store
            .execute_server(id, &ServerCommand::AgentLeave, &meta)
            .await
            .unwrap();
        let server = store.server(id).await.unwrap().unwrap();
        assert_eq!(
            server.agent,
            Some(ServerAgent {
                version: "3.0.4".into(),
                interval_ms: 5000,
                away: true
            }),
            "{kind}"
        );
        let found = store
            .server_by_url("https://bbb-agent.example/bigbluebutton/")
            .await
            .unwrap();
        assert_eq!(found.map(|s| s.id), Some(id), "{kind}");

        let create = TokenCommand::Create {
            name: "bbb1".into(),
            scope: TokenScope::Node,
            hash: hash_token("node-1"),
            server: None,
        };
        store.execute_token("bbb1", &create, &meta).await.unwrap();
        store
            .execute_token("bbb1", &TokenCommand::Bind(id), &meta)
            .await
            .unwrap();
        let token = store.tokens().await.unwrap();
        assert_eq!(token[0].scope, TokenScope::Node, "{kind}");
        assert_eq!(token[0].server, Some(id), "{kind}");

        let mut sample = ServerSample::new(id);
        sample.attendees = 7;
        store
            .put_agent_heartbeats(&[sample], &[(id, 1_000)])
            .await
            .unwrap();
        store
            .put_agent_heartbeats(&[], &[(id, 2_000)])
            .await
            .unwrap();
        assert_eq!(
            store.heartbeats().await.unwrap(),
            vec![(id, 2_000)],
            "{kind}"
        );
        assert_eq!(store.heartbeats_of(&[id]).await.unwrap(), vec![(id, 2_000)]);
        assert!(store.heartbeats_before(2_000).await.unwrap().is_empty());
        assert_eq!(
            store.heartbeats_before(2_001).await.unwrap(),
            vec![(id, 2_000)]
        );
        assert_eq!(
            store.server_samples_of(&[id]).await.unwrap()[0].attendees,
            7
        );
        let replayed = store.replay().await.unwrap();
        assert!(replayed >= 5, "{kind}");
        assert_eq!(
            store.tokens().await.unwrap()[0].server,
            Some(id),
            "{kind}: replay keeps the binding"
        );
        assert!(
            store.server(id).await.unwrap().unwrap().agent_away(),
            "{kind}"
        );
    }
}

fn claim(number: &str, meeting: &str, at_ms: i64) -> switchboard_app::records::VoiceBridgeClaim {
    switchboard_app::records::VoiceBridgeClaim {
        number: number.into(),
        tenant: TenantId::default_tenant(),
        meeting_id: MeetingId::parse(meeting).unwrap(),
        at_ms,
    }
}

#[tokio::test]
async fn a_voice_bridge_is_held_by_one_meeting_until_it_stops_running_and_the_claim_is_stale() {
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        assert!(
            store
                .claim_voice_bridge(&claim("70001", "first", 1_000), 0)
                .await
                .unwrap()
        );
        meeting_command(&store, "first", created("first", server, 1_000)).await;
        // Its own claim again renews it; another meeting's is refused even
        // when the claim is old, while the holder runs.
        assert!(
            store
                .claim_voice_bridge(&claim("70001", "first", 2_000), 0)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_voice_bridge(&claim("70001", "second", 3_000), 10_000)
                .await
                .unwrap(),
            "{kind}"
        );
        assert_eq!(
            store
                .voice_bridge_of(
                    &TenantId::default_tenant(),
                    &MeetingId::parse("first").unwrap()
                )
                .await
                .unwrap()
                .as_deref(),
            Some("70001"),
            "{kind}"
        );
        let end = MeetingCommand::RecordEnded {
            reason: EndReason::EndCalled,
            at_ms: 4_000,
            only_run: None,
        };
        meeting_command(&store, "first", end).await;
        // Ended, but claimed after the stale bound: kept.
        assert!(
            !store
                .claim_voice_bridge(&claim("70001", "second", 5_000), 1_000)
                .await
                .unwrap()
        );
        // Ended and claimed before it: taken over.
        assert!(
            store
                .claim_voice_bridge(&claim("70001", "second", 5_000), 2_500)
                .await
                .unwrap(),
            "{kind}"
        );
        let holder = store.voice_bridge_holder("70001").await.unwrap().unwrap();
        assert_eq!(holder.meeting_id.as_str(), "second", "{kind}");
        assert_eq!(holder.at_ms, 5_000, "{kind}");
        assert!(store.voice_bridge_holder("70002").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn concurrent_claims_from_two_connections_never_give_one_number_twice() {
    let url = fresh_postgres().await;
    let first = Store::connect(&url).await.unwrap();
    first.migrate().await.unwrap();
    let second = Store::connect(&url).await.unwrap();
    let stores = [std::sync::Arc::new(first), std::sync::Arc::new(second)];
    let mut tasks = Vec::new();
    for meeting in 0..64 {
        let store = stores[meeting % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            // Every meeting tries the same 16 numbers.
            for number in 0..16 {
                let number = format!("7{number:04}");
                let attempt = claim(&number, &format!("meeting-{meeting}"), 1_000);
                if store.claim_voice_bridge(&attempt, 0).await.unwrap() {
                    won.push(number);
                }
            }
            won
        }));
    }
    let mut winners = std::collections::HashMap::new();
    for (meeting, task) in tasks.into_iter().enumerate() {
        for number in task.await.unwrap() {
            assert!(
                winners.insert(number.clone(), meeting).is_none(),
                "{number} was given to two meetings"
            );
        }
    }
    assert_eq!(winners.len(), 16, "every number went to someone");
    for (number, meeting) in winners {
        let holder = stores[0]
            .voice_bridge_holder(&number)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(holder.meeting_id.as_str(), format!("meeting-{meeting}"));
    }
}

#[tokio::test]
async fn usage_of_many_runs_is_written_at_once_and_spares_ended_runs() {
    use switchboard_app::records::UsageSample;
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        let names: Vec<String> = (0..600).map(|n| format!("room-{n}")).collect();
        for name in &names {
            meeting_command(&store, name, created(name, server, 0)).await;
        }
        let runs: Vec<String> = names
            .iter()
            .map(|name| MeetingId::parse(name).unwrap().internal_id(0))
            .collect();
        // The last one ends before its first sample: never sampled.
        let end = |at_ms| MeetingCommand::RecordEnded {
            reason: EndReason::EndCalled,
            at_ms,
            only_run: None,
        };
        meeting_command(&store, &names[599], end(30_000)).await;
        for (at_ms, extra) in [(60_000, 0), (120_000, 1)] {
            let samples: Vec<UsageSample<'_>> = runs
                .iter()
                .enumerate()
                .map(|(n, run)| UsageSample {
                    internal_id: run,
                    at_ms,
                    attendees: (n % 7) as u64 + extra,
                    video: 0,
                    recording: n.is_multiple_of(2),
                })
                .collect();
            store.record_usage(&samples, "1970-01-01").await.unwrap();
        }
        for name in &names[..599] {
            meeting_command(&store, name, end(180_000)).await;
        }
        let due = store.runs_to_summarize(1_000).await.unwrap();
        assert_eq!(due.len(), 600, "{kind}");
        for state in due {
            let n: usize = runs
                .iter()
                .position(|run| *run == state.internal_id)
                .unwrap();
            let usage = state.summary().unwrap();
            if n == 599 {
                assert_eq!(usage.attendee_seconds, 0, "{kind}: ended before sampling");
                assert_eq!(usage.peak_attendees, 0, "{kind}");
                continue;
            }
            let attendees = (n % 7) as u64;
            // `attendees` for a minute, one more for the next.
            assert_eq!(
                usage.attendee_seconds,
                attendees * 60 + (attendees + 1) * 60,
                "{kind}: run {n}"
            );
            assert_eq!(usage.peak_attendees, attendees + 1, "{kind}: run {n}");
            assert_eq!(usage.recordable, n.is_multiple_of(2), "{kind}: run {n}");
        }
    }
}

#[tokio::test]
async fn usage_is_added_up_summarized_once_and_kept_through_a_replay() {
    use switchboard_app::records::{UsageFilter, UsageSample};
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        meeting_command(&store, "lesson", created("lesson", server, 0)).await;
        let run = MeetingId::parse("lesson").unwrap().internal_id(0);
        let sample = |at_ms, attendees| UsageSample {
            internal_id: &run,
            at_ms,
            attendees,
            video: 1,
            recording: true,
        };
        store
            .record_usage(&[sample(60_000, 10)], "1970-01-01")
            .await
            .unwrap();
        store
            .record_usage(&[sample(120_000, 20), sample(90_000, 50)], "1970-01-01")
            .await
            .unwrap();
        assert!(
            store.runs_to_summarize(10).await.unwrap().is_empty(),
            "{kind}"
        );
        let end = MeetingCommand::RecordEnded {
            reason: EndReason::EndCalled,
            at_ms: 180_000,
            only_run: None,
        };
        meeting_command(&store, "lesson", end).await;
        let due = store.runs_to_summarize(10).await.unwrap();
        assert_eq!(due.len(), 1, "{kind}");
        let usage = due[0].summary().unwrap();
        // 10 for a minute, 20 for another.
        assert_eq!(usage.attendee_seconds, 600 + 1200, "{kind}");
        assert_eq!(usage.peak_attendees, 50, "{kind}");
        meeting_command(
            &store,
            "lesson",
            MeetingCommand::SummarizeUsage(usage.clone()),
        )
        .await;
        assert!(
            store.runs_to_summarize(10).await.unwrap().is_empty(),
            "{kind}"
        );
        let all = UsageFilter::default();
        let runs = store.usage_runs(&all).await.unwrap();
        assert_eq!(runs.len(), 1, "{kind}");
        assert_eq!(runs[0].usage, usage, "{kind}");
        let peaks = store.tenant_peaks(&all).await.unwrap();
        assert_eq!(
            peaks,
            vec![(TenantId::default_tenant(), "1970-01-01".to_owned(), 20)],
            "{kind}"
        );
        store.replay().await.unwrap();
        assert_eq!(
            store.usage_runs(&all).await.unwrap(),
            runs,
            "{kind}: replay"
        );
        assert!(
            store.runs_to_summarize(10).await.unwrap().is_empty(),
            "{kind}"
        );
        // A run whose row is gone (pruned, or from before accounting) is
        // made again by a replay, but never summarized again (no bill of
        // zeros).
        assert_eq!(store.prune_usage(i64::MAX).await.unwrap(), 1, "{kind}");
        store.replay().await.unwrap();
        assert!(
            store.runs_to_summarize(10).await.unwrap().is_empty(),
            "{kind}: pruned"
        );
        assert_eq!(store.usage_runs(&all).await.unwrap(), runs, "{kind}");
        // A run recorded again under its internal id before its summary is
        // reopened and sampled again.
        meeting_command(&store, "again", created("again", server, 0)).await;
        let again = MeetingId::parse("again").unwrap().internal_id(0);
        let end_again = MeetingCommand::RecordEnded {
            reason: EndReason::GoneFromServer,
            at_ms: 1_000,
            only_run: None,
        };
        meeting_command(&store, "again", end_again).await;
        meeting_command(&store, "again", created("again", server, 0)).await;
        assert!(
            store
                .runs_to_summarize(10)
                .await
                .unwrap()
                .iter()
                .all(|run| run.internal_id != again),
            "{kind}: running again"
        );
        // The meeting's projection follows its stream past the summary.
        let meeting = store
            .meeting(
                &TenantId::default_tenant(),
                &MeetingId::parse("lesson").unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(meeting.version, 3, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_during_a_replay_are_never_lost() {
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        for n in 0..300 {
            let name = format!("busy-{n}");
            meeting_command(&store, &name, created(&name, server, n)).await;
        }
        // Appends race the replay: each lands before the swap (and is
        // caught up) or waits for it (and is applied after).
        let appender = store.clone();
        let mut started = false;
        let mut appends = None;
        let report = store
            .rebuild(RebuildMode::Swap, &mut |progress| {
                if progress.phase == RebuildPhase::Reading && !started {
                    started = true;
                    let appender = appender.clone();
                    appends = Some(tokio::spawn(async move {
                        for n in 0..40 {
                            let name = format!("late-{n}");
                            meeting_command(&appender, &name, created(&name, server, n)).await;
                        }
                        server_command(&appender, server, ServerCommand::Enable).await;
                    }));
                }
            })
            .await
            .unwrap();
        appends.unwrap().await.unwrap();
        assert!(report.applied >= 301, "{kind}: {report:?}");
        let meetings = store.meetings().await.unwrap();
        assert_eq!(meetings.len(), 340, "{kind}");
        let check = store
            .rebuild(RebuildMode::Check, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(check.differences, [], "{kind}");
        let servers = store.servers().await.unwrap();
        assert_eq!(servers[0].state, ServerState::Enabled, "{kind}");
    }
}

#[tokio::test]
async fn time_ranges_find_every_event_recorded_in_them_even_from_a_lagging_clock() {
    use switchboard_app::records::{EventFilter, StoredEvent};
    let start = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let server = ServerId::new();
    let events: Vec<StoredEvent> = (1..=60_i64)
        .map(|n| {
            // Every 30 s; event 31 comes from an instance whose clock is 50 s behind.
            let lag = if n == 31 { 50 } else { 0 };
            StoredEvent {
                position: n,
                stream: server.stream(),
                version: n,
                event: DomainEvent::Server(if n % 2 == 0 {
                    switchboard_domain::server::ServerEvent::ServerWentOffline
                } else {
                    switchboard_domain::server::ServerEvent::ServerWentOnline
                }),
                metadata: meta(),
                recorded_at: start + chrono::Duration::seconds(n * 30 - lag),
            }
        })
        .collect();
    for (kind, store) in stores().await {
        store.write_log(&events).await.unwrap();
        for (from, to) in [
            (None, Some(100)),
            (Some(870), Some(900)),
            (Some(1700), None),
            (Some(905), Some(935)),
            (None, Some(0)),
        ] {
            let at = |s: i64| start + chrono::Duration::seconds(s);
            let filter = EventFilter {
                from: from.map(at),
                to: to.map(at),
                limit: 1000,
                ..EventFilter::default()
            };
            let found: Vec<i64> = store
                .query_events(&filter)
                .await
                .unwrap()
                .iter()
                .map(|stored| stored.position)
                .collect();
            let expected: Vec<i64> = events
                .iter()
                .filter(|stored| filter.from.is_none_or(|from| stored.recorded_at >= from))
                .filter(|stored| filter.to.is_none_or(|to| stored.recorded_at <= to))
                .map(|stored| stored.position)
                .collect();
            assert_eq!(found, expected, "{kind}: {from:?}..{to:?}");
        }
    }
}

/// Servers and meetings as the read models show them.
async fn pool_of(
    store: &Store,
) -> (
    Vec<switchboard_app::records::ServerRecord>,
    Vec<switchboard_app::records::MeetingRecord>,
) {
    (
        store.servers().await.unwrap(),
        store.meetings().await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_events_leave_commands_replay_and_events_at_working() {
    use switchboard_app::admin::History;
    for (kind, store) in stores().await {
        let dir =
            std::env::temp_dir().join(format!("archive-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = add_server(&store, 1).await;
        let b = add_server(&store, 2).await;
        server_command(&store, a, ServerCommand::Enable).await;
        server_command(&store, b, ServerCommand::Enable).await;
        meeting_command(&store, "kept", created("kept", a, 1)).await;
        meeting_command(&store, "done", created("done", b, 2)).await;
        meeting_command(
            &store,
            "done",
            MeetingCommand::RecordEnded {
                reason: EndReason::EndCalled,
                at_ms: 3,
                only_run: None,
            },
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let boundary = chrono::Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // After the boundary: stays in the log.
        server_command(&store, b, ServerCommand::Cordon).await;
        let before_archive = pool_of(&store).await;
        let moment = chrono::Utc::now();
        let far = moment + chrono::Duration::hours(1);
        let at_before = History::default().at(&store, moment, far).await.unwrap();
        let total = store.event_count().await.unwrap();

        let file = dir.join("log-1.jsonl.gz");
        let report = store.archive_events(boundary, &file).await.unwrap();
        assert_eq!(report.events, total - 1, "{kind}: all but the cordon");
        assert_eq!(report.streams, 4, "{kind}: two servers, two meetings");
        assert_eq!(
            store.event_count().await.unwrap(),
            1 + report.streams,
            "{kind}: the cordon, and each stream's last archived event"
        );
        let summary = switchboard_store::verify_archive(&file).unwrap();
        assert_eq!(
            (summary.events, summary.sha256.clone()),
            (report.events, report.sha256.clone())
        );
        assert!(
            store.archive_events(boundary, &file).await.is_err(),
            "{kind}: nothing left before the boundary, and the file exists"
        );

        // Reads, events at, replay and --check are as before.
        assert_eq!(pool_of(&store).await, before_archive, "{kind}");
        let at_after = History::default().at(&store, moment, far).await.unwrap();
        assert_eq!(at_after.servers, at_before.servers, "{kind}");
        assert_eq!(at_after.meetings, at_before.meetings, "{kind}");
        let replayed = store.replay().await.unwrap();
        assert_eq!(replayed, 1, "{kind}: replay reads only what is left");
        assert_eq!(pool_of(&store).await, before_archive, "{kind}");
        let check = store
            .rebuild(RebuildMode::Check, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(check.differences, [], "{kind}");

        // Commands on streams whose events are all archived continue them.
        server_command(&store, a, ServerCommand::Cordon).await;
        let a_events = store.stream_history(&a.stream()).await.unwrap();
        assert_eq!(
            a_events.snapshot.as_ref().map(|s| s.version),
            Some(2),
            "{kind}"
        );
        assert_eq!(a_events.events.len(), 1, "{kind}");
        assert_eq!(a_events.events[0].version, 3, "{kind}");
        meeting_command(&store, "done", created("done", a, 10)).await;
        let refused = store
            .execute_server(
                a,
                &ServerCommand::Add {
                    id: a,
                    settings: ServerSettings {
                        url: "http://again.example.org/bigbluebutton/".into(),
                        secret: "s".into(),
                        tag: None,
                        load_multiplier: 1.0,
                        checksum: None,
                        metrics_url: None,
                    },
                    enabled: false,
                },
                &meta(),
            )
            .await;
        assert!(refused.is_err(), "{kind}: the archived server still exists");

        // A second archive continues from the first.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let second = chrono::Utc::now();
        let expected = pool_of(&store).await;
        let report = store
            .archive_events(second, &dir.join("log-2.jsonl.gz"))
            .await
            .unwrap();
        assert_eq!(
            report.first_position, total as i64,
            "{kind}: the cordon left in the log"
        );
        assert_eq!(
            store.event_count().await.unwrap(),
            report.streams,
            "{kind}: each stream's last archived event"
        );
        store.replay().await.unwrap();
        assert_eq!(pool_of(&store).await, expected, "{kind}");
        let servers = store.servers().await.unwrap();
        let a_row = servers.iter().find(|s| s.id == a).unwrap();
        assert_eq!(a_row.state, ServerState::Cordoned, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replay_or_archive_runs_at_a_time() {
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        server_command(&store, server, ServerCommand::Enable).await;
        let replaying = store.clone();
        let replay = tokio::spawn(async move {
            replaying
                .rebuild(RebuildMode::Swap, &mut |progress| {
                    if progress.phase == RebuildPhase::Reading {
                        // Holds the replay (and its lock) for a while.
                        std::thread::sleep(std::time::Duration::from_millis(1500));
                    }
                })
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let dir = std::env::temp_dir().join(format!("busy-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let refused = store
            .archive_events(chrono::Utc::now(), &dir.join("log.jsonl.gz"))
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("is running on this database"),
            "{kind}: {refused}"
        );
        assert!(!dir.join("log.jsonl.gz").exists(), "{kind}");
        replay.await.unwrap().unwrap();
        store
            .replay()
            .await
            .expect("free again once the replay ended");
    }
}

/// Issue 22: a new run's placement is noted with its voice bridge claim (on
/// PostgreSQL in one statement); the placement is kept whether the claim
/// wins or loses, and the claim answers as alone.
#[tokio::test]
async fn a_placement_is_noted_with_the_voice_bridge_claim() {
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        let placement = |meeting: &str, at_ms| switchboard_app::records::PendingPlacement {
            tenant: TenantId::default_tenant(),
            meeting_id: MeetingId::parse(meeting).unwrap(),
            server_id: server,
            at_ms,
            recording_ready_url: Some("https://lms.example/ready".into()),
            callbacks: None,
        };
        let pending = |meeting: &str| {
            let store = &store;
            let meeting = MeetingId::parse(meeting).unwrap();
            async move {
                store
                    .pending_placement(&TenantId::default_tenant(), &meeting)
                    .await
                    .unwrap()
            }
        };
        assert!(
            store
                .claim_voice_bridge_noting(
                    &claim("72001", "first", 1_000),
                    0,
                    &placement("first", 1)
                )
                .await
                .unwrap(),
            "{kind}"
        );
        assert_eq!(
            pending("first").await,
            Some(placement("first", 1)),
            "{kind}"
        );
        meeting_command(&store, "first", created("first", server, 1_000)).await;
        // Held by a running meeting: the claim loses, the note is kept.
        assert!(
            !store
                .claim_voice_bridge_noting(
                    &claim("72001", "second", 2_000),
                    10_000,
                    &placement("second", 2)
                )
                .await
                .unwrap(),
            "{kind}"
        );
        assert_eq!(
            pending("second").await,
            Some(placement("second", 2)),
            "{kind}"
        );
        // A later note replaces the earlier one.
        assert!(
            store
                .claim_voice_bridge_noting(
                    &claim("72002", "second", 3_000),
                    0,
                    &placement("second", 3)
                )
                .await
                .unwrap(),
            "{kind}"
        );
        assert_eq!(
            pending("second").await,
            Some(placement("second", 3)),
            "{kind}"
        );
        // The note commits without waiting for its flush, in its own
        // statement only: no pooled connection keeps the setting.
        if store.is_postgres() {
            assert_no_connection_commits_asynchronously(&store).await;
        }
    }
}

/// Issue 22: caches learn which streams changed after a position, each with
/// its newest version, so a cache holding that version keeps its entry.
#[tokio::test]
async fn streams_changed_after_a_position_come_with_their_newest_version() {
    use switchboard_app::ports::StreamChange;
    use switchboard_domain::ids::{StreamId, StreamKind};
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        meeting_command(&store, "before", created("before", server, 1_000)).await;
        let position = store.last_position().await.unwrap();
        meeting_command(&store, "room", created("room", server, 2_000)).await;
        meeting_command(
            &store,
            "room",
            MeetingCommand::RecordEnded {
                reason: EndReason::EndCalled,
                at_ms: 3_000,
                only_run: None,
            },
        )
        .await;
        meeting_command(&store, "other", created("other", server, 4_000)).await;
        let stream = |name: &str| {
            StreamId::Meeting(TenantId::default_tenant(), MeetingId::parse(name).unwrap())
        };

        let mut changed = store
            .streams_changed_after(position, StreamKind::Meeting)
            .await
            .unwrap();
        changed.sort_by_key(|change| change.stream.to_string());

        assert_eq!(
            changed,
            vec![
                StreamChange {
                    stream: stream("other"),
                    version: 1
                },
                StreamChange {
                    stream: stream("room"),
                    version: 2
                },
            ],
            "{kind}"
        );
        assert!(
            store
                .streams_changed_after(position, StreamKind::Token)
                .await
                .unwrap()
                .is_empty(),
            "{kind}"
        );
    }
}

/// Issue 22: the health poll reads when each running run's listing was made
/// without the listings' elements; ended runs' listings are not in it.
#[tokio::test]
async fn listing_times_are_those_of_running_runs_without_their_elements() {
    use switchboard_app::records::MeetingListing;
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        let listing = |name: &str, at: i64| MeetingListing {
            internal_id: MeetingId::parse(name).unwrap().internal_id(at),
            server_id: server,
            created_at_ms: at,
            xml: format!("<meeting><meetingID>{name}</meetingID></meeting>"),
        };
        for (name, at) in [("room", 1_000), ("gone", 2_000)] {
            store.put_meeting_listing(&listing(name, at)).await.unwrap();
            meeting_command(&store, name, created(name, server, at)).await;
        }
        // A listing whose run was never recorded (its create failed after
        // the listing was written) is not a running run's.
        store
            .put_meeting_listing(&listing("orphan", 2_500))
            .await
            .unwrap();
        meeting_command(
            &store,
            "gone",
            MeetingCommand::RecordEnded {
                reason: EndReason::EndCalled,
                at_ms: 3_000,
                only_run: None,
            },
        )
        .await;

        let times = store.running_listing_times().await.unwrap();

        assert_eq!(
            times,
            std::collections::HashMap::from([(listing("room", 1_000).internal_id, 1_000)]),
            "{kind}"
        );
        // Asked by id, a listing is read whether its run runs or not.
        let room = listing("room", 1_000);
        let orphan = listing("orphan", 2_500);
        let mut asked = store
            .meeting_listings_of(&[&orphan.internal_id, "unknown", &room.internal_id])
            .await
            .unwrap();
        asked.sort_by_key(|listing| listing.created_at_ms);
        assert_eq!(asked, vec![room, orphan], "{kind}");
    }
}

/// Issue 22: getMeetings reads the listings of the runs no poll lists yet by
/// id, in padded chunks of 512: every listing asked for is answered once,
/// across chunk boundaries, and ids without a listing are skipped.
#[tokio::test]
async fn listings_are_read_by_id_across_chunks() {
    use switchboard_app::records::MeetingListing;
    for (kind, store) in stores().await {
        let server = add_server(&store, 1).await;
        let listings: Vec<MeetingListing> = (0..600)
            .map(|n| MeetingListing {
                internal_id: format!("run-{n:04}"),
                server_id: server,
                created_at_ms: n,
                xml: format!("<meeting><meetingID>m-{n}</meetingID></meeting>"),
            })
            .collect();
        for listing in &listings {
            store.put_meeting_listing(listing).await.unwrap();
        }
        let mut asked: Vec<&str> = listings
            .iter()
            .map(|listing| listing.internal_id.as_str())
            .collect();
        // Unknown ids at both ends of the first chunk and in the last one.
        asked.insert(0, "unknown-first");
        asked.insert(511, "unknown-at-the-boundary");
        asked.push("unknown-last");
        let mut read = store.meeting_listings_of(&asked).await.unwrap();
        read.sort_by_key(|listing| listing.created_at_ms);
        assert_eq!(read, listings, "{kind}");
        assert_eq!(
            store.meeting_listings_of(&["run-0007"]).await.unwrap(),
            vec![listings[7].clone()],
            "{kind}"
        );
        assert!(
            store.meeting_listings_of(&[]).await.unwrap().is_empty(),
            "{kind}"
        );
    }
}

/// Every connection of an SQLite pool writes the WAL with `synchronous=NORMAL`
/// and waits for a busy database, not only the first one the pool opened.
#[tokio::test]
async fn every_pooled_sqlite_connection_gets_the_settings() {
    use sea_orm::TransactionTrait as _;
    let store = Store::connect(&fresh_sqlite()).await.unwrap();
    store.migrate().await.unwrap();
    // Open transactions hold their connections: each is a different one.
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(store.connection().begin().await.unwrap());
    }
    for txn in &open {
        let read = |pragma: &'static str| async move {
            txn.query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                format!("PRAGMA {pragma}"),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
        };
        assert_eq!(read("synchronous").await, 1, "synchronous=NORMAL");
        assert_eq!(read("busy_timeout").await, 10_000);
        assert_eq!(
            read("cache_size").await,
            -i64::from(switchboard_store::SQLITE_CACHE_KIB),
            "a page cache of SQLITE_CACHE_KIB KiB"
        );
    }
}

/// Issue 22: a meeting's creation (its one-statement append) and a poll's
/// samples are announced to listening instances; the announcement commits
/// without waiting for its flush and leaves no pooled connection so set.
#[tokio::test]
async fn appends_and_samples_are_announced_to_listeners() {
    let url = fresh_postgres().await;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let other = Store::connect(&url).await.unwrap();
    let mut listener = other.listen_for_changes().await.unwrap().expect("postgres");
    let server = add_server(&store, 1).await;
    async fn heard(listener: &mut switchboard_store::ChangeListener) -> String {
        tokio::time::timeout(std::time::Duration::from_secs(5), listener.next())
            .await
            .expect("announced within 5 s")
            .unwrap()
    }
    assert_eq!(
        heard(&mut listener).await,
        "events",
        "the server's addition"
    );
    meeting_command(&store, "room", created("room", server, 1_000)).await;
    assert_eq!(
        heard(&mut listener).await,
        "events",
        "the meeting's creation"
    );
    let mut sample = switchboard_app::records::ServerSample::new(server);
    sample.polled_at_ms = 1_000;
    store.put_polled_samples(&[sample], &[], &[]).await.unwrap();
    assert_eq!(heard(&mut listener).await, "samples");
    assert_no_connection_commits_asynchronously(&store).await;
}

/// PostgreSQL: every pooled connection (64 statements go round them)
/// commits synchronously: a statement that turned it off for itself left
/// its session as it was.
async fn assert_no_connection_commits_asynchronously(store: &Store) {
    for _ in 0..64 {
        let row = store
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT current_setting('synchronous_commit') AS setting",
            ))
            .await
            .unwrap()
            .unwrap();
        let setting: String = row.try_get("", "setting").unwrap();
        assert_eq!(setting, "on");
    }
}

/// Issue 22: the holders of many numbers come back from one read per few
/// hundred numbers, each claim whole; numbers nobody holds are left out.
#[tokio::test]
async fn the_holders_of_many_numbers_are_read_together() {
    use switchboard_app::records::VoiceBridgeClaim;
    for (kind, store) in stores().await {
        let claims: Vec<VoiceBridgeClaim> = (0..600)
            .map(|n| VoiceBridgeClaim {
                number: format!("7{n:04}"),
                tenant: TenantId::default_tenant(),
                meeting_id: MeetingId::parse(&format!("room-{n}")).unwrap(),
                at_ms: 1_000 + n,
            })
            .collect();
        for claim in &claims {
            assert!(store.claim_voice_bridge(claim, 0).await.unwrap(), "{kind}");
        }
        let mut asked: Vec<&str> = claims.iter().map(|c| c.number.as_str()).collect();
        asked.push("79999");
        let mut held = store.voice_bridge_holders(&asked).await.unwrap();
        held.sort_by(|a, b| a.number.cmp(&b.number));
        assert_eq!(held, claims, "{kind}");
        assert!(store.voice_bridge_holders(&[]).await.unwrap().is_empty());
    }
}
