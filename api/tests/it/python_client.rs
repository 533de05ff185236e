//! The committed OpenAPI spec is usable by a standard generator: a Python
//! client generated from `openapi/switchboard-admin.json` by
//! `openapi-python-client` (PyPI) adds a server, enables it and reads it back
//! through a running Switchboard (`ops/clients/python/admin_e2e.py`).
//!
//! Needs `bash ops/clients/python/generate.sh` (ops/test.sh runs it).

use crate::support::{Db, Harness};
use bbb_simulator::{Simulator, SimulatorConfig};
use std::path::Path;
use std::time::Duration;
use switchboard_api::admin::model::{NewToken, Scope};
use switchboard_app::admin::Principal;
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::server::ServerState;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ops/clients/python/admin_e2e.py"
);
const PYTHON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/python-client/venv/bin/python"
);
const PACKAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/python-client/generated/switchboard_admin_client/client.py"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_python_client_adds_enables_and_reads_back_a_server() {
    assert!(
        Path::new(PYTHON).is_file() && Path::new(PACKAGE).is_file(),
        "the generated Python client is missing ({PACKAGE}): \
         run `bash ops/clients/python/generate.sh` first (ops/test.sh does)"
    );

    let harness = Harness::start(Db::Sqlite, 0).await;
    let sim = Simulator::start(SimulatorConfig {
        secret: "python-e2e-secret".into(),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let token = harness
        .state()
        .admin
        .create_token(
            NewToken {
                name: "python-e2e".into(),
                scope: Scope::Admin,
                server: None,
            },
            &Principal::admin("test".into()),
        )
        .await
        .unwrap()
        .token;

    let admin_url = format!("http://{}/api/v1", harness.app.addr);
    // Without the trailing `/`: the answers must show it normalised.
    let bbb_url = sim.url().trim_end_matches('/').to_owned();
    let run = tokio::process::Command::new(PYTHON)
        .arg(SCRIPT)
        .arg(&admin_url)
        .arg(&bbb_url)
        .arg(sim.secret())
        .env("SWITCHBOARD_ADMIN_TOKEN", &token)
        // httpx honours proxy variables.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("admin_e2e.py did not finish within 60 s")
        .unwrap_or_else(|err| panic!("cannot run {PYTHON}: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{PYTHON} {SCRIPT} {admin_url} {bbb_url} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    println!("{stdout}");

    // The server the client added is in the store, enabled, by its token.
    let servers = harness.store().servers().await.unwrap();
    assert_eq!(servers.len(), 1, "exactly the one server: {servers:?}");
    let server = &servers[0];
    assert_eq!(server.settings.url, sim.url());
    assert_eq!(server.settings.secret, sim.secret());
    assert_eq!(server.state, ServerState::Enabled);
    let events = harness
        .store()
        .stream_events(&format!("server:{}", server.id).parse().unwrap())
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event.type_name()).collect();
    assert_eq!(types, ["ServerAdded", "ServerEnabled"], "{events:?}");
    assert!(
        events.iter().all(|e| e.metadata.actor == "python-e2e"),
        "the token's name is the actor: {events:?}"
    );

    harness.stop().await;
    sim.shutdown().await;
}
