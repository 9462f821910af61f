//! Recognising a retried append, which KurrentDB alone does not do reliably.
//!
//! KurrentDB skips an append whose event ids are already stored right after
//! the expected revision, but only when that expectation is an exact
//! revision (with "any" it checks a recent cache, best effort), never tells
//! which events were skipped, and never checks ids across streams. The
//! contract wants more: the same batch again returns the first result,
//! whatever the expectation, and a reused id is refused. So before every
//! append the adapter reads the stream's tail and compares, as
//! [`palaver_store::append`] does inside a transaction for the other
//! backends:
//!
//! 1. [`locate`]: where would the batch start if it were stored? Found from
//!    the first tail event carrying one of the batch's ids, or, when none
//!    does and the caller expected an exact revision (or no stream) that
//!    lies before the tail, from that expectation.
//! 2. [`compare`]: given the stored events from there, a retry (every event
//!    in place, same content), a reuse ([`Error::EventIdConflict`]), or
//!    nothing of the batch at all.
//!
//! What this cannot see: ids stored in other streams, and with `Any` or
//! `StreamExists`, a batch further back than the tail that is read (the
//! batch's size plus `idempotency_window`).

use std::collections::HashMap;

use palaver_store::{AppendResult, Error, ExpectedRevision, NewEvent, RecordedEvent, Result, StreamName};
use uuid::Uuid;

/// Where a batch would be, if it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Located {
    /// No sign of it: a fresh append.
    Nowhere,
    /// It would start at this revision: read from there and [`compare`].
    StartsAt(u64),
}

/// Where `events` would start in a stream whose last events are `tail`
/// (consecutive, oldest first, ending at the stream's last event), given
/// what the caller `expected`.
pub(crate) fn locate(
    events: &[NewEvent],
    tail: &[RecordedEvent],
    expected: ExpectedRevision,
) -> Result<Located> {
    let index: HashMap<Uuid, u64> = (0u64..).zip(events).map(|(i, event)| (event.id, i)).collect();
    if let Some((stored, offset)) = tail
        .iter()
        .find_map(|stored| index.get(&stored.id).map(|&offset| (stored, offset)))
    {
        return match stored.revision.checked_sub(offset) {
            Some(start) => Ok(Located::StartsAt(start)),
            None => Err(Error::EventIdConflict {
                event_id: stored.id,
                reason: format!(
                    "{} revision {}, too early to be event {offset} of this batch",
                    stored.stream, stored.revision
                ),
            }),
        };
    }
    let (Some(oldest), Some(last)) = (tail.first(), tail.last()) else {
        return Ok(Located::Nowhere);
    };
    let expected_start = match expected {
        ExpectedRevision::Exact(revision) => revision.checked_add(1),
        ExpectedRevision::NoStream => Some(0),
        ExpectedRevision::Any | ExpectedRevision::StreamExists => None,
    };
    Ok(match expected_start {
        // Before the tail: the batch may have landed there long ago.
        Some(start) if start < oldest.revision && start <= last.revision => Located::StartsAt(start),
        _ => Located::Nowhere,
    })
}

/// The part of `tail` from revision `start` on, if the tail reaches back
/// that far (so no second read is needed).
pub(crate) fn covered(tail: &[RecordedEvent], start: u64) -> Option<&[RecordedEvent]> {
    let oldest = tail.first()?.revision;
    let skip = usize::try_from(start.checked_sub(oldest)?).ok()?;
    tail.get(skip..)
}

/// Compares `events` with `stored`, the stream's events from revision
/// `start` on (possibly fewer than `events`, if the stream ends).
///
/// - `Ok(Some(result))`: a retry; `result` is the first append's.
/// - `Ok(None)`: none of the batch is there.
/// - `Err(EventIdConflict)`: some of it is, but not as this batch.
pub(crate) fn compare(
    stream: &StreamName,
    events: &[NewEvent],
    stored: &[RecordedEvent],
    start: u64,
) -> Result<Option<AppendResult>> {
    let Some(first) = stored.first().filter(|first| first.id == events[0].id) else {
        return match stored
            .iter()
            .zip(start..)
            .find(|(stored, _)| events.iter().any(|event| event.id == stored.id))
        {
            None => Ok(None),
            Some((stored, revision)) => Err(Error::EventIdConflict {
                event_id: stored.id,
                reason: format!("{stream} revision {revision}, in another place of this batch"),
            }),
        };
    };
    for (offset, event) in events.iter().enumerate() {
        let revision = start + offset as u64;
        match stored.get(offset) {
            Some(stored) if stored.id == event.id => {
                if !stored.same_content_as(event) {
                    return Err(Error::EventIdConflict {
                        event_id: event.id,
                        reason: "different content".to_owned(),
                    });
                }
            }
            Some(other) => {
                return Err(Error::EventIdConflict {
                    event_id: first.id,
                    reason: format!(
                        "a batch that had event {} at {stream} revision {revision}, not {}; a retry must send the same batch",
                        other.id, event.id
                    ),
                });
            }
            None => {
                return Err(Error::EventIdConflict {
                    event_id: first.id,
                    reason: format!(
                        "a batch that did not include event {}; a retry must send the same batch",
                        event.id
                    ),
                });
            }
        }
    }
    let last = &stored[events.len() - 1];
    Ok(Some(AppendResult {
        first_revision: start,
        last_revision: last.revision,
        first_position: first.position,
        last_position: last.position,
    }))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use palaver_store::{Metadata, Position};

    use super::*;

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

    /// `batches` stored one after another in `thread-1`, at positions 100 apart.
    fn stream_of(batches: &[&[NewEvent]]) -> Vec<RecordedEvent> {
        let stream = StreamName::new("thread-1").unwrap();
        (0u64..)
            .zip(batches.iter().flat_map(|batch| batch.iter()))
            .map(|(revision, new)| RecordedEvent {
                id: new.id,
                stream: stream.clone(),
                revision,
                position: Position(100 * (revision + 1)),
                event_type: new.event_type.clone(),
                schema_version: new.schema_version,
                payload: new.payload.clone(),
                metadata: new.metadata.clone(),
                hash: [0; 32],
            })
            .collect()
    }

    /// Runs the adapter's check the way an append does, reading from `all`
    /// when the tail (its last `window` events) does not reach back enough.
    fn check(
        all: &[RecordedEvent],
        window: usize,
        expected: ExpectedRevision,
        batch: &[NewEvent],
    ) -> Result<Option<AppendResult>> {
        let stream = StreamName::new("thread-1").unwrap();
        let tail = &all[all.len().saturating_sub(window)..];
        match locate(batch, tail, expected)? {
            Located::Nowhere => Ok(None),
            Located::StartsAt(start) => {
                let stored = covered(tail, start).unwrap_or_else(|| &all[start as usize..]);
                compare(&stream, batch, stored, start)
            }
        }
    }

    fn conflict(result: Result<Option<AppendResult>>) -> bool {
        matches!(result, Err(Error::EventIdConflict { .. }))
    }

    #[test]
    fn a_fresh_batch_is_nowhere() {
        let first = events(2);
        let all = stream_of(&[&first]);
        assert_eq!(
            locate(&events(1), &[], ExpectedRevision::NoStream).unwrap(),
            Located::Nowhere
        );
        assert_eq!(
            check(&all, 10, ExpectedRevision::Exact(1), &events(3)).unwrap(),
            None
        );
        assert_eq!(check(&all, 10, ExpectedRevision::Any, &events(1)).unwrap(), None);
    }

    #[test]
    fn a_retry_returns_where_the_batch_is_whatever_the_expectation() {
        let (before, batch, after) = (events(2), events(3), events(1));
        let all = stream_of(&[&before, &batch, &after]);
        let first = AppendResult {
            first_revision: 2,
            last_revision: 4,
            first_position: Position(300),
            last_position: Position(500),
        };
        for expected in [
            ExpectedRevision::Exact(1),
            ExpectedRevision::Any,
            ExpectedRevision::NoStream,
            ExpectedRevision::StreamExists,
        ] {
            assert_eq!(check(&all, 10, expected, &batch).unwrap(), Some(first.clone()));
        }
        // Part of a stored batch, at its place.
        let part = check(&all, 10, ExpectedRevision::Any, &batch[1..])
            .unwrap()
            .unwrap();
        assert_eq!((part.first_revision, part.last_revision), (3, 4));
    }

    #[test]
    fn an_exact_expectation_finds_a_batch_far_behind_the_tail() {
        let (batch, later) = (events(2), events(50));
        let all = stream_of(&[&events(3), &batch, &later]);
        let tail = &all[all.len() - 5..];
        assert_eq!(
            locate(&batch, tail, ExpectedRevision::Exact(2)).unwrap(),
            Located::StartsAt(3)
        );
        let found = check(&all, 5, ExpectedRevision::Exact(2), &batch)
            .unwrap()
            .unwrap();
        assert_eq!((found.first_revision, found.last_revision), (3, 4));
        // Another batch expected there is simply not stored.
        assert_eq!(
            check(&all, 5, ExpectedRevision::Exact(2), &events(2)).unwrap(),
            None
        );
        // With "any" the window is all there is.
        assert_eq!(check(&all, 5, ExpectedRevision::Any, &batch).unwrap(), None);
        // An expectation inside the tail, or past the end, needs no extra read.
        assert_eq!(
            locate(&events(1), tail, ExpectedRevision::Exact(53)).unwrap(),
            Located::Nowhere
        );
        assert_eq!(
            locate(&events(1), tail, ExpectedRevision::Exact(99)).unwrap(),
            Located::Nowhere
        );
    }

    #[test]
    fn reused_ids_are_conflicts() {
        let batch = events(3);
        let all = stream_of(&[&batch]);
        let mut changed = batch.clone();
        changed[0].payload = b"something else".to_vec().into();
        assert!(conflict(check(&all, 10, ExpectedRevision::Any, &changed)));
        // Out of order.
        let swapped = vec![batch[1].clone(), batch[0].clone()];
        assert!(conflict(check(&all, 10, ExpectedRevision::Any, &swapped)));
        // A stored id after a new one.
        let mixed = vec![events(1).remove(0), batch[0].clone()];
        assert!(conflict(check(&all, 10, ExpectedRevision::Any, &mixed)));
        let mixed = vec![events(1).remove(0), batch[2].clone()];
        assert!(conflict(check(&all, 10, ExpectedRevision::Any, &mixed)));
        // The stored batch plus one more event.
        let mut longer = batch.clone();
        longer.extend(events(1));
        assert!(conflict(check(&all, 10, ExpectedRevision::Any, &longer)));
        // A retry found through the expectation, but with a changed event.
        let far = stream_of(&[&batch, &events(20)]);
        let mut changed_last = batch.clone();
        changed_last[2].metadata.actor = "someone".into();
        assert!(conflict(check(
            &far,
            4,
            ExpectedRevision::NoStream,
            &changed_last
        )));
        // An expectation pointing at a place where part of the batch is, in
        // another order.
        let reordered = vec![batch[0].clone(), batch[2].clone(), batch[1].clone()];
        assert!(conflict(check(&far, 4, ExpectedRevision::NoStream, &reordered)));
    }

    #[test]
    fn covered_slices_the_tail() {
        let all = stream_of(&[&events(6)]);
        let tail = &all[2..];
        assert_eq!(covered(tail, 1), None);
        assert_eq!(covered(tail, 2).map(<[_]>::len), Some(4));
        assert_eq!(covered(tail, 5).map(<[_]>::len), Some(1));
        assert_eq!(covered(tail, 6).map(<[_]>::len), Some(0));
        assert_eq!(covered(tail, 9), None);
        assert_eq!(covered(&[], 0), None);
    }
}
