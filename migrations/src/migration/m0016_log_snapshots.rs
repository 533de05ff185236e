//! `log_snapshots`: folds of the log kept at positions (the pool's state
//! for `events at`, so a moment is replayed from the nearest snapshot, not
//! from the start), and indexes of the log by time and by actor for the
//! event queries' filters.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `log_snapshots` and the log's time and actor indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("log_snapshots")
                    .if_not_exists()
                    .col(string("kind"))
                    .col(big_integer("position"))
                    .col(timestamp_with_time_zone("recorded_at"))
                    .col(text("state"))
                    .primary_key(Index::create().col("kind").col("position"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("log_snapshots_by_time")
                    .table("log_snapshots")
                    .if_not_exists()
                    .col("kind")
                    .col("recorded_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_by_time")
                    .table("events")
                    .if_not_exists()
                    .col("recorded_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_by_actor")
                    .table("events")
                    .if_not_exists()
                    .col("actor")
                    .col("position")
                    .to_owned(),
            )
            .await
    }
}
