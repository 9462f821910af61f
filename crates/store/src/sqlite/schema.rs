//! Creating and upgrading the on-disk schema.
//!
//! `PRAGMA application_id` marks the file as a Palaver event store and
//! `PRAGMA user_version` holds the schema version. Both are read before
//! anything is written, so a foreign file or one from a newer Palaver is
//! refused untouched.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::sql_error;
use crate::{Error, Result};

/// "PALV": marks a SQLite file as a Palaver event store.
pub(super) const APPLICATION_ID: i64 = 0x5041_4C56;

/// Every migration, in order; entry `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_events.sql")];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Refuses foreign or too-new files; call before touching the file.
pub(super) fn check_compatible(conn: &Connection, path: &Path) -> Result<i64> {
    let application_id: i64 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(sql_error("reading the application id"))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql_error("reading the schema version"))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(sql_error("reading the schema"))?;
    if application_id != APPLICATION_ID && (application_id != 0 || tables > 0) {
        return Err(Error::NotAnEventStore {
            path: path.to_owned(),
            found: application_id,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(version)
}

/// Applies every migration past `from`, each in its own transaction
/// together with the version bump, so a crash leaves a consistent version.
pub(super) fn migrate(conn: &mut Connection, from: i64) -> Result<()> {
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let version = index as i64 + 1;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error("starting a migration"))?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "application_id", APPLICATION_ID))
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .and_then(|()| tx.commit())
            .map_err(sql_error("migrating the schema"))?;
        tracing::info!(version, "event store schema migrated");
    }
    Ok(())
}
