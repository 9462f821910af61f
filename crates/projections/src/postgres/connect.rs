//! Connecting to the read models' schema: the connection code of
//! [`palaver_store_postgres::connect`] (URL, TLS, schema-name rules,
//! session setup), with what only read models need: names short enough
//! for a rebuild's scratch schema beside them, the session settings of
//! each role, and errors in this crate's terms.

use palaver_store_postgres::connect::{self as shared, Session};
use tokio_postgres::Client;

use crate::{Error, Result, error::DatabaseError};

/// Longest schema name, in bytes: a rebuild's scratch schema adds
/// `_rebuild_` and 8 hex digits, and PostgreSQL cuts names at 63 bytes.
pub const MAX_SCHEMA_LEN: usize = 46;

/// The setting schema names come from, for errors.
const SCHEMA_FIELD: &str = "read_models_schema";

/// A read-model schema name: [`shared::SchemaName`]'s rules, at most
/// [`MAX_SCHEMA_LEN`] bytes (or a scratch schema made from such a name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SchemaName(shared::SchemaName);

impl SchemaName {
    pub(crate) fn new(name: &str) -> Result<Self> {
        shared::SchemaName::new(name, MAX_SCHEMA_LEN, SCHEMA_FIELD)
            .map(SchemaName)
            .map_err(from_shared)
    }

    /// A fresh scratch schema beside this one, for a rebuild.
    pub(crate) fn scratch(&self) -> SchemaName {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let name = format!("{}_rebuild_{suffix}", self.0);
        SchemaName(
            shared::SchemaName::new(&name, shared::MAX_IDENTIFIER_LEN, SCHEMA_FIELD)
                .expect("a valid name of at most 46 bytes, `_rebuild_` and 8 hex digits are a valid name"),
        )
    }

    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The schema as a quoted SQL identifier.
    pub(crate) fn quoted(&self) -> String {
        self.0.quoted()
    }

    /// The second key of this schema's advisory lock: read models in
    /// different schemas do not wait for each other.
    pub(crate) fn lock_key(&self) -> i32 {
        self.0.lock_key()
    }
}

impl std::fmt::Display for SchemaName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a session is for, which decides its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Applies projections (live, or into a rebuild's scratch schema):
    /// - `synchronous_commit = off`: a commit returns before its WAL is
    ///   flushed. A crash of the server may lose the last commits, whole
    ///   (rows and checkpoint together); the projector does them again.
    ///   Read models can always be rebuilt from the events.
    /// - Each statement is planned once per connection (a generic plan)
    ///   and never with a sequential scan where an index serves: every
    ///   statement a projector emits finds its rows by a key. Planning
    ///   each execution again (a custom plan) cost two thirds of a
    ///   replay's time; a generic plan made while a table was small would
    ///   scan it whole, and keep doing so as it grows, until the next
    ///   ANALYZE.
    Writer,
    /// Runs queries, read-only (as SQLite readers open the file): each
    /// execution is planned for its parameters (they filter and order in
    /// more ways than a key lookup).
    Reader,
    /// Creates or drops a schema.
    Admin,
}

impl Role {
    /// Shown as `palaver-read-<role>-<schema>` in `pg_stat_activity`.
    fn session(self) -> Session<'static> {
        let (role, settings) = match self {
            Role::Writer => (
                "read-writer",
                "SET synchronous_commit TO off; SET plan_cache_mode TO force_generic_plan; \
                 SET enable_seqscan TO off;",
            ),
            Role::Reader => (
                "read-reader",
                "SET plan_cache_mode TO force_custom_plan; SET default_transaction_read_only TO on;",
            ),
            Role::Admin => ("read-admin", ""),
        };
        Session { role, settings }
    }
}

/// Connects to one database, in one read-model schema.
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    inner: shared::Connector,
    /// The same schema as `inner`'s, as this crate knows it.
    schema: SchemaName,
}

impl Connector {
    pub(crate) fn new(url: &str, schema: &str) -> Result<Self> {
        let schema = SchemaName::new(schema)?;
        let inner = shared::Connector::new(url, schema.0.clone()).map_err(from_shared)?;
        Ok(Connector { inner, schema })
    }

    /// The same server, another schema.
    pub(crate) fn in_schema(&self, schema: SchemaName) -> Connector {
        Connector {
            inner: self.inner.in_schema(schema.0.clone()),
            schema,
        }
    }

    pub(crate) fn schema(&self) -> &SchemaName {
        &self.schema
    }

    pub(crate) fn location(&self) -> &str {
        self.inner.location()
    }

    /// A connection for `role`, driven by a task of its own until the
    /// client is dropped, in the schema (which need not exist yet: names
    /// are looked up when used), with the role's settings.
    pub(crate) async fn connect(&self, role: Role) -> Result<Client> {
        self.inner.connect(role.session()).await.map_err(from_shared)
    }
}

/// A connection error in this crate's terms: a bad setting is an invalid
/// argument, anything the server or the network did a database failure.
fn from_shared(error: shared::Error) -> Error {
    match error {
        shared::Error::Url(reason) | shared::Error::Tls(reason) => Error::InvalidArgument {
            field: "postgres_url",
            reason,
        },
        shared::Error::SchemaName { field, name, reason } => Error::InvalidArgument {
            field,
            reason: format!("{name:?}: {reason}"),
        },
        shared::Error::Postgres { what, source } => Error::Database {
            what,
            source: DatabaseError::Postgres(source),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naming rules themselves are tested where they live
    /// (`palaver_store_postgres::connect`); here: this limit, this field.
    #[test]
    fn schema_names() {
        assert!(SchemaName::new(&"a".repeat(MAX_SCHEMA_LEN)).is_ok());
        for bad in ["Palaver", &"a".repeat(MAX_SCHEMA_LEN + 1)] {
            assert!(
                matches!(
                    SchemaName::new(bad),
                    Err(Error::InvalidArgument {
                        field: "read_models_schema",
                        ..
                    })
                ),
                "{bad:?} was accepted"
            );
        }
        let longest = SchemaName::new(&"a".repeat(MAX_SCHEMA_LEN)).unwrap();
        let scratch = longest.scratch();
        assert!(scratch.as_str().len() <= 63, "{scratch}");
        assert!(
            SchemaName::new(scratch.as_str()).is_err(),
            "too long to be configured"
        );
        assert_ne!(longest.scratch(), scratch);
    }

    #[test]
    fn bad_settings_are_invalid_arguments() {
        for url in [
            "postgres://h/db?sslmode=allow",
            "postgres://h/db?sslmode=verify-ca",
        ] {
            match Connector::new(url, "palaver_read") {
                Err(Error::InvalidArgument {
                    field: "postgres_url",
                    reason,
                }) => assert!(reason.contains("sslmode"), "{url}: {reason}"),
                other => panic!("{url}: expected a refusal, got {other:?}"),
            }
        }
        let connector = Connector::new("postgres://u:secret@h/db?sslmode=disable", "palaver_read").unwrap();
        assert_eq!(
            connector.location(),
            "PostgreSQL schema \"palaver_read\" in database db on h"
        );
        let scratch = connector.in_schema(connector.schema().scratch());
        assert!(scratch.location().contains(&scratch.schema().quoted()));
        assert!(!format!("{scratch:?}").contains("secret"));
    }
}
