//! Switchboard's HTTP side and binary: the BBB API facade under
//! `/bigbluebutton/api`, health endpoints, the in-memory routing view, the
//! demo mode and the CLI.

pub mod admin;
pub mod app;
pub mod bbb;
pub mod cli;
pub mod config;
pub mod demo;
pub mod directory;
pub mod locks;
pub mod metrics;
