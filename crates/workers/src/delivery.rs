//! The outbound delivery worker: hands queued replies and templates to the
//! WhatsApp Cloud API, at most once each (docs/workers.md, "Delivery").
//!
//! It follows `OutboundMessageQueued` events. For each message it records
//! a fenced send attempt *before* the request goes out, then records what
//! the API answered: the WhatsApp message id, or a failure with its code
//! and reason (visible in the timeline). Transient refusals (network
//! errors that never reached the API, 429, 5xx, throttling codes) are
//! retried with exponential backoff and full jitter, a new attempt record
//! each time, up to [`DeliveryOptions::max_attempts`].
//!
//! A send that may have gone through (timeout, a connection lost after
//! sending) is never repeated: the worker schedules an
//! `ExpireUncertainSend` timer and leaves the message to reconciliation,
//! by its status webhook (the send carries `<conversation id>/<message
//! id>` as `biz_opaque_callback_data`) or by the timer. The same holds
//! after a crash: a message with an attempt recorded and no outcome is not
//! sent again.
//!
//! Sends are paced per business number ([`DeliveryOptions::rate`]), and
//! messages of one conversation go out one at a time, in the order the
//! worker meets them, so a retried message holds back the ones queued
//! after it. The access token is never logged ([`CloudApi`]'s `Debug`
//! hides it, and no log line here carries a request).

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use palaver_app::delivery::PendingSend;
use palaver_app::{App, CommandContext, DeliveryTarget, Error as AppError};
use palaver_domain::codec::{EventCodec, event_types};
use palaver_domain::conversation::ConversationEvent;
use palaver_domain::delivery::{DeliveryFailure, DeliveryUpdate};
use palaver_domain::ids::{Actor, ConversationId, MessageId, WaId};
use palaver_domain::timer::TimerAction;
use palaver_store::{AllFilter, RecordedEvent};
use palaver_whatsapp::{Backoff, CloudApi, RateLimiter, Recipient, SendError, SendRequest};
use tokio::sync::{OwnedMutexGuard, watch};

use crate::runner::{Process, ProcessError};

/// The worker's name, for its checkpoint, lease and logs.
pub const NAME: &str = "delivery";

/// Tries of a command that records an outcome, before the handler gives
/// up and the runner retries the event (which then reconciles instead of
/// resending): the answer is already in hand, losing it costs a wait.
const RECORD_TRIES: u32 = 5;

/// First pause between those tries; doubles.
const RECORD_RETRY_BASE: Duration = Duration::from_millis(50);

/// The failure code of a failure decided here rather than by WhatsApp
/// (`DeliveryFailure`'s convention for "before WhatsApp answered").
const OUR_FAILURE_CODE: i32 = 0;

/// How the worker sends.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryOptions {
    /// Sends of one message, first included, before it is failed with
    /// "gave up after N attempts".
    pub max_attempts: u32,
    /// The wait between two attempts.
    pub backoff: Backoff,
    /// Messages per second per business number: Meta's default throughput
    /// is 80, more after an upgrade.
    pub rate: NonZeroU32,
    /// How long a send whose outcome is unknown waits for its status
    /// webhook before the `ExpireUncertainSend` timer gives up on it.
    pub reconcile_after: Duration,
    /// Messages in flight at once (each may be waiting out a backoff).
    pub concurrency: usize,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            max_attempts: 8,
            backoff: Backoff::default(),
            rate: NonZeroU32::new(80).expect("80 is not zero"),
            reconcile_after: Duration::from_secs(15 * 60),
            concurrency: 16,
        }
    }
}

/// The `biz_opaque_callback_data` of a send: `<conversation id>/<message
/// id>`, both UUIDs in their hyphenated form. Status webhooks echo it, so
/// the intake can match a status to a send whose answer was lost.
pub fn callback_data(conversation_id: ConversationId, message_id: MessageId) -> String {
    format!("{conversation_id}/{message_id}")
}

/// Who the Cloud API should deliver to: a customer id with a `.` is a
/// business-scoped user id (`US.13491208655302741918`), sent as
/// `recipient`; anything else is phone digits, sent as `to`.
pub fn recipient(customer: &WaId) -> Recipient {
    let id = customer.as_str().to_owned();
    if customer.is_business_scoped() {
        Recipient::UserId(id)
    } else {
        Recipient::WaId(id)
    }
}

/// The delivery worker. Run it with [`crate::runner::run`].
#[allow(missing_debug_implementations)] // holds locks and a watch receiver
pub struct DeliveryWorker {
    app: App,
    api: CloudApi,
    options: DeliveryOptions,
    /// One limiter per business number: Meta's limit is per number.
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
    /// Conversations with a send in progress, so their messages go out in
    /// order and a retried message is not overtaken.
    conversations: Arc<Mutex<HashMap<ConversationId, Arc<tokio::sync::Mutex<()>>>>>,
    /// Ends backoff waits early when the server stops.
    shutdown: Option<watch::Receiver<bool>>,
}

impl DeliveryWorker {
    /// A worker that sends through `api` and records through `app`.
    pub fn new(app: App, api: CloudApi, options: DeliveryOptions) -> Self {
        DeliveryWorker {
            app,
            api,
            options,
            limiters: Mutex::default(),
            conversations: Arc::default(),
            shutdown: None,
        }
    }

    /// Lets a shutdown cut a backoff wait short, so stopping does not wait
    /// minutes for in-flight retries. A message whose wait was cut is left
    /// to reconciliation, as after a crash (the last attempt is on record
    /// without an outcome). Pass the receiver given to
    /// [`crate::runner::run`].
    #[must_use]
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Delivers one queued message, start to finish.
    async fn deliver(
        &self,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<(), ProcessError> {
        let Some(workspace) = self
            .app
            .conversation_workspace(conversation_id)
            .await
            .map_err(retry)?
        else {
            tracing::error!(%conversation_id, %message_id, "queued message of a conversation without a workspace; not sent");
            return Ok(());
        };
        let ctx = CommandContext::new(workspace, Actor::System);
        let Some(pending) = self.pending(&ctx, conversation_id, message_id).await? else {
            return Ok(());
        };
        if pending.settled {
            tracing::debug!(%conversation_id, %message_id, "already accepted or failed");
            return Ok(());
        }
        if pending.attempts > 0 {
            // A send was about to go out and nobody recorded how it went:
            // it may have reached WhatsApp. Reconcile, never resend.
            tracing::warn!(
                %conversation_id, %message_id, attempts = pending.attempts,
                "an earlier attempt has no outcome; leaving it to reconciliation"
            );
            return self.reconcile_later(&ctx, conversation_id, message_id).await;
        }
        self.send(&ctx, pending).await
    }

    /// The attempt loop of a message nobody tried yet.
    async fn send(&self, ctx: &CommandContext, pending: PendingSend) -> Result<(), ProcessError> {
        let PendingSend {
            conversation_id,
            message_id,
            ..
        } = pending;
        let number = pending.phone_number_id.as_str();
        let request = SendRequest::new(recipient(&pending.customer), &pending.content)
            .with_callback_data(callback_data(conversation_id, message_id));
        if let Err(SendError::InvalidRequest { reason }) = request.validate() {
            // Our bug or bad content: no request would help.
            tracing::error!(%conversation_id, %message_id, %reason, "message cannot be sent as recorded");
            return self
                .fail(
                    ctx,
                    conversation_id,
                    message_id,
                    OUR_FAILURE_CODE,
                    format!("invalid request: {reason}"),
                )
                .await;
        }
        let limiter = self.limiter(number);
        let mut attempts = pending.attempts;
        loop {
            limiter.acquire().await;
            attempts = match self
                .app
                .record_send_attempt(ctx, conversation_id, message_id, attempts)
                .await
            {
                Ok(recorded) => recorded.value,
                // Settled meanwhile, or another worker recorded this attempt
                // and owns the send.
                Err(error @ (AppError::FailedPrecondition(_) | AppError::NotFound { .. })) => {
                    tracing::info!(%conversation_id, %message_id, %error, "not sending");
                    return Ok(());
                }
                Err(error) => return Err(retry(error)),
            };
            match self.api.send(number, &request).await {
                Ok(accepted) => {
                    tracing::info!(
                        %conversation_id, %message_id, attempt = attempts,
                        wa_message_id = %accepted.wa_message_id, "accepted by WhatsApp"
                    );
                    let wa_message_id = accepted.wa_message_id;
                    return self
                        .record("record_accepted", || {
                            self.app
                                .record_accepted(ctx, conversation_id, message_id, wa_message_id.clone())
                        })
                        .await;
                }
                Err(SendError::Permanent { code, title, details }) => {
                    tracing::info!(%conversation_id, %message_id, attempt = attempts, code, %title, "refused by WhatsApp");
                    let reason = failure_reason(title, details);
                    let code = i32::try_from(code).unwrap_or(OUR_FAILURE_CODE);
                    return self.fail(ctx, conversation_id, message_id, code, reason).await;
                }
                Err(SendError::InvalidRequest { reason }) => {
                    tracing::error!(%conversation_id, %message_id, %reason, "message cannot be sent as recorded");
                    return self
                        .fail(
                            ctx,
                            conversation_id,
                            message_id,
                            OUR_FAILURE_CODE,
                            format!("invalid request: {reason}"),
                        )
                        .await;
                }
                Err(SendError::Uncertain { reason }) => {
                    tracing::warn!(
                        %conversation_id, %message_id, attempt = attempts, %reason,
                        "outcome unknown; leaving it to reconciliation, not resending"
                    );
                    return self.reconcile_later(ctx, conversation_id, message_id).await;
                }
                Err(error @ (SendError::Transient { .. } | SendError::Unauthorized { .. })) => {
                    if let SendError::Unauthorized { status, code, .. } = &error {
                        // Nothing passes until a person fixes the token or its
                        // permissions; keep trying so messages flow once they do.
                        tracing::error!(
                            %conversation_id, %message_id, status, ?code,
                            "the Cloud API refused the access token; check it and its permissions"
                        );
                    }
                    if attempts >= self.options.max_attempts {
                        tracing::warn!(%conversation_id, %message_id, attempts, %error, "giving up");
                        let reason = format!("gave up after {attempts} attempts: {error}");
                        return self
                            .fail(ctx, conversation_id, message_id, OUR_FAILURE_CODE, reason)
                            .await;
                    }
                    let delay = self
                        .options
                        .backoff
                        .delay(attempts.saturating_sub(1), error.retry_after());
                    tracing::info!(%conversation_id, %message_id, attempt = attempts, %error, ?delay, "retrying later");
                    if !self.wait(delay).await {
                        tracing::info!(%conversation_id, %message_id, "stopping during a backoff");
                        return self.reconcile_later(ctx, conversation_id, message_id).await;
                    }
                }
            }
        }
    }

    /// The message as a send needs it; `None` (logged) if it is gone.
    async fn pending(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<PendingSend>, ProcessError> {
        match self
            .app
            .pending_send(ctx.workspace_id, conversation_id, message_id)
            .await
        {
            Ok(Some(pending)) => Ok(Some(pending)),
            Ok(None) | Err(AppError::NotFound { .. }) => {
                tracing::error!(%conversation_id, %message_id, "queued message not found; not sent");
                Ok(None)
            }
            Err(error) => Err(retry(error)),
        }
    }

    /// Schedules the `ExpireUncertainSend` timer of a message whose last
    /// attempt has no outcome, due `reconcile_after` after that attempt:
    /// measured from the recorded attempt, so handling the message again
    /// schedules the same timer (whose id derives from action and time).
    async fn reconcile_later(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<(), ProcessError> {
        let Some(pending) = self.pending(ctx, conversation_id, message_id).await? else {
            return Ok(());
        };
        if pending.settled {
            return Ok(());
        }
        let since = pending.last_attempt_at.unwrap_or_else(|| self.app.clock().now());
        let reconcile_after = chrono::Duration::from_std(self.options.reconcile_after)
            .map_err(|e| ProcessError::new(format!("reconcile_after: {e}")))?;
        let action = TimerAction::ExpireUncertainSend {
            conversation_id,
            message_id,
        };
        self.record("schedule_timer", || {
            self.app
                .schedule_timer(ctx, since + reconcile_after, action.clone())
        })
        .await
    }

    /// Records a failure the timeline shows.
    async fn fail(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        message_id: MessageId,
        code: i32,
        reason: String,
    ) -> Result<(), ProcessError> {
        let update = DeliveryUpdate::Failed {
            failure: DeliveryFailure { code, reason },
            at: self.app.clock().now(),
        };
        self.record("record_delivery_status", || {
            self.app.record_delivery_status(
                ctx,
                DeliveryTarget::Ours {
                    conversation_id,
                    message_id,
                },
                update.clone(),
            )
        })
        .await
    }

    /// Runs a command that records an outcome, retrying the store's
    /// passing troubles a few times.
    async fn record<T, F, Fut>(&self, command: &'static str, mut run: F) -> Result<(), ProcessError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = palaver_app::Result<T>>,
    {
        let mut delay = RECORD_RETRY_BASE;
        let mut tries = 1;
        loop {
            match run().await {
                Ok(_) => return Ok(()),
                Err(error) if is_passing(&error) && tries < RECORD_TRIES => {
                    tracing::warn!(command, %error, tries, "could not record a send outcome; trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    tries += 1;
                }
                Err(error) => {
                    tracing::error!(command, %error, "could not record a send outcome");
                    return Err(retry(error));
                }
            }
        }
    }

    /// Waits `delay`; false if a shutdown came first.
    async fn wait(&self, delay: Duration) -> bool {
        let Some(mut shutdown) = self.shutdown.clone() else {
            tokio::time::sleep(delay).await;
            return true;
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            _ = shutdown.wait_for(|stop| *stop) => false,
        }
    }

    fn limiter(&self, number: &str) -> Arc<RateLimiter> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            limiters
                .entry(number.to_owned())
                .or_insert_with(|| Arc::new(RateLimiter::per_second(self.options.rate))),
        )
    }

    /// Takes the conversation's turn.
    async fn turn(&self, conversation_id: ConversationId) -> Turn {
        let lock = {
            let mut locks = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(locks.entry(conversation_id).or_default())
        };
        Turn {
            guard: Some(lock.lock_owned().await),
            conversation_id,
            locks: Arc::clone(&self.conversations),
        }
    }
}

/// One conversation's turn; forgets the conversation's lock when nobody
/// else waits for it, so the map holds only conversations in flight.
struct Turn {
    guard: Option<OwnedMutexGuard<()>>,
    conversation_id: ConversationId,
    locks: Arc<Mutex<HashMap<ConversationId, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.guard.take());
        // The map's reference and nobody else's: no holder, no waiter.
        if locks
            .get(&self.conversation_id)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.conversation_id);
        }
    }
}

#[async_trait]
impl Process for DeliveryWorker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self) -> AllFilter {
        AllFilter::event_types([event_types::OUTBOUND_MESSAGE_QUEUED])
    }

    fn concurrency(&self) -> usize {
        self.options.concurrency
    }

    async fn handle(&self, event: RecordedEvent) -> Result<(), ProcessError> {
        let decoded = ConversationEvent::decode(&event.event_type, event.schema_version, &event.payload);
        let (conversation_id, message_id) = match decoded {
            Ok(ConversationEvent::OutboundQueued {
                conversation_id,
                message_id,
                ..
            }) => (conversation_id, message_id),
            Ok(_) => return Ok(()),
            Err(error) => {
                // Retrying cannot make it decodable; holding the checkpoint
                // here would stop every later message.
                tracing::error!(position = event.position.0, %error, "undecodable queued message; skipped");
                return Ok(());
            }
        };
        let _turn = self.turn(conversation_id).await;
        self.deliver(conversation_id, message_id).await
    }
}

/// A failure's reason as the timeline shows it: `<title>: <details>`, or
/// whichever of the two there is. The form the status webhook's failures
/// take, so one failure reported both ways reads the same.
fn failure_reason(title: String, details: String) -> String {
    match (title.is_empty(), details.is_empty() || details == title) {
        (false, false) => format!("{title}: {details}"),
        (false, true) => title,
        (true, _) => details,
    }
}

/// Whether a command failed for a reason that may pass on its own.
fn is_passing(error: &AppError) -> bool {
    match error {
        AppError::Store(error) => error.is_transient(),
        AppError::Conflict { .. } | AppError::NotCaughtUp { .. } | AppError::ReadModels(_) => true,
        AppError::InvalidArgument { .. }
        | AppError::NotFound { .. }
        | AppError::FailedPrecondition(_)
        | AppError::UnknownPhoneNumberId(_)
        | AppError::Internal(_) => false,
    }
}

/// An application failure the runner should retry the event after.
fn retry(error: AppError) -> ProcessError {
    ProcessError::new(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_id_with_a_dot_is_a_business_scoped_user_id() {
        assert_eq!(
            recipient(&WaId::new("US.13491208655302741918")),
            Recipient::UserId("US.13491208655302741918".into())
        );
        assert_eq!(
            recipient(&WaId::new("447700900123")),
            Recipient::WaId("447700900123".into())
        );
    }

    #[test]
    fn callback_data_names_conversation_and_message() {
        let conversation = ConversationId::from_uuid(uuid::Uuid::from_u128(1));
        let message = MessageId::from_uuid(uuid::Uuid::from_u128(2));
        assert_eq!(
            callback_data(conversation, message),
            "00000000-0000-0000-0000-000000000001/00000000-0000-0000-0000-000000000002"
        );
    }
}
