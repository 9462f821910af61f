//! The embedded default store: one SQLite database file in WAL mode.
//!
//! - **Durability.** No append is answered, and no reader sees its events,
//!   before the WAL that holds them is synced to disk, so an acknowledged
//!   append survives `kill -9` and power loss (as far as the disk honours
//!   fsync).
//! - **Group commit, in two stages.** All appends go through one writer
//!   thread ([`writer`]) that commits whatever is waiting in one
//!   transaction, without syncing; a sync thread ([`sync`]) syncs the WAL
//!   for every commit made meanwhile, then moves the head and answers. The
//!   writer commits the next group during that sync (ADR 0012).
//! - **Reads bounded by the head.** Every read stops at the head, which
//!   only moves after a sync: a commit not yet on disk is invisible. A new
//!   read must carry `position <= head` too; the tests in [`sync`] check
//!   the reads there are, not ones added later.
//! - **Order without holes.** The single writer assigns positions in commit
//!   order, so `$all` readers can never miss a late commit.
//! - **Reads at the head from memory.** The sync thread keeps the newest
//!   synced commits in a window ([`recent`]) that answers `$all` reads after any
//!   position it still holds: subscribers following the head never query
//!   SQLite.
//! - **One process.** A lock file beside the database keeps a second process
//!   from writing the same store. Other programs may still read the file
//!   (the `sqlite3` shell, for audits).
//! - **Versioned schema.** See [`schema`].

mod recent;
mod rows;
pub mod schema;
mod sync;
mod writer;

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, atomic::AtomicBool},
    thread::JoinHandle,
};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, params_from_iter, types::Value};
use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    AllFilter, AppendResult, Direction, Error, EventStore, ExpectedRevision, Limits, NewEvent, Position,
    ReadFrom, RecordedEvent, Result, StreamName,
    append::AppendRequest,
    subscription::{self, Subscription},
};

/// How long a reader waits for a lock (only checkpoints take one briefly).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Idle read connections kept for reuse: as many as concurrent readers
/// under load, since a new connection starts with no prepared statements.
const MAX_IDLE_READERS: usize = 64;
/// Bytes the WAL file is cut back to when the writer restarts it (SQLite
/// reuses the file from its start rather than truncating it; a burst would
/// otherwise leave it at its largest for good).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// Appends waiting for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;
/// Streams whose revision [`Revisions`] remembers (about 100 bytes each).
const REMEMBERED_STREAMS: usize = 65_536;

/// The last revision of each stream written since the store opened, kept
/// by the writer. This process is the only writer (the lock file), so a
/// remembered revision is the stream's current one, and a read past it can
/// be answered "nothing" without a trip to a reader thread and SQLite: the
/// common read of a command, which tops up a cached aggregate, finds no new
/// events. A stream not remembered (not written since opening, or
/// forgotten when the map is full) is read from the database as always.
#[derive(Debug, Default)]
pub(crate) struct Revisions {
    last: Mutex<std::collections::HashMap<String, u64>>,
}

impl Revisions {
    /// Called by the writer after a commit, with each stream it moved.
    fn committed<'a>(&self, streams: impl Iterator<Item = (&'a StreamName, u64)>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        for (stream, revision) in streams {
            // The common case, a stream written before, allocates nothing.
            if let Some(known) = last.get_mut(stream.as_str()) {
                *known = revision;
                continue;
            }
            if last.len() >= REMEMBERED_STREAMS {
                // Crude but bounded: forgetting only costs a database read.
                last.clear();
            }
            last.insert(stream.as_str().to_owned(), revision);
        }
    }

    /// The stream's current revision, if remembered.
    fn get(&self, stream: &StreamName) -> Option<u64> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.get(stream.as_str()).copied()
    }
}

/// Wraps a SQLite error with what the store was doing.
fn sql_error(what: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |error| Error::backend(what, error)
}

/// A handle to an open SQLite store. Clones share it; the database closes
/// when the last clone (and every subscription) is dropped.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    limits: Limits,
    /// `None` once closing has begun.
    jobs: Option<mpsc::Sender<writer::Job>>,
    /// The writer, the sync thread (which stops once the writer has and
    /// every commit is answered), then the checkpointer (which stops when
    /// the writer's connection closes).
    threads: Vec<JoinHandle<()>>,
    head: watch::Receiver<Position>,
    revisions: Arc<Revisions>,
    recent: Arc<recent::RecentEvents>,
    readers: Mutex<Vec<Connection>>,
    /// Held for the store's lifetime: the OS releases it if the process dies.
    _lock: File,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, migrating its schema.
    /// Blocks briefly: call it at startup.
    pub fn open(path: impl AsRef<Path>, limits: Limits) -> Result<Self> {
        Self::open_with_sync(path, limits, sync::fdatasync())
    }

    /// [`SqliteStore::open`], with the WAL made durable by `sync_wal`.
    pub(crate) fn open_with_sync(
        path: impl AsRef<Path>,
        limits: Limits,
        sync_wal: sync::SyncWal,
    ) -> Result<Self> {
        let path = path.as_ref().to_owned();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::backend(format!("creating {}", parent.display()), e))?;
        }
        let lock = lock(&path)?;

        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_error("opening the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_error("setting the busy timeout"))?;
        // Checked before the first write, so a foreign or newer file is untouched.
        let version = schema::check_compatible(&conn, &path)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
            .map_err(sql_error("configuring the database"))?;
        schema::migrate(&mut conn, version)?;
        // From here on commits do not sync: the sync stage does (ADR 0012).
        // Checkpoints still sync the WAL before copying it (SQLite does
        // that at NORMAL too), so a checkpoint never copies unsynced frames.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_error("configuring the writer"))?;

        let last: i64 = conn
            .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(sql_error("reading the head position"))?;
        let head = watch::Sender::new(Position(last as u64));
        let head_rx = head.subscribe();
        // The checkpointer does what SQLite's automatic checkpoints would do
        // inside a commit; see `writer::checkpoint`.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .and_then(|()| conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT))
            .map_err(sql_error("configuring checkpoints"))?;
        let checkpointer_conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_error("opening the checkpointer"))?;
        checkpointer_conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sql_error("setting the busy timeout"))?;
        // A connection opens the WAL with its first read. Until then a
        // checkpoint through `sqlite3_wal_checkpoint_v2` finds no WAL on it
        // and does nothing (the PRAGMA form reads the schema first, and so
        // opens it; the direct call does not).
        checkpointer_conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(sql_error("opening the WAL for checkpoints"))?;
        // The WAL itself, for the sync stage. SQLite keeps this file (it
        // only truncates it) while any connection is open, and the writer's
        // stays open as long as the store, so this is the file it writes.
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        let wal_file = File::options()
            .read(true)
            .write(true)
            .open(&wal_path)
            .map_err(|e| Error::backend(format!("opening {}", PathBuf::from(&wal_path).display()), e))?;
        let (nudge, nudges) = std::sync::mpsc::channel();
        let wal_frames = writer::watch_wal(&mut conn, nudge).map_err(sql_error("watching the WAL"))?;
        let checkpointer = std::thread::Builder::new()
            .name("palaver-store-checkpointer".to_owned())
            .spawn({
                let wal_frames = Arc::clone(&wal_frames);
                move || writer::checkpoint(checkpointer_conn, nudges, &wal_frames)
            })
            .map_err(|e| Error::backend("starting the checkpointer thread", e))?;

        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let revisions = Arc::new(Revisions::default());
        let sync_revisions = Arc::clone(&revisions);
        let recent = Arc::new(recent::RecentEvents::new(Position(last as u64)));
        let sync_recent = Arc::clone(&recent);
        let stopped = Arc::new(AtomicBool::new(false));
        let sync_stopped = Arc::clone(&stopped);
        let (synced, commits) = std::sync::mpsc::channel();
        let syncer = std::thread::Builder::new()
            .name("palaver-store-sync".to_owned())
            .spawn(move || {
                let shared = sync::Durability {
                    head,
                    revisions: &sync_revisions,
                    recent: &sync_recent,
                    stopped: &sync_stopped,
                };
                sync::run(wal_file, sync_wal, commits, shared);
            })
            .map_err(|e| Error::backend("starting the sync thread", e))?;
        let writer = std::thread::Builder::new()
            .name("palaver-store-writer".to_owned())
            .spawn(move || writer::run(conn, queue, &synced, &stopped, &wal_frames, last as u64 + 1))
            .map_err(|e| Error::backend("starting the writer thread", e))?;

        tracing::debug!(path = %path.display(), head = last, "event store opened");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                limits,
                jobs: Some(jobs),
                threads: vec![writer, syncer, checkpointer],
                head: head_rx,
                revisions,
                recent,
                readers: Mutex::new(Vec::new()),
                _lock: lock,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The highest position any read may return: the head, which moves
    /// only after a sync, so a commit not yet on disk is never read (ADR
    /// 0012). Every SQL read carries `position <= ` this.
    fn read_bound(&self) -> i64 {
        to_sql_int(self.inner.head.borrow().0)
    }

    /// `read_all` from the database file, past the window of recent events
    /// (the caller has validated `filter`).
    async fn read_all_from_file(
        &self,
        after: Position,
        filter: &AllFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let mut sql = format!(
            "SELECT {} FROM events WHERE position > ? AND position <= ?",
            rows::COLUMNS
        );
        let mut params = vec![
            Value::Integer(to_sql_int(after.0)),
            Value::Integer(self.read_bound()),
        ];
        if !filter.stream_prefixes.is_empty() {
            // Prefixes were checked to hold no GLOB syntax.
            let tests = vec!["stream GLOB ?"; filter.stream_prefixes.len()].join(" OR ");
            sql.push_str(&format!(" AND ({tests})"));
            params.extend(
                filter
                    .stream_prefixes
                    .iter()
                    .map(|p| Value::Text(format!("{p}*"))),
            );
        }
        if !filter.event_types.is_empty() {
            let marks = vec!["?"; filter.event_types.len()].join(", ");
            sql.push_str(&format!(" AND event_type IN ({marks})"));
            params.extend(filter.event_types.iter().cloned().map(Value::Text));
        }
        sql.push_str(" ORDER BY position LIMIT CAST(? AS INTEGER)");
        params.push(Value::Integer(to_sql_int(limit as u64)));
        self.with_reader(move |conn| rows::query(conn, &sql, params_from_iter(params)))
            .await
    }

    /// Runs `read` on a pooled read-only connection, off the async threads.
    async fn with_reader<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&inner.path)?,
            };
            let result = read(&conn);
            let mut idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| Error::backend("a read task failed", e))?
    }
}

fn lock(path: &Path) -> Result<File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::backend(format!("opening {}", lock_path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::backend(format!("locking {}", lock_path.display()), e))
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_error("opening a reader"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql_error("setting the busy timeout"))?;
    // Room for every filter shape a subscriber uses, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(64);
    // No stable query plans (QPSG) here, unlike the read-model readers:
    // `stream GLOB ?` filters need the bound prefix to use the index. (On
    // the writer it was measured slower, but in runs that also had a
    // since-fixed 40 ms Nagle stall; not measured again.)
    Ok(conn)
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and stop;
        // waiting for it means the file is closed when the lock is released.
        self.jobs.take();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("an event store thread panicked");
            }
        }
    }
}

/// SQLite stores integers as i64; revisions beyond that cannot exist.
fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[async_trait]
impl EventStore for SqliteStore {
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
        let jobs = self.inner.jobs.as_ref().ok_or(Error::Closed)?;
        jobs.send(job).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        // Every `LIMIT` here is `CAST(? AS INTEGER)`, never a bare `?`:
        // SQLite (3.4x+) plans with a bare LIMIT parameter's value and so
        // re-prepares the statement each time it is bound to another one
        // (a tenth of the server's time under webhook load was parsing).
        if direction == Direction::Forwards
            && let ReadFrom::Revision(from) = from
            && self.inner.revisions.get(stream).is_some_and(|last| from > last)
        {
            return Ok(Vec::new());
        }
        let head = self.read_bound();
        let (sql, revision) = match direction {
            Direction::Forwards => (
                "WHERE stream = ?1 AND revision >= ?2 AND position <= ?4 \
                 ORDER BY revision ASC LIMIT CAST(?3 AS INTEGER)",
                match from {
                    ReadFrom::Start => 0,
                    ReadFrom::End => i64::MAX,
                    ReadFrom::Revision(revision) => to_sql_int(revision),
                },
            ),
            Direction::Backwards => (
                "WHERE stream = ?1 AND revision <= ?2 AND position <= ?4 \
                 ORDER BY revision DESC LIMIT CAST(?3 AS INTEGER)",
                match from {
                    ReadFrom::Start => -1,
                    ReadFrom::End => i64::MAX,
                    ReadFrom::Revision(revision) => to_sql_int(revision),
                },
            ),
        };
        let sql = format!("SELECT {} FROM events {sql}", rows::COLUMNS);
        let stream = stream.as_str().to_owned();
        let limit = to_sql_int(limit as u64);
        self.with_reader(move |conn| {
            rows::query(conn, &sql, rusqlite::params![stream, revision, limit, head])
        })
        .await
    }

    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>> {
        if let Some(revision) = self.inner.revisions.get(stream) {
            return Ok(Some(revision));
        }
        let stream = stream.as_str().to_owned();
        // From the events, not the `streams` table, which holds commits not
        // yet synced too.
        let head = self.read_bound();
        self.with_reader(move |conn| {
            use rusqlite::OptionalExtension;
            conn.prepare_cached(
                "SELECT revision FROM events WHERE stream = ?1 AND position <= ?2 \
                 ORDER BY revision DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(rusqlite::params![stream, head], |row| row.get::<_, i64>(0))
                    .optional()
            })
            .map(|revision| revision.map(|r| r as u64))
            .map_err(sql_error("reading a stream revision"))
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
        if let Some(events) = self.inner.recent.read(after, filter, limit) {
            return Ok(events);
        }
        self.read_all_from_file(after, filter, limit).await
    }

    async fn head(&self) -> Result<Position> {
        Ok(*self.inner.head.borrow())
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.head.clone()
    }

    fn subscribe_all(&self, after: Position, filter: AllFilter) -> Subscription {
        subscription::catch_up(self.clone(), after, filter)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::Metadata;

    /// On a fresh store the window of recent events answers every `$all`
    /// read, so the store contract alone would no longer notice a broken
    /// SQL filter, nor a window that filters differently from SQL. Both
    /// must give the same events for every filter, start and limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_window_and_the_file_give_the_same_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db"), Limits::default()).unwrap();
        for (stream, event_type) in [
            ("thread-1", "t.Opened"),
            ("contact-1", "t.Created"),
            ("thread-2", "t.Opened"),
            ("thread-1", "t.Closed"),
            ("threadx-1", "t.Opened"),
            ("contact-1", "t.Merged"),
        ] {
            let event = NewEvent::new(event_type, &b"{}"[..], Metadata::new(Utc::now()));
            store
                .append(
                    &StreamName::new(stream).unwrap(),
                    ExpectedRevision::Any,
                    vec![event],
                )
                .await
                .unwrap();
        }
        let filters = [
            AllFilter::all(),
            AllFilter::stream_prefixes(["thread-"]),
            AllFilter::stream_prefixes(["thread", "contact-"]),
            AllFilter::event_types(["t.Opened", "t.Merged"]),
            AllFilter {
                stream_prefixes: vec!["thread-".to_owned()],
                event_types: vec!["t.Opened".to_owned()],
            },
            AllFilter::event_types(["t.Nothing"]),
        ];
        for filter in &filters {
            for after in 0..=6 {
                for limit in [1, 2, 100] {
                    let after = Position(after);
                    let window = store
                        .inner
                        .recent
                        .read(after, filter, limit)
                        .expect("all in the window");
                    let file = store.read_all_from_file(after, filter, limit).await.unwrap();
                    assert_eq!(window, file, "{filter:?} after {after} limit {limit}");
                }
            }
        }
        // And the filters select what they say (not merely the same wrong thing).
        let opened_threads = store
            .read_all_from_file(Position::START, &filters[4], 100)
            .await
            .unwrap();
        assert_eq!(
            opened_threads.iter().map(|e| e.position.0).collect::<Vec<_>>(),
            [1, 3]
        );
    }
}
