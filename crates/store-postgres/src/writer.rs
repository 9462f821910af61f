//! The writer task and its group commit.
//!
//! Every append of a process goes through one task that owns the writing
//! connection. It takes the appends waiting in its queue and commits them
//! together, in one transaction:
//!
//! 1. `BEGIN`, take the schema's append lock (`pg_advisory_xact_lock`),
//!    read the last position, the heads of the streams the group touches
//!    and any stored events with the ids it carries: one round trip.
//! 2. Run the shared append algorithm ([`append_to`]) for each request
//!    against those prefetched rows in memory. A refused request simply
//!    contributes no rows; the next sees the heads the previous left.
//! 3. Insert every accepted row with multi-row `INSERT … UNNEST`, move the
//!    stream heads, `NOTIFY` the new head and `COMMIT` (waiting for the WAL
//!    flush): one round trip (more only for groups of thousands of events).
//! 4. Publish the head, answer.
//!
//! The lock serialises writers across processes, so positions (last + 1)
//! are handed out in commit order: a reader that has seen position `p`
//! never later finds an event below it. See
//! `docs/adr/0005-postgres-global-order.md`.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use futures::future::{try_join, try_join_all, try_join5};
use palaver_store::{
    AppendResult, Error, Position, RecordedEvent, Result, StreamName,
    append::{AppendRequest, AppendTarget, StreamHead, append_to},
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{
    Client, Statement,
    types::{ToSql, Type},
};
use uuid::Uuid;

use crate::{
    LOCK_CLASS_APPEND,
    connect::{Connector, SchemaName, db_error, store_session},
    options::channel,
    rows::{self, Columns, to_sql_int},
};

/// Most appends committed together: bounds the latency one group adds.
const MAX_GROUP_APPENDS: usize = 512;
/// Most events in one group (a single larger append is committed alone).
const MAX_GROUP_EVENTS: usize = 20_000;
/// Most payload bytes in one group (a single larger append is committed alone).
const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;
/// Rows per INSERT statement, and the bytes that close a statement early,
/// keeping each array parameter far below PostgreSQL's 1 GiB per value.
const CHUNK_ROWS: usize = 2_000;
const CHUNK_BYTES: usize = 32 * 1024 * 1024;

/// One append waiting for the writer.
pub(crate) struct Job {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<AppendResult>>,
}

/// The writing connection with its prepared statements.
pub(crate) struct Connection {
    client: Client,
    lock: Statement,
    head: Statement,
    heads: Statement,
    find: Statement,
    insert: Statement,
    finish: Statement,
}

impl Connection {
    /// Prepares the writer's statements on `client` (one round trip).
    pub(crate) async fn prepare(client: Client) -> Result<Self> {
        let c = &client;
        let (lock, head, heads, find) = futures::future::try_join4(
            c.prepare_typed(include_str!("sql/advisory_lock.sql"), &[Type::INT4, Type::INT4]),
            c.prepare(include_str!("sql/head.sql")),
            c.prepare_typed(include_str!("sql/stream_heads.sql"), &[Type::TEXT_ARRAY]),
            c.prepare_typed(include_str!("sql/find_events.sql"), &[Type::UUID_ARRAY]),
        )
        .await
        .map_err(db_error("preparing the writer's statements"))?;
        let (insert, finish) = futures::future::try_join(
            c.prepare(include_str!("sql/insert_events.sql")),
            c.prepare(include_str!("sql/finish_append.sql")),
        )
        .await
        .map_err(db_error("preparing the writer's statements"))?;
        Ok(Connection {
            client,
            lock,
            head,
            heads,
            find,
            insert,
            finish,
        })
    }
}

/// The writer task's state.
pub(crate) struct Writer {
    pub connector: Connector,
    /// `None` after the connection was lost, until the next group reconnects.
    pub conn: Option<Connection>,
    pub head: Arc<watch::Sender<Position>>,
}

impl Writer {
    /// Runs until every sender is dropped (the store is closed).
    pub(crate) async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut carried: Option<Job> = None;
        let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP_APPENDS);
        loop {
            let first = match carried.take() {
                Some(job) => job,
                None => match jobs.recv().await {
                    Some(job) => job,
                    None => return,
                },
            };
            gather(&jobs).await;
            let (mut events, mut bytes) = weight(&first);
            group.push(first);
            while group.len() < MAX_GROUP_APPENDS {
                let Ok(job) = jobs.try_recv() else { break };
                let (more_events, more_bytes) = weight(&job);
                if events + more_events > MAX_GROUP_EVENTS || bytes + more_bytes > MAX_GROUP_BYTES {
                    carried = Some(job);
                    break;
                }
                events += more_events;
                bytes += more_bytes;
                group.push(job);
            }
            let results = self.commit(&group).await;
            for (job, result) in group.drain(..).zip(results) {
                // A caller that gave up waiting is no reason to stop.
                let _ = job.reply.send(result);
            }
        }
    }

    /// Commits a group; if that fails, tries each append alone (on a new
    /// connection if the old one was lost), so that one append the
    /// database rejects, or a connection lost once, fails no other. Trying
    /// again is safe even if the failed commit did land: the append
    /// algorithm recognises the stored ids and returns the first result.
    async fn commit(&mut self, group: &[Job]) -> Vec<Result<AppendResult>> {
        let requests: Vec<&AppendRequest> = group.iter().map(|job| &job.request).collect();
        let error = match self.try_commit(&requests).await {
            Ok(results) => return results,
            Err(error) => error,
        };
        tracing::warn!(%error, appends = group.len(), "an append group failed; trying each append alone");
        let mut results = Vec::with_capacity(group.len());
        // Once the database cannot be reached, the rest fail at once rather
        // than each waiting for a connection attempt of its own.
        let mut unreachable: Option<String> = None;
        for request in requests {
            if let Some(message) = &unreachable {
                results.push(Err(Error::Backend {
                    message: message.clone(),
                    source: None,
                }));
                continue;
            }
            results.push(match self.try_commit(&[request]).await {
                Ok(mut result) => result.pop().unwrap_or(Err(Error::Closed)),
                Err(error) => {
                    if self.conn.is_none() {
                        unreachable = Some(match &error {
                            Error::Backend { message, .. } => message.clone(),
                            other => other.to_string(),
                        });
                    }
                    Err(error)
                }
            });
        }
        results
    }

    /// One transaction for `requests`. `Err` means it failed or its outcome
    /// is unknown (the connection was lost during `COMMIT`); per-request
    /// refusals are in the `Ok` vector.
    async fn try_commit(&mut self, requests: &[&AppendRequest]) -> Result<Vec<Result<AppendResult>>> {
        let conn = match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => conn,
            _ => {
                let client = self.connector.connect(store_session("writer")).await?;
                Connection::prepare(client).await?
            }
        };
        match commit_group(&conn, requests, self.connector.schema()).await {
            Ok((results, head)) => {
                self.conn = Some(conn);
                // Before answering: a caller that subscribes right after its
                // append returns must find its events readable.
                crate::live::publish(&self.head, head);
                Ok(results)
            }
            Err(error) => {
                // Keep the connection only if it is still usable.
                if !conn.client.is_closed() && conn.client.batch_execute("ROLLBACK").await.is_ok() {
                    self.conn = Some(conn);
                }
                Err(error)
            }
        }
    }
}

/// Lets callers that are about to append join the group: yields to the
/// runtime while the queue keeps growing (a few times at most). Without
/// it, callers answered by the last commit (woken together) arrive just
/// after the next group was taken, and groups alternate between nearly
/// all of them and one: a whole commit for a single append.
async fn gather(jobs: &mpsc::Receiver<Job>) {
    const MAX_YIELDS: usize = 8;
    let mut waiting = jobs.len();
    for _ in 0..MAX_YIELDS {
        tokio::task::yield_now().await;
        let now = jobs.len();
        if now == waiting || now >= MAX_GROUP_APPENDS {
            return;
        }
        waiting = now;
    }
}

/// Events and payload bytes of one job, for bounding a group.
fn weight(job: &Job) -> (usize, usize) {
    let events = &job.request.events;
    (events.len(), events.iter().map(|event| event.size()).sum())
}

/// Runs one group transaction. Returns each request's result and the head
/// once it committed.
async fn commit_group(
    conn: &Connection,
    requests: &[&AppendRequest],
    schema: &SchemaName,
) -> Result<(Vec<Result<AppendResult>>, Position)> {
    let client = &conn.client;
    let mut names: Vec<&str> = requests.iter().map(|r| r.stream.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|r| r.events.iter().map(|event| event.id))
        .collect();

    // One round trip: the server runs these in order, so the reads happen
    // with the lock held and see every earlier append committed.
    let (_, _, last, heads, found) = try_join5(
        client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED"),
        client.execute(&conn.lock, &[&LOCK_CLASS_APPEND, &schema.lock_key()]),
        client.query_one(&conn.head, &[]),
        client.query(&conn.heads, &[&names]),
        client.query(&conn.find, &[&ids]),
    )
    .await
    .map_err(db_error("starting an append"))?;

    let last: i64 = last.try_get(0).map_err(db_error("reading the head"))?;
    let mut group = Group {
        stored: HashMap::with_capacity(found.len()),
        heads: HashMap::with_capacity(heads.len()),
        next_position: last as u64 + 1,
        rows: Vec::new(),
    };
    for row in &heads {
        let (name, head) = decode_head(row)?;
        group.heads.insert(name, head);
    }
    for row in &found {
        let event = rows::decode(row)?;
        group.stored.insert(event.id, event);
    }

    let results: Vec<Result<AppendResult>> = requests.iter().map(|r| append_to(&mut group, r)).collect();
    let Some(last) = group.rows.last().map(|event| event.position) else {
        client
            .batch_execute("COMMIT")
            .await
            .map_err(db_error("committing"))?;
        // Nothing written, but the head read under the lock is committed:
        // publishing it makes a retry of an append whose first commit did
        // land (unknown to its caller) readable at once.
        return Ok((results, Position(last as u64)));
    };

    let touched: HashSet<&StreamName> = group.rows.iter().map(|event| &event.stream).collect();
    let mut stream_names = Vec::with_capacity(touched.len());
    let mut revisions = Vec::with_capacity(touched.len());
    let mut hashes: Vec<&[u8]> = Vec::with_capacity(touched.len());
    for name in touched {
        let head = &group.heads[name];
        stream_names.push(name.as_str());
        revisions.push(to_sql_int(head.revision));
        hashes.push(&head.hash);
    }
    let mut columns: Vec<Columns<'_>> = chunks(&group.rows).map(Columns::of).collect();
    let last_chunk = columns.pop().expect("there are rows, so there is a chunk");
    let head_text = last.0.to_string();
    let channel = channel(schema);
    // Rows beyond one statement's worth (groups of thousands) go first.
    try_join_all(
        columns
            .iter()
            .map(|chunk| client.execute_raw(&conn.insert, chunk.params())),
    )
    .await
    .map_err(db_error("writing events"))?;
    let mut params: Vec<&(dyn ToSql + Sync)> = last_chunk.params().to_vec();
    params.extend([
        &stream_names as &(dyn ToSql + Sync),
        &revisions,
        &hashes,
        &channel,
        &head_text,
    ]);
    // One round trip: if the statement fails, the COMMIT behind it finds
    // the transaction aborted and rolls it back, and the statement's error
    // is the one reported.
    try_join(
        client.execute_raw(&conn.finish, params),
        client.batch_execute("COMMIT"),
    )
    .await
    .map_err(db_error("writing and committing events"))?;
    Ok((results, last))
}

/// Splits rows into INSERT statements of bounded size.
fn chunks(rows: &[RecordedEvent]) -> impl Iterator<Item = &[RecordedEvent]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut end = 0;
        while end < rest.len() && end < CHUNK_ROWS && (end == 0 || bytes < CHUNK_BYTES) {
            bytes += rest[end].payload.len();
            end += 1;
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

fn decode_head(row: &tokio_postgres::Row) -> Result<(StreamName, StreamHead)> {
    let read = db_error("reading a stream head");
    let name: String = row.try_get(0).map_err(&read)?;
    let revision: i64 = row.try_get(1).map_err(&read)?;
    let hash: &[u8] = row.try_get(2).map_err(&read)?;
    let corrupt = |reason: String| Error::Corrupt {
        location: format!("the head of stream {name:?}"),
        reason,
    };
    let head = StreamHead {
        revision: u64::try_from(revision).map_err(|_| corrupt(format!("revision {revision}")))?,
        hash: hash
            .try_into()
            .map_err(|_| corrupt(format!("a hash of {} bytes", hash.len())))?,
    };
    let name = StreamName::new(name.clone()).map_err(|error| corrupt(error.to_string()))?;
    Ok((name, head))
}

/// One group's view of the store, as the append algorithm sees it: the
/// prefetched rows plus whatever earlier requests of the group added.
struct Group {
    /// Stored events among the group's ids, and every accepted event.
    stored: HashMap<Uuid, RecordedEvent>,
    /// Heads of the group's streams that have events.
    heads: HashMap<StreamName, StreamHead>,
    next_position: u64,
    /// Accepted events, in position order: what the transaction inserts.
    rows: Vec<RecordedEvent>,
}

impl AppendTarget for Group {
    fn find_event(&mut self, id: Uuid) -> Result<Option<RecordedEvent>> {
        // Every id of the group was prefetched: absent means not stored.
        Ok(self.stored.get(&id).cloned())
    }

    fn stream_head(&mut self, stream: &StreamName) -> Result<Option<StreamHead>> {
        Ok(self.heads.get(stream).copied())
    }

    fn next_position(&mut self) -> Result<Position> {
        Ok(Position(self.next_position))
    }

    fn insert(&mut self, events: Vec<RecordedEvent>) -> Result<()> {
        // Check all before changing anything: a refused request adds nothing.
        if let Some((event, stored)) = events
            .iter()
            .find_map(|event| self.stored.get(&event.id).map(|stored| (event, stored)))
        {
            return Err(Error::EventIdConflict {
                event_id: event.id,
                reason: format!("{} revision {}", stored.stream, stored.revision),
            });
        }
        let Some(last) = events.last() else {
            return Ok(());
        };
        self.heads.insert(
            last.stream.clone(),
            StreamHead {
                revision: last.revision,
                hash: last.hash,
            },
        );
        self.next_position = last.position.0 + 1;
        for event in &events {
            self.stored.insert(event.id, event.clone());
        }
        self.rows.extend(events);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use palaver_store::{ExpectedRevision, Metadata, NewEvent};

    use super::*;

    fn request(stream: &str, expected: ExpectedRevision, events: &[NewEvent]) -> AppendRequest {
        AppendRequest {
            stream: StreamName::new(stream).unwrap(),
            expected,
            events: events.to_vec(),
        }
    }

    /// Requests of one group see each other, as if committed one by one.
    #[test]
    fn a_group_runs_its_requests_in_order() {
        let new = || NewEvent::new("t", b"x".to_vec(), Metadata::new(Utc::now()));
        let (first, second) = ([new(), new()], [new()]);
        let mut group = Group {
            stored: HashMap::new(),
            heads: HashMap::new(),
            next_position: 8,
            rows: Vec::new(),
        };
        let mut run = |r: AppendRequest| append_to(&mut group, &r);
        let a = run(request("s-1", ExpectedRevision::NoStream, &first)).unwrap();
        assert_eq!((a.first_position, a.last_revision), (Position(8), 1));
        // A stale expectation is refused and adds nothing...
        assert!(matches!(
            run(request("s-1", ExpectedRevision::NoStream, &second)),
            Err(Error::WrongExpectedRevision { .. })
        ));
        // ...so the next request takes the next place.
        let b = run(request("s-1", ExpectedRevision::Exact(1), &second)).unwrap();
        assert_eq!((b.first_position, b.first_revision), (Position(10), 2));
        // A retry within the group returns the first result.
        assert_eq!(run(request("s-1", ExpectedRevision::Any, &first)).unwrap(), a);
        // Ids taken earlier in the group are refused elsewhere.
        assert!(matches!(
            run(request("s-2", ExpectedRevision::Any, &second)),
            Err(Error::EventIdConflict { .. })
        ));
        assert!(matches!(
            run(request("s-2", ExpectedRevision::Any, &[new(), second[0].clone()])),
            Err(Error::EventIdConflict { .. })
        ));
        let positions: Vec<u64> = group.rows.iter().map(|e| e.position.0).collect();
        assert_eq!(positions, [8, 9, 10]);
        assert_eq!(group.next_position, 11);
        assert_eq!(group.heads[&StreamName::new("s-1").unwrap()].revision, 2);
        assert!(!group.heads.contains_key(&StreamName::new("s-2").unwrap()));
    }

    #[test]
    fn chunks_cover_every_row_once_within_bounds() {
        let event = |payload: usize| RecordedEvent {
            id: Uuid::new_v4(),
            stream: StreamName::new("s-1").unwrap(),
            revision: 0,
            position: Position(1),
            event_type: "t".into(),
            schema_version: 1,
            payload: vec![0u8; payload].into(),
            metadata: Metadata::new(Utc::now()),
            hash: [0; 32],
        };
        let rows: Vec<_> = (0..CHUNK_ROWS * 2 + 5).map(|_| event(1)).collect();
        let sizes: Vec<usize> = chunks(&rows).map(<[_]>::len).collect();
        assert_eq!(sizes, [CHUNK_ROWS, CHUNK_ROWS, 5]);
        // Big payloads close a chunk early, but a chunk always has a row.
        let big: Vec<_> = (0..3).map(|_| event(CHUNK_BYTES)).collect();
        assert_eq!(chunks(&big).map(<[_]>::len).collect::<Vec<_>>(), [1, 1, 1]);
        assert_eq!(chunks(&[]).count(), 0);
    }
}
