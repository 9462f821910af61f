//! Channel settings, template syncs, campaigns and the WhatsApp switch.

use palaver_app::channel::SyncedTemplate;
use palaver_app::{CampaignState, Error, NewCampaign, NewContact, RecipientState};
use palaver_domain::campaign::CampaignTrigger;
use palaver_domain::channel::ChannelSettings;
use palaver_domain::codec::event_types as t;
use palaver_domain::contact::ContactKind;
use palaver_domain::ids::{BusinessAccountId, MessengerConversationId};
use palaver_domain::messenger::switch_message_text;
use palaver_domain::templates::{TemplateError, TemplateStatus};

use crate::harness::{ACCOUNT, World, domain_error, welcome, welcome_template};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_the_sync_no_longer_lists_is_disabled() {
    let w = World::new().await;
    let conversation = w
        .inbound("447700900123", "wamid.1", "Hi")
        .await
        .unwrap()
        .value
        .conversation_id;
    // Unchanged: nothing written.
    let before = w.count(t::TEMPLATE_REGISTERED).await;
    w.sync_welcome(&w.ctx()).await;
    assert_eq!(w.count(t::TEMPLATE_REGISTERED).await, before);

    w.app
        .sync_templates(&w.ctx(), BusinessAccountId::new(ACCOUNT), vec![])
        .await
        .unwrap();
    let error = w
        .app
        .send_template(&w.ctx(), conversation, None, welcome("Ada"))
        .await
        .unwrap_err();
    assert!(matches!(
        domain_error(error),
        palaver_domain::Error::Template(TemplateError::NotApproved {
            status: TemplateStatus::Disabled,
            ..
        })
    ));
    // Listed again: approved again.
    w.app
        .sync_templates(
            &w.ctx(),
            BusinessAccountId::new(ACCOUNT),
            vec![welcome_template()],
        )
        .await
        .unwrap();
    w.app
        .send_template(&w.ctx(), conversation, None, welcome("Ada"))
        .await
        .unwrap();

    let twice = vec![welcome_template(), SyncedTemplate { ..welcome_template() }];
    let error = w
        .app
        .sync_templates(&w.ctx(), BusinessAccountId::new(ACCOUNT), twice)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                field: "templates",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_settings_name_the_field() {
    let w = World::new().await;
    let settings = ChannelSettings {
        offer_whatsapp_switch: true,
        show_reply_times_in_office_hours: false,
        ..ChannelSettings::default()
    };
    let error = w
        .app
        .update_channel_settings(&w.ctx(), settings)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                field: "settings",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_on_whatsapp_then_the_customer_redeems_the_token() {
    let w = World::new().await;
    let messenger = MessengerConversationId::new("msgr-42");
    // The automatic offer needs the toggle; the teammate's does not.
    let error = w
        .app
        .offer_switch(&w.ctx(), messenger.clone(), None)
        .await
        .unwrap_err();
    assert!(matches!(
        domain_error(error),
        palaver_domain::Error::SwitchUnavailable(_)
    ));
    let offer = w
        .app
        .continue_on_whatsapp(&w.ctx(), messenger, None)
        .await
        .unwrap()
        .value;
    assert!(
        offer.link.starts_with("https://wa.me/442079460000?text="),
        "{}",
        offer.link
    );
    assert!(offer.qr_svg.contains("<svg"));
    assert!(offer.qr_png.starts_with(b"\x89PNG"));
    // The token is a secret: a UUID v4 (122 random bits), never a
    // time-ordered id like the command's other generated ids.
    let token = uuid::Uuid::parse_str(offer.token.as_str()).unwrap();
    assert_eq!(token.get_version_num(), 4, "{token}");

    let inbound = w
        .inbound("447700900123", "wamid.1", &switch_message_text(&offer.token))
        .await
        .unwrap();
    assert_eq!(w.count(t::WHATSAPP_SWITCH_COMPLETED).await, 1);
    let view = w
        .app
        .conversation(w.workspace, inbound.value.conversation_id, Some(inbound.position))
        .await
        .unwrap();
    assert_eq!(view.messages.len(), 1);

    // The same token from another customer is just text.
    w.inbound("447700900999", "wamid.2", &switch_message_text(&offer.token))
        .await
        .unwrap();
    assert_eq!(w.count(t::WHATSAPP_SWITCH_COMPLETED).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_queue_recipients_now_or_on_their_event() {
    let w = World::new().await;
    let ada = w
        .app
        .create_contact(
            &w.ctx(),
            NewContact {
                kind: ContactKind::User,
                name: "Ada".into(),
                phone_numbers: vec!["+447700900123".into()],
                wa_id: None,
                external_user_id: None,
            },
        )
        .await
        .unwrap()
        .value;
    let now = w
        .app
        .create_campaign(
            &w.ctx(),
            NewCampaign {
                phone_number_id: w.number.clone(),
                template: welcome("Ada"),
                recipients: vec![ada],
                trigger: CampaignTrigger::Immediately,
            },
        )
        .await
        .unwrap()
        .value;
    let status = w.app.campaign_status(w.workspace, now).await.unwrap();
    assert_eq!(status.state, CampaignState::Launched);
    assert!(matches!(
        status.recipients[0].state,
        RecipientState::Queued { .. }
    ));

    let on_event = w
        .app
        .create_campaign(
            &w.ctx(),
            NewCampaign {
                phone_number_id: w.number.clone(),
                template: welcome("Ada"),
                recipients: vec![],
                trigger: CampaignTrigger::OnEvent {
                    event_name: "tag_added:vip".into(),
                },
            },
        )
        .await
        .unwrap()
        .value;
    w.app
        .trigger_event(&w.ctx(), "tag_added:other", ada)
        .await
        .unwrap();
    assert!(
        w.app
            .campaign_status(w.workspace, on_event)
            .await
            .unwrap()
            .recipients
            .is_empty()
    );
    w.app.trigger_event(&w.ctx(), "tag_added:vip", ada).await.unwrap();
    let status = w.app.campaign_status(w.workspace, on_event).await.unwrap();
    assert_eq!(status.recipients.len(), 1);
    assert_eq!(status.recipients[0].contact_id, ada);

    w.app.cancel_campaign(&w.ctx(), on_event).await.unwrap();
    assert_eq!(
        w.app.campaign_status(w.workspace, on_event).await.unwrap().state,
        CampaignState::Cancelled
    );

    let mut bad = welcome("Ada");
    bad.body_parameters.clear();
    let error = w
        .app
        .create_campaign(
            &w.ctx(),
            NewCampaign {
                phone_number_id: w.number.clone(),
                template: bad,
                recipients: vec![ada],
                trigger: CampaignTrigger::Immediately,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        domain_error(error),
        palaver_domain::Error::Template(TemplateError::ParameterCount { .. })
    ));
}
