//! The command loop every aggregate goes through (docs/domain.md, "The
//! command loop"): read the stream, decode and replay it, decide with the
//! command's `now`, append with the revision that was read as expected
//! revision, and on a lost race read again and decide again.
//!
//! Two mechanisms keep a burst of commands on one stream (a customer
//! sending five messages at once) from exhausting the retries:
//!
//! - Within a process, commands on the same stream take turns on a striped
//!   lock ([`StreamLocks`]) from read to append, so they do not race at
//!   all. The lock is only an optimisation: correctness comes from the
//!   store's expected-revision check.
//! - Across processes, a lost race is retried after a short random backoff,
//!   at most [`MAX_ATTEMPTS`] times, then the caller gets a typed conflict.

use std::any::Any;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use palaver_domain::Aggregate;
use palaver_domain::codec::EventCodec;
use palaver_domain::stream::StreamName as DomainStreamName;
use palaver_store::{ActualRevision, Direction, ExpectedRevision, NewEvent, Position, ReadFrom, StreamName};
use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

use crate::App;
use crate::context::Cmd;
use crate::error::{ConflictReason, Error, Result};

/// Attempts per stream before a command gives up with a conflict. Several
/// instances (or a webhook burst into one conversation) can lose a few
/// races in a row under load; with the jittered backoff below, 10 attempts
/// wait up to about a second in all before giving up (5 was seen to run
/// out on a loaded 2-core CI machine).
pub(crate) const MAX_ATTEMPTS: u32 = 10;

/// Transient store failures re-sent with the same events (same ids, so a
/// write that did commit is recognised) before giving up.
const TRANSIENT_RETRIES: u32 = 2;

/// Events read per page when loading a stream.
const PAGE: usize = 1_000;

/// Streams whose replayed state is kept between commands.
const CACHED_STREAMS: usize = 4_096;

/// Replayed aggregates kept between commands, so a load reads and decodes
/// only the events appended since (a conversation grows with every reply).
/// Always topped up from the store before use: a stale entry costs a longer
/// read, never a wrong decision, even with other processes writing.
///
/// Entries are [`Loaded`] values, whose state and history are shared
/// (`Arc`): handing one out costs two reference counts, not a copy of a
/// conversation's whole history. (Copying it on every get and put made a
/// command's cost grow with the conversation; under the send-reply
/// benchmark that copying was most of the server's time.) Before adding
/// events to a snapshot, its holder drops the cache's reference
/// ([`LoadCache::release`]), so the events go in place unless a concurrent
/// reader of the same stream still holds the old snapshot.
#[derive(Default)]
pub(crate) struct LoadCache {
    entries: std::sync::Mutex<CacheEntries>,
}

/// Stream name to its [`Loaded`] value (of the stream's aggregate type).
type CacheEntries = std::collections::HashMap<String, Box<dyn Any + Send + Sync>>;

impl LoadCache {
    /// A shared copy of the entry of `stream`.
    fn get<A>(&self, stream: &str) -> Option<Loaded<A>>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: Send + Sync + 'static,
    {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        cached::<A>(&entries, stream).cloned()
    }

    /// Drops the cache's reference to `loaded`'s snapshot (if the cache
    /// still holds that one), so that `loaded` can grow in place.
    fn release<A>(&self, loaded: &Loaded<A>)
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: Send + Sync + 'static,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let same = cached::<A>(&entries, loaded.stream.as_str())
            .is_some_and(|cached| Arc::ptr_eq(&cached.state, &loaded.state));
        if same {
            entries.remove(loaded.stream.as_str());
        }
    }

    /// Keeps a shared copy of `loaded`, unless the cache already holds a
    /// later revision of the stream (a reader racing a command).
    fn put<A>(&self, loaded: &Loaded<A>)
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: Send + Sync + 'static,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let newer = cached::<A>(&entries, loaded.stream.as_str())
            .is_some_and(|cached| cached.revision > loaded.revision);
        if newer {
            return;
        }
        if entries.len() >= CACHED_STREAMS {
            // Crude but bounded; the hot streams come back on their next load.
            entries.clear();
        }
        entries.insert(loaded.stream.to_string(), Box::new(loaded.clone()));
    }
}

/// The entry of `stream` in `entries`, if it holds one of type `A`.
fn cached<'e, A>(entries: &'e CacheEntries, stream: &str) -> Option<&'e Loaded<A>>
where
    A: Aggregate + 'static,
    A::Event: 'static,
{
    entries.get(stream)?.downcast_ref::<Loaded<A>>()
}

/// An event as read back, with the id it was stored under (for causation).
#[derive(Clone, Debug)]
pub(crate) struct Stored<E> {
    pub id: Uuid,
    pub event: E,
}

/// An aggregate as read from its stream. Cloning it is cheap: the state
/// and the history are shared, and copied only when a shared one changes.
#[derive(Debug)]
pub(crate) struct Loaded<A: Aggregate> {
    pub stream: StreamName,
    pub state: Arc<A>,
    /// Revision of the last event; `None` for an empty stream.
    pub revision: Option<u64>,
    pub events: Arc<Vec<Stored<A::Event>>>,
}

impl<A: Aggregate> Clone for Loaded<A> {
    fn clone(&self) -> Self {
        Loaded {
            stream: self.stream.clone(),
            state: Arc::clone(&self.state),
            revision: self.revision,
            events: Arc::clone(&self.events),
        }
    }
}

impl<A: Aggregate> Loaded<A> {
    /// An empty stream's.
    fn empty(stream: StreamName) -> Self {
        Loaded {
            stream,
            state: Arc::new(A::default()),
            revision: None,
            events: Arc::new(Vec::new()),
        }
    }

    /// The id part of the stream name, for error messages.
    pub fn id(&self) -> &str {
        stream_id(&self.stream)
    }

    /// Applies events that follow the last one (copying the state and the
    /// history only if someone else still shares them).
    fn extend(&mut self, recorded: impl IntoIterator<Item = (u64, Stored<A::Event>)>) {
        let mut recorded = recorded.into_iter().peekable();
        if recorded.peek().is_none() {
            return;
        }
        let mut state = take_shared(&mut self.state);
        let events = Arc::make_mut(&mut self.events);
        for (revision, stored) in recorded {
            state = state.evolve(&stored.event);
            self.revision = Some(revision);
            events.push(stored);
        }
        self.state = Arc::new(state);
    }
}

/// The value behind `shared`, moved out if no one else holds it.
fn take_shared<A: Default + Clone>(shared: &mut Arc<A>) -> A {
    Arc::unwrap_or_clone(std::mem::take(shared))
}

/// The outcome of one command on one aggregate.
#[derive(Debug)]
pub(crate) struct Outcome<A: Aggregate> {
    /// The aggregate after the command, with the new events applied.
    pub loaded: Loaded<A>,
    /// The events this command appended (empty: nothing to do).
    pub new: Vec<Stored<A::Event>>,
}

/// How a step's append went.
enum Appended {
    Written(Vec<Uuid>),
    /// Someone else appended first: read again and decide again.
    Raced,
}

/// How [`App::execute`] treats a stream.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Step {
    /// The command's target aggregate: the caller's `expected_version`
    /// applies here, and a mismatch is a conflict, never retried.
    pub primary: bool,
    /// The event that caused this step, for the metadata.
    pub causation: Option<Uuid>,
}

impl Step {
    pub const PRIMARY: Step = Step {
        primary: true,
        causation: None,
    };

    pub fn caused_by(cause: Option<Uuid>) -> Step {
        Step {
            primary: false,
            causation: cause,
        }
    }
}

/// Striped async locks by stream name.
#[derive(Debug)]
pub(crate) struct StreamLocks {
    stripes: Box<[Mutex<()>]>,
}

impl StreamLocks {
    pub fn new(stripes: usize) -> Self {
        StreamLocks {
            stripes: (0..stripes.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    pub async fn lock(&self, stream: &str) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        stream.hash(&mut hasher);
        let stripe = (hasher.finish() % self.stripes.len() as u64) as usize;
        self.stripes[stripe].lock().await
    }
}

/// Counts attempts on one stream and backs off between them.
#[derive(Debug)]
pub(crate) struct Attempts {
    stream: String,
    made: u32,
}

impl Attempts {
    pub fn new(stream: &StreamName) -> Self {
        Attempts {
            stream: stream.to_string(),
            made: 0,
        }
    }

    /// Starts the next attempt, or fails with a conflict when they are used
    /// up. After a lost race it waits a random 0–2^n ms, so writers in
    /// other processes that lost together do not collide again together.
    pub async fn next(&mut self) -> Result<()> {
        if self.made >= MAX_ATTEMPTS {
            tracing::warn!(stream = %self.stream, attempts = self.made, "giving up after lost races");
            return Err(Error::Conflict {
                stream: self.stream.clone(),
                reason: ConflictReason::RetriesExhausted { attempts: self.made },
            });
        }
        if self.made > 0 {
            let bound = 1u64 << self.made.min(8);
            // Any randomness will do; UUID v4 saves a dependency.
            let jitter = (Uuid::new_v4().as_u128() as u64) % (bound * 1_000);
            tracing::debug!(stream = %self.stream, attempt = self.made + 1, "lost a race; retrying");
            tokio::time::sleep(Duration::from_micros(jitter)).await;
        }
        self.made += 1;
        Ok(())
    }
}

/// The id part of a stream name (after the category).
pub(crate) fn stream_id(stream: &StreamName) -> &str {
    stream
        .as_str()
        .split_once('-')
        .map_or(stream.as_str(), |(_, id)| id)
}

/// The store's name for a domain stream name (both check the same rules).
pub(crate) fn store_stream(name: &DomainStreamName) -> Result<StreamName> {
    StreamName::new(name.as_str()).map_err(|e| Error::Internal(format!("stream name {name}: {e}")))
}

impl App {
    /// Reads and replays an aggregate's stream (from the cached snapshot
    /// on, if there is one).
    pub(crate) async fn load<A>(&self, name: &DomainStreamName) -> Result<Loaded<A>>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: EventCodec + Clone + Send + Sync + 'static,
    {
        let stream = store_stream(name)?;
        let mut loaded = self
            .inner
            .loads
            .get::<A>(stream.as_str())
            .unwrap_or_else(|| Loaded::empty(stream));
        let before = loaded.revision;
        loop {
            let from = loaded
                .revision
                .map_or(ReadFrom::Start, |r: u64| ReadFrom::Revision(r + 1));
            let page = self
                .store()
                .read_stream(&loaded.stream, from, Direction::Forwards, PAGE)
                .await?;
            let full = page.len() == PAGE;
            let mut decoded = Vec::with_capacity(page.len());
            for recorded in page {
                let event =
                    A::Event::decode(&recorded.event_type, recorded.schema_version, &recorded.payload)
                        .map_err(|e| {
                            Error::Internal(format!("{} revision {}: {e}", loaded.stream, recorded.revision))
                        })?;
                let stored = Stored {
                    id: recorded.id,
                    event,
                };
                decoded.push((recorded.revision, stored));
            }
            if !decoded.is_empty() {
                self.inner.loads.release(&loaded);
                loaded.extend(decoded);
            }
            if !full {
                break;
            }
        }
        if loaded.revision != before {
            self.inner.loads.put(&loaded);
        }
        Ok(loaded)
    }

    /// Runs one command on one aggregate with the command loop: `decide`
    /// builds the domain commands from the loaded state (and may refuse,
    /// e.g. when the aggregate belongs to another workspace); they are
    /// decided in order, each on the state the previous one left, and
    /// their events appended together.
    pub(crate) async fn execute<A>(
        &self,
        cmd: &Cmd<'_>,
        name: &DomainStreamName,
        step: Step,
        mut decide: impl FnMut(&Loaded<A>) -> Result<Vec<A::Command>> + Send,
    ) -> Result<Outcome<A>>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Command: Send,
        A::Event: EventCodec + Clone + Send + Sync + 'static,
    {
        let stream = store_stream(name)?;
        let mut attempts = Attempts::new(&stream);
        loop {
            attempts.next().await?;
            let _turn = self.inner.locks.lock(stream.as_str()).await;
            let mut loaded = self.load::<A>(name).await?;
            self.check_expected_version(cmd, step, &loaded)?;
            let commands = decide(&loaded)?;
            // A refusal because the command carried a stale view of another
            // stream (a thread's conversation) is for the caller to retry
            // with a fresh view: only it knows how to load one.
            let events =
                decide_all(&*loaded.state, commands, cmd).map_err(|e| Error::from_domain(e, loaded.id()))?;
            if events.is_empty() {
                return Ok(Outcome { loaded, new: vec![] });
            }
            match self.append(cmd, step, &loaded, &events).await? {
                Appended::Raced => continue,
                Appended::Written(ids) => {
                    let first = loaded.revision.map_or(0, |r| r + 1);
                    let new: Vec<_> = ids
                        .into_iter()
                        .zip(events)
                        .map(|(id, event)| Stored { id, event })
                        .collect();
                    self.inner.loads.release(&loaded);
                    loaded.extend((first..).zip(new.iter().cloned()));
                    self.inner.loads.put(&loaded);
                    return Ok(Outcome { loaded, new });
                }
            }
        }
    }

    /// Fails unless the primary stream is at the caller's expected version.
    fn check_expected_version<A: Aggregate>(
        &self,
        cmd: &Cmd<'_>,
        step: Step,
        loaded: &Loaded<A>,
    ) -> Result<()> {
        match cmd.ctx.expected_version {
            Some(expected) if step.primary && loaded.revision != Some(expected) => Err(Error::Conflict {
                stream: loaded.stream.to_string(),
                reason: ConflictReason::ExpectedVersion {
                    expected,
                    actual: loaded.revision,
                },
            }),
            _ => Ok(()),
        }
    }

    /// Appends `events` after the loaded revision.
    async fn append<A>(
        &self,
        cmd: &Cmd<'_>,
        step: Step,
        loaded: &Loaded<A>,
        events: &[A::Event],
    ) -> Result<Appended>
    where
        A: Aggregate,
        A::Event: EventCodec,
    {
        let stream = loaded.stream.as_str();
        let batch: Vec<NewEvent> = events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                let encoded = event.encode();
                NewEvent::new(encoded.event_type, encoded.payload, cmd.metadata(step.causation))
                    .with_schema_version(encoded.schema_version)
                    .with_id(cmd.event_id(stream, loaded.revision, index))
            })
            .collect();
        let ids = batch.iter().map(|e| e.id).collect();
        let expected = match loaded.revision {
            None => ExpectedRevision::NoStream,
            Some(revision) => ExpectedRevision::Exact(revision),
        };
        let mut transient = 0;
        loop {
            match self
                .inner
                .store
                .append(&loaded.stream, expected, batch.clone())
                .await
            {
                Ok(result) => {
                    cmd.wrote(result.last_position);
                    tracing::debug!(stream, position = %result.last_position, events = events.len(), "appended");
                    return Ok(Appended::Written(ids));
                }
                Err(palaver_store::Error::WrongExpectedRevision { actual, .. }) => {
                    if step.primary
                        && let Some(expected) = cmd.ctx.expected_version
                    {
                        let actual = match actual {
                            ActualRevision::NoStream => None,
                            ActualRevision::At(revision) => Some(revision),
                        };
                        return Err(Error::Conflict {
                            stream: stream.to_owned(),
                            reason: ConflictReason::ExpectedVersion { expected, actual },
                        });
                    }
                    return Ok(Appended::Raced);
                }
                // Our ids are derived from the place we append at; an id
                // that is already stored elsewhere means a concurrent run of
                // the same keyed command took that place. Read again.
                Err(palaver_store::Error::EventIdConflict { .. }) => return Ok(Appended::Raced),
                Err(error) if error.is_transient() && transient < TRANSIENT_RETRIES => {
                    transient += 1;
                    tracing::warn!(stream, %error, "transient store failure; re-sending the same append");
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The position a command that changed nothing reports: the head, so
    /// that waiting for it shows the state the command saw.
    pub(crate) async fn head(&self) -> Result<Position> {
        Ok(self.inner.store.head().await?)
    }
}

/// Decides `commands` in order, each on the state the previous left.
fn decide_all<A: Aggregate>(
    state: &A,
    commands: Vec<A::Command>,
    cmd: &Cmd<'_>,
) -> std::result::Result<Vec<A::Event>, palaver_domain::Error> {
    // Nearly every command is one domain command: decide it on the state
    // as it is, without copying (a conversation's state holds its history).
    let commands = match <[A::Command; 1]>::try_from(commands) {
        Ok([command]) => return state.decide(command, cmd.now),
        Err(commands) => commands,
    };
    let mut state = state.clone();
    let mut all = Vec::new();
    for command in commands {
        let events = state.decide(command, cmd.now)?;
        for event in &events {
            state = state.evolve(event);
        }
        all.extend(events);
    }
    Ok(all)
}
