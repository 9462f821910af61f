//! What a PostgreSQL store is opened with, and what its schema's name must
//! leave room for.

use std::time::Duration;

use palaver_store::Limits;

use crate::connect::{self, SchemaName};

/// How to open a [`crate::PostgresStore`] (and [`crate::PgLeases`]).
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// The PostgreSQL schema that holds the store's tables, created if
    /// missing. One schema is one store: tests use a fresh one each, and
    /// operators may keep several stores in one database. Lower-case ASCII
    /// letters, digits and `_`, not starting with a digit or `pg_`, at most
    /// [`MAX_SCHEMA_LEN`] bytes. Default `palaver`.
    pub schema: String,
    /// Limits every append is checked against.
    pub limits: Limits,
    /// Connections for reads, used in turn; each pipelines its queries.
    /// Opened on first use. Default 4.
    pub read_connections: usize,
    /// How often the head is read from the database, so that a lost
    /// notification or a dropped listening connection only delays live
    /// subscribers. Default 500 ms.
    pub poll_interval: Duration,
    /// Whether to LISTEN for other instances' commits. Turn off behind a
    /// pooler that cannot LISTEN (PgBouncer in transaction mode): live
    /// subscribers then follow other instances by polling alone.
    pub notifications: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: "palaver".to_owned(),
            limits: Limits::default(),
            read_connections: 4,
            poll_interval: Duration::from_millis(500),
            notifications: true,
        }
    }
}

impl PostgresOptions {
    /// The defaults, in schema `schema`.
    pub fn in_schema(schema: impl Into<String>) -> Self {
        PostgresOptions {
            schema: schema.into(),
            ..PostgresOptions::default()
        }
    }
}

/// Longest schema name, in bytes: the notification channel
/// `palaver_events_<schema>` must fit PostgreSQL's 63-byte identifiers.
pub const MAX_SCHEMA_LEN: usize = 48;

/// `name` checked as a store's schema (see [`SchemaName`] for the rules).
pub(crate) fn schema_name(name: &str) -> connect::Result<SchemaName> {
    SchemaName::new(name, MAX_SCHEMA_LEN, "PostgreSQL schema name")
}

/// The channel appends NOTIFY on, for the store in `schema`.
pub(crate) fn channel(schema: &SchemaName) -> String {
    format!("palaver_events_{schema}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for good in ["palaver", "p_1", "_x", &"a".repeat(MAX_SCHEMA_LEN)] {
            assert!(schema_name(good).is_ok(), "{good:?} was refused");
        }
        for bad in ["", "Palaver", "pg_temp", &"a".repeat(MAX_SCHEMA_LEN + 1)] {
            let error = palaver_store::Error::from(schema_name(bad).unwrap_err());
            assert!(
                matches!(&error, palaver_store::Error::Backend { message, .. } if message.contains("schema name")),
                "{bad:?}: {error}"
            );
        }
        let longest = schema_name(&"a".repeat(MAX_SCHEMA_LEN)).unwrap();
        assert!(channel(&longest).len() <= connect::MAX_IDENTIFIER_LEN);
    }
}
