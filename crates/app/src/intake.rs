//! The WhatsApp webhook intake, application side: a signed payload is
//! stored before it is acknowledged, and its outcome (processed, parked,
//! failed) is recorded on its own stream. Turning a payload into commands
//! is the intake worker's business (crate `palaver-workers`), through the
//! ordinary commands ([`App::record_inbound`], delivery statuses, template
//! statuses).

use palaver_domain::codec::EventCodec;
use palaver_domain::ids::{Actor, BusinessAccountId, PayloadId, WorkspaceId};
use palaver_domain::intake::{PayloadCommand, PayloadEvent, WebhookPayload};
use palaver_domain::templates::{TemplateCatalogue, TemplateCommand, TemplateStatus};
use palaver_store::{Direction, ExpectedRevision, Metadata, NewEvent, Position, ReadFrom};
use uuid::Uuid;

use crate::context::APP_NAMESPACE;
use crate::error::{Error, Result};
use crate::repository::Step;
use crate::{App, CommandContext, CommandResult};

/// A stored webhook payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedPayload {
    /// Derived from the body.
    pub payload_id: PayloadId,
    /// Where it is in `$all`.
    pub position: Position,
    /// The same body was stored before (Meta redelivered it).
    pub duplicate: bool,
}

/// The context of work Palaver does on its own behalf outside any one
/// workspace (storing webhooks, template catalogues shared by the business
/// account). The nil workspace owns nothing, so tenant feeds never see it.
pub fn system_context() -> CommandContext {
    CommandContext::new(WorkspaceId::from_uuid(Uuid::nil()), Actor::System)
}

impl App {
    /// Stores a webhook body (already signature-checked and parsed by the
    /// caller) durably, once: the same body again is reported as a
    /// duplicate and writes nothing. This is the only write on the webhook
    /// request path, so it skips the load/decide loop: the stream is new or
    /// the payload is already there, and the store's expected revision
    /// tells which.
    pub async fn receive_webhook(&self, body: Vec<u8>) -> Result<ReceivedPayload> {
        let payload_id = PayloadId::of_body(&body);
        let stream = crate::repository::store_stream(&WebhookPayload::stream_name(payload_id))?;
        let encoded = PayloadEvent::Received {
            payload_id,
            body,
            at: self.inner.clock.now(),
        }
        .encode();
        let event = NewEvent::new(
            encoded.event_type,
            encoded.payload,
            Metadata::new(self.inner.clock.now()).with_actor(Actor::System.to_string()),
        )
        .with_schema_version(encoded.schema_version)
        .with_id(Uuid::new_v5(
            &APP_NAMESPACE,
            format!("webhook\0{payload_id}").as_bytes(),
        ));
        match self
            .inner
            .store
            .append(&stream, ExpectedRevision::NoStream, vec![event])
            .await
        {
            Ok(result) => Ok(ReceivedPayload {
                payload_id,
                position: result.last_position,
                duplicate: false,
            }),
            // The stream exists, or a concurrent post of the same body won
            // the race (same derived event id, another timestamp): either
            // way the payload is stored.
            Err(
                palaver_store::Error::WrongExpectedRevision { .. }
                | palaver_store::Error::EventIdConflict { .. },
            ) => {
                let first = self
                    .inner
                    .store
                    .read_stream(&stream, ReadFrom::Start, Direction::Forwards, 1)
                    .await?;
                Ok(ReceivedPayload {
                    payload_id,
                    position: first.first().map_or(Position::START, |e| e.position),
                    duplicate: true,
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// A stored payload, or `None` if no payload has this id.
    pub async fn webhook_payload(&self, payload_id: PayloadId) -> Result<Option<WebhookPayload>> {
        let loaded = self
            .load::<WebhookPayload>(&WebhookPayload::stream_name(payload_id))
            .await?;
        Ok(loaded
            .revision
            .map(|_| std::sync::Arc::unwrap_or_clone(loaded.state)))
    }

    /// Records what became of a payload (processed, parked, failed). The
    /// payload must be stored. Target: the payload.
    pub async fn settle_webhook(
        &self,
        payload_id: PayloadId,
        outcome: PayloadCommand,
    ) -> Result<CommandResult> {
        if matches!(outcome, PayloadCommand::Receive { .. }) {
            return Err(Error::invalid("outcome", "storing is `receive_webhook`'s job"));
        }
        let ctx = system_context();
        let cmd = self.begin(&ctx, "settle_webhook");
        self.run(&cmd, async {
            self.execute::<WebhookPayload>(
                &cmd,
                &WebhookPayload::stream_name(payload_id),
                Step::PRIMARY,
                |_| Ok(vec![outcome.clone()]),
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Records a template's review status as the `message_template_status_update`
    /// webhook reports it. A template the catalogue has never synced is
    /// reported as not found (sync the catalogue first). Target: the
    /// catalogue.
    pub async fn record_template_status(
        &self,
        business_account_id: BusinessAccountId,
        name: &str,
        language: &str,
        status: TemplateStatus,
        reason: &str,
    ) -> Result<CommandResult> {
        let ctx = system_context();
        let cmd = self.begin(&ctx, "record_template_status");
        self.run(&cmd, async {
            let stream = TemplateCatalogue::stream_name(&business_account_id)
                .map_err(|e| Error::invalid("business_account_id", e))?;
            self.execute::<TemplateCatalogue>(&cmd, &stream, Step::PRIMARY, |_| {
                Ok(vec![TemplateCommand::ChangeStatus {
                    name: name.to_owned(),
                    language: language.to_owned(),
                    status,
                    reason: reason.to_owned(),
                }])
            })
            .await?;
            Ok(())
        })
        .await
    }
}
