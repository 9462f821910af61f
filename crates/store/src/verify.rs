//! Audits the hash chains of a whole store.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::{AllFilter, EventStore, Position, Result, StreamName, hash};

/// What a verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// Streams seen.
    pub streams: u64,
    /// Position of the last event checked.
    pub head: Position,
    /// SHA-256 over every stream's name, last revision and last hash, in
    /// name order. Record it: if a later run over the same history (at the
    /// same head) gives another digest, events were removed from the tail
    /// of a stream, which no chain can show on its own.
    pub digest: [u8; 32],
    /// The first broken link, if any. Checking stops there.
    pub first_break: Option<BrokenLink>,
}

impl VerifyReport {
    /// Whether every chain held.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Where and how a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    /// The stream whose chain breaks.
    pub stream: StreamName,
    /// The revision of the event where it breaks.
    pub revision: u64,
    /// That event's global position.
    pub position: Position,
    /// What is wrong.
    pub problem: Problem,
}

/// How a chain can break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The stored hash does not match the event's content and predecessor:
    /// this event, or one before it in the stream, was changed or removed.
    HashMismatch,
    /// Revisions skip or repeat: events were removed or reordered.
    RevisionOutOfSequence {
        /// The revision the chain expected here.
        expected: u64,
    },
    /// Global positions do not increase: `$all` was reordered.
    PositionOutOfOrder {
        /// The position of the event before it.
        previous: Position,
    },
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stream {} revision {} (position {}): ",
            self.stream, self.revision, self.position
        )?;
        match &self.problem {
            Problem::HashMismatch => f.write_str("hash does not match content and predecessor"),
            Problem::RevisionOutOfSequence { expected } => write!(f, "expected revision {expected}"),
            Problem::PositionOutOfOrder { previous } => {
                write!(f, "position does not follow {previous}")
            }
        }
    }
}

/// Walks `$all` from the start and checks every stream's chain, calling
/// `progress` with the number of events checked after each page.
pub async fn verify(store: &dyn EventStore, mut progress: impl FnMut(u64)) -> Result<VerifyReport> {
    const PAGE: usize = 4096;
    let mut heads: HashMap<StreamName, (u64, [u8; 32])> = HashMap::new();
    let mut after = Position::START;
    let mut events = 0u64;
    let mut first_break = None;
    'pages: loop {
        let page = store.read_all(after, &AllFilter::all(), PAGE).await?;
        for event in &page {
            let (expected, previous) = heads
                .get(&event.stream)
                .map_or((0, hash::GENESIS), |(revision, hash)| (revision + 1, *hash));
            let problem = if event.position <= after {
                Some(Problem::PositionOutOfOrder { previous: after })
            } else if event.revision != expected {
                Some(Problem::RevisionOutOfSequence { expected })
            } else if event.compute_hash(&previous) != event.hash {
                Some(Problem::HashMismatch)
            } else {
                None
            };
            if let Some(problem) = problem {
                first_break = Some(BrokenLink {
                    stream: event.stream.clone(),
                    revision: event.revision,
                    position: event.position,
                    problem,
                });
                break 'pages;
            }
            heads.insert(event.stream.clone(), (event.revision, event.hash));
            after = event.position;
            events += 1;
        }
        progress(events);
        if page.len() < PAGE {
            break;
        }
    }

    let mut names: Vec<_> = heads.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    let mut digest = Sha256::new();
    for (name, (revision, hash)) in names {
        digest.update((name.as_str().len() as u64).to_be_bytes());
        digest.update(name.as_str().as_bytes());
        digest.update(revision.to_be_bytes());
        digest.update(hash);
    }
    Ok(VerifyReport {
        events,
        streams: heads.len() as u64,
        head: after,
        digest: digest.finalize().into(),
        first_break,
    })
}
