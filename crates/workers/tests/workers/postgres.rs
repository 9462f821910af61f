//! Workers over PostgreSQL leases and checkpoints, as several instances
//! run them: one instance works, the other waits; when the holder dies
//! (no release, no renewal) the other takes over within the lease time and
//! resumes after the dead holder's last checkpoint; the dead holder can no
//! longer move that checkpoint.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use palaver_store::{
    AllFilter, EventStore, ExpectedRevision, MemoryStore, Metadata, NewEvent, Position, RecordedEvent,
    StreamName,
};
use palaver_store_postgres::{PgLeases, PostgresOptions, PostgresStore};
use palaver_workers::runner::{Process, ProcessError, RunOptions, Runtime, run};
use palaver_workers::{Checkpoints, Error, PgCoordination};
use tokio::sync::watch;

const TTL: Duration = Duration::from_secs(1);

fn url() -> String {
    std::env::var("PALAVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own, dropped at the end.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(PostgresStore::drop_schema(&url(), &name))
        })
        .join();
    }
}

/// Records the positions it handled.
#[derive(Default)]
struct Recorder {
    handled: Mutex<Vec<u64>>,
}

#[async_trait]
impl Process for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn filter(&self) -> AllFilter {
        AllFilter::all()
    }
    fn concurrency(&self) -> usize {
        2
    }
    async fn handle(&self, event: RecordedEvent) -> Result<(), ProcessError> {
        self.handled.lock().unwrap().push(event.position.0);
        Ok(())
    }
}

impl Recorder {
    fn handled(&self) -> Vec<u64> {
        let mut handled = self.handled.lock().unwrap().clone();
        handled.sort_unstable();
        handled
    }
}

async fn append(store: &MemoryStore, count: usize) {
    let stream = StreamName::new("test-1").unwrap();
    for _ in 0..count {
        store
            .append(
                &stream,
                ExpectedRevision::Any,
                vec![NewEvent::new("any", b"x".to_vec(), Metadata::new(Utc::now()))],
            )
            .await
            .unwrap();
    }
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn instance(schema: &str, holder: &str, store: &Arc<MemoryStore>) -> (Runtime, Arc<PgCoordination>) {
    let leases = PgLeases::open(&url(), &PostgresOptions::in_schema(schema))
        .await
        .unwrap();
    let coordination = PgCoordination::new(leases, holder, TTL);
    let runtime = Runtime {
        store: store.clone(),
        checkpoints: Arc::new(Arc::clone(&coordination)),
        leases: Arc::new(Arc::clone(&coordination)),
        options: RunOptions {
            retry_base: Duration::from_millis(5),
            retry_max: Duration::from_millis(50),
            save_every: Duration::from_millis(20),
            lease_poll: Duration::from_millis(50),
        },
    };
    (runtime, coordination)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_worker_moves_to_the_other_instance_and_resumes_after_its_checkpoint() {
    let schema = Schema(format!("palaver_test_{}", uuid::Uuid::new_v4().simple()));
    let store = Arc::new(MemoryStore::default());
    let (runtime_a, a) = instance(&schema.0, "instance-a", &store).await;
    let (runtime_b, b) = instance(&schema.0, "instance-b", &store).await;
    append(&store, 5).await;

    let first = Arc::new(Recorder::default());
    let (_stop_a, shutdown_a) = watch::channel(false);
    let task_a = tokio::spawn(run(runtime_a, first.clone(), shutdown_a));
    wait_until("instance a handled the first events", async || {
        first.handled().len() == 5
    })
    .await;

    // Instance b starts too, but a holds the lease: b handles nothing.
    let second = Arc::new(Recorder::default());
    let (stop_b, shutdown_b) = watch::channel(false);
    let task_b = tokio::spawn(run(runtime_b, second.clone(), shutdown_b));
    append(&store, 3).await;
    wait_until("instance a handled the next events", async || {
        first.handled().len() == 8
    })
    .await;
    wait_until("instance a saved its checkpoint", async || {
        b.load("recorder").await.unwrap() == Position(8)
    })
    .await;
    assert!(second.handled().is_empty(), "two instances ran one worker");

    // Instance a dies: no release, no more renewals.
    task_a.abort();
    let died = Instant::now();
    append(&store, 2).await;
    wait_until("instance b took over", async || second.handled().len() == 2).await;
    let took = died.elapsed();
    assert!(took < TTL + Duration::from_secs(2), "takeover took {took:?}");
    assert_eq!(
        second.handled(),
        vec![9, 10],
        "b resumes after a's checkpoint, nothing twice"
    );
    assert_eq!(first.handled(), (1..=8).collect::<Vec<_>>());

    // The dead holder's checkpoint writes are fenced off.
    wait_until("instance b saved its checkpoint", async || {
        b.load("recorder").await.unwrap() == Position(10)
    })
    .await;
    match a.save("recorder", Position(3)).await {
        Err(Error::Lease(reason)) => assert!(reason.contains("recorder"), "{reason}"),
        other => panic!("a stale holder saved a checkpoint: {other:?}"),
    }
    assert_eq!(b.load("recorder").await.unwrap(), Position(10));

    stop_b.send(true).unwrap();
    task_b.await.unwrap();
}

#[tokio::test]
async fn a_checkpoint_is_saved_only_under_the_workers_lease() {
    let schema = Schema(format!("palaver_test_{}", uuid::Uuid::new_v4().simple()));
    let store = Arc::new(MemoryStore::default());
    let (runtime, coordination) = instance(&schema.0, "instance-a", &store).await;
    assert_eq!(coordination.load("never-ran").await.unwrap(), Position::START);
    assert!(matches!(
        coordination.save("never-ran", Position(4)).await,
        Err(Error::Lease(_))
    ));
    let lease = runtime
        .leases
        .try_acquire("never-ran")
        .await
        .unwrap()
        .expect("a free lease");
    coordination.save("never-ran", Position(4)).await.unwrap();
    assert_eq!(coordination.load("never-ran").await.unwrap(), Position(4));
    // Released: another instance may take it, and this one may not save.
    lease.release().await.unwrap();
    assert!(matches!(
        coordination.save("never-ran", Position(5)).await,
        Err(Error::Lease(_))
    ));
    assert_eq!(coordination.load("never-ran").await.unwrap(), Position(4));
}
