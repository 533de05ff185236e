//! An index of finished callback deliveries by when they finished, so the
//! hourly prune of the outbox does not scan it.

use sea_orm_migration::prelude::*;

/// Creates `callbacks_finished`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("callbacks_finished")
                    .table("callbacks")
                    .if_not_exists()
                    .col("finished_at_ms")
                    .to_owned(),
            )
            .await
    }
}
