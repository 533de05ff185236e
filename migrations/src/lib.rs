//! Switchboard's database schema: the sea-orm migrations (applied at start
//! and by `switchboard migrate`) and the entities of the tables they create.
//! The event store and projections that use them are `switchboard-store`
//! (`migrations/store`).

pub mod entities;
pub mod migration;

pub use migration::Migrator;
