//! Usage accounting on SQL (see [`UsageLedger`]): runs' sampled usage in
//! `run_usage`, tenants' daily peaks in `tenant_peaks`, summaries in
//! `usage_runs`.

use crate::store::{SqlError, Store};
use crate::usage_rows::state_of;
use async_trait::async_trait;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use std::collections::HashMap;
use switchboard_app::StoreError;
use switchboard_app::ports::UsageLedger;
use switchboard_app::records::{
    RecordingUsage, RunUsageState, UsageFilter, UsageRunRecord, UsageSample, day_of,
};
use switchboard_domain::ids::TenantId;
use switchboard_migrations::entities::{run_usage, tenant_peak, usage_run};

/// Writes the sampled columns of several runs in one statement, each only
/// if its run is still open and no other writer sampled it since it was
/// read (an end projected meanwhile is never undone; a concurrent cycle's
/// sample is not overwritten). One statement per poll's chunk of runs, not
/// one each: with thousands of meetings running, a write (and on
/// PostgreSQL a commit) per run and poll would load the database more than
/// the creates it serves.
async fn write_samples<C: ConnectionTrait>(
    db: &C,
    changed: &[(RunUsageState, RunUsageState)],
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{DbBackend, Value};
    if changed.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let postgres = backend == DbBackend::Postgres;
    let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    // Padded to a few statement shapes (see `crate::shapes`); an UPDATE
    // takes one of the identical rows that match.
    let padded = changed.len().next_power_of_two();
    let mut values: Vec<Value> = Vec::with_capacity(padded * 8);
    let mut rows = Vec::with_capacity(padded);
    for (before, after) in crate::shapes::padded(changed) {
        let first = values.len();
        values.extend([
            Value::from(after.internal_id.clone()),
            Value::from(before.last_sample_ms),
            Value::from(after.last_sample_ms),
            Value::from(count(after.last_attendees)),
            Value::from(after.attendee_ms),
            Value::from(count(after.peak_attendees)),
            Value::from(count(after.peak_video)),
            Value::from(after.recording),
        ]);
        let cells: Vec<String> = [
            "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BOOLEAN",
        ]
        .iter()
        .enumerate()
        .map(|(offset, sql_type)| {
            if postgres {
                format!("CAST(${} AS {sql_type})", first + offset + 1)
            } else {
                "?".to_owned()
            }
        })
        .collect();
        rows.push(format!("({})", cells.join(", ")));
    }
    // VALUES columns are column1.. on both databases.
    let same_sample = if postgres {
        "IS NOT DISTINCT FROM"
    } else {
        "IS"
    };
    let sql = format!(
        "UPDATE run_usage SET last_sample_ms = v.column3, last_attendees = v.column4, \
         attendee_ms = v.column5, peak_attendees = v.column6, peak_video = v.column7, \
         recording = v.column8 FROM (VALUES {}) AS v \
         WHERE run_usage.internal_id = v.column1 AND run_usage.ended_ms IS NULL \
         AND run_usage.last_sample_ms {same_sample} v.column2",
        rows.join(", ")
    );
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// Runs whose samples go in one statement at most (see `write_samples`).
const SAMPLES_PER_STATEMENT: usize = 64;

/// Raises each tenant's peak on a day to the sum of its running runs' last
/// samples. (`{n}`: the backend's placeholders.)
const RAISE_PEAKS: &str = "INSERT INTO tenant_peaks (tenant, day, peak) \
     SELECT tenant, {1}, SUM(last_attendees) FROM run_usage \
     WHERE summarized = {false} AND ended_ms IS NULL AND last_sample_ms IS NOT NULL \
     GROUP BY tenant \
     ON CONFLICT (tenant, day) DO UPDATE SET peak = CASE WHEN excluded.peak > tenant_peaks.peak \
     THEN excluded.peak ELSE tenant_peaks.peak END";

impl Store {
    async fn record_usage_sql(
        &self,
        samples: &[UsageSample<'_>],
        day: &str,
    ) -> Result<(), SqlError> {
        // No transaction: every write is guarded by what it read (see
        // `write_samples`), and a read-then-write transaction on SQLite
        // fails at once when another connection writes meanwhile.
        let txn = &self.db;
        let mut by_run: HashMap<&str, Vec<&UsageSample<'_>>> = HashMap::new();
        for sample in samples {
            by_run.entry(sample.internal_id).or_default().push(sample);
        }
        let ids: Vec<&str> = by_run.keys().copied().collect();
        for chunk in ids.chunks(crate::shapes::IN_LIST_CHUNK) {
            let rows = run_usage::Entity::find()
                .filter(run_usage::Column::InternalId.is_in(crate::shapes::padded(chunk).copied()))
                .filter(run_usage::Column::EndedMs.is_null())
                .all(txn)
                .await?;
            let mut changed = Vec::with_capacity(rows.len());
            for row in rows {
                let Some(mut state) = state_of(row) else {
                    continue;
                };
                let before = state.clone();
                for sample in by_run
                    .get(before.internal_id.as_str())
                    .into_iter()
                    .flatten()
                {
                    state.add(sample);
                }
                if state != before {
                    changed.push((before, state));
                }
            }
            for batch in changed.chunks(SAMPLES_PER_STATEMENT) {
                write_samples(txn, batch).await?;
            }
        }
        let placeholder = if self.is_postgres() { "$1" } else { "?" };
        let falsy = if self.is_postgres() { "false" } else { "0" };
        let sql = RAISE_PEAKS
            .replace("{1}", placeholder)
            .replace("{false}", falsy);
        let backend = self.db.get_database_backend();
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, [day.into()]))
            .await?;
        Ok(())
    }

    async fn runs_to_summarize_sql(&self, limit: u64) -> Result<Vec<RunUsageState>, SqlError> {
        Ok(run_usage::Entity::find()
            .filter(run_usage::Column::Summarized.eq(false))
            .filter(run_usage::Column::EndedMs.is_not_null())
            .order_by_asc(run_usage::Column::EndedMs)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(state_of)
            .collect())
    }

    async fn recording_usage_sql(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<RecordingUsage>, SqlError> {
        use switchboard_migrations::entities::recording;
        let mut query = recording::Entity::find()
            .select_only()
            .column(recording::Column::Tenant)
            .column(recording::Column::StartTimeMs)
            .column(recording::Column::Formats);
        if let Some(tenant) = &filter.tenant {
            query = query.filter(recording::Column::Tenant.eq(tenant.0.as_str()));
        }
        if let Some(from) = filter.from_ms {
            query = query.filter(recording::Column::StartTimeMs.gte(from));
        }
        if let Some(to) = filter.to_ms {
            query = query.filter(recording::Column::StartTimeMs.lt(to));
        }
        let rows: Vec<(String, i64, String)> = query.into_tuple().all(&self.db).await?;
        Ok(rows
            .into_iter()
            .map(|(tenant, started_ms, formats)| RecordingUsage {
                tenant: TenantId(tenant),
                started_ms,
                bytes: serde_json::from_str::<Vec<switchboard_domain::recording::RecordingFormat>>(
                    &formats,
                )
                .map(|formats| formats.iter().map(|format| format.bytes).sum())
                .unwrap_or(0),
            })
            .collect())
    }

    async fn usage_runs_sql(&self, filter: &UsageFilter) -> Result<Vec<UsageRunRecord>, SqlError> {
        let mut query = usage_run::Entity::find().order_by_asc(usage_run::Column::StartedMs);
        if let Some(tenant) = &filter.tenant {
            query = query.filter(usage_run::Column::Tenant.eq(tenant.0.as_str()));
        }
        if let Some(from) = filter.from_ms {
            query = query.filter(usage_run::Column::StartedMs.gte(from));
        }
        if let Some(to) = filter.to_ms {
            query = query.filter(usage_run::Column::StartedMs.lt(to));
        }
        Ok(query
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|row| {
                Some(UsageRunRecord {
                    usage: serde_json::from_str(&row.usage).ok()?,
                    tenant: TenantId(row.tenant),
                    meeting_id: row.meeting_id,
                })
            })
            .collect())
    }

    async fn tenant_peaks_sql(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<(TenantId, String, u64)>, SqlError> {
        let mut query = tenant_peak::Entity::find().order_by_asc(tenant_peak::Column::Day);
        if let Some(tenant) = &filter.tenant {
            query = query.filter(tenant_peak::Column::Tenant.eq(tenant.0.as_str()));
        }
        if let Some(from) = filter.from_ms {
            query = query.filter(tenant_peak::Column::Day.gte(day_of(from)));
        }
        if let Some(to) = filter.to_ms {
            query = query.filter(tenant_peak::Column::Day.lte(day_of(to - 1)));
        }
        Ok(query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                (
                    TenantId(row.tenant),
                    row.day,
                    u64::try_from(row.peak).unwrap_or(0),
                )
            })
            .collect())
    }
}

#[async_trait]
impl UsageLedger for Store {
    async fn record_usage(&self, samples: &[UsageSample<'_>], day: &str) -> Result<(), StoreError> {
        Ok(self.record_usage_sql(samples, day).await?)
    }

    async fn runs_to_summarize(&self, limit: u64) -> Result<Vec<RunUsageState>, StoreError> {
        Ok(self.runs_to_summarize_sql(limit).await?)
    }

    async fn close_usage(&self, internal_id: &str) -> Result<(), StoreError> {
        use sea_orm::sea_query::Expr;
        run_usage::Entity::update_many()
            .col_expr(run_usage::Column::Summarized, Expr::value(true))
            .filter(run_usage::Column::InternalId.eq(internal_id))
            .exec(&self.db)
            .await
            .map_err(SqlError::from)?;
        Ok(())
    }

    async fn prune_usage(&self, before_ms: i64) -> Result<u64, StoreError> {
        let deleted = run_usage::Entity::delete_many()
            .filter(run_usage::Column::Summarized.eq(true))
            .filter(run_usage::Column::EndedMs.lt(before_ms))
            .exec(&self.db)
            .await
            .map_err(SqlError::from)?;
        Ok(deleted.rows_affected)
    }

    async fn usage_runs(&self, filter: &UsageFilter) -> Result<Vec<UsageRunRecord>, StoreError> {
        Ok(self.usage_runs_sql(filter).await?)
    }

    async fn recording_usage(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<RecordingUsage>, StoreError> {
        Ok(self.recording_usage_sql(filter).await?)
    }

    async fn tenant_peaks(
        &self,
        filter: &UsageFilter,
    ) -> Result<Vec<(TenantId, String, u64)>, StoreError> {
        Ok(self.tenant_peaks_sql(filter).await?)
    }
}
