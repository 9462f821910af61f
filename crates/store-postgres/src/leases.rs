//! Leases: which of several instances runs a singleton job (a projector, a
//! worker) right now.
//!
//! A lease is a row in the store's schema: a name, its holder, a fencing
//! token and an expiry on the database's clock (so the instances' clocks
//! do not matter). [`PgLeases::try_acquire`] grants a free or expired
//! lease; the holder calls [`PgLeases::renew`] well within the time to live
//! (say every third of it) and stops the job as soon as renewal returns
//! `false`, or once a time-to-live has passed since its last successful
//! renewal (the database may be unreachable). The fencing token grows with
//! every grant of a name, so anything the job writes elsewhere can carry
//! it and a writer with a smaller token can be turned away. A job's
//! checkpoint is kept the same way ([`PgLeases::save_checkpoint`]): only the
//! current holder can move it.

use std::{sync::Arc, time::Duration};

use tokio::sync::Mutex;
use tokio_postgres::{Client, types::Type};

use crate::{
    PostgresOptions,
    connect::{Connector, db_error, store_session},
    options::schema_name,
    schema,
};

/// Result of a lease operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a lease.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lease name or holder is empty, too long or has control
    /// characters. Fix the caller.
    #[error("invalid lease {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    /// The time to live is zero or over a day. Leases are for liveness:
    /// pick seconds to minutes, and renew.
    #[error("invalid lease time to live {ttl:?}: it must be more than zero and at most a day")]
    InvalidTtl { ttl: Duration },

    /// The database failed or could not be reached (see
    /// [`palaver_store::Error::Backend`]). Treat the lease as lost once its
    /// time to live has passed since the last successful renewal.
    #[error(transparent)]
    Store(#[from] palaver_store::Error),
}

/// Longest lease name or holder, in bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Longest time to live.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A granted lease. Pass it back to renew or release it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    name: String,
    holder: String,
    token: u64,
    ttl: Duration,
}

impl Lease {
    /// The job this lease is for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Who holds it.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The fencing token: larger for every new grant of this name.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// How long each grant or renewal lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// Leases in one schema of one database. Clones share one connection,
/// reopened on first use after it was lost.
#[derive(Clone, Debug)]
pub struct PgLeases {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connector: Connector,
    client: Mutex<Option<Arc<Client>>>,
}

impl PgLeases {
    /// Connects to `url` and creates or migrates the schema in
    /// `options.schema` (the same as the event store's; only the schema is
    /// used from `options`).
    pub async fn open(url: &str, options: &PostgresOptions) -> Result<Self> {
        let connector = Connector::new(url, schema_name(&options.schema)?)?;
        let mut client = connector.connect(store_session("leases")).await?;
        schema::migrate(&mut client, connector.schema(), connector.location()).await?;
        Ok(PgLeases {
            inner: Arc::new(Inner {
                connector,
                client: Mutex::new(Some(Arc::new(client))),
            }),
        })
    }

    /// Leases through `connector`, whose schema is already migrated.
    pub(crate) fn with_connector(connector: Connector) -> Self {
        PgLeases {
            inner: Arc::new(Inner {
                connector,
                client: Mutex::new(None),
            }),
        }
    }

    /// Grants lease `name` to `holder` for `ttl` if nobody holds it or the
    /// last grant expired; `None` if someone (`holder` included) holds it.
    /// Give each process its own holder (host, process id, a random part).
    pub async fn try_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        check_name("name", name)?;
        check_name("holder", holder)?;
        let micros = ttl_micros(ttl)?;
        let row = self
            .run(|client| async move {
                let statement = client
                    .prepare_typed(
                        include_str!("sql/lease_acquire.sql"),
                        &[Type::TEXT, Type::TEXT, Type::INT8],
                    )
                    .await?;
                client.query_opt(&statement, &[&name, &holder, &micros]).await
            })
            .await?;
        Ok(row.map(|row| Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token: row.get::<_, i64>(0) as u64,
            ttl,
        }))
    }

    /// Extends `lease` by its time to live. `false` if it was lost: it
    /// expired (whether or not someone else took it since) or was released.
    pub async fn renew(&self, lease: &Lease) -> Result<bool> {
        let micros = ttl_micros(lease.ttl)?;
        let token = lease.token as i64;
        let updated = self
            .run(|client| async move {
                let statement = client
                    .prepare_typed(
                        include_str!("sql/lease_renew.sql"),
                        &[Type::TEXT, Type::TEXT, Type::INT8, Type::INT8],
                    )
                    .await?;
                client
                    .execute(&statement, &[&lease.name, &lease.holder, &token, &micros])
                    .await
            })
            .await?;
        Ok(updated == 1)
    }

    /// Gives `lease` up so another holder may take it at once. Nothing
    /// happens if it was already lost.
    pub async fn release(&self, lease: Lease) -> Result<()> {
        let token = lease.token as i64;
        let lease = &lease;
        self.run(|client| async move {
            let statement = client
                .prepare_typed(
                    include_str!("sql/lease_release.sql"),
                    &[Type::TEXT, Type::TEXT, Type::INT8],
                )
                .await?;
            client
                .execute(&statement, &[&lease.name, &lease.holder, &token])
                .await
        })
        .await?;
        Ok(())
    }

    /// The position job `name` saved last with
    /// [`PgLeases::save_checkpoint`], `None` if it never saved one.
    pub async fn checkpoint(&self, name: &str) -> Result<Option<u64>> {
        check_name("name", name)?;
        let row = self
            .run(|client| async move {
                let statement = client
                    .prepare_typed(include_str!("sql/checkpoint_load.sql"), &[Type::TEXT])
                    .await?;
                client.query_opt(&statement, &[&name]).await
            })
            .await?;
        Ok(row.map(|row| row.get::<_, i64>(0) as u64))
    }

    /// Saves `position` as the checkpoint of the job `lease` is for, only
    /// while `lease` is still held: `false` if it was lost, and then
    /// nothing changed (the instance that took over owns the checkpoint).
    pub async fn save_checkpoint(&self, lease: &Lease, position: u64) -> Result<bool> {
        let token = lease.token as i64;
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        let saved = self
            .run(|client| async move {
                let statement = client
                    .prepare_typed(
                        include_str!("sql/checkpoint_save.sql"),
                        &[Type::TEXT, Type::TEXT, Type::INT8, Type::INT8],
                    )
                    .await?;
                client
                    .execute(&statement, &[&lease.name, &lease.holder, &token, &position])
                    .await
            })
            .await?;
        Ok(saved == 1)
    }

    /// Runs `statement` on the connection, opening it if needed, and
    /// forgets the connection if it was lost. (Each call prepares its
    /// statement again: at a lease call every few seconds that costs
    /// nothing worth a cache.)
    async fn run<T, F, Fut>(&self, statement: F) -> Result<T>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let client = {
            let mut slot = self.inner.client.lock().await;
            match slot.as_ref().filter(|client| !client.is_closed()) {
                Some(client) => Arc::clone(client),
                None => {
                    let client = Arc::new(self.inner.connector.connect(store_session("leases")).await?);
                    *slot = Some(Arc::clone(&client));
                    client
                }
            }
        };
        // Not retried: a grant whose answer was lost would be granted twice.
        Ok(statement(client)
            .await
            .map_err(db_error("running a lease statement"))?)
    }
}

fn check_name(what: &'static str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        "it is empty"
    } else if value.len() > MAX_NAME_LEN {
        "it is longer than 200 bytes"
    } else if value.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        what,
        value: value.to_owned(),
        reason,
    })
}

fn ttl_micros(ttl: Duration) -> Result<i64> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(Error::InvalidTtl { ttl });
    }
    // At most a day: fits easily.
    Ok(ttl.as_micros() as i64)
}
