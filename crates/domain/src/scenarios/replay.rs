//! Replaying any event sequence through `evolve` is deterministic, and
//! replaying the stored (encoded) form gives the same state.

use proptest::prelude::*;

use super::strategies::{conversation_event, thread_event};
use crate::Aggregate;
use crate::codec::EventCodec;
use crate::conversation::{Conversation, ConversationEvent};
use crate::thread::{Thread, ThreadEvent};

fn through_codec<E: EventCodec>(events: &[E]) -> Vec<E> {
    events
        .iter()
        .map(|e| {
            let stored = e.encode();
            E::decode(stored.event_type, stored.schema_version, &stored.payload).unwrap()
        })
        .collect()
}

proptest! {
    #[test]
    fn conversation_replay_is_deterministic(events in proptest::collection::vec(conversation_event(), 0..30)) {
        let once = Conversation::replay(&events);
        prop_assert_eq!(&once, &Conversation::replay(&events));
        prop_assert_eq!(&once, &Conversation::replay(&through_codec::<ConversationEvent>(&events)));
    }

    #[test]
    fn thread_replay_is_deterministic(events in proptest::collection::vec(thread_event(), 0..30)) {
        let once = Thread::replay(&events);
        prop_assert_eq!(&once, &Thread::replay(&events));
        prop_assert_eq!(&once, &Thread::replay(&through_codec::<ThreadEvent>(&events)));
    }
}
