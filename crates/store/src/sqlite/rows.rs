//! Reading and writing event rows.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};
use uuid::Uuid;

use super::sql_error;
use crate::{Error, Metadata, Position, RecordedEvent, Result, StreamName};

/// The columns every event query selects, in the order [`decode`] reads them.
pub(super) const COLUMNS: &str = "position, stream, revision, id, event_type, schema_version, \
     payload, correlation_id, causation_id, actor, recorded_at, hash";

/// Decodes a row selected with [`COLUMNS`].
pub(super) fn decode(row: &Row<'_>) -> rusqlite::Result<Result<RecordedEvent>> {
    let position: i64 = row.get(0)?;
    let stream: String = row.get(1)?;
    let revision: i64 = row.get(2)?;
    let id: [u8; 16] = row.get(3)?;
    let event_type: String = row.get(4)?;
    let schema_version: i64 = row.get(5)?;
    let payload: Vec<u8> = row.get(6)?;
    let correlation: Option<[u8; 16]> = row.get(7)?;
    let causation: Option<[u8; 16]> = row.get(8)?;
    let actor: String = row.get(9)?;
    let recorded_at: i64 = row.get(10)?;
    let hash: [u8; 32] = row.get(11)?;
    let Some(recorded_at) = DateTime::<Utc>::from_timestamp_micros(recorded_at) else {
        return Ok(Err(Error::Corrupt {
            location: format!("position {position}"),
            reason: format!("recorded_at {recorded_at} is out of range"),
        }));
    };
    Ok(Ok(RecordedEvent {
        id: Uuid::from_bytes(id),
        // Only names that passed `StreamName::new` were ever written.
        stream: StreamName::trusted(stream),
        revision: revision as u64,
        position: Position(position as u64),
        event_type,
        schema_version: schema_version as u32,
        payload: Bytes::from(payload),
        metadata: Metadata {
            correlation_id: correlation.map(Uuid::from_bytes),
            causation_id: causation.map(Uuid::from_bytes),
            actor,
            recorded_at,
        },
        hash,
    }))
}

/// Runs a query selecting [`COLUMNS`] and decodes every row.
pub(super) fn query(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RecordedEvent>> {
    let mut statement = conn.prepare_cached(sql).map_err(sql_error("preparing a read"))?;
    let rows = statement
        .query_map(params, decode)
        .map_err(sql_error("reading events"))?;
    let mut events = Vec::new();
    for row in rows {
        events.push(row.map_err(sql_error("reading an event"))??);
    }
    Ok(events)
}

/// Inserts one event row.
pub(super) fn insert(conn: &Connection, event: &RecordedEvent) -> Result<()> {
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO events (position, stream, revision, id, event_type, schema_version, \
             payload, correlation_id, causation_id, actor, recorded_at, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(sql_error("preparing an insert"))?;
    statement
        .execute(params![
            event.position.0 as i64,
            event.stream.as_str(),
            event.revision as i64,
            event.id.as_bytes(),
            event.event_type,
            event.schema_version,
            event.payload.as_ref(),
            event.metadata.correlation_id.as_ref().map(Uuid::as_bytes),
            event.metadata.causation_id.as_ref().map(Uuid::as_bytes),
            event.metadata.actor,
            event.metadata.recorded_at.timestamp_micros(),
            event.hash,
        ])
        .map_err(sql_error("inserting an event"))?;
    Ok(())
}
