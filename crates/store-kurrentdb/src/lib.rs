//! Palaver's event store on KurrentDB (formerly EventStoreDB), through the
//! official `kurrentdb` gRPC client: for installations that keep their
//! events in a KurrentDB cluster, shared by several Palaver processes.
//!
//! [`KurrentDbStore`] keeps the [`palaver_store::EventStore`] contract with
//! these differences (decided in `docs/adr/0006-kurrentdb-store.md`):
//!
//! - **Positions are not consecutive.** A position is the event's commit
//!   position in KurrentDB's log, a byte offset: increasing in `$all` order,
//!   unique, but with gaps. Only positions this store handed out may be
//!   passed back to it.
//! - **Reused ids are found in the target stream only.** KurrentDB has no
//!   index of event ids; an id reused in another stream is stored again.
//!   Retries are recognised by reading the stream's tail before appending.
//! - **Durability** is KurrentDB's: an append is acknowledged once the
//!   leader (and, in a cluster, a quorum) has written it.
//!
//! Layout:
//!
//! - `connect.rs`: connection strings, [`KurrentDbOptions`], [`ConnectError`].
//! - `store.rs`: [`KurrentDbStore`] and the append algorithm.
//! - `codec.rs`: one event's layout (payload as data; metadata and hash as
//!   JSON custom metadata).
//! - `namespace.rs`: the optional stream-name prefix that keeps
//!   installations sharing one KurrentDB apart; system events are hidden.
//! - `position.rs`, `filter.rs`, `retry.rs`, `error.rs`: the mappings, each
//!   tested without a server.
//! - `connection.rs`: replaces the client when its connection task dies.
//! - `subscription.rs`: native catch-up subscriptions that ride out
//!   outages, and the task behind `watch_head`.
//!
//! The contract suite runs against a real server when
//! `PALAVER_TEST_KURRENTDB_URL` is set (`tests/kurrentdb/contract_kurrentdb.rs`).

mod codec;
mod connect;
mod connection;
mod error;
mod filter;
mod namespace;
mod position;
mod retry;
mod store;
mod subscription;

pub use connect::{ConnectError, KurrentDbOptions};
pub use store::KurrentDbStore;
