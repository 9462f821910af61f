//! Codec: every event survives encode/decode; bad input is a typed error.

use proptest::prelude::*;

use super::strategies::domain_event;
use crate::codec::{DecodeError, EventCodec, decode, encode, event_types};
use crate::conversation::ConversationEvent;
use crate::thread::ThreadEvent;

proptest! {
    #[test]
    fn every_event_round_trips(event in domain_event()) {
        let encoded = encode(&event);
        prop_assert!(encoded.event_type.starts_with("palaver.v1."));
        prop_assert_eq!(encoded.schema_version, 1);
        let decoded = decode(encoded.event_type, encoded.schema_version, &encoded.payload).unwrap();
        prop_assert_eq!(decoded, event);
    }
}

#[test]
fn unknown_types_versions_and_bytes_are_typed_errors() {
    assert_eq!(
        decode("palaver.v1.Nope", 1, &[]),
        Err(DecodeError::UnknownEventType("palaver.v1.Nope".into()))
    );
    assert_eq!(
        decode(event_types::MESSAGE_RECEIVED, 2, &[]),
        Err(DecodeError::UnsupportedSchemaVersion {
            event_type: event_types::MESSAGE_RECEIVED.into(),
            version: 2,
        })
    );
    assert!(matches!(
        decode(event_types::MESSAGE_RECEIVED, 1, &[0xff, 0xff, 0xff]),
        Err(DecodeError::Malformed { .. })
    ));
    // An empty payload decodes to all defaults: required fields are missing.
    assert!(matches!(
        decode(event_types::CONVERSATION_CLOSED, 1, &[]),
        Err(DecodeError::InvalidField {
            field: "conversation_id",
            ..
        })
    ));
}

#[test]
fn loading_a_stream_refuses_another_aggregates_events() {
    let runner_event = {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        super::strategies::thread_event()
            .new_tree(&mut runner)
            .unwrap()
            .current()
    };
    let encoded = runner_event.encode();
    assert_eq!(
        ThreadEvent::decode(encoded.event_type, 1, &encoded.payload),
        Ok(runner_event)
    );
    assert!(matches!(
        ConversationEvent::decode(encoded.event_type, 1, &encoded.payload),
        Err(DecodeError::WrongAggregate {
            expected: "a conversation",
            ..
        })
    ));
}
