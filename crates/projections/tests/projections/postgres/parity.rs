//! The same history projected into SQLite and into PostgreSQL: the same
//! rows in every table, the same digests, and the same answer to every
//! query.

use std::{path::Path, sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use palaver_domain::phone::Region;
use palaver_projections::{
    Error, PgReadModelDb, Projections, ReadModelDb, models,
    queries::{AssigneeFilter, InboxQuery, ReadModels, Status},
    rebuild::{self, Until},
};
use palaver_store::{AllFilter, Position};
use uuid::Uuid;

use super::{
    scenario::{Scenario, t0},
    support::{TestSchema, postgres_columns, postgres_rows, raw, sqlite_columns, sqlite_rows, url},
};

/// Projects the scenario into a SQLite file at `path` and into `schema`,
/// the latter in small batches (rows built up across transactions, as the
/// live loop does).
async fn project_both(scenario: &Scenario, path: &Path, schema: &str) -> (ReadModelDb, PgReadModelDb) {
    let sqlite = rebuild::replay(
        Arc::clone(&scenario.store),
        path,
        models::all(),
        Until::Head,
        |_| {},
    )
    .await
    .unwrap();
    let mut postgres = PgReadModelDb::open(&url(), schema, models::all()).await.unwrap();
    loop {
        let page = scenario
            .store
            .read_all(postgres.position(), &AllFilter::all(), 7)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        postgres.apply(&page).await.unwrap();
    }
    assert_eq!(postgres.position(), sqlite.position());
    assert_eq!(postgres.position(), scenario.store.head().await.unwrap());
    (sqlite, postgres)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_table_holds_the_same_rows_on_both_backends() {
    let scenario = Scenario::write().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models.db");
    let schema = TestSchema::new();
    let (sqlite, postgres) = project_both(&scenario, &path, &schema.name).await;
    let client = raw(&schema.name).await;

    for projector in models::all().iter() {
        for table in projector.tables() {
            let columns = sqlite_columns(&path, table);
            assert_eq!(
                postgres_columns(&client, &schema.name, table).await,
                columns,
                "{table}: same columns, in the same order"
            );
            let rows = sqlite_rows(&path, table, &columns);
            assert!(rows.len() >= 2, "{table}: the scenario should fill it");
            assert_eq!(postgres_rows(&client, table, &columns).await, rows, "{table}");
        }
        // The digests order and hash rows the same way on both backends.
        assert_eq!(
            postgres.digest(projector.name()).await.unwrap(),
            sqlite.digest(projector.name()).unwrap(),
            "{}",
            projector.name()
        );
    }

    // The checkpoint table too (but for when each moved).
    let columns = ["name", "version", "position"].map(str::to_owned);
    assert_eq!(
        postgres_rows(&client, "projections", &columns).await,
        sqlite_rows(&path, "projections", &columns)
    );
    // Every projector's PostgreSQL schema is its own, with BIGINT times.
    for projector in models::all().iter() {
        assert_ne!(
            projector.postgres_schema(),
            projector.schema(),
            "{}",
            projector.name()
        );
        assert!(!projector.postgres_schema().contains("WITHOUT ROWID"));
    }
    let integers: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND data_type = 'integer'",
            &[&schema.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(integers, 0, "32-bit integers cannot hold microseconds");
}

/// Asks both read models the same question and expects the same answer.
macro_rules! same {
    ($sqlite:expr, $postgres:expr, $method:ident ( $($arg:expr),* )) => {{
        let on_sqlite = $sqlite.$method($($arg.clone()),*).await;
        let on_postgres = $postgres.$method($($arg.clone()),*).await;
        match (&on_sqlite, &on_postgres) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}({:?})", stringify!($method), ($(&$arg),*)),
            (Err(a), Err(b)) => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "{a} / {b}"
            ),
            _ => panic!("{}: {on_sqlite:?} on SQLite, {on_postgres:?} on PostgreSQL", stringify!($method)),
        }
        on_postgres
    }};
}

async fn compare_queries(scenario: &Scenario, sqlite: &ReadModels, postgres: &ReadModels) {
    let nows: Vec<DateTime<Utc>> = vec![
        t0(),
        t0() + Duration::minutes(59),
        t0() + Duration::hours(1),
        t0() + Duration::hours(3),
        t0() + Duration::hours(24) + Duration::seconds(100),
        t0() + Duration::days(2),
    ];
    let workspaces = [
        scenario.workspace.as_uuid(),
        scenario.other_workspace.as_uuid(),
        Uuid::from_u128(999),
    ];
    let statuses = [
        None,
        Some(Status::Open),
        Some(Status::Snoozed),
        Some(Status::Closed),
    ];
    let assignees = [
        AssigneeFilter::Anyone,
        AssigneeFilter::Unassigned,
        AssigneeFilter::Teammate("bo".into()),
    ];
    let mut inbox_rows = 0;
    for now in &nows {
        for workspace in workspaces {
            for status in statuses {
                for assignee in &assignees {
                    for limit in [1, 2, 50] {
                        // Page through, on both, with the cursors each gives.
                        let mut query = InboxQuery {
                            status,
                            assignee: assignee.clone(),
                            limit,
                            ..InboxQuery::new(workspace)
                        };
                        loop {
                            let page = same!(sqlite, postgres, inbox(query, now)).unwrap();
                            inbox_rows += page.rows.len();
                            match &page.next_cursor {
                                Some(cursor) => query.cursor = Some(cursor.clone()),
                                None => break,
                            }
                        }
                    }
                }
            }
            for conversation in &scenario.conversations {
                same!(
                    sqlite,
                    postgres,
                    conversation(workspace, conversation.as_uuid(), now)
                )
                .unwrap();
            }
            for thread in &scenario.threads {
                same!(sqlite, postgres, window(workspace, thread.as_uuid(), now)).unwrap();
            }
        }
        same!(sqlite, postgres, due_timers(now, 10)).unwrap();
        same!(sqlite, postgres, due_timers(now, 1)).unwrap();
    }
    assert!(inbox_rows > 100, "the inbox queries found rows");
    for workspace in workspaces {
        for contact in [scenario.ada, scenario.bo, scenario.cy, scenario.dee] {
            same!(sqlite, postgres, contact(workspace, contact.as_uuid())).unwrap();
        }
        let gb = Some(Region::parse("GB").unwrap());
        for phone in [
            "+447700900123",
            "07700 900123",
            "+44 20 7946 0000",
            "+447700900999",
            "+441632960000",
        ] {
            same!(sqlite, postgres, contacts_by_phone(workspace, phone, gb)).unwrap();
        }
        same!(sqlite, postgres, contacts_by_phone(workspace, "not a number", gb)).unwrap_err();
        for wa_id in ["447700900123", "441632960000", "nobody"] {
            same!(sqlite, postgres, contact_by_wa_id(workspace, wa_id)).unwrap();
        }
        let bad = InboxQuery {
            cursor: Some("garbage".into()),
            ..InboxQuery::new(workspace)
        };
        same!(sqlite, postgres, inbox(bad, t0())).unwrap_err();
    }
    for stream in scenario
        .streams
        .iter()
        .map(String::as_str)
        .chain(["thread-unknown"])
    {
        same!(sqlite, postgres, stream_owner(stream)).unwrap();
    }

    // And the answers are the ones the scenario calls for, not just equal.
    let workspace = scenario.workspace.as_uuid();
    let now = t0() + Duration::minutes(30);
    let ada = postgres
        .contact(workspace, scenario.ada.as_uuid())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ada.contact_id, ada.name.as_str()), (scenario.cy.as_uuid(), "Cy"));
    assert_eq!(ada.merged_from.len(), 2);
    assert_eq!(
        ada.phone_numbers,
        ["+441632960000", "+442079460000", "+447700900123", "+447700900999"]
    );
    let page = postgres.inbox(InboxQuery::new(workspace), now).await.unwrap();
    assert_eq!(page.rows.len(), 3);
    let first = page
        .rows
        .iter()
        .find(|row| row.conversation_id == scenario.conversations[0].as_uuid())
        .unwrap();
    assert_eq!(first.last_message_preview.as_deref(), Some("Image: look"));
    assert_eq!((first.unread_count, first.assignee.as_deref()), (0, Some("bo")));
    let second = page
        .rows
        .iter()
        .find(|row| row.conversation_id == scenario.conversations[1].as_uuid())
        .unwrap();
    assert_eq!((second.status, second.unread_count), (Status::Snoozed, 2));
    assert!(second.window_closing_soon);
    let view = postgres
        .conversation(workspace, scenario.conversations[0].as_uuid(), now)
        .await
        .unwrap()
        .unwrap();
    let states: Vec<_> = view
        .messages
        .iter()
        .map(|m| m.delivery_state.as_deref())
        .collect();
    assert_eq!(states, [None, None, None, Some("read"), Some("failed")]);
    let due = postgres.due_timers(t0() + Duration::hours(3), 10).await.unwrap();
    assert_eq!(due.len(), 4, "the fired timer is gone");
    assert_eq!(
        postgres.stream_owner(&scenario.streams[0]).await.unwrap(),
        Some(workspace)
    );
    assert!(matches!(
        postgres
            .inbox(
                InboxQuery {
                    limit: 0,
                    ..InboxQuery::new(workspace)
                },
                now
            )
            .await,
        Err(Error::InvalidArgument { field: "limit", .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_query_gives_the_same_answer_on_both_backends() {
    let scenario = Scenario::write().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models.db");
    let schema = TestSchema::new();
    project_both(&scenario, &path, &schema.name).await;
    let sqlite = ReadModels::open(&path);
    let postgres = ReadModels::open_postgres(&url(), &schema.name).unwrap();
    compare_queries(&scenario, &sqlite, &postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_loop_on_postgres_reads_its_own_writes() {
    let scenario = Scenario::write().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models.db");
    rebuild::replay(
        Arc::clone(&scenario.store),
        &path,
        models::all(),
        Until::Head,
        |_| {},
    )
    .await
    .unwrap();
    let schema = TestSchema::new();
    let db = PgReadModelDb::open(&url(), &schema.name, models::all())
        .await
        .unwrap();
    let projections = Projections::start(Arc::clone(&scenario.store), db, "", std::future::pending());
    let head = scenario.store.head().await.unwrap();
    projections
        .wait_for(head, StdDuration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(projections.position(), head);
    assert!(
        projections
            .checkpoints()
            .iter()
            .all(|(_, position)| *position == head)
    );
    assert_eq!(projections.lag().await.unwrap().events, 0);
    let postgres = ReadModels::open_postgres(&url(), &schema.name).unwrap();
    compare_queries(&scenario, &ReadModels::open(&path), &postgres).await;
    assert!(matches!(
        projections
            .wait_for(Position(head.0 + 100), StdDuration::from_millis(50))
            .await,
        Err(Error::NotCaughtUp { .. })
    ));
}

#[tokio::test]
async fn bad_settings_are_refused_before_connecting() {
    assert!(matches!(
        ReadModels::open_postgres(&url(), "Bad-Name"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        ReadModels::open_postgres("not a url", "palaver_read"),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        PgReadModelDb::open(&url(), &"x".repeat(47), models::all()).await,
        Err(Error::InvalidArgument { .. })
    ));
}
