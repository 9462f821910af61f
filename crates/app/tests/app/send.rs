//! Every command and query future is `Send`, so gRPC handlers can await
//! them on a multi-threaded runtime. Compile-time only.

use std::future::Future;

use palaver_app::{App, CommandContext, DeliveryTarget, NewCampaign, NewContact};
use palaver_domain::campaign::CampaignTrigger;
use palaver_domain::channel::ChannelSettings;
use palaver_domain::contact::ContactKind;
use palaver_domain::delivery::{DeliveryProgress, DeliveryUpdate};
use palaver_domain::ids::*;
use palaver_domain::message::Reply;
use palaver_projections::queries::InboxQuery;
use uuid::Uuid;

use crate::harness::{t0, text_message, welcome};

fn send<F: Future + Send>(_: F) {}

#[allow(dead_code)]
fn every_future_is_send(app: &App, ctx: &CommandContext) {
    let conversation = ConversationId::from_uuid(Uuid::nil());
    let contact = ContactId::from_uuid(Uuid::nil());
    let campaign = CampaignId::from_uuid(Uuid::nil());
    let number = PhoneNumberId::new("1");
    let account = BusinessAccountId::new("1");
    send(app.connect_number(ctx, number.clone(), "+1", account.clone()));
    send(app.disconnect_number(ctx, number.clone()));
    send(app.update_channel_settings(ctx, ChannelSettings::default()));
    send(app.sync_templates(ctx, account, vec![]));
    send(app.record_inbound(
        ctx,
        number.clone(),
        WaId::new("1"),
        "x",
        text_message("w", "t", t0()),
    ));
    send(app.send_reply(ctx, conversation, None, Reply::Text { body: "x".into() }));
    send(app.send_template(ctx, conversation, None, welcome("x")));
    send(app.start_conversation(ctx, contact, number.clone(), welcome("x"), None));
    send(app.close(ctx, conversation));
    send(app.reopen(ctx, conversation));
    send(app.snooze(ctx, conversation, t0()));
    send(app.unsnooze(ctx, conversation));
    send(app.assign(ctx, conversation, None));
    send(app.record_accepted(
        ctx,
        conversation,
        MessageId::from_uuid(Uuid::nil()),
        WaMessageId::new("w"),
    ));
    let update = DeliveryUpdate::Progress {
        progress: DeliveryProgress::Sent,
        at: t0(),
    };
    send(app.record_delivery_status(ctx, DeliveryTarget::WhatsApp(WaMessageId::new("w")), update));
    send(app.offer_switch(ctx, MessengerConversationId::new("m"), None));
    send(app.continue_on_whatsapp(ctx, MessengerConversationId::new("m"), Some(number.clone())));
    send(app.create_contact(
        ctx,
        NewContact {
            kind: ContactKind::User,
            name: "x".into(),
            phone_numbers: vec![],
            wa_id: None,
            external_user_id: None,
        },
    ));
    send(app.add_contact_phone(ctx, contact, "+1"));
    send(app.convert_to_user(ctx, contact, "e"));
    send(app.merge_contacts(ctx, contact, contact));
    send(app.create_campaign(
        ctx,
        NewCampaign {
            phone_number_id: number.clone(),
            template: welcome("x"),
            recipients: vec![],
            trigger: CampaignTrigger::Immediately,
        },
    ));
    send(app.launch_campaign(ctx, campaign));
    send(app.cancel_campaign(ctx, campaign));
    send(app.trigger_event(ctx, "e", contact));
    send(app.campaign_status(ctx.workspace_id, campaign));
    send(app.inbox(InboxQuery::new(Uuid::nil()), None));
    send(app.conversation(ctx.workspace_id, conversation, None));
    send(app.window(ctx.workspace_id, ThreadId::from_uuid(Uuid::nil()), None));
    send(app.contact(ctx.workspace_id, contact, None));
    send(app.contacts_by_phone(ctx.workspace_id, "+1", None));
    send(app.workspace_of_number(&number));
}
