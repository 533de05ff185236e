//! `hooks`: the webhooks front-ends registered on Switchboard (projection of
//! the `hook:<id>` streams).

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `hooks`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("hooks")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant"))
                    .col(text("settings"))
                    .col(big_integer("position"))
                    .to_owned(),
            )
            .await
    }
}
