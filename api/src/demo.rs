//! `serve --demo N`: simulated BBB servers inside the process, registered and
//! enabled, with ready-to-paste requests so a newcomer sees it work at once.

use bbb_simulator::{Simulator, SimulatorConfig};
use switchboard_app::ports::prelude::*;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::ServerId;
use switchboard_domain::server::{Server, ServerCommand, ServerSettings};
use switchboard_store::Store;

/// Settings key listing the demo servers of the last demo run.
const DEMO_SERVERS_KEY: &str = "demo_server_ids";

/// Starts `count` simulators and registers them as enabled servers, removing
/// the (now dead) demo servers of an earlier run first.
pub async fn start_pool(store: &Store, count: usize) -> anyhow::Result<Vec<Simulator>> {
    let metadata = EventMetadata::actor("demo");
    let (_, executor) = crate::app::ports_of(store, Default::default());
    if let Some(previous) = store.setting(DEMO_SERVERS_KEY).await? {
        for id in previous
            .split(',')
            .filter_map(|id| id.parse::<ServerId>().ok())
        {
            if store.server(id).await?.is_some() {
                executor
                    .execute::<Server>(&id.stream(), &ServerCommand::Remove, &metadata)
                    .await?;
            }
        }
    }
    let mut simulators = Vec::with_capacity(count);
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let simulator = Simulator::start(SimulatorConfig {
            secret: crate::secrets::generate_secret(),
            ..SimulatorConfig::default()
        })
        .await?;
        let id = ServerId::new();
        let command = ServerCommand::Add {
            id,
            settings: ServerSettings {
                url: simulator.url(),
                secret: simulator.secret().to_owned(),
                tag: None,
                load_multiplier: 1.0,
                checksum: None,
                metrics_url: None,
            },
            enabled: true,
        };
        executor
            .execute::<Server>(&id.stream(), &command, &metadata)
            .await?;
        ids.push(id.to_string());
        simulators.push(simulator);
    }
    store.put_setting(DEMO_SERVERS_KEY, &ids.join(",")).await?;
    Ok(simulators)
}

/// A signed URL of the facade.
pub fn signed(api_url: &str, call: &str, query: &str, secret: &str) -> String {
    let checksum = sign(ChecksumAlgorithm::Sha1, call, query, secret);
    if query.is_empty() {
        format!("{api_url}{call}?checksum={checksum}")
    } else {
        format!("{api_url}{call}?{query}&checksum={checksum}")
    }
}

/// Prints the demo's API URL, secret and example requests.
pub fn print_instructions(api_url: &str, secret: &str, servers: usize) {
    let create = signed(
        api_url,
        "create",
        "name=Demo+Room&meetingID=demo-room",
        secret,
    );
    let join = signed(
        api_url,
        "join",
        "meetingID=demo-room&fullName=Alice&role=MODERATOR",
        secret,
    );
    let list = signed(api_url, "getMeetings", "", secret);
    out!();
    out!("Demo mode: {servers} simulated BBB server(s) in this process.");
    out!("  API URL: {api_url}");
    out!("  Secret:  {secret}");
    out!();
    out!("Try it (another terminal):");
    out!("  curl -s '{create}'");
    out!("  curl -si '{join}'");
    out!("  curl -s '{list}'");
    out!();
}
