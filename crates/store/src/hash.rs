//! Tamper evidence: every stored event carries a SHA-256 hash over its own
//! content and the previous event's hash in the same stream.
//!
//! Changing, removing or reordering any stored event breaks the chain from
//! that event on, which [`crate::verify`] finds. The encoding below is fixed
//! forever (a new one would get a new domain tag): each variable-length field
//! is length-prefixed, so no two different events encode alike. The global
//! position is deliberately left out, so that history copied to another
//! backend (whose positions differ) still verifies.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Metadata, StreamName};

/// The hash the first event of a stream chains to.
pub const GENESIS: [u8; 32] = [0; 32];

/// Separates this encoding from any other use of SHA-256.
const DOMAIN_TAG: &[u8] = b"palaver.event.v1";

/// The fields of an event that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    pub stream: &'a StreamName,
    pub revision: u64,
    pub id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub payload: &'a [u8],
    pub metadata: &'a Metadata,
}

/// Hash of an event whose stream predecessor hashed to `previous`
/// ([`GENESIS`] for revision 0).
pub fn event_hash(previous: &[u8; 32], event: HashInput<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN_TAG);
    hasher.update(previous);
    put_bytes(&mut hasher, event.stream.as_str().as_bytes());
    hasher.update(event.revision.to_be_bytes());
    hasher.update(event.id.as_bytes());
    put_bytes(&mut hasher, event.event_type.as_bytes());
    hasher.update(event.schema_version.to_be_bytes());
    put_bytes(&mut hasher, event.payload);
    put_uuid(&mut hasher, event.metadata.correlation_id);
    put_uuid(&mut hasher, event.metadata.causation_id);
    put_bytes(&mut hasher, event.metadata.actor.as_bytes());
    hasher.update(event.metadata.recorded_at.timestamp_micros().to_be_bytes());
    hasher.finalize().into()
}

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

fn put_uuid(hasher: &mut Sha256, id: Option<Uuid>) {
    match id {
        Some(id) => {
            hasher.update([1]);
            hasher.update(id.as_bytes());
        }
        None => hasher.update([0]),
    }
}

impl crate::RecordedEvent {
    /// Recomputes this event's hash from its content and its predecessor's hash.
    pub fn compute_hash(&self, previous: &[u8; 32]) -> [u8; 32] {
        event_hash(
            previous,
            HashInput {
                stream: &self.stream,
                revision: self.revision,
                id: self.id,
                event_type: &self.event_type,
                schema_version: self.schema_version,
                payload: &self.payload,
                metadata: &self.metadata,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn input<'a>(stream: &'a StreamName, metadata: &'a Metadata, payload: &'a [u8]) -> HashInput<'a> {
        HashInput {
            stream,
            revision: 0,
            id: Uuid::from_u128(7),
            event_type: "t",
            schema_version: 1,
            payload,
            metadata,
        }
    }

    #[test]
    fn every_field_and_the_predecessor_change_the_hash() {
        let stream = StreamName::new("s-1").unwrap();
        let metadata = Metadata::new(Utc.timestamp_opt(1_700_000_000, 0).unwrap());
        let base = event_hash(&GENESIS, input(&stream, &metadata, b"ab"));
        assert_eq!(base, event_hash(&GENESIS, input(&stream, &metadata, b"ab")));
        assert_ne!(base, event_hash(&[1; 32], input(&stream, &metadata, b"ab")));
        assert_ne!(base, event_hash(&GENESIS, input(&stream, &metadata, b"ac")));
        let other_stream = StreamName::new("s-2").unwrap();
        assert_ne!(base, event_hash(&GENESIS, input(&other_stream, &metadata, b"ab")));
        let actor = metadata.clone().with_actor("x");
        assert_ne!(base, event_hash(&GENESIS, input(&stream, &actor, b"ab")));
        let mut revision = input(&stream, &metadata, b"ab");
        revision.revision = 1;
        assert_ne!(base, event_hash(&GENESIS, revision));
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        // Moving a byte from the type into the payload must change the hash.
        let stream = StreamName::new("s-1").unwrap();
        let metadata = Metadata::new(Utc.timestamp_opt(0, 0).unwrap());
        let mut a = input(&stream, &metadata, b"bc");
        a.event_type = "a";
        let mut b = input(&stream, &metadata, b"c");
        b.event_type = "ab";
        assert_ne!(event_hash(&GENESIS, a), event_hash(&GENESIS, b));
    }
}
