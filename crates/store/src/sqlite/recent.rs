//! The newest events, held in memory by the store so that reads at the
//! head of `$all` never touch SQLite.
//!
//! Nearly every `$all` read in a running server is a subscriber (the
//! projector, the workers, gRPC feeds) fetching what the last commit
//! added. From SQLite each such read costs a hop to the blocking pool, a
//! query on a read connection and a decode per row, for every subscriber
//! and every commit; profiles of the reply benchmark put it near a tenth
//! of the server's CPU, most of it for filtered subscribers that found
//! nothing. Answered from here it is a lookup under a lock.
//!
//! The window always holds *every* event after [`Window::after`] up to the
//! newest commit, so an answer from it is exactly what SQLite would give.
//! A read from further back than the window reaches goes to SQLite as
//! before. The sync stage ([`super::sync`]) adds a
//! commit's events once they are on disk, before it moves the head or
//! answers anyone, so a reader that knows of an event finds it here, and
//! the window never holds an event a power loss could take away.

use std::{collections::VecDeque, sync::RwLock};

use bytes::Bytes;

use crate::{AllFilter, Position, RecordedEvent};

/// Most events held. About a second of the reply benchmark's commits: a
/// subscriber further behind catches up from SQLite, in pages.
const MAX_EVENTS: usize = 16_384;
/// Most bytes held (payloads, names and a fixed overhead per event).
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// What an event costs beyond its variable-length parts.
const EVENT_OVERHEAD: usize = std::mem::size_of::<RecordedEvent>() + 64;

/// The newest committed events; see the module docs.
#[derive(Debug)]
pub(crate) struct RecentEvents {
    window: RwLock<Window>,
}

#[derive(Debug)]
struct Window {
    /// Every event after this position, up to the newest, is in `events`.
    after: Position,
    /// In position order, with no holes.
    events: VecDeque<RecordedEvent>,
    bytes: usize,
}

impl RecentEvents {
    /// An empty window over a store whose newest event is at `head`: every
    /// event from here on is held (until evicted).
    pub(crate) fn new(head: Position) -> Self {
        RecentEvents {
            window: RwLock::new(Window {
                after: head,
                events: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    /// Called by the sync stage with a commit's events, in position order,
    /// once they are synced.
    pub(crate) fn committed(&self, events: Vec<RecordedEvent>) {
        let Some(first) = events.first() else {
            return;
        };
        let mut window = self.window.write().unwrap_or_else(|p| p.into_inner());
        let next = window.events.back().map_or(window.after, |last| last.position).0 + 1;
        if first.position.0 != next {
            // Never expected (the writer numbers positions without holes);
            // if it happens, start over rather than claim events we lack.
            tracing::warn!(
                expected = next,
                got = first.position.0,
                "event store window restarted"
            );
            window.events.clear();
            window.bytes = 0;
            window.after = Position(first.position.0 - 1);
        }
        for mut event in events {
            // A payload may share a larger buffer (a request body, say):
            // held here, it would keep all of that alive.
            event.payload = Bytes::copy_from_slice(&event.payload);
            window.bytes += size(&event);
            window.events.push_back(event);
        }
        while window.events.len() > MAX_EVENTS || window.bytes > MAX_BYTES {
            let Some(oldest) = window.events.pop_front() else {
                break;
            };
            window.bytes -= size(&oldest);
            window.after = oldest.position;
        }
    }

    /// Up to `limit` events after `after` that pass `filter`, in position
    /// order, or `None` if the window does not reach back to `after` (ask
    /// SQLite then).
    pub(crate) fn read(
        &self,
        after: Position,
        filter: &AllFilter,
        limit: usize,
    ) -> Option<Vec<RecordedEvent>> {
        let window = self.window.read().unwrap_or_else(|p| p.into_inner());
        if after < window.after {
            return None;
        }
        let start = window.events.partition_point(|event| event.position <= after);
        Some(
            window
                .events
                .range(start..)
                .filter(|event| filter.matches(event))
                .take(limit)
                .cloned()
                .collect(),
        )
    }
}

fn size(event: &RecordedEvent) -> usize {
    EVENT_OVERHEAD
        + event.payload.len()
        + event.stream.as_str().len()
        + event.event_type.len()
        + event.metadata.actor.len()
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::{Metadata, StreamName};

    fn event(position: u64, stream: &str, event_type: &str, payload: usize) -> RecordedEvent {
        RecordedEvent {
            id: Uuid::new_v4(),
            stream: StreamName::new(stream).unwrap(),
            revision: 0,
            position: Position(position),
            event_type: event_type.to_owned(),
            schema_version: 1,
            payload: Bytes::from(vec![7; payload]),
            metadata: Metadata::new(Utc::now()),
            hash: [0; 32],
        }
    }

    fn positions(events: &[RecordedEvent]) -> Vec<u64> {
        events.iter().map(|event| event.position.0).collect()
    }

    #[test]
    fn reads_after_any_held_position_and_refuses_older_ones() {
        let recent = RecentEvents::new(Position(10));
        assert_eq!(
            recent.read(Position(10), &AllFilter::all(), 100),
            Some(Vec::new())
        );
        recent.committed(vec![event(11, "a-1", "t.A", 1), event(12, "b-1", "t.B", 1)]);
        recent.committed(vec![event(13, "a-2", "t.A", 1)]);
        assert_eq!(
            positions(&recent.read(Position(10), &AllFilter::all(), 100).unwrap()),
            [11, 12, 13]
        );
        assert_eq!(
            positions(&recent.read(Position(12), &AllFilter::all(), 100).unwrap()),
            [13]
        );
        assert_eq!(
            positions(&recent.read(Position(13), &AllFilter::all(), 100).unwrap()),
            [] as [u64; 0]
        );
        assert_eq!(
            positions(&recent.read(Position(10), &AllFilter::all(), 2).unwrap()),
            [11, 12]
        );
        // Events up to 10 were committed before the window began.
        assert_eq!(recent.read(Position(9), &AllFilter::all(), 100), None);
    }

    #[test]
    fn filters_as_the_database_does() {
        let recent = RecentEvents::new(Position::START);
        recent.committed(vec![
            event(1, "a-1", "t.A", 1),
            event(2, "b-1", "t.A", 1),
            event(3, "a-2", "t.B", 1),
        ]);
        let by_prefix = AllFilter::stream_prefixes(["a-"]);
        assert_eq!(
            positions(&recent.read(Position::START, &by_prefix, 100).unwrap()),
            [1, 3]
        );
        let by_type = AllFilter::event_types(["t.B"]);
        assert_eq!(
            positions(&recent.read(Position::START, &by_type, 100).unwrap()),
            [3]
        );
        // The limit counts matching events, not scanned ones.
        assert_eq!(
            positions(&recent.read(Position::START, &by_prefix, 1).unwrap()),
            [1]
        );
    }

    #[test]
    fn the_oldest_events_leave_once_the_window_is_full() {
        let recent = RecentEvents::new(Position::START);
        for position in 1..=(MAX_EVENTS as u64 + 5) {
            recent.committed(vec![event(position, "a-1", "t.A", 1)]);
        }
        assert_eq!(recent.read(Position(4), &AllFilter::all(), 1), None);
        let read = recent.read(Position(5), &AllFilter::all(), usize::MAX).unwrap();
        assert_eq!(read.len(), MAX_EVENTS);
        assert_eq!(read[0].position, Position(6));

        let big = RecentEvents::new(Position::START);
        let payload = MAX_BYTES / 4;
        for position in 1..=8 {
            big.committed(vec![event(position, "a-1", "t.A", payload)]);
        }
        let held = big.read(Position(5), &AllFilter::all(), usize::MAX).unwrap();
        assert_eq!(positions(&held), [6, 7, 8]);
        assert_eq!(big.read(Position(4), &AllFilter::all(), 1), None);
    }

    #[test]
    fn a_hole_restarts_the_window_instead_of_hiding_events() {
        let recent = RecentEvents::new(Position::START);
        recent.committed(vec![event(1, "a-1", "t.A", 1)]);
        recent.committed(vec![event(5, "a-1", "t.A", 1)]);
        assert_eq!(recent.read(Position(1), &AllFilter::all(), 10), None);
        assert_eq!(
            positions(&recent.read(Position(4), &AllFilter::all(), 10).unwrap()),
            [5]
        );
    }
}
