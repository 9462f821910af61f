//! Keeping read models live: one task follows `$all` and feeds every
//! projector, and callers can wait for a position (read your own writes).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{FutureExt, StreamExt};
use palaver_store::{AllFilter, EventStore, Position};
use tokio::sync::watch;

use crate::{Error, Result, database::ReadModelDb, rebuild};

/// Most events folded in one transaction while catching up.
const BATCH: usize = 2000;

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

/// Live read models over a store. Clones share the same loop.
#[derive(Clone)]
pub struct Projections {
    store: Arc<dyn EventStore>,
    db: Arc<Mutex<ReadModelDb>>,
    path: PathBuf,
    position: watch::Receiver<Position>,
    /// Shared with the loop, so a rebuild can publish the swapped position.
    position_tx: Arc<watch::Sender<Position>>,
    status: watch::Receiver<Status>,
}

impl std::fmt::Debug for Projections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projections")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Projections {
    /// Starts following `store` into `db` on the current tokio runtime. The
    /// loop ends when `shutdown` resolves, after finishing its batch.
    pub fn start(
        store: Arc<dyn EventStore>,
        db: ReadModelDb,
        path: impl AsRef<Path>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let (position_tx, position) = watch::channel(db.position());
        let position_tx = Arc::new(position_tx);
        let (status_tx, status) = watch::channel(Status::Running);
        let db = Arc::new(Mutex::new(db));
        let projections = Projections {
            store: Arc::clone(&store),
            db: Arc::clone(&db),
            path: path.as_ref().to_owned(),
            position,
            position_tx: Arc::clone(&position_tx),
            status,
        };
        tokio::spawn(async move {
            let outcome = tokio::select! {
                outcome = follow(store, db, &position_tx) => outcome,
                () = shutdown => Ok(()),
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

    /// The position every read model has reached.
    pub fn position(&self) -> Position {
        *self.position.borrow()
    }

    /// Whether the loop runs, failed or stopped.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// The read-model database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until every read model has taken the event at `position`, or
    /// fails with [`Error::NotCaughtUp`] after `timeout`.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> Result<()> {
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
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let mut checkpoints: Vec<_> = db.checkpoints().into_iter().collect();
        checkpoints.sort();
        checkpoints
    }

    /// Rebuilds every read model from the start of `$all` into a fresh file
    /// beside the live one, then swaps the new tables in atomically. Queries
    /// are served from the old tables until the swap commits.
    pub async fn rebuild(&self, progress: impl FnMut(rebuild::Progress) + Send) -> Result<Position> {
        let projectors = {
            let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
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
            let db = Arc::clone(&self.db);
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
        if let Ok(position) = result {
            publish(&self.position_tx, position);
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut file = fresh.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
        result
    }
}

/// Follows `$all` from the lowest checkpoint, in batches of whatever is
/// ready, until the subscription ends or a batch fails.
async fn follow(
    store: Arc<dyn EventStore>,
    db: Arc<Mutex<ReadModelDb>>,
    position: &watch::Sender<Position>,
) -> Result<()> {
    let from = db.lock().unwrap_or_else(|p| p.into_inner()).position();
    let mut events = store.subscribe_all(from, AllFilter::all());
    while let Some(first) = events.next().await {
        let mut batch = vec![first?];
        while batch.len() < BATCH {
            match events.next().now_or_never() {
                Some(Some(event)) => batch.push(event?),
                _ => break,
            }
        }
        let db = Arc::clone(&db);
        let (reached, applied) = tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(|p| p.into_inner());
            let applied = db.apply(&batch);
            // On a failure the events before the bad one are committed too.
            (db.position(), applied)
        })
        .await
        .map_err(|e| Error::Stopped(format!("projection task failed: {e}")))?;
        publish(position, reached);
        applied?;
    }
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
