//! The administration use cases in the admin API's shapes: each method calls
//! one use case of [`switchboard_app::admin::AdminService`] and converts its
//! read model into the OpenAPI object the HTTP handlers and the CLI print.
//! Nothing here decides anything.

use super::model::*;
use super::tenants::{
    NewTenant, TenantUpdate, TenantView, limits, limits_view, policy_from_view, policy_view,
};
use std::sync::Arc;
use switchboard_app::admin::views as read;
use switchboard_app::admin::{AdminService, Failure, Principal};
use switchboard_app::records::EventFilter;
use switchboard_domain::server::ServerCommand;
use switchboard_domain::token::TokenScope;

/// Copies the same-named fields of a read model into an API object.
macro_rules! same_fields {
    ($from:path => $to:ident { $($field:ident),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(value: $from) -> Self {
                Self { $($field: value.$field.into()),* }
            }
        }
    };
}

same_fields!(read::ServerView => ServerView {
    id, url, tag, load_multiplier, checksum, state, online, meetings, attendees, load,
    metrics_url, metrics_state, cpu_percent, memory_percent, metrics_error, metrics_read_at_ms,
    over_limit, agent, agent_version, agent_interval_ms, agent_away, heard_at_ms,
});
same_fields!(read::PanicReport => PanicReport { server, forgotten, ended });
same_fields!(read::MeetingView => MeetingView {
    tenant, meeting_id, name, internal_id, server_id, running, create_time_ms, ended_at_ms,
});
same_fields!(read::EventView => EventView {
    position, stream, version, event_type, payload, actor, request_id, recorded_at,
});
same_fields!(read::ServerAt => ServerAt { id, url, state, online, removed });
same_fields!(read::MeetingAt => MeetingAt { tenant, meeting_id, server_id, running });
same_fields!(read::ServerStatus => ServerStatus {
    id, url, state, online, meetings, users, largest_meeting, load, tag, metrics_state,
    cpu_percent, memory_percent, metrics_error, over_limit,
});

impl From<read::EventPage> for EventPage {
    fn from(page: read::EventPage) -> Self {
        Self {
            events: page.events.into_iter().map(Into::into).collect(),
            next_after: page.next_after,
        }
    }
}

impl From<read::ClusterAt> for ClusterAt {
    fn from(at: read::ClusterAt) -> Self {
        Self {
            at: at.at,
            position: at.position,
            servers: at.servers.into_iter().map(Into::into).collect(),
            meetings: at.meetings.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<read::ClusterStatus> for ClusterStatus {
    fn from(status: read::ClusterStatus) -> Self {
        Self {
            servers: status.servers.into_iter().map(Into::into).collect(),
            meetings: status.meetings,
            users: status.users,
            position: status.position,
        }
    }
}

impl From<TokenScope> for Scope {
    fn from(scope: TokenScope) -> Self {
        match scope {
            TokenScope::Admin => Scope::Admin,
            TokenScope::Read => Scope::Read,
            TokenScope::Node => Scope::Node,
        }
    }
}

impl From<Scope> for TokenScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Admin => TokenScope::Admin,
            Scope::Read => TokenScope::Read,
            Scope::Node => TokenScope::Node,
        }
    }
}

same_fields!(read::TokenView => TokenView { name, scope, server, created_at });
same_fields!(read::CreatedToken => CreatedToken { name, scope, server, token });

impl From<NewServer> for read::NewServer {
    fn from(new: NewServer) -> Self {
        Self {
            url: new.url,
            secret: new.secret,
            tag: new.tag,
            load_multiplier: new.load_multiplier,
            checksum: new.checksum,
            metrics_url: new.metrics_url,
            enabled: new.enabled,
        }
    }
}

impl From<ServerUpdate> for read::ServerUpdate {
    fn from(update: ServerUpdate) -> Self {
        Self {
            url: update.url,
            secret: update.secret,
            tag: update.tag,
            load_multiplier: update.load_multiplier,
            checksum: update.checksum,
            metrics_url: update.metrics_url,
        }
    }
}

impl From<PanicOptions> for read::PanicOptions {
    fn from(options: PanicOptions) -> Self {
        Self {
            end_meetings: options.end_meetings,
        }
    }
}

impl From<MeetingState> for read::MeetingState {
    fn from(state: MeetingState) -> Self {
        match state {
            MeetingState::Running => Self::Running,
            MeetingState::Ended => Self::Ended,
        }
    }
}

impl From<switchboard_app::admin::tenants::TenantView> for TenantView {
    fn from(view: switchboard_app::admin::tenants::TenantView) -> Self {
        Self {
            name: view.name,
            api_path: view.api_path,
            secrets: view.secrets,
            required_tags: view.required_tags,
            limits: limits_view(view.limits),
            policy: policy_view(&view.policy),
            running_meetings: view.running_meetings,
            stats_token: view.stats_token,
            retention_days: view.retention_days,
            recordings_store: view.recordings_store,
        }
    }
}

fn tenant_update(
    required_tags: Option<Vec<String>>,
    limits_given: Option<super::tenants::LimitsView>,
    policy: Option<&super::tenants::PolicyView>,
    retention: Option<super::tenants::RetentionView>,
    recordings_store: Option<super::tenants::RecordingsStoreView>,
) -> Result<switchboard_app::admin::tenants::TenantUpdate, Failure> {
    Ok(switchboard_app::admin::tenants::TenantUpdate {
        required_tags,
        limits: limits_given.map(limits),
        policy: policy.map(policy_from_view).transpose()?,
        retention_days: retention.map(|retention| retention.days),
        recordings_store: recordings_store.map(|store| store.url),
    })
}

fn list<A, B: From<A>>(items: Vec<A>) -> Vec<B> {
    items.into_iter().map(Into::into).collect()
}

/// The admin use cases, answering in the admin API's shapes.
#[derive(Debug, Clone)]
pub struct AdminFacade(Arc<AdminService>);

impl AdminFacade {
    /// The admin API over these use cases.
    pub fn new(service: Arc<AdminService>) -> Self {
        Self(service)
    }

    /// The admin use cases themselves (for the Scalelite API's shapes).
    pub fn service(&self) -> &Arc<AdminService> {
        &self.0
    }

    /// The principal of a bearer token, if it is in force.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, Failure> {
        self.0.authenticate(token).await
    }

    /// Every server.
    pub async fn servers(&self) -> Result<Vec<ServerView>, Failure> {
        Ok(list(self.0.servers().await?))
    }

    /// One server.
    pub async fn server(&self, id: &str) -> Result<ServerView, Failure> {
        Ok(self.0.server(id).await?.into())
    }

    /// Adds a server (disabled unless `enabled`).
    pub async fn add_server(
        &self,
        new: NewServer,
        principal: &Principal,
    ) -> Result<ServerView, Failure> {
        Ok(self.0.add_server(new.into(), principal).await?.into())
    }

    /// Changes settings.
    pub async fn update_server(
        &self,
        id: &str,
        update: ServerUpdate,
        principal: &Principal,
    ) -> Result<ServerView, Failure> {
        Ok(self
            .0
            .update_server(id, update.into(), principal)
            .await?
            .into())
    }

    /// Enables, cordons or disables a server.
    pub async fn set_state(
        &self,
        id: &str,
        command: ServerCommand,
        principal: &Principal,
    ) -> Result<ServerView, Failure> {
        Ok(self.0.set_state(id, command, principal).await?.into())
    }

    /// Disables a server and forgets its meetings.
    pub async fn panic(
        &self,
        id: &str,
        options: PanicOptions,
        principal: &Principal,
    ) -> Result<PanicReport, Failure> {
        Ok(self.0.panic(id, options.into(), principal).await?.into())
    }

    /// Removes a server.
    pub async fn remove(
        &self,
        id: &str,
        force: bool,
        principal: &Principal,
    ) -> Result<(), Failure> {
        self.0.remove(id, force, principal).await
    }

    /// Meetings, filtered.
    pub async fn meetings(
        &self,
        server: Option<&str>,
        state: Option<MeetingState>,
        tenant: Option<&str>,
    ) -> Result<Vec<MeetingView>, Failure> {
        Ok(list(
            self.0
                .meetings(server, state.map(Into::into), tenant)
                .await?,
        ))
    }

    /// One meeting.
    pub async fn meeting(&self, tenant: &str, meeting_id: &str) -> Result<MeetingView, Failure> {
        Ok(self.0.meeting(tenant, meeting_id).await?.into())
    }

    /// Ends a running meeting on its server and records the end.
    pub async fn end_meeting(
        &self,
        tenant: &str,
        meeting_id: &str,
        principal: &Principal,
    ) -> Result<MeetingView, Failure> {
        Ok(self
            .0
            .end_meeting(tenant, meeting_id, principal)
            .await?
            .into())
    }

    /// A page of the log.
    pub async fn events(&self, filter: EventFilter) -> Result<EventPage, Failure> {
        Ok(self.0.events(filter).await?.into())
    }

    /// Servers and meetings as they were at `at`.
    pub async fn history(&self, at: chrono::DateTime<chrono::Utc>) -> Result<ClusterAt, Failure> {
        Ok(self.0.history(at).await?.into())
    }

    /// Every server at a glance.
    pub async fn status(&self) -> Result<ClusterStatus, Failure> {
        Ok(self.0.status().await?.into())
    }

    /// Creates a token; its secret is returned this once.
    pub async fn create_token(
        &self,
        new: NewToken,
        principal: &Principal,
    ) -> Result<CreatedToken, Failure> {
        let server = match new.server.as_deref() {
            Some(id) => Some(id.parse().map_err(|_| {
                Failure::Invalid(format!(
                    "`{id}` is not a server id (a UUID as the server list shows)"
                ))
            })?),
            None => None,
        };
        Ok(self
            .0
            .create_token(&new.name, new.scope.into(), server, principal)
            .await?
            .into())
    }

    /// Tokens in force.
    pub async fn tokens(&self) -> Result<Vec<TokenView>, Failure> {
        Ok(list(self.0.tokens().await?))
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, name: &str, principal: &Principal) -> Result<(), Failure> {
        self.0.revoke_token(name, principal).await
    }

    /// Every tenant.
    pub async fn tenants(&self) -> Result<Vec<TenantView>, Failure> {
        Ok(list(self.0.tenants().await?))
    }

    /// One tenant.
    pub async fn tenant(&self, name: &str) -> Result<TenantView, Failure> {
        Ok(self.0.tenant(name).await?.into())
    }

    /// Creates a tenant, with its pool, limits and policy if given.
    pub async fn create_tenant(
        &self,
        new: NewTenant,
        principal: &Principal,
    ) -> Result<TenantView, Failure> {
        let update = tenant_update(
            new.required_tags,
            new.limits,
            new.policy.as_ref(),
            None,
            None,
        )?;
        let new = switchboard_app::admin::tenants::NewTenant {
            name: new.name,
            secret: new.secret,
            update,
        };
        Ok(self.0.create_tenant(new, principal).await?.into())
    }

    /// Changes a tenant's pool, limits or policy.
    pub async fn update_tenant(
        &self,
        name: &str,
        update: TenantUpdate,
        principal: &Principal,
    ) -> Result<TenantView, Failure> {
        let update = tenant_update(
            update.required_tags,
            update.limits,
            update.policy.as_ref(),
            update.retention,
            update.recordings_store,
        )?;
        Ok(self.0.update_tenant(name, update, principal).await?.into())
    }

    /// Accepts another secret for a tenant.
    pub async fn add_tenant_secret(
        &self,
        name: &str,
        secret: String,
        principal: &Principal,
    ) -> Result<TenantView, Failure> {
        Ok(self
            .0
            .add_tenant_secret(name, secret, principal)
            .await?
            .into())
    }

    /// Stops accepting a secret.
    pub async fn revoke_tenant_secret(
        &self,
        name: &str,
        secret: String,
        principal: &Principal,
    ) -> Result<TenantView, Failure> {
        Ok(self
            .0
            .revoke_tenant_secret(name, secret, principal)
            .await?
            .into())
    }

    /// Usage per tenant and period.
    pub async fn usage(
        &self,
        filter: &switchboard_app::records::UsageFilter,
        period: switchboard_app::usage::Period,
    ) -> Result<Vec<switchboard_app::usage::UsageRow>, Failure> {
        self.0.usage(filter, period).await
    }

    /// Issues a tenant's stats token (returned once).
    pub async fn issue_stats_token(
        &self,
        name: &str,
        principal: &Principal,
    ) -> Result<String, Failure> {
        self.0.issue_stats_token(name, principal).await
    }

    /// Deletes a tenant.
    pub async fn delete_tenant(
        &self,
        name: &str,
        force: bool,
        principal: &Principal,
    ) -> Result<(), Failure> {
        self.0.delete_tenant(name, force, principal).await
    }
}
