//! How one Palaver event is laid out in KurrentDB.
//!
//! | Palaver | KurrentDB |
//! |---|---|
//! | `id` | event id |
//! | `stream` | stream name, behind the [namespace](crate::namespace) |
//! | `revision` | stream revision |
//! | `position` | commit position in `$all` (see [`crate::position`]) |
//! | `event_type` | event type |
//! | `payload` | data, content type `application/octet-stream` |
//! | `schema_version`, `metadata`, `hash` | custom metadata, one JSON object ([`StoredMetadata`]) |
//!
//! KurrentDB's own `created` timestamp is ignored: `recorded_at` is the
//! writer's clock, chosen before the append and covered by the hash.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use kurrentdb::EventData;
use palaver_store::{Error, Metadata, NewEvent, RecordedEvent, Result};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{namespace::Namespace, position};

/// The layout of [`StoredMetadata`] this version writes and reads. A new
/// layout gets a new number; events keep the one they were written with.
const LAYOUT: u32 = 1;

/// What Palaver keeps in an event's custom metadata, as JSON. The `palaver`
/// field also tells Palaver's events from anyone else's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredMetadata {
    /// Layout version ([`LAYOUT`]).
    pub palaver: u32,
    pub schema_version: u32,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub actor: String,
    /// RFC 3339 with microseconds: readable in KurrentDB's UI, and exact
    /// (the store keeps microseconds, so what is appended is what is read).
    pub recorded_at: DateTime<Utc>,
    /// The event's chained SHA-256, in hex.
    pub hash: String,
}

impl StoredMetadata {
    /// The custom metadata of `event`, whose chained hash is `hash`.
    pub(crate) fn of(event: &NewEvent, hash: &[u8; 32]) -> Self {
        StoredMetadata {
            palaver: LAYOUT,
            schema_version: event.schema_version,
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
            actor: event.metadata.actor.clone(),
            recorded_at: event.metadata.recorded_at,
            hash: hex::encode(hash),
        }
    }
}

/// The KurrentDB event for `event`, whose chained hash is `hash`.
pub(crate) fn encode(event: &NewEvent, hash: &[u8; 32]) -> Result<EventData> {
    let metadata = serde_json::to_vec(&StoredMetadata::of(event, hash))
        .map_err(|error| Error::backend(format!("encoding the metadata of event {}", event.id), error))?;
    Ok(EventData::binary(&event.event_type, event.payload.clone())
        .id(event.id)
        .metadata(Bytes::from(metadata)))
}

/// The fields of an event read from KurrentDB that Palaver uses (the
/// client's own type cannot be built outside it, so tests build this).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawEvent<'a> {
    pub stream: &'a str,
    pub id: Uuid,
    pub revision: u64,
    pub position: kurrentdb::Position,
    pub event_type: &'a str,
    pub data: &'a Bytes,
    pub custom_metadata: &'a [u8],
}

impl<'a> From<&'a kurrentdb::RecordedEvent> for RawEvent<'a> {
    fn from(event: &'a kurrentdb::RecordedEvent) -> Self {
        RawEvent {
            stream: event.stream_id(),
            id: event.id,
            revision: event.revision,
            position: event.position,
            event_type: &event.event_type,
            data: &event.data,
            custom_metadata: &event.custom_metadata,
        }
    }
}

/// The Palaver event stored as `raw`. Anything that does not read back as
/// Palaver wrote it is [`Error::Corrupt`]: in a Palaver namespace, only
/// Palaver writes.
pub(crate) fn decode(namespace: &Namespace, raw: RawEvent<'_>) -> Result<RecordedEvent> {
    let corrupt = |reason: String| Error::Corrupt {
        location: format!("KurrentDB stream {:?} revision {}", raw.stream, raw.revision),
        reason,
    };
    let stream = namespace.stream_name(raw.stream)?;
    let stored: StoredMetadata = serde_json::from_slice(raw.custom_metadata)
        .map_err(|error| corrupt(format!("the custom metadata is not Palaver's: {error}")))?;
    if stored.palaver != LAYOUT {
        return Err(corrupt(format!(
            "metadata layout {} is unknown to this Palaver (it knows {LAYOUT}); upgrade Palaver",
            stored.palaver
        )));
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(&stored.hash, &mut hash).map_err(|error| {
        corrupt(format!(
            "the hash {:?} is not 32 bytes of hex: {error}",
            stored.hash
        ))
    })?;
    let position = position::from_kurrent(raw.position).ok_or_else(|| {
        corrupt(format!(
            "KurrentDB gives no $all position for it ({}); Palaver never writes in explicit transactions",
            raw.position
        ))
    })?;
    Ok(RecordedEvent {
        id: raw.id,
        stream,
        revision: raw.revision,
        position,
        event_type: raw.event_type.to_owned(),
        schema_version: stored.schema_version,
        payload: raw.data.clone(),
        metadata: Metadata {
            correlation_id: stored.correlation_id,
            causation_id: stored.causation_id,
            actor: stored.actor,
            recorded_at: stored.recorded_at,
        },
        hash,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use palaver_store::hash::{self, HashInput};

    use super::*;

    fn event() -> NewEvent {
        let when = Utc.timestamp_opt(1_761_000_000, 123_456_000).unwrap();
        NewEvent::new(
            "palaver.v1.MessageReceived",
            vec![0u8, 1, 2, 255],
            Metadata::new(when)
                .with_actor("whatsapp")
                .with_correlation(Uuid::from_u128(1))
                .with_causation(Uuid::from_u128(2)),
        )
        .with_schema_version(3)
    }

    fn stored(namespace: &Namespace, new: &NewEvent, revision: u64, previous: &[u8; 32]) -> RecordedEvent {
        let stream = palaver_store::StreamName::new("thread-1").unwrap();
        let digest = hash::event_hash(
            previous,
            HashInput {
                stream: &stream,
                revision,
                id: new.id,
                event_type: &new.event_type,
                schema_version: new.schema_version,
                payload: &new.payload,
                metadata: &new.metadata,
            },
        );
        let metadata = serde_json::to_vec(&StoredMetadata::of(new, &digest)).unwrap();
        let name = namespace.apply("thread-1");
        decode(
            namespace,
            RawEvent {
                stream: &name,
                id: new.id,
                revision,
                position: kurrentdb::Position {
                    commit: 9_000,
                    prepare: 9_000,
                },
                event_type: &new.event_type,
                data: &new.payload,
                custom_metadata: &metadata,
            },
        )
        .unwrap()
    }

    #[test]
    fn an_event_round_trips_through_the_custom_metadata() {
        for new in [
            event(),
            NewEvent::new("t", Vec::new(), Metadata::new(Utc.timestamp_opt(0, 0).unwrap())),
        ] {
            for namespace in [Namespace::default(), Namespace::new(Some("ns1.".into())).unwrap()] {
                let back = stored(&namespace, &new, 0, &hash::GENESIS);
                assert!(back.same_content_as(&new), "{back:?}");
                assert_eq!(back.stream.as_str(), "thread-1");
                assert_eq!(back.position, palaver_store::Position(9_000));
                assert_eq!(back.hash, back.compute_hash(&hash::GENESIS));
            }
        }
    }

    #[test]
    fn the_json_is_readable_and_exact() {
        let new = event();
        let json = serde_json::to_value(StoredMetadata::of(&new, &[0xab; 32])).unwrap();
        assert_eq!(json["palaver"], 1);
        assert_eq!(json["schema_version"], 3);
        assert_eq!(json["actor"], "whatsapp");
        assert_eq!(json["recorded_at"], "2025-10-20T22:40:00.123456Z");
        assert_eq!(json["correlation_id"], Uuid::from_u128(1).to_string());
        assert_eq!(json["hash"], "ab".repeat(32));
        let none = NewEvent::new("t", Vec::new(), Metadata::new(Utc.timestamp_opt(0, 0).unwrap()));
        let json = serde_json::to_value(StoredMetadata::of(&none, &[0; 32])).unwrap();
        assert!(json["causation_id"].is_null());
    }

    fn decode_with(metadata: &[u8], position: kurrentdb::Position) -> Result<RecordedEvent> {
        let data = Bytes::new();
        decode(
            &Namespace::default(),
            RawEvent {
                stream: "thread-1",
                id: Uuid::from_u128(3),
                revision: 4,
                position,
                event_type: "t",
                data: &data,
                custom_metadata: metadata,
            },
        )
    }

    #[test]
    fn foreign_or_damaged_events_are_corrupt() {
        let good = serde_json::to_value(StoredMetadata::of(&event(), &[1; 32])).unwrap();
        let at = kurrentdb::Position {
            commit: 10,
            prepare: 10,
        };
        assert!(decode_with(&serde_json::to_vec(&good).unwrap(), at).is_ok());
        let mut cases = vec![
            b"".to_vec(),
            b"{\"some\":\"json\"}".to_vec(),
            b"\x00binary".to_vec(),
        ];
        for (field, value) in [
            ("palaver", serde_json::json!(2)),
            ("hash", serde_json::json!("abcd")),
            ("hash", serde_json::json!("zz".repeat(32))),
            ("recorded_at", serde_json::json!("yesterday")),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            cases.push(serde_json::to_vec(&bad).unwrap());
        }
        for metadata in cases {
            let result = decode_with(&metadata, at);
            assert!(
                matches!(result, Err(Error::Corrupt { .. })),
                "{}: {result:?}",
                String::from_utf8_lossy(&metadata)
            );
        }
        let unknown_position = decode_with(&serde_json::to_vec(&good).unwrap(), kurrentdb::Position::end());
        assert!(matches!(unknown_position, Err(Error::Corrupt { .. })));
    }
}
