//! A thread: one business number talking to one customer WhatsApp id
//! (stream `thread-<id>`, the id derived from both). The thread is the
//! consistency boundary for inbound messages: it sees every customer
//! message first, so it owns the 24-hour window, drops duplicate WhatsApp
//! ids, and decides where a message goes:
//!
//! - the current conversation is open or snoozed: the message joins it;
//! - it is closed, and the quiet period since closing has not passed: the
//!   message reopens it;
//! - it is closed and the quiet period has passed (elapsed >= period), or
//!   there is no conversation yet: the message starts a new one.
//!
//! Elapsed time is measured from the close to the message's WhatsApp
//! timestamp, like the window: a webhook delayed past the edge does not
//! split a conversation the customer continued in time.
//!
//! The conversation's status lives in its own stream; the application layer
//! loads it and passes it in ([`ConversationLifecycle`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::aggregate::Aggregate;
use crate::channel::QuietPeriod;
use crate::conversation::{ConversationLifecycle, ConversationStatus};
use crate::ids::{
    ContactId, ConversationId, MessageId, PhoneNumberId, ThreadId, WaId, WaMessageId, WorkspaceId,
};
use crate::stream::StreamName;
use crate::window::CustomerCareWindow;
use crate::{Error, Result};

/// Who talks to whom.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThreadIdentity {
    /// Workspace owning the business number.
    pub workspace_id: WorkspaceId,
    /// The business number.
    pub business_phone_number_id: PhoneNumberId,
    /// The customer.
    pub customer_wa_id: WaId,
    /// The contact the customer is identified as.
    pub contact_id: ContactId,
}

impl ThreadIdentity {
    /// The thread id this identity maps to.
    pub fn thread_id(&self) -> ThreadId {
        ThreadId::derive(&self.business_phone_number_id, &self.customer_wa_id)
    }
}

/// How a conversation came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConversationOrigin {
    /// A customer wrote.
    Inbound,
    /// Started from the inbox with a template.
    Inbox,
    /// An outbound campaign.
    Campaign,
    /// A Messenger conversation moved to WhatsApp.
    WhatsAppSwitch,
}

/// Where an inbound message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InboundRouting {
    /// Joined the open or snoozed conversation.
    Joined,
    /// Reopened the closed conversation.
    Reopened,
    /// Started a new conversation.
    Started,
}

/// Commands on a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThreadCommand {
    /// A customer message arrived (from the webhook).
    ReceiveInbound {
        /// Who talks to whom; starts the thread on its first message.
        identity: ThreadIdentity,
        /// WhatsApp's message id.
        wa_message_id: WaMessageId,
        /// WhatsApp's timestamp of the message.
        sent_at: DateTime<Utc>,
        /// The current conversation's status as loaded from its stream;
        /// `None` if that stream is still empty (its first events are being
        /// written), which counts as open.
        current: Option<ConversationLifecycle>,
        /// The channel's quiet period.
        quiet_period: QuietPeriod,
        /// Origin recorded if the message starts a conversation: `Inbound`,
        /// or `WhatsAppSwitch` when it redeemed a switch token.
        origin: ConversationOrigin,
    },
    /// Start a conversation from our side (inbox or campaign); the first
    /// message must be a template (see
    /// [`crate::conversation::ConversationCommand::StartWithTemplate`]).
    StartOutboundConversation {
        /// Who talks to whom; starts the thread if needed.
        identity: ThreadIdentity,
        /// Id of the template message that will start it; a retry with the
        /// same id starts nothing new.
        request_id: MessageId,
        /// Inbox or campaign.
        origin: ConversationOrigin,
        /// The current conversation's status, as for `ReceiveInbound`.
        current: Option<ConversationLifecycle>,
    },
}

/// Events of a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThreadEvent {
    /// First event.
    Started {
        /// This thread.
        thread_id: ThreadId,
        /// Who talks to whom.
        identity: ThreadIdentity,
        /// When.
        at: DateTime<Utc>,
    },
    /// A conversation became current.
    ConversationStarted {
        /// This thread.
        thread_id: ThreadId,
        /// Derived from thread id and sequence.
        conversation_id: ConversationId,
        /// 1, 2, 3, …
        sequence: u32,
        /// How it started.
        origin: ConversationOrigin,
        /// The outbound message that starts it, for outbound starts.
        request_id: Option<MessageId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A customer message was accepted and routed.
    CustomerMessageAccepted {
        /// This thread.
        thread_id: ThreadId,
        /// WhatsApp's id.
        wa_message_id: WaMessageId,
        /// WhatsApp's timestamp.
        sent_at: DateTime<Utc>,
        /// When Palaver received it.
        received_at: DateTime<Utc>,
        /// Where it went.
        conversation_id: ConversationId,
        /// How.
        routing: InboundRouting,
    },
}

/// The thread's current conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrentConversation {
    /// Its id.
    pub id: ConversationId,
    /// Its sequence number in the thread.
    pub sequence: u32,
    /// The outbound message that started it, if we started it.
    pub request_id: Option<MessageId>,
}

/// A thread's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Thread {
    id: Option<ThreadId>,
    identity: Option<ThreadIdentity>,
    window: CustomerCareWindow,
    current: Option<CurrentConversation>,
    /// Every accepted WhatsApp message id: webhooks are delivered at least
    /// once, and the same id twice must be one message.
    seen: BTreeSet<WaMessageId>,
}

impl Thread {
    /// The stream of a thread.
    pub fn stream_name(id: ThreadId) -> StreamName {
        StreamName::new(Self::CATEGORY, &id.to_string()).expect("a UUID is a valid id")
    }

    /// This thread's id, once started.
    pub fn id(&self) -> Option<ThreadId> {
        self.id
    }

    /// Who talks to whom, once started.
    pub fn identity(&self) -> Option<&ThreadIdentity> {
        self.identity.as_ref()
    }

    /// The 24-hour window, for a conversation's reply decision.
    pub fn window(&self) -> CustomerCareWindow {
        self.window
    }

    /// The current conversation.
    pub fn current_conversation(&self) -> Option<CurrentConversation> {
        self.current
    }

    /// Whether this WhatsApp message id was already accepted.
    pub fn has_seen(&self, id: &WaMessageId) -> bool {
        self.seen.contains(id)
    }

    /// Events that start the thread if it is new, and its id.
    fn start_if_new(
        &self,
        identity: &ThreadIdentity,
        now: DateTime<Utc>,
    ) -> Result<(ThreadId, Vec<ThreadEvent>)> {
        match &self.identity {
            Some(own) => {
                if own.business_phone_number_id != identity.business_phone_number_id
                    || own.customer_wa_id != identity.customer_wa_id
                {
                    return Err(Error::WrongStream("another business number or customer"));
                }
                Ok((own.thread_id(), vec![]))
            }
            None => {
                let thread_id = identity.thread_id();
                Ok((
                    thread_id,
                    vec![ThreadEvent::Started {
                        thread_id,
                        identity: identity.clone(),
                        at: now,
                    }],
                ))
            }
        }
    }

    /// The current conversation's status, checking the caller's view is of
    /// the right conversation. `None` (stream still empty) counts as open.
    fn current_status(
        &self,
        current: Option<ConversationLifecycle>,
    ) -> Result<Option<(CurrentConversation, ConversationStatus)>> {
        let Some(own) = self.current else {
            return Ok(None);
        };
        match current {
            Some(view) if view.conversation_id != own.id => Err(Error::StaleConversation {
                given: view.conversation_id,
            }),
            Some(view) => Ok(Some((own, view.status))),
            None => Ok(Some((own, ConversationStatus::Open))),
        }
    }

    fn next_conversation(&self, thread_id: ThreadId) -> (ConversationId, u32) {
        let sequence = self.current.map_or(1, |c| c.sequence + 1);
        (ConversationId::derive(thread_id, sequence), sequence)
    }
}

impl Aggregate for Thread {
    const CATEGORY: &'static str = "thread";
    type Command = ThreadCommand;
    type Event = ThreadEvent;

    fn decide(&self, command: ThreadCommand, now: DateTime<Utc>) -> Result<Vec<ThreadEvent>> {
        match command {
            ThreadCommand::ReceiveInbound {
                identity,
                wa_message_id,
                sent_at,
                current,
                quiet_period,
                origin,
            } => {
                if self.seen.contains(&wa_message_id) {
                    return Ok(vec![]);
                }
                let (thread_id, mut events) = self.start_if_new(&identity, now)?;
                let routing = match self.current_status(current)? {
                    None => None,
                    Some((own, ConversationStatus::Open | ConversationStatus::Snoozed { .. })) => {
                        Some((own.id, InboundRouting::Joined))
                    }
                    Some((own, ConversationStatus::Closed { at })) => {
                        (sent_at - at < quiet_period.duration()).then_some((own.id, InboundRouting::Reopened))
                    }
                };
                let (conversation_id, routing) = match routing {
                    Some(routing) => routing,
                    None => {
                        let (conversation_id, sequence) = self.next_conversation(thread_id);
                        events.push(ThreadEvent::ConversationStarted {
                            thread_id,
                            conversation_id,
                            sequence,
                            origin,
                            request_id: None,
                            at: now,
                        });
                        (conversation_id, InboundRouting::Started)
                    }
                };
                events.push(ThreadEvent::CustomerMessageAccepted {
                    thread_id,
                    wa_message_id,
                    sent_at,
                    received_at: now,
                    conversation_id,
                    routing,
                });
                Ok(events)
            }
            ThreadCommand::StartOutboundConversation {
                identity,
                request_id,
                origin,
                current,
            } => {
                if self.current.is_some_and(|c| c.request_id == Some(request_id)) {
                    return Ok(vec![]);
                }
                let (thread_id, mut events) = self.start_if_new(&identity, now)?;
                if let Some((own, status)) = self.current_status(current)?
                    && !matches!(status, ConversationStatus::Closed { .. })
                {
                    return Err(Error::ConversationStillOpen { current: own.id });
                }
                let (conversation_id, sequence) = self.next_conversation(thread_id);
                events.push(ThreadEvent::ConversationStarted {
                    thread_id,
                    conversation_id,
                    sequence,
                    origin,
                    request_id: Some(request_id),
                    at: now,
                });
                Ok(events)
            }
        }
    }

    fn evolve(mut self, event: &ThreadEvent) -> Self {
        match event {
            ThreadEvent::Started {
                thread_id, identity, ..
            } => {
                self.id = Some(*thread_id);
                self.identity = Some(identity.clone());
            }
            ThreadEvent::ConversationStarted {
                conversation_id,
                sequence,
                request_id,
                ..
            } => {
                self.current = Some(CurrentConversation {
                    id: *conversation_id,
                    sequence: *sequence,
                    request_id: *request_id,
                });
            }
            ThreadEvent::CustomerMessageAccepted {
                wa_message_id,
                sent_at,
                ..
            } => {
                self.seen.insert(wa_message_id.clone());
                self.window = self.window.with_customer_message(*sent_at);
            }
        }
        self
    }
}
