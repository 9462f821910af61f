//! Streams the application layer keeps for itself, beside the domain's:
//! idempotency records and lookups the domain does not need but routing
//! does (which workspace a number serves, which conversation a WhatsApp
//! message id belongs to, which campaigns a workspace has).
//!
//! Their events are small JSON documents under `palaver.app.*` event types.
//! No projector reads these types, so the read models skip them undecoded;
//! they stay in the store, hash-chained and auditable like every event.

use palaver_store::{Direction, ExpectedRevision, NewEvent, Position, ReadFrom, StreamName};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::App;
use crate::context::Cmd;
use crate::error::{Error, Result};

/// Most events one of these streams is read for. They stay tiny (a claim
/// and its releases, one record, a workspace's campaign list).
const MAX_RECORDS: usize = 100_000;

/// A record stream as read.
#[derive(Debug)]
pub(crate) struct Records<T> {
    /// Revision of the last event; `None` for an empty stream.
    pub revision: Option<u64>,
    /// Each event's type and document, oldest first.
    pub events: Vec<(String, T)>,
}

impl<T> Records<T> {
    /// The expected revision for appending after what was read.
    pub fn expected(&self) -> ExpectedRevision {
        self.revision
            .map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact)
    }
}

impl App {
    /// Reads a record stream.
    pub(crate) async fn read_records<T: DeserializeOwned>(&self, stream: &StreamName) -> Result<Records<T>> {
        let events = self
            .store()
            .read_stream(stream, ReadFrom::Start, Direction::Forwards, MAX_RECORDS)
            .await?;
        let revision = events.last().map(|e| e.revision);
        let events = events
            .into_iter()
            .map(|e| {
                serde_json::from_slice(&e.payload)
                    .map(|data| (e.event_type.clone(), data))
                    .map_err(|err| Error::Internal(format!("{stream} revision {}: {err}", e.revision)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Records { revision, events })
    }

    /// Appends one record; `Ok(None)` when the stream was not at `expected`
    /// (read again and decide again).
    pub(crate) async fn append_record<T: Serialize>(
        &self,
        cmd: &Cmd<'_>,
        stream: &StreamName,
        expected: ExpectedRevision,
        event_type: &str,
        data: &T,
    ) -> Result<Option<Position>> {
        let payload = serde_json::to_vec(data).map_err(|e| Error::Internal(e.to_string()))?;
        let revision = match expected {
            ExpectedRevision::Exact(revision) => Some(revision),
            _ => None,
        };
        let event = NewEvent::new(event_type, payload, cmd.metadata(None)).with_id(cmd.event_id(
            stream.as_str(),
            revision,
            0,
        ));
        match self.inner.store.append(stream, expected, vec![event]).await {
            Ok(result) => Ok(Some(result.last_position)),
            Err(
                palaver_store::Error::WrongExpectedRevision { .. }
                | palaver_store::Error::EventIdConflict { .. },
            ) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}
