//! Catch-up subscriptions built from [`EventStore::read_all`] and the head
//! watch, for backends whose reads see every committed event in position
//! order (all of ours but KurrentDB, which has native subscriptions).
//!
//! Why this is gap-free: the store publishes a new head only once every
//! event up to it is readable. The subscription notes the head *before* it
//! reads; if a read returns fewer events than asked, nothing that passes the
//! filter remains up to that head, so it may move its position there. It
//! never moves past an event it has not seen, and never yields one twice.

use std::pin::Pin;

use futures::{Stream, StreamExt, stream};
use tokio::sync::watch;

use crate::{AllFilter, EventStore, Position, RecordedEvent, Result};

/// A stream of events from a subscription. Ends after yielding an error.
pub type Subscription = Pin<Box<dyn Stream<Item = Result<RecordedEvent>> + Send>>;

/// How many events one catch-up read asks for.
const PAGE: usize = 1024;

struct CatchUp<S> {
    store: S,
    after: Position,
    filter: AllFilter,
    head: watch::Receiver<Position>,
    failed: bool,
}

/// A subscription to `$all` after `after`, through `store`'s reads.
pub fn catch_up<S>(store: S, after: Position, filter: AllFilter) -> Subscription
where
    S: EventStore + Clone,
{
    if let Err(error) = filter.validate() {
        return Box::pin(stream::once(async move { Err(error) }));
    }
    let head = store.watch_head();
    let state = CatchUp {
        store,
        after,
        filter,
        head,
        failed: false,
    };
    Box::pin(
        stream::unfold(state, |mut state| async move {
            let page = state.next_page().await?;
            Some((page, state))
        })
        .flat_map(|page| match page {
            Ok(events) => stream::iter(events.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(error) => stream::iter(vec![Err(error)]),
        }),
    )
}

impl<S: EventStore> CatchUp<S> {
    async fn next_page(&mut self) -> Option<Result<Vec<RecordedEvent>>> {
        if self.failed {
            return None;
        }
        loop {
            let head = *self.head.borrow_and_update();
            if self.after < head {
                let page = match self.store.read_all(self.after, &self.filter, PAGE).await {
                    Ok(page) => page,
                    Err(error) => {
                        self.failed = true;
                        return Some(Err(error));
                    }
                };
                let last = page.last().map(|event| event.position);
                self.after = if page.len() < PAGE {
                    // Everything up to `head` was readable: nothing else to find there.
                    last.map_or(head, |last| last.max(head))
                } else {
                    last.unwrap_or(head)
                };
                if !page.is_empty() {
                    return Some(Ok(page));
                }
                continue;
            }
            // Caught up: wait for the next commit, or end with the store.
            if self.head.changed().await.is_err() {
                return None;
            }
        }
    }
}
