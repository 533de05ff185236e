//! What Scalelite's admin API (`/scalelite/api/`) shows and does, over the
//! admin use cases: servers with their secrets and tenants with theirs in
//! Scalelite's terms (the API is for the load balancer's own operators,
//! signed with its secret, and Scalelite answers with the secrets).

use super::tenants::NewTenant;
use super::views::{PanicOptions, ServerUpdate, ServerView};
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
    /// [`tenant_uuid`](switchboard_domain::tenant::tenant_uuid)).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its secrets.
    pub secrets: Vec<String>,
}

impl From<&TenantConfig> for ScaleliteTenant {
    fn from(config: &TenantConfig) -> Self {
        Self {
            id: switchboard_domain::tenant::tenant_uuid(&config.name).to_string(),
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

    /// Changes a server as Scalelite's `updateServer` does: its settings
    /// (when any changed), then its state.
    pub async fn scalelite_update_server(
        &self,
        id: &str,
        update: ServerUpdate,
        state: Option<ServerCommand>,
        principal: &Principal,
    ) -> Result<ScaleliteServer, Failure> {
        if update != ServerUpdate::default() {
            self.update_server(id, update, principal).await?;
        }
        if let Some(command) = state {
            self.set_state(id, command, principal).await?;
        }
        self.scalelite_server(id).await
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
mod tests {

    use super::*;
    use crate::memory::ScriptedBackend;
    use crate::memory::answers;
    use crate::testing::World;
    use std::sync::Arc;
    use switchboard_domain::load::LoadWeights;

    fn admin(world: &World, backend: &Arc<ScriptedBackend>) -> AdminService {
        AdminService::new(
            world.store.clone(),
            world.executor.clone(),
            world.backends(backend),
            world.shared_clock(),
            LoadWeights::default(),
            None,
        )
    }

    fn operator() -> Principal {
        Principal::admin("scalelite-api".into())
    }

    #[tokio::test]
    async fn servers_show_their_secret_api_url_and_load_only_when_they_take_meetings() {
        let world = World::new();
        let id = world.server("one").await;
        let backend = Arc::new(ScriptedBackend::new(|_, call, _| {
            panic!("unexpected call {call}")
        }));
        let admin = admin(&world, &backend);
        let server = admin.scalelite_server(&id.to_string()).await.unwrap();
        assert_eq!(server.url, "https://one.example/bigbluebutton/api");
        assert_eq!(server.secret, crate::testing::secret("one"));
        assert_eq!(server.state, "enabled");
        assert_eq!(server.load, Some(0.0));
        admin
            .set_state(&id.to_string(), ServerCommand::Disable, &operator())
            .await
            .unwrap();
        let all = admin.scalelite_servers().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].state, "disabled");
        assert_eq!(all[0].load, None, "a disabled server's load is unavailable");
        let update = ServerUpdate {
            tag: Some("big".into()),
            ..ServerUpdate::default()
        };
        let updated = admin
            .scalelite_update_server(
                &id.to_string(),
                update,
                Some(ServerCommand::Enable),
                &operator(),
            )
            .await
            .unwrap();
        assert_eq!(
            (updated.tag.as_deref(), updated.state.as_str()),
            (Some("big"), "enabled")
        );
    }

    #[tokio::test]
    async fn a_panic_keeping_state_forgets_the_meetings_and_leaves_the_server_enabled() {
        let world = World::new();
        let id = world.server("one").await;
        world
            .meeting("room", "room-1", id, crate::testing::NOW_MS)
            .await;
        let backend = Arc::new(ScriptedBackend::new(|_, call, _| match call {
            "getMeetingInfo" => answers::create_success("room", "room-1", 0),
            "end" => answers::end_sent(),
            other => panic!("unexpected call {other}"),
        }));
        let admin = admin(&world, &backend);
        let options = ScalelitePanic {
            keep_state: true,
            skip_end_calls: false,
        };
        let server = admin
            .scalelite_panic(&id.to_string(), options, &operator())
            .await
            .unwrap();
        assert_eq!(server.state, "enabled");
        assert!(backend.calls().iter().any(|call| call.call == "end"));
        assert!(
            admin
                .meetings(None, None, None)
                .await
                .unwrap()
                .iter()
                .all(|m| !m.running)
        );
        // Without keep_state and with skip_end_calls: disabled, no end sent.
        world
            .meeting("hall", "hall-1", id, crate::testing::NOW_MS)
            .await;
        let before = backend.calls().len();
        let options = ScalelitePanic {
            keep_state: false,
            skip_end_calls: true,
        };
        let server = admin
            .scalelite_panic(&id.to_string(), options, &operator())
            .await
            .unwrap();
        assert_eq!(server.state, "disabled");
        assert_eq!(backend.calls().len(), before, "no call was sent");
    }

    #[tokio::test]
    async fn tenants_get_a_stable_uuid_and_their_secrets_are_replaced_without_ever_having_none() {
        let world = World::new();
        let admin = admin(
            &world,
            &Arc::new(ScriptedBackend::new(|_, _, _| unreachable!())),
        );
        let secrets = vec![
            "first-secret-0123".to_owned(),
            "second-secret-0123".to_owned(),
        ];
        let tenant = admin
            .scalelite_add_tenant("school", &secrets, &operator())
            .await
            .unwrap();
        assert_eq!(tenant.secrets, secrets);
        assert_eq!(
            tenant.id,
            switchboard_domain::tenant::tenant_uuid("school").to_string()
        );
        assert_eq!(
            admin.scalelite_tenant(&tenant.id).await.unwrap().name,
            "school"
        );
        assert_eq!(
            admin.scalelite_tenant("school").await.unwrap().id,
            tenant.id
        );
        let replaced = vec!["third-secret-01234".to_owned()];
        admin
            .replace_tenant_secrets("school", &replaced, &operator())
            .await
            .unwrap();
        assert_eq!(
            admin.scalelite_tenant("school").await.unwrap().secrets,
            replaced
        );
        let missing = admin.scalelite_tenant("nowhere").await.unwrap_err();
        assert_eq!(missing.to_string(), "Couldn't find Tenant with id=nowhere");
    }
}
