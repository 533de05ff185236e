//! Switchboard's application layer, below the HTTP side (`switchboard-api`)
//! and the background work (`switchboard-workers`): the ports the use cases
//! need (event store, read models, BBB backend, clock), the one command
//! executor, the read models' record types, and the use cases (meetings,
//! admin, health, recordings). The SQL adapter (`switchboard-store`)
//! implements the storage ports.

pub mod admin;
pub mod agent;
pub mod backend;
pub mod callbacks;
pub mod clock;
pub mod error;
pub mod executor;
pub mod health;
pub mod lifecycle;
pub mod locks;
pub mod meetings;
pub mod memory;
pub mod ports;
pub mod recordings;
pub mod records;
pub mod routing;
pub mod stats;
#[cfg(test)]
mod testing;
pub mod usage;

pub use error::StoreError;
pub use executor::{CommandError, CommandExecutor, EventBus, Executed};
