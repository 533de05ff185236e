//! Switchboard's database adapter: sea-orm migrations and entities, the SQL
//! event store (append with an expected version, projections updated in the
//! same transaction) and the projection reads routing uses. The same code runs
//! on SQLite (the embedded default) and PostgreSQL.

mod announce;
pub mod entities;
mod listen;
pub mod migration;
mod ports;
mod projection;
mod reads;
mod recordings;
mod samples;
mod store;
pub mod test_support;

pub use announce::CHANGE_CHANNEL;
pub use listen::ChangeListener;
pub use store::{SqlError, Store};
