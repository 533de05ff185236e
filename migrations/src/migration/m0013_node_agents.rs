//! Node agents: what a server's agent said of itself (on the server row),
//! the server a node token is bound to, and when each agent was last heard.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `servers.agent`, `tokens.server_id` and the `agent_heartbeats` table.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("servers")
                    .add_column_if_not_exists(text_null("agent"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("tokens")
                    .add_column_if_not_exists(string_null("server_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("agent_heartbeats")
                    .if_not_exists()
                    .col(string("server_id").primary_key())
                    .col(big_integer("heard_at_ms"))
                    .to_owned(),
            )
            .await
    }
}
