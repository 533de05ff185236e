//! getRecordings lists breakout rooms as BBB does (`<breakout>` on a room's
//! recording, `<breakoutRooms>` on its parent's): `recordings.breakout`
//! keeps both as JSON, null for recordings without either.

use sea_orm_migration::{prelude::*, schema::*};

/// Adds `recordings.breakout`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("recordings")
                    .add_column(text_null("breakout"))
                    .to_owned(),
            )
            .await
    }
}
