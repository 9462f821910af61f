//! The worker loop: every matching event handled, failures retried, the
//! checkpoint never passing unfinished work, a restart resuming after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use palaver_store::{
    AllFilter, EventStore, ExpectedRevision, MemoryStore, Metadata, NewEvent, Position, RecordedEvent,
    StreamName,
};
use palaver_workers::checkpoint::SqliteCheckpoints;
use palaver_workers::runner::{Process, ProcessError, RunOptions, Runtime, run};
use palaver_workers::{Checkpoints, LocalLeases};
use tokio::sync::watch;

/// Records what it handled; fails the first `failures` tries of each event.
struct Recorder {
    failures: u32,
    tries: Mutex<HashMap<u64, u32>>,
    handled: Mutex<Vec<u64>>,
}

#[async_trait]
impl Process for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn filter(&self) -> AllFilter {
        AllFilter::event_types(["wanted"])
    }
    fn concurrency(&self) -> usize {
        4
    }
    async fn handle(&self, event: RecordedEvent) -> Result<(), ProcessError> {
        let tries = {
            let mut tries = self.tries.lock().unwrap();
            let n = tries.entry(event.position.0).or_default();
            *n += 1;
            *n
        };
        if tries <= self.failures {
            return Err(ProcessError::new("not yet"));
        }
        self.handled.lock().unwrap().push(event.position.0);
        Ok(())
    }
}

async fn append(store: &MemoryStore, event_type: &str) {
    let stream = StreamName::new("test-1").unwrap();
    store
        .append(
            &stream,
            ExpectedRevision::Any,
            vec![NewEvent::new(
                event_type,
                b"x".to_vec(),
                Metadata::new(Utc::now()),
            )],
        )
        .await
        .unwrap();
}

fn options() -> RunOptions {
    RunOptions {
        retry_base: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        save_every: Duration::from_millis(10),
        lease_poll: Duration::from_millis(10),
    }
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_each_matching_event_retrying_failures_and_resumes_after_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let checkpoints = Arc::new(SqliteCheckpoints::open(&dir.path().join("workers.db")).unwrap());
    for i in 0..10 {
        append(&store, if i % 2 == 0 { "wanted" } else { "other" }).await;
    }
    let runtime = Runtime {
        store: store.clone(),
        checkpoints: checkpoints.clone(),
        leases: Arc::new(LocalLeases),
        options: options(),
    };
    let recorder = Arc::new(Recorder {
        failures: 2,
        tries: Mutex::default(),
        handled: Mutex::default(),
    });
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(run(runtime.clone(), recorder.clone(), shutdown));
    wait_until(|| recorder.handled.lock().unwrap().len() == 5).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let mut handled = recorder.handled.lock().unwrap().clone();
    handled.sort_unstable();
    assert_eq!(handled, vec![1, 3, 5, 7, 9]);
    assert!(recorder.tries.lock().unwrap().values().all(|&n| n == 3));
    assert_eq!(checkpoints.load("recorder").await.unwrap(), Position(9));

    // A restart handles only what came after the checkpoint.
    append(&store, "wanted").await;
    let again = Arc::new(Recorder {
        failures: 0,
        tries: Mutex::default(),
        handled: Mutex::default(),
    });
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(run(runtime, again.clone(), shutdown));
    wait_until(|| !again.handled.lock().unwrap().is_empty()).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(*again.handled.lock().unwrap(), vec![11]);
}
