//! The single writer thread and its group commit.
//!
//! Every append goes through one thread that owns the only writing
//! connection. It takes all the requests waiting in its queue, runs each in
//! a savepoint of one transaction, commits once (one fsync for the whole
//! group) and only then answers each caller. Concurrent appends thus share
//! the cost of durability without weakening any promise: a request that
//! fails rolls back only its own savepoint, and no caller hears "ok" before
//! the commit that holds its events is on disk.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::{rows, sql_error};
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
/// After each commit it tells `checkpoints`, the checkpointer thread, how
/// many bytes of events went into the WAL.
pub(super) fn run(
    mut conn: Connection,
    mut jobs: mpsc::Receiver<Job>,
    head: watch::Sender<Position>,
    revisions: &super::Revisions,
    checkpoints: std::sync::mpsc::Sender<u64>,
    mut next_position: u64,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = jobs.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let results = commit_group(&mut conn, &group, &mut next_position);
        // Before the head moves and before anyone is answered, so a reader
        // that knows of these events never finds the map behind them.
        revisions.committed(
            group
                .iter()
                .zip(&results)
                .filter_map(|(job, result)| Some((&job.request.stream, result.as_ref().ok()?.last_revision))),
        );
        // Publish the new head before answering: a caller that subscribes
        // right after its append returns must find its events readable.
        head.send_if_modified(|published| {
            let moved = published.0 + 1 < next_position;
            if moved {
                *published = Position(next_position - 1);
            }
            moved
        });
        let written: u64 = group
            .iter()
            .zip(&results)
            .filter(|(_, result)| result.is_ok())
            .flat_map(|(job, _)| &job.request.events)
            .map(|event| event.size() as u64 + ROW_OVERHEAD)
            .sum();
        if written > 0 {
            // Only fails once the checkpointer is gone, at shutdown.
            let _ = checkpoints.send(written);
        }
        for (job, result) in group.drain(..).zip(results) {
            // A caller that gave up waiting is no reason to stop.
            let _ = job.reply.send(result);
        }
    }
}

/// Commits every job it can in one transaction. `next_position` moves only
/// if the commit succeeds.
fn commit_group(conn: &mut Connection, group: &[Job], next_position: &mut u64) -> Vec<Result<AppendResult>> {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return fail_all(group.len(), "starting a transaction", error),
    };
    let mut next = *next_position;
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        // Dropping a savepoint without committing rolls back this request alone.
        let savepoint = match tx.savepoint() {
            Ok(savepoint) => savepoint,
            Err(error) => return fail_all(group.len(), "starting a savepoint", error),
        };
        let mut target = Target {
            conn: &savepoint,
            next_position: next,
        };
        match append::append_to(&mut target, &job.request) {
            Ok(result) => {
                let after = target.next_position;
                if let Err(error) = savepoint.commit() {
                    return fail_all(group.len(), "releasing a savepoint", error);
                }
                next = after;
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
    results
}

fn fail_all(count: usize, what: &str, error: rusqlite::Error) -> Vec<Result<AppendResult>> {
    tracing::error!(%error, "event store write failed while {what}");
    let message = format!("{what}: {error}");
    (0..count)
        .map(|_| {
            Err(Error::Backend {
                message: message.clone(),
                source: None,
            })
        })
        .collect()
}

/// The writer's transaction, as the shared append algorithm sees it.
struct Target<'a> {
    conn: &'a Connection,
    next_position: u64,
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

    fn insert(&mut self, events: &[RecordedEvent]) -> Result<()> {
        for event in events {
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
        Ok(())
    }
}

/// Bytes an event row and its index entries take beyond its payload, type
/// and actor: enough to estimate the WAL's growth.
const ROW_OVERHEAD: u64 = 160;
/// WAL growth that triggers a checkpoint: about SQLite's own default of
/// 1000 pages.
const CHECKPOINT_BYTES: u64 = 4 * 1024 * 1024;
/// Quiet time after which whatever is in the WAL is checkpointed.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Copies committed WAL frames into the database file off the append path.
///
/// SQLite would otherwise checkpoint inside whichever commit crosses the
/// WAL size threshold, stalling that commit (and every append grouped into
/// it) for the copy and an extra fsync. This thread checkpoints once about
/// [`CHECKPOINT_BYTES`] have been written, or after [`CHECKPOINT_IDLE`] of
/// quiet; a PASSIVE checkpoint never blocks the writer or readers, and the
/// writer restarts the WAL from its beginning by itself once a checkpoint
/// has caught up. Returns when the writer is gone.
pub(super) fn checkpoint(conn: Connection, written: std::sync::mpsc::Receiver<u64>) {
    use std::sync::mpsc::RecvTimeoutError;
    let run = || {
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "checkpointing the event store WAL");
        }
    };
    let mut pending = 0u64;
    loop {
        match written.recv_timeout(CHECKPOINT_IDLE) {
            Ok(bytes) => {
                pending += bytes;
                if pending >= CHECKPOINT_BYTES {
                    run();
                    pending = 0;
                }
            }
            Err(RecvTimeoutError::Timeout) if pending > 0 => {
                run();
                pending = 0;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if pending > 0 {
                    run();
                }
                return;
            }
        }
    }
}
