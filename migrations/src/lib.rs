//! Switchboard's database adapter: sea-orm migrations and entities, the SQL
//! event store (append with an expected version, projections updated in the
//! same transaction) and the projection reads routing uses. The same code runs
//! on SQLite (the embedded default) and PostgreSQL.

mod commands;
pub mod entities;
mod listen;
pub mod migration;
mod projection;
mod reads;
mod recordings;
mod samples;
mod store;
pub mod test_support;

pub use commands::{CommandError, Executed};
pub use listen::ChangeListener;
pub use reads::{MeetingRecord, RoutingSnapshot, ServerRecord, TokenRecord};
pub use recordings::{MeetingRunRecord, RecordingPage, RecordingQuery, RecordingRecord};
pub use samples::{CHANGE_CHANNEL, MeetingListing, ServerSample};
pub use store::{AppendOutcome, EventFilter, Store, StoreError, StoredEvent};
