//! Campaigns: one template to a list of contacts, now, at a time, or when a
//! named event happens to a recipient. The campaign only queues sends; the
//! outbound sender (not in this crate yet) turns each queued recipient into
//! the "start a conversation" process.

use chrono::{DateTime, Utc};
use palaver_domain::campaign::{Campaign, CampaignCommand, CampaignEvent, CampaignTrigger};
use palaver_domain::delivery::DeliveryState;
use palaver_domain::ids::{CampaignId, ContactId, MessageId, PhoneNumberId, WorkspaceId};
use palaver_domain::templates::TemplateSend;

use crate::error::{Error, Result};
use crate::repository::Step;
use crate::{App, CommandContext, CommandResult};

/// A campaign to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCampaign {
    /// The business number to send from.
    pub phone_number_id: PhoneNumberId,
    /// The template, checked against the number's catalogue now (and again
    /// at each send).
    pub template: TemplateSend,
    /// Recipients, all of the workspace. May be empty only for an
    /// event-triggered campaign (then any contact the event names).
    pub recipients: Vec<ContactId>,
    /// Now, at a time, or on a named event.
    pub trigger: CampaignTrigger,
}

/// Where a campaign stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CampaignState {
    /// Created; waiting for its time or its events.
    Created,
    /// Sending (immediate and scheduled campaigns, once launched).
    Launched,
    /// Cancelled: queues nothing more.
    Cancelled,
}

/// Where one recipient stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecipientState {
    /// Not queued yet (before launch, or before its event).
    Waiting,
    /// Queued as `message_id`; `delivery` is what WhatsApp reported.
    Queued {
        /// The template message, one per recipient.
        message_id: MessageId,
        /// Merged delivery reports.
        delivery: DeliveryState,
    },
}

/// One recipient of a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientView {
    /// The contact.
    pub contact_id: ContactId,
    /// Its send.
    pub state: RecipientState,
}

/// A campaign as its stream tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignView {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// Created, launched or cancelled.
    pub state: CampaignState,
    /// The number it sends from.
    pub business_phone_number_id: PhoneNumberId,
    /// The template.
    pub template: TemplateSend,
    /// How it is triggered.
    pub trigger: CampaignTrigger,
    /// The listed recipients, then those an event added.
    pub recipients: Vec<RecipientView>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl App {
    /// Creates a campaign; an immediate one is launched at once (its
    /// recipients queued). Target: the new campaign.
    pub async fn create_campaign(
        &self,
        ctx: &CommandContext,
        campaign: NewCampaign,
    ) -> Result<CommandResult<CampaignId>> {
        let cmd = self.begin(ctx, "create_campaign");
        self.run(&cmd, async {
            let workspace = ctx.workspace_id;
            if let CampaignTrigger::OnEvent { event_name } = &campaign.trigger
                && event_name.trim().is_empty()
            {
                return Err(Error::invalid("trigger", "the event name is empty"));
            }
            for contact in &campaign.recipients {
                self.contact_in(workspace, *contact).await?;
            }
            let checked = self
                .check_template(workspace, &campaign.phone_number_id, campaign.template.clone())
                .await?;
            let id = CampaignId::from_uuid(cmd.new_id("campaign"));
            // Listed first: a listed campaign that was never written is
            // skipped by the fan-out, while an unlisted one would miss events.
            self.list_campaign(&cmd, id).await?;
            self.execute::<Campaign>(&cmd, &Campaign::stream_name(id), Step::PRIMARY, |_| {
                Ok(vec![CampaignCommand::Create {
                    campaign_id: id,
                    workspace_id: workspace,
                    business_phone_number_id: campaign.phone_number_id.clone(),
                    template: checked.clone(),
                    recipients: campaign.recipients.clone(),
                    trigger: campaign.trigger.clone(),
                    by: ctx.actor.clone(),
                }])
            })
            .await?;
            Ok(id)
        })
        .await
    }

    /// Launches a scheduled campaign at or after its time (the scheduler
    /// calls this; before the time it is `CampaignNotDue`). Target: the
    /// campaign.
    pub async fn launch_campaign(
        &self,
        ctx: &CommandContext,
        campaign_id: CampaignId,
    ) -> Result<CommandResult> {
        self.campaign_action(ctx, "launch_campaign", campaign_id, CampaignCommand::Launch)
            .await
    }

    /// Cancels a campaign: nothing more is queued. Target: the campaign.
    pub async fn cancel_campaign(
        &self,
        ctx: &CommandContext,
        campaign_id: CampaignId,
    ) -> Result<CommandResult> {
        let by = ctx.actor.clone();
        self.campaign_action(
            ctx,
            "cancel_campaign",
            campaign_id,
            CampaignCommand::Cancel { by },
        )
        .await
    }

    /// Reports a named event (e.g. `tag_added:vip`) for a contact: every
    /// campaign of the workspace waiting for it queues that contact (once).
    /// Campaigns not listening ignore it.
    pub async fn trigger_event(
        &self,
        ctx: &CommandContext,
        event_name: &str,
        contact_id: ContactId,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "trigger_event");
        self.run(&cmd, async {
            if event_name.trim().is_empty() {
                return Err(Error::invalid("event_name", "is empty"));
            }
            self.contact_in(ctx.workspace_id, contact_id).await?;
            for campaign_id in self.campaigns_of(ctx.workspace_id).await? {
                let outcome = self
                    .execute::<Campaign>(
                        &cmd,
                        &Campaign::stream_name(campaign_id),
                        Step::default(),
                        |campaign| {
                            // Listed but never written (a crash at creation).
                            if campaign.revision.is_none() {
                                return Ok(vec![]);
                            }
                            Ok(vec![CampaignCommand::HandleEvent {
                                event_name: event_name.to_owned(),
                                contact_id,
                            }])
                        },
                    )
                    .await;
                outcome?;
            }
            Ok(())
        })
        .await
    }

    /// A campaign of the workspace, read from its stream (there is no read
    /// model of campaigns).
    pub async fn campaign_status(
        &self,
        workspace: WorkspaceId,
        campaign_id: CampaignId,
    ) -> Result<CampaignView> {
        let campaign = self.campaign_in(workspace, campaign_id).await?;
        let Some(created) = campaign.events.iter().find_map(|e| match &e.event {
            CampaignEvent::Created {
                business_phone_number_id,
                template,
                recipients,
                trigger,
                at,
                ..
            } => Some((business_phone_number_id, template, recipients, trigger, at)),
            _ => None,
        }) else {
            return Err(Error::not_found("campaign", campaign_id));
        };
        let (number, template, listed, trigger, created_at) = created;
        let state = if campaign.state.is_cancelled() {
            CampaignState::Cancelled
        } else if campaign.state.is_launched() {
            CampaignState::Launched
        } else {
            CampaignState::Created
        };
        let sends = campaign.state.sends();
        let view = |contact_id: ContactId| RecipientView {
            contact_id,
            state: match sends.get(&contact_id) {
                Some(send) => RecipientState::Queued {
                    message_id: send.message_id,
                    delivery: send.delivery.clone(),
                },
                None => RecipientState::Waiting,
            },
        };
        let mut recipients: Vec<RecipientView> = listed.iter().copied().map(view).collect();
        recipients.extend(sends.keys().filter(|c| !listed.contains(c)).copied().map(view));
        Ok(CampaignView {
            campaign_id,
            state,
            business_phone_number_id: number.clone(),
            template: template.clone(),
            trigger: trigger.clone(),
            recipients,
            created_at: *created_at,
        })
    }

    async fn campaign_action(
        &self,
        ctx: &CommandContext,
        name: &'static str,
        campaign_id: CampaignId,
        command: CampaignCommand,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, name);
        self.run(&cmd, async {
            self.campaign_in(ctx.workspace_id, campaign_id).await?;
            self.execute::<Campaign>(&cmd, &Campaign::stream_name(campaign_id), Step::PRIMARY, |_| {
                Ok(vec![command.clone()])
            })
            .await?;
            Ok(())
        })
        .await
    }
}
