//! The operator console in a real browser: `ops/console/browser/
//! console.test.mjs` drives Debian's Chromium with Playwright against a
//! Switchboard with three simulated, polled BBB servers and a meeting
//! created through the BBB API. Screenshots go to
//! `target/console-screenshots/` (CI keeps them).
//!
//! Needs Chromium (`/usr/bin/chromium`, or `CHROMIUM`) and
//! `npm ci --prefix ops/console/browser`; ops/test.sh installs both.

use crate::console::token;
use crate::support::{Db, Harness};
use std::path::Path;
use std::time::Duration;
use switchboard_api::admin::model::Scope;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ops/console/browser/console.test.mjs"
);
const LIBRARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ops/console/browser/node_modules/playwright-core"
);
const SCREENSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/console-screenshots");

#[tokio::test(flavor = "multi_thread")]
async fn the_console_works_in_chromium() {
    assert!(
        Path::new(LIBRARY).is_dir(),
        "run `npm ci --prefix ops/console/browser` first (ops/test.sh does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is not at {chromium}: `apt-get install chromium` (ops/test.sh does) or set CHROMIUM"
    );
    let harness = Harness::polled(Db::Sqlite, 3).await;
    let admin = token(&harness, "console-admin", Scope::Admin).await;
    let read = token(&harness, "console-read", Scope::Read).await;
    let doomed = token(&harness, "console-doomed", Scope::Admin).await;
    let create = harness
        .client
        .get(harness.url("create", "meetingID=browser-room&name=Browser+Room"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(create.contains("SUCCESS"), "{create}");
    // A moment after the pool and the meeting, before anything the browser does.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let past = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let run = tokio::process::Command::new("node")
        .arg(SCRIPT)
        .env(
            "CONSOLE_URL",
            format!("http://{}/console", harness.app.addr),
        )
        .env("ADMIN_API", format!("http://{}/api/v1", harness.app.addr))
        .env("ADMIN_TOKEN", &admin)
        .env("READ_TOKEN", &read)
        .env("DOOMED_TOKEN", &doomed)
        .env("DOOMED_TOKEN_NAME", "console-doomed")
        .env("MEETING_ID", "browser-room")
        .env("PAST", &past)
        .env("SCREENSHOTS", SCREENSHOTS)
        .env("CHROMIUM", &chromium)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("console.test.mjs did not finish within 180 s")
        .expect("cannot run `node` (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser tests failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    println!("{stdout}");
    for shot in [
        "overview.png",
        "pool-at.png",
        "charts.png",
        "server-cordoned.png",
    ] {
        assert!(
            Path::new(SCREENSHOTS).join(shot).is_file(),
            "screenshot {shot} was not written"
        );
    }
}
