//! `palaver-bench store`: the embedded SQLite store with fsync on and
//! 200-byte payloads.
//!
//! - `fdatasync_per_s`: the disk's raw rate of 4 KiB append + fdatasync in
//!   the same folder, the physical limit on commits per second. Read the
//!   append figures as a ratio to it: with group commit, events per second
//!   can exceed it many times over.
//! - `append_1_writer_*`: one task, one event per append, one after another.
//! - `append_64_writers_*`: 64 tasks, each appending single events to its own
//!   stream; group commit shares each fsync between them.
//! - `append_batch100_*`: appends of 100 events from 1 and from 8 tasks.
//! - `plain_sqlite_batch100_events_per_s`: for comparison, a bare rusqlite
//!   loop inserting the same 200-byte rows (id, stream, revision, payload)
//!   100 per transaction with the same durability settings: the ceiling
//!   SQLite and the disk set, against which the store's overhead shows.
//! - `read_all_*`: reading `$all` from the start through the store's API in
//!   pages of 4096, over a store of `--read-events` events.

use std::{
    io::Write,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use hdrhistogram::Histogram;
use palaver_store::{
    AllFilter, EventStore, ExpectedRevision, Limits, Metadata, NewEvent, Position, SqliteStore, StreamName,
};

use crate::Figures;

#[derive(Debug, Args)]
pub struct Options {
    /// Single-event appends by the one writer.
    #[arg(long, default_value_t = 3_000)]
    single_appends: u64,
    /// Single-event appends by each of the 64 writers.
    #[arg(long, default_value_t = 1_000)]
    appends_per_writer: u64,
    /// Batches of 100 appended in the batch runs (split among the writers).
    #[arg(long, default_value_t = 1_600)]
    batches: u64,
    /// Events in the store read back through `$all`.
    #[arg(long, default_value_t = 1_000_000)]
    read_events: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            single_appends: 3_000,
            appends_per_writer: 1_000,
            batches: 1_600,
            read_events: 1_000_000,
        }
    }
}

pub(crate) const PAYLOAD: [u8; 200] = [b'x'; 200];

/// The event every append benchmark writes (200 bytes of payload).
pub(crate) fn new_event() -> NewEvent {
    NewEvent::new(
        "bench.Happened",
        PAYLOAD.to_vec(),
        Metadata::new(chrono::Utc::now()).with_actor("bench"),
    )
}

fn fresh_store(dir: &Path, name: &str) -> anyhow::Result<SqliteStore> {
    let path = dir.join(name);
    crate::remove_database(&path);
    Ok(SqliteStore::open(path, Limits::default())?)
}

pub async fn run(dir: &Path, options: &Options, figures: &mut Figures) -> anyhow::Result<()> {
    figures.record("fdatasync_per_s", fdatasync_rate(dir)?, "ops/s");

    let store = fresh_store(dir, "append-single.db")?;
    let (rate, latency) = appends(&store, 1, options.single_appends, 1).await?;
    figures.record("append_1_writer_events_per_s", rate, "events/s");
    figures.record("append_1_writer_p50", micros(&latency, 0.50), "us");
    figures.record("append_1_writer_p99", micros(&latency, 0.99), "us");
    drop(store);

    let store = fresh_store(dir, "append-64.db")?;
    let (rate, latency) = appends(&store, 64, options.appends_per_writer, 1).await?;
    figures.record("append_64_writers_events_per_s", rate, "events/s");
    figures.record("append_64_writers_p50", micros(&latency, 0.50), "us");
    figures.record("append_64_writers_p99", micros(&latency, 0.99), "us");
    drop(store);

    for writers in [1u64, 8] {
        let store = fresh_store(dir, "append-batch.db")?;
        let (rate, latency) = appends(&store, writers, options.batches / writers, 100).await?;
        figures.record(
            format!(
                "append_batch100_{writers}_writer{}_events_per_s",
                if writers == 1 { "" } else { "s" }
            ),
            rate,
            "events/s",
        );
        figures.record(
            format!(
                "append_batch100_{writers}_writer{}_p99",
                if writers == 1 { "" } else { "s" }
            ),
            micros(&latency, 0.99),
            "us",
        );
    }

    figures.record(
        "plain_sqlite_batch100_events_per_s",
        plain_sqlite(dir, options.batches)?,
        "events/s",
    );

    let store = fresh_store(dir, "read-all.db")?;
    fill(&store, options.read_events).await?;
    let start = Instant::now();
    let mut after = Position::START;
    let mut read = 0u64;
    loop {
        let page = store.read_all(after, &AllFilter::all(), 4096).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        read += page.len() as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        read == options.read_events,
        "read {read} of {} events",
        options.read_events
    );
    figures.record("read_all_events", read as f64, "events");
    figures.record("read_all_events_per_s", read as f64 / elapsed, "events/s");
    Ok(())
}

/// `writers` tasks, each making `appends` appends of `batch` events to its
/// own stream. Returns events per second and per-append latencies.
pub(crate) async fn appends<S: EventStore + Clone>(
    store: &S,
    writers: u64,
    appends: u64,
    batch: usize,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamName::new(format!("bench-{writer}"))?;
            let mut latency = Histogram::<u64>::new(3)?;
            for _ in 0..appends {
                let events = (0..batch).map(|_| new_event()).collect();
                let began = Instant::now();
                store.append(&stream, ExpectedRevision::Any, events).await?;
                latency.record(began.elapsed().as_nanos() as u64)?;
            }
            anyhow::Ok(latency)
        }));
    }
    let mut latency = Histogram::<u64>::new(3)?;
    for task in tasks {
        latency.add(task.await??)?;
    }
    let events = writers * appends * batch as u64;
    Ok((events as f64 / start.elapsed().as_secs_f64(), latency))
}

pub(crate) fn micros(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// Appends `total` events in batches of 1000 from 8 tasks over 1000 streams.
pub(crate) async fn fill<S: EventStore + Clone>(store: &S, total: u64) -> anyhow::Result<()> {
    const BATCH: u64 = 1000;
    let store = Arc::new(store.clone());
    let batches = total / BATCH;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, next) = (Arc::clone(&store), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= batches {
                    return anyhow::Ok(());
                }
                let stream = StreamName::new(format!("conversation-{}", n % 1000))?;
                let events = (0..BATCH).map(|_| new_event()).collect();
                store.append(&stream, ExpectedRevision::Any, events).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rest = total % BATCH;
    if rest > 0 {
        let events = (0..rest).map(|_| new_event()).collect();
        store
            .append(
                &StreamName::new("conversation-rest")?,
                ExpectedRevision::Any,
                events,
            )
            .await?;
    }
    Ok(())
}

/// Appends 4 KiB and calls fdatasync, for two seconds.
fn fdatasync_rate(dir: &Path) -> anyhow::Result<f64> {
    let path = dir.join("fdatasync.probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0u8; 4096];
    let start = Instant::now();
    let mut syncs = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        file.write_all(&block)?;
        file.sync_data()?;
        syncs += 1;
    }
    let rate = syncs as f64 / start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(path)?;
    Ok(rate)
}

/// A bare parameterised INSERT loop, 100 rows per transaction, WAL with
/// `synchronous = FULL`, on one connection.
fn plain_sqlite(dir: &Path, batches: u64) -> anyhow::Result<f64> {
    let path = dir.join("plain.db");
    crate::remove_database(&path);
    let mut conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE events (position INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, \
         stream TEXT NOT NULL, revision INTEGER NOT NULL, payload BLOB NOT NULL)",
    )?;
    let start = Instant::now();
    let mut revision = 0i64;
    for _ in 0..batches {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (id, stream, revision, payload) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for _ in 0..100 {
                insert.execute(rusqlite::params![
                    uuid::Uuid::now_v7().as_bytes(),
                    "bench-0",
                    revision,
                    &PAYLOAD[..]
                ])?;
                revision += 1;
            }
        }
        tx.commit()?;
    }
    Ok((batches * 100) as f64 / start.elapsed().as_secs_f64())
}
