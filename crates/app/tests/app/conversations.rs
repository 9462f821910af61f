//! Replies, templates, starting conversations, status changes, delivery.

use chrono::TimeDelta;
use palaver_app::{DeliveryTarget, Error, NewContact};
use palaver_domain::contact::ContactKind;
use palaver_domain::delivery::{DeliveryProgress, DeliveryUpdate};
use palaver_domain::ids::{MessageId, PhoneNumberId, WaMessageId};
use palaver_domain::message::Reply;
use palaver_domain::templates::TemplateError;
use palaver_projections::queries::{InboxQuery, Status};
use uuid::Uuid;

use crate::harness::{World, domain_error, t0, welcome};

fn text(body: &str) -> Reply {
    Reply::Text { body: body.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_need_the_window_but_templates_do_not() {
    let w = World::new().await;
    let inbound = w.inbound("447700900123", "wamid.1", "Hi").await.unwrap();
    let conversation = inbound.value.conversation_id;

    w.clock.advance(TimeDelta::hours(24));
    let error = w
        .app
        .send_reply(&w.ctx(), conversation, None, text("Still there?"))
        .await
        .unwrap_err();
    let reason = match &error {
        Error::FailedPrecondition(p) => p.reason(),
        other => panic!("{other:?}"),
    };
    assert_eq!(reason, "window_closed");
    assert_eq!(
        domain_error(error),
        palaver_domain::Error::TemplateRequired {
            window_closed_at: Some(t0() + TimeDelta::hours(24))
        }
    );

    let sent = w
        .app
        .send_template(&w.ctx(), conversation, None, welcome("Ada"))
        .await
        .unwrap();
    let row = w
        .app
        .inbox(InboxQuery::new(w.workspace.as_uuid()), Some(sent.position))
        .await
        .unwrap()
        .rows[0]
        .clone();
    assert!(row.needs_template);
    assert_eq!(row.last_message_direction.as_deref(), Some("outbound"));

    // The catalogue's verdicts come back whole.
    let mut unknown = welcome("Ada");
    unknown.name = "nope".into();
    let error = w
        .app
        .send_template(&w.ctx(), conversation, None, unknown)
        .await
        .unwrap_err();
    assert!(matches!(
        domain_error(error),
        palaver_domain::Error::Template(TemplateError::Unknown { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_replies_name_the_field() {
    let w = World::new().await;
    let inbound = w.inbound("447700900123", "wamid.1", "Hi").await.unwrap();
    let error = w
        .app
        .send_reply(&w.ctx(), inbound.value.conversation_id, None, text("   "))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidArgument { field: "reply", .. }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_conversation_takes_a_template() {
    let w = World::new().await;
    let contact = w
        .app
        .create_contact(
            &w.ctx(),
            NewContact {
                kind: ContactKind::User,
                name: "Ada".into(),
                phone_numbers: vec!["+44 7700 900123".into()],
                wa_id: None,
                external_user_id: None,
            },
        )
        .await
        .unwrap()
        .value;
    let started = w
        .app
        .start_conversation(&w.ctx(), contact, w.number.clone(), welcome("Ada"), None)
        .await
        .unwrap();
    let view = w
        .app
        .conversation(w.workspace, started.value.conversation_id, Some(started.position))
        .await
        .unwrap();
    assert_eq!(view.conversation.origin, "inbox");
    assert_eq!(view.conversation.contact_id, contact.as_uuid());
    assert_eq!(view.messages.len(), 1);
    assert_eq!(view.messages[0].message_id, started.value.message_id.to_string());

    // While it is open, a new start is refused and names the open one.
    let error = w
        .app
        .start_conversation(&w.ctx(), contact, w.number.clone(), welcome("Ada"), None)
        .await
        .unwrap_err();
    assert_eq!(
        domain_error(error),
        palaver_domain::Error::ConversationStillOpen {
            current: started.value.conversation_id
        }
    );

    // The customer answers into the same conversation.
    let inbound = w.inbound("447700900123", "wamid.1", "Thanks!").await.unwrap();
    assert_eq!(inbound.value.conversation_id, started.value.conversation_id);
    assert_eq!(inbound.value.contact_id, contact);

    // From a number that is not ours: refused.
    let error = w
        .app
        .start_conversation(
            &w.ctx(),
            contact,
            PhoneNumberId::new("4242"),
            welcome("Ada"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::UnknownPhoneNumberId(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_and_expected_versions() {
    let w = World::new().await;
    let inbound = w.inbound("447700900123", "wamid.1", "Hi").await.unwrap();
    let conversation = inbound.value.conversation_id;

    // The conversation stream holds Started and MessageReceived: revision 1.
    let stale = w.ctx().with_expected_version(0);
    let error = w.app.close(&stale, conversation).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Conflict {
                reason: palaver_app::ConflictReason::ExpectedVersion {
                    expected: 0,
                    actual: Some(1)
                },
                ..
            }
        ),
        "{error:?}"
    );
    let closed = w
        .app
        .close(&w.ctx().with_expected_version(1), conversation)
        .await
        .unwrap();
    let view = w
        .app
        .conversation(w.workspace, conversation, Some(closed.position))
        .await
        .unwrap();
    assert_eq!(view.conversation.status, Status::Closed);

    // Closing again changes nothing; the position is the head.
    let again = w.app.close(&w.ctx(), conversation).await.unwrap();
    assert_eq!(again.position, w.store.head().await.unwrap());

    w.app.reopen(&w.ctx(), conversation).await.unwrap();
    let error = w
        .app
        .snooze(&w.ctx(), conversation, t0() - TimeDelta::hours(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidArgument { field: "until", .. }),
        "{error:?}"
    );
    w.app
        .snooze(&w.ctx(), conversation, t0() + TimeDelta::hours(3))
        .await
        .unwrap();
    let assigned = w
        .app
        .assign(
            &w.ctx(),
            conversation,
            Some(palaver_domain::ids::TeammateId::new("alice")),
        )
        .await
        .unwrap();
    let view = w
        .app
        .conversation(w.workspace, conversation, Some(assigned.position))
        .await
        .unwrap();
    assert_eq!(view.conversation.status, Status::Snoozed);
    assert_eq!(view.conversation.assignee.as_deref(), Some("alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_statuses_find_the_message_by_whatsapp_id() {
    let w = World::new().await;
    let inbound = w.inbound("447700900123", "wamid.in", "Hi").await.unwrap();
    let conversation = inbound.value.conversation_id;
    let message = MessageId::from_uuid(Uuid::from_u128(77));
    w.app
        .send_reply(&w.ctx(), conversation, Some(message), text("Hello"))
        .await
        .unwrap();
    let delivered = DeliveryUpdate::Progress {
        progress: DeliveryProgress::Delivered,
        at: t0(),
    };
    let wa = WaMessageId::new("wamid.HBgLNDQ3NzAwOTAwMTIzFQIAERgSQjE=");

    // The status overtook the API's answer: retry later.
    let error = w
        .app
        .record_delivery_status(
            &w.webhook(),
            DeliveryTarget::WhatsApp(wa.clone()),
            delivered.clone(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        domain_error(error),
        palaver_domain::Error::UnknownWaMessage(_)
    ));

    w.app
        .record_accepted(&w.webhook(), conversation, message, wa.clone())
        .await
        .unwrap();
    let recorded = w
        .app
        .record_delivery_status(&w.webhook(), DeliveryTarget::WhatsApp(wa.clone()), delivered)
        .await
        .unwrap();
    let view = w
        .app
        .conversation(w.workspace, conversation, Some(recorded.position))
        .await
        .unwrap();
    let entry = view
        .messages
        .iter()
        .find(|m| m.message_id == message.to_string())
        .unwrap();
    assert_eq!(entry.delivery_state.as_deref(), Some("delivered"));
    assert_eq!(entry.wa_message_id.as_deref(), Some(wa.as_str()));

    // Another workspace cannot report on it.
    let error = w
        .app
        .record_delivery_status(
            &w.other_ctx(),
            DeliveryTarget::WhatsApp(wa),
            DeliveryUpdate::Progress {
                progress: DeliveryProgress::Read,
                at: t0(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        domain_error(error),
        palaver_domain::Error::UnknownWaMessage(_)
    ));
}
