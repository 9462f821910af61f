//! The write side on PostgreSQL: [`PgReadModelDb`], the projectors' tables
//! and their checkpoints in one schema, with the same exactly-once rule as
//! the SQLite file.

use std::{
    collections::HashMap,
    future::Future,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use palaver_store::{EventStore, Position, RecordedEvent};
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, GenericClient, Transaction};

use super::{
    connect::{Connector, Role, SchemaName},
    placeholders::translate,
    value::row_values,
};
use crate::{
    Error, Result,
    database::{Applied, fold},
    error::{DatabaseError, db},
    projector::Projector,
    rebuild,
    sql::{Statement, Value},
};

/// First key of the advisory lock that serialises creating and changing
/// the read models' tables (the second is the schema's): "PALR".
const LOCK_CLASS_SCHEMA: i32 = 0x5041_4C52;
/// Shape of the checkpoint table; projectors version their own. Kept in
/// the table's comment, the counterpart of SQLite's `user_version`.
const META_VERSION: i64 = 1;
const META_COMMENT: &str = "Palaver read-model checkpoints, shape ";

/// The checkpoint table: the SQLite one, with PostgreSQL's types.
const META_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS projections (
    name        TEXT COLLATE \"C\" PRIMARY KEY, -- the projector
    version     BIGINT NOT NULL,   -- its version when its tables were built
    position    BIGINT NOT NULL,   -- last event of $all it has taken
    updated_at  BIGINT NOT NULL    -- microseconds since 1970 UTC
);
";

/// The writable side of the read models in a PostgreSQL schema.
///
/// Each batch is one transaction that applies the projectors' statements
/// and moves their checkpoints. It starts by locking the projectors' rows
/// of `projections` and reading the positions stored there: an event at or
/// below a stored position is skipped. So an event is applied exactly once
/// even when a batch is tried again after a lost connection (its commit may
/// or may not have landed), or when several instances project into the
/// same schema (they take turns on the rows).
pub struct PgReadModelDb {
    connector: Connector,
    client: Client,
    projectors: Arc<[Arc<dyn Projector>]>,
    /// Per projector (same order), the last position it has taken.
    checkpoints: Vec<Position>,
    /// Prepared statements by their portable SQL (`?1` placeholders), so
    /// each distinct statement is translated and prepared once per
    /// connection.
    prepared: HashMap<&'static str, tokio_postgres::Statement>,
}

impl std::fmt::Debug for PgReadModelDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReadModelDb")
            .field("location", &self.connector.location())
            .field("checkpoints", &self.checkpoints)
            .finish_non_exhaustive()
    }
}

impl PgReadModelDb {
    /// Opens the read models in schema `schema` of the database at `url`,
    /// creating the schema and the tables of `projectors` if missing. A
    /// projector whose stored version differs gets its tables dropped and
    /// created again, empty, and starts again from the beginning of `$all`.
    pub async fn open(url: &str, schema: &str, projectors: Arc<[Arc<dyn Projector>]>) -> Result<Self> {
        Self::open_with(Connector::new(url, schema)?, projectors, false).await
    }

    /// A scratch schema for a rebuild: fresh tables, unlogged (a crash of
    /// the server empties them, and they are worthless until complete
    /// anyway), which halves what a replay writes.
    pub(crate) async fn open_scratch(
        connector: Connector,
        projectors: Arc<[Arc<dyn Projector>]>,
    ) -> Result<Self> {
        Self::open_with(connector, projectors, true).await
    }

    async fn open_with(
        connector: Connector,
        projectors: Arc<[Arc<dyn Projector>]>,
        unlogged: bool,
    ) -> Result<Self> {
        let mut client = connector.connect(Role::Writer).await?;
        let checkpoints = prepare_schema(&mut client, &connector, &projectors, unlogged).await?;
        Ok(PgReadModelDb {
            connector,
            client,
            projectors,
            checkpoints,
            prepared: HashMap::new(),
        })
    }

    /// The schema the tables are in.
    pub fn schema(&self) -> &str {
        self.connector.schema().as_str()
    }

    /// Where the tables are, for messages (no password).
    pub fn location(&self) -> &str {
        self.connector.location()
    }

    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// The projectors, in checkpoint order.
    pub fn projectors(&self) -> &[Arc<dyn Projector>] {
        &self.projectors
    }

    /// Each projector's checkpoint, as of this writer's last batch.
    pub fn checkpoints(&self) -> HashMap<&'static str, Position> {
        self.projectors
            .iter()
            .map(|p| p.name())
            .zip(self.checkpoints.iter().copied())
            .collect()
    }

    /// The lowest checkpoint: every read model has taken every event up to it.
    pub fn position(&self) -> Position {
        self.checkpoints.iter().copied().min().unwrap_or(Position::START)
    }

    /// Folds `events` (consecutive in `$all`, ascending, and following on
    /// from this writer's checkpoints) into every read model that has not
    /// taken them yet, moving the checkpoints in the same transaction. If an
    /// event cannot be read, everything before it is committed and the
    /// error names it; nothing after it is applied. A batch whose
    /// connection was lost is tried once more on a new one.
    pub async fn apply(&mut self, events: &[RecordedEvent]) -> Result<Applied> {
        if events.is_empty() {
            return Ok(Applied {
                position: self.position(),
            });
        }
        if self.client.is_closed() {
            self.reconnect().await?;
        }
        match self.apply_once(events).await {
            Err(error) if self.client.is_closed() || connection_lost(&error) => {
                tracing::warn!(
                    %error,
                    location = self.location(),
                    "lost the read models' connection: trying the batch again on a new one"
                );
                self.reconnect().await?;
                self.apply_once(events).await
            }
            outcome => outcome,
        }
    }

    /// Takes the checkpoints stored now, which another instance may have
    /// moved (instances sharing the schema take turns projecting), and
    /// returns the lowest.
    pub async fn refresh(&mut self) -> Result<Position> {
        if self.client.is_closed() {
            self.reconnect().await?;
        }
        self.checkpoints = read_checkpoints(&self.client, &self.connector, &self.projectors, false).await?;
        Ok(self.position())
    }

    async fn reconnect(&mut self) -> Result<()> {
        self.client = self.connector.connect(Role::Writer).await?;
        self.prepared.clear();
        Ok(())
    }

    async fn apply_once(&mut self, events: &[RecordedEvent]) -> Result<Applied> {
        let PgReadModelDb {
            connector,
            client,
            projectors,
            checkpoints,
            prepared,
            ..
        } = self;
        let tx = client
            .transaction()
            .await
            .map_err(db("starting a projection batch"))?;
        let stored = lock_checkpoints(&tx, connector, projectors).await?;
        for ((projector, stored), ours) in projectors.iter().zip(&stored).zip(checkpoints.iter()) {
            // Events up to ours are not in this batch: a checkpoint that
            // moved back would leave them out.
            if stored < ours {
                return Err(Error::Stopped(format!(
                    "the checkpoint of read model {} in {} moved back from {ours} to {stored} \
                     (rebuilt by another Palaver?): restart to project from there",
                    projector.name(),
                    connector.location()
                )));
            }
        }
        let mut reached = stored.clone();
        let mut statements: Vec<Statement> = Vec::new();
        let failure = fold(projectors, &mut reached, events, &mut statements);
        let now = chrono::Utc::now().timestamp_micros();
        for (i, projector) in projectors.iter().enumerate() {
            if reached[i] != stored[i] {
                statements.push(Statement::new(
                    "UPDATE projections SET position = ?2, updated_at = ?3 WHERE name = ?1",
                    vec![projector.name().into(), Value::from(reached[i].0), now.into()],
                ));
            }
        }
        for statement in &statements {
            if !prepared.contains_key(statement.sql) {
                let sql = translate(statement.sql)
                    .map_err(|reason| Error::InvalidArgument { field: "sql", reason })?;
                let prepared_statement = tx.prepare(&sql).await.map_err(db("preparing a projection"))?;
                prepared.insert(statement.sql, prepared_statement);
            }
        }
        pipeline(
            statements
                .iter()
                .map(|statement| tx.execute_raw(&prepared[statement.sql], statement.params.iter())),
        )
        .await
        .map_err(db("applying a projection"))?;
        tx.commit().await.map_err(db("committing a projection batch"))?;
        *checkpoints = reached;
        match failure {
            Some(error) => Err(error),
            None => Ok(Applied {
                position: self.position(),
            }),
        }
    }

    /// SHA-256 over every row of the projector's tables, in a canonical
    /// order. Rows are ordered and hashed as [`crate::ReadModelDb::digest`]
    /// does (text byte by byte, NULLs first), so the same rows give the
    /// same digest on either backend.
    pub async fn digest(&self, projector: &str) -> Result<[u8; 32]> {
        let projector = self
            .projectors
            .iter()
            .find(|p| p.name() == projector)
            .ok_or_else(|| Error::InvalidArgument {
                field: "projector",
                reason: format!("no projector {projector}"),
            })?;
        digest_tables(&self.client, self.connector.schema(), projector.tables()).await
    }

    /// Replaces the tables of every projector with those of `rebuilt` (the
    /// same projectors, in a scratch schema of the same database), and
    /// takes over its checkpoints, in one transaction: readers see the old
    /// rows until it commits, then the new. The tables themselves stay (rows
    /// are copied), so views and grants on them survive.
    ///
    /// The checkpoint rows are locked first, then `rebuilt` catches up with
    /// `store`: no writer of this schema (another instance's) can move past
    /// the rebuilt tables before they are swapped in.
    pub(crate) async fn swap_in(
        &mut self,
        rebuilt: &mut PgReadModelDb,
        store: &dyn EventStore,
    ) -> Result<()> {
        let live = self.connector.schema().quoted();
        let scratch = rebuilt.connector.schema().quoted();
        let tx = self.client.transaction().await.map_err(db("starting the swap"))?;
        // Whole tables are copied: scanning them is right here.
        tx.batch_execute("SET LOCAL enable_seqscan TO on")
            .await
            .map_err(db("starting the swap"))?;
        // Other writers of this schema wait for the swap, then see its
        // checkpoints.
        let stored = lock_checkpoints(&tx, &self.connector, &self.projectors).await?;
        rebuild::catch_up_postgres(store, rebuilt, rebuild::Until::Head, |_| {}).await?;
        if stored.iter().any(|stored| *stored > rebuilt.position()) {
            return Err(Error::Stopped(format!(
                "the read models in {} are past the rebuilt ones ({stored:?} against {}): rebuild again",
                self.connector.location(),
                rebuilt.position()
            )));
        }
        let now = chrono::Utc::now().timestamp_micros();
        let mut checkpoints = Vec::with_capacity(self.projectors.len());
        for projector in self.projectors.iter() {
            for table in projector.tables() {
                tx.batch_execute(&format!(
                    "DELETE FROM {live}.\"{table}\"; INSERT INTO {live}.\"{table}\" SELECT * FROM {scratch}.\"{table}\";"
                ))
                .await
                .map_err(db("copying a rebuilt table"))?;
            }
            let row = tx
                .query_one(
                    &format!(
                        "UPDATE {live}.projections SET updated_at = $2, \
                         position = (SELECT position FROM {scratch}.projections WHERE name = $1) \
                         WHERE name = $1 RETURNING position"
                    ),
                    &[&projector.name(), &now],
                )
                .await
                .map_err(db("taking over a checkpoint"))?;
            let position: i64 = row.try_get(0).map_err(db("taking over a checkpoint"))?;
            checkpoints.push(Position(position as u64));
        }
        tx.commit().await.map_err(db("committing the swap"))?;
        self.checkpoints = checkpoints;
        Ok(())
    }
}

/// Whether `error` means the connection is gone (the server shut down or
/// ended the session, the network failed), so that the same batch may
/// succeed on a new one.
fn connection_lost(error: &Error) -> bool {
    use tokio_postgres::error::SqlState;
    let Error::Database {
        source: DatabaseError::Postgres(error),
        ..
    } = error
    else {
        return false;
    };
    let io = std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>());
    let ended = error.as_db_error().is_some_and(|db| {
        db.code().code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(db.code())
    });
    error.is_closed() || io || ended
}

/// Drops a schema and everything in it (a rebuild's scratch schema).
pub(crate) async fn drop_schema(connector: &Connector) -> Result<()> {
    let client = connector.connect(Role::Admin).await?;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            connector.schema().quoted()
        ))
        .await
        .map_err(db("dropping a scratch schema"))
}

/// Creates the schema, the checkpoint table and each projector's tables at
/// its version (recreating those of another version), under an advisory
/// lock so that instances starting together do it once. Returns the
/// checkpoints.
async fn prepare_schema(
    client: &mut Client,
    connector: &Connector,
    projectors: &[Arc<dyn Projector>],
    unlogged: bool,
) -> Result<Vec<Position>> {
    let schema = connector.schema().quoted();
    let tx = client
        .transaction()
        .await
        .map_err(db("starting a schema change"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS_SCHEMA, &connector.schema().lock_key()],
    )
    .await
    .map_err(db("locking the read models' schema"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema};"
    ))
    .await
    .map_err(db("creating the read models' schema"))?;
    tx.batch_execute(META_SCHEMA)
        .await
        .map_err(db("creating the checkpoint table"))?;
    let comment: Option<String> = tx
        .query_one(
            &format!("SELECT obj_description('{schema}.projections'::regclass, 'pg_class')"),
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(db("reading the version"))?;
    let found = comment
        .as_deref()
        .and_then(|c| c.strip_prefix(META_COMMENT))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    if found > META_VERSION {
        return Err(Error::SchemaTooNew {
            path: connector.location().to_owned(),
            found,
            supported: META_VERSION,
        });
    }
    if found < META_VERSION {
        tx.batch_execute(&format!(
            "COMMENT ON TABLE {schema}.projections IS '{META_COMMENT}{META_VERSION}'"
        ))
        .await
        .map_err(db("marking the read models"))?;
    }
    let mut checkpoints = Vec::with_capacity(projectors.len());
    for projector in projectors {
        let stored = tx
            .query_opt(
                "SELECT version, position FROM projections WHERE name = $1",
                &[&projector.name()],
            )
            .await
            .map_err(db("reading a checkpoint"))?
            .map(|row| Ok::<_, tokio_postgres::Error>((row.try_get::<_, i64>(0)?, row.try_get::<_, i64>(1)?)))
            .transpose()
            .map_err(db("reading a checkpoint"))?;
        match stored {
            Some((version, position)) if version == i64::from(projector.version()) => {
                checkpoints.push(Position(position as u64));
                continue;
            }
            Some((version, _)) => tracing::warn!(
                projector = projector.name(),
                from = version,
                to = projector.version(),
                "read model changed shape: rebuilding it from the start"
            ),
            None => {}
        }
        for table in projector.tables().iter().rev() {
            tx.batch_execute(&format!("DROP TABLE IF EXISTS {schema}.\"{table}\""))
                .await
                .map_err(db("dropping an old table"))?;
        }
        tx.batch_execute(projector.postgres_schema())
            .await
            .map_err(db("creating read-model tables"))?;
        if unlogged {
            for table in projector.tables() {
                tx.batch_execute(&format!("ALTER TABLE {schema}.\"{table}\" SET UNLOGGED"))
                    .await
                    .map_err(db("making a scratch table unlogged"))?;
            }
        }
        tx.execute(
            "INSERT INTO projections (name, version, position, updated_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = 0, \
             updated_at = excluded.updated_at",
            &[
                &projector.name(),
                &i64::from(projector.version()),
                &chrono::Utc::now().timestamp_micros(),
            ],
        )
        .await
        .map_err(db("resetting a checkpoint"))?;
        checkpoints.push(Position::START);
    }
    tx.commit().await.map_err(db("committing a schema change"))?;
    Ok(checkpoints)
}

/// Locks the projectors' checkpoint rows until the transaction ends and
/// returns their stored positions (in projector order). A projector whose
/// row is gone, or holds another version, means another Palaver changed
/// the tables: stop rather than write into them.
async fn lock_checkpoints(
    tx: &Transaction<'_>,
    connector: &Connector,
    projectors: &[Arc<dyn Projector>],
) -> Result<Vec<Position>> {
    read_checkpoints(tx, connector, projectors, true).await
}

/// The projectors' stored checkpoints, with their rows locked for the rest
/// of the transaction if `lock`.
async fn read_checkpoints(
    client: &impl GenericClient,
    connector: &Connector,
    projectors: &[Arc<dyn Projector>],
    lock: bool,
) -> Result<Vec<Position>> {
    let names: Vec<&str> = projectors.iter().map(|p| p.name()).collect();
    let sql = if lock {
        "SELECT name, version, position FROM projections WHERE name = ANY($1) ORDER BY name FOR UPDATE"
    } else {
        "SELECT name, version, position FROM projections WHERE name = ANY($1)"
    };
    let rows = client
        .query(sql, &[&names])
        .await
        .map_err(db("reading the checkpoints"))?;
    let mut stored = HashMap::new();
    for row in &rows {
        let name: &str = row.try_get(0).map_err(db("reading a checkpoint"))?;
        let version: i64 = row.try_get(1).map_err(db("reading a checkpoint"))?;
        let position: i64 = row.try_get(2).map_err(db("reading a checkpoint"))?;
        stored.insert(name.to_owned(), (version, position));
    }
    projectors
        .iter()
        .map(|projector| match stored.get(projector.name()) {
            Some(&(version, position)) if version == i64::from(projector.version()) => {
                Ok(Position(position as u64))
            }
            found => Err(Error::Stopped(format!(
                "read model {} in {} is {}, not version {}: another Palaver changed it; restart",
                projector.name(),
                connector.location(),
                match found {
                    Some((version, _)) => format!("at version {version}"),
                    None => "gone".to_owned(),
                },
                projector.version()
            ))),
        })
        .collect()
}

/// Runs `requests` in order without waiting for each answer before
/// sending the next (one round trip for the lot): tokio-postgres sends a
/// request when its future is first polled, and the server runs requests
/// in the order they arrive. So each is polled once here, in order (which
/// sends it), and only then are the answers awaited. Returns the first
/// error; the requests after a failed one fail too (the transaction is
/// aborted).
async fn pipeline<F, T>(requests: impl IntoIterator<Item = F>) -> Result<Vec<T>, tokio_postgres::Error>
where
    F: Future<Output = Result<T, tokio_postgres::Error>>,
{
    let sent: Vec<_> = {
        // Not kept across the awaits below: a context is not Send.
        let mut cx = Context::from_waker(Waker::noop());
        requests
            .into_iter()
            .map(|request| {
                let mut request = Box::pin(request);
                let first = request.as_mut().poll(&mut cx);
                (request, first)
            })
            .collect()
    };
    let mut answers = Vec::with_capacity(sent.len());
    for (request, first) in sent {
        answers.push(match first {
            Poll::Ready(answer) => answer?,
            Poll::Pending => request.await?,
        });
    }
    Ok(answers)
}

/// Hashes every row of `tables` in `schema` as `digest_tables` does for
/// SQLite: ordered by every column (text byte by byte, NULLs first),
/// each value tagged with its kind.
async fn digest_tables(client: &Client, schema: &SchemaName, tables: &[&str]) -> Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    for table in tables {
        let columns = client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&schema.as_str(), table],
            )
            .await
            .map_err(db("reading a table's columns"))?;
        let mut order = Vec::with_capacity(columns.len());
        for column in &columns {
            let name: &str = column.try_get(0).map_err(db("reading a table's columns"))?;
            let kind: &str = column.try_get(1).map_err(db("reading a table's columns"))?;
            let collate = if kind == "text" { " COLLATE \"C\"" } else { "" };
            order.push(format!("\"{name}\"{collate} NULLS FIRST"));
        }
        let sql = format!(
            "SELECT * FROM {}.\"{table}\" ORDER BY {}",
            schema.quoted(),
            order.join(", ")
        );
        let rows = client
            .query(&sql, &[])
            .await
            .map_err(db("reading rows for a digest"))?;
        hasher.update(table.as_bytes());
        for row in &rows {
            for value in row_values(row).map_err(db("reading a row for a digest"))? {
                match value {
                    Value::Null => hasher.update([0]),
                    Value::Integer(i) => {
                        hasher.update([1]);
                        hasher.update(i.to_be_bytes());
                    }
                    Value::Real(r) => {
                        hasher.update([2]);
                        hasher.update(r.to_bits().to_be_bytes());
                    }
                    Value::Text(t) => {
                        hasher.update([3]);
                        hasher.update((t.len() as u64).to_be_bytes());
                        hasher.update(t.as_bytes());
                    }
                    Value::Blob(b) => {
                        hasher.update([3]);
                        hasher.update((b.len() as u64).to_be_bytes());
                        hasher.update(b);
                    }
                }
            }
        }
    }
    Ok(hasher.finalize().into())
}
