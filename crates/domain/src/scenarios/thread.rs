//! Thread: routing of inbound messages, duplicates, the quiet period, the
//! window measured from WhatsApp's timestamp, outbound starts.

use uuid::Uuid;

use super::fixtures::*;
use crate::channel::{QuietPeriod, QuietPeriodUnit};
use crate::conversation::{ConversationLifecycle, ConversationStatus};
use crate::ids::{ConversationId, MessageId, PhoneNumberId, ThreadId, WaId, WaMessageId};
use crate::testing::given;
use crate::thread::{ConversationOrigin, InboundRouting, Thread, ThreadCommand, ThreadEvent};
use crate::window::CustomerCareWindow;
use crate::{Aggregate, Error};

fn thread_id() -> ThreadId {
    identity().thread_id()
}

fn conv(sequence: u32) -> ConversationId {
    ConversationId::derive(thread_id(), sequence)
}

fn receive(wamid: &str, sent_at: i64, current: Option<ConversationLifecycle>) -> ThreadCommand {
    ThreadCommand::ReceiveInbound {
        identity: identity(),
        wa_message_id: WaMessageId::new(wamid),
        sent_at: t(sent_at),
        current,
        quiet_period: QuietPeriod::new(2, QuietPeriodUnit::Hours).unwrap(),
        origin: ConversationOrigin::Inbound,
    }
}

fn started(at: i64) -> ThreadEvent {
    ThreadEvent::Started {
        thread_id: thread_id(),
        identity: identity(),
        at: t(at),
    }
}

fn conversation_started(
    sequence: u32,
    origin: ConversationOrigin,
    request_id: Option<MessageId>,
    at: i64,
) -> ThreadEvent {
    ThreadEvent::ConversationStarted {
        thread_id: thread_id(),
        conversation_id: conv(sequence),
        sequence,
        origin,
        request_id,
        at: t(at),
    }
}

fn accepted(
    wamid: &str,
    sent_at: i64,
    received_at: i64,
    sequence: u32,
    routing: InboundRouting,
) -> ThreadEvent {
    ThreadEvent::CustomerMessageAccepted {
        thread_id: thread_id(),
        wa_message_id: WaMessageId::new(wamid),
        sent_at: t(sent_at),
        received_at: t(received_at),
        conversation_id: conv(sequence),
        routing,
    }
}

fn history() -> Vec<ThreadEvent> {
    vec![
        started(0),
        conversation_started(1, ConversationOrigin::Inbound, None, 0),
        accepted("m1", 0, 0, 1, InboundRouting::Started),
    ]
}

fn status(sequence: u32, status: ConversationStatus) -> Option<ConversationLifecycle> {
    Some(ConversationLifecycle {
        conversation_id: conv(sequence),
        status,
    })
}

#[test]
fn a_first_message_starts_the_thread_and_a_conversation() {
    given::<Thread>([])
        .when(receive("m1", 0, None), t(0))
        .then(history());
}

#[test]
fn the_same_whatsapp_id_twice_is_one_message() {
    given::<Thread>(history())
        .when(receive("m1", 0, status(1, ConversationStatus::Open)), t(5))
        .then_nothing();
}

#[test]
fn a_message_joins_the_open_or_snoozed_conversation() {
    for current in [
        ConversationStatus::Open,
        ConversationStatus::Snoozed { until: t(DAY) },
    ] {
        given::<Thread>(history())
            .when(receive("m2", 60, status(1, current)), t(61))
            .then([accepted("m2", 60, 61, 1, InboundRouting::Joined)]);
    }
}

#[test]
fn a_conversation_whose_stream_is_not_written_yet_counts_as_open() {
    given::<Thread>(history())
        .when(receive("m2", 60, None), t(61))
        .then([accepted("m2", 60, 61, 1, InboundRouting::Joined)]);
}

#[test]
fn within_the_quiet_period_a_message_reopens_the_closed_conversation() {
    let closed = status(1, ConversationStatus::Closed { at: t(100) });
    // One second before the 2-hour edge.
    let sent = 100 + 2 * HOUR - 1;
    given::<Thread>(history())
        .when(receive("m2", sent, closed), t(sent))
        .then([accepted("m2", sent, sent, 1, InboundRouting::Reopened)]);
}

#[test]
fn at_the_quiet_period_edge_a_message_starts_a_new_conversation() {
    for sent in [100 + 2 * HOUR, 100 + 2 * HOUR + 1] {
        let closed = status(1, ConversationStatus::Closed { at: t(100) });
        given::<Thread>(history())
            .when(receive("m2", sent, closed), t(sent))
            .then([
                conversation_started(2, ConversationOrigin::Inbound, None, sent),
                accepted("m2", sent, sent, 2, InboundRouting::Started),
            ]);
    }
}

#[test]
fn the_quiet_period_is_measured_to_the_whatsapp_timestamp() {
    // Sent just inside the period, delivered by the webhook well after it.
    let closed = status(1, ConversationStatus::Closed { at: t(100) });
    let sent = 100 + 2 * HOUR - 10;
    given::<Thread>(history())
        .when(receive("m2", sent, closed), t(100 + 5 * HOUR))
        .then([accepted("m2", sent, 100 + 5 * HOUR, 1, InboundRouting::Reopened)]);
}

#[test]
fn the_window_is_measured_from_the_whatsapp_timestamp_not_receipt() {
    // Sent at 0, received an hour later: the window closes at 24h, not 25h.
    let state = given::<Thread>([]).when(receive("m1", 0, None), t(HOUR)).then([
        started(HOUR),
        conversation_started(1, ConversationOrigin::Inbound, None, HOUR),
        accepted("m1", 0, HOUR, 1, InboundRouting::Started),
    ]);
    assert_eq!(state.window().closes_at(), Some(t(DAY)));
    assert_eq!(state.window(), CustomerCareWindow::from_message(t(0)));
}

#[test]
fn a_late_webhook_for_an_older_message_does_not_shorten_the_window() {
    let mut events = history();
    events.push(accepted("m3", 500, 500, 1, InboundRouting::Joined));
    let state = given::<Thread>(events)
        .when(receive("m2", 200, status(1, ConversationStatus::Open)), t(600))
        .then([accepted("m2", 200, 600, 1, InboundRouting::Joined)]);
    assert_eq!(state.window().last_customer_message_at(), Some(t(500)));
}

#[test]
fn a_stale_view_of_another_conversation_is_refused() {
    let stale = Some(ConversationLifecycle {
        conversation_id: ConversationId::from_uuid(Uuid::from_u128(99)),
        status: ConversationStatus::Open,
    });
    given::<Thread>(history())
        .when(receive("m2", 10, stale), t(10))
        .then_error(Error::StaleConversation {
            given: ConversationId::from_uuid(Uuid::from_u128(99)),
        });
}

#[test]
fn a_message_for_another_customer_is_refused() {
    let mut other = identity();
    other.customer_wa_id = WaId::new("15555550100");
    given::<Thread>(history())
        .when(
            ThreadCommand::ReceiveInbound {
                identity: other,
                wa_message_id: WaMessageId::new("x"),
                sent_at: t(1),
                current: None,
                quiet_period: QuietPeriod::default(),
                origin: ConversationOrigin::Inbound,
            },
            t(1),
        )
        .then_error(Error::WrongStream("another business number or customer"));
}

#[test]
fn two_simultaneous_first_messages_name_the_same_stream_and_conversation() {
    // Both webhook handlers derive the same thread id, decide from an empty
    // stream, and try to append at "no stream": the store lets one win. The
    // loser reloads and its message joins the winner's conversation.
    let a = Thread::default().decide(receive("m1", 0, None), t(0)).unwrap();
    let b = Thread::default().decide(receive("m2", 1, None), t(1)).unwrap();
    let id_of = |events: &[ThreadEvent]| match &events[1] {
        ThreadEvent::ConversationStarted { conversation_id, .. } => *conversation_id,
        other => panic!("{other:?}"),
    };
    assert_eq!(id_of(&a), id_of(&b));
    assert_eq!(
        ThreadId::derive(&PhoneNumberId::new("1065550001"), &WaId::new("447700900123")),
        thread_id()
    );
    given::<Thread>(a)
        .when(receive("m2", 1, None), t(2))
        .then([accepted("m2", 1, 2, 1, InboundRouting::Joined)]);
}

fn start_outbound(request: u128, current: Option<ConversationLifecycle>) -> ThreadCommand {
    ThreadCommand::StartOutboundConversation {
        identity: identity(),
        request_id: MessageId::from_uuid(Uuid::from_u128(request)),
        origin: ConversationOrigin::Inbox,
        current,
    }
}

#[test]
fn starting_from_the_inbox_creates_the_thread_and_a_conversation() {
    let request = Some(MessageId::from_uuid(Uuid::from_u128(7)));
    let events = vec![
        started(0),
        conversation_started(1, ConversationOrigin::Inbox, request, 0),
    ];
    given::<Thread>([])
        .when(start_outbound(7, None), t(0))
        .then(events.clone());
    // A retry of the same start is a no-op.
    given::<Thread>(events)
        .when(start_outbound(7, status(1, ConversationStatus::Open)), t(5))
        .then_nothing();
}

#[test]
fn starting_from_the_inbox_while_a_conversation_is_open_is_refused() {
    given::<Thread>(history())
        .when(start_outbound(7, status(1, ConversationStatus::Open)), t(5))
        .then_error(Error::ConversationStillOpen { current: conv(1) });
}

#[test]
fn starting_from_the_inbox_after_closing_starts_the_next_conversation() {
    given::<Thread>(history())
        .when(
            start_outbound(7, status(1, ConversationStatus::Closed { at: t(3) })),
            t(5),
        )
        .then([conversation_started(
            2,
            ConversationOrigin::Inbox,
            Some(MessageId::from_uuid(Uuid::from_u128(7))),
            5,
        )]);
}

proptest::proptest! {
    /// Through the aggregate: whatever order customer messages arrive in,
    /// the thread's window is open at t iff one of them lies in
    /// (t - 24h, t].
    #[test]
    fn the_threads_window_is_open_iff_a_message_lies_in_the_last_24_hours(
        sent in proptest::collection::vec(0i64..4 * DAY, 1..10),
        after in 0i64..2 * DAY,
    ) {
        let state = sent.iter().enumerate().fold(Thread::default(), |state, (i, &s)| {
            let events = state
                .decide(receive(&format!("m{i}"), s, None), t(s))
                .unwrap();
            events.iter().fold(state, |st, e| st.evolve(e))
        });
        let now = sent.iter().max().unwrap() + after;
        let expected = sent.iter().any(|&s| now - DAY < s && s <= now);
        proptest::prop_assert_eq!(state.window().is_open_at(t(now)), expected);
    }
}
