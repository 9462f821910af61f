//! Durable timers (docs/workers.md, "Timers and campaigns"): the
//! [`TimerScheduler`] turns events into timers, and the [`TimerService`]
//! fires them when they are due.
//!
//! Timers are events (`timer-<id>` streams, ids derived from what they do),
//! so they survive restarts and a timer scheduled twice is one timer. The
//! scheduler is an ordinary [`Process`]: a scheduled campaign gets a
//! `LaunchCampaign` timer at its time, a snooze a `WakeConversation` at its
//! end, and each customer message a `WarnWindowClosing` a configurable
//! time before the 24-hour window it opens closes.
//!
//! The service is a loop under the lease `"timers"`: every tick it reads
//! the due timers from the `pending_timers` read model (the App's clock
//! decides what is due), checks each against its stream (a row may lag
//! behind its `TimerFired`), runs the action, then records the timer
//! fired. Actions re-check their subject, so a crash between the two, which
//! runs the action again, is harmless. An action that fails for a reason
//! that may pass (the store is busy) leaves its timer for the next tick
//! without holding up the others; one refused for good (its subject is
//! gone) is logged and the timer recorded fired, since retrying cannot
//! help.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use palaver_app::{App, CommandContext, Error as AppError, Precondition};
use palaver_domain::Error as DomainError;
use palaver_domain::campaign::{CampaignEvent, CampaignTrigger};
use palaver_domain::codec::{self, DomainEvent, event_types as t};
use palaver_domain::conversation::ConversationEvent;
use palaver_domain::ids::{Actor, ConversationId, WorkspaceId};
use palaver_domain::timer::TimerAction;
use palaver_domain::window::WINDOW_LENGTH;
use palaver_projections::queries::DueTimer;
use palaver_store::{AllFilter, Position, RecordedEvent};
use tokio::sync::watch;

use crate::runner::{Process, ProcessError, Runtime};

/// The scheduler's name, for its checkpoint, lease and logs.
pub const SCHEDULER_NAME: &str = "timer-scheduler";

/// The lease the timer service runs under.
pub const SERVICE_LEASE: &str = "timers";

/// The domain event in a recorded one; `None` (logged) for one that cannot
/// be read, which no retry would fix: the worker moves past it.
pub(crate) fn decode(worker: &'static str, event: &RecordedEvent) -> Option<DomainEvent> {
    match codec::decode(&event.event_type, event.schema_version, &event.payload) {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            tracing::error!(
                worker,
                position = event.position.0,
                event_type = %event.event_type,
                %error,
                "cannot read the event; skipped",
            );
            None
        }
    }
}

/// The context of work a worker does in a workspace on Palaver's behalf.
pub(crate) fn system_in(workspace: WorkspaceId) -> CommandContext {
    CommandContext::new(workspace, Actor::System)
}

/// How the scheduler schedules.
#[derive(Clone, Copy, Debug)]
pub struct TimerSchedulerOptions {
    /// How long before a customer's 24-hour window closes (while their
    /// message is the last one) the conversation is warned.
    pub window_warning: Duration,
}

impl Default for TimerSchedulerOptions {
    fn default() -> Self {
        TimerSchedulerOptions {
            window_warning: Duration::from_secs(60 * 60),
        }
    }
}

/// Schedules the timers that events call for. Run it with
/// [`crate::runner::run`].
#[derive(Clone, Debug)]
pub struct TimerScheduler {
    app: App,
    window_warning: TimeDelta,
}

impl TimerScheduler {
    /// The scheduler over `app`.
    pub fn new(app: App, options: TimerSchedulerOptions) -> Self {
        TimerScheduler {
            app,
            // A warning longer than the window would fire at once; clamp
            // rather than refuse, the configuration is still usable.
            window_warning: TimeDelta::from_std(options.window_warning)
                .unwrap_or(WINDOW_LENGTH)
                .min(WINDOW_LENGTH),
        }
    }

    async fn schedule(
        &self,
        workspace: WorkspaceId,
        due_at: DateTime<Utc>,
        action: TimerAction,
    ) -> Result<(), ProcessError> {
        let name = action.name();
        match self
            .app
            .schedule_timer(&system_in(workspace), due_at, action)
            .await
        {
            Ok(timer) => {
                tracing::debug!(timer_id = %timer.value, action = name, %due_at, "timer scheduled");
                Ok(())
            }
            Err(error) if error.is_transient() => Err(ProcessError::new(error)),
            Err(error) => {
                tracing::error!(action = name, %due_at, %error, "timer could not be scheduled; skipped");
                Ok(())
            }
        }
    }

    /// The workspace of a conversation named by an event.
    async fn workspace_of(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Option<WorkspaceId>, ProcessError> {
        let workspace = self
            .app
            .conversation_workspace(conversation_id)
            .await
            .map_err(ProcessError::new)?;
        if workspace.is_none() {
            // The event came from the conversation's stream, after its
            // thread was written: this is corrupt history, not lag.
            tracing::error!(%conversation_id, "conversation without a workspace; no timer scheduled");
        }
        Ok(workspace)
    }
}

#[async_trait]
impl Process for TimerScheduler {
    fn name(&self) -> &'static str {
        SCHEDULER_NAME
    }

    fn filter(&self) -> AllFilter {
        AllFilter::event_types([t::CAMPAIGN_CREATED, t::CONVERSATION_SNOOZED, t::MESSAGE_RECEIVED])
    }

    fn concurrency(&self) -> usize {
        // Each event schedules its own timer; order does not matter.
        8
    }

    async fn handle(&self, event: RecordedEvent) -> Result<(), ProcessError> {
        match decode(SCHEDULER_NAME, &event) {
            Some(DomainEvent::Campaign(CampaignEvent::Created {
                campaign_id,
                workspace_id,
                trigger: CampaignTrigger::ScheduledAt(at),
                ..
            })) => {
                // Even when the time has passed (Palaver was down): late is
                // better than never, and a cancelled campaign refuses.
                self.schedule(workspace_id, at, TimerAction::LaunchCampaign { campaign_id })
                    .await
            }
            Some(DomainEvent::Conversation(ConversationEvent::Snoozed {
                conversation_id,
                until,
                ..
            })) => {
                let Some(workspace) = self.workspace_of(conversation_id).await? else {
                    return Ok(());
                };
                let action = TimerAction::WakeConversation {
                    conversation_id,
                    until,
                };
                self.schedule(workspace, until, action).await
            }
            Some(DomainEvent::Conversation(ConversationEvent::MessageReceived {
                conversation_id,
                message,
                ..
            })) => {
                let closes_at = message.sent_at + WINDOW_LENGTH;
                if closes_at <= self.app.clock().now() {
                    // A closed window needs no warning; skipping keeps a
                    // first run over old history from scheduling one timer
                    // per message ever received.
                    return Ok(());
                }
                let Some(workspace) = self.workspace_of(conversation_id).await? else {
                    return Ok(());
                };
                let action = TimerAction::WarnWindowClosing {
                    conversation_id,
                    closes_at,
                };
                self.schedule(workspace, closes_at - self.window_warning, action)
                    .await
            }
            _ => Ok(()),
        }
    }
}

/// How the timer service polls.
#[derive(Clone, Copy, Debug)]
pub struct TimerServiceOptions {
    /// How often due timers are looked for: the most a timer fires late.
    pub tick: Duration,
    /// Most timers read per query; a full batch is followed by another at
    /// once.
    pub batch: u32,
}

impl Default for TimerServiceOptions {
    fn default() -> Self {
        TimerServiceOptions {
            tick: Duration::from_secs(1),
            batch: 100,
        }
    }
}

/// What one pass over the due timers did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Timers whose action ran and that are now recorded fired.
    pub fired: usize,
    /// Timers left for the next tick after a failure that may pass.
    pub failed: usize,
}

/// Fires due timers. Not a [`Process`]: it follows time, not events; run
/// it with [`TimerService::run`].
#[derive(Clone, Debug)]
pub struct TimerService {
    app: App,
    options: TimerServiceOptions,
}

impl TimerService {
    /// The service over `app`, whose clock says what is due.
    pub fn new(app: App, options: TimerServiceOptions) -> Self {
        TimerService {
            app,
            options: TimerServiceOptions {
                batch: options.batch.max(1),
                ..options
            },
        }
    }

    /// Runs until `shutdown` turns true (a tick in progress finishes
    /// first), firing due timers every tick while this instance holds the
    /// lease [`SERVICE_LEASE`] from `runtime.leases` (polled every
    /// `runtime.options.lease_poll` while another instance has it).
    pub async fn run(self, runtime: Runtime, mut shutdown: watch::Receiver<bool>) {
        loop {
            let Some(mut lease) = crate::runner::acquire_lease(&runtime, SERVICE_LEASE, &mut shutdown).await
            else {
                return;
            };
            tracing::info!(worker = SERVICE_LEASE, "timer service started");
            let mut renew = tokio::time::interval(runtime.leases.renew_every());
            renew.tick().await;
            let mut tick = tokio::time::interval(self.options.tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let stop = loop {
                tokio::select! {
                    biased;
                    _ = shutdown.changed() => break true,
                    _ = renew.tick() => match lease.renew().await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(worker = SERVICE_LEASE, "lease lost; another instance fires timers");
                            break false;
                        }
                        Err(error) => {
                            tracing::warn!(worker = SERVICE_LEASE, %error, "could not renew the timer lease");
                            break false;
                        }
                    },
                    _ = tick.tick() => {
                        self.tick().await;
                    }
                }
            };
            if let Err(error) = lease.release().await {
                tracing::warn!(worker = SERVICE_LEASE, %error, "could not release the lease; it will expire");
            }
            tracing::info!(worker = SERVICE_LEASE, "timer service stopped");
            if stop {
                return;
            }
        }
    }

    /// One pass: fires every timer due by the App's clock now, batch after
    /// batch, and waits until the read models have taken what it recorded
    /// (so the next pass does not see those timers again).
    pub async fn tick(&self) -> TickReport {
        let now = self.app.clock().now();
        let mut report = TickReport::default();
        loop {
            let due = match self.app.read_models().due_timers(now, self.options.batch).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(worker = SERVICE_LEASE, %error, "could not read due timers; next tick");
                    return report;
                }
            };
            let full = due.len() >= self.options.batch as usize;
            let mut last: Option<Position> = None;
            let mut failed = 0;
            for timer in &due {
                match self.fire(timer).await {
                    Ok(Some(position)) => {
                        report.fired += 1;
                        last = last.max(Some(position));
                    }
                    Ok(None) => {}
                    Err(error) => {
                        failed += 1;
                        tracing::warn!(
                            worker = SERVICE_LEASE,
                            timer_id = %timer.timer_id,
                            action = timer.action.name(),
                            %error,
                            "timer action failed; retried next tick",
                        );
                    }
                }
            }
            report.failed += failed;
            if let Err(error) = self.app.wait_for(last).await {
                tracing::warn!(worker = SERVICE_LEASE, %error, "read models lag behind fired timers");
                return report;
            }
            // Another batch only if this one made room: failures stay listed.
            if !full || failed == due.len() {
                return report;
            }
        }
    }

    /// Runs one timer's action and records it fired; `None` if it had
    /// fired already, else the position of its `TimerFired`.
    async fn fire(&self, timer: &DueTimer) -> Result<Option<Position>, AppError> {
        let ctx = system_in(timer.workspace_id);
        if !self.app.timer_pending(timer.workspace_id, timer.timer_id).await? {
            return Ok(None);
        }
        let outcome = match &timer.action {
            TimerAction::LaunchCampaign { campaign_id } => {
                match self.app.launch_campaign(&ctx, *campaign_id).await {
                    // Not due yet by this instance's clock: wait for it.
                    Err(
                        error @ AppError::FailedPrecondition(Precondition::Domain(
                            DomainError::CampaignNotDue { .. },
                        )),
                    ) => return Err(error),
                    other => other,
                }
            }
            TimerAction::WakeConversation {
                conversation_id,
                until,
            } => self.app.wake_conversation(&ctx, *conversation_id, *until).await,
            TimerAction::WarnWindowClosing {
                conversation_id,
                closes_at,
            } => {
                self.app
                    .warn_window_closing(&ctx, *conversation_id, *closes_at)
                    .await
            }
            TimerAction::ExpireUncertainSend {
                conversation_id,
                message_id,
            } => {
                self.app
                    .expire_uncertain_send(&ctx, *conversation_id, *message_id)
                    .await
            }
        };
        match outcome {
            Ok(_) => {
                tracing::info!(timer_id = %timer.timer_id, action = timer.action.name(), "timer fired");
            }
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => {
                // E.g. a cancelled campaign, a conversation gone: the timer
                // has nothing left to do.
                tracing::info!(
                    timer_id = %timer.timer_id,
                    action = timer.action.name(),
                    %error,
                    "timer action refused; the timer is spent",
                );
            }
        }
        let fired = self.app.record_timer_fired(&ctx, timer.timer_id).await?;
        Ok(Some(fired.position))
    }
}
