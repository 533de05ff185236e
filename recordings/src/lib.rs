//! Switchboard's recording pipeline on disk and in object stores: BBB `metadata.xml`, safe
//! extraction of untrusted recording archives, the spool directory they
//! arrive in, the published/unpublished tree that serves playback (on disk or in an
//! S3-compatible object store), and
//! protected (signed, expiring) playback links.
//!
//! This crate does IO but holds no database and speaks no HTTP: the caller
//! (the import worker, the playback routes) records events and answers
//! requests.

pub mod archive;
pub mod layout;
pub mod location;
pub mod metadata;
pub mod migrate;
pub mod object_tree;
pub mod protected;
pub mod spool;
pub mod store;

pub use archive::{ArchiveError, ArchiveLimits, ExtractedRecording};
pub use layout::{Layout, LayoutError, Visibility};
pub use location::{S3Settings, StoreLocation};
pub use metadata::{FormatDir, MetadataError, PlaybackFormat, PreviewImage, RecordingMetadata};
pub use object_tree::ObjectTree;
pub use protected::{PlaybackKey, ProtectedError, UsedTokens};
pub use spool::{Spool, SpoolConfig, SpoolError};
pub use store::{PlaybackFile, RecordingStore};
