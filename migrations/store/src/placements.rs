//! Pending placements (see [`Placements`]): where a create was about to go,
//! kept until the run's `MeetingCreated` is projected.

use crate::store::{SqlError, Store};
use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use switchboard_app::StoreError;
use switchboard_app::ports::Placements;
use switchboard_app::records::PendingPlacement;
use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_migrations::entities::pending_placement;

fn to_placement(row: pending_placement::Model) -> Option<PendingPlacement> {
    Some(PendingPlacement {
        tenant: TenantId(row.tenant),
        meeting_id: MeetingId::parse(&row.meeting_id).ok()?,
        server_id: row.server_id.parse().ok()?,
        at_ms: row.at_ms,
        recording_ready_url: row.recording_ready_url,
        callbacks: row
            .callbacks
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok()),
    })
}

impl Store {
    async fn pending_placement_sql(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<PendingPlacement>, SqlError> {
        Ok(pending_placement::Entity::find_by_id((
            tenant.0.clone(),
            meeting_id.as_str().to_owned(),
        ))
        .one(&self.db)
        .await?
        .and_then(to_placement))
    }

    async fn put_pending_placement_sql(
        &self,
        placement: &PendingPlacement,
    ) -> Result<(), SqlError> {
        let row = pending_placement::ActiveModel {
            tenant: Set(placement.tenant.0.clone()),
            meeting_id: Set(placement.meeting_id.as_str().to_owned()),
            server_id: Set(placement.server_id.to_string()),
            at_ms: Set(placement.at_ms),
            recording_ready_url: Set(placement.recording_ready_url.clone()),
            callbacks: Set(placement
                .callbacks
                .as_ref()
                .and_then(|callbacks| serde_json::to_string(callbacks).ok())),
        };
        pending_placement::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    pending_placement::Column::Tenant,
                    pending_placement::Column::MeetingId,
                ])
                .update_columns([
                    pending_placement::Column::ServerId,
                    pending_placement::Column::AtMs,
                    pending_placement::Column::RecordingReadyUrl,
                    pending_placement::Column::Callbacks,
                ])
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    async fn pending_placements_on_sql(
        &self,
        server: ServerId,
    ) -> Result<Vec<PendingPlacement>, SqlError> {
        Ok(pending_placement::Entity::find()
            .filter(pending_placement::Column::ServerId.eq(server.to_string()))
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(to_placement)
            .collect())
    }
}

#[async_trait]
impl Placements for Store {
    async fn pending_placement(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<PendingPlacement>, StoreError> {
        Ok(Store::pending_placement_sql(self, tenant, meeting_id).await?)
    }

    async fn put_pending_placement(&self, placement: &PendingPlacement) -> Result<(), StoreError> {
        Ok(Store::put_pending_placement_sql(self, placement).await?)
    }

    async fn pending_placements_on(
        &self,
        server: ServerId,
    ) -> Result<Vec<PendingPlacement>, StoreError> {
        Ok(Store::pending_placements_on_sql(self, server).await?)
    }
}
