//! Proptest strategies for every domain event, for the codec round-trip and
//! replay properties.

use chrono::{DateTime, Utc, Weekday};
use proptest::prelude::*;
use uuid::Uuid;

use crate::campaign::{CampaignEvent, CampaignTrigger};
use crate::channel::{ChannelEvent, ChannelSettings, ConnectedNumber, QuietPeriod, QuietPeriodUnit};
use crate::codec::DomainEvent;
use crate::contact::{ContactEvent, ContactKind, MergeReason};
use crate::conversation::{ConversationEvent, WakeReason};
use crate::delivery::{DeliveryFailure, DeliveryProgress, DeliveryUpdate};
use crate::ids::*;
use crate::intake::PayloadEvent;
use crate::message::{
    ContactCard, InboundContent, InboundMessage, InteractiveReplyKind, Media, MessageContext,
    OutboundContent, Referral,
};
use crate::messenger::{SwitchEvent, SwitchToken};
use crate::office_hours::{OfficeHours, OfficeInterval};
use crate::phone::{PhoneNumber, Region};
use crate::templates::{
    ComponentKind, Template, TemplateCategory, TemplateComponent, TemplateDefinition, TemplateEvent,
    TemplateSend, TemplateStatus,
};
use crate::thread::{ConversationOrigin, InboundRouting, ThreadEvent, ThreadIdentity};
use crate::timer::{TimerAction, TimerEvent};

pub fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (1_500_000_000i64..2_000_000_000, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
}

fn uuid() -> impl Strategy<Value = Uuid> {
    // A few ids, so that replayed sequences hit the same aggregates often.
    (0u128..4).prop_map(Uuid::from_u128)
}

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9 👋]{0,12}"
}

fn word() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}"
}

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        word().prop_map(|w| Actor::Teammate(TeammateId::new(w))),
        word().prop_map(Actor::Service),
        Just(Actor::System),
    ]
}

fn phone() -> impl Strategy<Value = PhoneNumber> {
    prop_oneof![Just("+447700900123"), Just("+15555550100"), Just("+33612345678")]
        .prop_map(|p| PhoneNumber::parse(p, None).unwrap())
}

fn settings() -> impl Strategy<Value = ChannelSettings> {
    (
        1u32..365,
        prop_oneof![
            Just(QuietPeriodUnit::Minutes),
            Just(QuietPeriodUnit::Hours),
            Just(QuietPeriodUnit::Days)
        ],
        any::<(bool, bool, bool)>(),
        prop_oneof![Just("UTC"), Just("Europe/London"), Just("America/New_York")],
        proptest::collection::vec((0u8..7, 0u16..720, 1u16..720), 0..3),
        prop_oneof![Just(None), Just(Some("GB")), Just(Some("US"))],
    )
        .prop_map(
            |(amount, unit, (identify, offer, reply_times), zone, intervals, region)| ChannelSettings {
                quiet_period: QuietPeriod::new(amount, unit).unwrap(),
                identify_existing_users: identify,
                offer_whatsapp_switch: offer,
                show_reply_times_in_office_hours: reply_times,
                office_hours: OfficeHours::new(
                    zone,
                    intervals
                        .into_iter()
                        .map(|(d, start, len)| OfficeInterval {
                            weekday: Weekday::try_from(d).unwrap(),
                            start_minute: start,
                            end_minute: start + len,
                        })
                        .collect(),
                )
                .unwrap(),
                default_region: region.map(|r| Region::parse(r).unwrap()),
            },
        )
}

fn channel_event() -> impl Strategy<Value = ChannelEvent> {
    prop_oneof![
        (uuid(), word(), phone(), word(), actor(), time()).prop_map(|(w, id, number, account, by, at)| {
            ChannelEvent::NumberConnected {
                workspace_id: WorkspaceId::from_uuid(w),
                phone_number_id: PhoneNumberId::new(id),
                number: ConnectedNumber {
                    display_phone_number: number,
                    business_account_id: BusinessAccountId::new(account),
                },
                by,
                at,
            }
        }),
        (uuid(), word(), actor(), time()).prop_map(|(w, id, by, at)| ChannelEvent::NumberDisconnected {
            workspace_id: WorkspaceId::from_uuid(w),
            phone_number_id: PhoneNumberId::new(id),
            by,
            at,
        }),
        (uuid(), settings(), actor(), time()).prop_map(|(w, settings, by, at)| {
            ChannelEvent::SettingsChanged {
                workspace_id: WorkspaceId::from_uuid(w),
                settings,
                by,
                at,
            }
        }),
    ]
}

fn origin() -> impl Strategy<Value = ConversationOrigin> {
    prop_oneof![
        Just(ConversationOrigin::Inbound),
        Just(ConversationOrigin::Inbox),
        Just(ConversationOrigin::Campaign),
        Just(ConversationOrigin::WhatsAppSwitch),
    ]
}

pub fn thread_event() -> impl Strategy<Value = ThreadEvent> {
    prop_oneof![
        (uuid(), uuid(), word(), word(), uuid(), time()).prop_map(|(t, w, b, c, contact, at)| {
            ThreadEvent::Started {
                thread_id: ThreadId::from_uuid(t),
                identity: ThreadIdentity {
                    workspace_id: WorkspaceId::from_uuid(w),
                    business_phone_number_id: PhoneNumberId::new(b),
                    customer_wa_id: WaId::new(c),
                    contact_id: ContactId::from_uuid(contact),
                },
                at,
            }
        }),
        (
            uuid(),
            uuid(),
            1u32..5,
            origin(),
            proptest::option::of(uuid()),
            time()
        )
            .prop_map(
                |(t, c, sequence, origin, request, at)| ThreadEvent::ConversationStarted {
                    thread_id: ThreadId::from_uuid(t),
                    conversation_id: ConversationId::from_uuid(c),
                    sequence,
                    origin,
                    request_id: request.map(MessageId::from_uuid),
                    at,
                }
            ),
        (uuid(), word(), time(), time(), uuid(), 0usize..3).prop_map(|(t, m, sent, recv, c, r)| {
            ThreadEvent::CustomerMessageAccepted {
                thread_id: ThreadId::from_uuid(t),
                wa_message_id: WaMessageId::new(m),
                sent_at: sent,
                received_at: recv,
                conversation_id: ConversationId::from_uuid(c),
                routing: [
                    InboundRouting::Joined,
                    InboundRouting::Reopened,
                    InboundRouting::Started,
                ][r],
            }
        }),
    ]
}

fn media() -> impl Strategy<Value = Media> {
    (word(), word(), word()).prop_map(|(media_id, mime_type, sha256)| Media {
        media_id,
        mime_type,
        sha256,
    })
}

fn inbound_content() -> impl Strategy<Value = InboundContent> {
    prop_oneof![
        text().prop_map(|body| InboundContent::Text { body }),
        (media(), text()).prop_map(|(media, caption)| InboundContent::Image { media, caption }),
        (media(), word(), text()).prop_map(|(media, file_name, caption)| InboundContent::Document {
            media,
            file_name,
            caption
        }),
        (media(), text()).prop_map(|(media, caption)| InboundContent::Video { media, caption }),
        (media(), text()).prop_map(|(media, caption)| InboundContent::Gif { media, caption }),
        (media(), any::<bool>()).prop_map(|(media, voice)| InboundContent::Audio { media, voice }),
        (media(), any::<bool>()).prop_map(|(media, animated)| InboundContent::Sticker { media, animated }),
        (-90.0f64..90.0, -180.0f64..180.0, text(), text()).prop_map(
            |(latitude, longitude, name, address)| {
                InboundContent::Location {
                    latitude,
                    longitude,
                    name,
                    address,
                }
            }
        ),
        proptest::collection::vec((text(), proptest::collection::vec(word(), 0..2)), 0..3).prop_map(
            |cards| {
                InboundContent::Contacts {
                    cards: cards
                        .into_iter()
                        .map(|(formatted_name, phone_numbers)| ContactCard {
                            formatted_name,
                            phone_numbers,
                        })
                        .collect(),
                }
            }
        ),
        (word(), proptest::option::of("[👍❤️😂]")).prop_map(|(target, emoji)| InboundContent::Reaction {
            target: WaMessageId::new(target),
            emoji
        }),
        (word(), text()).prop_map(|(payload, text)| InboundContent::ButtonReply { payload, text }),
        (any::<bool>(), word(), text(), text()).prop_map(|(list, id, title, description)| {
            InboundContent::InteractiveReply {
                kind: if list {
                    InteractiveReplyKind::List
                } else {
                    InteractiveReplyKind::Button
                },
                id,
                title,
                description,
            }
        }),
        (word(), text()).prop_map(|(raw_type, raw_payload)| InboundContent::Unsupported {
            raw_type,
            raw_payload
        }),
    ]
}

fn template_send() -> impl Strategy<Value = TemplateSend> {
    (
        word(),
        word(),
        proptest::collection::vec(text(), 0..2),
        proptest::collection::vec(text(), 0..3),
    )
        .prop_map(
            |(name, language, header_parameters, body_parameters)| TemplateSend {
                name,
                language,
                header_parameters,
                body_parameters,
            },
        )
}

fn outbound_content() -> impl Strategy<Value = OutboundContent> {
    prop_oneof![
        text().prop_map(|body| OutboundContent::Text { body }),
        (word(), word(), text()).prop_map(|(url, media_id, caption)| OutboundContent::Image {
            url,
            media_id,
            caption
        }),
        (word(), word(), word(), text()).prop_map(|(url, media_id, file_name, caption)| {
            OutboundContent::Document {
                url,
                media_id,
                file_name,
                caption,
            }
        }),
        (word(), text()).prop_map(|(macro_id, body)| OutboundContent::MacroText { macro_id, body }),
        template_send().prop_map(OutboundContent::Template),
    ]
}

fn update() -> impl Strategy<Value = DeliveryUpdate> {
    prop_oneof![
        (0usize..4, time()).prop_map(|(p, at)| DeliveryUpdate::Progress {
            progress: [
                DeliveryProgress::Queued,
                DeliveryProgress::Sent,
                DeliveryProgress::Delivered,
                DeliveryProgress::Read
            ][p],
            at
        }),
        (any::<i32>(), text(), time()).prop_map(|(code, reason, at)| DeliveryUpdate::Failed {
            failure: DeliveryFailure { code, reason },
            at
        }),
    ]
}

fn message_context() -> impl Strategy<Value = MessageContext> {
    let referral = (text(), word(), word(), text(), text(), word(), word()).prop_map(
        |(source_url, source_type, source_id, headline, body, media_type, ctwa_clid)| Referral {
            source_url,
            source_type,
            source_id,
            headline,
            body,
            media_type,
            image_url: String::new(),
            video_url: String::new(),
            thumbnail_url: String::new(),
            ctwa_clid,
        },
    );
    (
        proptest::option::of(word().prop_filter("non-empty", |w| !w.is_empty())),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(referral),
    )
        .prop_map(
            |(reply_to, forwarded, frequently_forwarded, referral)| MessageContext {
                reply_to: reply_to.map(WaMessageId::new),
                forwarded,
                frequently_forwarded,
                referral: referral.map(Box::new),
            },
        )
}

fn wake() -> impl Strategy<Value = WakeReason> {
    prop_oneof![
        Just(WakeReason::CustomerMessage),
        Just(WakeReason::Manual),
        Just(WakeReason::SnoozeEnded)
    ]
}

pub fn conversation_event() -> impl Strategy<Value = ConversationEvent> {
    use ConversationEvent as E;
    let id = || uuid().prop_map(ConversationId::from_uuid);
    prop_oneof![
        (id(), uuid(), uuid(), origin(), time()).prop_map(|(conversation_id, t, c, origin, at)| E::Started {
            conversation_id,
            thread_id: ThreadId::from_uuid(t),
            contact_id: ContactId::from_uuid(c),
            origin,
            at
        }),
        (id(), word(), time(), inbound_content(), message_context(), time()).prop_map(
            |(conversation_id, m, sent_at, content, context, received_at)| {
                E::MessageReceived {
                    conversation_id,
                    message: InboundMessage {
                        wa_message_id: WaMessageId::new(m),
                        sent_at,
                        content,
                        context,
                    },
                    received_at,
                }
            }
        ),
        (id(), uuid(), outbound_content(), actor(), time()).prop_map(
            |(conversation_id, m, content, author, at)| {
                E::OutboundQueued {
                    conversation_id,
                    message_id: MessageId::from_uuid(m),
                    content,
                    author,
                    at,
                }
            }
        ),
        (id(), uuid(), word(), time()).prop_map(|(conversation_id, m, wa, at)| E::OutboundAccepted {
            conversation_id,
            message_id: MessageId::from_uuid(m),
            wa_message_id: WaMessageId::new(wa),
            at
        }),
        (id(), uuid(), update()).prop_map(|(conversation_id, m, update)| E::DeliveryStatusChanged {
            conversation_id,
            message_id: MessageId::from_uuid(m),
            update
        }),
        (id(), proptest::option::of(word()), actor(), time()).prop_map(|(conversation_id, a, by, at)| {
            E::Assigned {
                conversation_id,
                assignee: a.map(TeammateId::new),
                by,
                at,
            }
        }),
        (id(), time(), actor(), time()).prop_map(|(conversation_id, until, by, at)| E::Snoozed {
            conversation_id,
            until,
            by,
            at
        }),
        (id(), wake(), actor(), time()).prop_map(|(conversation_id, reason, by, at)| E::Unsnoozed {
            conversation_id,
            reason,
            by,
            at
        }),
        (id(), actor(), time()).prop_map(|(conversation_id, by, at)| E::Closed {
            conversation_id,
            by,
            at
        }),
        (id(), wake(), actor(), time()).prop_map(|(conversation_id, reason, by, at)| E::Reopened {
            conversation_id,
            reason,
            by,
            at
        }),
        (id(), uuid(), 1..10u32, time()).prop_map(|(conversation_id, m, attempt, at)| E::SendAttempted {
            conversation_id,
            message_id: MessageId::from_uuid(m),
            attempt,
            at
        }),
        (id(), time(), time()).prop_map(|(conversation_id, closes_at, at)| E::WindowClosingSoon {
            conversation_id,
            closes_at,
            at
        }),
    ]
}

fn payload_event() -> impl Strategy<Value = PayloadEvent> {
    use PayloadEvent as E;
    let id = || uuid().prop_map(PayloadId::from_uuid);
    prop_oneof![
        (id(), text(), time()).prop_map(|(payload_id, body, at)| E::Received {
            payload_id,
            body: body.into_bytes(),
            at
        }),
        (id(), any::<u32>(), time()).prop_map(|(payload_id, items, at)| E::Processed {
            payload_id,
            items,
            at
        }),
        (id(), proptest::collection::vec(word(), 0..3), time()).prop_map(|(payload_id, numbers, at)| {
            E::Parked {
                payload_id,
                phone_number_ids: numbers.into_iter().map(PhoneNumberId::new).collect(),
                at,
            }
        }),
        (id(), text(), time()).prop_map(|(payload_id, error, at)| E::Failed {
            payload_id,
            error,
            at
        }),
    ]
}

fn timer_event() -> impl Strategy<Value = TimerEvent> {
    let action = prop_oneof![
        uuid().prop_map(|c| TimerAction::LaunchCampaign {
            campaign_id: CampaignId::from_uuid(c)
        }),
        (uuid(), time()).prop_map(|(c, until)| TimerAction::WakeConversation {
            conversation_id: ConversationId::from_uuid(c),
            until
        }),
        (uuid(), time()).prop_map(|(c, closes_at)| TimerAction::WarnWindowClosing {
            conversation_id: ConversationId::from_uuid(c),
            closes_at
        }),
        (uuid(), uuid()).prop_map(|(c, m)| TimerAction::ExpireUncertainSend {
            conversation_id: ConversationId::from_uuid(c),
            message_id: MessageId::from_uuid(m)
        }),
    ];
    prop_oneof![
        (uuid(), uuid(), time(), action, time()).prop_map(|(t, w, due_at, action, at)| {
            TimerEvent::Scheduled {
                timer_id: TimerId::from_uuid(t),
                workspace_id: WorkspaceId::from_uuid(w),
                due_at,
                action,
                at,
            }
        }),
        (uuid(), time()).prop_map(|(t, at)| TimerEvent::Fired {
            timer_id: TimerId::from_uuid(t),
            at
        }),
    ]
}

fn contact_event() -> impl Strategy<Value = ContactEvent> {
    let id = || uuid().prop_map(ContactId::from_uuid);
    prop_oneof![
        (
            id(),
            uuid(),
            any::<bool>(),
            text(),
            proptest::collection::vec(phone(), 0..3),
            proptest::option::of(word()),
            proptest::option::of(word()),
            actor(),
            time()
        )
            .prop_map(
                |(contact_id, w, lead, name, phone_numbers, wa, external, by, at)| {
                    ContactEvent::Created {
                        contact_id,
                        workspace_id: WorkspaceId::from_uuid(w),
                        kind: if lead {
                            ContactKind::Lead
                        } else {
                            ContactKind::User
                        },
                        name,
                        phone_numbers,
                        wa_id: wa.map(WaId::new),
                        external_user_id: external,
                        by,
                        at,
                    }
                }
            ),
        (id(), phone(), time()).prop_map(|(contact_id, phone_number, at)| ContactEvent::PhoneAdded {
            contact_id,
            phone_number,
            at
        }),
        (id(), text(), actor(), time()).prop_map(|(contact_id, external_user_id, by, at)| {
            ContactEvent::ConvertedToUser {
                contact_id,
                external_user_id,
                by,
                at,
            }
        }),
        (id(), id(), any::<bool>(), actor(), time()).prop_map(|(contact_id, into, same, by, at)| {
            ContactEvent::Merged {
                contact_id,
                into,
                reason: if same {
                    MergeReason::SamePhone
                } else {
                    MergeReason::Manual
                },
                by,
                at,
            }
        }),
    ]
}

fn template_status() -> impl Strategy<Value = TemplateStatus> {
    prop_oneof![
        Just(TemplateStatus::Pending),
        Just(TemplateStatus::Approved),
        Just(TemplateStatus::Paused),
        Just(TemplateStatus::Disabled),
        Just(TemplateStatus::Rejected),
    ]
}

fn template_event() -> impl Strategy<Value = TemplateEvent> {
    let component = (0usize..4, word(), text()).prop_map(|(k, format, text)| TemplateComponent {
        kind: [
            ComponentKind::Header,
            ComponentKind::Body,
            ComponentKind::Footer,
            ComponentKind::Buttons,
        ][k],
        format,
        text,
    });
    prop_oneof![
        (
            word(),
            word(),
            word(),
            0usize..3,
            proptest::collection::vec(component, 0..4),
            0u32..4,
            0u32..4,
            template_status(),
            time()
        )
            .prop_map(
                |(account, name, language, category, components, header, body, status, at)| {
                    TemplateEvent::Registered {
                        business_account_id: BusinessAccountId::new(account),
                        template: Template {
                            definition: TemplateDefinition {
                                name,
                                language,
                                category: [
                                    TemplateCategory::Marketing,
                                    TemplateCategory::Utility,
                                    TemplateCategory::Authentication,
                                ][category],
                                components,
                            },
                            header_parameter_count: header,
                            body_parameter_count: body,
                            status,
                        },
                        at,
                    }
                }
            ),
        (word(), word(), word(), template_status(), text(), time()).prop_map(
            |(account, name, language, status, reason, at)| TemplateEvent::StatusChanged {
                business_account_id: BusinessAccountId::new(account),
                name,
                language,
                status,
                reason,
                at,
            }
        ),
    ]
}

fn campaign_event() -> impl Strategy<Value = CampaignEvent> {
    let id = || uuid().prop_map(CampaignId::from_uuid);
    let trigger = prop_oneof![
        Just(CampaignTrigger::Immediately),
        time().prop_map(CampaignTrigger::ScheduledAt),
        word().prop_map(|event_name| CampaignTrigger::OnEvent { event_name }),
    ];
    prop_oneof![
        (
            id(),
            uuid(),
            word(),
            template_send(),
            proptest::collection::vec(uuid(), 0..3),
            trigger,
            actor(),
            time()
        )
            .prop_map(
                |(campaign_id, w, b, template, r, trigger, by, at)| CampaignEvent::Created {
                    campaign_id,
                    workspace_id: WorkspaceId::from_uuid(w),
                    business_phone_number_id: PhoneNumberId::new(b),
                    template,
                    recipients: r.into_iter().map(ContactId::from_uuid).collect(),
                    trigger,
                    by,
                    at,
                }
            ),
        (id(), time()).prop_map(|(campaign_id, at)| CampaignEvent::Launched { campaign_id, at }),
        (id(), uuid(), uuid(), proptest::option::of(word()), time()).prop_map(
            |(campaign_id, c, m, trigger_event, at)| {
                CampaignEvent::RecipientQueued {
                    campaign_id,
                    contact_id: ContactId::from_uuid(c),
                    message_id: MessageId::from_uuid(m),
                    trigger_event,
                    at,
                }
            }
        ),
        (id(), uuid(), update()).prop_map(|(campaign_id, c, update)| CampaignEvent::RecipientStatusChanged {
            campaign_id,
            contact_id: ContactId::from_uuid(c),
            update
        }),
        (id(), actor(), time()).prop_map(|(campaign_id, by, at)| CampaignEvent::Cancelled {
            campaign_id,
            by,
            at
        }),
    ]
}

fn switch_event() -> impl Strategy<Value = SwitchEvent> {
    let token = || uuid().prop_map(SwitchToken::from_uuid);
    prop_oneof![
        (token(), uuid(), word(), phone(), text(), actor(), time(), time()).prop_map(
            |(token, w, m, business_phone_number, link, offered_by, at, expires_at)| SwitchEvent::Offered {
                token,
                workspace_id: WorkspaceId::from_uuid(w),
                messenger_conversation_id: MessengerConversationId::new(m),
                business_phone_number,
                link,
                offered_by,
                at,
                expires_at,
            }
        ),
        (token(), word(), uuid(), uuid(), uuid(), word(), time()).prop_map(
            |(token, m, t, c, conv, wa, at)| {
                SwitchEvent::Completed {
                    token,
                    messenger_conversation_id: MessengerConversationId::new(m),
                    thread_id: ThreadId::from_uuid(t),
                    contact_id: ContactId::from_uuid(c),
                    conversation_id: ConversationId::from_uuid(conv),
                    wa_message_id: WaMessageId::new(wa),
                    at,
                }
            }
        ),
    ]
}

pub fn domain_event() -> impl Strategy<Value = DomainEvent> {
    prop_oneof![
        channel_event().prop_map(DomainEvent::Channel),
        thread_event().prop_map(DomainEvent::Thread),
        conversation_event().prop_map(DomainEvent::Conversation),
        contact_event().prop_map(DomainEvent::Contact),
        template_event().prop_map(DomainEvent::Template),
        campaign_event().prop_map(DomainEvent::Campaign),
        switch_event().prop_map(DomainEvent::Switch),
        payload_event().prop_map(DomainEvent::Payload),
        timer_event().prop_map(DomainEvent::Timer),
    ]
}
