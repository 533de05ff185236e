//! A pending placement keeps the run's callbacks (the nonce its server was
//! given, the front-end's URLs) and recording-ready URL, so a run recorded
//! from it after a crash still relays them.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `recording_ready_url` and `callbacks` to `pending_placements`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("pending_placements")
                    .add_column_if_not_exists(text_null("recording_ready_url"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("pending_placements")
                    .add_column_if_not_exists(text_null("callbacks"))
                    .to_owned(),
            )
            .await
    }
}
