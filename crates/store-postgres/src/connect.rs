//! Opening PostgreSQL connections, for the event store and for whatever
//! else Palaver keeps in the same database (the read models of
//! `palaver-projections` use it too): one place that parses the URL, sets
//! up TLS, checks schema names, names each session after its role and puts
//! it in its schema.
//!
//! - [`Connector`]: the parsed URL, its TLS settings and one schema; opens
//!   sessions, each described by a [`Session`] (its role's name and
//!   settings).
//! - [`SchemaName`] (in `schema_name.rs`): the rules a schema name follows
//!   before it goes into SQL text, with the longest name up to the caller.
//! - [`SslMode`] (in `tls.rs`): `sslmode` and `sslrootcert` as libpq reads
//!   them, except that `require` checks the server's certificate. Why, and
//!   why rustls: `docs/adr/0008-postgres-tls.md`.
//! - `params.rs`: takes those two parameters out of the URL before
//!   tokio-postgres parses it, as it knows only some of their values.
//!
//! The event store's own use of it (its session settings, its error type)
//! closes this file.

mod params;
mod schema_name;
mod tls;

use std::time::Duration;

use futures::{StreamExt, stream};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Config, Notification, Socket, config::Host, tls::MakeTlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

pub use schema_name::{MAX_IDENTIFIER_LEN, SchemaName};
pub use tls::SslMode;

/// Result of opening a connection.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while setting up or opening a connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL cannot be parsed, or one of its parameters has a value that
    /// is not accepted. Fix the setting.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    /// The URL's TLS settings cannot be used: the `sslrootcert` file cannot
    /// be read or holds no certificate, `verify-ca` has no `sslrootcert`, or
    /// this machine has no root certificates. Fix the setting, or install
    /// the system's CA certificates.
    #[error("PostgreSQL TLS settings: {0}")]
    Tls(String),
    /// A schema name breaks [`SchemaName`]'s rules. Fix the setting.
    #[error("invalid {field} {name:?}: {reason}")]
    SchemaName {
        /// The setting the name came from, as the caller calls it.
        field: &'static str,
        name: String,
        reason: String,
    },
    /// The server could not be reached, refused the connection or its TLS
    /// handshake (the message says which), or the session could not be set
    /// up. Retrying helps when the server was down; a refusal needs the
    /// settings or the server fixed.
    #[error("{what}: {}", postgres_message(.source))]
    Postgres {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// The driver's own text is only "db error" or "error performing TLS
/// handshake": the server's message, or the reason, is in its source.
fn postgres_message(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// What a session is for: the name it shows and the settings it starts
/// with.
#[derive(Clone, Copy, Debug)]
pub struct Session<'a> {
    /// Shown as `palaver-<role>-<schema>` in `pg_stat_activity`, so the
    /// sessions of stores sharing a database can be told apart (PostgreSQL
    /// cuts the name at 63 bytes).
    pub role: &'a str,
    /// Statements run once the session is in its schema, such as
    /// `SET synchronous_commit TO on`; empty for none.
    pub settings: &'a str,
}

/// Connects to one database, in one schema.
#[derive(Clone)]
pub struct Connector {
    /// The URL as tokio-postgres reads it, with the timeouts set.
    config: Config,
    /// Built once (the roots are read when it is): each connection only
    /// clones it.
    tls: MakeRustlsConnect,
    ssl_mode: SslMode,
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
            .field("ssl_mode", &self.ssl_mode)
            .finish()
    }
}

/// The stream a connection runs on, TLS or not.
type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

impl Connector {
    /// Parses `url` (a `postgres://` URL or a libpq key/value string) and
    /// reads its TLS settings (and the `sslrootcert` file, if any); nothing
    /// is connected yet. Unless the URL says otherwise, a connection
    /// attempt gives up after 10 s.
    pub fn new(url: &str, schema: SchemaName) -> Result<Self> {
        let params::Split {
            rest,
            ssl_mode,
            root_cert,
        } = params::split(url).map_err(Error::Url)?;
        let mut config: Config = rest
            .parse()
            .map_err(|error| Error::Url(postgres_message(&error)))?;
        let ssl_mode = match ssl_mode {
            Some(mode) => mode.parse::<SslMode>().map_err(Error::Url)?,
            None => SslMode::default(),
        };
        config.ssl_mode(ssl_mode.driver_mode());
        let tls = MakeRustlsConnect::new(tls::client_config(ssl_mode, root_cert.as_deref())?);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // Finds a dead peer in about a minute (30 s idle, then 3 probes
        // 10 s apart) rather than the OS's two hours, so a read or a
        // listener reconnects instead of hanging.
        config.keepalives_idle(Duration::from_secs(30));
        config.keepalives_interval(Duration::from_secs(10));
        config.keepalives_retries(3);
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
            tls,
            ssl_mode,
            schema,
            location,
        })
    }

    /// The same server and settings, another schema.
    pub fn in_schema(&self, schema: SchemaName) -> Connector {
        let location = self.location.replacen(&self.schema.quoted(), &schema.quoted(), 1);
        Connector {
            config: self.config.clone(),
            tls: self.tls.clone(),
            ssl_mode: self.ssl_mode,
            schema,
            location,
        }
    }

    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// Where connections go, for messages: schema, database and host,
    /// never the password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// How connections use TLS.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// A connection for `session`, driven by a task of its own until the
    /// client is dropped, in the schema (which need not exist yet: names
    /// are looked up when used) and with the session's settings.
    pub async fn connect(&self, session: Session<'_>) -> Result<Client> {
        let (client, connection) = self.start(session.role).await?;
        let role = session.role.to_owned();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, role, "PostgreSQL connection ended");
            }
        });
        self.configure(&client, session).await?;
        Ok(client)
    }

    /// As [`Connector::connect`], with the connection's notifications
    /// (from LISTEN) on the returned channel, which closes when the
    /// connection is lost.
    pub async fn connect_listening(
        &self,
        session: Session<'_>,
    ) -> Result<(Client, mpsc::UnboundedReceiver<Notification>)> {
        let (client, mut connection) = self.start(session.role).await?;
        let (notes, received) = mpsc::unbounded_channel();
        let role = session.role.to_owned();
        tokio::spawn(async move {
            let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(note)) => {
                        if notes.send(note).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%error, role, "PostgreSQL connection ended");
                        return;
                    }
                }
            }
        });
        self.configure(&client, session).await?;
        Ok((client, received))
    }

    async fn start(&self, role: &str) -> Result<(Client, tokio_postgres::Connection<Socket, Stream>)> {
        let mut config = self.config.clone();
        config.application_name(format!("palaver-{role}-{}", self.schema));
        config
            .connect(self.tls.clone())
            .await
            .map_err(|source| Error::Postgres {
                what: self.ssl_mode.connecting(),
                source,
            })
    }

    async fn configure(&self, client: &Client, session: Session<'_>) -> Result<()> {
        client
            .batch_execute(&format!(
                "SET search_path TO {}; {}",
                self.schema.quoted(),
                session.settings
            ))
            .await
            .map_err(|source| Error::Postgres {
                what: "configuring a PostgreSQL session",
                source,
            })
    }
}

// The event store's use of the above.

/// A session of the event store's, named after `role`:
/// - every commit waits for the WAL flush whatever the server's default, so
///   an acknowledged append survives a crash;
/// - every execution of a prepared statement is planned for its
///   parameters: a generic plan made while the tables were small (a new
///   store) would stay a sequential scan as they grow, until the next
///   ANALYZE (measured: appends slowed 4x over 40,000 events).
pub(crate) fn store_session(role: &str) -> Session<'_> {
    Session {
        role,
        settings: "SET synchronous_commit TO on; SET plan_cache_mode TO force_custom_plan",
    }
}

/// Wraps a driver error with what the store was doing, keeping the
/// server's message.
pub(crate) fn db_error(what: &'static str) -> impl Fn(tokio_postgres::Error) -> palaver_store::Error {
    move |error| palaver_store::Error::Backend {
        message: format!("{what}: {}", postgres_message(&error)),
        source: Some(Box::new(error)),
    }
}

impl From<Error> for palaver_store::Error {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Postgres { source, .. } => palaver_store::Error::Backend {
                message,
                source: Some(Box::new(source)),
            },
            // No variant of the store's error fits a bad setting; it is
            // reported as a backend failure with the reason spelled out.
            Error::Url(_) | Error::Tls(_) | Error::SchemaName { .. } => palaver_store::Error::Backend {
                message,
                source: None,
            },
        }
    }
}

impl From<Error> for crate::leases::Error {
    fn from(error: Error) -> Self {
        crate::leases::Error::Store(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> SchemaName {
        SchemaName::new("palaver", MAX_IDENTIFIER_LEN, "schema").unwrap()
    }

    #[test]
    fn location_names_schema_database_and_host_but_not_the_password() {
        let connector = Connector::new("postgres://u:secret@db.example:5433/events", schema()).unwrap();
        assert_eq!(
            connector.location(),
            "PostgreSQL schema \"palaver\" in database events on db.example"
        );
        assert!(!format!("{connector:?}").contains("secret"));
        let other = connector.in_schema(SchemaName::new("other", MAX_IDENTIFIER_LEN, "schema").unwrap());
        assert_eq!(
            other.location(),
            "PostgreSQL schema \"other\" in database events on db.example"
        );
        assert_eq!(other.ssl_mode(), connector.ssl_mode());
    }

    #[test]
    fn ssl_modes_are_read_from_either_syntax() {
        // (The modes that check certificates read the system's roots, which
        // a test cannot count on: their parsing is tested in `tls`.)
        for (url, mode) in [
            ("postgres://h/db", SslMode::Prefer),
            ("postgres://h/db?sslmode=disable", SslMode::Disable),
            (
                "postgres://h/db?application_name=x&sslmode=prefer",
                SslMode::Prefer,
            ),
            (
                "postgres://h/db?sslmode=disable&connect_timeout=3",
                SslMode::Disable,
            ),
            ("host=h dbname=db", SslMode::Prefer),
            ("host=h sslmode = 'disable' dbname=db", SslMode::Disable),
        ] {
            let connector = Connector::new(url, schema()).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(connector.ssl_mode(), mode, "{url}");
        }
    }

    #[test]
    fn bad_tls_settings_are_refused_before_connecting() {
        for url in [
            "postgres://h/db?sslmode=allow",
            "postgres://h/db?sslmode=verify",
            "host=h sslmode=on",
        ] {
            match Connector::new(url, schema()) {
                Err(Error::Url(reason)) => assert!(reason.contains("sslmode"), "{url}: {reason}"),
                other => panic!("{url}: expected a refusal, got {other:?}"),
            }
        }
        for (url, expected) in [
            ("postgres://h/db?sslmode=verify-ca", "verify-ca needs sslrootcert"),
            (
                "postgres://h/db?sslmode=verify-ca&sslrootcert=system",
                "verify-ca needs sslrootcert",
            ),
            (
                "postgres://h/db?sslmode=require&sslrootcert=/nonexistent/ca.pem",
                "/nonexistent/ca.pem",
            ),
        ] {
            match Connector::new(url, schema()) {
                Err(Error::Tls(reason)) => assert!(reason.contains(expected), "{url}: {reason}"),
                other => panic!("{url}: expected a refusal, got {other:?}"),
            }
        }
        // A root file is not read when TLS is off.
        Connector::new(
            "postgres://h/db?sslmode=disable&sslrootcert=/nonexistent/ca.pem",
            schema(),
        )
        .unwrap();
    }

    #[test]
    fn errors_become_the_stores() {
        let error = palaver_store::Error::from(Error::SchemaName {
            field: "PostgreSQL schema name",
            name: "Bad".to_owned(),
            reason: "it is wrong".to_owned(),
        });
        assert_eq!(
            error.to_string(),
            "storage backend failed: invalid PostgreSQL schema name \"Bad\": it is wrong"
        );
    }
}
