//! getRecordings pages without sorting or counting the whole tenant:
//! `recording_counts` (recordings per tenant and state, kept by the
//! projection in the append's transaction) answers `totalElements` when the
//! only filters are tenant and states, and `recordings_tenant_start`
//! (tenant, start_time_ms, record_id, state) walks a tenant's recordings in
//! getRecordings' order, covering the state filter, so a page stops after
//! offset + limit index entries instead of sorting every row.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `recording_counts` (filled from `recordings`) and the ordered
/// index.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("recording_counts")
                    .if_not_exists()
                    .col(string("tenant"))
                    .col(string("state"))
                    .col(big_integer("count"))
                    .primary_key(Index::create().col("tenant").col("state"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO recording_counts (tenant, state, count) \
                 SELECT tenant, state, COUNT(*) FROM recordings GROUP BY tenant, state",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("recordings_tenant_start")
                    .table("recordings")
                    .if_not_exists()
                    .col("tenant")
                    .col("start_time_ms")
                    .col("record_id")
                    .col("state")
                    .to_owned(),
            )
            .await
    }
}
