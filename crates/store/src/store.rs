//! The [`EventStore`] contract: what every backend guarantees.

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{
    AllFilter, AppendResult, Direction, ExpectedRevision, NewEvent, Position, ReadFrom, RecordedEvent,
    Result, StreamName, subscription::Subscription,
};

/// An append-only store of events in streams, with one global order.
///
/// Every backend (in-memory, SQLite, PostgreSQL, KurrentDB) keeps these
/// promises, and the contract test suite checks each of them:
///
/// - **Expected revisions.** An append states what it expects of the
///   stream; if the stream is elsewhere the append fails with
///   [`crate::Error::WrongExpectedRevision`] (carrying stream, expected and
///   actual) and writes nothing.
/// - **Atomic batches.** An append stores all of its events or none, at
///   consecutive revisions and consecutive global positions.
/// - **Idempotent retries.** Appending events whose ids are already stored,
///   at the same place and with the same content, stores nothing and returns
///   the first append's result. Reusing an id for anything else fails with
///   [`crate::Error::EventIdConflict`].
/// - **One global order.** Every event gets a global position. Reading
///   `$all` or subscribing yields every event exactly once in position
///   order, and never skips an event that commits late: a reader that has
///   seen position `p` will never later find an event below `p`.
/// - **Gap-free subscriptions.** A subscription catches up from its
///   position and then goes live, with no gap and no duplicate at the
///   hand-over.
/// - **Durability.** Once `append` returns `Ok`, the events survive a crash
///   of the process (and, where the backend says so, of the machine).
/// - **Tamper evidence.** Each event carries a SHA-256 hash chained to the
///   previous event of its stream; [`crate::verify::verify`] checks them.
/// - **Clear refusals.** Bad names, oversized events, empty or oversized
///   batches and reused ids are refused with a typed error before anything
///   is written.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if the stream is where `expected` says.
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult>;

    /// Reads up to `limit` events of one stream, starting at `from`
    /// (included) in `direction`. A stream with no events reads as empty.
    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// The revision of the stream's last event, or `None` if it has none.
    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>>;

    /// Reads up to `limit` events of `$all` that pass `filter`, in position
    /// order, starting after `after`.
    async fn read_all(&self, after: Position, filter: &AllFilter, limit: usize)
    -> Result<Vec<RecordedEvent>>;

    /// The position of the last committed event ([`Position::START`] if none).
    async fn head(&self) -> Result<Position>;

    /// Watches the head: the value changes after each commit, once every
    /// event up to it can be read.
    fn watch_head(&self) -> watch::Receiver<Position>;

    /// Every event after `after` that passes `filter`, first those already
    /// stored, then live as they commit. The stream ends only with an error
    /// (after which it yields nothing) or when the store shuts down.
    fn subscribe_all(&self, after: Position, filter: AllFilter) -> Subscription;
}
