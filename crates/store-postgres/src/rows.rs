//! Event rows: decoding what the queries in `sql/` select, and the column
//! arrays one multi-row insert takes.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use palaver_store::{Error, Metadata, Position, RecordedEvent, Result, StreamName};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::connect::db_error;

/// PostgreSQL integers are signed; counts beyond `i64::MAX` cannot exist.
pub(crate) fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Decodes a row selecting `position, stream, revision, id, event_type,
/// schema_version, payload, correlation_id, causation_id, actor,
/// recorded_at, hash`. Values no append could have written are
/// [`Error::Corrupt`].
pub(crate) fn decode(row: &Row) -> Result<RecordedEvent> {
    let read = db_error("reading an event");
    let position: i64 = row.try_get(0).map_err(&read)?;
    let corrupt = |reason: String| Error::Corrupt {
        location: format!("position {position}"),
        reason,
    };
    let stream: String = row.try_get(1).map_err(&read)?;
    let revision: i64 = row.try_get(2).map_err(&read)?;
    let id: Uuid = row.try_get(3).map_err(&read)?;
    let event_type: String = row.try_get(4).map_err(&read)?;
    let schema_version: i64 = row.try_get(5).map_err(&read)?;
    let payload: &[u8] = row.try_get(6).map_err(&read)?;
    let correlation_id: Option<Uuid> = row.try_get(7).map_err(&read)?;
    let causation_id: Option<Uuid> = row.try_get(8).map_err(&read)?;
    let actor: String = row.try_get(9).map_err(&read)?;
    let recorded_at: i64 = row.try_get(10).map_err(&read)?;
    let hash: &[u8] = row.try_get(11).map_err(&read)?;

    let stream = StreamName::new(stream).map_err(|error| corrupt(error.to_string()))?;
    let recorded_at = DateTime::<Utc>::from_timestamp_micros(recorded_at)
        .ok_or_else(|| corrupt(format!("recorded_at {recorded_at} is out of range")))?;
    Ok(RecordedEvent {
        id,
        stream,
        revision: u64::try_from(revision).map_err(|_| corrupt(format!("revision {revision}")))?,
        position: Position(u64::try_from(position).map_err(|_| corrupt("negative position".into()))?),
        event_type,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt(format!("schema version {schema_version}")))?,
        payload: Bytes::copy_from_slice(payload),
        metadata: Metadata {
            correlation_id,
            causation_id,
            actor,
            recorded_at,
        },
        hash: hash
            .try_into()
            .map_err(|_| corrupt(format!("a hash of {} bytes", hash.len())))?,
    })
}

/// Decodes every row.
pub(crate) fn decode_all(rows: &[Row]) -> Result<Vec<RecordedEvent>> {
    rows.iter().map(decode).collect()
}

/// The columns of `sql/insert_events.sql`, one array each, borrowing from
/// the events.
#[derive(Default)]
pub(crate) struct Columns<'a> {
    pub position: Vec<i64>,
    pub stream: Vec<&'a str>,
    pub revision: Vec<i64>,
    pub id: Vec<Uuid>,
    pub event_type: Vec<&'a str>,
    pub schema_version: Vec<i64>,
    pub payload: Vec<&'a [u8]>,
    pub correlation_id: Vec<Option<Uuid>>,
    pub causation_id: Vec<Option<Uuid>>,
    pub actor: Vec<&'a str>,
    pub recorded_at: Vec<i64>,
    pub hash: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    pub(crate) fn of(events: &'a [RecordedEvent]) -> Self {
        let mut columns = Columns::default();
        for event in events {
            columns.position.push(to_sql_int(event.position.0));
            columns.stream.push(event.stream.as_str());
            columns.revision.push(to_sql_int(event.revision));
            columns.id.push(event.id);
            columns.event_type.push(&event.event_type);
            columns.schema_version.push(i64::from(event.schema_version));
            columns.payload.push(&event.payload);
            columns.correlation_id.push(event.metadata.correlation_id);
            columns.causation_id.push(event.metadata.causation_id);
            columns.actor.push(&event.metadata.actor);
            columns
                .recorded_at
                .push(event.metadata.recorded_at.timestamp_micros());
            columns.hash.push(&event.hash);
        }
        columns
    }

    pub(crate) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 12] {
        [
            &self.position,
            &self.stream,
            &self.revision,
            &self.id,
            &self.event_type,
            &self.schema_version,
            &self.payload,
            &self.correlation_id,
            &self.causation_id,
            &self.actor,
            &self.recorded_at,
            &self.hash,
        ]
    }
}
