//! Read models: the rows the projections keep, as the use cases read them.

pub mod callbacks;
pub mod events;
pub mod meetings;
pub mod recordings;
pub mod samples;
pub mod series;
pub mod servers;
pub mod usage;

pub use callbacks::{
    AttemptOutcome, CallbackFilter, CallbackKind, CallbackRecord, CallbackSigning, CallbackState,
    HookRecord, NewCallback,
};
pub use events::{
    AppendExtras, AppendOutcome, EventFilter, LogSnapshot, StoredEvent, StreamHistory,
    StreamSnapshot,
};
pub use meetings::{
    MeetingForCreate, MeetingRecord, PendingPlacement, RoutingSnapshot, VoiceBridgeClaim,
};
pub use recordings::{MeetingRunRecord, RecordingPage, RecordingQuery, RecordingRecord};
pub use samples::{
    METRICS_STEP_PERCENT, MeetingListing, ServerSample, digest_written_ahead, listing_digest,
};
pub use series::{SERIES_STEP_MS, SeriesPoint, minute_of};
pub use servers::{ServerRecord, TokenRecord};
pub use usage::{RecordingUsage, RunUsageState, UsageFilter, UsageRunRecord, UsageSample, day_of};
