//! The single writer thread and its group commit.
//!
//! Every append goes through one thread that owns the only writing
//! connection. It takes all the requests waiting in its queue, runs each in
//! a savepoint of one transaction and commits once; the sync stage
//! ([`super::sync`]) then syncs the WAL for that commit and every other one
//! that arrived meanwhile, and only then answers each caller. Concurrent
//! appends thus share the cost of durability without weakening any promise:
//! a request that fails rolls back only its own savepoint, and no caller
//! hears "ok" before the commit that holds its events is on disk.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU32, Ordering},
};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, wal::CheckpointMode};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    rows, sql_error,
    sync::{self, Committed},
};
use crate::{
    AppendResult, Error, Position, RecordedEvent, Result, StreamName,
    append::{self, AppendRequest, AppendTarget, StreamHead},
};

/// Most requests committed together. Bounds the latency one slow group adds.
const MAX_GROUP: usize = 512;

/// One append waiting for the writer.
pub(super) struct Job {
    pub request: AppendRequest,
    pub reply: oneshot::Sender<Result<AppendResult>>,
}

/// Runs until every sender is dropped, then returns (closing the connection).
/// Each group goes to the sync stage ([`super::sync`]) once committed; the
/// writer does not wait for the sync, it takes the next group. The
/// checkpointer hears of each commit from the connection's WAL hook
/// ([`watch_wal`]), not from here; `wal` holds that hook's frame count and
/// the checkpointer's progress, which the writer watches to restart the
/// WAL ([`Restarts`]).
pub(super) fn run(
    mut conn: Connection,
    mut jobs: mpsc::Receiver<Job>,
    synced: &std::sync::mpsc::Sender<Committed>,
    stopped: &AtomicBool,
    wal: &WalFrames,
    mut next_position: u64,
) {
    let mut restarts = Restarts::default();
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = jobs.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (results, events) = if stopped.load(Ordering::Acquire) {
            // A sync failed: nothing more is written (the sync stage answers
            // these with the reason).
            (
                (0..group.len()).map(|_| Err(sync::stopped_error())).collect(),
                Vec::new(),
            )
        } else {
            commit_group(&mut conn, &group, &mut next_position)
        };
        let answers = group.drain(..).map(|job| job.reply).zip(results).collect();
        if synced.send(Committed { answers, events }).is_err() {
            // The sync stage is gone only if it panicked: nobody can be
            // answered any more.
            tracing::error!("the event store's sync thread is gone; the writer stops");
            return;
        }
        restarts.after_commit(&conn, wal);
    }
}

/// WAL frames past which the writer checkpoints by itself, so that the WAL
/// can start again from its beginning (about 16 MiB of pages).
const RESTART_FRAMES: u32 = 4 * CHECKPOINT_FRAMES;

/// Keeps the WAL from growing for good under steady writes.
///
/// SQLite restarts the WAL (writes from its start again) only in a write
/// transaction that began when every frame had been copied into the
/// database. The checkpointer thread copies them, but the writer, busy
/// with the next group, has always begun its transaction before that copy
/// ends, so under load the WAL never restarts: it grew to hundreds of
/// megabytes in the benchmark, and each commit appended to an ever longer
/// file (block allocation, a journalled fsync). So once the WAL holds
/// [`RESTART_FRAMES`], the writer runs a checkpoint itself between groups,
/// and the next transaction begins with all frames copied. A reader still
/// on old frames can block the restart; the writer then tries again after
/// another [`CHECKPOINT_FRAMES`].
///
/// That checkpoint stalls every append queued behind it, for as long as it
/// takes to copy what the checkpointer has not and to sync the WAL and the
/// database file. Taken whenever the threshold was crossed, it took 5 ms at
/// the median and up to 35 ms in the reply benchmark, several times a
/// second, and set the p99 latency. So the writer waits until the
/// checkpointer has just caught up (at most [`RESTART_BEHIND`] frames left
/// to copy), unless the WAL has grown to twice the threshold.
#[derive(Debug, Default)]
struct Restarts {
    /// The WAL's frame count after the previous commit: a lower count
    /// means the WAL has restarted.
    last: u32,
    /// Frame count from which to try again after a try that did not lead
    /// to a restart (0: from [`RESTART_FRAMES`]).
    next_try: u32,
}

impl Restarts {
    fn after_commit(&mut self, conn: &Connection, wal: &WalFrames) {
        let frames = wal.written.load(Ordering::Relaxed);
        if frames < self.last {
            self.next_try = 0;
        }
        self.last = frames;
        let due = RESTART_FRAMES.max(self.next_try);
        if frames < due {
            return;
        }
        let behind = frames.saturating_sub(wal.copied.load(Ordering::Relaxed));
        if behind > RESTART_BEHIND && frames < 2 * due {
            return;
        }
        passive_checkpoint(conn, "checkpointing the event store WAL before restarting it");
        self.next_try = frames + CHECKPOINT_FRAMES;
    }
}

/// Commits every job it can in one transaction, and returns each job's
/// result with the events the commit stored, in position order (none if
/// it failed). `next_position` moves only if the commit succeeds.
fn commit_group(
    conn: &mut Connection,
    group: &[Job],
    next_position: &mut u64,
) -> (Vec<Result<AppendResult>>, Vec<RecordedEvent>) {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return fail_all(group.len(), "starting a transaction", error),
    };
    let mut next = *next_position;
    let mut results = Vec::with_capacity(group.len());
    let mut stored = Vec::new();
    for job in group {
        // Dropping a savepoint without committing rolls back this request alone.
        let savepoint = match tx.savepoint() {
            Ok(savepoint) => savepoint,
            Err(error) => return fail_all(group.len(), "starting a savepoint", error),
        };
        let mut target = Target {
            conn: &savepoint,
            next_position: next,
            inserted: Vec::new(),
        };
        match append::append_to(&mut target, &job.request) {
            Ok(result) => {
                let after = target.next_position;
                let mut inserted = target.inserted;
                if let Err(error) = savepoint.commit() {
                    return fail_all(group.len(), "releasing a savepoint", error);
                }
                next = after;
                stored.append(&mut inserted);
                results.push(Ok(result));
            }
            Err(error) => {
                drop(savepoint);
                results.push(Err(error));
            }
        }
    }
    if let Err(error) = tx.commit() {
        return fail_all(group.len(), "committing", error);
    }
    *next_position = next;
    (results, stored)
}

fn fail_all(
    count: usize,
    what: &str,
    error: rusqlite::Error,
) -> (Vec<Result<AppendResult>>, Vec<RecordedEvent>) {
    tracing::error!(%error, "event store write failed while {what}");
    let message = format!("{what}: {error}");
    let results = (0..count)
        .map(|_| {
            Err(Error::Backend {
                message: message.clone(),
                source: None,
            })
        })
        .collect();
    (results, Vec::new())
}

/// The writer's transaction, as the shared append algorithm sees it.
struct Target<'a> {
    conn: &'a Connection,
    next_position: u64,
    /// What this request stored, for the window of recent events.
    inserted: Vec<RecordedEvent>,
}

impl AppendTarget for Target<'_> {
    fn find_event(&mut self, id: Uuid) -> Result<Option<RecordedEvent>> {
        let sql = format!("SELECT {} FROM events WHERE id = ?1", rows::COLUMNS);
        let mut statement = self
            .conn
            .prepare_cached(&sql)
            .map_err(sql_error("preparing a lookup"))?;
        let found = statement
            .query_row([id.as_bytes()], rows::decode)
            .optional()
            .map_err(sql_error("looking up an event id"))?;
        found.transpose()
    }

    fn stream_head(&mut self, stream: &StreamName) -> Result<Option<StreamHead>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT last_revision, last_hash FROM streams WHERE name = ?1")
            .map_err(sql_error("preparing a stream lookup"))?;
        statement
            .query_row([stream.as_str()], |row| {
                Ok(StreamHead {
                    revision: row.get::<_, i64>(0)? as u64,
                    hash: row.get(1)?,
                })
            })
            .optional()
            .map_err(sql_error("reading a stream head"))
    }

    fn next_position(&mut self) -> Result<Position> {
        Ok(Position(self.next_position))
    }

    fn insert(&mut self, events: Vec<RecordedEvent>) -> Result<()> {
        for event in &events {
            if let Err(error) = rows::insert(self.conn, event) {
                // The UNIQUE index on ids catches reuse without a lookup per
                // event; the savepoint undoes the events inserted before it.
                return Err(match self.find_event(event.id)? {
                    Some(stored) => Error::EventIdConflict {
                        event_id: event.id,
                        reason: format!("{} revision {}", stored.stream, stored.revision),
                    },
                    None => error,
                });
            }
        }
        let last = events.last().expect("append_to never inserts an empty batch");
        let mut statement = self
            .conn
            .prepare_cached(
                "INSERT INTO streams (name, last_revision, last_hash) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET last_revision = excluded.last_revision, \
                 last_hash = excluded.last_hash",
            )
            .map_err(sql_error("preparing a stream update"))?;
        statement
            .execute(params![last.stream.as_str(), last.revision as i64, last.hash])
            .map_err(sql_error("moving a stream head"))?;
        self.next_position = last.position.0 + 1;
        self.inserted.extend(events);
        Ok(())
    }
}

/// WAL frames (pages) written since the last checkpoint that trigger the
/// next one: SQLite's own automatic threshold.
const CHECKPOINT_FRAMES: u32 = 1_000;
/// Frames the checkpointer may have left to copy when the writer restarts
/// the WAL ([`Restarts`]).
const RESTART_BEHIND: u32 = CHECKPOINT_FRAMES / 4;

/// What the writer and the checkpointer know of the WAL, in frames.
#[derive(Debug, Default)]
pub(super) struct WalFrames {
    /// In the WAL after the last commit (the WAL hook's count).
    pub written: AtomicU32,
    /// Copied into the database by the checkpointer's last checkpoint, as
    /// far as it knows (a reader on old frames can hold some back).
    pub copied: AtomicU32,
}
/// Quiet time after which whatever is in the WAL is checkpointed.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Tells the checkpointer, after each commit of `conn`, how many frames the
/// WAL holds. SQLite counts them itself (every page a commit touched: the
/// row, its index entries, the stream head), so the count is exact; an
/// estimate from event sizes once undercounted 40-fold and let the WAL grow
/// to hundreds of megabytes between checkpoints, slowing every commit.
/// Returns the shared counts, for the writer and the checkpointer.
pub(super) fn watch_wal(
    conn: &mut Connection,
    checkpointer: std::sync::mpsc::Sender<u32>,
) -> rusqlite::Result<Arc<WalFrames>> {
    let count = Arc::new(WalFrames::default());
    let counted = Arc::clone(&count);
    conn.wal_hook(Some(
        move |_: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
            let frames = frames.max(0) as u32;
            counted.written.store(frames, Ordering::Relaxed);
            // Only fails once the checkpointer is gone, at shutdown.
            let _ = checkpointer.send(frames);
            Ok(())
        },
    ))?;
    Ok(count)
}

/// Copies what it can of the WAL into the database without waiting for
/// readers or the writer. BUSY means the other of the two checkpointing
/// connections (the checkpointer thread, the writer before a restart) is
/// at it: nothing to report, the next try comes. Any other failure only
/// leaves the WAL longer, so it is logged, never returned.
fn passive_checkpoint(conn: &Connection, what: &str) {
    if let Err(error) = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE)
        && error.sqlite_error_code() != Some(rusqlite::ErrorCode::DatabaseBusy)
    {
        tracing::warn!(%error, "{what}");
    }
}

/// Copies committed WAL frames into the database file off the append path.
///
/// SQLite would otherwise checkpoint inside whichever commit crosses the
/// WAL size threshold, stalling that commit (and every append grouped into
/// it) for the copy and an extra fsync. This thread checkpoints once
/// [`CHECKPOINT_FRAMES`] frames were written since its last run, or after
/// [`CHECKPOINT_IDLE`] of quiet; a PASSIVE checkpoint never blocks the
/// writer or readers, and the writer restarts the WAL from its beginning by
/// itself once a checkpoint has caught up (the frame count then drops).
/// Returns when the writer is gone.
pub(super) fn checkpoint(conn: Connection, frames: std::sync::mpsc::Receiver<u32>, wal: &WalFrames) {
    use std::sync::mpsc::RecvTimeoutError;
    // What it copies is what the WAL held when it began.
    let run = |now: u32| {
        passive_checkpoint(&conn, "checkpointing the event store WAL");
        wal.copied.store(now, Ordering::Relaxed);
    };
    // Frames in the WAL now, and at the last checkpoint.
    let (mut now, mut done) = (0u32, 0u32);
    loop {
        match frames.recv_timeout(CHECKPOINT_IDLE) {
            Ok(count) => {
                if count < done {
                    // The writer restarted the WAL from its beginning.
                    done = 0;
                    wal.copied.store(0, Ordering::Relaxed);
                }
                now = count;
                if now - done >= CHECKPOINT_FRAMES {
                    run(now);
                    done = now;
                }
            }
            Err(RecvTimeoutError::Timeout) if now > done => {
                run(now);
                done = now;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if now > done {
                    run(now);
                }
                return;
            }
        }
    }
}
