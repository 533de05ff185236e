//! Callbacks: the outbox of deliveries owed to front-ends (`callbacks`,
//! written in the transaction of the event that causes each, then attempted
//! until delivered), and on `meeting_runs` the run's nonce (its callback
//! URLs carry it) with the callbacks its front-end asked for.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `callbacks` and adds the callback columns of `meeting_runs`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("callbacks")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("kind"))
                    .col(string("tenant"))
                    .col(text("meeting_id"))
                    .col(string("method"))
                    .col(text("url"))
                    .col(string_null("content_type"))
                    .col(text_null("body"))
                    .col(text("signing"))
                    .col(string("state"))
                    .col(integer("attempts"))
                    .col(big_integer("next_attempt_ms"))
                    .col(big_integer("deadline_ms"))
                    .col(big_integer("created_at_ms"))
                    .col(integer_null("last_status"))
                    .col(text_null("last_error"))
                    .col(big_integer_null("finished_at_ms"))
                    .to_owned(),
            )
            .await?;
        // What is due: pending rows by their next attempt.
        manager
            .create_index(
                Index::create()
                    .name("callbacks_due")
                    .table("callbacks")
                    .if_not_exists()
                    .col("state")
                    .col("next_attempt_ms")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("callbacks_created")
                    .table("callbacks")
                    .if_not_exists()
                    .col("created_at_ms")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("meeting_runs")
                    .add_column_if_not_exists(string_null("callback_nonce"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("meeting_runs")
                    .add_column_if_not_exists(text_null("callbacks"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("meeting_runs_callback_nonce")
                    .table("meeting_runs")
                    .if_not_exists()
                    .col("callback_nonce")
                    .to_owned(),
            )
            .await
    }
}
