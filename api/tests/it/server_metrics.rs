//! Placement on what servers feel: CPU and memory read over real HTTP from
//! the simulators' node_exporter-like `/metrics`, on SQLite and PostgreSQL.

use crate::support::*;
use std::time::Duration;
use switchboard_api::admin::model::ServerView;
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::ServerId;
use switchboard_domain::server::{ServerChanges, ServerCommand};
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

/// Polls every 200 ms, averages over one second.
fn fast_window(settings: &mut switchboard_api::config::Settings) {
    settings.health.metrics_window_secs = 1.0;
    settings.health.timeout_ms = 1000;
}

async fn set_metrics_url(harness: &Harness, id: ServerId, url: Option<String>) {
    harness
        .store()
        .execute_server(
            id,
            &ServerCommand::Update(ServerChanges {
                metrics_url: Some(url),
                ..Default::default()
            }),
            &EventMetadata::actor("test"),
        )
        .await
        .unwrap();
}

async fn view(harness: &Harness, id: ServerId) -> ServerView {
    harness.state().admin.server(&id.to_string()).await.unwrap()
}

/// Waits until every server's view satisfies `check`.
async fn until(harness: &Harness, what: &str, check: impl Fn(&[ServerView]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let mut views = Vec::new();
        for id in &harness.servers {
            views.push(view(harness, *id).await);
        }
        if check(&views) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {views:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cpu(view: &ServerView) -> f64 {
    view.cpu_percent.unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_server_takes_no_new_meetings_until_it_cools() {
    for db in BOTH {
        let harness = Harness::polled_with(db, 2, |settings| {
            fast_window(settings);
            settings.load.cpu_limit = Some(80.0);
        })
        .await;
        let (hot, cool) = (harness.servers[0], harness.servers[1]);
        harness.sims[0].set_cpu_percent(95.0);
        harness.sims[1].set_cpu_percent(10.0);
        for (n, id) in [hot, cool].into_iter().enumerate() {
            set_metrics_url(&harness, id, Some(harness.sims[n].metrics_url())).await;
        }
        until(&harness, "the first server over its limit", |views| {
            views[0].over_limit && cpu(&views[0]) > 90.0 && cpu(&views[1]) < 20.0
        })
        .await;
        let views = [view(&harness, hot).await, view(&harness, cool).await];
        for view in &views {
            assert_eq!(view.metrics_state, "ok", "{db:?}: {view:?}");
            assert!(view.memory_percent.is_some_and(|m| (m - 30.0).abs() < 0.5));
            assert!(view.metrics_read_at_ms.is_some());
            assert_eq!(view.metrics_error, None);
        }
        assert!(!views[1].over_limit);

        for n in 0..4 {
            harness.create(&format!("hot-{n}")).await.assert_success();
        }
        assert_eq!(harness.sims[0].meeting_count(), 0, "{db:?}: hot server");
        assert_eq!(harness.sims[1].meeting_count(), 4, "{db:?}");

        harness.sims[0].set_cpu_percent(5.0);
        harness.sims[1].set_cpu_percent(97.0);
        until(&harness, "the servers to swap", |views| {
            !views[0].over_limit && views[1].over_limit
        })
        .await;
        for n in 0..3 {
            harness
                .create(&format!("cooled-{n}"))
                .await
                .assert_success();
        }
        assert_eq!(harness.sims[0].meeting_count(), 3, "{db:?}: cooled server");
        assert_eq!(harness.sims[1].meeting_count(), 4, "{db:?}: now hot");
        let join = harness
            .get("join", "meetingID=hot-0&fullName=Ann&role=VIEWER")
            .await;
        assert_eq!(
            join.status, 302,
            "{db:?}: joins reach a hot server: {join:?}"
        );
        let status = harness.state().admin.status().await.unwrap();
        let hot_line = status.servers.iter().find(|s| s.over_limit).unwrap();
        assert_eq!(hot_line.id, harness.servers[1].to_string());
        assert!(hot_line.cpu_percent.is_some_and(|c| c > 80.0));
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_metrics_leave_a_server_to_its_meeting_count() {
    for db in BOTH {
        let harness = Harness::polled_with(db, 2, |settings| {
            fast_window(settings);
            // Long enough to see the stale phase.
            settings.health.metrics_window_secs = 2.0;
            // CPU weighs heavily: a server at 50 % counts as 50 meetings.
            settings.load.cpu = 100.0;
            settings.load.cpu_limit = Some(80.0);
        })
        .await;
        let (broken, busy) = (harness.servers[0], harness.servers[1]);
        harness.sims[0].set_metrics_failing(true);
        harness.sims[1].set_cpu_percent(50.0);
        for (n, id) in [broken, busy].into_iter().enumerate() {
            set_metrics_url(&harness, id, Some(harness.sims[n].metrics_url())).await;
        }
        until(&harness, "unreadable and read metrics", |views| {
            views[0].metrics_state == "unreadable" && views[1].cpu_percent.is_some()
        })
        .await;
        let broken_view = view(&harness, broken).await;
        assert_eq!(
            broken_view.metrics_error.as_deref(),
            Some("HTTP status 500"),
            "{db:?}"
        );
        assert_eq!(broken_view.cpu_percent, None);
        assert!(!broken_view.over_limit);
        assert!(view(&harness, busy).await.load > 40.0);

        for n in 0..3 {
            harness
                .create(&format!("counts-{n}"))
                .await
                .assert_success();
        }
        assert_eq!(
            harness.sims[0].meeting_count(),
            3,
            "{db:?}: unreadable metrics are not a punishment"
        );

        // A server whose reads start failing keeps its last values for the
        // window (stale), then is weighed by its meetings alone.
        harness.sims[1].set_metrics_failing(true);
        until(&harness, "stale values", |views| {
            views[1].metrics_state == "stale" && views[1].cpu_percent.is_some()
        })
        .await;
        until(&harness, "the values to age out", |views| {
            views[1].metrics_state == "unreadable" && views[1].cpu_percent.is_none()
        })
        .await;
        let aged = view(&harness, busy).await;
        assert!(aged.load < 5.0, "{db:?}: {aged:?}");
        assert!(
            aged.metrics_read_at_ms.is_some(),
            "the last good read stays shown"
        );
        harness.create("counts-3").await.assert_success();
        assert_eq!(harness.sims[1].meeting_count(), 1, "{db:?}");
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_urls_with_credentials_are_used_but_never_shown() {
    let harness = Harness::polled_with(Db::Sqlite, 1, fast_window).await;
    let id = harness.servers[0];
    let sim = &harness.sims[0];
    sim.set_metrics_credentials(Some(("prom", "hunter2")));
    sim.set_cpu_percent(42.0);
    let url = sim.metrics_url().replace("http://", "http://prom:hunter2@");
    let admin = crate::admin::admin(&harness).await;
    let (status, body) = admin
        .patch(
            &format!("/servers/{id}"),
            serde_json::json!({ "metrics_url": url }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let shown = sim.metrics_url().replace("http://", "http://prom:***@");
    assert_eq!(body["metrics_url"], shown.as_str());
    until(&harness, "metrics read with basic auth", |views| {
        views[0].metrics_state == "ok" && (cpu(&views[0]) - 42.0).abs() < 2.0
    })
    .await;

    let (_, events) = admin.get("/events").await;
    let (_, servers) = admin.get("/servers").await;
    let gauges = harness
        .client
        .get(format!("http://{}/metrics", harness.app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for text in [events.to_string(), servers.to_string(), gauges.clone()] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    assert!(events.to_string().contains("prom:***@"), "{events}");
    // The gauges refresh every few seconds; ask them to now.
    switchboard_api::metrics::refresh_gauges(&harness.state().gauge_sources());
    let gauges = harness
        .client
        .get(format!("http://{}/metrics", harness.app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("switchboard_server_cpu_percent{{server=\"{id}\"}} ");
    let value: f64 = gauges
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in {gauges}"))
        .parse()
        .unwrap();
    assert!((value - 42.0).abs() < 2.0, "{value}");
    assert!(gauges.contains(&format!(
        "switchboard_server_metrics_state{{server=\"{id}\",state=\"ok\"}} 1"
    )));
    assert!(gauges.contains(&format!(
        "switchboard_server_memory_percent{{server=\"{id}\"}} 30"
    )));

    // Wrong credentials: the error says so, without the URL.
    sim.set_metrics_credentials(Some(("prom", "other")));
    until(&harness, "a refused read", |views| {
        views[0].metrics_error.as_deref() == Some("HTTP status 401")
    })
    .await;
    // An empty string removes the URL.
    let (status, body) = admin
        .patch(
            &format!("/servers/{id}"),
            serde_json::json!({ "metrics_url": "" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("metrics_url").is_none(), "{body}");
    assert_eq!(body["metrics_state"], "not_configured");
    let (status, body) = admin
        .patch(
            &format!("/servers/{id}"),
            serde_json::json!({ "metrics_url": "bbb1:9100/metrics" }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    harness.stop().await;
}
