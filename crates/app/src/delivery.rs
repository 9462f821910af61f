//! What the delivery worker (crate `palaver-workers`) needs to hand our
//! messages to the Cloud API: everything one send needs
//! ([`App::pending_send`]), the workspace a queued message belongs to
//! ([`App::conversation_workspace`]), and the fenced attempt record that
//! comes before every send ([`App::record_send_attempt`]).
//!
//! The outcome of a send goes through the ordinary commands:
//! [`App::record_accepted`] and [`App::record_delivery_status`].

use chrono::{DateTime, Utc};
use palaver_domain::conversation::{Conversation, ConversationCommand, ConversationEvent};
use palaver_domain::ids::{ConversationId, MessageId, PhoneNumberId, WaId, WorkspaceId};
use palaver_domain::message::OutboundContent;
use palaver_domain::thread::Thread;
use serde_json::Value;

use crate::idempotency::Replay;
use crate::repository::Step;
use crate::tenancy::thread_workspace;
use crate::{App, CommandContext, CommandResult, Error, Result};

/// One of our messages as a send needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSend {
    /// The workspace it belongs to.
    pub workspace_id: WorkspaceId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Our id.
    pub message_id: MessageId,
    /// The business number it goes out from (the thread's).
    pub phone_number_id: PhoneNumberId,
    /// The customer: phone digits, or a business-scoped user id (BSUID,
    /// which contains a `.`) for a customer known only by username.
    pub customer: WaId,
    /// What to send.
    pub content: OutboundContent,
    /// Attempts recorded so far.
    pub attempts: u32,
    /// When the last attempt was recorded: a reconciliation deadline is
    /// measured from it, so handling the same message twice schedules the
    /// same deadline.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Accepted by WhatsApp or failed: nothing more to send.
    pub settled: bool,
}

impl App {
    /// The workspace of a conversation, for system processes that learn of
    /// a conversation from an event in `$all` (events name no workspace).
    /// `None` if the conversation or its thread does not exist. Not for
    /// tenant-facing calls: it checks no workspace.
    pub async fn conversation_workspace(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Option<WorkspaceId>> {
        let conversation = self
            .load::<Conversation>(&Conversation::stream_name(conversation_id))
            .await?;
        let Some(thread_id) = conversation.state.thread_id() else {
            return Ok(None);
        };
        let thread = self.load::<Thread>(&Thread::stream_name(thread_id)).await?;
        Ok(thread_workspace(&thread.state))
    }

    /// What sending one of the workspace's messages needs, read from the
    /// event streams (not the read models, which may lag). `None` if the
    /// conversation has no such outbound message; a conversation of another
    /// workspace is `NotFound`.
    pub async fn pending_send(
        &self,
        workspace: WorkspaceId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<PendingSend>> {
        let (conversation, thread) = self.conversation_in(workspace, conversation_id).await?;
        let Some(message) = conversation.state.outbound(message_id) else {
            return Ok(None);
        };
        let identity = thread
            .state
            .identity()
            .ok_or_else(|| Error::not_found("conversation", conversation_id))?;
        let last_attempt_at = conversation.events.iter().rev().find_map(|e| match &e.event {
            ConversationEvent::SendAttempted {
                message_id: id, at, ..
            } if *id == message_id => Some(*at),
            _ => None,
        });
        Ok(Some(PendingSend {
            workspace_id: workspace,
            conversation_id,
            message_id,
            phone_number_id: identity.business_phone_number_id.clone(),
            customer: identity.customer_wa_id.clone(),
            content: message.content.clone(),
            attempts: message.attempts,
            last_attempt_at,
            settled: message.is_settled(),
        }))
    }

    /// Records that the delivery worker is about to send a message for the
    /// next time, and returns that attempt's number (1 for the first).
    /// Fenced: refused unless exactly `expected_attempts` attempts are
    /// recorded, so of two workers that read the same count only one
    /// records (and sends). Refusals: the message is settled, or another
    /// attempt was recorded since (both `FailedPrecondition` with
    /// `InvalidTransition`): do not send. Target: the conversation.
    pub async fn record_send_attempt(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        message_id: MessageId,
        expected_attempts: u32,
    ) -> Result<CommandResult<u32>> {
        let cmd = self.begin(ctx, "record_send_attempt");
        self.run(&cmd, async {
            self.conversation_in(ctx.workspace_id, conversation_id).await?;
            let outcome = self
                .on_conversation(&cmd, conversation_id, Step::PRIMARY, |_| {
                    Ok(vec![ConversationCommand::RecordSendAttempt {
                        message_id,
                        expected_attempts,
                    }])
                })
                .await?;
            outcome
                .loaded
                .state
                .outbound(message_id)
                .map(|m| m.attempts)
                .ok_or_else(|| Error::not_found("message", message_id))
        })
        .await
    }
}

impl Replay for u32 {
    fn to_record(&self) -> Value {
        Value::from(*self)
    }
    fn from_record(value: &Value) -> Option<Self> {
        value.as_u64().and_then(|n| u32::try_from(n).ok())
    }
}
