//! Conversions between stored events and their protobuf form
//! (`palaver.v1.RecordedEvent`), used by feeds, exports and audit tools.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use palaver_proto::{prost_types::Timestamp, v1};
use uuid::Uuid;

use crate::{Error, Metadata, Position, RecordedEvent, Result, StreamName};

impl From<&RecordedEvent> for v1::RecordedEvent {
    fn from(event: &RecordedEvent) -> Self {
        let recorded_at = event.metadata.recorded_at;
        v1::RecordedEvent {
            id: event.id.to_string(),
            stream: event.stream.to_string(),
            revision: event.revision,
            position: event.position.0,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.to_vec(),
            metadata: Some(v1::EventMetadata {
                correlation_id: event
                    .metadata
                    .correlation_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                causation_id: event
                    .metadata
                    .causation_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                actor: event.metadata.actor.clone(),
                recorded_at: Some(Timestamp {
                    seconds: recorded_at.timestamp(),
                    nanos: recorded_at.timestamp_subsec_nanos() as i32,
                }),
            }),
            hash: event.hash.to_vec(),
        }
    }
}

impl TryFrom<v1::RecordedEvent> for RecordedEvent {
    type Error = Error;

    fn try_from(event: v1::RecordedEvent) -> Result<Self> {
        let location = format!("position {}", event.position);
        let corrupt = |reason: String| Error::Corrupt {
            location: location.clone(),
            reason,
        };
        let metadata = event.metadata.ok_or_else(|| corrupt("no metadata".to_owned()))?;
        let timestamp = metadata
            .recorded_at
            .ok_or_else(|| corrupt("no recorded_at".to_owned()))?;
        let recorded_at = u32::try_from(timestamp.nanos)
            .ok()
            .and_then(|nanos| DateTime::<Utc>::from_timestamp(timestamp.seconds, nanos))
            .ok_or_else(|| corrupt(format!("recorded_at {timestamp:?} is out of range")))?;
        let optional_uuid = |text: &str, field: &str| -> Result<Option<Uuid>> {
            if text.is_empty() {
                return Ok(None);
            }
            Uuid::parse_str(text)
                .map(Some)
                .map_err(|e| corrupt(format!("{field} {text:?}: {e}")))
        };
        Ok(RecordedEvent {
            id: Uuid::parse_str(&event.id).map_err(|e| corrupt(format!("id {:?}: {e}", event.id)))?,
            stream: StreamName::new(event.stream)?,
            revision: event.revision,
            position: Position(event.position),
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload: Bytes::from(event.payload),
            metadata: Metadata {
                correlation_id: optional_uuid(&metadata.correlation_id, "correlation_id")?,
                causation_id: optional_uuid(&metadata.causation_id, "causation_id")?,
                actor: metadata.actor,
                recorded_at,
            },
            hash: event
                .hash
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(format!("hash has {} bytes, not 32", event.hash.len())))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use palaver_proto::prost::Message;
    use proptest::prelude::*;

    use super::*;

    fn arb_event() -> impl Strategy<Value = RecordedEvent> {
        (
            (
                any::<u128>(),
                "[a-z]{1,8}-[a-zA-Z0-9_.:@-]{0,40}",
                any::<u64>(),
                1..u64::MAX,
            ),
            (
                "[A-Za-z0-9._-]{1,40}",
                any::<u32>(),
                proptest::collection::vec(any::<u8>(), 0..512),
            ),
            (
                proptest::option::of(any::<u128>()),
                proptest::option::of(any::<u128>()),
                "\\PC{0,30}",
                -62_135_596_800_000_000i64..253_402_300_799_999_999i64,
            ),
            any::<[u8; 32]>(),
        )
            .prop_map(
                |((id, stream, revision, position), (event_type, schema_version, payload), meta, hash)| {
                    let (correlation, causation, actor, micros) = meta;
                    RecordedEvent {
                        id: Uuid::from_u128(id),
                        stream: StreamName::new(stream).expect("strategy makes valid names"),
                        revision,
                        position: Position(position),
                        event_type,
                        schema_version,
                        payload: Bytes::from(payload),
                        metadata: Metadata {
                            correlation_id: correlation.map(Uuid::from_u128),
                            causation_id: causation.map(Uuid::from_u128),
                            actor,
                            recorded_at: Utc.timestamp_micros(micros).single().expect("in range"),
                        },
                        hash,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn protobuf_round_trip_keeps_every_field(event in arb_event()) {
            let bytes = v1::RecordedEvent::from(&event).encode_to_vec();
            let decoded = v1::RecordedEvent::decode(bytes.as_slice()).expect("decodes");
            let back = RecordedEvent::try_from(decoded).expect("converts");
            prop_assert_eq!(&back, &event);
            // The hash covers the same fields after the round trip.
            prop_assert_eq!(back.compute_hash(&[3; 32]), event.compute_hash(&[3; 32]));
        }
    }

    #[test]
    fn damaged_records_are_refused_with_the_position() {
        let mut record = v1::RecordedEvent {
            id: "not-a-uuid".to_owned(),
            stream: "s-1".to_owned(),
            position: 9,
            metadata: Some(v1::EventMetadata {
                recorded_at: Some(Timestamp { seconds: 0, nanos: 0 }),
                ..Default::default()
            }),
            hash: vec![0; 32],
            ..Default::default()
        };
        let error = RecordedEvent::try_from(record.clone()).unwrap_err();
        assert!(error.to_string().contains("position 9"), "{error}");
        record.id = Uuid::nil().to_string();
        record.hash = vec![0; 31];
        assert!(matches!(
            RecordedEvent::try_from(record),
            Err(Error::Corrupt { .. })
        ));
    }
}
