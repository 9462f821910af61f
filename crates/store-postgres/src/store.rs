//! [`PostgresStore`]: the [`EventStore`] contract on PostgreSQL.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use palaver_store::{
    AllFilter, AppendResult, Direction, Error, EventStore, ExpectedRevision, Limits, NewEvent, Position,
    ReadFrom, RecordedEvent, Result, StreamName,
    append::AppendRequest,
    subscription::{self, Subscription},
};
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

use crate::{
    PgLeases, PostgresOptions,
    connect::{Connector, db_error, store_session},
    live,
    options::schema_name,
    readers::Readers,
    rows::{decode_all, to_sql_int},
    schema,
    writer::{self, Writer},
};

/// Appends waiting for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;
/// The shortest poll interval accepted: a zero would spin.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A handle to an event store in one PostgreSQL schema. Clones share it;
/// its connections close when the last clone (and every subscription) is
/// dropped.
///
/// Several processes may open the same schema at once (that is what it is
/// for): their appends take turns on a database lock, so every instance's
/// `$all` has one order with no holes, and each instance's live
/// subscribers see the others' commits (pushed by LISTEN/NOTIFY, polled as
/// a fallback).
///
/// Durability: each append group commits with `synchronous_commit = on`,
/// whatever the server's default, so an acknowledged append survives a
/// crash of Palaver, of PostgreSQL and of its machine (as far as the disk
/// honours fsync; with a synchronous standby, the loss of the machine too).
#[derive(Clone, Debug)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connector: Connector,
    limits: Limits,
    /// Closing it (by dropping `Inner`) stops the writer.
    jobs: mpsc::Sender<writer::Job>,
    /// Shared with the writer and the follower, which raise it.
    head: Arc<watch::Sender<Position>>,
    readers: Readers,
    /// The task following other instances' commits; aborted on close.
    follower: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`;
    /// TLS as its `sslmode` says, see [`crate::connect::SslMode`]), creates or migrates the store in `options.schema`, and
    /// starts the writer and the head follower. A schema written by a newer
    /// Palaver ([`Error::SchemaTooNew`]) or holding other tables
    /// ([`Error::NotAnEventStore`]) is refused untouched.
    pub async fn open(url: &str, options: PostgresOptions) -> Result<Self> {
        let connector = Connector::new(url, schema_name(&options.schema)?)?;
        let mut client = connector.connect(store_session("writer")).await?;
        schema::migrate(&mut client, connector.schema(), connector.location()).await?;
        let last: i64 = client
            .query_one(include_str!("sql/head.sql"), &[])
            .await
            .map_err(db_error("reading the head position"))?
            .get(0);
        let conn = writer::Connection::prepare(client).await?;

        let head = Arc::new(watch::Sender::new(Position(last as u64)));
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer {
            connector: connector.clone(),
            conn: Some(conn),
            head: Arc::clone(&head),
        };
        tokio::spawn(writer.run(queue));
        let follower = tokio::spawn(live::follow(
            connector.clone(),
            Arc::clone(&head),
            options.poll_interval.max(MIN_POLL_INTERVAL),
            options.notifications,
        ));
        tracing::debug!(location = connector.location(), head = last, "event store opened");
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                readers: Readers::new(connector.clone(), options.read_connections),
                connector,
                limits: options.limits,
                jobs,
                head,
                follower,
            }),
        })
    }

    /// Drops `schema` and everything in it, if it exists: for tests and
    /// benchmarks. Stores open on it fail from then on.
    pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
        let connector = Connector::new(url, schema_name(schema)?)?;
        let client = connector.connect(store_session("admin")).await?;
        schema::drop_schema(&client, connector.schema()).await
    }

    /// The schema this store lives in.
    pub fn schema(&self) -> &str {
        self.inner.connector.schema().as_str()
    }

    /// Leases in the same database and schema, on a connection of their own.
    pub fn leases(&self) -> PgLeases {
        PgLeases::with_connector(self.inner.connector.clone())
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.inner.limits.check_batch(&events)?;
        let (reply, answer) = oneshot::channel();
        let job = writer::Job {
            request: AppendRequest {
                stream: stream.clone(),
                expected,
                events,
            },
            reply,
        };
        self.inner.jobs.send(job).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let revision = match (direction, from) {
            (_, ReadFrom::Revision(revision)) => to_sql_int(revision),
            (Direction::Forwards, ReadFrom::Start) => 0,
            (Direction::Backwards, ReadFrom::Start) => -1,
            (_, ReadFrom::End) => i64::MAX,
        };
        let limit = to_sql_int(limit as u64);
        let stream = stream.as_str();
        self.inner
            .readers
            .read(|reader| async move {
                let statement = match direction {
                    Direction::Forwards => &reader.stream_forwards,
                    Direction::Backwards => &reader.stream_backwards,
                };
                let rows = reader
                    .client
                    .query(statement, &[&stream, &revision, &limit])
                    .await
                    .map_err(db_error("reading a stream"))?;
                decode_all(&rows)
            })
            .await
    }

    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>> {
        let stream = stream.as_str();
        self.inner
            .readers
            .read(|reader| async move {
                let row = reader
                    .client
                    .query_opt(&reader.revision, &[&stream])
                    .await
                    .map_err(db_error("reading a stream revision"))?;
                Ok(row.map(|row| row.get::<_, i64>(0) as u64))
            })
            .await
    }

    async fn read_all(
        &self,
        after: Position,
        filter: &AllFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        filter.validate()?;
        let after = to_sql_int(after.0);
        let limit = to_sql_int(limit as u64);
        self.inner
            .readers
            .read(|reader| async move {
                let rows = if filter.is_all() {
                    reader.client.query(&reader.all, &[&after, &limit]).await
                } else {
                    reader
                        .client
                        .query(
                            &reader.all_filtered,
                            &[&after, &filter.stream_prefixes, &filter.event_types, &limit],
                        )
                        .await
                }
                .map_err(db_error("reading $all"))?;
                decode_all(&rows)
            })
            .await
    }

    /// Reads the head from the database (another instance may be ahead of
    /// the watch) and raises the watch to it.
    async fn head(&self) -> Result<Position> {
        let last: i64 = self
            .inner
            .readers
            .read(|reader| async move {
                reader
                    .client
                    .query_one(&reader.head, &[])
                    .await
                    .map_err(db_error("reading the head"))
                    .map(|row| row.get(0))
            })
            .await?;
        let head = Position(last as u64);
        live::publish(&self.inner.head, head);
        Ok(head)
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.head.subscribe()
    }

    fn subscribe_all(&self, after: Position, filter: AllFilter) -> Subscription {
        subscription::catch_up(self.clone(), after, filter)
    }
}
