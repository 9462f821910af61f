//! A conversation (stream `conversation-<id>`): its status (open, snoozed
//! until a time, closed), assignee, and messages in both directions with the
//! delivery state of each outbound one.
//!
//! Which conversation an inbound message belongs to is the thread's
//! decision; the conversation records it and wakes up if it was closed or
//! snoozed. Outbound rules: a free-form reply needs the 24-hour window open
//! (the application layer passes the thread's window in); a template needs
//! a [`CheckedTemplateSend`], so it was checked against the catalogue; a
//! conversation we start ourselves starts with a template, because nothing
//! else could be expressed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::aggregate::Aggregate;
use crate::delivery::{DeliveryState, DeliveryUpdate};
use crate::ids::{Actor, ContactId, ConversationId, MessageId, TeammateId, ThreadId, WaMessageId};
use crate::message::{InboundMessage, OutboundContent, OutboundMessage, Reply};
use crate::stream::StreamName;
use crate::templates::CheckedTemplateSend;
use crate::thread::ConversationOrigin;
use crate::window::{CustomerCareWindow, WINDOW_LENGTH};
use crate::{Error, Result};

/// Status of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConversationStatus {
    /// Waiting for the team.
    Open,
    /// Put aside until a time; comes back then, or when the customer writes.
    Snoozed {
        /// When it comes back.
        until: DateTime<Utc>,
    },
    /// Done.
    Closed {
        /// When it was closed: the quiet period is measured from here.
        at: DateTime<Utc>,
    },
}

impl ConversationStatus {
    fn name(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Snoozed { .. } => "snoozed",
            Self::Closed { .. } => "closed",
        }
    }
}

/// A conversation's id and status, as a thread needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConversationLifecycle {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its status.
    pub status: ConversationStatus,
}

/// Why a snoozed or closed conversation came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WakeReason {
    /// The customer wrote.
    CustomerMessage,
    /// A teammate or service did it.
    Manual,
    /// The snooze's time came.
    SnoozeEnded,
}

/// Which outbound message a status report is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MessageRef {
    /// By Palaver's id (send failures before WhatsApp answered).
    Ours(MessageId),
    /// By WhatsApp's id (status webhooks).
    WhatsApp(WaMessageId),
}

/// Commands on a conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum ConversationCommand {
    /// Record a customer message the thread routed here. Starts the
    /// conversation if its stream is empty.
    ReceiveMessage {
        /// This conversation (from the thread's decision).
        conversation_id: ConversationId,
        /// Its thread.
        thread_id: ThreadId,
        /// The customer.
        contact_id: ContactId,
        /// The message.
        message: InboundMessage,
    },
    /// Start a conversation from our side with a template.
    StartWithTemplate {
        /// This conversation (from the thread's decision).
        conversation_id: ConversationId,
        /// Its thread.
        thread_id: ThreadId,
        /// The customer.
        contact_id: ContactId,
        /// Inbox or campaign.
        origin: ConversationOrigin,
        /// Id of the template message.
        message_id: MessageId,
        /// The checked template.
        template: CheckedTemplateSend,
        /// Who.
        author: Actor,
    },
    /// A free-form reply.
    SendReply {
        /// Id of the new message; a retry reuses it.
        message_id: MessageId,
        /// What to send.
        reply: Reply,
        /// The thread's window, as loaded.
        window: CustomerCareWindow,
        /// Who.
        author: Actor,
    },
    /// A template into an existing conversation (allowed in or out of the
    /// window).
    SendTemplate {
        /// Id of the new message; a retry reuses it.
        message_id: MessageId,
        /// The checked template.
        template: CheckedTemplateSend,
        /// Who.
        author: Actor,
    },
    /// The Cloud API accepted a message and gave it an id.
    RecordAccepted {
        /// Palaver's id.
        message_id: MessageId,
        /// WhatsApp's id.
        wa_message_id: WaMessageId,
    },
    /// The delivery worker is about to send `message_id` to the Cloud API.
    /// Refused once the message is settled (accepted or failed), and
    /// unless exactly `expected_attempts` attempts are recorded: that
    /// fences the attempt, so two workers (or a retried handler) that read
    /// the same count cannot both record, and then send, attempt N.
    RecordSendAttempt {
        /// The message.
        message_id: MessageId,
        /// The attempts the worker saw before this one.
        expected_attempts: u32,
    },
    /// Warn that the window closing at `closes_at` closes soon, if the
    /// conversation is still waiting on us in that window.
    WarnWindowClosing {
        /// The customer's last message + 24 hours, as scheduled.
        closes_at: DateTime<Utc>,
    },
    /// A delivery status report.
    RecordDeliveryStatus {
        /// Which message.
        message: MessageRef,
        /// The report.
        update: DeliveryUpdate,
    },
    /// Assign, or unassign with `None`.
    Assign {
        /// New assignee.
        assignee: Option<TeammateId>,
        /// Who.
        by: Actor,
    },
    /// Snooze until a time.
    Snooze {
        /// When it comes back.
        until: DateTime<Utc>,
        /// Who.
        by: Actor,
    },
    /// End a snooze early.
    Unsnooze {
        /// Who.
        by: Actor,
    },
    /// The snooze ending at `until` is over (the timer service). A no-op
    /// unless that snooze is still the recorded one: a re-snooze or a
    /// customer message since made it stale.
    Wake {
        /// The snooze's end, as scheduled.
        until: DateTime<Utc>,
    },
    /// Close.
    Close {
        /// Who.
        by: Actor,
    },
    /// Reopen a closed conversation.
    Reopen {
        /// Who.
        by: Actor,
    },
}

/// Events of a conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum ConversationEvent {
    /// First event.
    Started {
        /// This conversation.
        conversation_id: ConversationId,
        /// Its thread.
        thread_id: ThreadId,
        /// The customer.
        contact_id: ContactId,
        /// How it started.
        origin: ConversationOrigin,
        /// When.
        at: DateTime<Utc>,
    },
    /// A customer message.
    MessageReceived {
        /// This conversation.
        conversation_id: ConversationId,
        /// The message.
        message: InboundMessage,
        /// When Palaver received it.
        received_at: DateTime<Utc>,
    },
    /// An outbound message was accepted for sending.
    OutboundQueued {
        /// This conversation.
        conversation_id: ConversationId,
        /// Palaver's id.
        message_id: MessageId,
        /// What.
        content: OutboundContent,
        /// Who.
        author: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The delivery worker is handing it to the Cloud API.
    SendAttempted {
        /// This conversation.
        conversation_id: ConversationId,
        /// Palaver's id.
        message_id: MessageId,
        /// 1 for the first attempt.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// The window closes soon and the customer is waiting for an answer.
    WindowClosingSoon {
        /// This conversation.
        conversation_id: ConversationId,
        /// When the window closes.
        closes_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The Cloud API accepted it.
    OutboundAccepted {
        /// This conversation.
        conversation_id: ConversationId,
        /// Palaver's id.
        message_id: MessageId,
        /// WhatsApp's id.
        wa_message_id: WaMessageId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Delivery moved forward or failed.
    DeliveryStatusChanged {
        /// This conversation.
        conversation_id: ConversationId,
        /// Palaver's id.
        message_id: MessageId,
        /// The report.
        update: DeliveryUpdate,
    },
    /// Assignee changed.
    Assigned {
        /// This conversation.
        conversation_id: ConversationId,
        /// New assignee, `None` when unassigned.
        assignee: Option<TeammateId>,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Snoozed.
    Snoozed {
        /// This conversation.
        conversation_id: ConversationId,
        /// Until.
        until: DateTime<Utc>,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Snooze ended early.
    Unsnoozed {
        /// This conversation.
        conversation_id: ConversationId,
        /// Why.
        reason: WakeReason,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Closed.
    Closed {
        /// This conversation.
        conversation_id: ConversationId,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Reopened.
    Reopened {
        /// This conversation.
        conversation_id: ConversationId,
        /// Why.
        reason: WakeReason,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// One message in a conversation's timeline.
#[derive(Clone, Debug, PartialEq)]
pub enum ConversationMessage {
    /// From the customer.
    Inbound(InboundMessage),
    /// To the customer.
    Outbound(OutboundMessage),
}

/// Facts every conversation has once started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    id: ConversationId,
    thread_id: ThreadId,
    contact_id: ContactId,
    origin: ConversationOrigin,
}

/// A conversation's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conversation {
    header: Option<Header>,
    status: Option<ConversationStatus>,
    assignee: Option<TeammateId>,
    messages: Vec<ConversationMessage>,
    /// Inbound WhatsApp ids, to make a redelivered webhook a no-op.
    inbound_ids: BTreeSet<WaMessageId>,
    /// Position of each outbound message in `messages`.
    outbound_index: BTreeMap<MessageId, usize>,
    /// WhatsApp id to Palaver id, for status webhooks.
    wa_ids: BTreeMap<WaMessageId, MessageId>,
    /// The window close already warned about, so a warning is written once.
    window_warned: Option<DateTime<Utc>>,
}

impl Conversation {
    /// The stream of a conversation.
    pub fn stream_name(id: ConversationId) -> StreamName {
        StreamName::new(Self::CATEGORY, &id.to_string()).expect("a UUID is a valid id")
    }

    /// This conversation's id, once started.
    pub fn id(&self) -> Option<ConversationId> {
        self.header.map(|h| h.id)
    }

    /// Its thread, once started.
    pub fn thread_id(&self) -> Option<ThreadId> {
        self.header.map(|h| h.thread_id)
    }

    /// Its contact, once started.
    pub fn contact_id(&self) -> Option<ContactId> {
        self.header.map(|h| h.contact_id)
    }

    /// How it started.
    pub fn origin(&self) -> Option<ConversationOrigin> {
        self.header.map(|h| h.origin)
    }

    /// Status as recorded (a snooze whose time has passed still reads
    /// `Snoozed`; see [`Conversation::status_at`]).
    pub fn status(&self) -> Option<ConversationStatus> {
        self.status
    }

    /// Status at `now`: a snooze whose time has passed is open.
    pub fn status_at(&self, now: DateTime<Utc>) -> Option<ConversationStatus> {
        self.status.map(|status| match status {
            ConversationStatus::Snoozed { until } if until <= now => ConversationStatus::Open,
            other => other,
        })
    }

    /// Id and status at `now`, to pass to the thread's decision.
    pub fn lifecycle(&self, now: DateTime<Utc>) -> Option<ConversationLifecycle> {
        Some(ConversationLifecycle {
            conversation_id: self.id()?,
            status: self.status_at(now)?,
        })
    }

    /// The assignee.
    pub fn assignee(&self) -> Option<&TeammateId> {
        self.assignee.as_ref()
    }

    /// The timeline, in recorded order.
    pub fn messages(&self) -> &[ConversationMessage] {
        &self.messages
    }

    /// An outbound message by id.
    pub fn outbound(&self, id: MessageId) -> Option<&OutboundMessage> {
        match self.messages.get(*self.outbound_index.get(&id)?) {
            Some(ConversationMessage::Outbound(m)) => Some(m),
            _ => None,
        }
    }

    fn require_started(&self) -> Result<Header> {
        self.header.ok_or(Error::NotFound("conversation"))
    }

    /// Events queueing `content` as `message_id`, or none if that message
    /// was already queued with the same content (a retry).
    fn queue(
        &self,
        id: ConversationId,
        message_id: MessageId,
        content: OutboundContent,
        author: Actor,
        now: DateTime<Utc>,
    ) -> Result<Vec<ConversationEvent>> {
        if let Some(existing) = self.outbound(message_id) {
            return if existing.content == content {
                Ok(vec![])
            } else {
                Err(Error::MessageIdReused(message_id))
            };
        }
        Ok(vec![ConversationEvent::OutboundQueued {
            conversation_id: id,
            message_id,
            content,
            author,
            at: now,
        }])
    }
}

impl Aggregate for Conversation {
    const CATEGORY: &'static str = "conversation";
    type Command = ConversationCommand;
    type Event = ConversationEvent;

    fn decide(&self, command: ConversationCommand, now: DateTime<Utc>) -> Result<Vec<ConversationEvent>> {
        use ConversationCommand as C;
        use ConversationEvent as E;
        match command {
            C::ReceiveMessage {
                conversation_id,
                thread_id,
                contact_id,
                message,
            } => {
                if self.inbound_ids.contains(&message.wa_message_id) {
                    return Ok(vec![]);
                }
                let mut events = vec![];
                match self.header {
                    None => events.push(E::Started {
                        conversation_id,
                        thread_id,
                        contact_id,
                        origin: ConversationOrigin::Inbound,
                        at: now,
                    }),
                    Some(h) if h.id != conversation_id => {
                        return Err(Error::WrongStream("another conversation"));
                    }
                    Some(_) => match self.status_at(now) {
                        Some(ConversationStatus::Closed { .. }) => events.push(E::Reopened {
                            conversation_id,
                            reason: WakeReason::CustomerMessage,
                            by: Actor::System,
                            at: now,
                        }),
                        Some(ConversationStatus::Snoozed { .. }) => events.push(E::Unsnoozed {
                            conversation_id,
                            reason: WakeReason::CustomerMessage,
                            by: Actor::System,
                            at: now,
                        }),
                        _ => {}
                    },
                }
                events.push(E::MessageReceived {
                    conversation_id,
                    message,
                    received_at: now,
                });
                Ok(events)
            }
            C::StartWithTemplate {
                conversation_id,
                thread_id,
                contact_id,
                origin,
                message_id,
                template,
                author,
            } => {
                let content = OutboundContent::Template(template.into_send());
                if let Some(h) = self.header {
                    // A retry of the same start is a no-op; anything else
                    // means the id was used already.
                    return match self.outbound(message_id) {
                        Some(m) if h.id == conversation_id && m.content == content => Ok(vec![]),
                        _ => Err(Error::AlreadyExists("conversation")),
                    };
                }
                Ok(vec![
                    E::Started {
                        conversation_id,
                        thread_id,
                        contact_id,
                        origin,
                        at: now,
                    },
                    E::OutboundQueued {
                        conversation_id,
                        message_id,
                        content,
                        author,
                        at: now,
                    },
                ])
            }
            C::SendReply {
                message_id,
                reply,
                window,
                author,
            } => {
                let h = self.require_started()?;
                let content = reply.into_content()?;
                // A retry after the window closed must still be a no-op.
                if self.outbound(message_id).is_none() {
                    window.require_open(now)?;
                }
                self.queue(h.id, message_id, content, author, now)
            }
            C::SendTemplate {
                message_id,
                template,
                author,
            } => {
                let h = self.require_started()?;
                self.queue(
                    h.id,
                    message_id,
                    OutboundContent::Template(template.into_send()),
                    author,
                    now,
                )
            }
            C::RecordAccepted {
                message_id,
                wa_message_id,
            } => {
                let h = self.require_started()?;
                let message = self
                    .outbound(message_id)
                    .ok_or(Error::UnknownMessage(message_id))?;
                if message.wa_message_id.as_ref() == Some(&wa_message_id) {
                    return Ok(vec![]);
                }
                Ok(vec![E::OutboundAccepted {
                    conversation_id: h.id,
                    message_id,
                    wa_message_id,
                    at: now,
                }])
            }
            C::RecordSendAttempt {
                message_id,
                expected_attempts,
            } => {
                let h = self.require_started()?;
                let message = self
                    .outbound(message_id)
                    .ok_or(Error::UnknownMessage(message_id))?;
                if message.is_settled() {
                    return Err(Error::InvalidTransition {
                        action: "send",
                        status: "settled",
                    });
                }
                if message.attempts != expected_attempts {
                    // Someone else recorded this attempt (and may be sending).
                    return Err(Error::InvalidTransition {
                        action: "send",
                        status: "being sent",
                    });
                }
                Ok(vec![E::SendAttempted {
                    conversation_id: h.id,
                    message_id,
                    attempt: message.attempts + 1,
                    at: now,
                }])
            }
            C::WarnWindowClosing { closes_at } => {
                let h = self.require_started()?;
                // Still the same window, and its last word is the customer's.
                let waiting = matches!(
                    self.messages.last(),
                    Some(ConversationMessage::Inbound(m)) if m.sent_at + WINDOW_LENGTH == closes_at
                );
                let closed = matches!(self.status, Some(ConversationStatus::Closed { .. }));
                if !waiting || closed || now >= closes_at || self.window_warned == Some(closes_at) {
                    return Ok(vec![]);
                }
                Ok(vec![E::WindowClosingSoon {
                    conversation_id: h.id,
                    closes_at,
                    at: now,
                }])
            }
            C::RecordDeliveryStatus { message, update } => {
                let h = self.require_started()?;
                let message_id = match message {
                    MessageRef::Ours(id) => id,
                    MessageRef::WhatsApp(wa) => *self.wa_ids.get(&wa).ok_or(Error::UnknownWaMessage(wa))?,
                };
                let outbound = self
                    .outbound(message_id)
                    .ok_or(Error::UnknownMessage(message_id))?;
                if !outbound.delivery.is_news(&update) {
                    return Ok(vec![]);
                }
                Ok(vec![E::DeliveryStatusChanged {
                    conversation_id: h.id,
                    message_id,
                    update,
                }])
            }
            C::Assign { assignee, by } => {
                let h = self.require_started()?;
                if self.assignee == assignee {
                    return Ok(vec![]);
                }
                Ok(vec![E::Assigned {
                    conversation_id: h.id,
                    assignee,
                    by,
                    at: now,
                }])
            }
            C::Snooze { until, by } => {
                let h = self.require_started()?;
                if let Some(status @ ConversationStatus::Closed { .. }) = self.status {
                    return Err(Error::InvalidTransition {
                        action: "snooze",
                        status: status.name(),
                    });
                }
                if until <= now {
                    return Err(Error::SnoozeInPast { until });
                }
                if self.status == Some(ConversationStatus::Snoozed { until }) {
                    return Ok(vec![]);
                }
                Ok(vec![E::Snoozed {
                    conversation_id: h.id,
                    until,
                    by,
                    at: now,
                }])
            }
            C::Unsnooze { by } => {
                let h = self.require_started()?;
                match self.status_at(now) {
                    Some(ConversationStatus::Snoozed { .. }) => Ok(vec![E::Unsnoozed {
                        conversation_id: h.id,
                        reason: WakeReason::Manual,
                        by,
                        at: now,
                    }]),
                    _ => Ok(vec![]),
                }
            }
            C::Wake { until } => {
                let h = self.require_started()?;
                // The recorded status, not `status_at(now)`: at `until` the
                // snooze already reads as open, and this records why.
                match self.status {
                    Some(ConversationStatus::Snoozed { until: current }) if current == until => {
                        Ok(vec![E::Unsnoozed {
                            conversation_id: h.id,
                            reason: WakeReason::SnoozeEnded,
                            by: Actor::System,
                            at: now,
                        }])
                    }
                    _ => Ok(vec![]),
                }
            }
            C::Close { by } => {
                let h = self.require_started()?;
                match self.status {
                    Some(ConversationStatus::Closed { .. }) => Ok(vec![]),
                    _ => Ok(vec![E::Closed {
                        conversation_id: h.id,
                        by,
                        at: now,
                    }]),
                }
            }
            C::Reopen { by } => {
                let h = self.require_started()?;
                match self.status {
                    Some(ConversationStatus::Closed { .. }) => Ok(vec![E::Reopened {
                        conversation_id: h.id,
                        reason: WakeReason::Manual,
                        by,
                        at: now,
                    }]),
                    _ => Ok(vec![]),
                }
            }
        }
    }

    fn evolve(mut self, event: &ConversationEvent) -> Self {
        use ConversationEvent as E;
        match event {
            E::Started {
                conversation_id,
                thread_id,
                contact_id,
                origin,
                ..
            } => {
                self.header = Some(Header {
                    id: *conversation_id,
                    thread_id: *thread_id,
                    contact_id: *contact_id,
                    origin: *origin,
                });
                self.status = Some(ConversationStatus::Open);
            }
            E::MessageReceived { message, .. } => {
                if self.inbound_ids.insert(message.wa_message_id.clone()) {
                    self.messages.push(ConversationMessage::Inbound(message.clone()));
                }
            }
            E::OutboundQueued {
                message_id, content, ..
            } => {
                if !self.outbound_index.contains_key(message_id) {
                    self.outbound_index.insert(*message_id, self.messages.len());
                    self.messages.push(ConversationMessage::Outbound(OutboundMessage {
                        id: *message_id,
                        content: content.clone(),
                        wa_message_id: None,
                        delivery: DeliveryState::default(),
                        attempts: 0,
                    }));
                }
            }
            E::OutboundAccepted {
                message_id,
                wa_message_id,
                ..
            } => {
                if let Some(ConversationMessage::Outbound(m)) = self
                    .outbound_index
                    .get(message_id)
                    .and_then(|&i| self.messages.get_mut(i))
                {
                    m.wa_message_id = Some(wa_message_id.clone());
                    self.wa_ids.insert(wa_message_id.clone(), *message_id);
                }
            }
            E::DeliveryStatusChanged {
                message_id, update, ..
            } => {
                if let Some(ConversationMessage::Outbound(m)) = self
                    .outbound_index
                    .get(message_id)
                    .and_then(|&i| self.messages.get_mut(i))
                {
                    m.delivery = std::mem::take(&mut m.delivery).merge(update);
                }
            }
            E::SendAttempted {
                message_id, attempt, ..
            } => {
                if let Some(ConversationMessage::Outbound(m)) = self
                    .outbound_index
                    .get(message_id)
                    .and_then(|&i| self.messages.get_mut(i))
                {
                    m.attempts = m.attempts.max(*attempt);
                }
            }
            E::WindowClosingSoon { closes_at, .. } => self.window_warned = Some(*closes_at),
            E::Assigned { assignee, .. } => self.assignee = assignee.clone(),
            E::Snoozed { until, .. } => self.status = Some(ConversationStatus::Snoozed { until: *until }),
            E::Unsnoozed { .. } | E::Reopened { .. } => self.status = Some(ConversationStatus::Open),
            E::Closed { at, .. } => self.status = Some(ConversationStatus::Closed { at: *at }),
        }
        self
    }
}
