//! Switchboard's SQL adapter: it implements the application's storage ports
//! (`switchboard_app::ports`) on the schema of `switchboard-migrations`: the
//! event store (append with an expected version, projections updated in the
//! same transaction, replay), the read models (servers, meetings, tenants,
//! tokens, recordings), the polled picture and settings. The same code runs
//! on SQLite (the embedded default) and PostgreSQL.

mod announce;
mod archive;
mod breakout_column;
mod buckets;
mod bulk_log;
mod callbacks;
mod connect_url;
mod listen;
mod listing_rows;
mod maintenance;
mod one_statement;
mod outbox;
mod placements;
mod ports;
mod projection;
mod reads;
mod rebuild;
mod recordings;
mod rows;
mod samples;
mod series;
mod shapes;
mod snapshots;
mod store;
#[cfg(feature = "test-support")]
pub mod test_support;
mod usage;
mod usage_rows;

pub use announce::CHANGE_CHANNEL;
pub use archive::{ArchiveError, ArchiveHeader, ArchiveReport, ArchiveSummary, verify_archive};
pub use listen::ChangeListener;
pub use rebuild::{RebuildMode, RebuildPhase, RebuildProgress, RebuildReport, TableDifference};
pub use store::{METRIC_STATEMENTS, SQLITE_CACHE_KIB, SqlError, Store};
