//! What KurrentDB keeps of the contract checks it skips, and what the
//! adapter adds: positions that increase but are not consecutive, reused ids
//! found in the target stream only, retries found far behind the tail,
//! namespaces, and a head watch that sees other processes' appends.
//!
//! Every test needs `PALAVER_TEST_KURRENTDB_URL`; without it each returns at
//! once, saying so.

use crate::contract;
use crate::support;

use std::{collections::HashMap, time::Duration};

use contract::{event, events, stream};
use futures::StreamExt;
use palaver_store::{AllFilter, AppendResult, Error, EventStore, ExpectedRevision, Position, RecordedEvent};
use uuid::Uuid;

async fn all(store: &impl EventStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, &AllFilter::all(), usize::MAX)
        .await
        .unwrap()
}

fn positions(events: &[RecordedEvent]) -> Vec<Position> {
    events.iter().map(|e| e.position).collect()
}

fn assert_increasing(positions: &[Position]) {
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "positions do not increase: {positions:?}"
    );
}

/// `positions_are_global_and_consecutive` and the head of
/// `expected_revisions_are_enforced`, without the arithmetic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn positions_increase_in_commit_order_and_reads_start_after_them() {
    let Some((store, ())) = support::fresh().await else {
        return;
    };
    assert_eq!(store.head().await.unwrap(), Position::START);
    let a = store
        .append(&stream("a-1"), ExpectedRevision::Any, events(2))
        .await
        .unwrap();
    let b = store
        .append(&stream("b-1"), ExpectedRevision::Any, events(3))
        .await
        .unwrap();
    let c = store
        .append(&stream("a-1"), ExpectedRevision::Any, events(1))
        .await
        .unwrap();
    let stored = all(&store).await;
    let seen = positions(&stored);
    assert_eq!(seen.len(), 6);
    assert_increasing(&seen);
    assert_eq!((a.first_position, a.last_position), (seen[0], seen[1]));
    assert_eq!((b.first_position, b.last_position), (seen[2], seen[4]));
    assert_eq!((c.first_position, c.last_position), (seen[5], seen[5]));
    assert_eq!(store.head().await.unwrap(), seen[5]);

    // "After" excludes the event at that position.
    let page = store.read_all(seen[1], &AllFilter::all(), 2).await.unwrap();
    let page: Vec<(&str, u64)> = page.iter().map(|e| (e.stream.as_str(), e.revision)).collect();
    assert_eq!(page, [("b-1", 0), ("b-1", 1)]);
    assert!(
        store
            .read_all(seen[5], &AllFilter::all(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Paging one event at a time visits every event once.
    let mut after = Position::START;
    let mut paged = Vec::new();
    while let Some(next) = store.read_all(after, &AllFilter::all(), 1).await.unwrap().pop() {
        after = next.position;
        paged.push(after);
    }
    assert_eq!(paged, seen);
}

/// `read_all_filters_by_prefix_and_type`, with the position read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_all_filters_on_the_server_and_the_client() {
    let Some((store, ())) = support::fresh().await else {
        return;
    };
    for (name, event_type, payload) in [
        ("conversation-1", "Opened", "c1"),
        ("thread-1", "Opened", "t1"),
        ("conversation-2", "Closed", "c2"),
        ("contact-1", "Created", "k1"),
    ] {
        store
            .append(
                &stream(name),
                ExpectedRevision::Any,
                vec![event(event_type, payload)],
            )
            .await
            .unwrap();
    }
    let payloads = |filter: AllFilter| {
        let store = store.clone();
        async move {
            store
                .read_all(Position::START, &filter, 100)
                .await
                .unwrap()
                .iter()
                .map(|e| String::from_utf8(e.payload.to_vec()).unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        payloads(AllFilter::stream_prefixes(["conversation-"])).await,
        ["c1", "c2"]
    );
    assert_eq!(
        payloads(AllFilter::stream_prefixes(["con"])).await,
        ["c1", "c2", "k1"]
    );
    assert_eq!(
        payloads(AllFilter::stream_prefixes(["thread-", "contact-"])).await,
        ["t1", "k1"]
    );
    assert_eq!(payloads(AllFilter::event_types(["Opened"])).await, ["c1", "t1"]);
    let both = AllFilter {
        stream_prefixes: vec!["conversation-".into()],
        event_types: vec!["Opened".into(), "Created".into()],
    };
    assert_eq!(payloads(both).await, ["c1"]);
    let third = all(&store).await[2].position;
    let page = store
        .read_all(Position::START, &AllFilter::event_types(["Closed", "Created"]), 1)
        .await
        .unwrap();
    assert_eq!(positions(&page), [third]);
    assert!(matches!(
        store
            .read_all(Position::START, &AllFilter::stream_prefixes(["c*"]), 10)
            .await,
        Err(Error::InvalidStreamName { .. })
    ));
}

/// `reused_ids_are_refused`, within one stream, and the documented gap:
/// KurrentDB has no index of ids, so another stream takes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reused_ids_are_refused_within_a_stream_only() {
    let Some((store, ())) = support::fresh().await else {
        return;
    };
    let s = stream("thread-1");
    let batch = events(3);
    store
        .append(&s, ExpectedRevision::Any, batch.clone())
        .await
        .unwrap();
    let conflict =
        |result: palaver_store::Result<AppendResult>| matches!(result, Err(Error::EventIdConflict { .. }));
    let mut changed = batch.clone();
    changed[0].payload = b"something else".to_vec().into();
    assert!(conflict(store.append(&s, ExpectedRevision::Any, changed).await));
    let part = store
        .append(&s, ExpectedRevision::Any, batch[1..].to_vec())
        .await
        .unwrap();
    assert_eq!((part.first_revision, part.last_revision), (1, 2));
    let swapped = vec![batch[1].clone(), batch[0].clone()];
    assert!(conflict(store.append(&s, ExpectedRevision::Any, swapped).await));
    let mixed = vec![event("t", "new"), batch[0].clone()];
    assert!(conflict(store.append(&s, ExpectedRevision::Any, mixed).await));
    let mut longer = batch.clone();
    longer.push(event("t", "extra"));
    assert!(conflict(store.append(&s, ExpectedRevision::Any, longer).await));
    assert_eq!(all(&store).await.len(), 3);

    let elsewhere = store
        .append(&stream("thread-2"), ExpectedRevision::Any, batch.clone())
        .await
        .unwrap();
    assert_eq!(
        elsewhere.first_revision, 0,
        "KurrentDB stores ids again in another stream"
    );
}

/// Palaver's command loop retries with the revision it loaded; such a retry
/// is recognised however far the stream has moved since.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exact_retry_is_recognised_far_behind_the_tail() {
    let Some((store, ())) = support::fresh().await else {
        return;
    };
    let s = stream("thread-1");
    store
        .append(&s, ExpectedRevision::NoStream, events(2))
        .await
        .unwrap();
    let batch = events(2);
    let first = store
        .append(&s, ExpectedRevision::Exact(1), batch.clone())
        .await
        .unwrap();
    for _ in 0..10 {
        store.append(&s, ExpectedRevision::Any, events(10)).await.unwrap();
    }
    let again = store.append(&s, ExpectedRevision::Exact(1), batch).await.unwrap();
    assert_eq!(again, first);
    // A new batch with that stale expectation is refused as usual.
    assert!(matches!(
        store.append(&s, ExpectedRevision::Exact(1), events(1)).await,
        Err(Error::WrongExpectedRevision { .. })
    ));
    assert_eq!(store.stream_revision(&s).await.unwrap(), Some(103));
}

/// `subscriptions_catch_up_then_go_live`, with positions read from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriptions_catch_up_then_go_live() {
    let Some((store, ())) = support::fresh().await else {
        return;
    };
    for i in 0..5 {
        store
            .append(&stream(&format!("s-{i}")), ExpectedRevision::Any, events(2))
            .await
            .unwrap();
    }
    let stored = positions(&all(&store).await);
    let mut from_start = store.subscribe_all(Position::START, AllFilter::all());
    let mut from_middle = store.subscribe_all(stored[3], AllFilter::all());
    for expected in &stored {
        assert_eq!(from_start.next().await.unwrap().unwrap().position, *expected);
    }
    assert_eq!(from_middle.next().await.unwrap().unwrap().position, stored[4]);

    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..20 {
                let batch = events(1 + i % 3);
                ids.extend(batch.iter().map(|e| e.id));
                store
                    .append(&stream("live-1"), ExpectedRevision::Any, batch)
                    .await
                    .unwrap();
            }
            ids
        })
    };
    let total = (0..20).map(|i| 1 + i % 3).sum::<usize>();
    let mut live = Vec::new();
    while live.len() < total {
        let event = tokio::time::timeout(Duration::from_secs(10), from_start.next())
            .await
            .expect("live event within 10s")
            .unwrap()
            .unwrap();
        live.push(event);
    }
    let ids = writer.await.unwrap();
    assert_eq!(live.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    let mut seen = stored.clone();
    seen.extend(positions(&live));
    assert_increasing(&seen);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), from_start.next())
            .await
            .is_err()
    );
}

/// `concurrent_writers_are_seen_once_in_order`, with the positions each
/// append reported checked against where its events are.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_are_seen_once_in_order() {
    const WRITERS: usize = 8;
    const APPENDS: usize = 20;
    let Some((store, ())) = support::fresh().await else {
        return;
    };
    let mut subscription = store.subscribe_all(Position::START, AllFilter::all());
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..APPENDS {
                let name = if i % 2 == 0 {
                    format!("shared-{}", i % 4)
                } else {
                    format!("own-{writer}")
                };
                let batch = events(1 + (i % 3));
                let ids: Vec<Uuid> = batch.iter().map(|e| e.id).collect();
                let result = store
                    .append(&stream(&name), ExpectedRevision::Any, batch)
                    .await
                    .unwrap();
                acknowledged.push((result, ids));
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    let stored = all(&store).await;
    let at: HashMap<Uuid, Position> = stored.iter().map(|e| (e.id, e.position)).collect();
    let count: usize = acknowledged.iter().map(|(_, ids)| ids.len()).sum();
    assert_eq!(stored.len(), count);
    for (result, ids) in &acknowledged {
        assert_eq!(at[&ids[0]], result.first_position);
        assert_eq!(at[&ids[ids.len() - 1]], result.last_position);
    }
    let mut seen = Vec::new();
    while seen.len() < count {
        let event = tokio::time::timeout(Duration::from_secs(20), subscription.next())
            .await
            .expect("subscriber keeps up")
            .unwrap()
            .unwrap();
        seen.push(event);
    }
    assert_eq!(
        seen.iter().map(|e| e.id).collect::<Vec<_>>(),
        stored.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    assert_increasing(&positions(&seen));
    assert_eq!(seen.last().map(|e| e.position), Some(store.head().await.unwrap()));
    let mut per_stream: HashMap<String, Vec<u64>> = HashMap::new();
    for event in stored {
        per_stream
            .entry(event.stream.to_string())
            .or_default()
            .push(event.revision);
    }
    for (name, revisions) in per_stream {
        assert_eq!(
            revisions,
            (0..revisions.len() as u64).collect::<Vec<_>>(),
            "{name}"
        );
    }
}

/// Two namespaces on one server see nothing of each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namespaces_keep_stores_apart() {
    let Some(url) = support::url() else { return };
    let (one, two) = (
        support::store_in(&url, &support::namespace()),
        support::store_in(&url, &support::namespace()),
    );
    let s = stream("thread-1");
    one.append(&s, ExpectedRevision::NoStream, events(2))
        .await
        .unwrap();
    assert_eq!(two.stream_revision(&s).await.unwrap(), None);
    assert!(all(&two).await.is_empty());
    assert_eq!(two.head().await.unwrap(), Position::START);
    two.append(&s, ExpectedRevision::NoStream, events(1))
        .await
        .unwrap();
    assert_eq!(one.stream_revision(&s).await.unwrap(), Some(1));
    assert_eq!(all(&one).await.len(), 2);
    assert!(
        palaver_store::verify::verify(&one, |_| {})
            .await
            .unwrap()
            .is_intact()
    );
}

/// The head watch moves with appends made through another client (another
/// Palaver process), not only with this one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_head_watch_sees_other_writers() {
    let Some(url) = support::url() else { return };
    let namespace = support::namespace();
    let (watcher, writer) = (
        support::store_in(&url, &namespace),
        support::store_in(&url, &namespace),
    );
    // The follower reads the head, then subscribes after it: an append
    // landing before, between or after those steps moves the watch.
    let mut head = watcher.watch_head();
    let written = writer
        .append(&stream("thread-1"), ExpectedRevision::Any, events(3))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        head.wait_for(|head| *head >= written.last_position),
    )
    .await
    .expect("the watch moves within 10s")
    .unwrap();
    assert_eq!(*head.borrow(), written.last_position);
}
