//! Recordings in the store: reads indexed for getRecordings' filters, the
//! recording command (decide against the stream, append), meeting runs by
//! internal id, and the shared one-time token nonces.

use crate::store::{SqlError, Store};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Order, Query};
use sea_orm::{
    AccessMode, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    IsolationLevel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    TryInsertResult,
};
use switchboard_app::records::{MeetingRunRecord, RecordingPage, RecordingQuery, RecordingRecord};
use switchboard_domain::ids::TenantId;
use switchboard_migrations::entities::{
    meeting_run, recording, recording_count, recording_meta, used_token,
};

fn recording_record(row: recording::Model) -> RecordingRecord {
    let breakout: crate::breakout_column::BreakoutColumn = row
        .breakout
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    RecordingRecord {
        metadata: serde_json::from_str(&row.metadata).unwrap_or_default(),
        formats: serde_json::from_str(&row.formats).unwrap_or_default(),
        record_id: row.record_id,
        tenant: TenantId(row.tenant),
        meeting_id: row.meeting_id,
        internal_meeting_id: row.internal_meeting_id,
        name: row.name,
        is_breakout: row.is_breakout,
        breakout: breakout.parent,
        breakout_rooms: breakout.rooms,
        published: row.published,
        state: row.state,
        start_time_ms: row.start_time_ms,
        end_time_ms: row.end_time_ms,
        participants: u32::try_from(row.participants).unwrap_or(0),
        protected: row.protected,
        version: row.version,
    }
}

trait QueryCondition {
    fn condition(&self) -> Condition;
}

impl QueryCondition for RecordingQuery {
    fn condition(&self) -> Condition {
        let mut condition =
            Condition::all().add(recording::Column::Tenant.eq(self.tenant.0.as_str()));
        if !self.meeting_ids.is_empty() {
            condition = condition.add(recording::Column::MeetingId.is_in(self.meeting_ids.clone()));
        }
        if !self.record_id_prefixes.is_empty() {
            let mut any = Condition::any();
            for prefix in &self.record_id_prefixes {
                let len = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
                let head = Func::cust("substr").args([
                    Expr::col(recording::Column::RecordId),
                    Expr::val(1i32),
                    Expr::val(len),
                ]);
                any = any.add(ExprTrait::eq(Expr::expr(head), prefix.as_str()));
            }
            condition = condition.add(any);
        }
        if let Some(states) = &self.states {
            condition = condition.add(recording::Column::State.is_in(states.clone()));
        }
        for (key, value) in &self.meta {
            let sub = Query::select()
                .column(recording_meta::Column::RecordId)
                .from(recording_meta::Entity)
                .and_where(recording_meta::Column::Key.eq(key.as_str()))
                .and_where(recording_meta::Column::Value.eq(value.as_str()))
                .to_owned();
            condition = condition.add(recording::Column::RecordId.in_subquery(sub));
        }
        condition
    }
}

/// A `meeting_runs` row as the application reads it.
fn run_record(row: meeting_run::Model) -> MeetingRunRecord {
    MeetingRunRecord {
        callbacks: row
            .callbacks
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok()),
        internal_id: row.internal_id,
        tenant: TenantId(row.tenant),
        meeting_id: row.meeting_id,
        server_id: row.server_id.parse().ok(),
        create_time_ms: row.create_time_ms,
        recording_ready_url: row.recording_ready_url,
    }
}

impl Store {
    /// Recordings matching a query, oldest first (then by record id).
    ///
    /// With a limit, the page and `total` are read in one snapshot, so they
    /// agree. The total comes from `recording_counts` when the only filters
    /// are tenant and states, else from `COUNT(*)`. A page picks its record
    /// ids from the `(tenant, start_time_ms, record_id, state)` index
    /// (index-only, walking from the nearer end when the offset is past the
    /// middle) and then reads just those rows.
    pub(crate) async fn find_recordings_sql(
        &self,
        query: &RecordingQuery,
    ) -> Result<RecordingPage, SqlError> {
        let Some(limit) = query.limit else {
            let mut select = recording::Entity::find()
                .filter(query.condition())
                .order_by_asc(recording::Column::StartTimeMs)
                .order_by_asc(recording::Column::RecordId);
            if query.offset > 0 {
                select = select.offset(query.offset);
            }
            let rows = select.all(&self.db).await?;
            return Ok(RecordingPage {
                recordings: rows.into_iter().map(recording_record).collect(),
                total: None,
            });
        };
        let txn = if self.is_postgres() {
            self.db
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
        } else {
            self.db.begin().await?
        };
        let total = recording_total(&txn, query).await?;
        let recordings = if query.offset >= total || limit == 0 {
            Vec::new()
        } else {
            let rows = recording_page(&txn, query, limit, total).await?;
            rows.into_iter().map(recording_record).collect()
        };
        txn.commit().await?;
        Ok(RecordingPage {
            recordings,
            total: Some(total),
        })
    }

    /// One recording, in any state.
    pub(crate) async fn recording_sql(
        &self,
        record_id: &str,
    ) -> Result<Option<RecordingRecord>, SqlError> {
        Ok(recording::Entity::find_by_id(record_id.to_owned())
            .one(&self.db)
            .await?
            .map(recording_record))
    }

    /// Number of recordings in the projection (any state).
    pub(crate) async fn recording_count_sql(&self) -> Result<u64, SqlError> {
        Ok(recording::Entity::find().count(&self.db).await?)
    }

    /// A meeting run by internal id (the record id of its recording).
    pub(crate) async fn meeting_run_sql(
        &self,
        internal_id: &str,
    ) -> Result<Option<MeetingRunRecord>, SqlError> {
        let row = meeting_run::Entity::find_by_id(internal_id.to_owned())
            .one(&self.db)
            .await?;
        Ok(row.map(run_record))
    }

    /// The run whose callback URLs carry `nonce`.
    pub(crate) async fn meeting_run_by_nonce_sql(
        &self,
        nonce: &str,
    ) -> Result<Option<MeetingRunRecord>, SqlError> {
        let row = meeting_run::Entity::find()
            .filter(meeting_run::Column::CallbackNonce.eq(nonce.to_owned()))
            .one(&self.db)
            .await?;
        Ok(row.map(run_record))
    }

    /// Marks a one-time token nonce used until `expires_at` (unix seconds);
    /// true when it was not used before. Shared by every instance on this
    /// database. Forgets expired nonces now and then.
    pub(crate) async fn claim_token_sql(
        &self,
        nonce: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<bool, SqlError> {
        if rand_sweep() {
            used_token::Entity::delete_many()
                .filter(used_token::Column::ExpiresAt.lte(i64::try_from(now).unwrap_or(i64::MAX)))
                .exec(&self.db)
                .await?;
        }
        let row = used_token::ActiveModel {
            nonce: Set(nonce.to_owned()),
            expires_at: Set(i64::try_from(expires_at).unwrap_or(i64::MAX)),
        };
        let inserted = used_token::Entity::insert(row)
            .on_conflict_do_nothing_on([used_token::Column::Nonce])
            .exec_without_returning(&self.db)
            .await?;
        Ok(matches!(inserted, TryInsertResult::Inserted(n) if n > 0))
    }
}

/// All matches of a query: the tenant's `recording_counts` when only tenant
/// and states filter, else `COUNT(*)`.
async fn recording_total<C: ConnectionTrait>(
    db: &C,
    query: &RecordingQuery,
) -> Result<u64, SqlError> {
    if !query.meeting_ids.is_empty()
        || !query.record_id_prefixes.is_empty()
        || !query.meta.is_empty()
    {
        return Ok(recording::Entity::find()
            .filter(query.condition())
            .count(db)
            .await?);
    }
    let mut select = recording_count::Entity::find()
        .select_only()
        .expr(Expr::cust("CAST(COALESCE(SUM(count), 0) AS BIGINT)"))
        .filter(recording_count::Column::Tenant.eq(query.tenant.0.as_str()));
    if let Some(states) = &query.states {
        select = select.filter(recording_count::Column::State.is_in(states.clone()));
    }
    let total: Option<i64> = select.into_tuple().one(db).await?;
    Ok(u64::try_from(total.unwrap_or(0)).unwrap_or(0))
}

/// One page of a query's matches, `query.offset < total`: the record ids
/// from the ordered index (from the far end when that skips fewer), then
/// their rows.
async fn recording_page<C: ConnectionTrait>(
    db: &C,
    query: &RecordingQuery,
    limit: u64,
    total: u64,
) -> Result<Vec<recording::Model>, SqlError> {
    let take = Ord::min(limit, total - query.offset);
    let after = total - query.offset - take;
    // Deep in a tenant's recordings (only tenant and states asked), the
    // bucket counts say where the page starts, so only its 4-second bucket
    // is walked.
    if Ord::min(query.offset, after) > SEEK_AFTER
        && query.meeting_ids.is_empty()
        && query.record_id_prefixes.is_empty()
        && query.meta.is_empty()
        && let Some((start_ms, before)) = crate::buckets::seek(
            db,
            query.tenant.0.as_str(),
            query.states.as_deref(),
            query.offset,
            total,
        )
        .await?
    {
        let mut ids = Query::select()
            .column(recording::Column::RecordId)
            .from(recording::Entity)
            .cond_where(query.condition())
            .order_by(recording::Column::StartTimeMs, Order::Asc)
            .order_by(recording::Column::RecordId, Order::Asc)
            .limit(take)
            .offset(query.offset - before)
            .to_owned();
        if start_ms > 0 {
            ids.and_where(recording::Column::StartTimeMs.gte(start_ms));
        }
        return Ok(recording::Entity::find()
            .filter(recording::Column::RecordId.in_subquery(ids))
            .order_by_asc(recording::Column::StartTimeMs)
            .order_by_asc(recording::Column::RecordId)
            .all(db)
            .await?);
    }
    let (order, skip) = if after < query.offset {
        (Order::Desc, after)
    } else {
        (Order::Asc, query.offset)
    };
    let ids = Query::select()
        .column(recording::Column::RecordId)
        .from(recording::Entity)
        .cond_where(query.condition())
        .order_by(recording::Column::StartTimeMs, order.clone())
        .order_by(recording::Column::RecordId, order)
        .limit(take)
        .offset(skip)
        .to_owned();
    Ok(recording::Entity::find()
        .filter(recording::Column::RecordId.in_subquery(ids))
        .order_by_asc(recording::Column::StartTimeMs)
        .order_by_asc(recording::Column::RecordId)
        .all(db)
        .await?)
}

/// Pages this far from both ends find their start through the bucket
/// counts rather than by walking the index.
const SEEK_AFTER: u64 = 500;

/// True about once in 64 calls.
fn rand_sweep() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    CALLS.fetch_add(1, Ordering::Relaxed).is_multiple_of(64)
}
