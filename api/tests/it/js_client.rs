//! End to end with an independent BBB client library: `ops/clients/js/e2e.mjs`
//! drives create -> join -> getMeetings -> end through a running Switchboard
//! with the npm package `bigbluebutton-js`, against two simulated BBB servers.
//!
//! Needs Node.js and `npm ci --prefix ops/clients/js` (ops/test.sh runs it).

use crate::support::{Db, Harness, SECRET};
use std::path::Path;
use std::time::Duration;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ops/clients/js/e2e.mjs");
const LIBRARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ops/clients/js/node_modules/bigbluebutton-js"
);

#[tokio::test(flavor = "multi_thread")]
async fn bigbluebutton_js_drives_create_join_get_meetings_end() {
    assert!(
        Path::new(LIBRARY).is_dir(),
        "run `npm ci --prefix ops/clients/js` first (ops/test.sh does)"
    );

    let harness = Harness::polled(Db::Sqlite, 2).await;
    let api_url = harness.app.api_url();
    let sims = &harness.sims;

    let run = tokio::process::Command::new("node")
        .arg(SCRIPT)
        .arg(&api_url)
        .arg(SECRET)
        // The library's HTTP client (axios) honours proxy variables.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("e2e.mjs did not finish within 60 s")
        .expect("cannot run `node` (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node {SCRIPT} {api_url} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    println!("{stdout}");

    // Exactly one server got the meeting, its join and its end; none is left.
    let creates: Vec<usize> = sims.iter().map(|s| s.request_count("create")).collect();
    assert_eq!(
        creates.iter().sum::<usize>(),
        1,
        "creates per server: {creates:?}"
    );
    let host = creates.iter().position(|&n| n == 1).unwrap();
    assert_eq!(sims[host].request_count("join"), 1, "the followed join");
    assert_eq!(sims[host].request_count("end"), 1, "the end");
    let other = &sims[1 - host];
    assert_eq!(other.request_count("join"), 0);
    assert_eq!(other.request_count("end"), 0);
    for sim in sims {
        assert_eq!(sim.meeting_count(), 0, "meetings left on {}", sim.url());
    }

    harness.stop().await;
}
