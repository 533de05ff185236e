//! `log_snapshots`: folds of the log kept at positions (the pool's state
//! for `events at`, so a moment is replayed from the nearest snapshot, not
//! from the start); `stream_snapshots` and `archives`: what replaces the
//! events `events archive` moved out of the log (each stream's state at its
//! last archived event, the projections at the archive's last position).

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `log_snapshots`, `stream_snapshots` and `archives`.
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
            .create_table(
                Table::create()
                    .table("stream_snapshots")
                    .if_not_exists()
                    .col(string("stream").primary_key())
                    .col(big_integer("version"))
                    .col(big_integer("position"))
                    .col(text("state"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("archives")
                    .if_not_exists()
                    .col(big_integer("last_position").primary_key())
                    .col(big_integer("first_position"))
                    .col(big_integer("events"))
                    .col(timestamp_with_time_zone("before"))
                    .col(timestamp_with_time_zone("archived_at"))
                    .col(string("sha256"))
                    .col(text("file"))
                    .col(blob("projections"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
