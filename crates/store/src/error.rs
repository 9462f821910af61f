//! The one error type of the store, shared by every backend.

use std::path::PathBuf;

use uuid::Uuid;

use crate::{ActualRevision, ExpectedRevision, StreamName};

/// Result of a store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a store. Every variant that rejects input
/// is raised before anything is written: a failed append stores nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stream is not at the revision the caller expected: someone else
    /// appended first. Reload the stream, decide again, and retry.
    #[error("stream {stream} was expected to be at {expected} but is at {actual}")]
    WrongExpectedRevision {
        stream: StreamName,
        expected: ExpectedRevision,
        actual: ActualRevision,
    },

    /// The stream name breaks the naming rules. Fix the caller.
    #[error("invalid stream name {name:?}: {reason}")]
    InvalidStreamName { name: String, reason: &'static str },

    /// The event type breaks the naming rules. Fix the caller.
    #[error("invalid event type {event_type:?}: {reason}")]
    InvalidEventType {
        event_type: String,
        reason: &'static str,
    },

    /// A metadata field is not acceptable (for example an actor with control
    /// characters). Fix the caller.
    #[error("invalid metadata on event {event_id}: {reason}")]
    InvalidMetadata { event_id: Uuid, reason: &'static str },

    /// One event is larger than the store accepts. Store large content
    /// elsewhere (media go by reference) or raise the configured limit.
    #[error("event {event_id} is {size} bytes, over the limit of {limit} bytes")]
    EventTooLarge {
        event_id: Uuid,
        size: usize,
        limit: usize,
    },

    /// An append must carry at least one event.
    #[error("an append must carry at least one event")]
    EmptyBatch,

    /// Too many events in one append. Split the batch.
    #[error("a batch of {count} events is over the limit of {limit}")]
    BatchTooLarge { count: usize, limit: usize },

    /// The same event id appears twice in one batch. Give each event its own id.
    #[error("event id {event_id} appears more than once in the batch")]
    DuplicateIdInBatch { event_id: Uuid },

    /// The event id is already stored, but somewhere else or with other
    /// content. Event ids must never be reused; a genuine retry sends exactly
    /// the same events to the same stream.
    #[error("event id {event_id} is already stored with {reason}")]
    EventIdConflict { event_id: Uuid, reason: String },

    /// The database was written by a newer version of Palaver. Upgrade
    /// Palaver; the file was not touched.
    #[error(
        "{path} has schema version {found}, newer than the {supported} this Palaver knows; upgrade Palaver (the file was not touched)"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// The file is not a Palaver event store. Point Palaver at another data
    /// folder; the file was not touched.
    #[error("{path} is not a Palaver event store (application id {found:#x})")]
    NotAnEventStore { path: PathBuf, found: i64 },

    /// Another process already has this store open. Stop it, or use another
    /// data folder: only one process may write an embedded store.
    #[error("{path} is in use by another process")]
    Locked { path: PathBuf },

    /// The store has been closed. Open it again.
    #[error("the event store is closed")]
    Closed,

    /// Stored data could not be read back: the database is damaged. Run
    /// `palaver store verify` and restore from a backup.
    #[error("stored data is corrupt at {location}: {reason}")]
    Corrupt { location: String, reason: String },

    /// The database or the disk failed. The operation may or may not be
    /// retried safely; appends are, thanks to event ids.
    #[error("storage backend failed: {message}")]
    Backend {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// A backend failure with its cause.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Whether retrying the same call may succeed without changing it.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Backend { .. })
    }
}
