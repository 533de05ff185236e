//! getRecordings pages at any depth: `recording_buckets` counts a tenant's
//! recordings per state in start-time buckets at three widths (2^12 ms,
//! 2^22 ms and 2^32 ms, each 1,024 of the one below), kept by the
//! projection with `recording_counts`. A page at offset N sums at most a
//! few thousand bucket rows to find the 4-second bucket its first
//! recording starts in, then walks only within it. Filled from
//! `recordings`.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `recording_buckets`, filled from `recordings`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("recording_buckets")
                    .if_not_exists()
                    .col(string("tenant"))
                    .col(small_integer("level"))
                    .col(big_integer("bucket"))
                    .col(string("state"))
                    .col(big_integer("count"))
                    .primary_key(
                        Index::create()
                            .col("tenant")
                            .col("level")
                            .col("bucket")
                            .col("state"),
                    )
                    .to_owned(),
            )
            .await?;
        for (level, shift) in [(1, 12), (2, 22), (3, 32)] {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "INSERT INTO recording_buckets (tenant, level, bucket, state, count) \
                     SELECT tenant, {level}, \
                     CASE WHEN start_time_ms < 0 THEN 0 ELSE start_time_ms / {width} END AS b, \
                     state, COUNT(*) FROM recordings GROUP BY tenant, b, state",
                    width = 1_i64 << shift
                ))
                .await?;
        }
        Ok(())
    }
}
