//! The recordings projections: `recordings` (one row per record id, indexed
//! for getRecordings' filters), `recording_meta` (one row per metadata key,
//! for `meta_*` filters), `meeting_runs` (every run, to find a recording's
//! tenant and recording-ready URL) and `used_tokens` (one-time playback
//! link nonces, shared by all instances).

use sea_orm_migration::{prelude::*, schema::*};

/// Creates the recordings tables.
#[derive(DeriveMigrationName)]
pub struct Migration;

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table.to_owned()).if_not_exists();
    for col in cols {
        index.col(ToString::to_string(col));
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("recordings")
                    .if_not_exists()
                    .col(string("record_id").primary_key())
                    .col(string("tenant"))
                    .col(string_len("meeting_id", 1024))
                    .col(string("internal_meeting_id"))
                    .col(text("name"))
                    .col(boolean("is_breakout"))
                    .col(boolean("published"))
                    .col(string("state"))
                    .col(big_integer("start_time_ms"))
                    .col(big_integer("end_time_ms"))
                    .col(integer("participants"))
                    .col(boolean("protected"))
                    .col(text("metadata"))
                    .col(text("formats"))
                    .col(big_integer("version"))
                    .col(big_integer("position"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "recordings_tenant_meeting",
            "recordings",
            &["tenant", "meeting_id", "start_time_ms"],
        )
        .await?;
        index(
            manager,
            "recordings_tenant_state_start",
            "recordings",
            &["tenant", "state", "start_time_ms", "record_id"],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("recording_meta")
                    .if_not_exists()
                    .col(string("record_id"))
                    .col(string("key"))
                    .col(text("value"))
                    .primary_key(Index::create().col("record_id").col("key"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "recording_meta_key",
            "recording_meta",
            &["key", "record_id"],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("meeting_runs")
                    .if_not_exists()
                    .col(string("internal_id").primary_key())
                    .col(string("tenant"))
                    .col(string_len("meeting_id", 1024))
                    .col(string("server_id"))
                    .col(big_integer("create_time_ms"))
                    .col(text_null("recording_ready_url"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("used_tokens")
                    .if_not_exists()
                    .col(string("nonce").primary_key())
                    .col(big_integer("expires_at"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "used_tokens_expiry",
            "used_tokens",
            &["expires_at"],
        )
        .await
    }
}
