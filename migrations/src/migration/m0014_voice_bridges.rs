//! `voice_bridges`: the voiceBridge each meeting holds, unique across the
//! pool (the primary key makes two claims of one number impossible).

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `voice_bridges` and its index by meeting.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("voice_bridges")
                    .if_not_exists()
                    .col(string("number").primary_key())
                    .col(string("tenant"))
                    .col(string("meeting_id"))
                    .col(big_integer("claimed_at_ms"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("voice_bridges_by_meeting")
                    .table("voice_bridges")
                    .if_not_exists()
                    .col("tenant")
                    .col("meeting_id")
                    .to_owned(),
            )
            .await
    }
}
