//! First inbox pages kept between commits to the read models.
//!
//! Every teammate with an inbox open asks for the same first page of their
//! workspace's inbox, again and again, while it mostly has not changed. A
//! page read once is kept until the read models next commit (every batch
//! the projector applies, and a rebuild's swap, counts as one [`Changes`])
//! or until the clock reaches a time at which the page would read
//! differently: a snooze running out, a window closing, a closing-soon
//! warning lapsing. So a cached answer is always the answer the tables
//! would give now; under a steady stream of writes a page is read at most
//! once per projector batch.
//!
//! Only first pages (no cursor) are kept: later pages are read once by a
//! scrolling client, and keeping them would crowd out the pages everyone
//! polls. Only readers of tables that this process alone writes may cache
//! (the embedded SQLite read models: the projector holds the store's lock);
//! PostgreSQL read models can be written by another instance, so they are
//! always read afresh.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::queries::{AssigneeFilter, InboxPage, InboxQuery, Status};

/// Most rows the cache holds, over all its pages (a few MiB); past it, the
/// cache starts again empty.
const MAX_ROWS: usize = 20_000;

/// Counts the commits this process makes to its read-model tables. Bumped
/// after a commit and before its position is published, so a reader that
/// waited for a position (read-your-writes) sees the new count.
#[derive(Clone, Debug, Default)]
pub struct Changes(Arc<AtomicU64>);

impl Changes {
    /// How many commits so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// A commit has ended (whether or not every event in it applied: the
    /// tables may have changed either way).
    pub(crate) fn committed(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// What makes two first-page queries the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    workspace_id: Uuid,
    status: Option<Status>,
    assignee: AssigneeFilter,
    limit: u32,
}

impl Key {
    fn of(query: &InboxQuery) -> Option<Key> {
        query.cursor.is_none().then(|| Key {
            workspace_id: query.workspace_id,
            status: query.status,
            assignee: query.assignee.clone(),
            limit: query.limit,
        })
    }
}

/// A page as read at `read_at`, the same for any clock in
/// `[read_at, until)`.
#[derive(Debug)]
struct Entry {
    /// Shared with every caller it is handed to: a hit copies nothing, and
    /// a caller can tell by the pointer that it holds the same page as
    /// before (the API keeps each page's encoded answer that way).
    page: Arc<InboxPage>,
    read_at: i64,
    until: Option<i64>,
}

#[derive(Debug, Default)]
struct Pages {
    /// The commit count the pages were read at.
    changes: u64,
    rows: usize,
    pages: HashMap<Key, Arc<Entry>>,
}

/// First inbox pages, valid until the read models change.
#[derive(Debug)]
pub(crate) struct InboxCache {
    changes: Changes,
    pages: Mutex<Pages>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often first inbox pages were answered from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// First pages answered from the cache.
    pub hits: u64,
    /// First pages read from the tables (and kept, unless they changed meanwhile).
    pub misses: u64,
}

/// A page to read, and where its answer goes when it is cacheable.
pub(crate) struct Miss {
    key: Key,
    /// The commit count before the read: an answer is kept under it, so a
    /// commit that lands during the read makes it stale at once.
    changes: u64,
}

impl InboxCache {
    pub(crate) fn new(changes: Changes) -> Self {
        InboxCache {
            changes,
            pages: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The kept answer to `query` at `now`, or, for a first page that must
    /// be read, what [`InboxCache::keep`] needs to keep the answer.
    pub(crate) fn get(&self, query: &InboxQuery, now: DateTime<Utc>) -> Result<Arc<InboxPage>, Option<Miss>> {
        let Some(key) = Key::of(query) else {
            return Err(None);
        };
        // Read before the tables are: see `Miss::changes`.
        let changes = self.changes.count();
        let entry = {
            let pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
            (pages.changes == changes)
                .then(|| pages.pages.get(&key).cloned())
                .flatten()
        };
        let now = now.timestamp_micros();
        match entry {
            Some(entry) if entry.read_at <= now && entry.until.is_none_or(|until| now < until) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Ok(Arc::clone(&entry.page))
            }
            _ => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Err(Some(Miss { key, changes }))
            }
        }
    }

    /// Keeps `page`, read at `read_at` after `miss`, which reads the same
    /// until `until` (the first time after `read_at` at which the clock
    /// changes the answer), unless the tables changed since.
    pub(crate) fn keep(&self, miss: Miss, page: &Arc<InboxPage>, read_at: DateTime<Utc>, until: Option<i64>) {
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if miss.changes < pages.changes {
            return;
        }
        if miss.changes > pages.changes || pages.rows + page.rows.len() > MAX_ROWS {
            *pages = Pages {
                changes: miss.changes,
                ..Pages::default()
            };
        }
        pages.rows += page.rows.len();
        let entry = Entry {
            page: Arc::clone(page),
            read_at: read_at.timestamp_micros(),
            until,
        };
        if let Some(old) = pages.pages.insert(miss.key, Arc::new(entry)) {
            pages.rows -= old.page.rows.len();
        }
    }
}

/// The earlier of two optional times (`None` is never).
pub(crate) fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
