//! `pending_placements`: where a create was about to go, written before the
//! server's create and removed with the run's `MeetingCreated`, so a crash
//! in between leaves a trace that a retried create and reconcile follow
//! (no second copy of the meeting on another server). Also an index of
//! the running meetings, which getMeetings reads on every change.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `pending_placements` and its index by server.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("pending_placements")
                    .if_not_exists()
                    .col(string("tenant"))
                    .col(string("meeting_id"))
                    .col(string("server_id"))
                    .col(big_integer("at_ms"))
                    .primary_key(Index::create().col("tenant").col("meeting_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("pending_placements_server")
                    .table("pending_placements")
                    .if_not_exists()
                    .col("server_id")
                    .to_owned(),
            )
            .await?;
        // getMeetings reads the running runs on every change: by index, not
        // by a scan of every meeting ever held.
        manager
            .create_index(
                Index::create()
                    .name("meetings_running")
                    .table("meetings")
                    .if_not_exists()
                    .col("running")
                    .to_owned(),
            )
            .await
    }
}
