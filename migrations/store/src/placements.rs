//! Pending placements (see [`Placements`]): where a create was about to go,
//! kept until the run's `MeetingCreated` is projected.

use crate::store::{SqlError, Store};
use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement};
use switchboard_app::StoreError;
use switchboard_app::ports::Placements;
use switchboard_app::records::{MeetingForCreate, PendingPlacement, VoiceBridgeClaim};
use switchboard_domain::ids::{MeetingId, ServerId, TenantId};
use switchboard_migrations::entities::{meeting, pending_placement, voice_bridge};

fn to_placement(row: pending_placement::Model) -> Option<PendingPlacement> {
    Some(PendingPlacement {
        tenant: TenantId(row.tenant),
        meeting_id: MeetingId::parse(&row.meeting_id).ok()?,
        server_id: row.server_id.parse().ok()?,
        at_ms: row.at_ms,
        recording_ready_url: row.recording_ready_url,
        callbacks: row
            .callbacks
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok()),
    })
}

/// The values of [`CLAIM_VOICE_BRIDGE`]'s `{1}`..`{5}`.
fn claim_values(claim: &VoiceBridgeClaim, stale_before_ms: i64) -> [sea_orm::Value; 5] {
    [
        claim.number.clone().into(),
        claim.tenant.0.clone().into(),
        claim.meeting_id.as_str().to_owned().into(),
        claim.at_ms.into(),
        stale_before_ms.into(),
    ]
}

/// A voice bridge row as its claim (`None`: a meetingID no longer valid).
fn claim_of(row: voice_bridge::Model) -> Option<VoiceBridgeClaim> {
    Some(VoiceBridgeClaim {
        meeting_id: MeetingId::parse(&row.meeting_id).ok()?,
        number: row.number,
        tenant: TenantId(row.tenant),
        at_ms: row.claimed_at_ms,
    })
}

/// A placement as its row.
fn placement_row(placement: &PendingPlacement) -> pending_placement::Model {
    pending_placement::Model {
        tenant: placement.tenant.0.clone(),
        meeting_id: placement.meeting_id.as_str().to_owned(),
        server_id: placement.server_id.to_string(),
        at_ms: placement.at_ms,
        recording_ready_url: placement.recording_ready_url.clone(),
        callbacks: placement
            .callbacks
            .as_ref()
            .and_then(|callbacks| serde_json::to_string(callbacks).ok()),
    }
}

impl Store {
    /// `template` with its `{1}`..`{count}` as the backend's placeholders
    /// (`$n` on PostgreSQL, `?` in order on SQLite).
    fn with_placeholders(&self, template: &str, count: usize) -> String {
        let mut sql = template.to_owned();
        for n in 1..=count {
            let placeholder = if self.is_postgres() {
                format!("${n}")
            } else {
                "?".to_owned()
            };
            sql = sql.replace(&format!("{{{n}}}"), &placeholder);
        }
        sql
    }

    async fn pending_placement_sql(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<PendingPlacement>, SqlError> {
        Ok(pending_placement::Entity::find_by_id((
            tenant.0.clone(),
            meeting_id.as_str().to_owned(),
        ))
        .one(&self.db)
        .await?
        .and_then(to_placement))
    }

    /// The pending placement and the held voice bridge in one statement.
    async fn pending_placement_and_voice_bridge_sql(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<(Option<PendingPlacement>, Option<String>), SqlError> {
        let sql = self.with_placeholders(PENDING_AND_VOICE_BRIDGE, 4);
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                sql,
                [
                    tenant.0.clone().into(),
                    meeting_id.as_str().to_owned().into(),
                    tenant.0.clone().into(),
                    meeting_id.as_str().to_owned().into(),
                ],
            ))
            .await?;
        let Some(row) = row else {
            return Ok((None, None));
        };
        let held: Option<String> = row.try_get("", "held")?;
        Ok((pending_in(&row, tenant, meeting_id)?, held))
    }

    async fn meeting_for_create_sql(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<MeetingForCreate, SqlError> {
        let sql = self.with_placeholders(MEETING_PENDING_AND_VOICE_BRIDGE, 6);
        let (tenant_value, meeting_value) = (tenant.0.clone(), meeting_id.as_str().to_owned());
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                sql,
                [
                    tenant_value.clone().into(),
                    meeting_value.clone().into(),
                    tenant_value.clone().into(),
                    meeting_value.clone().into(),
                    tenant_value.into(),
                    meeting_value.into(),
                ],
            ))
            .await?;
        let Some(row) = row else {
            return Ok(MeetingForCreate::default());
        };
        let meeting = match row.try_get::<Option<String>>("", "m_internal_id")? {
            Some(internal_id) => crate::rows::meeting_record(meeting::Model {
                tenant: tenant.0.clone(),
                meeting_id: meeting_id.as_str().to_owned(),
                name: row.try_get("", "m_name")?,
                internal_id,
                server_id: row.try_get("", "m_server_id")?,
                create_time_ms: row.try_get("", "m_create_time_ms")?,
                ended_at_ms: row.try_get("", "m_ended_at_ms")?,
                running: row.try_get("", "m_running")?,
                version: row.try_get("", "m_version")?,
                position: row.try_get("", "m_position")?,
            }),
            None => None,
        };
        Ok(MeetingForCreate {
            meeting,
            pending: pending_in(&row, tenant, meeting_id)?,
            held_voice_bridge: row.try_get("", "held")?,
        })
    }

    async fn put_pending_placement_sql(
        &self,
        placement: &PendingPlacement,
    ) -> Result<(), SqlError> {
        let row: pending_placement::ActiveModel = placement_row(placement).into();
        pending_placement::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    pending_placement::Column::Tenant,
                    pending_placement::Column::MeetingId,
                ])
                .update_columns([
                    pending_placement::Column::ServerId,
                    pending_placement::Column::AtMs,
                    pending_placement::Column::RecordingReadyUrl,
                    pending_placement::Column::Callbacks,
                ])
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    async fn pending_placements_on_sql(
        &self,
        server: ServerId,
    ) -> Result<Vec<PendingPlacement>, SqlError> {
        Ok(pending_placement::Entity::find()
            .filter(pending_placement::Column::ServerId.eq(server.to_string()))
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(to_placement)
            .collect())
    }
}

/// A meeting's pending placement (its columns null when there is none) and
/// the number it holds, newest claim first. (`{n}` stands for the backend's
/// placeholders.)
const PENDING_AND_VOICE_BRIDGE: &str = "SELECT p.server_id, p.at_ms, p.recording_ready_url, p.callbacks, \
     (SELECT v.number FROM voice_bridges v WHERE v.tenant = {1} AND v.meeting_id = {2} \
     ORDER BY v.claimed_at_ms DESC LIMIT 1) AS held \
     FROM (SELECT 1 AS one) k LEFT JOIN pending_placements p \
     ON p.tenant = {3} AND p.meeting_id = {4}";

/// The pending placement in a row of [`PENDING_AND_VOICE_BRIDGE`] or
/// [`MEETING_PENDING_AND_VOICE_BRIDGE`] (`None` when its columns are null).
fn pending_in(
    row: &sea_orm::QueryResult,
    tenant: &TenantId,
    meeting_id: &MeetingId,
) -> Result<Option<PendingPlacement>, sea_orm::DbErr> {
    let server_id: Option<String> = row.try_get("", "server_id")?;
    Ok(match server_id {
        Some(server_id) => to_placement(pending_placement::Model {
            tenant: tenant.0.clone(),
            meeting_id: meeting_id.as_str().to_owned(),
            server_id,
            at_ms: row.try_get("", "at_ms")?,
            recording_ready_url: row.try_get("", "recording_ready_url")?,
            callbacks: row.try_get("", "callbacks")?,
        }),
        None => None,
    })
}

/// [`PENDING_AND_VOICE_BRIDGE`] with the meeting's row (its columns null when
/// there is none).
const MEETING_PENDING_AND_VOICE_BRIDGE: &str = "SELECT m.name AS m_name, \
     m.internal_id AS m_internal_id, m.server_id AS m_server_id, \
     m.create_time_ms AS m_create_time_ms, m.ended_at_ms AS m_ended_at_ms, \
     m.running AS m_running, m.version AS m_version, m.position AS m_position, \
     p.server_id, p.at_ms, p.recording_ready_url, p.callbacks, \
     (SELECT v.number FROM voice_bridges v WHERE v.tenant = {1} AND v.meeting_id = {2} \
     ORDER BY v.claimed_at_ms DESC LIMIT 1) AS held \
     FROM (SELECT 1 AS one) k \
     LEFT JOIN meetings m ON m.tenant = {3} AND m.meeting_id = {4} \
     LEFT JOIN pending_placements p ON p.tenant = {5} AND p.meeting_id = {6}";

/// The claim as one upsert: inserted when the number is free, taken over
/// when it is the meeting's own or its holder stopped running and claimed
/// it before the stale bound; `RETURNING` says whether this claim won.
/// (`{n}` stands for the backend's placeholders.)
const CLAIM_VOICE_BRIDGE: &str = "INSERT INTO voice_bridges (number, tenant, meeting_id, claimed_at_ms) \
     VALUES ({1}, {2}, {3}, {4}) \
     ON CONFLICT (number) DO UPDATE SET tenant = excluded.tenant, \
     meeting_id = excluded.meeting_id, claimed_at_ms = excluded.claimed_at_ms \
     WHERE (voice_bridges.tenant = excluded.tenant AND voice_bridges.meeting_id = excluded.meeting_id) \
     OR (voice_bridges.claimed_at_ms < {5} AND NOT EXISTS (SELECT 1 FROM meetings m \
     WHERE m.tenant = voice_bridges.tenant AND m.meeting_id = voice_bridges.meeting_id AND m.running)) \
     RETURNING number";

/// [`CLAIM_VOICE_BRIDGE`] with the pending placement upserted in the same
/// statement (PostgreSQL's data-modifying `WITH`), committed without
/// waiting for its WAL to reach the disk: `quick` turns
/// `synchronous_commit` off for this statement's own transaction (the
/// claim inserts from it, so it is always evaluated). The note guards
/// against Switchboard stopping between a server's create and the run's
/// append; the database keeps it from the commit on. Until the WAL writer
/// flushes it (within three times `wal_writer_delay`, 600 ms by default)
/// a crash of the database's machine, or a failover to a standby it was
/// not sent to yet, could lose it, with the voice bridge claim and with
/// the create it guards. It was one of a create's two flushes (issue 22).
const NOTE_PLACEMENT: &str = "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)), \
     note AS (INSERT INTO pending_placements \
     (tenant, meeting_id, server_id, at_ms, recording_ready_url, callbacks) \
     VALUES ({6}, {7}, {8}, {9}, {10}, {11}) \
     ON CONFLICT (tenant, meeting_id) DO UPDATE SET server_id = excluded.server_id, \
     at_ms = excluded.at_ms, recording_ready_url = excluded.recording_ready_url, \
     callbacks = excluded.callbacks) ";

impl Store {
    /// The claim, with the placement noted in the same statement on
    /// PostgreSQL (SQLite has no data-modifying `WITH`: two statements).
    async fn claim_voice_bridge_noting_sql(
        &self,
        claim: &VoiceBridgeClaim,
        stale_before_ms: i64,
        placement: &PendingPlacement,
    ) -> Result<bool, SqlError> {
        if !self.is_postgres() {
            self.put_pending_placement_sql(placement).await?;
            return self.claim_voice_bridge_sql(claim, stale_before_ms).await;
        }
        let claim_from_quick = CLAIM_VOICE_BRIDGE.replacen(
            "VALUES ({1}, {2}, {3}, {4})",
            "SELECT {1}, {2}, {3}, {4} FROM quick",
            1,
        );
        let sql = self.with_placeholders(&format!("{NOTE_PLACEMENT}{claim_from_quick}"), 11);
        let row = placement_row(placement);
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                sql,
                claim_values(claim, stale_before_ms).into_iter().chain([
                    row.tenant.into(),
                    row.meeting_id.into(),
                    row.server_id.into(),
                    row.at_ms.into(),
                    row.recording_ready_url.into(),
                    row.callbacks.into(),
                ]),
            ))
            .await?;
        Ok(!rows.is_empty())
    }

    async fn claim_voice_bridge_sql(
        &self,
        claim: &VoiceBridgeClaim,
        stale_before_ms: i64,
    ) -> Result<bool, SqlError> {
        let backend = self.db.get_database_backend();
        let sql = self.with_placeholders(CLAIM_VOICE_BRIDGE, 5);
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                sql,
                claim_values(claim, stale_before_ms),
            ))
            .await?;
        Ok(!rows.is_empty())
    }

    async fn voice_bridge_of_sql(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<String>, SqlError> {
        Ok(voice_bridge::Entity::find()
            .filter(voice_bridge::Column::Tenant.eq(tenant.0.clone()))
            .filter(voice_bridge::Column::MeetingId.eq(meeting_id.as_str()))
            .order_by_desc(voice_bridge::Column::ClaimedAtMs)
            .one(&self.db)
            .await?
            .map(|row| row.number))
    }

    async fn voice_bridge_holder_sql(
        &self,
        number: &str,
    ) -> Result<Option<VoiceBridgeClaim>, SqlError> {
        Ok(voice_bridge::Entity::find_by_id(number.to_owned())
            .one(&self.db)
            .await?
            .and_then(claim_of))
    }
}

impl Store {
    async fn voice_bridge_holders_sql(
        &self,
        numbers: &[&str],
    ) -> Result<Vec<VoiceBridgeClaim>, SqlError> {
        let mut held = Vec::new();
        for chunk in numbers.chunks(crate::shapes::IN_LIST_CHUNK) {
            let rows = voice_bridge::Entity::find()
                .filter(
                    voice_bridge::Column::Number
                        .is_in(crate::shapes::padded(chunk).map(|number| (*number).to_owned())),
                )
                .all(&self.db)
                .await?;
            held.extend(rows.into_iter().filter_map(claim_of));
        }
        Ok(held)
    }
}

#[async_trait]
impl Placements for Store {
    async fn pending_placement(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<PendingPlacement>, StoreError> {
        Ok(Store::pending_placement_sql(self, tenant, meeting_id).await?)
    }

    async fn pending_placement_and_voice_bridge(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<(Option<PendingPlacement>, Option<String>), StoreError> {
        Ok(Store::pending_placement_and_voice_bridge_sql(self, tenant, meeting_id).await?)
    }

    async fn meeting_for_create(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<MeetingForCreate, StoreError> {
        Ok(Store::meeting_for_create_sql(self, tenant, meeting_id).await?)
    }

    async fn put_pending_placement(&self, placement: &PendingPlacement) -> Result<(), StoreError> {
        Ok(Store::put_pending_placement_sql(self, placement).await?)
    }

    async fn pending_placements_on(
        &self,
        server: ServerId,
    ) -> Result<Vec<PendingPlacement>, StoreError> {
        Ok(Store::pending_placements_on_sql(self, server).await?)
    }

    async fn claim_voice_bridge(
        &self,
        claim: &VoiceBridgeClaim,
        stale_before_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(Store::claim_voice_bridge_sql(self, claim, stale_before_ms).await?)
    }

    async fn claim_voice_bridge_noting(
        &self,
        claim: &VoiceBridgeClaim,
        stale_before_ms: i64,
        placement: &PendingPlacement,
    ) -> Result<bool, StoreError> {
        Ok(Store::claim_voice_bridge_noting_sql(self, claim, stale_before_ms, placement).await?)
    }

    async fn voice_bridge_of(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<String>, StoreError> {
        Ok(Store::voice_bridge_of_sql(self, tenant, meeting_id).await?)
    }

    async fn voice_bridge_holder(
        &self,
        number: &str,
    ) -> Result<Option<VoiceBridgeClaim>, StoreError> {
        Ok(Store::voice_bridge_holder_sql(self, number).await?)
    }

    async fn voice_bridge_holders(
        &self,
        numbers: &[&str],
    ) -> Result<Vec<VoiceBridgeClaim>, StoreError> {
        Ok(Store::voice_bridge_holders_sql(self, numbers).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbBackend, TransactionTrait};

    /// The plan PostgreSQL keeps for a prepared statement planned once for
    /// all values (a generic plan), on a new database whose tables were
    /// never analysed: what a pooled connection runs after its first few
    /// executions.
    async fn generic_plan(store: &Store, sql: &str, values: &[&str]) -> String {
        let txn = store.db.begin().await.unwrap();
        let types = vec!["text"; values.len()].join(", ");
        txn.execute_unprepared(&format!("PREPARE probe ({types}) AS {sql}"))
            .await
            .unwrap();
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan")
            .await
            .unwrap();
        let arguments = values
            .iter()
            .map(|value| format!("'{value}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = txn
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("EXPLAIN EXECUTE probe ({arguments})"),
            ))
            .await
            .unwrap();
        txn.rollback().await.unwrap();
        rows.iter()
            .map(|row| row.try_get_by_index::<String>(0).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn a_creates_read_finds_the_meeting_by_its_key_in_a_plan_made_on_an_empty_table() {
        let store = Store::connect(&crate::test_support::fresh_postgres().await)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let sql = store.with_placeholders(MEETING_PENDING_AND_VOICE_BRIDGE, 6);
        let plan = generic_plan(&store, &sql, &["", "room", "", "room", "", "room"]).await;
        assert!(
            plan.contains("Index Scan using meetings_pkey on meetings"),
            "the meeting is looked up by its primary key, not by an index \
             that reads every running meeting of the tenant:\n{plan}"
        );
    }
}
