//! Keeping read models live: one task follows `$all` and feeds every
//! projector, and callers can wait for a position (read your own writes).
//! The read models are a SQLite file or a PostgreSQL schema
//! ([`ReadModelWriter`]); the loop, the waits and the rebuild are the same
//! for both. Several instances sharing PostgreSQL read models take turns
//! ([`SharedLease`]): the one holding the lease projects, the others follow
//! the stored checkpoints so their read-your-writes waits still work.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::{FutureExt, StreamExt};
use palaver_store::{AllFilter, EventStore, Position};
use palaver_store_postgres::{Lease, PgLeases};
use tokio::{sync::watch, time::Instant};

use crate::{
    Error, Result,
    cache::Changes,
    database::ReadModelDb,
    postgres::{PgReadModelDb, writer::drop_schema},
    rebuild,
};

/// Most events folded in one transaction while catching up.
const BATCH: usize = 2000;
/// Under a steady stream of events, how long a batch may wait for more
/// before it is applied. Each read-model commit writes every page it
/// touched to the WAL, and under steady replies most of those pages (the
/// inbox rows and their activity index, the timeline's last page) are the
/// same whatever the batch size, so a commit's cost per event falls as the
/// batch grows: going from 2 ms to 5 ms cut the server's CPU per reply by
/// about 8 % in the gRPC benchmark. A batch only waits when the previous
/// one ended less than this long ago (events are streaming), so the first
/// event after a pause is applied at once and read-your-writes stays
/// immediate on a quiet server; nor while a caller waits for a position
/// (`Projections::wait_for`). Under load the inbox thus lags the events by
/// at most this, which nobody reading an inbox can tell.
const LINGER: Duration = Duration::from_millis(5);

/// Counts a caller of [`Projections::wait_for`] while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The lease that instances sharing PostgreSQL read models take turns on.
pub const PROJECTIONS_LEASE: &str = "projections";
/// How often an instance that does not project reads the stored
/// checkpoints: the extra delay of read-your-writes there.
const STANDBY_REFRESH: Duration = Duration::from_millis(100);
/// How often an instance that does not project asks for the lease.
const LEASE_POLL: Duration = Duration::from_secs(1);

/// How an instance takes its turn projecting into PostgreSQL read models
/// that several instances share. One holds the lease and projects; when it
/// dies the lease expires and another takes over from the stored
/// checkpoints. (Even two projecting at once could not apply an event
/// twice: each batch locks the checkpoint rows; the lease saves the work.)
#[derive(Clone, Debug)]
pub struct SharedLease {
    /// Leases in the shared database.
    pub leases: PgLeases,
    /// This instance, unique among live ones.
    pub holder: String,
    /// How long the lease lasts unless renewed (renewed every third).
    pub ttl: Duration,
}

/// What the projection loop is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Following `$all`.
    Running,
    /// Stopped on an error; the message says why. Checkpoints stay before
    /// the event that caused it.
    Failed(String),
    /// Shut down.
    Stopped,
}

/// How far behind `$all` the read models are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// The lowest checkpoint.
    pub position: Position,
    /// The store's head.
    pub head: Position,
    /// Events between them.
    pub events: u64,
    /// Age of the oldest event not yet projected (0 when caught up).
    pub seconds: f64,
}

/// The writable side of the read models, on either backend: what
/// [`Projections::start`] feeds.
#[derive(Debug)]
pub enum ReadModelWriter {
    /// A SQLite file ([`ReadModelDb::open`]).
    Sqlite(ReadModelDb),
    /// A PostgreSQL schema ([`PgReadModelDb::open`]).
    Postgres(Box<PgReadModelDb>),
}

impl From<ReadModelDb> for ReadModelWriter {
    fn from(db: ReadModelDb) -> Self {
        ReadModelWriter::Sqlite(db)
    }
}

impl From<PgReadModelDb> for ReadModelWriter {
    fn from(db: PgReadModelDb) -> Self {
        ReadModelWriter::Postgres(Box::new(db))
    }
}

/// The loop's writer, shared with the handles.
#[derive(Clone)]
enum Writer {
    /// Used from blocking threads.
    Sqlite(Arc<Mutex<ReadModelDb>>),
    Postgres {
        db: Arc<tokio::sync::Mutex<PgReadModelDb>>,
        /// The writer's checkpoints after its last batch, readable without
        /// waiting for the batch in progress.
        checkpoints: Arc<Mutex<Vec<(&'static str, Position)>>>,
    },
}

/// Live read models over a store. Clones share the same loop.
#[derive(Clone)]
pub struct Projections {
    store: Arc<dyn EventStore>,
    writer: Writer,
    path: PathBuf,
    position: watch::Receiver<Position>,
    /// Shared with the loop, so a rebuild can publish the swapped position.
    position_tx: Arc<watch::Sender<Position>>,
    status: watch::Receiver<Status>,
    /// Callers in [`Projections::wait_for`]: while any waits, a batch is
    /// applied at once rather than lingering for more events.
    waiting: Arc<AtomicUsize>,
    /// Commits to the tables, for readers that cache ([`Projections::changes`]).
    changes: Changes,
}

impl std::fmt::Debug for Projections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projections")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Projections {
    /// Starts following `store` into `db` (a [`ReadModelDb`] or a
    /// [`PgReadModelDb`]) on the current tokio runtime. `path` is the SQLite
    /// file's (a rebuild writes its scratch file beside it); PostgreSQL read
    /// models do not use it. The loop ends when `shutdown` resolves, after
    /// finishing its batch.
    pub fn start(
        store: Arc<dyn EventStore>,
        db: impl Into<ReadModelWriter>,
        path: impl AsRef<Path>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self::start_with(store, db.into(), path.as_ref(), None, shutdown)
    }

    /// Starts PostgreSQL read models that several instances share: this
    /// instance projects only while it holds [`PROJECTIONS_LEASE`], and
    /// otherwise follows the checkpoints the holder stores.
    pub fn start_shared(
        store: Arc<dyn EventStore>,
        db: PgReadModelDb,
        lease: SharedLease,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self::start_with(store, db.into(), Path::new(""), Some(lease), shutdown)
    }

    fn start_with(
        store: Arc<dyn EventStore>,
        db: ReadModelWriter,
        path: &Path,
        lease: Option<SharedLease>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let (writer, position) = match db {
            ReadModelWriter::Sqlite(db) => {
                let position = db.position();
                (Writer::Sqlite(Arc::new(Mutex::new(db))), position)
            }
            ReadModelWriter::Postgres(db) => {
                let position = db.position();
                let checkpoints = Arc::new(Mutex::new(sorted(&db.checkpoints())));
                let db = Arc::new(tokio::sync::Mutex::new(*db));
                (Writer::Postgres { db, checkpoints }, position)
            }
        };
        let (position_tx, position) = watch::channel(position);
        let position_tx = Arc::new(position_tx);
        let (status_tx, status) = watch::channel(Status::Running);
        let waiting = Arc::new(AtomicUsize::new(0));
        let changes = Changes::default();
        let projections = Projections {
            store: Arc::clone(&store),
            writer: writer.clone(),
            path: path.to_owned(),
            position,
            position_tx: Arc::clone(&position_tx),
            status,
            waiting: Arc::clone(&waiting),
            changes: changes.clone(),
        };
        let settling = writer.clone();
        tokio::spawn(async move {
            let outcome = match lease {
                None => tokio::select! {
                    outcome = follow(store, writer, &position_tx, &changes, &waiting) => outcome,
                    () = shutdown => Ok(()),
                },
                Some(lease) => {
                    take_turns(store, writer, &position_tx, &changes, &waiting, lease, shutdown).await
                }
            };
            // Whatever stopped the loop, leave the file synced, so that it
            // survives an OS restart (ADR 0013).
            let outcome = match (outcome, settle(&settling).await) {
                (Ok(()), synced) => synced,
                (failed, _) => failed,
            };
            let status = match outcome {
                Ok(()) => Status::Stopped,
                Err(error) => {
                    tracing::error!(%error, "projections stopped");
                    Status::Failed(error.to_string())
                }
            };
            status_tx.send_replace(status);
        });
        projections
    }

    /// Counts the commits this loop (and a rebuild's swap) makes to the
    /// tables, each counted before its position is published: give it to
    /// [`crate::queries::ReadModels::cached`] for readers that keep
    /// answers until the tables change.
    pub fn changes(&self) -> Changes {
        self.changes.clone()
    }

    /// The position every read model has reached.
    pub fn position(&self) -> Position {
        *self.position.borrow()
    }

    /// Whether the loop runs, failed or stopped.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Waits until the loop has stopped (its shutdown came, or an error
    /// stopped it) and the SQLite file is synced; returns how it ended.
    pub async fn stopped(&self) -> Status {
        let mut status = self.status.clone();
        let _ = status.wait_for(|status| *status != Status::Running).await;
        status.borrow().clone()
    }

    /// The read-model database file (SQLite; as given to [`Projections::start`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until every read model has taken the event at `position`, or
    /// fails with [`Error::NotCaughtUp`] after `timeout`.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<()> {
        if self.position() >= position {
            return Ok(());
        }
        let _waiting = Waiting::new(&self.waiting);
        let mut watch = self.position.clone();
        let mut status = self.status.clone();
        let reached = tokio::time::timeout(timeout, async {
            tokio::select! {
                reached = watch.wait_for(|reached| *reached >= position) => reached.is_ok(),
                // A stopped loop will not get there: say so at once.
                _ = status.wait_for(|status| *status != Status::Running) => false,
            }
        })
        .await;
        if reached == Ok(true) || self.position() >= position {
            return Ok(());
        }
        if let Status::Failed(reason) = self.status() {
            return Err(Error::Stopped(reason));
        }
        Err(Error::NotCaughtUp {
            wanted: position,
            reached: self.position(),
        })
    }

    /// How far behind the store the read models are.
    pub async fn lag(&self) -> Result<Lag> {
        let position = self.position();
        let head = self.store.head().await?;
        let oldest = self.store.read_all(position, &AllFilter::all(), 1).await?;
        let seconds = oldest.first().map_or(0.0, |event| {
            (chrono::Utc::now() - event.metadata.recorded_at)
                .num_microseconds()
                .unwrap_or(i64::MAX) as f64
                / 1e6
        });
        Ok(Lag {
            position,
            head,
            events: head.0.saturating_sub(position.0),
            seconds: seconds.max(0.0),
        })
    }

    /// Each projector's checkpoint.
    pub fn checkpoints(&self) -> Vec<(&'static str, Position)> {
        match &self.writer {
            Writer::Sqlite(db) => sorted(&db.lock().unwrap_or_else(|p| p.into_inner()).checkpoints()),
            Writer::Postgres { checkpoints, .. } => {
                checkpoints.lock().unwrap_or_else(|p| p.into_inner()).clone()
            }
        }
    }

    /// Rebuilds every read model from the start of `$all` into fresh
    /// tables beside the live ones (a file beside the SQLite file, a
    /// scratch schema beside the PostgreSQL one), then swaps the new rows
    /// in atomically. Queries are served from the old rows until the swap
    /// commits.
    pub async fn rebuild(&self, progress: impl FnMut(rebuild::Progress) + Send) -> Result<Position> {
        let result = match &self.writer {
            Writer::Sqlite(db) => self.rebuild_sqlite(db, progress).await,
            Writer::Postgres { db, checkpoints } => self.rebuild_postgres(db, checkpoints, progress).await,
        };
        // Counted even on a failure: the swap may have happened.
        self.changes.committed();
        if let Ok(position) = result {
            publish(&self.position_tx, position);
        }
        result
    }

    async fn rebuild_sqlite(
        &self,
        db: &Arc<Mutex<ReadModelDb>>,
        progress: impl FnMut(rebuild::Progress) + Send,
    ) -> Result<Position> {
        let projectors = {
            let db = db.lock().unwrap_or_else(|p| p.into_inner());
            db.projectors().to_vec()
        };
        let fresh = self
            .path
            .with_extension(format!("rebuild-{}.db", uuid::Uuid::new_v4()));
        let result = async {
            // The bulk of the work, while the live loop goes on.
            let rebuilt = rebuild::replay(
                Arc::clone(&self.store),
                &fresh,
                projectors.into(),
                rebuild::Until::Head,
                progress,
            )
            .await?;
            // Then, with the live loop held: the last few events, and the swap.
            let db = Arc::clone(db);
            let store = Arc::clone(&self.store);
            let fresh_path = fresh.clone();
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                let mut live = db.lock().unwrap_or_else(|p| p.into_inner());
                let (rebuilt, _) = handle.block_on(rebuild::catch_up(
                    store.as_ref(),
                    rebuilt,
                    rebuild::Until::Head,
                    |_| {},
                ))?;
                drop(rebuilt);
                live.swap_in(&fresh_path)?;
                Ok::<_, Error>(live.position())
            })
            .await
            .map_err(|e| Error::Stopped(format!("rebuild task failed: {e}")))?
        }
        .await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(crate::unsynced::with_suffix(&fresh, suffix));
        }
        result
    }

    async fn rebuild_postgres(
        &self,
        db: &Arc<tokio::sync::Mutex<PgReadModelDb>>,
        checkpoints: &Mutex<Vec<(&'static str, Position)>>,
        progress: impl FnMut(rebuild::Progress) + Send,
    ) -> Result<Position> {
        let (scratch, projectors) = {
            let db = db.lock().await;
            let scratch = db.connector().in_schema(db.connector().schema().scratch());
            (scratch, Arc::from(db.projectors().to_vec()))
        };
        let result = async {
            // The bulk of the work, while the live loop goes on.
            let mut rebuilt = PgReadModelDb::open_scratch(scratch.clone(), projectors).await?;
            rebuild::catch_up_postgres(self.store.as_ref(), &mut rebuilt, rebuild::Until::Head, progress)
                .await?;
            // Then, with the live loop held: the last few events, and the
            // swap (which takes the very last ones with the checkpoint rows
            // locked, so no other instance gets ahead of it).
            let mut live = db.lock().await;
            rebuild::catch_up_postgres(self.store.as_ref(), &mut rebuilt, rebuild::Until::Head, |_| {})
                .await?;
            live.swap_in(&mut rebuilt, self.store.as_ref()).await?;
            *checkpoints.lock().unwrap_or_else(|p| p.into_inner()) = sorted(&live.checkpoints());
            Ok(live.position())
        }
        .await;
        if let Err(error) = drop_schema(&scratch).await {
            tracing::warn!(%error, schema = %scratch.schema(), "could not drop a rebuild's scratch schema");
        }
        result
    }
}

fn sorted(checkpoints: &std::collections::HashMap<&'static str, Position>) -> Vec<(&'static str, Position)> {
    let mut sorted: Vec<_> = checkpoints
        .iter()
        .map(|(name, position)| (*name, *position))
        .collect();
    sorted.sort();
    sorted
}

/// Syncs a SQLite read-model file once its loop has stopped, so that the
/// file no longer needs the OS to stay up ([`crate::unsynced`]).
/// PostgreSQL read models need nothing.
async fn settle(writer: &Writer) -> Result<()> {
    let Writer::Sqlite(db) = writer else {
        return Ok(());
    };
    let db = Arc::clone(db);
    tokio::task::spawn_blocking(move || db.lock().unwrap_or_else(|p| p.into_inner()).sync())
        .await
        .map_err(|e| Error::Stopped(format!("syncing the read models failed: {e}")))?
}

/// Follows `$all` from the lowest checkpoint, in batches of whatever is
/// ready, until the subscription ends or a batch fails.
async fn follow(
    store: Arc<dyn EventStore>,
    writer: Writer,
    position: &watch::Sender<Position>,
    changes: &Changes,
    waiting: &AtomicUsize,
) -> Result<()> {
    let from = match &writer {
        Writer::Sqlite(db) => db.lock().unwrap_or_else(|p| p.into_inner()).position(),
        Writer::Postgres { db, .. } => db.lock().await.position(),
    };
    let mut events = store.subscribe_all(from, AllFilter::all());
    let mut last_applied: Option<tokio::time::Instant> = None;
    while let Some(first) = events.next().await {
        let mut batch = vec![first?];
        let streaming =
            last_applied.is_some_and(|at| at.elapsed() < LINGER) && waiting.load(Ordering::Relaxed) == 0;
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            // Take what is ready; while streaming, wait for more until the deadline.
            let next = match events.next().now_or_never() {
                Some(next) => next,
                None if streaming => tokio::time::timeout_at(deadline, events.next())
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            let Some(event) = next else { break };
            batch.push(event?);
        }
        // Each batch runs to its end in a task of its own, even if the loop
        // is told to stop meanwhile.
        let (reached, applied) = match &writer {
            Writer::Sqlite(db) => {
                let db = Arc::clone(db);
                tokio::task::spawn_blocking(move || {
                    let mut db = db.lock().unwrap_or_else(|p| p.into_inner());
                    let applied = db.apply(&batch);
                    // On a failure the events before the bad one are committed too.
                    (db.position(), applied)
                })
                .await
            }
            Writer::Postgres { db, checkpoints } => {
                let (db, checkpoints) = (Arc::clone(db), Arc::clone(checkpoints));
                tokio::spawn(async move {
                    let mut db = db.lock().await;
                    let applied = db.apply(&batch).await;
                    *checkpoints.lock().unwrap_or_else(|p| p.into_inner()) = sorted(&db.checkpoints());
                    (db.position(), applied)
                })
                .await
            }
        }
        .map_err(|e| Error::Stopped(format!("projection task failed: {e}")))?;
        changes.committed();
        publish(position, reached);
        applied?;
        last_applied = Some(tokio::time::Instant::now());
    }
    Ok(())
}

/// Projects while this instance holds the shared lease; follows the
/// stored checkpoints while another does. Ends on `shutdown` (releasing
/// the lease, so another instance takes over at once) or on an error.
async fn take_turns(
    store: Arc<dyn EventStore>,
    writer: Writer,
    position: &watch::Sender<Position>,
    changes: &Changes,
    waiting: &AtomicUsize,
    lease: SharedLease,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let Writer::Postgres { db, checkpoints } = &writer else {
        return Err(Error::Stopped(
            "only PostgreSQL read models are shared".to_owned(),
        ));
    };
    tokio::pin!(shutdown);
    loop {
        let held = tokio::select! {
            held = standby(db, checkpoints, position, &lease) => held,
            () = &mut shutdown => return Ok(()),
        };
        tracing::info!(holder = %lease.holder, token = held.token(), "this instance projects the read models now");
        refresh(db, checkpoints, position).await?;
        let outcome = tokio::select! {
            outcome = follow(Arc::clone(&store), writer.clone(), position, changes, waiting) => outcome,
            () = keep(&lease, &held) => {
                tracing::warn!(holder = %lease.holder, "lost the read models' lease: another instance projects now");
                continue;
            }
            () = &mut shutdown => Ok(()),
        };
        if let Err(error) = lease.leases.release(held).await {
            tracing::warn!(%error, "could not release the read models' lease; it will expire");
        }
        return outcome;
    }
}

/// Follows the stored checkpoints until this instance gets the lease.
async fn standby(
    db: &tokio::sync::Mutex<PgReadModelDb>,
    checkpoints: &Mutex<Vec<(&'static str, Position)>>,
    position: &watch::Sender<Position>,
    lease: &SharedLease,
) -> Lease {
    let mut next_ask = Instant::now();
    loop {
        if Instant::now() >= next_ask {
            match lease
                .leases
                .try_acquire(PROJECTIONS_LEASE, &lease.holder, lease.ttl)
                .await
            {
                Ok(Some(held)) => return held,
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not ask for the read models' lease"),
            }
            next_ask = Instant::now() + LEASE_POLL;
        }
        if let Err(error) = refresh(db, checkpoints, position).await {
            tracing::warn!(%error, "could not read the read models' checkpoints");
        }
        tokio::time::sleep(STANDBY_REFRESH).await;
    }
}

/// Renews `held` every third of its time; returns once it is lost, or once
/// a whole time to live passed without a successful renewal (the database
/// may be unreachable: another instance may hold it by now).
async fn keep(lease: &SharedLease, held: &Lease) {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(lease.ttl / 3).await;
        match lease.leases.renew(held).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(%error, "could not renew the read models' lease");
                if renewed.elapsed() >= lease.ttl {
                    return;
                }
            }
        }
    }
}

/// Takes the stored checkpoints and publishes the position they reach.
async fn refresh(
    db: &tokio::sync::Mutex<PgReadModelDb>,
    checkpoints: &Mutex<Vec<(&'static str, Position)>>,
    position: &watch::Sender<Position>,
) -> Result<()> {
    let mut db = db.lock().await;
    let reached = db.refresh().await?;
    *checkpoints.lock().unwrap_or_else(|p| p.into_inner()) = sorted(&db.checkpoints());
    publish(position, reached);
    Ok(())
}

/// Moves the published position forward (never back).
fn publish(sender: &watch::Sender<Position>, position: Position) {
    sender.send_if_modified(|reached| {
        let moved = position > *reached;
        if moved {
            *reached = position;
        }
        moved
    });
}
