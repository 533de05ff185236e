//! Each sample keeps its listing's digest beside the listing, so a poll
//! tells whether a server's listing changed without reading the stored one
//! (with 10,000 meetings on 10 servers, 10 MB read and copied by the
//! database driver at every poll only to be hashed).

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `server_samples.listing_digest` (0 for rows written before: their
/// next poll writes the listing again, once).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("server_samples")
                    .add_column(big_integer("listing_digest").default(0))
                    .to_owned(),
            )
            .await
    }
}
