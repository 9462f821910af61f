//! Workspace B can neither see nor touch workspace A's conversations,
//! contacts, threads, numbers or campaigns.

use palaver_app::{Error, NewCampaign, NewContact, Precondition};
use palaver_domain::campaign::CampaignTrigger;
use palaver_domain::contact::ContactKind;
use palaver_domain::ids::{BusinessAccountId, PhoneNumberId};
use palaver_domain::message::Reply;
use palaver_projections::queries::InboxQuery;

use crate::harness::{World, welcome};

fn not_found<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected not found, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_workspace_sees_and_touches_nothing() {
    let w = World::new().await;
    let a = w.inbound("447700900123", "wamid.1", "Hi").await.unwrap();
    let (conversation, contact, thread) = (a.value.conversation_id, a.value.contact_id, a.value.thread_id);
    let campaign = w
        .app
        .create_campaign(
            &w.ctx(),
            NewCampaign {
                phone_number_id: w.number.clone(),
                template: welcome("Ada"),
                recipients: vec![contact],
                trigger: CampaignTrigger::OnEvent {
                    event_name: "tag_added:vip".into(),
                },
            },
        )
        .await
        .unwrap()
        .value;
    w.settle().await;
    let b = w.other_ctx();
    let b_ws = b.workspace_id;

    // Queries.
    not_found(w.app.conversation(b_ws, conversation, None).await);
    not_found(w.app.contact(b_ws, contact, None).await);
    not_found(w.app.window(b_ws, thread, None).await);
    not_found(w.app.campaign_status(b_ws, campaign).await);
    assert!(
        w.app
            .contacts_by_phone(b_ws, "+447700900123", None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        w.app
            .inbox(InboxQuery::new(b_ws.as_uuid()), None)
            .await
            .unwrap()
            .rows
            .is_empty()
    );

    // Commands.
    let reply = Reply::Text {
        body: "hi from B".into(),
    };
    not_found(w.app.send_reply(&b, conversation, None, reply).await);
    not_found(w.app.send_template(&b, conversation, None, welcome("x")).await);
    not_found(w.app.close(&b, conversation).await);
    not_found(w.app.assign(&b, conversation, None).await);
    not_found(w.app.add_contact_phone(&b, contact, "+447700900999").await);
    not_found(w.app.convert_to_user(&b, contact, "ext-1").await);
    not_found(w.app.cancel_campaign(&b, campaign).await);
    not_found(w.app.trigger_event(&b, "tag_added:vip", contact).await);
    let b_user = w
        .app
        .create_contact(
            &b,
            NewContact {
                kind: ContactKind::User,
                name: "Bea".into(),
                phone_numbers: vec!["+447700900321".into()],
                wa_id: None,
                external_user_id: None,
            },
        )
        .await
        .unwrap()
        .value;
    not_found(w.app.merge_contacts(&b, contact, b_user).await);
    not_found(
        w.app
            .start_conversation(&b, contact, w.number.clone(), welcome("x"), None)
            .await,
    );
    not_found(
        w.app
            .sync_templates(&b, BusinessAccountId::new(crate::harness::ACCOUNT), vec![])
            .await,
    );

    // A's number: B cannot receive on it, nor connect it.
    let error = w
        .app
        .record_inbound(
            &b,
            w.number.clone(),
            palaver_domain::ids::WaId::new("447700900123"),
            "Mallory",
            crate::harness::text_message("wamid.b", "Hi", crate::harness::t0()),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::UnknownPhoneNumberId(_)), "{error:?}");
    let error = w
        .app
        .connect_number(
            &b,
            w.number.clone(),
            "+44 20 7946 0000",
            BusinessAccountId::new("waba-b"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::FailedPrecondition(Precondition::NumberInUse { .. })),
        "{error:?}"
    );

    // Once A disconnects it, B may connect it.
    w.app.disconnect_number(&w.ctx(), w.number.clone()).await.unwrap();
    w.app
        .connect_number(
            &b,
            PhoneNumberId::new(crate::harness::NUMBER),
            "+44 20 7946 0000",
            BusinessAccountId::new("waba-b"),
        )
        .await
        .unwrap();
    let error = w.inbound("447700900123", "wamid.2", "Hi").await.unwrap_err();
    assert!(matches!(error, Error::UnknownPhoneNumberId(_)), "{error:?}");
}
