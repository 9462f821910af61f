//! The second stage of the group commit: making commits durable, and only
//! then visible and acknowledged (ADR 0012).
//!
//! The writer commits with `synchronous = NORMAL`, which writes a commit's
//! frames into the WAL without syncing it, and hands each commit here. This
//! thread syncs the WAL once for every commit that has arrived meanwhile
//! (`fdatasync`), then, in commit order, adds their events to the window of
//! recent events, moves the stream revisions and the head, and answers the
//! callers. So the writer runs the next group while the disk syncs the last
//! one, instead of waiting for it: on the reply benchmark the writer spent
//! most of a group's time in that wait.
//!
//! What keeps the promise "acknowledged means on disk, and nothing is seen
//! before it is on disk":
//! - No caller is answered before the sync that covers its commit.
//! - The head moves only after that sync, and every read of the store is
//!   bounded by the head (`position <= head`), so no reader, subscription or
//!   projection ever sees a commit that a power loss could still take away.
//!   Only the writer's own transactions see it, and a later commit that
//!   builds on it is synced with it or after it, never alone.
//! - If a sync fails, what the failed sync covered may or may not be on disk
//!   (the kernel may have dropped the pages it failed to write), so a retry
//!   of the sync proves nothing. The store then stops: those callers and
//!   every later append get an error, and the head stays where it was. Their
//!   events may still turn up after a restart, as after any crash between a
//!   commit and its answer; appends are retried safely by event id.

use std::{
    fs::File,
    io,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
};

use tokio::sync::{oneshot, watch};

use super::{Revisions, recent::RecentEvents};
use crate::{AppendResult, Error, Position, RecordedEvent, Result};

/// How the WAL is made durable: `fdatasync` in production; tests replace it
/// to hold a sync back or make it fail.
pub(crate) type SyncWal = Box<dyn FnMut(&File) -> io::Result<()> + Send>;

/// The production [`SyncWal`].
pub(crate) fn fdatasync() -> SyncWal {
    Box::new(File::sync_data)
}

/// One group the writer has committed (or failed to commit), waiting to be
/// synced and answered.
pub(super) struct Committed {
    /// Each caller's reply channel, with its answer.
    pub answers: Vec<(oneshot::Sender<Result<AppendResult>>, Result<AppendResult>)>,
    /// The events the commit stored, in position order (none if it failed,
    /// or if every request in it was refused or a retry).
    pub events: Vec<RecordedEvent>,
}

/// What the writer and this thread share.
pub(super) struct Durability<'a> {
    pub head: watch::Sender<Position>,
    pub revisions: &'a Revisions,
    pub recent: &'a RecentEvents,
    /// Set once a sync has failed: the writer then commits nothing more.
    pub stopped: &'a AtomicBool,
}

/// The answer to every append once [`Durability::stopped`] is set.
pub(super) fn stopped_error() -> Error {
    Error::Backend {
        message: "the event store stopped accepting writes after syncing its log to disk failed \
                  (see the log); restart the server"
            .to_owned(),
        source: None,
    }
}

/// Runs until the writer is gone and every commit it handed over is answered.
pub(super) fn run(wal: File, mut sync: SyncWal, commits: mpsc::Receiver<Committed>, shared: Durability<'_>) {
    let mut batch = Vec::new();
    while let Ok(first) = commits.recv() {
        batch.push(first);
        batch.extend(commits.try_iter());
        let wrote = batch.iter().any(|commit| !commit.events.is_empty());
        let synced = if shared.stopped.load(Ordering::Acquire) {
            false
        } else if wrote {
            match sync(&wal) {
                Ok(()) => true,
                Err(error) => {
                    tracing::error!(%error, "syncing the event store's log to disk failed; the store accepts no more writes");
                    shared.stopped.store(true, Ordering::Release);
                    false
                }
            }
        } else {
            // Nothing was written (every request refused, or retries):
            // the answers reflect commits already synced.
            true
        };
        if synced {
            publish(&mut batch, &shared);
        }
        for commit in batch.drain(..) {
            for (reply, answer) in commit.answers {
                let answer = if synced { answer } else { Err(stopped_error()) };
                // A caller that gave up waiting is no reason to stop.
                let _ = reply.send(answer);
            }
        }
    }
}

/// Makes the batch's events readable: the window and the revisions first,
/// then the head, so a reader that knows of an event (from the head or from
/// an answer, which comes after this) never finds either behind it.
fn publish(batch: &mut [Committed], shared: &Durability<'_>) {
    let mut head = None;
    for commit in batch.iter_mut() {
        let Some(last) = commit.events.last() else {
            continue;
        };
        head = Some(last.position);
        shared
            .revisions
            .committed(commit.events.iter().map(|event| (&event.stream, event.revision)));
        shared.recent.committed(std::mem::take(&mut commit.events));
    }
    if let Some(head) = head {
        shared.head.send_if_modified(|published| {
            let moved = *published < head;
            if moved {
                *published = head;
            }
            moved
        });
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::mpsc as std_mpsc, time::Duration};

    use chrono::Utc;
    use futures::StreamExt;

    use crate::{
        AllFilter, Direction, EventStore, ExpectedRevision, Limits, Metadata, NewEvent, ReadFrom,
        SqliteStore, StreamName,
    };

    fn event() -> NewEvent {
        NewEvent::new("test.Happened", &b"{}"[..], Metadata::new(Utc::now()))
    }

    /// A sync that tells `entered` when it starts and returns only once
    /// `release` says so.
    fn held(entered: std_mpsc::Sender<()>, release: std_mpsc::Receiver<()>) -> super::SyncWal {
        Box::new(move |file| {
            let _ = entered.send(());
            release.recv().expect("the test releases every sync");
            file.sync_data()
        })
    }

    async fn nothing_visible(store: &SqliteStore, stream: &StreamName) {
        assert_eq!(store.head().await.unwrap(), crate::Position::START);
        assert!(
            store
                .read_all(crate::Position::START, &AllFilter::all(), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let read = store
            .read_stream(stream, ReadFrom::Start, Direction::Forwards, 10)
            .await
            .unwrap();
        assert!(read.is_empty(), "{read:?}");
        let backwards = store
            .read_stream(stream, ReadFrom::End, Direction::Backwards, 10)
            .await
            .unwrap();
        assert!(backwards.is_empty(), "{backwards:?}");
        assert_eq!(store.stream_revision(stream).await.unwrap(), None);
        // `read_all` above is answered by the window of recent events; the
        // file's read must be bounded too (a store reopened, a subscriber
        // far behind).
        let file = store
            .read_all_from_file(crate::Position::START, &AllFilter::all(), 10)
            .await
            .unwrap();
        assert!(file.is_empty(), "{file:?}");
    }

    /// The writer has committed the append to SQLite, but its sync has not
    /// returned: no reader, subscriber or caller may know of it yet, since
    /// a power loss could still take it away.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_is_neither_seen_nor_acknowledged_before_its_sync() {
        let dir = tempfile::tempdir().unwrap();
        let (entered, syncing) = std_mpsc::channel();
        let (release, released) = std_mpsc::channel();
        let store = SqliteStore::open_with_sync(
            dir.path().join("events.db"),
            Limits::default(),
            held(entered, released),
        )
        .unwrap();
        let stream = StreamName::new("thread-1").unwrap();
        let mut subscription = store.subscribe_all(crate::Position::START, AllFilter::all());

        let appending = tokio::spawn({
            let (store, stream) = (store.clone(), stream.clone());
            async move {
                store
                    .append(&stream, ExpectedRevision::NoStream, vec![event()])
                    .await
            }
        });
        tokio::task::spawn_blocking(move || syncing.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("the commit reaches the sync stage");

        nothing_visible(&store, &stream).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), subscription.next())
                .await
                .is_err(),
            "a subscriber saw an unsynced commit"
        );
        assert!(!appending.is_finished(), "an append was answered before its sync");

        release.send(()).unwrap();
        let result = appending.await.unwrap().unwrap();
        assert_eq!(result.last_position, crate::Position(1));
        assert_eq!(store.head().await.unwrap(), crate::Position(1));
        assert_eq!(
            store
                .read_all(crate::Position::START, &AllFilter::all(), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.stream_revision(&stream).await.unwrap(), Some(0));
        let seen = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(seen.position, crate::Position(1));
    }

    /// A failed sync may have lost what it covered, and retrying it proves
    /// nothing: the store answers with an error, shows nothing of it, and
    /// writes nothing more.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_stops_all_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let failing: super::SyncWal = Box::new(|_| Err(std::io::Error::other("the disk is gone")));
        let store = SqliteStore::open_with_sync(&path, Limits::default(), failing).unwrap();
        let stream = StreamName::new("thread-1").unwrap();

        let first = store
            .append(&stream, ExpectedRevision::NoStream, vec![event()])
            .await;
        let error = first.expect_err("the sync failed").to_string();
        assert!(error.contains("stopped accepting writes"), "{error}");
        nothing_visible(&store, &stream).await;

        let other = StreamName::new("thread-2").unwrap();
        let second = store.append(&other, ExpectedRevision::Any, vec![event()]).await;
        assert!(
            second
                .expect_err("the store has stopped")
                .to_string()
                .contains("stopped accepting writes")
        );
        nothing_visible(&store, &other).await;
        drop(store);

        // After a restart the first append may turn up (it was committed,
        // only its sync failed), as after a crash before an answer; the
        // second was never written.
        let reopened = SqliteStore::open(&path, Limits::default()).unwrap();
        assert!(reopened.head().await.unwrap() <= crate::Position(1));
        assert_eq!(reopened.stream_revision(&other).await.unwrap(), None);
    }
}
