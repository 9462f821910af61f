//! Building read models from history: a full rebuild (swapped in by
//! [`crate::Projections::rebuild`]) or a replay to a past point into a
//! separate file, for audits. [`catch_up_postgres`] does for PostgreSQL
//! read models what [`catch_up`] does for a file.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use palaver_store::{AllFilter, EventStore, Position, RecordedEvent};

use crate::{Error, Result, database::ReadModelDb, postgres::PgReadModelDb, projector::Projector};

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
    let (mut db, _) = catch_up(store.as_ref(), db, until, progress).await?;
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
    let mut pages = Pages::start(store, db.position(), until).await?;
    while let Some(page) = pages.next().await? {
        let (returned, applied) = tokio::task::spawn_blocking(move || {
            let applied = db.apply(&page);
            (db, applied)
        })
        .await
        .map_err(|e| Error::Stopped(format!("replay task failed: {e}")))?;
        db = returned;
        applied?;
        progress(pages.progress());
    }
    let position = db.position();
    Ok((db, position))
}

/// Folds `$all` into the PostgreSQL read models `db` from their position
/// until `until`: [`catch_up`] for PostgreSQL.
pub async fn catch_up_postgres(
    store: &dyn EventStore,
    db: &mut PgReadModelDb,
    until: Until,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<Position> {
    let mut pages = Pages::start(store, db.position(), until).await?;
    while let Some(page) = pages.next().await? {
        db.apply(&page).await?;
        progress(pages.progress());
    }
    Ok(db.position())
}

/// `$all` read page by page after a position, up to a point, counting
/// what has been read.
struct Pages<'s> {
    store: &'s dyn EventStore,
    until: Until,
    /// The last event handed out.
    after: Position,
    finished: bool,
    done: u64,
    total: u64,
    started: Instant,
}

impl<'s> Pages<'s> {
    async fn start(store: &'s dyn EventStore, from: Position, until: Until) -> Result<Pages<'s>> {
        let started = Instant::now();
        let head = store.head().await?;
        let total = match until {
            Until::Position(position) => position.0.min(head.0),
            Until::Head | Until::Time(_) => head.0,
        }
        .saturating_sub(from.0);
        Ok(Pages {
            store,
            until,
            after: from,
            finished: false,
            done: 0,
            total,
            started,
        })
    }

    /// The next page of events, or `None` once `until` is reached.
    async fn next(&mut self) -> Result<Option<Vec<RecordedEvent>>> {
        while !self.finished {
            let mut page = self.store.read_all(self.after, &AllFilter::all(), PAGE).await?;
            let full = page.len() == PAGE;
            let before = page.len();
            match self.until {
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
            self.finished = !full || page.len() < before;
            if let Some(last) = page.last() {
                self.after = last.position;
                self.done += page.len() as u64;
                return Ok(Some(page));
            }
        }
        Ok(None)
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.done,
            total: self.total.max(self.done),
            elapsed: self.started.elapsed(),
        }
    }
}
