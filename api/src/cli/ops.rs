//! The operator commands, written once over [`Target`]: each prints a
//! readable table or, with `--json`, the admin API's JSON.

mod sync;

use super::table::{Table, clip, number, or_dash, print_fields, print_json, time, time_ms};
use super::target::Target;
use super::{EventsCommand, MeetingsCommand, ScopeArg, ServersCommand, StateFilter, TokensCommand};
use crate::admin::model::*;
use switchboard_app::records::EventFilter;
use switchboard_domain::server::ServerCommand;

/// `servers ...`
pub async fn servers(target: &Target, command: ServersCommand) -> anyhow::Result<()> {
    match command {
        ServersCommand::Add {
            url,
            secret,
            tag,
            load_multiplier,
            enable,
            checksum,
            metrics_url,
        } => {
            let view = target
                .add_server(NewServer {
                    url,
                    secret,
                    tag,
                    load_multiplier: Some(load_multiplier),
                    checksum,
                    metrics_url,
                    enabled: Some(enable),
                })
                .await?;
            out!("{}", view.id);
            Ok(())
        }
        ServersCommand::List { json } => {
            let servers = target.servers().await?;
            if json {
                return print_json(&servers);
            }
            print_servers(&servers);
            Ok(())
        }
        ServersCommand::Show { id, json } => {
            let server = target.server(&id).await?;
            if json {
                return print_json(&server);
            }
            print_server(&server);
            Ok(())
        }
        ServersCommand::Update {
            id,
            url,
            secret,
            tag,
            load_multiplier,
            checksum,
            metrics_url,
            json,
        } => {
            let update = ServerUpdate {
                url,
                secret,
                tag,
                load_multiplier,
                checksum,
                metrics_url,
            };
            if update == ServerUpdate::default() {
                anyhow::bail!(
                    "nothing to change: give --url, --secret, --tag, --load-multiplier, --checksum or --metrics-url"
                );
            }
            let server = target.update_server(&id, update).await?;
            if json {
                return print_json(&server);
            }
            out!("server {} updated", server.id);
            print_server(&server);
            Ok(())
        }
        ServersCommand::Enable { id } => set_state(target, &id, ServerCommand::Enable).await,
        ServersCommand::Disable { id } => set_state(target, &id, ServerCommand::Disable).await,
        ServersCommand::Cordon { id } => set_state(target, &id, ServerCommand::Cordon).await,
        ServersCommand::Panic {
            id,
            end_meetings,
            json,
        } => {
            let report = target
                .panic(
                    &id,
                    PanicOptions {
                        end_meetings: Some(end_meetings),
                    },
                )
                .await?;
            if json {
                return print_json(&report);
            }
            out!(
                "server {} is {}; forgot {} meeting(s){}",
                report.server.id,
                report.server.state,
                report.forgotten.len(),
                if end_meetings {
                    format!(", {} ended on the server", report.ended)
                } else {
                    String::new()
                }
            );
            for meeting in &report.forgotten {
                out!("  {meeting}");
            }
            Ok(())
        }
        ServersCommand::Remove { id, force } => {
            target.remove(&id, force).await.map_err(|err| {
                if !force && err.to_string().contains("still run") {
                    err.context("(use --force to remove it anyway)")
                } else {
                    err
                }
            })?;
            out!("server {id} removed");
            Ok(())
        }
        ServersCommand::Sync {
            file,
            mode,
            dry_run,
        } => sync::sync(target, &file, mode, dry_run).await,
        ServersCommand::Export { file } => sync::export(target, file.as_deref()).await,
    }
}

async fn set_state(target: &Target, id: &str, command: ServerCommand) -> anyhow::Result<()> {
    let cordon = command == ServerCommand::Cordon;
    let server = target.set_state(id, command).await?;
    if cordon && server.state == "disabled" {
        out!(
            "server {} is disabled: cordoned with no running meetings, it drained at once",
            server.id
        );
    } else if cordon {
        out!(
            "server {} is cordoned: {} meeting(s) still run; it becomes disabled when they end",
            server.id,
            server.meetings
        );
    } else {
        out!("server {} is {}", server.id, server.state);
    }
    Ok(())
}

fn print_servers(servers: &[ServerView]) {
    let mut table = Table::new(&[
        "ID",
        "STATE",
        "ONLINE",
        "MEETINGS",
        "ATTENDEES",
        "LOAD",
        "MULTIPLIER",
        "TAG",
        "VIA",
        "URL",
    ])
    .right(&[3, 4, 5, 6]);
    for server in servers {
        table.row(vec![
            server.id.clone(),
            server.state.clone(),
            online(server.online),
            server.meetings.to_string(),
            server.attendees.to_string(),
            number(server.load),
            number(server.load_multiplier),
            or_dash(server.tag.as_deref()),
            if server.agent { "agent" } else { "poll" }.to_owned(),
            server.url.clone(),
        ]);
    }
    table.print_or("No servers. Add one with `switchboard servers add URL SECRET`.");
}

fn print_server(server: &ServerView) {
    print_fields(&[
        ("id", server.id.clone()),
        ("url", server.url.clone()),
        ("state", server.state.clone()),
        ("online", online(server.online)),
        ("meetings", server.meetings.to_string()),
        ("attendees", server.attendees.to_string()),
        ("load", number(server.load)),
        ("load multiplier", number(server.load_multiplier)),
        ("tag", or_dash(server.tag.as_deref())),
        (
            "checksum",
            server
                .checksum
                .clone()
                .unwrap_or_else(|| "(configured default)".into()),
        ),
        ("metrics url", or_dash(server.metrics_url.as_deref())),
        (
            "metrics",
            metrics_summary(&server.metrics_state, server.over_limit),
        ),
        ("cpu", percent(server.cpu_percent)),
        ("memory", percent(server.memory_percent)),
        (
            "metrics read at",
            server
                .metrics_read_at_ms
                .map(time_ms)
                .unwrap_or_else(|| "-".into()),
        ),
        ("metrics error", or_dash(server.metrics_error.as_deref())),
        ("reported by", reporter(server)),
        ("bbb version", or_dash(server.agent_version.as_deref())),
        (
            "last heard",
            server
                .heard_at_ms
                .map(time_ms)
                .unwrap_or_else(|| "-".into()),
        ),
    ]);
}

/// `agent` (with its interval, or `away`) or `polls`.
fn reporter(server: &ServerView) -> String {
    match (server.agent, server.agent_away, server.agent_interval_ms) {
        (false, _, _) => "polls".into(),
        (true, true, _) => "agent (away: no new meetings until it is back)".into(),
        (true, false, Some(ms)) => format!("agent (every {})", number(ms as f64 / 1000.0) + " s"),
        (true, false, None) => "agent".into(),
    }
}

/// A windowed percentage, or `-` when not known.
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.1}%"))
}

/// The metrics state, marked when the server is over its limit.
fn metrics_summary(state: &str, over_limit: bool) -> String {
    if over_limit {
        format!("{state} (over limit: no new meetings)")
    } else {
        state.to_owned()
    }
}

fn online(online: bool) -> String {
    if online { "online" } else { "offline" }.to_owned()
}

/// `meetings ...`
pub async fn meetings(target: &Target, command: MeetingsCommand) -> anyhow::Result<()> {
    match command {
        MeetingsCommand::List {
            server,
            state,
            tenant,
            json,
        } => {
            let state = state.map(|state| match state {
                StateFilter::Running => MeetingState::Running,
                StateFilter::Ended => MeetingState::Ended,
            });
            let meetings = target
                .meetings(server.as_deref(), state, tenant.as_deref())
                .await?;
            if json {
                return print_json(&meetings);
            }
            let mut table = Table::new(&[
                "TENANT",
                "MEETING ID",
                "NAME",
                "STATE",
                "SERVER",
                "CREATED",
                "ENDED",
            ]);
            for meeting in &meetings {
                table.row(vec![
                    meeting.tenant.clone(),
                    meeting.meeting_id.clone(),
                    clip(&meeting.name, 30),
                    running(meeting.running),
                    meeting.server_id.clone(),
                    time_ms(meeting.create_time_ms),
                    meeting
                        .ended_at_ms
                        .map(time_ms)
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            table.print_or("No meetings.");
            Ok(())
        }
        MeetingsCommand::Show {
            tenant,
            meeting_id,
            json,
        } => {
            let meeting = target.meeting(&tenant, &meeting_id).await?;
            if json {
                return print_json(&meeting);
            }
            print_meeting(&meeting);
            Ok(())
        }
        MeetingsCommand::End { tenant, meeting_id } => {
            let meeting = target.end_meeting(&tenant, &meeting_id).await?;
            out!(
                "meeting {} ({}) ended on server {}",
                meeting.meeting_id,
                meeting.tenant,
                meeting.server_id
            );
            Ok(())
        }
    }
}

fn running(running: bool) -> String {
    if running { "running" } else { "ended" }.to_owned()
}

fn print_meeting(meeting: &MeetingView) {
    print_fields(&[
        ("tenant", meeting.tenant.clone()),
        ("meeting id", meeting.meeting_id.clone()),
        ("name", meeting.name.clone()),
        ("state", running(meeting.running)),
        ("server", meeting.server_id.clone()),
        ("internal id", meeting.internal_id.clone()),
        ("created", time_ms(meeting.create_time_ms)),
        (
            "ended",
            meeting
                .ended_at_ms
                .map(time_ms)
                .unwrap_or_else(|| "-".into()),
        ),
    ]);
}

/// `events ...`
pub async fn events(target: &Target, command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::Archive { .. } | EventsCommand::VerifyArchive { .. } => {
            unreachable!("archives work on this machine's files: handled in `cli::run`")
        }
        EventsCommand::List {
            stream,
            event_type,
            actor,
            from,
            to,
            after,
            limit,
            json,
        } => {
            let page = target
                .events(EventFilter {
                    stream,
                    event_type,
                    actor,
                    from,
                    to,
                    after,
                    limit,
                    newest_first: false,
                })
                .await?;
            if json {
                return print_json(&page);
            }
            let mut table =
                Table::new(&["POSITION", "RECORDED", "ACTOR", "TYPE", "STREAM", "DETAILS"])
                    .right(&[0]);
            for event in &page.events {
                table.row(vec![
                    event.position.to_string(),
                    time(event.recorded_at),
                    event.actor.clone(),
                    event.event_type.clone(),
                    event.stream.clone(),
                    details(event),
                ]);
            }
            table.print_or("No events.");
            if let Some(next) = page.next_after {
                out!("(more: --after {next})");
            }
            Ok(())
        }
        EventsCommand::At { time: at, json } => {
            let cluster = target.history(at).await?;
            if json {
                return print_json(&cluster);
            }
            out!(
                "Cluster at {} (log position {})",
                time(cluster.at),
                cluster.position
            );
            out!();
            let mut servers = Table::new(&["SERVER", "STATE", "ONLINE", "URL"]);
            for server in cluster.servers.iter().filter(|s| !s.removed) {
                servers.row(vec![
                    server.id.clone(),
                    server.state.clone(),
                    online(server.online),
                    server.url.clone(),
                ]);
            }
            servers.print_or("No servers then.");
            out!();
            let mut meetings = Table::new(&["TENANT", "MEETING ID", "SERVER"]);
            for meeting in cluster.meetings.iter().filter(|m| m.running) {
                meetings.row(vec![
                    meeting.tenant.clone(),
                    meeting.meeting_id.clone(),
                    or_dash(meeting.server_id.as_deref()),
                ]);
            }
            meetings.print_or("No meetings running then.");
            Ok(())
        }
    }
}

/// A payload in one short line of `key=value` pairs; its type (a column),
/// the stream's own id and token hashes are left out.
fn details(event: &EventView) -> String {
    fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(object) => {
                for (key, value) in object {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    flatten(&path, value, out);
                }
            }
            // A change to null clears a field; elsewhere null is just absent.
            serde_json::Value::Null if prefix.starts_with("changes.") => {
                out.push(format!("{prefix}=(none)"))
            }
            serde_json::Value::Null => {}
            serde_json::Value::String(text) => out.push(format!("{prefix}={text}")),
            other => out.push(format!("{prefix}={other}")),
        }
    }
    let mut pairs = Vec::new();
    if let Some(object) = event.payload.as_object() {
        for (key, value) in object {
            let own_id = key == "id" && value.as_str().is_some_and(|id| event.stream.ends_with(id));
            if key == "type" || key == "hash" || own_id {
                continue;
            }
            flatten(key, value, &mut pairs);
        }
    }
    clip(&pairs.join(" "), 100)
}

/// `tokens ...`
pub async fn tokens(target: &Target, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create {
            name,
            scope,
            server,
            json,
        } => {
            let scope = match scope {
                ScopeArg::Admin => Scope::Admin,
                ScopeArg::Read => Scope::Read,
                ScopeArg::Node => Scope::Node,
            };
            let created = target
                .create_token(NewToken {
                    name,
                    scope,
                    server,
                })
                .await?;
            if json {
                return print_json(&created);
            }
            out!("{}", created.token);
            eprintln!(
                "Token `{}` ({} scope) created. Store it now: it is not shown again. Use it as `Authorization: Bearer TOKEN` or `switchboard --url URL --token TOKEN ...`.",
                created.name,
                scope_name(created.scope)
            );
            Ok(())
        }
        TokensCommand::List { json } => {
            let tokens = target.tokens().await?;
            if json {
                return print_json(&tokens);
            }
            let mut table = Table::new(&["NAME", "SCOPE", "SERVER", "CREATED"]);
            for token in &tokens {
                table.row(vec![
                    token.name.clone(),
                    scope_name(token.scope).to_owned(),
                    token.server.clone().unwrap_or_else(|| "-".into()),
                    time(token.created_at),
                ]);
            }
            table.print_or(
                "No tokens. Create one with `switchboard tokens create NAME --scope admin|read|node`.",
            );
            Ok(())
        }
        TokensCommand::Revoke { name } => {
            target.revoke_token(&name).await?;
            out!("token `{name}` revoked");
            Ok(())
        }
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Admin => "admin",
        Scope::Read => "read",
        Scope::Node => "node",
    }
}

/// `status`
pub async fn status(target: &Target, json: bool) -> anyhow::Result<()> {
    let status = target.status().await?;
    if json {
        return print_json(&status);
    }
    let mut table = Table::new(&[
        "HOSTNAME",
        "STATE",
        "STATUS",
        "MEETINGS",
        "USERS",
        "LARGEST MEETING",
        "LOAD",
        "CPU",
        "MEMORY",
        "METRICS",
        "TAG",
        "ID",
    ])
    .right(&[3, 4, 5, 6, 7, 8]);
    for server in &status.servers {
        table.row(vec![
            hostname(&server.url),
            server.state.clone(),
            online(server.online),
            server.meetings.to_string(),
            server.users.to_string(),
            server.largest_meeting.to_string(),
            number(server.load),
            percent(server.cpu_percent),
            percent(server.memory_percent),
            metrics_summary(&server.metrics_state, server.over_limit),
            or_dash(server.tag.as_deref()),
            server.id.clone(),
        ]);
    }
    table.print_or("No servers.");
    out!(
        "{} server(s), {} meeting(s), {} user(s); event log at position {}",
        status.servers.len(),
        status.meetings,
        status.users,
        status.position
    );
    Ok(())
}

fn hostname(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_owned();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| url.to_owned())
}
