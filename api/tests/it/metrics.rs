//! `GET /metrics` over real HTTP: BBB API counters by call and outcome,
//! latency histograms, server gauges and health-poll job counts.
//!
//! The recorder is global to this test process and other tests run beside
//! these, so counters are checked for increases, never exact totals.

use crate::support::*;
use std::time::Duration;
use switchboard_api::metrics::refresh_gauges;
use switchboard_app::health::{HealthConfig, HealthPoller};
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

/// The text of `GET /metrics`.
async fn scrape(harness: &Harness) -> String {
    let url = format!("http://{}/metrics", harness.app.addr);
    let response = harness.client.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of one series (`name{labels}`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

fn increased(before: &str, after: &str, series: &str) -> bool {
    let old = sample(before, series).unwrap_or(0.0);
    sample(after, series).is_some_and(|new| new >= old + 1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bbb_requests_are_counted_by_call_and_outcome() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let before = scrape(&harness).await;

    harness.create("metrics-room").await.assert_success();
    let join = harness
        .get("join", "meetingID=metrics-room&fullName=Ada&role=VIEWER")
        .await;
    assert_eq!(join.status, 302, "{}", join.body);
    let signed = harness.url("isMeetingRunning", "meetingID=metrics-room");
    let (base, sum) = signed.rsplit_once("checksum=").unwrap();
    let wrong = format!("{base}checksum={}", "0".repeat(sum.len()));
    harness.get_raw(&wrong).await.assert_failed("checksumError");
    harness.get("getRecordings", "").await.assert_success();
    harness
        .get("noSuchCall-with-a-unique-name", "")
        .await
        .assert_failed("unsupportedRequest");

    let after = scrape(&harness).await;
    for series in [
        r#"switchboard_bbb_requests_total{call="create",outcome="success"}"#,
        r#"switchboard_bbb_requests_total{call="join",outcome="redirect"}"#,
        r#"switchboard_bbb_requests_total{call="isMeetingRunning",outcome="checksumError"}"#,
        r#"switchboard_bbb_requests_total{call="other",outcome="unsupportedRequest"}"#,
        r#"switchboard_bbb_requests_total{call="getRecordings",outcome="success"}"#,
        r#"switchboard_bbb_request_duration_seconds_count{call="create"}"#,
        r#"switchboard_bbb_request_duration_seconds_count{call="join"}"#,
    ] {
        assert!(increased(&before, &after, series), "{series}:\n{after}");
    }
    assert!(after.contains("# TYPE switchboard_bbb_request_duration_seconds histogram"));
    assert!(
        after.contains(
            r#"switchboard_bbb_request_duration_seconds_bucket{call="create",le="+Inf"}"#
        ),
        "{after}"
    );
    assert!(
        !after.contains("noSuchCall"),
        "unknown calls must not become label values"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_gauges_and_health_poll_jobs_appear() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    harness.create("gauge-room").await.assert_success();
    let before = scrape(&harness).await;

    let state = harness.state();
    let mut poller = HealthPoller::new(
        state.health_ports(),
        HealthConfig {
            timeout: Duration::from_secs(2),
            ..HealthConfig::default()
        },
        state.observed.clone(),
    );
    let report = poller.poll_once().await.unwrap();
    assert_eq!(report.healthy, 1);
    state.routing.refresh().await.unwrap();
    refresh_gauges(&state.gauge_sources());

    let after = scrape(&harness).await;
    let server = harness.servers[0];
    assert_eq!(
        sample(
            &after,
            &format!(r#"switchboard_server_meetings{{server="{server}"}}"#)
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            &format!(r#"switchboard_server_attendees{{server="{server}"}}"#)
        ),
        Some(0.0),
        "{after}"
    );
    let load = sample(
        &after,
        &format!(r#"switchboard_server_load{{server="{server}"}}"#),
    );
    assert!(load.is_some_and(|load| load > 0.0), "{after}");
    // Shared by every app in this process: presence only.
    for series in [
        r#"switchboard_servers{state="enabled",online="true"}"#,
        r#"switchboard_servers{state="cordoned",online="false"}"#,
        "switchboard_event_log_position",
    ] {
        assert!(sample(&after, series).is_some(), "{series}:\n{after}");
    }
    for series in [
        r#"switchboard_worker_jobs_total{task="health_poll",outcome="success"}"#,
        r#"switchboard_worker_cycles_total{task="health_poll"}"#,
        r#"switchboard_worker_cycle_duration_seconds_count{task="health_poll"}"#,
    ] {
        assert!(increased(&before, &after, series), "{series}:\n{after}");
    }
    // Server URLs (they may carry credentials) are never label values.
    assert!(!after.contains(&harness.sims[0].url()), "{after}");
    harness.stop().await;
}

/// Issue 22: the SQL work of a call is read off /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_statements_are_counted() {
    for db in BOTH {
        let harness = Harness::start(db, 1).await;
        let before = scrape(&harness).await;
        harness.create("sql-counted").await.assert_success();
        let after = scrape(&harness).await;
        assert!(
            increased(&before, &after, "switchboard_db_statements_total"),
            "{db:?}:\n{after}"
        );
        assert!(after.contains("# TYPE switchboard_db_statements_total counter"));
        harness.stop().await;
    }
}
