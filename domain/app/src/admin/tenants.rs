//! Tenants: front-ends with their own secrets, parameter policy, limits and
//! server pool. Secrets are accepted but never shown again: views carry
//! fingerprints.

use super::{AdminService, Failure, Principal};
use crate::executor::CommandError;
use serde::{Deserialize, Serialize};
use switchboard_domain::ids::TenantId;
use switchboard_domain::tenant::{
    Tenant, TenantCommand, TenantConfig, TenantError, TenantLimits, TenantPolicy, tenant_stream,
};

/// A tenant as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantView {
    /// Its name.
    pub name: String,
    /// Its API base path.
    pub api_path: String,
    /// Fingerprints of its secrets.
    pub secrets: Vec<String>,
    /// Tags its meetings must run on.
    pub required_tags: Vec<String>,
    /// Its limits.
    pub limits: TenantLimits,
    /// Its parameter policy.
    pub policy: TenantPolicy,
    /// Meetings it runs now.
    pub running_meetings: u64,
    /// Whether a stats token was issued (`tenants stats-token`).
    pub stats_token: bool,
    /// Days its recordings are kept after they end (`None`: the global
    /// default applies).
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Where its new recordings are kept (`None`: the deployment's store).
    #[serde(default)]
    pub recordings_store: Option<String>,
}

/// A tenant to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    /// Its name (a DNS label).
    pub name: String,
    /// Its first secret.
    pub secret: String,
    /// Its pool, limits and policy, if given.
    pub update: TenantUpdate,
}

/// Changes to a tenant (absent: unchanged).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantUpdate {
    /// Tags its meetings must run on.
    pub required_tags: Option<Vec<String>>,
    /// Its limits.
    pub limits: Option<TenantLimits>,
    /// Its parameter policy.
    pub policy: Option<TenantPolicy>,
    /// Days its recordings are kept (`Some(None)`: the global default).
    pub retention_days: Option<Option<u32>>,
    /// Where its new recordings are kept (`Some(None)`: the deployment's
    /// store); a directory or `s3://BUCKET/PREFIX`.
    pub recordings_store: Option<Option<String>>,
}

/// The fingerprint of a secret: enough to tell secrets apart, nothing of
/// the secret itself (the first 8 hex digits of its SHA-256).
pub fn fingerprint(secret: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
    format!("sha256:{}", &digest[..8])
}

impl From<CommandError<TenantError>> for Failure {
    fn from(err: CommandError<TenantError>) -> Self {
        match err {
            CommandError::Store(err) => err.into(),
            CommandError::Rejected(err @ TenantError::NotFound(_)) => {
                Failure::NotFound(err.to_string())
            }
            CommandError::Rejected(err @ (TenantError::Exists(_) | TenantError::Retired(_))) => {
                Failure::Conflict(err.to_string())
            }
            CommandError::Rejected(err) => Failure::Invalid(err.to_string()),
        }
    }
}

impl AdminService {
    async fn tenant_view(&self, config: &TenantConfig) -> Result<TenantView, Failure> {
        let running_meetings = self
            .store
            .running_meetings_of(&TenantId(config.name.clone()))
            .await?;
        Ok(TenantView {
            name: config.name.clone(),
            api_path: format!("/t/{}/bigbluebutton/api/", config.name),
            secrets: config.secrets.iter().map(|s| fingerprint(s)).collect(),
            required_tags: config.required_tags.clone(),
            limits: config.limits,
            policy: config.policy.clone(),
            running_meetings,
            stats_token: config.stats_token_hash.is_some(),
            retention_days: config.retention_days,
            recordings_store: config.recordings_store.clone(),
        })
    }

    /// Every tenant.
    pub async fn tenants(&self) -> Result<Vec<TenantView>, Failure> {
        let mut views = Vec::new();
        for config in self.store.tenants().await? {
            views.push(self.tenant_view(&config).await?);
        }
        Ok(views)
    }

    /// One tenant.
    pub async fn tenant(&self, name: &str) -> Result<TenantView, Failure> {
        let config = self
            .store
            .tenant(name)
            .await?
            .ok_or_else(|| Failure::NotFound(format!("no tenant named `{name}`")))?;
        self.tenant_view(&config).await
    }

    pub(super) async fn run_tenant(
        &self,
        name: &str,
        commands: &[TenantCommand],
        principal: &Principal,
    ) -> Result<(), Failure> {
        let mut metadata = Self::metadata(principal);
        metadata.tenant = Some(name.to_owned());
        for command in commands {
            self.executor
                .execute::<Tenant>(&tenant_stream(name), command, &metadata)
                .await?;
        }
        Ok(())
    }

    /// Creates a tenant, with its pool, limits and policy if given.
    pub async fn create_tenant(
        &self,
        new: NewTenant,
        principal: &Principal,
    ) -> Result<TenantView, Failure> {
        let mut commands = vec![TenantCommand::Create {
            name: new.name.clone(),
            secret: new.secret,
        }];
        commands.extend(Self::update_commands(&new.update)?);
        self.run_tenant(&new.name, &commands, principal).await?;
        self.tenant(&new.name).await
    }

    fn update_commands(update: &TenantUpdate) -> Result<Vec<TenantCommand>, Failure> {
        let mut commands = Vec::new();
        if let Some(tags) = &update.required_tags {
            let tags = tags.iter().map(|t| t.trim().to_owned()).collect();
            commands.push(TenantCommand::SetRequiredTags(tags));
        }
        if let Some(limits) = update.limits {
            commands.push(TenantCommand::SetLimits(limits));
        }
        if let Some(policy) = &update.policy {
            commands.push(TenantCommand::SetPolicy(policy.clone()));
        }
        if let Some(days) = update.retention_days {
            commands.push(TenantCommand::SetRetention(days));
        }
        if let Some(store) = &update.recordings_store {
            if let Some(url) = store {
                switchboard_recordings::StoreLocation::parse(url)
                    .map_err(|err| Failure::Invalid(err.to_string()))?;
            }
            commands.push(TenantCommand::SetRecordingsStore(store.clone()));
        }
        Ok(commands)
    }

    /// Changes a tenant's pool, limits or policy.
    pub async fn update_tenant(
        &self,
        name: &str,
        update: TenantUpdate,
        principal: &Principal,
    ) -> Result<TenantView, Failure> {
        let commands = Self::update_commands(&update)?;
        self.run_tenant(name, &commands, principal).await?;
        self.tenant(name).await
    }

    /// Accepts another secret for a tenant (rotation).
    pub async fn add_tenant_secret(
        &self,
        name: &str,
        secret: String,
        principal: &Principal,
    ) -> Result<TenantView, Failure> {
        self.run_tenant(name, &[TenantCommand::AddSecret(secret)], principal)
            .await?;
        self.tenant(name).await
    }

    /// Stops accepting a secret.
    pub async fn revoke_tenant_secret(
        &self,
        name: &str,
        secret: String,
        principal: &Principal,
    ) -> Result<TenantView, Failure> {
        self.run_tenant(name, &[TenantCommand::RevokeSecret(secret)], principal)
            .await?;
        self.tenant(name).await
    }

    /// Usage per tenant and period (see [`crate::usage`]).
    pub async fn usage(
        &self,
        filter: &crate::records::UsageFilter,
        period: crate::usage::Period,
    ) -> Result<Vec<crate::usage::UsageRow>, Failure> {
        Ok(crate::usage::usage_report(self.store.as_ref(), filter, period).await?)
    }

    /// Issues a stats token for a tenant (replacing an earlier one): the
    /// token is returned once, only its hash is kept.
    pub async fn issue_stats_token(
        &self,
        name: &str,
        principal: &Principal,
    ) -> Result<String, Failure> {
        // `sbs_`: told apart from admin tokens (`sbt_`) at a glance.
        let token = format!("sbs_{}", super::generate_secret());
        let hash = switchboard_domain::token::hash_token(&token);
        self.run_tenant(name, &[TenantCommand::SetStatsToken { hash }], principal)
            .await?;
        Ok(token)
    }

    /// Deletes a tenant; refused while it runs meetings unless `force`.
    pub async fn delete_tenant(
        &self,
        name: &str,
        force: bool,
        principal: &Principal,
    ) -> Result<(), Failure> {
        let running = self
            .store
            .running_meetings_of(&TenantId(name.to_owned()))
            .await?;
        if running > 0 && !force {
            return Err(Failure::Conflict(format!(
                "tenant `{name}` runs {running} meeting(s); end them first or delete with force"
            )));
        }
        self.run_tenant(name, &[TenantCommand::Delete], principal)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn secrets_are_shown_as_short_hashes() {
        assert_eq!(fingerprint("abcdefghij"), "sha256:72399361");
        assert!(!fingerprint("abcdefghij").contains("abcd"));
    }
}
