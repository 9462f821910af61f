//! Palaver's PostgreSQL event store, for running several Palaver instances
//! against one database, and the leases that let exactly one of them run
//! each singleton job.
//!
//! - [`PostgresStore`] (in [`store`]) keeps the
//!   [`palaver_store::EventStore`] contract: the same append algorithm as
//!   every backend ([`palaver_store::append`]), run by one writer task per
//!   process that commits waiting appends in groups ([`writer`]) under a
//!   database lock, so `$all` has one gap-free order across processes.
//! - [`live`]: how each instance learns of every commit (LISTEN/NOTIFY,
//!   with polling as the fallback).
//! - [`schema`]: versioned migrations in `migrations/`, applied at open.
//! - [`leases`]: [`PgLeases`], time-limited, fenced leases on the
//!   database's clock.
//! - [`PostgresOptions`] (in [`options`]): schema, limits, connections.
//! - [`connect`]: the URL, TLS (`sslmode`), schema names and session
//!   setup, public because the read models in `palaver-projections`
//!   connect to the same database the same way.
//!
//! Every query is a file in `sql/`. The design is argued in
//! `docs/adr/0005-postgres-global-order.md` and described for operators in
//! `docs/store-postgres.md`.

pub mod connect;
pub mod leases;
pub mod live;
pub mod options;
mod readers;
mod rows;
pub mod schema;
pub mod store;
pub mod writer;

pub use leases::{Error as LeaseError, Lease, PgLeases};
pub use options::PostgresOptions;
pub use store::PostgresStore;

/// First key of the advisory lock that serialises appends to a schema (the
/// second is the schema's): "PALV".
pub(crate) const LOCK_CLASS_APPEND: i32 = 0x5041_4C56;
/// First key of the advisory lock that serialises migrations: "PALM".
pub(crate) const LOCK_CLASS_MIGRATE: i32 = 0x5041_4C4D;
