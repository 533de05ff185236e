//! The console's charts: `server_series`, one point per server and minute
//! of what its polls saw (meetings, attendees, video streams, load, CPU and
//! memory), pruned after a configured number of hours. Samples are not
//! changes, so they never enter the event log. Also `server_samples.video`:
//! the video streams the last poll saw.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `server_series` and adds `server_samples.video`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("server_samples")
                    .add_column(big_integer("video").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("server_series")
                    .if_not_exists()
                    .col(string("server_id"))
                    .col(big_integer("at_ms"))
                    .col(boolean("online"))
                    .col(big_integer("meetings"))
                    .col(big_integer("attendees"))
                    .col(big_integer("video"))
                    .col(double("load"))
                    .col(double_null("cpu_percent"))
                    .col(double_null("memory_percent"))
                    .primary_key(Index::create().col("server_id").col("at_ms"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("server_series_by_time")
                    .table("server_series")
                    .if_not_exists()
                    .col("at_ms")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
