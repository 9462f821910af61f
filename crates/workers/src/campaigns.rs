//! The campaign sender (docs/workers.md, "Timers and campaigns"): turns
//! each recipient a campaign queued into the recipient's conversation with
//! the campaign's template, for the delivery worker to send, and carries
//! what WhatsApp reports about those messages back into the campaign.
//!
//! - `CampaignRecipientQueued` (a launch, or a named event for an event
//!   campaign): [`App::send_campaign_recipient`] starts the recipient's
//!   next conversation (origin campaign) with the template, under the
//!   message id the campaign chose, or sends it into the open one. A
//!   cancelled campaign's recipient is recorded failed ("campaign cancelled
//!   before sending") instead. Starts are paced by
//!   [`CampaignSenderOptions::rate`], below the delivery worker's rate per
//!   number, so a large campaign leaves room for teammates' replies.
//! - `CampaignCancelled`: messages already in conversations but not yet
//!   tried by the delivery worker are recorded failed there, which settles
//!   them: the delivery worker skips settled messages.
//! - `OutboundMessageAccepted` (the recipient counts as sent once the Cloud
//!   API took the message) and `DeliveryStatusChanged` of a campaign's
//!   message: the campaign records the recipient's status.
//!
//! Every step is idempotent, so the runner's retries and a restart are
//! harmless.

use std::num::NonZeroU32;

use async_trait::async_trait;
use palaver_app::{App, RecipientSendOutcome};
use palaver_domain::campaign::CampaignEvent;
use palaver_domain::codec::{DomainEvent, event_types as t};
use palaver_domain::conversation::ConversationEvent;
use palaver_domain::delivery::{DeliveryProgress, DeliveryUpdate};
use palaver_domain::ids::{CampaignId, ContactId, MessageId, WorkspaceId};
use palaver_store::{AllFilter, RecordedEvent};
use palaver_whatsapp::RateLimiter;

use crate::runner::{Process, ProcessError};
use crate::timers::{decode, system_in};

/// The sender's name, for its checkpoint, lease and logs.
pub const NAME: &str = "campaign-sender";

/// How the sender sends.
#[derive(Clone, Copy, Debug)]
pub struct CampaignSenderOptions {
    /// Recipients handed to the delivery worker per second, all campaigns
    /// together. Keep it under the delivery rate of a number (80 by
    /// default), so replies queued during a campaign do not wait behind it.
    pub rate: NonZeroU32,
    /// Events handled at once.
    pub concurrency: usize,
}

impl Default for CampaignSenderOptions {
    fn default() -> Self {
        CampaignSenderOptions {
            rate: NonZeroU32::new(40).expect("40 is not zero"),
            concurrency: 8,
        }
    }
}

/// The campaign sender. Run it with [`crate::runner::run`].
#[derive(Debug)]
pub struct CampaignSender {
    app: App,
    concurrency: usize,
    /// Paces recipients' starts; status events are not paced.
    limiter: RateLimiter,
}

impl CampaignSender {
    /// The sender over `app`.
    pub fn new(app: App, options: CampaignSenderOptions) -> Self {
        CampaignSender {
            app,
            concurrency: options.concurrency.max(1),
            limiter: RateLimiter::per_second(options.rate),
        }
    }

    /// The workspace of a campaign named by an event; `None` (logged) for
    /// a campaign without events, which its own event rules out.
    async fn workspace_of(&self, campaign_id: CampaignId) -> Result<Option<WorkspaceId>, ProcessError> {
        let workspace = self
            .app
            .campaign_workspace(campaign_id)
            .await
            .map_err(ProcessError::new)?;
        if workspace.is_none() {
            tracing::error!(worker = NAME, %campaign_id, "campaign without a workspace; event skipped");
        }
        Ok(workspace)
    }

    async fn recipient_queued(
        &self,
        campaign_id: CampaignId,
        contact_id: ContactId,
    ) -> Result<(), ProcessError> {
        let Some(workspace) = self.workspace_of(campaign_id).await? else {
            return Ok(());
        };
        self.limiter.acquire().await;
        match self
            .app
            .send_campaign_recipient(&system_in(workspace), campaign_id, contact_id)
            .await
        {
            Ok(sent) => {
                match sent.value {
                    RecipientSendOutcome::Queued { conversation_id } => {
                        tracing::debug!(worker = NAME, %campaign_id, %contact_id, %conversation_id, "campaign send queued");
                    }
                    RecipientSendOutcome::Skipped { reason } => {
                        tracing::info!(worker = NAME, %campaign_id, %contact_id, reason, "campaign recipient skipped");
                    }
                }
                Ok(())
            }
            Err(error) if error.is_transient() => Err(ProcessError::new(error)),
            Err(error) => {
                tracing::error!(worker = NAME, %campaign_id, %contact_id, %error, "campaign recipient not handled; skipped");
                Ok(())
            }
        }
    }

    async fn cancelled(&self, campaign_id: CampaignId) -> Result<(), ProcessError> {
        let Some(workspace) = self.workspace_of(campaign_id).await? else {
            return Ok(());
        };
        match self
            .app
            .skip_unsent_campaign_sends(&system_in(workspace), campaign_id)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.is_transient() => Err(ProcessError::new(error)),
            Err(error) => {
                tracing::error!(worker = NAME, %campaign_id, %error, "unsent campaign messages not skipped");
                Ok(())
            }
        }
    }

    /// Records a message's status on its campaign, if it is a campaign's.
    async fn status(&self, message_id: MessageId, update: DeliveryUpdate) -> Result<(), ProcessError> {
        let Some(send) = self
            .app
            .campaign_send(message_id)
            .await
            .map_err(ProcessError::new)?
        else {
            return Ok(());
        };
        match self
            .app
            .record_recipient_status(
                &system_in(send.workspace_id),
                send.campaign_id,
                send.contact_id,
                update,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.is_transient() => Err(ProcessError::new(error)),
            Err(error) => {
                tracing::error!(
                    worker = NAME,
                    campaign_id = %send.campaign_id,
                    %message_id,
                    %error,
                    "recipient status not recorded",
                );
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Process for CampaignSender {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self) -> AllFilter {
        AllFilter::event_types([
            t::CAMPAIGN_RECIPIENT_QUEUED,
            t::CAMPAIGN_CANCELLED,
            t::OUTBOUND_MESSAGE_ACCEPTED,
            t::DELIVERY_STATUS_CHANGED,
        ])
    }

    fn concurrency(&self) -> usize {
        // A send and a cancellation handled at once are safe: each looks
        // at the other after writing (see `palaver_app::campaign_sends`).
        self.concurrency
    }

    async fn handle(&self, event: RecordedEvent) -> Result<(), ProcessError> {
        match decode(NAME, &event) {
            Some(DomainEvent::Campaign(CampaignEvent::RecipientQueued {
                campaign_id,
                contact_id,
                ..
            })) => self.recipient_queued(campaign_id, contact_id).await,
            Some(DomainEvent::Campaign(CampaignEvent::Cancelled { campaign_id, .. })) => {
                self.cancelled(campaign_id).await
            }
            Some(DomainEvent::Conversation(ConversationEvent::OutboundAccepted {
                message_id, at, ..
            })) => {
                let sent = DeliveryUpdate::Progress {
                    progress: DeliveryProgress::Sent,
                    at,
                };
                self.status(message_id, sent).await
            }
            Some(DomainEvent::Conversation(ConversationEvent::DeliveryStatusChanged {
                message_id,
                update,
                ..
            })) => self.status(message_id, update).await,
            _ => Ok(()),
        }
    }
}
