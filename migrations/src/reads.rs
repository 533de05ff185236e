//! Reads of the projections, as domain types.

use crate::entities::{meeting, server, tenant, token};
use crate::store::{Store, StoreError};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, EntityTrait, IsolationLevel, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use std::collections::HashMap;
use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_domain::meeting::{Meeting, MeetingRun};
use switchboard_domain::server::{Server, ServerSettings, ServerState};
use switchboard_domain::tenant::TenantConfig;
use switchboard_domain::token::TokenScope;

/// A server as the projection holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    /// Its id.
    pub id: ServerId,
    /// Its settings.
    pub settings: ServerSettings,
    /// Enabled, cordoned or disabled.
    pub state: ServerState,
    /// Reachable by health checks.
    pub online: bool,
    /// Stream version.
    pub version: i64,
}

impl ServerRecord {
    /// The aggregate state this row stands for.
    pub fn aggregate(&self) -> Server {
        Server {
            id: Some(self.id),
            settings: Some(self.settings.clone()),
            state: self.state,
            online: self.online,
            removed: false,
        }
    }
}

/// A meeting as the projection holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingRecord {
    /// Owner.
    pub tenant: TenantId,
    /// Front-end id.
    pub meeting_id: MeetingId,
    /// Name from the last create.
    pub name: String,
    /// The last run.
    pub run: MeetingRun,
    /// Whether that run goes on.
    pub running: bool,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
    /// Stream version.
    pub version: i64,
}

impl MeetingRecord {
    /// The aggregate state this row stands for.
    pub fn aggregate(&self) -> Meeting {
        Meeting {
            identity: Some((self.tenant.clone(), self.meeting_id.clone())),
            name: self.name.clone(),
            current: self.running.then(|| self.run.clone()),
            ended_at_ms: self.ended_at_ms,
        }
    }
}

/// An admin token in force (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Name.
    pub name: String,
    /// Scope.
    pub scope: TokenScope,
    /// SHA-256 of the token.
    pub hash: String,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn token_record(row: token::Model) -> Option<TokenRecord> {
    Some(TokenRecord {
        scope: TokenScope::parse(&row.scope)?,
        name: row.name,
        hash: row.hash,
        created_at: row.created_at,
    })
}

fn server_record(row: server::Model) -> Option<ServerRecord> {
    Some(ServerRecord {
        id: row.id.parse().ok()?,
        settings: row.settings(),
        state: ServerState::parse(&row.state)?,
        online: row.online,
        version: row.version,
    })
}

fn meeting_record(row: meeting::Model) -> Option<MeetingRecord> {
    Some(MeetingRecord {
        tenant: TenantId(row.tenant),
        meeting_id: MeetingId::parse(&row.meeting_id).ok()?,
        name: row.name,
        run: MeetingRun {
            internal_id: row.internal_id,
            server_id: row.server_id.parse().ok()?,
            create_time_ms: row.create_time_ms,
            recording_ready_url: None,
        },
        running: row.running,
        ended_at_ms: row.ended_at_ms,
        version: row.version,
    })
}

impl Store {
    /// Admin tokens in force, by name.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = token::Entity::find()
            .order_by_asc(token::Column::Name)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(token_record).collect())
    }

    /// Every server of the pool, oldest first.
    pub async fn servers(&self) -> Result<Vec<ServerRecord>, StoreError> {
        servers_on(&self.db).await
    }

    /// The log position, the servers and the running meetings per server,
    /// read in one consistent snapshot (one repeatable-read transaction), so
    /// the counts belong to that position.
    pub async fn routing_snapshot(&self) -> Result<RoutingSnapshot, StoreError> {
        let txn = if self.is_postgres() {
            self.db
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
        } else {
            self.db.begin().await?
        };
        let position = crate::store::last_position_on(&txn).await?;
        let servers = servers_on(&txn).await?;
        let running = running_per_server_on(&txn).await?;
        txn.commit().await?;
        Ok(RoutingSnapshot {
            position,
            servers,
            running,
        })
    }

    /// One server.
    pub async fn server(&self, id: ServerId) -> Result<Option<ServerRecord>, StoreError> {
        let row = server::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?;
        Ok(row.and_then(server_record))
    }

    /// One meeting (its last run).
    pub async fn meeting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<MeetingRecord>, StoreError> {
        let row = meeting::Entity::find_by_id((tenant.0.clone(), meeting_id.as_str().to_owned()))
            .one(&self.db)
            .await?;
        Ok(row.and_then(meeting_record))
    }

    /// Every meeting row, running or not, ordered by tenant and id.
    pub async fn meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        let rows = meeting::Entity::find()
            .order_by_asc(meeting::Column::Tenant)
            .order_by_asc(meeting::Column::MeetingId)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(meeting_record).collect())
    }

    /// Meetings whose last run goes on.
    pub async fn running_meetings(&self) -> Result<Vec<MeetingRecord>, StoreError> {
        let rows = meeting::Entity::find()
            .filter(meeting::Column::Running.eq(true))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(meeting_record).collect())
    }

    /// Running meetings per server.
    pub async fn running_meetings_per_server(&self) -> Result<HashMap<ServerId, u64>, StoreError> {
        running_per_server_on(&self.db).await
    }
}

/// What routing needs from the database, as of one position.
#[derive(Debug, Clone)]
pub struct RoutingSnapshot {
    /// The log position the rest belongs to.
    pub position: i64,
    /// Every server.
    pub servers: Vec<ServerRecord>,
    /// Running meetings per server.
    pub running: HashMap<ServerId, u64>,
}

async fn servers_on<C: ConnectionTrait>(db: &C) -> Result<Vec<ServerRecord>, StoreError> {
    let rows = server::Entity::find()
        .order_by_asc(server::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(server_record).collect())
}

async fn running_per_server_on<C: ConnectionTrait>(
    db: &C,
) -> Result<HashMap<ServerId, u64>, StoreError> {
    let rows: Vec<(String, i64)> = meeting::Entity::find()
        .select_only()
        .column(meeting::Column::ServerId)
        .column_as(meeting::Column::MeetingId.count(), "count")
        .filter(meeting::Column::Running.eq(true))
        .group_by(meeting::Column::ServerId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, count)| Some((id.parse().ok()?, count.max(0) as u64)))
        .collect())
}

impl Store {
    /// Every tenant in force, by name.
    pub async fn tenants(&self) -> Result<Vec<TenantConfig>, StoreError> {
        let rows = tenant::Entity::find()
            .order_by_asc(tenant::Column::Name)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| serde_json::from_str(&row.config).ok())
            .collect())
    }

    /// One tenant in force.
    pub async fn tenant(&self, name: &str) -> Result<Option<TenantConfig>, StoreError> {
        let row = tenant::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await?;
        Ok(row.and_then(|row| serde_json::from_str(&row.config).ok()))
    }

    /// Running meetings of one tenant.
    pub async fn running_meetings_of(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(meeting::Entity::find()
            .filter(meeting::Column::Tenant.eq(tenant.0.as_str()))
            .filter(meeting::Column::Running.eq(true))
            .count(&self.db)
            .await?)
    }

    /// Internal ids of a tenant's running runs.
    pub async fn running_runs_of(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        Ok(meeting::Entity::find()
            .select_only()
            .column(meeting::Column::InternalId)
            .filter(meeting::Column::Tenant.eq(tenant.0.as_str()))
            .filter(meeting::Column::Running.eq(true))
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Servers running a meeting with this meetingID for another tenant.
    pub async fn servers_running_elsewhere(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Vec<ServerId>, StoreError> {
        let rows: Vec<String> = meeting::Entity::find()
            .select_only()
            .column(meeting::Column::ServerId)
            .filter(meeting::Column::MeetingId.eq(meeting_id.as_str()))
            .filter(meeting::Column::Tenant.ne(tenant.0.as_str()))
            .filter(meeting::Column::Running.eq(true))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(|id| id.parse().ok()).collect())
    }

    /// Tenant and running state of the runs Switchboard records, by internal
    /// id; ended runs only when they ended after `ended_since_ms`.
    pub async fn recent_runs_by_tenant(
        &self,
        ended_since_ms: i64,
    ) -> Result<HashMap<String, (TenantId, bool)>, StoreError> {
        let rows: Vec<(String, String, bool)> = meeting::Entity::find()
            .select_only()
            .column(meeting::Column::InternalId)
            .column(meeting::Column::Tenant)
            .column(meeting::Column::Running)
            .filter(
                sea_orm::Condition::any()
                    .add(meeting::Column::Running.eq(true))
                    .add(meeting::Column::EndedAtMs.gt(ended_since_ms)),
            )
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(internal, tenant, running)| (internal, (TenantId(tenant), running)))
            .collect())
    }
}
