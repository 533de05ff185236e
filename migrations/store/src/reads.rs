//! Reads of the projections, as domain types.

use crate::store::{SqlError, Store};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, EntityTrait, IsolationLevel, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use std::collections::HashMap;
use switchboard_app::records::{MeetingRecord, RoutingSnapshot, ServerRecord, TokenRecord};
use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_domain::server::ServerState;
use switchboard_domain::tenant::TenantConfig;
use switchboard_domain::token::TokenScope;
use switchboard_migrations::entities::{meeting, server, tenant, token};

fn token_record(row: token::Model) -> Option<TokenRecord> {
    Some(TokenRecord {
        scope: TokenScope::parse(&row.scope)?,
        name: row.name,
        hash: row.hash,
        created_at: row.created_at,
        server: row.server_id.as_deref().and_then(|id| id.parse().ok()),
    })
}

fn server_record(row: server::Model) -> Option<ServerRecord> {
    Some(ServerRecord {
        id: row.id.parse().ok()?,
        settings: crate::rows::settings_of(&row),
        state: ServerState::parse(&row.state)?,
        online: row.online,
        agent: crate::rows::agent_of(&row),
        version: row.version,
    })
}

impl Store {
    /// Admin tokens in force, by name.
    pub(crate) async fn tokens_sql(&self) -> Result<Vec<TokenRecord>, SqlError> {
        let rows = token::Entity::find()
            .order_by_asc(token::Column::Name)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(token_record).collect())
    }

    /// Every server of the pool, oldest first.
    pub(crate) async fn servers_sql(&self) -> Result<Vec<ServerRecord>, SqlError> {
        servers_on(&self.db).await
    }

    /// The log position, the servers and the running meetings per server,
    /// read in one consistent snapshot (one repeatable-read transaction), so
    /// the counts belong to that position.
    pub(crate) async fn routing_snapshot_sql(&self) -> Result<RoutingSnapshot, SqlError> {
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
    pub(crate) async fn server_sql(&self, id: ServerId) -> Result<Option<ServerRecord>, SqlError> {
        let row = server::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?;
        Ok(row.and_then(server_record))
    }

    /// The server with this base URL.
    pub(crate) async fn server_by_url_sql(
        &self,
        url: &str,
    ) -> Result<Option<ServerRecord>, SqlError> {
        let row = server::Entity::find()
            .filter(server::Column::Url.eq(url))
            .one(&self.db)
            .await?;
        Ok(row.and_then(server_record))
    }

    /// One meeting (its last run).
    pub(crate) async fn meeting_sql(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<MeetingRecord>, SqlError> {
        let row = meeting::Entity::find_by_id((tenant.0.clone(), meeting_id.as_str().to_owned()))
            .one(&self.db)
            .await?;
        Ok(row.and_then(crate::rows::meeting_record))
    }

    /// Every meeting row, running or not, ordered by tenant and id.
    pub(crate) async fn meetings_sql(&self) -> Result<Vec<MeetingRecord>, SqlError> {
        let rows = meeting::Entity::find()
            .order_by_asc(meeting::Column::Tenant)
            .order_by_asc(meeting::Column::MeetingId);
        self.meeting_records(rows).await
    }

    /// Meetings whose last run goes on.
    pub(crate) async fn running_meetings_sql(&self) -> Result<Vec<MeetingRecord>, SqlError> {
        let rows = meeting::Entity::find().filter(meeting::Column::Running.eq(true));
        self.meeting_records(rows).await
    }

    /// The records of the rows `query` selects, each made as its row
    /// arrives (see [`crate::rows::fold_rows`]).
    async fn meeting_records(
        &self,
        query: sea_orm::Select<meeting::Entity>,
    ) -> Result<Vec<MeetingRecord>, SqlError> {
        let rows = query.stream(&self.db).await?;
        Ok(crate::rows::fold_rows(rows, Vec::new(), |records, row| {
            records.extend(crate::rows::meeting_record(row))
        })
        .await?)
    }

    /// Running meetings per server.
    pub(crate) async fn running_meetings_per_server_sql(
        &self,
    ) -> Result<HashMap<ServerId, u64>, SqlError> {
        running_per_server_on(&self.db).await
    }
}

async fn servers_on<C: ConnectionTrait>(db: &C) -> Result<Vec<ServerRecord>, SqlError> {
    let rows = server::Entity::find()
        .order_by_asc(server::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(server_record).collect())
}

async fn running_per_server_on<C: ConnectionTrait>(
    db: &C,
) -> Result<HashMap<ServerId, u64>, SqlError> {
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
    pub(crate) async fn tenants_sql(&self) -> Result<Vec<TenantConfig>, SqlError> {
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
    pub(crate) async fn tenant_sql(&self, name: &str) -> Result<Option<TenantConfig>, SqlError> {
        let row = tenant::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await?;
        Ok(row.and_then(|row| serde_json::from_str(&row.config).ok()))
    }

    /// Running meetings of one tenant.
    pub(crate) async fn running_meetings_of_sql(&self, tenant: &TenantId) -> Result<u64, SqlError> {
        use sea_orm::PaginatorTrait;
        Ok(meeting::Entity::find()
            .filter(meeting::Column::Tenant.eq(tenant.0.as_str()))
            .filter(meeting::Column::Running.eq(true))
            .count(&self.db)
            .await?)
    }

    /// Internal ids of a tenant's running runs.
    pub(crate) async fn running_runs_on_sql(
        &self,
        server: ServerId,
    ) -> Result<Vec<String>, SqlError> {
        Ok(meeting::Entity::find()
            .select_only()
            .column(meeting::Column::InternalId)
            .filter(meeting::Column::ServerId.eq(server.to_string()))
            .filter(meeting::Column::Running.eq(true))
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    pub(crate) async fn running_runs_of_sql(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<String>, SqlError> {
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
    pub(crate) async fn servers_running_elsewhere_sql(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Vec<ServerId>, SqlError> {
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
    pub(crate) async fn running_run_owners_sql(
        &self,
    ) -> Result<HashMap<String, TenantId>, SqlError> {
        let rows = meeting::Entity::find()
            .select_only()
            .column(meeting::Column::InternalId)
            .column(meeting::Column::Tenant)
            .filter(meeting::Column::Running.eq(true))
            .into_tuple::<(String, String)>()
            .stream(&self.db)
            .await?;
        Ok(
            crate::rows::fold_rows(rows, HashMap::new(), |owners, (internal, tenant)| {
                owners.insert(internal, TenantId(tenant));
            })
            .await?,
        )
    }
}
