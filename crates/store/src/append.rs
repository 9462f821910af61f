//! The append algorithm, written once for every backend that can run it
//! inside its own transaction: idempotent retries, the expected-revision
//! check, revision and position numbering, and the hash chain.
//!
//! A backend supplies an [`AppendTarget`] (its transaction) and gets the same
//! rules as every other backend.

use uuid::Uuid;

use crate::{
    ActualRevision, AppendResult, Error, ExpectedRevision, NewEvent, Position, RecordedEvent, Result,
    StreamName,
    hash::{self, HashInput},
};

/// The last event of a stream, as far as appending needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHead {
    /// Revision of the stream's last event.
    pub revision: u64,
    /// Hash of the stream's last event, which the next one chains to.
    pub hash: [u8; 32],
}

/// A backend's view of its store while one append runs in a transaction.
pub trait AppendTarget {
    /// The stored event with this id, if any.
    fn find_event(&mut self, id: Uuid) -> Result<Option<RecordedEvent>>;
    /// The head of `stream`, or `None` if it has no events.
    fn stream_head(&mut self, stream: &StreamName) -> Result<Option<StreamHead>>;
    /// The global position the next event gets. Positions have no holes.
    fn next_position(&mut self) -> Result<Position>;
    /// Stores `events` (consecutive, of one stream, already hashed) and moves
    /// the stream head and the next position past them. Takes them by value:
    /// every backend keeps them (a row buffer, a map, the SQLite store's
    /// window of recent events), so none has to copy them. If any event id is
    /// already stored, fails with [`Error::EventIdConflict`] and leaves the
    /// store as it was (a backend may rely on its transaction for that).
    fn insert(&mut self, events: Vec<RecordedEvent>) -> Result<()>;
}

/// One append request: events for one stream with an expectation.
#[derive(Clone, Debug)]
pub struct AppendRequest {
    /// The stream to append to.
    pub stream: StreamName,
    /// What the caller believes about the stream.
    pub expected: ExpectedRevision,
    /// The events, already checked against [`crate::Limits`].
    pub events: Vec<NewEvent>,
}

/// Runs one append against `target`. Nothing is inserted unless the whole
/// request is accepted; the caller commits or rolls back its transaction.
pub fn append_to(target: &mut impl AppendTarget, request: &AppendRequest) -> Result<AppendResult> {
    if let Some(result) = find_retry(target, request)? {
        return Ok(result);
    }

    let head = target.stream_head(&request.stream)?;
    let actual = ActualRevision::from_last(head.map(|h| h.revision));
    if !actual.satisfies(request.expected) {
        return Err(Error::WrongExpectedRevision {
            stream: request.stream.clone(),
            expected: request.expected,
            actual,
        });
    }

    let first_revision = head.map_or(0, |h| h.revision + 1);
    let first_position = target.next_position()?;
    let mut previous = head.map_or(hash::GENESIS, |h| h.hash);
    let mut recorded = Vec::with_capacity(request.events.len());
    for (offset, event) in (0u64..).zip(&request.events) {
        let revision = first_revision + offset;
        let hash = hash::event_hash(
            &previous,
            HashInput {
                stream: &request.stream,
                revision,
                id: event.id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                payload: &event.payload,
                metadata: &event.metadata,
            },
        );
        previous = hash;
        recorded.push(RecordedEvent {
            id: event.id,
            stream: request.stream.clone(),
            revision,
            position: Position(first_position.0 + offset),
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            metadata: event.metadata.clone(),
            hash,
        });
    }
    let count = recorded.len() as u64;
    target.insert(recorded)?;

    Ok(AppendResult {
        first_revision,
        last_revision: first_revision + count - 1,
        first_position,
        last_position: Position(first_position.0 + count - 1),
    })
}

/// If the first event is already stored, this may be a retry: every event
/// must then be stored, consecutively, at the same place and with the same
/// content, and the first result is returned; anything else means the ids
/// were reused and is refused. If the first event is new, return `None`: a
/// fresh append, in which [`AppendTarget::insert`] refuses any stored id.
/// (Looking up only the first id keeps the common path to one probe.)
fn find_retry(target: &mut impl AppendTarget, request: &AppendRequest) -> Result<Option<AppendResult>> {
    let Some(first) = target.find_event(request.events[0].id)? else {
        return Ok(None);
    };
    check_same(&first, &request.events[0], &request.stream, first.revision)?;
    for (offset, event) in (1u64..).zip(&request.events[1..]) {
        match target.find_event(event.id)? {
            Some(stored) => check_same(&stored, event, &request.stream, first.revision + offset)?,
            None => {
                return Err(Error::EventIdConflict {
                    event_id: request.events[0].id,
                    reason: format!(
                        "a batch that did not include event {}; a retry must send the same batch",
                        event.id
                    ),
                });
            }
        }
    }
    let count = request.events.len() as u64;
    Ok(Some(AppendResult {
        first_revision: first.revision,
        last_revision: first.revision + count - 1,
        first_position: first.position,
        // Stores append a batch at consecutive positions, so the last
        // position follows from the first.
        last_position: Position(first.position.0 + count - 1),
    }))
}

fn check_same(stored: &RecordedEvent, new: &NewEvent, stream: &StreamName, revision: u64) -> Result<()> {
    if stored.stream != *stream || stored.revision != revision {
        return Err(Error::EventIdConflict {
            event_id: new.id,
            reason: format!("{} revision {}", stored.stream, stored.revision),
        });
    }
    if !stored.same_content_as(new) {
        return Err(Error::EventIdConflict {
            event_id: new.id,
            reason: "different content".to_owned(),
        });
    }
    Ok(())
}
