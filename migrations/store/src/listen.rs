//! Hearing of other instances' writes at once (PostgreSQL LISTEN/NOTIFY), so
//! caches are invalidated within milliseconds instead of at the next tick.

use crate::announce::CHANGE_CHANNEL;
use crate::store::{SqlError, Store};
use sea_orm::sqlx::postgres::PgListener;

/// A subscription to change announcements.
pub struct ChangeListener {
    listener: PgListener,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeListener").finish_non_exhaustive()
    }
}

impl ChangeListener {
    /// Waits for the next announcement and returns what changed (`events` or
    /// `samples`). A lost connection is re-established; announcements made
    /// while it was down are lost, so callers keep a periodic refresh too.
    pub async fn next(&mut self) -> Result<String, SqlError> {
        let notification = self
            .listener
            .recv()
            .await
            .map_err(|err| SqlError::Listen(err.to_string()))?;
        Ok(notification.payload().to_owned())
    }
}

impl Store {
    /// Subscribes to other instances' changes; `None` on SQLite, where one
    /// process owns the database.
    pub async fn listen_for_changes(&self) -> Result<Option<ChangeListener>, SqlError> {
        if !self.is_postgres() {
            return Ok(None);
        }
        let pool = self.db.get_postgres_connection_pool();
        let mut listener = PgListener::connect_with(pool)
            .await
            .map_err(|err| SqlError::Listen(err.to_string()))?;
        listener
            .listen(CHANGE_CHANNEL)
            .await
            .map_err(|err| SqlError::Listen(err.to_string()))?;
        Ok(Some(ChangeListener { listener }))
    }
}
