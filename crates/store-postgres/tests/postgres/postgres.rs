//! What PostgreSQL adds to the contract: several instances on one schema,
//! migrations, reopening, lost connections, and leases.

use crate::support;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use palaver_store::{
    AllFilter, Direction, Error, EventStore, ExpectedRevision, Metadata, NewEvent, Position, ReadFrom,
    StreamName, verify,
};
use palaver_store_postgres::{LeaseError, PgLeases, PostgresOptions, PostgresStore, schema::SCHEMA_VERSION};
use support::{TestSchema, raw, url};
use uuid::Uuid;

fn events(count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|i| {
            NewEvent::new(
                "test.Happened",
                format!("event {i}").into_bytes(),
                Metadata::new(Utc.timestamp_opt(1_750_000_000, 0).unwrap()),
            )
        })
        .collect()
}

fn stream(name: &str) -> StreamName {
    StreamName::new(name).unwrap()
}

const PATIENCE: Duration = Duration::from_secs(20);

/// Two stores on one schema, as two processes would have, each with many
/// concurrent writers: a subscriber on each sees every acknowledged event
/// once, at consecutive positions, in the place its append was told.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_gap_free_order() {
    const WRITERS: usize = 12;
    const APPENDS: usize = 30;
    let schema = TestSchema::new();
    let instances = [schema.open().await, schema.open().await];
    let mut subscribers: Vec<_> = instances
        .iter()
        .map(|store| store.subscribe_all(Position::START, AllFilter::all()))
        .collect();

    let mut tasks = Vec::new();
    for (instance, store) in instances.iter().enumerate() {
        for writer in 0..WRITERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..APPENDS {
                    // Some streams are shared by every writer of both instances.
                    let name = if i % 2 == 0 {
                        format!("shared-{}", i % 3)
                    } else {
                        format!("own-{instance}-{writer}")
                    };
                    let batch = events(1 + i % 3);
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
    }
    let mut expected: HashMap<Uuid, Position> = HashMap::new();
    for task in tasks {
        for (result, ids) in task.await.unwrap() {
            for (offset, id) in ids.into_iter().enumerate() {
                assert!(
                    expected
                        .insert(id, Position(result.first_position.0 + offset as u64))
                        .is_none()
                );
            }
        }
    }
    let positions: HashSet<Position> = expected.values().copied().collect();
    assert_eq!(positions.len(), expected.len(), "two events share a position");
    let total = expected.len() as u64;
    assert_eq!(
        positions,
        (1..=total).map(Position).collect::<HashSet<_>>(),
        "positions have a hole"
    );

    for subscriber in &mut subscribers {
        for position in 1..=total {
            let event = tokio::time::timeout(PATIENCE, subscriber.next())
                .await
                .expect("the subscriber keeps up")
                .unwrap()
                .unwrap();
            assert_eq!(event.position, Position(position), "a gap or a duplicate");
            assert_eq!(expected.get(&event.id), Some(&event.position));
        }
    }
    for store in &instances {
        assert_eq!(store.head().await.unwrap(), Position(total));
        assert_eq!(*store.watch_head().borrow(), Position(total));
    }
    let report = verify::verify(&instances[1], |_| {}).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.first_break);
    assert_eq!(report.events, total);
}

/// Optimistic concurrency holds across instances, not just within one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expected_revisions_hold_across_instances() {
    let schema = TestSchema::new();
    let (a, b) = (schema.open().await, schema.open().await);
    let s = stream("thread-1");
    a.append(&s, ExpectedRevision::NoStream, events(1)).await.unwrap();
    assert!(matches!(
        b.append(&s, ExpectedRevision::NoStream, events(1)).await,
        Err(Error::WrongExpectedRevision { .. })
    ));
    b.append(&s, ExpectedRevision::Exact(0), events(1)).await.unwrap();
    assert!(matches!(
        a.append(&s, ExpectedRevision::Exact(0), events(1)).await,
        Err(Error::WrongExpectedRevision { .. })
    ));
    // A retry through the other instance is still a retry.
    let batch = events(2);
    let first = a
        .append(&s, ExpectedRevision::Exact(1), batch.clone())
        .await
        .unwrap();
    assert_eq!(b.append(&s, ExpectedRevision::Any, batch).await.unwrap(), first);
    assert_eq!(b.stream_revision(&s).await.unwrap(), Some(3));
}

/// Opening the same schema from several places at once migrates it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_are_idempotent_even_when_concurrent() {
    let schema = TestSchema::new();
    let url = url();
    let stores = futures::future::try_join_all((0..4).map(|_| PostgresStore::open(&url, schema.options())))
        .await
        .unwrap();
    drop(stores);
    let again = schema.open().await;
    again
        .append(&stream("s-1"), ExpectedRevision::Any, events(1))
        .await
        .unwrap();
    PgLeases::open(&url, &schema.options()).await.unwrap();
    let client = raw(&schema.name).await;
    let versions: Vec<i32> = client
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
}

/// A schema written by a newer Palaver is refused, and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_untouched() {
    let schema = TestSchema::new();
    let store = schema.open().await;
    store
        .append(&stream("s-1"), ExpectedRevision::Any, events(3))
        .await
        .unwrap();
    drop(store);
    let client = raw(&schema.name).await;
    client
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();

    match PostgresStore::open(&url(), schema.options()).await {
        Err(Error::SchemaTooNew { found, supported, .. }) => {
            assert_eq!(
                (found, supported),
                (i64::from(SCHEMA_VERSION + 1), i64::from(SCHEMA_VERSION))
            );
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(matches!(
        PgLeases::open(&url(), &schema.options()).await,
        Err(LeaseError::Store(Error::SchemaTooNew { .. }))
    ));
    let count: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    let versions: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((count, versions), (3, i64::from(SCHEMA_VERSION) + 1));
}

/// A schema holding someone else's tables is refused, and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_schema_is_refused_untouched() {
    let schema = TestSchema::new();
    let client = raw(&schema.name).await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {0}; CREATE TABLE {0}.events (x int); \
             CREATE TABLE {0}.schema_migrations (version text)",
            schema.name
        ))
        .await
        .unwrap();
    assert!(matches!(
        PostgresStore::open(&url(), schema.options()).await,
        Err(Error::NotAnEventStore { .. })
    ));
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
            &[&schema.name],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(tables, ["events", "schema_migrations"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_clearly() {
    for schema in ["", "Upper", "pg_catalog", "x;drop", "1x"] {
        match PostgresStore::open(&url(), PostgresOptions::in_schema(schema)).await {
            Err(Error::Backend { message, .. }) => {
                assert!(message.contains("schema name"), "{message}");
            }
            other => panic!("{schema:?}: expected a refusal, got {other:?}"),
        }
    }
    assert!(matches!(
        PostgresStore::open("not a url at all=", PostgresOptions::in_schema("x")).await,
        Err(Error::Backend { .. })
    ));
}

/// History survives closing and reopening; positions go on from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_history() {
    let schema = TestSchema::new();
    let store = schema.open().await;
    for i in 0..5 {
        store
            .append(
                &stream(&format!("s-{}", i % 2)),
                ExpectedRevision::Any,
                events(1 + i),
            )
            .await
            .unwrap();
    }
    let before = store
        .read_all(Position::START, &AllFilter::all(), 100)
        .await
        .unwrap();
    let digest = verify::verify(&store, |_| {}).await.unwrap().digest;
    drop(store);

    let store = schema.open().await;
    assert_eq!(*store.watch_head().borrow(), Position(15));
    assert_eq!(
        store
            .read_all(Position::START, &AllFilter::all(), 100)
            .await
            .unwrap(),
        before
    );
    assert_eq!(verify::verify(&store, |_| {}).await.unwrap().digest, digest);
    let next = store
        .append(&stream("s-0"), ExpectedRevision::Exact(8), events(1))
        .await
        .unwrap();
    assert_eq!((next.first_position, next.first_revision), (Position(16), 9));
    let report = verify::verify(&store, |_| {}).await.unwrap();
    assert!(report.is_intact());
    assert_eq!((report.events, report.streams), (16, 2));
}

/// An append larger than one INSERT statement's worth of rows is still one
/// atomic append at consecutive positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_appends_span_several_statements() {
    let schema = TestSchema::new();
    let store = schema.open().await;
    store
        .append(&stream("s-1"), ExpectedRevision::Any, events(1))
        .await
        .unwrap();
    let big = store
        .append(&stream("s-2"), ExpectedRevision::NoStream, events(4_500))
        .await
        .unwrap();
    assert_eq!(
        (big.first_position, big.last_position, big.last_revision),
        (Position(2), Position(4_501), 4_499)
    );
    let report = verify::verify(&store, |_| {}).await.unwrap();
    assert!(report.is_intact());
    assert_eq!((report.events, report.streams), (4_501, 2));
}

/// Killing the store's connections only delays it: appends, reads and live
/// subscriptions carry on over new connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_connections_are_replaced() {
    let schema = TestSchema::new();
    let (a, b) = (schema.open().await, schema.open().await);
    let s = stream("s-1");
    a.append(&s, ExpectedRevision::Any, events(1)).await.unwrap();
    b.read_stream(&s, ReadFrom::Start, Direction::Forwards, 10)
        .await
        .unwrap();
    let mut live = b.subscribe_all(Position::START, AllFilter::all());
    assert_eq!(live.next().await.unwrap().unwrap().position, Position(1));

    // Every connection of both instances at once.
    let admin = raw(&schema.name).await;
    let killed: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name LIKE '%' || $1) AS killed",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 4, "killed {killed} connections");

    // The first append may fail with a transient error; a retry then lands.
    let batch = events(2);
    let first = loop {
        match a.append(&s, ExpectedRevision::Any, batch.clone()).await {
            Ok(result) => break result,
            Err(error) => assert!(error.is_transient(), "{error}"),
        }
    };
    assert_eq!(first.first_position, Position(2));
    for position in 2..=3 {
        let event = tokio::time::timeout(PATIENCE, live.next())
            .await
            .expect("the subscriber recovers")
            .unwrap()
            .unwrap();
        assert_eq!(event.position, Position(position));
    }
    assert_eq!(b.stream_revision(&s).await.unwrap(), Some(2));
    b.append(&s, ExpectedRevision::Exact(2), events(1)).await.unwrap();
    assert_eq!(a.head().await.unwrap(), Position(4));
}

/// Without notifications, live subscribers follow other instances by
/// polling alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_keeps_subscribers_live() {
    let schema = TestSchema::new();
    let writer = schema.open().await;
    let follower = PostgresStore::open(
        &url(),
        PostgresOptions {
            notifications: false,
            poll_interval: Duration::from_millis(50),
            ..schema.options()
        },
    )
    .await
    .unwrap();
    let mut live = follower.subscribe_all(Position::START, AllFilter::all());
    for _ in 0..3 {
        writer
            .append(&stream("s-1"), ExpectedRevision::Any, events(2))
            .await
            .unwrap();
    }
    for position in 1..=6 {
        let event = tokio::time::timeout(PATIENCE, live.next())
            .await
            .expect("polling finds the other instance's commits")
            .unwrap()
            .unwrap();
        assert_eq!(event.position, Position(position));
    }
}

mod leases {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    /// Makes every grant of `name` expire now, as if its time had passed on
    /// the database's clock.
    async fn expire(schema: &TestSchema, name: &str) {
        raw(&schema.name)
            .await
            .execute(
                "UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = $1",
                &[&name],
            )
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn only_one_of_many_contenders_wins() {
        let schema = TestSchema::new();
        let store = schema.open().await;
        let contenders: Vec<PgLeases> = (0..8).map(|_| store.leases()).collect();
        let grants = futures::future::join_all(contenders.iter().enumerate().map(|(i, leases)| async move {
            leases.try_acquire("projector", &format!("holder-{i}"), TTL).await
        }))
        .await;
        let winners: Vec<_> = grants.into_iter().filter_map(Result::unwrap).collect();
        assert_eq!(winners.len(), 1);
        assert_eq!(winners[0].token(), 1);
        // Even its holder cannot take it twice.
        assert!(
            contenders[0]
                .try_acquire("projector", winners[0].holder(), TTL)
                .await
                .unwrap()
                .is_none()
        );
        // Another name is another lease.
        assert!(
            contenders[1]
                .try_acquire("sender", "holder-1", TTL)
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expiry_hands_over_with_a_higher_token() {
        let schema = TestSchema::new();
        let leases = PgLeases::open(&url(), &schema.options()).await.unwrap();
        let a = leases.try_acquire("projector", "a", TTL).await.unwrap().unwrap();
        assert!(leases.try_acquire("projector", "b", TTL).await.unwrap().is_none());
        assert!(leases.renew(&a).await.unwrap());
        // The expiry is a time to live from the database's now.
        let left: f64 = raw(&schema.name)
            .await
            .query_one(
                "SELECT extract(epoch FROM expires_at - now())::float8 FROM leases WHERE name = 'projector'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!((55.0..=60.0).contains(&left), "{left}");

        expire(&schema, "projector").await;
        // Expired is lost, even before anyone else takes it.
        assert!(!leases.renew(&a).await.unwrap());
        let b = leases.try_acquire("projector", "b", TTL).await.unwrap().unwrap();
        assert!(b.token() > a.token());
        assert!(!leases.renew(&a).await.unwrap());
        // Releasing a lost lease changes nothing for the new holder.
        leases.release(a).await.unwrap();
        assert!(leases.renew(&b).await.unwrap());
        assert!(leases.try_acquire("projector", "c", TTL).await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn release_frees_at_once_and_tokens_keep_growing() {
        let schema = TestSchema::new();
        let leases = schema.open().await.leases();
        let a = leases.try_acquire("sender", "a", TTL).await.unwrap().unwrap();
        let token = a.token();
        leases.release(a.clone()).await.unwrap();
        assert!(!leases.renew(&a).await.unwrap());
        let b = leases.try_acquire("sender", "b", TTL).await.unwrap().unwrap();
        assert_eq!(b.token(), token + 1);
        leases.release(b).await.unwrap();
        let a2 = leases.try_acquire("sender", "a", TTL).await.unwrap().unwrap();
        assert_eq!(a2.token(), token + 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_names_and_ttls_are_refused() {
        let schema = TestSchema::new();
        let leases = schema.open().await.leases();
        for (name, holder) in [
            ("", "a"),
            ("x", ""),
            ("line\nbreak", "a"),
            (&*"n".repeat(201), "a"),
        ] {
            assert!(matches!(
                leases.try_acquire(name, holder, TTL).await,
                Err(LeaseError::InvalidName { .. })
            ));
        }
        for ttl in [Duration::ZERO, Duration::from_secs(2 * 24 * 3600)] {
            assert!(matches!(
                leases.try_acquire("x", "a", ttl).await,
                Err(LeaseError::InvalidTtl { .. })
            ));
        }
    }
}
