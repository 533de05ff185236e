//! `switchboard tenants ...`: front-ends with their own secrets, policy,
//! limits and server pool, on the local database or through the admin API.

use super::table::{Table, print_json};
use super::target::Target;
use crate::admin::tenants::{
    LimitsView, NewTenant, PolicyRule, PolicyView, RecordingsStoreView, RetentionView, RuleAction,
    SecretBody, StatsToken, TenantUpdate, TenantView,
};
use anyhow::{anyhow, bail};
use clap::Subcommand;

/// `tenants` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// List tenants.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant (secrets as fingerprints).
    Show {
        /// Its name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a tenant: its front-ends call `https://NAME.<your host>/bigbluebutton/api/`
    /// or `https://<your host>/t/NAME/bigbluebutton/api/` with SECRET.
    Create {
        /// Name: a lower-case DNS label (not `default`).
        name: String,
        /// Its first secret (at least 12 characters).
        #[arg(long)]
        secret: String,
        /// Server tags its meetings require, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
        /// Most meetings it may run at once.
        #[arg(long)]
        max_meetings: Option<u64>,
        /// Most attendees over its running meetings.
        #[arg(long)]
        max_attendees: Option<u64>,
    },
    /// Print a new stats token for the tenant's own `/t/NAME/stats` and
    /// `/t/NAME/metrics` (an earlier one stops working; only its hash is kept).
    StatsToken {
        /// The tenant.
        name: String,
    },
    /// Change a tenant's required server tags (`--tags ""` for every server).
    Update {
        /// Its name.
        name: String,
        /// Server tags its meetings require, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
    },
    /// Replace a tenant's limits (`none` for unlimited).
    Limits {
        /// Its name.
        name: String,
        /// Most meetings it may run at once, or `none`.
        #[arg(long)]
        max_meetings: Option<String>,
        /// Most attendees over its running meetings, or `none`.
        #[arg(long)]
        max_attendees: Option<String>,
    },
    /// Replace a tenant's parameter policy. RULE is `default:PARAM=VALUE`,
    /// `override:PARAM=VALUE`, `block:PARAM`, `max:PARAM=N` or
    /// `append:PARAM=A,B`.
    Policy {
        /// Its name.
        name: String,
        /// A rule for create (repeatable, applied in order).
        #[arg(long = "create")]
        create: Vec<String>,
        /// A rule for join (repeatable, applied in order).
        #[arg(long = "join")]
        join: Vec<String>,
        /// Presentation URL for creates that bring none.
        #[arg(long)]
        presentation: Option<String>,
        /// Logo URL for creates that bring none.
        #[arg(long)]
        logo: Option<String>,
    },
    /// Set how many days the tenant's recordings are kept after they end
    /// (`none`: the global `[recordings] retention_days` applies).
    Retention {
        /// Its name.
        name: String,
        /// Days (at least 1), or `none`.
        #[arg(long)]
        days: String,
    },
    /// Keep the tenant's new recordings in their own store: a directory or
    /// `s3://BUCKET/PREFIX` (reached with the deployment's S3 endpoint and
    /// credentials), or `default` for the deployment's store. Existing
    /// recordings stay where they are until `recordings migrate-store
    /// --tenant NAME` moves them.
    RecordingsStore {
        /// Its name.
        name: String,
        /// The store, or `default`.
        #[arg(long)]
        store: String,
    },
    /// Add or revoke secrets (rotation).
    Secrets {
        /// What to do.
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Delete a tenant (refused while it runs meetings unless --force).
    Delete {
        /// Its name.
        name: String,
        /// Delete although it runs meetings (they run on, unlisted).
        #[arg(long)]
        force: bool,
    },
}

/// `tenants secrets` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Accept another secret.
    Add {
        /// The tenant.
        name: String,
        /// The secret.
        secret: String,
    },
    /// Stop accepting a secret (the last one cannot go).
    Revoke {
        /// The tenant.
        name: String,
        /// The secret.
        secret: String,
    },
}

/// Parses `action:param[=value]`.
pub fn parse_rule(text: &str) -> anyhow::Result<PolicyRule> {
    let hint = "write rules as default:PARAM=VALUE, override:PARAM=VALUE, block:PARAM, max:PARAM=N or append:PARAM=A,B";
    let (action, rest) = text
        .split_once(':')
        .ok_or_else(|| anyhow!("`{text}` is not a rule: {hint}"))?;
    let action = match action.trim().to_ascii_lowercase().as_str() {
        "default" => RuleAction::Default,
        "override" => RuleAction::Override,
        "block" => RuleAction::Block,
        "max" => RuleAction::Max,
        "append" => RuleAction::Append,
        other => bail!("`{other}` is not a rule action: {hint}"),
    };
    let (param, value) = match rest.split_once('=') {
        Some((param, value)) => (param, Some(value.to_owned())),
        None => (rest, None),
    };
    if param.trim().is_empty() {
        bail!("`{text}` names no parameter: {hint}");
    }
    if action == RuleAction::Block && value.is_some() {
        bail!("a block rule takes no value: block:{param}");
    }
    if action != RuleAction::Block && value.is_none() {
        bail!("`{text}` needs a value: {hint}");
    }
    Ok(PolicyRule {
        action,
        param: param.trim().to_owned(),
        value,
    })
}

fn parse_limit(
    flag: &str,
    text: Option<String>,
    current: Option<u64>,
) -> anyhow::Result<Option<u64>> {
    match text.as_deref().map(str::trim) {
        None => Ok(current),
        Some("none") | Some("") => Ok(None),
        Some(number) => number
            .parse()
            .map(Some)
            .map_err(|_| anyhow!("{flag} takes a whole number or `none`, not `{number}`")),
    }
}

fn tags(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|tag| tag.trim().to_owned())
        .filter(|tag| !tag.is_empty())
        .collect()
}

fn print_tenant(tenant: &TenantView) {
    out!("name:            {}", tenant.name);
    out!("api path:        {}", tenant.api_path);
    out!("secrets:         {}", tenant.secrets.join(", "));
    out!(
        "required tags:   {}",
        if tenant.required_tags.is_empty() {
            "(any server)".to_owned()
        } else {
            tenant.required_tags.join(", ")
        }
    );
    let limit = |n: Option<u64>| n.map_or("unlimited".to_owned(), |n| n.to_string());
    out!("max meetings:    {}", limit(tenant.limits.max_meetings));
    out!("max attendees:   {}", limit(tenant.limits.max_attendees));
    out!("running:         {}", tenant.running_meetings);
    out!(
        "retention:       {}",
        tenant
            .retention_days
            .map_or("(global default)".to_owned(), |days| format!("{days} days"))
    );
    out!(
        "recordings in:   {}",
        tenant
            .recordings_store
            .as_deref()
            .unwrap_or("(the deployment's store)")
    );
    let rule = |r: &PolicyRule| {
        format!(
            "{:?}:{}{}",
            r.action,
            r.param,
            r.value
                .as_deref()
                .map(|v| format!("={v}"))
                .unwrap_or_default()
        )
        .to_lowercase()
    };
    for r in &tenant.policy.create {
        out!("create rule:     {}", rule(r));
    }
    for r in &tenant.policy.join {
        out!("join rule:       {}", rule(r));
    }
    if let Some(url) = &tenant.policy.default_presentation {
        out!("presentation:    {url}");
    }
    if let Some(url) = &tenant.policy.logo {
        out!("logo:            {url}");
    }
}

/// Runs a `tenants` subcommand.
pub async fn run(target: &Target, command: TenantsCommand) -> anyhow::Result<()> {
    match command {
        TenantsCommand::List { json } => {
            let tenants = target.tenants().await?;
            if json {
                return print_json(&tenants);
            }
            let mut table = Table::new(&[
                "NAME",
                "SECRETS",
                "TAGS",
                "MAX MEETINGS",
                "MAX ATTENDEES",
                "RUNNING",
            ]);
            for t in &tenants {
                let limit = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
                table.row(vec![
                    t.name.clone(),
                    t.secrets.len().to_string(),
                    t.required_tags.join(","),
                    limit(t.limits.max_meetings),
                    limit(t.limits.max_attendees),
                    t.running_meetings.to_string(),
                ]);
            }
            table.print_or("No tenants: Switchboard serves one front-end with the global secret. Add one with `switchboard tenants create NAME --secret SECRET`.");
            Ok(())
        }
        TenantsCommand::Show { name, json } => {
            let tenant = target.tenant(&name).await?;
            if json {
                return print_json(&tenant);
            }
            print_tenant(&tenant);
            Ok(())
        }
        TenantsCommand::Create {
            name,
            secret,
            tags: required,
            max_meetings,
            max_attendees,
        } => {
            let limits =
                (max_meetings.is_some() || max_attendees.is_some()).then_some(LimitsView {
                    max_meetings,
                    max_attendees,
                });
            let tenant = target
                .create_tenant(NewTenant {
                    name,
                    secret,
                    required_tags: required.map(tags),
                    limits,
                    policy: None,
                })
                .await?;
            print_tenant(&tenant);
            Ok(())
        }
        TenantsCommand::Update {
            name,
            tags: required,
        } => {
            let Some(required) = required else {
                bail!("nothing to change: pass --tags a,b (or --tags \"\" for every server)");
            };
            let tenant = target
                .update_tenant(
                    &name,
                    TenantUpdate {
                        required_tags: Some(tags(required)),
                        ..TenantUpdate::default()
                    },
                )
                .await?;
            print_tenant(&tenant);
            Ok(())
        }
        TenantsCommand::Limits {
            name,
            max_meetings,
            max_attendees,
        } => {
            if max_meetings.is_none() && max_attendees.is_none() {
                bail!(
                    "nothing to change: pass --max-meetings N|none and/or --max-attendees N|none"
                );
            }
            let current = target.tenant(&name).await?.limits;
            let limits = LimitsView {
                max_meetings: parse_limit("--max-meetings", max_meetings, current.max_meetings)?,
                max_attendees: parse_limit(
                    "--max-attendees",
                    max_attendees,
                    current.max_attendees,
                )?,
            };
            let tenant = target
                .update_tenant(
                    &name,
                    TenantUpdate {
                        limits: Some(limits),
                        ..TenantUpdate::default()
                    },
                )
                .await?;
            print_tenant(&tenant);
            Ok(())
        }
        TenantsCommand::Retention { name, days } => {
            let days = match days.trim() {
                "none" => None,
                number => Some(number.parse::<u32>().map_err(|_| {
                    anyhow!(
                        "--days takes a whole number of days (at least 1) or `none`, not `{number}`"
                    )
                })?),
            };
            let tenant = target
                .update_tenant(
                    &name,
                    TenantUpdate {
                        retention: Some(RetentionView { days }),
                        ..TenantUpdate::default()
                    },
                )
                .await?;
            print_tenant(&tenant);
            Ok(())
        }
        TenantsCommand::RecordingsStore { name, store } => {
            let url = match store.trim() {
                "default" | "none" => None,
                url => Some(url.to_owned()),
            };
            let tenant = target
                .update_tenant(
                    &name,
                    TenantUpdate {
                        recordings_store: Some(RecordingsStoreView { url }),
                        ..TenantUpdate::default()
                    },
                )
                .await?;
            print_tenant(&tenant);
            Ok(())
        }
        TenantsCommand::Policy {
            name,
            create,
            join,
            presentation,
            logo,
        } => {
            let policy = PolicyView {
                create: create
                    .iter()
                    .map(|r| parse_rule(r))
                    .collect::<Result<_, _>>()?,
                join: join
                    .iter()
                    .map(|r| parse_rule(r))
                    .collect::<Result<_, _>>()?,
                default_presentation: presentation,
                logo,
            };
            let tenant = target
                .update_tenant(
                    &name,
                    TenantUpdate {
                        policy: Some(policy),
                        ..TenantUpdate::default()
                    },
                )
                .await?;
            print_tenant(&tenant);
            Ok(())
        }
        TenantsCommand::Secrets { command } => {
            let tenant = match command {
                SecretsCommand::Add { name, secret } => {
                    target
                        .add_tenant_secret(&name, SecretBody { secret })
                        .await?
                }
                SecretsCommand::Revoke { name, secret } => {
                    target
                        .revoke_tenant_secret(&name, SecretBody { secret })
                        .await?
                }
            };
            print_tenant(&tenant);
            Ok(())
        }
        TenantsCommand::StatsToken { name } => {
            let token = target.issue_stats_token(&name).await?;
            out!("{}", token.token);
            Ok(())
        }
        TenantsCommand::Delete { name, force } => {
            target.delete_tenant(&name, force).await?;
            out!("tenant `{name}` deleted");
            Ok(())
        }
    }
}

impl Target {
    /// Every tenant.
    pub async fn tenants(&self) -> anyhow::Result<Vec<TenantView>> {
        match self {
            Target::Local(local) => Ok(local.admin.tenants().await?),
            Target::Remote(remote) => remote.get(&["tenants"], &[]).await,
        }
    }

    /// One tenant.
    pub async fn tenant(&self, name: &str) -> anyhow::Result<TenantView> {
        match self {
            Target::Local(local) => Ok(local.admin.tenant(name).await?),
            Target::Remote(remote) => remote.get(&["tenants", name], &[]).await,
        }
    }

    /// Creates a tenant.
    pub async fn create_tenant(&self, new: NewTenant) -> anyhow::Result<TenantView> {
        match self {
            Target::Local(local) => Ok(local.admin.create_tenant(new, &local.principal).await?),
            Target::Remote(remote) => {
                remote
                    .send(reqwest::Method::POST, &["tenants"], &[], Some(&new))
                    .await
            }
        }
    }

    /// Changes a tenant.
    pub async fn update_tenant(
        &self,
        name: &str,
        update: TenantUpdate,
    ) -> anyhow::Result<TenantView> {
        match self {
            Target::Local(local) => Ok(local
                .admin
                .update_tenant(name, update, &local.principal)
                .await?),
            Target::Remote(remote) => {
                remote
                    .send(
                        reqwest::Method::PATCH,
                        &["tenants", name],
                        &[],
                        Some(&update),
                    )
                    .await
            }
        }
    }

    /// Issues a stats token.
    pub async fn issue_stats_token(&self, name: &str) -> anyhow::Result<StatsToken> {
        match self {
            Target::Local(local) => Ok(StatsToken {
                tenant: name.to_owned(),
                token: local
                    .admin
                    .issue_stats_token(name, &local.principal)
                    .await?,
            }),
            Target::Remote(remote) => {
                remote
                    .send::<StatsToken>(
                        reqwest::Method::POST,
                        &["tenants", name, "stats-token"],
                        &[],
                        None::<&()>,
                    )
                    .await
            }
        }
    }

    /// Adds a secret.
    pub async fn add_tenant_secret(
        &self,
        name: &str,
        body: SecretBody,
    ) -> anyhow::Result<TenantView> {
        match self {
            Target::Local(local) => Ok(local
                .admin
                .add_tenant_secret(name, body.secret, &local.principal)
                .await?),
            Target::Remote(remote) => {
                remote
                    .send(
                        reqwest::Method::POST,
                        &["tenants", name, "secrets"],
                        &[],
                        Some(&body),
                    )
                    .await
            }
        }
    }

    /// Revokes a secret.
    pub async fn revoke_tenant_secret(
        &self,
        name: &str,
        body: SecretBody,
    ) -> anyhow::Result<TenantView> {
        match self {
            Target::Local(local) => Ok(local
                .admin
                .revoke_tenant_secret(name, body.secret, &local.principal)
                .await?),
            Target::Remote(remote) => {
                remote
                    .send(
                        reqwest::Method::POST,
                        &["tenants", name, "secrets", "revoke"],
                        &[],
                        Some(&body),
                    )
                    .await
            }
        }
    }

    /// Deletes a tenant.
    pub async fn delete_tenant(&self, name: &str, force: bool) -> anyhow::Result<()> {
        match self {
            Target::Local(local) => Ok(local
                .admin
                .delete_tenant(name, force, &local.principal)
                .await?),
            Target::Remote(remote) => {
                remote
                    .send_empty(
                        reqwest::Method::DELETE,
                        &["tenants", name],
                        &[("force", force.to_string())],
                    )
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_mistakes_are_explained() {
        let rule = parse_rule("max:maxParticipants=25").unwrap();
        assert_eq!(rule.action, RuleAction::Max);
        assert_eq!(rule.param, "maxParticipants");
        assert_eq!(rule.value.as_deref(), Some("25"));
        assert_eq!(parse_rule("block:logoutURL").unwrap().value, None);
        assert_eq!(
            parse_rule("append:disabledFeatures=chat,polls")
                .unwrap()
                .value
                .as_deref(),
            Some("chat,polls")
        );
        for bad in [
            "max:duration",
            "block:x=1",
            "remove:x",
            "nothing",
            "default:=1",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_limit("--max-meetings", Some("none".into()), Some(3)).unwrap(),
            None
        );
        assert_eq!(
            parse_limit("--max-meetings", None, Some(3)).unwrap(),
            Some(3)
        );
        assert!(parse_limit("--max-meetings", Some("lots".into()), None).is_err());
    }
}
