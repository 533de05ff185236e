//! Scalelite's `servers:sync` YAML format, read and written, and the plan a
//! sync follows.
//!
//! The file maps server ids to their settings:
//!
//! ```yaml
//! servers:
//!   bbb1.example.org:                # any id of [A-Za-z0-9_.-]; a hostname or a UUID
//!     secret: 1bdce5cb...            # required
//!     url: https://bbb1.example.org/bigbluebutton/api   # default: https://<id>/bigbluebutton/api
//!     enabled: true                  # default true
//!     load_multiplier: 1.0           # default 1.0, > 0
//!     tag: big                       # default: none
//! ```
//!
//! `load`, `state`, `online` and `bbb_version` (Scalelite's verbose export)
//! are ignored;
//! `checksum` is Switchboard's own addition (left as it is when absent).
//! Scalelite's own `servers:yaml` writes Ruby symbols (`:servers:`, `:url:`)
//! and BigDecimal multipliers (`!ruby/object:BigDecimal 18:0.2e1`); both are
//! understood.

use crate::admin::model::ServerUpdate;
use anyhow::{Context, anyhow, bail};
use serde_yaml_ng::{Mapping, Value};
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;

/// Parameters Scalelite's verbose export adds and `servers:sync` ignores.
const IGNORED: [&str; 4] = ["load", "state", "online", "bbb_version"];

/// Parameters a server entry may have.
const KNOWN: [&str; 6] = [
    "url",
    "secret",
    "enabled",
    "load_multiplier",
    "tag",
    "checksum",
];

/// One server as a sync file wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileServer {
    /// Its key in the file (Scalelite's server id).
    pub key: String,
    /// Base URL, normalised as Switchboard stores it (`.../bigbluebutton/`).
    pub url: String,
    /// Shared secret.
    pub secret: String,
    /// Whether it should take new meetings.
    pub enabled: bool,
    /// Load weight.
    pub load_multiplier: f64,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Checksum algorithm: `None` leaves it alone, `Some("")` means the default.
    pub checksum: Option<String>,
}

/// A server as `export` writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportServer {
    /// Switchboard's id.
    pub id: String,
    /// Base URL as stored.
    pub url: String,
    /// Shared secret.
    pub secret: String,
    /// Load weight.
    pub load_multiplier: f64,
    /// Whether it is enabled (cordoned and disabled servers are not).
    pub enabled: bool,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Its own checksum algorithm, if any.
    pub checksum: Option<String>,
}

/// Normalises a server URL as the domain does: Scalelite's `.../api`
/// endpoint URLs become the base URL, which ends in `/`.
pub fn normalise_url(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    if rest.is_empty() || rest.starts_with('/') || url.contains(char::is_whitespace) {
        return None;
    }
    let base = url.trim_end_matches('/');
    let base = base.strip_suffix("/api").unwrap_or(base);
    Some(format!("{base}/"))
}

/// The API endpoint URL Scalelite keeps for a base URL.
pub fn api_url(base: &str) -> String {
    format!("{}/api", base.trim_end_matches('/'))
}

/// A mapping key or scalar as text; Ruby symbols lose their colon.
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.strip_prefix(':').unwrap_or(text).to_owned()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn entry<'a>(mapping: &'a Mapping, name: &str) -> Option<&'a Value> {
    mapping
        .iter()
        .find(|(key, _)| key_text(key).as_deref() == Some(name))
        .map(|(_, value)| value)
        .filter(|value| !value.is_null())
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        // Ruby's BigDecimal#to_yaml: `!ruby/object:BigDecimal 18:0.2e1`.
        Value::Tagged(tagged) => {
            let text = scalar_text(&tagged.value)?;
            let digits = text.split_once(':').map_or(text.as_str(), |(_, d)| d);
            digits.trim().parse().ok()
        }
        _ => None,
    }
}

fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Reads a `servers:sync` file.
pub fn parse(text: &str) -> anyhow::Result<Vec<FileServer>> {
    let document: Value = serde_yaml_ng::from_str(text).context("the file is not valid YAML")?;
    let Value::Mapping(top) = &document else {
        bail!("the file must hold a `servers:` mapping of server ids to their settings");
    };
    let servers = match entry(top, "servers") {
        Some(Value::Mapping(servers)) => servers,
        _ => bail!(
            "the file must hold a `servers:` mapping of server ids to their settings (`servers: {{}}` for none)"
        ),
    };
    let mut wanted: Vec<FileServer> = Vec::new();
    for (key, params) in servers {
        let key = key_text(key).ok_or_else(|| anyhow!("a server id must be text"))?;
        if !valid_key(&key) {
            bail!("server id `{key}` contains invalid characters (allowed: A-Z a-z 0-9 _ . -)");
        }
        let empty = Mapping::new();
        let params = match params {
            Value::Mapping(params) => params,
            Value::Null => &empty,
            _ => bail!("server `{key}`: its settings must be a mapping (secret, url, ...)"),
        };
        let unknown: Vec<String> = params
            .keys()
            .filter_map(key_text)
            .filter(|name| !KNOWN.contains(&name.as_str()) && !IGNORED.contains(&name.as_str()))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "server `{key}` has unknown parameters: {} (known: {})",
                unknown.join(", "),
                KNOWN.join(", ")
            );
        }
        let secret = entry(params, "secret")
            .and_then(scalar_text)
            .filter(|secret| !secret.trim().is_empty())
            .ok_or_else(|| anyhow!("server `{key}` has no secret"))?;
        let raw_url = match entry(params, "url") {
            None => format!("https://{key}/bigbluebutton/api"),
            Some(value) => {
                scalar_text(value).ok_or_else(|| anyhow!("server `{key}`: url must be text"))?
            }
        };
        let url = normalise_url(&raw_url).ok_or_else(|| {
            anyhow!("server `{key}` has an invalid url `{raw_url}`: it must start with http:// or https://")
        })?;
        let enabled = match entry(params, "enabled") {
            None => true,
            Some(value) => flag(value)
                .ok_or_else(|| anyhow!("server `{key}`: enabled must be true or false"))?,
        };
        let load_multiplier = match entry(params, "load_multiplier") {
            None => 1.0,
            Some(value) => number(value)
                .filter(|value| value.is_finite() && *value > 0.0)
                .ok_or_else(|| {
                    anyhow!("server `{key}` has an invalid load_multiplier: it must be a number greater than 0")
                })?,
        };
        let tag = entry(params, "tag")
            .map(|value| {
                scalar_text(value).ok_or_else(|| anyhow!("server `{key}`: tag must be text"))
            })
            .transpose()?
            .map(|tag| tag.trim().to_owned())
            .filter(|tag| !tag.is_empty());
        let checksum = entry(params, "checksum")
            .map(|value| {
                let name = scalar_text(value)
                    .ok_or_else(|| anyhow!("server `{key}`: checksum must be text"))?;
                let name = name.trim().to_ascii_lowercase();
                if name.is_empty() {
                    return Ok(name);
                }
                ChecksumAlgorithm::parse(&name)
                    .map(|algorithm| algorithm.name().to_owned())
                    .ok_or_else(|| {
                        anyhow!("server `{key}`: unknown checksum `{name}` (sha1, sha256, sha384 or sha512)")
                    })
            })
            .transpose()?;
        if let Some(other) = wanted.iter().find(|other| other.url == url) {
            bail!(
                "servers `{}` and `{key}` have the same URL {url}",
                other.key
            );
        }
        wanted.push(FileServer {
            key,
            url,
            secret,
            enabled,
            load_multiplier,
            tag,
            checksum,
        });
    }
    Ok(wanted)
}

/// Writes servers as a `servers:sync` file (with their secrets).
pub fn write(servers: &[ExportServer]) -> anyhow::Result<String> {
    let mut entries = Mapping::new();
    for server in servers {
        let mut params = Mapping::new();
        params.insert("url".into(), api_url(&server.url).into());
        params.insert("secret".into(), server.secret.clone().into());
        params.insert("load_multiplier".into(), server.load_multiplier.into());
        params.insert("enabled".into(), server.enabled.into());
        if let Some(tag) = &server.tag {
            params.insert("tag".into(), tag.clone().into());
        }
        if let Some(checksum) = &server.checksum {
            params.insert("checksum".into(), checksum.clone().into());
        }
        entries.insert(server.id.clone().into(), Value::Mapping(params));
    }
    let mut document = Mapping::new();
    document.insert("servers".into(), Value::Mapping(entries));
    let yaml = serde_yaml_ng::to_string(&Value::Mapping(document))?;
    Ok(format!(
        "# Switchboard servers in Scalelite's servers:sync format.\n\
         # It holds the servers' secrets: keep it private.\n{yaml}"
    ))
}

/// What a sync does with servers that are not in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    /// Leave them as they are.
    Keep,
    /// Remove the empty ones; cordon those with running meetings (sync again once they ended).
    Cordon,
    /// Remove them all, ending their meetings first.
    Force,
}

/// A server of the pool as the plan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    /// Id.
    pub id: String,
    /// Base URL.
    pub url: String,
    /// Secret, when known (never over the admin API).
    pub secret: Option<String>,
    /// Tag.
    pub tag: Option<String>,
    /// Load weight.
    pub load_multiplier: f64,
    /// Own checksum algorithm.
    pub checksum: Option<String>,
    /// `enabled`, `cordoned` or `disabled`.
    pub state: String,
    /// Running meetings.
    pub meetings: u64,
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Add a server of the file.
    Add(FileServer),
    /// Change a server's settings to the file's.
    Update {
        /// Server id.
        id: String,
        /// The file's key for it.
        key: String,
        /// The change.
        update: ServerUpdate,
        /// Names of the fields known to change.
        changed: Vec<&'static str>,
    },
    /// Enable a server the file wants enabled.
    Enable {
        /// Server id.
        id: String,
    },
    /// Cordon an enabled server the file wants disabled.
    Cordon {
        /// Server id.
        id: String,
    },
    /// A server of the file that is as it should be.
    Unchanged {
        /// Server id.
        id: String,
        /// The file's key for it.
        key: String,
    },
    /// A server not in the file, left alone (`keep`).
    Keep {
        /// Server id.
        id: String,
        /// Its URL.
        url: String,
    },
    /// An empty server not in the file: removed.
    Remove {
        /// Server id.
        id: String,
        /// Its URL.
        url: String,
    },
    /// A server not in the file that still has meetings (`cordon`): cordoned
    /// if enabled, removed by a later sync once empty.
    Drain {
        /// Server id.
        id: String,
        /// Its URL.
        url: String,
        /// Running meetings.
        meetings: u64,
        /// Whether it must be cordoned (it is enabled now).
        cordon: bool,
    },
    /// A server not in the file with meetings (`force`): end them, remove it.
    Evict {
        /// Server id.
        id: String,
        /// Its URL.
        url: String,
        /// Running meetings.
        meetings: u64,
    },
}

impl Step {
    /// Whether the step changes anything.
    pub fn changes(&self) -> bool {
        match self {
            Step::Unchanged { .. } | Step::Keep { .. } => false,
            Step::Drain { cordon, .. } => *cordon,
            _ => true,
        }
    }
}

fn same_multiplier(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The steps that bring `existing` to what `wanted` says; servers are matched
/// by id when the file's key is a Switchboard id, else by URL.
pub fn plan(
    wanted: &[FileServer],
    existing: &[Existing],
    mode: SyncMode,
) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut claimed: Vec<(&str, &str)> = Vec::new();
    for server in wanted {
        let matched = existing
            .iter()
            .find(|e| e.id.eq_ignore_ascii_case(&server.key))
            .or_else(|| existing.iter().find(|e| e.url == server.url));
        let Some(current) = matched else {
            steps.push(Step::Add(server.clone()));
            continue;
        };
        if let Some((_, other)) = claimed.iter().find(|(id, _)| *id == current.id) {
            bail!(
                "servers `{other}` and `{}` of the file both match server {} ({})",
                server.key,
                current.id,
                current.url
            );
        }
        claimed.push((&current.id, &server.key));
        let mut update = ServerUpdate::default();
        let mut changed = Vec::new();
        if server.url != current.url {
            update.url = Some(server.url.clone());
            changed.push("url");
        }
        match &current.secret {
            Some(secret) if *secret == server.secret => {}
            Some(_) => {
                update.secret = Some(server.secret.clone());
                changed.push("secret");
            }
            // Unknown (remote): send it; an unchanged secret records nothing.
            None => update.secret = Some(server.secret.clone()),
        }
        if server.tag != current.tag {
            update.tag = Some(server.tag.clone().unwrap_or_default());
            changed.push("tag");
        }
        if !same_multiplier(server.load_multiplier, current.load_multiplier) {
            update.load_multiplier = Some(server.load_multiplier);
            changed.push("load_multiplier");
        }
        if let Some(checksum) = &server.checksum
            && current.checksum.as_deref().unwrap_or("") != checksum
        {
            update.checksum = Some(checksum.clone());
            changed.push("checksum");
        }
        let mut touched = false;
        if update != ServerUpdate::default() {
            touched = !changed.is_empty();
            steps.push(Step::Update {
                id: current.id.clone(),
                key: server.key.clone(),
                update,
                changed,
            });
        }
        if server.enabled && current.state != "enabled" {
            steps.push(Step::Enable {
                id: current.id.clone(),
            });
            touched = true;
        } else if !server.enabled && current.state == "enabled" {
            steps.push(Step::Cordon {
                id: current.id.clone(),
            });
            touched = true;
        }
        if !touched && current.secret.is_some() {
            steps.push(Step::Unchanged {
                id: current.id.clone(),
                key: server.key.clone(),
            });
        }
    }
    for current in existing {
        if claimed.iter().any(|(id, _)| *id == current.id) {
            continue;
        }
        let (id, url) = (current.id.clone(), current.url.clone());
        steps.push(match mode {
            SyncMode::Keep => Step::Keep { id, url },
            _ if current.meetings == 0 => Step::Remove { id, url },
            SyncMode::Cordon => Step::Drain {
                id,
                url,
                meetings: current.meetings,
                cordon: current.state == "enabled",
            },
            SyncMode::Force => Step::Evict {
                id,
                url,
                meetings: current.meetings,
            },
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCALELITE_DOC: &str = r#"
servers:
    # Example for a simple server with default values
    bbb1.example.com:
        secret: "1bdce5cbab581f3f20b199b970e53ae3c9d9df6392f79589bd58be020ed14535"

    # Full example for a legacy server (generated id)
    02bff3a7-c95f-49d3-b1e5-c53eddd4dd68:
        secret: "2bdce5cbab581f3f20b199b970e53ae3c9d9df6392f79589bd58be020ed14535"
        url: "https://bbb2.example.com/bigbluebutton/api"
        enabled: false
        load_multiplier: 5.0
        tag: big
"#;

    #[test]
    fn reads_scalelite_files_with_their_defaults() {
        let servers = parse(SCALELITE_DOC).unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].key, "bbb1.example.com");
        assert_eq!(servers[0].url, "https://bbb1.example.com/bigbluebutton/");
        assert!(servers[0].enabled);
        assert_eq!(servers[0].load_multiplier, 1.0);
        assert_eq!(servers[0].tag, None);
        assert_eq!(servers[0].checksum, None);
        assert_eq!(servers[1].url, "https://bbb2.example.com/bigbluebutton/");
        assert!(!servers[1].enabled);
        assert_eq!(servers[1].load_multiplier, 5.0);
        assert_eq!(servers[1].tag.as_deref(), Some("big"));
    }

    #[test]
    fn reads_what_scalelites_servers_yaml_prints() {
        // Ruby symbols as keys, BigDecimal multipliers, verbose fields.
        let doc = "---\n:servers:\n  bbb1.example.com:\n    :url: https://bbb1.example.com/bigbluebutton/api\n    :secret: abc\n    :load_multiplier: !ruby/object:BigDecimal 18:0.25e1\n    :enabled: true\n    :state: enabled\n    :load: 3.0\n    :online: true\n";
        let servers = parse(doc).unwrap();
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].load_multiplier, 2.5);
        assert_eq!(servers[0].secret, "abc");
    }

    #[test]
    fn refuses_bad_files_clearly() {
        let cases = [
            ("nothing: here", "`servers:` mapping"),
            ("servers:\n  a:\n    url: https://a/\n", "no secret"),
            ("servers:\n  'a b':\n    secret: s\n", "invalid characters"),
            (
                "servers:\n  a:\n    secret: s\n    colour: red\n",
                "unknown parameters: colour",
            ),
            (
                "servers:\n  a:\n    secret: s\n    load_multiplier: 0\n",
                "load_multiplier",
            ),
            (
                "servers:\n  a:\n    secret: s\n    url: ftp://a\n",
                "invalid url",
            ),
            (
                "servers:\n  a:\n    secret: s\n    checksum: md5\n",
                "unknown checksum",
            ),
            (
                "servers:\n  a:\n    secret: s\n    url: https://x/bigbluebutton/api\n  b:\n    secret: t\n    url: https://x/bigbluebutton/\n",
                "same URL",
            ),
            ("servers: [", "not valid YAML"),
        ];
        for (doc, expected) in cases {
            let err = parse(doc).unwrap_err().to_string();
            assert!(err.contains(expected), "{doc}: {err}");
        }
    }

    #[test]
    fn written_files_read_back_the_same() {
        let servers = vec![
            ExportServer {
                id: "0192f0c4-7b1e-7cc0-8000-000000000001".into(),
                url: "https://bbb1.example.org/bigbluebutton/".into(),
                secret: "12345".into(),
                load_multiplier: 2.5,
                enabled: true,
                tag: Some("big".into()),
                checksum: Some("sha1".into()),
            },
            ExportServer {
                id: "0192f0c4-7b1e-7cc0-8000-000000000002".into(),
                url: "http://bbb2.example.org/bigbluebutton/".into(),
                secret: "true".into(),
                load_multiplier: 1.0,
                enabled: false,
                tag: None,
                checksum: None,
            },
        ];
        let text = write(&servers).unwrap();
        assert!(
            text.contains("url: https://bbb1.example.org/bigbluebutton/api"),
            "{text}"
        );
        let read = parse(&text).unwrap();
        assert_eq!(read.len(), 2);
        for (written, read) in servers.iter().zip(&read) {
            assert_eq!(read.key, written.id);
            assert_eq!(read.url, written.url);
            assert_eq!(read.secret, written.secret);
            assert_eq!(read.load_multiplier, written.load_multiplier);
            assert_eq!(read.enabled, written.enabled);
            assert_eq!(read.tag, written.tag);
            assert_eq!(read.checksum, written.checksum);
        }
        assert_eq!(parse(&write(&[]).unwrap()).unwrap(), Vec::new());
    }

    fn existing(id: &str, url: &str, state: &str, meetings: u64) -> Existing {
        Existing {
            id: id.into(),
            url: url.into(),
            secret: Some("s".into()),
            tag: None,
            load_multiplier: 1.0,
            checksum: None,
            state: state.into(),
            meetings,
        }
    }

    #[test]
    fn plans_follow_scalelite() {
        let wanted = parse(
            "servers:\n  a.example.org:\n    secret: s\n  b.example.org:\n    secret: new\n    enabled: false\n  new.example.org:\n    secret: n\n",
        )
        .unwrap();
        let pool = vec![
            existing("1", "https://a.example.org/bigbluebutton/", "enabled", 0),
            existing("2", "https://b.example.org/bigbluebutton/", "enabled", 0),
            existing("3", "https://c.example.org/bigbluebutton/", "enabled", 0),
            existing("4", "https://d.example.org/bigbluebutton/", "enabled", 2),
        ];
        let steps = plan(&wanted, &pool, SyncMode::Cordon).unwrap();
        assert!(matches!(&steps[0], Step::Unchanged { id, .. } if id == "1"));
        assert!(
            matches!(&steps[1], Step::Update { id, changed, .. } if id == "2" && changed == &["secret"])
        );
        assert!(matches!(&steps[2], Step::Cordon { id } if id == "2"));
        assert!(matches!(&steps[3], Step::Add(server) if server.key == "new.example.org"));
        assert!(matches!(&steps[4], Step::Remove { id, .. } if id == "3"));
        assert!(
            matches!(&steps[5], Step::Drain { id, meetings: 2, cordon: true, .. } if id == "4")
        );
        let keep = plan(&wanted, &pool, SyncMode::Keep).unwrap();
        assert!(matches!(&keep[4], Step::Keep { id, .. } if id == "3"));
        let force = plan(&wanted, &pool, SyncMode::Force).unwrap();
        assert!(matches!(&force[5], Step::Evict { id, meetings: 2, .. } if id == "4"));
    }

    #[test]
    fn matches_by_id_before_url() {
        let wanted =
            parse("servers:\n  '7':\n    secret: s\n    url: https://moved.example.org/bigbluebutton/api\n")
                .unwrap();
        let pool = vec![existing(
            "7",
            "https://old.example.org/bigbluebutton/",
            "enabled",
            0,
        )];
        let steps = plan(&wanted, &pool, SyncMode::Force).unwrap();
        assert_eq!(steps.len(), 1);
        assert!(matches!(&steps[0], Step::Update { changed, .. } if changed == &["url"]));
    }
}
