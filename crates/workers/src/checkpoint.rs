//! How far each worker got in `$all`.
//!
//! A worker's checkpoint is the position up to which every event it cares
//! about has been handled; after a restart it resumes after it. Handling is
//! at least once (a crash after handling but before saving repeats a few
//! events), so checkpoints need not be synced with each event: the embedded
//! file is written with `synchronous = NORMAL`.

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use palaver_store::Position;
use rusqlite::{Connection, OptionalExtension, params};

use crate::Result;

/// Durable per-worker positions.
#[async_trait]
pub trait Checkpoints: Send + Sync + 'static {
    /// The saved position of `worker`, [`Position::START`] if none.
    async fn load(&self, worker: &str) -> Result<Position>;
    /// Saves `position` for `worker`.
    async fn save(&self, worker: &str, position: Position) -> Result<()>;
}

/// Checkpoints in a small SQLite file beside the embedded store.
pub struct SqliteCheckpoints {
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCheckpoints").finish_non_exhaustive()
    }
}

impl SqliteCheckpoints {
    /// Opens (or creates) the checkpoint file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(include_str!("sql/checkpoints.sql"))?;
        Ok(SqliteCheckpoints {
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(f(&connection)?)
    }
}

#[async_trait]
impl Checkpoints for SqliteCheckpoints {
    async fn load(&self, worker: &str) -> Result<Position> {
        let position = self.with(|c| {
            c.query_row(
                "SELECT position FROM worker_checkpoints WHERE worker = ?1",
                params![worker],
                |row| row.get::<_, i64>(0),
            )
            .optional()
        })?;
        Ok(position.map_or(Position::START, |p| Position(p.unsigned_abs())))
    }

    async fn save(&self, worker: &str, position: Position) -> Result<()> {
        // A tiny local write: cheaper inline than a hop to the blocking pool.
        self.with(|c| {
            c.execute(
                "INSERT INTO worker_checkpoints (worker, position) VALUES (?1, ?2) \
                 ON CONFLICT (worker) DO UPDATE SET position = excluded.position",
                params![worker, i64::try_from(position.0).unwrap_or(i64::MAX)],
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn positions_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workers.db");
        let checkpoints = SqliteCheckpoints::open(&path).unwrap();
        assert_eq!(checkpoints.load("delivery").await.unwrap(), Position::START);
        checkpoints.save("delivery", Position(42)).await.unwrap();
        checkpoints.save("timers", Position(7)).await.unwrap();
        drop(checkpoints);
        let checkpoints = SqliteCheckpoints::open(&path).unwrap();
        assert_eq!(checkpoints.load("delivery").await.unwrap(), Position(42));
        assert_eq!(checkpoints.load("timers").await.unwrap(), Position(7));
    }
}
