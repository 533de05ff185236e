//! One maintenance at a time: `replay` (and `--check`) and `events
//! archive` read the whole log and swap or remove what others read, so two
//! of them must never overlap. PostgreSQL: an advisory lock held by an open
//! transaction (gone with the connection if the process dies). SQLite: an
//! exclusive lock on a file beside the database (gone with the process).

use crate::store::{SqlError, Store};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement, TransactionTrait};

/// The advisory lock's key ("SWBM").
const LOCK_KEY: i64 = 0x5357_424D;

/// Held while a maintenance runs.
#[derive(Debug)]
pub(crate) enum MaintenanceLock {
    /// PostgreSQL: the transaction holding the advisory lock.
    Postgres(DatabaseTransaction),
    /// SQLite: the locked file.
    Sqlite(std::fs::File),
    /// An in-memory SQLite database: one process, nothing to share.
    None,
}

impl MaintenanceLock {
    /// Lets the next maintenance run.
    pub(crate) async fn release(self) {
        match self {
            Self::Postgres(txn) => {
                let _ = txn.rollback().await;
            }
            Self::Sqlite(file) => {
                let _ = file.unlock();
            }
            Self::None => {}
        }
    }
}

fn busy() -> SqlError {
    SqlError::Database(DbErr::Custom(
        "another `switchboard replay` or `events archive` is running on this database; \
         run this one after it"
            .into(),
    ))
}

impl Store {
    /// Takes the maintenance lock, or says another maintenance holds it.
    pub(crate) async fn maintenance_lock(&self) -> Result<MaintenanceLock, SqlError> {
        if self.is_postgres() {
            let txn = self.db.begin().await?;
            let row = txn
                .query_one_raw(Statement::from_string(
                    txn.get_database_backend(),
                    format!("SELECT pg_try_advisory_xact_lock({LOCK_KEY}) AS locked"),
                ))
                .await?;
            let locked = row
                .map(|row| row.try_get::<bool>("", "locked"))
                .transpose()?
                .unwrap_or(false);
            return if locked {
                Ok(MaintenanceLock::Postgres(txn))
            } else {
                Err(busy())
            };
        }
        let Some(database) = &self.sqlite_file else {
            return Ok(MaintenanceLock::None);
        };
        let mut name = database.clone().into_os_string();
        name.push(".maintenance.lock");
        let path = std::path::PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| {
                SqlError::Database(DbErr::Custom(format!("{}: {err}", path.display())))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(MaintenanceLock::Sqlite(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(busy()),
            Err(std::fs::TryLockError::Error(err)) => Err(SqlError::Database(DbErr::Custom(
                format!("{}: {err}", path.display()),
            ))),
        }
    }
}
