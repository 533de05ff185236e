//! Schema migrations, applied in order at start and by `switchboard migrate`.

use sea_orm_migration::prelude::*;

mod m0001_event_log;
mod m0002_tokens;
mod m0003_polled_picture;
mod m0004_tenants;
mod m0005_server_metrics;
mod m0006_recordings;
mod m0007_recording_counts;
mod m0008_pending_placements;
mod m0009_callbacks;
mod m0010_hooks;
mod m0011_callbacks_finished;
mod m0012_pending_callbacks;
mod m0013_node_agents;
mod m0014_voice_bridges;
mod m0015_usage;
mod m0016_log_snapshots;
mod m0017_server_series;
mod m0018_recording_buckets;
mod m0019_recording_breakouts;
mod m0020_meetings_running_index;
mod m0021_sample_listing_digest;

/// Every migration of the schema.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_event_log::Migration),
            Box::new(m0002_tokens::Migration),
            Box::new(m0003_polled_picture::Migration),
            Box::new(m0004_tenants::Migration),
            Box::new(m0005_server_metrics::Migration),
            Box::new(m0006_recordings::Migration),
            Box::new(m0007_recording_counts::Migration),
            Box::new(m0008_pending_placements::Migration),
            Box::new(m0009_callbacks::Migration),
            Box::new(m0010_hooks::Migration),
            Box::new(m0011_callbacks_finished::Migration),
            Box::new(m0012_pending_callbacks::Migration),
            Box::new(m0013_node_agents::Migration),
            Box::new(m0014_voice_bridges::Migration),
            Box::new(m0015_usage::Migration),
            Box::new(m0016_log_snapshots::Migration),
            Box::new(m0017_server_series::Migration),
            Box::new(m0018_recording_buckets::Migration),
            Box::new(m0019_recording_breakouts::Migration),
            Box::new(m0020_meetings_running_index::Migration),
            Box::new(m0021_sample_listing_digest::Migration),
        ]
    }
}
