//! sea-orm entities of the event log and the projections.

pub mod agent_heartbeat;
pub mod archive;
pub mod callback;
pub mod event;
pub mod hook;
pub mod log_snapshot;
pub mod meeting;
pub mod meeting_listing;
pub mod meeting_run;
pub mod pending_placement;
pub mod recording;
pub mod recording_bucket;
pub mod recording_count;
pub mod recording_meta;
pub mod run_usage;
pub mod server;
pub mod server_sample;
pub mod server_series;
pub mod setting;
pub mod stream_snapshot;
pub mod tenant;
pub mod tenant_peak;
pub mod token;
pub mod usage_run;
pub mod used_token;
pub mod voice_bridge;
