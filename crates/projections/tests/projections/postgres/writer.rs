//! The PostgreSQL writer's guarantees: exactly once across failures,
//! restarts, lost connections and a second writer; a version change
//! rebuilds; a rebuild swaps in.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{Duration, TimeZone, Utc};
use palaver_domain::{
    codec::{self, DomainEvent, event_types},
    contact::{ContactEvent, ContactKind},
    ids::{Actor, ContactId, WorkspaceId},
};
use palaver_projections::{
    Error, PgReadModelDb, ProjectError, Projections, Projector, Status, models,
    queries::{InboxQuery, ReadModels},
    sql::Statement,
    stmt,
};
use palaver_store::{
    AllFilter, EventStore, ExpectedRevision, Limits, MemoryStore, Metadata, NewEvent, Position,
    RecordedEvent, SqliteStore, StreamName,
};
use tokio_postgres::Client;
use uuid::Uuid;

use super::support::{TestSchema, raw, url};

/// Counts contact creations: a row per position taken (a second
/// application of one event fails on the key) and a counter per kind (a
/// skipped or repeated event shows in the sum).
struct Counting {
    version: u32,
}

impl Projector for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn schema(&self) -> &'static str {
        "CREATE TABLE seen (position INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE counts (kind TEXT PRIMARY KEY, n INTEGER NOT NULL);"
    }
    /// `seen` refuses a contact named "refused", to fail a batch in the
    /// middle.
    fn postgres_schema(&self) -> &'static str {
        "CREATE TABLE seen (position BIGINT PRIMARY KEY,
             name TEXT NOT NULL CONSTRAINT seen_refuses CHECK (name <> 'refused'));
         CREATE TABLE counts (kind TEXT PRIMARY KEY, n BIGINT NOT NULL);"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["seen", "counts"]
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[event_types::CONTACT_CREATED]
    }
    fn project(
        &self,
        recorded: &RecordedEvent,
        event: &DomainEvent,
        out: &mut Vec<Statement>,
    ) -> Result<(), ProjectError> {
        let DomainEvent::Contact(ContactEvent::Created { name, kind, .. }) = event else {
            return Err(ProjectError("not a contact creation".into()));
        };
        out.push(stmt!(
            "INSERT INTO seen (position, name) VALUES (?1, ?2)",
            recorded.position.0,
            name.as_str()
        ));
        out.push(stmt!(
            "INSERT INTO counts (kind, n) VALUES (?1, 1) ON CONFLICT (kind) DO UPDATE SET n = counts.n + 1",
            format!("{kind:?}")
        ));
        Ok(())
    }
}

fn counting(version: u32) -> Arc<[Arc<dyn Projector>]> {
    Arc::from(vec![Arc::new(Counting { version }) as Arc<dyn Projector>])
}

fn created(n: u64) -> NewEvent {
    named(n, format!("contact {n}"))
}

fn named(n: u64, name: String) -> NewEvent {
    let at = Utc.timestamp_opt(1_760_000_000 + n as i64, 0).unwrap();
    let event = DomainEvent::Contact(ContactEvent::Created {
        external_user_id: None,
        contact_id: ContactId::from_uuid(Uuid::from_u128(u128::from(n) + 1)),
        workspace_id: WorkspaceId::from_uuid(Uuid::from_u128(7)),
        kind: if n.is_multiple_of(3) {
            ContactKind::User
        } else {
            ContactKind::Lead
        },
        name,
        phone_numbers: Vec::new(),
        wa_id: None,
        by: Actor::System,
        at,
    });
    let encoded = codec::encode(&event);
    NewEvent::new(encoded.event_type, encoded.payload, Metadata::new(at))
        .with_schema_version(encoded.schema_version)
}

/// A contact creation whose payload cannot be read.
fn garbage() -> NewEvent {
    NewEvent::new(
        event_types::CONTACT_CREATED,
        vec![0xff, 0xff, 0xff],
        Metadata::new(Utc::now()),
    )
}

async fn fill(store: &dyn EventStore, from: u64, count: u64) {
    for chunk in (from..from + count).collect::<Vec<_>>().chunks(500) {
        let events = chunk.iter().map(|&n| created(n)).collect();
        let stream = StreamName::new(format!("contact-{}", chunk[0] % 7)).unwrap();
        store
            .append(&stream, ExpectedRevision::Any, events)
            .await
            .unwrap();
    }
}

async fn all(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, &AllFilter::all(), 100_000)
        .await
        .unwrap()
}

/// (rows in `seen`, sum of `counts`), the stored checkpoint.
async fn count(client: &Client) -> ((i64, i64), i64) {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM seen), (SELECT COALESCE(sum(n), 0)::bigint FROM counts), \
             (SELECT position FROM projections WHERE name = 'counting')",
            &[],
        )
        .await
        .unwrap();
    ((row.get(0), row.get(1)), row.get(2))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_stops_before_an_unreadable_event_and_a_restart_does_not_apply_twice() {
    let store = MemoryStore::default();
    fill(&store, 0, 10).await;
    let stream = StreamName::new("contact-bad").unwrap();
    store
        .append(&stream, ExpectedRevision::Any, vec![garbage()])
        .await
        .unwrap();
    fill(&store, 10, 5).await;
    let events = all(&store).await;
    let schema = TestSchema::new();
    let client = raw(&schema.name).await;

    let mut db = PgReadModelDb::open(&url(), &schema.name, counting(1))
        .await
        .unwrap();
    let error = db.apply(&events).await.unwrap_err();
    assert!(
        matches!(&error, Error::Undecodable { position, event_type, .. }
            if *position == Position(11) && event_type == event_types::CONTACT_CREATED),
        "{error}"
    );
    // Everything before it, with its checkpoint; nothing after it.
    assert_eq!(db.position(), Position(10));
    assert_eq!(count(&client).await, ((10, 10), 10));

    // A restart resumes from the checkpoint; the same batch again applies
    // nothing twice and stops at the same place.
    drop(db);
    let mut db = PgReadModelDb::open(&url(), &schema.name, counting(1))
        .await
        .unwrap();
    assert_eq!(db.position(), Position(10));
    assert!(matches!(db.apply(&events).await, Err(Error::Undecodable { .. })));
    assert_eq!(count(&client).await, ((10, 10), 10));

    // The live loop reports it the same way.
    let store: Arc<dyn EventStore> = Arc::new(store);
    let projections = Projections::start(Arc::clone(&store), db, "", std::future::pending());
    let error = projections
        .wait_for(Position(16), StdDuration::from_secs(10))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("position 11"), "{error}");
    assert!(matches!(projections.status(), Status::Failed(_)));
    assert_eq!(projections.position(), Position(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_the_database_refuses_leaves_nothing_behind() {
    let store = MemoryStore::default();
    fill(&store, 0, 10).await;
    let stream = StreamName::new("contact-refused").unwrap();
    store
        .append(&stream, ExpectedRevision::Any, vec![named(99, "refused".into())])
        .await
        .unwrap();
    fill(&store, 10, 9).await;
    let events = all(&store).await;
    let schema = TestSchema::new();
    let client = raw(&schema.name).await;
    let mut db = PgReadModelDb::open(&url(), &schema.name, counting(1))
        .await
        .unwrap();
    db.apply(&events[..3]).await.unwrap();
    // Position 11 breaks the CHECK: the whole batch 4..=20 rolls back.
    let error = db.apply(&events[3..]).await.unwrap_err();
    assert!(matches!(error, Error::Database { .. }), "{error}");
    assert_eq!(db.position(), Position(3));
    assert_eq!(count(&client).await, ((3, 3), 3));
    // Once the database takes it, the batch goes through whole, once.
    client
        .batch_execute("ALTER TABLE seen DROP CONSTRAINT seen_refuses")
        .await
        .unwrap();
    db.apply(&events[3..]).await.unwrap();
    assert_eq!(count(&client).await, ((20, 20), 20));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_another_writer_committed_is_not_applied_again() {
    // A commit whose answer was lost looks the same to the writer: its
    // checkpoint is behind the stored one.
    let store = MemoryStore::default();
    fill(&store, 0, 30).await;
    let events = all(&store).await;
    let schema = TestSchema::new();
    let client = raw(&schema.name).await;
    let mut one = PgReadModelDb::open(&url(), &schema.name, counting(1))
        .await
        .unwrap();
    let mut two = PgReadModelDb::open(&url(), &schema.name, counting(1))
        .await
        .unwrap();
    one.apply(&events[..20]).await.unwrap();
    // The second writer still thinks nothing is done, and is handed it all.
    assert_eq!(two.position(), Position::START);
    two.apply(&events).await.unwrap();
    assert_eq!(two.position(), Position(30));
    assert_eq!(count(&client).await, ((30, 30), 30));
    // The first one, behind now, skips what the second did.
    one.apply(&events[20..]).await.unwrap();
    assert_eq!(count(&client).await, ((30, 30), 30));

    // Both at once, on the same events: each event once.
    fill(&store, 30, 1000).await;
    let events = all(&store).await;
    let (a, b) = tokio::join!(one.apply(&events[30..]), two.apply(&events[30..]));
    a.unwrap();
    b.unwrap();
    assert_eq!(count(&client).await, ((1030, 1030), 1030));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_connection_is_reopened_and_the_batch_tried_again() {
    let store = MemoryStore::default();
    fill(&store, 0, 50).await;
    let events = all(&store).await;
    let schema = TestSchema::new();
    let client = raw(&schema.name).await;
    let mut db = PgReadModelDb::open(&url(), &schema.name, counting(1))
        .await
        .unwrap();
    db.apply(&events[..25]).await.unwrap();
    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("palaver-read-writer-{}", schema.name)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    db.apply(&events[25..]).await.unwrap();
    assert_eq!(count(&client).await, ((50, 50), 50));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_drops_and_rebuilds_only_its_tables() {
    let store = MemoryStore::default();
    fill(&store, 0, 12).await;
    let events = all(&store).await;
    let schema = TestSchema::new();
    let client = raw(&schema.name).await;
    let both = |version| {
        let mut projectors = counting(version).to_vec();
        projectors.extend(models::all().iter().cloned());
        Arc::<[Arc<dyn Projector>]>::from(projectors)
    };
    let mut old = PgReadModelDb::open(&url(), &schema.name, both(1)).await.unwrap();
    old.apply(&events).await.unwrap();
    assert_eq!(count(&client).await, ((12, 12), 12));
    let owners: i64 = client
        .query_one("SELECT count(*) FROM stream_owners", &[])
        .await
        .unwrap()
        .get(0);
    assert!(owners > 0);

    let mut new = PgReadModelDb::open(&url(), &schema.name, both(2)).await.unwrap();
    let checkpoints = new.checkpoints();
    assert_eq!(checkpoints["counting"], Position::START);
    assert_eq!(
        checkpoints["owners"],
        Position(12),
        "other read models keep theirs"
    );
    assert_eq!(count(&client).await, ((0, 0), 0));
    let version: i64 = client
        .query_one("SELECT version FROM projections WHERE name = 'counting'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 2);
    // The old writer, still running somewhere, stops rather than write
    // into tables of another version.
    fill(&store, 12, 1).await;
    let more = all(&store).await;
    assert!(matches!(old.apply(&more[12..]).await, Err(Error::Stopped(_))));
    new.apply(&more).await.unwrap();
    assert_eq!(count(&client).await, ((13, 13), 13));
    let again: i64 = client
        .query_one("SELECT count(*) FROM stream_owners", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(again, owners + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rebuild_swaps_in_identical_tables_and_drops_its_scratch_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        Arc::new(SqliteStore::open(dir.path().join("events.db"), Limits::default()).unwrap());
    fill(store.as_ref(), 0, 3000).await;
    let schema = TestSchema::new();
    let db = PgReadModelDb::open(&url(), &schema.name, counting(1))
        .await
        .unwrap();
    let projections = Projections::start(Arc::clone(&store), db, "", std::future::pending());
    projections
        .wait_for(Position(3000), StdDuration::from_secs(30))
        .await
        .unwrap();
    let client = raw(&schema.name).await;
    assert_eq!(count(&client).await, ((3000, 3000), 3000));
    let digest_before = {
        let db = PgReadModelDb::open(&url(), &schema.name, counting(1))
            .await
            .unwrap();
        db.digest("counting").await.unwrap()
    };
    // Damage the live tables behind the runner's back: only a rebuild that
    // really replaces them brings the rows back.
    client
        .batch_execute("DELETE FROM seen WHERE position % 2 = 0; UPDATE counts SET n = 0;")
        .await
        .unwrap();
    assert_eq!(count(&client).await, ((1500, 0), 3000));

    // A reader in a transaction keeps seeing the rows of its snapshot.
    let mut reader = raw(&schema.name).await;
    let snapshot = reader
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .unwrap();
    let before: i64 = snapshot
        .query_one("SELECT count(*) FROM seen", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, 1500);

    let mut steps = Vec::new();
    let position = projections
        .rebuild(|progress| steps.push(progress))
        .await
        .unwrap();
    assert_eq!(position, Position(3000));
    assert_eq!(steps.last().unwrap().done, 3000);
    assert_eq!(count(&client).await, ((3000, 3000), 3000));
    let during: i64 = snapshot
        .query_one("SELECT count(*) FROM seen", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(during, 1500, "the old rows, until the reader's snapshot ends");
    snapshot.commit().await.unwrap();
    let db = PgReadModelDb::open(&url(), &schema.name, counting(1))
        .await
        .unwrap();
    assert_eq!(db.digest("counting").await.unwrap(), digest_before);
    let scratch: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1 || '\\_rebuild\\_%'",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(scratch, 0, "the scratch schema is dropped");

    // The live loop goes on after the swap.
    fill(store.as_ref(), 3000, 10).await;
    projections
        .wait_for(Position(3010), StdDuration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(count(&client).await, ((3010, 3010), 3010));
    assert_eq!(projections.checkpoints(), vec![("counting", Position(3010))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rebuilding_palavers_read_models_keeps_queries_answering() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> =
        Arc::new(SqliteStore::open(dir.path().join("events.db"), Limits::default()).unwrap());
    let scenario = super::scenario::Scenario::write().await;
    // Copy the scenario into a store that follows live.
    for event in all(scenario.store.as_ref()).await {
        let new = NewEvent::new(
            event.event_type.clone(),
            event.payload.clone(),
            event.metadata.clone(),
        )
        .with_schema_version(event.schema_version);
        store
            .append(&event.stream, ExpectedRevision::Any, vec![new])
            .await
            .unwrap();
    }
    let schema = TestSchema::new();
    let db = PgReadModelDb::open(&url(), &schema.name, models::all())
        .await
        .unwrap();
    let projections = Projections::start(Arc::clone(&store), db, "", std::future::pending());
    let head = store.head().await.unwrap();
    projections
        .wait_for(head, StdDuration::from_secs(20))
        .await
        .unwrap();
    let models = ReadModels::open_postgres(&url(), &schema.name).unwrap();
    let now = super::scenario::t0() + Duration::minutes(30);
    let query = InboxQuery::new(scenario.workspace.as_uuid());
    let before = models.inbox(query.clone(), now).await.unwrap();
    assert_eq!(before.rows.len(), 3);
    assert_eq!(projections.rebuild(|_| {}).await.unwrap(), head);
    assert_eq!(models.inbox(query, now).await.unwrap(), before);
}
