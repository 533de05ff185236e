//! The callback outbox in SQL (`callbacks`; rows are written in the
//! append's transaction by `outbox`): claimed by a conditional update (so two instances never
//! claim one attempt), finished, listed, retried and dropped.

use crate::store::{SqlError, Store};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use switchboard_app::records::{
    AttemptOutcome, CallbackFilter, CallbackKind, CallbackRecord, CallbackSigning, CallbackState,
    HookRecord, NewCallback,
};
use switchboard_domain::ids::TenantId;
use switchboard_migrations::entities::callback;

/// A row as the application reads it.
fn record(row: callback::Model) -> Result<CallbackRecord, SqlError> {
    let corrupt = |reason: String| SqlError::Corrupt {
        position: 0,
        reason: format!("callback {}: {reason}", row.id),
    };
    let kind =
        CallbackKind::parse(&row.kind).ok_or_else(|| corrupt(format!("kind {}", row.kind)))?;
    let state =
        CallbackState::parse(&row.state).ok_or_else(|| corrupt(format!("state {}", row.state)))?;
    let signing: CallbackSigning =
        serde_json::from_str(&row.signing).map_err(|err| corrupt(format!("signing: {err}")))?;
    Ok(CallbackRecord {
        callback: NewCallback {
            id: row.id,
            kind,
            tenant: TenantId(row.tenant),
            meeting_id: row.meeting_id,
            method: row.method,
            url: row.url,
            content_type: row.content_type,
            body: row.body,
            signing,
            created_at_ms: row.created_at_ms,
            due_ms: row.created_at_ms,
            deadline_ms: row.deadline_ms,
        },
        state,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        next_attempt_ms: row.next_attempt_ms,
        last_status: row
            .last_status
            .and_then(|status| u16::try_from(status).ok()),
        last_error: row.last_error,
        finished_at_ms: row.finished_at_ms,
    })
}

fn pending() -> String {
    CallbackState::Pending.as_str().to_owned()
}

impl Store {
    /// See [`CallbackOutbox::claim_due_callbacks`](switchboard_app::ports::CallbackOutbox).
    pub(crate) async fn claim_due_callbacks_sql(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u64,
    ) -> Result<Vec<(String, u32)>, SqlError> {
        let due: Vec<(String, i32)> = callback::Entity::find()
            .select_only()
            .column(callback::Column::Id)
            .column(callback::Column::Attempts)
            .filter(callback::Column::State.eq(pending()))
            .filter(callback::Column::NextAttemptMs.lte(now_ms))
            .order_by_asc(callback::Column::NextAttemptMs)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for (id, attempts) in due {
            // Claimed only if nobody moved it on since it was read.
            let updated = callback::Entity::update_many()
                .col_expr(callback::Column::Attempts, Expr::value(attempts + 1))
                .col_expr(callback::Column::NextAttemptMs, Expr::value(lease_until_ms))
                .filter(callback::Column::Id.eq(id.clone()))
                .filter(callback::Column::Attempts.eq(attempts))
                .filter(callback::Column::State.eq(pending()))
                .exec(&self.db)
                .await?;
            if updated.rows_affected == 1 {
                claimed.push((id, u32::try_from(attempts + 1).unwrap_or(u32::MAX)));
            }
        }
        Ok(claimed)
    }

    /// One delivery.
    pub(crate) async fn callback_sql(&self, id: &str) -> Result<Option<CallbackRecord>, SqlError> {
        callback::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(record)
            .transpose()
    }

    /// See [`CallbackOutbox::finish_callback_attempt`](switchboard_app::ports::CallbackOutbox).
    pub(crate) async fn finish_callback_attempt_sql(
        &self,
        id: &str,
        attempt: u32,
        outcome: &AttemptOutcome,
        now_ms: i64,
    ) -> Result<bool, SqlError> {
        let status = |status: &Option<u16>| Expr::value(status.map(i32::from));
        let update = callback::Entity::update_many();
        let update = match outcome {
            AttemptOutcome::Delivered { status: code } => update
                .col_expr(
                    callback::Column::State,
                    Expr::value(CallbackState::Delivered.as_str()),
                )
                .col_expr(callback::Column::LastStatus, Expr::value(i32::from(*code)))
                .col_expr(
                    callback::Column::LastError,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(callback::Column::FinishedAtMs, Expr::value(now_ms)),
            AttemptOutcome::RetryAt {
                at_ms,
                status: code,
                error,
            } => update
                .col_expr(callback::Column::NextAttemptMs, Expr::value(*at_ms))
                .col_expr(callback::Column::LastStatus, status(code))
                .col_expr(callback::Column::LastError, Expr::value(error.clone())),
            AttemptOutcome::Failed {
                status: code,
                error,
            } => update
                .col_expr(
                    callback::Column::State,
                    Expr::value(CallbackState::Failed.as_str()),
                )
                .col_expr(callback::Column::LastStatus, status(code))
                .col_expr(callback::Column::LastError, Expr::value(error.clone()))
                .col_expr(callback::Column::FinishedAtMs, Expr::value(now_ms)),
        };
        let updated = update
            .filter(callback::Column::Id.eq(id.to_owned()))
            .filter(callback::Column::Attempts.eq(i32::try_from(attempt).unwrap_or(i32::MAX)))
            .filter(callback::Column::State.eq(pending()))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Deliveries matching a filter, newest first.
    pub(crate) async fn callbacks_sql(
        &self,
        filter: &CallbackFilter,
    ) -> Result<Vec<CallbackRecord>, SqlError> {
        let mut query = callback::Entity::find();
        if let Some(state) = filter.state {
            query = query.filter(callback::Column::State.eq(state.as_str()));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(callback::Column::Kind.eq(kind.as_str()));
        }
        if let Some(tenant) = &filter.tenant {
            query = query.filter(callback::Column::Tenant.eq(tenant.0.clone()));
        }
        query
            .order_by_desc(callback::Column::CreatedAtMs)
            .order_by_desc(callback::Column::Id)
            .limit(filter.limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(record)
            .collect()
    }

    /// See [`CallbackOutbox::retry_callback`](switchboard_app::ports::CallbackOutbox).
    pub(crate) async fn retry_callback_sql(
        &self,
        id: &str,
        now_ms: i64,
        deadline_ms: i64,
    ) -> Result<bool, SqlError> {
        let updated = callback::Entity::update_many()
            .col_expr(callback::Column::State, Expr::value(pending()))
            .col_expr(callback::Column::NextAttemptMs, Expr::value(now_ms))
            .col_expr(callback::Column::DeadlineMs, Expr::value(deadline_ms))
            .col_expr(
                callback::Column::FinishedAtMs,
                Expr::value(Option::<i64>::None),
            )
            .filter(callback::Column::Id.eq(id.to_owned()))
            .filter(callback::Column::State.ne(CallbackState::Delivered.as_str()))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// See [`CallbackOutbox::drop_callback`](switchboard_app::ports::CallbackOutbox).
    pub(crate) async fn drop_callback_sql(&self, id: &str, now_ms: i64) -> Result<bool, SqlError> {
        let updated = callback::Entity::update_many()
            .col_expr(
                callback::Column::State,
                Expr::value(CallbackState::Dropped.as_str()),
            )
            .col_expr(callback::Column::FinishedAtMs, Expr::value(now_ms))
            .filter(callback::Column::Id.eq(id.to_owned()))
            .filter(callback::Column::State.is_in([
                CallbackState::Pending.as_str(),
                CallbackState::Failed.as_str(),
            ]))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }

    /// Deliveries per kind and state.
    pub(crate) async fn callback_counts_sql(
        &self,
    ) -> Result<Vec<(CallbackKind, CallbackState, u64)>, SqlError> {
        let rows: Vec<(String, String, i64)> = callback::Entity::find()
            .select_only()
            .column(callback::Column::Kind)
            .column(callback::Column::State)
            .column_as(callback::Column::Id.count(), "count")
            .group_by(callback::Column::Kind)
            .group_by(callback::Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, state, count)| {
                Some((
                    CallbackKind::parse(&kind)?,
                    CallbackState::parse(&state)?,
                    u64::try_from(count).unwrap_or(0),
                ))
            })
            .collect())
    }

    /// Deletes deliveries finished before `before_ms`.
    pub(crate) async fn prune_callbacks_sql(&self, before_ms: i64) -> Result<u64, SqlError> {
        let deleted = callback::Entity::delete_many()
            .filter(callback::Column::State.ne(CallbackState::Pending.as_str()))
            .filter(callback::Column::FinishedAtMs.lt(before_ms))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Every webhook in force, oldest first.
    pub(crate) async fn hooks_sql(&self) -> Result<Vec<HookRecord>, SqlError> {
        use switchboard_migrations::entities::hook;
        let rows = hook::Entity::find()
            .order_by_asc(hook::Column::Position)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let settings =
                    serde_json::from_str(&row.settings).map_err(|err| SqlError::Corrupt {
                        position: row.position,
                        reason: format!("hook {}: {err}", row.id),
                    })?;
                Ok(HookRecord {
                    id: row.id,
                    settings,
                })
            })
            .collect()
    }
}
