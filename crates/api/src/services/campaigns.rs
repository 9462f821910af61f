//! CampaignService: template campaigns now, scheduled or event-triggered.

use palaver_app::{CampaignState, NewCampaign, RecipientState};
use palaver_domain::{
    campaign::CampaignTrigger,
    codec::api,
    delivery::DeliveryProgress,
    ids::{CampaignId, PhoneNumberId},
};
use palaver_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, command_context, query_context, result};
use crate::{
    auth::Role,
    convert,
    status::{app_status, invalid},
};

fn campaign_id(value: &str) -> Result<CampaignId, Status> {
    convert::uuid(value, "campaign_id").map(CampaignId::from_uuid)
}

#[tonic::async_trait]
impl pb::campaign_service_server::CampaignService for Api {
    async fn create_campaign(
        &self,
        request: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::CreateCampaignResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let request = request.into_inner();
        use pb::create_campaign_request::Trigger;
        let trigger = match request.trigger.ok_or_else(|| invalid("trigger", "is required"))? {
            Trigger::Now(_) => CampaignTrigger::Immediately,
            Trigger::ScheduledAt(at) => {
                CampaignTrigger::ScheduledAt(convert::time(Some(at), "scheduled_at")?)
            }
            Trigger::OnEvent(name) => CampaignTrigger::OnEvent {
                event_name: convert::required(&name, "on_event")?.to_owned(),
            },
        };
        let template = request
            .template
            .ok_or_else(|| invalid("template", "is required"))?;
        let campaign = NewCampaign {
            phone_number_id: PhoneNumberId::new(convert::required(
                &request.phone_number_id,
                "phone_number_id",
            )?),
            template: api::template_send(template),
            recipients: request
                .contact_ids
                .iter()
                .map(|id| convert::contact(id, "contact_ids"))
                .collect::<Result<_, _>>()?,
            trigger,
        };
        let done = self
            .app
            .create_campaign(&ctx, campaign)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::CreateCampaignResponse {
            result: result(done.position),
            campaign_id: done.value.to_string(),
        }))
    }

    async fn cancel_campaign(
        &self,
        request: Request<pb::CancelCampaignRequest>,
    ) -> Result<Response<pb::CancelCampaignResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let id = campaign_id(&request.get_ref().campaign_id)?;
        let done = self.app.cancel_campaign(&ctx, id).await.map_err(app_status)?;
        Ok(Response::new(pb::CancelCampaignResponse {
            result: result(done.position),
        }))
    }

    async fn trigger_event(
        &self,
        request: Request<pb::TriggerEventRequest>,
    ) -> Result<Response<pb::TriggerEventResponse>, Status> {
        let ctx = command_context(&request, request.get_ref().options.as_ref(), Role::Write)?;
        let name = convert::required(&request.get_ref().event_name, "event_name")?.to_owned();
        let contact = convert::contact(&request.get_ref().contact_id, "contact_id")?;
        let done = self
            .app
            .trigger_event(&ctx, &name, contact)
            .await
            .map_err(app_status)?;
        Ok(Response::new(pb::TriggerEventResponse {
            result: result(done.position),
        }))
    }

    async fn get_campaign(
        &self,
        request: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let (workspace, _) = query_context(&request, request.get_ref().options.as_ref())?;
        let id = campaign_id(&request.get_ref().campaign_id)?;
        let view = self
            .app
            .campaign_status(workspace, id)
            .await
            .map_err(app_status)?;
        let state = match view.state {
            CampaignState::Created => "created",
            CampaignState::Launched => "launched",
            CampaignState::Cancelled => "cancelled",
        };
        let recipients = view
            .recipients
            .into_iter()
            .map(|recipient| {
                let (state, failure) = match recipient.state {
                    RecipientState::Waiting => ("waiting", None),
                    RecipientState::Queued { delivery, .. } => {
                        let failure = delivery.failures.last().map(|f| pb::DeliveryFailure {
                            code: f.code,
                            reason: f.reason.clone(),
                        });
                        let state = if failure.is_some() {
                            "failed"
                        } else {
                            match delivery.progress {
                                DeliveryProgress::Queued => "queued",
                                DeliveryProgress::Sent => "sent",
                                DeliveryProgress::Delivered => "delivered",
                                DeliveryProgress::Read => "read",
                            }
                        };
                        (state, failure)
                    }
                };
                pb::CampaignRecipient {
                    contact_id: recipient.contact_id.to_string(),
                    state: state.to_owned(),
                    failure,
                }
            })
            .collect();
        Ok(Response::new(pb::Campaign {
            campaign_id: view.campaign_id.to_string(),
            state: state.to_owned(),
            template: Some(api::template_send_to_proto(&view.template)),
            recipients,
        }))
    }
}
