//! Switchboard's background work and its adapters to BBB servers: the apalis
//! job plumbing (polling ticks, recording imports), the signed HTTP client
//! that implements the application's backend port, the HTTP client of
//! recording-ready callbacks, and the metrics scraper.
//! What a job does is a use case of `switchboard-app`.

pub mod backend;
pub mod callbacks;
mod capped;
pub mod jobs;
pub mod metrics_scraper;
pub mod outbound;
