//! Subscriptions to `$all` on KurrentDB's own catch-up subscriptions, and
//! the task that keeps [`EventStore::watch_head`] moving.
//!
//! KurrentDB hands over from catching up to live on the server, in `$all`
//! order, without gap or duplicate; the adapter adds the client-side part of
//! the filter and decodes. A subscription rides out outages (a lost
//! connection, a node going away, a leader change): it subscribes again
//! after the last event it saw, with a growing pause, logging each attempt;
//! events at or before that position are skipped, so nothing is yielded
//! twice. It ends with an error only for what subscribing again would not
//! fix (access denied, an event that does not decode).

use std::time::Duration;

use futures::{StreamExt, stream};
use kurrentdb::{SubscribeToAllOptions, SubscriptionFilter};
use palaver_store::{AllFilter, EventStore, Position, RecordedEvent, Result, subscription::Subscription};

use crate::{
    KurrentDbStore,
    codec::{self, RawEvent},
    connection::{self, Lease},
    error::Operation,
    filter::ServerFilter,
    position,
};

/// How long the head follower waits before subscribing again after a failure.
const FOLLOW_RETRY: Duration = Duration::from_secs(1);

/// Every event after `after` that passes `filter`, then live ones.
pub(crate) fn subscribe(store: &KurrentDbStore, after: Position, filter: AllFilter) -> Subscription {
    if let Err(error) = filter.validate() {
        return Box::pin(stream::once(async move { Err(error) }));
    }
    let state = Live {
        store: store.clone(),
        server: ServerFilter::of(&store.inner.namespace, &filter).to_kurrent(),
        filter,
        after,
        subscription: None,
        outages: 0,
        ended: false,
    };
    Box::pin(stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}

struct Live {
    store: KurrentDbStore,
    server: SubscriptionFilter,
    filter: AllFilter,
    /// The last position seen: where to subscribe again after an outage,
    /// and the bound below which anything the server sends is skipped.
    after: Position,
    /// Opened on the first poll (`subscribe_all` itself is synchronous) and
    /// again after each outage.
    subscription: Option<(Lease, kurrentdb::Subscription)>,
    /// Outages in a row, for the pause before subscribing again.
    outages: u32,
    ended: bool,
}

impl Live {
    async fn next(&mut self) -> Option<Result<RecordedEvent>> {
        if self.ended {
            return None;
        }
        let inner = &self.store.inner;
        loop {
            let (lease, subscription) = match &mut self.subscription {
                Some(open) => open,
                None => {
                    let lease = inner.connection.client();
                    let options = SubscribeToAllOptions::default()
                        .position(position::start_after(self.after))
                        .filter(self.server.clone())
                        .requires_leader(true);
                    let subscription = lease.client.subscribe_to_all(&options).await;
                    self.subscription.insert((lease, subscription))
                }
            };
            let resolved = match subscription.next().await {
                Ok(resolved) => resolved,
                Err(error) => {
                    let outage = connection::is_outage(&error);
                    let error = inner.connection.failed(lease, error, Operation::Subscribe);
                    self.subscription = None;
                    if !outage {
                        self.ended = true;
                        return Some(Err(error));
                    }
                    self.outages = self.outages.saturating_add(1);
                    let pause = connection::backoff(self.outages);
                    tracing::warn!(%error, after = %self.after, ?pause, "subscription to $all interrupted; subscribing again");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            self.outages = 0;
            let Some(raw) = resolved.event.as_ref() else {
                continue;
            };
            if raw.position.commit <= self.after.0 || !inner.namespace.owns(raw.stream_id(), &raw.event_type)
            {
                continue;
            }
            match codec::decode(&inner.namespace, RawEvent::from(raw)) {
                Ok(event) => {
                    self.after = event.position;
                    if self.filter.matches(&event) {
                        return Some(Ok(event));
                    }
                }
                Err(error) => {
                    self.ended = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// Moves the store's head watch with every event anyone commits, until
/// nobody watches. Started by [`EventStore::watch_head`].
pub(crate) async fn follow_head(store: KurrentDbStore) {
    let watchers = &store.inner.head;
    loop {
        let following = async {
            let head = store.head().await?;
            let mut events = store.subscribe_all(head, AllFilter::all());
            while let Some(event) = events.next().await {
                store.publish_head(event?.position);
            }
            Ok::<(), palaver_store::Error>(())
        };
        tokio::select! {
            () = watchers.closed() => return,
            outcome = following => {
                if let Err(error) = outcome {
                    tracing::warn!(%error, "following the KurrentDB head failed; subscribing again");
                }
            }
        }
        tokio::select! {
            () = watchers.closed() => return,
            () = tokio::time::sleep(FOLLOW_RETRY) => {}
        }
    }
}
