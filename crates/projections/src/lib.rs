//! Read models folded from Palaver's events (the query side of CQRS), kept
//! as plain SQL tables that analytics consumers can read with any SQL tool:
//! in a SQLite file (the embedded default) or in a PostgreSQL schema, with
//! the same tables and the same exactly-once rule.
//!
//! - [`projector`]: the [`Projector`] trait; a projector is pure and turns
//!   an event into [`sql::Statement`]s, written once for both backends.
//! - [`database`]: a read-model SQLite file; folds batches of events and
//!   moves each projector's checkpoint in the same transaction (exactly
//!   once across crashes), digests tables, swaps rebuilt tables in.
//! - [`postgres`]: the same on PostgreSQL ([`PgReadModelDb`]), and the
//!   PostgreSQL side of [`queries`].
//! - [`runner`]: [`Projections`], the live loop following `$all` into
//!   either backend, with read-your-writes waits, lag and rebuild.
//! - [`models`]: Palaver's read models (inbox, timeline, window, contacts);
//!   [`queries`] reads them, on either backend; [`cache`] keeps first
//!   inbox pages between commits.
//! - [`rebuild`]: replay of history into a fresh file, to a point in time
//!   or position if asked (audits).
//! - [`unsynced`]: why a read-model file need not sync its commits, and
//!   how one left torn by an OS restart is found and thrown away.

pub mod cache;
pub mod database;
mod error;
pub mod models;
pub mod postgres;
pub mod projector;
pub mod queries;
pub mod rebuild;
pub mod runner;
pub mod sql;
pub mod unsynced;

pub use cache::{CacheStats, Changes};
pub use database::ReadModelDb;
pub use error::{DatabaseError, Error, Result};
pub use postgres::PgReadModelDb;
pub use projector::{ProjectError, Projector};
pub use runner::{Lag, PROJECTIONS_LEASE, Projections, ReadModelWriter, SharedLease, Status};
