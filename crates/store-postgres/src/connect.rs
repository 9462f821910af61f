//! Opening connections: one place that parses the URL, names each
//! connection after its role, puts it in the store's schema, and turns
//! driver errors into the store's.

use std::time::Duration;

use futures::{StreamExt, stream};
use palaver_store::{Error, Result};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Notification, config::Host};

use crate::options::SchemaName;

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

/// Wraps a driver error with what the store was doing, keeping the
/// server's message (the driver's own text says only "db error").
pub(crate) fn db_error(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |error| {
        let mut message = format!("{what}: {error}");
        if let Some(cause) = std::error::Error::source(&error) {
            message.push_str(&format!(": {cause}"));
        }
        Error::Backend {
            message,
            source: Some(Box::new(error)),
        }
    }
}

impl Connector {
    pub(crate) fn new(url: &str, schema: SchemaName) -> Result<Self> {
        let mut config: Config = url.parse().map_err(db_error("parsing the PostgreSQL URL"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // Finds a dead peer in about a minute rather than the OS's two hours,
        // so a read or the listener reconnects instead of hanging.
        config.keepalives_idle(Duration::from_secs(30));
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

    pub(crate) fn schema(&self) -> &SchemaName {
        &self.schema
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// A connection for `role` (shown as `palaver-<role>-<schema>` in
    /// `pg_stat_activity`), driven by a task of its own until the client is
    /// dropped.
    pub(crate) async fn connect(&self, role: &str) -> Result<Client> {
        let (client, connection) = self.start(role).await?;
        let role = role.to_owned();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, role, "PostgreSQL connection ended");
            }
        });
        self.configure(&client).await?;
        Ok(client)
    }

    /// A connection whose notifications arrive on the returned channel,
    /// which closes when the connection is lost.
    pub(crate) async fn connect_listening(
        &self,
        role: &str,
    ) -> Result<(Client, mpsc::UnboundedReceiver<Notification>)> {
        let (client, mut connection) = self.start(role).await?;
        let (notes, received) = mpsc::unbounded_channel();
        let role = role.to_owned();
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
        self.configure(&client).await?;
        Ok((client, received))
    }

    async fn start(
        &self,
        role: &str,
    ) -> Result<(
        Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    )> {
        let mut config = self.config.clone();
        // The schema tells apart the stores sharing a database (PostgreSQL
        // cuts the name at 63 bytes).
        config.application_name(format!("palaver-{role}-{}", self.schema));
        config
            .connect(NoTls)
            .await
            .map_err(db_error("connecting to PostgreSQL"))
    }

    /// Sets up a session:
    /// - in the store's schema (which need not exist yet: names are looked
    ///   up when used);
    /// - every commit waits for the WAL flush whatever the server's
    ///   default, so an acknowledged append survives a crash;
    /// - every execution of a prepared statement is planned for its
    ///   parameters: a generic plan made while the tables were small (a new
    ///   store) would stay a sequential scan as they grow, until the next
    ///   ANALYZE (measured: appends slowed 4x over 40,000 events).
    async fn configure(&self, client: &Client) -> Result<()> {
        client
            .batch_execute(&format!(
                "SET search_path TO {}; SET synchronous_commit TO on; \
                 SET plan_cache_mode TO force_custom_plan",
                self.schema.quoted()
            ))
            .await
            .map_err(db_error("configuring a PostgreSQL session"))
    }
}
