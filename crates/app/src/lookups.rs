//! Lookups the processes need that no aggregate keeps, each a record
//! stream (see [`crate::records`]) so it is as consistent as the events
//! themselves, without waiting for a read model:
//!
//! - `number-<phone number id>`: which workspace a business number serves.
//!   Threads are named by the number and the customer only, so a number
//!   must serve one workspace at a time; claiming it here (expected
//!   revision as read) makes that exclusive, and the webhook finds the
//!   workspace with one read.
//! - `wamessage-<UUID v5 of the WhatsApp message id>`: which conversation
//!   and message a WhatsApp id names, written when the Cloud API accepts a
//!   message, read by delivery-status webhooks (which carry only the id).
//! - `campaigns-<workspace id>`: a workspace's campaigns, for fanning a
//!   named event out to the campaigns waiting for it.

use palaver_domain::ids::{CampaignId, PhoneNumberId, WaMessageId, WorkspaceId};
use palaver_store::StreamName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::App;
use crate::context::{APP_NAMESPACE, Cmd};
use crate::error::{Error, Precondition, Result};
use crate::repository::Attempts;

const NUMBER_CLAIMED: &str = "palaver.app.NumberClaimed";
const NUMBER_RELEASED: &str = "palaver.app.NumberReleased";
const OUTBOUND_MESSAGE_NAMED: &str = "palaver.app.OutboundMessageNamed";
const CAMPAIGN_LISTED: &str = "palaver.app.CampaignListed";

#[derive(Debug, Serialize, Deserialize)]
struct NumberClaim {
    workspace_id: Uuid,
}

/// Where a WhatsApp message id points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WaMessageRecord {
    pub workspace_id: Uuid,
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub wa_message_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CampaignListed {
    campaign_id: Uuid,
}

/// The claim stream of a number; the id must be usable in a stream name
/// (WhatsApp's phone number ids are digits).
pub(crate) fn number_stream(id: &PhoneNumberId) -> Result<StreamName> {
    if id.as_str().is_empty() {
        return Err(Error::invalid("phone_number_id", "is empty"));
    }
    StreamName::from_parts("number", id).map_err(|e| Error::invalid("phone_number_id", e))
}

fn wa_message_stream(id: &WaMessageId) -> Result<StreamName> {
    // WhatsApp ids (`wamid.…`, base64) may hold characters stream names
    // cannot; a UUID v5 of the id names the stream instead.
    let key = Uuid::new_v5(&APP_NAMESPACE, format!("wamid\0{id}").as_bytes());
    StreamName::from_parts("wamessage", key).map_err(|e| Error::Internal(e.to_string()))
}

fn campaigns_stream(workspace: WorkspaceId) -> Result<StreamName> {
    StreamName::from_parts("campaigns", workspace).map_err(|e| Error::Internal(e.to_string()))
}

impl App {
    /// The workspace a business number is connected to, if any.
    pub(crate) async fn number_owner(&self, id: &PhoneNumberId) -> Result<Option<WorkspaceId>> {
        let records = self.read_records::<NumberClaim>(&number_stream(id)?).await?;
        Ok(owner(&records.events))
    }

    /// Claims a number for the command's workspace (a no-op if it already
    /// has it). Refused if another workspace holds it.
    pub(crate) async fn claim_number(&self, cmd: &Cmd<'_>, id: &PhoneNumberId) -> Result<()> {
        let stream = number_stream(id)?;
        let mut attempts = Attempts::new(&stream);
        loop {
            attempts.next().await?;
            let records = self.read_records::<NumberClaim>(&stream).await?;
            match owner(&records.events) {
                Some(owner) if owner == cmd.ctx.workspace_id => return Ok(()),
                Some(_) => {
                    return Err(Precondition::NumberInUse {
                        phone_number_id: id.clone(),
                    }
                    .into());
                }
                None => {}
            }
            let claim = NumberClaim {
                workspace_id: cmd.ctx.workspace_id.as_uuid(),
            };
            if self
                .append_record(cmd, &stream, records.expected(), NUMBER_CLAIMED, &claim)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
    }

    /// Releases the command's workspace's claim on a number, if it has one.
    pub(crate) async fn release_number(&self, cmd: &Cmd<'_>, id: &PhoneNumberId) -> Result<()> {
        let stream = number_stream(id)?;
        let mut attempts = Attempts::new(&stream);
        loop {
            attempts.next().await?;
            let records = self.read_records::<NumberClaim>(&stream).await?;
            if owner(&records.events) != Some(cmd.ctx.workspace_id) {
                return Ok(());
            }
            let release = NumberClaim {
                workspace_id: cmd.ctx.workspace_id.as_uuid(),
            };
            if self
                .append_record(cmd, &stream, records.expected(), NUMBER_RELEASED, &release)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
    }

    /// Records which conversation and message a WhatsApp id names. A
    /// second write of the same pointer is a no-op; WhatsApp never reuses
    /// an id, so a different pointer is refused as a bug.
    pub(crate) async fn name_wa_message(&self, cmd: &Cmd<'_>, record: WaMessageRecord) -> Result<()> {
        let id = WaMessageId::new(record.wa_message_id.clone());
        let stream = wa_message_stream(&id)?;
        let mut attempts = Attempts::new(&stream);
        loop {
            attempts.next().await?;
            let records = self.read_records::<WaMessageRecord>(&stream).await?;
            if let Some((_, existing)) = records.events.first() {
                return if *existing == record {
                    Ok(())
                } else {
                    Err(Error::Internal(format!(
                        "WhatsApp id {id} already names message {} of conversation {}",
                        existing.message_id, existing.conversation_id
                    )))
                };
            }
            let expected = records.expected();
            if self
                .append_record(cmd, &stream, expected, OUTBOUND_MESSAGE_NAMED, &record)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
    }

    /// Where a WhatsApp message id points, if the Cloud API's acceptance of
    /// it has been recorded.
    pub(crate) async fn wa_message(&self, id: &WaMessageId) -> Result<Option<WaMessageRecord>> {
        let records = self
            .read_records::<WaMessageRecord>(&wa_message_stream(id)?)
            .await?;
        Ok(records.events.into_iter().next().map(|(_, record)| record))
    }

    /// Adds a campaign to its workspace's list (a no-op if listed).
    pub(crate) async fn list_campaign(&self, cmd: &Cmd<'_>, campaign: CampaignId) -> Result<()> {
        let stream = campaigns_stream(cmd.ctx.workspace_id)?;
        let mut attempts = Attempts::new(&stream);
        loop {
            attempts.next().await?;
            let records = self.read_records::<CampaignListed>(&stream).await?;
            if records
                .events
                .iter()
                .any(|(_, c)| c.campaign_id == campaign.as_uuid())
            {
                return Ok(());
            }
            let listed = CampaignListed {
                campaign_id: campaign.as_uuid(),
            };
            if self
                .append_record(cmd, &stream, records.expected(), CAMPAIGN_LISTED, &listed)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
    }

    /// The workspace's campaigns, oldest first.
    pub(crate) async fn campaigns_of(&self, workspace: WorkspaceId) -> Result<Vec<CampaignId>> {
        let records = self
            .read_records::<CampaignListed>(&campaigns_stream(workspace)?)
            .await?;
        Ok(records
            .events
            .into_iter()
            .map(|(_, c)| CampaignId::from_uuid(c.campaign_id))
            .collect())
    }
}

/// The holder after a claim stream's events: the last claim, unless a
/// release followed it.
fn owner(events: &[(String, NumberClaim)]) -> Option<WorkspaceId> {
    match events.last() {
        Some((event_type, claim)) if event_type == NUMBER_CLAIMED => {
            Some(WorkspaceId::from_uuid(claim.workspace_id))
        }
        _ => None,
    }
}
