//! Switchboard's background work and its adapter to BBB servers: the signed
//! HTTP client for backends, reading BBB's XML answers, and the health poller
//! that keeps each server's online state and observed load current.

pub mod backend;
pub mod bbb_xml;
pub mod health;
pub mod jobs;
pub mod node_metrics;
pub mod reconcile;
