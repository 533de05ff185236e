//! sea-orm entities of the event log and the projections.

pub mod event;
pub mod meeting;
pub mod server;
pub mod setting;
pub mod token;
