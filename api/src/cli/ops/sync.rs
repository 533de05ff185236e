//! `servers sync` and `servers export`: Scalelite's `servers:sync` YAML.

use crate::admin::model::{NewServer, PanicOptions};
use crate::cli::scalelite::{self, Existing, ExportServer, Step, SyncMode};
use crate::cli::table::number;
use crate::cli::target::Target;
use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::path::Path;
use switchboard_domain::server::ServerCommand;

fn read_file(file: &Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

fn line(action: &str, server: &str, detail: &str) {
    out!(
        "{}",
        format!("{action:<9} {server:<36}  {detail}").trim_end()
    );
}

fn describe_new(server: &scalelite::FileServer) -> String {
    let mut parts = vec![
        format!("{} ({})", server.url, server.key),
        if server.enabled {
            "enabled"
        } else {
            "disabled"
        }
        .to_owned(),
    ];
    if server.load_multiplier != 1.0 {
        parts.push(format!(
            "load_multiplier {}",
            number(server.load_multiplier)
        ));
    }
    if let Some(tag) = &server.tag {
        parts.push(format!("tag {tag}"));
    }
    parts.join(", ")
}

/// `servers sync FILE [--mode keep|cordon|force] [--dry-run]`
pub async fn sync(
    target: &Target,
    file: &Path,
    mode: SyncMode,
    dry_run: bool,
) -> anyhow::Result<()> {
    let wanted = scalelite::parse(&read_file(file)?)
        .with_context(|| format!("{} is not a servers:sync file", file.display()))?;
    let servers = target.servers().await?;
    let secrets = target.secrets().await?;
    let existing: Vec<Existing> = servers
        .iter()
        .map(|server| Existing {
            id: server.id.clone(),
            url: server.url.clone(),
            secret: secrets.as_ref().and_then(|s| s.get(&server.id).cloned()),
            tag: server.tag.clone(),
            load_multiplier: server.load_multiplier,
            checksum: server.checksum.clone(),
            state: server.state.clone(),
            meetings: server.meetings,
        })
        .collect();
    let steps = scalelite::plan(&wanted, &existing, mode)?;
    if dry_run {
        out!("Dry run: nothing is changed.");
    }
    let mut changes = 0;
    for step in &steps {
        if step.changes() {
            changes += 1;
        }
        match step {
            Step::Add(server) => {
                if dry_run {
                    line("add", &server.key, &describe_new(server));
                    continue;
                }
                let view = target
                    .add_server(NewServer {
                        url: server.url.clone(),
                        secret: server.secret.clone(),
                        tag: server.tag.clone(),
                        load_multiplier: Some(server.load_multiplier),
                        checksum: server.checksum.clone().filter(|c| !c.is_empty()),
                        metrics_url: None,
                        enabled: Some(server.enabled),
                    })
                    .await
                    .with_context(|| format!("cannot add server `{}`", server.key))?;
                line("add", &view.id, &describe_new(server));
            }
            Step::Update {
                id,
                key,
                update,
                changed,
            } => {
                let mut detail = if changed.is_empty() {
                    String::new()
                } else {
                    changed.join(", ")
                };
                if update.secret.is_some() && !changed.contains(&"secret") {
                    if !detail.is_empty() {
                        detail.push_str(", ");
                    }
                    detail.push_str("secret (if different)");
                }
                line("update", id, &format!("{detail} ({key})"));
                if !dry_run {
                    target
                        .update_server(id, update.clone())
                        .await
                        .with_context(|| format!("cannot update server {id} (`{key}`)"))?;
                }
            }
            Step::Enable { id } => {
                line("enable", id, "");
                if !dry_run {
                    target.set_state(id, ServerCommand::Enable).await?;
                }
            }
            Step::Cordon { id } => {
                let detail = if dry_run {
                    "enabled: false".to_owned()
                } else {
                    let view = target.set_state(id, ServerCommand::Cordon).await?;
                    format!("enabled: false; now {}", view.state)
                };
                line("cordon", id, &detail);
            }
            Step::Unchanged { id, key } => line("unchanged", id, &format!("({key})")),
            Step::Keep { id, url } => line("keep", id, &format!("{url} (not in the file)")),
            Step::Remove { id, url } => {
                line("remove", id, &format!("{url} (not in the file)"));
                if !dry_run {
                    target.remove(id, false).await?;
                }
            }
            Step::Drain {
                id,
                url,
                meetings,
                cordon,
            } => {
                let what = if *cordon { "cordon" } else { "wait" };
                line(
                    what,
                    id,
                    &format!(
                        "{url} (not in the file; {meetings} meeting(s) still run: sync again once they ended to remove it)"
                    ),
                );
                if *cordon && !dry_run {
                    target.set_state(id, ServerCommand::Cordon).await?;
                }
            }
            Step::Evict { id, url, meetings } => {
                line(
                    "remove",
                    id,
                    &format!("{url} (not in the file; ending its {meetings} meeting(s) first)"),
                );
                if !dry_run {
                    target
                        .panic(
                            id,
                            PanicOptions {
                                end_meetings: Some(true),
                            },
                        )
                        .await?;
                    target.remove(id, true).await?;
                }
            }
        }
    }
    if dry_run {
        out!("Dry run: {changes} change(s) planned, none made.");
    } else {
        out!("Sync done: {changes} change(s).");
    }
    Ok(())
}

/// `servers export [FILE]`
pub async fn export(target: &Target, file: Option<&Path>) -> anyhow::Result<()> {
    let Some(secrets) = target.secrets().await? else {
        bail!(
            "export needs the servers' secrets, which the admin API never hands out: run it on the instance's database (without --url)"
        );
    };
    let servers = target.servers().await?;
    let mut export = Vec::new();
    for server in servers {
        let Some(secret) = secrets.get(&server.id).cloned() else {
            bail!("server {} vanished while exporting; try again", server.id);
        };
        export.push(ExportServer {
            enabled: server.state == "enabled",
            id: server.id,
            url: server.url,
            secret,
            load_multiplier: server.load_multiplier,
            tag: server.tag,
            checksum: server.checksum,
        });
    }
    let text = scalelite::write(&export)?;
    match file {
        None => print!("{text}"),
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut out = options
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            out.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "Wrote {} server(s) to {}. It holds their secrets: keep it private.",
                export.len(),
                path.display()
            );
        }
    }
    Ok(())
}
