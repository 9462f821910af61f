//! What goes into the store and what comes out of it.

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::StreamName;

/// A place in the global `$all` order. Positions start at 1; [`Position::START`]
/// (0) lies before every event, so "after `START`" means "from the beginning".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(pub u64);

impl Position {
    /// Before the first event.
    pub const START: Position = Position(0);
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who caused an event, why and when. Stored with every event and covered by
/// its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// Groups all events caused by one outside request, across streams.
    pub correlation_id: Option<Uuid>,
    /// The event or command that directly caused this one.
    pub causation_id: Option<Uuid>,
    /// Who acted: a token name, a teammate id, `whatsapp` for webhooks.
    pub actor: String,
    /// When the event was recorded, in UTC. Stores keep microseconds, so
    /// [`Metadata::new`] truncates to them: what you append is what you read.
    pub recorded_at: DateTime<Utc>,
}

impl Metadata {
    /// Metadata recorded at `recorded_at` (truncated to microseconds) with no
    /// correlation, causation or actor. The caller passes the time so that
    /// tests and replays control the clock.
    pub fn new(recorded_at: DateTime<Utc>) -> Self {
        Metadata {
            correlation_id: None,
            causation_id: None,
            actor: String::new(),
            recorded_at: recorded_at.trunc_subsecs(6),
        }
    }

    /// Sets the actor.
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    pub fn with_causation(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }
}

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id. Retrying an append with the same ids is safe: the store
    /// recognises them and returns the first result.
    pub id: Uuid,
    /// Name of the payload's type, e.g. `palaver.v1.MessageReceived`.
    pub event_type: String,
    /// Version of the payload's schema, for upcasting old events.
    pub schema_version: u32,
    /// The encoded payload (protobuf for Palaver's own events).
    pub payload: Bytes,
    /// Who, why and when.
    pub metadata: Metadata,
}

impl NewEvent {
    /// A schema-version-1 event with a fresh time-ordered id.
    pub fn new(event_type: impl Into<String>, payload: impl Into<Bytes>, metadata: Metadata) -> Self {
        NewEvent {
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            payload: payload.into(),
            metadata,
        }
    }

    /// Sets the id (for deterministic ids derived from outside message ids).
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = id;
        self
    }

    /// Sets the schema version.
    pub fn with_schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// Bytes this event counts against the size limit: payload, type and actor.
    pub fn size(&self) -> usize {
        self.payload.len() + self.event_type.len() + self.metadata.actor.len()
    }
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The id it was appended with.
    pub id: Uuid,
    /// The stream it belongs to.
    pub stream: StreamName,
    /// Its 0-based place in the stream.
    pub revision: u64,
    /// Its place in `$all`.
    pub position: Position,
    /// Name of the payload's type.
    pub event_type: String,
    /// Version of the payload's schema.
    pub schema_version: u32,
    /// The encoded payload.
    pub payload: Bytes,
    /// Who, why and when.
    pub metadata: Metadata,
    /// SHA-256 chaining this event to the previous one of its stream
    /// (see [`crate::hash`]).
    pub hash: [u8; 32],
}

impl RecordedEvent {
    /// Whether this stored event has the same content as `new`: the test for
    /// an idempotent retry.
    pub fn same_content_as(&self, new: &NewEvent) -> bool {
        self.id == new.id
            && self.event_type == new.event_type
            && self.schema_version == new.schema_version
            && self.payload == new.payload
            && self.metadata == new.metadata
    }
}

/// What the caller believes about a stream before appending to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedRevision {
    /// No check: append whatever the stream's state.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have this revision.
    Exact(u64),
}

impl std::fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedRevision::Any => f.write_str("any revision"),
            ExpectedRevision::NoStream => f.write_str("no stream"),
            ExpectedRevision::StreamExists => f.write_str("an existing stream"),
            ExpectedRevision::Exact(revision) => write!(f, "revision {revision}"),
        }
    }
}

/// Where a stream actually is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActualRevision {
    /// The stream has no events.
    NoStream,
    /// The revision of the stream's last event.
    At(u64),
}

impl ActualRevision {
    /// From the last revision, if any.
    pub fn from_last(last: Option<u64>) -> Self {
        last.map_or(ActualRevision::NoStream, ActualRevision::At)
    }

    /// Whether the expectation holds.
    pub fn satisfies(self, expected: ExpectedRevision) -> bool {
        match (expected, self) {
            (ExpectedRevision::Any, _) => true,
            (ExpectedRevision::NoStream, ActualRevision::NoStream) => true,
            (ExpectedRevision::StreamExists, ActualRevision::At(_)) => true,
            (ExpectedRevision::Exact(want), ActualRevision::At(have)) => want == have,
            _ => false,
        }
    }
}

impl std::fmt::Display for ActualRevision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActualRevision::NoStream => f.write_str("no stream"),
            ActualRevision::At(revision) => write!(f, "revision {revision}"),
        }
    }
}

/// Where an append landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// Revision of the first appended event.
    pub first_revision: u64,
    /// Revision of the last appended event: the stream's new revision.
    pub last_revision: u64,
    /// Global position of the first appended event.
    pub first_position: Position,
    /// Global position of the last appended event. Queries can wait for read
    /// models to reach it (read your own writes).
    pub last_position: Position,
}

/// Where to start reading a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// The first event (forwards) or before it (backwards: nothing).
    Start,
    /// The last event (backwards) or after it (forwards: nothing).
    End,
    /// This revision, included.
    Revision(u64),
}

/// Which way to read a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Increasing revisions.
    Forwards,
    /// Decreasing revisions.
    Backwards,
}

/// Which events a read of `$all` or a subscription yields. The two lists are
/// combined with AND; within a list any entry may match. An empty list
/// matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllFilter {
    /// Stream name prefixes, usually categories such as `conversation-`.
    pub stream_prefixes: Vec<String>,
    /// Exact event types.
    pub event_types: Vec<String>,
}

impl AllFilter {
    /// Every event.
    pub fn all() -> Self {
        AllFilter::default()
    }

    /// Events of streams whose name starts with one of `prefixes`.
    pub fn stream_prefixes<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AllFilter {
            stream_prefixes: prefixes.into_iter().map(Into::into).collect(),
            event_types: Vec::new(),
        }
    }

    /// Events of one of `types`.
    pub fn event_types<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AllFilter {
            stream_prefixes: Vec::new(),
            event_types: types.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the filter lets everything through.
    pub fn is_all(&self) -> bool {
        self.stream_prefixes.is_empty() && self.event_types.is_empty()
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        (self.stream_prefixes.is_empty()
            || self
                .stream_prefixes
                .iter()
                .any(|prefix| event.stream.as_str().starts_with(prefix.as_str())))
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
    }

    /// Checks every entry against the naming rules.
    pub fn validate(&self) -> crate::Result<()> {
        for prefix in &self.stream_prefixes {
            crate::names::check_stream_prefix(prefix)?;
        }
        for event_type in &self.event_types {
            crate::names::check_event_type(event_type)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations() {
        use ActualRevision::At;
        use ExpectedRevision::{Any, Exact, StreamExists};
        let none = ActualRevision::NoStream;
        assert!(none.satisfies(Any) && At(3).satisfies(Any));
        assert!(none.satisfies(ExpectedRevision::NoStream));
        assert!(!At(0).satisfies(ExpectedRevision::NoStream));
        assert!(At(0).satisfies(StreamExists) && !none.satisfies(StreamExists));
        assert!(At(4).satisfies(Exact(4)) && !At(4).satisfies(Exact(3)));
        assert!(!none.satisfies(Exact(0)));
    }
}
