//! What Scalelite's admin API (`/scalelite/api/`) shows and does, over the
//! admin use cases: servers with their secrets and tenants with theirs in
//! Scalelite's terms (the API is for the load balancer's own operators,
//! signed with its secret, and Scalelite answers with the secrets).

use super::tenants::NewTenant;
use super::views::{PanicOptions, ServerView};
use super::{AdminService, Failure, Principal};
use crate::records::ServerRecord;
use switchboard_domain::server::ServerCommand;
use switchboard_domain::tenant::{TenantCommand, TenantConfig};

/// A server as Scalelite's API describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleliteServer {
    /// Switchboard's server id.
    pub id: String,
    /// Its API URL (`https://host/bigbluebutton/api`).
    pub url: String,
    /// Its shared secret.
    pub secret: String,
    /// Its tag, if any.
    pub tag: Option<String>,
    /// BBB version its agent reported, if any.
    pub bbb_version: Option<String>,
    /// `enabled`, `cordoned` or `disabled`.
    pub state: String,
    /// Its load, when it can take meetings (online, not disabled).
    pub load: Option<f64>,
    /// Its load multiplier.
    pub load_multiplier: f64,
    /// Whether polls (or its agent) reach it.
    pub online: bool,
}

impl ScaleliteServer {
    fn new(record: &ServerRecord, view: ServerView) -> Self {
        let takes_load = view.online && view.state != "disabled";
        Self {
            url: format!("{}api", record.settings.url),
            secret: record.settings.secret.clone(),
            bbb_version: record.agent.as_ref().map(|agent| agent.version.clone()),
            load: takes_load.then_some(view.load),
            id: view.id,
            tag: view.tag,
            state: view.state,
            load_multiplier: view.load_multiplier,
            online: view.online,
        }
    }
}

/// A tenant as Scalelite's API describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleliteTenant {
    /// Its id in Scalelite's shapes: a UUID derived from the name (see
    /// [`tenant_uuid`](crate::meetings::create::tenant_uuid)).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its secrets.
    pub secrets: Vec<String>,
}

impl From<&TenantConfig> for ScaleliteTenant {
    fn from(config: &TenantConfig) -> Self {
        Self {
            id: crate::meetings::create::tenant_uuid(&config.name).to_string(),
            name: config.name.clone(),
            secrets: config.secrets.clone(),
        }
    }
}

/// How a Scalelite panic goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScalelitePanic {
    /// Leave the server's state as it was (`keep_state`).
    pub keep_state: bool,
    /// Do not send `end` for its meetings (`skip_end_calls`).
    pub skip_end_calls: bool,
}

impl AdminService {
    /// Every server, in Scalelite's terms.
    pub async fn scalelite_servers(&self) -> Result<Vec<ScaleliteServer>, Failure> {
        let views = self.servers().await?;
        let records = self.store.servers().await?;
        Ok(views
            .into_iter()
            .filter_map(|view| {
                let record = records.iter().find(|r| r.id.to_string() == view.id)?;
                Some(ScaleliteServer::new(record, view))
            })
            .collect())
    }

    /// One server, in Scalelite's terms.
    pub async fn scalelite_server(&self, id: &str) -> Result<ScaleliteServer, Failure> {
        let view = self.server(id).await?;
        let record = self.record(super::parse_server_id(id)?).await?;
        Ok(ScaleliteServer::new(&record, view))
    }

    /// Panics a server as Scalelite does: its meetings are ended on it
    /// (unless `skip_end_calls`) and forgotten, and it is disabled unless
    /// `keep_state`.
    pub async fn scalelite_panic(
        &self,
        id: &str,
        options: ScalelitePanic,
        principal: &Principal,
    ) -> Result<ScaleliteServer, Failure> {
        let before = self.server(id).await?.state;
        let panic = PanicOptions {
            end_meetings: Some(!options.skip_end_calls),
        };
        self.panic(id, panic, principal).await?;
        if options.keep_state {
            let back = match before.as_str() {
                "enabled" => Some(ServerCommand::Enable),
                "cordoned" => Some(ServerCommand::Cordon),
                _ => None,
            };
            if let Some(command) = back {
                self.set_state(id, command, principal).await?;
            }
        }
        self.scalelite_server(id).await
    }

    /// Every tenant, in Scalelite's terms.
    pub async fn scalelite_tenants(&self) -> Result<Vec<ScaleliteTenant>, Failure> {
        Ok(self
            .store
            .tenants()
            .await?
            .iter()
            .map(ScaleliteTenant::from)
            .collect())
    }

    /// The tenant with this Scalelite id (or name).
    pub async fn scalelite_tenant(&self, id: &str) -> Result<ScaleliteTenant, Failure> {
        self.scalelite_tenants()
            .await?
            .into_iter()
            .find(|tenant| tenant.id == id || tenant.name == id)
            .ok_or_else(|| Failure::NotFound(format!("Couldn't find Tenant with id={id}")))
    }

    /// Creates a tenant with Scalelite's colon-separated secrets.
    pub async fn scalelite_add_tenant(
        &self,
        name: &str,
        secrets: &[String],
        principal: &Principal,
    ) -> Result<ScaleliteTenant, Failure> {
        let (first, more) = secrets
            .split_first()
            .ok_or_else(|| Failure::Invalid("a tenant needs a secret".into()))?;
        self.create_tenant(
            NewTenant {
                name: name.to_owned(),
                secret: first.clone(),
                update: Default::default(),
            },
            principal,
        )
        .await?;
        if !more.is_empty() {
            self.replace_tenant_secrets(name, secrets, principal)
                .await?;
        }
        self.scalelite_tenant(name).await
    }

    /// Makes `secrets` a tenant's secrets: the new ones are added first,
    /// then the others revoked (so it always has one).
    pub async fn replace_tenant_secrets(
        &self,
        name: &str,
        secrets: &[String],
        principal: &Principal,
    ) -> Result<(), Failure> {
        let config = self
            .store
            .tenant(name)
            .await?
            .ok_or_else(|| Failure::NotFound(format!("no tenant named `{name}`")))?;
        let mut commands: Vec<TenantCommand> = secrets
            .iter()
            .filter(|secret| !config.secrets.contains(secret))
            .cloned()
            .map(TenantCommand::AddSecret)
            .collect();
        commands.extend(
            config
                .secrets
                .iter()
                .filter(|secret| !secrets.contains(secret))
                .cloned()
                .map(TenantCommand::RevokeSecret),
        );
        if commands.is_empty() {
            return Ok(());
        }
        self.run_tenant(name, &commands, principal).await
    }
}

#[cfg(test)]
mod tests;
