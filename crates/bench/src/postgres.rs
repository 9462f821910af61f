//! `palaver-bench postgres`: the PostgreSQL event store, with
//! `synchronous_commit = on` and 200-byte payloads, in a fresh schema that
//! is dropped afterwards. Needs a server at `--postgres-url`.
//!
//! - `postgres_append_1_writer_*`: one task, one event per append.
//! - `postgres_append_64_writers_*`: 64 tasks, each appending single events
//!   to its own stream; the writer commits what is waiting as one group.
//! - `postgres_append_batch100_*`: appends of 100 events from 1 and 8 tasks.
//! - `postgres_plain_insert_64_connections_events_per_s`: for comparison, 64
//!   connections each looping over a bare parameterised one-row INSERT
//!   (id, stream, revision, payload), each its own transaction, same
//!   durability: what the server and disk give without the store.
//!   `postgres_append_64_writers_vs_plain` is the store's 64-writer rate
//!   divided by it.
//! - `postgres_read_all_*`: reading `$all` from the start through the
//!   store's API in pages of 4096, over `--read-events` events.
//! - `postgres_rebuild_*`: the read models on PostgreSQL, from the rebuild
//!   area's customer histories (22 events each, `--rebuild-events` in all)
//!   in the PostgreSQL store: `postgres_rebuild_events_per_s` replays
//!   `$all` into a fresh read-model schema with every projector (as the
//!   `rebuild` area does into a file); `postgres_rebuild_swap_events_per_s`
//!   is `Projections::rebuild` over those live read models (a replay into
//!   an unlogged scratch schema, then the rows copied over the live ones in
//!   one transaction).

use std::{sync::Arc, time::Instant};

use clap::Args;
use palaver_projections::{
    PgReadModelDb, Projections, models,
    rebuild::{Until, catch_up_postgres},
};
use palaver_store::{AllFilter, EventStore, Position};
use palaver_store_postgres::{PostgresOptions, PostgresStore};

use crate::Figures;
use crate::rebuild::EVENTS_PER_CUSTOMER;
use crate::store::{PAYLOAD, appends, fill, micros};

#[derive(Debug, Args)]
pub struct Options {
    /// The PostgreSQL server to measure (a schema is created and dropped).
    #[arg(
        long,
        env = "PALAVER_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    )]
    postgres_url: String,
    /// Single-event appends by the one writer.
    #[arg(long, default_value_t = 1_000)]
    single_appends: u64,
    /// Single-event appends by each of the 64 writers (and one-row INSERTs
    /// by each of the 64 plain connections).
    #[arg(long, default_value_t = 200)]
    appends_per_writer: u64,
    /// Batches of 100 appended in the batch runs (split among the writers).
    #[arg(long, default_value_t = 400)]
    batches: u64,
    /// Events in the store read back through `$all`.
    #[arg(long, default_value_t = 200_000)]
    read_events: u64,
    /// Events the read models are rebuilt from (rounded to whole customers).
    #[arg(long, default_value_t = 100_000)]
    rebuild_events: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            postgres_url: std::env::var("PALAVER_BENCH_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".to_owned()),
            single_appends: 1_000,
            appends_per_writer: 200,
            batches: 400,
            read_events: 200_000,
            rebuild_events: 100_000,
        }
    }
}

pub async fn run(options: &Options, figures: &mut Figures) -> anyhow::Result<()> {
    let schema = format!("palaver_bench_{}", uuid::Uuid::new_v4().simple());
    let read_schema = format!(
        "palaver_bench_read_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let mut result = measure(options, &schema, figures).await;
    if result.is_ok() {
        result = rebuild(options, &schema, &read_schema, figures).await;
    }
    // Dropped whatever happened, so no run leaves data behind.
    PostgresStore::drop_schema(&options.postgres_url, &schema).await?;
    PostgresStore::drop_schema(&options.postgres_url, &read_schema).await?;
    result
}

/// Rebuild rates of the read models on PostgreSQL, from the store in
/// `schema` (emptied, then filled with customer histories) into
/// `read_schema`.
async fn rebuild(
    options: &Options,
    schema: &str,
    read_schema: &str,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let url = options.postgres_url.as_str();
    clear(url, schema).await?;
    let store = Arc::new(PostgresStore::open(url, PostgresOptions::in_schema(schema)).await?);
    crate::rebuild::fill(&store, options.rebuild_events.div_ceil(EVENTS_PER_CUSTOMER)).await?;
    let store: Arc<dyn EventStore> = store;
    let total = store.head().await?.0;

    let start = Instant::now();
    let mut db = PgReadModelDb::open(url, read_schema, models::all()).await?;
    let position = catch_up_postgres(store.as_ref(), &mut db, Until::Head, |_| {}).await?;
    let elapsed = start.elapsed().as_secs_f64();
    anyhow::ensure!(position.0 == total, "rebuilt to {position} of {total}");
    figures.record("postgres_rebuild_events", total as f64, "events");
    figures.record(
        "postgres_rebuild_events_per_s",
        total as f64 / elapsed,
        "events/s",
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let projections = Projections::start(Arc::clone(&store), db, "", async {
        let _ = stopped.await;
    });
    let start = Instant::now();
    let position = projections.rebuild(|_| {}).await;
    let elapsed = start.elapsed().as_secs_f64();
    drop(stop);
    let position = position?;
    anyhow::ensure!(position.0 == total, "rebuilt to {position} of {total}");
    figures.record(
        "postgres_rebuild_swap_events_per_s",
        total as f64 / elapsed,
        "events/s",
    );
    Ok(())
}

async fn measure(options: &Options, schema: &str, figures: &mut Figures) -> anyhow::Result<()> {
    let url = options.postgres_url.as_str();
    let open = || PostgresStore::open(url, PostgresOptions::in_schema(schema));

    // Each run starts from an empty store.
    let store = open().await?;
    let (rate, latency) = appends(&store, 1, options.single_appends, 1).await?;
    figures.record("postgres_append_1_writer_events_per_s", rate, "events/s");
    figures.record("postgres_append_1_writer_p50", micros(&latency, 0.50), "us");
    figures.record("postgres_append_1_writer_p99", micros(&latency, 0.99), "us");
    drop(store);
    clear(url, schema).await?;

    let store = open().await?;
    let (ours, latency) = appends(&store, 64, options.appends_per_writer, 1).await?;
    figures.record("postgres_append_64_writers_events_per_s", ours, "events/s");
    figures.record("postgres_append_64_writers_p50", micros(&latency, 0.50), "us");
    figures.record("postgres_append_64_writers_p99", micros(&latency, 0.99), "us");
    drop(store);
    clear(url, schema).await?;

    for writers in [1u64, 8] {
        let store = open().await?;
        let (rate, latency) = appends(&store, writers, options.batches / writers, 100).await?;
        let plural = if writers == 1 { "" } else { "s" };
        figures.record(
            format!("postgres_append_batch100_{writers}_writer{plural}_events_per_s"),
            rate,
            "events/s",
        );
        figures.record(
            format!("postgres_append_batch100_{writers}_writer{plural}_p99"),
            micros(&latency, 0.99),
            "us",
        );
        drop(store);
        clear(url, schema).await?;
    }

    let plain = plain_inserts(url, schema, 64, options.appends_per_writer).await?;
    figures.record(
        "postgres_plain_insert_64_connections_events_per_s",
        plain,
        "events/s",
    );
    figures.record("postgres_append_64_writers_vs_plain", ours / plain, "x");

    let store = open().await?;
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
    figures.record("postgres_read_all_events", read as f64, "events");
    figures.record(
        "postgres_read_all_events_per_s",
        read as f64 / elapsed,
        "events/s",
    );
    Ok(())
}

/// Empties the store's tables between runs (the schema stays).
async fn clear(url: &str, schema: &str) -> anyhow::Result<()> {
    let client = connect(url, schema).await?;
    client.batch_execute("TRUNCATE events, streams").await?;
    Ok(())
}

async fn connect(url: &str, schema: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "SET search_path TO \"{schema}\"; SET synchronous_commit TO on"
        ))
        .await?;
    Ok(client)
}

/// `connections` connections, each running `inserts` one-row INSERTs, each
/// committed on its own. Returns rows per second.
async fn plain_inserts(url: &str, schema: &str, connections: u64, inserts: u64) -> anyhow::Result<f64> {
    let setup = connect(url, schema).await?;
    setup
        .batch_execute(
            "CREATE TABLE plain_events (id UUID PRIMARY KEY, stream TEXT NOT NULL, \
             revision BIGINT NOT NULL, payload BYTEA NOT NULL)",
        )
        .await?;
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(connect(url, schema).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (n, client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let insert = client
                .prepare("INSERT INTO plain_events (id, stream, revision, payload) VALUES ($1, $2, $3, $4)")
                .await?;
            let stream = format!("bench-{n}");
            for revision in 0..inserts as i64 {
                client
                    .execute(
                        &insert,
                        &[&uuid::Uuid::now_v7(), &stream, &revision, &&PAYLOAD[..]],
                    )
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    setup.batch_execute("DROP TABLE plain_events").await?;
    Ok((connections * inserts) as f64 / elapsed)
}
