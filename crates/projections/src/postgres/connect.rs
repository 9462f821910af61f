//! Opening connections to the read models' schema: the URL parsed once,
//! every session put in the schema and named after its role, schema names
//! checked before they go into SQL text.

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls, config::Host};

use crate::{Error, Result, error::db};

/// Longest schema name, in bytes: a rebuild's scratch schema adds
/// `_rebuild_` and 8 hex digits, and PostgreSQL cuts names at 63 bytes.
pub const MAX_SCHEMA_LEN: usize = 46;

/// A schema name that passed [`SchemaName::new`]: safe to put in SQL text
/// (quoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SchemaName(String);

impl SchemaName {
    /// Lower-case ASCII letters, digits and `_`, not starting with a digit
    /// or `pg_`, at most [`MAX_SCHEMA_LEN`] bytes.
    pub(crate) fn new(name: &str) -> Result<Self> {
        let reason = if name.is_empty() {
            Some("it is empty".to_owned())
        } else if name.len() > MAX_SCHEMA_LEN {
            Some(format!("it is longer than {MAX_SCHEMA_LEN} bytes"))
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            Some("only lower-case ASCII letters, digits and _ are allowed".to_owned())
        } else if name.as_bytes()[0].is_ascii_digit() {
            Some("it starts with a digit".to_owned())
        } else if name.starts_with("pg_") {
            Some("names starting with pg_ are reserved by PostgreSQL".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidArgument {
                field: "read_models_schema",
                reason: format!("{name:?}: {reason}"),
            }),
            None => Ok(SchemaName(name.to_owned())),
        }
    }

    /// A fresh scratch schema beside this one, for a rebuild.
    pub(crate) fn scratch(&self) -> SchemaName {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        SchemaName(format!("{}_rebuild_{suffix}", self.0))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The schema as a quoted SQL identifier.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The second key of this schema's advisory lock (FNV-1a of the name):
    /// read models in different schemas do not wait for each other.
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
    fn name(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
            Role::Admin => "admin",
        }
    }

    fn settings(self) -> &'static str {
        match self {
            Role::Writer => {
                "SET synchronous_commit TO off; SET plan_cache_mode TO force_generic_plan; \
                 SET enable_seqscan TO off;"
            }
            Role::Reader => {
                "SET plan_cache_mode TO force_custom_plan; SET default_transaction_read_only TO on;"
            }
            Role::Admin => "",
        }
    }
}

/// Connects to one database, in one schema.
#[derive(Clone)]
pub(crate) struct Connector {
    config: Config,
    schema: SchemaName,
    /// "PostgreSQL schema "x" in database d on host": for messages, without
    /// the password.
    location: String,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: show only where it points.
        f.debug_struct("Connector")
            .field("location", &self.location)
            .finish()
    }
}

impl Connector {
    pub(crate) fn new(url: &str, schema: &str) -> Result<Self> {
        let mut config: Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| Error::InvalidArgument {
                field: "postgres_url",
                reason: e.to_string(),
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // Finds a dead peer in about a minute rather than the OS's two hours.
        config.keepalives_idle(Duration::from_secs(30));
        let schema = SchemaName::new(schema)?;
        let host = config
            .get_hosts()
            .first()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".to_owned());
        let location = format!(
            "PostgreSQL schema {} in database {} on {host}",
            schema.quoted(),
            config.get_dbname().unwrap_or("(default)")
        );
        Ok(Connector {
            config,
            schema,
            location,
        })
    }

    /// The same server, another schema.
    pub(crate) fn in_schema(&self, schema: SchemaName) -> Connector {
        let location = self.location.replacen(&self.schema.quoted(), &schema.quoted(), 1);
        Connector {
            config: self.config.clone(),
            schema,
            location,
        }
    }

    pub(crate) fn schema(&self) -> &SchemaName {
        &self.schema
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// A connection for `role` (shown as `palaver-read-<role>-<schema>` in
    /// `pg_stat_activity`), driven by a task of its own until the client is
    /// dropped, in the schema (which need not exist yet: names are looked
    /// up when used), with the role's settings.
    pub(crate) async fn connect(&self, role: Role) -> Result<Client> {
        let mut config = self.config.clone();
        config.application_name(format!("palaver-read-{}-{}", role.name(), self.schema));
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(db("connecting to PostgreSQL"))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, role = role.name(), "PostgreSQL connection ended");
            }
        });
        client
            .batch_execute(&format!(
                "SET search_path TO {}; {}",
                self.schema.quoted(),
                role.settings()
            ))
            .await
            .map_err(db("configuring a PostgreSQL session"))?;
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for good in ["palaver_read", "p_1", "_x", &"a".repeat(MAX_SCHEMA_LEN)] {
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
                matches!(SchemaName::new(bad), Err(Error::InvalidArgument { .. })),
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
}
