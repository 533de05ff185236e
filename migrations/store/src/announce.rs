//! Announcing changes to other instances: PostgreSQL `NOTIFY` on one
//! channel, sent with the transaction that made the change.

use sea_orm::{ConnectionTrait, DbErr};

/// The PostgreSQL channel on which appends and sample writes are announced,
/// so other instances refresh their views at once.
pub const CHANGE_CHANNEL: &str = "switchboard_changes";

/// Tells other instances (PostgreSQL LISTEN) that something changed; the
/// notification is delivered when the transaction commits.
pub(crate) async fn announce_change<C: ConnectionTrait>(
    db: &C,
    postgres: bool,
    what: &str,
) -> Result<(), DbErr> {
    if postgres {
        db.execute_unprepared(&format!("NOTIFY {CHANGE_CHANNEL}, '{what}'"))
            .await?;
    }
    Ok(())
}
