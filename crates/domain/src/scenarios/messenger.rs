//! Messenger to WhatsApp: offers, links, QR codes, redemption.

use uuid::Uuid;

use super::fixtures::*;
use crate::Error;
use crate::channel::ChannelSettings;
use crate::ids::{Actor, ConversationId, MessengerConversationId, ThreadId, WaMessageId};
use crate::messenger::{
    SWITCH_TOKEN_LIFETIME, SwitchCommand, SwitchEvent, SwitchToken, WhatsAppSwitch, qr_png, qr_svg,
    switch_message_text, whatsapp_link,
};
use crate::phone::PhoneNumber;
use crate::testing::given;

fn token() -> SwitchToken {
    SwitchToken::from_uuid(Uuid::from_u128(0xfeed))
}

fn number() -> PhoneNumber {
    PhoneNumber::parse("+447700900000", None).unwrap()
}

fn settings(toggle: bool, reply_times: bool) -> ChannelSettings {
    ChannelSettings {
        offer_whatsapp_switch: toggle,
        show_reply_times_in_office_hours: reply_times,
        ..ChannelSettings::default()
    }
}

fn offer(settings: ChannelSettings, by: Actor, number: Option<PhoneNumber>) -> SwitchCommand {
    SwitchCommand::Offer {
        token: token(),
        workspace_id: workspace(),
        messenger_conversation_id: MessengerConversationId::new("msgr-1"),
        settings,
        business_phone_number: number,
        offered_by: by,
    }
}

fn offered(by: Actor) -> SwitchEvent {
    SwitchEvent::Offered {
        token: token(),
        workspace_id: workspace(),
        messenger_conversation_id: MessengerConversationId::new("msgr-1"),
        business_phone_number: number(),
        link: whatsapp_link(&number(), &switch_message_text(&token())),
        offered_by: by,
        at: t(0),
        expires_at: t(0) + SWITCH_TOKEN_LIFETIME,
    }
}

#[test]
fn an_automatic_offer_needs_the_toggle_and_reply_times() {
    given::<WhatsAppSwitch>([])
        .when(offer(settings(false, true), Actor::System, Some(number())), t(0))
        .then_error(Error::SwitchUnavailable("the switch toggle is off"));
    given::<WhatsAppSwitch>([])
        .when(offer(settings(true, false), Actor::System, Some(number())), t(0))
        .then_error(Error::SwitchUnavailable(
            "reply times during office hours are not shown",
        ));
    let state = given::<WhatsAppSwitch>([])
        .when(offer(settings(true, true), Actor::System, Some(number())), t(0))
        .then([offered(Actor::System)]);
    let link = state.link().unwrap();
    assert!(link.starts_with("https://wa.me/447700900000?text="));
    assert!(link.contains(token().as_str()));
    // The QR code of the link, both ways.
    assert!(qr_svg(link).unwrap().contains("<svg"));
    assert!(qr_png(link).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn a_teammate_can_send_continue_on_whatsapp_when_a_number_is_connected() {
    given::<WhatsAppSwitch>([])
        .when(offer(settings(false, false), teammate(), Some(number())), t(0))
        .then([offered(teammate())]);
    given::<WhatsAppSwitch>([])
        .when(offer(settings(true, true), teammate(), None), t(0))
        .then_error(Error::SwitchUnavailable("no WhatsApp number is connected"));
    given::<WhatsAppSwitch>([offered(teammate())])
        .when(offer(settings(true, true), teammate(), Some(number())), t(1))
        .then_nothing();
}

fn thread(n: u128) -> ThreadId {
    ThreadId::from_uuid(Uuid::from_u128(n))
}

fn redeem(thread_id: ThreadId) -> SwitchCommand {
    SwitchCommand::Redeem {
        thread_id,
        contact_id: contact(),
        conversation_id: ConversationId::from_uuid(Uuid::from_u128(8)),
        wa_message_id: WaMessageId::new("wamid.switch"),
    }
}

fn completed(at: i64) -> SwitchEvent {
    SwitchEvent::Completed {
        token: token(),
        messenger_conversation_id: MessengerConversationId::new("msgr-1"),
        thread_id: thread(1),
        contact_id: contact(),
        conversation_id: ConversationId::from_uuid(Uuid::from_u128(8)),
        wa_message_id: WaMessageId::new("wamid.switch"),
        at: t(at),
    }
}

#[test]
fn a_whatsapp_message_with_the_token_links_the_conversations() {
    assert_eq!(
        SwitchToken::find_in(&switch_message_text(&token())),
        Some(token())
    );
    given::<WhatsAppSwitch>([offered(Actor::System)])
        .when(redeem(thread(1)), t(HOUR))
        .then([completed(HOUR)]);
    given::<WhatsAppSwitch>([offered(Actor::System), completed(HOUR)])
        .when(redeem(thread(1)), t(HOUR + 1))
        .then_nothing();
    given::<WhatsAppSwitch>([offered(Actor::System), completed(HOUR)])
        .when(redeem(thread(2)), t(HOUR + 1))
        .then_error(Error::SwitchTokenUsed);
}

#[test]
fn an_unknown_or_expired_token_is_just_text() {
    given::<WhatsAppSwitch>([])
        .when(redeem(thread(1)), t(0))
        .then_error(Error::UnknownSwitchToken);
    let expiry = SWITCH_TOKEN_LIFETIME.num_seconds();
    given::<WhatsAppSwitch>([offered(Actor::System)])
        .when(redeem(thread(1)), t(expiry))
        .then_error(Error::SwitchTokenExpired {
            expired_at: t(expiry),
        });
    given::<WhatsAppSwitch>([offered(Actor::System)])
        .when(redeem(thread(1)), t(expiry - 1))
        .then([completed(expiry - 1)]);
}
