//! Usage accounting from outside: meetings run on simulated servers, the
//! poller adds up their attendees, their ends are summarized, and the admin
//! API and the CLI report the figures.

use crate::support::*;
use std::time::{Duration, Instant};
use switchboard_api::admin::model::{NewToken, Scope};
use switchboard_app::admin::Principal;

#[tokio::test]
async fn an_ended_meeting_shows_in_the_usage_report_of_the_admin_api() {
    for db in BOTH {
        let harness = Harness::polled(db, 1).await;
        harness.create("billed").await.assert_success();
        let join = harness
            .get_raw(&harness.url("join", "meetingID=billed&fullName=Ann&role=VIEWER"))
            .await;
        assert_eq!(join.status, 302);
        // Follow the redirect so the simulator counts Ann in.
        let _ = harness
            .client
            .get(join.location.clone().unwrap())
            .send()
            .await;
        // A few polls see the meeting, then it ends.
        tokio::time::sleep(Duration::from_millis(800)).await;
        harness
            .get("end", "meetingID=billed")
            .await
            .assert_success();
        let token = harness
            .state()
            .admin
            .create_token(
                NewToken {
                    name: "billing".into(),
                    scope: Scope::Read,
                    server: None,
                },
                &Principal::admin("test".into()),
            )
            .await
            .unwrap()
            .token;
        let url = format!("http://{}/api/v1/usage?by=month", harness.app.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        let report = loop {
            let report: serde_json::Value = harness
                .client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            // A row may show the day's peak before the run is summarized.
            if report["rows"][0]["meetings"] == 1 {
                break report;
            }
            assert!(Instant::now() < deadline, "{db:?}: no usage row: {report}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let row = &report["rows"][0];
        assert_eq!(row["tenant"], "default");
        assert_eq!(row["meetings"], 1);
        // Ann was counted by the polls (the run was too short for minutes).
        assert_eq!(row["peak_meeting_attendees"], 1, "{row}");
        assert_eq!(row["peak_concurrent_attendees"], 1, "{row}");
        let bad = harness
            .client
            .get(format!(
                "http://{}/api/v1/usage?from=yesterday",
                harness.app.addr
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        harness.stop().await;
    }
}

#[test]
fn the_usage_command_prints_csv_and_refuses_a_bad_day() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("SWITCHBOARD_DATABASE")
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_URL")
            .env_remove("SWITCHBOARD_TOKEN")
            .output()
            .unwrap()
    };
    assert!(run(&["migrate"]).status.success());
    let csv = run(&["usage", "--by", "month", "--csv"]);
    assert!(
        csv.status.success(),
        "{}",
        String::from_utf8_lossy(&csv.stderr)
    );
    assert!(String::from_utf8_lossy(&csv.stdout).starts_with("tenant,period,meetings,"));
    let bad = run(&["usage", "--from", "1.12.2026"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));
}
