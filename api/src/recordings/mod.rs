//! Recordings on the HTTP side: playback serving with protected links
//! ([`playback`]), the upload endpoint ([`upload`]) and the `<recording>`
//! element of getRecordings ([`listing`]). The use cases (the recording
//! tree, imports, callbacks, caption tracks) are
//! `switchboard_app::recordings`; the spool's import jobs run in
//! `switchboard-workers`.

pub mod listing;
pub mod objects;
pub mod playback;
pub mod upload;

use crate::config::RecordingSettings;
use std::sync::Arc;
use switchboard_app::recordings::RecordingService;

/// What the playback and upload routes hold: the recording use cases, and
/// the HTTP side's own recording settings (how playback files are served,
/// caching, the largest upload).
#[derive(Debug)]
pub struct RecordingRoutes {
    /// The recording use cases.
    pub service: Arc<RecordingService>,
    /// The `[recordings]` settings.
    pub settings: RecordingSettings,
}
