//! WebhookService: stored WhatsApp payloads the intake parked or failed.
//! Admin for every workspace: a payload belongs to no workspace until it is
//! handled.

use palaver_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::Api;
use crate::{
    auth::{Role, principal},
    convert,
    status::{app_status, intake_not_running, intake_status, unknown_payload},
};

#[tonic::async_trait]
impl pb::webhook_service_server::WebhookService for Api {
    async fn list_webhook_payloads(
        &self,
        request: Request<pb::ListWebhookPayloadsRequest>,
    ) -> Result<Response<pb::ListWebhookPayloadsResponse>, Status> {
        principal(&request)?.authorize_all(Role::Admin)?;
        let intake = self.options.intake.as_ref().ok_or_else(intake_not_running)?;
        let keep = convert::payload_filter(request.get_ref().state)?;
        let payloads = intake.list(keep).await.map_err(intake_status)?;
        Ok(Response::new(pb::ListWebhookPayloadsResponse {
            payloads: payloads.into_iter().map(convert::payload_summary).collect(),
        }))
    }

    async fn reprocess_webhook_payload(
        &self,
        request: Request<pb::ReprocessWebhookPayloadRequest>,
    ) -> Result<Response<pb::ReprocessWebhookPayloadResponse>, Status> {
        principal(&request)?.authorize_all(Role::Admin)?;
        let intake = self.options.intake.as_ref().ok_or_else(intake_not_running)?;
        let payload_id = convert::payload_id(&request.get_ref().payload_id)?;
        // The intake takes an unknown id for store trouble; asked first, it
        // is the caller's NOT_FOUND.
        let stored = self
            .app
            .webhook_payload(payload_id)
            .await
            .map_err(app_status)?
            .ok_or_else(|| unknown_payload(payload_id))?;
        tracing::info!(%payload_id, "webhook payload reprocessed on request");
        let outcome = intake.process(payload_id).await.map_err(intake_status)?;
        Ok(Response::new(pb::ReprocessWebhookPayloadResponse {
            payload: Some(convert::reprocessed(payload_id, stored.received_at(), outcome)),
        }))
    }
}
