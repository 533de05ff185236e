//! `serve --demo N`: simulated BBB servers inside the process, registered and
//! enabled, with ready-to-paste requests so a newcomer sees it work at once.

use bbb_simulator::{Simulator, SimulatorConfig};
use switchboard_app::admin::views::NewServer;
use switchboard_app::admin::{AdminService, Principal};
use switchboard_app::ports::prelude::*;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};
use switchboard_domain::ids::ServerId;
use switchboard_store::Store;

/// Settings key listing the demo servers of the last demo run.
const DEMO_SERVERS_KEY: &str = "demo_server_ids";

/// Settings key naming the console token of the last demo run.
const DEMO_CONSOLE_TOKEN_KEY: &str = "demo_console_token";

fn demo_admin(store: &Store, settings: &crate::config::Settings) -> AdminService {
    let (db, executor) = crate::app::ports_of(store, Default::default());
    AdminService::new(
        db,
        executor,
        crate::app::backends_of(settings),
        std::sync::Arc::new(switchboard_app::clock::SystemClock),
        settings.load,
        None,
    )
}

/// An admin token for the demo's console sign-in (actor `demo`),
/// revoking the one an earlier demo run made.
pub async fn console_token(
    store: &Store,
    settings: &crate::config::Settings,
) -> anyhow::Result<String> {
    let admin = demo_admin(store, settings);
    let demo = Principal::admin("demo".into());
    if let Some(previous) = store.setting(DEMO_CONSOLE_TOKEN_KEY).await?
        && admin
            .tokens()
            .await
            .map_err(|err| anyhow::anyhow!("cannot list tokens: {err}"))?
            .iter()
            .any(|token| token.name == previous)
    {
        admin
            .revoke_token(&previous, &demo)
            .await
            .map_err(|err| anyhow::anyhow!("cannot revoke demo token {previous}: {err}"))?;
    }
    let name = format!("demo-console-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let created = admin
        .create_token(
            &name,
            switchboard_domain::token::TokenScope::Admin,
            None,
            &demo,
        )
        .await
        .map_err(|err| anyhow::anyhow!("cannot create the demo's console token: {err}"))?;
    store.put_setting(DEMO_CONSOLE_TOKEN_KEY, &name).await?;
    Ok(created.token)
}

/// Starts `count` simulators and registers them as enabled servers through
/// the admin use cases (actor `demo`), removing the (now dead) demo servers
/// of an earlier run first, with their meetings.
pub async fn start_pool(
    store: &Store,
    settings: &crate::config::Settings,
    count: usize,
) -> anyhow::Result<Vec<Simulator>> {
    let admin = demo_admin(store, settings);
    let demo = Principal::admin("demo".into());
    if let Some(previous) = store.setting(DEMO_SERVERS_KEY).await? {
        for id in previous
            .split(',')
            .filter_map(|id| id.parse::<ServerId>().ok())
        {
            if store.server(id).await?.is_some() {
                admin
                    .remove(&id.to_string(), true, &demo)
                    .await
                    .map_err(|err| anyhow::anyhow!("cannot remove demo server {id}: {err}"))?;
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
        let added = admin
            .add_server(
                NewServer {
                    url: simulator.url(),
                    secret: simulator.secret().to_owned(),
                    tag: None,
                    load_multiplier: None,
                    checksum: None,
                    metrics_url: None,
                    enabled: Some(true),
                },
                &demo,
            )
            .await
            .map_err(|err| anyhow::anyhow!("cannot add a demo server: {err}"))?;
        ids.push(added.id);
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

/// Prints the demo's API URL, secret, example requests and, when served,
/// the console with a token to sign in with.
pub fn print_instructions(
    api_url: &str,
    secret: &str,
    servers: usize,
    console: Option<(&str, &str)>,
) {
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
    if let Some((url, token)) = console {
        out!("Console: {url}");
        out!("  Sign in with this admin token: {token}");
        out!();
    }
}
