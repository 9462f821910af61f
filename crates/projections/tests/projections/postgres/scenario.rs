//! A history that touches every statement the projectors emit: two
//! workspaces, numbers and settings, contacts that gain phones, convert
//! and merge (a chain), threads and conversations, inbound messages (one
//! late), replies with every delivery outcome, assignment, snoozes,
//! closing and reopening, window warnings, and timers of every kind, one
//! of them fired.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use palaver_domain::{
    channel::{ChannelEvent, ChannelSettings, ConnectedNumber},
    codec::{self, DomainEvent},
    contact::{ContactEvent, ContactKind, MergeReason},
    conversation::{ConversationEvent, WakeReason},
    delivery::{DeliveryFailure, DeliveryProgress, DeliveryUpdate},
    ids::{
        Actor, BusinessAccountId, CampaignId, ContactId, ConversationId, MessageId, PhoneNumberId,
        TeammateId, ThreadId, TimerId, WaId, WaMessageId, WorkspaceId,
    },
    message::{InboundContent, InboundMessage, Media, OutboundContent},
    phone::PhoneNumber,
    thread::{ConversationOrigin, InboundRouting, ThreadEvent, ThreadIdentity},
    timer::{TimerAction, TimerEvent},
};
use palaver_store::{EventStore, ExpectedRevision, MemoryStore, Metadata, NewEvent, Position, StreamName};
use uuid::Uuid;

pub fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 0).unwrap()
}

/// The history, and the ids a test asks the read models about.
pub struct Scenario {
    pub store: Arc<dyn EventStore>,
    pub workspace: WorkspaceId,
    pub other_workspace: WorkspaceId,
    /// A lead merged into `bo`, who was merged into `cy`.
    pub ada: ContactId,
    pub bo: ContactId,
    pub cy: ContactId,
    /// In the other workspace.
    pub dee: ContactId,
    pub threads: Vec<ThreadId>,
    pub conversations: Vec<ConversationId>,
    pub streams: Vec<String>,
}

struct Writer {
    store: Arc<dyn EventStore>,
}

impl Writer {
    async fn append(&self, stream: &str, event: DomainEvent, at: DateTime<Utc>) -> Position {
        let encoded = codec::encode(&event);
        let new = NewEvent::new(encoded.event_type, encoded.payload, Metadata::new(at))
            .with_schema_version(encoded.schema_version);
        self.store
            .append(
                &StreamName::new(stream).unwrap(),
                ExpectedRevision::Any,
                vec![new],
            )
            .await
            .unwrap()
            .last_position
    }
}

fn contact_created(
    id: ContactId,
    workspace: WorkspaceId,
    kind: ContactKind,
    name: &str,
    phone: &str,
    wa_id: Option<&str>,
    at: DateTime<Utc>,
) -> DomainEvent {
    DomainEvent::Contact(ContactEvent::Created {
        contact_id: id,
        workspace_id: workspace,
        kind,
        name: name.to_owned(),
        phone_numbers: vec![PhoneNumber::parse(phone, None).unwrap()],
        wa_id: wa_id.map(WaId::new),
        external_user_id: None,
        by: Actor::System,
        at,
    })
}

impl Scenario {
    /// Writes the whole history into a fresh in-memory store.
    pub async fn write() -> Scenario {
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::default());
        let w = Writer {
            store: Arc::clone(&store),
        };
        let workspace = WorkspaceId::from_uuid(Uuid::from_u128(1));
        let other_workspace = WorkspaceId::from_uuid(Uuid::from_u128(2));
        let number = PhoneNumberId::new("1000");
        let other_number = PhoneNumberId::new("2000");
        let teammate = Actor::Teammate(TeammateId::new("ana"));
        let mut streams = Vec::new();

        // Numbers and settings: owners of the channel and the catalogue.
        for (ws, id, display) in [
            (workspace, &number, "+442079460001"),
            (other_workspace, &other_number, "+442079460002"),
        ] {
            let stream = format!("channel-{ws}");
            let connected = ChannelEvent::NumberConnected {
                workspace_id: ws,
                phone_number_id: id.clone(),
                number: ConnectedNumber {
                    display_phone_number: PhoneNumber::parse(display, None).unwrap(),
                    business_account_id: BusinessAccountId::new(format!("waba-{ws}")),
                },
                by: teammate.clone(),
                at: t0(),
            };
            w.append(&stream, DomainEvent::Channel(connected), t0()).await;
            streams.push(stream);
        }
        let settings = ChannelEvent::SettingsChanged {
            workspace_id: workspace,
            settings: ChannelSettings::default(),
            by: teammate.clone(),
            at: t0(),
        };
        w.append(
            &format!("channel-{workspace}"),
            DomainEvent::Channel(settings),
            t0(),
        )
        .await;

        // Contacts.
        let ada = ContactId::from_uuid(Uuid::from_u128(1001));
        let bo = ContactId::from_uuid(Uuid::from_u128(1002));
        let cy = ContactId::from_uuid(Uuid::from_u128(1003));
        let dee = ContactId::from_uuid(Uuid::from_u128(1004));
        let people = [
            (
                ada,
                workspace,
                ContactKind::Lead,
                "Ada",
                "+447700900123",
                Some("447700900123"),
            ),
            (bo, workspace, ContactKind::User, "Bo", "+442079460000", None),
            (
                cy,
                workspace,
                ContactKind::Lead,
                "Cy",
                "+441632960000",
                Some("441632960000"),
            ),
            (
                dee,
                other_workspace,
                ContactKind::Lead,
                "Dee",
                "+447700900123",
                Some("447700900123"),
            ),
        ];
        for (id, ws, kind, name, phone, wa_id) in people {
            let stream = format!("contact-{id}");
            w.append(
                &stream,
                contact_created(id, ws, kind, name, phone, wa_id, t0()),
                t0(),
            )
            .await;
            streams.push(stream);
        }
        let added = ContactEvent::PhoneAdded {
            contact_id: bo,
            phone_number: PhoneNumber::parse("+447700900999", None).unwrap(),
            at: t0(),
        };
        w.append(&format!("contact-{bo}"), DomainEvent::Contact(added), t0())
            .await;
        let converted = ContactEvent::ConvertedToUser {
            contact_id: cy,
            external_user_id: "user-42".to_owned(),
            by: teammate.clone(),
            at: t0(),
        };
        w.append(&format!("contact-{cy}"), DomainEvent::Contact(converted), t0())
            .await;

        // Threads and their first conversations.
        let mut threads = Vec::new();
        let mut conversations = Vec::new();
        for (ws, num, wa, contact) in [
            (workspace, &number, "447700900123", ada),
            (workspace, &number, "441632960000", cy),
            (workspace, &number, "447700900555", bo),
            (other_workspace, &other_number, "447700900123", dee),
        ] {
            let wa = WaId::new(wa);
            let thread = ThreadId::derive(num, &wa);
            let identity = ThreadIdentity {
                workspace_id: ws,
                business_phone_number_id: num.clone(),
                customer_wa_id: wa,
                contact_id: contact,
            };
            let thread_stream = format!("thread-{thread}");
            w.append(
                &thread_stream,
                DomainEvent::Thread(ThreadEvent::Started {
                    thread_id: thread,
                    identity,
                    at: t0(),
                }),
                t0(),
            )
            .await;
            let conversation = ConversationId::derive(thread, 1);
            let origin = if contact == bo {
                ConversationOrigin::Campaign
            } else {
                ConversationOrigin::Inbound
            };
            w.append(
                &thread_stream,
                DomainEvent::Thread(ThreadEvent::ConversationStarted {
                    thread_id: thread,
                    conversation_id: conversation,
                    sequence: 1,
                    origin,
                    request_id: None,
                    at: t0(),
                }),
                t0(),
            )
            .await;
            let conversation_stream = format!("conversation-{conversation}");
            w.append(
                &conversation_stream,
                DomainEvent::Conversation(ConversationEvent::Started {
                    conversation_id: conversation,
                    thread_id: thread,
                    contact_id: contact,
                    origin,
                    at: t0(),
                }),
                t0(),
            )
            .await;
            streams.push(thread_stream);
            streams.push(conversation_stream);
            threads.push(thread);
            conversations.push(conversation);
        }

        // Inbound messages; in the first conversation one arrives late.
        let inbound =
            |thread: ThreadId, conversation: ConversationId, wa_message: String, content, sent_at| {
                let received_at = sent_at + Duration::seconds(2);
                let accepted = ThreadEvent::CustomerMessageAccepted {
                    thread_id: thread,
                    wa_message_id: WaMessageId::new(wa_message.clone()),
                    sent_at,
                    received_at,
                    conversation_id: conversation,
                    routing: InboundRouting::Joined,
                };
                let received = ConversationEvent::MessageReceived {
                    conversation_id: conversation,
                    message: InboundMessage {
                        wa_message_id: WaMessageId::new(wa_message),
                        sent_at,
                        content,
                        context: Default::default(),
                    },
                    received_at,
                };
                (accepted, received, received_at)
            };
        let media = |id: &str| Media {
            media_id: id.into(),
            mime_type: "image/jpeg".into(),
            sha256: "abc".into(),
        };
        let messages = [
            (
                0,
                "wamid.a1",
                InboundContent::Text {
                    body: "Hello 👋".into(),
                },
                60,
            ),
            (
                0,
                "wamid.a3",
                InboundContent::Image {
                    media: media("m-1"),
                    caption: "receipt".into(),
                },
                180,
            ),
            (0, "wamid.a2", InboundContent::Text { body: "late".into() }, 120),
            (
                1,
                "wamid.c1",
                InboundContent::Text {
                    body: "hi from Cy".into(),
                },
                90,
            ),
            (
                1,
                "wamid.c2",
                InboundContent::Document {
                    media: media("m-2"),
                    file_name: "order.pdf".into(),
                    caption: String::new(),
                },
                95,
            ),
            (
                3,
                "wamid.d1",
                InboundContent::Text {
                    body: "other workspace".into(),
                },
                30,
            ),
        ];
        for (i, wa_message, content, seconds) in messages {
            let (accepted, received, at) = inbound(
                threads[i],
                conversations[i],
                wa_message.to_owned(),
                content,
                t0() + Duration::seconds(seconds),
            );
            w.append(
                &format!("thread-{}", threads[i]),
                DomainEvent::Thread(accepted),
                at,
            )
            .await;
            w.append(
                &format!("conversation-{}", conversations[i]),
                DomainEvent::Conversation(received),
                at,
            )
            .await;
        }

        // Replies in the first conversation: one read, one failed; the
        // campaign conversation gets a template-less reply that is accepted.
        let conversation_event = |i: usize, event| (format!("conversation-{}", conversations[i]), event);
        let reply_at = t0() + Duration::minutes(5);
        let first = MessageId::from_uuid(Uuid::from_u128(5001));
        let second = MessageId::from_uuid(Uuid::from_u128(5002));
        let third = MessageId::from_uuid(Uuid::from_u128(5003));
        let progress = |message_id, progress, seconds| ConversationEvent::DeliveryStatusChanged {
            conversation_id: conversations[0],
            message_id,
            update: DeliveryUpdate::Progress {
                progress,
                at: reply_at + Duration::seconds(seconds),
            },
        };
        let events = vec![
            conversation_event(
                0,
                ConversationEvent::OutboundQueued {
                    conversation_id: conversations[0],
                    message_id: first,
                    content: OutboundContent::Text {
                        body: "Hello Ada 😊".into(),
                    },
                    author: teammate.clone(),
                    at: reply_at,
                },
            ),
            conversation_event(
                0,
                ConversationEvent::OutboundQueued {
                    conversation_id: conversations[0],
                    message_id: second,
                    content: OutboundContent::Image {
                        url: "https://example.com/a.jpg".into(),
                        media_id: String::new(),
                        caption: "look".into(),
                    },
                    author: Actor::System,
                    at: reply_at + Duration::seconds(1),
                },
            ),
            conversation_event(
                0,
                ConversationEvent::OutboundAccepted {
                    conversation_id: conversations[0],
                    message_id: first,
                    wa_message_id: WaMessageId::new("wamid.out.1"),
                    at: reply_at,
                },
            ),
            conversation_event(0, progress(first, DeliveryProgress::Sent, 1)),
            conversation_event(0, progress(first, DeliveryProgress::Read, 3)),
            conversation_event(0, progress(first, DeliveryProgress::Delivered, 2)),
            conversation_event(
                0,
                ConversationEvent::DeliveryStatusChanged {
                    conversation_id: conversations[0],
                    message_id: second,
                    update: DeliveryUpdate::Failed {
                        failure: DeliveryFailure {
                            code: 131047,
                            reason: "Re-engagement message".into(),
                        },
                        at: reply_at + Duration::seconds(4),
                    },
                },
            ),
            conversation_event(0, progress(second, DeliveryProgress::Delivered, 5)),
            // A customer message after our replies: unread again.
            conversation_event(
                2,
                ConversationEvent::OutboundQueued {
                    conversation_id: conversations[2],
                    message_id: third,
                    content: OutboundContent::MacroText {
                        macro_id: "greeting".into(),
                        body: "Welcome!".into(),
                    },
                    author: Actor::Service("campaigns".into()),
                    at: reply_at,
                },
            ),
            conversation_event(
                0,
                ConversationEvent::Assigned {
                    conversation_id: conversations[0],
                    assignee: Some(TeammateId::new("bo")),
                    by: teammate.clone(),
                    at: reply_at,
                },
            ),
            conversation_event(
                1,
                ConversationEvent::Snoozed {
                    conversation_id: conversations[1],
                    until: t0() + Duration::hours(2),
                    by: teammate.clone(),
                    at: reply_at,
                },
            ),
            conversation_event(
                1,
                ConversationEvent::WindowClosingSoon {
                    conversation_id: conversations[1],
                    closes_at: t0() + Duration::hours(24) + Duration::seconds(95),
                    at: reply_at,
                },
            ),
            conversation_event(
                2,
                ConversationEvent::Closed {
                    conversation_id: conversations[2],
                    by: teammate.clone(),
                    at: reply_at,
                },
            ),
            conversation_event(
                2,
                ConversationEvent::Reopened {
                    conversation_id: conversations[2],
                    reason: WakeReason::Manual,
                    by: teammate.clone(),
                    at: reply_at,
                },
            ),
            conversation_event(
                2,
                ConversationEvent::Snoozed {
                    conversation_id: conversations[2],
                    until: t0() + Duration::hours(1),
                    by: teammate.clone(),
                    at: reply_at,
                },
            ),
            conversation_event(
                2,
                ConversationEvent::Unsnoozed {
                    conversation_id: conversations[2],
                    reason: WakeReason::SnoozeEnded,
                    by: Actor::System,
                    at: reply_at,
                },
            ),
            conversation_event(
                3,
                ConversationEvent::Closed {
                    conversation_id: conversations[3],
                    by: teammate.clone(),
                    at: reply_at,
                },
            ),
        ];
        for (stream, event) in events {
            w.append(&stream, DomainEvent::Conversation(event), reply_at)
                .await;
        }

        // Merges: Ada into Bo, then Bo into Cy.
        for (from, into, reason) in [(ada, bo, MergeReason::SamePhone), (bo, cy, MergeReason::Manual)] {
            let merged = ContactEvent::Merged {
                contact_id: from,
                into,
                reason,
                by: teammate.clone(),
                at: t0() + Duration::minutes(10),
            };
            w.append(&format!("contact-{from}"), DomainEvent::Contact(merged), t0())
                .await;
        }

        // Timers of every kind; the campaign's has fired.
        let due = t0() + Duration::hours(1);
        let timers = [
            (
                7001,
                due,
                TimerAction::LaunchCampaign {
                    campaign_id: CampaignId::from_uuid(Uuid::from_u128(8001)),
                },
            ),
            (
                7002,
                t0() + Duration::hours(2),
                TimerAction::WakeConversation {
                    conversation_id: conversations[1],
                    until: t0() + Duration::hours(2),
                },
            ),
            (
                7003,
                due,
                TimerAction::WarnWindowClosing {
                    conversation_id: conversations[0],
                    closes_at: t0() + Duration::hours(24),
                },
            ),
            (
                7004,
                due - Duration::minutes(1),
                TimerAction::ExpireUncertainSend {
                    conversation_id: conversations[0],
                    message_id: second,
                },
            ),
            (
                7005,
                due,
                TimerAction::LaunchCampaign {
                    campaign_id: CampaignId::from_uuid(Uuid::from_u128(8002)),
                },
            ),
        ];
        for (n, due_at, action) in timers {
            let timer = TimerId::from_uuid(Uuid::from_u128(n));
            let stream = format!("timer-{timer}");
            let scheduled = TimerEvent::Scheduled {
                timer_id: timer,
                workspace_id: workspace,
                due_at,
                action,
                at: t0(),
            };
            w.append(&stream, DomainEvent::Timer(scheduled), t0()).await;
            if n == 7001 {
                let fired = TimerEvent::Fired {
                    timer_id: timer,
                    at: due_at,
                };
                w.append(&stream, DomainEvent::Timer(fired), due_at).await;
            }
            streams.push(stream);
        }

        Scenario {
            store,
            workspace,
            other_workspace,
            ada,
            bo,
            cy,
            dee,
            threads,
            conversations,
            streams,
        }
    }
}
