//! Switchboard's IO-free core: identifiers, commands, events and aggregates
//! (`decide` / `evolve`), server selection and load, and the BBB checksum and
//! parameter rules. Nothing here touches the network, the disk or the clock
//! directly; adapters live in the other crates.

pub mod aggregate;
pub mod bbb;
pub mod events;
pub mod hook;
pub mod ids;
pub mod load;
pub mod meeting;
pub mod node_metrics;
pub mod ports;
pub mod recording;
pub mod recording_ids;
pub mod selection;
pub mod server;
pub mod server_metrics;
pub mod tenant;
pub mod token;
