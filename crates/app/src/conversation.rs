//! Conversations: replies and templates (checked against the window and
//! the catalogue), starting a conversation from our side, status changes,
//! and what the Cloud API reports back about our messages.

use chrono::{DateTime, Utc};
use palaver_domain::Error as DomainError;
use palaver_domain::conversation::{Conversation, ConversationCommand, ConversationLifecycle, MessageRef};
use palaver_domain::delivery::DeliveryUpdate;
use palaver_domain::ids::{
    ContactId, ConversationId, MessageId, PhoneNumberId, TeammateId, ThreadId, WaId, WaMessageId, WorkspaceId,
};
use palaver_domain::message::Reply;
use palaver_domain::templates::{CheckedTemplateSend, TemplateCatalogue, TemplateSend};
use palaver_domain::thread::{ConversationOrigin, Thread, ThreadCommand, ThreadEvent, ThreadIdentity};

use crate::context::Cmd;
use crate::error::{Error, Precondition, Result};
use crate::lookups::WaMessageRecord;
use crate::repository::{Attempts, Loaded, Outcome, Step, store_stream};
use crate::{App, CommandContext, CommandResult};

/// A conversation we started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartedConversation {
    /// The thread (business number and customer).
    pub thread_id: ThreadId,
    /// The new conversation.
    pub conversation_id: ConversationId,
    /// The template message that started it.
    pub message_id: MessageId,
}

/// Which of our messages a delivery status is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryTarget {
    /// By WhatsApp's id, as status webhooks report it. Found through the
    /// lookup written by [`App::record_accepted`]; a status that overtakes
    /// that is refused with `UnknownWaMessage` (retry later).
    WhatsApp(WaMessageId),
    /// By our id, e.g. a send that failed before WhatsApp answered.
    Ours {
        /// The conversation.
        conversation_id: ConversationId,
        /// Our message id.
        message_id: MessageId,
    },
}

impl App {
    /// Sends a free-form reply. The 24-hour window is read from the
    /// conversation's thread; outside it the reply is refused with
    /// `Precondition::Domain(TemplateRequired { window_closed_at })`: send a
    /// template instead. `message_id` makes a retry the same message
    /// (generated when `None`). Target: the conversation.
    pub async fn send_reply(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        message_id: Option<MessageId>,
        reply: Reply,
    ) -> Result<CommandResult<MessageId>> {
        let cmd = self.begin(ctx, "send_reply");
        self.run(&cmd, async {
            let message_id = message_id.unwrap_or_else(|| MessageId::from_uuid(cmd.new_id("message")));
            let (_, thread) = self.conversation_in(ctx.workspace_id, conversation_id).await?;
            let window = thread.state.window();
            self.on_conversation(&cmd, conversation_id, Step::PRIMARY, |_| {
                Ok(vec![ConversationCommand::SendReply {
                    message_id,
                    reply: reply.clone(),
                    window,
                    author: ctx.actor.clone(),
                }])
            })
            .await?;
            Ok(message_id)
        })
        .await
    }

    /// Sends an approved template into an existing conversation (allowed in
    /// or out of the window), checked against the catalogue of the business
    /// account of the conversation's number. Target: the conversation.
    pub async fn send_template(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        message_id: Option<MessageId>,
        template: TemplateSend,
    ) -> Result<CommandResult<MessageId>> {
        let cmd = self.begin(ctx, "send_template");
        self.run(&cmd, async {
            let message_id = message_id.unwrap_or_else(|| MessageId::from_uuid(cmd.new_id("message")));
            let (_, thread) = self.conversation_in(ctx.workspace_id, conversation_id).await?;
            let number = thread
                .state
                .identity()
                .map(|i| i.business_phone_number_id.clone())
                .ok_or_else(|| Error::not_found("conversation", conversation_id))?;
            let checked = self.check_template(ctx.workspace_id, &number, template).await?;
            self.on_conversation(&cmd, conversation_id, Step::PRIMARY, |_| {
                Ok(vec![ConversationCommand::SendTemplate {
                    message_id,
                    template: checked.clone(),
                    author: ctx.actor.clone(),
                }])
            })
            .await?;
            Ok(message_id)
        })
        .await
    }

    /// Starts a conversation with a contact from the inbox, from the
    /// business number `phone_number_id`, with a template (the only way to
    /// start one from our side). If the thread's current conversation is
    /// still open this is refused with `ConversationStillOpen { current }`:
    /// send the template there. Target: the thread.
    pub async fn start_conversation(
        &self,
        ctx: &CommandContext,
        contact_id: ContactId,
        phone_number_id: PhoneNumberId,
        template: TemplateSend,
        message_id: Option<MessageId>,
    ) -> Result<CommandResult<StartedConversation>> {
        let cmd = self.begin(ctx, "start_conversation");
        self.run(&cmd, async {
            let message_id = message_id.unwrap_or_else(|| MessageId::from_uuid(cmd.new_id("message")));
            self.start_with_template(
                &cmd,
                contact_id,
                &phone_number_id,
                template,
                message_id,
                ConversationOrigin::Inbox,
            )
            .await
        })
        .await
    }

    /// Closes a conversation (a no-op if closed). Target: the conversation.
    pub async fn close(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
    ) -> Result<CommandResult> {
        self.conversation_action(
            ctx,
            "close",
            conversation_id,
            ConversationCommand::Close {
                by: ctx.actor.clone(),
            },
        )
        .await
    }

    /// Reopens a closed conversation (a no-op otherwise). Target: the
    /// conversation.
    pub async fn reopen(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
    ) -> Result<CommandResult> {
        self.conversation_action(
            ctx,
            "reopen",
            conversation_id,
            ConversationCommand::Reopen {
                by: ctx.actor.clone(),
            },
        )
        .await
    }

    /// Snoozes a conversation until `until` (after now; not a closed
    /// conversation). Target: the conversation.
    pub async fn snooze(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        until: DateTime<Utc>,
    ) -> Result<CommandResult> {
        self.conversation_action(
            ctx,
            "snooze",
            conversation_id,
            ConversationCommand::Snooze {
                until,
                by: ctx.actor.clone(),
            },
        )
        .await
    }

    /// Ends a snooze early (a no-op if not snoozed). Target: the
    /// conversation.
    pub async fn unsnooze(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
    ) -> Result<CommandResult> {
        self.conversation_action(
            ctx,
            "unsnooze",
            conversation_id,
            ConversationCommand::Unsnooze {
                by: ctx.actor.clone(),
            },
        )
        .await
    }

    /// Assigns a conversation to a teammate, or unassigns it with `None`.
    /// Target: the conversation.
    pub async fn assign(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        assignee: Option<TeammateId>,
    ) -> Result<CommandResult> {
        if assignee.as_ref().is_some_and(|a| a.as_str().is_empty()) {
            return Err(Error::invalid(
                "assignee",
                "an empty teammate id; pass None to unassign",
            ));
        }
        self.conversation_action(
            ctx,
            "assign",
            conversation_id,
            ConversationCommand::Assign {
                assignee,
                by: ctx.actor.clone(),
            },
        )
        .await
    }

    /// Records that the Cloud API accepted one of our messages and named it
    /// `wa_message_id`, and remembers which conversation that id belongs to
    /// for later status webhooks. Target: the conversation.
    pub async fn record_accepted(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        message_id: MessageId,
        wa_message_id: WaMessageId,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "record_accepted");
        self.run(&cmd, async {
            if wa_message_id.as_str().is_empty() {
                return Err(Error::invalid("wa_message_id", "is empty"));
            }
            let (conversation, _) = self.conversation_in(ctx.workspace_id, conversation_id).await?;
            if conversation.state.outbound(message_id).is_none() {
                return Err(Error::not_found("message", message_id));
            }
            // The lookup first: a status webhook that finds it before the
            // conversation knows the id gets `UnknownWaMessage` and retries;
            // the other order could lose the lookup in a crash.
            self.name_wa_message(
                &cmd,
                WaMessageRecord {
                    workspace_id: ctx.workspace_id.as_uuid(),
                    conversation_id: conversation_id.as_uuid(),
                    message_id: message_id.as_uuid(),
                    wa_message_id: wa_message_id.to_string(),
                },
            )
            .await?;
            self.on_conversation(&cmd, conversation_id, Step::PRIMARY, |_| {
                Ok(vec![ConversationCommand::RecordAccepted {
                    message_id,
                    wa_message_id: wa_message_id.clone(),
                }])
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// Records a delivery status of one of our messages. Statuses arrive at
    /// least once and in any order; one that changes nothing writes
    /// nothing. Target: the conversation.
    pub async fn record_delivery_status(
        &self,
        ctx: &CommandContext,
        target: DeliveryTarget,
        update: DeliveryUpdate,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "record_delivery_status");
        self.run(&cmd, async {
            let (conversation_id, message) = match target {
                DeliveryTarget::WhatsApp(wa_message_id) => {
                    let record = self
                        .wa_message(&wa_message_id)
                        .await?
                        .filter(|r| r.workspace_id == ctx.workspace_id.as_uuid());
                    match record {
                        Some(record) => (
                            ConversationId::from_uuid(record.conversation_id),
                            MessageRef::WhatsApp(wa_message_id),
                        ),
                        // Not known (yet, or in this workspace): the same
                        // answer the conversation gives, "retry later".
                        None => {
                            return Err(
                                Precondition::Domain(DomainError::UnknownWaMessage(wa_message_id)).into()
                            );
                        }
                    }
                }
                DeliveryTarget::Ours {
                    conversation_id,
                    message_id,
                } => (conversation_id, MessageRef::Ours(message_id)),
            };
            self.conversation_in(ctx.workspace_id, conversation_id).await?;
            self.on_conversation(&cmd, conversation_id, Step::PRIMARY, |_| {
                Ok(vec![ConversationCommand::RecordDeliveryStatus {
                    message: message.clone(),
                    update: update.clone(),
                }])
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// One conversation command, for the commands that need nothing else.
    async fn conversation_action(
        &self,
        ctx: &CommandContext,
        name: &'static str,
        conversation_id: ConversationId,
        command: ConversationCommand,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, name);
        self.run(&cmd, async {
            self.conversation_in(ctx.workspace_id, conversation_id).await?;
            self.on_conversation(&cmd, conversation_id, Step::PRIMARY, |_| {
                Ok(vec![command.clone()])
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// Runs conversation commands (the caller has checked the workspace).
    pub(crate) async fn on_conversation(
        &self,
        cmd: &Cmd<'_>,
        conversation_id: ConversationId,
        step: Step,
        decide: impl FnMut(&Loaded<Conversation>) -> Result<Vec<ConversationCommand>> + Send,
    ) -> Result<Outcome<Conversation>> {
        self.execute::<Conversation>(cmd, &Conversation::stream_name(conversation_id), step, decide)
            .await
    }

    /// Runs a thread command that needs the current conversation's
    /// lifecycle, reading both again when the conversation moved on.
    pub(crate) async fn on_thread(
        &self,
        cmd: &Cmd<'_>,
        thread_id: ThreadId,
        step: Step,
        mut decide: impl FnMut(&Loaded<Thread>, Option<ConversationLifecycle>) -> Result<Vec<ThreadCommand>>
        + Send,
    ) -> Result<Outcome<Thread>> {
        let name = Thread::stream_name(thread_id);
        let mut attempts = Attempts::new(&store_stream(&name)?);
        loop {
            attempts.next().await?;
            let thread = self.load::<Thread>(&name).await?;
            let lifecycle = match thread.state.current_conversation() {
                Some(current) => self
                    .load::<Conversation>(&Conversation::stream_name(current.id))
                    .await?
                    .state
                    .lifecycle(cmd.now),
                None => None,
            };
            match self
                .execute::<Thread>(cmd, &name, step, |t| decide(t, lifecycle))
                .await
            {
                Err(Error::FailedPrecondition(Precondition::Domain(DomainError::StaleConversation {
                    ..
                }))) => {
                    continue;
                }
                other => return other,
            }
        }
    }

    /// A template send checked against the catalogue of the business
    /// account that owns `number` in the workspace's channel.
    pub(crate) async fn check_template(
        &self,
        workspace: WorkspaceId,
        number: &PhoneNumberId,
        send: TemplateSend,
    ) -> Result<CheckedTemplateSend> {
        if send.name.trim().is_empty() {
            return Err(Error::invalid("template", "the template name is empty"));
        }
        if send.language.trim().is_empty() {
            return Err(Error::invalid("template", "the template language is empty"));
        }
        let channel = self.channel(workspace).await?;
        let account = channel
            .state
            .number(number)
            .map(|n| n.business_account_id.clone())
            .ok_or_else(|| Error::UnknownPhoneNumberId(number.clone()))?;
        let stream = TemplateCatalogue::stream_name(&account).map_err(|e| Error::Internal(e.to_string()))?;
        let catalogue = self.load::<TemplateCatalogue>(&stream).await?;
        catalogue
            .state
            .check(send)
            .map_err(|e| Precondition::Domain(DomainError::Template(e)).into())
    }

    /// The "start a conversation" process (docs/domain.md): check the
    /// template, start the next conversation on the thread, then start it
    /// with the template. Shared by the inbox and campaign sends.
    pub(crate) async fn start_with_template(
        &self,
        cmd: &Cmd<'_>,
        contact_id: ContactId,
        number: &PhoneNumberId,
        template: TemplateSend,
        message_id: MessageId,
        origin: ConversationOrigin,
    ) -> Result<StartedConversation> {
        let workspace = cmd.ctx.workspace_id;
        let contact = self.contact_in(workspace, contact_id).await?;
        if let Some(into) = contact.state.merged_into() {
            return Err(Precondition::Domain(DomainError::ContactMerged { into }).into());
        }
        // A WhatsApp id is the digits of the customer's number.
        let wa_id = match (contact.state.wa_id(), contact.state.phone_numbers().first()) {
            (Some(wa_id), _) => wa_id.clone(),
            (None, Some(phone)) => WaId::new(phone.digits()),
            (None, None) => return Err(Precondition::NoWhatsAppNumber { contact_id }.into()),
        };
        let checked = self.check_template(workspace, number, template).await?;
        let thread_id = ThreadId::derive(number, &wa_id);
        let identity = ThreadIdentity {
            workspace_id: workspace,
            business_phone_number_id: number.clone(),
            customer_wa_id: wa_id,
            contact_id,
        };
        let thread = self
            .on_thread(cmd, thread_id, Step::PRIMARY, |thread, current| {
                if thread
                    .state
                    .identity()
                    .is_some_and(|i| i.workspace_id != workspace)
                {
                    return Err(Error::Internal(format!(
                        "thread {thread_id} serves another workspace"
                    )));
                }
                Ok(vec![ThreadCommand::StartOutboundConversation {
                    identity: identity.clone(),
                    request_id: message_id,
                    origin,
                    current,
                }])
            })
            .await?;
        let (conversation_id, cause) = thread
            .new
            .iter()
            .find_map(|e| match &e.event {
                ThreadEvent::ConversationStarted { conversation_id, .. } => {
                    Some((*conversation_id, Some(e.id)))
                }
                _ => None,
            })
            .or_else(|| {
                // A retry: the thread started it before.
                let current = thread.loaded.state.current_conversation()?;
                (current.request_id == Some(message_id)).then_some((current.id, None))
            })
            .ok_or_else(|| Error::Internal(format!("thread {thread_id} started no conversation")))?;
        let contact_id = thread
            .loaded
            .state
            .identity()
            .map_or(contact_id, |identity| identity.contact_id);
        self.on_conversation(cmd, conversation_id, Step::caused_by(cause), |_| {
            Ok(vec![ConversationCommand::StartWithTemplate {
                conversation_id,
                thread_id,
                contact_id,
                origin,
                message_id,
                template: checked.clone(),
                author: cmd.ctx.actor.clone(),
            }])
        })
        .await?;
        Ok(StartedConversation {
            thread_id,
            conversation_id,
            message_id,
        })
    }
}
