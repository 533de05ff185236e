//! The BBB API secrets in force: configured ones, or one generated at first
//! start and kept in the database.

use crate::config::Settings;
use switchboard_app::ports::prelude::*;
use switchboard_store::Store;

pub use switchboard_app::admin::generate_secret;

/// The settings key of a secret generated at first start.
const GENERATED_SECRET_KEY: &str = "bbb_api_secret";

/// The secrets in force, and the secret generated now if there was none.
#[derive(Debug)]
pub struct Secrets {
    /// Accepted secrets, the primary first.
    pub accepted: Vec<String>,
    /// Set when this start generated and stored the primary secret.
    pub generated: Option<String>,
}

/// Refuses a tenant secret kept from before secrets had to be at least
/// [`MIN_SECRET_LEN`] characters, naming the tenants and how to rotate.
///
/// [`MIN_SECRET_LEN`]: switchboard_domain::tenant::MIN_SECRET_LEN
pub async fn refuse_weak_tenant_secrets(store: &Store) -> anyhow::Result<()> {
    let weak: Vec<String> = store
        .tenants()
        .await?
        .into_iter()
        .filter(|tenant| {
            tenant
                .secrets
                .iter()
                .any(|secret| !switchboard_domain::tenant::is_strong_secret(secret))
        })
        .map(|tenant| tenant.name)
        .collect();
    if weak.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "tenant(s) {} have a secret shorter than {} characters (or with whitespace), which \
         anyone could sign calls with; add a long one with `switchboard tenants secrets add \
         NAME NEW_SECRET`, move the front-end to it, then `switchboard tenants secrets revoke \
         NAME OLD_SECRET`",
        weak.join(", "),
        switchboard_domain::tenant::MIN_SECRET_LEN
    )
}

/// The configured secrets, or the stored (or newly generated) one.
pub async fn resolve_secrets(settings: &Settings, store: &Store) -> anyhow::Result<Secrets> {
    let mut accepted = Vec::new();
    let mut generated = None;
    match &settings.secret {
        Some(secret) => accepted.push(secret.clone()),
        None => {
            let existing = store.setting(GENERATED_SECRET_KEY).await?;
            let secret = match existing {
                Some(secret) => secret,
                None => {
                    let fresh = generate_secret();
                    let stored = store
                        .setting_or_insert(GENERATED_SECRET_KEY, &fresh)
                        .await?;
                    if stored == fresh {
                        generated = Some(fresh);
                    }
                    stored
                }
            };
            accepted.push(secret);
        }
    }
    for secret in &settings.secrets {
        if !accepted.contains(secret) {
            accepted.push(secret.clone());
        }
    }
    Ok(Secrets {
        accepted,
        generated,
    })
}
