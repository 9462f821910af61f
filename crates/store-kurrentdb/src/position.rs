//! Palaver's [`Position`] in KurrentDB's `$all`.
//!
//! A KurrentDB log position is a pair (commit, prepare) of byte offsets into
//! the transaction log. An event appended through the gRPC API commits
//! itself, and KurrentDB then reports it at (P, P), P being the offset of its
//! own record (servers before 22.10 report P as the commit half of stream
//! reads and the batch's first record as the prepare half; the commit half is
//! P on every version). Palaver's position is therefore the commit position:
//! unique per event, increasing in `$all` order, but **not consecutive**:
//! two neighbours differ by the size of a record, not by one.
//!
//! The way back is (p, p). KurrentDB reads `$all` forwards from a position
//! inclusively, so readers skip the event at `p` itself; subscriptions start
//! after it. Position 0 ([`Position::START`]) is never an event's position
//! (the log opens with records of the server's own), so it maps to the start
//! of `$all`.

use kurrentdb::StreamPosition;
use palaver_store::Position;

/// The KurrentDB position of an event at Palaver position `position`.
pub(crate) fn to_kurrent(position: Position) -> kurrentdb::Position {
    kurrentdb::Position {
        commit: position.0,
        prepare: position.0,
    }
}

/// Where to start reading or subscribing to see the events after `after`.
/// Forward reads include the event at the returned position: skip it.
pub(crate) fn start_after(after: Position) -> StreamPosition<kurrentdb::Position> {
    if after == Position::START {
        StreamPosition::Start
    } else {
        StreamPosition::Position(to_kurrent(after))
    }
}

/// Palaver's position of an event KurrentDB reports at `position`, or
/// `None` if KurrentDB does not know where in `$all` the event committed
/// (it reports `u64::MAX` for events written in explicit transactions,
/// which Palaver never uses).
pub(crate) fn from_kurrent(position: kurrentdb::Position) -> Option<Position> {
    (position.commit != u64::MAX && position.commit != 0).then_some(Position(position.commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_to_commit_positions_and_back() {
        let p = kurrentdb::Position {
            commit: 4_096,
            prepare: 4_096,
        };
        assert_eq!(from_kurrent(p), Some(Position(4_096)));
        assert_eq!(to_kurrent(Position(4_096)), p);
        // Older servers put the batch's first record in the prepare half.
        let older = kurrentdb::Position {
            commit: 5_000,
            prepare: 4_096,
        };
        assert_eq!(from_kurrent(older), Some(Position(5_000)));
    }

    #[test]
    fn unknown_positions_are_refused() {
        assert_eq!(from_kurrent(kurrentdb::Position::end()), None);
        assert_eq!(from_kurrent(kurrentdb::Position::start()), None);
    }

    #[test]
    fn reading_after_the_start_reads_from_the_start() {
        assert_eq!(start_after(Position::START), StreamPosition::Start);
        assert_eq!(
            start_after(Position(77)),
            StreamPosition::Position(kurrentdb::Position {
                commit: 77,
                prepare: 77
            })
        );
    }
}
