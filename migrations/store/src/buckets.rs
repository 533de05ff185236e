//! `recording_buckets`: a tenant's recordings per state in start-time
//! buckets at three widths, so a getRecordings page at any offset finds the
//! 4-second bucket its first recording starts in by summing bucket counts
//! (at most 1,024 rows per level below the top), then walks only within
//! that bucket. Kept by the projection with `recording_counts`; recounted
//! from `recordings` by replay.

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, FromQueryResult, Statement};
use switchboard_migrations::entities::recording_bucket;

/// The levels: (level, log2 of its width in ms), widest last.
pub(crate) const LEVELS: [(i16, u32); 3] = [(1, 12), (2, 22), (3, 32)];

/// The bucket of a start time at a level of width `2^shift` ms.
pub(crate) fn bucket_of(start_time_ms: i64, shift: u32) -> i64 {
    start_time_ms.max(0) >> shift
}

/// Recounts every bucket from `recordings` (replay, after the swap).
pub(crate) async fn recount<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    db.execute_unprepared("DELETE FROM recording_buckets")
        .await?;
    for (level, shift) in LEVELS {
        db.execute_unprepared(&format!(
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

#[derive(Debug, FromQueryResult)]
struct BucketCount {
    bucket: i64,
    count: i64,
}

/// Where a tenant's recordings in `states` (`None`: any) at `offset` (in
/// start-time order) begin: the start of the finest bucket holding that
/// offset and how many of those recordings start before it. `None` when
/// the offset is past them all, or when a level's buckets do not add up to
/// what the level above holds (the top level: `total`, counted from
/// `recording_counts` in the same snapshot): counts left stale (say, by an
/// older binary appending after the upgrade) are not trusted, the caller
/// walks the index instead.
pub(crate) async fn seek<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    states: Option<&[String]>,
    offset: u64,
    total: u64,
) -> Result<Option<(i64, u64)>, DbErr> {
    let mut before: u64 = 0;
    // The range of buckets (at the current level) to look in: all, then
    // those inside the bucket found one level up.
    let mut range: Option<(i64, i64)> = None;
    let mut found = None;
    let mut expected = total;
    for (level, shift) in LEVELS.iter().rev().copied() {
        let mut select = Query::select()
            .column(recording_bucket::Column::Bucket)
            .expr_as(
                Expr::cust("CAST(SUM(count) AS BIGINT)"),
                sea_orm::sea_query::Alias::new("count"),
            )
            .from(recording_bucket::Entity)
            .and_where(recording_bucket::Column::Tenant.eq(tenant))
            .and_where(recording_bucket::Column::Level.eq(level))
            .group_by_col(recording_bucket::Column::Bucket)
            .order_by(recording_bucket::Column::Bucket, sea_orm::Order::Asc)
            .to_owned();
        if let Some(states) = states {
            select = select
                .and_where(recording_bucket::Column::State.is_in(states.iter().cloned()))
                .to_owned();
        }
        if let Some((first, last)) = range {
            select = select
                .and_where(recording_bucket::Column::Bucket.gte(first))
                .and_where(recording_bucket::Column::Bucket.lte(last))
                .to_owned();
        }
        let statement: Statement = db.get_database_backend().build(&select);
        let rows = BucketCount::find_by_statement(statement).all(db).await?;
        let counts: Vec<u64> = rows
            .iter()
            .map(|row| u64::try_from(row.count).unwrap_or(0))
            .collect();
        // Each level must add up to what the level above (or the total)
        // says it holds.
        if counts.iter().sum::<u64>() != expected {
            tracing::warn!(
                tenant,
                level,
                "recording_buckets disagree with recording_counts: deep pages walk the index until `switchboard replay` recounts them"
            );
            return Ok(None);
        }
        let mut hit = None;
        for (row, count) in rows.iter().zip(counts) {
            if offset < before + count {
                hit = Some(row.bucket);
                expected = count;
                break;
            }
            before += count;
        }
        let Some(bucket) = hit else { return Ok(None) };
        found = Some(bucket << shift);
        // The finer level's buckets inside this one.
        let finer = 10;
        range = Some((bucket << finer, ((bucket + 1) << finer) - 1));
    }
    Ok(found.map(|start| (start, before)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_holds_1024_of_the_one_below() {
        for pair in LEVELS.windows(2) {
            assert_eq!(pair[1].1 - pair[0].1, 10);
        }
        let t = 1_796_083_200_123;
        assert_eq!(bucket_of(t, 22) << 10, bucket_of(t, 12) >> 10 << 10);
        assert_eq!(bucket_of(-5, 12), 0, "times before the epoch are bucket 0");
    }
}
