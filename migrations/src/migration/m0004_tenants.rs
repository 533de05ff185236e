//! The tenants projection: one row per tenant in force, its configuration
//! (secrets, policy, limits, required tags) as JSON.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `tenants`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tenants")
                    .if_not_exists()
                    .col(string("name").primary_key())
                    .col(text("config"))
                    .col(big_integer("version"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("meetings_tenant_running")
                    .table("meetings")
                    .col("tenant")
                    .col("running")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
