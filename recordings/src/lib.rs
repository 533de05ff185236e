//! Switchboard's recording pipeline on disk: BBB `metadata.xml`, safe
//! extraction of untrusted recording archives, the spool directory they
//! arrive in, the published/unpublished tree that serves playback, and
//! protected (signed, expiring) playback links.
//!
//! This crate does IO but holds no database and speaks no HTTP: the caller
//! (the import worker, the playback routes) records events and answers
//! requests.

pub mod archive;
pub mod layout;
pub mod metadata;
pub mod protected;
pub mod spool;

pub use archive::{ArchiveError, ArchiveLimits, ExtractedRecording};
pub use layout::{Layout, LayoutError, Visibility};
pub use metadata::{FormatDir, MetadataError, PlaybackFormat, PreviewImage, RecordingMetadata};
pub use protected::{PlaybackKey, ProtectedError, UsedTokens};
pub use spool::{Spool, SpoolConfig, SpoolError};
