//! Creating and upgrading the store's tables.
//!
//! Migrations are the versioned files in `migrations/`. On open, one
//! transaction takes the migration lock of the schema (so processes opening
//! at once take turns), looks at what the schema holds, creates it and the
//! `schema_migrations` ledger if needed, and applies each missing migration
//! with its ledger row. Anything refused (a newer version, a schema that is
//! not an event store) rolls back, leaving the database untouched.

use std::path::PathBuf;

use palaver_store::{Error, Result};
use tokio_postgres::{Client, IsolationLevel};

use crate::{
    LOCK_CLASS_MIGRATE,
    connect::{SchemaName, db_error},
};

/// Every migration, in order: entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[(&str, &str)] = &[
    ("events", include_str!("migrations/0001_events.sql")),
    (
        "job checkpoints",
        include_str!("migrations/0002_job_checkpoints.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The comment on `schema_migrations` that marks a schema as ours.
const MARKER: &str = "palaver event store";

/// Brings the schema to [`SCHEMA_VERSION`]. `location` names it in errors.
pub(crate) async fn migrate(client: &mut Client, schema: &SchemaName, location: &str) -> Result<()> {
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(db_error("starting a migration"))?;
    tx.execute(
        include_str!("sql/advisory_lock.sql"),
        &[&LOCK_CLASS_MIGRATE, &schema.lock_key()],
    )
    .await
    .map_err(db_error("taking the migration lock"))?;

    let row = tx
        .query_one(include_str!("sql/inspect_schema.sql"), &[&schema.as_str()])
        .await
        .map_err(db_error("inspecting the schema"))?;
    let relations: i64 = row.get(0);
    let marker: Option<String> = row.get(1);
    let current = match marker.as_deref() {
        Some(MARKER) => tx
            .query_one(include_str!("sql/schema_version.sql"), &[])
            .await
            .map_err(db_error("reading the schema version"))?
            .get::<_, i32>(0),
        _ if relations > 0 => {
            return Err(Error::NotAnEventStore {
                path: PathBuf::from(location),
                found: 0,
            });
        }
        _ => {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", schema.quoted()))
                .await
                .map_err(db_error("creating the schema"))?;
            tx.batch_execute(include_str!("sql/bootstrap.sql"))
                .await
                .map_err(db_error("creating the migration ledger"))?;
            0
        }
    };
    if current > SCHEMA_VERSION {
        // Dropping `tx` rolls back: nothing was written.
        return Err(Error::SchemaTooNew {
            path: PathBuf::from(location),
            found: i64::from(current),
            supported: i64::from(SCHEMA_VERSION),
        });
    }
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i32 + 1;
        tx.batch_execute(sql)
            .await
            .map_err(db_error("migrating the schema"))?;
        tx.execute(include_str!("sql/record_migration.sql"), &[&version, name])
            .await
            .map_err(db_error("recording a migration"))?;
        tracing::info!(version, schema = %schema, "event store schema migrated");
    }
    tx.commit().await.map_err(db_error("committing a migration"))
}

/// Removes the schema and everything in it. For tests and benchmarks.
pub(crate) async fn drop_schema(client: &Client, schema: &SchemaName) -> Result<()> {
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", schema.quoted()))
        .await
        .map_err(db_error("dropping the schema"))
}
