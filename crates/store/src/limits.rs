//! Limits every append is checked against before anything is written.

use std::collections::HashSet;

use crate::{Error, NewEvent, Result, names};

/// Configurable limits on what one append may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest event (payload + type + actor), in bytes. Default 1 MiB.
    pub max_event_bytes: usize,
    /// Most events in one append. Default 10,000.
    pub max_batch_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 1024 * 1024,
            max_batch_events: 10_000,
        }
    }
}

/// Longest actor, in bytes.
pub const MAX_ACTOR_LEN: usize = 256;

impl Limits {
    /// Checks a batch: not empty, not too many, no id twice, every event
    /// well-named and within size. The first problem found is returned.
    pub fn check_batch(&self, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if events.len() > self.max_batch_events {
            return Err(Error::BatchTooLarge {
                count: events.len(),
                limit: self.max_batch_events,
            });
        }
        let mut ids = HashSet::with_capacity(events.len());
        for event in events {
            if !ids.insert(event.id) {
                return Err(Error::DuplicateIdInBatch { event_id: event.id });
            }
            names::check_event_type(&event.event_type)?;
            let actor = &event.metadata.actor;
            if actor.len() > MAX_ACTOR_LEN {
                return Err(Error::InvalidMetadata {
                    event_id: event.id,
                    reason: "the actor is longer than 256 bytes",
                });
            }
            if actor.chars().any(char::is_control) {
                return Err(Error::InvalidMetadata {
                    event_id: event.id,
                    reason: "the actor contains control characters",
                });
            }
            if event.metadata.recorded_at.timestamp_subsec_nanos() % 1000 != 0 {
                return Err(Error::InvalidMetadata {
                    event_id: event.id,
                    reason: "recorded_at has sub-microsecond precision; build it with Metadata::new",
                });
            }
            if event.size() > self.max_event_bytes {
                return Err(Error::EventTooLarge {
                    event_id: event.id,
                    size: event.size(),
                    limit: self.max_event_bytes,
                });
            }
        }
        Ok(())
    }
}
