//! The shape every aggregate has: decide what happens, then evolve the state
//! by what happened. Both are pure; the application layer does the I/O:
//! load the stream, fold it with [`Aggregate::replay`], call
//! [`Aggregate::decide`] with the current time, append the events with the
//! revision it loaded as expected revision, and on a conflict start again.

use std::fmt::Debug;

use chrono::{DateTime, Utc};

use crate::Result;

/// An event-sourced consistency boundary: one stream per instance.
pub trait Aggregate: Default + Clone + Debug {
    /// Stream category, the `<category>` of `<category>-<id>`.
    const CATEGORY: &'static str;

    /// What a caller asks for.
    type Command;

    /// What happened; the only thing that is stored.
    type Event: Clone + Debug + PartialEq;

    /// Decides which events a command causes in the current state, or why
    /// it is refused. An empty list means "already done" (idempotent retry)
    /// or "nothing to change". `now` is the only clock.
    fn decide(&self, command: Self::Command, now: DateTime<Utc>) -> Result<Vec<Self::Event>>;

    /// The state after `event`. Never fails: events are facts, and an event
    /// that does not fit the state is ignored rather than refused, so that
    /// replaying history always works.
    #[must_use]
    fn evolve(self, event: &Self::Event) -> Self;

    /// The state after all `events`, from the initial (empty) state.
    #[must_use]
    fn replay<'a, I>(events: I) -> Self
    where
        I: IntoIterator<Item = &'a Self::Event>,
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::default(), |state, event| state.evolve(event))
    }
}
