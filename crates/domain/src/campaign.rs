//! Outbound campaigns (stream `campaign-<id>`): one template sent to a list
//! of contacts now, at a scheduled time, or whenever a named event happens
//! to a contact (a tag added, a custom event received over gRPC). Each
//! recipient's send is tracked here with the same monotonic delivery merge
//! as conversation messages.
//!
//! The campaign only queues sends; the outbound sender (application layer)
//! starts or continues each recipient's conversation with the template,
//! which checks it against the catalogue again at that moment (a template
//! can be paused between creation and sending).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::aggregate::Aggregate;
use crate::delivery::{DeliveryState, DeliveryUpdate};
use crate::ids::{Actor, CampaignId, ContactId, MessageId, PhoneNumberId, WorkspaceId};
use crate::stream::StreamName;
use crate::templates::{CheckedTemplateSend, TemplateSend};
use crate::{Error, Result};

/// When a campaign sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CampaignTrigger {
    /// As soon as it is created.
    Immediately,
    /// At this time (the scheduler launches it).
    ScheduledAt(DateTime<Utc>),
    /// Whenever the named event happens to a recipient.
    OnEvent {
        /// E.g. `contact.tag_added:vip` or a custom event name.
        event_name: String,
    },
}

/// Commands on a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CampaignCommand {
    /// Create it (an immediate campaign also queues every recipient).
    Create {
        /// New id.
        campaign_id: CampaignId,
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Business number sending.
        business_phone_number_id: PhoneNumberId,
        /// The checked template.
        template: CheckedTemplateSend,
        /// Audience; duplicates are ignored. For event triggers, empty
        /// means any contact.
        recipients: Vec<ContactId>,
        /// When it sends.
        trigger: CampaignTrigger,
        /// Who.
        by: Actor,
    },
    /// The scheduler says a scheduled campaign is due.
    Launch,
    /// A named event happened to a contact.
    HandleEvent {
        /// Event name.
        event_name: String,
        /// The contact it happened to.
        contact_id: ContactId,
    },
    /// A recipient's send moved forward or failed.
    RecordRecipientStatus {
        /// The recipient.
        contact_id: ContactId,
        /// The report.
        update: DeliveryUpdate,
    },
    /// Stop queueing sends.
    Cancel {
        /// Who.
        by: Actor,
    },
}

/// Events of a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CampaignEvent {
    /// Created.
    Created {
        /// This campaign.
        campaign_id: CampaignId,
        /// Workspace.
        workspace_id: WorkspaceId,
        /// Business number.
        business_phone_number_id: PhoneNumberId,
        /// The template.
        template: TemplateSend,
        /// Audience.
        recipients: Vec<ContactId>,
        /// When it sends.
        trigger: CampaignTrigger,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Started sending.
    Launched {
        /// This campaign.
        campaign_id: CampaignId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A recipient's send was queued.
    RecipientQueued {
        /// This campaign.
        campaign_id: CampaignId,
        /// The recipient.
        contact_id: ContactId,
        /// The send's message id.
        message_id: MessageId,
        /// The event that triggered it, for event campaigns.
        trigger_event: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A recipient's send moved forward or failed.
    RecipientStatusChanged {
        /// This campaign.
        campaign_id: CampaignId,
        /// The recipient.
        contact_id: ContactId,
        /// The report.
        update: DeliveryUpdate,
    },
    /// Cancelled.
    Cancelled {
        /// This campaign.
        campaign_id: CampaignId,
        /// Who.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// One recipient's send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientSend {
    /// The template message's id.
    pub message_id: MessageId,
    /// Merged delivery state.
    pub delivery: DeliveryState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Definition {
    id: CampaignId,
    template: TemplateSend,
    business_phone_number_id: PhoneNumberId,
    recipients: Vec<ContactId>,
    trigger: CampaignTrigger,
}

/// A campaign's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Campaign {
    definition: Option<Definition>,
    launched: bool,
    cancelled: bool,
    sends: BTreeMap<ContactId, RecipientSend>,
}

impl Campaign {
    /// The stream of a campaign.
    pub fn stream_name(id: CampaignId) -> StreamName {
        StreamName::new(Self::CATEGORY, &id.to_string()).expect("a UUID is a valid id")
    }

    /// Each queued recipient's send.
    pub fn sends(&self) -> &BTreeMap<ContactId, RecipientSend> {
        &self.sends
    }

    /// Whether it was launched (immediate or scheduled campaigns).
    pub fn is_launched(&self) -> bool {
        self.launched
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    fn queue(
        &self,
        id: CampaignId,
        contact_id: ContactId,
        trigger_event: Option<String>,
        now: DateTime<Utc>,
    ) -> CampaignEvent {
        CampaignEvent::RecipientQueued {
            campaign_id: id,
            contact_id,
            message_id: MessageId::derive_campaign_send(id, contact_id),
            trigger_event,
            at: now,
        }
    }

    fn launch(&self, def: &Definition, now: DateTime<Utc>) -> Vec<CampaignEvent> {
        std::iter::once(CampaignEvent::Launched {
            campaign_id: def.id,
            at: now,
        })
        .chain(def.recipients.iter().map(|&c| self.queue(def.id, c, None, now)))
        .collect()
    }
}

impl Aggregate for Campaign {
    const CATEGORY: &'static str = "campaign";
    type Command = CampaignCommand;
    type Event = CampaignEvent;

    fn decide(&self, command: CampaignCommand, now: DateTime<Utc>) -> Result<Vec<CampaignEvent>> {
        match command {
            CampaignCommand::Create {
                campaign_id,
                workspace_id,
                business_phone_number_id,
                template,
                recipients,
                trigger,
                by,
            } => {
                let mut audience: Vec<ContactId> = Vec::with_capacity(recipients.len());
                for r in recipients {
                    if !audience.contains(&r) {
                        audience.push(r);
                    }
                }
                let def = Definition {
                    id: campaign_id,
                    template: template.into_send(),
                    business_phone_number_id,
                    recipients: audience,
                    trigger,
                };
                if let Some(existing) = &self.definition {
                    return if *existing == def {
                        Ok(vec![])
                    } else {
                        Err(Error::AlreadyExists("campaign"))
                    };
                }
                if def.recipients.is_empty() && !matches!(def.trigger, CampaignTrigger::OnEvent { .. }) {
                    return Err(Error::EmptyAudience);
                }
                let mut events = vec![CampaignEvent::Created {
                    campaign_id,
                    workspace_id,
                    business_phone_number_id: def.business_phone_number_id.clone(),
                    template: def.template.clone(),
                    recipients: def.recipients.clone(),
                    trigger: def.trigger.clone(),
                    by,
                    at: now,
                }];
                if def.trigger == CampaignTrigger::Immediately {
                    events.extend(self.launch(&def, now));
                }
                Ok(events)
            }
            CampaignCommand::Launch => {
                let def = self.definition.as_ref().ok_or(Error::NotFound("campaign"))?;
                if self.cancelled {
                    return Err(Error::CampaignCancelled);
                }
                match def.trigger {
                    CampaignTrigger::OnEvent { .. } => Err(Error::WrongTrigger),
                    _ if self.launched => Ok(vec![]),
                    CampaignTrigger::ScheduledAt(at) if now < at => {
                        Err(Error::CampaignNotDue { scheduled_at: at })
                    }
                    _ => Ok(self.launch(def, now)),
                }
            }
            CampaignCommand::HandleEvent {
                event_name,
                contact_id,
            } => {
                let def = self.definition.as_ref().ok_or(Error::NotFound("campaign"))?;
                // Events fan out to every campaign; the ones a campaign does
                // not listen for are not errors, just not for it.
                let listens =
                    matches!(&def.trigger, CampaignTrigger::OnEvent { event_name: e } if *e == event_name);
                let in_audience = def.recipients.is_empty() || def.recipients.contains(&contact_id);
                if self.cancelled || !listens || !in_audience || self.sends.contains_key(&contact_id) {
                    return Ok(vec![]);
                }
                Ok(vec![self.queue(def.id, contact_id, Some(event_name), now)])
            }
            CampaignCommand::RecordRecipientStatus { contact_id, update } => {
                let def = self.definition.as_ref().ok_or(Error::NotFound("campaign"))?;
                let send = self
                    .sends
                    .get(&contact_id)
                    .ok_or(Error::NotFound("campaign recipient"))?;
                if !send.delivery.is_news(&update) {
                    return Ok(vec![]);
                }
                Ok(vec![CampaignEvent::RecipientStatusChanged {
                    campaign_id: def.id,
                    contact_id,
                    update,
                }])
            }
            CampaignCommand::Cancel { by } => {
                let def = self.definition.as_ref().ok_or(Error::NotFound("campaign"))?;
                if self.cancelled {
                    return Ok(vec![]);
                }
                Ok(vec![CampaignEvent::Cancelled {
                    campaign_id: def.id,
                    by,
                    at: now,
                }])
            }
        }
    }

    fn evolve(mut self, event: &CampaignEvent) -> Self {
        match event {
            CampaignEvent::Created {
                campaign_id,
                business_phone_number_id,
                template,
                recipients,
                trigger,
                ..
            } => {
                self.definition = Some(Definition {
                    id: *campaign_id,
                    template: template.clone(),
                    business_phone_number_id: business_phone_number_id.clone(),
                    recipients: recipients.clone(),
                    trigger: trigger.clone(),
                });
            }
            CampaignEvent::Launched { .. } => self.launched = true,
            CampaignEvent::RecipientQueued {
                contact_id,
                message_id,
                ..
            } => {
                self.sends.entry(*contact_id).or_insert(RecipientSend {
                    message_id: *message_id,
                    delivery: DeliveryState::default(),
                });
            }
            CampaignEvent::RecipientStatusChanged {
                contact_id, update, ..
            } => {
                if let Some(send) = self.sends.get_mut(contact_id) {
                    send.delivery = std::mem::take(&mut send.delivery).merge(update);
                }
            }
            CampaignEvent::Cancelled { .. } => self.cancelled = true,
        }
        self
    }
}
