//! Conversation: inbound kinds, idempotency, wake-ups, the 24-hour rule for
//! replies, reply kinds and macros, templates, delivery states, status.

use proptest::prelude::*;
use uuid::Uuid;

use super::fixtures::*;
use crate::conversation::{
    Conversation, ConversationCommand as C, ConversationEvent as E, ConversationStatus, MessageRef,
    WakeReason,
};
use crate::delivery::{DeliveryFailure, DeliveryProgress, DeliveryState, DeliveryUpdate};
use crate::ids::{Actor, ConversationId, MessageId, TeammateId, WaMessageId};
use crate::macros::{Macro, MacroPart};
use crate::message::{
    ContactCard, InboundContent, InboundMessage, InteractiveReplyKind, Media, OutboundContent, Reply,
};
use crate::testing::given;
use crate::thread::ConversationOrigin;
use crate::window::CustomerCareWindow;
use crate::{Aggregate, Error};

fn conv() -> ConversationId {
    ConversationId::derive(identity().thread_id(), 1)
}

fn msg(n: u128) -> MessageId {
    MessageId::from_uuid(Uuid::from_u128(n))
}

fn inbound(wamid: &str, sent_at: i64, content: InboundContent) -> InboundMessage {
    InboundMessage {
        wa_message_id: WaMessageId::new(wamid),
        sent_at: t(sent_at),
        content,
        context: Default::default(),
    }
}

fn text(body: &str) -> InboundContent {
    InboundContent::Text { body: body.into() }
}

fn receive(message: InboundMessage) -> C {
    C::ReceiveMessage {
        conversation_id: conv(),
        thread_id: identity().thread_id(),
        contact_id: contact(),
        message,
    }
}

fn started() -> E {
    E::Started {
        conversation_id: conv(),
        thread_id: identity().thread_id(),
        contact_id: contact(),
        origin: ConversationOrigin::Inbound,
        at: t(0),
    }
}

fn received(message: InboundMessage, at: i64) -> E {
    E::MessageReceived {
        conversation_id: conv(),
        message,
        received_at: t(at),
    }
}

/// A conversation where the customer wrote "hi" at 0.
fn history() -> Vec<E> {
    vec![started(), received(inbound("m1", 0, text("hi")), 0)]
}

fn window() -> CustomerCareWindow {
    CustomerCareWindow::from_message(t(0))
}

fn reply(id: u128, reply: Reply) -> C {
    C::SendReply {
        message_id: msg(id),
        reply,
        window: window(),
        author: teammate(),
    }
}

fn text_reply(body: &str) -> Reply {
    Reply::Text { body: body.into() }
}

fn queued(id: u128, content: OutboundContent, at: i64) -> E {
    E::OutboundQueued {
        conversation_id: conv(),
        message_id: msg(id),
        content,
        author: teammate(),
        at: t(at),
    }
}

fn media(id: &str) -> Media {
    Media {
        media_id: id.into(),
        mime_type: "application/octet-stream".into(),
        sha256: "abc".into(),
    }
}

#[test]
fn a_first_message_starts_the_conversation_and_a_duplicate_is_ignored() {
    given::<Conversation>([])
        .when(receive(inbound("m1", 0, text("hi"))), t(0))
        .then(history());
    given::<Conversation>(history())
        .when(receive(inbound("m1", 0, text("hi"))), t(9))
        .then_nothing();
}

#[test]
fn every_inbound_kind_is_recorded_and_unknown_kinds_are_never_dropped() {
    let kinds = vec![
        text("Hello 👋"),
        InboundContent::Image {
            media: media("i"),
            caption: "pic".into(),
        },
        InboundContent::Document {
            media: media("d"),
            file_name: "invoice.pdf".into(),
            caption: String::new(),
        },
        InboundContent::Video {
            media: media("v"),
            caption: String::new(),
        },
        InboundContent::Gif {
            media: media("g"),
            caption: String::new(),
        },
        InboundContent::Audio {
            media: media("a"),
            voice: false,
        },
        InboundContent::Audio {
            media: media("vn"),
            voice: true,
        },
        InboundContent::Sticker {
            media: media("s"),
            animated: true,
        },
        InboundContent::Location {
            latitude: 51.5,
            longitude: -0.12,
            name: "Office".into(),
            address: "1 Road".into(),
        },
        InboundContent::Contacts {
            cards: vec![ContactCard {
                formatted_name: "Bo".into(),
                phone_numbers: vec!["+44 7700 900999".into()],
            }],
        },
        InboundContent::Reaction {
            target: WaMessageId::new("out-1"),
            emoji: Some("👍".into()),
        },
        InboundContent::Reaction {
            target: WaMessageId::new("out-1"),
            emoji: None,
        },
        InboundContent::ButtonReply {
            payload: "YES".into(),
            text: "Yes".into(),
        },
        InboundContent::InteractiveReply {
            kind: InteractiveReplyKind::List,
            id: "row-2".into(),
            title: "Tuesday".into(),
            description: "Afternoon".into(),
        },
        InboundContent::Unsupported {
            raw_type: "order".into(),
            raw_payload: r#"{"type":"order"}"#.into(),
        },
    ];
    let mut state = Conversation::replay(&history());
    for (i, content) in kinds.into_iter().enumerate() {
        let message = inbound(&format!("k{i}"), 10, content);
        let events = state.decide(receive(message.clone()), t(10)).unwrap();
        assert_eq!(events, vec![received(message, 10)]);
        state = events.iter().fold(state, |s, e| s.evolve(e));
    }
    assert_eq!(state.messages().len(), 16);
}

#[test]
fn a_customer_message_reopens_a_closed_conversation_and_wakes_a_snoozed_one() {
    let mut closed = history();
    closed.push(E::Closed {
        conversation_id: conv(),
        by: teammate(),
        at: t(5),
    });
    let message = inbound("m2", 10, text("again"));
    given::<Conversation>(closed)
        .when(receive(message.clone()), t(10))
        .then([
            E::Reopened {
                conversation_id: conv(),
                reason: WakeReason::CustomerMessage,
                by: Actor::System,
                at: t(10),
            },
            received(message.clone(), 10),
        ]);

    let mut snoozed = history();
    snoozed.push(E::Snoozed {
        conversation_id: conv(),
        until: t(DAY),
        by: teammate(),
        at: t(5),
    });
    given::<Conversation>(snoozed)
        .when(receive(message.clone()), t(10))
        .then([
            E::Unsnoozed {
                conversation_id: conv(),
                reason: WakeReason::CustomerMessage,
                by: Actor::System,
                at: t(10),
            },
            received(message, 10),
        ]);
}

#[test]
fn a_reply_inside_the_window_is_accepted_up_to_one_second_before_24_hours() {
    given::<Conversation>(history())
        .when(reply(1, text_reply("On it 🙂")), t(DAY - 1))
        .then([queued(
            1,
            OutboundContent::Text {
                body: "On it 🙂".into(),
            },
            DAY - 1,
        )]);
}

#[test]
fn a_reply_at_exactly_24_hours_or_later_needs_a_template() {
    for at in [DAY, DAY + 1] {
        given::<Conversation>(history())
            .when(reply(1, text_reply("late")), t(at))
            .then_error(Error::TemplateRequired {
                window_closed_at: Some(t(DAY)),
            });
    }
}

#[test]
fn a_reply_when_the_customer_never_wrote_needs_a_template() {
    let started_by_us = vec![E::Started {
        conversation_id: conv(),
        thread_id: identity().thread_id(),
        contact_id: contact(),
        origin: ConversationOrigin::Inbox,
        at: t(0),
    }];
    given::<Conversation>(started_by_us)
        .when(
            C::SendReply {
                message_id: msg(1),
                reply: text_reply("hi"),
                window: CustomerCareWindow::default(),
                author: teammate(),
            },
            t(1),
        )
        .then_error(Error::TemplateRequired {
            window_closed_at: None,
        });
}

#[test]
fn templates_are_allowed_outside_the_window() {
    given::<Conversation>(history())
        .when(
            C::SendTemplate {
                message_id: msg(1),
                template: checked_order_update(),
                author: teammate(),
            },
            t(3 * DAY),
        )
        .then([queued(1, OutboundContent::Template(order_update()), 3 * DAY)]);
}

#[test]
fn reply_kinds_image_and_attachment_are_sent_as_media_by_link_or_uploaded_id() {
    given::<Conversation>(history())
        .when(
            reply(
                1,
                Reply::Image {
                    url: "https://cdn.example/a.png".into(),
                    media_id: String::new(),
                    caption: "see".into(),
                },
            ),
            t(5),
        )
        .then([queued(
            1,
            OutboundContent::Image {
                url: "https://cdn.example/a.png".into(),
                media_id: String::new(),
                caption: "see".into(),
            },
            5,
        )]);
    given::<Conversation>(history())
        .when(
            reply(
                2,
                Reply::Attachment {
                    url: String::new(),
                    media_id: "1037543291543636".into(),
                    file_name: "f.pdf".into(),
                    caption: String::new(),
                },
            ),
            t(5),
        )
        .then([queued(
            2,
            OutboundContent::Document {
                url: String::new(),
                media_id: "1037543291543636".into(),
                file_name: "f.pdf".into(),
                caption: String::new(),
            },
            5,
        )]);
}

#[test]
fn a_macro_is_sent_as_text_with_unsupported_parts_as_links() {
    let m = Macro {
        id: "welcome".into(),
        parts: vec![
            MacroPart::Text("Welcome!".into()),
            MacroPart::Gif {
                url: "https://g.example/w.gif".into(),
            },
            MacroPart::Article {
                title: "Getting started".into(),
                url: "https://help.example/start".into(),
            },
        ],
    };
    given::<Conversation>(history())
        .when(reply(1, Reply::Macro(m)), t(5))
        .then([queued(
            1,
            OutboundContent::MacroText {
                macro_id: "welcome".into(),
                body: "Welcome!\n\nhttps://g.example/w.gif\n\nGetting started: https://help.example/start"
                    .into(),
            },
            5,
        )]);
}

#[test]
fn empty_text_and_non_https_media_are_refused() {
    given::<Conversation>(history())
        .when(reply(1, text_reply("  ")), t(5))
        .then_error(Error::InvalidReply("the text is empty"));
    given::<Conversation>(history())
        .when(
            reply(
                1,
                Reply::Image {
                    url: "http://x/a.png".into(),
                    media_id: String::new(),
                    caption: String::new(),
                },
            ),
            t(5),
        )
        .then_error(Error::InvalidReply("media must be at an https:// URL"));
    given::<Conversation>(history())
        .when(
            reply(
                1,
                Reply::Image {
                    url: "https://x/a.png".into(),
                    media_id: "1037543291543636".into(),
                    caption: String::new(),
                },
            ),
            t(5),
        )
        .then_error(Error::InvalidReply("media has both a URL and a media id"));
}

#[test]
fn a_retried_reply_is_a_no_op_even_after_the_window_closed() {
    let mut events = history();
    events.push(queued(1, OutboundContent::Text { body: "ok".into() }, 5));
    given::<Conversation>(events.clone())
        .when(reply(1, text_reply("ok")), t(2 * DAY))
        .then_nothing();
    given::<Conversation>(events)
        .when(reply(1, text_reply("different")), t(10))
        .then_error(Error::MessageIdReused(msg(1)));
}

#[test]
fn a_conversation_can_only_be_started_by_us_with_a_template() {
    // No free-form command can start a conversation...
    given::<Conversation>([])
        .when(reply(1, text_reply("hello")), t(0))
        .then_error(Error::NotFound("conversation"));
    // ...only a checked template can.
    let start = C::StartWithTemplate {
        conversation_id: conv(),
        thread_id: identity().thread_id(),
        contact_id: contact(),
        origin: ConversationOrigin::Inbox,
        message_id: msg(1),
        template: checked_order_update(),
        author: teammate(),
    };
    let events = vec![
        E::Started {
            conversation_id: conv(),
            thread_id: identity().thread_id(),
            contact_id: contact(),
            origin: ConversationOrigin::Inbox,
            at: t(0),
        },
        queued(1, OutboundContent::Template(order_update()), 0),
    ];
    given::<Conversation>([])
        .when(start.clone(), t(0))
        .then(events.clone());
    given::<Conversation>(events).when(start, t(1)).then_nothing();
}

fn sent_history() -> Vec<E> {
    let mut events = history();
    events.push(queued(1, OutboundContent::Text { body: "ok".into() }, 5));
    events.push(E::OutboundAccepted {
        conversation_id: conv(),
        message_id: msg(1),
        wa_message_id: WaMessageId::new("out-1"),
        at: t(6),
    });
    events
}

fn progress(p: DeliveryProgress, at: i64) -> DeliveryUpdate {
    DeliveryUpdate::Progress {
        progress: p,
        at: t(at),
    }
}

fn status(update: DeliveryUpdate) -> C {
    C::RecordDeliveryStatus {
        message: MessageRef::WhatsApp(WaMessageId::new("out-1")),
        update,
    }
}

fn changed(update: DeliveryUpdate) -> E {
    E::DeliveryStatusChanged {
        conversation_id: conv(),
        message_id: msg(1),
        update,
    }
}

#[test]
fn delivery_moves_forward_and_a_late_delivered_after_read_changes_nothing() {
    let mut events = sent_history();
    events.push(changed(progress(DeliveryProgress::Read, 8)));
    given::<Conversation>(events.clone())
        .when(status(progress(DeliveryProgress::Delivered, 7)), t(9))
        .then_nothing();
    let state = given::<Conversation>(sent_history())
        .when(status(progress(DeliveryProgress::Sent, 7)), t(9))
        .then([changed(progress(DeliveryProgress::Sent, 7))]);
    assert_eq!(
        state.outbound(msg(1)).unwrap().delivery.progress,
        DeliveryProgress::Sent
    );
}

#[test]
fn failed_is_recorded_whenever_it_comes() {
    let failure = DeliveryUpdate::Failed {
        failure: DeliveryFailure {
            code: 131_026,
            reason: "undeliverable".into(),
        },
        at: t(9),
    };
    let mut events = sent_history();
    events.push(changed(progress(DeliveryProgress::Read, 8)));
    let state = given::<Conversation>(events.clone())
        .when(status(failure.clone()), t(10))
        .then([changed(failure.clone())]);
    assert!(state.outbound(msg(1)).unwrap().delivery.has_failed());
    events.push(changed(failure.clone()));
    given::<Conversation>(events)
        .when(status(failure), t(11))
        .then_nothing();
}

#[test]
fn a_failure_before_whatsapp_answered_is_recorded_by_our_id() {
    let mut events = history();
    events.push(queued(1, OutboundContent::Text { body: "ok".into() }, 5));
    let failure = DeliveryUpdate::Failed {
        failure: DeliveryFailure {
            code: 0,
            reason: "timeout".into(),
        },
        at: t(6),
    };
    given::<Conversation>(events)
        .when(
            C::RecordDeliveryStatus {
                message: MessageRef::Ours(msg(1)),
                update: failure.clone(),
            },
            t(6),
        )
        .then([changed(failure)]);
}

#[test]
fn a_status_for_an_unknown_whatsapp_id_is_a_retryable_error() {
    given::<Conversation>(history())
        .when(status(progress(DeliveryProgress::Sent, 7)), t(7))
        .then_error(Error::UnknownWaMessage(WaMessageId::new("out-1")));
}

#[test]
fn assign_snooze_close_and_reopen() {
    let alice = Some(TeammateId::new("alice"));
    let state = given::<Conversation>(history())
        .when(
            C::Assign {
                assignee: alice.clone(),
                by: teammate(),
            },
            t(1),
        )
        .then([E::Assigned {
            conversation_id: conv(),
            assignee: alice.clone(),
            by: teammate(),
            at: t(1),
        }]);
    assert_eq!(state.assignee(), alice.as_ref());

    given::<Conversation>(history())
        .when(
            C::Snooze {
                until: t(1),
                by: teammate(),
            },
            t(1),
        )
        .then_error(Error::SnoozeInPast { until: t(1) });
    let state = given::<Conversation>(history())
        .when(
            C::Snooze {
                until: t(HOUR),
                by: teammate(),
            },
            t(1),
        )
        .then([E::Snoozed {
            conversation_id: conv(),
            until: t(HOUR),
            by: teammate(),
            at: t(1),
        }]);
    assert_eq!(
        state.status_at(t(HOUR - 1)),
        Some(ConversationStatus::Snoozed { until: t(HOUR) })
    );
    assert_eq!(state.status_at(t(HOUR)), Some(ConversationStatus::Open));

    let mut closed = history();
    closed.push(E::Closed {
        conversation_id: conv(),
        by: teammate(),
        at: t(5),
    });
    given::<Conversation>(closed.clone())
        .when(C::Close { by: teammate() }, t(6))
        .then_nothing();
    given::<Conversation>(closed.clone())
        .when(
            C::Snooze {
                until: t(HOUR),
                by: teammate(),
            },
            t(6),
        )
        .then_error(Error::InvalidTransition {
            action: "snooze",
            status: "closed",
        });
    given::<Conversation>(closed)
        .when(C::Reopen { by: teammate() }, t(7))
        .then([E::Reopened {
            conversation_id: conv(),
            reason: WakeReason::Manual,
            by: teammate(),
            at: t(7),
        }]);
}

fn any_update() -> impl Strategy<Value = DeliveryUpdate> {
    prop_oneof![
        (1usize..4, 0i64..50).prop_map(|(p, s)| progress(
            [
                DeliveryProgress::Queued,
                DeliveryProgress::Sent,
                DeliveryProgress::Delivered,
                DeliveryProgress::Read
            ][p],
            s
        )),
        (0i32..3, 0i64..50).prop_map(|(code, s)| DeliveryUpdate::Failed {
            failure: DeliveryFailure {
                code,
                reason: format!("r{code}")
            },
            at: t(s),
        }),
    ]
}

proptest! {
    /// Out-of-order status webhooks: whatever order they arrive in, the
    /// recorded delivery state ends the same.
    #[test]
    fn out_of_order_statuses_end_in_the_same_state(updates in proptest::collection::vec(any_update(), 0..8)) {
        let run = |updates: &[DeliveryUpdate]| {
            updates.iter().fold(Conversation::replay(&sent_history()), |state, u| {
                let events = state.decide(status(u.clone()), t(100)).unwrap();
                events.iter().fold(state, |s, e| s.evolve(e))
            })
        };
        let forward = run(&updates);
        let mut reversed = updates.clone();
        reversed.reverse();
        let backward = run(&reversed);
        let final_state = |c: &Conversation| {
            let d: DeliveryState = c.outbound(msg(1)).unwrap().delivery.clone();
            let mut codes: Vec<i32> = d.failures.iter().map(|f| f.code).collect();
            codes.sort_unstable();
            (d.progress, codes)
        };
        prop_assert_eq!(final_state(&forward), final_state(&backward));
    }
}

// --- delivery attempts and the window-closing warning -----------------------

fn text_out(body: &str) -> OutboundContent {
    OutboundContent::Text { body: body.into() }
}

#[test]
fn send_attempts_are_counted_until_the_message_is_settled() {
    let mut past = history();
    past.push(queued(1, text_out("hello"), 10));
    let attempt = |expected_attempts| C::RecordSendAttempt {
        message_id: msg(1),
        expected_attempts,
    };
    let first = E::SendAttempted {
        conversation_id: conv(),
        message_id: msg(1),
        attempt: 1,
        at: t(11),
    };
    let state = given::<Conversation>(past.clone())
        .when(attempt(0), t(11))
        .then([first.clone()]);
    assert_eq!(state.outbound(msg(1)).unwrap().attempts, 1);

    // Fencing: a second worker that also saw no attempts is refused, so
    // attempt 1 is recorded (and sent) once; the next attempt names 1.
    past.push(first);
    given::<Conversation>(past.clone())
        .when(attempt(0), t(12))
        .then_error(Error::InvalidTransition {
            action: "send",
            status: "being sent",
        });
    given::<Conversation>(past.clone())
        .when(attempt(1), t(12))
        .then([E::SendAttempted {
            conversation_id: conv(),
            message_id: msg(1),
            attempt: 2,
            at: t(12),
        }]);

    past.push(E::OutboundAccepted {
        conversation_id: conv(),
        message_id: msg(1),
        wa_message_id: WaMessageId::new("wamid.1"),
        at: t(12),
    });
    given::<Conversation>(past)
        .when(attempt(1), t(13))
        .then_error(Error::InvalidTransition {
            action: "send",
            status: "settled",
        });
}

#[test]
fn window_warning_only_while_the_customer_waits_in_that_window() {
    let closes_at = t(0) + crate::window::WINDOW_LENGTH;
    let warn = || C::WarnWindowClosing { closes_at };
    let warned = E::WindowClosingSoon {
        conversation_id: conv(),
        closes_at,
        at: t(100),
    };
    // The customer's "hi" at 0 is unanswered: warn, once.
    let mut past = history();
    given::<Conversation>(past.clone())
        .when(warn(), t(100))
        .then([warned.clone()]);
    past.push(warned);
    assert!(
        given::<Conversation>(past)
            .when(warn(), t(101))
            .events()
            .is_empty()
    );
    // A reply after it: nothing to warn about.
    let mut answered = history();
    answered.push(queued(1, text_out("on it"), 50));
    assert!(
        given::<Conversation>(answered)
            .when(warn(), t(100))
            .events()
            .is_empty()
    );
    // A newer customer message moved the window: this timer is stale.
    let mut moved = history();
    moved.push(received(inbound("m2", 60, text("still there?")), 60));
    assert!(
        given::<Conversation>(moved)
            .when(warn(), t(100))
            .events()
            .is_empty()
    );
}

#[test]
fn a_snooze_ends_with_an_event_unless_it_was_changed() {
    let snoozed = |until: i64| E::Snoozed {
        conversation_id: conv(),
        until: t(until),
        by: teammate(),
        at: t(10),
    };
    let mut past = history();
    past.push(snoozed(3600));
    given::<Conversation>(past.clone())
        .when(C::Wake { until: t(3600) }, t(3600))
        .then([E::Unsnoozed {
            conversation_id: conv(),
            reason: WakeReason::SnoozeEnded,
            by: Actor::System,
            at: t(3600),
        }]);
    // Re-snoozed until later: the old timer is stale.
    past.push(snoozed(7200));
    assert!(
        given::<Conversation>(past)
            .when(C::Wake { until: t(3600) }, t(3600))
            .events()
            .is_empty()
    );
}
