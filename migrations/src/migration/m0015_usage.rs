//! Usage accounting: `run_usage` (each run's usage as the polls add it up,
//! overwritten in place), `usage_runs` (summaries of ended runs, the
//! projection of `MeetingUsageSummarized`) and `tenant_peaks` (tenants'
//! daily peaks of concurrent attendees).

use sea_orm_migration::{prelude::*, schema::*};

/// Creates the three tables and their indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("run_usage")
                    .if_not_exists()
                    .col(string("internal_id").primary_key())
                    .col(string("tenant"))
                    .col(string("meeting_id"))
                    .col(string("server_id"))
                    .col(big_integer("started_ms"))
                    .col(big_integer_null("last_sample_ms"))
                    .col(big_integer("last_attendees"))
                    .col(big_integer("attendee_ms"))
                    .col(big_integer("peak_attendees"))
                    .col(big_integer("peak_video"))
                    .col(boolean("recording"))
                    .col(big_integer_null("ended_ms"))
                    .col(boolean("summarized"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("run_usage_open")
                    .table("run_usage")
                    .if_not_exists()
                    .col("summarized")
                    .col("ended_ms")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("usage_runs")
                    .if_not_exists()
                    .col(string("internal_id").primary_key())
                    .col(string("tenant"))
                    .col(string("meeting_id"))
                    .col(string("usage"))
                    .col(big_integer("started_ms"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("usage_runs_by_tenant")
                    .table("usage_runs")
                    .if_not_exists()
                    .col("tenant")
                    .col("started_ms")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("tenant_peaks")
                    .if_not_exists()
                    .col(string("tenant"))
                    .col(string("day"))
                    .col(big_integer("peak"))
                    .primary_key(Index::create().col("tenant").col("day"))
                    .to_owned(),
            )
            .await
    }
}
