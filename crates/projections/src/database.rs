//! A read-model database: the projectors' tables and their checkpoints in
//! one SQLite file, written by one connection.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use palaver_domain::codec;
use palaver_store::{Position, RecordedEvent};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use crate::{
    Error, Result,
    error::db,
    projector::Projector,
    sql::Statement,
    unsynced::{self, Durability},
};

/// `PRAGMA application_id` of a read-model file: "PALR".
const APPLICATION_ID: i64 = 0x5041_4C52;
/// Shape of the bookkeeping table below; projectors version their own.
const META_VERSION: i64 = 1;

const META_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS projections (
    name        TEXT PRIMARY KEY,   -- the projector
    version     INTEGER NOT NULL,   -- its version when its tables were built
    position    INTEGER NOT NULL,   -- last event of $all it has taken
    updated_at  INTEGER NOT NULL    -- microseconds since 1970 UTC
) WITHOUT ROWID;
";

/// The writable side of a read-model database.
pub struct ReadModelDb {
    conn: Connection,
    projectors: Arc<[Arc<dyn Projector>]>,
    /// Per projector (same order), the last position it has taken.
    checkpoints: Vec<Position>,
    statements: Vec<Statement>,
    /// While commits are not synced, the file's path: its marker names
    /// the boot they are from (see [`crate::unsynced`]).
    unsynced: Option<PathBuf>,
}

impl std::fmt::Debug for ReadModelDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModelDb")
            .field("checkpoints", &self.checkpoints)
            .finish_non_exhaustive()
    }
}

/// WAL frames after which a projector commit checkpoints the read models
/// (SQLite's default is 1,000). Under steady writes the projector rewrites
/// the same few pages (the inbox rows, their activity index, the
/// timeline's last page) in every commit, and a checkpoint copies only the
/// newest frame of each page, so checkpointing ten times less often copies
/// about ten times fewer pages: at 1,000 the checkpoints took a quarter of
/// the projector's CPU in the gRPC reply benchmark. The WAL grows to about
/// 40 MiB between checkpoints.
const CHECKPOINT_FRAMES: i64 = 10_000;

/// What applying a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The lowest checkpoint after the batch.
    pub position: Position,
}

impl ReadModelDb {
    /// Opens or creates the database at `path` with the tables of
    /// `projectors`. A projector whose stored version differs gets fresh,
    /// empty tables and starts again from the beginning of `$all`.
    ///
    /// On Linux commits are not synced, and a file left with unsynced
    /// writes when the OS restarted is deleted first, so that every
    /// projector starts again from the beginning of `$all` (see
    /// [`crate::unsynced`]); [`ReadModelDb::sync`] before a clean stop.
    /// Elsewhere commits are synced (a crash loses at most the last
    /// batches, which are redone from their checkpoints).
    pub fn open(path: &Path, projectors: Arc<[Arc<dyn Projector>]>) -> Result<Self> {
        create_parent(path)?;
        let durability = unsynced::prepare(path, unsynced::boot_id().as_deref())?;
        let mut database = Self::open_with(path, projectors, durability.synchronous())?;
        if durability == Durability::Unsynced {
            database.unsynced = Some(path.to_owned());
        }
        Ok(database)
    }

    /// Like [`ReadModelDb::open`], for a file that is only worth anything once
    /// it is complete (a rebuild or a replay): commits are not synced at all,
    /// which speeds replays up. A crash leaves a file to throw away.
    pub fn open_scratch(path: &Path, projectors: Arc<[Arc<dyn Projector>]>) -> Result<Self> {
        create_parent(path)?;
        Self::open_with(path, projectors, "OFF")
    }

    fn open_with(path: &Path, projectors: Arc<[Arc<dyn Projector>]>, synchronous: &str) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db("opening the read models"))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db("reading the version"))?;
        if found > META_VERSION {
            return Err(Error::SchemaTooNew {
                path: path.display().to_string(),
                found,
                supported: META_VERSION,
            });
        }
        // Read models can always be rebuilt from the events, so commits are
        // not synced: OFF where the caller made that safe (a live file with
        // its boot marker, a scratch file thrown away on a crash), else
        // NORMAL (a crash may lose the last batches, but never splits rows
        // from their checkpoint, and the projector redoes them).
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA cache_size = -16384;")
            .and_then(|()| conn.pragma_update(None, "synchronous", synchronous))
            .and_then(|()| conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_FRAMES))
            .map_err(db("configuring the read models"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db("setting the busy timeout"))?;
        conn.set_prepared_statement_cache_capacity(256);
        conn.execute_batch(META_SCHEMA)
            .map_err(db("creating the checkpoint table"))?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .and_then(|()| conn.pragma_update(None, "user_version", META_VERSION))
            .map_err(db("marking the read models"))?;

        let mut database = ReadModelDb {
            conn,
            checkpoints: Vec::new(),
            projectors,
            statements: Vec::new(),
            unsynced: None,
        };
        for projector in database.projectors.clone().iter() {
            let position = database.prepare(projector.as_ref())?;
            database.checkpoints.push(position);
        }
        Ok(database)
    }

    /// Makes sure the projector's tables exist at its version; returns its checkpoint.
    fn prepare(&mut self, projector: &dyn Projector) -> Result<Position> {
        let stored: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT version, position FROM projections WHERE name = ?1",
                [projector.name()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(db("reading a checkpoint"))?;
        match stored {
            Some((version, position)) if version == i64::from(projector.version()) => {
                Ok(Position(position as u64))
            }
            stored => {
                if let Some((version, _)) = stored {
                    tracing::warn!(
                        projector = projector.name(),
                        from = version,
                        to = projector.version(),
                        "read model changed shape: rebuilding it from the start"
                    );
                }
                let tx = self.conn.transaction().map_err(db("starting a schema change"))?;
                for table in projector.tables().iter().rev() {
                    tx.execute_batch(&format!("DROP TABLE IF EXISTS \"{table}\""))
                        .map_err(db("dropping an old table"))?;
                }
                tx.execute_batch(projector.schema())
                    .map_err(db("creating read-model tables"))?;
                tx.execute(
                    "INSERT INTO projections (name, version, position, updated_at) VALUES (?1, ?2, 0, ?3) \
                     ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = 0, \
                     updated_at = excluded.updated_at",
                    params![
                        projector.name(),
                        projector.version(),
                        chrono::Utc::now().timestamp_micros()
                    ],
                )
                .map_err(db("resetting a checkpoint"))?;
                tx.commit().map_err(db("committing a schema change"))?;
                Ok(Position::START)
            }
        }
    }

    /// Makes everything committed durable: a checkpoint of the WAL into the
    /// file with a sync, and syncs from now on. For a finished scratch
    /// file, and before a clean stop: the file then no longer depends on the
    /// OS staying up, and survives a restart of it.
    pub fn sync(&mut self) -> Result<()> {
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .and_then(|()| self.conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(())))
            .map_err(db("syncing the read models"))?;
        // Forgotten only once removed: a failed removal is tried again by
        // the next sync, and until then the marker stays (the safe side).
        if let Some(path) = &self.unsynced {
            unsynced::synced(path)?;
            self.unsynced = None;
        }
        Ok(())
    }

    /// The projectors, in checkpoint order.
    pub fn projectors(&self) -> &[Arc<dyn Projector>] {
        &self.projectors
    }

    /// Each projector's checkpoint.
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

    /// Folds `events` (consecutive in `$all`, ascending) into every read
    /// model that has not taken them yet, moving the checkpoints in the
    /// same transaction. If an event cannot be read, everything before it
    /// is committed and the error names it; nothing after it is applied.
    pub fn apply(&mut self, events: &[RecordedEvent]) -> Result<Applied> {
        let Some(last) = events.last() else {
            return Ok(Applied {
                position: self.position(),
            });
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("starting a projection batch"))?;
        let mut reached = self.checkpoints.clone();
        self.statements.clear();
        let failure = fold(&self.projectors, &mut reached, events, &mut self.statements);
        for statement in &self.statements {
            let mut prepared = tx
                .prepare_cached(statement.sql)
                .map_err(db("preparing a projection"))?;
            prepared
                .execute(rusqlite::params_from_iter(statement.params.iter()))
                .map_err(db("applying a projection"))?;
        }
        let now = chrono::Utc::now().timestamp_micros();
        for (i, projector) in self.projectors.iter().enumerate() {
            if reached[i] != self.checkpoints[i] {
                // Cached: it runs in every batch.
                tx.prepare_cached("UPDATE projections SET position = ?2, updated_at = ?3 WHERE name = ?1")
                    .and_then(|mut update| {
                        update.execute(params![projector.name(), reached[i].0 as i64, now])
                    })
                    .map_err(db("moving a checkpoint"))?;
            }
        }
        tx.commit().map_err(db("committing a projection batch"))?;
        self.checkpoints = reached;
        match failure {
            Some(error) => Err(error),
            None => {
                debug_assert!(self.position() >= last.position);
                Ok(Applied {
                    position: self.position(),
                })
            }
        }
    }

    /// SHA-256 over every row of the projector's tables, in a canonical
    /// order: two databases with the same rows give the same digest.
    pub fn digest(&self, projector: &str) -> Result<[u8; 32]> {
        let projector = self
            .projectors
            .iter()
            .find(|p| p.name() == projector)
            .ok_or_else(|| Error::InvalidArgument {
                field: "projector",
                reason: format!("no projector {projector}"),
            })?;
        digest_tables(&self.conn, "main", projector.tables())
    }

    /// Replaces the tables of every projector with those of the rebuilt
    /// database at `rebuilt`, and takes over its checkpoints, in one
    /// transaction: readers see the old rows until it commits, then the new.
    pub fn swap_in(&mut self, rebuilt: &Path) -> Result<()> {
        let path = rebuilt.to_str().ok_or_else(|| Error::InvalidArgument {
            field: "path",
            reason: "not UTF-8".to_owned(),
        })?;
        self.conn
            .execute("ATTACH DATABASE ?1 AS rebuilt", [path])
            .map_err(db("attaching the rebuilt read models"))?;
        let result = (|| -> Result<Vec<Position>> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("starting the swap"))?;
            let mut checkpoints = Vec::new();
            for projector in self.projectors.iter() {
                for table in projector.tables() {
                    tx.execute_batch(&format!(
                        "DELETE FROM main.\"{table}\"; INSERT INTO main.\"{table}\" SELECT * FROM rebuilt.\"{table}\";"
                    ))
                    .map_err(db("copying a rebuilt table"))?;
                }
                let position: i64 = tx
                    .query_row(
                        "SELECT position FROM rebuilt.projections WHERE name = ?1",
                        [projector.name()],
                        |r| r.get(0),
                    )
                    .map_err(db("reading a rebuilt checkpoint"))?;
                tx.execute(
                    "UPDATE main.projections SET position = ?2, updated_at = ?3 WHERE name = ?1",
                    params![projector.name(), position, chrono::Utc::now().timestamp_micros()],
                )
                .map_err(db("taking over a checkpoint"))?;
                checkpoints.push(Position(position as u64));
            }
            tx.commit().map_err(db("committing the swap"))?;
            Ok(checkpoints)
        })();
        self.conn
            .execute_batch("DETACH DATABASE rebuilt")
            .map_err(db("detaching the rebuilt read models"))?;
        self.checkpoints = result?;
        Ok(())
    }
}

/// Turns `events` (ascending) into the statements of every projector that
/// has not taken them yet, in order, decoding each event once and only if
/// some projector behind it reads it. `reached` (one position per
/// projector, in order) moves past each event as it is taken. Stops at the
/// first event a projector cannot take and returns why: the statements of
/// the events before it stand, nothing of it or after it is in `out`.
/// Both backends apply a batch through this.
pub(crate) fn fold(
    projectors: &[Arc<dyn Projector>],
    reached: &mut [Position],
    events: &[RecordedEvent],
    out: &mut Vec<Statement>,
) -> Option<Error> {
    for event in events {
        let taken = out.len();
        let mut decoded = None;
        for (i, projector) in projectors.iter().enumerate() {
            if event.position <= reached[i] || !projector.event_types().contains(&event.event_type.as_str()) {
                continue;
            }
            let domain_event = match &mut decoded {
                Some(domain_event) => domain_event,
                None => match codec::decode(&event.event_type, event.schema_version, &event.payload) {
                    Ok(domain_event) => decoded.insert(domain_event),
                    Err(error) => {
                        out.truncate(taken);
                        return Some(undecodable(projector.name(), event, error.to_string()));
                    }
                },
            };
            if let Err(error) = projector.project(event, domain_event, out) {
                out.truncate(taken);
                return Some(undecodable(projector.name(), event, error.0));
            }
        }
        // Every projector behind this event has now taken it.
        for position in reached.iter_mut() {
            *position = (*position).max(event.position);
        }
    }
    None
}

pub(crate) fn undecodable(projector: &'static str, event: &RecordedEvent, reason: String) -> Error {
    Error::Undecodable {
        projector,
        position: event.position,
        event_type: event.event_type.clone(),
        reason,
    }
}

/// Hashes every row of `tables` in `schema`, ordered by all columns.
pub(crate) fn digest_tables(conn: &Connection, schema: &str, tables: &[&str]) -> Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    for table in tables {
        let columns: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM pragma_table_info('{table}', '{schema}')"),
                [],
                |r| r.get(0),
            )
            .map_err(db("reading a table's columns"))?;
        let order: Vec<String> = (1..=columns).map(|c| c.to_string()).collect();
        let sql = format!("SELECT * FROM {schema}.\"{table}\" ORDER BY {}", order.join(", "));
        let mut statement = conn.prepare(&sql).map_err(db("preparing a digest"))?;
        let mut rows = statement.query([]).map_err(db("reading rows for a digest"))?;
        hasher.update(table.as_bytes());
        while let Some(row) = rows.next().map_err(db("reading a row for a digest"))? {
            for column in 0..columns as usize {
                use rusqlite::types::ValueRef;
                match row.get_ref(column).map_err(db("reading a value for a digest"))? {
                    ValueRef::Null => hasher.update([0]),
                    ValueRef::Integer(i) => {
                        hasher.update([1]);
                        hasher.update(i.to_be_bytes());
                    }
                    ValueRef::Real(r) => {
                        hasher.update([2]);
                        hasher.update(r.to_bits().to_be_bytes());
                    }
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        hasher.update([3]);
                        hasher.update((t.len() as u64).to_be_bytes());
                        hasher.update(t);
                    }
                }
            }
        }
    }
    Ok(hasher.finalize().into())
}

/// Creates the folder a read-model file goes in.
fn create_parent(path: &Path) -> Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => std::fs::create_dir_all(parent)
            .map_err(|e| Error::Stopped(format!("creating {}: {e}", parent.display()))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(db: &ReadModelDb) -> i64 {
        db.conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn commits_are_unsynced_where_the_boot_can_be_told_until_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-models.db");
        let mut db = ReadModelDb::open(&path, crate::models::all()).unwrap();
        let marker = unsynced::marker_of(&path);
        // SQLite's values: 0 is OFF, 1 is NORMAL.
        if unsynced::boot_id().is_some() {
            assert_eq!(synchronous(&db), 0);
            assert!(marker.exists());
        } else {
            assert_eq!(synchronous(&db), 1);
            assert!(!marker.exists());
        }
        db.sync().unwrap();
        assert_eq!(synchronous(&db), 1, "after a sync, every commit is synced");
        assert!(!marker.exists());
    }

    #[test]
    fn scratch_files_get_no_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scratch.db");
        let db = ReadModelDb::open_scratch(&path, crate::models::all()).unwrap();
        assert_eq!(synchronous(&db), 0);
        assert!(!unsynced::marker_of(&path).exists());
    }
}
