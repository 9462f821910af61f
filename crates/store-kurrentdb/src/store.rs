//! [`KurrentDbStore`]: the [`EventStore`] contract on a KurrentDB client.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use kurrentdb::{AppendToStreamOptions, ReadAllOptions, ReadStreamOptions, StreamPosition, StreamState};
use palaver_store::{
    ActualRevision, AllFilter, AppendResult, Direction, Error, EventStore, ExpectedRevision, Limits,
    NewEvent, Position, ReadFrom, RecordedEvent, Result, StreamName,
    hash::{self, HashInput},
    subscription::Subscription,
};
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    codec::{self, RawEvent},
    connect::{self, ConnectError, KurrentDbOptions},
    connection::Connection,
    error::Operation,
    filter::ServerFilter,
    namespace::Namespace,
    position,
    retry::{self, Located},
    subscription,
};

/// How often an append re-reads the stream and tries again after losing a
/// race to another writer, before giving up with a transient error. Only
/// `Any` and `StreamExists` appends lose more than once: an exact
/// expectation fails with [`Error::WrongExpectedRevision`] on the re-read.
const MAX_APPEND_ATTEMPTS: usize = 64;

/// How many events one request for `$all` asks for.
const READ_ALL_PAGE: usize = 1024;

/// How many events one step of the backwards search for the head asks for.
const HEAD_PAGE: usize = 64;

/// The event store on KurrentDB. Clones share one client (one HTTP/2
/// connection to the selected node), replaced if it dies (see
/// `connection.rs`).
///
/// See the crate documentation for how the contract maps onto KurrentDB
/// and where it differs.
#[derive(Clone)]
pub struct KurrentDbStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) connection: Connection,
    pub(crate) namespace: Namespace,
    limits: Limits,
    idempotency_window: usize,
    /// The head as this process knows it: moved by its own appends at once,
    /// and by everyone's through the follower task while anyone watches.
    pub(crate) head: watch::Sender<Position>,
    /// The task that follows `$all` for [`EventStore::watch_head`], started
    /// by the first watcher and ended when the last one goes.
    follower: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for KurrentDbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KurrentDbStore")
            .field("namespace", &self.inner.namespace.prefix())
            .field("limits", &self.inner.limits)
            .field("idempotency_window", &self.inner.idempotency_window)
            .finish_non_exhaustive()
    }
}

impl KurrentDbStore {
    /// A store on the KurrentDB that `url` names, for example
    /// `kurrentdb://admin:changeit@node1:2113,node2:2113?tls=false`.
    ///
    /// The client connects lazily: this checks the connection string and
    /// the options, and the first request finds the node (discovering the
    /// leader in a cluster). Call [`EventStore::head`] to fail fast when
    /// the server cannot be reached. Must run inside a Tokio runtime.
    pub fn connect(url: &str, options: KurrentDbOptions) -> std::result::Result<Self, ConnectError> {
        let settings = connect::settings(url)?;
        let namespace =
            Namespace::new(options.namespace.clone()).map_err(|error| ConnectError::InvalidNamespace {
                namespace: options.namespace.clone().unwrap_or_default(),
                reason: match error {
                    Error::InvalidStreamName { reason, .. } => reason.to_owned(),
                    other => other.to_string(),
                },
            })?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConnectError::NoRuntime)?;
        Ok(KurrentDbStore {
            inner: Arc::new(Inner {
                connection: Connection::new(settings, runtime)?,
                namespace,
                limits: options.limits,
                idempotency_window: options.idempotency_window,
                head: watch::Sender::new(Position::START),
                follower: Mutex::new(None),
            }),
        })
    }

    /// Moves the known head forward to `position` (never back).
    pub(crate) fn publish_head(&self, position: Position) {
        self.inner.head.send_if_modified(|head| {
            let moved = position > *head;
            if moved {
                *head = position;
            }
            moved
        });
    }

    /// Reads one stream with `options` and decodes every event. A stream
    /// that does not exist reads as empty.
    async fn read_stream_with(
        &self,
        stream: &StreamName,
        options: ReadStreamOptions,
    ) -> Result<Vec<RecordedEvent>> {
        let lease = self.inner.connection.client();
        let failed = |error| {
            self.inner
                .connection
                .failed(&lease, error, Operation::ReadStream(stream))
        };
        let name = self.inner.namespace.apply(stream.as_str());
        let mut read = match lease
            .client
            .read_stream(name, &options.requires_leader(true))
            .await
        {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(error) => return Err(failed(error)),
        };
        let mut events = Vec::new();
        loop {
            match read.next().await {
                Ok(Some(resolved)) => {
                    let Some(event) = resolved.event.as_ref() else {
                        continue;
                    };
                    events.push(codec::decode(&self.inner.namespace, RawEvent::from(event))?);
                }
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(events),
                Err(error) => return Err(failed(error)),
            }
        }
    }

    /// The last `count` events of `stream`, oldest first.
    async fn read_tail(&self, stream: &StreamName, count: usize) -> Result<Vec<RecordedEvent>> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::End)
            .backwards()
            .max_count(count);
        let mut tail = self.read_stream_with(stream, options).await?;
        tail.reverse();
        Ok(tail)
    }

    /// Up to `count` events of `stream` from revision `start` on.
    async fn read_range(&self, stream: &StreamName, start: u64, count: usize) -> Result<Vec<RecordedEvent>> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(start))
            .forwards()
            .max_count(count);
        self.read_stream_with(stream, options).await
    }

    /// One request for `$all`: the raw events, in the order read.
    async fn read_all_page(&self, options: &ReadAllOptions) -> Result<Vec<kurrentdb::RecordedEvent>> {
        let lease = self.inner.connection.client();
        let failed = |error| self.inner.connection.failed(&lease, error, Operation::ReadAll);
        let mut read = lease
            .client
            .read_all(&options.clone().requires_leader(true))
            .await
            .map_err(failed)?;
        let mut events = Vec::new();
        while let Some(resolved) = read.next().await.map_err(failed)? {
            events.extend(resolved.event);
        }
        Ok(events)
    }

    /// One attempt at an append. `Ok(None)`: another writer got there
    /// between the read and the write; read again.
    async fn try_append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: &[NewEvent],
    ) -> Result<Option<AppendResult>> {
        let tail = self
            .read_tail(stream, events.len() + self.inner.idempotency_window)
            .await?;
        if let Located::StartsAt(start) = retry::locate(events, &tail, expected)? {
            let fetched;
            let stored = match retry::covered(&tail, start) {
                Some(stored) => stored,
                None => {
                    fetched = self.read_range(stream, start, events.len()).await?;
                    &fetched
                }
            };
            if let Some(first) = retry::compare(stream, events, stored, start)? {
                tracing::debug!(%stream, first_revision = first.first_revision, "append recognised as a retry");
                return Ok(Some(first));
            }
        }

        let head = tail.last();
        let actual = ActualRevision::from_last(head.map(|event| event.revision));
        if !actual.satisfies(expected) {
            return Err(Error::WrongExpectedRevision {
                stream: stream.clone(),
                expected,
                actual,
            });
        }

        // The hash chain needs the predecessor this append lands after, so
        // the server must check that exact revision, whatever the caller
        // expected.
        let first_revision = head.map_or(0, |event| event.revision + 1);
        let mut previous = head.map_or(hash::GENESIS, |event| event.hash);
        let mut data = Vec::with_capacity(events.len());
        for (revision, event) in (first_revision..).zip(events) {
            previous = hash::event_hash(
                &previous,
                HashInput {
                    stream,
                    revision,
                    id: event.id,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    payload: &event.payload,
                    metadata: &event.metadata,
                },
            );
            data.push(codec::encode(event, &previous)?);
        }
        let state = head.map_or(StreamState::NoStream, |event| {
            StreamState::StreamRevision(event.revision)
        });
        let options = AppendToStreamOptions::default()
            .stream_state(state)
            .requires_leader(true);
        let name = self.inner.namespace.apply(stream.as_str());
        let lease = self.inner.connection.client();
        match lease.client.append_to_stream(name, &options, data).await {
            Ok(_) => {}
            Err(kurrentdb::Error::WrongExpectedVersion { .. }) => return Ok(None),
            Err(error) => {
                let operation = Operation::Append { stream, expected };
                return Err(self.inner.connection.failed(&lease, error, operation));
            }
        }

        // The acknowledgement carries no per-event positions (and none at
        // all when the server recognised the events as already written), so
        // read the batch back; this also proves it is ours, should another
        // writer have stored the same ids first.
        let stored = self.read_range(stream, first_revision, events.len()).await?;
        match retry::compare(stream, events, &stored, first_revision)? {
            Some(result) => Ok(Some(result)),
            None => Err(Error::Corrupt {
                location: format!("{stream} revision {first_revision}"),
                reason: "KurrentDB acknowledged the append but the events are not there".to_owned(),
            }),
        }
    }
}

#[async_trait]
impl EventStore for KurrentDbStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.inner.limits.check_batch(&events)?;
        for attempt in 1..=MAX_APPEND_ATTEMPTS {
            if let Some(result) = self.try_append(stream, expected, &events).await? {
                self.publish_head(result.last_position);
                return Ok(result);
            }
            tracing::debug!(%stream, attempt, "another writer appended first; reading the stream again");
        }
        Err(Error::Backend {
            message: format!(
                "appending to {stream}: lost the race to other writers {MAX_APPEND_ATTEMPTS} times; try again"
            ),
            source: None,
        })
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let start = match (direction, from) {
            (Direction::Forwards, ReadFrom::End) | (Direction::Backwards, ReadFrom::Start) => {
                return Ok(Vec::new());
            }
            (Direction::Forwards, ReadFrom::Start) => StreamPosition::Start,
            (Direction::Forwards, ReadFrom::Revision(revision)) => StreamPosition::Position(revision),
            (Direction::Backwards, ReadFrom::End) => StreamPosition::End,
            // KurrentDB reads backwards from a revision past the end as a
            // window ending there, which may hold nothing: start at the end.
            (Direction::Backwards, ReadFrom::Revision(revision)) => match self.stream_revision(stream).await?
            {
                None => return Ok(Vec::new()),
                Some(last) if revision >= last => StreamPosition::End,
                Some(_) => StreamPosition::Position(revision),
            },
        };
        let options = ReadStreamOptions::default().position(start).max_count(limit);
        let options = match direction {
            Direction::Forwards => options.forwards(),
            Direction::Backwards => options.backwards(),
        };
        self.read_stream_with(stream, options).await
    }

    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>> {
        Ok(self
            .read_tail(stream, 1)
            .await?
            .last()
            .map(|event| event.revision))
    }

    async fn read_all(
        &self,
        after: Position,
        filter: &AllFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        filter.validate()?;
        let namespace = &self.inner.namespace;
        let server = ServerFilter::of(namespace, filter).to_kurrent();
        let mut events = Vec::new();
        let mut from = after;
        while events.len() < limit {
            // Reading from an event's position includes that event: ask for
            // one more, and skip it.
            let extra = usize::from(from != Position::START);
            let asked = (limit - events.len()).min(READ_ALL_PAGE) + extra;
            let options = ReadAllOptions::default()
                .position(position::start_after(from))
                .forwards()
                .filter(server.clone())
                .max_count(asked);
            let page = self.read_all_page(&options).await?;
            for raw in &page {
                if raw.position.commit <= from.0 {
                    continue;
                }
                if !namespace.owns(raw.stream_id(), &raw.event_type) {
                    // Hidden, but passed: remember it so the next page
                    // starts beyond it.
                    if let Some(at) = position::from_kurrent(raw.position) {
                        from = at;
                    }
                    continue;
                }
                let event = codec::decode(namespace, RawEvent::from(raw))?;
                from = event.position;
                if filter.matches(&event) {
                    events.push(event);
                    if events.len() == limit {
                        break;
                    }
                }
            }
            if page.len() < asked {
                break;
            }
        }
        Ok(events)
    }

    async fn head(&self) -> Result<Position> {
        let namespace = &self.inner.namespace;
        let server = ServerFilter::of(namespace, &AllFilter::all()).to_kurrent();
        let mut before = StreamPosition::End;
        loop {
            let options = ReadAllOptions::default()
                .position(before)
                .backwards()
                .filter(server.clone())
                .max_count(HEAD_PAGE);
            let page = self.read_all_page(&options).await?;
            for raw in &page {
                if let StreamPosition::Position(limit) = before
                    && raw.position >= limit
                {
                    continue;
                }
                if namespace.owns(raw.stream_id(), &raw.event_type) {
                    let head = codec::decode(namespace, RawEvent::from(raw))?.position;
                    self.publish_head(head);
                    return Ok(head);
                }
            }
            match page.last() {
                Some(oldest) if page.len() == HEAD_PAGE => before = StreamPosition::Position(oldest.position),
                _ => return Ok(Position::START),
            }
        }
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        // Subscribe before starting the follower, which stops when nobody
        // watches.
        let receiver = self.inner.head.subscribe();
        let mut follower = self.inner.follower.lock().unwrap_or_else(PoisonError::into_inner);
        if follower.as_ref().is_none_or(JoinHandle::is_finished) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => *follower = Some(runtime.spawn(subscription::follow_head(self.clone()))),
                Err(_) => tracing::warn!(
                    "watch_head called outside a Tokio runtime: the head will move with this process's appends only"
                ),
            }
        }
        receiver
    }

    fn subscribe_all(&self, after: Position, filter: AllFilter) -> Subscription {
        subscription::subscribe(self, after, filter)
    }
}
