//! The inbound message process.

use palaver_app::Error;
use palaver_domain::codec::event_types as t;
use palaver_domain::ids::{PhoneNumberId, WaId};
use palaver_domain::message::Reply;
use palaver_projections::queries::InboxQuery;

use palaver_app::Clock as _;

use crate::harness::{World, text_message};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_shows_in_the_inbox_and_can_be_replied_to() {
    let w = World::new().await;
    let inbound = w
        .inbound("447700900123", "wamid.1", "Hello, my order is late")
        .await
        .unwrap();
    assert!(!inbound.value.duplicate);

    // Read your own write: the returned position is enough to see the row.
    let page = w
        .app
        .inbox(InboxQuery::new(w.workspace.as_uuid()), Some(inbound.position))
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    let row = &page.rows[0];
    assert_eq!(row.conversation_id, inbound.value.conversation_id.as_uuid());
    assert_eq!(row.contact_id, inbound.value.contact_id.as_uuid());
    assert_eq!(row.contact_name, "Customer");
    assert!(!row.needs_template);

    let reply = w
        .app
        .send_reply(
            &w.ctx(),
            inbound.value.conversation_id,
            None,
            Reply::Text {
                body: "Sorry! Looking into it 👀".into(),
            },
        )
        .await
        .unwrap();
    assert!(reply.position > inbound.position);
    let view = w
        .app
        .conversation(w.workspace, inbound.value.conversation_id, Some(reply.position))
        .await
        .unwrap();
    assert_eq!(view.messages.len(), 2);
    assert_eq!(view.messages[1].direction, "outbound");
    assert_eq!(view.messages[1].message_id, reply.value.to_string());

    let window = w
        .app
        .window(w.workspace, inbound.value.thread_id, None)
        .await
        .unwrap();
    assert!(window.free_form_allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_webhook_is_a_duplicate() {
    let w = World::new().await;
    let first = w.inbound("447700900123", "wamid.1", "Hi").await.unwrap();
    let again = w.inbound("447700900123", "wamid.1", "Hi").await.unwrap();
    assert!(again.value.duplicate);
    assert_eq!(again.value.conversation_id, first.value.conversation_id);
    assert_eq!(w.count(t::MESSAGE_RECEIVED).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_phone_number_id_is_a_typed_error() {
    let w = World::new().await;
    let error = w
        .app
        .record_inbound(
            &w.webhook(),
            PhoneNumberId::new("9999"),
            WaId::new("447700900123"),
            "Customer",
            text_message("wamid.1", "Hi", w.clock.now()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::UnknownPhoneNumberId(ref n) if n.as_str() == "9999"),
        "{error:?}"
    );
    assert_eq!(
        w.app
            .workspace_of_number(&PhoneNumberId::new(crate::harness::NUMBER))
            .await
            .unwrap(),
        Some(w.workspace)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_whatsapp_id_names_the_field() {
    let w = World::new().await;
    let error = w.inbound("not-digits", "wamid.1", "Hi").await.unwrap_err();
    assert!(
        matches!(error, Error::InvalidArgument { field: "wa_id", .. }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_after_the_quiet_period_starts_a_new_conversation() {
    let w = World::new().await;
    let first = w.inbound("447700900123", "wamid.1", "Hi").await.unwrap();
    w.app.close(&w.ctx(), first.value.conversation_id).await.unwrap();
    // Within the quiet period (one day by default): reopened.
    w.clock.advance(chrono::TimeDelta::hours(2));
    let second = w
        .inbound("447700900123", "wamid.2", "One more thing")
        .await
        .unwrap();
    assert_eq!(second.value.conversation_id, first.value.conversation_id);
    w.app.close(&w.ctx(), first.value.conversation_id).await.unwrap();
    // After it: a new conversation in the same thread.
    w.clock.advance(chrono::TimeDelta::days(2));
    let third = w.inbound("447700900123", "wamid.3", "Hello again").await.unwrap();
    assert_ne!(third.value.conversation_id, first.value.conversation_id);
    assert_eq!(third.value.thread_id, first.value.thread_id);
}
