//! The error every storage port answers with.

use thiserror::Error;

/// What went wrong in a storage port.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another writer appended to the stream first (optimistic concurrency).
    #[error("stream `{stream}` changed concurrently: expected version {expected}")]
    Conflict {
        /// The stream.
        stream: String,
        /// The version the writer expected.
        expected: i64,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// Listening for other instances' changes failed.
    #[error("cannot listen for changes: {0}")]
    Listen(String),
    /// A stored payload could not be read.
    #[error("event at position {position} could not be read: {reason}")]
    Corrupt {
        /// Its position.
        position: i64,
        /// Why.
        reason: String,
    },
}
