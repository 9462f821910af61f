//! A tiny given/when/then harness for aggregates: given past events, when a
//! command is decided at a time, then these events (or this error). Tests
//! read as the rule they check.

use chrono::{DateTime, Utc};

use crate::Error;
use crate::aggregate::Aggregate;

/// Starts a scenario from past events.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let history: Vec<A::Event> = events.into_iter().collect();
    Given {
        state: A::replay(&history),
    }
}

/// The state after the `given` events.
#[derive(Debug)]
pub struct Given<A: Aggregate> {
    state: A,
}

impl<A: Aggregate> Given<A> {
    /// Decides `command` at `now`.
    pub fn when(self, command: A::Command, now: DateTime<Utc>) -> Then<A> {
        let result = self.state.decide(command, now);
        Then {
            state: self.state,
            result,
        }
    }
}

/// The outcome of a decision.
#[derive(Debug)]
pub struct Then<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, Error>,
}

impl<A: Aggregate> Then<A> {
    /// Asserts the decision produced exactly `expected`; returns the state
    /// after them, to check queries.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events");
                events.iter().fold(self.state, |s, e| s.evolve(e))
            }
            Err(error) => panic!("expected events {expected:#?}, got error {error:?}"),
        }
    }

    /// Asserts the decision changed nothing (an idempotent retry).
    #[track_caller]
    pub fn then_nothing(self) -> A {
        self.then([])
    }

    /// Asserts the decision was refused with `expected`.
    #[track_caller]
    pub fn then_error(self, expected: Error) {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, got events {events:#?}"),
            Err(error) => assert_eq!(error, expected),
        }
    }

    /// The raw outcome, for tests that match on it.
    pub fn result(self) -> Result<Vec<A::Event>, Error> {
        self.result
    }

    /// The events, for tests that check only part of them.
    #[track_caller]
    pub fn events(self) -> Vec<A::Event> {
        match self.result {
            Ok(events) => events,
            Err(error) => panic!("expected events, got error {error:?}"),
        }
    }
}
