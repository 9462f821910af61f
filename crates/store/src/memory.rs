//! An in-memory store for tests and examples. It keeps every promise of the
//! contract except durability: everything is gone when the last handle drops.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    AllFilter, AppendResult, Direction, EventStore, ExpectedRevision, Limits, NewEvent, Position, ReadFrom,
    RecordedEvent, Result, StreamName,
    append::{self, AppendRequest, AppendTarget, StreamHead},
    subscription::{self, Subscription},
};

/// The in-memory store. Clones share the same events.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    head: watch::Sender<Position>,
    limits: Limits,
}

#[derive(Debug, Default)]
struct State {
    /// `$all`: the event at position `p` is at index `p - 1`.
    events: Vec<RecordedEvent>,
    /// Indexes into `events`, per stream, by revision.
    streams: HashMap<StreamName, Vec<usize>>,
    ids: HashMap<Uuid, usize>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl MemoryStore {
    /// An empty store with these limits.
    pub fn new(limits: Limits) -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                head: watch::Sender::new(Position::START),
                limits,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied append:
        // `append_to` inserts only after every check, in one step.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl AppendTarget for State {
    fn find_event(&mut self, id: Uuid) -> Result<Option<RecordedEvent>> {
        Ok(self.ids.get(&id).map(|&index| self.events[index].clone()))
    }

    fn stream_head(&mut self, stream: &StreamName) -> Result<Option<StreamHead>> {
        Ok(self
            .streams
            .get(stream)
            .and_then(|indexes| indexes.last())
            .map(|&index| {
                let event = &self.events[index];
                StreamHead {
                    revision: event.revision,
                    hash: event.hash,
                }
            }))
    }

    fn next_position(&mut self) -> Result<Position> {
        Ok(Position(self.events.len() as u64 + 1))
    }

    fn insert(&mut self, events: Vec<RecordedEvent>) -> Result<()> {
        if let Some(stored) = events.iter().find_map(|event| self.ids.get(&event.id)) {
            let stored = &self.events[*stored];
            return Err(crate::Error::EventIdConflict {
                event_id: stored.id,
                reason: format!("{} revision {}", stored.stream, stored.revision),
            });
        }
        for event in events {
            let index = self.events.len();
            self.ids.insert(event.id, index);
            self.streams.entry(event.stream.clone()).or_default().push(index);
            self.events.push(event);
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.inner.limits.check_batch(&events)?;
        let request = AppendRequest {
            stream: stream.clone(),
            expected,
            events,
        };
        let result = {
            let mut state = self.state();
            append::append_to(&mut *state, &request)?
        };
        self.inner.head.send_if_modified(|head| {
            let moved = result.last_position > *head;
            if moved {
                *head = result.last_position;
            }
            moved
        });
        Ok(result)
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: ReadFrom,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let state = self.state();
        let Some(indexes) = state.streams.get(stream) else {
            return Ok(Vec::new());
        };
        let len = indexes.len() as u64;
        let pick = |i: &usize| state.events[*i].clone();
        Ok(match direction {
            Direction::Forwards => {
                let start = match from {
                    ReadFrom::Start => 0,
                    ReadFrom::End => len,
                    ReadFrom::Revision(revision) => revision.min(len),
                };
                indexes[start as usize..].iter().take(limit).map(pick).collect()
            }
            Direction::Backwards => {
                let end = match from {
                    ReadFrom::Start => 0,
                    ReadFrom::End => len,
                    ReadFrom::Revision(revision) => revision.saturating_add(1).min(len),
                };
                indexes[..end as usize]
                    .iter()
                    .rev()
                    .take(limit)
                    .map(pick)
                    .collect()
            }
        })
    }

    async fn stream_revision(&self, stream: &StreamName) -> Result<Option<u64>> {
        Ok(self
            .state()
            .streams
            .get(stream)
            .map(|indexes| indexes.len() as u64 - 1))
    }

    async fn read_all(
        &self,
        after: Position,
        filter: &AllFilter,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        filter.validate()?;
        let state = self.state();
        let start = (after.0 as usize).min(state.events.len());
        Ok(state.events[start..]
            .iter()
            .filter(|event| filter.matches(event))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn head(&self) -> Result<Position> {
        Ok(Position(self.state().events.len() as u64))
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.head.subscribe()
    }

    fn subscribe_all(&self, after: Position, filter: AllFilter) -> Subscription {
        subscription::catch_up(self.clone(), after, filter)
    }
}
