//! Building read models from history: a full rebuild (swapped in by
//! [`crate::Projections::rebuild`]) or a replay to a past point into a
//! separate file, for audits.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use palaver_store::{AllFilter, EventStore, Position};

use crate::{Error, Result, database::ReadModelDb, projector::Projector};

/// Events read and folded per step.
const PAGE: usize = 5000;

/// Where a replay stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The store's head when the replay reaches it.
    Head,
    /// This global position, included.
    Position(Position),
    /// The last event recorded at or before this time.
    Time(DateTime<Utc>),
}

/// How far a replay has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Events read so far.
    pub done: u64,
    /// Events to read in all (an estimate when stopping at a time).
    pub total: u64,
    /// Time since the replay started.
    pub elapsed: Duration,
}

impl Progress {
    /// Events per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Estimated time left.
    pub fn eta(&self) -> Duration {
        let rate = self.rate();
        if rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.total.saturating_sub(self.done) as f64 / rate)
    }
}

/// Replays `$all` into a new read-model database at `path` (which must not
/// exist yet) until `until`, and returns it open.
pub async fn replay(
    store: Arc<dyn EventStore>,
    path: &Path,
    projectors: Arc<[Arc<dyn Projector>]>,
    until: Until,
    progress: impl FnMut(Progress) + Send,
) -> Result<ReadModelDb> {
    if path.exists() {
        return Err(Error::InvalidArgument {
            field: "path",
            reason: format!("{} already exists; a replay writes a new file", path.display()),
        });
    }
    let db = ReadModelDb::open_scratch(path, projectors)?;
    let (db, _) = catch_up(store.as_ref(), db, until, progress).await?;
    // Complete now: from here on it is worth keeping.
    db.sync()?;
    Ok(db)
}

/// Folds `$all` into `db` from its position until `until`.
pub async fn catch_up(
    store: &dyn EventStore,
    mut db: ReadModelDb,
    until: Until,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<(ReadModelDb, Position)> {
    let started = Instant::now();
    let from = db.position();
    let head = store.head().await?;
    let total = match until {
        Until::Position(position) => position.0.min(head.0),
        Until::Head | Until::Time(_) => head.0,
    }
    .saturating_sub(from.0);
    let mut done = 0u64;
    let mut after = from;
    loop {
        let mut page = store.read_all(after, &AllFilter::all(), PAGE).await?;
        let full = page.len() == PAGE;
        let before = page.len();
        match until {
            Until::Head => {}
            Until::Position(last) => page.retain(|event| event.position <= last),
            Until::Time(time) => {
                let keep = page
                    .iter()
                    .take_while(|event| event.metadata.recorded_at <= time)
                    .count();
                page.truncate(keep);
            }
        }
        let finished = !full || page.len() < before;
        if let Some(last) = page.last() {
            after = last.position;
            done += page.len() as u64;
            let (returned, applied) = tokio::task::spawn_blocking(move || {
                let applied = db.apply(&page);
                (db, applied)
            })
            .await
            .map_err(|e| Error::Stopped(format!("replay task failed: {e}")))?;
            db = returned;
            applied?;
            progress(Progress {
                done,
                total: total.max(done),
                elapsed: started.elapsed(),
            });
        }
        if finished {
            break;
        }
    }
    let position = db.position();
    Ok((db, position))
}
