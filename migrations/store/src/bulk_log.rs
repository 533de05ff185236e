//! Writing a whole log at once (a generated one for `replay --bench`):
//! rows in bulk at the positions given, without touching the projections
//! (a replay builds them).

use crate::store::{SqlError, Store};
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use switchboard_app::records::StoredEvent;
use switchboard_domain::events::CURRENT_SCHEMA_VERSION;
use switchboard_migrations::entities::event;

impl Store {
    /// Appends `events` as they are (positions, versions and times
    /// included) to a log that holds nothing from their first position on.
    /// The projections are left alone: run a replay after.
    pub async fn write_log(&self, events: &[StoredEvent]) -> Result<(), SqlError> {
        let mut rows = Vec::with_capacity(events.len());
        for stored in events {
            let corrupt = |err: serde_json::Error| SqlError::Corrupt {
                position: stored.position,
                reason: err.to_string(),
            };
            rows.push(event::Model {
                position: stored.position,
                stream: stored.stream.to_string(),
                version: stored.version,
                event_type: stored.event.type_name().to_owned(),
                schema_version: CURRENT_SCHEMA_VERSION,
                payload: stored.event.to_payload().map_err(corrupt)?.to_string(),
                metadata: serde_json::to_string(&stored.metadata).map_err(corrupt)?,
                recorded_at: stored.recorded_at,
                actor: Some(stored.metadata.actor.clone()),
            });
        }
        let txn = self.db.begin().await?;
        crate::rebuild::insert_rows::<event::Entity, _>(&txn, "events", rows).await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            // Positions were given: the sequence continues after them.
            txn.execute_unprepared(
                "SELECT setval(pg_get_serial_sequence('events', 'position'), \
                 (SELECT MAX(position) FROM events))",
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
