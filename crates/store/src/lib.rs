//! Palaver's event store: every WhatsApp action is an event appended to a
//! stream, and this crate keeps them.
//!
//! - [`EventStore`] (in [`store`]) is the contract every backend keeps;
//!   its documentation lists the guarantees.
//! - [`event`]: what goes in ([`NewEvent`]) and comes out ([`RecordedEvent`]).
//! - [`names`]: what stream names and event types may look like.
//! - [`limits`]: sizes an append is checked against.
//! - [`append`]: the append algorithm (retries, expected revisions, hash
//!   chain) written once for the backends that run it in a transaction.
//! - [`hash`] and [`verify`]: tamper evidence and its audit.
//! - [`subscription`]: catch-up-then-live subscriptions to `$all`.
//! - [`proto`]: conversion to the `palaver.v1.RecordedEvent` message.
//! - Backends: [`memory::MemoryStore`] for tests, [`sqlite::SqliteStore`],
//!   the embedded default.
//!
//! The store knows nothing of the domain: payloads are opaque bytes.

pub mod append;
mod error;
pub mod event;
pub mod hash;
pub mod limits;
pub mod memory;
pub mod names;
pub mod proto;
pub mod sqlite;
pub mod store;
pub mod subscription;
pub mod verify;

pub use error::{Error, Result};
pub use event::{
    ActualRevision, AllFilter, AppendResult, Direction, ExpectedRevision, Metadata, NewEvent, Position,
    ReadFrom, RecordedEvent,
};
pub use limits::Limits;
pub use memory::MemoryStore;
pub use names::StreamName;
pub use sqlite::SqliteStore;
pub use store::EventStore;
pub use subscription::Subscription;
