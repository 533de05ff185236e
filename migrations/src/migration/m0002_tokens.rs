//! Admin tokens in force (name, scope, hash), and the events' actor as a
//! column so the log can be filtered by who did what.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates the tokens projection.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tokens")
                    .if_not_exists()
                    .col(string("name").primary_key())
                    .col(string("scope"))
                    .col(string("hash"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("events")
                    .add_column(string_null("actor"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_actor_position")
                    .table("events")
                    .col("actor")
                    .col("position")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_recorded_at")
                    .table("events")
                    .col("recorded_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
