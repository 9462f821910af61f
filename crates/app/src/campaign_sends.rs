//! Campaign sends: each queued recipient becomes the "start a conversation"
//! process (docs/domain.md), and what WhatsApp reports about the message
//! flows back into the campaign. The campaign sender (crate
//! `palaver-workers`) calls these for `CampaignRecipientQueued`,
//! `CampaignCancelled` and the delivery events of our messages.
//!
//! Status events name only our message id, so each send keeps a lookup,
//! `campaignsend-<message id>` (a record stream, see [`crate::records`]):
//! `CampaignSendNamed` (workspace, campaign, recipient) is written before
//! the message exists, so no status of it can miss the lookup, and
//! `CampaignSendStarted` adds the conversation once it holds the message,
//! so a cancellation can find it.
//!
//! Cancelling skips every recipient not sent yet: one whose send was not
//! started is recorded failed on the campaign; one whose message waits in
//! its conversation for the delivery worker is recorded failed there, which
//! settles it (the worker's `RecordSendAttempt` is then refused) and flows
//! into the campaign like any status. Both the cancellation and each send
//! look at the other after writing, so whichever runs second sees the first.

use palaver_domain::Error as DomainError;
use palaver_domain::campaign::{Campaign, CampaignCommand, CampaignEvent};
use palaver_domain::conversation::{ConversationCommand, MessageRef};
use palaver_domain::delivery::{DeliveryFailure, DeliveryUpdate};
use palaver_domain::ids::{CampaignId, ContactId, ConversationId, MessageId, PhoneNumberId, WorkspaceId};
use palaver_domain::templates::TemplateSend;
use palaver_domain::thread::ConversationOrigin;
use palaver_store::StreamName;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::context::Cmd;
use crate::error::{Error, Precondition, Result};
use crate::idempotency::Replay;
use crate::repository::{Attempts, Loaded, Step};
use crate::tenancy::campaign_workspace;
use crate::timer_actions::PALAVER_FAILURE_CODE;
use crate::{App, CommandContext, CommandResult};

const CAMPAIGN_SEND_NAMED: &str = "palaver.app.CampaignSendNamed";
const CAMPAIGN_SEND_STARTED: &str = "palaver.app.CampaignSendStarted";

/// Why a recipient is recorded failed when its campaign was cancelled
/// before its message went out.
pub const CANCELLED_BEFORE_SENDING: &str = "campaign cancelled before sending";

/// One record of a send's lookup stream; the last one is current.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CampaignSendRecord {
    workspace_id: Uuid,
    campaign_id: Uuid,
    contact_id: Uuid,
    conversation_id: Option<Uuid>,
}

/// A campaign send, as its message id's lookup names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CampaignSend {
    /// The campaign's workspace.
    pub workspace_id: WorkspaceId,
    /// The campaign.
    pub campaign_id: CampaignId,
    /// The recipient, as the campaign lists it.
    pub contact_id: ContactId,
    /// The conversation holding the message, once it does.
    pub conversation_id: Option<ConversationId>,
}

/// What became of one queued recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecipientSendOutcome {
    /// The template waits in this conversation for the delivery worker.
    Queued {
        /// The recipient's conversation (new, or the open one).
        conversation_id: ConversationId,
    },
    /// Not sent, and recorded failed on the campaign with this reason: the
    /// campaign was cancelled first, or the send was refused (the template
    /// was paused, the contact has no number, the number was disconnected).
    Skipped {
        /// Why, as recorded.
        reason: String,
    },
}

impl Replay for RecipientSendOutcome {
    fn to_record(&self) -> Value {
        match self {
            RecipientSendOutcome::Queued { conversation_id } => {
                json!({ "queued": conversation_id.to_string() })
            }
            RecipientSendOutcome::Skipped { reason } => json!({ "skipped": reason }),
        }
    }
    fn from_record(value: &Value) -> Option<Self> {
        if let Some(id) = value["queued"].as_str() {
            let conversation_id = ConversationId::from_uuid(Uuid::parse_str(id).ok()?);
            return Some(RecipientSendOutcome::Queued { conversation_id });
        }
        Some(RecipientSendOutcome::Skipped {
            reason: value["skipped"].as_str()?.to_owned(),
        })
    }
}

fn campaign_send_stream(message_id: MessageId) -> Result<StreamName> {
    StreamName::from_parts("campaignsend", message_id).map_err(|e| Error::Internal(e.to_string()))
}

/// A failure Palaver records itself, before WhatsApp had a say.
fn palaver_failure(reason: &str, cmd: &Cmd<'_>) -> DeliveryUpdate {
    DeliveryUpdate::Failed {
        failure: DeliveryFailure {
            code: PALAVER_FAILURE_CODE,
            reason: reason.to_owned(),
        },
        at: cmd.now,
    }
}

impl App {
    /// The workspace of a campaign, `None` if it has no events (yet).
    pub async fn campaign_workspace(&self, campaign_id: CampaignId) -> Result<Option<WorkspaceId>> {
        let campaign = self.load::<Campaign>(&Campaign::stream_name(campaign_id)).await?;
        Ok(campaign_workspace(&campaign))
    }

    /// The campaign send `message_id` names, `None` for a message that is
    /// not one (or whose send has not started).
    pub async fn campaign_send(&self, message_id: MessageId) -> Result<Option<CampaignSend>> {
        let records = self
            .read_records::<CampaignSendRecord>(&campaign_send_stream(message_id)?)
            .await?;
        Ok(records.events.last().map(|(_, r)| CampaignSend {
            workspace_id: WorkspaceId::from_uuid(r.workspace_id),
            campaign_id: CampaignId::from_uuid(r.campaign_id),
            contact_id: ContactId::from_uuid(r.contact_id),
            conversation_id: r.conversation_id.map(ConversationId::from_uuid),
        }))
    }

    /// Sends a queued recipient's template: starts the recipient's next
    /// conversation (origin campaign) with it as the campaign's message id,
    /// or sends it into the thread's open conversation, for the delivery
    /// worker to send. A cancelled campaign, or a send refused for good,
    /// records the recipient failed instead. Repeatable: a retry finds what
    /// the first run did. Target: the campaign's recipient.
    pub async fn send_campaign_recipient(
        &self,
        ctx: &CommandContext,
        campaign_id: CampaignId,
        contact_id: ContactId,
    ) -> Result<CommandResult<RecipientSendOutcome>> {
        let cmd = self.begin(ctx, "send_campaign_recipient");
        self.run(&cmd, async {
            let campaign = self.campaign_in(ctx.workspace_id, campaign_id).await?;
            let message_id = campaign
                .state
                .sends()
                .get(&contact_id)
                .map(|send| send.message_id)
                .ok_or_else(|| Error::not_found("campaign recipient", contact_id))?;
            let known = self.campaign_send(message_id).await?;
            if campaign.state.is_cancelled() {
                // A retry after the send started: the conversation decides.
                if let Some(conversation_id) = known.and_then(|k| k.conversation_id) {
                    self.skip_unsent(&cmd, conversation_id, message_id).await?;
                    return Ok(RecipientSendOutcome::Queued { conversation_id });
                }
                return self
                    .skip_recipient(&cmd, campaign_id, contact_id, CANCELLED_BEFORE_SENDING)
                    .await;
            }
            let mut record = CampaignSendRecord {
                workspace_id: ctx.workspace_id.as_uuid(),
                campaign_id: campaign_id.as_uuid(),
                contact_id: contact_id.as_uuid(),
                conversation_id: None,
            };
            if known.is_none() {
                self.write_campaign_send(&cmd, message_id, CAMPAIGN_SEND_NAMED, &record)
                    .await?;
            }
            let (number, template) = created(&campaign)?;
            let started = match known.and_then(|k| k.conversation_id) {
                Some(conversation_id) => {
                    self.send_into(&cmd, conversation_id, &number, template, message_id)
                        .await
                }
                None => {
                    self.start_campaign_send(&cmd, &mut record, contact_id, &number, template, message_id)
                        .await
                }
            };
            let conversation_id = match started {
                Ok(conversation_id) => conversation_id,
                Err(error) if !error.is_transient() => {
                    tracing::warn!(%campaign_id, %contact_id, %error, "campaign send refused; recipient failed");
                    return self
                        .skip_recipient(&cmd, campaign_id, contact_id, &error.to_string())
                        .await;
                }
                Err(error) => return Err(error),
            };
            if record.conversation_id.is_none() && known.and_then(|k| k.conversation_id).is_none() {
                record.conversation_id = Some(conversation_id.as_uuid());
                self.write_campaign_send(&cmd, message_id, CAMPAIGN_SEND_STARTED, &record)
                    .await?;
            }
            // A cancellation that read the lookup before the line above
            // could not see this message; look again now.
            let campaign = self.campaign_in(ctx.workspace_id, campaign_id).await?;
            if campaign.state.is_cancelled() {
                self.skip_unsent(&cmd, conversation_id, message_id).await?;
            }
            Ok(RecipientSendOutcome::Queued { conversation_id })
        })
        .await
    }

    /// After a cancellation: records failed every started send of the
    /// campaign whose message the delivery worker has not tried yet (sends
    /// not started are skipped by [`App::send_campaign_recipient`]).
    /// Target: the recipients' conversations.
    pub async fn skip_unsent_campaign_sends(
        &self,
        ctx: &CommandContext,
        campaign_id: CampaignId,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "skip_unsent_campaign_sends");
        self.run(&cmd, async {
            let campaign = self.campaign_in(ctx.workspace_id, campaign_id).await?;
            if !campaign.state.is_cancelled() {
                return Ok(());
            }
            for send in campaign.state.sends().values() {
                let started = self.campaign_send(send.message_id).await?;
                if let Some(conversation_id) = started.and_then(|s| s.conversation_id) {
                    self.skip_unsent(&cmd, conversation_id, send.message_id).await?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Records what WhatsApp (or Palaver) reported about a recipient's
    /// message on the campaign; stale and repeated reports write nothing.
    /// Target: the campaign.
    pub async fn record_recipient_status(
        &self,
        ctx: &CommandContext,
        campaign_id: CampaignId,
        contact_id: ContactId,
        update: DeliveryUpdate,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "record_recipient_status");
        self.run(&cmd, async {
            self.campaign_in(ctx.workspace_id, campaign_id).await?;
            self.execute::<Campaign>(&cmd, &Campaign::stream_name(campaign_id), Step::PRIMARY, |_| {
                Ok(vec![CampaignCommand::RecordRecipientStatus {
                    contact_id,
                    update: update.clone(),
                }])
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// Starts the recipient's next conversation with the template, or, if
    /// the thread's conversation is still open, sends it there.
    async fn start_campaign_send(
        &self,
        cmd: &Cmd<'_>,
        record: &mut CampaignSendRecord,
        contact_id: ContactId,
        number: &PhoneNumberId,
        template: &TemplateSend,
        message_id: MessageId,
    ) -> Result<ConversationId> {
        // A recipient merged since the campaign was made is written to as
        // the contact it became.
        let contact_id = self.survivor(contact_id).await?;
        let started = self
            .start_with_template(
                cmd,
                contact_id,
                number,
                template.clone(),
                message_id,
                ConversationOrigin::Campaign,
            )
            .await;
        match started {
            Ok(started) => Ok(started.conversation_id),
            Err(Error::FailedPrecondition(Precondition::Domain(DomainError::ConversationStillOpen {
                current,
            }))) => {
                // Named before the message is there, so a retry after a
                // crash sends into this conversation, never a second one.
                record.conversation_id = Some(current.as_uuid());
                self.write_campaign_send(cmd, message_id, CAMPAIGN_SEND_STARTED, record)
                    .await?;
                self.send_into(cmd, current, number, template, message_id).await
            }
            Err(error) => Err(error),
        }
    }

    /// Queues the template as `message_id` in an existing conversation (a
    /// no-op if it is there).
    async fn send_into(
        &self,
        cmd: &Cmd<'_>,
        conversation_id: ConversationId,
        number: &PhoneNumberId,
        template: &TemplateSend,
        message_id: MessageId,
    ) -> Result<ConversationId> {
        let checked = self
            .check_template(cmd.ctx.workspace_id, number, template.clone())
            .await?;
        self.on_conversation(cmd, conversation_id, Step::default(), |_| {
            Ok(vec![ConversationCommand::SendTemplate {
                message_id,
                template: checked.clone(),
                author: cmd.ctx.actor.clone(),
            }])
        })
        .await?;
        Ok(conversation_id)
    }

    /// Records a recipient failed on the campaign without sending.
    async fn skip_recipient(
        &self,
        cmd: &Cmd<'_>,
        campaign_id: CampaignId,
        contact_id: ContactId,
        reason: &str,
    ) -> Result<RecipientSendOutcome> {
        let update = palaver_failure(reason, cmd);
        self.execute::<Campaign>(cmd, &Campaign::stream_name(campaign_id), Step::PRIMARY, |_| {
            Ok(vec![CampaignCommand::RecordRecipientStatus {
                contact_id,
                update: update.clone(),
            }])
        })
        .await?;
        Ok(RecipientSendOutcome::Skipped {
            reason: reason.to_owned(),
        })
    }

    /// Records a campaign message failed in its conversation unless the
    /// delivery worker has tried it or it is settled. Decided on each
    /// attempt's fresh state, so it cannot overtake a send attempt.
    async fn skip_unsent(
        &self,
        cmd: &Cmd<'_>,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<()> {
        let update = palaver_failure(CANCELLED_BEFORE_SENDING, cmd);
        self.on_conversation(cmd, conversation_id, Step::default(), |conversation| {
            Ok(match conversation.state.outbound(message_id) {
                Some(message) if message.attempts == 0 && !message.is_settled() => {
                    vec![ConversationCommand::RecordDeliveryStatus {
                        message: MessageRef::Ours(message_id),
                        update: update.clone(),
                    }]
                }
                _ => vec![],
            })
        })
        .await?;
        Ok(())
    }

    /// Appends a record to a send's lookup (a no-op if it already says so).
    async fn write_campaign_send(
        &self,
        cmd: &Cmd<'_>,
        message_id: MessageId,
        event_type: &str,
        record: &CampaignSendRecord,
    ) -> Result<()> {
        let stream = campaign_send_stream(message_id)?;
        let mut attempts = Attempts::new(&stream);
        loop {
            attempts.next().await?;
            let records = self.read_records::<CampaignSendRecord>(&stream).await?;
            if let Some((_, last)) = records.events.last()
                && (last == record || (record.conversation_id.is_none() && last.conversation_id.is_some()))
            {
                return Ok(());
            }
            if self
                .append_record(cmd, &stream, records.expected(), event_type, record)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
    }
}

/// The number and template a campaign was created with.
fn created(campaign: &Loaded<Campaign>) -> Result<(PhoneNumberId, &TemplateSend)> {
    campaign
        .events
        .iter()
        .find_map(|e| match &e.event {
            CampaignEvent::Created {
                business_phone_number_id,
                template,
                ..
            } => Some((business_phone_number_id.clone(), template)),
            _ => None,
        })
        .ok_or_else(|| Error::Internal(format!("campaign {} has no creation event", campaign.id())))
}
