//! The usage rows the projections write (a run's `run_usage` row opened
//! and closed, summaries in `usage_runs`) and their conversions; the
//! ledger itself is in `usage`.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use switchboard_app::records::RunUsageState;
use switchboard_domain::ids::{MeetingId, TenantId};
use switchboard_domain::meeting::{MeetingRun, RunUsage};
use switchboard_migrations::entities::{run_usage, usage_run};

/// Projection of `MeetingCreated`: the run's usage row. A run recorded
/// again under the same internal id (adopted back after a forget, a create
/// the server answered with its running copy) is reopened unless its
/// summary is in the log already.
pub(crate) async fn start_run<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    meeting_id: &MeetingId,
    run: &MeetingRun,
) -> Result<(), DbErr> {
    let state = RunUsageState::started(tenant, meeting_id, run);
    run_usage::Entity::insert(row_of(&state))
        .on_conflict(
            OnConflict::column(run_usage::Column::InternalId)
                .update_column(run_usage::Column::EndedMs)
                .action_and_where(run_usage::Column::Summarized.eq(false))
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Projection of `MeetingEnded`: closes the run's usage (once).
pub(crate) async fn end_run<C: ConnectionTrait>(
    db: &C,
    internal_id: &str,
    at_ms: i64,
) -> Result<(), DbErr> {
    run_usage::Entity::update_many()
        .col_expr(run_usage::Column::EndedMs, Expr::value(at_ms))
        .filter(run_usage::Column::InternalId.eq(internal_id))
        .filter(run_usage::Column::EndedMs.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Projection of `MeetingUsageSummarized`: the summary row (the first
/// one counts), and the run marked summarized in the same transaction.
pub(crate) async fn summarized<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    meeting_id: &str,
    usage: &RunUsage,
) -> Result<(), DbErr> {
    let row = usage_run::ActiveModel {
        internal_id: Set(usage.internal_id.clone()),
        tenant: Set(tenant.to_owned()),
        meeting_id: Set(meeting_id.to_owned()),
        usage: Set(serde_json::to_string(usage).map_err(|err| DbErr::Custom(err.to_string()))?),
        started_ms: Set(usage.started_ms),
    };
    usage_run::Entity::insert(row)
        .on_conflict(
            OnConflict::column(usage_run::Column::InternalId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    run_usage::Entity::update_many()
        .col_expr(run_usage::Column::Summarized, Expr::value(true))
        .filter(run_usage::Column::InternalId.eq(usage.internal_id.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn row_of(state: &RunUsageState) -> run_usage::ActiveModel {
    model_of(state).into_active_model()
}

/// A run's usage as its row.
pub(crate) fn model_of(state: &RunUsageState) -> run_usage::Model {
    run_usage::Model {
        internal_id: state.internal_id.clone(),
        tenant: state.tenant.0.clone(),
        meeting_id: state.meeting_id.clone(),
        server_id: state.server_id.to_string(),
        started_ms: state.started_ms,
        last_sample_ms: state.last_sample_ms,
        last_attendees: count(state.last_attendees),
        attendee_ms: state.attendee_ms,
        peak_attendees: count(state.peak_attendees),
        peak_video: count(state.peak_video),
        recording: state.recording,
        ended_ms: state.ended_ms,
        summarized: state.summarized,
    }
}

pub(crate) fn state_of(row: run_usage::Model) -> Option<RunUsageState> {
    Some(RunUsageState {
        server_id: row.server_id.parse().ok()?,
        internal_id: row.internal_id,
        tenant: TenantId(row.tenant),
        meeting_id: row.meeting_id,
        started_ms: row.started_ms,
        last_sample_ms: row.last_sample_ms,
        last_attendees: u64::try_from(row.last_attendees).unwrap_or(0),
        attendee_ms: row.attendee_ms,
        peak_attendees: u64::try_from(row.peak_attendees).unwrap_or(0),
        peak_video: u64::try_from(row.peak_video).unwrap_or(0),
        recording: row.recording,
        ended_ms: row.ended_ms,
        summarized: row.summarized,
    })
}
