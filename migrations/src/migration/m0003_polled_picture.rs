//! The polled picture: what the last health polls saw on each server (load
//! figures, health streaks and the `<meeting>` elements it listed), and the
//! listings of meetings Switchboard created since. Both are overwritten in
//! place, never logged: they are samples, not changes.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `server_samples` and `meeting_listings`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("server_samples")
                    .if_not_exists()
                    .col(string("server_id").primary_key())
                    .col(big_integer("changed_at_ms"))
                    .col(big_integer("polled_at_ms"))
                    .col(integer("failures"))
                    .col(integer("successes"))
                    .col(big_integer("meetings"))
                    .col(big_integer("attendees"))
                    .col(big_integer("largest_meeting"))
                    .col(big_integer("known_meetings"))
                    .col(double("load"))
                    .col(text("meetings_xml"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("server_samples_changed_at")
                    .table("server_samples")
                    .col("changed_at_ms")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("meeting_listings")
                    .if_not_exists()
                    .col(string("internal_id").primary_key())
                    .col(string("server_id"))
                    .col(big_integer("created_at_ms"))
                    .col(text("xml"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("meeting_listings_created_at")
                    .table("meeting_listings")
                    .col("created_at_ms")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
