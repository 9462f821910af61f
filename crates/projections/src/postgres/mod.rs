//! The read models in a PostgreSQL schema, for deployments that keep
//! everything in PostgreSQL (several instances, analytics reading the
//! tables with their own tools). The tables, their columns and the
//! checkpoint rule are the SQLite file's; only the DDL's types differ
//! (`BIGINT`, text compared byte by byte).
//!
//! Projectors are not written twice: they emit the same statements for
//! both backends, and the placeholders are translated here (`?1` to `$1`,
//! once per distinct statement and connection, when it is prepared). Why,
//! and what that asks of the SQL, is in
//! `docs/adr/0007-postgres-read-models.md`.
//!
//! - [`writer`]: [`PgReadModelDb`], the write side: one transaction per
//!   batch moves the checkpoints with the rows, its statements pipelined;
//!   a version change drops and recreates a projector's tables; a rebuild
//!   is swapped in from a scratch schema.
//! - [`reader`]: the read side behind [`crate::queries::ReadModels`], a few
//!   pooled, pipelining clients.
//! - [`connect`]: URL, schema names, session settings.
//! - [`placeholders`]: `?N` to `$N`; [`value`]: [`crate::sql::Value`] to
//!   and from PostgreSQL's types.

pub(crate) mod connect;
pub(crate) mod placeholders;
pub(crate) mod reader;
pub(crate) mod value;
pub mod writer;

pub use connect::MAX_SCHEMA_LEN;
pub use writer::PgReadModelDb;

/// The schema read models go in unless configured otherwise.
pub const DEFAULT_SCHEMA: &str = "palaver_read";
