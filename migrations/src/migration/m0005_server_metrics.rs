//! What servers feel: each server's metrics URL in the servers projection,
//! and the windowed CPU and memory with the state of their reads in the
//! samples (so every instance places on the same picture).

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `servers.metrics_url` and the metrics columns of `server_samples`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table("servers")
                    .add_column(text_null("metrics_url"))
                    .to_owned(),
            )
            .await?;
        let columns = [
            double_null("cpu_percent"),
            double_null("memory_percent"),
            string("metrics_state").default("not_configured").to_owned(),
            text_null("metrics_error"),
            big_integer_null("metrics_read_at_ms"),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table("server_samples")
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
