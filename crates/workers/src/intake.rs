//! The webhook intake worker: turns each stored WhatsApp payload into
//! commands, and replays parked payloads when their number is connected.
//!
//! The HTTP handler only verifies, parses and stores (`App::receive_webhook`)
//! before answering 200; this worker follows the stored payloads in `$all`.
//! Every item goes through an idempotent command (a message id seen before
//! is a no-op), so handling a payload again after a crash or a reprocess is
//! harmless. What became of a payload is recorded on its stream:
//!
//! - processed: every item was handled (or found done);
//! - parked: some items are for business numbers no workspace has
//!   connected; when one is connected the payload is handled again;
//! - failed: an item was refused (or the payload no longer parses, which
//!   would be a bug: it parsed before it was stored); `palaver webhooks
//!   reprocess` retries it after a fix.
//!
//! A status for a message whose Cloud API answer was lost is reconciled
//! here: the delivery worker sends `"<conversation id>/<message id>"` as
//! `biz_opaque_callback_data`, and Meta returns it in status webhooks, so
//! the send is recorded as accepted under the reported WhatsApp id.

use std::collections::BTreeSet;

use async_trait::async_trait;
use palaver_app::{App, CommandContext, DeliveryTarget, Error as AppError, Precondition};
use palaver_domain::channel::ChannelEvent;
use palaver_domain::codec::{self, DomainEvent, event_types as t};
use palaver_domain::error::Error as DomainError;
use palaver_domain::ids::{Actor, ConversationId, MessageId, PayloadId, PhoneNumberId, WaId, WorkspaceId};
use palaver_domain::intake::{PayloadCommand, PayloadEvent, PayloadOutcome};
use palaver_store::{AllFilter, Position, RecordedEvent};
use palaver_whatsapp::webhook::{Customer, Item, parse_items};

use crate::runner::{Process, ProcessError};

/// What handling a payload came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Every item handled.
    Processed {
        /// Items in the payload.
        items: u32,
    },
    /// Waiting for these numbers to be connected.
    Parked(Vec<PhoneNumberId>),
    /// Refused; the reason is recorded.
    Failed(String),
}

/// A stored payload as the audit commands list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadSummary {
    /// Its id.
    pub payload_id: PayloadId,
    /// When it was stored.
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What became of it.
    pub outcome: PayloadOutcome,
}

/// The intake worker.
#[derive(Clone, Debug)]
pub struct Intake {
    app: App,
}

/// How one item went.
enum ItemOutcome {
    Done,
    Parked(PhoneNumberId),
    Refused(String),
}

impl Intake {
    /// The intake over `app`.
    pub fn new(app: App) -> Self {
        Intake { app }
    }

    /// Handles one stored payload and records its outcome. Store failures
    /// come back as [`ProcessError`] (try again); refusals are outcomes.
    pub async fn process(&self, payload_id: PayloadId) -> Result<IntakeOutcome, ProcessError> {
        let Some(payload) = self
            .app
            .webhook_payload(payload_id)
            .await
            .map_err(ProcessError::new)?
        else {
            return Err(ProcessError::new(format!(
                "webhook payload {payload_id} is not stored"
            )));
        };
        let outcome = match parse_items(payload.body()) {
            Err(error) => IntakeOutcome::Failed(format!("the stored payload no longer parses: {error}")),
            Ok(items) => self.handle_items(&items).await?,
        };
        let command = match &outcome {
            IntakeOutcome::Processed { items } => PayloadCommand::MarkProcessed { items: *items },
            IntakeOutcome::Parked(numbers) => PayloadCommand::Park {
                phone_number_ids: numbers.clone(),
            },
            IntakeOutcome::Failed(error) => PayloadCommand::MarkFailed { error: error.clone() },
        };
        match &outcome {
            IntakeOutcome::Processed { .. } => {}
            IntakeOutcome::Parked(numbers) => {
                tracing::warn!(%payload_id, ?numbers, "webhook parked: no workspace has connected these numbers");
            }
            IntakeOutcome::Failed(error) => tracing::error!(%payload_id, %error, "webhook payload failed"),
        }
        self.app
            .settle_webhook(payload_id, command)
            .await
            .map_err(ProcessError::new)?;
        Ok(outcome)
    }

    async fn handle_items(&self, items: &[Item]) -> Result<IntakeOutcome, ProcessError> {
        let mut parked = BTreeSet::new();
        let mut refusals = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match self.handle_item(item).await? {
                ItemOutcome::Done => {}
                ItemOutcome::Parked(number) => {
                    parked.insert(number);
                }
                ItemOutcome::Refused(reason) => refusals.push(format!("item {index}: {reason}")),
            }
        }
        Ok(if !parked.is_empty() {
            IntakeOutcome::Parked(parked.into_iter().collect())
        } else if !refusals.is_empty() {
            IntakeOutcome::Failed(refusals.join("; "))
        } else {
            IntakeOutcome::Processed {
                items: u32::try_from(items.len()).unwrap_or(u32::MAX),
            }
        })
    }

    async fn workspace(&self, number: &PhoneNumberId) -> Result<Option<WorkspaceId>, ProcessError> {
        self.app
            .workspace_of_number(number)
            .await
            .map_err(ProcessError::new)
    }

    async fn handle_item(&self, item: &Item) -> Result<ItemOutcome, ProcessError> {
        match item {
            Item::Message {
                phone_number_id,
                customer,
                message,
                ..
            } => {
                let Some(workspace) = self.workspace(phone_number_id).await? else {
                    return Ok(ItemOutcome::Parked(phone_number_id.clone()));
                };
                let Some(customer_id) = customer_id(customer) else {
                    return Ok(ItemOutcome::Refused(
                        "the sender has neither a wa_id nor a user id".into(),
                    ));
                };
                let ctx = context(workspace);
                let result = self
                    .app
                    .record_inbound(
                        &ctx,
                        phone_number_id.clone(),
                        customer_id,
                        &customer.profile_name,
                        message.clone(),
                    )
                    .await;
                settle_item(result.map(|_| ()))
            }
            Item::Status {
                phone_number_id,
                wa_message_id,
                update,
                callback_data,
                ..
            } => {
                let Some(workspace) = self.workspace(phone_number_id).await? else {
                    return Ok(ItemOutcome::Parked(phone_number_id.clone()));
                };
                let ctx = context(workspace);
                let status = || {
                    self.app.record_delivery_status(
                        &ctx,
                        DeliveryTarget::WhatsApp(wa_message_id.clone()),
                        update.clone(),
                    )
                };
                match status().await {
                    Err(AppError::FailedPrecondition(Precondition::Domain(
                        DomainError::UnknownWaMessage(_),
                    ))) => {
                        // Our send's answer may have been lost: the callback
                        // data names it, so record the acceptance first.
                        let Some((conversation_id, message_id)) =
                            callback_data.as_deref().and_then(parse_callback)
                        else {
                            tracing::info!(%wa_message_id, "status for a message Palaver did not send; ignored");
                            return Ok(ItemOutcome::Done);
                        };
                        let accepted = self
                            .app
                            .record_accepted(&ctx, conversation_id, message_id, wa_message_id.clone())
                            .await;
                        if let outcome @ (ItemOutcome::Refused(_) | ItemOutcome::Parked(_)) =
                            settle_item(accepted.map(|_| ()))?
                        {
                            return Ok(outcome);
                        }
                        settle_item(status().await.map(|_| ()))
                    }
                    other => settle_item(other.map(|_| ())),
                }
            }
            Item::TemplateStatus {
                waba_id,
                name,
                language,
                status,
                reason,
            } => {
                let result = self
                    .app
                    .record_template_status(
                        waba_id.clone(),
                        name,
                        language,
                        *status,
                        reason.as_deref().unwrap_or_default(),
                    )
                    .await;
                match result {
                    // A template synced later brings its status with it.
                    Err(AppError::NotFound { .. }) => {
                        tracing::info!(%waba_id, name, language, "status of a template not in the catalogue; ignored");
                        Ok(ItemOutcome::Done)
                    }
                    other => settle_item(other.map(|_| ())),
                }
            }
            Item::Unhandled { field, reason } => {
                tracing::info!(field, reason, "webhook item not acted on");
                Ok(ItemOutcome::Done)
            }
        }
    }

    /// Handles again every payload parked for `number` (now connected).
    /// Returns how many were handled.
    pub async fn replay_parked(&self, number: &PhoneNumberId) -> Result<usize, ProcessError> {
        let mut replayed = 0;
        for summary in self
            .list(|outcome| matches!(outcome, PayloadOutcome::Parked(n) if n.contains(number)))
            .await?
        {
            self.process(summary.payload_id).await?;
            replayed += 1;
        }
        if replayed > 0 {
            tracing::info!(%number, replayed, "replayed parked webhooks");
        }
        Ok(replayed)
    }

    /// Stored payloads whose current outcome passes `keep`, oldest first.
    /// Scans the outcome events in `$all`: parked and failed payloads are
    /// rare, and audits are not on a hot path.
    pub async fn list(
        &self,
        keep: impl Fn(&PayloadOutcome) -> bool,
    ) -> Result<Vec<PayloadSummary>, ProcessError> {
        let store = self.app.store();
        let filter = AllFilter::event_types([t::WEBHOOK_PAYLOAD_PARKED, t::WEBHOOK_PAYLOAD_FAILED]);
        let mut candidates = BTreeSet::new();
        let mut after = Position::START;
        loop {
            let page = store
                .read_all(after, &filter, 1000)
                .await
                .map_err(ProcessError::new)?;
            let Some(last) = page.last() else { break };
            after = last.position;
            for event in &page {
                if let Ok(DomainEvent::Payload(
                    PayloadEvent::Parked { payload_id, .. } | PayloadEvent::Failed { payload_id, .. },
                )) = codec::decode(&event.event_type, event.schema_version, &event.payload)
                {
                    candidates.insert(payload_id);
                }
            }
        }
        let mut out = Vec::new();
        for payload_id in candidates {
            let Some(payload) = self
                .app
                .webhook_payload(payload_id)
                .await
                .map_err(ProcessError::new)?
            else {
                continue;
            };
            if keep(payload.outcome()) {
                out.push(PayloadSummary {
                    payload_id,
                    received_at: payload.received_at(),
                    outcome: payload.outcome().clone(),
                });
            }
        }
        out.sort_by_key(|s| s.received_at);
        Ok(out)
    }
}

#[async_trait]
impl Process for Intake {
    fn name(&self) -> &'static str {
        "webhook-intake"
    }

    fn filter(&self) -> AllFilter {
        AllFilter::event_types([t::WEBHOOK_PAYLOAD_RECEIVED, t::CHANNEL_NUMBER_CONNECTED])
    }

    fn concurrency(&self) -> usize {
        // Payloads are independent, but each runs several commands: more
        // than a few at once only adds optimistic-concurrency retries and
        // takes CPU from the webhook requests themselves (measured with
        // `palaver-bench webhook`: 8 at once acknowledged ~15% fewer posts).
        4
    }

    async fn handle(&self, event: RecordedEvent) -> Result<(), ProcessError> {
        match codec::decode(&event.event_type, event.schema_version, &event.payload) {
            Ok(DomainEvent::Payload(PayloadEvent::Received { payload_id, .. })) => {
                self.process(payload_id).await.map(|_| ())
            }
            Ok(DomainEvent::Channel(ChannelEvent::NumberConnected { phone_number_id, .. })) => {
                self.replay_parked(&phone_number_id).await.map(|_| ())
            }
            Ok(_) => Ok(()),
            // Undecodable: nothing this worker can do; the projections stop
            // on it and report it.
            Err(error) => {
                tracing::error!(position = event.position.0, %error, "undecodable event skipped by the intake");
                Ok(())
            }
        }
    }
}

fn context(workspace: WorkspaceId) -> CommandContext {
    CommandContext::new(workspace, Actor::System)
}

/// The id a customer is known by: the phone-based WhatsApp id when the
/// payload has it, else the business-scoped user id.
fn customer_id(customer: &Customer) -> Option<WaId> {
    customer
        .wa_id
        .clone()
        .or_else(|| customer.user_id.clone().map(WaId::new))
}

/// `"<conversation id>/<message id>"`, as the delivery worker sends it.
pub fn parse_callback(data: &str) -> Option<(ConversationId, MessageId)> {
    let (conversation, message) = data.split_once('/')?;
    Some((conversation.parse().ok()?, message.parse().ok()?))
}

/// Store and read-model trouble is retried; anything else is the item's
/// refusal, recorded on the payload.
fn settle_item(result: Result<(), AppError>) -> Result<ItemOutcome, ProcessError> {
    match result {
        Ok(()) => Ok(ItemOutcome::Done),
        Err(error) if error.is_transient() => Err(ProcessError::new(error)),
        Err(AppError::UnknownPhoneNumberId(number)) => Ok(ItemOutcome::Parked(number)),
        Err(error) => Ok(ItemOutcome::Refused(error.to_string())),
    }
}
