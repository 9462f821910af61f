//! Palaver's background workers: the processes that react to events rather
//! than to callers.
//!
//! Each worker is a [`runner::Process`]: it follows `$all` (filtered to the
//! event types it cares about) from a durable [`checkpoint`], handles each
//! event at least once, and relies on the application's idempotent commands
//! so that handling twice is harmless. Where several Palaver instances share
//! a store, a [`lease`] makes each worker run in exactly one of them.
//!
//! - [`runner`]: the loop every worker shares (catch-up, concurrency,
//!   retries with backoff, checkpoints that never pass unfinished work).
//! - [`checkpoint`]: where workers remember how far they got.
//! - [`lease`]: who runs a worker when several instances could.
//! - [`postgres`]: leases and fenced checkpoints in PostgreSQL, for several
//!   instances over one database.
//! - [`intake`]: stored WhatsApp webhooks into commands; parked payloads.
//! - [`delivery`]: queued messages to the Cloud API, at most once each.
//! - [`timers`]: durable timers scheduled from events and fired when due.
//! - [`campaigns`]: campaign recipients into conversations; their statuses
//!   back into the campaign.

pub mod campaigns;
pub mod checkpoint;
pub mod delivery;
pub mod intake;
pub mod lease;
pub mod postgres;
pub mod runner;
pub mod timers;

pub use checkpoint::{Checkpoints, SqliteCheckpoints};
pub use lease::{LeaseProvider, LocalLeases};
pub use postgres::PgCoordination;
pub use runner::{Process, ProcessError, RunOptions, Runtime, run};

/// Why a worker stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The checkpoint file could not be read or written. Check the data
    /// folder's disk and permissions.
    #[error("worker checkpoints: {0}")]
    Checkpoint(#[from] rusqlite::Error),
    /// The event store failed. The worker retries; persistent failures need
    /// an operator.
    #[error(transparent)]
    Store(#[from] palaver_store::Error),
    /// The lease backend failed. The worker asks again after a pause.
    #[error("lease: {0}")]
    Lease(String),
    /// A handler panicked (a bug). Its event stays unhandled and the worker
    /// restarts after a pause; the log has the panic.
    #[error("a handler of worker `{0}` panicked")]
    HandlerPanicked(&'static str),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
