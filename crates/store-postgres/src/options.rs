//! What a PostgreSQL store is opened with, and the rules for schema names.

use std::time::Duration;

use palaver_store::{Error, Limits, Result};

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

/// A schema name that passed [`SchemaName::new`]: safe to put in SQL text
/// (quoted) and in a channel name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SchemaName(String);

impl SchemaName {
    pub(crate) fn new(name: &str) -> Result<Self> {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > MAX_SCHEMA_LEN {
            Some("it is longer than 48 bytes")
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            Some("only lower-case ASCII letters, digits and _ are allowed")
        } else if name.as_bytes()[0].is_ascii_digit() {
            Some("it starts with a digit")
        } else if name.starts_with("pg_") {
            Some("names starting with pg_ are reserved by PostgreSQL")
        } else {
            None
        };
        match reason {
            // No variant of the store's error fits a bad setting; it is
            // reported as a backend failure with the reason spelled out.
            Some(reason) => Err(Error::Backend {
                message: format!("invalid PostgreSQL schema name {name:?}: {reason}"),
                source: None,
            }),
            None => Ok(SchemaName(name.to_owned())),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The schema as a quoted SQL identifier.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The channel appends NOTIFY on.
    pub(crate) fn channel(&self) -> String {
        format!("palaver_events_{}", self.0)
    }

    /// The second key of this schema's advisory locks (FNV-1a of the name):
    /// stores in different schemas do not wait for each other, and a
    /// collision only makes two stores share a lock.
    pub(crate) fn lock_key(&self) -> i32 {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in self.0.bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        hash as i32
    }
}

impl std::fmt::Display for SchemaName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for good in ["palaver", "p_1", "_x", &"a".repeat(MAX_SCHEMA_LEN)] {
            assert!(SchemaName::new(good).is_ok(), "{good:?} was refused");
        }
        for bad in [
            "",
            "Palaver",
            "with space",
            "quote\"",
            "1abc",
            "pg_temp",
            "dash-ed",
            &"a".repeat(MAX_SCHEMA_LEN + 1),
        ] {
            assert!(
                matches!(SchemaName::new(bad), Err(Error::Backend { .. })),
                "{bad:?} was accepted"
            );
        }
        let name = SchemaName::new("palaver").unwrap();
        assert!(name.channel().len() <= 63);
        assert_eq!(name.lock_key(), SchemaName::new("palaver").unwrap().lock_key());
        assert_ne!(name.lock_key(), SchemaName::new("palaver2").unwrap().lock_key());
    }
}
