//! A burst of first messages from a new number (the webhook issue): one
//! lead, one thread, one conversation, every message recorded once.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::join_all;
use palaver_app::App;
use palaver_domain::codec::event_types as t;
use palaver_projections::queries::InboxQuery;

use crate::harness::World;

const BURST: usize = 24;

async fn burst_from_a_new_number(w: Arc<World>) {
    // Two applications over one store, as two processes would be: within
    // one the stream turns serialise the burst, across the two the
    // expected-revision retries do. Spawned, so they run in parallel.
    let apps = [w.app.clone(), w.second_app()];
    let mut calls: Vec<(App, String)> = (0..BURST)
        .map(|i| (apps[i % 2].clone(), format!("wamid.burst.{i}")))
        .collect();
    // And a redelivery of a few, racing their originals on the other app.
    calls.extend((0..4).map(|i| (apps[(i + 1) % 2].clone(), format!("wamid.burst.{i}"))));
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|(app, wamid)| {
            let w = Arc::clone(&w);
            tokio::spawn(async move { w.inbound_on(&app, "447700900555", &wamid, "help!").await })
        })
        .collect();
    let results = join_all(tasks).await;

    let outcomes: Vec<_> = results.into_iter().map(|r| r.unwrap().unwrap()).collect();
    let conversations: BTreeSet<_> = outcomes.iter().map(|o| o.value.conversation_id).collect();
    let contacts: BTreeSet<_> = outcomes.iter().map(|o| o.value.contact_id).collect();
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(outcomes.iter().filter(|o| o.value.duplicate).count(), 4);

    assert_eq!(w.count(t::CONTACT_CREATED).await, 1, "one lead");
    assert_eq!(w.count(t::THREAD_STARTED).await, 1, "one thread");
    assert_eq!(
        w.count(t::THREAD_CONVERSATION_STARTED).await,
        1,
        "one conversation"
    );
    assert_eq!(
        w.count(t::CONVERSATION_STARTED).await,
        1,
        "one conversation stream"
    );
    assert_eq!(w.count(t::CUSTOMER_MESSAGE_ACCEPTED).await, BURST);
    assert_eq!(w.count(t::MESSAGE_RECEIVED).await, BURST);

    let head = outcomes.iter().map(|o| o.position).max();
    let page = w
        .app
        .inbox(InboxQuery::new(w.workspace.as_uuid()), head)
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].unread_count as usize, BURST);
    let leads = w
        .app
        .contacts_by_phone(w.workspace, "+447700900555", None)
        .await
        .unwrap();
    assert_eq!(leads.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_a_new_number_makes_one_lead_and_one_conversation() {
    burst_from_a_new_number(Arc::new(World::new().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_a_new_number_on_sqlite() {
    burst_from_a_new_number(Arc::new(World::sqlite().await)).await;
}
