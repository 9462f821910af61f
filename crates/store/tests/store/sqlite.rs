//! What only the SQLite store promises: durability across reopen and crash,
//! one writing process, a versioned schema, and tamper evidence on disk.

use crate::contract;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use contract::{events, stream};
use palaver_store::{
    AllFilter, Error, EventStore, ExpectedRevision, Limits, NewEvent, Position, SqliteStore,
    verify::{self, Problem},
};

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, Limits::default()).unwrap()
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data").join("events.db")
}

#[tokio::test(flavor = "multi_thread")]
async fn events_and_chains_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let store = open(&path);
        store
            .append(&stream("thread-1"), ExpectedRevision::NoStream, events(3))
            .await
            .unwrap();
        store
            .append(&stream("thread-2"), ExpectedRevision::NoStream, events(1))
            .await
            .unwrap();
    }
    let store = open(&path);
    assert_eq!(store.head().await.unwrap(), Position(4));
    assert_eq!(store.stream_revision(&stream("thread-1")).await.unwrap(), Some(2));
    // New appends continue positions, revisions and the hash chain.
    let result = store
        .append(&stream("thread-1"), ExpectedRevision::Exact(2), events(1))
        .await
        .unwrap();
    assert_eq!((result.first_revision, result.first_position), (3, Position(5)));
    let report = verify::verify(&store, |_| {}).await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.events, 5);
}

/// The store answers a read past a stream's end from the revisions its
/// writer remembers, without SQLite. That must never hide an event: not one
/// another task just appended, not one written before this opening (when
/// nothing is remembered yet), not one that failed (nothing to remember).
#[tokio::test(flavor = "multi_thread")]
async fn reads_past_a_streams_end_never_hide_events() {
    use palaver_store::{Direction, ReadFrom};
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let (old, new) = (stream("thread-old"), stream("thread-new"));
    open(&path)
        .append(&old, ExpectedRevision::NoStream, events(2))
        .await
        .unwrap();

    let store = open(&path);
    let from = ReadFrom::Revision;
    let read = |name, start| {
        let store = store.clone();
        async move {
            store
                .read_stream(&name, start, Direction::Forwards, 10)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        read(old.clone(), from(1)).await.len(),
        1,
        "written before opening"
    );
    assert_eq!(read(old.clone(), from(2)).await.len(), 0);

    for revision in 0..20u64 {
        let expected = revision
            .checked_sub(1)
            .map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
        store.append(&new, expected, events(1)).await.unwrap();
        // A read on another task right after the append finds it.
        let seen = tokio::spawn(read(new.clone(), from(revision))).await.unwrap();
        assert_eq!(seen.first().map(|e| e.revision), Some(revision));
    }
    let refused = store.append(&new, ExpectedRevision::Exact(3), events(1)).await;
    assert!(
        matches!(refused, Err(Error::WrongExpectedRevision { .. })),
        "{refused:?}"
    );
    assert_eq!(read(new.clone(), from(20)).await.len(), 0);
    assert_eq!(store.stream_revision(&new).await.unwrap(), Some(19));
    assert_eq!(store.stream_revision(&old).await.unwrap(), Some(1));
}

/// Under steady appends the WAL must be copied into the database and then
/// written again from its start, not grow with every commit: a WAL that
/// only grows makes every commit and every reader slower and fills the
/// disk. (It once reached 660 MB beside a 21 MB database in the gRPC
/// benchmark: the checkpointer estimated the WAL's growth from event sizes,
/// some 40 times too low, and the writer always began its next transaction
/// before a checkpoint had caught up.) 64 MiB of events go in; the WAL must
/// stay well below that.
#[tokio::test(flavor = "multi_thread")]
async fn the_wal_is_restarted_under_steady_appends() {
    const EVENTS: usize = 4096;
    const PER_APPEND: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = open(&path);
    let payload = "x".repeat(16 * 1024);
    for i in 0..EVENTS / PER_APPEND {
        let batch = (0..PER_APPEND)
            .map(|_| contract::event("test.Happened", &payload))
            .collect();
        store
            .append(&stream(&format!("thread-{i}")), ExpectedRevision::NoStream, batch)
            .await
            .unwrap();
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_bytes = std::fs::metadata(&wal).unwrap().len();
    assert!(
        // The writer restarts at 4,000 frames (16 MiB), or at 8,000 if the
        // checkpointer lags; without restarts this run left 85 MB.
        wal_bytes < 40 * 1024 * 1024,
        "the WAL grew to {wal_bytes} bytes for 64 MiB of events"
    );
    assert_eq!(store.head().await.unwrap(), Position(EVENTS as u64));
    let report = verify::verify(&store, |_| {}).await.unwrap();
    assert!(report.is_intact());
}

#[tokio::test]
async fn a_second_process_cannot_open_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let first = open(&path);
    assert!(matches!(
        SqliteStore::open(&path, Limits::default()),
        Err(Error::Locked { .. })
    ));
    drop(first);
    open(&path);
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(open(&path));
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match SqliteStore::open(&path, Limits::default()) {
        Err(Error::SchemaTooNew {
            found: 99, supported, ..
        }) => {
            assert_eq!(supported, palaver_store::sqlite::schema::SCHEMA_VERSION)
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_foreign_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE customers (id INTEGER)").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        SqliteStore::open(&path, Limits::default()),
        Err(Error::NotAnEventStore { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// Writes three streams, then lets `tamper` change the file behind the
/// store's back, and returns what verification finds.
async fn verify_after(tamper: &str) -> verify::VerifyReport {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let store = open(&path);
        for name in ["a-1", "b-1", "c-1"] {
            store
                .append(&stream(name), ExpectedRevision::Any, events(4))
                .await
                .unwrap();
        }
    }
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(tamper)
        .unwrap();
    verify::verify(&open(&path), |_| {}).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_finds_changed_removed_and_reordered_events() {
    // b-1 holds positions 5..=8, revisions 0..=3.
    let changed = verify_after("UPDATE events SET payload = x'00' WHERE position = 6").await;
    let link = changed.first_break.unwrap();
    assert_eq!(
        (link.stream.as_str(), link.revision, link.problem),
        ("b-1", 1, Problem::HashMismatch)
    );
    assert_eq!(changed.events, 5);

    let removed = verify_after("DELETE FROM events WHERE position = 6").await;
    let link = removed.first_break.unwrap();
    assert_eq!(
        (link.revision, link.problem),
        (2, Problem::RevisionOutOfSequence { expected: 1 })
    );

    // Removing and renumbering to hide the gap still breaks the chain.
    let renumbered = verify_after(
        "DELETE FROM events WHERE position = 6; \
         UPDATE events SET revision = revision - 1 WHERE stream = 'b-1' AND revision > 1",
    )
    .await;
    let link = renumbered.first_break.unwrap();
    assert_eq!((link.revision, link.problem), (1, Problem::HashMismatch));

    let swapped = verify_after(
        "UPDATE events SET revision = -1 WHERE position = 6; \
         UPDATE events SET revision = 1 WHERE position = 7; \
         UPDATE events SET revision = 2 WHERE position = 6",
    )
    .await;
    let link = swapped.first_break.unwrap();
    assert_eq!((link.stream.as_str(), link.position), ("b-1", Position(6)));
    assert_eq!(link.problem, Problem::RevisionOutOfSequence { expected: 1 });

    let metadata = verify_after("UPDATE events SET actor = 'mallory' WHERE position = 12").await;
    let link = metadata.first_break.unwrap();
    assert_eq!((link.stream.as_str(), link.revision), ("c-1", 3));
}

/// Set by the crash test for the child process it starts.
const CHILD_ENV: &str = "PALAVER_STORE_CRASH_CHILD_DB";
const BATCH: usize = 5;

/// The child half of the crash test: appends batches from several tasks as
/// fast as it can and prints `ACK <stream> <first revision> <first id>` for
/// each acknowledged one, until it is killed. Does nothing when run alone.
#[test]
#[ignore = "run by crash_loses_no_acknowledged_append"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = open(Path::new(&path));
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for round in 0u64.. {
                    let name = stream(&format!("crash-{}", (writer + round) % 6));
                    let batch: Vec<NewEvent> = events(BATCH);
                    let first = batch[0].id;
                    let result = store.append(&name, ExpectedRevision::Any, batch).await.unwrap();
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {name} {} {first}", result.first_revision).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loses_no_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acknowledged = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        if words.next() != Some("ACK") {
            continue;
        }
        let (name, revision, id) = (
            words.next().unwrap(),
            words.next().unwrap(),
            words.next().unwrap(),
        );
        acknowledged.push((
            name.to_owned(),
            revision.parse::<u64>().unwrap(),
            id.parse::<uuid::Uuid>().unwrap(),
        ));
        if acknowledged.len() == 300 {
            // SIGKILL: no destructor, no flush, no goodbye.
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert_eq!(acknowledged.len(), 300, "the child stopped early");

    let store = open(&path);
    let stored = store
        .read_all(Position::START, &AllFilter::all(), usize::MAX)
        .await
        .unwrap();
    let by_id: HashMap<_, _> = stored.iter().map(|e| (e.id, e)).collect();
    for (name, revision, id) in &acknowledged {
        let event = by_id
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged batch {id} was lost"));
        assert_eq!(
            (event.stream.as_str(), event.revision),
            (name.as_str(), *revision)
        );
    }
    // No batch is half-written: every stream holds whole batches, and
    // consecutive positions within each.
    let mut per_stream: HashMap<&str, Vec<&palaver_store::RecordedEvent>> = HashMap::new();
    for event in &stored {
        per_stream.entry(event.stream.as_str()).or_default().push(event);
    }
    for (name, events) in per_stream {
        assert_eq!(events.len() % BATCH, 0, "{name} holds a partial batch");
        for batch in events.chunks(BATCH) {
            for pair in batch.windows(2) {
                assert_eq!(pair[1].position.0, pair[0].position.0 + 1, "{name} batch split");
            }
        }
    }
    let report = verify::verify(&store, |_| {}).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.first_break);
    // The store takes new appends after the crash.
    store
        .append(&stream("crash-0"), ExpectedRevision::Any, events(1))
        .await
        .unwrap();
}

mod rows {
    //! Whatever an event holds comes back from the database unchanged.

    use chrono::{TimeZone, Utc};
    use palaver_store::{Direction, Metadata, ReadFrom, hash};
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;

    fn arb_event() -> impl Strategy<Value = NewEvent> {
        (
            any::<u128>(),
            "[A-Za-z0-9._-]{1,60}",
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..2048),
            proptest::option::of(any::<u128>()),
            proptest::option::of(any::<u128>()),
            "[^\\p{Cc}]{0,40}",
            -62_135_596_800_000_000i64..253_402_300_799_999_999i64,
        )
            .prop_map(
                |(id, event_type, version, payload, correlation, causation, actor, micros)| {
                    let mut metadata = Metadata::new(Utc.timestamp_micros(micros).unwrap()).with_actor(actor);
                    metadata.correlation_id = correlation.map(Uuid::from_u128);
                    metadata.causation_id = causation.map(Uuid::from_u128);
                    NewEvent::new(event_type, payload, metadata)
                        .with_id(Uuid::from_u128(id))
                        .with_schema_version(version)
                },
            )
            .prop_filter("fits the actor limit", |e| e.metadata.actor.len() <= 256)
    }

    #[test]
    fn stored_rows_decode_to_what_was_appended() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = open(&db(&dir));
        let config = ProptestConfig {
            cases: 64,
            ..ProptestConfig::default()
        };
        proptest!(config, |(event in arb_event(), stream_number in 0u8..4)| {
            runtime.block_on(async {
                let name = stream(&format!("prop-{stream_number}"));
                let result = store.append(&name, ExpectedRevision::Any, vec![event.clone()]).await.unwrap();
                let read = store
                    .read_stream(&name, ReadFrom::Revision(result.first_revision), Direction::Forwards, 1)
                    .await
                    .unwrap();
                prop_assert!(read[0].same_content_as(&event));
                prop_assert_eq!(read[0].position, result.first_position);
                let previous = if result.first_revision == 0 {
                    hash::GENESIS
                } else {
                    store
                        .read_stream(&name, ReadFrom::Revision(result.first_revision - 1), Direction::Forwards, 1)
                        .await
                        .unwrap()[0]
                        .hash
                };
                prop_assert_eq!(read[0].compute_hash(&previous), read[0].hash);
                Ok(())
            })?;
        });
    }
}
